//! The API's error type and upstream's error body `{status, message, data}`. Some upstream
//! paths answer with an empty body; `ApiError::bare` covers those.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::reply::{self, Reply};
use crate::model::ids::IdError;
use crate::model::secret::SecretError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// `None` → empty body.
    pub message: Option<String>,
    pub data: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: Some(message.into()),
            data: None,
        }
    }

    pub fn with_data(status: StatusCode, message: impl Into<String>, data: Value) -> ApiError {
        ApiError {
            status,
            message: Some(message.into()),
            data: Some(data),
        }
    }

    /// An error answered with the status code and no body at all.
    pub fn bare(status: StatusCode) -> ApiError {
        ApiError {
            status,
            message: None,
            data: None,
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

    pub fn into_reply(self) -> Reply {
        match self.message {
            None => reply::empty(self.status),
            Some(message) => {
                let mut body = json!({"status": self.status.as_u16(), "message": message});
                if let Some(data) = self.data {
                    body["data"] = data;
                }
                reply::json(self.status, &body)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        tracing::error!(%error, "store failure while serving a request");
        ApiError::internal()
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
