//! The route table: every route the API serves, with its method, path pattern, auth rule and
//! handler, in one list; and the lookup of a request's method and path in it. Owns which routes
//! exist and who may call them; `router` owns running the auth rule and the handler.
//!
//! Path patterns are written as in the OpenAPI document (`{tenant_id}` for a parameter), with
//! the full `/api/v1` prefix; a pattern never contains an id or a token, so it is also the route
//! label of a request log line.

use std::borrow::Cow;

use hyper::Method;

use super::query::percent_decode;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anyone: no credentials are checked.
    Public,
    /// The admin API key only; a tenant JWT gets 403.
    AdminOnly,
    /// The admin API key, or a tenant JWT confined to its own tenant.
    AdminOrTenant,
    /// As `AdminOnly`, unless `METRICS_AUTH_DISABLED=true` opens the route to anyone.
    Metrics,
}

/// What serves a route; `router` maps each to its function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    Health,
    Metrics,
    Topics,
    DestinationTypes,
    DestinationType,
    Publish,
    Retry,
    ListEvents,
    GetEvent,
    ListAttempts,
    GetAttempt,
    EventMetrics,
    AttemptMetrics,
    ListTenants,
    GetTenant,
    UpsertTenant,
    DeleteTenant,
    TenantToken,
    TenantPortal,
    ListDestinations,
    CreateDestination,
    GetDestination,
    UpdateDestination,
    DeleteDestination,
    EnableDestination,
    DisableDestination,
    ListDestinationAttempts,
    GetDestinationAttempt,
}

/// One row of the table.
#[derive(Debug)]
pub struct Route {
    pub method: Method,
    /// `/`-separated segments; `{name}` matches any non-empty segment and captures it.
    pub pattern: &'static str,
    pub auth: Auth,
    pub handler: Handler,
    /// Number of segments in `pattern`, to skip rows cheaply.
    segments: usize,
}

const GET: Method = Method::GET;
const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const PATCH: Method = Method::PATCH;
const DELETE: Method = Method::DELETE;

const fn route(method: Method, pattern: &'static str, auth: Auth, handler: Handler) -> Route {
    let bytes = pattern.as_bytes();
    let mut segments = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' {
            segments += 1;
        }
        i += 1;
    }
    Route {
        method,
        pattern,
        auth,
        handler,
        segments,
    }
}

use Auth::{AdminOnly, AdminOrTenant, Public};
use Handler as H;

