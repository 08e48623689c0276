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

/// A quiet read (since the latest watermark) of a large bank gives its checkpoint
/// alone. (What it costs, which used to be a walk and a clone of every receipt, is
/// measured by `benches/state_quiet.rs`, not here.)
#[test]
fn a_quiet_read_of_a_large_bank_gives_its_checkpoint_alone() {
    let s = InMemorySource::new();
    let a = s.add_account_named("a", "Main");
    for i in 0..10_000 {
        s.add_receipt(
            InMemorySource::receipt(&format!("r{i}"), &a, day(1), "L", -1),
            "x",
        );
    }
    let latest = Some(watermark(s.data().revision));
    let quiet = ReceiptQuery::all().since(latest.clone());
    assert_eq!(
        s.list(&a, &quiet).unwrap(),
        [SourceEvent::Checkpoint(latest.clone().unwrap())]
    );
}

/// The source's contract, computed by walking every receipt and transaction.
mod naive {
    use super::*;

    #[derive(Default)]
    pub struct Bank {
        pub receipts: BTreeMap<ReceiptId, (Receipt, u64)>,
        pub transactions: BTreeMap<TransactionId, (BankTransaction, u64)>,
        pub revision: u64,
    }

    impl Bank {
        fn bump(&mut self) -> u64 {
            self.revision += 1;
            self.revision
        }

        pub fn add_receipt(&mut self, receipt: Receipt) {
            let revision = self.bump();
            self.receipts
                .insert(receipt.id.clone(), (receipt, revision));
        }

        pub fn edit_receipt(&mut self, id: &ReceiptId, edit: impl FnOnce(&mut Receipt)) {
            if self.receipts.contains_key(id) {
                let revision = self.bump();
                let (receipt, at) = self.receipts.get_mut(id).unwrap();
                edit(receipt);
                *at = revision;
            }
        }

        fn retransact(&mut self, id: &TransactionId, t: &Transaction, revision: u64) {
            for (receipt, at) in self.receipts.values_mut() {
                if &receipt.transaction.id == id {
                    receipt.transaction = t.clone();
                    *at = revision;
                }
            }
        }

        pub fn edit_transaction(&mut self, id: &ReceiptId, edit: impl FnOnce(&mut Transaction)) {
            let Some((receipt, _)) = self.receipts.get(id) else {
                return;
            };
            let mut t = receipt.transaction.clone();
            let old = t.id.clone();
            edit(&mut t);
            let revision = self.bump();
            self.retransact(&old, &t, revision);
            if let Some((listed, at)) = self.transactions.get_mut(&old) {
                listed.transaction = t;
                *at = revision;
            }
        }

        pub fn add_transaction(&mut self, t: BankTransaction) {
            let revision = self.bump();
            self.transactions
                .insert(t.transaction.id.clone(), (t, revision));
        }

        pub fn edit_bank_transaction(
            &mut self,
            id: &TransactionId,
            edit: impl FnOnce(&mut BankTransaction),
        ) {
            if !self.transactions.contains_key(id) {
                return;
            }
            let revision = self.bump();
            let (listed, at) = self.transactions.get_mut(id).unwrap();
            edit(listed);
            *at = revision;
            let t = listed.transaction.clone();
            self.retransact(id, &t, revision);
        }

