//! One error type for every handler: the user gets a sentence, the log gets the cause.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this (acting for another participant).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with what exists (a display name someone holds).
    #[error("{0}")]
    Conflict(String),
    /// Too much work right now; the client should retry after the given seconds.
    #[error("{message}")]
    Busy { message: String, retry_after_s: u64 },
    /// A feature that is not set up (no Python, no organizer token, ...).
    #[error("{0}")]
    Unavailable(String),
    /// The database cannot store anything right now (read-only, disk full, unreachable); the
    /// cause names which, so the organizer knows what to fix.
    #[error("The server cannot save right now: {0}.")]
    Storage(String),
    /// Our fault. The cause (with its own causes) is logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

/// What went wrong inside: any error, or a sentence saying what did.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl AppError {
    /// Our fault, with `cause` kept for the log (a `String`, `&str` or any error).
    pub fn internal(cause: impl Into<Cause>) -> AppError {
        AppError::Internal(cause.into())
    }
}

/// `error` and every cause below it, as one line for the log.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text += &format!(": {cause}");
        source = cause.source();
    }
    text
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) | AppError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The sentence a person sees.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => {
                "Something went wrong on the server; the organizers can find the details in its log.".into()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(cause) = &self {
            tracing::error!(cause = %chain(cause.as_ref()), "request failed");
        }
        if let AppError::Storage(cause) = &self {
            tracing::error!(%cause, "cannot write to the database");
        }
        let mut response = (self.status(), Json(ErrorBody { error: self.public_message() })).into_response();
        if let AppError::Busy { retry_after_s, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if let AppError::Storage(cause) = &self {
            // Read by the middleware that reports storage faults on /healthz.
            response.extensions_mut().insert(StorageFault(cause.clone()));
        }
        // Read by the middleware that answers browsers with an HTML page instead (web::error_page).
        response.extensions_mut().insert(ErrorSentence(self.public_message()));
        response
    }
}

/// What every error answer's body is.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "The request body is not valid: missing field `code`."}))]
pub struct ErrorBody {
    /// A sentence for a person: what went wrong and what to do.
    pub error: String,
}

/// Marks an error answer, with the sentence its JSON body carries.
#[derive(Debug, Clone)]
pub struct ErrorSentence(pub String);

/// Marks an answer that failed because the database could not store something.
#[derive(Debug, Clone)]
pub struct StorageFault(pub String);

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        match crate::store::storage_problem(&e) {
            Some(cause) => AppError::Storage(cause),
            None => AppError::internal(e),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::internal(e)
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::internal(e)
    }
}
