//! Fan-out matching (§3.3): a destination receives an event when it is enabled, subscribes to
//! the event's topic, and its filter matches the event's filter document.

use serde_json::{json, Value};

use super::destination::Destination;
use super::event::Event;
use super::{filter, topics};
use crate::time::Timestamp;

/// The document filters are evaluated against, built once per event and only when some
/// destination has a filter.
pub struct FilterInput<'a> {
    event: &'a Event,
    built: Option<Value>,
}

impl<'a> FilterInput<'a> {
    pub fn new(event: &'a Event) -> FilterInput<'a> {
        FilterInput { event, built: None }
    }

    fn get(&mut self) -> &Value {
        let event = self.event;
        self.built.get_or_insert_with(|| {
            let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
            json!({
                "id": event.id,
                "topic": event.topic,
                "time": Timestamp::from_unix_nanos(event.time_nanos)
                    .format_rfc3339_with_offset(event.time_offset_seconds),
                "metadata": event.metadata,
                "data": data,
            })
        })
    }
}

/// Whether `destination` should receive `event`.
pub fn destination_matches(destination: &Destination, input: &mut FilterInput<'_>) -> bool {
    if !destination.is_enabled() {
        return false;
    }
    if !topics::destination_matches_topic(&destination.topics, &input.event.topic) {
        return false;
    }
    match destination.filter.as_deref() {
        None => true,
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(schema) => filter::matches(&schema, input.get()),
            Err(_) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(topics: &[&str], filter: Option<&str>, disabled: bool) -> Destination {
        Destination {
            id: "d".into(),
            tenant_id: "t".into(),
            kind: "webhook".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            filter: filter.map(str::to_string),
            config: Default::default(),
            credentials: Default::default(),
            delivery_metadata: Default::default(),
            metadata: Default::default(),
            created_at_ms: 0,
            updated_at_ms: 0,
            disabled_at_ms: disabled.then_some(1),
            stored_at_nanos: 0,
        }
    }

    fn event(topic: &str, data: &str) -> Event {
        Event {
            id: "e".into(),
            tenant_id: "t".into(),
            destination_id: Default::default(),
            matched_destination_ids: vec![],
            topic: topic.into(),
            time_nanos: 1_717_230_216_000_000_000,
            time_offset_seconds: 3600,
            eligible_for_retry: true,
            metadata: [("region".to_string(), "eu".to_string())]
                .into_iter()
                .collect(),
            data: data.into(),
            idempotency_expires_ms: 0,
        }
    }

    #[test]
    fn topic_filter_and_state_all_count() {
        let e = event("user.created", r#"{"amount": 12}"#);
        let mut input = FilterInput::new(&e);
        assert!(destination_matches(
            &destination(&["*"], None, false),
            &mut input
        ));
        assert!(destination_matches(
            &destination(&["user.*"], None, false),
            &mut input
        ));
        assert!(!destination_matches(
            &destination(&["order.paid"], None, false),
            &mut input
        ));
        assert!(!destination_matches(
            &destination(&["*"], None, true),
            &mut input
        ));
        let rich = r#"{"data":{"amount":{"$gte":10}},"metadata":{"region":"eu"}}"#;
        assert!(destination_matches(
            &destination(&["*"], Some(rich), false),
            &mut input
        ));
        let poor = r#"{"data":{"amount":{"$gt":100}}}"#;
        assert!(!destination_matches(
            &destination(&["*"], Some(poor), false),
            &mut input
        ));
        let by_time = r#"{"time":{"$startsWith":"2024-06-01T09:23:36+01:00"}}"#;
        assert!(destination_matches(
            &destination(&["*"], Some(by_time), false),
            &mut input
        ));
    }
}
