//! Layout properties: every name valid, paths within limits, unique and stable.

use super::names::{check_name, utf16_len};
use super::*;
use crate::model::{
    AccountId, BankAccount, CurrencyCode, Money, ReceiptId, Transaction, TransactionId,
    TransactionStatus,
};
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::collections::HashSet;

fn account(id: &str, name: &str, iban: Option<&str>) -> BankAccount {
    BankAccount {
        id: AccountId::new(id),
        name: name.to_owned(),
        iban: iban.map(str::to_owned),
        currency: CurrencyCode::EUR,
    }
}

fn receipt(id: &str, label: &str, file_name: &str, emitted_secs: i64, cents: i64) -> Receipt {
    Receipt {
        id: ReceiptId::new(id),
        file_name: file_name.to_owned(),
        content_type: Some("application/pdf".into()),
        size: 10,
        created_at: Utc.timestamp_opt(emitted_secs, 0).unwrap(),
        transaction: Transaction {
            id: TransactionId::new(format!("tx-{id}")),
            account_id: AccountId::new("acc"),
            emitted_at: Utc.timestamp_opt(emitted_secs, 0).unwrap(),
            settled_at: None,
            amount: Money::new(cents, CurrencyCode::EUR),
            label: label.to_owned(),
            status: TransactionStatus::Completed,
        },
    }
}

#[test]
fn the_documented_example() {
    let layout = Layout::default();
    let acc = account(
        "acc",
        "Main account",
        Some("FR76 3000 4000 0312 3456 7890 143"),
    );
    let folder = layout.account_folder(&acc);
    let account_tag = names::short_tag("FR7630004000031234567890143");
    assert_eq!(folder, format!("Main account 0143 {account_tag}"));
    // 2026-11-03 10:00 UTC.
    let r = receipt("r1", "Amazon EU", "invoice.pdf", 1_762_164_000, -1234);
    let path = layout.receipt_path(&folder, &r);
    let tag = names::short_tag("r1");
    assert_eq!(
        path.as_str(),
        format!(
            "Main account 0143 {account_tag}/2025-11/2025-11-03 Amazon EU -12.34 EUR {tag}.pdf"
        )
    );
}

fn untagged() -> Layout {
    Layout::new(
        LayoutSettings {
            account_naming: AccountNaming::NameAndIban,
            ..LayoutSettings::default()
        },
        NameLimits::default(),
    )
}

#[test]
fn archives_made_before_account_tags_keep_their_folder_names() {
    let acc = account(
        "acc",
        "Main account",
        Some("FR76 3000 4000 0312 3456 7890 143"),
    );
    assert_eq!(untagged().account_folder(&acc), "Main account 0143");
    let no_iban = account("acc", "Main account", None);
    let tag = names::short_tag("acc");
    assert_eq!(
        untagged().account_folder(&no_iban),
        format!("Main account {tag}")
    );
    assert_eq!(
        Layout::default().account_folder(&no_iban),
        format!("Main account {tag}"),
        "the id's tag once, not twice"
    );
}

#[test]
fn two_organisations_accounts_of_the_same_name_and_iban_ending_never_share_a_folder() {
    // Each organisation names its folders alone: nothing tells one about the other.
    let a = account("org-a-account", "Compte principal", Some("FR76 1111 0137"));
    let b = account("org-b-account", "Compte principal", Some("FR76 2222 0137"));
    let layout = Layout::default();
    let of_a = layout.account_folders([&a]);
    let of_b = layout.account_folders([&b]);
    assert_ne!(
        of_a[&a.id].to_lowercase(),
        of_b[&b.id].to_lowercase(),
        "{of_a:?} {of_b:?}"
    );
    assert!(
        of_a[&a.id].starts_with("Compte principal 0137 "),
        "{of_a:?}"
    );
    // Without the tags they collide: the archives made before them share the folder.
    assert_eq!(
        untagged().account_folders([&a])[&a.id],
        untagged().account_folders([&b])[&b.id]
    );
}

