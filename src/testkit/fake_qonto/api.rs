//! The fake API host: `/v2/organization`, `/v2/bank_accounts`, `/v2/transactions`,
//! `/v2/attachments/{id}` and the OAuth token endpoint.

use super::FakePaging;
use super::faults::{Fault, LOGIN_PAGE, error_json};
use super::shared::{OrgNumber, Settings, Shared, Signer, State};
use super::state::{Org, TxFilter, account_json, attachment_json, transaction_json};
use crate::testkit::server::{FakeRequest, FakeResponse, FakeService};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::Arc;

/// Serves the Qonto API from the shared state.
pub(super) struct ApiHost {
    pub shared: Arc<Shared>,
}

impl FakeService for ApiHost {
    fn handle(&self, request: FakeRequest) -> BoxFuture<'_, FakeResponse> {
        Box::pin(async move {
            let route = self.route(&request);
            let mut state = self.shared.lock();
            let fault = state.faults.next(&route);
            if let Some(fault) = &fault
                && *fault != Fault::Truncated
            {
                return fault.apply(FakeResponse::status(200));
            }
            let real = answer(&mut state, &request, &route);
            match fault {
                Some(fault) => fault.apply(real),
                None => real,
            }
        })
    }

    fn route(&self, request: &FakeRequest) -> String {
        if request.path.starts_with("/v2/attachments/") {
            format!("{} /v2/attachments/{{id}}", request.method)
        } else {
            format!("{} {}", request.method, request.path)
        }
    }
}

fn answer(state: &mut State, request: &FakeRequest, route: &str) -> FakeResponse {
    if let Some(token) = &state.settings.staging_token
        && request.header("x-qonto-staging-token") != Some(token.as_str())
    {
        // The sandbox answers its login page, sometimes with a 200 (qonto.md §1.4).
        return FakeResponse::bytes(200, "text/html; charset=utf-8", LOGIN_PAGE);
    }
    if route == "POST /oauth2/token" {
        return token(state, request);
    }
    let Some(number) = authorized(state, request) else {
        return error_json(401, "unauthorized", "Invalid or missing credentials");
    };
    if let Some(scope) = &state.settings.missing_scope {
        let detail = format!("missing required OAuth scope: {scope}");
        return error_json(403, "forbidden", &detail);
    }
    let State {
        org,
        others,
        settings,
        signer,
        ..
    } = state;
    // Each key reads its own organisation only.
    let org = match number {
        0 => org,
        n => match others.get_mut(n - 1) {
            Some(other) => &mut other.org,
            None => return error_json(401, "unauthorized", "Invalid or missing credentials"),
        },
    };
    match route {
        "GET /v2/organization" => organization(org),
        "GET /v2/bank_accounts" => bank_accounts(org, settings, request),
        "GET /v2/transactions" => transactions(org, settings, signer, request),
        "GET /v2/attachments/{id}" => attachment(org, settings, signer, request),
        _ => error_json(404, "not_found", "Not found"),
    }
}

/// The organisation the request's credentials read, if they are valid.
fn authorized(state: &State, request: &FakeRequest) -> Option<OrgNumber> {
    let header = request.header("authorization")?;
    if let Some(token) = header.strip_prefix("Bearer ") {
        // OAuth tokens are the first organisation's.
        return state.tokens.access_valid(token).then_some(0);
    }
    state.org_of_key(header)
}

fn token(state: &mut State, request: &FakeRequest) -> FakeResponse {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let oauth_error = |status, code: &str| FakeResponse::json(status, &json!({ "error": code }));
    if field("client_id") != Some(state.settings.client_id.as_str())
        || field("client_secret") != Some(state.settings.client_secret.as_str())
    {
        return oauth_error(401, "invalid_client");
    }
    if field("grant_type") != Some("refresh_token") {
        return oauth_error(400, "unsupported_grant_type");
    }
    if field("refresh_token").is_none() || field("refresh_token") != state.tokens.refresh.as_deref()
    {
        return oauth_error(400, "invalid_grant");
    }
    let lifetime = state.settings.access_token_lifetime;
    let (access, refresh) = state.tokens.issue(lifetime);
    FakeResponse::json(
        200,
        &json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": lifetime.as_secs(),
            "refresh_token": refresh,
            "scope": "offline_access organization.read",
        }),
    )
}

fn organization(org: &Org) -> FakeResponse {
    let accounts: Vec<Value> = org
        .accounts
        .iter()
        .map(|a| account_json(a, a.id_in_organization))
        .collect();
    FakeResponse::json(
        200,
        &json!({ "organization": {
            "id": org.identity.id,
            "slug": org.identity.slug,
            "legal_name": org.identity.legal_name,
            "legal_country": "FR",
            "legal_share_capital": 1000,
            "locale": "fr",
            "contract_signed_at": "2021-03-10 09:12:44.104211",
            "bank_accounts": accounts,
        }}),
    )
}

