//! Running a Mixture of Agents: layers of agents answering concurrently, each layer's answers
//! synthesized into the next layer's `{helper_response}`, and the main model's answer streamed.
//!
//! No HTTP here: the engine talks to a [`ChatProvider`] and reports progress as [`Event`]s on
//! a channel. Closing the channel (the listener went away) cancels the run at once: in-flight
//! requests are dropped and no further calls are made.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::config::AgentConfig;
use super::events::{AgentDelta, AgentResult, AgentTiming, AnswerDelta, Event, RunSummary};
use super::plan::{Plan, synthesize};
use crate::llm::{ChatProvider, ChatRequest, Completion, LlmError, RetryPolicy, Routes, chat_with_retry};

/// Streamed text is passed on at most this often, so a fast model does not flood a slow phone
/// with one event per token.
const DELTA_INTERVAL: Duration = Duration::from_millis(50);

/// Why a run ended without an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("Every agent of layer {layer} failed, so the run stopped. {reasons}")]
    LayerFailed { layer: u32, reasons: String },
    #[error("The main model ({model}) failed: {reason}.")]
    MainFailed { model: String, reason: String },
    /// The listener went away (or the server is shutting down).
    #[error("The run was cancelled.")]
    Cancelled,
}

/// How the engine reaches the models and how long it may retry.
pub struct Runner<'a> {
    pub provider: &'a dyn ChatProvider,
    /// Where each provider the plan names is reached, and with whose key.
    pub routes: &'a Routes,
    /// 429/5xx answers are retried until this long after the run started.
    pub retry_window: Duration,
}

/// Runs `plan`, sending `agent_delta`, `agent` and `answer_delta` events to `events` as they
/// happen. The caller sends the final `done` or `error` event (it may want to add to `done`).
pub async fn run(runner: &Runner<'_>, plan: &Plan, events: &UnboundedSender<Event>) -> Result<RunSummary, RunError> {
    let run = Run {
        runner,
        plan,
        events,
        started: Instant::now(),
        retry: RetryPolicy::within(runner.retry_window),
        calls: AtomicU32::new(0),
        prompt_tokens: AtomicU64::new(0),
        completion_tokens: AtomicU64::new(0),
        failed_agents: AtomicU32::new(0),
        timings: Mutex::new(Vec::new()),
    };
    tokio::select! {
        // Checked first so a closed channel wins over work that happens to be ready.
        biased;
        _ = events.closed() => Err(RunError::Cancelled),
        result = run.layers_then_main() => result,
    }
}

struct Run<'a> {
    runner: &'a Runner<'a>,
    plan: &'a Plan,
    events: &'a UnboundedSender<Event>,
    started: Instant,
    retry: RetryPolicy,
    calls: AtomicU32,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    failed_agents: AtomicU32,
    timings: Mutex<Vec<AgentTiming>>,
}

