//! Behaviour tests of the public registry interface: listing, per-type validation messages,
//! the webhook credential lifecycle, credential display and targets.

use super::*;

/// 2024-06-01T08:23:36Z
const NOW: i64 = 1_717_230_216_000;
const NOW_PLUS_24H: &str = "2024-06-02T08:23:36Z";
const GENERATED: &str = "whsec_Z2VuZXJhdGVk";

fn map(pairs: &[(&str, &str)]) -> StrMap {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn registry() -> Registry {
    Registry::new(WebhookMode::Default).expect("embedded metadata loads")
}

fn standard_registry() -> Registry {
    Registry::new(WebhookMode::Standard).expect("embedded metadata loads")
}

fn generate() -> String {
    GENERATED.to_string()
}

fn run(
    registry: &Registry,
    ty: &str,
    role: Role,
    existing: Option<&Draft>,
    revalidate: bool,
    config: StrMap,
    credentials: StrMap,
) -> Result<Draft, Vec<String>> {
    let mut draft = Draft {
        config,
        credentials,
    };
    let ctx = PrepareContext {
        role,
        existing,
        revalidate,
        now_unix_ms: NOW,
        generate_secret: &generate,
    };
    match registry.prepare(ty, &mut draft, &ctx) {
        Ok(()) => Ok(draft),
        Err(PrepareError::Validation(messages)) => Err(messages),
    }
}

fn create(
    registry: &Registry,
    ty: &str,
    role: Role,
    config: StrMap,
    credentials: StrMap,
) -> Result<Draft, Vec<String>> {
    run(registry, ty, role, None, true, config, credentials)
}

/// An update whose draft is the stored draft with `credentials` merged over it.
fn update_credentials(
    registry: &Registry,
    ty: &str,
    role: Role,
    existing: &Draft,
    credentials: &[(&str, &str)],
) -> Result<Draft, Vec<String>> {
    let mut merged = existing.credentials.clone();
    merged.extend(map(credentials));
    run(
        registry,
        ty,
        role,
        Some(existing),
        true,
        existing.config.clone(),
        merged,
    )
}

fn webhook_config() -> StrMap {
    map(&[("url", "https://example.com/hook")])
}

fn stored_webhook(credentials: &[(&str, &str)]) -> Draft {
    Draft {
        config: webhook_config(),
        credentials: map(credentials),
    }
}

// ----- registry listing -----

#[test]
fn lists_types_in_registration_order() {
    let registry = registry();
    let types: Vec<&str> = registry
        .list_json()
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|entry| entry["type"].as_str())
        .collect();
    assert_eq!(
        types,
        [
            "webhook",
            "hookdeck",
            "aws_sqs",
            "aws_kinesis",
            "aws_s3",
            "gcp_pubsub",
            "azure_servicebus",
            "rabbitmq",
            "kafka"
        ]
    );
    for entry in registry.list_json().as_array().expect("array") {
        for key in ["label", "description", "icon", "instructions"] {
            assert!(
                entry[key].as_str().is_some_and(|text| !text.is_empty()),
                "{key}"
            );
        }
        assert!(entry["config_fields"].is_array());
        assert!(entry["credential_fields"].is_array());
    }
}

#[test]
fn get_json_and_contains() {
    let registry = registry();
    assert!(registry.contains("kafka"));
    assert!(!registry.contains("aws_eventbridge"));
    assert!(!registry.contains("webhook_standard"));
    assert!(registry.get_json("nope").is_none());
    let hookdeck = registry.get_json("hookdeck").expect("hookdeck");
    assert_eq!(
        hookdeck["setup_link"]["href"],
        "https://dashboard.hookdeck.com/connect"
    );
    assert_eq!(hookdeck["credential_fields"][0]["key"], "token");
    let kafka = registry.get_json("kafka").expect("kafka");
    let sasl = &kafka["config_fields"][2];
    assert_eq!(sasl["type"], "select");
    assert_eq!(sasl["options"][1]["value"], "scram-sha-256");
}

