//! `OneDriveSink::shares` reads every page of a folder's permissions: a long share list
//! comes in pages linked by `@odata.nextLink`, and one cut after its first page would hide
//! a share that is still open. A list whose pages go round in a circle, or that passes the
//! sink's paging limits, stops with a permanent `Malformed` error at the link, after a
//! bounded number of requests. Graph is played by wiremock, each page computed from the
//! page asked for.

mod onedrive_support;

use onedrive_support::{D, Mocks, builder};
use receipt_sync::ErrorKind;
use receipt_sync::http::PagingLimits;
use receipt_sync::sink::onedrive::{OneDriveSink, ShareKind};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

fn permissions_path() -> String {
    format!("{D}/items/D!main/permissions")
}

/// The page a request asks for: its `p` query parameter, 1 when absent.
fn page_of(request: &Request) -> u32 {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == "p")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1)
}

/// Serves pages of two invitations each; page `p` links to page `next(p)`, or is the last
/// when `None`.
async fn serve(m: &Mocks, next: impl Fn(u32) -> Option<u32> + Send + Sync + 'static) {
    let link = format!("{}{}", m.api.uri(), permissions_path());
    Mock::given(method("GET"))
        .and(path(permissions_path()))
        .respond_with(move |request: &Request| {
            let p = page_of(request);
            let value: Vec<Value> = (0..2)
                .map(|i| {
                    json!({"id": format!("perm-{p}-{i}"), "roles": ["read"],
                       "invitation": {"email": format!("person-{p}-{i}@example.com")}})
                })
                .collect();
            let mut body = json!({ "value": value });
            if let Some(n) = next(p) {
                body["@odata.nextLink"] = json!(format!("{link}?p={n}&$skiptoken=page{n}"));
            }
            ResponseTemplate::new(200).set_body_json(body)
        })
        .mount(&m.api)
        .await;
}

async fn requests(m: &Mocks) -> usize {
    m.api
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == permissions_path())
        .count()
}

/// Fails the test instead of hanging when the listing does not end.
async fn shares_of(
    sink: &OneDriveSink,
) -> receipt_sync::Result<Vec<receipt_sync::sink::onedrive::Share>> {
    tokio::time::timeout(Duration::from_secs(30), sink.shares(&"D!main".into()))
        .await
        .expect("the listing ended")
}

fn assert_stopped_at_the_link(error: &receipt_sync::Error) {
    assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("at @odata.nextLink:"), "{error}");
}

#[tokio::test]
async fn every_page_of_a_long_share_list_is_read() {
    let m = Mocks::start().await;
    serve(&m, |p| (p < 3).then_some(p + 1)).await;
    let shares = shares_of(&m.sink()).await.unwrap();
    let ids: Vec<&str> = shares.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "perm-1-0", "perm-1-1", "perm-2-0", "perm-2-1", "perm-3-0", "perm-3-1"
        ]
    );
    assert!(matches!(
        &shares[5].kind,
        ShareKind::Person { email: Some(e), .. } if e == "person-3-1@example.com"
    ));
    assert_eq!(requests(&m).await, 3);
}

#[tokio::test]
async fn a_share_list_that_goes_round_in_a_circle_stops_at_once() {
    let m = Mocks::start().await;
    // 1 → 2 → 3 → 2 …
    serve(&m, |p| Some(if p == 3 { 2 } else { p + 1 })).await;
    let error = shares_of(&m.sink()).await.unwrap_err();
    assert_stopped_at_the_link(&error);
    assert!(error.to_string().contains("leads back"), "{error}");
    assert_eq!(requests(&m).await, 3);
}

#[tokio::test]
async fn a_share_list_past_the_paging_limits_stops() {
    let m = Mocks::start().await;
    // Pages that never end.
    serve(&m, |p| Some(p + 1)).await;
    let sink = builder(&m.base())
        .with_paging_limits(PagingLimits::default().with_max_pages(4))
        .build()
        .unwrap();
    let error = shares_of(&sink).await.unwrap_err();
    assert_stopped_at_the_link(&error);
    assert!(error.to_string().contains("more than 4 pages"), "{error}");
    assert_eq!(requests(&m).await, 4);

    let m = Mocks::start().await;
    serve(&m, |p| Some(p + 1)).await;
    let sink = builder(&m.base())
        .with_paging_limits(PagingLimits::default().with_max_items(5))
        .build()
        .unwrap();
    let error = shares_of(&sink).await.unwrap_err();
    assert_stopped_at_the_link(&error);
    assert!(error.to_string().contains("more than 5 items"), "{error}");
    assert_eq!(requests(&m).await, 3);
}

#[tokio::test]
async fn a_next_link_away_from_the_graph_host_is_not_followed() {
    let m = Mocks::start().await;
    let elsewhere = wiremock::MockServer::start().await;
    let link = format!("{}{}?p=2", elsewhere.uri(), permissions_path());
    Mock::given(method("GET"))
        .and(path(permissions_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": "perm-1", "roles": ["read"]}],
            "@odata.nextLink": link,
        })))
        .mount(&m.api)
        .await;
    let error = shares_of(&m.sink()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Malformed, "{error}");
    assert!(
        elsewhere
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "no request, and so no token, went to the other host"
    );
}