/// Every route served. No request matches two rows (a unit test checks it); a path that matches
/// a row with another method answers 405, a path that matches no row 404.
#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    route(GET,    "/healthz",                                                            Public,        H::Health),
    route(GET,    "/api/v1/healthz",                                                     Public,        H::Health),
    route(GET,    "/metrics",                                                            Auth::Metrics, H::Metrics),
    route(GET,    "/api/v1/topics",                                                      AdminOrTenant, H::Topics),
    route(GET,    "/api/v1/destination-types",                                           AdminOrTenant, H::DestinationTypes),
    route(GET,    "/api/v1/destination-types/{type}",                                    AdminOrTenant, H::DestinationType),
    route(POST,   "/api/v1/publish",                                                     AdminOnly,     H::Publish),
    route(POST,   "/api/v1/retry",                                                       AdminOrTenant, H::Retry),
    route(GET,    "/api/v1/events",                                                      AdminOrTenant, H::ListEvents),
    route(GET,    "/api/v1/events/{event_id}",                                           AdminOrTenant, H::GetEvent),
    route(GET,    "/api/v1/attempts",                                                    AdminOrTenant, H::ListAttempts),
    route(GET,    "/api/v1/attempts/{attempt_id}",                                       AdminOrTenant, H::GetAttempt),
    route(GET,    "/api/v1/metrics/events",                                              AdminOrTenant, H::EventMetrics),
    route(GET,    "/api/v1/metrics/attempts",                                            AdminOrTenant, H::AttemptMetrics),
    route(GET,    "/api/v1/tenants",                                                     AdminOrTenant, H::ListTenants),
    route(GET,    "/api/v1/tenants/{tenant_id}",                                         AdminOrTenant, H::GetTenant),
    route(PUT,    "/api/v1/tenants/{tenant_id}",                                         AdminOrTenant, H::UpsertTenant),
    route(DELETE, "/api/v1/tenants/{tenant_id}",                                         AdminOrTenant, H::DeleteTenant),
    route(GET,    "/api/v1/tenants/{tenant_id}/token",                                   AdminOnly,     H::TenantToken),
    route(GET,    "/api/v1/tenants/{tenant_id}/portal",                                  AdminOnly,     H::TenantPortal),
    route(GET,    "/api/v1/tenants/{tenant_id}/destinations",                            AdminOrTenant, H::ListDestinations),
    route(POST,   "/api/v1/tenants/{tenant_id}/destinations",                            AdminOrTenant, H::CreateDestination),
    route(GET,    "/api/v1/tenants/{tenant_id}/destinations/{destination_id}",           AdminOrTenant, H::GetDestination),
    route(PATCH,  "/api/v1/tenants/{tenant_id}/destinations/{destination_id}",           AdminOrTenant, H::UpdateDestination),
    route(DELETE, "/api/v1/tenants/{tenant_id}/destinations/{destination_id}",           AdminOrTenant, H::DeleteDestination),
    route(PUT,    "/api/v1/tenants/{tenant_id}/destinations/{destination_id}/enable",    AdminOrTenant, H::EnableDestination),
    route(PUT,    "/api/v1/tenants/{tenant_id}/destinations/{destination_id}/disable",   AdminOrTenant, H::DisableDestination),
    route(GET,    "/api/v1/tenants/{tenant_id}/destinations/{destination_id}/attempts",  AdminOrTenant, H::ListDestinationAttempts),
    route(GET,    "/api/v1/tenants/{tenant_id}/destinations/{destination_id}/attempts/{attempt_id}",
                                                                                         AdminOrTenant, H::GetDestinationAttempt),
];

/// The position of `route` in [`ROUTES`] (the metrics' label of a matched request).
pub fn index_of(route: &Route) -> usize {
    ROUTES
        .iter()
        .position(|row| std::ptr::eq(row, route))
        .unwrap_or(ROUTES.len())
}

/// Most segments and parameters of any pattern (checked by a unit test).
const MAX_SEGMENTS: usize = 8;
const MAX_PARAMS: usize = 3;

/// Why a request matched no row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No row has this path.
    NotFound,
    /// Rows have this path, none this method.
    MethodNotAllowed,
}

/// The row a request matched, with its path parameters percent-decoded (borrowed from the path
/// unless they contained an escape).
#[derive(Debug)]
pub struct Matched<'a> {
    pub route: &'static Route,
    params: [(&'static str, Cow<'a, str>); MAX_PARAMS],
}

impl Matched<'_> {
    /// The value of the path parameter `name`, if the pattern has one.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| !key.is_empty() && *key == name)
            .map(|(_, value)| value.as_ref())
    }
}

fn param_name(pattern_segment: &str) -> Option<&str> {
    pattern_segment.strip_prefix('{')?.strip_suffix('}')
}

/// Whether the raw path segment, percent-decoded, equals `literal`.
fn decoded_eq(raw: &str, literal: &str) -> bool {
    if raw.contains('%') {
        percent_decode(raw, false) == literal
    } else {
        raw == literal
    }
}

