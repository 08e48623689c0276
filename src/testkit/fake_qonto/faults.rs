//! Fault injection: one-shot faults queued per route, and seeded random chaos.

use crate::testkit::server::FakeResponse;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A misbehaviour the fake can answer with instead of (or on top of) its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// `429 Too Many Requests`, with `Retry-After` set to this value when given
    /// (seconds, or an HTTP date).
    TooManyRequests {
        /// The `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// A server error with this status (500, 502, 503…).
    ServerError(u16),
    /// The real answer, cut half-way through its body.
    Truncated,
    /// `200 OK` with the HTML login page of the sandbox (qonto.md §1.4).
    HtmlPage,
    /// The connection closed without an answer.
    Drop,
}

impl Fault {
    /// `429` without `Retry-After`.
    pub fn too_many_requests() -> Self {
        Fault::TooManyRequests { retry_after: None }
    }

    /// `429` with `Retry-After: <seconds>`.
    pub fn too_many_requests_after(seconds: u64) -> Self {
        Fault::TooManyRequests {
            retry_after: Some(seconds.to_string()),
        }
    }

    /// Applies the fault to `real`, the answer the fake would have given.
    pub(super) fn apply(&self, real: FakeResponse) -> FakeResponse {
        match self {
            Fault::TooManyRequests { retry_after } => {
                let answer = error_json(429, "too_many_requests", "Rate limit exceeded");
                match retry_after {
                    Some(value) => answer.with_header("retry-after", value),
                    None => answer,
                }
            }
            Fault::ServerError(status) => error_json(*status, "internal_error", "Server error"),
            Fault::Truncated => {
                let len = match &real {
                    FakeResponse::Full { body, .. } | FakeResponse::Truncated { body, .. } => {
                        body.len()
                    }
                    FakeResponse::Drop => 0,
                };
                real.truncated(len / 2)
            }
            Fault::HtmlPage => FakeResponse::bytes(200, "text/html; charset=utf-8", LOGIN_PAGE),
            Fault::Drop => FakeResponse::Drop,
        }
    }
}

/// The sandbox's login page, roughly.
pub(super) const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>OneLogin</title></head>\
    <body><form action=\"https://qonto.onelogin.com/login\">Sign in</form></body></html>\n";

/// A Qonto error body (qonto.md §3).
pub(super) fn error_json(status: u16, code: &str, detail: &str) -> FakeResponse {
    FakeResponse::json(
        status,
        &serde_json::json!({
            "errors": [{ "code": code, "detail": detail }],
            "trace_id": "fake-trace-0000",
        }),
    )
}

/// The faults waiting to happen.
#[derive(Debug)]
pub(super) struct Faults {
    /// `(route prefix, fault)`, in order: the first match fires once.
    queued: Vec<(String, Fault)>,
    chaos: Option<Chaos>,
    /// Every fault thrown, with the route it hit, in order.
    pub(super) fired: Vec<(String, Fault)>,
}

#[derive(Debug)]
struct Chaos {
    rng: SmallRng,
    probability: f64,
    seed: u64,
}

impl Faults {
    pub(super) fn new() -> Self {
        Self {
            queued: Vec::new(),
            chaos: None,
            fired: Vec::new(),
        }
    }

    pub(super) fn queue(&mut self, route_prefix: &str, fault: Fault, times: usize) {
        for _ in 0..times {
            self.queued.push((route_prefix.to_owned(), fault.clone()));
        }
    }

    pub(super) fn set_chaos(&mut self, seed: u64, probability: f64) {
        self.chaos = (probability > 0.0).then(|| Chaos {
            rng: SmallRng::seed_from_u64(seed),
            probability: probability.min(1.0),
            seed,
        });
    }

    pub(super) fn chaos_seed(&self) -> Option<u64> {
        self.chaos.as_ref().map(|c| c.seed)
    }

    /// The fault for a request on `route`, if any, recorded in `fired`.
    pub(super) fn next(&mut self, route: &str) -> Option<Fault> {
        let fault = self.pick(route)?;
        self.fired.push((route.to_owned(), fault.clone()));
        Some(fault)
    }

    /// A queued fault first, then chaos. Chaos only throws faults a client is expected to
    /// survive by retrying.
    fn pick(&mut self, route: &str) -> Option<Fault> {
        if let Some(i) = self.queued.iter().position(|(p, _)| route.starts_with(p)) {
            return Some(self.queued.remove(i).1);
        }
        let chaos = self.chaos.as_mut()?;
        if !chaos.rng.gen_bool(chaos.probability) {
            return None;
        }
        Some(match chaos.rng.gen_range(0..5) {
            0 => Fault::too_many_requests_after(0),
            1 => Fault::too_many_requests(),
            2 => Fault::ServerError(503),
            3 => Fault::Drop,
            _ => Fault::Truncated,
        })
    }
}
