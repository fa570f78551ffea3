//! Evaluate, compare, tune against a fake LLM whose answers depend on the configuration in ways
//! these tests know, graded by the real grader (real Python):
//! - a main prompt naming "the lead engineer" writes full marks (120);
//! - otherwise, at a temperature above 0.5, every other main-model answer is full marks, the
//!   rest the division fix only (65);
//! - otherwise a main model that read other agents' answers writes the ascending-sort bug (98),
//!   and one that read none (the main model alone) the division fix (65);
//! - asked to rewrite a prompt, the model answers with the lead engineer's prompt.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::fake_llm::FakeLlm;
use common::moa::{Ev, read_events, spawn_with_fake};
use moa_workshop::config::Secret;
use moa_workshop::evaluate::tune::REWRITE_INSTRUCTION;
use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");
const DIVISION_FIX: &str = include_str!("../fixtures/grader-examples/03_division_fix_only.py");
const ASCENDING: &str = include_str!("../fixtures/grader-examples/04_ascending_sort.py");
const AGGREGATED: &str = "Several assistants have answered";
const ORGANIZER: &str = "org-token-0123456789";

async fn fake() -> FakeLlm {
    let main_calls = Arc::new(AtomicUsize::new(0));
    FakeLlm::start_with(
        Duration::from_millis(20),
        Box::new(move |r| {
            let code = |c: &str| format!("```python\n{c}```");
            if r.system == REWRITE_INSTRUCTION {
                "You are the lead engineer. Reviews: {helper_response}. Return the code in one ```python block.".into()
            } else if !r.system.starts_with("MAIN") && !r.system.contains("lead engineer") {
                "Review: guard the division.".into() // a layer agent
            } else if r.system.contains("lead engineer") {
                code(FULL_MARKS)
            } else if r.temperature > 0.5 {
                code(if main_calls.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                    FULL_MARKS
                } else {
                    DIVISION_FIX
                })
            } else if r.system.contains(AGGREGATED) {
                code(ASCENDING)
            } else {
                code(DIVISION_FIX)
            }
        }),
    )
    .await
}

/// One agent; the main prompt starts with MAIN so the fake tells it from the agents'.
fn config(main_temperature: f64, cycles: u32) -> Value {
    json!({"main_model": "fast-a", "main_temperature": main_temperature, "cycles": cycles,
        "system_prompt": "MAIN: write calculate_user_metrics. Notes: {helper_response}",
        "layer_agents": [{"name": "reviewer", "model": "fast-b", "temperature": 0.2,
            "prompt": "Review the task. {helper_response}", "max_tokens": 128}]})
}

async fn post(app: &common::TestApp, path: &str, body: Value) -> Vec<Ev> {
    let response = app.post_json_as("Ada", path, &body).await;
    read_events(response, Instant::now()).await
}

