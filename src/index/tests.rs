use super::csv::inert;
use super::*;
use crate::layout::{Layout, LayoutSettings, NameLimits};
use crate::model::{
    AccountId, ArchivePath, CurrencyCode, Money, ReceiptId, SinkItemId, TransactionStatus,
};
use crate::source::{BankTransaction, InMemorySource};
use crate::state::{ExportRecord, SyncState};
use chrono::{NaiveDate, Utc};
use proptest::prelude::*;

/// A strict RFC 4180 reader, written for the tests: records of fields.
fn parse(bytes: &[u8], sep: char) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let text = text.strip_prefix('\u{feff}').expect("a byte-order mark");
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() => loop {
                match chars.next().expect("a closing quote") {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    other => field.push(other),
                }
            },
            c if c == sep => record.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "lines end with CRLF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            other => {
                assert!(
                    other != '"' && other != '\n',
                    "a bare {other:?} in {text:?}"
                );
                field.push(other);
            }
        }
    }
    assert!(field.is_empty() && record.is_empty(), "the last line ends");
    records
}

fn layout() -> Layout {
    Layout::new(LayoutSettings::default(), NameLimits::default())
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn path(p: &str) -> ArchivePath {
    ArchivePath::parse(p).unwrap()
}

fn archived(state: &mut SyncState, receipt: &str, at: &str) {
    state.exported.insert(
        ReceiptId::new(receipt),
        ExportRecord {
            path: path(at),
            file_id: SinkItemId::new(at),
            folder_ids: Vec::new(),
            size: 1,
            at: Utc::now(),
        },
    );
}

#[test]
fn a_period_lists_every_transaction_with_its_receipts_sorted_by_date() {
    let account = AccountId::new("acc");
    let mut state = SyncState::default();
    let with = InMemorySource::receipt("r1", &account, day(20), "Café, \"Le Zinc\"", -1250);
    let second = InMemorySource::receipt("r2", &account, day(20), "x", -1);
    let mut second = second;
    second.transaction = with.transaction.clone();
    for r in [&with, &second] {
        state.receipts.insert(r.id.clone(), r.clone());
    }
    archived(&mut state, "r1", "Main/2026-03/a.pdf");
    archived(&mut state, "r2", "Main/2026-03/b.pdf");
    let bare = InMemorySource::receipt("none", &account, day(3), "Loyer", -90000).transaction;
    state.transactions.insert(
        bare.id.clone(),
        BankTransaction::new(bare)
            .with_vat(
                Some(Money::new(15000, CurrencyCode::EUR)),
                Some("20".into()),
            )
            .with_category(Some("rent".into()))
            .with_note(Some("ligne 1\nligne 2".into())),
    );
    let mut declined = InMemorySource::receipt("no", &account, day(5), "Refus", -1).transaction;
    declined.status = TransactionStatus::Declined;
    state
        .transactions
        .insert(declined.id.clone(), BankTransaction::new(declined));
    let early = InMemorySource::receipt("early", &account, day(1), "Avant", -1).transaction;
    state
        .transactions
        .insert(early.id.clone(), BankTransaction::new(early));

    let periods = collect(&state, &layout(), Some(day(2)), false);
    assert_eq!(periods.len(), 1);
    let period = &periods[&(account, (2026, 3))];
    let bytes = render(&period.rows, &path("Main/2026-03"), Separator::Comma);
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
    let records = parse(&bytes, ',');
    assert_eq!(records[0], COLUMNS);
    assert_eq!(
        records[1],
        [
            "2026-03-03",
            "Loyer",
            "-900.00",
            "EUR",
            "150.00",
            "20",
            "rent",
            "completed",
            "ligne 1\nligne 2",
            "",
            "tx-none"
        ]
    );
    assert_eq!(records[2][1], "Café, \"Le Zinc\"");
    assert_eq!(records[2][2], "-12.50");
    assert_eq!(records[2][9], "a.pdf | b.pdf");
    assert_eq!(records.len(), 3, "declined and early ones left out");

    let semicolon = render(&period.rows, &path("Main/2026-03"), Separator::Semicolon);
    let records = parse(&semicolon, ';');
    assert_eq!(records[2][2], "-12.50", "the decimal separator stays a dot");
    assert_eq!(records[2][1], "Café, \"Le Zinc\"");
}

#[test]
fn a_formula_from_the_bank_stays_text() {
    assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    assert_eq!(inert("-5"), "'-5");
    assert_eq!(inert("Garage"), "Garage");
}

proptest! {
    /// Any label and note (quotes, separators, line breaks, accents) reads back as
    /// written (made inert where a spreadsheet would compute it), with either separator,
    /// and the same rows always give the same bytes.
    #[test]
    fn any_text_round_trips(
        label in "[a-zA-Z0-9 ,;\"\r\n\té€=+@-]{0,24}",
        note in proptest::option::of("[a-z ,;\"\n'ü]{0,16}"),
        cents in any::<i64>(),
        semicolon in any::<bool>(),
        receipts in 0usize..3,
    ) {
        let account = AccountId::new("acc");
        let mut state = SyncState::default();
        let mut tx = InMemorySource::receipt("t", &account, day(9), &label, cents).transaction;
        tx.label = label.clone();
        for i in 0..receipts {
            let mut r = InMemorySource::receipt(&format!("r{i}"), &account, day(9), "x", cents);
            r.transaction = tx.clone();
            state.receipts.insert(r.id.clone(), r);
            archived(&mut state, &format!("r{i}"), &format!("Main/2026-03/f{i}; \"x\".pdf"));
        }
        state.transactions.insert(tx.id.clone(), BankTransaction::new(tx).with_note(note.clone()));
        let (sep, c) = if semicolon { (Separator::Semicolon, ';') } else { (Separator::Comma, ',') };
        let periods = collect(&state, &layout(), None, false);
        let rows = &periods.values().next().unwrap().rows;
        let bytes = render(rows, &path("Main/2026-03"), sep);
        prop_assert_eq!(&bytes, &render(rows, &path("Main/2026-03"), sep));
        let records = parse(&bytes, c);
        prop_assert_eq!(records.len(), 2);
        prop_assert!(records.iter().all(|r| r.len() == COLUMNS.len()));
        prop_assert_eq!(&records[1][1], &inert(&label));
        prop_assert_eq!(&records[1][8], &inert(note.as_deref().unwrap_or_default()));
        let files: Vec<String> = (0..receipts).map(|i| format!("f{i}; \"x\".pdf")).collect();
        prop_assert_eq!(&records[1][9], &files.join(" | "));
        prop_assert_eq!(records[1][2].parse::<f64>().is_ok(), true);
    }
}
