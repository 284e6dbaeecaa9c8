//! The JSON request bodies of `POST /publish`, `POST`/`PATCH` destinations and `PUT` tenants,
//! parsed and checked without any server state: the fields each handler reads, the type rules
//! of upstream's decoder (a wrong type is 422 `invalid JSON`) and the missing-field validation,
//! in the order upstream reports them. The handlers call these first, then do what needs the
//! store, the caller or the destination registry.

use serde_json::value::RawValue;
use serde_json::Value;

use super::body::JsonObject;
use super::error::ApiError;
use crate::model::topics::{TopicRules, TopicsError};
use crate::model::{strmap, StrMap};
use crate::time::{self, OffsetTimestamp};

/// A `POST /publish` body. `data` is the raw text the publisher sent (key order and number
/// literals intact), borrowed from the request bytes.
#[derive(Debug)]
pub struct PublishBody<'b> {
    pub id: Option<String>,
    pub tenant_id: String,
    pub destination_id: String,
    pub topic: String,
    pub eligible_for_retry: bool,
    pub time: Option<OffsetTimestamp>,
    pub metadata: StrMap,
    pub data: &'b RawValue,
}

impl<'b> PublishBody<'b> {
    /// Parses and checks a publish body; the topic is checked later against the server's rules.
    pub fn parse(bytes: &'b [u8]) -> Result<PublishBody<'b>, ApiError> {
        let (body, data) = JsonObject::parse_with_raw(bytes, "data")?;
        let id = body.string("id")?.filter(|id| !id.is_empty());
        let tenant_id = body.string("tenant_id")?.filter(|t| !t.is_empty());
        let destination_id = body.string("destination_id")?.unwrap_or_default();
        let topic = body.string("topic")?.unwrap_or_default();
        let eligible_for_retry = body.boolean("eligible_for_retry")?.unwrap_or(true);
        let time = match body.string("time")? {
            Some(text) => {
                Some(time::parse_rfc3339_with_offset(&text).map_err(|_| ApiError::invalid_json())?)
            }
            None => None,
        };
        let metadata = strict_metadata(&body)?;

        let mut problems = Vec::new();
        if tenant_id.is_none() {
            problems.push("tenant_id is required".to_string());
        }
        let data = data.filter(|d| d.get().trim_start().starts_with('{'));
        if data.is_none() {
            problems.push("data must be a valid JSON object".to_string());
        }
        let (Some(tenant_id), Some(data)) = (tenant_id, data) else {
            return Err(ApiError::validation(problems));
        };
        Ok(PublishBody {
            id,
            tenant_id,
            destination_id,
            topic,
            eligible_for_retry,
            time,
            metadata,
            data,
        })
    }
}

/// Publish `metadata` is a strict `map<string,string>`: a non-string value is invalid JSON.
fn strict_metadata(body: &JsonObject) -> Result<StrMap, ApiError> {
    match body.raw("metadata") {
        None | Some(Value::Null) => Ok(StrMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::invalid_json()),
            })
            .collect(),
        Some(_) => Err(ApiError::invalid_json()),
    }
}

/// A `POST /tenants/:id/destinations` body, up to the missing-field validation. The
/// timestamps are still text: whether they may be set depends on the caller.
#[derive(Debug)]
pub struct CreateDestinationBody {
    pub body: JsonObject,
    pub id: Option<String>,
    pub kind: String,
    pub topics: Value,
    pub filter: Option<String>,
    pub config: StrMap,
    pub credentials: StrMap,
    pub delivery_metadata: StrMap,
    pub metadata: StrMap,
    /// `created_at` or `updated_at` is present.
    pub sets_timestamps: bool,
}

impl CreateDestinationBody {
    pub fn parse(bytes: &[u8]) -> Result<CreateDestinationBody, ApiError> {
        let body = JsonObject::parse(bytes)?;
        let id = body.string("id")?.filter(|id| !id.is_empty());
        let kind = body.string("type")?.filter(|k| !k.is_empty());
        let topics = body.raw("topics").filter(|v| !v.is_null()).cloned();
        let filter = body.object_or_null("filter")?.and_then(stored_filter);
        let config = body.string_map("config")?.unwrap_or_default();
        let credentials = body.string_map("credentials")?.unwrap_or_default();
        let delivery_metadata = body.string_map("delivery_metadata")?.unwrap_or_default();
        let metadata = body.string_map("metadata")?.unwrap_or_default();
        let created_field = body.string("created_at")?;
        let updated_field = body.string("updated_at")?;
        body.string("disabled_at")?;

        let mut missing = Vec::new();
        if kind.is_none() {
            missing.push("type is required".to_string());
        }
        if topics.is_none() {
            missing.push("topics is required".to_string());
        }
        let (Some(kind), Some(topics)) = (kind, topics) else {
            return Err(ApiError::validation(missing));
        };
        Ok(CreateDestinationBody {
            id,
            kind,
            topics,
            filter,
            config,
            credentials,
            delivery_metadata,
            metadata,
            sets_timestamps: created_field.is_some() || updated_field.is_some(),
            body,
        })
    }
}