impl Run<'_> {
    async fn layers_then_main(&self) -> Result<RunSummary, RunError> {
        let config = &self.plan.config;
        // The first layer has nothing to build on, as in the original.
        let mut helper = String::new();
        for layer in 1..=config.cycles {
            let agents = config.layer_agents.iter().enumerate().map(|(i, agent)| self.agent(layer, i, agent, &helper));
            let outcomes = join_all(agents).await;
            let answers: Vec<&str> = outcomes.iter().filter_map(|o| o.as_ref().ok()).map(String::as_str).collect();
            if answers.is_empty() {
                let reasons: Vec<String> = config
                    .layer_agents
                    .iter()
                    .zip(&outcomes)
                    .filter_map(|(agent, outcome)| {
                        outcome.as_ref().err().map(|e| sentence(&format!("{}: {e}", agent.name)))
                    })
                    .collect();
                return Err(RunError::LayerFailed { layer, reasons: reasons.join(" ") });
            }
            helper = synthesize(&answers);
        }
        self.main(&helper).await
    }

    /// One agent of one layer. Reports its own `agent` event as soon as it finishes, so the
    /// page shows each answer without waiting for the rest of the layer.
    async fn agent(&self, layer: u32, index: usize, agent: &AgentConfig, helper: &str) -> Result<String, String> {
        let started = Instant::now();
        let request = self.plan.agent_request(index, helper);
        let provider = agent.provider.as_deref().unwrap_or_default();
        let (result, text) = self
            .stream(provider, &request, |text| {
                let _ =
                    self.events.send(Event::AgentDelta(AgentDelta { layer, index, agent: agent.name.clone(), text }));
            })
            .await;
        let ms = started.elapsed().as_millis() as u64;
        let (text, error, usage) = match result {
            Ok(completion) => (text, None, completion.usage),
            Err(error) => {
                self.failed_agents.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(layer, agent = %agent.name, %provider, model = %agent.model, %error, "agent failed");
                (String::new(), Some(error), Default::default())
            }
        };
        self.prompt_tokens.fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        self.completion_tokens.fetch_add(usage.completion_tokens, Ordering::Relaxed);
        self.timings.lock().expect("not poisoned").push(AgentTiming {
            layer,
            agent: agent.name.clone(),
            provider: provider.to_string(),
            model: agent.model.clone(),
            ms,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            error: error.clone(),
        });
        let _ = self.events.send(Event::Agent(AgentResult {
            layer,
            index,
            agent: agent.name.clone(),
            provider: provider.to_string(),
            model: agent.model.clone(),
            text: text.clone(),
            ms,
            error: error.clone(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }));
        match error {
            None => Ok(text),
            Some(error) => Err(error),
        }
    }

    /// Sends `request` to `provider` (with retries), passing the streamed text to `send` in
    /// batches; returns the completion or the failure as a sentence, and the whole text, think
    /// block removed.
    async fn stream(
        &self,
        provider: &str,
        request: &ChatRequest,
        mut send: impl FnMut(String) + Send,
    ) -> (Result<Completion, String>, String) {
        let Some(route) = self.runner.routes.get(provider) else {
            // `prepare` names every provider and the web layer routes each one; this is our bug.
            let error = LlmError::Setup(format!("the server has no route to the provider {provider:?}"));
            return (Err(error.to_string()), String::new());
        };
        let mut output = Output::default();
        let (result, attempts) = chat_with_retry(
            self.runner.provider,
            &route.endpoint,
            request,
            &mut |piece| output.push(piece, &mut send),
            self.retry,
        )
        .await;
        output.flush(&mut send);
        self.calls.fetch_add(attempts, Ordering::Relaxed);
        (result.map_err(|error| error.explain(&route.key)), output.finish())
    }

    /// The main model reads the last layer's synthesis; its answer streams as `answer_delta`.
    async fn main(&self, helper: &str) -> Result<RunSummary, RunError> {
        let config = &self.plan.config;
        let request = self.plan.main_request(helper);
        let provider = config.main_provider.as_deref().unwrap_or_default();
        let (result, answer) = self
            .stream(provider, &request, |text| {
                let _ = self.events.send(Event::AnswerDelta(AnswerDelta { text }));
            })
            .await;
        let completion = result.map_err(|error| {
            tracing::warn!(%provider, model = %config.main_model, %error, "main model failed");
            RunError::MainFailed { model: config.main_model.clone(), reason: error.trim_end_matches('.').into() }
        })?;
        Ok(RunSummary {
            ms: self.started.elapsed().as_millis() as u64,
            calls: self.calls.load(Ordering::Relaxed),
            prompt_tokens: self.prompt_tokens.load(Ordering::Relaxed) + completion.usage.prompt_tokens,
            completion_tokens: self.completion_tokens.load(Ordering::Relaxed) + completion.usage.completion_tokens,
            failed_agents: self.failed_agents.load(Ordering::Relaxed),
            answer,
            agents: std::mem::take(&mut *self.timings.lock().expect("not poisoned")),
            extra: Default::default(),
        })
    }
}

