//! The receipt stream of one account: transactions page by page, one receipt per
//! attachment, a checkpoint after each page read without error.
//!
//! The recipe is Qonto's sync guide (qonto.md §2.2, §2.6, §7): `updated_at_from`
//! the watermark minus an overlap, `sort_by=updated_at:asc`, `includes[]=attachments`,
//! `per_page=100`, follow `meta.next_page`.

use super::client::Query;
use super::convert;
use super::model::parse_time;
use super::paginate::Progress;
use super::{Inner, Target};
use crate::error::Error;
use crate::model::{AccountId, TransactionStatus};
use crate::source::{BankTransaction, ReceiptQuery, ReceiptStream, SourceEvent, Watermark};
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::Arc;

/// The stream's state between pages.
struct Listing {
    inner: Arc<Inner>,
    account: AccountId,
    query: ReceiptQuery,
    /// Filters sent with every page.
    filters: Query,
    next: Option<u32>,
    /// Pages and items read so far, against the limits.
    progress: Progress,
    ready: VecDeque<crate::Result<SourceEvent>>,
    /// The largest `updated_at` of every page read so far (or the query's watermark).
    watermark: Option<DateTime<Utc>>,
    /// The largest `updated_at` of the pages before the current one.
    previous_max: Option<DateTime<Utc>>,
    /// An item failed: no checkpoint may be emitted any more in this stream.
    failed: bool,
    /// The server broke `updated_at` order: only a final checkpoint is safe.
    unordered: bool,
    /// The last checkpoint emitted, so that none is repeated.
    emitted: Option<DateTime<Utc>>,
}

/// The receipts of `account` matching `query`, as a `'static` stream.
pub(crate) fn stream(inner: Arc<Inner>, account: AccountId, query: ReceiptQuery) -> ReceiptStream {
    let since = query.since.as_ref().and_then(|w| {
        let parsed = parse_time(w.as_str());
        if parsed.is_none() {
            // Not one of ours: reading everything again can only repeat, never skip.
            tracing::warn!(
                watermark = w.as_str(),
                "unreadable Qonto watermark; reading everything"
            );
        }
        parsed
    });
    let filters = filters(&inner.target(&account), &query, since, inner.overlap);
    let progress = inner.pager.progress();
    let listing = Listing {
        inner,
        account,
        query,
        filters,
        next: Some(1),
        progress,
        ready: VecDeque::new(),
        watermark: since,
        previous_max: None,
        failed: false,
        unordered: false,
        emitted: None,
    };
    futures::stream::unfold(listing, |mut listing| async move {
        loop {
            if let Some(event) = listing.ready.pop_front() {
                return Some((event, listing));
            }
            let page = listing.next.take()?;
            listing.read(page).await;
        }
    })
    .boxed()
}

fn filters(
    target: &Target,
    query: &ReceiptQuery,
    since: Option<DateTime<Utc>>,
    overlap: std::time::Duration,
) -> Query {
    let mut filters: Query = match target {
        Target::Id(id) => vec![("bank_account_id", id.clone())],
        Target::Iban(iban) => vec![("iban", iban.clone())],
    };
    filters.push(("includes[]", "attachments".to_owned()));
    filters.push(("status[]", "completed".to_owned()));
    filters.push(("status[]", "pending".to_owned()));
    if query.include_declined {
        filters.push(("status[]", "declined".to_owned()));
    }
    filters.push(("sort_by", "updated_at:asc".to_owned()));
    if let Some(since) = since {
        let overlap = chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::zero());
        let from = since.checked_sub_signed(overlap).unwrap_or(since);
        filters.push(("updated_at_from", rfc3339(from)));
    }
    if let Some(day) = query.start_date {
        filters.push((
            "emitted_at_from",
            rfc3339(day.and_time(chrono::NaiveTime::MIN).and_utc()),
        ));
    }
    filters
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Listing {
    /// Reads page `page` into `ready`, and sets `next`.
    async fn read(&mut self, page: u32) {
        let inner = &self.inner;
        let filters = &self.filters;
        let fetched = inner
            .pager
            .fetch(page, |paging, page| {
                let mut query = filters.clone();
                query.extend(paging);
                async move { inner.client.transactions(&query, page).await }
            })
            .await;
        let list = match fetched {
            Ok(Some(list)) => list,
            Ok(None) => return self.finish(),
            Err(error) => return self.ready.push_back(Err(error)),
        };
        let next = self.progress.advance(&list, page);
        let mut page_max: Option<DateTime<Utc>> = None;
        for (i, item) in list.items.into_iter().enumerate() {
            let path = format!("transactions[{i}]");
            match convert::transaction(item, &path, &self.account, self.query.start_date) {
                Ok(listed) => {
                    page_max = page_max.max(Some(listed.updated_at));
                    if self.previous_max.is_some_and(|max| listed.updated_at < max)
                        && !self.unordered
                    {
                        tracing::warn!(
                            "Qonto returned transactions out of updated_at order; checkpoints deferred to the end"
                        );
                        self.unordered = true;
                    }
                    for receipt in listed.receipts {
                        self.push_receipt(receipt);
                    }
                    if let Some(transaction) = listed.listed {
                        self.push_transaction(transaction);
                    }
                }
                Err(error) => self.fail(error),
            }
        }
        self.previous_max = self.previous_max.max(page_max);
        self.watermark = self.watermark.max(page_max);
        match next {
            Ok(Some(next)) => {
                self.checkpoint_if_ordered();
                self.next = Some(next);
            }
            Ok(None) => self.finish(),
            Err(error) => {
                self.checkpoint_if_ordered();
                self.ready.push_back(Err(error));
            }
        }
    }

    fn push_receipt(
        &mut self,
        receipt: crate::Result<(crate::model::Receipt, Option<crate::auth::SecretString>)>,
    ) {
        match receipt {
            Ok((receipt, url)) => {
                // The server may ignore the status filter; declined ones stay out unless asked.
                if receipt.transaction.status == TransactionStatus::Declined
                    && !self.query.include_declined
                {
                    return;
                }
                if let Some(url) = url {
                    self.inner.urls.put(receipt.id.clone(), url);
                }
                self.ready
                    .push_back(Ok(SourceEvent::Receipt(Box::new(receipt))));
            }
            Err(error) => self.fail(error),
        }
    }

    /// The transaction for the accountant's index, after its receipts, under the
    /// same filter.
    fn push_transaction(&mut self, transaction: BankTransaction) {
        if transaction.transaction.status == TransactionStatus::Declined
            && !self.query.include_declined
        {
            return;
        }
        self.ready
            .push_back(Ok(SourceEvent::Transaction(Box::new(transaction))));
    }

    fn fail(&mut self, error: Error) {
        self.failed = true;
        self.ready.push_back(Err(error));
    }

    fn checkpoint_if_ordered(&mut self) {
        if !self.unordered {
            self.checkpoint();
        }
    }

    /// The end of the listing: everything was read.
    fn finish(&mut self) {
        self.checkpoint();
        self.next = None;
    }

    /// A checkpoint at the watermark, unless an item failed in this stream
    /// (resuming past it would skip it: the trait's contract).
    fn checkpoint(&mut self) {
        if self.failed || self.emitted == self.watermark {
            return;
        }
        if let Some(watermark) = self.watermark {
            self.emitted = Some(watermark);
            self.ready
                .push_back(Ok(SourceEvent::Checkpoint(Watermark::new(rfc3339(
                    watermark,
                )))));
        }
    }
}