/// A `PATCH /tenants/:id/destinations/:did` body: every field optional; the map fields are
/// merge patches (`null` or an object).
#[derive(Debug)]
pub struct UpdateDestinationBody {
    pub kind: Option<String>,
    pub topics: Option<Vec<String>>,
    /// `Some(None)`: the filter is cleared.
    pub filter: Option<Option<String>>,
    pub config: Option<Value>,
    pub credentials: Option<Value>,
    pub delivery_metadata: Option<Value>,
    pub metadata: Option<Value>,
    /// `Some(None)`: the destination is enabled.
    pub disabled_at: Option<Option<i64>>,
}

impl UpdateDestinationBody {
    pub fn parse(
        bytes: &[u8],
        rules: &TopicRules,
        now_ms: i64,
    ) -> Result<UpdateDestinationBody, ApiError> {
        let body = JsonObject::parse(bytes)?;
        let kind = body.string("type")?;
        let topics = match body.raw("topics").filter(|v| !v.is_null()) {
            Some(value) => Some(rules.destination_topics(value).map_err(topics_error)?),
            None => None,
        };
        let filter = body.object_or_null("filter")?.map(stored_filter);
        let config = map_patch(&body, "config")?;
        let credentials = map_patch(&body, "credentials")?;
        let delivery_metadata = map_patch(&body, "delivery_metadata")?;
        let metadata = map_patch(&body, "metadata")?;
        let disabled_at = if body.has("disabled_at") {
            Some(past_timestamp(&body, "disabled_at", now_ms)?)
        } else {
            None
        };
        Ok(UpdateDestinationBody {
            kind,
            topics,
            filter,
            config,
            credentials,
            delivery_metadata,
            metadata,
            disabled_at,
        })
    }
}

/// The `metadata` of a `PUT /tenants/:id` body; an empty body is no metadata.
pub fn tenant_metadata(bytes: &[u8]) -> Result<StrMap, ApiError> {
    if bytes.is_empty() {
        return Ok(StrMap::new());
    }
    Ok(JsonObject::parse(bytes)?
        .string_map("metadata")?
        .unwrap_or_default())
}

/// A destination `topics` error as upstream answers it.
pub fn topics_error(error: TopicsError) -> ApiError {
    ApiError::unprocessable(match error {
        TopicsError::InvalidTopics => "validation failed: invalid topics",
        TopicsError::InvalidFormat => "validation failed: invalid topics format",
    })
}

/// A client-supplied timestamp field in milliseconds; malformed → invalid JSON (as upstream's
/// decoder), in the future → 422.
pub fn past_timestamp(
    body: &JsonObject,
    field: &str,
    now_ms: i64,
) -> Result<Option<i64>, ApiError> {
    let Some(text) = body.string(field)? else {
        return Ok(None);
    };
    let ms = time::parse_rfc3339(&text)
        .map_err(|_| ApiError::invalid_json())?
        .unix_millis();
    if ms > now_ms {
        return Err(ApiError::unprocessable(format!(
            "{field} cannot be in the future"
        )));
    }
    Ok(Some(ms))
}

/// The filter as stored: `None` for `null`/`{}`, else compact JSON text of the object.
fn stored_filter(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) if !map.is_empty() => Some(value.to_string()),
        _ => None,
    }
}

/// A map field of a PATCH body: absent → `None`; `null` or an object → the patch; otherwise
/// invalid JSON.
fn map_patch(body: &JsonObject, field: &str) -> Result<Option<Value>, ApiError> {
    Ok(body.object_or_null(field)?.cloned())
}

/// A stored map with a merge patch applied; `None` leaves it as it is.
pub fn apply_patch(current: &StrMap, patch: &Option<Value>) -> StrMap {
    match patch {
        Some(patch) => strmap::merge_patch(current, patch).unwrap_or_else(|| current.clone()),
        None => current.clone(),
    }
}