fn done(events: &[Ev]) -> &Value {
    let last = events.last().expect("events");
    assert_eq!(last.name, "done", "{:?}", last.data);
    &last.data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_reports_exact_statistics_and_is_stored() {
    let fake = fake().await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    // At 0.9 the main model alternates 120 / 65: exactly half and half over four runs.
    let events = post(&app, "/api/evaluations", json!({"config": config(0.9, 1), "runs": 4})).await;
    let runs: Vec<&Ev> = events.iter().filter(|e| e.name == "run").collect();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r.data["total"] == 4 && r.data["calls"] == 2 && r.data["status"] == "graded"));
    let done = done(&events);
    let mut scores: Vec<u64> = done["scores"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    scores.sort();
    assert_eq!(scores, [65, 65, 120, 120]);
    assert_eq!((done["mean"].as_f64(), done["median"].as_f64()), (Some(92.5), Some(92.5)));
    assert_eq!(
        (done["min"].as_u64(), done["max"].as_u64(), done["stdev"].as_f64()),
        (Some(65), Some(120), Some(31.75))
    );
    assert_eq!(done["check_pass_rate"]["handles_division_by_zero"], 1.0, "both solutions guard the division");
    assert_eq!(done["check_pass_rate"]["correct_sorting_direction"], 0.5);
    assert_eq!(done["calls"], 8);
    // Stored for the participant, and no evaluation run is a submission or a generation.
    let stored = moa_workshop::store::evaluations::latest(
        &app.state.pool,
        &app.participant("Ada").await.id,
        moa_workshop::grader::challenge::DEFAULT_ID,
    )
    .await
    .unwrap()
    .expect("stored");
    assert_eq!((stored.kind.as_str(), &stored.result["mean"]), ("evaluation", &json!(92.5)));
    let board: Value = reqwest::get(app.url("/api/leaderboard")).await.unwrap().json().await.unwrap();
    assert_eq!(board.as_array().map(Vec::len), Some(0), "{board}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comparison_tells_a_real_difference_from_none() {
    let fake = fake().await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    // The main model that read the agents' answers writes 98; alone, 65.
    let events = post(&app, "/api/comparisons", json!({"config": config(0.2, 2), "runs": 5})).await;
    assert_eq!(events.iter().filter(|e| e.name == "run").count(), 10);
    let real = done(&events);
    assert_eq!((real["a"]["mean"].as_f64(), real["b"]["mean"].as_f64()), (Some(98.0), Some(65.0)));
    assert_eq!(real["b"]["calls"], 5, "the main model alone: one call a run");
    assert_eq!(real["difference"]["mean"], 33.0);
    assert_eq!(real["difference"]["significant"], true, "{}", real["difference"]);
    // The same configuration on both sides: no difference, and it says so.
    let same =
        post(&app, "/api/comparisons", json!({"config": config(0.2, 2), "against": config(0.2, 2), "runs": 4})).await;
    let none = done(&same);
    assert_eq!(none["difference"]["mean"], 0.0);
    assert_eq!(none["difference"]["significant"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuning_finds_a_better_configuration_within_its_budget() {
    let fake = fake().await;
    let app = spawn_with_fake(&fake, |s| s.organizer_token = Some(Secret::new(ORGANIZER))).await;
    let before = fake.requests().len();
    let events = post(&app, "/api/tuning", json!({"config": config(0.2, 1), "budget": {"generations": 3}})).await;
    let trials: Vec<&Ev> = events.iter().filter(|e| e.name == "trial").collect();
    assert!(!trials.is_empty() && trials.len() <= 3, "never more generations than the budget: {}", trials.len());
    assert_eq!(trials[0].data["score"], 98, "the start");
    let done = done(&events);
    assert_eq!(done["best_score"], 120, "the rewritten prompt scores full marks: {done}");
    assert!(done["trials"].as_u64().unwrap() <= 3);
    let best = &done["best_config"]["ai_configuration"];
    assert!(best["system_prompt"].as_str().unwrap().contains("lead engineer"), "{best}");
    // Every model call is counted: two per generation, and the rewrite.
    let made = fake.requests().len() - before;
    assert_eq!(done["calls"].as_u64().unwrap() as usize, made);
    // The best configuration is an ordinary one: it generates and submits like any other, and
    // the organizer sees that it came from tuning.
    let generated =
        app.post_json_as("Ada", "/api/generate", &json!({"config": done["best_config"], "prompt": null})).await;
    let events = read_events(generated, Instant::now()).await;
    let id = events.last().unwrap().data["generation_id"].clone();
    let graded = app.post_json_as("Ada", "/api/submissions", &json!({"generation_id": id})).await;
    assert_eq!(graded.json::<Value>().await.unwrap()["total"], 120);
    let ada = app.participant("Ada").await;
    let page = app.organizer_page(ORGANIZER, &format!("/organizer/participants/{}", ada.id)).await;
    assert_eq!(page.matches(r#"<strong class="tag""#).count(), 1, "the submission is marked tuned: {page}");
    // And the organizer's board marks the best score that came from it; the public one does not.
    let organizer_board = app.organizer_page(ORGANIZER, "/organizer").await;
    assert!(organizer_board.contains(r#"<strong class="tag""#), "{organizer_board}");
    let public = reqwest::get(app.url("/leaderboard")).await.unwrap().text().await.unwrap();
    assert!(!public.contains(r#"class="tag""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_organizer_can_turn_measuring_off_and_the_limits_hold() {
    let fake = fake().await;
    let app = spawn_with_fake(&fake, |s| {
        s.evaluation_max_runs = 5;
        s.organizer_token = Some(Secret::new(ORGANIZER));
    })
    .await;
    let switch = |off: &'static str| {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let request = client.post(app.url("/organizer/lab")).bearer_auth(ORGANIZER);
        async move { request.form(&[("off", off)]).send().await.unwrap() }
    };
    let response = app.post_json_as("Ada", "/api/evaluations", &json!({"config": config(0.2, 1), "runs": 6})).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("1 to 5"));
    // The organizer's switch, as the organizer page posts it.
    assert!(switch("1").await.status().is_redirection());
    for (path, body) in [
        ("/api/evaluations", json!({"config": config(0.2, 1), "runs": 2})),
        ("/api/comparisons", json!({"config": config(0.2, 1), "runs": 2})),
        ("/api/tuning", json!({"config": config(0.2, 1), "budget": {"generations": 2}})),
    ] {
        let response = app.post_json_as("Ada", path, &body).await;
        assert_eq!(response.status(), 403, "{path}");
        assert!(response.text().await.unwrap().contains("turned off"), "{path}");
    }
    assert!(fake.requests().is_empty(), "nothing was called");
    assert!(switch("0").await.status().is_redirection());
    let events = post(&app, "/api/evaluations", json!({"config": config(0.2, 1), "runs": 1})).await;
    assert_eq!(done(&events)["runs"], 1, "on again");
    // Only participants measure.
    let anonymous = reqwest::Client::new()
        .post(app.url("/api/evaluations"))
        .json(&json!({"config": config(0.2, 1), "runs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_measurement_spends_only_what_the_person_may() {
    let fake = fake().await;
    // Five calls a minute: two runs of two calls fit, the third would not.
    let app = spawn_with_fake(&fake, |s| s.fair_use.calls_per_minute = 5).await;
    let events = post(&app, "/api/evaluations", json!({"config": config(0.2, 1), "runs": 4})).await;
    let done = done(&events);
    assert_eq!(done["runs"], 2, "{done}");
    assert!(done["stopped"].as_str().unwrap().contains("spending bound"), "{done}");
    assert_eq!(fake.requests().len(), 4, "no call past the bound");
}
