//! From Qonto's DTOs to the crate's model, naming the exact field that is wrong.

use super::error::malformed;
use super::model::{AttachmentDto, Cents, Count, Int, Lenient, Rate, TransactionDto};
use crate::auth::SecretString;
use crate::error::Result;
use crate::model::{
    AccountId, CurrencyCode, MAX_RECEIPT_SIZE, Money, Receipt, ReceiptId, Transaction,
    TransactionId, TransactionStatus,
};
use crate::source::BankTransaction;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What a timestamp field must hold ([`PLAUSIBLE_DATES`](crate::model::PLAUSIBLE_DATES)),
/// in error messages.
const A_TIMESTAMP: &str = "a timestamp between 1970 and 2199";

/// One listed transaction, decoded.
pub(crate) struct ListedTransaction {
    /// Its `updated_at`, which the watermark follows.
    pub updated_at: DateTime<Utc>,
    /// One entry per attachment: the receipt and its pre-signed URL, or why it failed.
    pub receipts: Vec<Result<(Receipt, Option<SecretString>)>>,
    /// The transaction for the accountant's index, receipts or not; `None` before the
    /// start date, or when a receipt-less transaction could not be decoded.
    pub listed: Option<BankTransaction>,
}

/// Decodes `transactions[i]` (at `path`) of `account`. A transaction emitted before
/// `start` yields nothing. An error here fails the whole transaction; an error in
/// one attachment fails only that receipt. A transaction without attachments that
/// cannot be decoded is left out of the index with a warning, as it never failed a
/// read before the index listed it.
pub(crate) fn transaction(
    value: Value,
    path: &str,
    account: &AccountId,
    start: Option<NaiveDate>,
) -> Result<ListedTransaction> {
    let mut dto: TransactionDto = object(value, path)?;
    let updated_at = required(
        std::mem::take(&mut dto.updated_at),
        path,
        "updated_at",
        A_TIMESTAMP,
    )?
    .0;
    let attachments = match std::mem::take(&mut dto.attachments) {
        Lenient::Present(list) => list,
        Lenient::Missing => {
            // Without `includes[]=attachments` honoured, a receipt would vanish silently.
            let announced = match &dto.attachment_ids {
                Lenient::Present(ids) => ids.len(),
                _ => 0,
            };
            if announced > 0 {
                return Err(malformed(
                    format!("{path}.attachments"),
                    format!("missing, while attachment_ids lists {announced}"),
                ));
            }
            Vec::new()
        }
        Lenient::Invalid(kind) => {
            return Err(malformed(
                format!("{path}.attachments"),
                format!("expected an array, got {kind}"),
            ));
        }
    };
    let nothing = |updated_at| ListedTransaction {
        updated_at,
        receipts: Vec::new(),
        listed: None,
    };
    let decoded = match decode(dto, path, account, start) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return Ok(nothing(updated_at)),
        Err(error) if attachments.is_empty() => {
            tracing::warn!(%error, "a Qonto transaction without receipts is left out of the index");
            return Ok(nothing(updated_at));
        }
        Err(error) => return Err(error),
    };
    let (mut listed, fallback_created) = decoded;
    let receipts: Vec<_> = attachments
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let at = format!("{path}.attachments[{i}]");
            let dto: AttachmentDto = object(value, &at)?;
            attachment(dto, &at, &listed.transaction, fallback_created)
        })
        .collect();
    listed.receipts = receipts
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|(r, _)| r.id.clone()))
        .collect();
    Ok(ListedTransaction {
        updated_at,
        receipts,
        listed: Some(listed),
    })
}

