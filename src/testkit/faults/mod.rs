//! Seeded fault injection around any source or sink: transient errors, throttling,
//! permanent errors, a full drive, and crashes before or after an operation's effect.
//!
//! # Replay
//! Whether an operation fails depends only on the plan's seed, the operation, its
//! subject (a path, a receipt id) and how many times that same operation on that
//! same subject was tried before, never on timing or on the order in which concurrent
//! tasks happen to run. The same seed against the same history gives the same faults.
//! Only the crash counts operations globally, so under concurrency *which* operation
//! crashes may vary; the count at which it crashes does not.

mod sink;
mod source;

pub use sink::FaultySink;
pub use source::FaultySource;

use crate::error::Error;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// When a crash strikes relative to the operation's effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// The operation fails and has no effect (the process died before sending it).
    BeforeEffect,
    /// The operation takes effect, then fails (the process died before hearing back):
    /// the case that tests adoption after a crash.
    AfterEffect,
}

/// What to inject. Probabilities are per operation, clamped to `0.0..=1.0`, and
/// tried in order: transient, then rate limited, then permanent.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    seed: u64,
    transient: f64,
    rate_limited: f64,
    retry_after: Duration,
    permanent: f64,
    drive_full: bool,
    crash_after: Option<(u64, CrashMode)>,
    crash_on: Option<(&'static str, CrashMode)>,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::none()
    }
}

impl FaultPlan {
    /// No fault at all: the wrapper is transparent.
    pub fn none() -> Self {
        Self {
            seed: 0,
            transient: 0.0,
            rate_limited: 0.0,
            retry_after: Duration::from_secs(1),
            permanent: 0.0,
            drive_full: false,
            crash_after: None,
            crash_on: None,
        }
    }

    /// No fault yet, with random choices drawn from `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed,
            ..Self::none()
        }
    }

    /// Fails operations with [`Error::Transient`] with probability `p`.
    pub fn transient(mut self, p: f64) -> Self {
        self.transient = p.clamp(0.0, 1.0);
        self
    }

    /// Fails operations with [`Error::RateLimited`] asking to wait `retry_after`,
    /// with probability `p`.
    pub fn rate_limited(mut self, p: f64, retry_after: Duration) -> Self {
        self.rate_limited = p.clamp(0.0, 1.0);
        self.retry_after = retry_after;
        self
    }

    /// Fails operations with [`Error::Permanent`] with probability `p`.
    pub fn permanent(mut self, p: f64) -> Self {
        self.permanent = p.clamp(0.0, 1.0);
        self
    }

    /// Sinks only: every file write fails with [`Error::QuotaExceeded`] and the
    /// quota reports nothing left.
    pub fn drive_full(mut self, full: bool) -> Self {
        self.drive_full = full;
        self
    }

    /// After `ops` operations succeed or fail normally, the next one crashes in
    /// `mode`, and every later call fails until `recover()`.
    pub fn crash_after(mut self, ops: u64, mode: CrashMode) -> Self {
        self.crash_after = Some((ops, mode));
        self
    }

    /// The first call of `operation` (a trait method's name: `"rename_folder"`,
    /// `"write_file"`, `"open"`, …) crashes in `mode`, and every later call fails
    /// until `recover()`: a crash at one chosen step, whatever the timing.
    pub fn crash_on(mut self, operation: &'static str, mode: CrashMode) -> Self {
        self.crash_on = Some((operation, mode));
        self
    }
}

/// What to do with one operation.
pub(crate) enum Verdict {
    Go,
    Fail(Error),
    Crash(CrashMode),
}

/// The error every call gets during and after a crash: it stops the sync, as the
/// end of a process would, and is not retried.
pub(crate) fn crashed() -> Error {
    Error::Cancelled
}

