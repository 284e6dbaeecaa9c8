//! The embedded destination-type metadata files (`data/destination-types/<dir>/…`): their
//! serde shape, loading and sanity checks, and the JSON document served by
//! `GET /destination-types`.

use serde::{Deserialize, Serialize};

use super::pattern::PatternCheck;
use super::RegistryError;

/// One field of a destination type's form, shaped like the API's `DestinationSchemaField`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldSchema {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    pub label: String,
    pub description: String,
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minlength: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxlength: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<FieldOption>>,
}

impl FieldSchema {
    pub fn is_sensitive(&self) -> bool {
        self.sensitive.unwrap_or(false)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FieldKind {
    Text,
    Checkbox,
    KeyValueMap,
    Select,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldOption {
    pub label: String,
    pub value: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetupLink {
    pub href: String,
    pub cta: String,
}

/// Contents of one `metadata.json`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TypeMetadata {
    #[serde(rename = "type")]
    pub type_name: String,
    pub label: String,
    pub description: String,
    #[serde(default)]
    pub setup_link: Option<SetupLink>,
    pub config_fields: Vec<FieldSchema>,
    pub credential_fields: Vec<FieldSchema>,
}

/// The three files of one metadata directory, as embedded in the binary.
pub(super) struct EmbeddedType {
    pub dir: &'static str,
    pub metadata: &'static str,
    pub instructions: &'static str,
    pub icon: &'static str,
}

macro_rules! embedded {
    ($dir:literal) => {
        EmbeddedType {
            dir: $dir,
            metadata: include_str!(concat!(
                "../../../data/destination-types/",
                $dir,
                "/metadata.json"
            )),
            instructions: include_str!(concat!(
                "../../../data/destination-types/",
                $dir,
                "/instructions.md"
            )),
            icon: include_str!(concat!(
                "../../../data/destination-types/",
                $dir,
                "/icon.svg"
            )),
        }
    };
}

pub(super) const WEBHOOK: EmbeddedType = embedded!("webhook");
pub(super) const WEBHOOK_STANDARD: EmbeddedType = embedded!("webhook_standard");
pub(super) const HOOKDECK: EmbeddedType = embedded!("hookdeck");
pub(super) const AWS_SQS: EmbeddedType = embedded!("aws_sqs");
pub(super) const AWS_KINESIS: EmbeddedType = embedded!("aws_kinesis");
pub(super) const AWS_S3: EmbeddedType = embedded!("aws_s3");
pub(super) const GCP_PUBSUB: EmbeddedType = embedded!("gcp_pubsub");
pub(super) const AZURE_SERVICEBUS: EmbeddedType = embedded!("azure_servicebus");
pub(super) const RABBITMQ: EmbeddedType = embedded!("rabbitmq");
pub(super) const KAFKA: EmbeddedType = embedded!("kafka");

/// A parsed and checked destination type: its metadata plus the API document describing it.
pub(super) struct LoadedType {
    pub metadata: TypeMetadata,
    pub document: serde_json::Value,
}

/// The API document of one type (`DestinationTypeSchema`).
#[derive(Serialize)]
struct TypeDocument<'a> {
    #[serde(rename = "type")]
    type_name: &'a str,
    label: &'a str,
    description: &'a str,
    icon: &'a str,
    instructions: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    setup_link: Option<&'a SetupLink>,
    config_fields: &'a [FieldSchema],
    credential_fields: &'a [FieldSchema],
}

/// Parses one embedded type and checks that it is usable: the declared type matches, every
/// `pattern` has a hand-written matcher, and select fields have options.
pub(super) fn load(
    embedded: &EmbeddedType,
    expected_type: &str,
) -> Result<LoadedType, RegistryError> {
    let metadata: TypeMetadata =
        serde_json::from_str(embedded.metadata).map_err(|source| RegistryError::Metadata {
            dir: embedded.dir,
            source,
        })?;
    if metadata.type_name != expected_type {
        return Err(RegistryError::TypeMismatch {
            dir: embedded.dir,
            expected: expected_type.to_string(),
            found: metadata.type_name,
        });
    }
    for field in metadata
        .config_fields
        .iter()
        .chain(metadata.credential_fields.iter())
    {
        check_field(embedded.dir, field)?;
    }

    let document = serde_json::to_value(TypeDocument {
        type_name: &metadata.type_name,
        label: &metadata.label,
        description: &metadata.description,
        icon: embedded.icon.trim_end(),
        instructions: embedded.instructions,
        setup_link: metadata.setup_link.as_ref(),
        config_fields: &metadata.config_fields,
        credential_fields: &metadata.credential_fields,
    })
    .map_err(|source| RegistryError::Metadata {
        dir: embedded.dir,
        source,
    })?;

    Ok(LoadedType { metadata, document })
}

fn check_field(dir: &'static str, field: &FieldSchema) -> Result<(), RegistryError> {
    if let Some(pattern) = &field.pattern {
        if PatternCheck::from_pattern(pattern).is_none() {
            return Err(RegistryError::UnsupportedPattern {
                dir,
                key: field.key.clone(),
                pattern: pattern.clone(),
            });
        }
    }
    let has_options = field
        .options
        .as_ref()
        .is_some_and(|options| !options.is_empty());
    if field.kind == FieldKind::Select && !has_options {
        return Err(RegistryError::InvalidField {
            dir,
            key: field.key.clone(),
            reason: "select field without options",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [(&EmbeddedType, &str); 10] = [
        (&WEBHOOK, "webhook"),
        (&WEBHOOK_STANDARD, "webhook"),
        (&HOOKDECK, "hookdeck"),
        (&AWS_SQS, "aws_sqs"),
        (&AWS_KINESIS, "aws_kinesis"),
        (&AWS_S3, "aws_s3"),
        (&GCP_PUBSUB, "gcp_pubsub"),
        (&AZURE_SERVICEBUS, "azure_servicebus"),
        (&RABBITMQ, "rabbitmq"),
        (&KAFKA, "kafka"),
    ];

    #[test]
    fn every_embedded_type_loads() {
        for (embedded, type_name) in ALL {
            let loaded = load(embedded, type_name).expect(embedded.dir);
            assert_eq!(loaded.document["type"], type_name);
            assert!(loaded.document["icon"]
                .as_str()
                .is_some_and(|icon| icon.starts_with("<svg") && icon.ends_with("</svg>")));
            assert!(loaded.document["instructions"]
                .as_str()
                .is_some_and(|text| text.starts_with("# ")));
            assert!(!loaded.metadata.label.is_empty());
        }
    }

    #[test]
    fn document_omits_unset_field_properties() {
        let loaded = load(&AWS_SQS, "aws_sqs").expect("aws_sqs");
        let queue_url = &loaded.document["config_fields"][0];
        assert_eq!(queue_url["key"], "queue_url");
        assert_eq!(queue_url["required"], true);
        assert!(queue_url.get("sensitive").is_none());
        assert!(queue_url.get("options").is_none());
        let key = &loaded.document["credential_fields"][0];
        assert_eq!(key["sensitive"], true);
        assert!(loaded.document.get("setup_link").is_none());
    }

    #[test]
    fn rejects_wrong_type_and_unknown_pattern() {
        let wrong_type = load(&AWS_SQS, "kafka");
        assert!(matches!(
            wrong_type,
            Err(RegistryError::TypeMismatch { .. })
        ));

        let broken = EmbeddedType {
            dir: "broken",
            metadata: r#"{"type":"x","label":"X","description":"d","config_fields":[
                {"key":"a","type":"text","label":"A","description":"a","required":true,"pattern":"^a+$"}
            ],"credential_fields":[]}"#,
            instructions: "# X",
            icon: "<svg/>",
        };
        assert!(matches!(
            load(&broken, "x"),
            Err(RegistryError::UnsupportedPattern { .. })
        ));

        let not_json = EmbeddedType {
            metadata: "{",
            ..broken
        };
        assert!(matches!(
            load(&not_json, "x"),
            Err(RegistryError::Metadata { .. })
        ));
    }
}
