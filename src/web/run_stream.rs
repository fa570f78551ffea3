//! A MoA run as a server-sent event stream, shared by `POST /api/moa` and the challenge.
//!
//! The engine runs in its own task and writes events into a channel; the response body reads
//! that channel. When the browser goes away the body is dropped, the channel closes and the
//! engine stops (no further LLM calls). On server shutdown the stream ends with an `error`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::{mpsc, watch};

use crate::app::AppState;
use crate::error::AppError;
use crate::llm::Endpoint;
use crate::moa::{self, Event, Plan, RunError, RunSummary, Runner};

/// A comment line this often keeps proxies and phones from dropping a quiet stream and lets
/// the page tell a stalled connection from a slow model.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The configured provider endpoint, or a 503 saying how to configure one. The provider is
/// never called without a key.
pub fn endpoint(state: &AppState) -> Result<Endpoint, AppError> {
    let api_key = state.settings.llm_api_key.clone().ok_or_else(|| {
        AppError::Unavailable(
            "No API key is set on this server: start it with LLM_API_KEY (or CEREBRAS_API_KEY) in its \
             environment or in a .env file."
                .into(),
        )
    })?;
    Ok(Endpoint { base_url: state.settings.llm_base_url.clone(), api_key })
}

/// Starts `plan` and returns its event stream. `finish` turns a successful run into the final
/// `done` payload (the challenge adds its generation there) or an error sentence.
pub fn stream_run<F, Fut>(state: &AppState, endpoint: Endpoint, plan: Plan, finish: F) -> Response
where
    F: FnOnce(RunSummary) -> Fut + Send + 'static,
    Fut: Future<Output = Result<RunSummary, String>> + Send,
{
    let (events, received) = mpsc::unbounded_channel();
    let provider = state.llm.clone();
    let retry_window = state.settings.llm_retry_window;
    let active = ActiveRun::start(&state.active_runs);
    tokio::spawn(async move {
        let _active = active;
        let runner = Runner { provider: provider.as_ref(), endpoint: &endpoint, retry_window };
        let last = match moa::run(&runner, &plan, &events).await {
            Ok(summary) => {
                tracing::info!(
                    ms = summary.ms,
                    calls = summary.calls,
                    failed_agents = summary.failed_agents,
                    "moa run finished"
                );
                match finish(summary).await {
                    Ok(summary) => Event::Done(summary),
                    Err(message) => Event::error(message),
                }
            }
            Err(RunError::Cancelled) => {
                tracing::info!("moa run cancelled: the client went away");
                return;
            }
            Err(error) => {
                tracing::info!(%error, "moa run failed");
                Event::error(error.to_string())
            }
        };
        let _ = events.send(last);
    });
    let mut response = Sse::new(frames(received, state.shutdown.clone()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    // Tells nginx-style proxies not to hold the stream back.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Counts a run as active from its start until its engine task ends, however it ends.
struct ActiveRun(Arc<AtomicUsize>);

impl ActiveRun {
    fn start(counter: &Arc<AtomicUsize>) -> ActiveRun {
        counter.fetch_add(1, Ordering::SeqCst);
        ActiveRun(counter.clone())
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Engine events as SSE frames, ending after `done`/`error`, or early on shutdown.
fn frames(
    received: mpsc::UnboundedReceiver<Event>,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send {
    futures_util::stream::unfold(Some((received, shutdown)), |open| async move {
        let (mut received, mut shutdown) = open?;
        let event = tokio::select! {
            event = received.recv() => event.unwrap_or_else(|| {
                // The engine task ended without a final event: it panicked.
                Event::error("The run stopped unexpectedly; please ask again.")
            }),
            _ = stopping(&mut shutdown) => Event::error("The server is shutting down; please ask again in a moment."),
        };
        let next = (!event.is_final()).then_some((received, shutdown));
        Some((Ok(frame(&event)), next))
    })
}

fn frame(event: &Event) -> sse::Event {
    sse::Event::default().event(event.name()).data(event.data().to_string())
}

/// Resolves once shutdown begins; never if the signal's sender is gone without signalling.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}
