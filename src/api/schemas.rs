//! `GET /topics`, `GET /destination-types` and `GET /destination-types/:type`.

use hyper::StatusCode;
use serde_json::Value;

use super::error::ApiError;
use super::reply::{self, Reply};
use super::AppState;

/// The configured topics. Upstream emits `null` when `TOPICS` is unset; the official SDKs
/// reject `null` there, so we answer `[]`.
pub fn topics(state: &AppState) -> Reply {
    let topics = state.config.topics.clone().unwrap_or_default();
    reply::ok(&topics)
}

pub fn destination_types(state: &AppState) -> Reply {
    reply::ok(state.registry.list_json())
}

pub fn destination_type(state: &AppState, kind: &str) -> Result<Reply, ApiError> {
    let entry: &Value = state
        .registry
        .get_json(kind)
        .ok_or_else(|| ApiError::bare(StatusCode::NOT_FOUND))?;
    Ok(reply::ok(entry))
}
