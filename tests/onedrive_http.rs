//! Every Graph endpoint the sink uses, against wiremock fixtures (tests/fixtures/graph/),
//! each server with a catch-all that fails the test on any unexpected request.

mod onedrive_support;

use onedrive_support::*;
use receipt_sync::model::{ArchiveSnapshot, EntryKind, ScanUpdate, SinkChange};
use receipt_sync::sink::ArchiveSink;
use receipt_sync::sink::onedrive::ShareKind;
use serde_json::json;
use wiremock::matchers::{
    body_json, body_partial_json, header, method, path as url_path, query_param,
};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn folders_are_created_by_id_under_the_resolved_root() {
    let m = Mocks::start().await;
    m.approot(1).await;
    Mock::given(method("POST"))
        .and(url_path(format!("{D}/items/D!app/children")))
        .and(header("authorization", "Bearer test-token"))
        .and(header(
            "user-agent",
            concat!("ISV|receipt-sync|receipt-sync/", env!("CARGO_PKG_VERSION")),
        ))
        .and(body_json(
            json!({"name": "Main", "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}),
        ))
        .respond_with(m.json(201, "folder_created"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("POST"))
        .and(url_path(format!("{D}/items/D!main/children")))
        .and(body_partial_json(json!({"name": "2026-11"})))
        .respond_with(m.json(201, "subfolder_created"))
        .expect(1)
        .mount(&m.api)
        .await;
    let sink = m.sink();
    let main = sink.create_folder(&path("Main")).await.unwrap();
    assert_eq!(
        (main.id.as_str(), main.parent.clone(), main.kind),
        ("D!main", None, EntryKind::Folder)
    );
    let month = sink.create_folder(&path("Main/2026-11")).await.unwrap();
    assert_eq!(month.parent, Some(main.id));
}

#[tokio::test]
async fn an_existing_folder_is_returned_and_a_file_in_the_way_refused() {
    let m = Mocks::start().await;
    m.approot(1).await;
    Mock::given(method("POST"))
        .and(url_path(format!("{D}/items/D!app/children")))
        .respond_with(m.json(409, "error_409_name"))
        .expect(2)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app:/Main:")))
        .respond_with(m.json(200, "folder_created"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app:/Main:")))
        .respond_with(m.json(200, "file_in_the_way"))
        .expect(1)
        .mount(&m.api)
        .await;
    let sink = m.sink();
    assert_eq!(
        sink.create_folder(&path("Main")).await.unwrap().id.as_str(),
        "D!main"
    );
    let err = sink.create_folder(&path("Main")).await.unwrap_err();
    assert_eq!(err.kind(), receipt_sync::ErrorKind::AlreadyExists, "{err}");
}

#[tokio::test]
async fn a_small_file_is_one_put_that_never_overwrites() {
    let m = Mocks::start().await;
    m.approot(1).await;
    let data = b"%PDF-1.7 receipt".to_vec();
    Mock::given(method("PUT"))
        .and(url_path(format!("{D}/items/D!app:/a%20b.pdf:/content")))
        .and(query_param("@microsoft.graph.conflictBehavior", "fail"))
        .and(header("authorization", "Bearer test-token"))
        .and(header("content-length", data.len().to_string().as_str()))
        .and(wiremock::matchers::body_bytes(data.clone()))
        .respond_with(ResponseTemplate::new(201).set_body_json(uploaded_item(&m, &data)))
        .expect(1)
        .mount(&m.api)
        .await;
    let entry = m
        .sink()
        .write_file(&path("a b.pdf"), chunked(&data, 3))
        .await
        .unwrap();
    assert_eq!(
        entry.kind,
        EntryKind::File {
            size: data.len() as u64
        }
    );
    assert_eq!(entry.parent, None);
}

#[tokio::test]
async fn a_large_file_goes_through_a_session_without_the_bearer() {
    let m = Mocks::start().await;
    m.approot(1).await;
    let data = pattern(UNIT + 72_320, 2);
    let total = data.len();
    Mock::given(method("POST"))
        .and(url_path(format!(
            "{D}/items/D!app:/big.bin:/createUploadSession"
        )))
        .and(header("authorization", "Bearer test-token"))
        .and(body_json(
            json!({"item": {"@microsoft.graph.conflictBehavior": "fail", "fileSize": total}}),
        ))
        .respond_with(m.json(200, "upload_session"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("PUT"))
        .and(url_path("/rup/d/session-1"))
        .and(header(
            "content-range",
            format!("bytes 0-{}/{total}", UNIT - 1).as_str(),
        ))
        .and(wiremock::matchers::body_bytes(data[..UNIT].to_vec()))
        .respond_with(m.json(202, "fragment_accepted"))
        .expect(1)
        .mount(&m.upload)
        .await;
    Mock::given(method("PUT"))
        .and(url_path("/rup/d/session-1"))
        .and(header(
            "content-range",
            format!("bytes {UNIT}-{}/{total}", total - 1).as_str(),
        ))
        .and(wiremock::matchers::body_bytes(data[UNIT..].to_vec()))
        .respond_with(ResponseTemplate::new(201).set_body_json(uploaded_item(&m, &data)))
        .expect(1)
        .mount(&m.upload)
        .await;
    let sink = builder(&m.base())
        .with_simple_upload_cutoff(1000)
        .with_fragment_size(UNIT as u64)
        .build()
        .unwrap();
    sink.write_file(&path("big.bin"), chunked(&data, 10_000))
        .await
        .unwrap();
}

#[tokio::test]
async fn delta_pages_into_a_full_listing_then_changes() {
    let m = Mocks::start().await;
    m.approot(1).await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/delta")))
        .and(query_param(
            "$select",
            "id,name,size,file,folder,deleted,parentReference",
        ))
        .respond_with(m.json(200, "delta_page1"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/delta")))
        .and(query_param("$skiptoken", "page2"))
        .respond_with(m.json(200, "delta_page2"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/delta")))
        .and(query_param("token", "first"))
        .respond_with(m.json(200, "delta_changes"))
        .expect(1)
        .mount(&m.api)
        .await;
    let sink = m.sink();
    let update = sink.scan(None).await.unwrap();
    let ScanUpdate::Full {
        entries,
        cursor: Some(cursor),
    } = &update
    else {
        panic!("{update:?}")
    };
    assert_eq!(
        entries.len(),
        2,
        "the root is dropped, the repeat of Main merged: {entries:?}"
    );
    let main = entries.iter().find(|e| e.id.as_str() == "D!main").unwrap();
    assert_eq!(main.parent, None);
    let mut snapshot = ArchiveSnapshot::from_entries(entries.clone());
    assert!(
        !format!("{cursor:?}").contains("token"),
        "cursors are redacted"
    );

    let update = sink.scan(Some(cursor)).await.unwrap();
    snapshot.apply(&update);
    let ScanUpdate::Changes { changes, .. } = update else {
        panic!()
    };
    assert!(
        changes.contains(&SinkChange::Removed("D!file-b".into())),
        "deleted facet"
    );
    assert!(
        changes.contains(&SinkChange::Removed("D!moved-out".into())),
        "parent outside"
    );
    let new = changes
        .iter()
        .filter(|c| matches!(c, SinkChange::Upsert(e) if e.id.as_str() == "D!new"))
        .count();
    assert_eq!(new, 1, "last occurrence wins");
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, SinkChange::Upsert(e) if e.name == "new (renamed).pdf"))
    );
    assert_eq!(
        snapshot.path_of(&"D!new".into()).unwrap().as_str(),
        "Renamed/new (renamed).pdf"
    );
    assert_eq!(snapshot.len(), 2);
}

#[tokio::test]
async fn a_410_follows_its_location_into_a_full_listing() {
    let m = Mocks::start().await;
    let stale = receipt_sync::model::ScanCursor::new(
        json!({"v": 1, "root": "D!app", "link": format!("{}/items/D!app/delta?token=stale", m.base().to_owned() + "/me/drive")}).to_string(),
    );
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/delta")))
        .and(query_param("token", "stale"))
        .respond_with(m.json(410, "error_410").insert_header(
            "location",
            format!("{}{D}/items/D!app/delta?restart=1", m.api.uri()).as_str(),
        ))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/delta")))
        .and(query_param("restart", "1"))
        .respond_with(m.json(200, "delta_page2"))
        .expect(1)
        .mount(&m.api)
        .await;
    let update = m.sink().scan(Some(&stale)).await.unwrap();
    let ScanUpdate::Full {
        entries,
        cursor: Some(_),
    } = update
    else {
        panic!("{update:?}")
    };
    assert_eq!(entries.len(), 2);
}

#[tokio::test]
async fn a_malformed_token_lists_everything_again() {
    let m = Mocks::start().await;
    m.approot(1).await;
    let bad = receipt_sync::model::ScanCursor::new(
        json!({"v": 1, "root": "D!app", "link": format!("{}/me/drive/items/D!app/delta?token=bad", m.base())}).to_string(),
    );
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/delta")))
        .and(query_param("token", "bad"))
        .respond_with(m.json(400, "error_400_malformed_token"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/delta")))
        .and(query_param(
            "$select",
            "id,name,size,file,folder,deleted,parentReference",
        ))
        .respond_with(m.json(200, "delta_empty"))
        .expect(1)
        .mount(&m.api)
        .await;
    let update = m.sink().scan(Some(&bad)).await.unwrap();
    assert!(
        matches!(update, ScanUpdate::Full { ref entries, .. } if entries.is_empty()),
        "{update:?}"
    );
}

#[tokio::test]
async fn without_delta_folders_are_listed_page_by_page() {
    let m = Mocks::start().await;
    m.approot(1).await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/children")))
        .and(query_param("$top", "1000"))
        .respond_with(m.json(200, "children_page1"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!app/children")))
        .and(query_param("$skiptoken", "UGFnZWQ9VFJVRSZwX0lEPTI"))
        .respond_with(m.json(200, "children_page2"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!main/children")))
        .respond_with(m.json(200, "children_main"))
        .expect(1)
        .mount(&m.api)
        .await;
    let sink = builder(&m.base()).with_delta(false).build().unwrap();
    let ScanUpdate::Full {
        entries,
        cursor: None,
    } = sink.scan(None).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(entries.len(), 3);
    let b = entries.iter().find(|e| e.name == "b.pdf").unwrap();
    assert_eq!(b.parent.as_ref().map(|p| p.as_str()), Some("D!main"));
}

#[tokio::test]
async fn quota_comes_from_the_drive() {
    let m = Mocks::start().await;
    Mock::given(method("GET"))
        .and(url_path(D))
        .respond_with(m.json(200, "drive"))
        .expect(1)
        .mount(&m.api)
        .await;
    let quota = m.sink().quota().await.unwrap().unwrap();
    assert_eq!(
        (quota.total, quota.used, quota.remaining),
        (5_368_709_120, 185_307_648, 5_183_401_472)
    );
}

#[tokio::test]
async fn folders_are_renamed_by_id() {
    let m = Mocks::start().await;
    m.approot(1).await;
    Mock::given(method("PATCH"))
        .and(url_path(format!("{D}/items/D!main")))
        .and(body_json(json!({"name": "Main"})))
        .respond_with(m.json(200, "folder_created"))
        .expect(1)
        .mount(&m.api)
        .await;
    let entry = m
        .sink()
        .rename_folder(&"D!main".into(), &path("Old"), "Main")
        .await
        .unwrap();
    assert_eq!((entry.name.as_str(), entry.parent), ("Main", None));
}

#[tokio::test]
async fn sharing_endpoints() {
    let m = Mocks::start().await;
    Mock::given(method("POST"))
        .and(url_path(format!("{D}/items/D!main/createLink")))
        .and(body_json(json!({"type": "view", "scope": "anonymous"})))
        .respond_with(m.json(201, "permission_link"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("POST"))
        .and(url_path(format!("{D}/items/D!main/invite")))
        .and(body_json(
            json!({"recipients": [{"email": "accountant@example.com"}], "roles": ["read"],
                              "requireSignIn": true, "sendInvitation": true}),
        ))
        .respond_with(m.json(200, "invite"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/items/D!main/permissions")))
        .respond_with(m.json(200, "permissions"))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("DELETE"))
        .and(url_path(format!("{D}/items/D!main/permissions/perm-link")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&m.api)
        .await;
    let sink = m.sink();
    let folder = "D!main".into();
    let link = sink.share_link(&folder).await.unwrap();
    assert!(
        matches!(&link.kind, ShareKind::Link { url: Some(u), .. } if u.expose().contains("secret-link"))
    );
    assert!(!format!("{link:?}").contains("secret-link"));
    let invited = sink
        .invite(&folder, " accountant@example.com ")
        .await
        .unwrap();
    assert!(
        matches!(&invited[0].kind, ShareKind::Person { email: Some(e), .. } if e == "accountant@example.com")
    );
    assert_eq!(sink.shares(&folder).await.unwrap().len(), 3);
    sink.remove_share(&folder, "perm-link").await.unwrap();
}

#[test]
fn the_builder_validates_its_settings() {
    let ok = builder("https://graph.microsoft.com/v1.0")
        .with_fragment_size(3 * UNIT as u64)
        .build();
    assert!(ok.is_ok());
    for size in [0, 1000, UNIT as u64 + 1, 192 * UNIT as u64] {
        let err = builder("https://graph.microsoft.com/v1.0")
            .with_fragment_size(size)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), receipt_sync::ErrorKind::Config, "{size}");
    }
    for url in [
        "http://graph.example.com/v1.0",
        "ftp://127.0.0.1",
        "not a url",
    ] {
        let err = builder(url).build().unwrap_err();
        assert_eq!(err.kind(), receipt_sync::ErrorKind::Config, "{url}");
    }
    assert!(builder("http://localhost:1/v1.0").build().is_ok());
    assert!(builder("http://[::1]:1/v1.0").build().is_ok());
    let sink = builder("https://graph.microsoft.com/v1.0")
        .with_app_name("Receipt Archiver")
        .build()
        .unwrap();
    let caps = sink.capabilities();
    assert_eq!(caps.root_prefix_len, "Apps/Receipt Archiver/".len());
    assert!(
        caps.stable_ids
            && caps.delta
            && caps.quota
            && caps.resumable_upload
            && caps.case_insensitive
    );
    assert_eq!((caps.max_name_len, caps.max_path_len), (255, 400));
    assert!(!format!("{sink:?}").contains("test-token"));
}

#[tokio::test]
async fn a_folder_root_is_found_by_path_from_the_drive_root() {
    let m = Mocks::start().await;
    let mut folder = m.fixture("folder_created");
    folder["id"] = json!("D!receipts");
    Mock::given(method("GET"))
        .and(url_path(format!("{D}/root:/Documents/My%20Receipts:")))
        .respond_with(ResponseTemplate::new(200).set_body_json(folder))
        .expect(1)
        .mount(&m.api)
        .await;
    Mock::given(method("POST"))
        .and(url_path(format!("{D}/items/D!receipts/children")))
        .respond_with(m.json(201, "folder_created"))
        .expect(1)
        .mount(&m.api)
        .await;
    let sink = builder(&m.base())
        .with_root(receipt_sync::sink::onedrive::OneDriveRoot::Folder(
            "/Documents/My Receipts/".into(),
        ))
        .build()
        .unwrap();
    assert_eq!(
        sink.capabilities().root_prefix_len,
        "Documents/My Receipts/".len()
    );
    assert_eq!(sink.root_id().await.unwrap().as_str(), "D!receipts");
    assert_eq!(
        sink.create_folder(&path("Main")).await.unwrap().parent,
        None
    );
}
