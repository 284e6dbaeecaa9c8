//! The API's error type and upstream's error body `{status, message, data}`. Some upstream
//! paths answer with an empty body; `ApiError::bare` covers those. A store that cannot write
//! its data file for now (the disk is full) answers 503 with `Retry-After`, naming the cause.

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::StatusCode;
use serde_json::{json, Value};

use super::reply::{self, Reply};
use crate::disk_budget::RETRY_AFTER_SECONDS;
use crate::model::ids::IdError;
use crate::model::secret::SecretError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// `None` → empty body.
    pub message: Option<String>,
    pub data: Option<Value>,
    /// Seconds for a `Retry-After` header; `None`: no header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: Some(message.into()),
            data: None,
            retry_after: None,
        }
    }

    pub fn with_data(status: StatusCode, message: impl Into<String>, data: Value) -> ApiError {
        ApiError {
            status,
            message: Some(message.into()),
            data: Some(data),
            retry_after: None,
        }
    }

    /// An error answered with the status code and no body at all.
    pub fn bare(status: StatusCode) -> ApiError {
        ApiError {
            status,
            message: None,
            data: None,
            retry_after: None,
        }
    }

    pub fn invalid_json() -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid JSON")
    }

    /// 422 `validation error` with the list of field messages.
    pub fn validation(messages: Vec<String>) -> ApiError {
        ApiError::with_data(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation error",
            Value::from(messages),
        )
    }

    pub fn unprocessable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// Adds a `Retry-After` of `seconds` to the answer.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    pub fn into_reply(self) -> Reply {
        let mut reply = match self.message {
            None => reply::empty(self.status),
            Some(message) => {
                let mut body = json!({"status": self.status.as_u16(), "message": message});
                if let Some(data) = self.data {
                    body["data"] = data;
                }
                reply::json(self.status, &body)
            }
        };
        if let Some(seconds) = self.retry_after {
            reply
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        reply
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if error.is_storage_failure() {
            tracing::warn!(%error, "request refused: the data file cannot be used for now");
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, storage_message(&error))
                .retry_after(RETRY_AFTER_SECONDS);
        }
        tracing::error!(%error, "store failure while serving a request");
        ApiError::internal()
    }
}

/// What a client is told when the data file cannot be used: the cause first ("the disk is
/// full: ..."), and that nothing was stored when that is so.
fn storage_message(error: &StoreError) -> String {
    match error {
        StoreError::WriteFailed { .. }
        | StoreError::Unavailable { .. }
        | StoreError::NoSpace { .. } => error.to_string(),
        _ if error.is_disk_full() => format!("the disk is full: {error}"),
        _ if error.is_failed_handle() => {
            "the data file is being opened again after a failed write; try again shortly"
                .to_string()
        }
        _ => format!("the data file cannot be used for now: {error}"),
    }
}

impl From<IdError> for ApiError {
    fn from(error: IdError) -> ApiError {
        tracing::error!(%error, "id generation failed while serving a request");
        ApiError::internal()
    }
}

impl From<SecretError> for ApiError {
    fn from(error: SecretError) -> ApiError {
        tracing::error!(%error, "secret generation failed while serving a request");
        ApiError::internal()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn answer(error: StoreError) -> (StatusCode, Option<String>, Value) {
        let reply = ApiError::from(error).into_reply();
        let status = reply.status();
        let retry_after = reply
            .headers()
            .get(RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let bytes = reply.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).expect("json body");
        (status, retry_after, body)
    }

    #[tokio::test]
    async fn a_full_disk_answers_503_with_retry_after_naming_it() {
        let failed = StoreError::WriteFailed {
            disk_full: true,
            reason: "storage error: I/O error: No space left on device (os error 28)".into(),
        };
        let (status, retry_after, body) = answer(failed).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("5"));
        assert_eq!(body["status"], json!(503));
        let message = body["message"].as_str().expect("message");
        assert!(message.starts_with("the disk is full: "), "{message}");
        assert!(
            message.ends_with("nothing of this write was stored"),
            "{message}"
        );
        assert!(body.get("data").is_none(), "{body}");

        let io = StoreError::Storage(redb::Error::Io(std::io::Error::from_raw_os_error(28)));
        let (status, _, body) = answer(io).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("the disk is full: ")));

        let stale = StoreError::Storage(redb::Error::PreviousIo);
        let (status, retry_after, body) = answer(stale).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after.is_some());
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("opened again after a failed write")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn other_store_failures_stay_500_without_retry_after() {
        let corrupt = StoreError::Corrupt {
            table: "events",
            reason: "bad".into(),
        };
        let (status, retry_after, body) = answer(corrupt).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry_after, None);
        assert_eq!(body["message"], json!("internal server error"));
    }
}
