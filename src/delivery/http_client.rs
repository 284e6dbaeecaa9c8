//! The outbound HTTP(S) transport for webhook deliveries: a pooled hyper-util client over
//! rustls (ring provider), redirect following, and classification of transport errors into
//! attempt codes.
//!
//! - HTTP/1.1 only; idle connections per host bounded by a parameter, idle timeout 90 s (Go's
//!   default transport), TCP keep-alive 30 s.
//! - Trust roots: the bundled webpki (Mozilla) roots, plus the platform's native certificates
//!   when they can be loaded (a load failure is logged, not fatal). rustls offers no way to merge
//!   two root stores built by hyper-rustls, so the union is implemented as two clients: a request
//!   whose TLS handshake fails with "unknown issuer" under the webpki roots is retried once with
//!   the native roots. Nothing has been sent at that point, so the retry is safe.
//! - Header names: hyper keeps names lowercase internally; `http1_title_case_headers` writes
//!   them as `X-Outpost-Event-Id`, which equals Go's canonical form for the names we send (HTTP
//!   header names are case-insensitive either way).
//! - Redirects: upstream uses Go's `http.Client`, which follows redirects. This client does the
//!   same for 301/302/303/307/308 with a `Location` header: 301/302/303 turn the POST into a
//!   body-less GET, 307/308 repeat method and body; `Referer` is set (not on https → http);
//!   `Authorization`/`Cookie`-type headers are dropped when the host changes to one that is not a
//!   subdomain. Like Go's default policy, at most 10 requests are made: a redirect answering the
//!   10th request is an error (`stopped after 10 redirects`), as is an unparseable `Location`.
//!   Any other 3xx (or a redirect status without `Location`) is returned as the response.
//! - No proxy support (Go honours `HTTP(S)_PROXY`).
//! - Outbound address policy: every connection (first request, each redirect hop, the
//!   native-roots retry) is opened by a [`GuardedConnector`], which refuses denied addresses;
//!   such a refusal is the attempt code `address_denied` ([`SendError::denied`] carries the
//!   address for the attempt's `response_data`).
//!
//! Timeouts are the caller's business (the whole exchange is wrapped in one deadline).

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::address_policy::AddressDenied;
use super::connect_guard::{GuardedConnector, Outbound};

/// Go's default redirect policy: at most this many requests per delivery.
pub const MAX_REQUESTS: usize = 10;

/// How long an idle pooled connection is kept (Go's `DefaultTransport.IdleConnTimeout`).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive of outbound connections (Go's dialer default).
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// Headers Go drops when a redirect leaves the original host.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "www-authenticate",
    "cookie",
    "cookie2",
    "proxy-authorization",
];

type Inner = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Transport(#[source] hyper_util::client::legacy::Error),
    #[error("{0}")]
    Redirect(String),
}

impl SendError {
    /// The attempt code for this failure (`dns_error`, `connection_refused`, …).
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Transport(err) => classify_transport_error(err),
            SendError::Redirect(_) => "redirect_error",
        }
    }

    /// The refused address, when the address policy stopped the connection.
    pub fn denied(&self) -> Option<&AddressDenied> {
        match self {
            SendError::Transport(err) => find_denied(err),
            SendError::Redirect(_) => None,
        }
    }
}

/// The pooled HTTP/HTTPS client. Cheap to share behind an `Arc`; cloning shares the pool.
#[derive(Clone)]
pub struct HttpClient {
    /// Verifies servers against the webpki roots.
    primary: Inner,
    /// Verifies servers against the native roots, when they could be loaded.
    native: Option<Inner>,
}

impl HttpClient {
    /// Builds the client. `max_idle_per_host` bounds the idle connections kept per host;
    /// `outbound` says which addresses it may connect to and how names resolve.
    pub fn new(
        max_idle_per_host: usize,
        outbound: Outbound,
    ) -> Result<HttpClient, HttpClientError> {
        let outbound = Arc::new(outbound);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_webpki_roots()
            .with_no_client_auth();
        let native = match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_native_roots()
        {
            Ok(builder) => Some(builder.with_no_client_auth()),
            Err(err) => {
                tracing::warn!(error = %err, "native root certificates unavailable; using the bundled webpki roots only");
                None
            }
        };
        Ok(HttpClient {
            primary: build_client(webpki, max_idle_per_host, outbound.clone()),
            native: native.map(|config| build_client(config, max_idle_per_host, outbound)),
        })
    }

