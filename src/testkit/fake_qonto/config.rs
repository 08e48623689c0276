//! The fake's settings and the shapes its helpers take.

use chrono::{DateTime, TimeZone, Utc};
use std::time::Duration;

/// Which query parameter the fake honours for paging (qonto.md §2.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FakePaging {
    /// Only `page` (what the docs say).
    #[default]
    Page,
    /// Only `current_page` (what most clients send).
    CurrentPage,
    /// Either.
    Both,
}

/// How a [`FakeQonto`](super::FakeQonto) starts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FakeQontoConfig {
    /// The API key's login.
    pub login: String,
    /// The API key's secret.
    pub secret_key: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: String,
    /// When set, every API and token request must carry it as `X-Qonto-Staging-Token`,
    /// or gets the sandbox login page.
    pub staging_token: Option<String>,
    /// The paging parameter honoured.
    pub paging: FakePaging,
    /// How long a pre-signed URL works (Qonto: 30 minutes).
    pub url_lifetime: Duration,
    /// How long an access token works (Qonto: an hour).
    pub access_token_lifetime: Duration,
    /// The logical clock's start.
    pub start: DateTime<Utc>,
}

impl Default for FakeQontoConfig {
    fn default() -> Self {
        Self {
            login: "fake-org-1234".to_owned(),
            secret_key: "fake-secret-key".to_owned(),
            client_id: "fake-client".to_owned(),
            client_secret: "fake-client-secret".to_owned(),
            staging_token: None,
            paging: FakePaging::Page,
            url_lifetime: Duration::from_secs(30 * 60),
            access_token_lifetime: Duration::from_secs(3600),
            start: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }
}

/// A bank account of the fake: its id and IBAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeAccount {
    /// The UUID (which `/v2/organization` may hide).
    pub id: String,
    /// The IBAN.
    pub iban: String,
}

/// A transaction to add: a signed amount in cents (negative: debit) and a label.
#[derive(Clone, Debug)]
pub struct NewTransaction {
    pub(super) amount_cents: i64,
    pub(super) label: String,
    pub(super) currency: String,
    pub(super) status: String,
    pub(super) operation_type: String,
    pub(super) emitted_at: Option<DateTime<Utc>>,
}

impl NewTransaction {
    /// Money out: `cents` (positive) leave the account.
    pub fn debit(cents: i64, label: &str) -> Self {
        Self::new(-cents.saturating_abs(), label)
    }

    /// Money in.
    pub fn credit(cents: i64, label: &str) -> Self {
        Self::new(cents.saturating_abs(), label)
    }

    fn new(amount_cents: i64, label: &str) -> Self {
        Self {
            amount_cents,
            label: label.to_owned(),
            currency: "EUR".to_owned(),
            status: "completed".to_owned(),
            operation_type: "card".to_owned(),
            emitted_at: None,
        }
    }

    /// Sets the status (`completed`, `pending`, `declined`, or anything).
    pub fn status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }

    /// Sets the operation type (any string).
    pub fn operation_type(mut self, operation_type: &str) -> Self {
        self.operation_type = operation_type.to_owned();
        self
    }

    /// Sets when it was emitted (default: the logical clock).
    pub fn emitted_at(mut self, at: DateTime<Utc>) -> Self {
        self.emitted_at = Some(at);
        self
    }
}