        pub fn list(
            &self,
            account: &AccountId,
            query: &ReceiptQuery,
            every: Option<usize>,
        ) -> Vec<SourceEvent> {
            let since = query
                .since
                .as_ref()
                .map_or(0, |m| m.as_str().parse().unwrap());
            let eligible = |t: &Transaction| {
                &t.account_id == account
                    && query
                        .start_date
                        .is_none_or(|day| t.emitted_at.date_naive() >= day)
                    && (query.include_declined || t.status != TransactionStatus::Declined)
            };
            let mut matching: Vec<(u64, SourceEvent)> = Vec::new();
            let mut transactions: BTreeMap<&TransactionId, (BankTransaction, u64)> =
                (self.transactions.iter())
                    .filter(|(_, (listed, _))| eligible(&listed.transaction))
                    .map(|(id, (listed, at))| {
                        let mut listed = listed.clone();
                        listed.receipts.clear();
                        (id, (listed, *at))
                    })
                    .collect();
            for (receipt, revision) in self.receipts.values() {
                let t = &receipt.transaction;
                if !eligible(t) {
                    continue;
                }
                let (listed, at) = transactions
                    .entry(&t.id)
                    .or_insert_with(|| (BankTransaction::new(t.clone()), 0));
                listed.receipts.push(receipt.id.clone());
                *at = (*at).max(*revision);
                if *revision > since {
                    matching.push((*revision, SourceEvent::Receipt(Box::new(receipt.clone()))));
                }
            }
            for (listed, at) in transactions.into_values() {
                if at > since {
                    matching.push((at, SourceEvent::Transaction(Box::new(listed))));
                }
            }
            matching
                .sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| event_key(x).cmp(&event_key(y))));
            let mut events = Vec::new();
            let mut receipts = 0;
            for (i, (revision, event)) in matching.iter().enumerate() {
                events.push(event.clone());
                receipts += usize::from(matches!(event, SourceEvent::Receipt(_)));
                let last_of_revision = matching.get(i + 1).is_none_or(|(next, _)| next != revision);
                if let Some(n) = every
                    && receipts >= n
                    && last_of_revision
                    && i + 1 < matching.len()
                {
                    receipts = 0;
                    events.push(SourceEvent::Checkpoint(watermark(*revision)));
                }
            }
            events.push(SourceEvent::Checkpoint(watermark(self.revision.max(since))));
            events
        }
    }
}

