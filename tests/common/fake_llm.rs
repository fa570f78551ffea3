//! A fake OpenAI-compatible server on 127.0.0.1:0 for tests: fixed latency, streaming and
//! plain JSON answers, and scripted failures chosen by the model name:
//!
//! | model contains | answer |
//! |---|---|
//! | `fail-401`, `fail-400`, `fail-429`, `fail-500` | that status with an OpenAI-style error body |
//! | `flaky` | 503 on the first request for that model, then a normal answer |
//! | `slow` | nothing for a minute (for timeouts) |
//! | `malformed` | an event stream whose chunk is not JSON |
//! | `truncated` | an event stream that stops halfway |
//! | `plain` | a non-streaming JSON answer although a stream was asked for |
//! | `nousage` | a normal stream without the usage chunk |
//! | `trickle` | a stream that never ends: a small piece every latency (at least 50 ms) |
//! | `dropped` | two pieces, then the connection is cut without the end of the body |
//! | `garbage` | a piece, then bytes that are not UTF-8 |
//! | `flood` | an endless stream of large pieces, as fast as the client reads them |
//! | anything else | a stream of four pieces spread over the latency, usage, `[DONE]` |
//!
//! Every request is recorded (model, prompts, Authorization header, time) with the reply it got.
//! A key passed to [`FakeLlm::reject_key`] gets a 401 whatever the model.
//!
//! `GET /v1/models` answers 404 until [`FakeLlm::serve_models`] gives it a list (or
//! [`FakeLlm::hang_models`] makes it never answer); its requests are recorded apart.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Usage the fake reports for every successful call, so tests can check sums.
pub const PROMPT_TOKENS: u64 = 11;
pub const COMPLETION_TOKENS: u64 = 7;

pub type ReplyFn = Box<dyn Fn(&Recorded) -> String + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub seq: usize,
    pub model: String,
    pub system: String,
    pub user: String,
    pub authorization: Option<String>,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: u64,
    pub temperature: f64,
    /// When the request arrived, since the fake started.
    pub at: Duration,
    pub reply: String,
}

pub struct FakeState {
    latency: Duration,
    started_at: Instant,
    reply: ReplyFn,
    requests: Mutex<Vec<Recorded>>,
    per_model: Mutex<HashMap<String, u32>>,
    completed: AtomicUsize,
    abandoned: AtomicUsize,
    models: Mutex<ModelList>,
    /// The Authorization header of each `GET /v1/models`.
    models_requests: Mutex<Vec<Option<String>>>,
    rejected_keys: Mutex<Vec<String>>,
}

/// What `GET /v1/models` does.
#[derive(Clone)]
enum ModelList {
    NotFound,
    Serve(Value),
    Hang,
}

/// A running fake; dropping it stops the server.
pub struct FakeLlm {
    pub base_url: String,
    pub state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The default reply: unique per call, naming the model.
pub fn default_reply(r: &Recorded) -> String {
    format!("reply {} from {}", r.seq, r.model)
}

impl FakeLlm {
    pub async fn start(latency: Duration) -> FakeLlm {
        FakeLlm::start_with(latency, Box::new(default_reply)).await
    }

    pub async fn start_with(latency: Duration, reply: ReplyFn) -> FakeLlm {
        let state = Arc::new(FakeState {
            latency,
            started_at: Instant::now(),
            reply,
            requests: Mutex::new(Vec::new()),
            per_model: Mutex::new(HashMap::new()),
            completed: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
            models: Mutex::new(ModelList::NotFound),
            models_requests: Mutex::new(Vec::new()),
            rejected_keys: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(completions))
            .route("/v1/models", axum::routing::get(models))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake LLM");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, router).await;
        });
        FakeLlm { base_url: format!("http://{addr}/v1"), state, task }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests whose answer was sent in full.
    pub fn completed(&self) -> usize {
        self.state.completed.load(Ordering::SeqCst)
    }

    /// Requests still being answered: neither complete nor abandoned.
    pub fn in_flight(&self) -> usize {
        self.state.requests.lock().unwrap().len() - self.completed() - self.abandoned()
    }

    /// Requests the client hung up on before the answer was complete.
    pub fn abandoned(&self) -> usize {
        self.state.abandoned.load(Ordering::SeqCst)
    }

