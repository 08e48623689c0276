//! One organisation of the fake: its key and the helpers that change its data.
//!
//! The first organisation is the one [`FakeQonto`](super::FakeQonto)'s own helpers
//! change; [`FakeQonto::add_organisation`](super::FakeQonto::add_organisation) adds
//! more, each with its own API key, served by the same hosts. A key reads its own
//! organisation only, as Qonto's do.

use super::NewTransaction;
use super::config::FakeAccount;
use super::shared::{OrgNumber, Shared};
use super::state::{Account, Att, Org, Tx};
use crate::auth::SecretString;
use crate::http::RetryConfig;
use crate::source::qonto::{QontoAuth, QontoRateLimit, QontoSourceBuilder};
use std::sync::Arc;

/// One organisation served by a [`FakeQonto`](super::FakeQonto), with its own API key.
#[derive(Clone)]
pub struct FakeOrganisation {
    pub(super) shared: Arc<Shared>,
    pub(super) number: OrgNumber,
    pub(super) api_url: String,
}

impl std::fmt::Debug for FakeOrganisation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOrganisation")
            .field("number", &self.number)
            .field("api", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl FakeOrganisation {
    /// Runs `change` on this organisation's data, if it exists.
    fn with_org<T>(&self, change: impl FnOnce(&mut Org) -> T) -> Option<T> {
        let mut state = self.shared.lock();
        state.org_mut(self.number).map(change)
    }

    /// The API key that reads this organisation (and no other).
    pub fn api_key(&self) -> QontoAuth {
        let (login, secret) = self.credentials();
        QontoAuth::api_key(login.as_str(), secret.expose())
    }

    /// The organisation login and the secret key of its API key, as a command's
    /// environment takes them (`QONTO_LOGIN`, `QONTO_SECRET_KEY`).
    pub fn credentials(&self) -> (String, SecretString) {
        let state = self.shared.lock();
        let (login, secret) = match self.number {
            0 => (
                state.settings.login.clone(),
                state.settings.secret_key.clone(),
            ),
            n => state
                .others
                .get(n - 1)
                .map(|o| (o.login.clone(), o.secret_key.clone()))
                .unwrap_or_default(),
        };
        (login, SecretString::new(secret))
    }

    /// A source builder for this organisation: its API key, fast retries, no rate limit.
    pub fn source_builder(&self) -> QontoSourceBuilder {
        QontoSourceBuilder::new(self.api_key())
            .with_base_url(self.api_url.clone())
            .with_retry(RetryConfig::fast())
            .with_rate_limit(QontoRateLimit::unlimited())
    }

    /// Adds an account that `/v2/organization` lists with its id.
    pub fn add_account(&self, name: &str) -> FakeAccount {
        self.push_account(name, true)
    }

    /// Adds an account that `/v2/organization` lists without its id (qonto.md §8.6);
    /// `/v2/bank_accounts` still has it.
    pub fn add_account_without_id(&self, name: &str) -> FakeAccount {
        self.push_account(name, false)
    }

    fn push_account(&self, name: &str, id_in_organization: bool) -> FakeAccount {
        self.with_org(|org| {
            let id = org.next_id(1);
            let iban = org.next_iban();
            org.accounts.push(Account {
                id: id.clone(),
                id_in_organization,
                name: name.to_owned(),
                iban: iban.clone(),
                currency: "EUR".to_owned(),
            });
            FakeAccount { id, iban }
        })
        .unwrap_or_else(|| FakeAccount {
            id: String::new(),
            iban: String::new(),
        })
    }

    /// Renames account `id` (by id or IBAN). Returns whether it exists.
    pub fn rename_account(&self, id: &str, name: &str) -> bool {
        self.with_org(
            |org| match org.accounts.iter_mut().find(|a| a.id == id || a.iban == id) {
                Some(account) => {
                    account.name = name.to_owned();
                    true
                }
                None => false,
            },
        )
        .unwrap_or(false)
    }

    /// Adds a transaction to account `account` (by id or IBAN); returns its id, or an
    /// empty string when the account does not exist.
    pub fn add_transaction(&self, account: &str, tx: NewTransaction) -> String {
        self.with_org(|org| {
            let Some(account) = org.account_by_id_or_iban(account).map(|a| a.id.clone()) else {
                return String::new();
            };
            let now = org.tick();
            let id = org.next_id(2);
            let index = org.txs.len();
            org.txs.push(Tx {
                id: id.clone(),
                account,
                amount_cents: tx.amount_cents,
                currency: tx.currency,
                label: tx.label,
                operation_type: tx.operation_type,
                status: tx.status,
                emitted_at: tx.emitted_at.unwrap_or(now),
                created_at: now,
                updated_at: now,
                attachments: Vec::new(),
                patch: serde_json::Map::new(),
            });
            org.tx_index.insert(id.clone(), index);
            id
        })
        .unwrap_or_default()
    }

    /// Attaches a file to transaction `tx`, bumping its `updated_at` (qonto.md §8.8:
    /// assumed, as qonto-backup does). Returns the attachment id, or an empty string
    /// when the transaction does not exist.
    pub fn add_attachment(
        &self,
        tx: &str,
        file_name: &str,
        content_type: &str,
        bytes: impl Into<bytes::Bytes>,
    ) -> String {
        let bytes = bytes.into();
        self.with_org(|org| {
            let Some(&index) = org.tx_index.get(tx) else {
                return String::new();
            };
            let now = org.tick();
            let id = org.next_id(3);
            org.atts.insert(
                id.clone(),
                Att {
                    id: id.clone(),
                    file_name: file_name.to_owned(),
                    content_type: content_type.to_owned(),
                    bytes,
                    created_at: now,
                    announced_size: None,
                },
            );
            if let Some(tx) = org.txs.get_mut(index) {
                tx.attachments.push(id.clone());
                tx.updated_at = now;
            }
            id
        })
        .unwrap_or_default()
    }

    /// Adds `count` transactions with one attachment of `size` bytes each to
    /// `account`; returns the attachment ids.
    pub fn add_receipts(&self, account: &str, count: usize, size: usize) -> Vec<String> {
        (0..count)
            .map(|i| {
                let label = format!("Shop {i}");
                let tx =
                    self.add_transaction(account, NewTransaction::debit(100 + i as i64, &label));
                let bytes: Vec<u8> = (0..size).map(|j| (i + j) as u8).collect();
                self.add_attachment(&tx, &format!("receipt-{i}.pdf"), "application/pdf", bytes)
            })
            .collect()
    }
}
