//! The layout's names for arbitrary account names, IBANs, labels and file names: always
//! valid on OneDrive and Windows, within the length limits, and stable.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use receipt_sync::layout::names::{check_name, clean_text, finish_name, utf16_len};
use receipt_sync::layout::{Layout, LayoutSettings, NameLimits};
use receipt_sync::model::{
    AccountId, BankAccount, CurrencyCode, Money, Receipt, ReceiptId, Transaction, TransactionId,
    TransactionStatus,
};

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0xFF, which never occurs in UTF-8.
    let mut fields = data.split(|&b| b == 0xFF).map(String::from_utf8_lossy);
    let mut next = || fields.next().unwrap_or_default().into_owned();
    let (name, iban, label, file_name, id) = (next(), next(), next(), next(), next());
    let numbers = data
        .iter()
        .fold(0i64, |n, &b| n.wrapping_mul(31).wrapping_add(i64::from(b)));
    let prefix = usize::from(data.first().copied().unwrap_or(0) % 120);

    let limits = NameLimits {
        root_prefix_len: prefix,
        ..NameLimits::default()
    };
    let layout = Layout::new(LayoutSettings::default(), limits);
    let account = BankAccount {
        id: AccountId::new("acc"),
        name,
        iban: (!iban.is_empty()).then_some(iban),
        currency: CurrencyCode::EUR,
    };
    let at = Utc
        .timestamp_opt(numbers.rem_euclid(4_102_444_800), 0)
        .unwrap();
    let receipt = Receipt {
        id: ReceiptId::new(id),
        file_name,
        content_type: None,
        size: 1,
        created_at: at,
        transaction: Transaction {
            id: TransactionId::new("tx"),
            account_id: AccountId::new("acc"),
            emitted_at: at,
            settled_at: None,
            amount: Money::new(numbers, CurrencyCode::EUR),
            label: label.clone(),
            status: TransactionStatus::Completed,
        },
    };
    let folder = layout.account_folder(&account);
    let path = layout.receipt_path(&folder, &receipt);
    for name in path.names() {
        assert!(
            check_name(name, limits.max_name_len).is_ok(),
            "invalid name {name:?}"
        );
    }
    assert!(
        prefix + utf16_len(path.as_str()) < limits.max_path_len,
        "{path:?} is too long"
    );
    assert_eq!(
        path,
        layout.receipt_path(&folder, &receipt),
        "the path is stable"
    );

    let clean = clean_text(&label);
    assert_eq!(clean_text(&clean), clean, "clean_text is idempotent");
    let finished = finish_name(&clean, 255, "x");
    assert!(
        check_name(&finished, 255).is_ok(),
        "invalid finished name {finished:?}"
    );
    assert_eq!(
        finish_name(&finished, 255, "x"),
        finished,
        "finish_name is idempotent"
    );
});
