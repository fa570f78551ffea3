//! Static files, compiled into the binary so a copied binary is the whole app.

use axum::Router;
use axum::http::header;
use axum::routing::get;

use crate::app::AppState;

const CACHE: &str = "public, max-age=86400";
const JS: &str = "text/javascript";

/// (URL path, content type, body). Add a file here and it is served, compressed and cached.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/static/htmx.min.js", JS, include_str!("../../static/htmx.min.js")),
    ("/static/htmx-ext-sse.min.js", JS, include_str!("../../static/htmx-ext-sse.min.js")),
    ("/static/live.js", JS, include_str!("../../static/live.js")),
    ("/static/challenge.js", JS, include_str!("../../static/challenge.js")),
    ("/static/app.css", "text/css", include_str!("../../static/app.css")),
    ("/static/chat.js", JS, include_str!("../../static/chat.js")),
    ("/static/chat.css", "text/css", include_str!("../../static/chat.css")),
];

pub fn router() -> Router<AppState> {
    ASSETS.iter().fold(Router::new(), |router, &(path, content_type, body)| {
        router.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, CACHE)], body) }),
        )
    })
}
