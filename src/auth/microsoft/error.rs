//! Token-endpoint failures mapped into the crate's [`Error`], by what to do next.
//!
//! Error codes: onedrive-graph.md §1 "Authorization code + PKCE" (token endpoint errors),
//! "Refresh tokens" (revocation), "Device code flow" (polling errors).

use super::config::SERVICE;
use super::oauth::TransportError;
use crate::error::Error;
use oauth2::{ErrorResponseType, RequestTokenError, StandardErrorResponse};

/// Which grant was being asked for: the same code means different things in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Exchanging an authorization code from the browser sign-in.
    Code,
    /// Refreshing an access token.
    Refresh,
    /// Asking for or polling a device code.
    Device,
}

impl Grant {
    fn operation(self) -> &'static str {
        match self {
            Grant::Code => "browser sign-in",
            Grant::Refresh => "token refresh",
            Grant::Device => "device code sign-in",
        }
    }
}

/// What to check in the app registration when Microsoft refuses the client.
pub(crate) const REGISTRATION_HINT: &str = "check the app registration in the Azure portal: \
the application (client) id, 'Supported account types' including personal Microsoft accounts, \
a 'Mobile and desktop applications' platform with the redirect URI http://localhost, and \
'Allow public client flows' set to Yes (needed for device code; no client secret is used)";

/// How to sign in again, for every error that needs it. The application adds its own
/// command (the library does not know it).
pub(crate) const SIGN_IN_AGAIN: &str = "sign in to the Microsoft account again";

/// Maps an oauth2 request failure.
pub(crate) fn map_request_error<T>(
    grant: Grant,
    client_id: &str,
    error: RequestTokenError<TransportError, StandardErrorResponse<T>>,
) -> Error
where
    T: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
{
    match error {
        RequestTokenError::ServerResponse(response) => map_error_code(
            grant,
            client_id,
            response.error().as_ref(),
            response.error_description().map(String::as_str),
        ),
        RequestTokenError::Request(transport) => map_transport(grant, transport),
        // Never echo the body or serde's message: either could quote a token. The field path
        // and the category are enough to find the problem.
        RequestTokenError::Parse(e, _body) => Error::Malformed {
            service: SERVICE,
            field: e.path().to_string(),
            detail: format!(
                "the token endpoint's answer cannot be read ({:?} error at line {}, column {})",
                e.inner().classify(),
                e.inner().line(),
                e.inner().column()
            ),
        },
        // oauth2's own messages ("server returned empty error response", …): no secrets.
        RequestTokenError::Other(message) => Error::Permanent {
            service: SERVICE,
            operation: grant.operation().into(),
            message,
        },
    }
}

/// Maps a transport failure (no answer, 429, 5xx, redirect).
pub(crate) fn map_transport(grant: Grant, error: TransportError) -> Error {
    match error {
        TransportError::Status {
            status: 429,
            retry_after,
        } => Error::RateLimited {
            service: SERVICE,
            operation: grant.operation().into(),
            retry_after,
        },
        TransportError::Status {
            status,
            retry_after,
        } => Error::Transient {
            service: SERVICE,
            operation: grant.operation().into(),
            message: format!("HTTP {status}"),
            retry_after,
        },
        TransportError::Network(message) => Error::Transient {
            service: SERVICE,
            operation: grant.operation().into(),
            message,
            retry_after: None,
        },
        TransportError::Redirected => Error::Config(
            "the Microsoft identity endpoint answered with a redirect, which is never followed \
             for token requests: check the login base URL, and build any custom HTTP client \
             with redirect(Policy::none())"
                .into(),
        ),
    }
}

