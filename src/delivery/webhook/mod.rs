//! The webhook provider (default and Standard Webhooks modes). The server's webhook settings
//! are checked once at start ([`settings`]); each destination is parsed once into a
//! [`WebhookTarget`] ([`destination`]); a delivery builds and signs one request
//! ([`request`]), sends it and classifies the outcome ([`send`]).

mod destination;
mod request;
mod send;
mod settings;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

pub use destination::DestinationError;
pub use request::BuildError;
pub use settings::{content_template, header_template, WebhookConfigError};

use super::connect_guard::Outbound;
use super::provider::{DeliveryFuture, DeliveryOutcome, PrepareError, Provider, Target};
use crate::config::WebhookSettings;
use crate::model::destination::Destination;
use crate::model::event::Event;
use destination::WebhookDestination;
use send::Sender;
use settings::RequestSettings;

/// What every webhook target shares: the request settings and the connection pool.
struct Shared {
    request: RequestSettings,
    sender: Sender,
}

/// Delivers to `webhook` destinations.
pub struct WebhookProvider {
    shared: Arc<Shared>,
}

impl WebhookProvider {
    /// Checks the webhook settings (see [`WebhookConfigError`]) and builds the client, whose
    /// connections `outbound` governs.
    pub fn new(
        settings: &WebhookSettings,
        user_agent: &str,
        timeout: Duration,
        max_idle_per_host: usize,
        outbound: Outbound,
    ) -> Result<WebhookProvider, WebhookConfigError> {
        let request = RequestSettings::new(settings, user_agent)?;
        let sender = Sender::new(
            max_idle_per_host,
            timeout,
            settings.max_response_body_bytes,
            outbound,
        )?;
        Ok(WebhookProvider {
            shared: Arc::new(Shared { request, sender }),
        })
    }

    /// The destination parsed into a target.
    pub fn prepare_webhook(
        &self,
        destination: &Destination,
    ) -> Result<WebhookTarget, DestinationError> {
        Ok(WebhookTarget {
            shared: self.shared.clone(),
            destination: WebhookDestination::parse(destination)?,
        })
    }
}

impl Provider for WebhookProvider {
    fn prepare(&self, destination: &Destination) -> Result<Arc<dyn Target>, PrepareError> {
        match self.prepare_webhook(destination) {
            Ok(target) => Ok(Arc::new(target)),
            Err(error) => Err(PrepareError::InvalidConfig(Box::new(error))),
        }
    }
}

/// A webhook destination ready to receive events.
pub struct WebhookTarget {
    shared: Arc<Shared>,
    destination: WebhookDestination,
}

impl WebhookTarget {
    /// The request a delivery at `now_nanos` sends (pure).
    pub fn build_request(
        &self,
        event: &Event,
        now_nanos: i64,
    ) -> Result<Request<Full<Bytes>>, BuildError> {
        request::build_request(&self.shared.request, &self.destination, event, now_nanos)
    }

    /// Builds, sends and classifies one delivery.
    pub async fn send(&self, event: &Event, now_nanos: i64) -> DeliveryOutcome {
        match self.build_request(event, now_nanos) {
            Ok(request) => self.shared.sender.send(request).await,
            Err(error) => {
                tracing::debug!(
                    event_id = %event.id,
                    destination_id = %self.destination.id,
                    %error,
                    "webhook request could not be built"
                );
                DeliveryOutcome::unformattable()
            }
        }
    }
}

impl Target for WebhookTarget {
    fn deliver<'a>(&'a self, event: &'a Event, now_nanos: i64) -> DeliveryFuture<'a> {
        Box::pin(self.send(event, now_nanos))
    }
}
