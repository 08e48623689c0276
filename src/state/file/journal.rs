//! The journal's format, and the one rule for its torn last line.
//!
//! The journal holds one [`StateChange`] per line, as JSON, each line ending with a
//! newline. Only an append that did not finish (a crash, a full disk) can leave a line
//! damaged, and only the last one: its bytes may stop anywhere (inside a multi-byte
//! character too), lack their newline, or, on file systems that write pages out of order,
//! hold zeros. So the last line is judged as bytes, and it is *torn* when it lacks its
//! newline, is not UTF-8 or is not well-formed JSON. A torn line was never acknowledged:
//! [`parse`] ignores it, and [`end_of_whole_lines`] tells the next append where to cut it
//! off. Any other line that cannot be read is reported, never skipped: in the middle,
//! a torn line is corruption; anywhere, a well-formed change this version does not know
//! may come from a newer receipt-sync.

use crate::error::{Error, Result};
use crate::fs_util::open_private;
use crate::state::StateChange;
use serde_json::error::Category;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Why a line is not a change.
enum Unreadable {
    /// Cut or garbled by an append that did not finish.
    Torn(String),
    /// Well-formed JSON, but not a change this version knows.
    Unknown(serde_json::Error),
}

/// A line as the journal holds it, newline included.
fn decode(line: &[u8]) -> std::result::Result<StateChange, Unreadable> {
    let Some(json) = line.strip_suffix(b"\n") else {
        return Err(Unreadable::Torn("no newline at its end".into()));
    };
    // `from_slice` checks UTF-8 itself: bad bytes are a syntax error, like bad JSON.
    serde_json::from_slice(json).map_err(|e| match e.classify() {
        Category::Data => Unreadable::Unknown(e),
        Category::Syntax | Category::Eof | Category::Io => Unreadable::Torn(e.to_string()),
    })
}

/// The changes in a journal's bytes, in order, without a torn last line.
pub(super) fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<StateChange>> {
    let mut changes = Vec::new();
    let mut lines = bytes.split_inclusive(|&b| b == b'\n').peekable();
    let mut number = 0usize;
    while let Some(line) = lines.next() {
        number += 1;
        let is_last = lines.peek().is_none();
        match decode(line) {
            Ok(change) => changes.push(change),
            Err(Unreadable::Torn(why)) if is_last => {
                tracing::warn!(
                    path = %path.display(),
                    line = number,
                    %why,
                    "ignoring the torn last line of the state journal (an append that did not finish)"
                );
            }
            Err(Unreadable::Torn(why)) => {
                return Err(Error::State {
                    path: path.to_owned(),
                    detail: format!(
                        "journal line {number} is corrupt ({why}); move the file aside to start over"
                    ),
                });
            }
            Err(Unreadable::Unknown(e)) => {
                return Err(Error::State {
                    path: path.to_owned(),
                    detail: format!(
                        "journal line {number} is not a change this receipt-sync knows ({e}); if a newer receipt-sync wrote it, upgrade, otherwise move the file aside to start over"
                    ),
                });
            }
        }
    }
    Ok(changes)
}

/// How far the journal's whole lines go: its length, less a torn last line (by the rule
/// [`parse`] follows). An append must start there, or a torn line would end up in the
/// middle, where it is corruption.
pub(super) fn end_of_whole_lines(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let start = last_line_start(file, len)?;
    let mut last = vec![0; usize::try_from(len - start).map_err(std::io::Error::other)?];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut last)?;
    Ok(match decode(&last) {
        Err(Unreadable::Torn(why)) => {
            tracing::warn!(
                dropped = len - start,
                %why,
                "cutting the torn last line off the state journal"
            );
            start
        }
        // A change, or one this version does not know: not ours to cut (`parse` reports it).
        Ok(_) | Err(Unreadable::Unknown(_)) => len,
    })
}

/// Where the last line of a journal of `len > 0` bytes starts: just after the newline
/// before it (the journal's own last byte, a newline or not, belongs to the last line).
fn last_line_start(file: &mut File, len: u64) -> std::io::Result<u64> {
    const STEP: u64 = 64 * 1024;
    let mut end = len - 1;
    let mut chunk = Vec::new();
    while end > 0 {
        let from = end.saturating_sub(STEP);
        chunk.resize(
            usize::try_from(end - from).map_err(std::io::Error::other)?,
            0,
        );
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(from + i as u64 + 1);
        }
        end = from;
    }
    Ok(0)
}