#[derive(Debug)]
struct Injector {
    plan: FaultPlan,
    /// (operation, subject) → attempts so far, so that retries draw fresh numbers.
    attempts: HashMap<(&'static str, String), u64>,
    operations: u64,
    faults: u64,
    /// The absolute operation count after which the next operation crashes.
    crash_at: Option<(u64, CrashMode)>,
    /// The operation whose first call crashes.
    crash_on: Option<(&'static str, CrashMode)>,
    crashed: bool,
    drive_full: bool,
}

/// The shared switchboard of one wrapper (clones of the wrapper share it).
#[derive(Clone, Debug)]
pub(crate) struct Faults {
    service: &'static str,
    inner: Arc<Mutex<Injector>>,
}

/// FNV-1a: a stable hash, the same on every platform and Rust version.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff; // separates ("ab", "c") from ("a", "bc")
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl Faults {
    pub(crate) fn new(service: &'static str, plan: FaultPlan) -> Self {
        Self {
            service,
            inner: Arc::new(Mutex::new(Injector {
                crash_at: plan.crash_after,
                crash_on: plan.crash_on,
                drive_full: plan.drive_full,
                plan,
                attempts: HashMap::new(),
                operations: 0,
                faults: 0,
                crashed: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Injector> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one operation on `subject` and decides its fate.
    pub(crate) fn decide(&self, operation: &'static str, subject: &str) -> Verdict {
        let service = self.service;
        let mut inj = self.lock();
        inj.operations += 1;
        if inj.crashed {
            inj.faults += 1;
            return Verdict::Fail(crashed());
        }
        if let Some((at, mode)) = inj.crash_at
            && inj.operations > at
        {
            inj.crash_at = None;
            inj.crashed = true;
            inj.faults += 1;
            return Verdict::Crash(mode);
        }
        if let Some((on, mode)) = inj.crash_on
            && on == operation
        {
            inj.crash_on = None;
            inj.crashed = true;
            inj.faults += 1;
            return Verdict::Crash(mode);
        }
        let attempt = inj
            .attempts
            .entry((operation, subject.to_owned()))
            .and_modify(|n| *n += 1)
            .or_insert(0);
        let attempt = *attempt;
        let seed = fnv1a(&[
            &inj.plan.seed.to_le_bytes(),
            operation.as_bytes(),
            subject.as_bytes(),
            &attempt.to_le_bytes(),
        ]);
        let roll: f64 = SmallRng::seed_from_u64(seed).gen_range(0.0..1.0);
        let plan = &inj.plan;
        let what = format!("{operation} {subject}");
        let error = if roll < plan.transient {
            Error::Transient {
                service,
                operation: what,
                message: format!("injected transient failure (seed {})", plan.seed),
                retry_after: None,
            }
        } else if roll < plan.transient + plan.rate_limited {
            Error::RateLimited {
                service,
                operation: what,
                retry_after: Some(plan.retry_after),
            }
        } else if roll < plan.transient + plan.rate_limited + plan.permanent {
            Error::Permanent {
                service,
                operation: what,
                message: format!("injected permanent failure (seed {})", plan.seed),
            }
        } else {
            return Verdict::Go;
        };
        inj.faults += 1;
        Verdict::Fail(error)
    }

    /// Whether the drive is full; counts a fault when it is.
    pub(crate) fn full_drive_fault(&self) -> bool {
        let mut inj = self.lock();
        if inj.drive_full {
            inj.faults += 1;
        }
        inj.drive_full
    }

    pub(crate) fn drive_is_full(&self) -> bool {
        self.lock().drive_full
    }

    pub(crate) fn set_drive_full(&self, full: bool) {
        self.lock().drive_full = full;
    }

    pub(crate) fn crash_after(&self, ops: u64, mode: CrashMode) {
        let mut inj = self.lock();
        inj.crash_at = Some((inj.operations + ops, mode));
    }

    pub(crate) fn recover(&self) {
        self.lock().crashed = false;
    }

    pub(crate) fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    pub(crate) fn operations(&self) -> u64 {
        self.lock().operations
    }

    pub(crate) fn faults(&self) -> u64 {
        self.lock().faults
    }
}

/// The controls both wrappers share, written once.
macro_rules! fault_controls {
    () => {
        /// Operations seen so far (calls, and receipts read from streams).
        pub fn operations(&self) -> u64 {
            self.faults.operations()
        }

        /// Faults injected so far (failed calls, crashes, full-drive refusals).
        pub fn faults(&self) -> u64 {
            self.faults.faults()
        }

        /// Crashes the operation that follows the next `ops` ones, in `mode`.
        pub fn crash_after(&self, ops: u64, mode: $crate::testkit::faults::CrashMode) {
            self.faults.crash_after(ops, mode);
        }

        /// Whether a crash happened and [`recover`](Self::recover) was not called since.
        pub fn is_crashed(&self) -> bool {
            self.faults.is_crashed()
        }

        /// Ends a crash: calls go through again (a restarted process).
        pub fn recover(&self) {
            self.faults.recover();
        }

        /// The wrapped implementation.
        pub fn inner(&self) -> &S {
            &self.inner
        }
    };
}
pub(crate) use fault_controls;

#[cfg(test)]
mod tests;