/// The transaction's own fields (`None` when emitted before `start`), and the
/// instant that dates an attachment without `created_at`.
fn decode(
    dto: TransactionDto,
    path: &str,
    account: &AccountId,
    start: Option<NaiveDate>,
) -> Result<Option<(BankTransaction, DateTime<Utc>)>> {
    let emitted_at = required(dto.emitted_at, path, "emitted_at", A_TIMESTAMP)?.0;
    // Filtered here too, whatever the server did with `emitted_at_from` (UTC days).
    if start.is_some_and(|day| emitted_at.date_naive() < day) {
        return Ok(None);
    }
    let id = [dto.id, dto.transaction_id]
        .into_iter()
        .filter_map(Lenient::ok)
        .find(|id| !id.is_empty())
        .ok_or_else(|| malformed(format!("{path}.id"), "missing"))?;
    let currency = required(dto.currency, path, "currency", "a currency code")?;
    let currency = CurrencyCode::parse(&currency)
        .ok_or_else(|| malformed(format!("{path}.currency"), "not a currency code"))?;
    let transaction = Transaction {
        id: TransactionId::new(id),
        account_id: account.clone(),
        emitted_at,
        settled_at: optional(dto.settled_at, path, "settled_at", A_TIMESTAMP)?.map(|t| t.0),
        amount: Money::new(
            signed_cents(dto.amount_cents, dto.amount, dto.side, path)?,
            currency,
        ),
        label: [dto.clean_counterparty_name, dto.label, dto.reference]
            .into_iter()
            .filter_map(Lenient::ok)
            .find(|text| !text.trim().is_empty())
            .unwrap_or_default(),
        status: status(dto.status.ok().as_deref()),
    };
    let fallback_created = dto.created_at.ok().map_or(emitted_at, |t| t.0);
    // The index's extra columns are informative: an unreadable one is left empty
    // rather than failing the transaction's receipts.
    let vat_cents = match (dto.vat_amount_cents, dto.vat_amount) {
        (Lenient::Present(Int(cents)), _) => Some(cents),
        (_, Lenient::Present(Cents(cents))) => Some(cents),
        _ => None,
    };
    let text = |field: Lenient<String>| field.ok().filter(|t| !t.trim().is_empty());
    let listed = BankTransaction::new(transaction)
        .with_vat(
            vat_cents.map(|cents| Money::new(cents, currency)),
            dto.vat_rate.ok().map(|Rate(rate)| rate),
        )
        .with_category(text(dto.category))
        .with_note(text(dto.note));
    Ok(Some((listed, fallback_created)))
}

fn attachment(
    dto: AttachmentDto,
    path: &str,
    transaction: &Transaction,
    fallback_created: DateTime<Utc>,
) -> Result<(Receipt, Option<SecretString>)> {
    let id = required(dto.id, path, "id", "a string")?;
    if id.is_empty() {
        return Err(malformed(format!("{path}.id"), "empty"));
    }
    let size = announced_size(dto.file_size, path)?;
    let receipt = Receipt {
        // `file_name` may lack an extension (qonto.md §2.3); the layout adds one.
        file_name: dto
            .file_name
            .ok()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| id.clone()),
        id: ReceiptId::new(id),
        content_type: dto.file_content_type.ok().filter(|t| !t.is_empty()),
        size,
        created_at: optional(dto.created_at, path, "created_at", A_TIMESTAMP)?
            .map_or(fallback_created, |t| t.0),
        transaction: transaction.clone(),
    };
    Ok((receipt, dto.url.ok()))
}

/// What `GET /v2/attachments/{id}` says about the file (qonto.md §2.3).
pub(crate) fn fresh_url(dto: AttachmentDto) -> Result<(SecretString, u64)> {
    let url = required(dto.url, "attachment", "url", "a URL")?;
    let size = announced_size(dto.file_size, "attachment")?;
    Ok((url, size))
}

/// `file_size`, at most [`MAX_RECEIPT_SIZE`]: a larger one cannot be archived, and
/// summed with others it would overflow the plan's byte count.
fn announced_size(file_size: Lenient<Count>, path: &str) -> Result<u64> {
    let size = required(file_size, path, "file_size", "a byte count")?.0;
    if size > MAX_RECEIPT_SIZE {
        return Err(malformed(
            join(path, "file_size"),
            "larger than 250 GiB, the largest file OneDrive accepts",
        ));
    }
    Ok(size)
}

/// The amount signed from `side`: `amount_cents` first, else `amount` parsed exactly
/// (qonto.md §2.2: `amount` is always positive, the sign lives in `side`).
fn signed_cents(
    amount_cents: Lenient<Int>,
    amount: Lenient<Cents>,
    side: Lenient<String>,
    path: &str,
) -> Result<i64> {
    let cents = match (amount_cents, amount) {
        (Lenient::Present(Int(cents)), _) => cents,
        (_, Lenient::Present(Cents(cents))) => cents,
        (Lenient::Invalid(kind), _) => {
            return Err(malformed(
                format!("{path}.amount_cents"),
                format!("expected an integer, got {kind}"),
            ));
        }
        (Lenient::Missing, Lenient::Invalid(kind)) => {
            return Err(malformed(
                format!("{path}.amount"),
                format!("expected a decimal amount, got {kind}"),
            ));
        }
        (Lenient::Missing, Lenient::Missing) => {
            return Err(malformed(format!("{path}.amount_cents"), "missing"));
        }
    };
    let magnitude = cents
        .checked_abs()
        .ok_or_else(|| malformed(format!("{path}.amount_cents"), "out of range"))?;
    match side.ok().map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("debit") => Ok(-magnitude),
        Some("credit") => Ok(magnitude),
        // A guessed sign would put a wrong amount in the archive: fail instead.
        Some(_) => Err(malformed(
            format!("{path}.side"),
            "neither credit nor debit",
        )),
        None => Err(malformed(format!("{path}.side"), "missing")),
    }
}

