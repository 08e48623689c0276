//! The accountant's index against a model of the bank: after a sync of any bank, every
//! `index.csv` lists exactly its period's eligible transactions (not declined, not
//! before the start date), each once, sorted by date, each with exactly the files
//! archived for its receipts; every period holding an archived receipt has one; and a
//! second sync writes nothing.
//!
//! The expected rows are computed here from what the test put in the bank, not with the
//! library's own grouping, so a mistake there cannot hide itself.

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use receipt_sync::index::{IndexSettings, Separator};
use receipt_sync::model::{AccountId, ReceiptId, TransactionStatus};
use receipt_sync::sink::InMemorySink;
use receipt_sync::source::{BankTransaction, InMemorySource};
use receipt_sync::state::{InMemoryStateStore, StateStore};
use receipt_sync::sync::{SyncConfig, Syncer};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const INDEX: &str = "index.csv";

/// One transaction of the generated bank.
#[derive(Debug, Clone)]
struct GenTransaction {
    account: usize,
    /// Days after 2026-01-01 (four monthly periods).
    day: i64,
    status: TransactionStatus,
    receipts: usize,
    label: &'static str,
    note: Option<&'static str>,
}

fn status() -> impl Strategy<Value = TransactionStatus> {
    prop_oneof![
        4 => Just(TransactionStatus::Completed),
        1 => Just(TransactionStatus::Pending),
        1 => Just(TransactionStatus::Declined),
        1 => Just(TransactionStatus::Reversed),
    ]
}

fn transaction() -> impl Strategy<Value = GenTransaction> {
    (
        0..2usize,
        0..120i64,
        status(),
        prop_oneof![2 => Just(0usize), 3 => Just(1usize), 1 => Just(2usize)],
        prop::sample::select(vec![
            "Office",
            "Café \"Le Zinc\"",
            "Garage, route de Lyon",
            "=SUM(A1)",
            "Line\nbreak",
        ]),
        prop::option::of(prop::sample::select(vec!["ask for the invoice", "a; b"])),
    )
        .prop_map(
            |(account, day, status, receipts, label, note)| GenTransaction {
                account,
                day,
                status,
                receipts,
                label,
                note,
            },
        )
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("a day")
}

/// Fills the bank; returns each transaction's id, account, day and receipt ids.
fn fill(bank: &InMemorySource, transactions: &[GenTransaction]) -> Vec<Expected> {
    let accounts = [
        bank.add_account_named("acc-a", "Main"),
        bank.add_account_named("acc-b", "Travel"),
    ];
    let mut expected = Vec::new();
    for (n, generated) in transactions.iter().enumerate() {
        let account = &accounts[generated.account];
        let day = first_day() + Duration::days(generated.day);
        let mut template = InMemorySource::receipt(
            &format!("t{n}"),
            account,
            day,
            generated.label,
            -1000 - n as i64,
        );
        template.transaction.status = generated.status.clone();
        let mut receipts = Vec::new();
        for r in 0..generated.receipts {
            let mut receipt = template.clone();
            receipt.id = ReceiptId::new(format!("t{n}-r{r}"));
            receipt.file_name = format!("t{n}-r{r}.pdf");
            receipts.push(receipt.id.clone());
            bank.add_receipt(receipt, format!("%PDF t{n} r{r}").into_bytes());
        }
        bank.add_transaction(
            BankTransaction::new(template.transaction.clone())
                .with_note(generated.note.map(str::to_owned))
                .with_receipts(receipts.clone()),
        );
        expected.push(Expected {
            id: template.transaction.id.as_str().to_owned(),
            account: account.clone(),
            day,
            status: generated.status.clone(),
            receipts,
        });
    }
    expected
}

/// What the test knows of one transaction.
#[derive(Debug)]
struct Expected {
    id: String,
    account: AccountId,
    day: NaiveDate,
    status: TransactionStatus,
    receipts: Vec<ReceiptId>,
}

impl Expected {
    fn eligible(&self, start: Option<NaiveDate>) -> bool {
        self.status != TransactionStatus::Declined && start.is_none_or(|s| self.day >= s)
    }

    fn period(&self) -> String {
        self.day.format("%Y-%m").to_string()
    }
}

/// A strict RFC 4180 reader: fields quoted when they hold the separator, a quote or a
/// line break, records ended by CRLF.
fn parse_csv(text: &str, separator: char) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            '\r' if chars.peek() == Some(&'\n') => {
                chars.next();
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            c if c == separator => record.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record ends with CRLF"
    );
    records
}

