//! The [`ReceiptSource`] conformance suite: every source runs it.

use super::suite::{SuiteReport, ensure, eq, err, ok};
use crate::error::ErrorKind;
use crate::model::{AccountId, Receipt, ReceiptId, TransactionId, TransactionStatus};
use crate::source::{BankTransaction, ReceiptQuery, ReceiptSource, SourceEvent};
use chrono::{Days, NaiveDate};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How long one receipt stream may take to end.
const STREAM_DEADLINE: Duration = Duration::from_secs(30);

/// Runs every check on `source`, and says which ran and which were skipped.
///
/// # Preconditions
/// The source has at least one account, and at least one receipt in all; it does
/// not change while the suite runs. More receipts, over several days and with
/// intermediate checkpoints, exercise more of the checks.
///
/// # Panics
/// At the first failed check, with a message saying what was expected and found.
pub async fn run_all(source: &dyn ReceiptSource) -> SuiteReport {
    let mut report = SuiteReport::default();
    let c = "accounts";
    let accounts = ok(c, "accounts()", source.accounts().await);
    ensure(c, !accounts.is_empty(), || {
        "precondition: expected at least one account, found none".into()
    });
    let mut ids = HashSet::new();
    for a in &accounts {
        ensure(c, ids.insert(&a.id), || {
            format!("expected unique account ids, found {:?} twice", a.id)
        });
    }
    report.pass(c);

    let mut all = Vec::new();
    let mut transactions = Vec::new();
    let mut resumed = 0;
    for account in &accounts {
        let events = read(source, "streams_end", &account.id, &ReceiptQuery::all()).await;
        resumed += checkpoints_resume(source, &account.id, &events).await;
        for event in events {
            match event {
                SourceEvent::Receipt(r) => all.push(*r),
                SourceEvent::Transaction(t) => transactions.push(*t),
                SourceEvent::Checkpoint(_) => {}
            }
        }
    }
    ensure("streams_end", !all.is_empty(), || {
        "precondition: expected at least one receipt, found none".into()
    });
    report.pass("streams_end");
    report.pass("receipts_belong_to_account");
    if resumed > 0 {
        report.pass("checkpoints_resume");
    } else {
        report.skip("checkpoints_resume", "the source yielded no checkpoint");
    }

    let declined = all
        .iter()
        .find(|r| r.transaction.status == TransactionStatus::Declined);
    ensure("declined_excluded", declined.is_none(), || {
        format!("expected no declined transaction without include_declined, found {declined:?}")
    });
    report.pass("declined_excluded");

    start_date(source, &all).await;
    report.pass("start_date");
    if transactions.is_empty() {
        report.skip("transactions", "the source lists no transaction as such");
    } else {
        listed_transactions(source, &all, &transactions).await;
        report.pass("transactions");
    }
    open(source, &all).await;
    report.pass("open");
    let mut missing = all[0].clone();
    missing.id = ReceiptId::new("receipt-sync-conformance-missing");
    err(
        "open_missing",
        "open an unknown receipt",
        source.open(&missing).await.map(|b| b.len()),
        ErrorKind::NotFound,
    );
    report.pass("open_missing");
    concurrent_opens(source, &all).await;
    report.pass("concurrent_opens");
    report
}

/// Reads one stream to its end, checking that every receipt is the account's and
/// that no error comes out of it.
async fn read(
    source: &dyn ReceiptSource,
    check: &str,
    account: &AccountId,
    query: &ReceiptQuery,
) -> Vec<SourceEvent> {
    let collect = source.receipts(account, query).collect::<Vec<_>>();
    let Ok(items) = tokio::time::timeout(STREAM_DEADLINE, collect).await else {
        panic!(
            "[{check}] receipts({account}, {query:?}): expected the stream to end, still open after {STREAM_DEADLINE:?}"
        );
    };
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let event = ok(check, &format!("an item of receipts({account})"), item);
        if let SourceEvent::Receipt(r) = &event {
            eq(
                "receipts_belong_to_account",
                &format!("account of receipt {}", r.id),
                account,
                &r.transaction.account_id,
            );
        }
        if let SourceEvent::Transaction(t) = &event {
            eq(
                "transactions",
                &format!("account of transaction {}", t.transaction.id),
                account,
                &t.transaction.account_id,
            );
        }
        events.push(event);
    }
    events
}

fn receipt_ids(events: &[SourceEvent]) -> HashSet<&ReceiptId> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Receipt(r) => Some(&r.id),
            SourceEvent::Transaction(_) | SourceEvent::Checkpoint(_) => None,
        })
        .collect()
}

