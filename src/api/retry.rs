//! `POST /retry`: a manual retry of an (event, destination) pair, numbered after its latest
//! attempt, with upstream's checks on the destination. The reply carries the retried ids for
//! the audit log.

use hyper::StatusCode;
use serde_json::json;

use super::auth::{Authorized, Caller};
use super::body::JsonObject;
use super::error::ApiError;
use super::reply::{self, Reply};
use super::AppState;
use crate::audit::Subject;
use crate::model::event::DeliveryTask;
use crate::model::matching::{destination_matches, FilterInput};

pub async fn retry(state: &AppState, auth: &Authorized, bytes: &[u8]) -> Result<Reply, ApiError> {
    let body = JsonObject::parse(bytes)?;
    let event_id = body.string("event_id")?.filter(|s| !s.is_empty());
    let destination_id = body.string("destination_id")?.filter(|s| !s.is_empty());
    let (Some(event_id), Some(destination_id)) = (event_id.clone(), destination_id.clone()) else {
        let mut problems = Vec::new();
        if event_id.is_none() {
            problems.push("event_id is required".to_string());
        }
        if destination_id.is_none() {
            problems.push("destination_id is required".to_string());
        }
        return Err(ApiError::validation(problems));
    };
    let event_not_found = || ApiError::not_found("event not found");
    let latest = state
        .store
        .latest_attempt(&event_id, &destination_id)?
        .filter(|a| match &auth.caller {
            Caller::Admin => true,
            Caller::Tenant(tenant) => a.tenant_id == *tenant,
        })
        .ok_or_else(event_not_found)?;
    let event = state
        .store
        .get_event(&event_id)?
        .ok_or_else(event_not_found)?;
    let destination = state
        .store
        .get_destination(&latest.tenant_id, &destination_id)?
        .ok_or_else(|| ApiError::not_found("destination not found"))?;
    if !destination.is_enabled() {
        return Err(ApiError::with_data(
            StatusCode::BAD_REQUEST,
            "Destination is disabled",
            json!({"error": "destination_disabled"}),
        ));
    }
    if !destination_matches(&destination, &mut FilterInput::new(&event)) {
        return Err(ApiError::bad_request("destination does not match event"));
    }
    let subject = Subject {
        tenant_id: Some(latest.tenant_id.to_string()),
        destination_id: Some(destination_id.clone()),
        event_id: Some(event_id.clone()),
        secret_rotated: false,
    };
    state
        .store
        .enqueue_manual(
            DeliveryTask {
                event_id: event_id.into(),
                tenant_id: latest.tenant_id.clone(),
                destination_id: destination_id.into(),
                attempt_number: latest.attempt_number + 1,
                manual: true,
            },
            state.clock.now_ms(),
        )
        .await?;
    let mut reply = reply::json(StatusCode::ACCEPTED, &json!({"success": true}));
    reply.extensions_mut().insert(subject);
    Ok(reply)
}
