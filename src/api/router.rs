//! Request routing: maps method and path to a handler, runs the route's auth rule first, and
//! turns every failure into upstream's error response. Unknown paths answer 404 JSON, known
//! paths with the wrong method 405. At `debug` it logs one line per request: method, route
//! pattern, status and duration — never the raw path's values, the query string or a header.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{Method, Request, StatusCode};

use super::auth::{authorize, Access, Authorized};
use super::body::read_limited;
use super::error::ApiError;
use super::query::{percent_decode, Query};
use super::reply::Reply;
use super::{destinations, health, logs, publish, retry, schemas, tenants, AppState};

/// A resolved path with its parameters.
enum Route {
    Health,
    Topics,
    DestinationTypes,
    DestinationType(String),
    Tenants,
    Tenant(String),
    TenantToken(String),
    TenantPortal(String),
    Destinations(String),
    Destination(String, String),
    DestinationEnable(String, String),
    DestinationDisable(String, String),
    DestinationAttempts(String, String),
    DestinationAttempt(String, String, String),
    Publish,
    Retry,
    Events,
    Event(String),
    Attempts,
    Attempt(String),
}

impl Route {
    /// The route's pattern, as logged (ids and tokens never appear).
    fn pattern(&self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::Topics => "/api/v1/topics",
            Route::DestinationTypes => "/api/v1/destination-types",
            Route::DestinationType(_) => "/api/v1/destination-types/:type",
            Route::Tenants => "/api/v1/tenants",
            Route::Tenant(_) => "/api/v1/tenants/:tenant_id",
            Route::TenantToken(_) => "/api/v1/tenants/:tenant_id/token",
            Route::TenantPortal(_) => "/api/v1/tenants/:tenant_id/portal",
            Route::Destinations(_) => "/api/v1/tenants/:tenant_id/destinations",
            Route::Destination(..) => "/api/v1/tenants/:tenant_id/destinations/:destination_id",
            Route::DestinationEnable(..) => {
                "/api/v1/tenants/:tenant_id/destinations/:destination_id/enable"
            }
            Route::DestinationDisable(..) => {
                "/api/v1/tenants/:tenant_id/destinations/:destination_id/disable"
            }
            Route::DestinationAttempts(..) => {
                "/api/v1/tenants/:tenant_id/destinations/:destination_id/attempts"
            }
            Route::DestinationAttempt(..) => {
                "/api/v1/tenants/:tenant_id/destinations/:destination_id/attempts/:attempt_id"
            }
            Route::Publish => "/api/v1/publish",
            Route::Retry => "/api/v1/retry",
            Route::Events => "/api/v1/events",
            Route::Event(_) => "/api/v1/events/:event_id",
            Route::Attempts => "/api/v1/attempts",
            Route::Attempt(_) => "/api/v1/attempts/:attempt_id",
        }
    }
}

fn resolve(path: &str) -> Option<Route> {
    let mut segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    if segments.len() > 1 && segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
    }
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let route = match s.as_slice() {
        ["healthz"] | ["api", "v1", "healthz"] => Route::Health,
        ["api", "v1", rest @ ..] => match rest {
            ["topics"] => Route::Topics,
            ["destination-types"] => Route::DestinationTypes,
            ["destination-types", kind] => Route::DestinationType(kind.to_string()),
            ["tenants"] => Route::Tenants,
            ["tenants", t] if !t.is_empty() => Route::Tenant(t.to_string()),
            ["tenants", t, "token"] if !t.is_empty() => Route::TenantToken(t.to_string()),
            ["tenants", t, "portal"] if !t.is_empty() => Route::TenantPortal(t.to_string()),
            ["tenants", t, "destinations"] if !t.is_empty() => Route::Destinations(t.to_string()),
            ["tenants", t, "destinations", d] if !t.is_empty() && !d.is_empty() => {
                Route::Destination(t.to_string(), d.to_string())
            }
            ["tenants", t, "destinations", d, "enable"] if !t.is_empty() && !d.is_empty() => {
                Route::DestinationEnable(t.to_string(), d.to_string())
            }
            ["tenants", t, "destinations", d, "disable"] if !t.is_empty() && !d.is_empty() => {
                Route::DestinationDisable(t.to_string(), d.to_string())
            }
            ["tenants", t, "destinations", d, "attempts"] if !t.is_empty() && !d.is_empty() => {
                Route::DestinationAttempts(t.to_string(), d.to_string())
            }
            ["tenants", t, "destinations", d, "attempts", a]
                if !t.is_empty() && !d.is_empty() && !a.is_empty() =>
            {
                Route::DestinationAttempt(t.to_string(), d.to_string(), a.to_string())
            }
            ["publish"] => Route::Publish,
            ["retry"] => Route::Retry,
            ["events"] => Route::Events,
            ["events", e] if !e.is_empty() => Route::Event(e.to_string()),
            ["attempts"] => Route::Attempts,
            ["attempts", a] if !a.is_empty() => Route::Attempt(a.to_string()),
            _ => return None,
        },
        _ => return None,
    };
    Some(route)
}

fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// Serves one request; never fails.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> Reply {
    let route = resolve(request.uri().path());
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return answer(&state, route, request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let pattern = route.as_ref().map_or("(no route)", Route::pattern);
    let reply = answer(&state, route, request).await;
    tracing::debug!(
        method = %method,
        route = %pattern,
        status = reply.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    reply
}

async fn answer(state: &Arc<AppState>, route: Option<Route>, request: Request<Incoming>) -> Reply {
    match dispatch(state, route, request).await {
        Ok(reply) => reply,
        Err(error) => error.into_reply(),
    }
}

async fn dispatch(
    state: &Arc<AppState>,
    route: Option<Route>,
    request: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let route = route.ok_or_else(|| ApiError::not_found("not found"))?;
    let query = Query::parse(request.uri().query());
    let method = request.method().clone();
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let auth =
        |access: Access, tenant: Option<&str>, must_exist: bool| -> Result<Authorized, ApiError> {
            authorize(
                &state.keys,
                &state.store,
                headers,
                access,
                tenant,
                must_exist,
            )
        };
    let limit = state.config.max_request_body_bytes;
    match route {
        Route::Health => match method {
            Method::GET => Ok(health::health(state)),
            _ => Err(method_not_allowed()),
        },
        Route::Topics => match method {
            Method::GET => {
                auth(Access::AdminOrTenant, None, false)?;
                Ok(schemas::topics(state))
            }
            _ => Err(method_not_allowed()),
        },
        Route::DestinationTypes => match method {
            Method::GET => {
                auth(Access::AdminOrTenant, None, false)?;
                Ok(schemas::destination_types(state))
            }
            _ => Err(method_not_allowed()),
        },
        Route::DestinationType(kind) => match method {
            Method::GET => {
                auth(Access::AdminOrTenant, None, false)?;
                schemas::destination_type(state, &kind)
            }
            _ => Err(method_not_allowed()),
        },
        Route::Tenants => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, None, false)?;
                tenants::list(state, &who, &query)
            }
            _ => Err(method_not_allowed()),
        },
        Route::Tenant(t) => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, Some(&t), true)?;
                tenants::get(state, &who)
            }
            Method::PUT => {
                let who = auth(Access::AdminOrTenant, Some(&t), false)?;
                let bytes = read_limited(body, limit).await?;
                tenants::upsert(state, &who, &t, &bytes).await
            }
            Method::DELETE => {
                auth(Access::AdminOrTenant, Some(&t), true)?;
                tenants::delete(state, &t).await
            }
            _ => Err(method_not_allowed()),
        },
        Route::TenantToken(t) => match method {
            Method::GET => {
                auth(Access::AdminOnly, Some(&t), true)?;
                tenants::token(state, &t)
            }
            _ => Err(method_not_allowed()),
        },
        Route::TenantPortal(t) => match method {
            Method::GET => {
                auth(Access::AdminOnly, Some(&t), true)?;
                let host = headers
                    .get(HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                    .unwrap_or("localhost");
                tenants::portal(state, &t, &query, host)
            }
            _ => Err(method_not_allowed()),
        },
        Route::Destinations(t) => match method {
            Method::GET => {
                auth(Access::AdminOrTenant, Some(&t), true)?;
                destinations::list(state, &t, &query)
            }
            Method::POST => {
                let who = auth(Access::AdminOrTenant, Some(&t), true)?;
                let bytes = read_limited(body, limit).await?;
                destinations::create(state, &who, &t, &bytes).await
            }
            _ => Err(method_not_allowed()),
        },
        Route::Destination(t, d) => match method {
            Method::GET => {
                auth(Access::AdminOrTenant, Some(&t), true)?;
                destinations::get(state, &t, &d)
            }
            Method::PATCH => {
                let who = auth(Access::AdminOrTenant, Some(&t), true)?;
                let bytes = read_limited(body, limit).await?;
                destinations::update(state, &who, &t, &d, &bytes).await
            }
            Method::DELETE => {
                auth(Access::AdminOrTenant, Some(&t), true)?;
                destinations::delete(state, &t, &d).await
            }
            _ => Err(method_not_allowed()),
        },
        Route::DestinationEnable(t, d) | Route::DestinationDisable(t, d)
            if method != Method::PUT =>
        {
            let _ = (t, d);
            Err(method_not_allowed())
        }
        Route::DestinationEnable(t, d) => {
            auth(Access::AdminOrTenant, Some(&t), true)?;
            destinations::set_enabled(state, &t, &d, true).await
        }
        Route::DestinationAttempts(t, d) => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, Some(&t), true)?;
                logs::list_attempts(state, &who, &query, Some((&t, &d)))
            }
            _ => Err(method_not_allowed()),
        },
        Route::DestinationAttempt(t, d, a) => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, Some(&t), true)?;
                logs::get_attempt(state, &who, &a, &query, Some((&t, &d)))
            }
            _ => Err(method_not_allowed()),
        },
        Route::Publish => match method {
            Method::POST => {
                auth(Access::AdminOnly, None, false)?;
                let bytes = read_limited(body, limit).await?;
                publish::publish(state, &bytes).await
            }
            _ => Err(method_not_allowed()),
        },
        Route::Retry => match method {
            Method::POST => {
                let who = auth(Access::AdminOrTenant, None, false)?;
                let bytes = read_limited(body, limit).await?;
                retry::retry(state, &who, &bytes).await
            }
            _ => Err(method_not_allowed()),
        },
        Route::Events => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, None, false)?;
                logs::list_events(state, &who, &query)
            }
            _ => Err(method_not_allowed()),
        },
        Route::Event(e) => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, None, false)?;
                logs::get_event(state, &who, &e, &query)
            }
            _ => Err(method_not_allowed()),
        },
        Route::Attempts => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, None, false)?;
                logs::list_attempts(state, &who, &query, None)
            }
            _ => Err(method_not_allowed()),
        },
        Route::Attempt(a) => match method {
            Method::GET => {
                let who = auth(Access::AdminOrTenant, None, false)?;
                logs::get_attempt(state, &who, &a, &query, None)
            }
            _ => Err(method_not_allowed()),
        },
        Route::DestinationDisable(t, d) => {
            auth(Access::AdminOrTenant, Some(&t), true)?;
            destinations::set_enabled(state, &t, &d, false).await
        }
    }
}
