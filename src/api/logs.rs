//! The event and attempt logs: `GET /events`, `/events/:id`, `/attempts`, `/attempts/:id` and
//! the destination-scoped attempt routes, with upstream's filters, `include=` and keyset
//! pagination.

use std::collections::BTreeMap;

use hyper::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::auth::{Authorized, Caller};
use super::display;
use super::error::ApiError;
use super::pagination::{self, PageRequest};
use super::query::Query;
use super::reply::{self, Reply};
use super::AppState;
use crate::model::event::{Attempt, AttemptStatus, Event};
use crate::model::identifiers::{DestinationId, TenantId};
use crate::store::{AttemptFilter, EventFilter, Position, TimeRange};
use crate::time::{format_nanos, parse_rfc3339_or_date};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Event JSON; `data` stays the raw text the publisher sent (compacted). Views are serialized
/// straight to the response body, never through `serde_json::Value`: a `Value` would sort the
/// payload's keys and round its numbers.
#[derive(Serialize)]
struct EventView<'a> {
    id: &'a str,
    tenant_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched_destination_ids: Option<&'a [DestinationId]>,
    topic: &'a str,
    time: String,
    eligible_for_retry: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Box<RawValue>>,
}

fn raw(text: &str) -> Option<Box<RawValue>> {
    RawValue::from_string(text.to_string()).ok()
}

/// The event as `/events` shows it (ids always present, data included).
fn event_view(event: &Event) -> EventView<'_> {
    EventView {
        id: &event.id,
        tenant_id: &event.tenant_id,
        matched_destination_ids: Some(&event.matched_destination_ids),
        topic: &event.topic,
        time: format_nanos(event.time_nanos),
        eligible_for_retry: event.eligible_for_retry,
        metadata: &event.metadata,
        data: raw(&event.data),
    }
}

/// The event embedded in an attempt: empty ids omitted, data only when asked for.
fn embedded_event(event: &Event, with_data: bool) -> EventView<'_> {
    EventView {
        matched_destination_ids: (!event.matched_destination_ids.is_empty())
            .then_some(event.matched_destination_ids.as_slice()),
        data: if with_data { raw(&event.data) } else { None },
        ..event_view(event)
    }
}

#[derive(Serialize)]
struct AttemptView<'a> {
    id: &'a str,
    tenant_id: &'a str,
    status: &'static str,
    time: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_data: Option<Box<RawValue>>,
    attempt_number: u32,
    manual: bool,
    destination_type: &'a str,
    event_id: &'a str,
    destination_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<EventView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Value>,
}

/// A page of a listing, serialized as is.
#[derive(Serialize)]
struct Page<T: Serialize> {
    models: Vec<T>,
    pagination: Value,
}

#[derive(Default)]
struct Includes {
    event: bool,
    event_data: bool,
    response_data: bool,
    destination: bool,
}

impl Includes {
    fn parse(query: &Query) -> Includes {
        let mut includes = Includes::default();
        for value in query.array("include") {
            for item in value.split(',') {
                match item.trim() {
                    "event" => includes.event = true,
                    "event.data" => {
                        includes.event = true;
                        includes.event_data = true;
                    }
                    "response_data" => includes.response_data = true,
                    "destination" => includes.destination = true,
                    _ => {}
                }
            }
        }
        includes
    }
}

/// The event an attempt embeds when `include=event` asks for it.
fn included_event(
    state: &AppState,
    attempt: &Attempt,
    includes: &Includes,
) -> Result<Option<Event>, ApiError> {
    if includes.event {
        Ok(state.store.get_event(&attempt.event_id)?)
    } else {
        Ok(None)
    }
}

