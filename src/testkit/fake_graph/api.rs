//! The fake Graph API service: authentication, faults, routing.

use super::State;
use super::drive::DriveError;
use super::faults::Fault;
use super::json;
use super::route::{self, Action, Parsed, Target};
use super::{delta, items, perms, scopes};
use crate::testkit::server::{FakeRequest, FakeResponse, FakeService};
use futures::future::BoxFuture;
use hyper::Method;
use serde_json::json;
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) struct GraphApi {
    pub state: Arc<Mutex<State>>,
}

impl FakeService for GraphApi {
    fn route(&self, request: &FakeRequest) -> String {
        let drive_id = self.lock().drive.drive_id.clone();
        match route::parse(&request.raw_path, &drive_id) {
            Ok(parsed) => format!("{} {}", request.method, parsed.label()),
            Err(_) => format!("{} {}", request.method, request.path),
        }
    }

    fn handle(&self, request: FakeRequest) -> BoxFuture<'_, FakeResponse> {
        let route = self.route(&request);
        let response = self.answer(&route, &request);
        Box::pin(async move { response })
    }
}

impl GraphApi {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn answer(&self, route: &str, request: &FakeRequest) -> FakeResponse {
        let mut state = self.lock();
        state
            .arrivals
            .push((std::time::Instant::now(), route.to_owned()));
        let fault = state.faults.pick(route);
        if let Some(early) = fault.as_ref().and_then(early_fault) {
            return early;
        }
        if let Some(refusal) = check_auth(&state, request) {
            return refusal;
        }
        let drive_id = state.drive.drive_id.clone();
        let parsed = match route::parse(&request.raw_path, &drive_id) {
            Ok(parsed) => parsed,
            Err(e) => return json::error(&e),
        };
        if let Some(refusal) = scopes::check(&mut state, &parsed, request) {
            return refusal;
        }
        if fault == Some(Fault::Resync)
            && let Target::Item {
                action: Action::Delta,
                ..
            } = &parsed.target
        {
            return delta::resync(&mut state, &parsed);
        }
        let response = dispatch(&mut state, &parsed, request);
        match fault {
            Some(Fault::DropAfter) => FakeResponse::Drop,
            Some(Fault::Truncate) => response.truncated(5),
            _ => response,
        }
    }
}

/// Faults answered before the request is looked at.
pub(crate) fn early_fault(fault: &Fault) -> Option<FakeResponse> {
    let throttled = |status: u16, code: &str, after: Option<u64>| {
        let body = json!({"error": {"code": code, "message": "The request has been throttled",
            "innerError": {"code": "throttledRequest", "innerError": {"code": "quota"}}}});
        let response = FakeResponse::json(status, &body);
        match after {
            Some(secs) => response.with_header("retry-after", &secs.to_string()),
            None => response,
        }
    };
    match fault {
        Fault::Throttle(after) => Some(throttled(429, "activityLimitReached", *after)),
        Fault::Unavailable(after) => Some(throttled(503, "serviceNotAvailable", *after)),
        Fault::ThrottleWith(value) => {
            Some(throttled(429, "activityLimitReached", None).with_header("retry-after", value))
        }
        Fault::ServerError => Some(json::error(&DriveError::new(
            500,
            "generalException",
            "An unspecified error has occurred.",
        ))),
        Fault::Drop => Some(FakeResponse::Drop),
        // Answered after handling (DropAfter, Truncate), or only where they apply
        // (Resync on delta, ExpireSession and AcceptPartly on upload URLs).
        _ => None,
    }
}

fn check_auth(state: &State, request: &FakeRequest) -> Option<FakeResponse> {
    let token = request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let accepted = match token {
        None => false,
        Some(t) => state.accepted_tokens.is_empty() || state.accepted_tokens.iter().any(|a| a == t),
    };
    (!accepted).then(|| {
        json::error(&DriveError::new(
            401,
            "unauthenticated",
            "Access token is missing, invalid or expired.",
        ))
    })
}

fn dispatch(state: &mut State, parsed: &Parsed, request: &FakeRequest) -> FakeResponse {
    let Target::Item { action, .. } = &parsed.target else {
        return match request.method {
            Method::GET => items::drive_resource(state),
            _ => method_not_allowed(),
        };
    };
    let method = &request.method;
    let result = match (action, method) {
        (Action::Item, &Method::GET) => items::get(state, parsed),
        (Action::Item, &Method::PATCH) => items::patch(state, parsed, request),
        (Action::Item, &Method::DELETE) => items::delete(state, parsed),
        (Action::Children, &Method::GET) => items::list_children(state, parsed, request),
        (Action::Children, &Method::POST) => items::create_child(state, parsed, request),
        (Action::Content, &Method::PUT) => items::put_content(state, parsed, request),
        (Action::Content, &Method::GET) => items::get_content(state, parsed),
        (Action::CreateUploadSession, &Method::POST) => {
            items::create_session(state, parsed, request)
        }
        (Action::Delta, &Method::GET) => delta::delta(state, parsed, request),
        (Action::CreateLink, &Method::POST) => perms::create_link(state, parsed, request),
        (Action::Invite, &Method::POST) => perms::invite(state, parsed, request),
        (Action::Permissions, &Method::GET) => perms::list(state, parsed),
        (Action::Permission(id), &Method::DELETE) => perms::remove(state, parsed, id),
        _ => return method_not_allowed(),
    };
    result.unwrap_or_else(|e| json::error(&e))
}

fn method_not_allowed() -> FakeResponse {
    json::error(&DriveError::new(
        405,
        "notSupported",
        "The method is not supported here.",
    ))
}
