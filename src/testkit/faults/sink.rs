//! [`FaultySink`]: any sink, with faults injected per a [`FaultPlan`].

use super::{CrashMode, FaultPlan, Faults, Verdict, crashed, fault_controls};
use crate::error::{Error, Result};
use crate::model::{ArchivePath, Body, ScanCursor, ScanUpdate, SinkEntry, SinkItemId};
use crate::sink::{ArchiveSink, Quota, SinkCapabilities};
use async_trait::async_trait;
use std::sync::Arc;

/// Wraps a sink and injects faults. Clones share the sink and the plan's state.
///
/// Every trait call but [`capabilities`](ArchiveSink::capabilities) is one operation.
/// A crash [`CrashMode::AfterEffect`] lets the call reach the sink (a write lands, a
/// folder appears), then answers an error.
///
/// ```
/// # use receipt_sync::sink::{ArchiveSink, InMemorySink};
/// # use receipt_sync::testkit::faults::{CrashMode, FaultPlan, FaultySink};
/// # use receipt_sync::model::ArchivePath;
/// # futures::executor::block_on(async {
/// let sink = FaultySink::new(InMemorySink::new(), FaultPlan::seeded(7).crash_after(1, CrashMode::AfterEffect));
/// sink.create_folder(&ArchivePath::parse("a").unwrap()).await.unwrap();
/// assert!(sink.create_folder(&ArchivePath::parse("b").unwrap()).await.is_err());
/// assert!(sink.inner().exists("b"), "the crash struck after the effect");
/// assert!(sink.scan(None).await.is_err(), "and every call fails until recover()");
/// sink.recover();
/// assert!(sink.scan(None).await.is_ok());
/// # });
/// ```
#[derive(Debug)]
pub struct FaultySink<S> {
    inner: Arc<S>,
    faults: Faults,
}

impl<S> Clone for FaultySink<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            faults: self.faults.clone(),
        }
    }
}

impl<S: ArchiveSink> FaultySink<S> {
    /// Wraps `inner`, injecting what `plan` says.
    pub fn new(inner: S, plan: FaultPlan) -> Self {
        Self {
            inner: Arc::new(inner),
            faults: Faults::new("faulty-sink", plan),
        }
    }

    /// Fills or empties the drive, from now on.
    pub fn set_drive_full(&self, full: bool) {
        self.faults.set_drive_full(full);
    }

    fault_controls!();

    /// Runs `op` under the verdict for (`operation`, `subject`).
    async fn guarded<T, F>(&self, operation: &'static str, subject: &str, op: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        match self.faults.decide(operation, subject) {
            Verdict::Go => op.await,
            Verdict::Fail(e) => Err(e),
            Verdict::Crash(CrashMode::BeforeEffect) => Err(crashed()),
            Verdict::Crash(CrashMode::AfterEffect) => {
                let _ = op.await;
                Err(crashed())
            }
        }
    }
}

#[async_trait]
impl<S: ArchiveSink> ArchiveSink for FaultySink<S> {
    fn capabilities(&self) -> SinkCapabilities {
        self.inner.capabilities()
    }

    async fn scan(&self, cursor: Option<&ScanCursor>) -> Result<ScanUpdate> {
        self.guarded("scan", "", self.inner.scan(cursor)).await
    }

    async fn create_folder(&self, path: &ArchivePath) -> Result<SinkEntry> {
        let subject = path.key();
        self.guarded(
            "create_folder",
            subject.as_str(),
            self.inner.create_folder(path),
        )
        .await
    }

    async fn write_file(&self, path: &ArchivePath, body: Body) -> Result<SinkEntry> {
        let subject = path.key();
        let needed = body.len();
        let write = async {
            if self.faults.full_drive_fault() {
                return Err(Error::QuotaExceeded {
                    needed,
                    remaining: 0,
                });
            }
            self.inner.write_file(path, body).await
        };
        self.guarded("write_file", subject.as_str(), write).await
    }

    async fn rename_folder(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        new_name: &str,
    ) -> Result<SinkEntry> {
        let rename = self.inner.rename_folder(id, path, new_name);
        self.guarded("rename_folder", id.as_str(), rename).await
    }

    async fn replace_file(
        &self,
        id: &SinkItemId,
        path: &ArchivePath,
        body: Body,
    ) -> Result<SinkEntry> {
        let replace = self.inner.replace_file(id, path, body);
        self.guarded("replace_file", id.as_str(), replace).await
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        let quota = self.guarded("quota", "", self.inner.quota()).await?;
        Ok(match quota {
            Some(q) if self.faults.drive_is_full() => Some(Quota {
                total: q.total,
                used: q.total,
                remaining: 0,
            }),
            other => other,
        })
    }
}
