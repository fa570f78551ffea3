//! Talking to language models: the [`ChatProvider`] seam, the OpenAI-compatible client behind
//! it, the errors a person can act on, and retries for the answers worth retrying.
//!
//! The endpoint (base URL and key) travels with every call rather than living in the client,
//! so one client can serve several providers or a participant's own key.

pub mod catalog;
mod error;
pub mod offer;
mod openai;
mod retry;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;

use crate::config::Secret;

pub use catalog::Catalog;
pub use error::LlmError;
pub use offer::{Offer, ProviderModels};
pub use openai::OpenAiProvider;
pub use retry::{RetryPolicy, chat_with_retry};

/// Where to send a request and with which key.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// API root without a trailing slash, e.g. `https://api.cerebras.ai/v1`.
    pub base_url: String,
    /// Empty for a server that needs no key (a local Ollama): no `Authorization` is sent then.
    pub api_key: Secret,
}

/// Whose key a call carries, so that a rejected key's sentence tells the right person what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The server's key, set by this variable.
    Server { variable: String },
    /// The participant's own key, sent by their browser with this run only.
    Participant,
    /// No key at all (a local server that needs none); this variable would set one.
    Missing { variable: String },
}

/// How one run reaches one provider.
#[derive(Debug, Clone)]
pub struct Route {
    pub provider: String,
    pub endpoint: Endpoint,
    pub key: KeySource,
}

/// The routes of one run, one per provider its configuration uses.
#[derive(Debug, Clone, Default)]
pub struct Routes(Vec<Route>);

impl Routes {
    pub fn new(routes: Vec<Route>) -> Routes {
        Routes(routes)
    }

    pub fn get(&self, provider: &str) -> Option<&Route> {
        self.0.iter().find(|r| r.provider == provider)
    }
}

/// A model a provider lists at `GET /models`, with its context size when the provider says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    pub id: String,
    pub context_tokens: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message { role: Role::System, content: content.into() }
    }

    pub fn user(content: impl Into<String>) -> Message {
        Message { role: Role::User, content: content.into() }
    }
}

/// One chat completion to make.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: f64,
    pub max_tokens: u32,
}

/// Token counts, from the provider when it reports them, else estimated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// True when the provider did not report usage and the counts are estimates.
    pub estimated: bool,
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
}

/// Receives the text of a completion piece by piece, as it streams.
pub type DeltaSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// Something that answers chat completions. The real one is [`OpenAiProvider`]; the trait is
/// object-safe so `AppState` can hold `Arc<dyn ChatProvider>` and tests can swap it.
pub trait ChatProvider: Send + Sync {
    /// Sends `request`, calls `on_delta` with each piece of text as it arrives, and returns the
    /// whole completion. Dropping the future abandons the request.
    fn chat<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        request: &'a ChatRequest,
        on_delta: DeltaSink<'a>,
    ) -> BoxFuture<'a, Result<Completion, LlmError>>;

    /// The models the endpoint offers (`GET /models`). Providers that cannot tell say so.
    fn list_models<'a>(&'a self, _endpoint: &'a Endpoint) -> BoxFuture<'a, Result<Vec<ListedModel>, LlmError>> {
        Box::pin(async { Err(LlmError::Setup("this provider cannot list its models".into())) })
    }
}

/// A rough token count (about four characters per token), used when the provider reports none
/// and for the context guard. Deliberately errs on the high side for short texts.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Estimated prompt tokens of a request: its messages plus a few tokens of framing each.
pub fn estimate_prompt_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| estimate_tokens(&m.content) + 4).sum()
}

/// `https://api.cerebras.ai/v1` → `api.cerebras.ai`: names a provider in sentences and pages
/// without any credentials a URL might carry.
pub fn host_of(base_url: &str) -> String {
    let rest = base_url.split_once("://").map_or(base_url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit('@').next().unwrap_or(authority).to_string()
}

/// Per-call limits the client enforces.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Connecting must succeed within this.
    pub connect: Duration,
    /// The whole call, streaming included, must finish within this.
    pub request: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_round_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_prompt_tokens(&[Message::system("abcd"), Message::user("")]), 9);
    }

    #[test]
    fn hosts_carry_no_credentials() {
        assert_eq!(host_of("https://api.cerebras.ai/v1"), "api.cerebras.ai");
        assert_eq!(host_of("http://user:pw@127.0.0.1:9/v1"), "127.0.0.1:9");
    }
}
