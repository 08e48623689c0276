//! Whole flows against the stateful fake Qonto: paging, incremental reads, expiring
//! URLs, integrity, credential-free downloads, token rotation, seeded faults.

mod qonto_support;

use futures::StreamExt;
use qonto_support::{checkpoints, errors, events, receipts};
use receipt_sync::ErrorKind;
use receipt_sync::model::{AccountId, Receipt};
use receipt_sync::source::qonto::{InMemoryTokenStore, QontoOAuth, QontoSource};
use receipt_sync::source::{QontoAuth, ReceiptQuery, ReceiptSource, Watermark};
use receipt_sync::testkit::fake_qonto::{
    FakePaging, FakeQonto, FakeQontoConfig, Fault, NewTransaction,
};
use std::sync::Arc;
use std::time::Duration;

async fn read_all(
    source: &QontoSource,
    account: &str,
    query: &ReceiptQuery,
) -> (Vec<Receipt>, Option<Watermark>) {
    let events = events(source, account, query).await;
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    let last = checkpoints(&events).pop().map(Watermark::new);
    (receipts(&events), last)
}

async fn bytes(source: &QontoSource, receipt: &Receipt) -> receipt_sync::Result<Vec<u8>> {
    source.open(receipt).await?.collect("receipt").await
}

#[tokio::test]
async fn pages_are_read_whichever_parameter_the_server_honours() {
    for paging in [FakePaging::Page, FakePaging::CurrentPage, FakePaging::Both] {
        let fake = FakeQonto::start().await.unwrap();
        fake.set_paging(paging);
        let account = fake.add_account("Main");
        let ids = fake.add_receipts(&account.id, 250, 4);
        let source = fake.source_builder().build().unwrap();
        let (listed, _) = read_all(&source, &account.id, &ReceiptQuery::all()).await;
        let listed: Vec<String> = listed.iter().map(|r| r.id.to_string()).collect();
        assert_eq!(listed, ids, "{paging:?}");
        let pages = fake.api_requests().matching("GET /v2/transactions");
        // `page` honoured: 3 pages (the third says no next). `current_page` only:
        // page 2 is asked twice (as `page`, then as `current_page`), then page 3.
        let expected = if paging == FakePaging::CurrentPage {
            4
        } else {
            3
        };
        assert_eq!(pages, expected, "{paging:?}");
    }
}

#[tokio::test]
async fn a_second_read_from_the_checkpoint_returns_only_what_changed() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    let seeded = fake.add_receipts(&account.id, 120, 3);
    let old_tx = fake.add_transaction(&account.id, NewTransaction::debit(1000, "Old shop"));
    let old_receipt =
        fake.add_attachment(&old_tx, "first.pdf", "application/pdf", b"first".to_vec());
    // The last change before the first read, an hour later than everything else.
    fake.advance_clock(chrono::Duration::hours(1));
    let anchor_tx = fake.add_transaction(&account.id, NewTransaction::debit(7, "Anchor"));
    let anchor = fake.add_attachment(&anchor_tx, "anchor.pdf", "application/pdf", b"a".to_vec());
    let source = fake.source_builder().build().unwrap();
    let (first, watermark) = read_all(&source, &account.id, &ReceiptQuery::all()).await;
    assert_eq!(first.len(), 122);
    let watermark = watermark.expect("a checkpoint at the end");

    // An hour later: a second receipt on the old transaction, and a new receipt.
    fake.advance_clock(chrono::Duration::hours(1));
    let late = fake.add_attachment(&old_tx, "second.pdf", "application/pdf", b"second".to_vec());
    let new_tx = fake.add_transaction(&account.id, NewTransaction::credit(5000, "Client"));
    let new = fake.add_attachment(
        &new_tx,
        "invoice.pdf",
        "application/pdf",
        b"invoice".to_vec(),
    );
    fake.reset_requests();

    let query = ReceiptQuery::all().since(Some(watermark.clone()));
    let (second, next) = read_all(&source, &account.id, &query).await;
    let mut ids: Vec<String> = second.iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    // The old transaction comes back whole (both its receipts), the new one too. The
    // anchor sits at the watermark, inside the 5-minute overlap, so it is read again
    // (the trait allows repeats; the caller dedupes). Nothing else comes back.
    let mut expected = vec![old_receipt, late, new, anchor];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(second.iter().all(|r| !seeded.contains(&r.id.to_string())));
    assert!(next.as_ref().unwrap() > &watermark);
    assert_eq!(fake.api_requests().total(), 1, "one page");

    // Nothing changed since: only the overlap is read again, the checkpoint stays.
    let (third, again) = read_all(
        &source,
        &account.id,
        &ReceiptQuery::all().since(next.clone()),
    )
    .await;
    assert!(third.iter().all(|r| expected.contains(&r.id.to_string())));
    assert_eq!(again, next);
}

