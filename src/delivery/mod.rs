//! Delivery: the dispatcher that turns due queue rows into attempts, the providers that send
//! them (one per destination type behind the [`Provider`] trait; webhook over a pooled hyper +
//! rustls client), the cache of destinations prepared for delivery, and the outcome
//! bookkeeping.

mod dispatcher;
mod http_client;
mod provider;
mod target_cache;
mod webhook;

pub use dispatcher::{Dispatcher, DispatcherSettings};
pub use http_client::HttpClient;
pub use provider::{
    DeliveryFuture, DeliveryOutcome, PrepareError, Provider, Providers, Target, NOT_DELIVERED_CODE,
    UNFORMATTABLE_MESSAGE,
};
pub use webhook::{
    BuildError, DestinationError, WebhookConfigError, WebhookProvider, WebhookTarget,
};
