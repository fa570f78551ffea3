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
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Secret;
use crate::error::AppError;
use crate::live::fair_use::{Client, RunAdmission};
use crate::llm::{Endpoint, KeySource, Route, Routes};
use crate::moa::{self, Config, Event, Plan, RunError, RunSummary, Runner};
use crate::state::AppState;
use crate::web::run_view::RunView;

/// How a run's stream is encoded.
pub enum View {
    /// The events of `interfaces.md`, as JSON (`POST /api/moa`, `/api/generate`).
    Events,
    /// HTML fragments the server renders for the pages (`fragment` events, the last one `end`).
    Page(Box<RunView>),
}

/// A run that ended well, as its caller finished it.
pub struct Finished {
    /// For the `done` event (the challenge adds its generation's id and code).
    pub summary: RunSummary,
    /// What the page shows below the answer (the challenge's extracted code); HTML.
    pub below: Option<String>,
    /// Other fragments for the page (the challenge's history); HTML.
    pub elsewhere: String,
}

impl From<RunSummary> for Finished {
    fn from(summary: RunSummary) -> Finished {
        Finished { summary, below: None, elsewhere: String::new() }
    }
}

/// A comment line this often keeps proxies and phones from dropping a quiet stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The pages' streams say they are alive more often, so that a page can tell a stalled
/// connection from a slow model within seconds (static/chat.js waits three of these).
pub const PAGE_KEEP_ALIVE: Duration = Duration::from_secs(4);

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

/// How a run reaches each provider it has `used` (by name), and whether it spends a key of the
/// server's (the event pays for it). The default provider takes the participant's own key when
/// they sent one, else the server's key (unless the event requires own keys); other providers
/// always use their server key, or none. The participant's key lives in these routes only, for
/// the length of the run.
pub fn routes_and_payer(
    state: &AppState,
    user_key: Option<Secret>,
    used: impl Fn(&str) -> bool,
) -> Result<(Routes, bool), AppError> {
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

/// The providers a (prepared) configuration names, for [`routes_and_payer`].
pub fn named_by(config: &Config) -> impl Fn(&str) -> bool + '_ {
    |name| {
        config.main_provider.as_deref() == Some(name)
            || config.layer_agents.iter().any(|a| a.provider.as_deref() == Some(name))
    }
}

/// Starts `plan` and returns its stream, encoded as `view` says. `finish` turns a successful
/// run into the final `done` (the challenge stores its generation there) or an error sentence.
pub fn stream_run<F, Fut>(
    state: &AppState,
    slot: Admission,
    routes: Routes,
    plan: Plan,
    view: View,
    finish: F,
) -> Response
where
    F: FnOnce(RunSummary) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Finished, String>> + Send,
{
    let keep_alive = match view {
        View::Events => KEEP_ALIVE,
        View::Page(_) => PAGE_KEEP_ALIVE,
    };
    let opening = opening(&view);
    let (received, last) = start(state, slot, Arc::new(routes), plan, finish);
    let stream = futures_util::stream::iter(opening).chain(frames(received, last, state.shutdown.clone(), view));
    sse_response(stream, keep_alive)
}

/// The chat's comparison: `plan` and, beside it in the same page stream, `alone` (its main
/// model alone), both running at once; the stream ends when both have.
pub fn stream_beside(
    state: &AppState,
    slots: (Admission, Admission),
    routes: Routes,
    (plan, view): (Plan, RunView),
    (alone, alone_view): (Plan, RunView),
) -> Response {
    let routes = Arc::new(routes);
    let (view, alone_view) = (View::Page(Box::new(view)), View::Page(Box::new(alone_view)));
    let openings: Vec<_> = opening(&view).into_iter().chain(opening(&alone_view)).collect();
    let done = |summary: RunSummary| async move { Ok(summary.into()) };
    let (received, last) = start(state, slots.0, routes.clone(), plan, done);
    let (alone_received, alone_last) = start(state, slots.1, routes, alone, done);
    let both = futures_util::stream::select(
        frames(received, last, state.shutdown.clone(), view),
        frames(alone_received, alone_last, state.shutdown.clone(), alone_view),
    );
    sse_response(futures_util::stream::iter(openings).chain(both), PAGE_KEEP_ALIVE)
}

fn opening(view: &View) -> Option<Result<sse::Event, Infallible>> {
    match view {
        View::Events => None,
        View::Page(view) => Some(Ok(sse::Event::default().event("fragment").data(view.opening().replace('\r', "")))),
    }
}

/// An SSE response that says it is alive every `keep_alive` and is not held back by proxies.
pub fn sse_response(
    stream: impl Stream<Item = Result<sse::Event, Infallible>> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let mut response = Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive)).into_response();
    // Tells nginx-style proxies not to hold the stream back.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Runs `plan` in a task of its own (it outlives the handler; its log lines keep the request's
