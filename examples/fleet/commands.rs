//! The administrative subcommands: `add`, `enable`, `disable`, `run-now`.

use chrono::{NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use receipt_sync::Result;
use receipt_sync::auth::SecretString;
use receipt_sync::fleet::{Fleet, NewOrganization, QontoCredentials};

/// An organisation to register, with the credentials to seal for it.
pub struct Registration {
    /// Who it is and when it runs.
    pub organization: NewOrganization,
    /// Its Qonto credentials, if given now.
    pub qonto: Option<QontoCredentials>,
    /// Its Microsoft refresh token, if given now.
    pub microsoft_refresh_token: Option<SecretString>,
    /// Whether its first run is due at once rather than at its daily time.
    pub run_now: bool,
}

impl Registration {
    /// An organisation running daily at `at` in `zone`, due at once, its credentials
    /// to be given.
    pub fn new(
        id: &str,
        name: &str,
        zone: Tz,
        at: NaiveTime,
        start_date: Option<NaiveDate>,
    ) -> Self {
        Self {
            organization: NewOrganization {
                id: id.to_owned(),
                display_name: name.to_owned(),
                time_zone: zone,
                daily_time: at,
                start_date,
            },
            qonto: None,
            microsoft_refresh_token: None,
            run_now: true,
        }
    }
}

/// Registers (or updates) the organisation and seals its credentials.
pub async fn register(fleet: &Fleet, registration: &Registration) -> Result<()> {
    let id = &registration.organization.id;
    fleet
        .register(&registration.organization, Utc::now())
        .await?;
    if let Some(qonto) = &registration.qonto {
        fleet.save_qonto_credentials(id, &qonto.encode()?).await?;
    }
    if let Some(token) = &registration.microsoft_refresh_token {
        fleet.save_microsoft_refresh_token(id, token).await?;
    }
    if registration.run_now {
        fleet.run_now(id).await?;
    }
    Ok(())
}

/// `enable` / `disable`.
pub async fn set_enabled(fleet: &Fleet, id: &str, enabled: bool) -> Result<()> {
    fleet.set_enabled(id, enabled).await
}

/// `run-now`.
pub async fn run_now(fleet: &Fleet, id: &str) -> Result<()> {
    fleet.run_now(id).await
}
