//! Plumbing shared by the HTTP connectors.

pub mod paging;
pub mod retry;
pub(crate) mod retry_after;
pub(crate) mod throttle;

pub use paging::PagingLimits;
pub use retry::RetryConfig;

use url::{Host, Url};

/// Where every HTTP client the crate builds starts: a client that sends no `Referer`.
///
/// reqwest's default adds `Referer: <previous URL>` when it follows a redirect, query
/// included: for a pre-signed download or upload-session URL that is the signature
/// itself, handed to whatever host the redirect names. No request of this crate needs
/// a `Referer`, so none is ever sent.
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().referer(false)
}

/// Whether `answered` has the scheme, host and port of `asked`: an answer that comes
/// from anywhere else was reached through a redirect the client followed.
pub(crate) fn same_origin(answered: &Url, asked: &Url) -> bool {
    answered.scheme() == asked.scheme()
        && answered.host_str() == asked.host_str()
        && answered.port_or_known_default() == asked.port_or_known_default()
}

/// `https`, or `http` to a loopback host (`127.0.0.0/8`, `::1`, `localhost`): the only
/// URLs that may carry a credential or a receipt.
pub(crate) fn is_secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let api = url("https://thirdparty.qonto.com/v2/organization");
        assert!(same_origin(
            &url("https://thirdparty.qonto.com:443/v2/transactions?page=2"),
            &api
        ));
        for other in [
            "http://thirdparty.qonto.com/v2/organization",
            "https://thirdparty.qonto.com:8443/v2/organization",
            "https://qonto.onelogin.com/login",
        ] {
            assert!(!same_origin(&url(other), &api), "{other}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for allowed in [
            "https://storage.example.com/a",
            "http://127.0.0.1:9000/a",
            "http://[::1]/a",
            "http://LocalHost/a",
        ] {
            assert!(is_secure_or_loopback(&url(allowed)), "{allowed}");
        }
        for refused in [
            "http://storage.example.com/a",
            "http://10.0.0.1/a",
            "ftp://127.0.0.1/a",
            "file:///etc/passwd",
        ] {
            assert!(!is_secure_or_loopback(&url(refused)), "{refused}");
        }
    }
}
