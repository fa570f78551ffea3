//! HTTP: one module per feature, each exposing `router()`; this file assembles them.

mod api;
pub mod assets;
mod challenge;
mod charts;
mod chat;
mod config_panel;
mod error_page;
mod evaluations;
pub mod events;
pub mod fair_use;
mod health;
pub mod https;
mod json;
pub mod leaderboard;
mod markdown;
pub mod metrics;
pub mod openapi;
mod organizer;
mod pages;
mod participants;
pub mod results;
pub mod run_stream;
pub mod run_view;
pub mod server;

use std::time::Duration;

use axum::http::StatusCode;
use axum::{Router, middleware};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::state::AppState;

pub fn build_router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(pages::router())
        .merge(chat::router())
        .merge(config_panel::router())
        .merge(api::router())
        .merge(challenge::router())
        .merge(evaluations::router())
        .merge(events::router())
        .merge(participants::router())
        .merge(leaderboard::router())
        .merge(organizer::router())
        .merge(assets::router())
        .merge(metrics::router(state.settings.metrics_enabled))
        .merge(openapi::router())
        .fallback(error_page::not_found)
        .layer(middleware::from_fn(error_page::for_browsers))
        .layer(middleware::from_fn(metrics::count_streams))
        .layer(CompressionLayer::new())
        // Headers must come within this time; streamed bodies may run longer.
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(90)))
        .layer(middleware::from_fn_with_state(state.clone(), health::note_storage_faults))
        .layer(middleware::from_fn_with_state(state.clone(), https::same_origin_only))
        .layer(middleware::from_fn(https::security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), https::proxy_headers))
        // One line per answered request, in the request's span (its id, method and path).
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(crate::telemetry::REQUEST_ID_HEADER.clone()))
        .layer(SetRequestIdLayer::new(crate::telemetry::REQUEST_ID_HEADER.clone(), MakeRequestUuid))
        .layer(middleware::map_request(crate::telemetry::screen_request_id))
        // Outside the trace layer, so no request logging can print a key a participant sent.
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            axum::http::header::COOKIE,
            run_stream::USER_KEY_HEADER.clone(),
            participants::TOKEN_HEADER.clone(),
        ]))
        .with_state(state)
}
