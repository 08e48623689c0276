//! `GET /v2/transactions` against JSON fixtures (qonto.md §6.2): the query sent, the
//! receipts decoded, paging, checkpoints, and per-item failures.

mod qonto_support;

use chrono::{NaiveDate, TimeZone, Utc};
use qonto_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::model::{CurrencyCode, Money, TransactionStatus};
use receipt_sync::source::qonto::PagingMode;
use receipt_sync::source::{ReceiptQuery, Watermark};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Mounts page 1 and page 2 of the fixtures, both matched on the full query.
async fn mount_pages(server: &MockServer, download: &str) {
    let base = || {
        Mock::given(method("GET"))
            .and(path("/v2/transactions"))
            .and(query_param("bank_account_id", ACCOUNT))
            .and(query_param("includes[]", "attachments"))
            .and(query_param("status[]", "completed"))
            .and(query_param("status[]", "pending"))
            .and(query_param("sort_by", "updated_at:asc"))
            .and(query_param("per_page", "100"))
    };
    base()
        .and(query_param("page", "1"))
        .respond_with(json(200, "transactions_page1.json", download))
        .expect(1)
        .mount(server)
        .await;
    base()
        .and(query_param("page", "2"))
        .respond_with(json(200, "transactions_page2.json", download))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn every_attachment_is_a_receipt_and_odd_fields_are_read() {
    let server = strict_server().await;
    mount_pages(&server, "https://storage.example").await;
    let source = source(&server, 2);
    let events = events(&source, ACCOUNT, &ReceiptQuery::all()).await;
    let receipts = receipts(&events);
    let ids: Vec<&str> = receipts.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ea54f563-eaee-4dcb-b08e-688dc9937d23",
            "a0000000-0000-4000-8000-000000000031",
            "a0000000-0000-4000-8000-000000000041",
        ]
    );

    let fuel = &receipts[0];
    assert_eq!(fuel.file_name, "ticket-total.jpg");
    assert_eq!(fuel.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(fuel.size, 11, "file_size as a string");
    assert_eq!(
        fuel.transaction.amount,
        Money::new(-5240, CurrencyCode::EUR)
    );
    assert_eq!(fuel.transaction.label, "TotalEnergies");
    assert_eq!(fuel.transaction.status, TransactionStatus::Completed);
    assert_eq!(fuel.transaction.account_id.as_str(), ACCOUNT);
    assert_eq!(
        fuel.transaction.settled_at,
        Some(Utc.with_ymd_and_hms(2026, 5, 14, 17, 17, 2).unwrap())
    );

    // `amount` as a string, no amount_cents, unknown operation_type, null name.
    let invoice = &receipts[1];
    assert_eq!(
        invoice.transaction.amount,
        Money::new(120_050, CurrencyCode::EUR)
    );
    assert_eq!(invoice.transaction.label, "ACME GMBH");
    assert_eq!(invoice.transaction.status, TransactionStatus::Pending);
    assert_eq!(invoice.transaction.settled_at, None);
    assert_eq!(invoice.size, 2048, "file_size as a number");
    assert_eq!(invoice.file_name, "invoice");

    // `"10,00"` with `amount_cents: null`, an unknown status, no created_at.
    let fee = &receipts[2];
    assert_eq!(fee.transaction.amount, Money::new(-1000, CurrencyCode::EUR));
    assert_eq!(
        fee.transaction.status,
        TransactionStatus::Other("some_new_status".into())
    );
    assert_eq!(fee.created_at, fee.transaction.emitted_at);
    assert_eq!(fee.content_type, None);

    // The malformed attachment fails alone, naming its field.
    let errors = errors(&events);
    assert_eq!(errors.len(), 1);
    match errors[0] {
        receipt_sync::Error::Malformed { field, .. } => {
            assert_eq!(field, "transactions[0].attachments[1].file_size");
        }
        other => panic!("{other}"),
    }
    // One checkpoint after page 1; none after the page with a failed item.
    assert_eq!(checkpoints(&events), ["2026-05-16T09:00:01.000Z"]);
}