/// Maps an OAuth error code (from the token endpoint, or from the browser redirect).
pub(crate) fn map_error_code(
    grant: Grant,
    client_id: &str,
    code: &str,
    description: Option<&str>,
) -> Error {
    let said = describe(code, description);
    match code {
        // §1 "Refresh tokens": consent withdrawn at account.live.com/consent/Manage, 90 days
        // of inactivity (AADSTS700082), a password change. Signing in again is the only cure.
        "invalid_grant" if grant == Grant::Refresh => Error::ConsentRevoked {
            service: SERVICE,
            hint: format!(
                "{SIGN_IN_AGAIN}; Microsoft refused the saved refresh token, which lapses after \
                 90 days without use, on a password change, or when the app's access is removed \
                 at https://account.live.com/consent/Manage.\n  {said}"
            ),
        },
        // §1 "Authorization code + PKCE": a code lives about 10 minutes; a wrong verifier
        // gives the same error.
        "invalid_grant" => Error::Permanent {
            service: SERVICE,
            operation: grant.operation().into(),
            message: format!(
                "{SIGN_IN_AGAIN}; Microsoft refused the sign-in code, which may have expired.\n  {said}"
            ),
        },
        "invalid_client" | "unauthorized_client" => Error::Config(format!(
            "{REGISTRATION_HINT}; Microsoft refused application (client) id {client_id}.\n  {said}"
        )),
        "invalid_scope" => Error::Config(format!(
            "allow the app to ask for Files.ReadWrite.AppFolder (or Files.ReadWrite) and \
             offline_access; Microsoft refused the requested scopes.\n  {said}"
        )),
        "access_denied" | "authorization_declined" => Error::ConsentRevoked {
            service: SERVICE,
            hint: format!(
                "{SIGN_IN_AGAIN} and choose Accept on Microsoft's consent page; the requested \
                 access was declined.\n  {said}"
            ),
        },
        "interaction_required" | "consent_required" | "login_required" => Error::ConsentRevoked {
            service: SERVICE,
            hint: format!("{SIGN_IN_AGAIN}; Microsoft needs the user in a browser.\n  {said}"),
        },
        // §1 "Device code flow", UNCERTAIN: abraunegg reports that personal accounts on apps
        // Microsoft has not approved always see "The code you entered has expired".
        "expired_token" => Error::Permanent {
            service: SERVICE,
            operation: grant.operation().into(),
            message: format!(
                "sign in again, entering the code sooner; the device code expired before the \
                 sign-in finished. If Microsoft said \"The code you entered has expired\" right \
                 after you entered it, it does not allow device-code sign-in of personal \
                 accounts for this app: use the browser sign-in instead.\n  {said}"
            ),
        },
        "temporarily_unavailable" | "server_error" => Error::Transient {
            service: SERVICE,
            operation: grant.operation().into(),
            message: said,
            retry_after: None,
        },
        _ => Error::Permanent {
            service: SERVICE,
            operation: grant.operation().into(),
            message: said,
        },
    }
}

/// `code: first line of the description`. Microsoft's descriptions start with an `AADSTS`
/// code and go on with trace and correlation ids on further lines.
fn describe(code: &str, description: Option<&str>) -> String {
    let code = crate::error::shorten(code, 64);
    match description
        .and_then(|d| d.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(|line| crate::error::shorten(line, 300))
    {
        Some(first) => format!("{code}: {first}"),
        None => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn codes_map_by_what_to_do() {
        let kind = |grant, code| map_error_code(grant, "id", code, None).kind();
        assert_eq!(
            kind(Grant::Refresh, "invalid_grant"),
            ErrorKind::ConsentRevoked
        );
        assert_eq!(kind(Grant::Code, "invalid_grant"), ErrorKind::Permanent);
        assert_eq!(kind(Grant::Refresh, "invalid_client"), ErrorKind::Config);
        assert_eq!(kind(Grant::Code, "unauthorized_client"), ErrorKind::Config);
        assert_eq!(
            kind(Grant::Device, "authorization_declined"),
            ErrorKind::ConsentRevoked
        );
        assert_eq!(
            kind(Grant::Refresh, "temporarily_unavailable"),
            ErrorKind::Transient
        );
        let expired = map_error_code(Grant::Device, "id", "expired_token", None).to_string();
        assert!(expired.contains("browser sign-in"), "{expired}");
        let described = map_error_code(
            Grant::Refresh,
            "id",
            "invalid_grant",
            Some("AADSTS700082: The refresh token has expired.\r\nTrace ID: 1\r\n"),
        )
        .to_string();
        assert!(described.contains("AADSTS700082"), "{described}");
        assert!(!described.contains("Trace ID"), "{described}");
    }

    #[test]
    fn hints_lead_with_what_to_do_and_say_it_once() {
        for code in ["invalid_grant", "access_denied", "interaction_required"] {
            let text =
                map_error_code(Grant::Refresh, "id", code, Some("AADSTS1: said")).to_string();
            assert_eq!(text.matches(SIGN_IN_AGAIN).count(), 1, "{text}");
            assert!(
                text.lines().next().unwrap().contains(SIGN_IN_AGAIN),
                "{text}"
            );
            // The service's own words come after, on their own line.
            assert!(
                text.lines().skip(1).any(|l| l.contains("AADSTS1: said")),
                "{text}"
            );
        }
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        let limited = map_transport(
            Grant::Refresh,
            TransportError::Status {
                status: 429,
                retry_after: Some(std::time::Duration::from_secs(2)),
            },
        );
        assert_eq!(limited.kind(), ErrorKind::RateLimited);
        let down = map_transport(
            Grant::Refresh,
            TransportError::Status {
                status: 503,
                retry_after: None,
            },
        );
        assert!(down.is_retryable());
        assert_eq!(
            map_transport(Grant::Code, TransportError::Redirected).kind(),
            ErrorKind::Config
        );
    }
}
