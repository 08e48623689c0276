//! The sync's durable memory: [`SyncState`], the [`StateStore`] trait and its stores.

mod file;
mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod pg;
mod records;
mod settled;

pub use file::{DEFAULT_COMPACTION_BYTES, JsonFileStateStore};
pub use memory::InMemoryStateStore;
#[cfg(feature = "postgres")]
pub use pg::{DEFAULT_POOL_SIZE, PgDatabase, PgStateStore, SCHEMA_VERSION};
pub use records::{
    AccountRecord, ExportRecord, IndexRecord, IndexedRow, PendingRename, RunSummary, STATE_VERSION,
    StateChange, StateSettings, SyncState, Tombstone, TombstoneReason,
};
pub(crate) use settled::SettledMeta;
pub use settled::{CatalogDigest, EchoDigest, HeldEchoes, Settled, SettledKey, StateHead};

use crate::error::Result;
use async_trait::async_trait;
use std::fmt;

/// Proof that this process holds a state's lock; the lock is released when it is dropped.
pub struct StateLock {
    _guard: Box<dyn Send + Sync>,
}

impl StateLock {
    /// A lock held for as long as `guard` lives.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for StateLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateLock")
    }
}

/// Where a [`SyncState`] is kept between runs.
///
/// # Contract
/// - [`load`](Self::load) returns the last saved state with every change recorded
///   since then applied, or `None` if nothing was ever saved or recorded. A state that
///   cannot be read (corrupt, or written by a newer version) is [`crate::Error::State`];
///   it is never silently replaced.
/// - [`save`](Self::save) replaces the stored state atomically: after a crash at any
///   point, `load` returns either the old state (with its recorded changes) or the
///   new one, never a mix. A successful save makes the recorded changes redundant.
/// - [`record`](Self::record) durably appends changes so that a crash right after it
///   returns loses none of them. It exists so the sync can record each finished
///   action at once without rewriting the whole state every time. A store may make
///   the changes of calls that overlap durable together (one write for many), but a
///   call returns `Ok` only once its own changes are durable.
/// - [`checkpoint`](Self::checkpoint) is given the state `load` would return now (the
///   sync calls it at the end of a run, every change of the run recorded). The store
///   may fold its recorded changes into a new saved state, as atomically as `save`,
///   when it judges that worthwhile, or do nothing: `load` returns the same state
///   either way. The default saves the whole state, as a store without a journal of
///   its own must.
/// - [`load_settled`](Self::load_settled) returns the [`Settled`] last given to
///   [`save_settled`](Self::save_settled) only while nothing was saved or recorded
///   since: a summary of another state must never be returned. A store may keep none
///   (the default), and may lose one (a crash just after a record): a pass then loads
///   the whole state, as it always can.
/// - [`lock`](Self::lock) takes an exclusive lock, across processes where the store is
///   shared; a second holder gets [`crate::Error::AlreadyRunning`] at once, never a wait.
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug {
    /// The current state, or `None` when there is none yet.
    async fn load(&self) -> Result<Option<SyncState>>;

    /// Replaces the stored state with `state`, atomically.
    async fn save(&self, state: &SyncState) -> Result<()>;

    /// Durably records changes made since the last save.
    async fn record(&self, changes: &[StateChange]) -> Result<()>;

    /// Folds the recorded changes into the saved state when worthwhile; `state` is
    /// what [`load`](Self::load) would return. Provided (a full [`save`](Self::save))
    /// so that stores written before it keep working as they did.
    async fn checkpoint(&self, state: &SyncState) -> Result<()> {
        self.save(state).await
    }

    /// The summary of the stored state saved by [`save_settled`](Self::save_settled),
    /// if nothing was saved or recorded since; `None` otherwise, or when the store keeps
    /// none (the default). With it, a quiet day need not [`load`](Self::load) the state.
    async fn load_settled(&self) -> Result<Option<Settled>> {
        Ok(None)
    }

    /// Keeps `settled`, a summary of the state as [`load`](Self::load) would return it
    /// now, until the next save or record. The default keeps nothing. An error here
    /// loses nothing: the next pass loads the whole state.
    async fn save_settled(&self, _settled: &Settled) -> Result<()> {
        Ok(())
    }

    /// Takes the exclusive lock.
    async fn lock(&self) -> Result<StateLock>;
}