#[tokio::test]
async fn an_expired_url_is_refreshed_once_and_downloaded() {
    let fake = FakeQonto::start().await.unwrap();
    fake.set_url_lifetime(Duration::from_millis(500));
    let account = fake.add_account("Main");
    fake.add_receipts(&account.id, 2, 10);
    let source = fake.source_builder().build().unwrap();
    let (listed, _) = read_all(&source, &account.id, &ReceiptQuery::all()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    fake.reset_requests();
    assert_eq!(bytes(&source, &listed[0]).await.unwrap().len(), 10);
    assert_eq!(
        fake.download_requests().total(),
        2,
        "403, then the fresh URL"
    );
    assert_eq!(fake.api_requests().matching("GET /v2/attachments/{id}"), 1);
    assert_eq!(fake.credential_leaks(), 0);
}

#[tokio::test]
async fn a_url_older_than_the_max_age_is_refreshed_before_use() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    fake.add_receipts(&account.id, 1, 10);
    let source = fake
        .source_builder()
        .with_url_max_age(Duration::ZERO)
        .build()
        .unwrap();
    let (listed, _) = read_all(&source, &account.id, &ReceiptQuery::all()).await;
    fake.reset_requests();
    assert_eq!(bytes(&source, &listed[0]).await.unwrap().len(), 10);
    assert_eq!(fake.download_requests().total(), 1, "no 403 first");
    assert_eq!(fake.api_requests().matching("GET /v2/attachments/{id}"), 1);
}

#[tokio::test]
async fn integrity_and_mid_body_failures_are_error_items() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    let ids = fake.add_receipts(&account.id, 2, 1000);
    fake.set_announced_file_size(&ids[0], serde_json::json!("999"));
    let source = fake.source_builder().build().unwrap();
    let (listed, _) = read_all(&source, &account.id, &ReceiptQuery::all()).await;
    assert_eq!(listed[0].size, 999);
    let error = bytes(&source, &listed[0]).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Integrity, "{error}");

    fake.inject("GET /s3/", Fault::Truncated);
    let body = source.open(&listed[1]).await.unwrap();
    let items: Vec<_> = body.into_stream().collect().await;
    let error = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    // The caller opens it again.
    assert_eq!(bytes(&source, &listed[1]).await.unwrap().len(), 1000);
}

#[tokio::test]
async fn no_credential_reaches_the_download_hosts_even_through_a_redirect() {
    let fake = FakeQonto::start_with({
        let mut config = FakeQontoConfig::default();
        config.staging_token = Some("stage-7".into());
        config
    })
    .await
    .unwrap();
    fake.set_redirect_downloads(true);
    let account = fake.add_account("Main");
    fake.add_receipts(&account.id, 5, 8);
    let source = QontoSource::sandbox(fake.api_key(), "stage-7")
        .with_base_url(fake.url())
        .with_retry(receipt_sync::http::RetryConfig::fast())
        .build()
        .unwrap();
    let (listed, _) = read_all(&source, &account.id, &ReceiptQuery::all()).await;
    for receipt in &listed {
        assert_eq!(bytes(&source, receipt).await.unwrap().len(), 8);
    }
    assert_eq!(fake.download_requests().total(), 5);
    assert_eq!(
        fake.mirror_requests().total(),
        5,
        "served after the redirect"
    );
    assert_eq!(fake.credential_leaks(), 0);

    // The check can fail: a download carrying a credential is refused and counted.
    let leak = reqwest::Client::new()
        .get(format!("{}/s3/anything", fake.download_url()))
        .header("authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_eq!(leak.status(), 400);
    assert_eq!(fake.credential_leaks(), 1);
}

#[tokio::test]
async fn an_account_without_id_in_the_organization_is_resolved() {
    let fake = FakeQonto::start().await.unwrap();
    let hidden = fake.add_account_without_id("Hidden id");
    fake.add_receipts(&hidden.id, 3, 2);
    let source = fake.source_builder().build().unwrap();
    let accounts = source.accounts().await.unwrap();
    assert_eq!(accounts[0].id, AccountId::new(&hidden.id));
    assert_eq!(fake.api_requests().matching("GET /v2/bank_accounts"), 1);
    let (listed, _) = read_all(&source, &hidden.id, &ReceiptQuery::all()).await;
    assert_eq!(listed.len(), 3);
}

#[tokio::test]
async fn a_renamed_account_keeps_its_id() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    let source = fake.source_builder().build().unwrap();
    assert_eq!(source.accounts().await.unwrap()[0].name, "Main");
    assert!(fake.rename_account(&account.id, "Operations"));
    let renamed = source.accounts().await.unwrap();
    assert_eq!(renamed[0].name, "Operations");
    assert_eq!(renamed[0].id, AccountId::new(&account.id));
}

