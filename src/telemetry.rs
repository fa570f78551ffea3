//! Logging: human text or one JSON object per line on stderr (`MOA_LOG_FORMAT`), and a request
//! id on every line a request causes, its own background work included.
//!
//! The id comes from the client's (or proxy's) `x-request-id` when that is a short plain token,
//! else a fresh UUID; the response carries it back, so a person reporting a problem can quote
//! it. Request lines name the method and path only: never headers, queries or bodies, which
//! is where keys, tokens and cookies travel.

use axum::extract::Request;
use axum::http::HeaderName;
use tower_http::request_id::RequestId;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The header that carries a request's id, both ways.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Incoming ids longer than this, or with other characters than letters, digits, `-`, `_`,
/// `.`, are replaced: they end up in every log line, where they must not forge one.
const MAX_REQUEST_ID_CHARS: usize = 64;

/// Installs the process's log writer; `RUST_LOG` overrides `default_filter`.
pub fn init(default_filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            // Colours only for a person at a terminal, not in log files or `docker logs`.
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            builder.with_ansi(ansi).try_init()
        }
        // Each line carries its spans (the request's among them) with their fields.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).try_init(),
    };
}

/// Drops an incoming `x-request-id` that is not a short plain token, so one is made instead.
pub async fn screen_request_id(mut request: Request) -> Request {
    let usable = request.headers().get(&REQUEST_ID_HEADER).is_some_and(|value| {
        let bytes = value.as_bytes();
        (1..=MAX_REQUEST_ID_CHARS).contains(&bytes.len())
            && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if !usable {
        request.headers_mut().remove(&REQUEST_ID_HEADER);
    }
    request
}

/// The span every line of a request is written in: its id, method and path.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
}

/// `tokio::spawn` for work a request starts and that outlives its handler: the task's log
/// lines stay in the request's span, with its id.
pub fn spawn_in_current_span<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(tracing::Instrument::in_current_span(task))
}
