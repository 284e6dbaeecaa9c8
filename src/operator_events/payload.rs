//! The JSON of operator events, as upstream sends it: the envelope
//! `{"id","topic","time","deployment_id"?,"tenant_id"?,"data"}` and each topic's `data`. An
//! event, an attempt and a destination appear in upstream's record shapes (`event` with
//! `destination_id`, `matched_destination_ids` and `data`; `attempt` with `response_data`;
//! `destination` with its config and without credentials). Payload bytes (`data`,
//! `response_data`) are embedded as stored, never re-encoded.

use serde::Serialize;
use serde_json::value::RawValue;

use super::topics::OperatorTopic;
use crate::alerts::ConsecutiveFailures;
use crate::model::destination::Destination;
use crate::model::event::{Attempt, Event};
use crate::model::StrMap;
use crate::time::{format_millis, format_nanos};

/// An operator event ready for the outbox: its topic and the exact body the sink receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub topic: OperatorTopic,
    pub body: Vec<u8>,
}

/// What every envelope carries besides its data.
pub struct Stamp<'a> {
    pub id: &'a str,
    pub time_nanos: i64,
    pub deployment_id: Option<&'a str>,
}

#[derive(Serialize)]
struct EnvelopeJson<'a, D: Serialize> {
    id: &'a str,
    topic: &'static str,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment_id: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    tenant_id: &'a str,
    data: D,
}

fn seal<D: Serialize>(
    stamp: &Stamp<'_>,
    topic: OperatorTopic,
    tenant_id: &str,
    data: D,
) -> Result<Envelope, serde_json::Error> {
    let body = serde_json::to_vec(&EnvelopeJson {
        id: stamp.id,
        topic: topic.as_str(),
        time: format_nanos(stamp.time_nanos),
        deployment_id: stamp.deployment_id,
        tenant_id,
        data,
    })?;
    Ok(Envelope { topic, body })
}

/// Stored JSON text embedded as is; text that is not JSON (never written by outpost) as null.
fn raw(text: &str) -> Option<&RawValue> {
    serde_json::from_str(text).ok()
}

#[derive(Serialize)]
struct EventJson<'a> {
    id: &'a str,
    tenant_id: &'a str,
    destination_id: &'a str,
    matched_destination_ids: &'a [crate::model::identifiers::DestinationId],
    topic: &'a str,
    eligible_for_retry: bool,
    time: String,
    /// Upstream's nil map: `null` when the publisher sent none.
    metadata: Option<&'a StrMap>,
    data: Option<&'a RawValue>,
}

/// The event as one delivery saw it: `destination_id` is the destination of the attempt.
fn event_json<'a>(event: &'a Event, destination_id: &'a str) -> EventJson<'a> {
    EventJson {
        id: &event.id,
        tenant_id: &event.tenant_id,
        destination_id,
        matched_destination_ids: &event.matched_destination_ids,
        topic: &event.topic,
        eligible_for_retry: event.eligible_for_retry,
        time: format_nanos(event.time_nanos),
        metadata: (!event.metadata.is_empty()).then_some(&event.metadata),
        data: raw(&event.data),
    }
}

#[derive(Serialize)]
struct AttemptJson<'a> {
    id: &'a str,
    tenant_id: &'a str,
    event_id: &'a str,
    destination_id: &'a str,
    destination_type: &'a str,
    attempt_number: u32,
    manual: bool,
    status: &'static str,
    time: String,
    code: &'a str,
    response_data: Option<&'a RawValue>,
}

fn attempt_json(attempt: &Attempt) -> AttemptJson<'_> {
    AttemptJson {
        id: &attempt.id,
        tenant_id: &attempt.tenant_id,
        event_id: &attempt.event_id,
        destination_id: &attempt.destination_id,
        destination_type: &attempt.destination_type,
        attempt_number: attempt.attempt_number,
        manual: attempt.manual,
        status: attempt.status.as_str(),
        time: format_nanos(attempt.time_nanos),
        code: &attempt.code,
        response_data: attempt.response_data.as_deref().and_then(raw),
    }
}

/// The destination in alert payloads: config included, credentials never.
#[derive(Serialize)]
struct DestinationJson<'a> {
    id: &'a str,
    tenant_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    topics: &'a [String],
    config: &'a StrMap,
    created_at: String,
    disabled_at: Option<String>,
}

fn destination_json(destination: &Destination) -> DestinationJson<'_> {
    DestinationJson {
        id: &destination.id,
        tenant_id: &destination.tenant_id,
        kind: &destination.kind,
        topics: &destination.topics,
        config: &destination.config,
        created_at: format_millis(destination.created_at_ms),
        disabled_at: destination.disabled_at_ms.map(format_millis),
    }
}

#[derive(Serialize)]
struct AttemptData<'a> {
    tenant_id: &'a str,
    event: EventJson<'a>,
    attempt: AttemptJson<'a>,
    destination: DestinationJson<'a>,
}

