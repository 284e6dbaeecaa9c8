//! Request dispatch: looks the request up in the route table (`routes`), runs the row's auth
//! rule, then its handler, and turns every failure into upstream's error response. Unknown paths
//! answer 404 JSON, known paths with the wrong method 405, both before any auth check. At
//! `debug` it logs one line per request: method, the row's pattern (`{tenant_id}` and the like,
//! never the values), status and duration — never the query string or a header. Every request
//! is counted in the server's metrics by the same pattern and status, and a publish's time
//! to answer is recorded. Requests that change state are handed to the audit log
//! (`audit`) once their status is known. Before routing, the request head is held to
//! `HTTP_MAX_HEADER_BYTES` and `HTTP_MAX_HEADERS` (`header_limits`); on a route that needs
//! credentials, a request presenting valid ones is counted by the rate limit (`rate_limit`)
//! before anything else is checked, and the verdict goes on the response as `X-RateLimit-*`
//! headers.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, HOST};
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};

use super::auth::{authorize, presented, Access, Authorized, Caller, Presented};
use super::body::read_body;
use super::error::ApiError;
use super::query::Query;
use super::rate_limit::Decision;
use super::reply::Reply;
use super::routes::{self, Auth, Handler, Matched, Miss};
use super::{
    audit, destinations, header_limits, health, logs, metrics, prometheus, publish, retry, schemas,
    tenants, AppState,
};
use crate::telemetry::http::HttpRequests;
use crate::telemetry::RouteSlot;

fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// Serves one request; never fails.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> Reply {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let found = routes::find(&parts.method, parts.uri.path());
    let pattern = found.as_ref().map_or("(no route)", |m| m.route.pattern);
    let mut caller = None;
    let mut rate = None;
    let result = match (header_limits::check(&parts, &state.config.http), &found) {
        (Err(error), _) => Err(error),
        (Ok(()), Ok(matched)) => run(&state, matched, &parts, body, &mut caller, &mut rate).await,
        (Ok(()), Err(Miss::NotFound)) => Err(ApiError::not_found("not found")),
        (Ok(()), Err(Miss::MethodNotAllowed)) => Err(method_not_allowed()),
    };
    let mut reply = result.unwrap_or_else(ApiError::into_reply);
    if let Some(decision) = rate {
        decision.write_headers(reply.headers_mut());
    }
    if reply.status() == StatusCode::REQUEST_TIMEOUT {
        // The rest of a late body is not worth waiting for.
        reply
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Ok(matched) = &found {
        audit::record(&state, matched, &parts, caller.as_ref(), &reply);
    }
    let slot = match &found {
        Ok(matched) => RouteSlot::Row(routes::index_of(matched.route)),
        Err(_) => RouteSlot::Unmatched(HttpRequests::unmatched_method(parts.method.as_str())),
    };
    state.metrics.http_request(slot, reply.status().as_u16());
    if matches!(&found, Ok(matched) if matched.route.handler == Handler::Publish) {
        state.metrics.publish_took(started.elapsed());
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(
            method = %parts.method,
            route = %pattern,
            status = reply.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
    }
    reply
}

/// A path parameter the row's pattern declares.
fn param<'m>(matched: &'m Matched<'_>, name: &str) -> Result<&'m str, ApiError> {
    matched.param(name).ok_or_else(ApiError::internal)
}

async fn run(
    state: &Arc<AppState>,
    matched: &Matched<'_>,
    parts: &Parts,
    body: Incoming,
    caller_seen: &mut Option<Caller>,
    rate: &mut Option<Decision>,
) -> Result<Reply, ApiError> {
    let route = matched.route;
    let path_tenant = matched.param("tenant_id");
    let access = match route.auth {
        Auth::Public => None,
        Auth::AdminOnly => Some(Access::AdminOnly),
        Auth::AdminOrTenant => Some(Access::AdminOrTenant),
        Auth::Metrics if state.config.metrics_auth_disabled => None,
        Auth::Metrics => Some(Access::AdminOnly),
    };
    // The path tenant must exist, except for the upsert that may create it.
    let tenant_must_exist = path_tenant.is_some() && route.handler != Handler::UpsertTenant;
    // Every request with valid credentials counts, whatever it is answered; requests with
    // none or bad ones get 401 and are not counted.
    if let (Some(limiter), Some(_)) = (&state.rate_limiter, access) {
        let key = match presented(&state.keys, &parts.headers) {
            Presented::ApiKey | Presented::AuthDisabled => Some("admin".to_string()),
            Presented::Tenant(id) => Some(format!("tenant:{id}")),
            Presented::Nothing | Presented::Invalid => None,
        };
        if let Some(key) = key {
            let decision = limiter.check(&key, state.clock.now_ms());
            *rate = Some(decision);
            if !decision.allowed {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests",
                ));
            }
        }
    }
    let who: Option<Authorized> = match access {
        Some(access) => Some(authorize(
            &state.keys,
            &state.store,
            &parts.headers,
            access,
            path_tenant,
            tenant_must_exist,
        )?),
        None => None,
    };
    if let Some(who) = who.as_ref().filter(|_| audit::is_audited(route.handler)) {
        *caller_seen = Some(who.caller.clone());
    }
    let caller = || who.as_ref().ok_or_else(ApiError::internal);
    let tenant = || path_tenant.ok_or_else(ApiError::internal);
    let query = Query::parse(parts.uri.query());
    let limit = state.config.max_request_body_bytes;
    let deadline = state.config.http.body_read_timeout;
    match route.handler {
        Handler::Health => Ok(health::health(state)),
        Handler::Metrics => Ok(prometheus::scrape(state)),
        Handler::Topics => Ok(schemas::topics(state)),
        Handler::DestinationTypes => Ok(schemas::destination_types(state)),
        Handler::DestinationType => schemas::destination_type(state, param(matched, "type")?),
        Handler::Publish => {
            let bytes = read_body(body, limit, deadline).await?;
            publish::publish(state, &bytes).await
        }
        Handler::Retry => {
            let bytes = read_body(body, limit, deadline).await?;
            retry::retry(state, caller()?, &bytes).await
        }
        Handler::ListEvents => logs::list_events(state, caller()?, &query),
        Handler::GetEvent => logs::get_event(state, caller()?, param(matched, "event_id")?, &query),
        Handler::ListAttempts => logs::list_attempts(state, caller()?, &query, None),
        Handler::GetAttempt => {
            let attempt = param(matched, "attempt_id")?;
            logs::get_attempt(state, caller()?, attempt, &query, None)
        }
        Handler::EventMetrics => metrics::metrics(state, caller()?, &query, metrics::Kind::Events),
        Handler::AttemptMetrics => {
            metrics::metrics(state, caller()?, &query, metrics::Kind::Attempts)
        }
        Handler::ListTenants => tenants::list(state, caller()?, &query),
        Handler::GetTenant => tenants::get(state, caller()?),
        Handler::UpsertTenant => {
            let bytes = read_body(body, limit, deadline).await?;
            tenants::upsert(state, caller()?, tenant()?, &bytes).await
        }
        Handler::DeleteTenant => tenants::delete(state, tenant()?).await,
        Handler::TenantToken => tenants::token(state, tenant()?),
        Handler::TenantPortal => {
            let host = parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| parts.uri.authority().map(|a| a.as_str()))
                .unwrap_or("localhost");
            tenants::portal(state, tenant()?, &query, host)
        }
        Handler::ListDestinations => destinations::list(state, tenant()?, &query),
        Handler::CreateDestination => {
            let bytes = read_body(body, limit, deadline).await?;
            destinations::create(state, caller()?, tenant()?, &bytes).await
        }
        Handler::GetDestination => {
            destinations::get(state, tenant()?, param(matched, "destination_id")?)
        }
        Handler::UpdateDestination => {
            let destination = param(matched, "destination_id")?;
            let bytes = read_body(body, limit, deadline).await?;
            destinations::update(state, caller()?, tenant()?, destination, &bytes).await
        }
        Handler::DeleteDestination => {
            let destination = param(matched, "destination_id")?;
            destinations::delete(state, tenant()?, destination).await
        }
        Handler::EnableDestination | Handler::DisableDestination => {
            let destination = param(matched, "destination_id")?;
            let enabled = route.handler == Handler::EnableDestination;
            destinations::set_enabled(state, tenant()?, destination, enabled).await
        }
        Handler::ListDestinationAttempts => {
            let scope = (tenant()?, param(matched, "destination_id")?);
            logs::list_attempts(state, caller()?, &query, Some(scope))
        }
        Handler::GetDestinationAttempt => {
            let scope = (tenant()?, param(matched, "destination_id")?);
            let attempt = param(matched, "attempt_id")?;
            logs::get_attempt(state, caller()?, attempt, &query, Some(scope))
        }
    }
}
