//! What the audit log records: every request to a route that changes state (tenant upsert and
//! delete, destination create, update — including secret rotation —, delete, enable, disable,
//! and manual retry) that succeeded (2xx) or was refused (401, 403). Publishing is not an admin
//! change and is far too frequent to record; reads change nothing. Other failures (404, 422,
//! ...) changed nothing and refused no one, so they are not recorded either.
//!
//! The entry names the route's pattern, the tenant and destination ids of the path (or those
//! the handler attached to its reply as a [`Subject`], which also says whether an update rotated
//! the signing secret), and the caller as `admin`,
//! `tenant:<id>` or `auth-disabled`; a refused caller as what its credentials say
//! ([`presented`]) — never the credential.

use hyper::http::request::Parts;

use super::auth::{presented, Caller, Presented};
use super::reply::Reply;
use super::routes::{Handler, Matched};
use super::AppState;
use crate::audit::{Entry, Outcome, Subject};
use crate::time::format_millis;

/// Whether requests to a route with this handler are recorded.
pub fn is_audited(handler: Handler) -> bool {
    matches!(
        handler,
        Handler::UpsertTenant
            | Handler::DeleteTenant
            | Handler::CreateDestination
            | Handler::UpdateDestination
            | Handler::DeleteDestination
            | Handler::EnableDestination
            | Handler::DisableDestination
            | Handler::Retry
    )
}

fn outcome(status: u16) -> Option<Outcome> {
    match status {
        200..=299 => Some(Outcome::Ok),
        401 | 403 => Some(Outcome::Refused),
        _ => None,
    }
}

fn actor(state: &AppState, parts: &Parts, caller: Option<&Caller>) -> String {
    if state.keys.api_key.is_none() {
        return "auth-disabled".into();
    }
    match caller {
        Some(Caller::Admin) => "admin".into(),
        Some(Caller::Tenant(id)) => format!("tenant:{id}"),
        None => match presented(&state.keys, &parts.headers) {
            Presented::AuthDisabled => "auth-disabled".into(),
            Presented::ApiKey => "admin".into(),
            Presented::Tenant(id) => format!("tenant:{id}"),
            Presented::Nothing => "anonymous".into(),
            Presented::Invalid => "invalid-credentials".into(),
        },
    }
}

/// Queues the audit entry of a finished request when its route and status call for one.
/// `caller` is the authenticated caller, `None` when authentication refused the request.
pub fn record(
    state: &AppState,
    matched: &Matched<'_>,
    parts: &Parts,
    caller: Option<&Caller>,
    reply: &Reply,
) {
    if !is_audited(matched.route.handler) {
        return;
    }
    let status = reply.status().as_u16();
    let Some(outcome) = outcome(status) else {
        return;
    };
    let subject = reply.extensions().get::<Subject>();
    let from_path = |name: &str| matched.param(name).map(str::to_string);
    let from_subject =
        |pick: fn(&Subject) -> &Option<String>| subject.and_then(|s| pick(s).clone());
    state.audit.record(Entry {
        time: format_millis(state.clock.now_ms()),
        actor: actor(state, parts, caller),
        method: parts.method.as_str().to_string(),
        route: matched.route.pattern.to_string(),
        tenant_id: from_path("tenant_id").or_else(|| from_subject(|s| &s.tenant_id)),
        destination_id: from_path("destination_id").or_else(|| from_subject(|s| &s.destination_id)),
        event_id: from_subject(|s| &s.event_id),
        secret_rotated: subject.is_some_and(|s| s.secret_rotated),
        status,
        outcome,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::routes::ROUTES;
    use hyper::Method;

    #[test]
    fn every_changing_route_but_publish_is_audited_and_no_read_is() {
        for route in ROUTES {
            let changes = route.method != Method::GET && route.handler != Handler::Publish;
            assert_eq!(
                is_audited(route.handler),
                changes,
                "{} {}",
                route.method,
                route.pattern
            );
        }
    }

    #[test]
    fn only_successes_and_auth_refusals_are_recorded() {
        assert_eq!(outcome(200), Some(Outcome::Ok));
        assert_eq!(outcome(201), Some(Outcome::Ok));
        assert_eq!(outcome(202), Some(Outcome::Ok));
        assert_eq!(outcome(401), Some(Outcome::Refused));
        assert_eq!(outcome(403), Some(Outcome::Refused));
        for status in [400, 404, 409, 413, 422, 500, 503] {
            assert_eq!(outcome(status), None, "{status}");
        }
    }
}
