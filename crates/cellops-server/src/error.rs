//! Errors are responses: JSON `{"error": {"code", "message", "field"}}` with a 4xx for the
//! caller's faults and a 5xx with a correlation id (details only in the log) for ours.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cellops_ledger::LedgerError;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(mut self, field: &str) -> ApiError {
        self.field = Some(field.to_string());
        self
    }

    pub fn bad_request(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).field(field)
    }

    pub fn unauthenticated(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        let correlation: u64 = rand::random();
        tracing::error!(correlation = format!("{correlation:016x}"), error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!(
                "the server failed; nothing of this request was recorded (correlation id {correlation:016x})"
            ),
        )
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> ApiError {
        match &e {
            LedgerError::InvalidRecord { field, rule } => {
                ApiError::bad_request(field, rule.clone())
            }
            LedgerError::UnknownEventType { .. } => {
                ApiError::bad_request("event_type", e.to_string())
            }
            LedgerError::IdempotencyConflict { .. } => {
                ApiError::conflict(e.to_string()).field("Idempotency-Key")
            }
            LedgerError::NoSuchRecord { .. } => ApiError::not_found(e.to_string()),
            LedgerError::BadProofRequest(m) => ApiError::bad_request("query", m.clone()),
            LedgerError::StorageFull { .. } => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                e.to_string(),
            ),
            _ => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "code": self.code, "message": self.message, "field": self.field }
        });
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