#[test]
fn standard_mode_serves_standard_webhook_metadata() {
    let default_webhook = registry().get_json("webhook").cloned().expect("webhook");
    let standard = standard_registry();
    let standard_webhook = standard.get_json("webhook").expect("webhook");
    assert_eq!(standard_webhook["type"], "webhook");
    assert_ne!(
        standard_webhook["description"],
        default_webhook["description"]
    );
    assert_eq!(
        standard_webhook["config_fields"],
        default_webhook["config_fields"]
    );
}

#[test]
fn unknown_type_is_rejected() {
    let result = create(
        &registry(),
        "carrier_pigeon",
        Role::Admin,
        StrMap::new(),
        StrMap::new(),
    );
    assert_eq!(
        result,
        Err(vec!["type failed invalid_type validation".to_string()])
    );
}

// ----- webhook config -----

#[test]
fn webhook_url_rules() {
    let registry = registry();
    assert_eq!(
        create(
            &registry,
            "webhook",
            Role::Admin,
            StrMap::new(),
            StrMap::new()
        ),
        Err(vec!["config.url is required".to_string()])
    );
    assert_eq!(
        create(
            &registry,
            "webhook",
            Role::Admin,
            map(&[("url", "example.com")]),
            StrMap::new()
        ),
        Err(vec!["config.url failed pattern validation".to_string()])
    );
    let created = create(
        &registry,
        "webhook",
        Role::Admin,
        webhook_config(),
        StrMap::new(),
    )
    .expect("valid webhook");
    assert_eq!(created.config, webhook_config());
}