/// A source that lists transactions lists every receipt's transaction, naming the
/// receipt, each transaction belonging to the account read; none declined unless
/// asked; none clearly before a start date.
async fn listed_transactions(
    source: &dyn ReceiptSource,
    all: &[Receipt],
    transactions: &[BankTransaction],
) {
    let c = "transactions";
    let mut receipts_of: HashMap<&TransactionId, HashSet<&ReceiptId>> = HashMap::new();
    for t in transactions {
        let declined = t.transaction.status == TransactionStatus::Declined;
        ensure(c, !declined, || {
            format!(
                "expected no declined transaction without include_declined, found {}",
                t.transaction.id
            )
        });
        receipts_of
            .entry(&t.transaction.id)
            .or_default()
            .extend(t.receipts.iter());
    }
    for r in all {
        let listed = receipts_of
            .get(&r.transaction.id)
            .is_some_and(|ids| ids.contains(&r.id));
        ensure(c, listed, || {
            format!(
                "expected transaction {} to be listed naming its receipt {}, found it missing",
                r.transaction.id, r.id
            )
        });
    }
    let mut days: Vec<NaiveDate> = transactions
        .iter()
        .map(|t| t.transaction.emitted_at.date_naive())
        .collect();
    days.sort_unstable();
    let start = days[days.len() / 2];
    let accounts: HashSet<&AccountId> = transactions
        .iter()
        .map(|t| &t.transaction.account_id)
        .collect();
    let query = ReceiptQuery::all().start_date(Some(start));
    let mut found = HashSet::new();
    for account in accounts {
        for event in read(source, c, account, &query).await {
            if let SourceEvent::Transaction(t) = event {
                let day = t.transaction.emitted_at.date_naive();
                ensure(c, day >= start - Days::new(1), || {
                    format!(
                        "from {start}: expected transactions emitted from {start}, found {} emitted {day}",
                        t.transaction.id
                    )
                });
                found.insert(t.transaction.id.clone());
            }
        }
    }
    for t in transactions {
        if t.transaction.emitted_at.date_naive() > start + Days::new(1) {
            ensure(c, found.contains(&t.transaction.id), || {
                format!(
                    "from {start}: expected transaction {} to be listed, found it missing",
                    t.transaction.id
                )
            });
        }
    }
}

/// Reading from a checkpoint yields every receipt that came after it. Checks at
/// most the first, a middle and the last checkpoint; returns how many it checked.
async fn checkpoints_resume(
    source: &dyn ReceiptSource,
    account: &AccountId,
    events: &[SourceEvent],
) -> usize {
    let c = "checkpoints_resume";
    let marks: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, SourceEvent::Checkpoint(_)))
        .map(|(i, _)| i)
        .collect();
    let mut picked: Vec<usize> = [marks.first(), marks.get(marks.len() / 2), marks.last()]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    picked.dedup();
    for &i in &picked {
        let Some(SourceEvent::Checkpoint(mark)) = events.get(i) else {
            continue;
        };
        let query = ReceiptQuery::all().since(Some(mark.clone()));
        let again = read(source, c, account, &query).await;
        let expected = receipt_ids(events.get(i + 1..).unwrap_or_default());
        let found = receipt_ids(&again);
        let skipped: Vec<_> = expected.difference(&found).collect();
        ensure(c, skipped.is_empty(), || {
            format!(
                "reading since {mark:?}: expected every receipt listed after it, found these skipped: {skipped:?}"
            )
        });
    }
    picked.len()
}

/// Reading from a start date keeps what is on or after it, give or take a day for
/// the source's time zone, and drops what is clearly before.
async fn start_date(source: &dyn ReceiptSource, all: &[Receipt]) {
    let c = "start_date";
    let mut days: Vec<NaiveDate> = all
        .iter()
        .map(|r| r.transaction.emitted_at.date_naive())
        .collect();
    days.sort_unstable();
    let start = days[days.len() / 2];
    let accounts: HashSet<&AccountId> = all.iter().map(|r| &r.transaction.account_id).collect();
    let query = ReceiptQuery::all().start_date(Some(start));
    let mut found = HashSet::new();
    for account in accounts {
        for event in read(source, c, account, &query).await {
            if let SourceEvent::Receipt(r) = event {
                let day = r.transaction.emitted_at.date_naive();
                ensure(c, day >= start - Days::new(1), || {
                    format!(
                        "from {start}: expected receipts emitted from {start}, found {} emitted {day}",
                        r.id
                    )
                });
                found.insert(r.id);
            }
        }
    }
    for r in all {
        if r.transaction.emitted_at.date_naive() > start + Days::new(1) {
            ensure(c, found.contains(&r.id), || {
                format!(
                    "from {start}: expected receipt {} (emitted {}), found it missing",
                    r.id, r.transaction.emitted_at
                )
            });
        }
    }
}

/// Up to three receipts spread over the list.
fn sample(all: &[Receipt]) -> Vec<&Receipt> {
    let mut picked: Vec<&Receipt> = [all.first(), all.get(all.len() / 2), all.last()]
        .into_iter()
        .flatten()
        .collect();
    picked.dedup_by(|a, b| a.id == b.id);
    picked
}

async fn open(source: &dyn ReceiptSource, all: &[Receipt]) {
    let c = "open";
    for r in sample(all) {
        let body = ok(c, &format!("open {}", r.id), source.open(r).await);
        eq(
            c,
            &format!("announced length of {}", r.id),
            r.size,
            body.len(),
        );
        let bytes = ok(
            c,
            &format!("read {}", r.id),
            body.collect(r.id.as_str()).await,
        );
        eq(
            c,
            &format!("bytes streamed for {}", r.id),
            r.size,
            bytes.len() as u64,
        );
    }
}

async fn concurrent_opens(source: &dyn ReceiptSource, all: &[Receipt]) {
    let c = "concurrent_opens";
    let picked = sample(all);
    let reads = picked.iter().cycle().take(6).map(|r| async move {
        let body = ok(c, &format!("open {}", r.id), source.open(r).await);
        (
            r,
            ok(
                c,
                &format!("read {}", r.id),
                body.collect(r.id.as_str()).await,
            ),
        )
    });
    for (r, bytes) in futures::future::join_all(reads).await {
        eq(
            c,
            &format!("bytes of {} read concurrently", r.id),
            r.size,
            bytes.len() as u64,
        );
    }
}
