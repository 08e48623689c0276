//! The plan of a fixed, large history, pinned: any change in what the planner decides,
//! or in the order it decides it, changes the pinned hashes. Names with every kind of
//! text the layout cleans, duplicate account names, renamed accounts and folders,
//! deleted files and folders, the user's own files, start dates and declined,
//! implausible and vanished receipts all take part.

use super::*;
use chrono::{Duration, NaiveDate};

const LABELS: &[&str] = &[
    "Amazon EU",
    "Café de la Gare",
    "e\u{301}picerie fine",
    "ACME:\tInc */ <x>",
    "a_VTI_b",
    "CON",
    "   ",
    "Ωmega ΣΑΣ",
    "Straße",
    "日本語のラベル",
    "\u{1F600} emoji store",
    "Desktop.ini",
    "\u{212A}elvin Instruments",
    "İstanbul Ltd",
    "  trailing dots...",
    ".hidden",
    "~lock",
    "lpt1",
    "Supplier SARL",
    "Ünïcödé  mixed\u{0} control",
];

const FILE_NAMES: &[&str] = &[
    "invoice.pdf",
    "scan",
    "photo.JPG",
    "x.toolongext",
    "ticket.Png",
];

fn big_receipt(i: u64) -> Receipt {
    let accounts = ["main", "main2", "epargne", "long", "renamed"];
    let account = if i.is_multiple_of(97) {
        "ghost"
    } else {
        accounts[(i % 5) as usize]
    };
    let start = Utc.with_ymd_and_hms(2019, 1, 1, 0, 30, 0).unwrap();
    let emitted_at = if i.is_multiple_of(1009) {
        Utc.with_ymd_and_hms(1960, 5, 1, 0, 0, 0).unwrap()
    } else {
        start + Duration::minutes((i * 7919 % 4_000_000) as i64)
    };
    let label = LABELS[(i % LABELS.len() as u64) as usize];
    let label = if i.is_multiple_of(3) {
        format!("{label} {}", i % 11)
    } else if i.is_multiple_of(257) {
        label.repeat(12)
    } else {
        label.to_owned()
    };
    let status = match i % 50 {
        0 => TransactionStatus::Declined,
        1 => TransactionStatus::Pending,
        _ => TransactionStatus::Completed,
    };
    Receipt {
        id: ReceiptId::new(format!(
            "{:08x}-{i}",
            i.wrapping_mul(2_654_435_761) % (1 << 32)
        )),
        file_name: FILE_NAMES[(i % FILE_NAMES.len() as u64) as usize].to_owned(),
        content_type: [Some("application/pdf"), Some("image/png"), None][(i % 3) as usize]
            .map(str::to_owned),
        size: if i.is_multiple_of(1511) {
            1 << 40
        } else {
            1_000 + i % 777
        },
        created_at: emitted_at,
        transaction: Transaction {
            id: TransactionId::new(format!("tx-{i}")),
            account_id: AccountId::new(account),
            emitted_at,
            settled_at: None,
            amount: Money::new((i as i64 % 200_001) - 100_000, CurrencyCode::EUR),
            label,
            status,
        },
    }
}

/// FNV-1a, 64 bits: a hash that never changes between Rust releases.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn pinned_sim() -> Sim {
    let mut sim = Sim::new(true);
    // Account folders named as before account tags, so that the colliding names below
    // still collide and the hashes, pinned then, pin the planner's decisions.
    sim.layout = crate::layout::Layout::new(
        crate::layout::LayoutSettings {
            account_naming: crate::layout::AccountNaming::NameAndIban,
            ..Default::default()
        },
        crate::layout::NameLimits::default(),
    );
    sim.add_account("main", "Main");
    sim.add_account("main2", "MAIN");
    sim.add_account("epargne", "Épargne   Société Générale");
    sim.add_account("long", &"N".repeat(100));
    sim.add_account("renamed", "Old name");
    // The same IBAN ending for "main" and "main2": their folder names collide.
    for id in ["main", "main2"] {
        let record = sim.state.accounts.get_mut(&AccountId::new(id)).unwrap();
        record.account.iban = Some("FR76 3000 1234".into());
    }
    sim.state
        .accounts
        .get_mut(&AccountId::new("epargne"))
        .unwrap()
        .account
        .iban = None;
    sim.options =
        PlanOptions::default().with_start_date(Some(NaiveDate::from_ymd_opt(2019, 3, 1).unwrap()));
    for i in 0..16_000 {
        sim.add_receipt(big_receipt(i));
    }
    sim
}