#[test]
fn webhook_custom_headers_rules() {
    let registry = registry();
    let with_headers = |headers: &str| {
        let mut config = webhook_config();
        config.insert("custom_headers".to_string(), headers.to_string());
        create(&registry, "webhook", Role::Admin, config, StrMap::new())
    };
    assert_eq!(
        with_headers("not json"),
        Err(vec![
            "config.custom_headers failed invalid validation".to_string()
        ])
    );
    assert_eq!(
        with_headers(r#"{"x-count":1}"#),
        Err(vec![
            "config.custom_headers failed invalid validation".to_string()
        ])
    );
    assert_eq!(
        with_headers(r#"{"Content-Type":"text/plain","X-Foo bar":"1","x-empty":"","-x":"1"}"#),
        Err(vec![
            "config.custom_headers.-x failed pattern validation".to_string(),
            "config.custom_headers.content-type is forbidden".to_string(),
            "config.custom_headers.x-foo bar failed pattern validation".to_string(),
            "config.custom_headers.x-empty is required".to_string(),
        ])
    );
    assert_eq!(
        with_headers(r#"{"HOST":"a"}"#),
        Err(vec!["config.custom_headers.host is forbidden".to_string()])
    );
    assert!(with_headers("{}").is_ok());
    let created = with_headers(r#"{"x-api-key":"k"}"#).expect("valid headers");
    assert_eq!(created.config["custom_headers"], r#"{"x-api-key":"k"}"#);
}

// ----- webhook credentials: validation -----

#[test]
fn webhook_credential_validation() {
    let registry = registry();
    let admin_create = |credentials: &[(&str, &str)]| {
        create(
            &registry,
            "webhook",
            Role::Admin,
            webhook_config(),
            map(credentials),
        )
    };
    assert_eq!(
        admin_create(&[("previous_secret", "old")]),
        Err(vec!["credentials.secret is required".to_string()])
    );
    assert_eq!(
        admin_create(&[
            ("secret", "s"),
            ("previous_secret", "old"),
            ("previous_secret_invalid_at", "tomorrow")
        ]),
        Err(vec![
            "credentials.previous_secret_invalid_at failed pattern validation".to_string()
        ])
    );
    assert_eq!(
        admin_create(&[("secret", "s"), ("previous_secret", "old")]),
        Err(vec![
            "credentials.previous_secret_invalid_at is required".to_string()
        ])
    );
    assert_eq!(
        admin_create(&[
            ("secret", "s"),
            ("previous_secret_invalid_at", NOW_PLUS_24H)
        ]),
        Err(vec!["credentials.previous_secret is required".to_string()])
    );
}

// ----- webhook credentials: lifecycle -----

#[test]
fn create_without_credentials_generates_a_secret() {
    for role in [Role::Admin, Role::Tenant] {
        let created = create(
            &registry(),
            "webhook",
            role,
            webhook_config(),
            StrMap::new(),
        )
        .expect("created");
        assert_eq!(created.credentials, map(&[("secret", GENERATED)]));
    }
}

#[test]
fn admin_create_keeps_given_secrets_and_drops_other_keys() {
    let created = create(
        &registry(),
        "webhook",
        Role::Admin,
        webhook_config(),
        map(&[
            ("secret", "mine"),
            ("previous_secret", "old"),
            ("previous_secret_invalid_at", "2030-01-01T00:00:00+01:00"),
            ("rotate_secret", "false"),
            ("extra", "x"),
        ]),
    )
    .expect("created");
    assert_eq!(
        created.credentials,
        map(&[
            ("secret", "mine"),
            ("previous_secret", "old"),
            ("previous_secret_invalid_at", "2030-01-01T00:00:00+01:00"),
        ])
    );
}

#[test]
fn tenant_create_may_not_set_secrets() {
    let registry = registry();
    let complete = map(&[
        ("secret", "mine"),
        ("previous_secret", "old"),
        ("previous_secret_invalid_at", NOW_PLUS_24H),
    ]);
    assert_eq!(
        create(
            &registry,
            "webhook",
            Role::Tenant,
            webhook_config(),
            complete
        ),
        Err(vec!["credentials.secret is forbidden".to_string()])
    );
    // Without revalidation the lifecycle rules are reached even for incomplete sets.
    for (key, value) in [
        ("previous_secret", "old"),
        ("previous_secret_invalid_at", NOW_PLUS_24H),
    ] {
        let result = run(
            &registry,
            "webhook",
            Role::Tenant,
            None,
            false,
            webhook_config(),
            map(&[(key, value)]),
        );
        assert_eq!(result, Err(vec![format!("credentials.{key} is forbidden")]));
    }
}

#[test]
fn rotate_secret_on_create_is_invalid() {
    for role in [Role::Admin, Role::Tenant] {
        let result = create(
            &registry(),
            "webhook",
            role,
            webhook_config(),
            map(&[("rotate_secret", "true")]),
        );
        assert_eq!(
            result,
            Err(vec![
                "credentials.rotate_secret failed invalid validation".to_string()
            ])
        );
    }
}

#[test]
fn rotation_moves_the_secret_to_previous() {
    let registry = registry();
    let existing = stored_webhook(&[("secret", "s1")]);
    for flag in ["true", "1", "ON", "Yes"] {
        let updated = update_credentials(
            &registry,
            "webhook",
            Role::Tenant,
            &existing,
            &[("rotate_secret", flag)],
        )
        .expect("rotated");
        assert_eq!(
            updated.credentials,
            map(&[
                ("secret", GENERATED),
                ("previous_secret", "s1"),
                ("previous_secret_invalid_at", NOW_PLUS_24H),
            ]),
            "{flag}"
        );
    }
    let not_rotated = update_credentials(
        &registry,
        "webhook",
        Role::Tenant,
        &existing,
        &[("rotate_secret", "no")],
    )
    .expect("unchanged");
    assert_eq!(not_rotated.credentials, map(&[("secret", "s1")]));
}

#[test]
fn rotation_keeps_a_requested_expiry_but_not_a_stale_stored_one() {
    let registry = registry();
    let existing = stored_webhook(&[
        ("secret", "s2"),
        ("previous_secret", "s1"),
        ("previous_secret_invalid_at", "2020-01-01T00:00:00Z"),
    ]);
    let requested = update_credentials(
        &registry,
        "webhook",
        Role::Admin,
        &existing,
        &[
            ("rotate_secret", "true"),
            ("previous_secret_invalid_at", "2024-06-01T09:00:00Z"),
        ],
    )
    .expect("rotated");
    assert_eq!(
        requested.credentials,
        map(&[
            ("secret", GENERATED),
            ("previous_secret", "s2"),
            ("previous_secret_invalid_at", "2024-06-01T09:00:00Z"),
        ])
    );
    let defaulted = update_credentials(
        &registry,
        "webhook",
        Role::Admin,
        &existing,
        &[("rotate_secret", "true")],
    )
    .expect("rotated");
    assert_eq!(
        defaulted.credentials["previous_secret_invalid_at"],
        NOW_PLUS_24H
    );
}

#[test]
fn rotation_needs_a_stored_secret() {
    let existing = stored_webhook(&[]);
    let result = update_credentials(
        &registry(),
        "webhook",
        Role::Admin,
        &existing,
        &[("rotate_secret", "true")],
    );
    assert_eq!(
        result,
        Err(vec!["credentials.secret is required".to_string()])
    );
}

#[test]
fn tenant_update_may_only_resend_stored_values() {
    let registry = registry();
    let existing = stored_webhook(&[
        ("secret", "s2"),
        ("previous_secret", "s1"),
        ("previous_secret_invalid_at", NOW_PLUS_24H),
    ]);
    let resent = update_credentials(
        &registry,
        "webhook",
        Role::Tenant,
        &existing,
        &[("secret", "s2")],
    )
    .expect("same value is fine");
    assert_eq!(resent.credentials, existing.credentials);

    for (key, value) in [
        ("secret", "other"),
        ("previous_secret", "other"),
        ("previous_secret_invalid_at", "2030-01-01T00:00:00Z"),
    ] {
        let result = update_credentials(
            &registry,
            "webhook",
            Role::Tenant,
            &existing,
            &[(key, value)],
        );
        assert_eq!(result, Err(vec![format!("credentials.{key} is forbidden")]));
    }

    // A tenant clearing credentials (merge-patch null) keeps the stored secrets.
    let cleared = run(
        &registry,
        "webhook",
        Role::Tenant,
        Some(&existing),
        true,
        webhook_config(),
        StrMap::new(),
    )
    .expect("cleared draft");
    assert_eq!(cleared.credentials, existing.credentials);
}

#[test]
fn admin_update_previous_secret_gets_default_expiry() {
    let existing = stored_webhook(&[("secret", "s1")]);
    let updated = update_credentials(
        &registry(),
        "webhook",
        Role::Admin,
        &existing,
        &[("secret", "s2"), ("previous_secret", "s1")],
    )
    .expect("updated");
    assert_eq!(
        updated.credentials,
        map(&[
            ("secret", "s2"),
            ("previous_secret", "s1"),
            ("previous_secret_invalid_at", NOW_PLUS_24H),
        ])
    );
}

#[test]
fn update_without_revalidation_skips_webhook_checks() {
    let existing = Draft {
        config: map(&[("url", "not a url")]),
        credentials: map(&[("secret", "s1")]),
    };
    let updated = run(
        &registry(),
        "webhook",
        Role::Tenant,
        Some(&existing),
        false,
        existing.config.clone(),
        existing.credentials.clone(),
    )
    .expect("no revalidation");
    assert_eq!(updated, existing);
    let revalidated = run(
        &registry(),
        "webhook",
        Role::Tenant,
        Some(&existing),
        true,
        existing.config.clone(),
        existing.credentials.clone(),
    );
    assert_eq!(
        revalidated,
        Err(vec!["config.url failed pattern validation".to_string()])
    );
}

// ----- standard webhooks -----

#[test]
fn standard_mode_requires_whsec_secrets() {
    let registry = standard_registry();
    let admin_create = |credentials: &[(&str, &str)]| {
        create(
            &registry,
            "webhook",
            Role::Admin,
            webhook_config(),
            map(credentials),
        )
    };
    assert_eq!(
        admin_create(&[("secret", "plain")]),
        Err(vec![
            "credentials.secret failed pattern validation".to_string()
        ])
    );
    assert_eq!(
        admin_create(&[
            ("secret", "whsec_aGVsbG8="),
            ("previous_secret", "old"),
            ("previous_secret_invalid_at", NOW_PLUS_24H)
        ]),
        Err(vec![
            "credentials.previous_secret failed pattern validation".to_string()
        ])
    );
    let created = admin_create(&[("secret", "whsec_aGVsbG8=")]).expect("valid secret");
    assert_eq!(created.credentials, map(&[("secret", "whsec_aGVsbG8=")]));
    let generated = admin_create(&[]).expect("generated");
    assert_eq!(generated.credentials, map(&[("secret", GENERATED)]));

    // Default mode accepts any secret text.
    assert!(create(
        &self::registry(),
        "webhook",
        Role::Admin,
        webhook_config(),
        map(&[("secret", "plain")])
    )
    .is_ok());
}

// ----- other types: validation and preprocessing -----

#[test]
fn hookdeck_rules() {
    let registry = registry();
    // "src_123:secret" and "src_456:secret"
    let token_a = "c3JjXzEyMzpzZWNyZXQ=";
    let token_b = "c3JjXzQ1NjpzZWNyZXQ=";
    assert_eq!(
        create(
            &registry,
            "hookdeck",
            Role::Tenant,
            StrMap::new(),
            StrMap::new()
        ),
        Err(vec!["credentials.token is required".to_string()])
    );
    assert_eq!(
        create(
            &registry,
            "hookdeck",
            Role::Tenant,
            StrMap::new(),
            map(&[("token", "bm9jb2xvbg==")])
        ),
        Err(vec![
            "credentials.token failed invalid_token_format validation".to_string()
        ])
    );
    let created = create(
        &registry,
        "hookdeck",
        Role::Tenant,
        StrMap::new(),
        map(&[("token", token_a)]),
    )
    .expect("created");
    assert_eq!(created.config, map(&[("source_id", "src_123")]));

    let existing = Draft {
        config: map(&[("source_id", "src_123"), ("source_name", "Orders")]),
        credentials: map(&[("token", token_a)]),
    };
    let same = update_credentials(&registry, "hookdeck", Role::Tenant, &existing, &[])
        .expect("same token");
    assert_eq!(same.config, existing.config);
    let changed = update_credentials(
        &registry,
        "hookdeck",
        Role::Tenant,
        &existing,
        &[("token", token_b)],
    )
    .expect("new token");
    assert_eq!(changed.config, map(&[("source_id", "src_456")]));
    let cleared = run(
        &registry,
        "hookdeck",
        Role::Tenant,
        Some(&existing),
        true,
        existing.config.clone(),
        StrMap::new(),
    );
    assert_eq!(
        cleared,
        Err(vec![
            "credentials.token failed token_required validation".to_string()
        ])
    );
}

#[test]
fn aws_sqs_rules() {
    let registry = registry();
    assert_eq!(
        create(
            &registry,
            "aws_sqs",
            Role::Admin,
            StrMap::new(),
            StrMap::new()
        ),
        Err(vec![
            "config.queue_url is required".to_string(),
            "credentials.key is required".to_string(),
            "credentials.secret is required".to_string(),
        ])
    );
    let credentials = map(&[("key", "AKIA"), ("secret", "shh")]);
    let config = map(&[
        ("queue_url", "https://sqs.us-east-1.amazonaws.com/1/q"),
        ("endpoint", "localhost:4566"),
    ]);
    assert_eq!(
        create(
            &registry,
            "aws_sqs",
            Role::Admin,
            config,
            credentials.clone()
        ),
        Err(vec!["config.endpoint failed pattern validation".to_string()])
    );
    let config = map(&[("queue_url", "https://sqs.us-east-1.amazonaws.com/1/q")]);
    let created = create(
        &registry,
        "aws_sqs",
        Role::Admin,
        config.clone(),
        credentials.clone(),
    )
    .expect("valid");
    assert_eq!(
        created,
        Draft {
            config,
            credentials
        }
    );
}

#[test]
fn aws_kinesis_rules() {
    let registry = registry();
    let credentials = map(&[("key", "k"), ("secret", "s")]);
    assert_eq!(
        create(
            &registry,
            "aws_kinesis",
            Role::Admin,
            map(&[("stream_name", "my stream"), ("region", "US-EAST-1")]),
            credentials.clone()
        ),
        Err(vec![
            "config.stream_name failed pattern validation".to_string(),
            "config.region failed pattern validation".to_string(),
        ])
    );
    assert!(create(
        &registry,
        "aws_kinesis",
        Role::Admin,
        map(&[("stream_name", "events.v1"), ("region", "eu-west-1")]),
        credentials
    )
    .is_ok());
}

#[test]
fn aws_s3_rules() {
    let registry = registry();
    let credentials = map(&[("key", "k"), ("secret", "s")]);
    let with = |extra: &[(&str, &str)]| {
        let mut config = map(&[("bucket", "b"), ("region", "us-east-1")]);
        config.extend(map(extra));
        create(
            &registry,
            "aws_s3",
            Role::Admin,
            config,
            credentials.clone(),
        )
    };
    assert!(with(&[]).is_ok());
    assert!(with(&[("storage_class", "glacier_ir")]).is_ok());
    assert_eq!(
        with(&[("storage_class", "FAST")]),
        Err(vec![
            "config.storage_class failed enum validation".to_string()
        ])
    );
    assert_eq!(
        with(&[("key_template", "join('', [data.id)")]),
        Err(vec![
            "config.key_template failed pattern validation".to_string()
        ])
    );
    assert_eq!(
        with(&[("region", "mars")]),
        Err(vec!["config.region failed pattern validation".to_string()])
    );
}

#[test]
fn gcp_pubsub_rules() {
    let registry = registry();
    let config = map(&[("project_id", "p"), ("topic", "t")]);
    let with_key = |key: &str, config: StrMap| {
        create(
            &registry,
            "gcp_pubsub",
            Role::Admin,
            config,
            map(&[("service_account_json", key)]),
        )
    };
    assert_eq!(
        with_key("not json", config.clone()),
        Err(vec![
            "credentials.service_account_json failed format validation".to_string()
        ])
    );
    assert_eq!(
        with_key("[1]", config.clone()),
        Err(vec![
            "credentials.service_account_json failed format validation".to_string()
        ])
    );
    assert_eq!(
        with_key(r#"{"project_id":"p"}"#, config.clone()),
        Err(vec![
            "credentials.service_account_json failed missing_type validation".to_string()
        ])
    );
    assert!(with_key(r#"{"type":"service_account"}"#, config.clone()).is_ok());
    let mut emulator = config;
    emulator.insert("endpoint".to_string(), "localhost:8085".to_string());
    assert!(with_key("anything", emulator).is_ok());
}

#[test]
fn azure_servicebus_rules() {
    let registry = registry();
    assert_eq!(
        create(
            &registry,
            "azure_servicebus",
            Role::Admin,
            map(&[("name", "-orders")]),
            StrMap::new()
        ),
        Err(vec![
            "config.name failed pattern validation".to_string(),
            "credentials.connection_string is required".to_string(),
        ])
    );
    assert!(create(
        &registry,
        "azure_servicebus",
        Role::Admin,
        map(&[("name", "orders.v1")]),
        map(&[(
            "connection_string",
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=k"
        )])
    )
    .is_ok());
}

#[test]
fn rabbitmq_rules() {
    let registry = registry();
    let credentials = map(&[("username", "guest"), ("password", "guest")]);
    let with = |config: &[(&str, &str)]| {
        create(
            &registry,
            "rabbitmq",
            Role::Admin,
            map(config),
            credentials.clone(),
        )
    };
    assert_eq!(
        with(&[("server_url", "amqp://localhost:5672")]),
        Err(vec![
            "config.server_url failed pattern validation".to_string()
        ])
    );
    assert_eq!(
        with(&[("server_url", "localhost:5672"), ("tls", "yes")]),
        Err(vec!["config.tls failed invalid validation".to_string()])
    );
    assert_eq!(
        with(&[("server_url", "localhost:5672"), ("tls", "")]),
        Err(vec!["config.tls failed invalid validation".to_string()])
    );
    let plain = with(&[("server_url", "localhost:5672")]).expect("valid");
    assert_eq!(plain.config["tls"], "false");
    let secure = with(&[("server_url", "localhost:5671"), ("tls", "on")]).expect("valid");
    assert_eq!(secure.config["tls"], "true");
}

#[test]
fn kafka_rules() {
    let registry = registry();
    let credentials = map(&[("username", "u"), ("password", "p")]);
    let with = |config: &[(&str, &str)]| {
        create(
            &registry,
            "kafka",
            Role::Admin,
            map(config),
            credentials.clone(),
        )
    };
    assert_eq!(
        with(&[("brokers", "b:9092"), ("topic", "t")]),
        Err(vec!["config.sasl_mechanism is required".to_string()])
    );
    assert_eq!(
        with(&[
            ("brokers", "b:9092"),
            ("topic", "t"),
            ("sasl_mechanism", "gssapi")
        ]),
        Err(vec![
            "config.sasl_mechanism failed invalid validation".to_string()
        ])
    );
    assert_eq!(
        with(&[
            ("brokers", "b:9092"),
            ("topic", "t"),
            ("sasl_mechanism", "plain"),
            ("tls", "maybe")
        ]),
        Err(vec!["config.tls failed invalid validation".to_string()])
    );
    let created = with(&[
        ("brokers", " a:9092 , b:9092 "),
        ("topic", "t"),
        ("sasl_mechanism", "scram-sha-512"),
        ("tls", ""),
    ])
    .expect("valid");
    assert_eq!(created.config["brokers"], "a:9092,b:9092");
    assert_eq!(created.config["tls"], "false");
    let tls_on = with(&[
        ("brokers", "a:9092"),
        ("topic", "t"),
        ("sasl_mechanism", "plain"),
        ("tls", "on"),
    ])
    .expect("valid");
    assert_eq!(tls_on.config["tls"], "true");
}

#[test]
fn kafka_is_rechecked_even_without_revalidation() {
    let existing = Draft {
        config: map(&[
            ("brokers", "a:9092"),
            ("topic", "t"),
            ("sasl_mechanism", "gssapi"),
        ]),
        credentials: map(&[("username", "u"), ("password", "p")]),
    };
    let result = run(
        &registry(),
        "kafka",
        Role::Admin,
        Some(&existing),
        false,
        existing.config.clone(),
        existing.credentials.clone(),
    );
    assert_eq!(
        result,
        Err(vec![
            "config.sasl_mechanism failed invalid validation".to_string()
        ])
    );
}

// ----- display -----

#[test]
fn webhook_credentials_are_shown_in_clear_until_expiry() {
    let registry = registry();
    let credentials = map(&[
        ("secret", "s2"),
        ("previous_secret", "s1"),
        ("previous_secret_invalid_at", NOW_PLUS_24H),
    ]);
    assert_eq!(
        registry.display_credentials("webhook", &credentials, NOW),
        credentials
    );
    let later = NOW + 24 * 60 * 60 * 1_000 + 1;
    assert_eq!(
        registry.display_credentials("webhook", &credentials, later),
        map(&[("secret", "s2")])
    );
    assert_eq!(
        standard_registry().display_credentials("webhook", &credentials, later),
        map(&[("secret", "s2")])
    );
}

#[test]
fn sensitive_credentials_are_masked() {
    let registry = registry();
    let shown = registry.display_credentials(
        "aws_sqs",
        &map(&[
            ("key", "AKIAIOSFODNN7EXAMPLE"),
            ("secret", "short"),
            ("note", "kept"),
        ]),
        NOW,
    );
    assert_eq!(
        shown,
        map(&[
            ("key", "AKIA****************"),
            ("secret", "****"),
            ("note", "kept")
        ])
    );
    let rabbit = registry.display_credentials(
        "rabbitmq",
        &map(&[("username", "guest"), ("password", "correct-horse")]),
        NOW,
    );
    assert_eq!(
        rabbit,
        map(&[("username", "guest"), ("password", "corr*********")])
    );
    let unknown = map(&[("password", "p")]);
    assert_eq!(registry.display_credentials("nope", &unknown, NOW), unknown);
}

// ----- targets -----

#[test]
fn targets() {
    let registry = registry();
    let target = |ty: &str, config: &[(&str, &str)]| registry.target(ty, &map(config));
    let some = |url: &str| Some(url.to_string());

    assert_eq!(
        target("webhook", &[("url", "https://example.com/hook")]),
        ("https://example.com/hook".to_string(), None)
    );
    assert_eq!(
        target("aws_sqs", &[("queue_url", "http://localhost:4566/000/q")]),
        ("http://localhost:4566/000/q".to_string(), None)
    );
    assert_eq!(
        target("aws_sqs", &[("queue_url", "https://sqs.eu-west-1.amazonaws.com/1/q")]).1,
        some("https://eu-west-1.console.aws.amazon.com/sqs/v3/home?region=eu-west-1#/queues/https%3A%2F%2Fsqs.eu-west-1.amazonaws.com%2F1%2Fq")
    );
    assert_eq!(
        target(
            "aws_kinesis",
            &[("stream_name", "events"), ("region", "eu-west-1")]
        ),
        ("events in eu-west-1".to_string(), None)
    );
    assert_eq!(
        target("aws_s3", &[("bucket", "b"), ("region", "us-east-1")]),
        (
            "b in us-east-1".to_string(),
            some("https://s3.console.aws.amazon.com/s3/buckets/b?region=us-east-1")
        )
    );
    assert_eq!(
        target("gcp_pubsub", &[("project_id", "p"), ("topic", "t")]),
        (
            "p/t".to_string(),
            some("https://console.cloud.google.com/cloudpubsub/topic/detail/t?project=p")
        )
    );
    assert_eq!(
        target(
            "kafka",
            &[("brokers", " b1:9092, b2:9092"), ("topic", "events")]
        ),
        ("b1:9092 / events".to_string(), None)
    );
    assert_eq!(
        target("kafka", &[("topic", "events")]),
        ("events".to_string(), None)
    );
    assert_eq!(target("nope", &[]), (String::new(), None));
}

#[test]
fn hookdeck_targets() {
    let registry = registry();
    let no_credentials = StrMap::new();
    let url = Some("https://dashboard.hookdeck.com/sources/src_123".to_string());
    assert_eq!(
        registry.target(
            "hookdeck",
            &map(&[("source_id", "src_123"), ("source_name", "Orders")])
        ),
        ("Orders".to_string(), url.clone())
    );
    assert_eq!(
        registry.target("hookdeck", &map(&[("source_id", "src_123")])),
        ("Hookdeck source ID: src_123".to_string(), url.clone())
    );
    assert_eq!(
        registry.target_with(
            "hookdeck",
            &StrMap::new(),
            &map(&[("token", "c3JjXzEyMzpzZWNyZXQ=")]),
            &[]
        ),
        ("Hookdeck source ID: src_123".to_string(), url)
    );
    assert_eq!(
        registry.target_with("hookdeck", &StrMap::new(), &map(&[("token", "%%")]), &[]),
        ("Hookdeck (invalid token)".to_string(), None)
    );
    assert_eq!(
        registry.target_with("hookdeck", &StrMap::new(), &no_credentials, &[]),
        ("Hookdeck (no token)".to_string(), None)
    );
}

#[test]
fn targets_that_need_credentials_or_topics() {
    let registry = registry();
    let topics = vec!["order.created".to_string(), "order.paid".to_string()];
    let rabbit = map(&[("exchange", "events")]);
    assert_eq!(
        registry.target_with("rabbitmq", &rabbit, &StrMap::new(), &topics),
        ("events -> order.created, order.paid".to_string(), None)
    );
    assert_eq!(
        registry
            .target_with("rabbitmq", &rabbit, &StrMap::new(), &["*".to_string()])
            .0,
        "events -> *"
    );
    assert_eq!(registry.target("rabbitmq", &rabbit).0, "events -> ");

    let azure = map(&[("name", "orders")]);
    let connection = map(&[(
        "connection_string",
        "Endpoint=sb://my-ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=k",
    )]);
    assert_eq!(
        registry.target_with("azure_servicebus", &azure, &connection, &[]),
        ("my-ns/orders".to_string(), None)
    );
    assert_eq!(
        registry.target("azure_servicebus", &azure),
        ("orders".to_string(), None)
    );
    assert_eq!(
        registry.target("azure_servicebus", &StrMap::new()),
        (String::new(), None)
    );
}
