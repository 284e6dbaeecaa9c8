//! `POST /publish`: validation as upstream, then one durable commit of the event, its
//! idempotency key and its delivery tasks before the 202. Over the disk budget it answers 503
//! with `Retry-After` and writes nothing; so does a commit that fails because the disk is full
//! (`StoreError::WriteFailed`, answered by `error.rs`): a 202 always means the event is on disk.

use hyper::StatusCode;
use serde_json::json;

use super::error::ApiError;
use super::reply::{self, Reply};
use super::requests::PublishBody;
use super::AppState;
use crate::disk_budget::{OverBudget, RETRY_AFTER_SECONDS};
use crate::model::event::{go_compact, Event};
use crate::model::identifiers::{DestinationId, EventId, TenantId};
use crate::model::matching::{destination_matches, FilterInput};
use crate::model::topics::PublishTopicError;
use crate::store::{PublishOutcome, PublishRequest};
use crate::time::Timestamp;

/// The ids of the tenant's destinations that receive `event` (enabled, subscribed, filter
/// matching, and the targeted one when `destination_id` is set), read from a snapshot. A data
/// file that cannot be read for now is explained (a full disk; see [`crate::store::Store::explain`]).
async fn matching_destinations(
    state: &AppState,
    event: &Event,
) -> Result<Vec<DestinationId>, ApiError> {
    let destinations = match state.store.tenant_destinations(&event.tenant_id) {
        Ok(destinations) => destinations,
        Err(error) => return Err(state.store.explain(error).await.into()),
    };
    let mut input = FilterInput::new(event);
    Ok(destinations
        .iter()
        .filter(|d| event.destination_id.is_empty() || d.id == event.destination_id)
        .filter(|d| destination_matches(d, &mut input))
        .map(|d| d.id.clone())
        .collect())
}

/// 503 in upstream's error shape, naming the limit and the figures, with `Retry-After`.
fn over_budget(refusal: &OverBudget) -> Reply {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, refusal.to_string())
        .retry_after(RETRY_AFTER_SECONDS)
        .into_reply()
}

pub async fn publish(state: &AppState, bytes: &[u8]) -> Result<Reply, ApiError> {
    // `data` stays the raw text the publisher sent (key order, number literals); the rest is
    // parsed into values.
    let PublishBody {
        id,
        tenant_id,
        destination_id,
        topic,
        eligible_for_retry,
        time,
        metadata,
        data,
    } = PublishBody::parse(bytes)?;
    if let Err(error) = state.topic_rules.check_publish_topic(&topic) {
        return Err(ApiError::validation(vec![match error {
            PublishTopicError::Required => "topic is required".to_string(),
            PublishTopicError::Invalid => "topic is invalid".to_string(),
        }]));
    }
    let now_nanos = state.clock.now_nanos();
    let (time_nanos, time_offset_seconds) = match time {
        Some(parsed) => (
            parsed
                .timestamp
                .unix_nanos_i64()
                .ok_or_else(|| ApiError::unprocessable("time is out of range"))?,
            parsed.offset_seconds,
        ),
        None => (now_nanos, 0),
    };
    let now = Timestamp::from_unix_nanos(now_nanos);
    let now_ms = now.unix_millis();
    let mut event = Event {
        id: match id {
            Some(id) => EventId::from(id),
            None => state.config.ids.event_id(now.unix_millis_since_epoch())?,
        },
        tenant_id: TenantId::from(tenant_id),
        destination_id: DestinationId::from(destination_id),
        matched_destination_ids: Vec::new(),
        topic,
        time_nanos,
        time_offset_seconds,
        eligible_for_retry,
        metadata,
        data: go_compact(data.get()),
        idempotency_expires_ms: 0,
    };
    event.matched_destination_ids = matching_destinations(state, &event).await?;
    let id = event.id.clone();
    let destination_ids = event.matched_destination_ids.clone();
    // Only a publish that would write is refused: a bad request still gets its 4xx, and one
    // that matches nothing stores nothing anyway.
    if !destination_ids.is_empty() {
        if let Err(refusal) = state.disk_budget.check() {
            return Ok(over_budget(&refusal));
        }
    }
    // Nothing matched: nothing is stored and no idempotency key is taken (as upstream).
    let duplicate = !destination_ids.is_empty()
        && match state
            .store
            .publish(PublishRequest {
                event,
                now_ms,
                idempotency_ttl_ms: state
                    .config
                    .publish_idempotency_ttl_seconds
                    .saturating_mul(1000),
            })
            .await
        {
            Ok(outcome) => outcome == PublishOutcome::Duplicate,
            Err(error) => return Err(state.store.explain(error).await.into()),
        };
    Ok(reply::json(
        StatusCode::ACCEPTED,
        &json!({
            "id": id,
            "duplicate": duplicate,
            "destination_ids": destination_ids,
        }),
    ))
}
