//! One error shape for every response: `{"error": {"code": "...", "message": "..."}}`.
//!
//! 500s are logged with their cause and shown to the client only as "internal error": causes
//! (SQL, decryption, NATS) never reach a response.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Unknown and forbidden look the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Unavailable for now, with when to retry (`Retry-After`): the gateway is at a bound it
    /// keeps on purpose (password hashing workers, database connections, a query's time).
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `validation_failed`, `payload_too_large`, `rate_limited`, `unavailable`,
    /// `internal`.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "validation_failed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) | ApiError::Busy { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::Unprocessable(message.into())
    }

    /// 422 unless `value` can be stored: PostgreSQL's `text` and `jsonb` refuse the NUL
    /// character (the same rule the services apply to what arrives on NATS).
    pub fn storable(field: &str, value: &str) -> Result<(), Self> {
        flick_shared::wire::check_no_nul(field, value).map_err(|message| {
            ApiError::Unprocessable(format!("{message}, which cannot be stored"))
        })
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }
}

/// SQLSTATE of a statement cancelled by `statement_timeout` (or a cancel request).
const QUERY_CANCELED: &str = "57014";

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            // Every connection is busy: a bound, not a fault.
            sqlx::Error::PoolTimedOut => ApiError::Busy {
                message: "the database is busy; retry shortly".into(),
                retry_after_secs: 1,
            },
            sqlx::Error::Database(db) if db.code().as_deref() == Some(QUERY_CANCELED) => {
                ApiError::Busy {
                    message: "the query took longer than this gateway allows (gateway.statement_timeout_ms); ask for a shorter range or a larger bucket".into(),
                    retry_after_secs: 5,
                }
            }
            _ => ApiError::Internal(anyhow::Error::new(err).context("database")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %flick_shared::telemetry::one_line(cause), "Request failed");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code(),
                    message,
                },
            }),
        )
            .into_response();
        let retry_after = match self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Busy {
                retry_after_secs, ..
            } => Some(retry_after_secs),
            _ => None,
        };
        if let Some(retry_after_secs) = retry_after
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// `Json<T>` whose rejections are API errors: malformed JSON is 400, JSON of the wrong shape is
/// 422, a missing content type 415-like 400, each with a message saying what is wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(err) => ApiError::Unprocessable(err.body_text()),
                JsonRejection::JsonSyntaxError(err) => ApiError::BadRequest(err.body_text()),
                JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(
                    "expected a JSON body with content-type: application/json".into(),
                ),
                JsonRejection::BytesRejection(err)
                    if err.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::PayloadTooLarge("the request body is too large".into())
                }
                other => ApiError::BadRequest(other.body_text()),
            }),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