/// Looks a request up. Segments are split on `/` before percent-decoding (so `%2F` stays inside
/// a segment), one trailing `/` is ignored, and a parameter never matches an empty segment.
pub fn find<'a>(method: &Method, path: &'a str) -> Result<Matched<'a>, Miss> {
    let mut raw = [""; MAX_SEGMENTS + 1];
    let mut len = 0;
    for segment in path.split('/').skip(1) {
        if len == raw.len() {
            return Err(Miss::NotFound);
        }
        raw[len] = segment;
        len += 1;
    }
    if len > 1 && raw[len - 1].is_empty() {
        len -= 1;
    }
    let segments = &raw[..len];
    let mut path_known = false;
    for route in ROUTES {
        if route.segments != segments.len() || !path_matches(route.pattern, segments) {
            continue;
        }
        if route.method != method {
            path_known = true;
            continue;
        }
        let mut params: [(&'static str, Cow<'a, str>); MAX_PARAMS] = Default::default();
        let mut count = 0;
        for (pattern, &value) in route.pattern.split('/').skip(1).zip(segments) {
            if let Some(name) = param_name(pattern) {
                if count == MAX_PARAMS {
                    break;
                }
                let value = if value.contains('%') {
                    Cow::Owned(percent_decode(value, false))
                } else {
                    Cow::Borrowed(value)
                };
                params[count] = (name, value);
                count += 1;
            }
        }
        return Ok(Matched { route, params });
    }
    Err(if path_known {
        Miss::MethodNotAllowed
    } else {
        Miss::NotFound
    })
}

