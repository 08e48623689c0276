//! The decoding path of every Qonto answer, from bytes to what the source yields, with
//! no HTTP around it: [`crate::testkit::decode`] exposes it to the fuzzers and to the
//! bad-input property tests.

use super::accounts::listed_accounts;
use super::client::{decode, list_page, parse_body};
use super::convert::{fresh_url, required, transaction};
use super::error::{AuthKind, QontoError};
use super::model::{AttachmentEnvelope, OrganizationEnvelope};
use crate::error::{Error, Result};
use crate::model::AccountId;
use reqwest::StatusCode;

/// A `GET /v2/organization` body: how many bank accounts it lists.
pub(crate) fn organization(body: &[u8]) -> Result<usize> {
    let value = parse_body("read the organization", false, body).map_err(Error::from)?;
    let envelope: OrganizationEnvelope = decode(value, "organization")?;
    Ok(listed_accounts(envelope)?.len())
}

/// A `GET /v2/transactions` page: for each transaction, its receipts or why it failed,
/// and whether a next page is announced.
pub(crate) fn transactions_page(body: &[u8]) -> Result<(Vec<Result<usize>>, bool)> {
    let value = parse_body("list transactions", false, body).map_err(Error::from)?;
    let page = list_page(value, "transactions")?;
    let next = super::paginate::next_page(&page, 1)?.is_some();
    let account = AccountId::new("fuzz");
    let transactions = page
        .items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let listed = transaction(item, &format!("transactions[{i}]"), &account, None)?;
            Ok(listed.receipts.len())
        })
        .collect();
    Ok((transactions, next))
}

/// A `GET /v2/attachments/{id}` body: the announced size of the file.
pub(crate) fn attachment(body: &[u8]) -> Result<u64> {
    let value = parse_body("read an attachment", false, body).map_err(Error::from)?;
    let envelope: AttachmentEnvelope = decode(value, "attachment")?;
    let dto = required(envelope.attachment, "", "attachment", "an object")?;
    Ok(fresh_url(dto)?.1)
}

/// An error answer with `status` and `body`, classified.
pub(crate) fn error(status: u16, body: &[u8]) -> Error {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    QontoError::Status {
        operation: "fuzz".to_owned(),
        status,
        retry_after: None,
        body: body.to_vec(),
        auth: AuthKind::ApiKey,
    }
    .into()
}
