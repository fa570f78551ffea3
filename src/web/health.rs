//! `GET /healthz`: 200 once the database is migrated and the grader passed its self-test.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let database = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let (grader_ok, grader) = match &state.grader {
        Ok(grader) => (true, json!({ "ready": true, "sandbox": grader.layers() })),
        Err(problem) => (false, json!({ "ready": false, "problem": problem })),
    };
    let status = if database && grader_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({ "database": database, "grader": grader, "runs_in_flight": state.runs_in_flight() })))
}
