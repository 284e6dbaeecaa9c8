//! The provider seam. A [`Provider`] knows one destination type; it turns a destination's
//! stored config and credentials into a prepared [`Target`] once, and the target delivers
//! events with nothing left to parse. [`Providers`] maps each [`DestinationKind`] to its
//! provider; a destination whose type has no provider here — or whose config its provider
//! rejects — gets a target that fails every attempt with code `ERR`, as upstream records a
//! delivery it cannot make.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::json;

use crate::model::destination::Destination;
use crate::model::destination_type::DestinationKind;
use crate::model::event::Event;
use crate::model::identifiers::DestinationId;

/// The `code` of an attempt that could not be made (bad config, unbuildable request,
/// unsupported type).
pub const NOT_DELIVERED_CODE: &str = "ERR";
/// The `response_data.error` of an attempt whose request could not be built.
pub const UNFORMATTABLE_MESSAGE: &str = "could not format event for delivery";

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOutcome {
    pub success: bool,
    pub code: String,
    pub response_data: Option<serde_json::Value>,
}

impl DeliveryOutcome {
    /// A failed attempt whose request could not be built.
    pub fn unformattable() -> Self {
        DeliveryOutcome {
            success: false,
            code: NOT_DELIVERED_CODE.to_string(),
            response_data: Some(json!({ "error": UNFORMATTABLE_MESSAGE })),
        }
    }
}

/// The future of one delivery.
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = DeliveryOutcome> + Send + 'a>>;

/// One destination type's delivery mechanism.
pub trait Provider: Send + Sync {
    /// Parses what this type needs from the destination (config, credentials, delivery
    /// metadata) into a target. Anything that depends on the time of delivery (a rotated
    /// secret's expiry) is kept in a form the target evaluates per delivery.
    fn prepare(&self, destination: &Destination) -> Result<Arc<dyn Target>, PrepareError>;
}

/// A destination prepared for delivery.
pub trait Target: Send + Sync {
    /// Delivers one event; `now_nanos` is the clock's time of the attempt. Never panics on
    /// bad input: whatever goes wrong is an outcome.
    fn deliver<'a>(&'a self, event: &'a Event, now_nanos: i64) -> DeliveryFuture<'a>;
}

/// Why a destination cannot be prepared. Each becomes a target that fails every attempt.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// No provider for this type (or a type name this build does not know).
    #[error("delivery to {0} destinations is not supported by this server")]
    Unsupported(String),
    /// The provider rejected the destination's config or credentials.
    #[error("invalid destination config: {0}")]
    InvalidConfig(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PrepareError {
    /// The attempt every delivery to such a destination records.
    fn outcome(&self) -> DeliveryOutcome {
        match self {
            PrepareError::Unsupported(_) => DeliveryOutcome {
                success: false,
                code: NOT_DELIVERED_CODE.to_string(),
                response_data: Some(json!({ "error": self.to_string() })),
            },
            PrepareError::InvalidConfig(_) => DeliveryOutcome::unformattable(),
        }
    }
}

/// The target of a destination that cannot be delivered to: every attempt fails the same way.
struct Undeliverable {
    destination_id: DestinationId,
    reason: String,
    outcome: DeliveryOutcome,
}

impl Target for Undeliverable {
    fn deliver<'a>(&'a self, event: &'a Event, _now_nanos: i64) -> DeliveryFuture<'a> {
        tracing::debug!(
            event_id = %event.id,
            destination_id = %self.destination_id,
            reason = %self.reason,
            "event not delivered"
        );
        Box::pin(std::future::ready(self.outcome.clone()))
    }
}

/// The providers this server delivers with, by destination type.
#[derive(Default, Clone)]
pub struct Providers {
    by_kind: HashMap<DestinationKind, Arc<dyn Provider>>,
}

impl Providers {
    pub fn new() -> Providers {
        Providers::default()
    }

    /// Registers `provider` for `kind` (replacing any earlier one).
    pub fn with(mut self, kind: DestinationKind, provider: Arc<dyn Provider>) -> Providers {
        self.by_kind.insert(kind, provider);
        self
    }

    /// The destination's target from its type's provider. Never fails: a destination that
    /// cannot be prepared gets a target recording the reason as a failed attempt.
    pub fn prepare(&self, destination: &Destination) -> Arc<dyn Target> {
        let prepared = destination
            .destination_kind()
            .and_then(|kind| self.by_kind.get(&kind))
            .ok_or_else(|| PrepareError::Unsupported(destination.kind.clone()))
            .and_then(|provider| provider.prepare(destination));
        prepared.unwrap_or_else(|error| {
            tracing::debug!(
                destination_id = %destination.id,
                error = %error,
                "destination cannot be delivered to"
            );
            Arc::new(Undeliverable {
                destination_id: destination.id.clone(),
                outcome: error.outcome(),
                reason: error.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(kind: &str) -> Destination {
        Destination::sample("t1", "d1", kind)
    }

    fn event() -> Event {
        Event {
            matched_destination_ids: vec!["d1".into()],
            ..Event::sample("evt_1", "t1", "user.created")
        }
    }

    struct Fixed(Result<DeliveryOutcome, &'static str>);

    #[derive(Debug, thiserror::Error)]
    #[error("bad config")]
    struct BadConfig;

    impl Provider for Fixed {
        fn prepare(&self, _destination: &Destination) -> Result<Arc<dyn Target>, PrepareError> {
            match &self.0 {
                Ok(outcome) => Ok(Arc::new(Always(outcome.clone()))),
                Err(_) => Err(PrepareError::InvalidConfig(Box::new(BadConfig))),
            }
        }
    }

    struct Always(DeliveryOutcome);

    impl Target for Always {
        fn deliver<'a>(&'a self, _event: &'a Event, _now_nanos: i64) -> DeliveryFuture<'a> {
            Box::pin(std::future::ready(self.0.clone()))
        }
    }

    fn ok() -> DeliveryOutcome {
        DeliveryOutcome {
            success: true,
            code: "200".into(),
            response_data: None,
        }
    }

    #[tokio::test]
    async fn a_destination_goes_to_the_provider_of_its_kind() {
        let providers = Providers::new()
            .with(DestinationKind::Webhook, Arc::new(Fixed(Ok(ok()))))
            .with(DestinationKind::Kafka, Arc::new(Fixed(Err("bad"))));
        let target = providers.prepare(&destination("webhook"));
        assert_eq!(target.deliver(&event(), 0).await, ok());
        let target = providers.prepare(&destination("kafka"));
        assert_eq!(
            target.deliver(&event(), 0).await,
            DeliveryOutcome::unformattable()
        );
    }

    #[tokio::test]
    async fn types_without_a_provider_fail_with_err() {
        let providers = Providers::new().with(DestinationKind::Webhook, Arc::new(Fixed(Ok(ok()))));
        for kind in ["aws_sqs", "something_else"] {
            let outcome = providers
                .prepare(&destination(kind))
                .deliver(&event(), 0)
                .await;
            assert_eq!(
                outcome,
                DeliveryOutcome {
                    success: false,
                    code: "ERR".into(),
                    response_data: Some(json!({
                        "error": format!("delivery to {kind} destinations is not supported by this server")
                    })),
                }
            );
        }
    }
}
