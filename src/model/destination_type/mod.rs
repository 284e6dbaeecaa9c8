//! Destination-type registry: the metadata of every supported destination type (embedded from
//! `data/destination-types/`), validation and preprocessing of a destination's config and
//! credentials on create/update, how credentials are shown in responses, and display targets.
//!
//! Everything here is pure: no I/O, no clocks (the caller passes `now`) and no randomness (the
//! caller passes a secret generator).

mod codec;
mod mask;
mod pattern;
mod providers;
mod schema;
mod target;
mod validate;
mod webhook;

use schema::{EmbeddedType, TypeMetadata};
use validate::{Checked, Violation};

use crate::model::StrMap;

/// Which webhook flavour is registered under the `webhook` type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    /// Outpost's own signing scheme (`DESTINATIONS_WEBHOOK_MODE=default`).
    Default,
    /// Standard Webhooks (`DESTINATIONS_WEBHOOK_MODE=standard`): `whsec_<base64>` secrets.
    Standard,
}

/// Who is making the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Authenticated with the API key.
    Admin,
    /// Authenticated with a tenant JWT.
    Tenant,
}

/// The parts of a destination the registry validates and rewrites.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    pub config: StrMap,
    pub credentials: StrMap,
}

/// Inputs of [`Registry::prepare`] besides the draft itself.
pub struct PrepareContext<'a> {
    pub role: Role,
    /// The stored destination's current config/credentials on update; `None` on create.
    pub existing: Option<&'a Draft>,
    /// True on create, and on update when config or credentials changed. Preprocessing always
    /// runs; the full provider validation only when this is set.
    pub revalidate: bool,
    pub now_unix_ms: i64,
    /// Returns a freshly generated signing secret in the format of the configured webhook mode.
    pub generate_secret: &'a dyn Fn() -> String,
}

/// Why a draft was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareError {
    /// Becomes `422 {"message":"validation error","data":[...]}` with these messages, e.g.
    /// `config.url is required` or `credentials.token failed invalid_token_format validation`.
    Validation(Vec<String>),
}

/// The embedded metadata is unusable (a build problem, never caused by requests).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("destination type metadata {dir}/metadata.json is invalid: {source}")]
    Metadata {
        dir: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("destination type metadata {dir}/metadata.json declares type {found:?}, expected {expected:?}")]
    TypeMismatch {
        dir: &'static str,
        expected: String,
        found: String,
    },
    #[error("destination type metadata {dir}: field {key:?} uses pattern {pattern:?}, which has no built-in matcher")]
    UnsupportedPattern {
        dir: &'static str,
        key: String,
        pattern: String,
    },
    #[error("destination type metadata {dir}: field {key:?} is invalid: {reason}")]
    InvalidField {
        dir: &'static str,
        key: String,
        reason: &'static str,
    },
}

/// The supported destination types. A destination stores its type as the upstream string
/// (`Destination::kind`); [`DestinationKind::parse`] turns it into this enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    Webhook,
    Hookdeck,
    AwsSqs,
    AwsKinesis,
    AwsS3,
    GcpPubsub,
    AzureServicebus,
    Rabbitmq,
    Kafka,
}

/// This module's short name for [`DestinationKind`].
use DestinationKind as Kind;

impl DestinationKind {
    /// Every type, in the order of `GET /destination-types`.
    pub const ALL: [DestinationKind; 9] = [
        Kind::Webhook,
        Kind::Hookdeck,
        Kind::AwsSqs,
        Kind::AwsKinesis,
        Kind::AwsS3,
        Kind::GcpPubsub,
        Kind::AzureServicebus,
        Kind::Rabbitmq,
        Kind::Kafka,
    ];

    /// The upstream type name (`webhook`, `aws_sqs`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Hookdeck => "hookdeck",
            Kind::AwsSqs => "aws_sqs",
            Kind::AwsKinesis => "aws_kinesis",
            Kind::AwsS3 => "aws_s3",
            Kind::GcpPubsub => "gcp_pubsub",
            Kind::AzureServicebus => "azure_servicebus",
            Kind::Rabbitmq => "rabbitmq",
            Kind::Kafka => "kafka",
        }
    }

    /// The kind named by an upstream type name; `None` for anything else (names are exact).
    pub fn parse(name: &str) -> Option<DestinationKind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    fn embedded(self, mode: WebhookMode) -> &'static EmbeddedType {
        match (self, mode) {
            (Kind::Webhook, WebhookMode::Default) => &schema::WEBHOOK,
            (Kind::Webhook, WebhookMode::Standard) => &schema::WEBHOOK_STANDARD,
            (Kind::Hookdeck, _) => &schema::HOOKDECK,
            (Kind::AwsSqs, _) => &schema::AWS_SQS,
            (Kind::AwsKinesis, _) => &schema::AWS_KINESIS,
            (Kind::AwsS3, _) => &schema::AWS_S3,
            (Kind::GcpPubsub, _) => &schema::GCP_PUBSUB,
            (Kind::AzureServicebus, _) => &schema::AZURE_SERVICEBUS,
            (Kind::Rabbitmq, _) => &schema::RABBITMQ,
            (Kind::Kafka, _) => &schema::KAFKA,
        }
    }

    /// Types whose preprocessing ends with a full validation of the result, so their stored
    /// config is re-checked even on updates that change neither config nor credentials.
    fn validates_after_preprocess(self) -> bool {
        matches!(self, Kind::AwsKinesis | Kind::Rabbitmq | Kind::Kafka)
    }
}