mod agreement {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        AddReceipt {
            id: u8,
            account: bool,
            tx: u8,
            day: u32,
            declined: bool,
        },
        EditReceipt {
            id: u8,
            how: u8,
            to: u8,
        },
        EditTransaction {
            id: u8,
            how: u8,
            to: u8,
        },
        AddTransaction {
            tx: u8,
            account: bool,
            day: u32,
            declined: bool,
        },
        EditBankTransaction {
            tx: u8,
            how: u8,
            to: u8,
        },
        RemoveReceipt {
            id: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..8u8, any::<bool>(), 0..5u8, 1..5u32, prop::bool::weighted(0.2))
                .prop_map(|(id, account, tx, day, declined)| Op::AddReceipt { id, account, tx, day, declined }),
            2 => (0..8u8, 0..5u8, 0..8u8).prop_map(|(id, how, to)| Op::EditReceipt { id, how, to }),
            2 => (0..8u8, 0..5u8, 0..8u8).prop_map(|(id, how, to)| Op::EditTransaction { id, how, to }),
            2 => (0..5u8, any::<bool>(), 1..5u32, prop::bool::weighted(0.2))
                .prop_map(|(tx, account, day, declined)| Op::AddTransaction { tx, account, day, declined }),
            1 => (0..5u8, 0..5u8, 0..8u8).prop_map(|(tx, how, to)| Op::EditBankTransaction { tx, how, to }),
            1 => (0..8u8).prop_map(|id| Op::RemoveReceipt { id }),
        ]
    }

    fn account(b: bool) -> AccountId {
        AccountId::new(if b { "b" } else { "a" })
    }

    fn transaction(tx: u8, account_b: bool, d: u32, declined: bool) -> Transaction {
        let mut t = InMemorySource::receipt("x", &account(account_b), day(d), "L", -1).transaction;
        t.id = TransactionId::new(format!("t{tx}"));
        if declined {
            t.status = TransactionStatus::Declined;
        }
        t
    }

    /// One of a few edits of a transaction, some of them moving it elsewhere.
    fn edit_transaction(t: &mut Transaction, how: u8, to: u8) {
        match how {
            0 => t.label.push('!'),
            1 => {
                t.status = if t.status == TransactionStatus::Declined {
                    TransactionStatus::Completed
                } else {
                    TransactionStatus::Declined
                }
            }
            2 => t.account_id = account(to % 2 == 1),
            3 => t.id = TransactionId::new(format!("t{}", to % 5)),
            _ => {
                t.emitted_at = day(1 + u32::from(to % 4))
                    .and_time(NaiveTime::MIN)
                    .and_utc()
            }
        }
    }

    fn play(s: &InMemorySource, bank: &mut naive::Bank, op: &Op) {
        let rid = |id: u8| ReceiptId::new(format!("r{id}"));
        match *op {
            Op::AddReceipt {
                id,
                account: b,
                tx,
                day: d,
                declined,
            } => {
                let mut r =
                    InMemorySource::receipt(&format!("r{id}"), &account(b), day(d), "L", -1);
                r.transaction = transaction(tx, b, d, declined);
                let r = s.add_receipt(r, format!("bytes of r{id}"));
                bank.add_receipt(r);
            }
            Op::EditReceipt { id, how, to } => {
                let edit = |r: &mut Receipt| match how {
                    0 => r.id = rid(to),
                    1 => r.file_name.push('~'),
                    _ => edit_transaction(&mut r.transaction, how - 2, to),
                };
                let found = s.edit_receipt(&rid(id), edit).is_ok();
                assert_eq!(found, bank.receipts.contains_key(&rid(id)));
                bank.edit_receipt(&rid(id), edit);
            }
            Op::EditTransaction { id, how, to } => {
                let _ = s.edit_transaction(&rid(id), |t| edit_transaction(t, how, to));
                bank.edit_transaction(&rid(id), |t| edit_transaction(t, how, to));
            }
            Op::AddTransaction {
                tx,
                account: b,
                day: d,
                declined,
            } => {
                let t = BankTransaction::new(transaction(tx, b, d, declined))
                    .with_note(Some(format!("n{tx}")));
                s.add_transaction(t.clone());
                bank.add_transaction(t);
            }
            Op::EditBankTransaction { tx, how, to } => {
                let id = TransactionId::new(format!("t{tx}"));
                let edit = |t: &mut BankTransaction| match how {
                    0 => t.note = Some(format!("edited {to}")),
                    _ => edit_transaction(&mut t.transaction, how - 1, to),
                };
                let _ = s.edit_bank_transaction(&id, edit);
                bank.edit_bank_transaction(&id, edit);
            }
            Op::RemoveReceipt { id } => {
                assert_eq!(
                    s.remove_receipt(&rid(id)),
                    bank.receipts.remove(&rid(id)).is_some()
                );
            }
        }
    }

    proptest! {
        #[test]
        fn listings_agree_with_a_naive_bank(ops in prop::collection::vec(op(), 0..40)) {
            let s = InMemorySource::new();
            s.add_account_named("a", "A");
            s.add_account_named("b", "B");
            let mut bank = naive::Bank::default();
            for op in &ops {
                play(&s, &mut bank, op);
            }
            for every in [None, Some(1), Some(2)] {
                s.set_checkpoint_every(every);
                for account in [account(false), account(true)] {
                    for since in (0..=bank.revision + 1).map(|r| Some(watermark(r))).chain([None]) {
                        for start_date in [None, Some(day(3))] {
                            for declined in [false, true] {
                                let query = ReceiptQuery::all().since(since.clone()).start_date(start_date).include_declined(declined);
                                prop_assert_eq!(s.list(&account, &query).unwrap(), bank.list(&account, &query, every), "{:?}", query);
                            }
                        }
                    }
                }
            }
            prop_assert_eq!(s.len(), bank.receipts.len());
            for (id, (receipt, _)) in &bank.receipts {
                prop_assert_eq!(s.get(id), Some(receipt.clone()));
            }
        }
    }
}