    /// Sends `request`, following redirects as described in the module documentation.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        let original_host = request.uri().host().map(str::to_ascii_lowercase);
        let mut current = request;
        let mut requests = 1usize;
        loop {
            let next_template = clone_request(&current);
            let response = self.send_once(current).await?;
            let status = response.status();
            if !is_followed_redirect(status) {
                return Ok(response);
            }
            let Some(location) = response.headers().get(header::LOCATION) else {
                return Ok(response);
            };
            if requests >= MAX_REQUESTS {
                return Err(SendError::Redirect(format!(
                    "stopped after {MAX_REQUESTS} redirects"
                )));
            }
            let target = location
                .to_str()
                .ok()
                .and_then(|loc| resolve_location(next_template.uri(), loc))
                .ok_or_else(|| {
                    SendError::Redirect(format!(
                        "failed to parse Location header {:?}",
                        String::from_utf8_lossy(location.as_bytes())
                    ))
                })?;
            drop(response);
            current = redirected_request(next_template, status, target, original_host.as_deref());
            requests += 1;
        }
    }

    /// One request, retried with the native roots if the webpki roots don't know the issuer.
    async fn send_once(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, SendError> {
        let Some(native) = &self.native else {
            return self
                .primary
                .request(request)
                .await
                .map_err(SendError::Transport);
        };
        let retry = clone_request(&request);
        match self.primary.request(request).await {
            Err(err) if is_unknown_issuer(&err) => {
                native.request(retry).await.map_err(SendError::Transport)
            }
            other => other.map_err(SendError::Transport),
        }
    }
}

fn build_client(
    tls: rustls::ClientConfig,
    max_idle_per_host: usize,
    outbound: Arc<Outbound>,
) -> Inner {
    let http = GuardedConnector::new(outbound, |http| {
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_keepalive(Some(TCP_KEEPALIVE));
    });
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle_per_host)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .http1_title_case_headers(true)
        .build(https)
}

fn clone_request(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The request Go's client would send after a redirect to `target`.
fn redirected_request(
    mut request: Request<Full<Bytes>>,
    status: StatusCode,
    target: Uri,
    original_host: Option<&str>,
) -> Request<Full<Bytes>> {
    let previous = request.uri().clone();
    let keeps_method = matches!(status.as_u16(), 307 | 308)
        || matches!(*request.method(), Method::GET | Method::HEAD);
    if !keeps_method {
        *request.method_mut() = Method::GET;
        *request.body_mut() = Full::new(Bytes::new());
        request.headers_mut().remove(header::CONTENT_TYPE);
        request.headers_mut().remove(header::CONTENT_LENGTH);
    }
    let new_host = target.host().map(str::to_ascii_lowercase);
    let same_domain = match (original_host, new_host.as_deref()) {
        (Some(orig), Some(new)) => new == orig || new.ends_with(&format!(".{orig}")),
        _ => false,
    };
    if !same_domain {
        for name in SENSITIVE_HEADERS {
            request.headers_mut().remove(*name);
        }
    }
    let downgrade = previous.scheme_str() == Some("https") && target.scheme_str() == Some("http");
    if downgrade {
        request.headers_mut().remove(header::REFERER);
    } else if let Ok(value) = HeaderValue::from_str(&referer(&previous)) {
        request.headers_mut().insert(header::REFERER, value);
    }
    *request.uri_mut() = target;
    request
}

/// The previous URL as a `Referer` value (user info removed).
fn referer(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("{scheme}://{host_port}{path}")
}

/// Resolves a `Location` value against the URL that answered with it (RFC 3986 reference
/// resolution, without dot-segment removal). `None` if the result isn't an http(s) URL.
fn resolve_location(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.split('#').next().unwrap_or("");
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let resolved = if has_scheme(location) {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.is_empty() || location.starts_with('?') {
        let path = base.path();
        let query = if location.is_empty() {
            base.query().map(|q| format!("?{q}")).unwrap_or_default()
        } else {
            location.to_string()
        };
        format!("{scheme}://{authority}{path}{query}")
    } else {
        let path = base.path();
        let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
        format!("{scheme}://{authority}{dir}{location}")
    };
    let uri: Uri = resolved.parse().ok()?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        _ => return None,
    }
    uri.host()?;
    Some(uri)
}

fn has_scheme(reference: &str) -> bool {
    match reference.find(':') {
        Some(i) if i > 0 => {
            let scheme = &reference[..i];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        _ => false,
    }
}

/// Walks an error chain, looking through `io::Error` wrappers (whose `source()` skips the
/// wrapped error itself).
fn for_each_cause<'a>(
    err: &'a (dyn StdError + 'static),
    visit: &mut dyn FnMut(&'a (dyn StdError + 'static)) -> bool,
) {
    let mut current: Option<&'a (dyn StdError + 'static)> = Some(err);
    let mut depth = 0;
    while let Some(cause) = current {
        if visit(cause) || depth > 32 {
            return;
        }
        depth += 1;
        current = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => None,
            },
            None => cause.source(),
        };
    }
}

fn is_unknown_issuer(err: &hyper_util::client::legacy::Error) -> bool {
    let mut found = false;
    for_each_cause(err, &mut |cause| {
        found = matches!(
            cause.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        );
        found
    });
    found
}

