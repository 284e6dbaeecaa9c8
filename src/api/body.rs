//! Reading request bodies: bounded by `API_MAX_REQUEST_BODY_BYTES` (413 above it) and by
//! `HTTP_BODY_READ_TIMEOUT_SECONDS` (408 when the body is late), parsed as a JSON object (anything else is upstream's 422 `invalid JSON`), with typed field accessors that
//! treat a wrong JSON type the way upstream's decoder does.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::StatusCode;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::model::strmap;
use crate::model::StrMap;

/// Collects the body within `deadline`, refusing more than `limit` bytes; a body still
/// incomplete at the deadline gets 408 (the router then closes the connection).
pub async fn read_body(
    body: Incoming,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(deadline, read_limited(body, limit)).await {
        Ok(read) => read,
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {} s", deadline.as_secs()),
        )),
    }
}

/// Collects the body, refusing more than `limit` bytes.
pub async fn read_limited(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body exceeds {limit} bytes"),
                ))
            } else {
                Err(ApiError::bad_request("could not read request body"))
            }
        }
    }
}

/// A parsed JSON object body.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl JsonObject {
    /// Parses `bytes` as a JSON object; empty or anything else → 422 `invalid JSON`.
    pub fn parse(bytes: &[u8]) -> Result<JsonObject, ApiError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonObject(map)),
            _ => Err(ApiError::invalid_json()),
        }
    }

    /// Parses `bytes` as a JSON object like `parse`, but keeps the field `raw_field` as its raw
    /// text (borrowed from `bytes`) instead of building it into a value: one pass over a large
    /// payload, with its key order and number literals intact.
    pub fn parse_with_raw<'b>(
        bytes: &'b [u8],
        raw_field: &str,
    ) -> Result<(JsonObject, Option<&'b RawValue>), ApiError> {
        let mut fields: BTreeMap<String, &'b RawValue> =
            serde_json::from_slice(bytes).map_err(|_| ApiError::invalid_json())?;
        let raw = fields.remove(raw_field);
        let object = fields
            .into_iter()
            .map(|(key, value)| {
                serde_json::from_str::<Value>(value.get())
                    .map(|value| (key, value))
                    .map_err(|_| ApiError::invalid_json())
            })
            .collect::<Result<Map<String, Value>, ApiError>>()?;
        Ok((JsonObject(object), raw))
    }

    /// Whether the key is present (even as `null`).
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A string field: absent or `null` → `None`; another type → invalid JSON.
    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid_json()),
        }
    }

    /// A boolean field: absent or `null` → `None`; another type → invalid JSON.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid_json()),
        }
    }

    /// A `map<string,string>` field with upstream's coercion: absent → `None`, `null` →
    /// `Some(empty)`, object → coerced map, another type → invalid JSON.
    pub fn string_map(&self, key: &str) -> Result<Option<StrMap>, ApiError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(StrMap::new())),
            Some(value) => strmap::coerce_object(value)
                .map(Some)
                .ok_or_else(ApiError::invalid_json),
        }
    }

    /// An object field kept as JSON: absent → `None`; `null` → `Some(Null)`; object → itself;
    /// another type → invalid JSON.
    pub fn object_or_null(&self, key: &str) -> Result<Option<&Value>, ApiError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v @ (Value::Null | Value::Object(_))) => Ok(Some(v)),
            Some(_) => Err(ApiError::invalid_json()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_raw_field_verbatim_and_parses_the_rest() {
        let body = br#"{"tenant_id":"t","data":{"z":1.50,"a":[1, 2]},"metadata":{"k":"v"}}"#;
        let (object, raw) = JsonObject::parse_with_raw(body, "data").unwrap();
        assert_eq!(raw.unwrap().get(), r#"{"z":1.50,"a":[1, 2]}"#);
        assert!(!object.has("data"));
        assert_eq!(object.string("tenant_id").unwrap().as_deref(), Some("t"));
        assert!(object.raw("metadata").is_some_and(Value::is_object));
        let (_, missing) = JsonObject::parse_with_raw(br#"{"a":1}"#, "data").unwrap();
        assert!(missing.is_none());
        for bad in [&b""[..], b"[1]", b"{\"a\":", b"{} junk"] {
            assert!(JsonObject::parse_with_raw(bad, "data").is_err());
        }
    }
}
