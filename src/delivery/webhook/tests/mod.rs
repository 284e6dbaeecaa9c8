//! Tests of the webhook provider: shared fixtures here; the settings checks, request building
//! and signing, and sending and classification each in their own file.

mod request;
mod send;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use ring::hmac;

use super::{BuildError, DestinationError, WebhookProvider};
use crate::config::{HeaderName, WebhookSettings};
use crate::delivery::connect_guard::Outbound;
use crate::delivery::provider::{DeliveryOutcome, Providers};
use crate::model::destination::Destination;
use crate::model::destination_type::{DestinationKind, WebhookMode};
use crate::model::event::Event;
use crate::model::signing::{SignatureAlgorithm, SignatureEncoding};
use crate::model::StrMap;

/// 2024-06-01T08:23:36.5Z
const NOW: i64 = 1_717_230_216_500_000_000;
const NOW_SECONDS: i64 = 1_717_230_216;
const NANOS_PER_SECOND: i64 = 1_000_000_000;
const BODY: &str = r#"{"id":1,"msg":"hi"}"#;
/// `whsec_` + base64 of bytes 0..32.
const STANDARD_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const STANDARD_PREVIOUS: &str = "whsec_YWJjZA==";

/// A webhook provider used the way the dispatcher uses it: each call prepares the destination
/// (so a test may change the destination between calls) and delivers through the target.
struct TestSender {
    webhook: Arc<WebhookProvider>,
    providers: Providers,
}

impl TestSender {
    fn new(provider: WebhookProvider) -> TestSender {
        let webhook = Arc::new(provider);
        let providers = Providers::new().with(DestinationKind::Webhook, webhook.clone());
        TestSender { webhook, providers }
    }

    /// The request a delivery at `now_nanos` would send; the destination must be valid.
    fn build_request(
        &self,
        event: &Event,
        destination: &Destination,
        now_nanos: i64,
    ) -> Result<Request<Full<Bytes>>, BuildError> {
        self.webhook
            .prepare_webhook(destination)
            .expect("a valid webhook destination")
            .build_request(event, now_nanos)
    }

    async fn deliver(
        &self,
        event: &Event,
        destination: &Destination,
        now_nanos: i64,
    ) -> DeliveryOutcome {
        self.providers
            .prepare(destination)
            .deliver(event, now_nanos)
            .await
    }
}

fn settings(mode: WebhookMode) -> WebhookSettings {
    WebhookSettings {
        mode,
        header_prefix: match mode {
            WebhookMode::Default => "x-outpost-".into(),
            WebhookMode::Standard => "webhook-".into(),
        },
        event_id_header: HeaderName::Prefixed,
        signature_header: HeaderName::Prefixed,
        timestamp_header: HeaderName::Prefixed,
        topic_header: HeaderName::Prefixed,
        signature_content_template: "{{.Body}}".into(),
        signature_header_template: r#"v0={{.Signatures | join ","}}"#.into(),
        signature_encoding: SignatureEncoding::Hex,
        signature_algorithm: SignatureAlgorithm::HmacSha256,
        signing_secret_template: "whsec_{{.RandomHex}}".into(),
        max_response_body_bytes: 131_072,
        include_millisecond_timestamp: false,
    }
}

fn sender(settings: &WebhookSettings) -> TestSender {
    TestSender::new(
        WebhookProvider::new(
            settings,
            "Outpost/test",
            Duration::from_secs(5),
            2,
            Outbound::default(),
        )
        .unwrap(),
    )
}

fn event() -> Event {
    Event {
        matched_destination_ids: vec!["d1".into()],
        time_nanos: NOW,
        metadata: [("shared".to_string(), "from-event".to_string())]
            .into_iter()
            .collect(),
        data: BODY.into(),
        ..Event::sample("evt_1", "t1", "user.created")
    }
}

fn destination(url: &str, secret: &str) -> Destination {
    let mut credentials = StrMap::new();
    if !secret.is_empty() {
        credentials.insert("secret".into(), secret.into());
    }
    Destination {
        config: [
            ("url".to_string(), url.to_string()),
            (
                "custom_headers".to_string(),
                r#"{"X-Custom":"c1"}"#.to_string(),
            ),
        ]
        .into_iter()
        .collect(),
        credentials,
        delivery_metadata: [
            ("shared".to_string(), "from-destination".to_string()),
            ("source".to_string(), "outpost".to_string()),
        ]
        .into_iter()
        .collect(),
        ..Destination::sample("t1", "d1", "webhook")
    }
}

fn rotate(destination: &mut Destination, previous: &str, invalid_at: &str) {
    destination
        .credentials
        .insert("previous_secret".into(), previous.into());
    destination
        .credentials
        .insert("previous_secret_invalid_at".into(), invalid_at.into());
}

fn header_list(request: &Request<Full<Bytes>>) -> Vec<(String, String)> {
    request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect()
}

fn header<'a>(request: &'a Request<Full<Bytes>>, name: &str) -> Option<&'a str> {
    request.headers().get(name).map(|v| v.to_str().unwrap())
}

fn hmac_hex(key: &[u8], content: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), content);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn standard_sig(secret: &str, content: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), content.as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}
