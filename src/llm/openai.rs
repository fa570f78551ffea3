//! The OpenAI chat-completions protocol over reqwest, which Cerebras, Groq, Together, OpenAI,
//! Ollama, vLLM and llama.cpp all speak. Always asks for a stream; accepts a plain JSON answer
//! from servers that ignore `stream`.

use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use reqwest::header::{self, HeaderValue};
use serde::{Deserialize, Serialize};

use super::error::{LlmError, blank_secret, clip};
use super::{ChatProvider, ChatRequest, ClientLimits, Completion, DeltaSink, Endpoint, ListedModel, Message, Usage};
use super::{estimate_prompt_tokens, estimate_tokens, host_of};

/// The real provider: one shared connection pool, limits applied to every call.
pub struct OpenAiProvider {
    client: reqwest::Client,
    limits: ClientLimits,
}

impl OpenAiProvider {
    pub fn new(limits: ClientLimits) -> Result<OpenAiProvider, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(limits.connect)
            .user_agent(concat!("moa-workshop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"))?;
        Ok(OpenAiProvider { client, limits })
    }

    async fn call(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
        on_delta: DeltaSink<'_>,
    ) -> Result<Completion, LlmError> {
        let url = format!("{}/chat/completions", endpoint.base_url);
        let target = host_of(&endpoint.base_url);
        let transport = |e: reqwest::Error| LlmError::from_reqwest(&e, &target, self.limits);
        let body = RequestBody {
            model: &request.model,
            messages: &request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
        };
        let response = authorized(self.client.post(&url), endpoint)?
            .header(header::ACCEPT, "text/event-stream, application/json")
            .json(&body)
            .timeout(self.limits.request)
            .send()
            .await
            .map_err(transport)?;

        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = error_body(response, endpoint).await;
            return Err(LlmError::from_status(status.as_u16(), retry_after, &body));
        }
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let (text, usage) = if streamed {
            read_stream(response, on_delta, &transport, endpoint.api_key.expose()).await?
        } else {
            let bytes = read_capped(response, MAX_BODY_BYTES).await.map_err(transport)?.ok_or_else(too_long)?;
            let answer: FullResponse = serde_json::from_slice(&bytes).map_err(|_| {
                LlmError::Malformed("the answer was neither an event stream nor chat-completion JSON".into())
            })?;
            let text = answer
                .choices
                .into_iter()
                .next()
                .and_then(|c| c.message.content)
                .ok_or_else(|| LlmError::Malformed("the answer had no message".into()))?;
            on_delta(&text);
            (text, answer.usage)
        };
        let usage = match usage {
            Some(u) => {
                Usage { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, estimated: false }
            }
            None => Usage {
                prompt_tokens: estimate_prompt_tokens(&request.messages),
                completion_tokens: estimate_tokens(&text),
                estimated: true,
            },
        };
        Ok(Completion { text, usage })
    }

    /// `GET /models`: `{"data": [{"id", …}]}`, with the context size where the provider states
    /// one (Groq: `context_window`, Together and OpenRouter: `context_length`, vLLM: `max_model_len`).
    async fn models(&self, endpoint: &Endpoint) -> Result<Vec<ListedModel>, LlmError> {
        let target = host_of(&endpoint.base_url);
        let transport = |e: reqwest::Error| LlmError::from_reqwest(&e, &target, self.limits);
        let response = authorized(self.client.get(format!("{}/models", endpoint.base_url)), endpoint)?
            .timeout(self.limits.request)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(LlmError::from_status(status.as_u16(), None, &error_body(response, endpoint).await));
        }
        let bytes = read_capped(response, MAX_BODY_BYTES).await.map_err(transport)?.ok_or_else(too_long)?;
        let list: ModelList = serde_json::from_slice(&bytes)
            .map_err(|_| LlmError::Malformed("the model list was not {\"data\": [{\"id\": …}]}".into()))?;
        Ok(list
            .data
            .into_iter()
            .filter(|m| !m.id.trim().is_empty())
            .map(|m| ListedModel {
                id: m.id.trim().to_string(),
                context_tokens: [m.context_window, m.context_length, m.max_model_len]
                    .into_iter()
                    .flatten()
                    .find_map(|n| u32::try_from(n).ok()),
            })
            .collect())
    }
}

impl ChatProvider for OpenAiProvider {
    fn chat<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        request: &'a ChatRequest,
        on_delta: DeltaSink<'a>,
    ) -> BoxFuture<'a, Result<Completion, LlmError>> {
        Box::pin(async move {
            self.call(endpoint, request, on_delta).await.map_err(|e| e.redacted(endpoint.api_key.expose()))
        })
    }

    fn list_models<'a>(&'a self, endpoint: &'a Endpoint) -> BoxFuture<'a, Result<Vec<ListedModel>, LlmError>> {
        Box::pin(async move { self.models(endpoint).await.map_err(|e| e.redacted(endpoint.api_key.expose())) })
    }
}