#[test]
fn an_account_keeps_its_folder_when_qonto_gives_its_id_later() {
    // Known by its IBAN while Qonto gave no id, then by its id.
    let iban = "FR76 3000 4000 0312 3456 7890 143";
    let before = account("FR7630004000031234567890143", "Main", Some(iban));
    let after = account("0b9f6c1e-1d2a-4c3b-9e8f-7a6b5c4d3e2f", "Main", Some(iban));
    let layout = Layout::default();
    assert_eq!(
        layout.account_folder(&before),
        layout.account_folder(&after)
    );
}

#[test]
fn the_account_tag_survives_a_short_path_limit() {
    let long = account("acc", &"Compte ".repeat(40), Some("FR76 0137"));
    let tight = Layout::new(
        LayoutSettings::default(),
        NameLimits {
            max_name_len: 255,
            max_path_len: 160,
            root_prefix_len: 18,
        },
    );
    let folder = tight.account_folder(&long);
    assert!(
        folder.ends_with(&format!("0137 {}", names::short_tag("FR760137"))),
        "{folder}"
    );
}

#[test]
fn dates_in_the_layout_time_zone_and_periods() {
    // 2026-03-31 23:30 UTC is already April 1st in Paris (CEST, UTC+2).
    let r = receipt("r", "x", "a.pdf", 1_774_999_800, 1);
    let paris = Layout::default();
    assert_eq!(paris.receipt_day(&r).to_string(), "2026-04-01");
    let quarterly = Layout::new(
        LayoutSettings {
            period: Period::Quarter,
            time_zone: chrono_tz::UTC,
            ..LayoutSettings::default()
        },
        NameLimits::default(),
    );
    assert_eq!(
        quarterly.receipt_path("A", &r).names().nth(1),
        Some("2026-Q1")
    );
    let yearly = Layout::new(
        LayoutSettings {
            period: Period::Year,
            ..LayoutSettings::default()
        },
        NameLimits::default(),
    );
    assert_eq!(yearly.receipt_path("A", &r).names().nth(1), Some("2026"));
}

#[test]
fn same_named_accounts_get_distinct_folders() {
    let layout = Layout::default();
    let a = account("a", "Main", Some("FR76 0000 1111"));
    let b = account("b", "MAIN", Some("FR76 9999 1111"));
    let c = account("c", "Other", None);
    let folders = layout.account_folders([&a, &b, &c]);
    assert_ne!(folders[&a.id].to_lowercase(), folders[&b.id].to_lowercase());
    assert_eq!(folders[&c.id], layout.account_folder(&c));
}

#[test]
fn the_settlement_date_and_status_do_not_move_a_receipt() {
    let layout = Layout::default();
    let pending = receipt("r", "Shop", "a.jpg", 1_700_000_000, -500);
    let mut settled = pending.clone();
    settled.transaction.settled_at = Some(Utc.timestamp_opt(1_700_500_000, 0).unwrap());
    settled.transaction.status = TransactionStatus::Completed;
    assert_eq!(
        layout.receipt_path("A", &pending),
        layout.receipt_path("A", &settled)
    );
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,40}",
        Just(String::new()),
        Just("../..".to_owned()),
        Just(" . ".to_owned()),
        Just("CON".to_owned()),
        Just("lpt9.pdf".to_owned()),
        Just("desktop.ini".to_owned()),
        Just("~$lock".to_owned()),
        Just("a_vti_b".to_owned()),
        "[\\x00-\\x1f\"*:<>?/\\\\|#% .~]{0,30}",
        "[a-zA-Z0-9 ]{0,30}".prop_map(|s| s.repeat(400)),
        "\\PC{1,3}".prop_map(|s| s.repeat(3_500)),
    ]
}

