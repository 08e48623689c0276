//! A [`SyncReport`] for a person: what was read, what was done, what failed and why
//! the run stopped, in that order, each line true to the numbers.
//!
//! The shape, line by line:
//!
//! ```text
//! Sync complete in 1.2 s.                 (or "incomplete", or "stopped after")
//!   settings: …                            (only when the run changed them)
//! Read 0 new or changed receipts; uploaded 3 left from an earlier run (5.9 KiB written).
//! 2 failed; the next sync retries them:
//!   failed: …
//!   account … could not be read in full; the next sync reads it again
//!   1 file(s) found in place; recorded on the next run
//!   uploaded what fits, the oldest first: … / waiting for space: …   (a full drive)
//! Stopped: <the error's own message>
//! ```
//!
//! The stop line is the error's `Display` (a full drive's in the words of the
//! command's one-line reason), so a stop reason reads the same here as anywhere else.

use super::events::SyncReport;
use crate::error::{Error, human_bytes, human_bytes_up};
use std::fmt;

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.duration.as_secs_f64();
        if self.stopped.is_some() {
            writeln!(f, "Sync stopped after {seconds:.1} s.")?;
        } else if self.is_complete() {
            writeln!(f, "Sync complete in {seconds:.1} s.")?;
        } else {
            writeln!(f, "Sync incomplete in {seconds:.1} s.")?;
        }
        if let Some(change) = &self.settings_change {
            writeln!(f, "  settings: {change}")?;
        }
        writeln!(f, "{}.", self.read_and_done())?;
        let failed = self.failures.len();
        if failed > 0 {
            writeln!(f, "{failed} failed; the next sync retries them:")?;
        }
        for failure in &self.failures {
            // A message's detail lines stay under it.
            writeln!(f, "  failed: {}", failure.message.replace('\n', "\n  "))?;
        }
        for unread in &self.unread_accounts {
            writeln!(
                f,
                "  account {} could not be read in full; the next sync reads it again",
                unread.name
            )?;
        }
        if self.deferred > 0 {
            writeln!(
                f,
                "  {} file(s) found in place; recorded on the next run",
                self.deferred
            )?;
        }
        if !self.waiting_for_space.is_empty() {
            writeln!(
                f,
                "  uploaded what fits, the oldest first: {} receipt(s), {}",
                self.count("upload"),
                human_bytes(self.bytes_written)
            )?;
            writeln!(
                f,
                "  waiting for space: {} receipt(s), {}; nothing is lost: the next sync archives them",
                self.waiting_for_space.len(),
                human_bytes(self.bytes_waiting)
            )?;
        }
        match &self.stopped {
            // The same words and numbers as the command's one-line reason.
            Some(Error::QuotaExceeded { needed, remaining }) => writeln!(
                f,
                "Stopped: the drive is full: the receipts left need {} more, {} are left; free up or buy space, then sync again",
                human_bytes_up(*needed),
                human_bytes(*remaining)
            )?,
            Some(stop) => writeln!(f, "Stopped: {stop}")?,
            None => {}
        }
        Ok(())
    }
}

impl SyncReport {
    /// "Read N new or changed receipts; <what was done>".
    fn read_and_done(&self) -> String {
        let read = self.receipts_read;
        let mut line = format!("Read {read} new or changed {}", plural(read, "receipt"));
        let done = self.done_phrases();
        if done.is_empty() {
            line.push_str(if self.stopped.is_some() {
                "; nothing was archived before the run stopped"
            } else if self.is_complete() {
                "; nothing else to do: every receipt is in place"
            } else {
                "; nothing was archived"
            });
        } else {
            line.push_str("; ");
            line.push_str(&done.join(", "));
        }
        if self.bytes_written > 0 {
            line.push_str(&format!(" ({} written)", human_bytes(self.bytes_written)));
        }
        line
    }

    /// One phrase per kind of action carried out, uploads first.
    fn done_phrases(&self) -> Vec<String> {
        let read = self.receipts_read;
        let mut phrases = Vec::new();
        let uploaded = self.count("upload") as u64;
        if uploaded > 0 {
            // An upload of a receipt not read this run is one an earlier run read and
            // left (failed, stopped, or brought back by a reset).
            phrases.push(if read == 0 {
                format!("uploaded {uploaded} left from an earlier run")
            } else if uploaded > read {
                format!(
                    "uploaded {uploaded} ({} of them left from an earlier run)",
                    uploaded - read
                )
            } else {
                format!("uploaded {uploaded}")
            });
        }
        for (kind, n) in self.done.iter().filter(|(_, n)| **n > 0) {
            let phrase = match kind.as_str() {
                "upload" => continue,
                "adopt" => format!("recorded {n} {} already in place", plural(*n, "file")),
                "create-folder" => format!("created {n} {}", plural(*n, "folder")),
                "rename-folder" => format!("renamed {n} {}", plural(*n, "folder")),
                "tombstone" => format!(
                    "set aside {n} {} whose folder was deleted",
                    plural(*n, "receipt")
                ),
                "vanished" => format!(
                    "forgot {n} {} the bank no longer has",
                    plural(*n, "receipt")
                ),
                other => format!("{other}: {n}"),
            };
            phrases.push(phrase);
        }
        phrases
    }
}

fn plural(n: impl TryInto<u64>, word: &str) -> String {
    if n.try_into().is_ok_and(|n| n == 1) {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests;
