//! Delivery: the dispatcher that turns due queue rows into attempts, the providers that send
//! them (one per destination type behind the [`Provider`] trait; webhook over a pooled hyper +
//! rustls client, whose connections pass the outbound address policy), the cache of destinations prepared for delivery, and the outcome
//! bookkeeping.

mod address_policy;
mod connect_guard;
mod dispatcher;
mod http_client;
mod provider;
mod target_cache;
mod webhook;

pub use address_policy::{
    AddressDenied, AddressPolicy, Cidr, CidrError, ALLOW_SETTING, DEFAULT_DENY_CIDRS, DENY_SETTING,
};
pub use connect_guard::{Outbound, OverrideError, ResolveOverrides};
pub use dispatcher::{Dispatcher, DispatcherSettings};
pub use http_client::HttpClient;
pub use provider::{
    DeliveryFuture, DeliveryOutcome, PrepareError, Provider, Providers, Target, NOT_DELIVERED_CODE,
    UNFORMATTABLE_MESSAGE,
};
pub use webhook::{
    content_template, header_template, BuildError, DestinationError, WebhookConfigError,
    WebhookProvider, WebhookTarget,
};
