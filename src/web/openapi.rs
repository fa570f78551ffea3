//! `GET /api/openapi.json`: the JSON API described in OpenAPI 3.1, generated from the
//! handlers' own request and response types and their `#[utoipa::path]` attributes, so the
//! description cannot drift from the code. `tests/it/openapi.rs` checks that every `/api` route
//! the routers declare is described and that every example validates against its schema.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "moa-workshop",
        description = "The JSON API of the Mixture-of-Agents workshop server. Errors are {\"error\": sentence} with \
            a 4xx/5xx status. Streams are server-sent events (text/event-stream); their events are listed with each \
            route.",
        license(name = "MIT")
    ),
    paths(
        crate::web::chat::api_run,
        crate::web::chat::providers,
        crate::web::participants::claim_api,
        crate::web::participants::me,
        crate::web::participants::sign_in_code_api,
        crate::web::participants::sign_in_api,
        crate::web::challenge::api_generate,
        crate::web::challenge::submit,
        crate::web::challenge::inspect,
        crate::web::evaluations::api_evaluate,
        crate::web::evaluations::api_compare,
        crate::web::evaluations::api_tune,
        crate::web::events::list,
        crate::web::leaderboard::api,
        crate::web::api::grade,
        openapi_json,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "chat", description = "MoA runs"),
        (name = "challenge", description = "Generations and submissions, as a participant"),
        (name = "participants", description = "Display names, tokens and sign-in codes"),
        (name = "grading", description = "Grading and the leaderboard"),
        (name = "meta", description = "This description"),
    )
)]
pub struct ApiDoc;

/// How callers prove who they are: the organizer's bearer token, or a participant's token in
/// a header (scripts) or its cookie (browsers).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "organizer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("ORGANIZER_TOKEN, as Authorization: Bearer …"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "participant_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Participant-Token",
                "The token POST /api/participants returned",
            ))),
        );
        components.add_security_scheme(
            "participant_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "moa_participant",
                "The same token, as the browser keeps it",
            ))),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(openapi_json))
}

/// `GET /api/openapi.json`: this description.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 description of this API", content_type = "application/json")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