fn attempt_data<'a>(
    event: &'a Event,
    attempt: &'a Attempt,
    destination: &'a Destination,
) -> AttemptData<'a> {
    AttemptData {
        tenant_id: &destination.tenant_id,
        event: event_json(event, &attempt.destination_id),
        attempt: attempt_json(attempt),
        destination: destination_json(destination),
    }
}

/// An event whose data is the attempt payload alone.
fn attempt_payload_event(
    stamp: &Stamp<'_>,
    topic: OperatorTopic,
    event: &Event,
    attempt: &Attempt,
    destination: &Destination,
) -> Result<Envelope, serde_json::Error> {
    seal(
        stamp,
        topic,
        &destination.tenant_id,
        attempt_data(event, attempt, destination),
    )
}

/// `attempt.success` or `attempt.failed`, by the attempt's status.
pub fn attempt_event(
    stamp: &Stamp<'_>,
    event: &Event,
    attempt: &Attempt,
    destination: &Destination,
) -> Result<Envelope, serde_json::Error> {
    let topic = match attempt.status {
        crate::model::event::AttemptStatus::Success => OperatorTopic::AttemptSuccess,
        crate::model::event::AttemptStatus::Failed => OperatorTopic::AttemptFailed,
    };
    attempt_payload_event(stamp, topic, event, attempt, destination)
}

/// `alert.attempt.exhausted_retries`.
pub fn exhausted_retries_event(
    stamp: &Stamp<'_>,
    event: &Event,
    attempt: &Attempt,
    destination: &Destination,
) -> Result<Envelope, serde_json::Error> {
    attempt_payload_event(
        stamp,
        OperatorTopic::ExhaustedRetries,
        event,
        attempt,
        destination,
    )
}

#[derive(Serialize)]
struct CountsJson {
    current: u32,
    max: u32,
    threshold: u32,
}

/// `alert.destination.consecutive_failure`: the attempt payload plus the streak.
#[derive(Serialize)]
struct ConsecutiveFailureData<'a> {
    #[serde(flatten)]
    attempt: AttemptData<'a>,
    consecutive_failures: CountsJson,
}

/// `alert.destination.consecutive_failure`.
pub fn consecutive_failure_event(
    stamp: &Stamp<'_>,
    event: &Event,
    attempt: &Attempt,
    destination: &Destination,
    counts: ConsecutiveFailures,
) -> Result<Envelope, serde_json::Error> {
    seal(
        stamp,
        OperatorTopic::ConsecutiveFailure,
        &destination.tenant_id,
        ConsecutiveFailureData {
            attempt: attempt_data(event, attempt, destination),
            consecutive_failures: CountsJson {
                current: counts.current,
                max: counts.max,
                threshold: counts.threshold,
            },
        },
    )
}

#[derive(Serialize)]
struct DisabledData<'a> {
    tenant_id: &'a str,
    destination: DestinationJson<'a>,
    disabled_at: String,
    reason: &'static str,
    event: EventJson<'a>,
    attempt: AttemptJson<'a>,
}

/// `alert.destination.disabled`; `destination` already carries its `disabled_at`.
pub fn destination_disabled_event(
    stamp: &Stamp<'_>,
    event: &Event,
    attempt: &Attempt,
    destination: &Destination,
) -> Result<Envelope, serde_json::Error> {
    seal(
        stamp,
        OperatorTopic::DestinationDisabled,
        &destination.tenant_id,
        DisabledData {
            tenant_id: &destination.tenant_id,
            destination: destination_json(destination),
            disabled_at: format_millis(destination.disabled_at_ms.unwrap_or_default()),
            reason: "consecutive_failure",
            event: event_json(event, &attempt.destination_id),
            attempt: attempt_json(attempt),
        },
    )
}

/// A tenant's subscription: the union of its destinations' topics and how many it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub destinations_count: usize,
}

#[derive(Serialize)]
struct SubscriptionData<'a> {
    tenant_id: &'a str,
    topics: &'a [String],
    previous_topics: &'a [String],
    destinations_count: usize,
    previous_destinations_count: usize,
}