/// The address-policy refusal anywhere in an error chain.
fn find_denied<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a AddressDenied> {
    let mut found = None;
    for_each_cause(err, &mut |cause| {
        found = cause.downcast_ref::<AddressDenied>();
        found.is_some()
    });
    found
}

/// Maps a transport error (or a response-body read error) to its attempt code:
/// `address_denied` (the address policy refused the connection; looked for first, as it sits
/// under a generic "dns error" when a name resolved only to denied addresses), `dns_error`,
/// `connection_refused`, `connection_reset`, `network_unreachable`, `timeout`, `tls_error`, or
/// `network_error` for anything else.
pub fn classify_transport_error(err: &(dyn StdError + 'static)) -> &'static str {
    if find_denied(err).is_some() {
        return "address_denied";
    }
    let mut code = None;
    for_each_cause(err, &mut |cause| {
        code = classify_one(cause);
        code.is_some()
    });
    code.unwrap_or("network_error")
}

fn classify_one(cause: &(dyn StdError + 'static)) -> Option<&'static str> {
    if cause.downcast_ref::<rustls::Error>().is_some() {
        return Some("tls_error");
    }
    if let Some(io) = cause.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind;
        match io.kind() {
            ErrorKind::ConnectionRefused => return Some("connection_refused"),
            ErrorKind::ConnectionReset => return Some("connection_reset"),
            ErrorKind::NetworkUnreachable => return Some("network_unreachable"),
            ErrorKind::TimedOut => return Some("timeout"),
            _ => {}
        }
    }
    if let Some(hyper_err) = cause.downcast_ref::<hyper::Error>() {
        if hyper_err.is_timeout() {
            return Some("timeout");
        }
    }
    let text = cause.to_string().to_ascii_lowercase();
    if text == "dns error"
        || text.contains("failed to lookup address")
        || text.contains("name or service not known")
        || text.contains("no such host")
    {
        Some("dns_error")
    } else if text.contains("connection refused") {
        Some("connection_refused")
    } else if text.contains("connection reset") {
        Some("connection_reset")
    } else if text.contains("network is unreachable") {
        Some("network_unreachable")
    } else if text.contains("timed out") || text.contains("deadline exceeded") {
        Some("timeout")
    } else if text.contains("invalid dnsname") || text.contains("certificate") {
        Some("tls_error")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn resolves_locations() {
        let base = uri("https://a.example/x/y?q=1");
        let cases = [
            ("http://b.example/z", "http://b.example/z"),
            ("//c.example/w", "https://c.example/w"),
            ("/root?k=v", "https://a.example/root?k=v"),
            ("sib", "https://a.example/x/sib"),
            ("?n=2", "https://a.example/x/y?n=2"),
            ("/frag#part", "https://a.example/frag"),
        ];
        for (location, expected) in cases {
            assert_eq!(
                resolve_location(&base, location).map(|u| u.to_string()),
                Some(expected.to_string()),
                "{location}"
            );
        }
        assert!(resolve_location(&base, "ftp://x/").is_none());
        assert!(resolve_location(&base, "http://").is_none());
    }

    #[test]
    fn redirect_rewrites_like_go() {
        let mut request = Request::new(Full::new(Bytes::from_static(b"{}")));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri("https://a.example/hook");
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let same = redirected_request(
            clone_request(&request),
            StatusCode::TEMPORARY_REDIRECT,
            uri("https://sub.a.example/next"),
            Some("a.example"),
        );
        assert_eq!(same.method(), Method::POST);
        assert!(same.headers().contains_key(header::AUTHORIZATION));
        assert_eq!(same.headers()[header::REFERER], "https://a.example/hook");
        let other = redirected_request(
            request,
            StatusCode::FOUND,
            uri("http://b.example/"),
            Some("a.example"),
        );
        assert_eq!(other.method(), Method::GET);
        assert!(!other.headers().contains_key(header::AUTHORIZATION));
        assert!(!other.headers().contains_key(header::CONTENT_TYPE));
        assert!(!other.headers().contains_key(header::REFERER));
    }

    #[test]
    fn classifies_io_errors() {
        let io = |kind| std::io::Error::new(kind, "x");
        assert_eq!(
            classify_transport_error(&io(std::io::ErrorKind::ConnectionRefused)),
            "connection_refused"
        );
        assert_eq!(
            classify_transport_error(&io(std::io::ErrorKind::TimedOut)),
            "timeout"
        );
        let tls = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify_transport_error(&tls), "tls_error");
        assert_eq!(
            classify_transport_error(&io(std::io::ErrorKind::Other)),
            "network_error"
        );
        let denied = AddressDenied {
            address: "169.254.169.254".parse().unwrap(),
        };
        let wrapped = std::io::Error::new(std::io::ErrorKind::PermissionDenied, denied.clone());
        assert_eq!(classify_transport_error(&wrapped), "address_denied");
        assert_eq!(find_denied(&wrapped), Some(&denied));
    }
}
