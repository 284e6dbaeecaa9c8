//! What a webhook destination's record says, parsed once when the destination is prepared:
//! the URL, the custom headers, the signing secrets (with the previous secret's expiry as an
//! instant) and the delivery metadata. Which secrets sign is still decided per delivery, from
//! the time of the attempt.

use hyper::header::{HeaderName as HttpHeaderName, HeaderValue};
use hyper::Uri;

use crate::model::destination::Destination;
use crate::model::StrMap;
use crate::time as timestamp;

/// Why a webhook destination cannot be delivered to (every attempt fails with `ERR`).
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("destination has no config.url")]
    MissingUrl,
    #[error("config.url is not an http(s) URL")]
    InvalidUrl,
    #[error("config.custom_headers is not a JSON object of strings")]
    InvalidCustomHeaders,
    #[error("config.custom_headers: invalid header name {0:?}")]
    InvalidHeaderName(String),
    #[error("config.custom_headers: invalid value for header {0:?}")]
    InvalidHeaderValue(String),
}

/// A webhook destination, parsed.
#[derive(Debug)]
pub(super) struct WebhookDestination {
    pub id: String,
    pub uri: Uri,
    /// In the order they are sent (by name, as upstream's JSON decoding orders them).
    pub custom_headers: Vec<(HttpHeaderName, HeaderValue)>,
    pub secrets: Secrets,
    pub delivery_metadata: StrMap,
}

/// The destination's signing secrets.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Secrets {
    current: Option<String>,
    /// The previous secret and the instant (unix nanos) from which it no longer signs. Only
    /// kept when there is a current secret and the instant parses.
    previous: Option<(String, i128)>,
}

/// The secrets that sign a delivery made at a given time.
pub(super) struct SecretsAt<'a> {
    pub current: Option<&'a str>,
    pub previous: Option<&'a str>,
}

impl Secrets {
    fn parse(credentials: &StrMap) -> Secrets {
        let get = |key: &str| credentials.get(key).filter(|v| !v.is_empty());
        let current = get("secret").cloned();
        let previous = match (
            &current,
            get("previous_secret"),
            get("previous_secret_invalid_at"),
        ) {
            (Some(_), Some(previous), Some(invalid_at)) => timestamp::parse_rfc3339(invalid_at)
                .ok()
                .map(|at| (previous.clone(), at.unix_nanos)),
            _ => None,
        };
        Secrets { current, previous }
    }

    /// The current secret, and the previous one while `now < previous_secret_invalid_at`.
    pub fn at(&self, now_nanos: i64) -> SecretsAt<'_> {
        SecretsAt {
            current: self.current.as_deref(),
            previous: self
                .previous
                .as_ref()
                .filter(|(_, invalid_at)| i128::from(now_nanos) < *invalid_at)
                .map(|(secret, _)| secret.as_str()),
        }
    }
}

impl WebhookDestination {
    pub fn parse(destination: &Destination) -> Result<WebhookDestination, DestinationError> {
        Ok(WebhookDestination {
            id: destination.id.to_string(),
            uri: destination_uri(&destination.config)?,
            custom_headers: custom_headers(&destination.config)?,
            secrets: Secrets::parse(&destination.credentials),
            delivery_metadata: destination.delivery_metadata.clone(),
        })
    }
}

/// `config.url`: an absolute http(s) URL with a host.
fn destination_uri(config: &StrMap) -> Result<Uri, DestinationError> {
    let url = config
        .get("url")
        .filter(|u| !u.is_empty())
        .ok_or(DestinationError::MissingUrl)?;
    let uri: Uri = url.parse().map_err(|_| DestinationError::InvalidUrl)?;
    let http = matches!(uri.scheme_str(), Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    if !http || uri.host().is_none_or(str::is_empty) {
        return Err(DestinationError::InvalidUrl);
    }
    Ok(uri)
}

/// `config.custom_headers`: a JSON string of an object of strings; absent/empty = none.
fn custom_headers(config: &StrMap) -> Result<Vec<(HttpHeaderName, HeaderValue)>, DestinationError> {
    let Some(text) = config
        .get("custom_headers")
        .filter(|t| !t.trim().is_empty())
    else {
        return Ok(Vec::new());
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| DestinationError::InvalidCustomHeaders)?;
    object
        .into_iter()
        .map(|(name, value)| {
            let serde_json::Value::String(value) = value else {
                return Err(DestinationError::InvalidCustomHeaders);
            };
            let header = HttpHeaderName::from_bytes(name.as_bytes())
                .map_err(|_| DestinationError::InvalidHeaderName(name.clone()))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| DestinationError::InvalidHeaderValue(name))?;
            Ok((header, value))
        })
        .collect()
}
