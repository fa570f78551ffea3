//! `GET /healthz`: 200 once the database is migrated and writable and the grader passed its
//! self-test; 503 with the cause otherwise. A write that failed for a storage reason (disk
//! full, read-only) keeps it at 503 for a while, even if the probe write passes.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::{AppError, StorageFault};
use crate::state::AppState;
use crate::store;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let problem = match store::check_writable(&state.pool).await {
        Err(e) => Some(AppError::from(e).public_message()),
        Ok(()) => {
            state.storage.recent_fault().map(|(ago, cause)| format!("A write failed {} s ago: {cause}.", ago.as_secs()))
        }
    };
    let database = problem.is_none();
    let (grader_ok, grader) = match &state.grader {
        Ok(grader) => (true, json!({ "ready": true, "sandbox": grader.layers() })),
        Err(problem) => (false, json!({ "ready": false, "problem": problem })),
    };
    let status = if database && grader_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut body = json!({ "database": database, "grader": grader, "runs_in_flight": state.runs_in_flight() });
    if let Some(problem) = problem {
        body["database_problem"] = json!(problem);
    }
    (status, Json(body))
}

/// Middleware: remembers answers that failed because the database could not store something.
pub async fn note_storage_faults(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(StorageFault(cause)) = response.extensions().get::<StorageFault>() {
        state.storage.failed(cause);
    }
    response
}
