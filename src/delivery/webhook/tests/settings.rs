//! The server's webhook settings: bad templates and header names are refused, naming the
//! setting.

use super::*;
use crate::delivery::webhook::WebhookConfigError;

#[test]
fn bad_settings_are_rejected_naming_the_setting() {
    let mut bad = settings(WebhookMode::Default);
    bad.signature_header_template = "v0={{.Signatures | join".into();
    let err = WebhookProvider::new(&bad, "ua", Duration::from_secs(1), 1, Outbound::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE: "),
        "{err}"
    );
    let mut bad = settings(WebhookMode::Default);
    bad.signature_content_template = "{{.Signatures}}".into();
    let err = WebhookProvider::new(&bad, "ua", Duration::from_secs(1), 1, Outbound::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE: "),
        "{err}"
    );
    let mut dup = settings(WebhookMode::Default);
    dup.event_id_header = HeaderName::Custom("X-Outpost-Topic".into());
    let err = WebhookProvider::new(&dup, "ua", Duration::from_secs(1), 1, Outbound::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, WebhookConfigError::DuplicateHeader { ref name, .. } if name == "x-outpost-topic"),
        "{err}"
    );
    // An omitted header never collides.
    dup.topic_header = HeaderName::Omitted;
    assert!(
        WebhookProvider::new(&dup, "ua", Duration::from_secs(1), 1, Outbound::default()).is_ok()
    );
    let mut prefix = settings(WebhookMode::Default);
    prefix.header_prefix = "bad prefix ".into();
    let err = WebhookProvider::new(
        &prefix,
        "ua",
        Duration::from_secs(1),
        1,
        Outbound::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.starts_with("DESTINATIONS_WEBHOOK_HEADER_PREFIX: "),
        "{err}"
    );
}
