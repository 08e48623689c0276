//! Private serde DTOs of the Qonto API, lenient by construction.
//!
//! Every field is a [`Lenient`]: it never fails to deserialize, it records whether
//! the value was missing, readable, or of the wrong shape. The conversion in
//! `convert.rs` then decides, field by field, what is required, and names the exact
//! path of what is wrong (`transactions[3].attachments[0].file_size`). So one odd
//! item fails alone, never its page (qonto.md §7: "deserialize leniently").

use crate::auth::SecretString;
use crate::model::PLAUSIBLE_DATES;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A field as the server sent it: missing (or `null`), readable, or unreadable.
#[derive(Default)]
pub(crate) enum Lenient<T> {
    /// Absent or `null`.
    #[default]
    Missing,
    /// Readable.
    Present(T),
    /// Present but of the wrong shape; holds the JSON kind seen (never the value:
    /// it could be a pre-signed URL).
    Invalid(&'static str),
}

impl<T> Lenient<T> {
    /// The value when readable.
    pub(crate) fn ok(self) -> Option<T> {
        match self {
            Lenient::Present(value) => Some(value),
            _ => None,
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        if value.is_null() {
            return Ok(Lenient::Missing);
        }
        let kind = kind_of(&value);
        Ok(match T::deserialize(value) {
            Ok(parsed) => Lenient::Present(parsed),
            Err(_) => Lenient::Invalid(kind),
        })
    }
}

/// The JSON kind of a value, for error messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A non-negative integer sent as a number or as a string of digits
/// (`file_size` is a string in the docs, a number in some clients: qonto.md §2.3).
pub(crate) struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match Value::deserialize(d)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed
            .map(Count)
            .ok_or_else(|| serde::de::Error::custom("not a count"))
    }
}

/// A signed integer sent as a number or a string (`amount_cents`, page numbers).
pub(crate) struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match Value::deserialize(d)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed
            .map(Int)
            .ok_or_else(|| serde::de::Error::custom("not an integer"))
    }
}

/// An amount in major units, exactly as cents. Sent as a number (`52.4`) or a string
/// (`"50.00"`, `"10,00"`): qonto.md §2.2. Strings are parsed as decimals, never
/// through a float.
pub(crate) struct Cents(pub i64);

impl<'de> Deserialize<'de> for Cents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match Value::deserialize(d)? {
            // serde_json prints a number back as its shortest exact form (`52.4`).
            Value::Number(n) => decimal_to_cents(&n.to_string()),
            Value::String(s) => decimal_to_cents(&s),
            _ => None,
        };
        parsed
            .map(Cents)
            .ok_or_else(|| serde::de::Error::custom("not an amount"))
    }
}

/// `"12.3"` → 1230, `"-0,05"` → -5, `"7"` → 700. More than two decimals are accepted
/// only when the extra digits are zeros: anything else is not a whole number of cents.
pub(crate) fn decimal_to_cents(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut parts = digits.split(['.', ',']);
    let whole = parts.next()?;
    let fraction = parts.next().unwrap_or("");
    if parts.next().is_some()
        || (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || fraction.bytes().skip(2).any(|b| b != b'0')
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut cents = 0i64;
    for (i, b) in fraction.bytes().take(2).enumerate() {
        let scale = if i == 0 { 10 } else { 1 };
        cents += i64::from(b - b'0') * scale;
    }
    let total = whole.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -total } else { total })
}

/// A rate in percent, sent as a number (`20`, `5.5`) or a string (`"5,5"`), kept as
/// decimal text with `.` (never through a float's rounding of the text).
pub(crate) struct Rate(pub String);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match Value::deserialize(d)? {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.trim().replace(',', ".")),
            _ => None,
        };
        text.filter(|t| is_decimal(t))
            .map(Rate)
            .ok_or_else(|| serde::de::Error::custom("not a rate"))
    }
}

/// Digits with at most one `.` between digits, nothing else.
fn is_decimal(text: &str) -> bool {
    let mut parts = text.split('.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    parts.next().is_none() && digits(whole) && fraction.is_none_or(digits)
}

/// An instant: RFC 3339 (`2021-03-03T16:06:38.000Z`, qonto.md §2), or a zone-less
/// date-time read as UTC (`2021-03-10 09:12:44.104211`, seen in §6.1), within
/// [`PLAUSIBLE_DATES`].
pub(crate) struct Timestamp(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_time(&text)
            .map(Timestamp)
            .ok_or_else(|| serde::de::Error::custom("not a timestamp"))
    }
}

/// Parses an instant the way [`Timestamp`] does.
///
/// `%Y` reads any year chrono knows (`+262142-12-31T23:59:59` parses), and such an
/// instant has no local time east of UTC: outside [`PLAUSIBLE_DATES`] it is no
/// timestamp, so it fails its own item instead of every later date conversion.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let parsed = match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .map(|naive| naive.and_utc()),
    };
    parsed.filter(|t| PLAUSIBLE_DATES.contains(t))
}

/// `{ "organization": … }` (qonto.md §2.1).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct OrganizationEnvelope {
    pub organization: Lenient<OrganizationDto>,
}

/// The organisation: only its bank accounts matter here.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct OrganizationDto {
    pub bank_accounts: Lenient<Vec<Value>>,
}

