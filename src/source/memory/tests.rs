use super::*;
use futures::TryStreamExt;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

async fn read(source: &InMemorySource, account: &AccountId, q: ReceiptQuery) -> Vec<SourceEvent> {
    source.receipts(account, &q).try_collect().await.unwrap()
}

fn ids(events: &[SourceEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Receipt(r) => Some(r.id.as_str()),
            SourceEvent::Transaction(_) | SourceEvent::Checkpoint(_) => None,
        })
        .collect()
}

fn last_mark(events: &[SourceEvent]) -> Watermark {
    match events.last() {
        Some(SourceEvent::Checkpoint(w)) => w.clone(),
        other => panic!("expected a final checkpoint, found {other:?}"),
    }
}

#[tokio::test]
async fn watermarks_yield_only_what_changed() {
    let s = InMemorySource::new();
    let a = s.add_account_named("a", "Main");
    s.add_receipt(InMemorySource::receipt("r1", &a, day(1), "One", -100), "1");
    s.add_receipt(InMemorySource::receipt("r2", &a, day(2), "Two", -200), "22");
    let all = read(&s, &a, ReceiptQuery::all()).await;
    assert_eq!(ids(&all), ["r1", "r2"]);
    let mark = last_mark(&all);

    let none = read(&s, &a, ReceiptQuery::all().since(Some(mark.clone()))).await;
    assert_eq!(ids(&none), Vec::<&str>::new());
    assert_eq!(last_mark(&none), mark, "an idle read keeps the watermark");

    s.edit_transaction(&"r1".into(), |t| t.label = "Renamed".into())
        .unwrap();
    let changed = read(&s, &a, ReceiptQuery::all().since(Some(mark))).await;
    assert_eq!(ids(&changed), ["r1"]);
    assert!(
        s.receipts(&a, &ReceiptQuery::all().since(Some(Watermark::new("x"))))
            .try_collect::<Vec<_>>()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn filters_and_intermediate_checkpoints() {
    let s = InMemorySource::new();
    let a = s.add_account_named("a", "Main");
    let b = s.add_account_named("b", "Other");
    for d in 1..=6 {
        s.add_receipt(
            InMemorySource::receipt(&format!("r{d}"), &a, day(d), "L", -1),
            "x",
        );
    }
    s.add_receipt(InMemorySource::receipt("other", &b, day(1), "L", -1), "x");
    s.edit_transaction(&"r6".into(), |t| t.status = TransactionStatus::Declined)
        .unwrap();
    s.set_checkpoint_every(Some(2));

    let events = read(&s, &a, ReceiptQuery::all().start_date(Some(day(2)))).await;
    assert_eq!(ids(&events), ["r2", "r3", "r4", "r5"]);
    let checkpoints = events
        .iter()
        .filter(|e| matches!(e, SourceEvent::Checkpoint(_)))
        .count();
    assert_eq!(checkpoints, 2, "one after r3, one at the end: {events:?}");

    let declined = read(&s, &a, ReceiptQuery::all().include_declined(true)).await;
    assert!(ids(&declined).contains(&"r6"));
    let unknown: Result<Vec<_>> = s
        .receipts(&"zz".into(), &ReceiptQuery::all())
        .try_collect()
        .await;
    assert!(matches!(unknown, Err(Error::NotFound { .. })));
    assert_eq!(s.list_calls(), 3);
}

#[tokio::test]
async fn open_streams_chunks_and_removed_is_not_found() {
    let s = InMemorySource::new();
    let a = s.add_account_named("a", "Main");
    s.set_chunk_size(4);
    let bytes: Vec<u8> = (0u8..10).collect();
    let r = s.add_receipt(
        InMemorySource::receipt("r1", &a, day(1), "L", -1),
        bytes.clone(),
    );
    assert_eq!(r.size, 10);
    let body = s.open(&r).await.unwrap();
    assert_eq!(body.len(), 10);
    let chunks: Vec<Bytes> = body.into_stream().try_collect().await.unwrap();
    assert_eq!(chunks.iter().map(Bytes::len).collect::<Vec<_>>(), [4, 4, 2]);
    assert_eq!(chunks.concat(), bytes);

    assert!(s.remove_receipt(&r.id));
    assert!(matches!(s.open(&r).await, Err(Error::NotFound { .. })));
    assert_eq!(s.opens(), 2);
    s.rename_account(&a, "Renamed").unwrap();
    assert_eq!(s.accounts().await.unwrap()[0].name, "Renamed");
    assert!(s.rename_account(&"nope".into(), "x").is_err());
}

fn transactions(events: &[SourceEvent]) -> Vec<(&str, Vec<&str>)> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Transaction(t) => Some((
                t.transaction.id.as_str(),
                t.receipts.iter().map(ReceiptId::as_str).collect(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn transactions_are_listed_with_or_without_receipts_in_the_same_read() {
    let s = InMemorySource::new();
    let a = s.add_account_named("a", "Main");
    s.add_receipt(InMemorySource::receipt("r1", &a, day(2), "Paid", -100), "1");
    let bare = InMemorySource::receipt("bare", &a, day(3), "No receipt", -500).transaction;
    s.add_transaction(
        BankTransaction::new(bare.clone()).with_note(Some("ask the supplier".into())),
    );
    let mut declined = InMemorySource::receipt("no", &a, day(4), "Refused", -9).transaction;
    declined.status = TransactionStatus::Declined;
    s.add_transaction(BankTransaction::new(declined));
    let early = InMemorySource::receipt("early", &a, day(1), "Early", -9).transaction;
    s.add_transaction(BankTransaction::new(early));

    let all = read(&s, &a, ReceiptQuery::all().start_date(Some(day(2)))).await;
    assert_eq!(s.list_calls(), 1, "one read, no request per transaction");
    assert_eq!(
        transactions(&all),
        [("tx-r1", vec!["r1"]), ("tx-bare", vec![])],
        "declined and early ones left out"
    );
    let mark = last_mark(&all);

    // A receipt arriving for the receipt-less transaction lists it again, naming it.
    let mut arrived = InMemorySource::receipt("r2", &a, day(3), "No receipt", -500);
    arrived.transaction = bare;
    s.add_receipt(arrived, "22");
    let since = read(&s, &a, ReceiptQuery::all().since(Some(mark))).await;
    assert_eq!(ids(&since), ["r2"]);
    assert_eq!(transactions(&since), [("tx-bare", vec!["r2"])]);
    let Some(SourceEvent::Transaction(t)) = since
        .iter()
        .find(|e| matches!(e, SourceEvent::Transaction(_)))
    else {
        unreachable!()
    };
    assert_eq!(t.note.as_deref(), Some("ask the supplier"));
}