fn attempt_view<'a>(
    state: &AppState,
    attempt: &'a Attempt,
    event: Option<&'a Event>,
    includes: &Includes,
) -> Result<AttemptView<'a>, ApiError> {
    let destination = if includes.destination {
        state
            .store
            .get_destination(&attempt.tenant_id, &attempt.destination_id)?
            .map(|d| display::destination(&state.registry, &d, state.clock.now_ms()))
    } else {
        None
    };
    Ok(AttemptView {
        id: &attempt.id,
        tenant_id: &attempt.tenant_id,
        status: attempt.status.as_str(),
        time: format_nanos(attempt.time_nanos),
        code: &attempt.code,
        response_data: if includes.response_data {
            attempt.response_data.as_deref().and_then(raw)
        } else {
            None
        },
        attempt_number: attempt.attempt_number,
        manual: attempt.manual,
        destination_type: &attempt.destination_type,
        event_id: &attempt.event_id,
        destination_id: &attempt.destination_id,
        event: event.map(|e| embedded_event(e, includes.event_data)),
        destination,
    })
}

fn parse_limit(query: &Query) -> usize {
    match query.get("limit").and_then(|l| l.parse::<i64>().ok()) {
        Some(n) if n > 0 => (n as usize).min(MAX_LIMIT),
        _ => DEFAULT_LIMIT,
    }
}

fn parse_time(query: &Query) -> Result<TimeRange, ApiError> {
    let mut range = TimeRange::default();
    for (op, value) in query.operators("time") {
        let slot = match op.as_str() {
            "gte" => &mut range.gte,
            "lte" => &mut range.lte,
            "gt" => &mut range.gt,
            "lt" => &mut range.lt,
            other => {
                return Err(ApiError::bad_request(format!(
                    "operator '{other}' is not supported, use 'gte', 'lte', 'gt', or 'lt'"
                )))
            }
        };
        let timestamp = parse_rfc3339_or_date(&value).map_err(|_| {
            ApiError::with_data(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation error",
                json!({ format!("query.time[{op}]"): "invalid format, expected RFC3339 (e.g. 2024-01-15T09:30:00Z or 2024-01-15T09:30:00.123Z) or YYYY-MM-DD" }),
            )
        })?;
        *slot = Some(timestamp.unix_nanos_saturating());
    }
    Ok(range)
}

fn check_order_by(query: &Query) -> Result<(), ApiError> {
    match query.get("order_by") {
        None | Some("") | Some("time") => Ok(()),
        Some(_) => Err(ApiError::with_data(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation error",
            json!({"query.order_by": "must be one of: [time]"}),
        )),
    }
}

/// The tenants a caller may see: admins any (optionally filtered), tenants only their own.
fn tenant_scope(auth: &Authorized, query: &Query) -> Result<Vec<TenantId>, ApiError> {
    let requested = typed(query.array("tenant_id"));
    match &auth.caller {
        Caller::Admin => Ok(requested),
        Caller::Tenant(own) => {
            if requested.iter().any(|t| t != own) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "tenant_id query parameter does not match authenticated tenant",
                ));
            }
            Ok(vec![own.clone()])
        }
    }
}

/// Query values as typed ids.
fn typed<T: From<String>>(values: Vec<String>) -> Vec<T> {
    values.into_iter().map(T::from).collect()
}

fn position(time_nanos: i64, id: &str) -> String {
    format!("{time_nanos}:{id}")
}