#[tokio::test]
async fn watermark_overlap_start_date_and_declined_are_sent() {
    let server = strict_server().await;
    Mock::given(path("/v2/transactions"))
        .and(query_param("updated_at_from", "2026-05-15T07:56:44.000Z"))
        .and(query_param("emitted_at_from", "2026-05-14T00:00:00.000Z"))
        .and(query_param("status[]", "declined"))
        .and(query_param("page", "1"))
        .respond_with(json(200, "transactions_page1.json", "https://s.example"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/transactions"))
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_raw(fixture("error_422.json", ""), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let query = ReceiptQuery::all()
        .since(Some(Watermark::new("2026-05-15T08:01:44.000Z")))
        .start_date(NaiveDate::from_ymd_opt(2026, 5, 14))
        .include_declined(true);
    let events = events(&source(&server, 2), ACCOUNT, &query).await;
    // The fuel receipt was emitted on 2026-05-13: before the start date, never yielded,
    // even though the server sent it. A 422 past the last page ends the listing.
    assert!(receipts(&events).is_empty());
    assert!(errors(&events).is_empty(), "{:?}", errors(&events));
    assert_eq!(checkpoints(&events), ["2026-05-16T09:00:01.000Z"]);
}

#[tokio::test]
async fn declined_is_not_asked_for_by_default() {
    let server = strict_server().await;
    Mock::given(path("/v2/transactions"))
        .and(query_param_is_missing("updated_at_from"))
        .and(query_param_is_missing("emitted_at_from"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "transactions": [], "meta": {"current_page": 1, "next_page": null}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let events = events(&source(&server, 2), ACCOUNT, &ReceiptQuery::all()).await;
    assert!(
        events.is_empty(),
        "no watermark, nothing read: no checkpoint"
    );
    let requests = server.received_requests().await.unwrap();
    assert!(!requests[0].url.query().unwrap_or("").contains("declined"));
}

#[tokio::test]
async fn a_server_that_ignores_page_is_paged_with_current_page() {
    let server = strict_server().await;
    // This server ignores `page`: page 2 asked that way comes back as page 1.
    Mock::given(path("/v2/transactions"))
        .and(query_param_is_missing("current_page"))
        .respond_with(json(200, "transactions_page1.json", "https://s.example"))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/v2/transactions"))
        .and(query_param("current_page", "2"))
        .respond_with(json(200, "transactions_page2.json", "https://s.example"))
        .expect(1)
        .mount(&server)
        .await;
    let events = events(&source(&server, 2), ACCOUNT, &ReceiptQuery::all()).await;
    assert_eq!(receipts(&events).len(), 3);
}

#[tokio::test]
async fn explicit_paging_modes_send_their_parameters() {
    for (mode, present, missing) in [
        (PagingMode::CurrentPage, vec!["current_page"], "page"),
        (PagingMode::Page, vec!["page"], "current_page"),
        (PagingMode::Both, vec!["page", "current_page"], "none"),
    ] {
        let server = strict_server().await;
        let mut mock = Mock::given(path("/v2/transactions")).and(query_param_is_missing(missing));
        for name in &present {
            mock = mock.and(query_param(*name, "1"));
        }
        mock.respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "transactions": [], "meta": {"current_page": 1, "next_page": null}
        })))
        .expect(1)
        .mount(&server)
        .await;
        let source = builder(&server).with_paging(mode).build().unwrap();
        let events = events(&source, ACCOUNT, &ReceiptQuery::all()).await;
        assert!(errors(&events).is_empty(), "{mode:?}");
    }
}

#[tokio::test]
async fn a_next_page_that_does_not_advance_is_an_error_not_a_loop() {
    let server = strict_server().await;
    Mock::given(path("/v2/transactions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "transactions": [], "meta": {"current_page": 1, "next_page": 1}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let events = events(&source(&server, 2), ACCOUNT, &ReceiptQuery::all()).await;
    assert_eq!(errors(&events)[0].kind(), ErrorKind::Malformed);
}

#[tokio::test]
async fn transactions_errors_are_classified() {
    for case in error_cases() {
        let server = strict_server().await;
        Mock::given(path("/v2/transactions"))
            .respond_with(case.response.clone())
            .expect(case.hits)
            .named(case.name)
            .mount(&server)
            .await;
        let events = events(&source(&server, 2), ACCOUNT, &ReceiptQuery::all()).await;
        assert_eq!(
            events.len(),
            1,
            "{}: one error, then the stream ends",
            case.name
        );
        check_case(&case, errors(&events)[0]);
    }
}

#[tokio::test]
async fn malformed_transactions_fail_alone_and_stop_checkpoints() {
    let server = strict_server().await;
    let good = |id: &str, updated: &str| {
        serde_json::json!({
            "id": id, "amount_cents": 100, "currency": "EUR", "side": "debit",
            "status": "completed", "label": "Shop", "emitted_at": "2026-01-01T00:00:00Z",
            "updated_at": updated,
            "attachments": [{"id": format!("att-{id}"), "file_size": "1", "file_name": "a.pdf"}]
        })
    };
    let page = serde_json::json!({
        "transactions": [
            good("t1", "2026-01-01T00:00:01Z"),
            {"id": "t2", "updated_at": "2026-01-01T00:00:02Z", "side": "sideways", "currency": "EUR",
             "amount_cents": 1, "emitted_at": "2026-01-01T00:00:00Z", "attachments": [{"id": "x", "file_size": 1}]},
            "not an object",
            {"id": "t4", "updated_at": "2026-01-01T00:00:04Z", "attachment_ids": ["lost"]},
            good("t5", "2026-01-01T00:00:05Z"),
        ],
        "meta": {"current_page": 1, "next_page": 2}
    });
    Mock::given(path("/v2/transactions"))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&page))
        .mount(&server)
        .await;
    Mock::given(path("/v2/transactions"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "transactions": [good("t6", "2026-01-01T00:00:06Z")],
            "meta": {"current_page": 2, "next_page": null}
        })))
        .mount(&server)
        .await;
    let events = events(&source(&server, 2), ACCOUNT, &ReceiptQuery::all()).await;
    let ids: Vec<String> = receipts(&events).iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["att-t1", "att-t5", "att-t6"]);
    let fields: Vec<String> = errors(&events)
        .iter()
        .map(|e| match e {
            receipt_sync::Error::Malformed { field, .. } => field.clone(),
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            "transactions[1].side",
            "transactions[2]",
            "transactions[3].attachments"
        ]
    );
    assert!(checkpoints(&events).is_empty(), "never past a failed item");
}
