//! What a conformance suite reports, and the assertions the suites share.
//!
//! Every suite panics at the first check that fails, with a message naming the
//! check and saying what was expected and what was found; when all pass it returns
//! a [`SuiteReport`] saying which checks ran and which were skipped, and why.

use crate::error::{ErrorKind, Result};
use std::fmt;

/// The checks a suite ran, and those it skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuiteReport {
    /// Checks that ran and passed, in order.
    pub passed: Vec<&'static str>,
    /// Checks that did not apply, with the reason (a capability not claimed, a
    /// precondition the data does not meet).
    pub skipped: Vec<(&'static str, &'static str)>,
}

impl SuiteReport {
    /// Whether `check` ran and passed.
    pub fn ran(&self, check: &str) -> bool {
        self.passed.contains(&check)
    }

    pub(crate) fn pass(&mut self, check: &'static str) {
        self.passed.push(check);
    }

    pub(crate) fn skip(&mut self, check: &'static str, why: &'static str) {
        self.skipped.push((check, why));
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} skipped",
            self.passed.len(),
            self.skipped.len()
        )?;
        for (check, why) in &self.skipped {
            write!(f, "; {check}: {why}")?;
        }
        Ok(())
    }
}

/// The value of `result`, or a panic naming the check and the error.
#[track_caller]
pub(crate) fn ok<T>(check: &str, what: &str, result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!(
            "[{check}] {what}: expected success, found error ({:?}): {e}",
            e.kind()
        ),
    }
}

/// Panics unless `result` is an error of kind `kind`.
#[track_caller]
pub(crate) fn err<T: fmt::Debug>(check: &str, what: &str, result: Result<T>, kind: ErrorKind) {
    match result {
        Err(e) if e.kind() == kind => {}
        Err(e) => panic!(
            "[{check}] {what}: expected a {kind:?} error, found {:?}: {e}",
            e.kind()
        ),
        Ok(value) => {
            panic!("[{check}] {what}: expected a {kind:?} error, found success: {value:?}")
        }
    }
}

/// Panics unless `found == expected`.
#[track_caller]
pub(crate) fn eq<T: PartialEq + fmt::Debug>(check: &str, what: &str, expected: T, found: T) {
    if expected != found {
        panic!("[{check}] {what}: expected {expected:?}, found {found:?}");
    }
}

/// Panics with `message` unless `condition` holds.
#[track_caller]
pub(crate) fn ensure(check: &str, condition: bool, message: impl FnOnce() -> String) {
    if !condition {
        panic!("[{check}] {}", message());
    }
}