fn parse_position(text: &str) -> Result<Position, ApiError> {
    let invalid = || ApiError::bad_request("invalid cursor");
    let (time, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((time.parse().map_err(|_| invalid())?, id.to_string()))
}

fn page_request(query: &Query, resource: &str) -> Result<PageRequest, ApiError> {
    check_order_by(query)?;
    pagination::parse_request(query, resource, parse_limit(query))
}

/// `GET /events`.
pub fn list_events(state: &AppState, auth: &Authorized, query: &Query) -> Result<Reply, ApiError> {
    let filter = EventFilter {
        tenant_ids: tenant_scope(auth, query)?,
        ids: typed(query.array("id")),
        destination_ids: typed(query.array("destination_id")),
        topics: query.array("topic"),
        time: parse_time(query)?,
    };
    let request = page_request(query, "evt")?;
    let page = pagination::paginate(
        &request,
        "evt",
        |direction, after, n| {
            let after = after.map(parse_position).transpose()?;
            Ok(state
                .store
                .scan_events(&filter, direction, after.as_ref(), n)?)
        },
        |e: &Event| position(e.time_nanos, &e.id),
    )?;
    Ok(reply::ok(&Page {
        models: page.items.iter().map(event_view).collect(),
        pagination: pagination::pagination_json("time", &request, &page.next, &page.prev),
    }))
}

/// `GET /events/:id`.
pub fn get_event(
    state: &AppState,
    auth: &Authorized,
    id: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let scope = tenant_scope(auth, query)?;
    let event = state
        .store
        .get_event(id)?
        .filter(|e| scope.is_empty() || scope.contains(&e.tenant_id))
        .ok_or_else(|| ApiError::not_found("event not found"))?;
    Ok(reply::ok(&event_view(&event)))
}

/// `GET /attempts` and the destination-scoped listing.
pub fn list_attempts(
    state: &AppState,
    auth: &Authorized,
    query: &Query,
    destination: Option<(&str, &str)>,
) -> Result<Reply, ApiError> {
    let status = match query.get("status") {
        None | Some("") => None,
        Some("success") => Some(AttemptStatus::Success),
        Some("failed") => Some(AttemptStatus::Failed),
        Some(_) => {
            return Err(ApiError::with_data(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation error",
                json!({"query.status": "must be 'success' or 'failed'"}),
            ))
        }
    };
    let (tenant_ids, destination_ids) = match destination {
        Some((tenant, destination)) => (vec![tenant.into()], vec![destination.into()]),
        None => (
            tenant_scope(auth, query)?,
            typed(query.array("destination_id")),
        ),
    };
    let filter = AttemptFilter {
        tenant_ids,
        event_ids: typed(query.array("event_id")),
        destination_ids,
        destination_types: query.array("destination_type"),
        status,
        topics: query.array("topic"),
        time: parse_time(query)?,
    };
    let includes = Includes::parse(query);
    let request = page_request(query, "att")?;
    let page = pagination::paginate(
        &request,
        "att",
        |direction, after, n| {
            let after = after.map(parse_position).transpose()?;
            Ok(state
                .store
                .scan_attempts(&filter, direction, after.as_ref(), n)?)
        },
        |a: &Attempt| position(a.time_nanos, &a.id),
    )?;
    let events = page
        .items
        .iter()
        .map(|a| included_event(state, a, &includes))
        .collect::<Result<Vec<_>, _>>()?;
    let models = page
        .items
        .iter()
        .zip(&events)
        .map(|(a, e)| attempt_view(state, a, e.as_ref(), &includes))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(reply::ok(&Page {
        models,
        pagination: pagination::pagination_json("time", &request, &page.next, &page.prev),
    }))
}

/// `GET /attempts/:id` and the destination-scoped read.
pub fn get_attempt(
    state: &AppState,
    auth: &Authorized,
    id: &str,
    query: &Query,
    destination: Option<(&str, &str)>,
) -> Result<Reply, ApiError> {
    let scope = match destination {
        Some((tenant, _)) => vec![tenant.into()],
        None => tenant_scope(auth, query)?,
    };
    let attempt = state
        .store
        .get_attempt(id)?
        .filter(|a| scope.is_empty() || scope.contains(&a.tenant_id))
        .filter(|a| destination.is_none_or(|(_, d)| a.destination_id == d))
        .ok_or_else(|| ApiError::not_found("attempt not found"))?;
    let includes = Includes::parse(query);
    let event = included_event(state, &attempt, &includes)?;
    Ok(reply::ok(&attempt_view(
        state,
        &attempt,
        event.as_ref(),
        &includes,
    )?))
}