    /// `GET /v1/models` lists these (id, and a `context_window` when given), OpenAI-style.
    pub fn serve_models(&self, models: &[(&str, Option<u32>)]) {
        let data: Vec<Value> = models
            .iter()
            .map(|(id, context)| match context {
                Some(n) => json!({"id": id, "object": "model", "owned_by": "fake", "context_window": n}),
                None => json!({"id": id, "object": "model", "owned_by": "fake"}),
            })
            .collect();
        *self.state.models.lock().unwrap() = ModelList::Serve(json!({"object": "list", "data": data}));
    }

    /// `GET /v1/models` answers 404 again.
    pub fn stop_serving_models(&self) {
        *self.state.models.lock().unwrap() = ModelList::NotFound;
    }

    /// `GET /v1/models` never answers.
    pub fn hang_models(&self) {
        *self.state.models.lock().unwrap() = ModelList::Hang;
    }

    /// The Authorization header of each `GET /v1/models` so far.
    pub fn models_requests(&self) -> Vec<Option<String>> {
        self.state.models_requests.lock().unwrap().clone()
    }

    /// Chat requests carrying this key get a 401, as a provider answers a revoked key.
    pub fn reject_key(&self, key: &str) {
        self.state.rejected_keys.lock().unwrap().push(format!("Bearer {key}"));
    }
}

async fn models(State(state): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    state.models_requests.lock().unwrap().push(authorization);
    let list = state.models.lock().unwrap().clone();
    match list {
        ModelList::NotFound => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
        ModelList::Serve(list) => Json(list).into_response(),
        ModelList::Hang => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// Counts a request as abandoned unless it is marked complete before being dropped.
struct Tracker {
    state: Arc<FakeState>,
    done: bool,
}

impl Tracker {
    fn complete(&mut self) {
        if !self.done {
            self.done = true;
            self.state.completed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.done {
            self.state.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn content_of(messages: &Value, role: &str) -> String {
    messages
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == role)
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn completions(State(state): State<Arc<FakeState>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let mut recorded = Recorded {
        seq: 0,
        model: body["model"].as_str().unwrap_or_default().to_string(),
        system: content_of(&body["messages"], "system"),
        user: content_of(&body["messages"], "user"),
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string),
        stream: body["stream"] == true,
        include_usage: body["stream_options"]["include_usage"] == true,
        max_tokens: body["max_tokens"].as_u64().unwrap_or(0),
        temperature: body["temperature"].as_f64().unwrap_or(-1.0),
        at: state.started_at.elapsed(),
        reply: String::new(),
    };
    let nth = {
        let mut requests = state.requests.lock().unwrap();
        recorded.seq = requests.len() + 1;
        recorded.reply = (state.reply)(&recorded);
        requests.push(recorded.clone());
        let mut per_model = state.per_model.lock().unwrap();
        let count = per_model.entry(recorded.model.clone()).or_insert(0);
        *count += 1;
        *count
    };
    let mut tracker = Tracker { state: state.clone(), done: false };
    let latency = state.latency;
    let model = recorded.model.as_str();
    let revoked = recorded.authorization.as_ref().is_some_and(|a| state.rejected_keys.lock().unwrap().contains(a));
    let failure = [("fail-401", 401), ("fail-400", 400), ("fail-429", 429), ("fail-500", 500)]
        .into_iter()
        .find(|(name, _)| model.contains(name))
        .map(|(_, status)| status)
        .or(revoked.then_some(401))
        .or((model.contains("flaky") && nth == 1).then_some(503));
    if let Some(status) = failure {
        tokio::time::sleep(latency / 3).await;
        let message = match status {
            401 => "Wrong API Key",
            400 => "Please reduce the length of the messages or completion.",
            429 => "Tokens per minute limit exceeded - too many tokens processed.",
            _ => "The server had an error while processing your request.",
        };
        tracker.complete();
        let mut response =
            (StatusCode::from_u16(status).unwrap(), Json(json!({"error": {"message": message, "type": "fake"}})))
                .into_response();
        if status == 429 {
            response.headers_mut().insert(header::RETRY_AFTER, "0".parse().unwrap());
        }
        return response;
    }
    if let Some(stream) = faulty_stream(model, latency) {
        // The tracker lives as long as the body: when the client hangs up, it counts as abandoned.
        let body = stream.map(move |frame| {
            let _ = &tracker;
            frame
        });
        return ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(body)).into_response();
    }
    if model.contains("slow") {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if model.contains("plain") {
        tokio::time::sleep(latency).await;
        tracker.complete();
        return Json(json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": recorded.reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
        }))
        .into_response();
    }
    let mut frames: Vec<(Duration, String)> = Vec::new();
    if model.contains("malformed") {
        frames.push((latency / 2, "data: {\"choices\": [{\"delta\": {\"content\": \"ok\"}}]}\n\n".into()));
        frames.push((Duration::ZERO, "data: {\"choices\": [ {oops\n\n".into()));
    } else {
        let pieces = split_in(&recorded.reply, 4);
        let keep = if model.contains("truncated") { 2 } else { pieces.len() };
        for piece in pieces.into_iter().take(keep) {
            let chunk = json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
            frames.push((latency / 4, format!("data: {chunk}\n\n")));
        }
        if !model.contains("truncated") {
            let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            frames.push((Duration::ZERO, format!("data: {last}\n\n")));
            if recorded.include_usage && !model.contains("nousage") {
                let usage = json!({"choices": [], "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}});
                frames.push((Duration::ZERO, format!("data: {usage}\n\n")));
            }
            frames.push((Duration::ZERO, "data: [DONE]\n\n".into()));
        }
    }
    let stream = futures_util::stream::unfold((frames.into_iter(), tracker), |(mut frames, mut tracker)| async move {
        match frames.next() {
            Some((pause, frame)) => {
                // A zero sleep would still wait for the timer's next tick (about 1 ms).
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                Some((Ok::<_, Infallible>(frame), (frames, tracker)))
            }
            None => {
                tracker.complete();
                None
            }
        }
    });
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(stream)).into_response()
}

/// Splits `text` into `n` pieces of about equal length (on character boundaries).
fn split_in(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

type Frame = Result<Vec<u8>, std::io::Error>;

/// The misbehaving streams of the fault tests, or `None` for the other models.
fn faulty_stream(model: &str, latency: Duration) -> Option<futures_util::stream::BoxStream<'static, Frame>> {
    let piece = |text: &str| {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
        format!("data: {chunk}\n\n").into_bytes()
    };
    let stream: futures_util::stream::BoxStream<'static, Frame> = if model.contains("trickle") {
        let pause = latency.max(Duration::from_millis(50));
        Box::pin(futures_util::stream::unfold(0u64, move |n| async move {
            tokio::time::sleep(pause).await;
            Some((Ok(piece(&format!("drip {n} "))), n + 1))
        }))
    } else if model.contains("dropped") {
        let frames: Vec<Frame> = vec![
            Ok(piece("half ")),
            Ok(piece("an answer")),
            Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the fake cuts the connection")),
        ];
        Box::pin(futures_util::stream::iter(frames).then(move |frame| async move {
            tokio::time::sleep(latency / 3).await;
            frame
        }))
    } else if model.contains("garbage") {
        let frames: Vec<Frame> = vec![Ok(piece("fine so far ")), Ok(b"data: \xff\xfe\x00\x9f garbage\n\n".to_vec())];
        Box::pin(futures_util::stream::iter(frames))
    } else if model.contains("flood") {
        let big = "flood ".repeat(10_000);
        Box::pin(futures_util::stream::repeat_with(move || Ok(piece(&big))))
    } else {
        return None;
    };
    Some(stream)
}

/// One streamed chat completion sent straight to a fake at `base_url` and read to its end: the
/// baseline the benchmarks compare the engine with.
pub async fn call_directly(client: &reqwest::Client, base_url: &str) -> Result<(), String> {
    use eventsource_stream::Eventsource;
    let body = json!({"model": "fake", "stream": true, "messages": [{"role": "user", "content": "Hello"}]});
    let response = client
        .post(format!("{base_url}/chat/completions"))
        .bearer_auth("sk-bench")
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        if event.map_err(|e| e.to_string())?.data == "[DONE]" {
            return Ok(());
        }
    }
    Err("the fake's stream ended without [DONE]".into())
}
