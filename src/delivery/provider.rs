//! Chooses the provider for a destination's type. Webhooks are delivered; the other upstream
//! types are accepted by the API but not yet delivered, and their attempts fail with `ERR`.

use serde_json::json;

use super::webhook::{DeliveryOutcome, WebhookSender};
use crate::model::destination::Destination;
use crate::model::event::Event;

pub struct Providers {
    pub webhook: WebhookSender,
}

impl Providers {
    pub async fn deliver(
        &self,
        event: &Event,
        destination: &Destination,
        now_nanos: i64,
    ) -> DeliveryOutcome {
        match destination.kind.as_str() {
            "webhook" => self.webhook.deliver(event, destination, now_nanos).await,
            other => DeliveryOutcome {
                success: false,
                code: "ERR".into(),
                response_data: Some(json!({
                    "error": format!("delivery to {other} destinations is not supported by this server")
                })),
            },
        }
    }
}