/// Ends `text` with a full stop unless it already ends a sentence.
fn sentence(text: &str) -> String {
    if text.ends_with(['.', '!', '?']) { text.to_string() } else { format!("{text}.") }
}

/// Collects a streamed answer: drops a leading `<think>…</think>` block (Qwen emits an empty
/// one even with `/no_think`) and batches pieces to at most one event per [`DELTA_INTERVAL`].
#[derive(Default)]
struct Output {
    /// Text received but not yet judged (could still be the start of a think block).
    pending: String,
    thinking: bool,
    decided: bool,
    /// Text kept, and the part of it not yet sent.
    kept: String,
    unsent: String,
    last_sent: Option<Instant>,
}

impl Output {
    fn push(&mut self, piece: &str, send: &mut impl FnMut(String)) {
        if self.decided && !self.thinking {
            self.keep(piece);
        } else {
            self.pending.push_str(piece);
            self.judge();
        }
        let due = self.last_sent.is_none_or(|at| at.elapsed() >= DELTA_INTERVAL);
        if due && !self.unsent.is_empty() {
            self.last_sent = Some(Instant::now());
            send(std::mem::take(&mut self.unsent));
        }
    }

    /// Decides whether the pending text starts with a think block, and drops the block.
    fn judge(&mut self) {
        const OPEN: &str = "<think>";
        const CLOSE: &str = "</think>";
        if !self.decided {
            let start = self.pending.trim_start();
            if start.starts_with(OPEN) {
                self.thinking = true;
                self.decided = true;
            } else if !OPEN.starts_with(start) || start.is_empty() && self.pending.len() > 64 {
                self.decided = true;
                let text = std::mem::take(&mut self.pending);
                self.keep(&text);
                return;
            } else {
                return;
            }
        }
        if self.thinking
            && let Some(end) = self.pending.find(CLOSE)
        {
            let rest = self.pending[end + CLOSE.len()..].trim_start().to_string();
            self.pending.clear();
            self.thinking = false;
            self.keep(&rest);
        }
    }

    fn keep(&mut self, text: &str) {
        // Leading whitespace after a dropped think block would show as an empty line.
        let text = if self.kept.is_empty() { text.trim_start() } else { text };
        self.kept.push_str(text);
        self.unsent.push_str(text);
    }

    fn flush(&mut self, send: &mut impl FnMut(String)) {
        if !self.decided || self.thinking {
            // An unterminated think block is all the model said; show it rather than nothing.
            let text = std::mem::take(&mut self.pending);
            let text = text.trim_start().strip_prefix("<think>").unwrap_or(&text).to_string();
            self.decided = true;
            self.thinking = false;
            self.keep(&text);
        }
        if !self.unsent.is_empty() {
            send(std::mem::take(&mut self.unsent));
        }
    }

    fn finish(self) -> String {
        self.kept.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(pieces: &[&str]) -> (String, String) {
        let mut output = Output::default();
        let mut sent = String::new();
        for piece in pieces {
            output.push(piece, &mut |t| sent.push_str(&t));
        }
        output.flush(&mut |t| sent.push_str(&t));
        (sent, output.finish())
    }

    #[test]
    fn think_blocks_are_dropped_even_when_split_across_pieces() {
        assert_eq!(collect(&["<th", "ink>\n\n</thi", "nk>\n\nHello", " world"]).1, "Hello world");
        assert_eq!(collect(&["  <think>plan</think>Hi"]).0, "Hi");
        assert_eq!(collect(&["Hello <think>x</think>"]).1, "Hello <think>x</think>");
        assert_eq!(collect(&["<", "b>bold</b>"]).1, "<b>bold</b>");
        assert_eq!(collect(&["<think>never closed"]).1, "never closed");
        assert_eq!(collect(&[]).1, "");
    }

    #[test]
    fn everything_received_is_sent_exactly_once() {
        let pieces: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let (sent, kept) = collect(&refs);
        assert_eq!(sent, pieces.concat());
        assert_eq!(kept, pieces.concat().trim_end());
    }
}