fn path_matches(pattern: &str, segments: &[&str]) -> bool {
    pattern
        .split('/')
        .skip(1)
        .zip(segments)
        .all(|(pattern, segment)| match param_name(pattern) {
            Some(_) => !segment.is_empty(),
            None => decoded_eq(segment, pattern),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_path(pattern: &str) -> String {
        pattern
            .split('/')
            .map(|s| if param_name(s).is_some() { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn patterns_fit_the_lookup_limits() {
        for route in ROUTES {
            assert!(route.pattern.starts_with('/'), "{}", route.pattern);
            assert!(route.segments <= MAX_SEGMENTS, "{}", route.pattern);
            let params = route
                .pattern
                .split('/')
                .filter(|s| param_name(s).is_some())
                .count();
            assert!(params <= MAX_PARAMS, "{}", route.pattern);
            assert!(
                !route.pattern[1..].split('/').any(str::is_empty),
                "{}",
                route.pattern
            );
        }
    }

    #[test]
    fn no_request_matches_two_rows() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                if a.method != b.method || a.segments != b.segments {
                    continue;
                }
                let overlap = a
                    .pattern
                    .split('/')
                    .zip(b.pattern.split('/'))
                    .all(|(x, y)| param_name(x).is_some() || param_name(y).is_some() || x == y);
                assert!(
                    !overlap,
                    "{} {} overlaps {}",
                    a.method, a.pattern, b.pattern
                );
            }
        }
    }

    #[test]
    fn every_row_is_found_by_its_own_path() {
        for route in ROUTES {
            let path = sample_path(route.pattern);
            let found = find(&route.method, &path).expect(&path);
            assert!(std::ptr::eq(found.route, route), "{path}");
            for name in route.pattern.split('/').filter_map(param_name) {
                assert_eq!(found.param(name), Some("x"), "{path} {name}");
            }
            let with_slash = format!("{path}/");
            let found = find(&route.method, &with_slash).expect(&with_slash);
            assert!(std::ptr::eq(found.route, route), "{with_slash}");
        }
    }

    #[test]
    fn misses_are_404_or_405() {
        for path in [
            "",
            "*",
            "/",
            "/api",
            "/api/v1",
            "/api/v1/nope",
            "/api/v2/topics",
            "/api/v1/tenants//",
            "/api/v1/tenants/t//",
            "/api/v1/tenants//destinations",
            "/api/v1/tenants/t/destinations/d/explode",
            "/api/v1/tenants/t/destinations/d/attempts/a/b",
            "/api/v1/tenants/t/destinations/d/attempts/a/b/c/d/e",
            "/api/v1/topics//",
        ] {
            assert_eq!(
                find(&Method::GET, path).map(|m| m.route.pattern),
                Err(Miss::NotFound),
                "{path}"
            );
        }
        for (method, path) in [
            (Method::DELETE, "/api/v1/topics"),
            (Method::POST, "/api/v1/tenants/t"),
            (Method::GET, "/api/v1/tenants/t/destinations/d/enable"),
            (Method::GET, "/api/v1/publish"),
            (Method::HEAD, "/healthz"),
        ] {
            assert_eq!(
                find(&method, path).map(|m| m.route.pattern),
                Err(Miss::MethodNotAllowed),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn segments_are_percent_decoded_after_splitting() {
        let found = find(&Method::GET, "/api/v1/%74opics").expect("encoded literal");
        assert_eq!(found.route.handler, Handler::Topics);
        let found = find(
            &Method::GET,
            "/api/v1/tenants/a%2Fb/destinations/d%20e/attempts/plain",
        )
        .expect("encoded params");
        assert_eq!(found.route.handler, Handler::GetDestinationAttempt);
        assert_eq!(found.param("tenant_id"), Some("a/b"));
        assert_eq!(found.param("destination_id"), Some("d e"));
        assert_eq!(found.param("attempt_id"), Some("plain"));
        assert_eq!(found.param("event_id"), None);
        assert!(matches!(found.params[2].1, Cow::Borrowed(_)));
        // `+` is not a space in a path.
        let found = find(&Method::GET, "/api/v1/events/a+b").expect("plus");
        assert_eq!(found.param("event_id"), Some("a+b"));
    }

    /// The OpenAPI document, upstream's contract.
    const SPEC: &str = include_str!("../../data/openapi.yaml");
    /// Where the document's paths live on a self-hosted server.
    const API_BASE: &str = "/api/v1";
    /// Operations of the document not served, and why. The check fails when the document gains
    /// an operation that is neither served nor listed here.
    const NOT_SERVED: &[(&str, &str)] = &[
        // Managed cloud only: upstream's server has no such route.
        ("GET", "/config"),
        ("PATCH", "/config"),
    ];
    /// Served routes the document does not list (full paths).
    const NOT_IN_SPEC: &[(&str, &str)] = &[
        // Upstream serves health at the root as well as under the API base.
        ("GET", "/healthz"),
        // Prometheus metrics of the process; upstream has none.
        ("GET", "/metrics"),
    ];

    /// One operation of the document: upper-case method, path, auth rule.
    #[derive(Debug)]
    struct Operation {
        method: String,
        path: String,
        auth: Auth,
    }

    fn indent(line: &str) -> usize {
        line.len() - line.trim_start_matches(' ').len()
    }

    /// The auth rule a set of security schemes means (any one of them suffices).
    fn auth_of(mut schemes: Vec<String>, context: &str) -> Auth {
        schemes.sort();
        match schemes.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            [] => Auth::Public,
            ["AdminApiKey"] => Auth::AdminOnly,
            ["AdminApiKey", "TenantJwt"] => Auth::AdminOrTenant,
            _ => panic!("{context}: security {schemes:?} maps to no auth rule"),
        }
    }

    /// The scheme names of a `security:` list's items (`- Name: []`) following `lines[start]`,
    /// at an indent deeper than `parent`.
    fn schemes_after(lines: &[&str], start: usize, parent: usize) -> Vec<String> {
        lines[start + 1..]
            .iter()
            .filter(|line| !line.trim().is_empty())
            .take_while(|line| indent(line) > parent)
            .map(|line| {
                let item = line
                    .trim()
                    .strip_prefix("- ")
                    .expect("a security list item");
                let (name, scopes) = item.split_once(':').expect("`Name: []`");
                assert_eq!(scopes.trim(), "[]", "{line}");
                name.trim().to_string()
            })
            .collect()
    }

    /// A line-based reading of the parts of the document the table mirrors: the top-level
    /// `servers` URLs and default `security`, and every operation under `paths` with its own
    /// `security` when it has one. Block scalars (`|`, `>`) are skipped whole.
    fn read_spec(text: &str) -> (Vec<String>, Vec<Operation>) {
        const METHODS: [&str; 8] = [
            "get", "put", "post", "patch", "delete", "head", "options", "trace",
        ];
        let lines: Vec<&str> = text.lines().collect();
        let mut servers = Vec::new();
        let mut default_auth = None;
        // (method, path, own security) per operation.
        let mut operations: Vec<(String, String, Option<Auth>)> = Vec::new();
        let mut section = "";
        let mut path = String::new();
        let mut block: Option<usize> = None;
        for (n, line) in lines.iter().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let depth = indent(line);
            if let Some(parent) = block {
                if depth > parent {
                    continue;
                }
                block = None;
            }
            if trimmed.ends_with(": |")
                || trimmed.ends_with(": >")
                || trimmed.ends_with(": |-")
                || trimmed.ends_with(": >-")
            {
                block = Some(depth);
            }
            let context = format!("line {}", n + 1);
            match depth {
                0 => {
                    section = trimmed.split(':').next().unwrap_or("");
                    if section == "security" {
                        default_auth = Some(auth_of(schemes_after(&lines, n, 0), &context));
                    }
                }
                2 if section == "servers" => {
                    if let Some(url) = trimmed.strip_prefix("- url:") {
                        servers.push(url.trim().to_string());
                    }
                }
                2 if section == "paths" => {
                    let key = trimmed.strip_suffix(':').expect("a path key");
                    assert!(key.starts_with('/'), "{context}: path {key}");
                    path = key.to_string();
                }
                4 if section == "paths" => {
                    let key = trimmed.split(':').next().unwrap_or("");
                    if METHODS.contains(&key) {
                        assert_eq!(trimmed, format!("{key}:"), "{context}");
                        operations.push((key.to_uppercase(), path.clone(), None));
                    }
                }
                6 if section == "paths" && trimmed.starts_with("security:") => {
                    let operation = operations.last_mut().expect("security under an operation");
                    let schemes = match trimmed {
                        "security: []" => Vec::new(),
                        "security:" => schemes_after(&lines, n, 6),
                        _ => panic!("{context}: unread security form {trimmed}"),
                    };
                    operation.2 = Some(auth_of(schemes, &context));
                }
                _ => {}
            }
        }
        let default_auth = default_auth.expect("a top-level security default");
        let operations = operations
            .into_iter()
            .map(|(method, path, auth)| Operation {
                method,
                path,
                auth: auth.unwrap_or(default_auth),
            })
            .collect();
        (servers, operations)
    }

    fn rows(method: &str, pattern: &str) -> usize {
        ROUTES
            .iter()
            .filter(|r| r.method.as_str() == method && r.pattern == pattern)
            .count()
    }

    #[test]
    fn the_table_serves_the_openapi_document() {
        let (servers, operations) = read_spec(SPEC);
        assert!(
            servers.iter().any(|url| url.ends_with(API_BASE)),
            "no server under {API_BASE}: {servers:?}"
        );
        assert!(operations.len() > 20, "{operations:?}");
        let mut problems = Vec::new();
        for op in &operations {
            let full = format!("{API_BASE}{}", op.path);
            let listed = NOT_SERVED.contains(&(op.method.as_str(), op.path.as_str()));
            match (listed, rows(&op.method, &full)) {
                (true, 0) => {}
                (true, _) => {
                    problems.push(format!("{} {full} served, yet listed as not", op.method))
                }
                (false, 1) => {
                    let route = ROUTES
                        .iter()
                        .find(|r| r.method.as_str() == op.method && r.pattern == full)
                        .expect("counted above");
                    if route.auth != op.auth {
                        problems.push(format!(
                            "{} {full}: table {:?}, document {:?}",
                            op.method, route.auth, op.auth
                        ));
                    }
                }
                (false, n) => problems.push(format!("{} {full}: {n} rows", op.method)),
            }
        }
        for route in ROUTES {
            let method = route.method.as_str();
            let in_spec = route.pattern.strip_prefix(API_BASE).is_some_and(|path| {
                operations
                    .iter()
                    .any(|op| op.method == method && op.path == path)
            });
            let listed = NOT_IN_SPEC.contains(&(method, route.pattern));
            if in_spec == listed {
                problems.push(format!(
                    "{method} {}: in the document {in_spec}, listed as not {listed}",
                    route.pattern
                ));
            }
        }
        for (method, path) in NOT_SERVED {
            if !operations
                .iter()
                .any(|op| op.method == *method && op.path == *path)
            {
                problems.push(format!(
                    "{method} {path} listed as not served but not in the document"
                ));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
