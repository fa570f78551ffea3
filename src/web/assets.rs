//! Static files, compiled into the binary so a copied binary is the whole app.
//!
//! Pages link to `/static/NAME?v=HASH` (see [`url`]): that URL names one exact content, so the
//! browser may keep it for a year without asking again — on bad Wi-Fi, a second page load
//! fetches no static file at all. A request without the matching hash (an old page, a
//! hand-typed URL) gets the file with an ETag and must revalidate, so it never sees a stale one.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

const JS: &str = "text/javascript";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// (URL path, content type, body). Add a file here and it is served, compressed and cached.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/static/htmx.min.js", JS, include_str!("../../static/htmx.min.js")),
    ("/static/htmx-ext-sse.min.js", JS, include_str!("../../static/htmx-ext-sse.min.js")),
    ("/static/live.js", JS, include_str!("../../static/live.js")),
    ("/static/app.css", "text/css", include_str!("../../static/app.css")),
    ("/static/chat.js", JS, include_str!("../../static/chat.js")),
    ("/static/chat.css", "text/css", include_str!("../../static/chat.css")),
];

/// Content hash of each asset, by URL path.
fn versions() -> &'static HashMap<&'static str, String> {
    static VERSIONS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    VERSIONS.get_or_init(|| ASSETS.iter().map(|&(path, _, body)| (path, content_hash(body))).collect())
}

/// FNV-1a: a cache key, not a security boundary, so a tiny hash without a dependency is enough.
fn content_hash(body: &str) -> String {
    let hash = body
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{hash:016x}")
}

/// The URL a page uses for a static file: its path plus its content hash. Called from templates
/// (`{{ crate::web::assets::url("/static/app.css") }}`); an unknown path is a programming error
/// that the page tests catch as a 404.
pub fn url(path: &str) -> String {
    match versions().get(path) {
        Some(version) => format!("{path}?v={version}"),
        None => path.to_string(),
    }
}

pub fn router() -> Router<AppState> {
    ASSETS.iter().fold(Router::new(), |router, &(path, content_type, body)| {
        router.route(path, get(move |query: RawQuery, headers: HeaderMap| async move { serve(path, content_type, body, query, &headers) }))
    })
}

fn serve(path: &str, content_type: &'static str, body: &'static str, query: RawQuery, headers: &HeaderMap) -> Response {
    let version = &versions()[path];
    // Weak: the compression layer may send the same content gzipped or not.
    let etag = format!("W/\"{version}\"");
    let cache = match query.0.as_deref().and_then(|q| q.strip_prefix("v=")) {
        Some(requested) if requested == version => IMMUTABLE,
        _ => REVALIDATE,
    };
    let etag_header = HeaderValue::from_str(&etag).expect("a hex ETag is a valid header value");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == &etag[2..]));
    if matches {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_header), (header::CACHE_CONTROL, HeaderValue::from_static(cache))],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::ETAG, etag_header),
        ],
        body,
    )
        .into_response()
}
