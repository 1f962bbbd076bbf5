//! The running service every handler answers with: configuration, store, directory, and the
//! failed logins per client address this replica remembers.

use crate::config::Config;
use crate::lockout::{AddressFailures, Gate};
use crate::store::Store;
use crate::users::Directory;

/// The running service: configuration, store and directory, and this replica's failed
/// logins per client address.
pub struct Service {
    pub config: Config,
    pub store: Store,
    pub directory: Box<dyn Directory>,
    pub addresses: AddressFailures,
}

impl Service {
    /// The failed-login lockout over this service's store and memory.
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            policy: &self.config.lockout,
            store: &self.store,
            addresses: &self.addresses,
        }
    }
}
