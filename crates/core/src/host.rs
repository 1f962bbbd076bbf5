//! What the core consults besides the request, as traits the host implements: the loaded
//! remote keys ([`Keyring`]), the metrics ([`Counter`]), and the bundle a decision runs
//! with ([`Env`]: those, the shared caches and the host's signature checks).

use std::rc::Rc;

use crate::cache::SharedStore;
use crate::hostcrypto::SignatureHost;
use crate::jwk::KeySet;
use crate::jwks_cache::Generation;
use crate::metrics::Metric;

/// Verification keys of remote JWKS providers, as the Envoy process last loaded them, with
/// their generation (it changes only when the keys do; a verdict cached under another
/// generation is verified again).
pub trait Keyring {
    fn remote_keys(&self, provider: &str) -> Option<(Rc<KeySet>, Generation)>;
}

/// What the core may consult besides the request: loaded keys and the shared caches.
pub struct Env<'a> {
    pub keyring: &'a dyn Keyring,
    pub store: &'a dyn SharedStore,
    /// Counts events ([`Metric::IntrospectionCacheHit`], ...) in the host's metrics.
    pub count: &'a dyn Counter,
    /// Checks RSA and ECDSA signatures faster than the module, when the host can.
    pub signatures: &'a dyn SignatureHost,
}

/// Where the core counts what the operator should see in metrics.
pub trait Counter {
    fn count(&self, metric: Metric);
}

/// Counts nothing (tests, and callers without metrics).
pub struct NoCount;

impl Counter for NoCount {
    fn count(&self, _metric: Metric) {}
}
