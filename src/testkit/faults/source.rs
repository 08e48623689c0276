//! [`FaultySource`]: any source, with faults injected per a [`FaultPlan`].

use super::{CrashMode, FaultPlan, Faults, Verdict, crashed, fault_controls};
use crate::error::Result;
use crate::model::{AccountId, BankAccount, Body, Receipt};
use crate::source::{ReceiptQuery, ReceiptSource, ReceiptStream, SourceEvent};
use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use std::sync::Arc;

/// Wraps a source and injects faults. Clones share the source and the plan's state.
///
/// Each call is one operation, and so is each receipt a stream yields: a receipt hit
/// by a fault is replaced by the error (as a receipt that cannot be read), and the
/// checkpoints after it are dropped, as the [`ReceiptSource`] contract requires. A
/// crash ends the stream. [`FaultPlan::drive_full`] does not apply to sources.
#[derive(Debug)]
pub struct FaultySource<S> {
    inner: Arc<S>,
    faults: Faults,
}

impl<S> Clone for FaultySource<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            faults: self.faults.clone(),
        }
    }
}

impl<S: ReceiptSource> FaultySource<S> {
    /// Wraps `inner`, injecting what `plan` says.
    pub fn new(inner: S, plan: FaultPlan) -> Self {
        Self {
            inner: Arc::new(inner),
            faults: Faults::new("faulty-source", plan),
        }
    }

    fault_controls!();
}

/// Where a faulty receipt stream is.
struct Reading {
    inner: ReceiptStream,
    faults: Faults,
    /// A receipt failed: no checkpoint may follow.
    tainted: bool,
    done: bool,
}

impl Reading {
    async fn next(mut self) -> Option<(Result<SourceEvent>, Self)> {
        loop {
            if self.done {
                return None;
            }
            let event = match self.inner.next().await? {
                Ok(SourceEvent::Checkpoint(_)) if self.tainted => continue,
                Ok(SourceEvent::Receipt(r)) => match self.faults.decide("receipt", r.id.as_str()) {
                    Verdict::Go => Ok(SourceEvent::Receipt(r)),
                    Verdict::Fail(e) => {
                        self.tainted = true;
                        self.done = e.stops_sync();
                        Err(e)
                    }
                    Verdict::Crash(_) => {
                        self.done = true;
                        Err(crashed())
                    }
                },
                Err(e) => {
                    self.tainted = true;
                    Err(e)
                }
                other => other,
            };
            return Some((event, self));
        }
    }
}

#[async_trait]
impl<S: ReceiptSource> ReceiptSource for FaultySource<S> {
    async fn accounts(&self) -> Result<Vec<BankAccount>> {
        match self.faults.decide("accounts", "") {
            Verdict::Go => self.inner.accounts().await,
            Verdict::Fail(e) => Err(e),
            Verdict::Crash(CrashMode::BeforeEffect) => Err(crashed()),
            Verdict::Crash(CrashMode::AfterEffect) => {
                let _ = self.inner.accounts().await;
                Err(crashed())
            }
        }
    }

    fn receipts(&self, account: &AccountId, query: &ReceiptQuery) -> ReceiptStream {
        match self.faults.decide("receipts", account.as_str()) {
            Verdict::Go => {
                let reading = Reading {
                    inner: self.inner.receipts(account, query),
                    faults: self.faults.clone(),
                    tainted: false,
                    done: false,
                };
                stream::unfold(reading, Reading::next).boxed()
            }
            Verdict::Fail(e) => stream::once(async move { Err(e) }).boxed(),
            Verdict::Crash(_) => stream::once(async { Err(crashed()) }).boxed(),
        }
    }

    async fn open(&self, receipt: &Receipt) -> Result<Body> {
        match self.faults.decide("open", receipt.id.as_str()) {
            Verdict::Go => self.inner.open(receipt).await,
            Verdict::Fail(e) => Err(e),
            Verdict::Crash(CrashMode::BeforeEffect) => Err(crashed()),
            Verdict::Crash(CrashMode::AfterEffect) => {
                let _ = self.inner.open(receipt).await;
                Err(crashed())
            }
        }
    }
}