/// One bank account (qonto.md §2.1, §6.1); `id` may be missing (§8.6).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct BankAccountDto {
    pub id: Lenient<String>,
    pub name: Lenient<String>,
    pub slug: Lenient<String>,
    pub iban: Lenient<String>,
    pub currency: Lenient<String>,
}

/// A list page: `{ "<resource>": [...], "meta": {...} }` (qonto.md §2.6).
/// Items stay raw so each is decoded, and fails, alone.
pub(crate) struct ListPage {
    pub items: Vec<Value>,
    pub meta: Meta,
}

/// Paging metadata (qonto.md §2.6).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Meta {
    pub current_page: Lenient<Int>,
    pub next_page: Lenient<Int>,
}

/// One transaction (qonto.md §2.2, §6.2). Only what a receipt needs is read.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct TransactionDto {
    pub id: Lenient<String>,
    pub transaction_id: Lenient<String>,
    pub amount: Lenient<Cents>,
    pub amount_cents: Lenient<Int>,
    pub currency: Lenient<String>,
    pub side: Lenient<String>,
    pub status: Lenient<String>,
    pub label: Lenient<String>,
    pub clean_counterparty_name: Lenient<String>,
    pub reference: Lenient<String>,
    pub emitted_at: Lenient<Timestamp>,
    pub settled_at: Lenient<Timestamp>,
    pub created_at: Lenient<Timestamp>,
    pub updated_at: Lenient<Timestamp>,
    pub attachments: Lenient<Vec<Value>>,
    pub attachment_ids: Lenient<Vec<Value>>,
    /// The rest is read for the accountant's index only (qonto.md §2.2).
    pub note: Lenient<String>,
    pub category: Lenient<String>,
    pub vat_amount: Lenient<Cents>,
    pub vat_amount_cents: Lenient<Int>,
    pub vat_rate: Lenient<Rate>,
}

/// One attachment (qonto.md §2.3, §6.3). `url` is a secret: it grants access to the file.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AttachmentDto {
    pub id: Lenient<String>,
    pub created_at: Lenient<Timestamp>,
    pub file_name: Lenient<String>,
    pub file_size: Lenient<Count>,
    pub file_content_type: Lenient<String>,
    pub url: Lenient<SecretString>,
}

/// `{ "attachment": … }` (qonto.md §2.3).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AttachmentEnvelope {
    pub attachment: Lenient<AttachmentDto>,
}

/// A Qonto error body: `{ "errors": [ { code, detail, source } ], "trace_id" }` (qonto.md §3).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub errors: Lenient<Vec<ErrorItem>>,
    pub trace_id: Lenient<String>,
    /// Some gateways answer `{ "message": … }` instead.
    pub message: Lenient<String>,
}

/// One error object.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ErrorItem {
    pub code: Lenient<String>,
    pub detail: Lenient<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_cents() {
        assert_eq!(decimal_to_cents("52.4"), Some(5240));
        assert_eq!(decimal_to_cents("10,00"), Some(1000));
        assert_eq!(decimal_to_cents("-0.05"), Some(-5));
        assert_eq!(decimal_to_cents("7"), Some(700));
        assert_eq!(decimal_to_cents(".5"), Some(50));
        assert_eq!(decimal_to_cents("1.2300"), Some(123));
        assert_eq!(decimal_to_cents("0.1"), Some(10));
        for bad in ["", "-", ".", "1.234", "1.2.3", "1e3", "abc", "1 000", "++1"] {
            assert_eq!(decimal_to_cents(bad), None, "{bad:?}");
        }
        assert_eq!(decimal_to_cents("92233720368547758.07"), Some(i64::MAX));
        assert_eq!(decimal_to_cents("92233720368547758.08"), None);
    }

    #[test]
    fn lenient_fields_record_what_they_saw() {
        let dto: AttachmentDto =
            serde_json::from_value(serde_json::json!({"file_size": "12", "id": 5, "url": null}))
                .unwrap();
        assert!(matches!(dto.file_size, Lenient::Present(Count(12))));
        assert!(matches!(dto.id, Lenient::Invalid("a number")));
        assert!(matches!(dto.url, Lenient::Missing));
        let cents: Lenient<Cents> = serde_json::from_value(serde_json::json!(52.4)).unwrap();
        assert!(matches!(cents, Lenient::Present(Cents(5240))));
    }

    #[test]
    fn timestamps_with_or_without_zone() {
        assert!(parse_time("2021-03-03T16:06:38.000Z").is_some());
        assert!(parse_time("2021-03-10 09:12:44.104211").is_some());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn timestamps_outside_1970_to_2199_are_not_timestamps() {
        for edge in [
            "+262142-12-31T23:59:59",
            "-262143-01-01 00:00:00",
            "2200-01-01T00:00:00Z",
            "9999-12-31T23:59:59-23:59",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_time(edge), None, "{edge}");
        }
        assert!(parse_time("1970-01-01T00:00:00Z").is_some());
        assert!(parse_time("2199-12-31 23:59:59.999").is_some());
        let edge: Lenient<Timestamp> =
            serde_json::from_value(serde_json::json!("+262142-12-31T23:59:59")).unwrap();
        assert!(matches!(edge, Lenient::Invalid("a string")));
    }
}