struct RegisteredType {
    kind: Kind,
    metadata: TypeMetadata,
    document: serde_json::Value,
}

/// All destination types, built once at start-up.
pub struct Registry {
    mode: WebhookMode,
    types: Vec<RegisteredType>,
    list: serde_json::Value,
}

impl Registry {
    /// Parses the embedded metadata. Fails only if the embedded data is broken.
    pub fn new(mode: WebhookMode) -> Result<Registry, RegistryError> {
        let types = Kind::ALL
            .iter()
            .map(|&kind| {
                let loaded = schema::load(kind.embedded(mode), kind.as_str())?;
                Ok(RegisteredType {
                    kind,
                    metadata: loaded.metadata,
                    document: loaded.document,
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        let list = serde_json::Value::Array(types.iter().map(|t| t.document.clone()).collect());
        Ok(Registry { mode, types, list })
    }

    /// Body of `GET /destination-types`: every type in registration order.
    pub fn list_json(&self) -> &serde_json::Value {
        &self.list
    }

    /// Body of `GET /destination-types/:type`.
    pub fn get_json(&self, ty: &str) -> Option<&serde_json::Value> {
        self.find(ty).map(|registered| &registered.document)
    }

    pub fn contains(&self, ty: &str) -> bool {
        self.find(ty).is_some()
    }

    /// Validates and preprocesses a destination's config/credentials in place, for create
    /// (`ctx.existing == None`) or update.
    ///
    /// Create validates the request, then preprocesses it. Update preprocesses the merged
    /// draft first and validates the result only when `ctx.revalidate` is set. On success the
    /// draft holds what must be stored (e.g. webhook credentials reduced to the secret keys).
    pub fn prepare(
        &self,
        ty: &str,
        draft: &mut Draft,
        ctx: &PrepareContext<'_>,
    ) -> Result<(), PrepareError> {
        let Some(registered) = self.find(ty) else {
            return Err(into_error(vec![Violation::new("type", "invalid_type")]));
        };
        let outcome = if ctx.existing.is_none() {
            self.validate_if(ctx.revalidate, registered, draft)
                .and_then(|()| self.preprocess(registered, draft, ctx))
        } else {
            self.preprocess(registered, draft, ctx)
                .and_then(|()| self.validate_if(ctx.revalidate, registered, draft))
        };
        outcome.map_err(into_error)
    }

    /// Credentials as shown in API responses. Webhook secrets are shown in clear, minus the
    /// previous secret once it expired; other types mask their sensitive fields.
    pub fn display_credentials(&self, ty: &str, credentials: &StrMap, now_unix_ms: i64) -> StrMap {
        match self.find(ty) {
            Some(registered) if registered.kind == Kind::Webhook => {
                webhook::display(credentials, now_unix_ms)
            }
            Some(registered) => mask::display(&registered.metadata, credentials),
            None => credentials.clone(),
        }
    }

    /// `target` and optional `target_url` from the config alone. RabbitMQ targets list the
    /// destination's topics and Azure targets name the namespace from the connection string;
    /// use [`Registry::target_with`] to get those right.
    #[cfg(test)]
    pub fn target(&self, ty: &str, config: &StrMap) -> (String, Option<String>) {
        self.target_with(ty, config, &StrMap::new(), &[])
    }

    /// `target` and optional `target_url` of a stored destination (raw, unmasked credentials).
    pub fn target_with(
        &self,
        ty: &str,
        config: &StrMap,
        credentials: &StrMap,
        topics: &[String],
    ) -> (String, Option<String>) {
        match self.find(ty) {
            Some(registered) => {
                let (target, url) = target::compute(registered.kind, config, credentials, topics);
                (target, url.filter(|url| !url.is_empty()))
            }
            None => (String::new(), None),
        }
    }

    fn find(&self, ty: &str) -> Option<&RegisteredType> {
        self.types
            .iter()
            .find(|registered| registered.kind.as_str() == ty)
    }

    fn validate_if(&self, enabled: bool, registered: &RegisteredType, draft: &Draft) -> Checked {
        if enabled {
            self.validate(registered, draft)
        } else {
            Ok(())
        }
    }

    /// Metadata checks first (all failures reported together), then the type's own checks.
    fn validate(&self, registered: &RegisteredType, draft: &Draft) -> Checked {
        validate::check_fields(&registered.metadata, &draft.config, &draft.credentials)?;
        match registered.kind {
            Kind::Webhook => webhook::check(self.mode, &draft.config, &draft.credentials),
            kind => providers::check(kind, &draft.config, &draft.credentials),
        }
    }

    fn preprocess(
        &self,
        registered: &RegisteredType,
        draft: &mut Draft,
        ctx: &PrepareContext<'_>,
    ) -> Checked {
        match registered.kind {
            Kind::Webhook => webhook::preprocess(draft, ctx)?,
            kind => providers::preprocess(kind, draft, ctx)?,
        }
        if registered.kind.validates_after_preprocess() {
            self.validate(registered, draft)?;
        }
        Ok(())
    }
}

fn into_error(violations: Vec<Violation>) -> PrepareError {
    PrepareError::Validation(violations.iter().map(Violation::message).collect())
}

#[cfg(test)]
mod tests;
