//! The fake Qonto serving several organisations: each key reads its own organisation
//! only, ids never collide across them, and the first organisation keeps the API it
//! always had.

#![cfg(feature = "testkit")]

use futures::TryStreamExt;
use receipt_sync::source::{ReceiptQuery, ReceiptSource, SourceEvent};
use receipt_sync::testkit::fake_qonto::{FakeQonto, NewTransaction};

async fn receipt_ids(
    source: &receipt_sync::source::QontoSource,
    account: &str,
) -> receipt_sync::Result<Vec<String>> {
    let events: Vec<SourceEvent> = source
        .receipts(
            &receipt_sync::model::AccountId::new(account),
            &ReceiptQuery::all(),
        )
        .try_collect()
        .await?;
    Ok(events
        .into_iter()
        .filter_map(|e| match e {
            SourceEvent::Receipt(r) => Some(r.id.to_string()),
            _ => None,
        })
        .collect())
}

#[tokio::test]
async fn each_key_reads_its_own_organisation_only() {
    let fake = FakeQonto::start().await.unwrap();
    let first = fake.add_account("Compte principal");
    let tx = fake.add_transaction(&first.id, NewTransaction::debit(100, "A shop"));
    fake.add_attachment(&tx, "a.pdf", "application/pdf", b"first".to_vec());

    let other = fake.add_organisation("fake-org-5678");
    let second = other.add_account("Compte principal");
    let tx = other.add_transaction(&second.id, NewTransaction::debit(100, "B shop"));
    let attachment = other.add_attachment(&tx, "b.pdf", "application/pdf", b"second".to_vec());
    assert!(!attachment.is_empty());

    assert_ne!(first.id, second.id, "ids never collide");
    assert_eq!(
        first.iban[first.iban.len() - 4..],
        second.iban[second.iban.len() - 4..],
        "IBAN endings do, as real ones may"
    );
    assert_eq!(other.credentials().0, "fake-org-5678");

    let a = fake.source_builder().build().unwrap();
    let b = other.source_builder().build().unwrap();
    let a_accounts = a.accounts().await.unwrap();
    let b_accounts = b.accounts().await.unwrap();
    assert_eq!(a_accounts.len(), 1);
    assert_eq!(b_accounts.len(), 1);
    assert_eq!(a_accounts[0].id.as_str(), first.id);
    assert_eq!(b_accounts[0].id.as_str(), second.id);

    // Each key reads its own receipts, and the bytes download.
    let b_receipts = receipt_ids(&b, &second.id).await.unwrap();
    assert_eq!(b_receipts.len(), 1);
    let receipt: Vec<SourceEvent> = b
        .receipts(&b_accounts[0].id, &ReceiptQuery::all())
        .try_collect()
        .await
        .unwrap();
    let SourceEvent::Receipt(receipt) = &receipt[0] else {
        panic!("a receipt first");
    };
    let body = b.open(receipt).await.unwrap();
    assert_eq!(body.collect("a receipt").await.unwrap(), b"second");
    assert_eq!(receipt_ids(&a, &first.id).await.unwrap().len(), 1);

    // Another organisation's account is not found with this key.
    let err = receipt_ids(&a, &second.id).await.unwrap_err();
    assert_eq!(err.kind(), receipt_sync::ErrorKind::NotFound, "{err}");
    assert_eq!(fake.credential_leaks(), 0);
}