/// Open enum: unknown statuses are kept as they are (qonto.md §2.2, `reversed` UNCERTAIN).
fn status(text: Option<&str>) -> TransactionStatus {
    match text.map(str::to_ascii_lowercase).as_deref() {
        Some("pending") => TransactionStatus::Pending,
        Some("completed") => TransactionStatus::Completed,
        Some("declined") => TransactionStatus::Declined,
        Some("reversed") => TransactionStatus::Reversed,
        Some(other) => TransactionStatus::Other(other.to_owned()),
        None => TransactionStatus::Other(String::new()),
    }
}

/// Reads an object into a lenient DTO.
pub(crate) fn object<T: DeserializeOwned>(value: Value, path: &str) -> Result<T> {
    if !value.is_object() {
        let kind = super::model::kind_of(&value);
        return Err(malformed(path, format!("expected an object, got {kind}")));
    }
    serde_json::from_value(value).map_err(|_| malformed(path, "unreadable object"))
}

/// A required field, or an error naming it.
pub(crate) fn required<T>(value: Lenient<T>, path: &str, field: &str, what: &str) -> Result<T> {
    match value {
        Lenient::Present(v) => Ok(v),
        Lenient::Missing => Err(malformed(join(path, field), "missing")),
        Lenient::Invalid(kind) => Err(malformed(
            join(path, field),
            format!("expected {what}, got {kind}"),
        )),
    }
}

