//! Request building and signing: headers and their order in both modes, secret rotation,
//! templates, header directives, and destinations or events that cannot be sent.

use http_body_util::BodyExt;
use hyper::Method;
use serde_json::json;

use super::*;

#[test]
fn default_mode_request_headers_in_order() {
    let sender = sender(&settings(WebhookMode::Default));
    let request = sender
        .build_request(
            &event(),
            &destination("https://example.com/hook?a=1", "whsec_abc"),
            NOW,
        )
        .unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri().to_string(), "https://example.com/hook?a=1");
    let signature = format!("v0={}", hmac_hex(b"whsec_abc", BODY.as_bytes()));
    assert_eq!(
        header_list(&request),
        owned(&[
            ("content-type", "application/json"),
            ("user-agent", "Outpost/test"),
            ("x-custom", "c1"),
            ("x-outpost-event-id", "evt_1"),
            ("x-outpost-topic", "user.created"),
            ("x-outpost-timestamp", "2024-06-01T08:23:36Z"),
            ("x-outpost-shared", "from-event"),
            ("x-outpost-source", "outpost"),
            ("x-outpost-signature", &signature),
        ])
    );
}

#[tokio::test]
async fn default_mode_body_is_event_data() {
    let sender = sender(&settings(WebhookMode::Default));
    let request = sender
        .build_request(&event(), &destination("http://example.com/", ""), NOW)
        .unwrap();
    assert!(header(&request, "x-outpost-signature").is_none());
    let body = request.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], BODY.as_bytes());
}

#[test]
fn standard_mode_request_headers_in_order() {
    let mut settings = settings(WebhookMode::Standard);
    settings.include_millisecond_timestamp = true;
    // Ignored in standard mode.
    settings.topic_header = HeaderName::Omitted;
    settings.signature_content_template = "{{.Nope}}".into();
    let sender = sender(&settings);
    let request = sender
        .build_request(
            &event(),
            &destination("https://example.com/", STANDARD_SECRET),
            NOW,
        )
        .unwrap();
    let signature = standard_sig(STANDARD_SECRET, &format!("evt_1.{NOW_SECONDS}.{BODY}"));
    assert_eq!(
        header_list(&request),
        owned(&[
            ("content-type", "application/json"),
            ("user-agent", "Outpost/test"),
            ("x-custom", "c1"),
            ("webhook-id", "evt_1"),
            ("webhook-timestamp", "1717230216"),
            ("webhook-signature", &signature),
            ("webhook-topic", "user.created"),
            ("webhook-timestamp-ms", "2024-06-01T08:23:36.5Z"),
            ("webhook-shared", "from-event"),
            ("webhook-source", "outpost"),
            ("shared", "from-event"),
        ])
    );
}

#[test]
fn default_mode_rotation_signs_with_both_secrets_until_invalid_at() {
    let sender = sender(&settings(WebhookMode::Default));
    let mut destination = destination("https://example.com/", "whsec_new");
    let current = hmac_hex(b"whsec_new", BODY.as_bytes());
    let previous = hmac_hex(b"whsec_old", BODY.as_bytes());
    rotate(&mut destination, "whsec_old", "2024-06-01T08:23:37Z");
    let request = sender.build_request(&event(), &destination, NOW).unwrap();
    assert_eq!(
        header(&request, "x-outpost-signature").unwrap(),
        format!("v0={current},{previous}")
    );
    // now == invalid_at (and later): previous no longer used.
    let at = NOW_SECONDS * NANOS_PER_SECOND + NANOS_PER_SECOND;
    let request = sender.build_request(&event(), &destination, at).unwrap();
    assert_eq!(
        header(&request, "x-outpost-signature").unwrap(),
        format!("v0={current}")
    );
}

#[test]
fn standard_mode_rotation_signs_with_both_secrets_until_invalid_at() {
    let sender = sender(&settings(WebhookMode::Standard));
    let mut destination = destination("https://example.com/", STANDARD_SECRET);
    rotate(&mut destination, STANDARD_PREVIOUS, "2024-06-02T00:00:00Z");
    let content = format!("evt_1.{NOW_SECONDS}.{BODY}");
    let request = sender.build_request(&event(), &destination, NOW).unwrap();
    assert_eq!(
        header(&request, "webhook-signature").unwrap(),
        format!(
            "{} {}",
            standard_sig(STANDARD_SECRET, &content),
            standard_sig(STANDARD_PREVIOUS, &content)
        )
    );
    rotate(&mut destination, STANDARD_PREVIOUS, "2024-06-01T08:00:00Z");
    let request = sender.build_request(&event(), &destination, NOW).unwrap();
    assert_eq!(
        header(&request, "webhook-signature").unwrap(),
        standard_sig(STANDARD_SECRET, &content)
    );
}

#[test]
fn custom_signature_templates() {
    let mut settings = settings(WebhookMode::Default);
    settings.signature_content_template = "{{.Timestamp.Unix}}.{{.Body}}".into();
    settings.signature_header_template =
        r#"t={{.Timestamp.Unix}},v0={{.Signatures | join ","}}"#.into();
    settings.signature_encoding = SignatureEncoding::Base64;
    let sender = sender(&settings);
    let mut destination = destination("https://example.com/", "whsec_new");
    rotate(&mut destination, "whsec_old", "2030-01-01T00:00:00Z");
    let request = sender.build_request(&event(), &destination, NOW).unwrap();
    let content = format!("{NOW_SECONDS}.{BODY}");
    let sig = |key: &[u8]| {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), content.as_bytes());
        STANDARD.encode(tag.as_ref())
    };
    assert_eq!(
        header(&request, "x-outpost-signature").unwrap(),
        format!(
            "t={NOW_SECONDS},v0={},{}",
            sig(b"whsec_new"),
            sig(b"whsec_old")
        )
    );
}

