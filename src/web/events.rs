//! Which challenges an event offers: the organizer's choice (kept in the database, so every
//! instance agrees), else `MOA_CHALLENGES`, else the default challenge. `GET /api/challenges`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::AppError;
use crate::grader::{Challenge, Challenges};
use crate::state::AppState;
use crate::store::{Pool, event};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/challenges", get(list))
}

/// The active challenges in the registry's order (the default challenge first): never empty
/// while any challenge is loaded. Ids no longer loaded (a folder removed) are skipped.
pub async fn active_in(
    pool: &Pool,
    challenges: &Challenges,
    configured: &[String],
) -> Result<Vec<Arc<Challenge>>, sqlx::Error> {
    let chosen = event::active_challenges(pool).await?.unwrap_or_else(|| configured.to_vec());
    let mut list: Vec<Arc<Challenge>> = challenges.all().iter().filter(|c| chosen.contains(&c.id)).cloned().collect();
    if list.is_empty() {
        list.extend(challenges.find(None).ok().cloned());
    }
    Ok(list)
}

pub async fn active(state: &AppState) -> Result<Vec<Arc<Challenge>>, AppError> {
    Ok(active_in(&state.pool, &state.challenges, &state.settings.active_challenges).await?)
}

fn ids(list: &[Arc<Challenge>]) -> String {
    list.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ")
}

/// A known challenge by id; `None` is the event's default (its first active one).
pub async fn known(state: &AppState, id: Option<&str>) -> Result<Arc<Challenge>, AppError> {
    let Some(id) = id.map(str::trim).filter(|id| !id.is_empty()) else {
        return event_default(state).await;
    };
    state.challenges.all().iter().find(|c| c.id == id).cloned().ok_or_else(|| {
        AppError::BadRequest(format!(
            "There is no challenge named {id:?}; this server has: {}.",
            ids(state.challenges.all())
        ))
    })
}

pub async fn event_default(state: &AppState) -> Result<Arc<Challenge>, AppError> {
    active(state).await?.into_iter().next().ok_or_else(|| AppError::internal("no challenge is loaded"))
}

/// A challenge attendees may work on now; `None` is the event's default one.
pub async fn open(state: &AppState, id: Option<&str>) -> Result<Arc<Challenge>, AppError> {
    let challenge = known(state, id).await?;
    let active = active(state).await?;
    if !active.iter().any(|c| c.id == challenge.id) {
        return Err(AppError::BadRequest(format!(
            "The challenge {:?} is not open in this event; pick one of: {}.",
            challenge.id,
            ids(&active)
        )));
    }
    Ok(challenge)
}

/// One challenge as `GET /api/challenges` lists it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Listed {
    id: String,
    title: String,
    max: u32,
    /// Whether attendees may pick it now.
    active: bool,
}

/// `GET /api/challenges`: every challenge this server has, and which ones the event offers.
#[utoipa::path(get, path = "/api/challenges", tag = "challenge",
    responses((status = 200, description = "Every loaded challenge, the default first", body = Vec<Listed>)))]
async fn list(State(state): State<AppState>) -> Result<Json<Vec<Listed>>, AppError> {
    let active = active(&state).await?;
    Ok(Json(
        state
            .challenges
            .all()
            .iter()
            .map(|c| Listed {
                id: c.id.clone(),
                title: c.title.clone(),
                max: c.max_points(),
                active: active.iter().any(|a| a.id == c.id),
            })
            .collect(),
    ))
}
