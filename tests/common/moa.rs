//! Helpers for MoA tests: the app wired to a fake LLM, configs, and reading the event stream.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use moa_workshop::config::{ModelSpec, Secret, Settings};
use serde_json::{Value, json};

use super::fake_llm::FakeLlm;
use super::{TestApp, spawn_app};

/// The key tests configure; it must reach the fake and nothing else.
pub const KEY: &str = "sk-test-secret";

/// Model names the fake understands (see `fake_llm`), all with an 8,192-token context.
pub const MODELS: &[&str] = &[
    "fast-a",
    "fast-b",
    "fast-c",
    "fail-401",
    "fail-400",
    "fail-429",
    "fail-500",
    "flaky",
    "slow",
    "malformed",
    "truncated",
    "plain",
    "nousage",
    "qwen-fake",
];

pub fn test_models() -> Vec<ModelSpec> {
    let mut models: Vec<ModelSpec> =
        MODELS.iter().map(|name| ModelSpec { name: name.to_string(), context_tokens: 8192 }).collect();
    models.push(ModelSpec { name: "big-main".into(), context_tokens: 32_768 });
    models
}

/// Points `settings` at `fake` with the test key and models.
pub fn use_fake(settings: &mut Settings, fake: &FakeLlm) {
    settings.llm_base_url = fake.base_url.clone();
    settings.llm_api_key = Some(Secret::new(KEY));
    settings.models = test_models();
    settings.llm_timeout = Duration::from_secs(10);
}

pub async fn spawn_with_fake(fake: &FakeLlm, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app(|settings| {
        use_fake(settings, fake);
        configure(settings);
    })
    .await
}

/// A config in the workshop format: `agents` are (name, model); each prompt names its agent.
pub fn config(main_model: &str, cycles: u32, agents: &[(&str, &str)]) -> Value {
    let layer_agents: Vec<Value> = agents
        .iter()
        .map(|(name, model)| {
            json!({"name": name, "model": model, "temperature": 0.2, "max_tokens": 256,
                   "prompt": format!("You are agent {name}. Earlier answers: {{helper_response}}")})
        })
        .collect();
    json!({"ai_configuration": {
        "main_model": main_model, "main_temperature": 0.5, "cycles": cycles,
        "system_prompt": "You are the main model. Synthesized answers: {helper_response}",
        "layer_agents": layer_agents}, "exported_at": "2025-06-03 14:00:00", "version": "2.0"})
}

pub async fn post_moa(app: &TestApp, question: &str, config: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/moa"))
        .json(&json!({"question": question, "config": config}))
        .send()
        .await
        .expect("POST /api/moa")
}

/// One server-sent event and when it arrived (since the request was sent).
#[derive(Debug, Clone)]
pub struct Ev {
    pub name: String,
    pub data: Value,
    pub at: Duration,
}

/// Reads the whole event stream.
pub async fn read_events(response: reqwest::Response, since: Instant) -> Vec<Ev> {
    assert_eq!(response.status(), 200, "expected a stream");
    assert!(
        response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"),
        "{:?}",
        response.headers()
    );
    let mut stream = response.bytes_stream().eventsource();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.expect("a well-formed event stream");
        let data = serde_json::from_str(&event.data).unwrap_or_else(|_| panic!("event data is JSON: {:?}", event.data));
        events.push(Ev { name: event.event, data, at: since.elapsed() });
    }
    events
}

/// Posts a run and reads all its events.
pub async fn run(app: &TestApp, question: &str, config: &Value) -> Vec<Ev> {
    let since = Instant::now();
    let response = post_moa(app, question, config).await;
    read_events(response, since).await
}

pub fn named<'a>(events: &'a [Ev], name: &str) -> Vec<&'a Ev> {
    events.iter().filter(|e| e.name == name).collect()
}

pub fn answer(events: &[Ev]) -> String {
    named(events, "answer_delta").iter().map(|e| e.data["text"].as_str().unwrap()).collect()
}

pub fn last(events: &[Ev]) -> &Ev {
    events.last().expect("at least one event")
}
