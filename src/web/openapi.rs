//! `GET /api/openapi.json` (filled in by the next commit).

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