fn any_receipt() -> impl Strategy<Value = Receipt> {
    (
        any_text(),
        any_text(),
        any_text(),
        proptest::option::of(prop_oneof![Just("image/png".to_owned()), any::<String>()]),
        -2_000_000_000i64..4_000_000_000i64,
        any::<i64>(),
    )
        .prop_map(|(id, label, file_name, content_type, secs, cents)| {
            let mut r = receipt(&id, &label, &file_name, secs, cents);
            r.content_type = content_type;
            r
        })
}

fn any_limits() -> impl Strategy<Value = NameLimits> {
    (0usize..120).prop_map(|prefix| NameLimits {
        root_prefix_len: prefix,
        ..NameLimits::default()
    })
}

fn assert_valid_path(layout: &Layout, path: &ArchivePath) -> Result<(), TestCaseError> {
    let limits = layout.limits();
    for name in path.names() {
        prop_assert!(
            check_name(name, limits.max_name_len).is_ok(),
            "invalid name {name:?}: {:?}",
            check_name(name, limits.max_name_len)
        );
    }
    let total = limits.root_prefix_len + utf16_len(path.as_str());
    prop_assert!(
        total < limits.max_path_len,
        "path of {total} units: {path:?}"
    );
    prop_assert_eq!(path.depth(), 3);
    Ok(())
}

/// Zones with the largest offsets either side of UTC: at the ends of chrono's
/// calendar their local time does not exist.
const EXTREME_ZONES: [Tz; 4] = [
    chrono_tz::Pacific::Kiritimati,
    chrono_tz::Etc::GMTPlus12,
    chrono_tz::Europe::Paris,
    chrono_tz::UTC,
];

fn at(instant: chrono::DateTime<Utc>) -> Receipt {
    let mut r = receipt("edge", "Shop", "a.pdf", 0, -100);
    r.transaction.emitted_at = instant;
    r
}

#[test]
fn a_date_outside_the_believed_range_takes_the_nearest_bound() {
    let latest = NaiveDate::from_ymd_opt(2199, 12, 31).unwrap();
    let earliest = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    for tz in EXTREME_ZONES {
        let layout = Layout::new(
            LayoutSettings {
                period: Period::Month,
                time_zone: tz,
                ..LayoutSettings::default()
            },
            NameLimits::default(),
        );
        let late = layout.receipt_day(&at(chrono::DateTime::<Utc>::MAX_UTC));
        let early = layout.receipt_day(&at(chrono::DateTime::<Utc>::MIN_UTC));
        // The bound, seen from `tz`: a day either side at most.
        assert!(
            (latest..=latest.succ_opt().unwrap()).contains(&late),
            "{tz}: {late}"
        );
        assert!(
            (earliest.pred_opt().unwrap()..=earliest).contains(&early),
            "{tz}: {early}"
        );
    }
}

/// Any second chrono holds, often near its two ends, where local times overflow.
fn any_second() -> impl Strategy<Value = i64> {
    let first = chrono::DateTime::<Utc>::MIN_UTC.timestamp();
    let last = chrono::DateTime::<Utc>::MAX_UTC.timestamp();
    let days = 3 * 86_400;
    prop_oneof![first..first + days, last - days..=last, first..=last]
}

