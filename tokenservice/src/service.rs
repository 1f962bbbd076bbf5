//! The running service every handler answers with: configuration, store, directory, and the
//! failed logins per client address this replica remembers.

use crate::config::Config;
use crate::lockout::{AddressFailures, Gate};
use crate::store::Store;
use crate::users::Directory;
use oauth1::MemoryNonces;

/// An empty nonce store for `config`'s timestamp window.
pub fn nonces_for(config: &Config) -> MemoryNonces {
    let window = config.oauth1.as_ref().map_or(300, |o| o.timestamp_window_seconds);
    MemoryNonces::new(window, crate::oauth1_signed::NONCE_CAPACITY)
}

/// The running service: configuration, store and directory, and this replica's failed
/// logins per client address.
pub struct Service {
    pub config: Config,
    pub store: Store,
    pub directory: Box<dyn Directory>,
    pub addresses: AddressFailures,
    /// The nonces of the OAuth 1.0a dance requests this replica accepted (see
    /// [`crate::oauth1_signed`]).
    pub oauth1_nonces: MemoryNonces,
}

impl Service {
    /// The service over `config`, `store` and `directory`, with nothing remembered yet.
    pub fn new(config: Config, store: Store, directory: Box<dyn Directory>) -> Self {
        Self {
            oauth1_nonces: nonces_for(&config),
            config,
            store,
            directory,
            addresses: AddressFailures::default(),
        }
    }

    /// The failed-login lockout over this service's store and memory.
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            policy: &self.config.lockout,
            store: &self.store,
            addresses: &self.addresses,
        }
    }
}
