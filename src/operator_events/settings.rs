//! The operator event settings, typed: which topics (`OPERATOR_EVENTS_TOPICS`), where they go
//! (the HTTP sink: `OPERATOR_EVENTS_HTTP_URL`, signed with `OPERATOR_EVENTS_HTTP_SIGNING_SECRET`)
//! and the `deployment_id` of the envelope.

use super::topics::{OperatorTopic, TopicFilter};

/// Where operator events are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSettings {
    Http {
        url: String,
        signing_secret: Option<String>,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorEventSettings {
    pub topics: TopicFilter,
    pub sink: Option<SinkSettings>,
    pub deployment_id: Option<String>,
}

impl OperatorEventSettings {
    /// Whether events of `topic` are built and queued: the topic is enabled and has a sink.
    /// Topics without a sink are dropped (a warning at start says so).
    pub fn emits(&self, topic: OperatorTopic) -> bool {
        self.sink.is_some() && self.topics.includes(topic)
    }

    /// Whether any event is ever emitted.
    pub fn any(&self) -> bool {
        self.sink.is_some() && !self.topics.is_empty()
    }

    /// The start-up log line, and whether it is a warning.
    pub fn describe(&self) -> (String, bool) {
        match (&self.sink, self.topics.is_empty()) {
            (_, true) => ("operator events: off".into(), false),
            (None, false) => (
                format!(
                    "operator events: OPERATOR_EVENTS_TOPICS names {} but no sink is configured \
                     (OPERATOR_EVENTS_HTTP_URL); they are dropped",
                    self.topics.names().join(", ")
                ),
                true,
            ),
            (
                Some(SinkSettings::Http {
                    url,
                    signing_secret,
                }),
                false,
            ) => (
                format!(
                    "operator events: {} to {url}{}",
                    self.topics.names().join(", "),
                    if signing_secret.is_some() {
                        ", signed"
                    } else {
                        ", unsigned"
                    }
                ),
                false,
            ),
        }
    }
}
