//! The webhook delivery provider: builds one signed webhook request for an (event,
//! destination) pair, sends it, and classifies the outcome into an attempt status, code and
//! `response_data`.
//!
//! Request (both modes): `POST config.url`, body = the event's compact JSON `data`.
//! - Default mode headers, in order (a later header with the same name replaces the earlier
//!   value in place): `Content-Type`, `User-Agent`, each `config.custom_headers` entry, the
//!   merged metadata (system `event-id`/`topic`/`timestamp`[/`timestamp-ms`] < destination
//!   `delivery_metadata` < event `metadata`) as `<prefix><key>` — the three system keys follow
//!   their header directives — and finally the signature header rendered from the configured
//!   templates (omitted when the destination has no secret).
//! - Standard Webhooks mode: `Content-Type`, `User-Agent`, custom headers, `<prefix>id`,
//!   `<prefix>timestamp` (unix seconds), `<prefix>signature` (`v1,<sig>[ v1,<previous sig>]`),
//!   the merged metadata without `event-id`/`timestamp` as `<prefix><key>`, then the event's
//!   metadata again without prefix.
//!
//! Header names go out in Go's canonical form (`X-Outpost-Event-Id`) via hyper's title-case
//! writer; inside hyper they are lowercase, which is equivalent (names are case-insensitive).
//!
//! Outcome: status ≥ 400 → failed, anything else → success, code = the status; response_data
//! `{"status", "body"}` with the body capped at `max_response_body_bytes` (0 = unlimited; a
//! larger body is replaced by a note, never truncated, and at most cap + 1 bytes are read).
//! Transport failures → failed with a class code and no response_data; a request that cannot
//! be built → failed, code `ERR`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderName as HttpHeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, Uri};
use serde_json::json;

use crate::config::{HeaderName, WebhookSettings};
use crate::model::destination::Destination;
use crate::model::destination_type::WebhookMode;
use crate::model::event::Event;
use crate::model::signing::{self, SignatureAlgorithm, SignatureEncoding};
use crate::model::StrMap;
use crate::template::{Template, TemplateError, TemplateTime, TemplateValue};
use crate::time as timestamp;

use super::http_client::{classify_transport_error, HttpClient, HttpClientError};

const CONTENT_TEMPLATE_SETTING: &str = "DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE";
const HEADER_TEMPLATE_SETTING: &str = "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE";
const PREFIX_SETTING: &str = "DESTINATIONS_WEBHOOK_HEADER_PREFIX";

/// The `code` of an attempt whose request could not be built.
pub const BUILD_ERROR_CODE: &str = "ERR";
/// The `response_data.error` of an attempt whose request could not be built.
pub const BUILD_ERROR_MESSAGE: &str = "could not format event for delivery";

const NANOS_PER_SECOND: i64 = 1_000_000_000;

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