#[tokio::test]
async fn the_sandbox_login_page_is_a_clear_error() {
    let mut config = FakeQontoConfig::default();
    config.staging_token = Some("stage-7".into());
    let fake = FakeQonto::start_with(config).await.unwrap();
    let error = fake
        .source_builder()
        .build()
        .unwrap()
        .accounts()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(
        error.to_string().contains("X-Qonto-Staging-Token"),
        "{error}"
    );
}

#[tokio::test]
async fn oauth_tokens_rotate_through_the_store() {
    let fake = FakeQonto::start().await.unwrap();
    fake.add_account("Main");
    let (client_id, client_secret) = fake.client_credentials();
    let first = fake.issue_tokens();
    let store = Arc::new(InMemoryTokenStore::new());
    let oauth = QontoOAuth::new(client_id, client_secret, first.clone(), store.clone())
        .with_token_url(fake.token_url());
    let source = QontoSource::builder(QontoAuth::OAuth(oauth))
        .with_base_url(fake.url())
        .with_retry(receipt_sync::http::RetryConfig::fast())
        .build()
        .unwrap();
    source.accounts().await.unwrap();
    assert_eq!(store.saves(), 0, "the token was still fresh");
    // The server forgets the access token: one 401, one refresh, one retry.
    fake.expire_access_tokens();
    source.accounts().await.unwrap();
    let rotated = store.latest().unwrap();
    assert_ne!(rotated.refresh_token, first.refresh_token);
    assert_eq!(fake.api_requests().matching("POST /oauth2/token"), 1);
    assert_eq!(fake.api_requests().matching("GET /v2/organization"), 3);
    // The refresh token is revoked: signing in again is the only way.
    fake.expire_access_tokens();
    fake.revoke_refresh_token();
    let error = source.accounts().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConsentRevoked);
}

#[tokio::test]
async fn throttling_and_seeded_chaos_are_survived() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    let ids = fake.add_receipts(&account.id, 150, 64);
    fake.inject("GET /v2/transactions", Fault::too_many_requests_after(0));
    fake.inject("GET /v2/transactions", Fault::too_many_requests());
    fake.inject("GET /v2/transactions", Fault::ServerError(502));
    fake.inject("GET /v2/transactions", Fault::Drop);
    let seed = 0x05EE_D0FC_4A05;
    fake.set_chaos(seed, 0.15);
    let source = fake.source_builder().build().unwrap();
    let (listed, _) = read_all(&source, &account.id, &ReceiptQuery::all()).await;
    assert_eq!(listed.len(), ids.len(), "seed {seed:#x}");
    for receipt in &listed {
        // A mid-body cut is an error item: the caller opens again.
        let mut tries = 0;
        loop {
            tries += 1;
            match bytes(&source, receipt).await {
                Ok(b) => break assert_eq!(b.len(), 64),
                Err(e) if e.is_retryable() && tries < 5 => continue,
                Err(e) => panic!("seed {seed:#x}: {e}"),
            }
        }
    }
    fake.set_chaos(0, 0.0);
    assert_eq!(fake.credential_leaks(), 0);
}

#[tokio::test]
async fn a_malformed_item_on_the_fake_fails_alone() {
    let fake = FakeQonto::start().await.unwrap();
    let account = fake.add_account("Main");
    let tx = fake.add_transaction(
        &account.id,
        NewTransaction::debit(990, "Odd").operation_type("crypto_swap"),
    );
    fake.add_attachment(&tx, "a.pdf", "application/pdf", b"a".to_vec());
    fake.patch_transaction(
        &tx,
        serde_json::json!({"amount_cents": null, "amount": "9.90"}),
    );
    let bad = fake.add_transaction(&account.id, NewTransaction::debit(1, "Bad"));
    let bad_att = fake.add_attachment(&bad, "b.pdf", "application/pdf", b"b".to_vec());
    fake.set_announced_file_size(&bad_att, serde_json::json!({"bytes": 1}));
    fake.add_receipts(&account.id, 1, 1);
    let source = fake.source_builder().build().unwrap();
    let events = events(&source, &account.id, &ReceiptQuery::all()).await;
    let listed = receipts(&events);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].transaction.amount.cents, -990);
    assert_eq!(errors(&events).len(), 1);
    assert!(checkpoints(&events).is_empty());
}