async fn check(
    transactions: Vec<GenTransaction>,
    start: Option<NaiveDate>,
    separator: Separator,
) -> Result<(), TestCaseError> {
    let bank = InMemorySource::new();
    let expected = fill(&bank, &transactions);
    let sink = InMemorySink::new();
    let store = InMemoryStateStore::new();
    let config = SyncConfig::default()
        .with_start_date(start)
        .with_index(IndexSettings::with_separator(separator));
    let syncer = || {
        Syncer::new(
            Arc::new(bank.clone()),
            Arc::new(sink.clone()),
            Arc::new(store.clone()),
            config.clone(),
        )
    };
    let report = syncer().run().await.expect("the sync runs");
    prop_assert!(report.is_complete(), "{:?}", report);

    let state = store.load().await.expect("a state").expect("a state");
    // Which receipt each archived file holds, from the sync's records; each must be in
    // the drive.
    let files: BTreeMap<String, Vec<u8>> = sink
        .files()
        .into_iter()
        .map(|(path, bytes)| (path.to_string(), bytes))
        .collect();
    let mut archived: BTreeMap<&ReceiptId, String> = BTreeMap::new();
    for (receipt, record) in &state.exported {
        let path = record.path.to_string();
        prop_assert!(
            files.contains_key(&path),
            "{} recorded, not in the drive",
            path
        );
        archived.insert(receipt, path);
    }
    let sep = match separator {
        Separator::Semicolon => ';',
        _ => ',',
    };
    let by_id: BTreeMap<&str, &Expected> = expected.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut indexed_periods = BTreeSet::new();
    for (path, bytes) in &files {
        let Some(folder) = path.strip_suffix(&format!("/{INDEX}")) else {
            continue;
        };
        let text = std::str::from_utf8(bytes).expect("UTF-8");
        let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
        let records = parse_csv(text, sep);
        prop_assert_eq!(
            records.first().map(|h| h.join(",")),
            Some(
                "date,label,amount,currency,vat_amount,vat_rate,category,status,note,receipt_files,transaction_id"
                    .to_owned()
            )
        );
        let rows = &records[1..];
        prop_assert!(!rows.is_empty(), "{} lists nothing", path);
        // The transactions listed, each once, of one account.
        let listed: Vec<&Expected> =
            rows.iter()
                .map(|row| {
                    by_id.get(row[10].as_str()).copied().ok_or_else(|| {
                        TestCaseError::fail(format!("unknown id in {path}: {row:?}"))
                    })
                })
                .collect::<Result<_, _>>()?;
        let account = &listed[0].account;
        let period = folder.rsplit('/').next().unwrap_or_default();
        let want: BTreeSet<&str> = expected
            .iter()
            .filter(|e| &e.account == account && e.eligible(start) && e.period() == period)
            .map(|e| e.id.as_str())
            .collect();
        let got: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
        let got_set: BTreeSet<&str> = got.iter().copied().collect();
        prop_assert_eq!(
            got.len(),
            got_set.len(),
            "a transaction listed twice in {}",
            path
        );
        prop_assert_eq!(&got_set, &want, "{} lists the wrong transactions", path);
        prop_assert!(
            indexed_periods.insert((account.clone(), period.to_owned())),
            "two indexes for one period"
        );
        let mut last = None;
        for (row, transaction) in rows.iter().zip(&listed) {
            let date = transaction.day.format("%Y-%m-%d").to_string();
            prop_assert_eq!(&row[0], &date);
            prop_assert!(
                last.as_ref().is_none_or(|d| d <= &date),
                "not sorted by date"
            );
            last = Some(date);
            // Exactly the files of its receipts, all in this folder.
            let mut want_files: Vec<String> = transaction
                .receipts
                .iter()
                .map(|r| {
                    archived.get(r).cloned().ok_or_else(|| {
                        TestCaseError::fail(format!(
                            "receipt {r} of an eligible transaction is not archived"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            for file in &want_files {
                prop_assert!(
                    file.starts_with(&format!("{folder}/")),
                    "{} outside {}",
                    file,
                    folder
                );
            }
            let mut want_names: Vec<String> = want_files
                .drain(..)
                .map(|f| f.rsplit('/').next().unwrap_or_default().to_owned())
                .collect();
            want_names.sort();
            let mut got_names: Vec<String> = if row[9].is_empty() {
                Vec::new()
            } else {
                row[9].split(" | ").map(str::to_owned).collect()
            };
            got_names.sort();
            prop_assert_eq!(
                got_names,
                want_names,
                "receipt files of {}",
                &transaction.id
            );
        }
    }
    // Every period holding an archived receipt has its index.
    for transaction in expected.iter().filter(|e| e.eligible(start)) {
        if !transaction.receipts.is_empty() {
            prop_assert!(
                indexed_periods.contains(&(transaction.account.clone(), transaction.period())),
                "no index for the period of {}",
                transaction.id
            );
        }
    }
    // Receipts of excluded transactions are not archived.
    for transaction in expected.iter().filter(|e| !e.eligible(start)) {
        for receipt in &transaction.receipts {
            prop_assert!(!archived.contains_key(receipt), "{} archived", receipt);
        }
    }

    let again = syncer().run().await.expect("the second sync runs");
    prop_assert_eq!(again.count("index"), 0, "a second sync writes indexes");
    prop_assert_eq!(again.count("upload"), 0);
    Ok(())
}

proptest! {
    // 256 cases by default; CI sets PROPTEST_CASES=1000.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn every_index_lists_exactly_its_periods_eligible_transactions_with_their_files(
        transactions in prop::collection::vec(transaction(), 0..14),
        start in prop::option::of(Just(NaiveDate::from_ymd_opt(2026, 2, 10).expect("a day"))),
        semicolon in any::<bool>(),
    ) {
        let separator = if semicolon { Separator::Semicolon } else { Separator::Comma };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(check(transactions, start, separator))?;
    }
}
