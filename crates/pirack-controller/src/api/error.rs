//! API errors: an HTTP status and a JSON body with a stable code and a message.

use crate::error::OpError;
use crate::store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, for programs: `unauthorized`, `forbidden`, `not_found`, `bad_request`,
    /// `conflict`, `method_not_allowed`, `payload_too_large`, `uri_too_long`,
    /// `too_many_requests`, `bad_gateway`, `unavailable`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
            },
        }
    }
    pub fn unauthorized(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m)
    }
    pub fn forbidden(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", m)
    }
    pub fn not_found(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }
    pub fn conflict(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", m)
    }
    /// The switch (or another peer the answer needs) did not answer properly.
    pub fn bad_gateway(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", m)
    }
    pub fn method_not_allowed(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", m)
    }
    pub fn payload_too_large(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m)
    }
    pub fn uri_too_long(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::URI_TOO_LONG, "uri_too_long", m)
    }
    pub fn too_many_requests(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", m)
    }
    pub fn unavailable(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
    }
    pub fn internal(m: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("API: {}", self.body.message);
        }
        (self.status, Json(self.body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NoSlot(s) => ApiError::not_found(format!("no slot {s}")),
            StoreError::Illegal(i) => ApiError::conflict(i.to_string()),
            StoreError::Conflict(_) => ApiError::conflict(e.to_string()),
            StoreError::Invalid(m) => ApiError::bad_request(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// The one place an operation's error becomes an HTTP status.
impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        let message = e.to_string();
        match e {
            OpError::Store(s) => s.into(),
            OpError::NotInPlan(_) | OpError::NoHeldBoard(_) => ApiError::not_found(message),
            OpError::Image { .. } | OpError::UnknownOwner(_) | OpError::NotFree(_) => {
                ApiError::bad_request(message)
            }
            OpError::Illegal(_) | OpError::Busy { .. } | OpError::BackupBusy { .. } => {
                ApiError::conflict(message)
            }
            OpError::Backup(crate::backup::BackupError::NotConfigured) => {
                ApiError::not_found(message)
            }
            OpError::Backup(
                crate::backup::BackupError::NoSnapshot { .. }
                | crate::backup::BackupError::NoTarget(_),
            ) => ApiError::bad_request(message),
            OpError::Backup(_) => ApiError::bad_gateway(message),
            OpError::Power(_) => ApiError::bad_gateway(message),
            OpError::Root(_) | OpError::Export(_) | OpError::Internal(_) => {
                ApiError::internal(message)
            }
        }
    }
}