/// Why a delivery request could not be built (reported as code `ERR`).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("destination has no config.url")]
    MissingUrl,
    #[error("config.url is not an http(s) URL")]
    InvalidUrl,
    #[error("config.custom_headers is not a JSON object of strings")]
    InvalidCustomHeaders,
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    #[error("invalid value for header {0:?}")]
    InvalidHeaderValue(String),
    #[error("signature template: {0}")]
    Template(#[from] TemplateError),
    #[error("signing secret: {0}")]
    Secret(#[from] signing::SigningError),
    #[error("building the request: {0}")]
    Http(#[from] hyper::http::Error),
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOutcome {
    pub success: bool,
    pub code: String,
    pub response_data: Option<serde_json::Value>,
}

impl DeliveryOutcome {
    fn build_failure() -> Self {
        DeliveryOutcome {
            success: false,
            code: BUILD_ERROR_CODE.to_string(),
            response_data: Some(json!({ "error": BUILD_ERROR_MESSAGE })),
        }
    }

    fn transport_failure(code: &str) -> Self {
        DeliveryOutcome {
            success: false,
            code: code.to_string(),
            response_data: None,
        }
    }
}

/// Default-mode signing templates.
struct DefaultSigning {
    content: Template,
    header: Template,
    algorithm: SignatureAlgorithm,
    encoding: SignatureEncoding,
}

/// Builds, signs and sends webhook requests. One per process; shares its connection pool.
pub struct WebhookSender {
    mode: WebhookMode,
    prefix: String,
    /// Resolved system header names (`None` = omitted), default mode only.
    event_id_header: Option<String>,
    topic_header: Option<String>,
    timestamp_header: Option<String>,
    signature_header: Option<String>,
    signing: Option<DefaultSigning>,
    include_millisecond_timestamp: bool,
    max_response_body_bytes: usize,
    user_agent: HeaderValue,
    timeout: Duration,
    client: HttpClient,
}

fn resolve(prefix: &str, key: &str, directive: &HeaderName) -> Option<String> {
    match directive {
        HeaderName::Prefixed => Some(format!("{prefix}{key}")),
        HeaderName::Custom(name) => Some(name.clone()),
        HeaderName::Omitted => None,
    }
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

fn parse_template(setting: &'static str, source: &str) -> Result<Template, WebhookConfigError> {
    let error = |source| WebhookConfigError::Template { setting, source };
    let template = Template::parse(source).map_err(error)?;
    let with_signatures = setting == HEADER_TEMPLATE_SETTING;
    template
        .render(&sample_data(with_signatures))
        .map_err(error)?;
    Ok(template)
}

impl WebhookSender {
    /// Parses and test-renders the signature templates (a bad template → an error naming the
    /// setting, e.g. `DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE: <error>`), checks that no
    /// two enabled system headers resolve to the same lowercase name, and builds the client.
    pub fn new(
        settings: &WebhookSettings,
        user_agent: String,
        timeout: Duration,
        max_idle_per_host: usize,
    ) -> Result<WebhookSender, WebhookConfigError> {
        let prefix = settings.header_prefix.clone();
        let user_agent =
            HeaderValue::from_str(&user_agent).map_err(|_| WebhookConfigError::InvalidUserAgent)?;
        let mut sender = WebhookSender {
            mode: settings.mode,
            prefix: prefix.clone(),
            event_id_header: None,
            topic_header: None,
            timestamp_header: None,
            signature_header: None,
            signing: None,
            include_millisecond_timestamp: settings.include_millisecond_timestamp,
            max_response_body_bytes: settings.max_response_body_bytes,
            user_agent,
            timeout,
            client: HttpClient::new(max_idle_per_host)?,
        };
        match settings.mode {
            WebhookMode::Standard => {
                for key in ["id", "timestamp", "signature"] {
                    check_header_name(PREFIX_SETTING, &format!("{prefix}{key}"))?;
                }
            }
            WebhookMode::Default => {
                let system = [
                    (
                        "DESTINATIONS_WEBHOOK_EVENT_ID_HEADER_NAME",
                        resolve(&prefix, "event-id", &settings.event_id_header),
                        &settings.event_id_header,
                    ),
                    (
                        "DESTINATIONS_WEBHOOK_TOPIC_HEADER_NAME",
                        resolve(&prefix, "topic", &settings.topic_header),
                        &settings.topic_header,
                    ),
                    (
                        "DESTINATIONS_WEBHOOK_TIMESTAMP_HEADER_NAME",
                        resolve(&prefix, "timestamp", &settings.timestamp_header),
                        &settings.timestamp_header,
                    ),
                    (
                        "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_NAME",
                        resolve(&prefix, "signature", &settings.signature_header),
                        &settings.signature_header,
                    ),
                ];
                for (i, (setting, name, directive)) in system.iter().enumerate() {
                    let Some(name) = name else { continue };
                    let origin = match directive {
                        HeaderName::Custom(_) => setting,
                        _ => &PREFIX_SETTING,
                    };
                    check_header_name(origin, name)?;
                    for (other_setting, other_name, _) in &system[i + 1..] {
                        if other_name
                            .as_deref()
                            .is_some_and(|other| other.eq_ignore_ascii_case(name))
                        {
                            return Err(WebhookConfigError::DuplicateHeader {
                                first: setting,
                                second: other_setting,
                                name: name.to_ascii_lowercase(),
                            });
                        }
                    }
                }
                let [event_id, topic, timestamp, signature] = system.map(|(_, name, _)| name);
                sender.event_id_header = event_id;
                sender.topic_header = topic;
                sender.timestamp_header = timestamp;
                sender.signature_header = signature;
                sender.signing = Some(DefaultSigning {
                    content: parse_template(
                        CONTENT_TEMPLATE_SETTING,
                        &settings.signature_content_template,
                    )?,
                    header: parse_template(
                        HEADER_TEMPLATE_SETTING,
                        &settings.signature_header_template,
                    )?,
                    algorithm: settings.signature_algorithm,
                    encoding: settings.signature_encoding,
                });
            }
        }
        Ok(sender)
    }

    /// Builds the request (pure): `POST config.url` with the event's data as body and the
    /// headers of the configured mode, signed with the destination's current secret (and the
    /// previous one while `now < previous_secret_invalid_at`).
    pub fn build_request(
        &self,
        event: &Event,
        destination: &Destination,
        now_nanos: i64,
    ) -> Result<Request<Full<Bytes>>, BuildError> {
        let uri = destination_uri(destination)?;
        let headers = self.headers(event, destination, now_nanos)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(Full::new(Bytes::from(event.data.clone())))?;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// The request headers, in sending order.
    pub fn headers(
        &self,
        event: &Event,
        destination: &Destination,
        now_nanos: i64,
    ) -> Result<HeaderMap, BuildError> {
        let mut headers = HeaderList::default();
        headers.set("content-type", HeaderValue::from_static("application/json"))?;
        headers.set("user-agent", self.user_agent.clone())?;
        for (name, value) in custom_headers(destination)? {
            headers.set_str(&name, &value)?;
        }
        let secrets = Secrets::of(destination, now_nanos);
        let seconds = now_nanos.div_euclid(NANOS_PER_SECOND);
        let metadata = self.merged_metadata(event, destination, now_nanos);
        match self.mode {
            WebhookMode::Standard => {
                let prefix = &self.prefix;
                headers.set_str(&format!("{prefix}id"), &event.id)?;
                headers.set_str(&format!("{prefix}timestamp"), &seconds.to_string())?;
                if let Some(current) = secrets.current {
                    let body = event.data.as_bytes();
                    let mut value =
                        signing::standard_webhooks_signature(current, &event.id, seconds, body)?;
                    if let Some(previous) = secrets.previous {
                        value.push(' ');
                        value.push_str(&signing::standard_webhooks_signature(
                            previous, &event.id, seconds, body,
                        )?);
                    }
                    headers.set_str(&format!("{prefix}signature"), &value)?;
                }
                for (key, value) in &metadata {
                    if key != "event-id" && key != "timestamp" {
                        headers.set_str(&format!("{prefix}{key}"), value)?;
                    }
                }
                for (key, value) in &event.metadata {
                    headers.set_str(key, value)?;
                }
            }
            WebhookMode::Default => {
                for (key, value) in &metadata {
                    let name = match key.as_str() {
                        "event-id" => self.event_id_header.clone(),
                        "topic" => self.topic_header.clone(),
                        "timestamp" => self.timestamp_header.clone(),
                        _ => Some(format!("{}{key}", self.prefix)),
                    };
                    if let Some(name) = name {
                        headers.set_str(&name, value)?;
                    }
                }
                if let (Some(name), Some(signing), Some(current)) =
                    (&self.signature_header, &self.signing, secrets.current)
                {
                    let value =
                        signing.header_value(event, now_nanos, current, secrets.previous)?;
                    headers.set_str(name, &value)?;
                }
            }
        }
        Ok(headers.into_map())
    }

    /// system (`event-id`, `topic`, `timestamp`[, `timestamp-ms`]) < destination
    /// `delivery_metadata` < event `metadata`; system keys first, then the rest by key.
    fn merged_metadata(
        &self,
        event: &Event,
        destination: &Destination,
        now_nanos: i64,
    ) -> Vec<(String, String)> {
        let mut system = vec![
            ("event-id".to_string(), event.id.to_string()),
            ("topic".to_string(), event.topic.clone()),
            (
                "timestamp".to_string(),
                timestamp::format_seconds(now_nanos.div_euclid(NANOS_PER_SECOND)),
            ),
        ];
        if self.include_millisecond_timestamp {
            system.push((
                "timestamp-ms".to_string(),
                timestamp::format_nanos(now_nanos),
            ));
        }
        let mut rest = StrMap::new();
        for map in [&destination.delivery_metadata, &event.metadata] {
            for (key, value) in map {
                match system.iter_mut().find(|(k, _)| k == key) {
                    Some(entry) => entry.1 = value.clone(),
                    None => {
                        rest.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        system.extend(rest);
        system
    }

    /// Builds and sends the request within the timeout (connect, send and reading the capped
    /// body), and classifies the outcome.
    pub async fn deliver(
        &self,
        event: &Event,
        destination: &Destination,
        now_nanos: i64,
    ) -> DeliveryOutcome {
        let request = match self.build_request(event, destination, now_nanos) {
            Ok(request) => request,
            Err(err) => {
                tracing::debug!(event_id = %event.id, destination_id = %destination.id, error = %err, "webhook request could not be built");
                return DeliveryOutcome::build_failure();
            }
        };
        let exchange = async {
            let response = self.client.send(request).await.map_err(|err| err.code())?;
            let status = response.status().as_u16();
            let body = read_capped(response, self.max_response_body_bytes)
                .await
                .map_err(|err| classify_transport_error(&err))?;
            Ok::<_, &'static str>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => DeliveryOutcome::transport_failure("timeout"),
            Ok(Err(code)) => DeliveryOutcome::transport_failure(code),
            Ok(Ok((status, body))) => {
                let body = match body {
                    CapturedBody::Text(text) => text,
                    CapturedBody::TooLarge => format!(
                        "Response body exceeded {} bytes and was not stored",
                        self.max_response_body_bytes
                    ),
                };
                DeliveryOutcome {
                    success: status < 400,
                    code: status.to_string(),
                    response_data: Some(json!({ "status": status, "body": body })),
                }
            }
        }
    }
}

impl DefaultSigning {
    fn header_value(
        &self,
        event: &Event,
        now_nanos: i64,
        current: &str,
        previous: Option<&str>,
    ) -> Result<String, BuildError> {
        let time = TemplateValue::Time(TemplateTime::from_unix_nanos(i128::from(now_nanos)));
        let base = [
            ("EventID", TemplateValue::Str(event.id.to_string())),
            ("Topic", TemplateValue::Str(event.topic.clone())),
            ("Timestamp", time),
        ];
        let mut content_fields = base.to_vec();
        content_fields.push(("Body", TemplateValue::Str(event.data.clone())));
        let content = self.content.render(&TemplateValue::map(content_fields))?;
        let signatures = std::iter::once(current)
            .chain(previous)
            .map(|secret| {
                TemplateValue::Str(signing::sign(
                    self.algorithm,
                    self.encoding,
                    secret,
                    content.as_bytes(),
                ))
            })
            .collect();
        let mut header_fields = base.to_vec();
        header_fields.push(("Signatures", TemplateValue::List(signatures)));
        Ok(self.header.render(&TemplateValue::map(header_fields))?)
    }
}

/// The destination's signing secrets in effect at `now`.
struct Secrets<'a> {
    current: Option<&'a str>,
    previous: Option<&'a str>,
}

impl<'a> Secrets<'a> {
    fn of(destination: &'a Destination, now_nanos: i64) -> Self {
        let get = |key: &str| {
            destination
                .credentials
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let current = get("secret");
        let previous = match (
            current,
            get("previous_secret"),
            get("previous_secret_invalid_at"),
        ) {
            (Some(_), Some(previous), Some(invalid_at)) => timestamp::parse_rfc3339(invalid_at)
                .ok()
                .filter(|at| i128::from(now_nanos) < at.unix_nanos)
                .map(|_| previous),
            _ => None,
        };
        Secrets { current, previous }
    }
}

fn check_header_name(setting: &'static str, name: &str) -> Result<(), WebhookConfigError> {
    HttpHeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| WebhookConfigError::InvalidHeaderName {
            setting,
            name: name.to_string(),
        })
}

fn destination_uri(destination: &Destination) -> Result<Uri, BuildError> {
    let url = destination
        .config
        .get("url")
        .filter(|u| !u.is_empty())
        .ok_or(BuildError::MissingUrl)?;
    let uri: Uri = url.parse().map_err(|_| BuildError::InvalidUrl)?;
    let http = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    if !http || uri.host().is_none_or(str::is_empty) {
        return Err(BuildError::InvalidUrl);
    }
    Ok(uri)
}

/// `config.custom_headers`: a JSON string of an object of strings; absent/empty = none.
fn custom_headers(destination: &Destination) -> Result<Vec<(String, String)>, BuildError> {
    let Some(text) = destination
        .config
        .get("custom_headers")
        .filter(|t| !t.trim().is_empty())
    else {
        return Ok(Vec::new());
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| BuildError::InvalidCustomHeaders)?;
    object
        .into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(value) => Ok((name, value)),
            _ => Err(BuildError::InvalidCustomHeaders),
        })
        .collect()
}

/// An ordered header list where setting an existing name replaces its value in place.
#[derive(Default)]
struct HeaderList {
    map: HeaderMap,
}

impl HeaderList {
    fn set(&mut self, name: &str, value: HeaderValue) -> Result<(), BuildError> {
        let name = HttpHeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BuildError::InvalidHeaderName(name.to_string()))?;
        self.map.insert(name, value);
        Ok(())
    }

    fn set_str(&mut self, name: &str, value: &str) -> Result<(), BuildError> {
        let value = HeaderValue::from_str(value)
            .map_err(|_| BuildError::InvalidHeaderValue(name.to_string()))?;
        self.set(name, value)
    }

    fn into_map(self) -> HeaderMap {
        self.map
    }
}

enum CapturedBody {
    Text(String),
    TooLarge,
}

/// Reads the response body, never more than `cap + 1` bytes (`cap == 0` = unlimited).
async fn read_capped(
    response: Response<Incoming>,
    cap: usize,
) -> Result<CapturedBody, hyper::Error> {
    let mut body = response.into_body();
    if cap > 0 && body.size_hint().lower() > cap as u64 {
        return Ok(CapturedBody::TooLarge);
    }
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if cap > 0 && buffer.len().saturating_add(data.len()) > cap {
                return Ok(CapturedBody::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(CapturedBody::Text(
        String::from_utf8_lossy(&buffer).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use ring::hmac;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// 2024-06-01T08:23:36.5Z
    const NOW: i64 = 1_717_230_216_500_000_000;
    const NOW_SECONDS: i64 = 1_717_230_216;
    const BODY: &str = r#"{"id":1,"msg":"hi"}"#;
    /// `whsec_` + base64 of bytes 0..32.
    const STANDARD_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const STANDARD_PREVIOUS: &str = "whsec_YWJjZA==";

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

    fn sender(settings: &WebhookSettings) -> WebhookSender {
        WebhookSender::new(settings, "Outpost/test".into(), Duration::from_secs(5), 2).unwrap()
    }

    fn event() -> Event {
        Event {
            id: "evt_1".into(),
            tenant_id: "t1".into(),
            destination_id: Default::default(),
            matched_destination_ids: vec!["d1".into()],
            topic: "user.created".into(),
            time_nanos: NOW,
            time_offset_seconds: 0,
            eligible_for_retry: true,
            metadata: [("shared".to_string(), "from-event".to_string())]
                .into_iter()
                .collect(),
            data: BODY.into(),
            idempotency_expires_ms: 0,
        }
    }

    fn destination(url: &str, secret: &str) -> Destination {
        let mut credentials = StrMap::new();
        if !secret.is_empty() {
            credentials.insert("secret".into(), secret.into());
        }
        Destination {
            id: "d1".into(),
            tenant_id: "t1".into(),
            kind: "webhook".into(),
            topics: vec!["*".into()],
            filter: None,
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
            metadata: StrMap::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
            disabled_at_ms: None,
            stored_at_nanos: 0,
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

    #[test]
    fn bad_settings_are_rejected_naming_the_setting() {
        let mut bad = settings(WebhookMode::Default);
        bad.signature_header_template = "v0={{.Signatures | join".into();
        let err = WebhookSender::new(&bad, "ua".into(), Duration::from_secs(1), 1)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE: "),
            "{err}"
        );
        let mut bad = settings(WebhookMode::Default);
        bad.signature_content_template = "{{.Signatures}}".into();
        let err = WebhookSender::new(&bad, "ua".into(), Duration::from_secs(1), 1)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE: "),
            "{err}"
        );
        let mut dup = settings(WebhookMode::Default);
        dup.event_id_header = HeaderName::Custom("X-Outpost-Topic".into());
        let err = WebhookSender::new(&dup, "ua".into(), Duration::from_secs(1), 1)
            .err()
            .unwrap();
        assert!(
            matches!(err, WebhookConfigError::DuplicateHeader { ref name, .. } if name == "x-outpost-topic"),
            "{err}"
        );
        // An omitted header never collides.
        dup.topic_header = HeaderName::Omitted;
        assert!(WebhookSender::new(&dup, "ua".into(), Duration::from_secs(1), 1).is_ok());
        let mut prefix = settings(WebhookMode::Default);
        prefix.header_prefix = "bad prefix ".into();
        let err = WebhookSender::new(&prefix, "ua".into(), Duration::from_secs(1), 1)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("DESTINATIONS_WEBHOOK_HEADER_PREFIX: "),
            "{err}"
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

    // -----------------------------------------------------------------------------------------
    // Against a real local server
    // -----------------------------------------------------------------------------------------

    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Bytes,
    }

    /// Serves `handler` on 127.0.0.1:0; records every request.
    async fn serve<F, Fut>(handler: F) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>)
    where
        F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let handler = handler.clone();
                        let log = log.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let seen = Seen {
                                method: parts.method,
                                path: parts.uri.to_string(),
                                headers: parts.headers,
                                body,
                            };
                            log.lock().unwrap().push(seen.clone());
                            Ok::<_, Infallible>(handler(seen).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, seen)
    }

    fn reply(status: u16, body: &'static str) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        response
    }

    fn sender_with(cap: usize, timeout: Duration) -> WebhookSender {
        let mut settings = settings(WebhookMode::Default);
        settings.max_response_body_bytes = cap;
        WebhookSender::new(&settings, "Outpost/test".into(), timeout, 2).unwrap()
    }

    #[tokio::test]
    async fn delivers_and_records_success() {
        let (addr, seen) = serve(|_| async { reply(200, "ok") }).await;
        let sender = sender_with(131_072, Duration::from_secs(5));
        let destination = destination(&format!("http://{addr}/hook"), "whsec_abc");
        let outcome = sender.deliver(&event(), &destination, NOW).await;
        assert_eq!(
            outcome,
            DeliveryOutcome {
                success: true,
                code: "200".into(),
                response_data: Some(json!({"status": 200, "body": "ok"})),
            }
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, Method::POST);
        assert_eq!(seen[0].path, "/hook");
        assert_eq!(&seen[0].body[..], BODY.as_bytes());
        assert_eq!(seen[0].headers["x-outpost-event-id"], "evt_1");
        assert_eq!(
            seen[0].headers["x-outpost-signature"],
            format!("v0={}", hmac_hex(b"whsec_abc", BODY.as_bytes())).as_str()
        );
        // A second delivery reuses the pool.
        let outcome = sender.deliver(&event(), &destination, NOW).await;
        assert!(outcome.success);
    }

    #[tokio::test]
    async fn server_error_fails_with_body_captured() {
        let (addr, _) = serve(|_| async { reply(500, "boom") }).await;
        let sender = sender_with(131_072, Duration::from_secs(5));
        let outcome = sender
            .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
            .await;
        assert_eq!(
            outcome,
            DeliveryOutcome {
                success: false,
                code: "500".into(),
                response_data: Some(json!({"status": 500, "body": "boom"})),
            }
        );
    }

    #[tokio::test]
    async fn oversize_body_is_replaced_not_truncated() {
        let (addr, _) = serve(|_| async { reply(202, "0123456789abcdefX") }).await;
        let url = format!("http://{addr}/");
        let outcome = sender_with(16, Duration::from_secs(5))
            .deliver(&event(), &destination(&url, ""), NOW)
            .await;
        assert!(outcome.success);
        assert_eq!(outcome.code, "202");
        assert_eq!(
            outcome.response_data,
            Some(json!({
                "status": 202,
                "body": "Response body exceeded 16 bytes and was not stored"
            }))
        );
        // Exactly at the cap is kept; 0 = unlimited.
        let (addr, _) = serve(|_| async { reply(200, "0123456789abcdef") }).await;
        let url = format!("http://{addr}/");
        let outcome = sender_with(16, Duration::from_secs(5))
            .deliver(&event(), &destination(&url, ""), NOW)
            .await;
        assert_eq!(
            outcome.response_data,
            Some(json!({"status": 200, "body": "0123456789abcdef"}))
        );
        let outcome = sender_with(0, Duration::from_secs(5))
            .deliver(&event(), &destination(&url, ""), NOW)
            .await;
        assert_eq!(
            outcome.response_data,
            Some(json!({"status": 200, "body": "0123456789abcdef"}))
        );
    }

    #[tokio::test]
    async fn oversize_chunked_body_stops_reading_at_the_cap() {
        // A raw server that streams a chunked body which never ends: the reader must stop
        // after cap + 1 bytes instead of waiting for the end.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            loop {
                if stream.write_all(b"8\r\nabcdefgh\r\n").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let outcome = sender_with(20, Duration::from_secs(5))
            .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
            .await;
        assert_eq!(outcome.code, "200");
        assert_eq!(
            outcome.response_data,
            Some(json!({
                "status": 200,
                "body": "Response body exceeded 20 bytes and was not stored"
            }))
        );
    }

    #[tokio::test]
    async fn header_names_go_out_canonicalized() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut buf = vec![0u8; 4096];
            while !received.ends_with(BODY.as_bytes()) {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            let _ = tx.send(String::from_utf8_lossy(&received).into_owned());
        });
        let outcome = sender_with(16, Duration::from_secs(5))
            .deliver(
                &event(),
                &destination(&format!("http://{addr}/"), "whsec_a"),
                NOW,
            )
            .await;
        assert_eq!(outcome.code, "204");
        let wire = rx.await.unwrap();
        for name in [
            "Content-Type: application/json",
            "User-Agent: Outpost/test",
            "X-Outpost-Event-Id: evt_1",
            "X-Outpost-Signature: v0=",
        ] {
            assert!(wire.contains(name), "{name} missing from {wire}");
        }
    }

    #[tokio::test]
    async fn timeout_is_classified() {
        let (addr, _) = serve(|_| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            reply(200, "late")
        })
        .await;
        let outcome = sender_with(16, Duration::from_millis(200))
            .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
            .await;
        assert_eq!(outcome, DeliveryOutcome::transport_failure("timeout"));
    }

    #[tokio::test]
    async fn connection_refused_is_classified() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let outcome = sender_with(16, Duration::from_secs(5))
            .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
            .await;
        assert_eq!(
            outcome,
            DeliveryOutcome::transport_failure("connection_refused")
        );
    }

    #[tokio::test]
    async fn tls_failure_is_classified() {
        // HTTPS to a plain-HTTP server: the handshake fails (Go: "tls: first record does not
        // look like a TLS handshake").
        let (addr, _) = serve(|_| async { reply(200, "plain") }).await;
        let outcome = sender_with(16, Duration::from_secs(5))
            .deliver(&event(), &destination(&format!("https://{addr}/"), ""), NOW)
            .await;
        assert_eq!(outcome, DeliveryOutcome::transport_failure("tls_error"));
    }

    #[tokio::test]
    async fn redirects_are_followed_like_go() {
        let (addr, seen) = serve(|seen: Seen| async move {
            match seen.path.as_str() {
                "/see-other" => {
                    let mut response = reply(303, "");
                    response
                        .headers_mut()
                        .insert("location", HeaderValue::from_static("/final"));
                    response
                }
                "/temporary" => {
                    let mut response = reply(307, "");
                    response
                        .headers_mut()
                        .insert("location", HeaderValue::from_static("final"));
                    response
                }
                "/final" => reply(200, "done"),
                _ => {
                    let mut response = reply(302, "");
                    response
                        .headers_mut()
                        .insert("location", HeaderValue::from_static("/loop"));
                    response
                }
            }
        })
        .await;
        let sender = sender_with(1024, Duration::from_secs(5));
        let outcome = sender
            .deliver(
                &event(),
                &destination(&format!("http://{addr}/see-other"), ""),
                NOW,
            )
            .await;
        assert_eq!(outcome.code, "200");
        assert_eq!(
            outcome.response_data,
            Some(json!({"status": 200, "body": "done"}))
        );
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen[1].method, Method::GET);
            assert!(seen[1].body.is_empty());
            assert_eq!(
                seen[1].headers["referer"],
                format!("http://{addr}/see-other").as_str()
            );
        }
        seen.lock().unwrap().clear();
        let outcome = sender
            .deliver(
                &event(),
                &destination(&format!("http://{addr}/temporary"), ""),
                NOW,
            )
            .await;
        assert_eq!(outcome.code, "200");
        {
            let seen = seen.lock().unwrap();
            assert_eq!(seen[1].method, Method::POST);
            assert_eq!(&seen[1].body[..], BODY.as_bytes());
            assert_eq!(seen[1].headers["x-outpost-event-id"], "evt_1");
        }
        seen.lock().unwrap().clear();
        let outcome = sender
            .deliver(
                &event(),
                &destination(&format!("http://{addr}/loop"), ""),
                NOW,
            )
            .await;
        assert_eq!(
            outcome,
            DeliveryOutcome::transport_failure("redirect_error")
        );
        assert_eq!(seen.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn redirect_without_location_is_a_success() {
        let (addr, _) = serve(|_| async { reply(302, "moved?") }).await;
        let outcome = sender_with(1024, Duration::from_secs(5))
            .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
            .await;
        assert!(outcome.success);
        assert_eq!(outcome.code, "302");
    }
}
