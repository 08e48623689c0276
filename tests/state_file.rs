//! The embedded state store: a binary base file written atomically, a journal, a lock.

use chrono::{TimeZone, Utc};
use receipt_sync::ErrorKind;
use receipt_sync::model::{
    AccountId, CurrencyCode, Money, Receipt, ReceiptId, Transaction, TransactionId,
    TransactionStatus,
};
use receipt_sync::source::Watermark;
use receipt_sync::state::{
    JsonFileStateStore, STATE_VERSION, StateChange, StateSettings, StateStore, SyncState,
};
use std::io::Write;

fn receipt(id: &str) -> Receipt {
    receipt_labelled(id, "Shop")
}

fn receipt_labelled(id: &str, label: &str) -> Receipt {
    Receipt {
        id: ReceiptId::new(id),
        file_name: "a.pdf".into(),
        content_type: None,
        size: 3,
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        transaction: Transaction {
            id: TransactionId::new("t"),
            account_id: AccountId::new("acc"),
            emitted_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            settled_at: None,
            amount: Money::new(-300, CurrencyCode::EUR),
            label: label.into(),
            status: TransactionStatus::Completed,
        },
    }
}

fn state_with(id: &str) -> SyncState {
    let mut state = SyncState::new(StateSettings {
        start_date: None,
        layout: Default::default(),
    });
    state.apply(&StateChange::ReceiptsSeen(vec![receipt(id)]));
    state
}

#[tokio::test]
async fn round_trip_and_journal_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    assert!(store.load().await.unwrap().is_none());
    let state = state_with("r1");
    store.save(&state).await.unwrap();
    assert_eq!(store.load().await.unwrap().unwrap(), state);

    let change = StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new("w1"),
    };
    store.record(std::slice::from_ref(&change)).await.unwrap();
    let mut expected = state.clone();
    expected.apply(&change);
    assert_eq!(store.load().await.unwrap().unwrap(), expected);

    // A save supersedes the journal.
    store.save(&expected).await.unwrap();
    assert!(!store.journal_path().exists());
    assert_eq!(store.load().await.unwrap().unwrap(), expected);
}

#[tokio::test]
async fn a_kill_before_the_rename_leaves_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let old = state_with("old");
    store.save(&old).await.unwrap();
    // What a kill between writing the temporary file and renaming it leaves behind.
    std::fs::write(
        dir.path().join(".state.bin.abc123.tmp"),
        b"RSSTATE\n\x02\0\0\0",
    )
    .unwrap();
    assert_eq!(store.load().await.unwrap().unwrap(), old);
    // And the next save still works.
    let new = state_with("new");
    store.save(&new).await.unwrap();
    assert_eq!(store.load().await.unwrap().unwrap(), new);
}

#[tokio::test]
async fn a_torn_last_journal_line_is_ignored_but_a_torn_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    let change = StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new("w"),
    };
    store.record(&[change]).await.unwrap();
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(store.journal_path())
        .unwrap();
    journal.write_all(b"{\"watermark_adv").unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(
        loaded.watermarks[&AccountId::new("acc")],
        Watermark::new("w")
    );

    journal.write_all(b"\n{\"vanished\":null}\n").unwrap();
    let err = store.load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("state.journal"), "{err}");
}

/// A crash mid-append leaves a torn last line; the next run appends before it saves. The
/// torn line is cut off first, so a second crash still leaves a readable state.
#[tokio::test]
async fn an_append_after_a_torn_line_cuts_it_off_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    let advance = |w: &str| StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new(w),
    };
    store.record(&[advance("w1")]).await.unwrap();
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(store.journal_path())
        .unwrap();
    journal.write_all(b"{\"watermark_adv").unwrap();

    store.record(&[advance("w2")]).await.unwrap();
    let loaded = store
        .load()
        .await
        .expect("no torn line in the middle")
        .unwrap();
    assert_eq!(
        loaded.watermarks[&AccountId::new("acc")],
        Watermark::new("w2")
    );
}

#[tokio::test]
async fn a_second_lock_fails_until_the_first_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let other = JsonFileStateStore::new(dir.path());
    let lock = store.lock().await.unwrap();
    let err = other.lock().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyRunning);
    assert!(err.to_string().contains("already running"), "{err}");
    drop(lock);
    other.lock().await.unwrap();
}

#[tokio::test]
async fn a_corrupt_state_is_an_error_that_names_the_file_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    for path in [store.state_path(), store.legacy_state_path()] {
        std::fs::write(&path, b"{not json").unwrap();
        let err = store.load().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::State);
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(err.to_string().contains(&*name), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
        std::fs::remove_file(&path).unwrap();
    }
}

