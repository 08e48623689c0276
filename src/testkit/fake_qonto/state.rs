//! The fake organisation: accounts, transactions, attachments, and a logical clock.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;

/// A bank account of the fake organisation.
pub(super) struct Account {
    pub id: String,
    /// Whether `/v2/organization` shows the id (qonto.md §8.6: the doc example does not).
    pub id_in_organization: bool,
    pub name: String,
    pub iban: String,
    pub currency: String,
}

/// A transaction.
pub(super) struct Tx {
    pub id: String,
    pub account: String,
    pub amount_cents: i64,
    pub currency: String,
    pub label: String,
    pub operation_type: String,
    pub status: String,
    pub emitted_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attachments: Vec<String>,
    /// Fields merged over the rendered JSON (to send odd shapes).
    pub patch: serde_json::Map<String, Value>,
}

/// An attachment and its bytes.
pub(super) struct Att {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub bytes: bytes::Bytes,
    pub created_at: DateTime<Utc>,
    /// `file_size` as sent, when it should differ from the real size.
    pub announced_size: Option<Value>,
}

/// How `/v2/organization` names an organisation.
pub(super) struct OrgIdentity {
    pub id: String,
    pub slug: String,
    pub legal_name: String,
}

/// The organisation's data.
pub(super) struct Org {
    pub identity: OrgIdentity,
    pub accounts: Vec<Account>,
    pub txs: Vec<Tx>,
    pub tx_index: HashMap<String, usize>,
    pub atts: HashMap<String, Att>,
    clock: DateTime<Utc>,
    counter: u64,
    /// The organisation's number in the fake (0 for the first): part of every id and
    /// IBAN it issues, so that ids never collide across organisations while IBAN
    /// endings do, as real ones can.
    number: u32,
}

/// A transaction filter, as `/v2/transactions` reads its query.
pub(super) struct TxFilter {
    pub account: String,
    pub statuses: Vec<String>,
    pub updated_at_from: Option<DateTime<Utc>>,
    pub emitted_at_from: Option<DateTime<Utc>>,
    pub sort_by: String,
}

impl Org {
    /// The first organisation, named as it always was.
    pub(super) fn new(start: DateTime<Utc>) -> Self {
        let identity = OrgIdentity {
            id: "cb47875a-9b12-416e-aa9a-265b9dfaeee7".to_owned(),
            slug: "fake-organisation-0001".to_owned(),
            legal_name: "Fake Organisation SAS".to_owned(),
        };
        Self::numbered(start, 0, identity)
    }

    /// Organisation number `number`, named `identity`.
    pub(super) fn numbered(start: DateTime<Utc>, number: u32, identity: OrgIdentity) -> Self {
        Self {
            identity,
            number,
            accounts: Vec::new(),
            txs: Vec::new(),
            tx_index: HashMap::new(),
            atts: HashMap::new(),
            clock: start,
            counter: 0,
        }
    }