/// id): its events, then its last word.
fn start<F, Fut>(
    state: &AppState,
    slot: Admission,
    routes: Arc<Routes>,
    plan: Plan,
    finish: F,
) -> (mpsc::UnboundedReceiver<Event>, oneshot::Receiver<Result<Finished, String>>)
where
    F: FnOnce(RunSummary) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Finished, String>> + Send,
{
    let (events, received) = mpsc::unbounded_channel();
    let (last, last_received) = oneshot::channel();
    let provider = state.llm.clone();
    let retry_window = state.settings.llm_retry_window;
    crate::telemetry::spawn_in_current_span(async move {
        let slot = slot;
        let runner = Runner { provider: provider.as_ref(), routes: &routes, retry_window };
        let outcome = moa::run(&runner, &plan, &events).await;
        drop(events); // the stream reads the last word from `last` once every event is sent
        let ending = match outcome {
            Ok(summary) => {
                slot.fair.settle(summary.prompt_tokens + summary.completion_tokens);
                tracing::info!(
                    ms = summary.ms,
                    calls = summary.calls,
                    failed_agents = summary.failed_agents,
                    "moa run finished"
                );
                finish(summary).await
            }
            Err(RunError::Cancelled) => {
                tracing::info!("moa run cancelled: the client went away");
                return;
            }
            Err(error) => {
                tracing::info!(%error, "moa run failed");
                Err(error.to_string())
            }
        };
        let _ = last.send(ending);
    });
    (received, last_received)
}

/// A run's place among those in flight, held by its engine task until it ends, however it ends.
pub struct RunSlot(Arc<AtomicUsize>);

/// What a run holds while it lives: its client's fair-use counts and its server-wide place.
pub struct Admission {
    fair: RunAdmission,
    _slot: RunSlot,
}

impl Admission {
    /// The run is over and used `tokens` (the event's budget counts what it really used).
    pub fn settle(&self, tokens: u64) {
        self.fair.settle(tokens);
    }
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

/// The run's events as SSE frames, then its last word (`done` or `error`); an `error` early on
/// shutdown.
fn frames(
    received: mpsc::UnboundedReceiver<Event>,
    last: oneshot::Receiver<Result<Finished, String>>,
    shutdown: watch::Receiver<bool>,
    view: View,
) -> impl Stream<Item = Result<sse::Event, Infallible>> + Send {
    struct Open {
        received: mpsc::UnboundedReceiver<Event>,
        last: oneshot::Receiver<Result<Finished, String>>,
        shutdown: watch::Receiver<bool>,
        view: View,
    }
    let open = Open { received, last, shutdown, view };
    futures_util::stream::unfold(Some(open), |open| async move {
        let mut open = open?;
        let next = tokio::select! {
            event = open.received.recv() => match event {
                Some(event) => Ok(event),
                None => tokio::select! {
                    ending = &mut open.last => Err(ending.unwrap_or_else(|_| {
                        // The engine task ended without a last word: it panicked.
                        Err("The run stopped unexpectedly; please ask again.".into())
                    })),
                    _ = stopping(&mut open.shutdown) => Err(Err(SHUTTING_DOWN.into())),
                },
            },
            _ = stopping(&mut open.shutdown) => Err(Err(SHUTTING_DOWN.into())),
        };
        let (frame, last) = match next {
            Ok(event) => (encode(&mut open.view, &event, None, "", false), false),
            Err(Ok(finished)) => {
                let done = Event::Done(finished.summary);
                (encode(&mut open.view, &done, finished.below.as_deref(), &finished.elsewhere, true), true)
            }
            Err(Err(message)) => (encode(&mut open.view, &Event::error(message), None, "", true), true),
        };
        Some((Ok(frame), (!last).then_some(open)))
    })
}

const SHUTTING_DOWN: &str = "The server is shutting down; please ask again in a moment.";

/// One SSE frame for `event`; `last` ends the stream. The page view shows `below` under a
/// finished answer and applies `elsewhere` too (see [`Finished`]).
fn encode(view: &mut View, event: &Event, below: Option<&str>, elsewhere: &str, last: bool) -> sse::Event {
    match view {
        View::Events => sse::Event::default().event(event.name()).data(event.data().to_string()),
        View::Page(view) => {
            // An SSE data line cannot hold a carriage return; HTML does not need one.
            let html = (view.update(event, below) + elsewhere).replace('\r', "");
            // A run shown beside another does not end the page's stream: the other does.
            let name = if last && !view.is_beside() { "end" } else { "fragment" };
            sse::Event::default().event(name).data(html)
        }
    }
}

/// Resolves once shutdown begins; never if the signal's sender is gone without signalling.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}
