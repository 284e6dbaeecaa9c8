//! Builds one signed webhook request (pure: no I/O) from the server's settings, a prepared
//! destination, the event and the time of the attempt.
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

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName as HttpHeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{HeaderMap, Method, Request};

use super::destination::{SecretsAt, WebhookDestination};
use super::settings::{DefaultSigning, ModeHeaders, RequestSettings};
use crate::model::event::Event;
use crate::model::signing;
use crate::model::StrMap;
use crate::template::{TemplateError, TemplateTime, TemplateValue};
use crate::time as timestamp;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Why a request could not be built for this event (reported as code `ERR`).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    #[error("invalid value for header {0:?}")]
    InvalidHeaderValue(String),
    #[error("signature template: {0}")]
    Template(#[from] TemplateError),
    #[error("signing secret: {0}")]
    Secret(#[from] signing::SigningError),
}

/// `POST` to the destination's URL with the event's data as body and the mode's headers,
/// signed with the current secret (and the previous one while it is still valid at `now`).
pub(super) fn build_request(
    settings: &RequestSettings,
    destination: &WebhookDestination,
    event: &Event,
    now_nanos: i64,
) -> Result<Request<Full<Bytes>>, BuildError> {
    let headers = headers(settings, destination, event, now_nanos)?;
    let mut request = Request::new(Full::new(Bytes::from(event.data.clone())));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = destination.uri.clone();
    *request.headers_mut() = headers;
    Ok(request)
}

/// The request headers, in sending order.
pub(super) fn headers(
    settings: &RequestSettings,
    destination: &WebhookDestination,
    event: &Event,
    now_nanos: i64,
) -> Result<HeaderMap, BuildError> {
    let mut headers = HeaderList::default();
    headers.set(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.set(USER_AGENT, settings.user_agent.clone());
    for (name, value) in &destination.custom_headers {
        headers.set(name.clone(), value.clone());
    }
    let secrets = destination.secrets.at(now_nanos);
    let seconds = now_nanos.div_euclid(NANOS_PER_SECOND);
    let metadata = merged_metadata(settings, &destination.delivery_metadata, event, now_nanos);
    let prefix = &settings.prefix;
    match &settings.mode {
        ModeHeaders::Standard {
            id,
            timestamp,
            signature,
        } => {
            headers.set_value(id.clone(), &event.id)?;
            headers.set_value(timestamp.clone(), &seconds.to_string())?;
            if let Some(value) = standard_signature(&secrets, event, seconds)? {
                headers.set_value(signature.clone(), &value)?;
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
        ModeHeaders::Default {
            event_id,
            topic,
            timestamp,
            signature,
            signing,
        } => {
            for (key, value) in &metadata {
                let system = match key.as_str() {
                    "event-id" => event_id,
                    "topic" => topic,
                    "timestamp" => timestamp,
                    _ => {
                        headers.set_str(&format!("{prefix}{key}"), value)?;
                        continue;
                    }
                };
                if let Some(name) = system {
                    headers.set_value(name.clone(), value)?;
                }
            }
            if let (Some(name), Some(current)) = (signature, secrets.current) {
                let value = signing.header_value(event, now_nanos, current, secrets.previous)?;
                headers.set_value(name.clone(), &value)?;
            }
        }
    }
    Ok(headers.into_map())
}

/// `v1,<sig>[ v1,<previous sig>]`, or `None` without a current secret.
fn standard_signature(
    secrets: &SecretsAt<'_>,
    event: &Event,
    seconds: i64,
) -> Result<Option<String>, BuildError> {
    let Some(current) = secrets.current else {
        return Ok(None);
    };
    let body = event.data.as_bytes();
    let mut value = signing::standard_webhooks_signature(current, &event.id, seconds, body)?;
    if let Some(previous) = secrets.previous {
        value.push(' ');
        value.push_str(&signing::standard_webhooks_signature(
            previous, &event.id, seconds, body,
        )?);
    }
    Ok(Some(value))
}

/// system (`event-id`, `topic`, `timestamp`[, `timestamp-ms`]) < destination
/// `delivery_metadata` < event `metadata`; system keys first, then the rest by key.
fn merged_metadata(
    settings: &RequestSettings,
    delivery_metadata: &StrMap,
    event: &Event,
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
    if settings.include_millisecond_timestamp {
        system.push((
            "timestamp-ms".to_string(),
            timestamp::format_nanos(now_nanos),
        ));
    }
    let mut rest = StrMap::new();
    for map in [delivery_metadata, &event.metadata] {
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

impl DefaultSigning {
    /// Renders the content template, signs it with each secret, and renders the header
    /// template over the signatures.
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

/// An ordered header list where setting an existing name replaces its value in place.
#[derive(Default)]
struct HeaderList {
    map: HeaderMap,
}

impl HeaderList {
    fn set(&mut self, name: HttpHeaderName, value: HeaderValue) {
        self.map.insert(name, value);
    }

    fn set_value(&mut self, name: HttpHeaderName, value: &str) -> Result<(), BuildError> {
        let value = HeaderValue::from_str(value)
            .map_err(|_| BuildError::InvalidHeaderValue(name.as_str().to_string()))?;
        self.set(name, value);
        Ok(())
    }

    fn set_str(&mut self, name: &str, value: &str) -> Result<(), BuildError> {
        let name = HttpHeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BuildError::InvalidHeaderName(name.to_string()))?;
        self.set_value(name, value)
    }

    fn into_map(self) -> HeaderMap {
        self.map
    }
}
