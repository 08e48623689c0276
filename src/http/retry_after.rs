//! Reading a `Retry-After` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
//!
//! Graph sends seconds (onedrive-graph.md §6, Throttling); Qonto does not document its
//! form (qonto.md §3). Both forms are read for both, and anything else reads as "not
//! said", so the caller falls back to its own backoff; nothing here can panic.

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// How long `headers` ask to wait, measured from `now` for an HTTP date (a date in the
/// past asks for no wait); `None` when the header is absent or unreadable.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    parse(text, now)
}

/// The value of a `Retry-After` header, read as [`retry_after`] does.
pub(crate) fn parse(text: &str, now: DateTime<Utc>) -> Option<Duration> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: delta-seconds. One too large for a u64 is unreadable, not a
        // wait of forever.
        return text.parse::<u64>().ok().map(Duration::from_secs);
    }
    // IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`, which RFC 2822 parsing accepts.
    let when = DateTime::parse_from_rfc2822(text).ok()?;
    Some(
        (when.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 14, 0, 0).unwrap()
    }

    #[test]
    fn seconds_and_dates_are_read() {
        assert_eq!(parse("300", now()), Some(Duration::from_secs(300)));
        assert_eq!(parse("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse("Mon, 02 Mar 2026 14:05:00 GMT", now()),
            Some(Duration::from_secs(300))
        );
        // A date already past asks for no wait.
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:28:00 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_not_said() {
        for bad in [
            "",
            "soon",
            "-5",
            "1.5",
            "+7",
            "99999999999999999999999",
            "Mon, 32 Mar 2026 14:05:00 GMT",
            "\u{1F600}",
        ] {
            assert_eq!(parse(bad, now()), None, "{bad:?}");
        }
    }

    #[test]
    fn the_header_is_read_from_a_map() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now()), None);
        headers.insert(RETRY_AFTER, " 120 ".parse().unwrap());
        assert_eq!(retry_after(&headers, now()), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(retry_after(&headers, now()), None);
    }
}
