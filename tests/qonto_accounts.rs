//! `GET /v2/organization` and `GET /v2/bank_accounts` against JSON fixtures (qonto.md §6.1).

mod qonto_support;

use qonto_support::*;
use receipt_sync::ErrorKind;
use receipt_sync::model::{AccountId, CurrencyCode};
use receipt_sync::source::{ReceiptQuery, ReceiptSource};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn organization_lists_bank_accounts_with_the_api_key_header() {
    let server = strict_server().await;
    Mock::given(method("GET"))
        .and(path("/v2/organization"))
        .and(header("authorization", API_KEY_HEADER))
        .and(header("accept", "application/json"))
        .and(header("user-agent", "qonto-test/1"))
        .respond_with(json(200, "organization.json", ""))
        .expect(1)
        .mount(&server)
        .await;
    let source = builder(&server)
        .with_user_agent("qonto-test/1")
        .build()
        .unwrap();
    let accounts = source.accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    let account = &accounts[0];
    assert_eq!(account.id, AccountId::new(ACCOUNT));
    assert_eq!(account.name, "Compte principal");
    assert_eq!(account.iban.as_deref(), Some("FR7616958000010123456789037"));
    assert_eq!(account.currency, CurrencyCode::EUR);
}

#[tokio::test]
async fn a_missing_account_id_is_found_by_iban_in_bank_accounts() {
    let server = strict_server().await;
    Mock::given(path("/v2/organization"))
        .respond_with(json(200, "organization_missing_id.json", ""))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v2/bank_accounts"))
        .and(query_param("page", "1"))
        .and(query_param("per_page", "100"))
        .respond_with(json(200, "bank_accounts.json", ""))
        .expect(1)
        .mount(&server)
        .await;
    // The second account is in neither list with an id: its IBAN becomes its id,
    // and its transactions are read by `iban` (qonto.md §2.1).
    Mock::given(path("/v2/transactions"))
        .and(query_param("iban", "FR7616958000010999999999042"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "transactions": [], "meta": {"current_page": 1, "next_page": null}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let source = source(&server, 2);
    let accounts = source.accounts().await.unwrap();
    let ids: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [ACCOUNT, "FR7616958000010999999999042"]);
    // Spaces in the IBAN are dropped; a null name falls back to the slug.
    assert_eq!(
        accounts[0].iban.as_deref(),
        Some("FR7616958000010123456789037")
    );
    assert_eq!(accounts[1].name, "atelier-durand-bank-account-2");
    let events = events(&source, "FR7616958000010999999999042", &ReceiptQuery::all()).await;
    assert!(errors(&events).is_empty());
}

#[tokio::test]
async fn organization_errors_are_classified() {
    for case in error_cases() {
        let server = strict_server().await;
        Mock::given(path("/v2/organization"))
            .respond_with(case.response.clone())
            .expect(case.hits)
            .named(case.name)
            .mount(&server)
            .await;
        let error = source(&server, 2).accounts().await.unwrap_err();
        check_case(&case, &error);
    }
}

#[tokio::test]
async fn bank_accounts_errors_fall_back_to_ibans_or_fail() {
    for case in error_cases() {
        let server = strict_server().await;
        Mock::given(path("/v2/organization"))
            .respond_with(json(200, "organization_missing_id.json", ""))
            .mount(&server)
            .await;
        Mock::given(path("/v2/bank_accounts"))
            .respond_with(case.response.clone())
            .expect(case.hits)
            .named(case.name)
            .mount(&server)
            .await;
        let result = source(&server, 2).accounts().await;
        match case.kind {
            // Refused or absent: the IBAN still selects the transactions.
            ErrorKind::NotFound | ErrorKind::Forbidden | ErrorKind::Rejected => {
                let accounts = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
                assert_eq!(accounts[0].id.as_str(), "FR7616958000010123456789037");
            }
            _ => check_case(&case, &result.unwrap_err()),
        }
    }
}

#[tokio::test]
async fn odd_organization_shapes_never_panic() {
    let bodies = [
        serde_json::json!({}),
        serde_json::json!({"organization": null}),
        serde_json::json!({"organization": {"bank_accounts": "none"}}),
        serde_json::json!({"organization": {"bank_accounts": [42]}}),
        serde_json::json!({"organization": {"bank_accounts": [{"id": "x", "currency": "EURO"}]}}),
        serde_json::json!([1, 2, 3]),
    ];
    for body in bodies {
        let server = strict_server().await;
        Mock::given(path("/v2/organization"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&body))
            .mount(&server)
            .await;
        let error = source(&server, 1).accounts().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Malformed, "{body}: {error}");
    }
    // An account with neither id nor IBAN cannot be read: it is skipped.
    let server = strict_server().await;
    Mock::given(path("/v2/organization"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "organization": {"bank_accounts": [{"name": "ghost"}, {"id": "a1", "name": "Main"}]}
        })))
        .mount(&server)
        .await;
    let accounts = source(&server, 1).accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].currency, CurrencyCode::EUR);
}