fn bank_accounts(org: &Org, settings: &Settings, request: &FakeRequest) -> FakeResponse {
    let all: Vec<Value> = org.accounts.iter().map(|a| account_json(a, true)).collect();
    match paged(settings.paging, request, all.len()) {
        Ok((range, meta)) => FakeResponse::json(
            200,
            &json!({ "bank_accounts": all[range].to_vec(), "meta": meta }),
        ),
        Err(answer) => answer,
    }
}

fn transactions(
    org: &Org,
    settings: &Settings,
    signer: &mut Signer,
    request: &FakeRequest,
) -> FakeResponse {
    let key = request
        .query_param("bank_account_id")
        .map(|id| (id, true))
        .or_else(|| request.query_param("iban").map(|iban| (iban, false)));
    let Some((key, by_id)) = key else {
        return error_json(422, "required", "bank_account_id or iban is required");
    };
    let account = match org.account_by_id_or_iban(key) {
        Some(a) if (by_id && a.id == key) || (!by_id && a.iban == key) => a.id.clone(),
        _ => return error_json(404, "not_found", "Bank account not found"),
    };
    let (Ok(updated_at_from), Ok(emitted_at_from)) = (
        time_param(request, "updated_at_from"),
        time_param(request, "emitted_at_from"),
    ) else {
        return error_json(422, "invalid", "invalid date filter");
    };
    let filter = TxFilter {
        account,
        statuses: request
            .query_params("status[]")
            .map(str::to_owned)
            .collect(),
        updated_at_from,
        emitted_at_from,
        sort_by: request
            .query_param("sort_by")
            .unwrap_or("settled_at:desc")
            .to_owned(),
    };
    let include = request
        .query_params("includes[]")
        .any(|v| v == "attachments");
    let selected = org.select(&filter);
    let (range, meta) = match paged(settings.paging, request, selected.len()) {
        Ok(paged) => paged,
        Err(answer) => return answer,
    };
    let lifetime = settings.url_lifetime;
    let atts = &org.atts;
    let list: Vec<Value> = selected[range]
        .iter()
        .map(|tx| {
            let attachments = include.then(|| {
                tx.attachments
                    .iter()
                    .filter_map(|id| atts.get(id))
                    .map(|att| attachment_json(att, signer.sign(&att.id, lifetime)))
                    .collect()
            });
            transaction_json(tx, attachments)
        })
        .collect();
    FakeResponse::json(200, &json!({ "transactions": list, "meta": meta }))
}

fn attachment(
    org: &Org,
    settings: &Settings,
    signer: &mut Signer,
    request: &FakeRequest,
) -> FakeResponse {
    let id = request.path.trim_start_matches("/v2/attachments/");
    let Some(att) = org.atts.get(id) else {
        return error_json(404, "not_found", "Attachment not found");
    };
    let url = signer.sign(&att.id, settings.url_lifetime);
    let mut value = attachment_json(att, url);
    if let Value::Object(map) = &mut value {
        map.insert(
            "probative_attachment".to_owned(),
            json!({ "status": "unavailable" }),
        );
    }
    FakeResponse::json(200, &json!({ "attachment": value }))
}

fn time_param(request: &FakeRequest, name: &str) -> Result<Option<DateTime<Utc>>, ()> {
    match request.query_param(name) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| ()),
    }
}

/// The slice of `total` items a request asks for, and its `meta`, or the 422 Qonto
/// reportedly answers for a page past the end (qonto.md §2.6).
fn paged(
    paging: FakePaging,
    request: &FakeRequest,
    total: usize,
) -> Result<(std::ops::Range<usize>, Value), FakeResponse> {
    let per_page = match request.query_param("per_page").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Err(error_json(422, "invalid", "per_page must be 1 to 100")),
    };
    let raw = match paging {
        FakePaging::Page => request.query_param("page"),
        FakePaging::CurrentPage => request.query_param("current_page"),
        FakePaging::Both => request
            .query_param("page")
            .or_else(|| request.query_param("current_page")),
    };
    let page = match raw.map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            return Err(error_json(
                422,
                "invalid",
                "page must be a positive integer",
            ));
        }
    };
    let total_pages = total.div_ceil(per_page);
    if page > total_pages.max(1) {
        return Err(error_json(422, "invalid", "page is out of range"));
    }
    let start = (page - 1) * per_page;
    let end = (start + per_page).min(total);
    let meta = json!({
        "current_page": page,
        "next_page": (page < total_pages).then_some(page + 1),
        "prev_page": (page > 1).then_some(page - 1),
        "total_pages": total_pages,
        "total_count": total,
        "per_page": per_page,
    });
    Ok((start..end, meta))
}
