//! A state store in memory, for tests and for embedders that persist elsewhere.

use super::{STATE_VERSION, Settled, StateChange, StateLock, StateStore, SyncState};
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
    /// The summary of `state`, forgotten by every save and record.
    settled: Mutex<Option<Settled>>,
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

    fn forget_settled(&self) {
        *self
            .inner
            .settled
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
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
        self.forget_settled();
        *self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(state.clone());
        self.inner.saves.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn record(&self, changes: &[StateChange]) -> Result<()> {
        self.forget_settled();
        let mut guard = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // As the file store loads changes recorded before any save: a current-format state.
        let state = guard.get_or_insert_with(|| SyncState {
            version: STATE_VERSION,
            ..SyncState::default()
        });
        for change in changes {
            state.apply(change);
        }
        Ok(())
    }

    /// Nothing to fold: recorded changes are applied to the state as they come.
    async fn checkpoint(&self, _state: &SyncState) -> Result<()> {
        Ok(())
    }

    async fn load_settled(&self) -> Result<Option<Settled>> {
        Ok(self
            .inner
            .settled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    async fn save_settled(&self, settled: &Settled) -> Result<()> {
        *self
            .inner
            .settled
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(settled.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;
    use crate::source::Watermark;

    #[tokio::test]
    async fn changes_recorded_before_any_save_make_a_current_format_state() {
        let store = InMemoryStateStore::new();
        let change = StateChange::WatermarkAdvanced {
            account: AccountId::new("acc"),
            watermark: Watermark::new("w"),
        };
        store.record(std::slice::from_ref(&change)).await.unwrap();
        let state = store.load().await.unwrap().expect("a state");
        assert_eq!(state.version, STATE_VERSION);
        assert_eq!(
            state.watermarks[&AccountId::new("acc")],
            Watermark::new("w")
        );
    }
}