#[test]
fn header_directives_and_millisecond_timestamp() {
    let mut settings = settings(WebhookMode::Default);
    settings.event_id_header = HeaderName::Custom("X-Request-Id".into());
    settings.topic_header = HeaderName::Omitted;
    settings.signature_header = HeaderName::Custom("Signature".into());
    settings.include_millisecond_timestamp = true;
    let sender = sender(&settings);
    let mut destination = destination("https://example.com/", "whsec_abc");
    destination
        .delivery_metadata
        .insert("event-id".into(), "overridden".into());
    let request = sender.build_request(&event(), &destination, NOW).unwrap();
    let names: Vec<String> = header_list(&request).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "user-agent",
            "x-custom",
            "x-request-id",
            "x-outpost-timestamp",
            "x-outpost-timestamp-ms",
            "x-outpost-shared",
            "x-outpost-source",
            "signature",
        ]
    );
    assert_eq!(header(&request, "x-request-id"), Some("overridden"));
    assert_eq!(
        header(&request, "x-outpost-timestamp-ms"),
        Some("2024-06-01T08:23:36.5Z")
    );
}

#[test]
fn custom_headers_are_overridden_by_later_headers_in_place() {
    let sender = sender(&settings(WebhookMode::Default));
    let mut destination = destination("https://example.com/", "");
    destination.config.insert(
        "custom_headers".into(),
        r#"{"x-outpost-topic":"custom","X-A":"a"}"#.into(),
    );
    let request = sender.build_request(&event(), &destination, NOW).unwrap();
    let list = header_list(&request);
    assert_eq!(list[2], ("x-a".to_string(), "a".to_string()));
    assert_eq!(
        list[3],
        ("x-outpost-topic".to_string(), "user.created".to_string())
    );
}

#[tokio::test]
async fn unbuildable_requests_fail_with_err() {
    let sender = sender(&settings(WebhookMode::Default));
    let expected = DeliveryOutcome {
        success: false,
        code: "ERR".into(),
        response_data: Some(json!({"error": "could not format event for delivery"})),
    };
    for url in ["", "not a url", "ftp://example.com/", "/relative"] {
        let outcome = sender.deliver(&event(), &destination(url, ""), NOW).await;
        assert_eq!(outcome, expected, "{url}");
    }
    let mut bad_headers = destination("http://127.0.0.1:1/", "");
    bad_headers
        .config
        .insert("custom_headers".into(), r#"{"a":1}"#.into());
    assert_eq!(sender.deliver(&event(), &bad_headers, NOW).await, expected);
    let standard = self::sender(&settings(WebhookMode::Standard));
    let bad_secret = destination("http://127.0.0.1:1/", "not-whsec");
    assert_eq!(standard.deliver(&event(), &bad_secret, NOW).await, expected);
}

#[test]
fn a_prepared_destination_decides_its_signing_secrets_per_delivery() {
    let sender = sender(&settings(WebhookMode::Default));
    let mut destination = destination("https://example.com/", "whsec_new");
    rotate(&mut destination, "whsec_old", "2024-06-01T08:23:37Z");
    let target = sender.webhook.prepare_webhook(&destination).unwrap();
    let current = hmac_hex(b"whsec_new", BODY.as_bytes());
    let previous = hmac_hex(b"whsec_old", BODY.as_bytes());
    let signature = |now| {
        let request = target.build_request(&event(), now).unwrap();
        header(&request, "x-outpost-signature").unwrap().to_string()
    };
    assert_eq!(signature(NOW), format!("v0={current},{previous}"));
    let invalid_at = (NOW_SECONDS + 1) * NANOS_PER_SECOND;
    assert_eq!(
        signature(invalid_at - 1),
        format!("v0={current},{previous}")
    );
    assert_eq!(signature(invalid_at), format!("v0={current}"));
    // An unparseable expiry never lets the previous secret sign.
    rotate(&mut destination, "whsec_old", "tomorrow");
    let target = sender.webhook.prepare_webhook(&destination).unwrap();
    let request = target.build_request(&event(), NOW).unwrap();
    assert_eq!(
        header(&request, "x-outpost-signature").unwrap(),
        format!("v0={current}")
    );
}

#[test]
fn a_destination_that_cannot_be_sent_to_is_refused_when_prepared() {
    let sender = sender(&settings(WebhookMode::Default));
    let refused = |destination: &Destination| sender.webhook.prepare_webhook(destination).err();
    for url in [
        "",
        "not a url",
        "ftp://example.com/",
        "/relative",
        "http:///path",
    ] {
        assert!(
            matches!(
                refused(&destination(url, "")),
                Some(DestinationError::MissingUrl | DestinationError::InvalidUrl)
            ),
            "{url:?}"
        );
    }
    for (headers, expected) in [
        (
            r#"{"a":1}"#,
            "config.custom_headers is not a JSON object of strings",
        ),
        (
            "[]",
            "config.custom_headers is not a JSON object of strings",
        ),
        (
            r#"{"bad name":"x"}"#,
            r#"config.custom_headers: invalid header name "bad name""#,
        ),
        (
            r#"{"x-a":"line\nbreak"}"#,
            r#"config.custom_headers: invalid value for header "x-a""#,
        ),
    ] {
        let mut destination = destination("https://example.com/", "");
        destination
            .config
            .insert("custom_headers".into(), headers.into());
        let error = refused(&destination).map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(expected), "{headers}");
    }
    let mut fine = destination("https://example.com/", "");
    fine.config.insert("custom_headers".into(), "  ".into());
    assert!(refused(&fine).is_none());
}