#[tokio::test]
async fn a_state_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    // A format-1 file claiming a later format.
    let future = format!("{{\"version\":{}}}", STATE_VERSION + 1);
    std::fs::write(store.legacy_state_path(), &future).unwrap();
    let err = store.load().await.unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    assert_eq!(
        std::fs::read_to_string(store.legacy_state_path()).unwrap(),
        future
    );
    // A base file of a later format, whatever follows its number.
    let mut future = b"RSSTATE\n".to_vec();
    future.extend_from_slice(&(STATE_VERSION + 1).to_le_bytes());
    future.extend_from_slice(b"laid out some other way");
    std::fs::write(store.state_path(), &future).unwrap();
    let err = store.load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State);
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(err.to_string().contains("state.bin"), "{err}");
    assert_eq!(std::fs::read(store.state_path()).unwrap(), future);
}

/// The base file is positional: damaged bytes could read as another state. Every cut and
/// every changed byte of a real one is an error instead, never a panic nor a state that
/// differs from what was saved.
#[tokio::test]
async fn every_cut_and_every_changed_byte_of_the_base_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let mut state = state_with("r1");
    state.apply(&StateChange::ReceiptsSeen(vec![receipt_labelled(
        "r2",
        "Café ☕",
    )]));
    state.apply(&StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new("w"),
    });
    store.save(&state).await.unwrap();
    let whole = std::fs::read(store.state_path()).unwrap();
    assert_eq!(store.load().await.unwrap().unwrap(), state);
    let mut damaged: Vec<(Vec<u8>, String)> = (0..whole.len())
        .map(|len| (whole[..len].to_vec(), format!("cut at {len}")))
        .collect();
    for at in 0..whole.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bytes = whole.clone();
            bytes[at] ^= flip;
            damaged.push((bytes, format!("byte {at} ^ {flip:#x}")));
        }
    }
    damaged.push(([&whole[..], b"\0"].concat(), "a byte more".into()));
    for (bytes, what) in damaged {
        std::fs::write(store.state_path(), &bytes).unwrap();
        match store.load().await {
            Err(e) => assert_eq!(e.kind(), ErrorKind::State, "{what}: {e}"),
            Ok(loaded) => panic!("{what} loaded as {loaded:?}"),
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    store
        .record(&[StateChange::ReceiptsSeen(vec![receipt("s")])])
        .await
        .unwrap();
    let _lock = store.lock().await.unwrap();
    for path in [store.state_path(), store.journal_path(), store.lock_path()] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the bytes are there")
}

/// A crash mid-append can cut a line inside a multi-byte character: the journal is read
/// as bytes, so the line is torn like any other, and the next record cuts it off.
#[tokio::test]
async fn a_journal_cut_inside_a_multi_byte_character_loads_and_the_next_record_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    let seen = |id: &str, label: &str| StateChange::ReceiptsSeen(vec![receipt_labelled(id, label)]);
    store
        .record(&[seen("r1", "Café de la Gare")])
        .await
        .unwrap();
    store
        .record(&[seen("r2", "Boulangerie 🥐 Crème")])
        .await
        .unwrap();
    let bytes = std::fs::read(store.journal_path()).unwrap();
    // The croissant is four bytes: keep only its first.
    let cut = find(&bytes, "🥐".as_bytes()) + 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(store.journal_path())
        .unwrap()
        .set_len(cut as u64)
        .unwrap();

    let loaded = store
        .load()
        .await
        .expect("a torn last line is ignored, whatever its bytes")
        .unwrap();
    assert!(loaded.receipts.contains_key(&ReceiptId::new("r1")));
    assert!(!loaded.receipts.contains_key(&ReceiptId::new("r2")));

    store.record(&[seen("r3", "Épicerie ✓")]).await.unwrap();
    let loaded = store
        .load()
        .await
        .expect("the torn line was cut before the next record")
        .unwrap();
    let ids: Vec<_> = loaded.receipts.keys().map(ReceiptId::as_str).collect();
    assert_eq!(ids, ["r", "r1", "r3"]);
    assert_eq!(
        loaded.receipts[&ReceiptId::new("r3")].transaction.label,
        "Épicerie ✓"
    );
}