#[test]
fn the_plan_of_a_large_fixed_history_is_pinned() {
    let mut sim = pinned_sim();
    let export = sim.sync();
    let text = export.to_string();
    assert_eq!(
        (text.len(), fnv1a(&text)),
        (1_926_731, 9_661_352_708_768_043_248),
        "the initial export's plan changed:\n{}",
        &text[..text.len().min(3000)]
    );

    // The user reorganises, the bank renames an account, new receipts arrive.
    for n in (0..=250u8).step_by(10) {
        if let Some(file) = sim.pick_file(n) {
            sim.user_delete(&file);
        }
    }
    for n in [3u8, 77] {
        if let Some(folder) = sim.pick_folder(n)
            && folder.depth() == 2
        {
            sim.user_delete(&folder);
        }
    }
    if let Some(folder) = sim.pick_folder(11) {
        sim.user_rename(&folder, "Renamed by the user");
    }
    if let (Some(file), Some(folder)) = (sim.pick_file(5), sim.pick_folder(40)) {
        sim.user_move(&file, &folder);
    }
    sim.rename_account("renamed", "New name");
    for i in 16_000..20_000 {
        sim.add_receipt(big_receipt(i));
    }
    for i in (16_001..20_000).step_by(499) {
        sim.vanish(&big_receipt(i).id.to_string());
    }
    for (i, size) in [(16_002u64, 0u64), (16_003, 1_000 + 16_003 % 777)] {
        let id = big_receipt(i).id.to_string();
        let path = sim.planned_path(&id);
        sim.user_add_file(&path, size);
    }
    let next = sim.plan();
    let counts = next.counts();
    for kind in [
        "adopt",
        "rename-folder",
        "tombstone",
        "upload",
        "upload: put back",
        "skip: target occupied",
        "skip: vanished from source",
        "skip: implausible",
        "skip: declined",
        "skip: before start date",
        "skip: unknown account",
        "skip: already archived",
    ] {
        assert!(counts.contains_key(kind), "no {kind:?} in {counts:?}");
    }
    let text = next.to_string();
    assert_eq!(
        (text.len(), fnv1a(&text)),
        (1_433_192, 4_814_487_896_396_495_921),
        "the next plan changed:\n{}",
        &text[..text.len().min(3000)]
    );
}

fn action_of(kind: u8, n: u16) -> Action {
    let path = ArchivePath::parse(format!("A {}/{:03}/f{n}.pdf", n % 3, n % 17)).unwrap();
    let receipt = ReceiptId::new(format!("r{n:05}"));
    match kind % 5 {
        0 => Action::Skip {
            receipt,
            reason: SkipReason::AlreadyArchived,
        },
        1 => Action::Upload {
            receipt,
            path,
            size: 1,
            reason: UploadReason::New,
        },
        2 => Action::CreateFolder {
            path: path.parent().unwrap(),
        },
        3 => Action::Adopt {
            receipt,
            path,
            item: SinkItemId::new("i"),
            size: 1,
        },
        _ => Action::Tombstone {
            receipt,
            path: path.clone(),
            folder: path.parent().unwrap(),
        },
    }
}

proptest! {
    /// The planner's sort (which skips the sort's buffer when it can) orders actions
    /// as a stable sort does, ties included.
    #[test]
    fn actions_are_sorted_as_a_stable_sort_does(
        kinds in proptest::collection::vec((0u8..5, 0u16..400), 0..200),
        skip_share in 0usize..4,
    ) {
        let mut actions: Vec<Action> = kinds
            .iter()
            .enumerate()
            .map(|(i, &(kind, n))| {
                // Skips in receipt order, as the planner makes them; a share of them
                // large enough to take the path that keeps them in place.
                let kind = if i % 4 < skip_share { 0 } else { kind };
                let n = if kind % 5 == 0 { i as u16 } else { n };
                action_of(kind, n)
            })
            .collect();
        // One upload and one creation a path, one action a receipt, as the planner makes.
        let mut seen = std::collections::HashSet::new();
        actions.retain(|a| match a {
            Action::Upload { path, .. } | Action::CreateFolder { path } => seen.insert(path.key()),
            _ => true,
        });
        let mut receipts = std::collections::HashSet::new();
        actions.retain(|a| a.receipt().is_none_or(|r| receipts.insert(r.clone())));
        let mut expected = actions.clone();
        expected.sort_by(Action::plan_order);
        sort_actions(&mut actions);
        prop_assert_eq!(actions, expected);
    }
}

/// Two receipts whose paths differ only in case: their ids share a tag (`c1519886`
/// and `c2318685`, found by search) and their labels differ only in case. The first in
/// receipt order is uploaded; the second waits, since the archive compares names
/// case-insensitively.
#[test]
fn receipts_whose_paths_differ_only_in_case_collide() {
    assert_eq!(names::short_tag("c1519886"), names::short_tag("c2318685"));
    let mut sim = Sim::new(true);
    // Account folders named as before account tags, so that the colliding names below
    // still collide and the hashes, pinned then, pin the planner's decisions.
    sim.layout = crate::layout::Layout::new(
        crate::layout::LayoutSettings {
            account_naming: crate::layout::AccountNaming::NameAndIban,
            ..Default::default()
        },
        crate::layout::NameLimits::default(),
    );
    sim.add_account("main", "Main");
    for (id, label) in [("c1519886", "ACME"), ("c2318685", "acme")] {
        let mut r = receipt(id, "main", 3, 10);
        r.transaction.label = label.to_owned();
        sim.add_receipt(r);
    }
    let plan = sim.plan();
    assert!(matches!(
        skip_reason(&plan, "c2318685"),
        Some(SkipReason::PathCollision(_))
    ));
    assert_eq!(uploads(&plan), [("c1519886".to_owned(), UploadReason::New)]);
}
