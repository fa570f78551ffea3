//! What a run reports while it goes. Names and fields are the `POST /api/moa` event stream of
//! `interfaces.md`; the web layer only encodes them as server-sent events.

use serde::Serialize;

/// One step of a run. Serialized as `{"event": name, "data": {...}}`; [`Event::name`] and
/// [`Event::data`] give the parts for an SSE frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum Event {
    AgentDelta(AgentDelta),
    Agent(AgentResult),
    AnswerDelta(AnswerDelta),
    Done(RunSummary),
    Error(RunFailure),
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::AgentDelta(_) => "agent_delta",
            Event::Agent(_) => "agent",
            Event::AnswerDelta(_) => "answer_delta",
            Event::Done(_) => "done",
            Event::Error(_) => "error",
        }
    }

    /// The event's fields as a JSON object.
    pub fn data(&self) -> serde_json::Value {
        let value = match self {
            Event::AgentDelta(e) => serde_json::to_value(e),
            Event::Agent(e) => serde_json::to_value(e),
            Event::AnswerDelta(e) => serde_json::to_value(e),
            Event::Done(e) => serde_json::to_value(e),
            Event::Error(e) => serde_json::to_value(e),
        };
        value.expect("events are plain data")
    }

    /// `done` and `error` end a stream; nothing follows them.
    pub fn is_final(&self) -> bool {
        matches!(self, Event::Done(_) | Event::Error(_))
    }

    pub fn error(message: impl Into<String>) -> Event {
        Event::Error(RunFailure { message: message.into() })
    }
}

/// Text a layer agent produced since the last delta.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentDelta {
    /// 1-based.
    pub layer: u32,
    /// The agent's position in the configuration (0-based); names need not be unique.
    pub index: usize,
    pub agent: String,
    pub text: String,
}

/// A layer agent finished, with its whole answer or the reason it failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentResult {
    pub layer: u32,
    pub index: usize,
    pub agent: String,
    /// The provider that served `model`.
    pub provider: String,
    pub model: String,
    /// Empty when the agent failed.
    pub text: String,
    pub ms: u64,
    /// A sentence, e.g. "the API key was rejected (HTTP 401); check LLM_API_KEY".
    pub error: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnswerDelta {
    pub text: String,
}

/// How a successful run went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub ms: u64,
    /// Requests sent to the provider, retries included.
    pub calls: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub failed_agents: u32,
    /// The main model's whole answer (already streamed as deltas, so not repeated in `done`).
    #[serde(skip)]
    pub answer: String,
    /// Every layer agent's call in the order they finished, for the record (the challenge stores
    /// them with a generation); already sent as `agent` events, so not repeated in `done`.
    #[serde(skip)]
    pub agents: Vec<AgentTiming>,
    /// Fields a caller adds to its `done` event (the challenge adds `generation_id`, `code`).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// How one layer agent's call went: an [`AgentResult`] without its text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentTiming {
    pub layer: u32,
    pub agent: String,
    pub provider: String,
    pub model: String,
    pub ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFailure {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_documented() {
        let event = Event::AnswerDelta(AnswerDelta { text: "Hi".into() });
        assert_eq!(event.name(), "answer_delta");
        assert_eq!(event.data(), serde_json::json!({"text": "Hi"}));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"event": "answer_delta", "data": {"text": "Hi"}})
        );
        let done = Event::Done(RunSummary {
            agents: Vec::new(),
            ms: 5,
            calls: 2,
            prompt_tokens: 10,
            completion_tokens: 3,
            failed_agents: 0,
            answer: "secret-free".into(),
            extra: Default::default(),
        });
        assert_eq!(
            done.data(),
            serde_json::json!({"ms": 5, "calls": 2, "prompt_tokens": 10, "completion_tokens": 3, "failed_agents": 0})
        );
        assert!(done.is_final() && Event::error("x").is_final() && !event.is_final());
        let Event::Done(mut summary) = done else { unreachable!() };
        summary.extra.insert("generation_id".into(), "g1".into());
        assert_eq!(Event::Done(summary).data()["generation_id"], "g1");
    }
}