/// Every byte at which an append can stop: the lines before it load, the rest is torn,
/// and the next record lands after the last whole line.
#[tokio::test]
async fn every_cut_of_the_journal_loads_and_the_next_record_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    let base = state_with("r");
    store.save(&base).await.unwrap();
    let changes = [
        StateChange::ReceiptsSeen(vec![receipt_labelled("r1", "Crème brûlée 🍮")]),
        StateChange::WatermarkAdvanced {
            account: AccountId::new("acc"),
            watermark: Watermark::new("été-🌞"),
        },
    ];
    store.record(&changes).await.unwrap();
    let whole = std::fs::read(store.journal_path()).unwrap();
    let next = StateChange::ReceiptsSeen(vec![receipt_labelled("r9", "Thé 🍵")]);

    for cut in 0..=whole.len() {
        let kept = &whole[..cut];
        std::fs::write(store.journal_path(), kept).unwrap();
        let mut expected = base.clone();
        let whole_lines = kept.iter().filter(|&&b| b == b'\n').count();
        for change in &changes[..whole_lines] {
            expected.apply(change);
        }
        let loaded = store
            .load()
            .await
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(loaded.as_ref(), Some(&expected), "cut at {cut}");

        store.record(std::slice::from_ref(&next)).await.unwrap();
        expected.apply(&next);
        let loaded = store
            .load()
            .await
            .unwrap_or_else(|e| panic!("cut at {cut}, then a record: {e}"));
        assert_eq!(
            loaded.as_ref(),
            Some(&expected),
            "cut at {cut}, then a record"
        );
    }
}

/// Pages written out of order can leave the last line whole in length but garbled
/// (zeros, broken UTF-8) before its newline: it is torn too, and cut off, so it never
/// ends up in the middle.
#[tokio::test]
async fn a_garbled_last_line_with_its_newline_is_torn_and_cut_off() {
    for garbled in [
        &b"{\"receipts_seen\":[\0\0\0\0\n"[..],
        b"{\"watermark_advanced\xff\xfe\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonFileStateStore::new(dir.path());
        store.save(&state_with("r")).await.unwrap();
        let advance = |w: &str| StateChange::WatermarkAdvanced {
            account: AccountId::new("acc"),
            watermark: Watermark::new(w),
        };
        store.record(&[advance("w1")]).await.unwrap();
        let mut journal = std::fs::OpenOptions::new()
            .append(true)
            .open(store.journal_path())
            .unwrap();
        journal.write_all(garbled).unwrap();

        let loaded = store
            .load()
            .await
            .expect("a garbled last line is torn")
            .unwrap();
        assert_eq!(
            loaded.watermarks[&AccountId::new("acc")],
            Watermark::new("w1")
        );
        store.record(&[advance("w2")]).await.unwrap();
        let loaded = store
            .load()
            .await
            .expect("the garbled line was cut, not left in the middle")
            .unwrap();
        assert_eq!(
            loaded.watermarks[&AccountId::new("acc")],
            Watermark::new("w2")
        );
    }
}

/// A bad line in the middle cannot come from an unfinished append: it is reported as the
/// state's corruption, with its line number, never skipped, whatever its bytes.
#[tokio::test]
async fn a_line_in_the_middle_that_is_not_utf8_is_reported_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    let advance = |w: &str| StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new(w),
    };
    store.record(&[advance("w1")]).await.unwrap();
    let first = std::fs::read(store.journal_path()).unwrap();
    store.record(&[advance("w2")]).await.unwrap();
    let both = std::fs::read(store.journal_path()).unwrap();
    let mut journal = first.clone();
    journal.extend_from_slice(b"{\"watermark_advanced\":\"\xc3\"}\n");
    journal.extend_from_slice(&both[first.len()..]);
    std::fs::write(store.journal_path(), &journal).unwrap();

    let err = store.load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State, "{err}");
    let shown = err.to_string();
    assert!(shown.contains("state.journal"), "{shown}");
    assert!(shown.contains("line 2 is corrupt"), "{shown}");
    assert_eq!(
        std::fs::read(store.journal_path()).unwrap(),
        journal,
        "left as it was"
    );
}

/// A whole, well-formed line that is not a change this version knows was not torn by a
/// crash (a newer receipt-sync may have written it): it is reported, even last, rather
/// than dropped, and the next record leaves it in place.
#[tokio::test]
async fn a_last_line_this_version_does_not_know_is_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = JsonFileStateStore::new(dir.path());
    store.save(&state_with("r")).await.unwrap();
    let advance = StateChange::WatermarkAdvanced {
        account: AccountId::new("acc"),
        watermark: Watermark::new("w1"),
    };
    store.record(std::slice::from_ref(&advance)).await.unwrap();
    let mut journal = std::fs::OpenOptions::new()
        .append(true)
        .open(store.journal_path())
        .unwrap();
    journal
        .write_all(b"{\"change_from_the_future\":{\"at\":1}}\n")
        .unwrap();
    drop(journal);
    let before = std::fs::read(store.journal_path()).unwrap();

    let err = store.load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::State, "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(err.to_string().contains("upgrade"), "{err}");
    store.record(std::slice::from_ref(&advance)).await.unwrap();
    let after = std::fs::read(store.journal_path()).unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the line is still there"
    );
}
