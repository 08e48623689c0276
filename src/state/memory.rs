//! A state store in memory, for tests and for embedders that persist elsewhere.

use super::{StateChange, StateLock, StateStore, SyncState};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A [`StateStore`] that keeps the state in memory. Clones share the same state and lock.
#[derive(Clone, Debug, Default)]
pub struct InMemoryStateStore {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<Option<SyncState>>,
    saves: std::sync::atomic::AtomicU64,
    locked: Arc<AtomicBool>,
}

struct Unlock(Arc<AtomicBool>);

impl Drop for Unlock {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl InMemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the current state, recorded changes included.
    pub fn snapshot(&self) -> Option<SyncState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many times [`StateStore::save`] was called.
    pub fn saves(&self) -> u64 {
        self.inner.saves.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl StateStore for InMemoryStateStore {
    async fn load(&self) -> Result<Option<SyncState>> {
        Ok(self.snapshot())
    }

    async fn save(&self, state: &SyncState) -> Result<()> {
        *self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(state.clone());
        self.inner.saves.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn record(&self, changes: &[StateChange]) -> Result<()> {
        let mut guard = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let state = guard.get_or_insert_with(SyncState::default);
        for change in changes {
            state.apply(change);
        }
        Ok(())
    }

    async fn lock(&self) -> Result<StateLock> {
        if self.inner.locked.swap(true, Ordering::SeqCst) {
            return Err(Error::AlreadyRunning {
                what: "the in-memory state".into(),
            });
        }
        Ok(StateLock::new(Unlock(self.inner.locked.clone())))
    }
}