/// An optional field: missing is fine, unreadable is an error naming it.
fn optional<T>(value: Lenient<T>, path: &str, field: &str, what: &str) -> Result<Option<T>> {
    match value {
        Lenient::Invalid(kind) => Err(malformed(
            join(path, field),
            format!("expected {what}, got {kind}"),
        )),
        other => Ok(other.ok()),
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "id",
        "transaction_id",
        "amount",
        "amount_cents",
        "currency",
        "side",
        "status",
        "label",
        "clean_counterparty_name",
        "reference",
        "emitted_at",
        "settled_at",
        "created_at",
        "updated_at",
        "attachments",
        "attachment_ids",
        "file_size",
        "file_name",
        "file_content_type",
        "url",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("debit".to_owned()),
                Just("EUR".to_owned()),
                Just("2026-05-15T08:01:44.000Z".to_owned()),
                Just("10,00".to_owned()),
                Just("-92233720368547758.08".to_owned()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(
                    |pairs| Value::Object(
                        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                    )
                ),
            ]
        })
    }

    fn listed(emitted_at: &str, sizes: &[Value]) -> Result<ListedTransaction> {
        let attachments: Vec<Value> = sizes
            .iter()
            .enumerate()
            .map(|(i, size)| serde_json::json!({ "id": format!("att-{i}"), "file_size": size }))
            .collect();
        let value = serde_json::json!({
            "id": "tx-1", "amount_cents": 100, "currency": "EUR", "side": "debit",
            "emitted_at": emitted_at, "updated_at": "2026-05-15T08:01:44.000Z",
            "attachments": attachments,
        });
        transaction(value, "transactions[0]", &AccountId::new("acc"), None)
    }

    fn malformed_field(error: &crate::Error) -> &str {
        match error {
            crate::Error::Malformed { field, .. } => field,
            other => panic!("not a decoding error: {other}"),
        }
    }

    #[test]
    fn a_transaction_without_receipts_is_listed_with_its_index_columns() {
        let value = serde_json::json!({
            "id": "tx-9", "amount_cents": 4500, "currency": "EUR", "side": "debit",
            "status": "completed", "label": "Garage", "note": "ask for the invoice",
            "category": "gas_station", "vat_amount_cents": 750, "vat_rate": 5.5,
            "emitted_at": "2026-05-15T08:01:44.000Z", "updated_at": "2026-05-15T08:01:44.000Z",
            "attachments": [], "attachment_ids": [],
        });
        let account = AccountId::new("acc");
        let decoded = transaction(value.clone(), "transactions[0]", &account, None).unwrap();
        assert!(decoded.receipts.is_empty());
        let listed = decoded
            .listed
            .expect("a receipt-less transaction is listed");
        assert_eq!(listed.transaction.amount.cents, -4500);
        assert_eq!(listed.vat_amount.map(|m| m.cents), Some(750));
        assert_eq!(listed.vat_rate.as_deref(), Some("5.5"));
        assert_eq!(listed.category.as_deref(), Some("gas_station"));
        assert_eq!(listed.note.as_deref(), Some("ask for the invoice"));
        assert!(listed.receipts.is_empty());
        let later = NaiveDate::from_ymd_opt(2026, 6, 1);
        let early = transaction(value, "transactions[0]", &account, later).unwrap();
        assert!(early.listed.is_none(), "before the start date: not listed");
        // Unreadable without receipts: left out, never failing the read as before.
        let odd = serde_json::json!({
            "id": "tx-9", "updated_at": "2026-05-15T08:01:44.000Z", "attachments": [],
        });
        let odd = transaction(odd, "transactions[0]", &account, None).unwrap();
        assert!(odd.listed.is_none() && odd.receipts.is_empty());
    }

    #[test]
    fn a_transaction_lists_the_ids_of_its_receipts() {
        let decoded = listed(
            "2026-05-15T08:01:44.000Z",
            &[Value::from(3), Value::from(4)],
        )
        .unwrap();
        let ids: Vec<_> = decoded.listed.unwrap().receipts;
        assert_eq!(ids, [ReceiptId::new("att-0"), ReceiptId::new("att-1")]);
    }

    #[test]
    fn a_timestamp_at_the_edge_of_the_calendar_fails_its_transaction() {
        let Err(error) = listed("+262142-12-31T23:59:59", &[Value::from(3)]) else {
            panic!("a date no time zone can show was accepted");
        };
        assert_eq!(malformed_field(&error), "transactions[0].emitted_at");
        assert!(error.to_string().contains("1970"), "{error}");
    }

    #[test]
    fn an_absurd_size_fails_its_receipt_alone() {
        let sizes = [
            Value::from(12),
            Value::from(u64::MAX.to_string()),
            Value::from(MAX_RECEIPT_SIZE + 1),
            Value::from(MAX_RECEIPT_SIZE),
        ];
        let receipts = listed("2026-05-15T08:01:44.000Z", &sizes).unwrap().receipts;
        assert_eq!(receipts[0].as_ref().map(|(r, _)| r.size).ok(), Some(12));
        for bad in [1, 2] {
            let error = receipts[bad]
                .as_ref()
                .expect_err("an absurd size is refused");
            let expected = format!("transactions[0].attachments[{bad}].file_size");
            assert_eq!(malformed_field(error), expected);
        }
        assert!(receipts[3].is_ok(), "the bound itself is accepted");
        let fresh: AttachmentDto = serde_json::from_value(
            serde_json::json!({ "url": "https://s3/x", "file_size": u64::MAX }),
        )
        .unwrap();
        let error = fresh_url(fresh).expect_err("an absurd size is refused");
        assert_eq!(malformed_field(&error), "attachment.file_size");
    }

    proptest! {
        /// Whatever the server sends, decoding returns (never panics), and every error
        /// names a field under the item's path.
        #[test]
        fn decoding_never_panics(value in json(), day in 0u32..40) {
            let start = NaiveDate::from_ymd_opt(2026, 5, 1)
                .and_then(|d| d.checked_add_days(chrono::Days::new(u64::from(day))));
            let account = AccountId::new("acc");
            match transaction(value, "transactions[0]", &account, start) {
                Ok(listed) => {
                    for receipt in listed.receipts {
                        if let Err(crate::Error::Malformed { field, .. }) = receipt {
                            prop_assert!(field.starts_with("transactions[0]"));
                        }
                    }
                }
                Err(crate::Error::Malformed { field, .. }) => {
                    prop_assert!(field.starts_with("transactions[0]"));
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }

        #[test]
        fn amounts_never_panic(text in ".{0,30}") {
            let _ = super::super::model::decimal_to_cents(&text);
        }
    }
}
