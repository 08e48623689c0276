use super::*;
use crate::error::{Error, ErrorKind};
use crate::sync::events::Failure;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

fn report(read: u64, done: &[(&str, usize)]) -> SyncReport {
    SyncReport {
        duration: Duration::from_millis(1200),
        receipts_read: read,
        done: done.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        ..SyncReport::default()
    }
}

fn failure(message: &str) -> Failure {
    Failure {
        receipt: None,
        path: None,
        kind: ErrorKind::Transient,
        message: message.to_owned(),
    }
}

fn full_drive() -> Error {
    Error::quota_exceeded(10, 4)
}

#[test]
fn summaries_say_what_was_read_done_failed_and_why_it_stopped() {
    let stopped = |mut r: SyncReport| {
        r.stopped = Some(full_drive());
        r
    };
    let failed = |mut r: SyncReport| {
        r.failures = vec![
            failure("upload a: timed out"),
            failure("upload b: timed out"),
        ];
        r
    };
    // (report, lines it shows, in this order, and texts it must not show)
    let cases: Vec<(SyncReport, Vec<String>, Vec<&str>)> = vec![
        (
            report(0, &[("upload", 3)]),
            vec![
                "Sync complete in 1.2 s.".into(),
                "Read 0 new or changed receipts; uploaded 3 left from an earlier run.".into(),
            ],
            vec!["nothing", "receipts read"],
        ),
        (
            report(1, &[("upload", 3), ("create-folder", 1)]),
            vec![
                "Read 1 new or changed receipt; uploaded 3 (2 of them left from an earlier run), created 1 folder."
                    .into(),
            ],
            vec!["nothing"],
        ),
        (
            report(5, &[("upload", 2)]),
            vec!["Read 5 new or changed receipts; uploaded 2.".into()],
            vec!["earlier run"],
        ),
        (
            report(0, &[]),
            vec![
                "Sync complete in 1.2 s.".into(),
                "Read 0 new or changed receipts; nothing else to do: every receipt is in place."
                    .into(),
            ],
            vec!["failed", "Stopped"],
        ),
        (
            stopped(report(4, &[])),
            vec![
                "Sync stopped after 1.2 s.".into(),
                "Read 4 new or changed receipts; nothing was archived before the run stopped."
                    .into(),
                "Stopped: the drive is full: the receipts left need 6 B more, 4 B are left; free up or buy space, then sync again".into(),
            ],
            vec!["nothing to do", "in place", "complete"],
        ),
        (
            stopped(failed(report(2, &[("upload", 1), ("adopt", 2)]))),
            vec![
                "Sync stopped after 1.2 s.".into(),
                "Read 2 new or changed receipts; uploaded 1, recorded 2 files already in place."
                    .into(),
                "2 failed; the next sync retries them:".into(),
                "  failed: upload a: timed out".into(),
                "Stopped: the drive is full: the receipts left need 6 B more, 4 B are left; free up or buy space, then sync again".into(),
            ],
            vec!["nothing", "earlier run"],
        ),
        (
            failed(report(0, &[])),
            vec![
                "Sync incomplete in 1.2 s.".into(),
                "Read 0 new or changed receipts; nothing was archived.".into(),
                "2 failed; the next sync retries them:".into(),
            ],
            vec!["in place", "stopped"],
        ),
    ];
    for (report, expected, absent) in cases {
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let mut at = 0;
        for line in &expected {
            let found = lines[at..]
                .iter()
                .position(|l| l == line)
                .unwrap_or_else(|| panic!("missing {line:?} (in order) in:\n{text}"));
            at += found + 1;
        }
        for word in absent {
            assert!(!text.contains(word), "{word:?} in:\n{text}");
        }
        check_consistent(&report, &text);
    }
}

/// Every line agrees with the numbers, and the lines come in their order.
fn check_consistent(report: &SyncReport, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines[0];
    assert_eq!(
        first.starts_with("Sync stopped"),
        report.stopped.is_some(),
        "{text}"
    );
    assert_eq!(
        first.starts_with("Sync complete"),
        report.is_complete(),
        "{text}"
    );
    let read_at = lines
        .iter()
        .position(|l| l.starts_with("Read "))
        .unwrap_or_else(|| panic!("no read line:\n{text}"));
    let read_line = lines[read_at];
    let read_said: u64 = read_line["Read ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{read_line}"));
    assert_eq!(read_said, report.receipts_read, "{text}");
    let uploaded = report.count("upload") as u64;
    assert_eq!(
        read_line.contains(&format!("uploaded {uploaded}")),
        uploaded > 0,
        "{text}"
    );
    assert_eq!(
        read_line.contains("earlier run"),
        uploaded > report.receipts_read,
        "{text}"
    );
    let says_nothing = read_line.contains("nothing");
    assert_eq!(
        says_nothing,
        report.done.values().all(|n| *n == 0),
        "{text}"
    );
    if read_line.contains("every receipt is in place") {
        assert!(report.is_complete(), "{text}");
    }
    if report.stopped.is_some() {
        assert!(
            !text.contains("nothing to do") && !text.contains("in place:"),
            "{text}"
        );
    }
    assert_eq!(
        read_line.contains(" written)"),
        report.bytes_written > 0,
        "{text}"
    );
    let failed_lines = lines.iter().filter(|l| l.starts_with("  failed: ")).count();
    assert_eq!(failed_lines, report.failures.len(), "{text}");
    let header = lines
        .iter()
        .position(|l| l.ends_with("failed; the next sync retries them:"));
    assert_eq!(header.is_some(), !report.failures.is_empty(), "{text}");
    if let Some(header) = header {
        assert!(header > read_at, "{text}");
        assert!(lines[header].starts_with(&format!("{} failed", report.failures.len())));
    }
    let stop = lines.iter().position(|l| l.starts_with("Stopped: "));
    assert_eq!(stop.is_some(), report.stopped.is_some(), "{text}");
    if let Some(stop) = stop {
        assert!(
            lines[stop + 1..].iter().all(|l| l.starts_with("  ")),
            "the stop reason comes last, with its detail lines:\n{text}"
        );
    }
}

fn any_report() -> impl Strategy<Value = SyncReport> {
    let kinds = prop::sample::select(vec![
        "upload",
        "adopt",
        "create-folder",
        "rename-folder",
        "tombstone",
        "vanished",
    ]);
    (
        0u64..6,
        prop::collection::btree_map(kinds, 0usize..5, 0..4),
        0u64..3,
        prop::collection::vec("[a-z ]{0,12}", 0..3),
        0u64..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(read, done, bytes, failures, deferred, stopped, occupied)| {
                let done: BTreeMap<String, usize> =
                    done.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
                let mut planned = BTreeMap::new();
                if occupied {
                    planned.insert("skip: target occupied".to_owned(), 1);
                }
                SyncReport {
                    receipts_read: read,
                    done,
                    bytes_written: bytes * 1000,
                    failures: failures.iter().map(|m| failure(m)).collect(),
                    deferred,
                    stopped: stopped.then(full_drive),
                    planned,
                    ..SyncReport::default()
                }
            },
        )
}

proptest! {
    #[test]
    fn no_line_contradicts_the_numbers(report in any_report()) {
        check_consistent(&report, &report.to_string());
    }
}
