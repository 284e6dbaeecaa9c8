//! The webhook settings of the whole server, checked once at start: the header prefix, the
//! system header names of the configured mode (resolved and parsed), the `User-Agent`, and the
//! default mode's signature templates (parsed and test-rendered). A setting that cannot work
//! is an error naming the setting.

use hyper::header::{HeaderName as HttpHeaderName, HeaderValue};

use crate::config::{HeaderName, WebhookSettings};
use crate::delivery::http_client::HttpClientError;
use crate::model::destination_type::WebhookMode;
use crate::model::signing::{SignatureAlgorithm, SignatureEncoding};
use crate::template::{Template, TemplateError, TemplateTime, TemplateValue};

const CONTENT_TEMPLATE_SETTING: &str = "DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE";
const HEADER_TEMPLATE_SETTING: &str = "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE";
const PREFIX_SETTING: &str = "DESTINATIONS_WEBHOOK_HEADER_PREFIX";

/// A webhook setting that cannot work; the message names the setting.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error("{setting}: {source}")]
    Template {
        setting: &'static str,
        source: TemplateError,
    },
    #[error("{first} and {second} both resolve to the header name {name:?}")]
    DuplicateHeader {
        first: &'static str,
        second: &'static str,
        name: String,
    },
    #[error("{setting}: {name:?} is not a valid HTTP header name")]
    InvalidHeaderName { setting: &'static str, name: String },
    #[error("HTTP_USER_AGENT: not a valid HTTP header value")]
    InvalidUserAgent,
    #[error(transparent)]
    Client(#[from] HttpClientError),
}

/// Default-mode signing: the content and header templates and how signatures are made.
pub(super) struct DefaultSigning {
    pub content: Template,
    pub header: Template,
    pub algorithm: SignatureAlgorithm,
    pub encoding: SignatureEncoding,
}

/// The headers each mode adds besides metadata.
pub(super) enum ModeHeaders {
    /// Outpost's own scheme. A system header is `None` when its directive omits it.
    Default {
        event_id: Option<HttpHeaderName>,
        topic: Option<HttpHeaderName>,
        timestamp: Option<HttpHeaderName>,
        signature: Option<HttpHeaderName>,
        signing: DefaultSigning,
    },
    /// Standard Webhooks: `<prefix>id`, `<prefix>timestamp`, `<prefix>signature`.
    Standard {
        id: HttpHeaderName,
        timestamp: HttpHeaderName,
        signature: HttpHeaderName,
    },
}

/// Everything about a webhook request that the server's settings decide.
pub(super) struct RequestSettings {
    pub prefix: String,
    pub user_agent: HeaderValue,
    pub include_millisecond_timestamp: bool,
    pub mode: ModeHeaders,
}

impl RequestSettings {
    /// Parses and test-renders the signature templates (a bad template → an error naming the
    /// setting, e.g. `DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE: <error>`), and checks that
    /// every system header name is valid and that no two enabled ones are the same.
    pub fn new(
        settings: &WebhookSettings,
        user_agent: &str,
    ) -> Result<RequestSettings, WebhookConfigError> {
        let prefix = settings.header_prefix.clone();
        let user_agent =
            HeaderValue::from_str(user_agent).map_err(|_| WebhookConfigError::InvalidUserAgent)?;
        let mode = match settings.mode {
            WebhookMode::Standard => {
                let name = |key: &str| header_name(PREFIX_SETTING, &format!("{prefix}{key}"));
                ModeHeaders::Standard {
                    id: name("id")?,
                    timestamp: name("timestamp")?,
                    signature: name("signature")?,
                }
            }
            WebhookMode::Default => default_mode(settings, &prefix)?,
        };
        Ok(RequestSettings {
            prefix,
            user_agent,
            include_millisecond_timestamp: settings.include_millisecond_timestamp,
            mode,
        })
    }
}

fn default_mode(
    settings: &WebhookSettings,
    prefix: &str,
) -> Result<ModeHeaders, WebhookConfigError> {
    let system = [
        (
            "DESTINATIONS_WEBHOOK_EVENT_ID_HEADER_NAME",
            "event-id",
            &settings.event_id_header,
        ),
        (
            "DESTINATIONS_WEBHOOK_TOPIC_HEADER_NAME",
            "topic",
            &settings.topic_header,
        ),
        (
            "DESTINATIONS_WEBHOOK_TIMESTAMP_HEADER_NAME",
            "timestamp",
            &settings.timestamp_header,
        ),
        (
            "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_NAME",
            "signature",
            &settings.signature_header,
        ),
    ];
    let mut resolved: Vec<(&'static str, Option<HttpHeaderName>)> = Vec::with_capacity(4);
    for (setting, key, directive) in system {
        let (origin, name) = match directive {
            HeaderName::Prefixed => (PREFIX_SETTING, format!("{prefix}{key}")),
            HeaderName::Custom(name) => (setting, name.clone()),
            HeaderName::Omitted => {
                resolved.push((setting, None));
                continue;
            }
        };
        let name = header_name(origin, &name)?;
        if let Some((first, _)) = resolved
            .iter()
            .find(|(_, other)| other.as_ref() == Some(&name))
        {
            return Err(WebhookConfigError::DuplicateHeader {
                first,
                second: setting,
                name: name.as_str().to_string(),
            });
        }
        resolved.push((setting, Some(name)));
    }
    let mut names = resolved.into_iter().map(|(_, name)| name);
    let mut next = || names.next().flatten();
    let (event_id, topic, timestamp, signature) = (next(), next(), next(), next());
    Ok(ModeHeaders::Default {
        event_id,
        topic,
        timestamp,
        signature,
        signing: DefaultSigning {
            content: parse_template(
                CONTENT_TEMPLATE_SETTING,
                &settings.signature_content_template,
            )?,
            header: parse_template(HEADER_TEMPLATE_SETTING, &settings.signature_header_template)?,
            algorithm: settings.signature_algorithm,
            encoding: settings.signature_encoding,
        },
    })
}

/// A header name as hyper holds it (lowercase); an invalid one is an error naming `setting`.
fn header_name(setting: &'static str, name: &str) -> Result<HttpHeaderName, WebhookConfigError> {
    HttpHeaderName::from_bytes(name.as_bytes()).map_err(|_| WebhookConfigError::InvalidHeaderName {
        setting,
        name: name.to_string(),
    })
}

fn sample_data(with_signatures: bool) -> TemplateValue {
    let mut fields = vec![
        ("EventID", TemplateValue::Str("evt_sample".into())),
        ("Topic", TemplateValue::Str("sample.topic".into())),
        (
            "Timestamp",
            TemplateValue::Time(TemplateTime::from_unix_seconds(1_717_230_216)),
        ),
    ];
    if with_signatures {
        fields.push((
            "Signatures",
            TemplateValue::List(vec![
                TemplateValue::Str("sig_current".into()),
                TemplateValue::Str("sig_previous".into()),
            ]),
        ));
    } else {
        fields.push(("Body", TemplateValue::Str(r#"{"sample":true}"#.into())));
    }
    TemplateValue::map(fields)
}

/// `DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE` as the server checks it at start.
pub fn content_template(source: &str) -> Result<Template, WebhookConfigError> {
    parse_template(CONTENT_TEMPLATE_SETTING, source)
}

/// `DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE` as the server checks it at start.
pub fn header_template(source: &str) -> Result<Template, WebhookConfigError> {
    parse_template(HEADER_TEMPLATE_SETTING, source)
}

fn parse_template(setting: &'static str, source: &str) -> Result<Template, WebhookConfigError> {
    let error = |source| WebhookConfigError::Template { setting, source };
    let template = Template::parse(source).map_err(error)?;
    let with_signatures = setting == HEADER_TEMPLATE_SETTING;
    template
        .render(&sample_data(with_signatures))
        .map_err(error)?;
    Ok(template)
}
