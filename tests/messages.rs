//! Every error's message, built with representative values, keeps the rules a person
//! relies on: it leads with what to do or a plain statement (details on lines of their
//! own), never repeats itself, never points to a file that does not ship, and never
//! cuts a value it quotes.

use proptest::prelude::*;
use receipt_sync::Error;
use receipt_sync::error::{human_bytes, human_bytes_up};
use std::path::PathBuf;
use std::time::Duration;

/// An error, the values it was built with, and those that are details (to stay off
/// the first line).
struct Case {
    error: Error,
    values: Vec<String>,
    details: Vec<String>,
}

fn cases(service: &'static str, a: &str, b: &str, c: &str, n: u64, m: u64) -> Vec<Case> {
    let case = |error, values: &[&str], details: &[&str]| Case {
        error,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        details: details.iter().map(|v| (*v).to_owned()).collect(),
    };
    let (big, small) = (n.max(m) + 1, n.min(m));
    vec![
        case(
            Error::Transient {
                service,
                operation: a.into(),
                message: b.into(),
                retry_after: None,
            },
            &[a, b],
            &[b],
        ),
        case(
            Error::RateLimited {
                service,
                operation: a.into(),
                retry_after: Some(Duration::from_secs(n)),
            },
            &[a, &format!("retry after {n} s")],
            &[],
        ),
        case(
            Error::RateLimited {
                service,
                operation: a.into(),
                retry_after: None,
            },
            &[a],
            &[],
        ),
        case(
            Error::ThrottledUntil {
                service,
                operation: a.into(),
                until: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            },
            &[a, "2027-01-15 08:00 UTC"],
            &[],
        ),
        case(
            Error::Unauthorized {
                service,
                hint: a.into(),
            },
            &[a],
            &[],
        ),
        case(
            Error::ConsentRevoked {
                service,
                hint: a.into(),
            },
            &[a],
            &[],
        ),
        case(
            Error::Forbidden {
                service,
                detail: a.into(),
            },
            &[a],
            &[],
        ),
        case(
            Error::QuotaExceeded {
                needed: big,
                remaining: small,
            },
            &[&human_bytes_up(big), &human_bytes(small)],
            &[],
        ),
        case(Error::NotFound { what: a.into() }, &[a], &[]),
        case(Error::AlreadyExists { what: a.into() }, &[a], &[]),
        case(
            Error::Integrity {
                what: a.into(),
                expected: b.into(),
                actual: c.into(),
            },
            &[a, b, c],
            &[b, c],
        ),
        case(
            Error::Malformed {
                service,
                field: a.into(),
                detail: b.into(),
            },
            &[a, b],
            &[a, b],
        ),
        case(
            Error::Rejected {
                service,
                operation: a.into(),
                message: b.into(),
            },
            &[a, b],
            &[b],
        ),
        case(Error::Config(a.into()), &[a], &[]),
        case(
            Error::State {
                path: PathBuf::from(format!("/home/{a}/state")),
                detail: b.into(),
            },
            &[a, b],
            &[],
        ),
        case(
            Error::DiskFull {
                operation: "append to",
                path: PathBuf::from(format!("/home/{a}/state.journal")),
            },
            &[a, "free up space"],
            &[a],
        ),
        case(Error::AlreadyRunning { what: a.into() }, &[a], &[]),
        case(
            Error::io(
                "write",
                format!("/home/{a}/x"),
                std::io::Error::other(b.to_owned()),
            ),
            &[a, b],
            &[],
        ),
        case(Error::Cancelled, &[], &[]),
        case(
            Error::Permanent {
                service,
                operation: a.into(),
                message: b.into(),
            },
            &[a, b],
            &[],
        ),
    ]
}

/// The rules a machine can check, with the reason a message breaks one.
fn check(case: &Case) -> Result<(), String> {
    let text = case.error.to_string();
    let first = text.lines().next().unwrap_or_default();
    if text.contains(".md") || text.contains('§') {
        return Err("points to a document that does not ship".into());
    }
    if first.is_empty()
        || first.starts_with("HTTP")
        || first.starts_with(['[', '(', '{'])
        || first.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err("does not open with a statement".into());
    }
    // One or two sentences first; details go below.
    if first.trim_end_matches('.').matches(". ").count() > 1 {
        return Err("more than two sentences before the details".into());
    }
    for value in &case.values {
        if !text.contains(value.as_str()) {
            return Err(format!("{value:?} is not quoted whole"));
        }
    }
    for detail in &case.details {
        if first.contains(detail.as_str()) {
            return Err(format!("the detail {detail:?} is on the first line"));
        }
    }
    // Four words in a row said twice is a repeated phrase ("wait for it to finish").
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let phrases: Vec<&[String]> = words.windows(4).collect();
    for (i, phrase) in phrases.iter().enumerate() {
        if phrases[i + 1..].contains(phrase) {
            return Err(format!("repeats {:?}", phrase.join(" ")));
        }
    }
    Ok(())
}

fn value() -> impl Strategy<Value = String> {
    "[a-z]{3,8}( [a-z]{3,8}){0,2}-[0-9]{1,4}"
}

proptest! {
    #[test]
    fn every_message_keeps_the_rules(
        service in prop::sample::select(vec!["qonto", "onedrive", "microsoft"]),
        a in value(),
        b in value(),
        c in value(),
        n in 1u64..100_000,
        m in 0u64..100_000,
    ) {
        prop_assume!(a != b && b != c && a != c);
        for case in cases(service, &a, &b, &c, n, m) {
            if let Err(broken) = check(&case) {
                prop_assert!(false, "{broken}: {:?}\n{}", case.error.kind(), case.error);
            }
        }
    }
}

#[test]
fn the_checks_catch_what_they_are_for() {
    let bad = |text: &str| Case {
        error: Error::Config(text.into()),
        values: vec![],
        details: vec![],
    };
    assert!(check(&bad("wait for it to finish; then wait for it to finish")).is_err());
    assert!(check(&bad("see qonto.md §1.1 for the header")).is_err());
    assert!(check(&bad("ok")).is_ok());
    let cut = Case {
        error: Error::Config("the value abcde".into()),
        values: vec!["abcdef".into()],
        details: vec![],
    };
    assert!(check(&cut).is_err());
}
