//! The one error type of the HTTP API. Every 4xx and 5xx leaves as
//! `{"error":{"code":…,"message":…}}`, including the ones axum produces before a handler runs.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use shelfcast_protocol::wire::{ErrorBody, ErrorDetail};
use shelfcast_protocol::ErrorCode;

use crate::engine::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request itself is malformed.
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    /// 401: no usable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the credentials do not cover this location.
    #[error("{0}")]
    Forbidden(String),
    /// 403: an edge node asked about a location other than its own.
    #[error("{0}")]
    WrongLocation(String),
    /// 404: nothing here, or not for this token.
    #[error("{0}")]
    NotFound(String),
    /// 409: the stock is not there.
    /// `available` is `None` where the hub's disclosure withholds the number from this reader.
    #[error("not enough available")]
    InsufficientStock { available: Option<i64>, location: shelfcast_protocol::LocationId },
    /// 409: the reservation is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 409: the store directory is the hub's `--locations-file`.
    #[error("{0}")]
    FromFile(String),
    /// 413: over the size or count limits.
    #[error("{message}")]
    TooLarge { code: ErrorCode, message: String },
    /// 415: not a content type this endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: an idempotency key reused for a different request.
    #[error("this key was already used for a different reservation")]
    KeyReused,
    /// 422: well-formed, but cannot be carried out as asked.
    #[error("{message}")]
    Unprocessable { code: ErrorCode, message: String },
    /// 503: storage cannot take writes right now; nothing was changed.
    #[error("storage unavailable")]
    Unavailable,
    /// 503: an edge node cannot reach its hub for something only the hub decides.
    #[error("{0}")]
    HubUnreachable(String),
    /// 503: the position's partition is moving between hub replicas; nothing was changed.
    #[error("partition moving")]
    Moving,
    /// 500: a bug. Logged with detail, shown without.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What the writer refuses, as the API says it.
impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Unavailable => ApiError::Unavailable,
            WriteError::Moved => ApiError::Moving,
            WriteError::Internal(m) => ApiError::Internal(m),
            WriteError::NotFound => ApiError::no_reservation(),
            WriteError::Forbidden => ApiError::Forbidden("This device token may not act for that location.".into()),
            // Only `create` can run short, and it answers with the location itself.
            WriteError::Insufficient { available } => ApiError::Internal(format!("insufficient stock ({available}) outside create")),
            WriteError::KeyReused => ApiError::KeyReused,
            WriteError::Transition(t) => ApiError::Conflict(format!("{t}.")),
        }
    }
}

impl ApiError {
    /// A reservation that does not exist, or not for the token given: the two look the same.
    pub fn no_reservation() -> Self {
        ApiError::NotFound("No such reservation for this token.".into())
    }

    pub fn bad(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    fn parts(&self) -> (StatusCode, ErrorCode, String, Option<i64>) {
        match self {
            ApiError::BadRequest { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone(), None),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m.clone(), None),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, ErrorCode::ForbiddenLocation, m.clone(), None),
            ApiError::WrongLocation(m) => (StatusCode::FORBIDDEN, ErrorCode::WrongLocation, m.clone(), None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, ErrorCode::NotFound, m.clone(), None),
            ApiError::InsufficientStock { available, location } => (
                StatusCode::CONFLICT,
                ErrorCode::InsufficientStock,
                match available {
                    Some(n) => format!("Only {n} left at {location}: reserve fewer, or choose another store."),
                    None => format!("Not enough left at {location}: reserve fewer, or choose another store."),
                },
                *available,
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, ErrorCode::InvalidTransition, m.clone(), None),
            ApiError::FromFile(m) => (StatusCode::CONFLICT, ErrorCode::DirectoryFromFile, m.clone(), None),
            ApiError::TooLarge { code, message } => (StatusCode::PAYLOAD_TOO_LARGE, *code, message.clone(), None),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType, m.clone(), None),
            ApiError::KeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                "This key was already used for a different sku, location or quantity: use a fresh key.".into(),
                None,
            ),
            ApiError::Unprocessable { code, message } => (StatusCode::UNPROCESSABLE_ENTITY, *code, message.clone(), None),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "The hub cannot store changes right now; nothing was changed. Retry shortly.".into(),
                None,
            ),
            ApiError::HubUnreachable(m) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::HubUnreachable, m.clone(), None),
            ApiError::Moving => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "This part of the catalogue is moving between hub replicas; nothing was changed. Retry after the Retry-After seconds."
                    .into(),
                None,
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "Something went wrong inside the hub; nothing you sent was lost. Retry shortly.".into(),
                None,
            ),
        }
    }
}

pub fn error_response(status: StatusCode, code: ErrorCode, message: String, available: Option<i64>) -> Response<Body> {
    let body = ErrorBody { error: ErrorDetail { code: code.to_string(), message, available } };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response<Body> {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let (status, code, message, available) = self.parts();
        let mut response = error_response(status, code, message, available);
        // Nothing was changed and the cause passes by itself: say when to try again.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(1));
        }
        response
    }
}

/// Turns any error answer that is not already JSON (axum's 404, 405, 413, 415 and the like) into
/// the contract's JSON shape, so clients parse one format whatever went wrong.
pub async fn json_errors(res: Response<Body>) -> Response<Body> {
    let status = res.status();
    let is_json = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "There is nothing at this path. The API is described in the Shelfcast contract."),
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "This path does not take that HTTP method."),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "The request body is too large."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (ErrorCode::UnsupportedMediaType, "Send the body as application/json."),
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::RequestTimeout, "The request took too long to arrive."),
        s if s.is_server_error() => (ErrorCode::InternalError, "Something went wrong inside the hub. Retry shortly."),
        _ => (ErrorCode::BadRequest, "The request could not be understood."),
    };
    let mut out = error_response(status, code, message.to_string(), None);
    if let Some(allow) = res.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    for (name, value) in res.headers() {
        if name.as_str().starts_with("access-control-") {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}