/// The most an answer (streamed or not, or a model list) may weigh on the wire. max_tokens
/// keeps real answers far below it; only a broken endpoint gets here, and it must not fill
/// the server's memory.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The most of an error body that is read: only its first sentence is passed on.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

fn too_long() -> LlmError {
    LlmError::Malformed(format!("the answer was longer than {} MB, far beyond any max_tokens", MAX_BODY_BYTES >> 20))
}

/// The body, unless it is longer than `cap` (None); stops reading there, so the rest never
/// reaches memory (dropping the response closes the connection).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The start of an error body as text, the key blanked before anything clips it.
async fn error_body(mut response: reqwest::Response, endpoint: &Endpoint) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(MAX_ERROR_BODY_BYTES - body.len())]),
            _ => break,
        }
    }
    blank_secret(&String::from_utf8_lossy(&body), endpoint.api_key.expose())
}

/// Why the bytes of a stream stopped coming.
#[derive(Debug)]
enum StreamFault {
    Transport(reqwest::Error),
    TooLong,
}

impl std::fmt::Display for StreamFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamFault::Transport(e) => e.fmt(f),
            StreamFault::TooLong => f.write_str("the answer is too long"),
        }
    }
}

/// Reads `data:` chunks until `[DONE]`, passing text on as it comes.
async fn read_stream(
    response: reqwest::Response,
    on_delta: DeltaSink<'_>,
    transport: &impl Fn(reqwest::Error) -> LlmError,
    key: &str,
) -> Result<(String, Option<ReportedUsage>), LlmError> {
    let mut received = 0;
    let capped = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(StreamFault::Transport)?;
        received += chunk.len();
        if received > MAX_BODY_BYTES { Err(StreamFault::TooLong) } else { Ok(chunk) }
    });
    let mut events = capped.eventsource();
    let (mut text, mut usage, mut finished) = (String::new(), None, false);
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| match e {
            EventStreamError::Transport(StreamFault::Transport(e)) => transport(e),
            EventStreamError::Transport(StreamFault::TooLong) => too_long(),
            EventStreamError::Utf8(_) => LlmError::Malformed("the stream was not valid UTF-8".into()),
            EventStreamError::Parser(_) => LlmError::Malformed("the stream was not valid server-sent events".into()),
        })?;
        let data = event.data.trim();
        if data == "[DONE]" {
            finished = true;
            break;
        }
        if data.is_empty() {
            continue;
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|_| {
            LlmError::Malformed(format!("a chunk was not JSON: {}", clip(&truncate(&blank_secret(data, key), 80))))
        })?;
        if let Some(error) = chunk.error {
            // Some providers report failures inside an already started stream.
            let message = error.message.unwrap_or_else(|| "no reason given".into());
            return Err(LlmError::Server { status: 200, message: clip(&blank_secret(&message, key)) });
        }
        for choice in chunk.choices.into_iter().flatten() {
            if let Some(piece) = choice.delta.and_then(|d| d.content).filter(|p| !p.is_empty()) {
                on_delta(&piece);
                text.push_str(&piece);
            }
            finished |= choice.finish_reason.is_some();
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
    }
    if !finished {
        return Err(LlmError::Network("the stream ended before the answer was complete".into()));
    }
    Ok((text, usage))
}

/// Adds `Authorization: Bearer …`, marked sensitive so no HTTP-level logging prints it; nothing
/// for an endpoint without a key.
fn authorized(request: reqwest::RequestBuilder, endpoint: &Endpoint) -> Result<reqwest::RequestBuilder, LlmError> {
    let key = endpoint.api_key.expose();
    if key.is_empty() {
        return Ok(request);
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| LlmError::Setup("the API key contains characters that cannot be sent in an HTTP header".into()))?;
    value.set_sensitive(true);
    Ok(request.header(header::AUTHORIZATION, value))
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    messages: &'a [Message],
    temperature: f64,
    max_tokens: u32,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct Chunk {
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<ReportedUsage>,
    error: Option<ChunkError>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct ChunkError {
    message: Option<String>,
}

#[derive(Deserialize)]
struct ReportedUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ListedEntry>,
}

#[derive(Deserialize)]
struct ListedEntry {
    id: String,
    context_window: Option<u64>,
    context_length: Option<u64>,
    max_model_len: Option<u64>,
}

#[derive(Deserialize)]
struct FullResponse {
    choices: Vec<FullChoice>,
    usage: Option<ReportedUsage>,
}

#[derive(Deserialize)]
struct FullChoice {
    message: FullMessage,
}

#[derive(Deserialize)]
struct FullMessage {
    content: Option<String>,
}