proptest! {
    #[test]
    fn any_instant_chrono_holds_gets_a_path(
        secs in any_second(),
        zone in 0..EXTREME_ZONES.len(),
    ) {
        let layout = Layout::new(
            LayoutSettings { period: Period::Quarter, time_zone: EXTREME_ZONES[zone], ..LayoutSettings::default() },
            NameLimits::default(),
        );
        let instant = Utc.timestamp_opt(secs, 0).unwrap();
        let path = layout.receipt_path("Main 0143", &at(instant));
        prop_assert!(path.as_str().starts_with("Main 0143/"), "{path}");
    }

    #[test]
    fn every_name_is_valid_and_within_limits(
        name in any_text(),
        iban in proptest::option::of(any_text()),
        r in any_receipt(),
        limits in any_limits(),
    ) {
        let layout = Layout::new(LayoutSettings::default(), limits);
        let acc = account("acc", &name, iban.as_deref());
        let folder = layout.account_folder(&acc);
        let path = layout.receipt_path(&folder, &r);
        assert_valid_path(&layout, &path)?;
    }

    #[test]
    fn paths_are_stable_whatever_else_exists(
        r in any_receipt(),
        others in proptest::collection::vec(any_receipt(), 0..5),
    ) {
        let layout = Layout::default();
        let acc = account("acc", "Main", Some("FR7612345"));
        let alone = layout.account_folders([&acc]);
        let extra = account("zzz", "Another", None);
        let with_more = layout.account_folders([&acc, &extra]);
        prop_assert_eq!(&alone[&acc.id], &with_more[&acc.id]);
        let before = layout.receipt_path(&alone[&acc.id], &r);
        for o in &others {
            let _ = layout.receipt_path(&alone[&acc.id], o);
        }
        prop_assert_eq!(before, layout.receipt_path(&with_more[&acc.id], &r));
    }

    #[test]
    fn distinct_receipts_get_distinct_paths(
        rs in proptest::collection::vec(any_receipt(), 2..12),
        same_day_and_label in any::<bool>(),
    ) {
        let layout = Layout::default();
        let mut seen = HashSet::new();
        let mut ids = HashSet::new();
        for mut r in rs {
            if !ids.insert(r.id.clone()) {
                continue;
            }
            if same_day_and_label {
                // The hardest case: everything equal but the id.
                r.transaction.label = "Same".into();
                r.transaction.emitted_at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
                r.transaction.amount = Money::new(-100, CurrencyCode::EUR);
                r.file_name = "same.pdf".into();
            }
            let path = layout.receipt_path("A", &r);
            prop_assert!(seen.insert(path.key()), "two receipts share {path:?}");
        }
    }

    #[test]
    fn account_folders_are_unique_and_valid(
        accounts in proptest::collection::vec((any_text(), proptest::option::of(any_text())), 1..8),
        limits in any_limits(),
    ) {
        let layout = Layout::new(LayoutSettings::default(), limits);
        let accounts: Vec<BankAccount> = accounts
            .iter()
            .enumerate()
            .map(|(i, (name, iban))| account(&format!("acc-{i}"), name, iban.as_deref()))
            .collect();
        let folders = layout.account_folders(&accounts);
        let mut keys = HashSet::new();
        for name in folders.values() {
            prop_assert!(check_name(name, 255).is_ok(), "{name:?}");
            prop_assert!(keys.insert(name.to_lowercase()), "duplicate folder {name:?}");
        }
    }

    #[test]
    fn clean_text_is_idempotent_and_finish_name_always_valid(s in any_text(), max in 1usize..300) {
        let once = names::clean_text(&s);
        prop_assert_eq!(names::clean_text(&once), once.clone());
        let finished = names::finish_name(&once, max.min(255), "fallback");
        prop_assert!(check_name(&finished, max.min(255)).is_ok(), "{finished:?}");
    }
}

proptest! {
    #[test]
    fn days_and_amounts_are_written_as_displayed(cents in any::<i64>(), days in -800_000i32..3_000_000) {
        let amount = Money::new(cents, CurrencyCode::EUR);
        let mut out = String::new();
        push_amount(&mut out, amount);
        prop_assert_eq!(out, amount.to_string());
        let day = NaiveDate::from_num_days_from_ce_opt(days).unwrap();
        let mut out = String::new();
        push_day(&mut out, day);
        prop_assert_eq!(out, day.to_string());
    }
}

#[test]
fn edge_amounts_are_written_as_displayed() {
    for cents in [
        i64::MIN,
        i64::MAX,
        -100,
        -99,
        -1,
        0,
        1,
        99,
        100,
        101,
        1_000_000,
    ] {
        let amount = Money::new(cents, CurrencyCode::EUR);
        let mut out = String::new();
        push_amount(&mut out, amount);
        assert_eq!(out, amount.to_string());
    }
}
