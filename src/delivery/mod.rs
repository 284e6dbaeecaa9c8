//! Delivery: the dispatcher that turns due queue rows into attempts, the providers that send
//! them (webhook over a pooled hyper + rustls client), and the outcome bookkeeping.

mod dispatcher;
mod http_client;
mod provider;
mod webhook;

pub use dispatcher::{Dispatcher, DispatcherSettings};
pub use provider::Providers;
pub use webhook::{WebhookConfigError, WebhookSender};