    /// The logical time now; every change moves it one second on.
    pub(super) fn tick(&mut self) -> DateTime<Utc> {
        let now = self.clock;
        self.advance(chrono::Duration::seconds(1));
        now
    }

    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock
    }

    /// Moves the clock by `by`, stopping at the ends of chrono's calendar rather than
    /// overflowing: a test may start the clock anywhere and move it by anything.
    pub(super) fn advance(&mut self, by: chrono::Duration) {
        let end = if by < chrono::Duration::zero() {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        };
        self.clock = self.clock.checked_add_signed(by).unwrap_or(end);
    }

    /// A fresh UUID-shaped id of `kind` (1 account, 2 transaction, 3 attachment).
    pub(super) fn next_id(&mut self, kind: u32) -> String {
        self.counter += 1;
        format!(
            "{kind:08x}-{:04x}-4000-8000-{:012x}",
            self.number, self.counter
        )
    }

    pub(super) fn next_iban(&mut self) -> String {
        self.counter += 1;
        format!("FR76{:04}{:019}", self.number, self.counter)
    }

    pub(super) fn account_by_id_or_iban(&self, key: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.id == key || a.iban == key)
    }

    /// The transactions matching `filter`, sorted as asked.
    pub(super) fn select(&self, filter: &TxFilter) -> Vec<&Tx> {
        let mut out: Vec<&Tx> = self
            .txs
            .iter()
            .filter(|t| t.account == filter.account)
            .filter(|t| filter.statuses.is_empty() || filter.statuses.contains(&t.status))
            .filter(|t| {
                filter
                    .updated_at_from
                    .is_none_or(|from| t.updated_at >= from)
            })
            .filter(|t| {
                filter
                    .emitted_at_from
                    .is_none_or(|from| t.emitted_at >= from)
            })
            .collect();
        let (field, descending) = match filter.sort_by.split_once(':') {
            Some((field, dir)) => (field, dir == "desc"),
            None => (filter.sort_by.as_str(), true),
        };
        out.sort_by(|a, b| {
            let key = |t: &Tx| match field {
                "emitted_at" => t.emitted_at,
                "created_at" => t.created_at,
                _ => t.updated_at,
            };
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        });
        if descending {
            out.reverse();
        }
        out
    }
}

/// Major units as a JSON number, like `52.4` (qonto.md §6.2).
fn major_units(cents: i64) -> Value {
    let text = format!("{}.{:02}", cents / 100, cents % 100);
    serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One attachment as JSON, with a fresh pre-signed `url`.
pub(super) fn attachment_json(att: &Att, url: String) -> Value {
    json!({
        "id": att.id,
        "created_at": time(att.created_at),
        "file_name": att.file_name,
        "file_size": att.announced_size.clone().unwrap_or_else(|| Value::String(att.bytes.len().to_string())),
        "file_content_type": att.content_type,
        "url": url,
        "probative_attachment": { "status": "pending" },
    })
}

/// One transaction as JSON (qonto.md §6.2); `attachments` only when included.
pub(super) fn transaction_json(tx: &Tx, attachments: Option<Vec<Value>>) -> Value {
    let magnitude = tx.amount_cents.unsigned_abs() as i64;
    let mut value = json!({
        "id": tx.id,
        "transaction_id": format!("fake-transaction-{}", tx.id),
        "amount": major_units(magnitude),
        "amount_cents": magnitude,
        "local_amount": major_units(magnitude),
        "local_amount_cents": magnitude,
        "currency": tx.currency,
        "local_currency": tx.currency,
        "side": if tx.amount_cents < 0 { "debit" } else { "credit" },
        "operation_type": tx.operation_type,
        "status": tx.status,
        "label": tx.label.to_uppercase(),
        "clean_counterparty_name": tx.label,
        "settled_at": (tx.status == "completed").then(|| time(tx.emitted_at)),
        "emitted_at": time(tx.emitted_at),
        "created_at": time(tx.created_at),
        "updated_at": time(tx.updated_at),
        "note": null,
        "reference": null,
        "attachment_ids": tx.attachments,
        "attachment_lost": false,
        "attachment_required": true,
        "bank_account_id": tx.account,
        "is_external_transaction": false,
    });
    if let (Some(list), Value::Object(map)) = (attachments, &mut value) {
        map.insert("attachments".to_owned(), Value::Array(list));
    }
    if let Value::Object(map) = &mut value {
        for (k, v) in &tx.patch {
            map.insert(k.clone(), v.clone());
        }
    }
    value
}

/// One bank account as JSON (qonto.md §6.1).
pub(super) fn account_json(account: &Account, with_id: bool) -> Value {
    let mut value = json!({
        "slug": format!("fake-{}", account.iban.to_lowercase()),
        "iban": account.iban,
        "bic": "QNTOFRP1XXX",
        "currency": account.currency,
        "balance": 1000.5,
        "balance_cents": 100050,
        "name": account.name,
        "status": "active",
        "main": false,
    });
    if let (true, Value::Object(map)) = (with_id, &mut value) {
        map.insert("id".to_owned(), Value::String(account.id.clone()));
    }
    value
}
