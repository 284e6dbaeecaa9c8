//! Operator events: what outpost tells the platform operator about itself — alerts, every
//! delivery attempt, tenants' subscription changes — as upstream's envelope
//! `{id, topic, time, deployment_id?, tenant_id?, data}` sent to a sink.
//!
//! Events are built inside the store commit that causes them and kept in the store's
//! `operator_outbox` table (`store/outbox.rs`), so an attempt's events exist exactly when its
//! record does, survive a restart, and reach the sink at least once. The sender
//! (`sender.rs`) drains the outbox in order, on its own task, so a slow or dead sink never
//! slows tenant deliveries.

mod http_sink;
mod payload;
mod sender;
mod settings;
mod topics;

pub use http_sink::{HttpSink, SinkError};
pub use payload::{
    attempt_event, consecutive_failure_event, destination_disabled_event, exhausted_retries_event,
    subscription_updated_event, Envelope, Stamp, Subscription,
};
pub use sender::Sender;
pub use settings::{OperatorEventSettings, SinkSettings};
pub use topics::{OperatorTopic, TopicFilter};