/// `tenant.subscription.updated`.
pub fn subscription_updated_event(
    stamp: &Stamp<'_>,
    tenant_id: &str,
    previous: &Subscription,
    current: &Subscription,
) -> Result<Envelope, serde_json::Error> {
    seal(
        stamp,
        OperatorTopic::SubscriptionUpdated,
        tenant_id,
        SubscriptionData {
            tenant_id,
            topics: &current.topics,
            previous_topics: &previous.topics,
            destinations_count: current.destinations_count,
            previous_destinations_count: previous.destinations_count,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::AttemptStatus;
    use serde_json::{json, Value};

    fn stamp() -> Stamp<'static> {
        Stamp {
            id: "op_1",
            time_nanos: 1_717_230_216_082_374_000,
            deployment_id: Some("dep"),
        }
    }

    fn event() -> Event {
        Event {
            id: "e1".into(),
            tenant_id: "t1".into(),
            destination_id: "".into(),
            matched_destination_ids: vec!["d1".into()],
            topic: "user.created".into(),
            time_nanos: 1_717_230_216_000_000_000,
            time_offset_seconds: 0,
            eligible_for_retry: true,
            metadata: StrMap::new(),
            data: r#"{"b":1.10,"a":[1]}"#.into(),
            idempotency_expires_ms: 0,
        }
    }

    fn attempt() -> Attempt {
        Attempt {
            id: "a1".into(),
            tenant_id: "t1".into(),
            event_id: "e1".into(),
            destination_id: "d1".into(),
            destination_type: "webhook".into(),
            attempt_number: 3,
            manual: false,
            status: AttemptStatus::Failed,
            time_nanos: 1_717_230_217_000_000_000,
            code: "500".into(),
            response_data: Some(r#"{"status":500,"body":"no"}"#.into()),
            topic: "user.created".into(),
        }
    }

    fn destination() -> Destination {
        let mut d = Destination::sample("t1", "d1", "webhook");
        d.config.insert("url".into(), "http://x/".into());
        d.credentials.insert("secret".into(), "whsec_hidden".into());
        d.created_at_ms = 1_717_230_000_000;
        d
    }

    #[test]
    fn an_attempt_event_has_upstreams_envelope_and_records() {
        let envelope = attempt_event(&stamp(), &event(), &attempt(), &destination()).unwrap();
        assert_eq!(envelope.topic, OperatorTopic::AttemptFailed);
        let text = String::from_utf8(envelope.body).unwrap();
        assert!(
            text.contains(r#""data":{"b":1.10,"a":[1]}"#),
            "payload kept byte for byte: {text}"
        );
        assert!(!text.contains("whsec_hidden"), "no credentials: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            body,
            json!({
                "id": "op_1",
                "topic": "attempt.failed",
                "time": "2024-06-01T08:23:36.082374Z",
                "deployment_id": "dep",
                "tenant_id": "t1",
                "data": {
                    "tenant_id": "t1",
                    "event": {
                        "id": "e1", "tenant_id": "t1", "destination_id": "d1",
                        "matched_destination_ids": ["d1"], "topic": "user.created",
                        "eligible_for_retry": true, "time": "2024-06-01T08:23:36Z",
                        "metadata": null, "data": {"b": 1.10, "a": [1]}
                    },
                    "attempt": {
                        "id": "a1", "tenant_id": "t1", "event_id": "e1", "destination_id": "d1",
                        "destination_type": "webhook", "attempt_number": 3, "manual": false,
                        "status": "failed", "time": "2024-06-01T08:23:37Z", "code": "500",
                        "response_data": {"status": 500, "body": "no"}
                    },
                    "destination": {
                        "id": "d1", "tenant_id": "t1", "type": "webhook", "topics": ["*"],
                        "config": {"url": "http://x/"}, "created_at": "2024-06-01T08:20:00Z",
                        "disabled_at": null
                    }
                }
            })
        );
    }

    #[test]
    fn alert_payloads_carry_their_extra_fields() {
        let counts = ConsecutiveFailures {
            current: 7,
            max: 10,
            threshold: 70,
        };
        let text = String::from_utf8(
            consecutive_failure_event(&stamp(), &event(), &attempt(), &destination(), counts)
                .unwrap()
                .body,
        )
        .unwrap();
        assert!(text.contains(r#""data":{"b":1.10,"a":[1]}"#), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["topic"], "alert.destination.consecutive_failure");
        assert_eq!(body["data"]["attempt"]["id"], "a1");
        assert_eq!(body["data"]["tenant_id"], "t1");
        assert_eq!(
            body["data"]["consecutive_failures"],
            json!({"current": 7, "max": 10, "threshold": 70})
        );
        let mut disabled = destination();
        disabled.disabled_at_ms = Some(1_717_230_217_000);
        let body: Value = serde_json::from_slice(
            &destination_disabled_event(&stamp(), &event(), &attempt(), &disabled)
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(body["data"]["reason"], "consecutive_failure");
        assert_eq!(body["data"]["disabled_at"], "2024-06-01T08:23:37Z");
        assert_eq!(
            body["data"]["destination"]["disabled_at"],
            "2024-06-01T08:23:37Z"
        );
    }

    #[test]
    fn a_subscription_update_names_both_states_and_omits_no_deployment() {
        let stamp = Stamp {
            deployment_id: None,
            ..stamp()
        };
        let before = Subscription {
            topics: vec![],
            destinations_count: 0,
        };
        let after = Subscription {
            topics: vec!["a".into(), "b".into()],
            destinations_count: 1,
        };
        let body: Value = serde_json::from_slice(
            &subscription_updated_event(&stamp, "t1", &before, &after)
                .unwrap()
                .body,
        )
        .unwrap();
        assert!(body.get("deployment_id").is_none());
        assert_eq!(
            body["data"],
            json!({"tenant_id": "t1", "topics": ["a", "b"], "previous_topics": [],
                   "destinations_count": 1, "previous_destinations_count": 0})
        );
    }
}
