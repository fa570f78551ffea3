//! A MoA run as a server-sent event stream, shared by `POST /api/moa` and the challenge.
//!
//! The engine runs in its own task and writes events into a channel; the response body reads
//! that channel. When the browser goes away the body is dropped, the channel closes and the
//! engine stops (no further LLM calls). On server shutdown the stream ends with an `error`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::sync::{mpsc, watch};

use crate::app::AppState;
use crate::config::Secret;
use crate::error::AppError;
use crate::llm::{Endpoint, KeySource, Route, Routes};
use crate::moa::{self, Config, Event, Plan, RunError, RunSummary, Runner};
use crate::web::fair_use::{Client, RunAdmission};

/// A comment line this often keeps proxies and phones from dropping a quiet stream and lets
/// the page tell a stalled connection from a slow model.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The header the pages send a participant's own API key in, with runs only. Never a cookie
/// (that would travel with every request); the router marks it sensitive before anything logs.
pub static USER_KEY_HEADER: HeaderName = HeaderName::from_static("x-llm-api-key");

pub const NO_KEY: &str = "No API key is set on this server: paste your own key in the \"Your API key\" box on this \
    page, or start the server with LLM_API_KEY (or CEREBRAS_API_KEY) in its environment or in a .env file.";
pub const OWN_KEY_REQUIRED: &str = "This event asks everyone to use their own API key: paste yours in the \
    \"Your API key\" box on this page. It stays in your browser and is sent only with your runs.";

/// The participant's own key from [`USER_KEY_HEADER`], if they sent one. The sentence for an
/// unusable one never repeats it.
pub fn user_key(headers: &HeaderMap) -> Result<Option<Secret>, AppError> {
    let Some(value) = headers.get(&USER_KEY_HEADER) else { return Ok(None) };
    let key = value.to_str().map(str::trim).unwrap_or("\n");
    if key.is_empty() {
        return Ok(None);
    }
    let usable = (8..=512).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic());
    if !usable {
        return Err(AppError::BadRequest(
            "The API key you pasted cannot be right: keys are 8 to 512 letters, digits and symbols, without \
             spaces. Paste it again."
                .into(),
        ));
    }
    Ok(Some(Secret::new(key)))
}

/// How this run reaches each provider its (prepared) configuration names. The default provider
/// takes the participant's own key when they sent one, else the server's key (unless the event
/// requires own keys); other providers always use their server key, or none. The participant's
/// key lives in these routes only, for the length of the run.
pub fn routes(state: &AppState, user_key: Option<Secret>, config: &Config) -> Result<Routes, AppError> {
    Ok(routes_and_payer(state, user_key, config)?.0)
}

/// [`routes`], and whether the run spends a key of the server's (the event pays for it).
pub fn routes_and_payer(
    state: &AppState,
    user_key: Option<Secret>,
    config: &Config,
) -> Result<(Routes, bool), AppError> {
    let used = |name: &str| {
        config.main_provider.as_deref() == Some(name)
            || config.layer_agents.iter().any(|a| a.provider.as_deref() == Some(name))
    };
    let mut routes = Vec::new();
    let mut event_pays = false;
    for (i, provider) in state.catalog.providers().iter().enumerate().filter(|(_, p)| used(&p.name)) {
        let server_key = provider.api_key.clone();
        let variable = provider.key_variable.clone();
        let is_default = i == 0;
        let (api_key, key) = if is_default {
            match (user_key.clone(), server_key) {
                (Some(api_key), _) => (api_key, KeySource::Participant),
                (None, _) if state.settings.require_user_key => {
                    return Err(AppError::Unauthorized(OWN_KEY_REQUIRED.into()));
                }
                (None, Some(api_key)) => (api_key, KeySource::Server { variable }),
                (None, None) => return Err(AppError::Unavailable(NO_KEY.into())),
            }
        } else {
            match server_key {
                Some(api_key) => (api_key, KeySource::Server { variable }),
                None => (Secret::new(""), KeySource::Missing { variable }),
            }
        };
        event_pays |= matches!(key, KeySource::Server { .. });
        let endpoint = Endpoint { base_url: provider.base_url.clone(), api_key };
        routes.push(Route { provider: provider.name.clone(), endpoint, key });
    }
    Ok((Routes::new(routes), event_pays))
}

/// Starts `plan` and returns its event stream. `finish` turns a successful run into the final
/// `done` payload (the challenge adds its generation there) or an error sentence.
pub fn stream_run<F, Fut>(state: &AppState, slot: Admission, routes: Routes, plan: Plan, finish: F) -> Response
where
    F: FnOnce(RunSummary) -> Fut + Send + 'static,
    Fut: Future<Output = Result<RunSummary, String>> + Send,
{
    let (events, received) = mpsc::unbounded_channel();
    let provider = state.llm.clone();
    let retry_window = state.settings.llm_retry_window;
    // The engine outlives the handler; its lines keep the request's id.
    crate::telemetry::spawn_in_current_span(async move {
        let slot = slot;
        let runner = Runner { provider: provider.as_ref(), routes: &routes, retry_window };
        let last = match moa::run(&runner, &plan, &events).await {
            Ok(summary) => {
                slot.fair.settle(summary.prompt_tokens + summary.completion_tokens);
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

/// A run's place among those in flight, held by its engine task until it ends, however it ends.
pub struct RunSlot(Arc<AtomicUsize>);

/// What a run holds while it lives: its client's fair-use counts and its server-wide place.
pub struct Admission {
    fair: RunAdmission,
    _slot: RunSlot,
}

/// Admits a run of `plan` for `client`: a place among `MOA_MAX_RUNS`, then what this client may
/// spend (so one client cannot fill the server's places). Taken before anything is stored, and
/// all or nothing, so a refusal costs the caller nothing.
pub fn admit(state: &AppState, client: &Client, plan: &Plan, event_pays: bool) -> Result<Admission, AppError> {
    let slot = admit_slot(state)?;
    let fair = state.live.fair_use.admit_run(client, plan, event_pays)?;
    Ok(Admission { fair, _slot: slot })
}

/// Takes a place for a new run, or refuses with 429 and Retry-After when `MOA_MAX_RUNS` are
/// already in flight: a crowd (or a script) can slow the server down, but not exhaust its
/// memory or sockets.
fn admit_slot(state: &AppState) -> Result<RunSlot, AppError> {
    let max = state.settings.max_runs;
    let before = state.active_runs.fetch_add(1, Ordering::SeqCst);
    let slot = RunSlot(state.active_runs.clone());
    if max > 0 && before >= max {
        return Err(AppError::Busy {
            message: format!(
                "The server is running as many MoA runs as it allows ({max}); please try again in a few seconds."
            ),
            retry_after_s: 5,
        });
    }
    Ok(slot)
}

impl Drop for RunSlot {
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
