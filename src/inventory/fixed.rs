//! An inventory whose contents the owner sets: the sandbox's simulated cluster, and tests.

use std::sync::{Arc, RwLock};

use super::{Inventory, Snapshot};

/// An inventory that is always synced and holds whatever was last [`set`](Self::set).
#[derive(Debug, Default)]
pub struct FixedInventory {
    current: RwLock<Arc<Snapshot>>,
}

impl FixedInventory {
    pub fn new(snapshot: Snapshot) -> Self {
        FixedInventory {
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    /// Replaces the whole view; readers see the old or the new one, never a mix.
    pub fn set(&self, snapshot: Snapshot) {
        let next = Arc::new(snapshot);
        // A poisoned lock only means a reader panicked; the Arc inside is still whole.
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        *guard = next;
    }
}

impl Inventory for FixedInventory {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn has_synced(&self) -> bool {
        true
    }
}