/// Opens the journal (created if missing, readable by its owner only) to append to it
/// with [`append_at`].
///
/// Read-write, not append mode: appending starts by cutting a torn line off, and
/// Windows refuses to shorten a file opened for appending.
pub(super) fn open(path: &Path) -> std::io::Result<File> {
    open_private(
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true),
        path,
    )
}

/// Writes `lines` at `end` (the end of the journal's whole lines, see
/// [`end_of_whole_lines`]), cutting off what lies beyond, and makes them durable.
pub(super) fn append_at(file: &mut File, end: u64, lines: &[u8]) -> std::io::Result<()> {
    if file.metadata()?.len() > end {
        file.set_len(end)?;
    }
    let written = file
        .seek(SeekFrom::Start(end))
        .and_then(|_| file.write_all(lines))
        .and_then(|()| file.sync_data());
    if written.is_err() {
        // A full disk can take part of the lines. Once a later append succeeds, a partial
        // line would sit in the middle of the journal, where it is corruption: cut it off
        // at once (shrinking needs no space).
        if let Err(cut) = file.set_len(end).and_then(|()| file.sync_data()) {
            tracing::warn!(%cut, "could not cut a partial journal line");
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AccountId;
    use crate::source::Watermark;

    fn line(watermark: &str) -> Vec<u8> {
        let mut line = serde_json::to_vec(&StateChange::WatermarkAdvanced {
            account: AccountId::new("acc"),
            watermark: Watermark::new(watermark),
        })
        .unwrap();
        line.push(b'\n');
        line
    }

    /// `parse` and `end_of_whole_lines` follow one rule: what the first ignores as torn is
    /// exactly what the second cuts off.
    #[test]
    fn what_parse_ignores_is_what_the_next_append_cuts() {
        let good = [line("w1"), line("é🥐")].concat();
        let tails: [&[u8]; 7] = [
            b"",
            b"{\"watermark_adv",
            b"\n",
            b"\0\0\0\0\n",
            b"{\"watermark_advanced\":{\"account\":\"acc\",\"watermark\":\"\xf0\x9f",
            b"{\"watermark_advanced\":\"\xff\"}\n",
            // A whole change, but its newline never made it: never acknowledged.
            b"{\"watermark_advanced\":{\"account\":\"acc\",\"watermark\":\"w3\"}}",
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.journal");
        for tail in tails {
            let journal = [&good[..], tail].concat();
            std::fs::write(&path, &journal).unwrap();
            let changes = parse(&path, &journal).unwrap();
            assert_eq!(changes.len(), 2, "{:?}", String::from_utf8_lossy(tail));
            let end = end_of_whole_lines(&mut open(&path).unwrap()).unwrap();
            assert_eq!(
                end,
                good.len() as u64,
                "{:?}",
                String::from_utf8_lossy(tail)
            );
        }
    }

    /// Appending cuts what lies past `end` and writes exactly there.
    #[test]
    fn append_at_replaces_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.journal");
        let good = line("w1");
        std::fs::write(
            &path,
            [&good[..], b"{\"torn-and-long-enough-to-outlast"].concat(),
        )
        .unwrap();
        let mut file = open(&path).unwrap();
        append_at(&mut file, good.len() as u64, &line("w2")).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            [line("w1"), line("w2")].concat()
        );
    }

    /// The journal is never opened in append mode, in which Windows refuses to cut a file
    /// (`set_len`): cutting a torn line off must work on every platform. Linux shows an
    /// open file's flags in /proc.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_journal_is_not_opened_in_append_mode() {
        use std::os::fd::AsRawFd;
        const O_APPEND: u32 = 0o2000;
        let dir = tempfile::tempdir().unwrap();
        let file = open(&dir.path().join("state.journal")).unwrap();
        let info =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).unwrap();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .map(|f| u32::from_str_radix(f.trim(), 8).unwrap())
            .expect("fdinfo shows the flags");
        assert_eq!(flags & O_APPEND, 0, "flags {flags:o}");
    }
}
