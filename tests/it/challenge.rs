//! The challenge flow against a fake LLM: generate (an MoA run that stores the extracted
//! function) → submit (graded in the sandbox) → leaderboard.

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::moa::{config, named, read_events, spawn_with_fake};
use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");
const ASCENDING: &str = include_str!("../fixtures/grader-examples/04_ascending_sort.py");

/// The main model answers with fenced code: the ascending-sort version when the prompt asks
/// for "variant B", the full-marks one otherwise. Layer agents give short notes.
async fn fake() -> FakeLlm {
    FakeLlm::start_with(
        Duration::from_millis(30),
        Box::new(|r| {
            if !r.system.starts_with("You are the main model") {
                return format!("note {} from {}", r.seq, r.model);
            }
            let code = if r.user.contains("variant B") { ASCENDING } else { FULL_MARKS };
            format!("Here is the function:\n\n```python\n{code}```\n\nIt handles every edge case.")
        }),
    )
    .await
}

fn setup() -> Value {
    config("big-main", 2, &[("bug_hunter", "fast-a"), ("reviewer", "fast-b")])
}

/// `POST /api/generate` as participant `name` (claimed on first use).
async fn generate(app: &TestApp, name: &str, body: Value) -> reqwest::Response {
    app.post_json_as(name, "/api/generate", &body).await
}

async fn generate_ok(app: &TestApp, participant: &str, prompt: Option<&str>) -> (String, String) {
    let since = Instant::now();
    let response = generate(app, participant, json!({"config": setup(), "prompt": prompt})).await;
    let events = read_events(response, since).await;
    let done = events.last().unwrap();
    assert_eq!(done.name, "done", "{events:?}");
    assert_eq!(named(&events, "agent").len(), 4, "2 agents × 2 cycles");
    (done.data["generation_id"].as_str().unwrap().to_string(), done.data["code"].as_str().unwrap().to_string())
}

async fn submit(app: &TestApp, participant: &str, generation_id: &str) -> Value {
    let response = app.post_json_as(participant, "/api/submissions", &json!({"generation_id": generation_id})).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
        .fetch_one(&app.state.pool)
        .await
        .unwrap()
        .get("n")
}

#[tokio::test]
async fn generate_then_submit_then_leaderboard() {
    let llm = fake().await;
    let app = spawn_with_fake(&llm, |_| {}).await;

    let (ada_generation, code) = generate_ok(&app, "Ada", None).await;
    assert_eq!(code.trim(), FULL_MARKS.trim(), "the fenced block is extracted");
    // The default prompt is the challenge prompt.
    let main_request = llm.requests().into_iter().find(|r| r.system.starts_with("You are the main model")).unwrap();
    assert!(main_request.user.contains("calculate_user_metrics(users, start_date, end_date)"));

    let (bob_generation, _) = generate_ok(&app, "Bob", Some("Write calculate_user_metrics, variant B.")).await;
    let ada = submit(&app, "Ada", &ada_generation).await;
    assert_eq!((ada["total"].as_u64(), ada["rank"].as_u64()), (Some(120), Some(1)));
    let bob = submit(&app, "Bob", &bob_generation).await;
    assert_eq!((bob["total"].as_u64(), bob["rank"].as_u64()), (Some(98), Some(2)));

    let board: Vec<Value> = reqwest::get(app.url("/api/leaderboard")).await.unwrap().json().await.unwrap();
    let order: Vec<(&str, u64)> =
        board.iter().map(|r| (r["participant"].as_str().unwrap(), r["best_score"].as_u64().unwrap())).collect();
    assert_eq!(order, [("Ada", 120), ("Bob", 98)]);
    assert_eq!(board[0]["config_summary"], "big-main · 2 cycles · 2 agents");

    // The stored generation keeps the whole story.
    let stored = moa_workshop::store::generations::find(&app.state.pool, &ada_generation).await.unwrap().unwrap();
    assert!(stored.answer.contains("It handles every edge case."));
    assert_eq!(stored.config["ai_configuration"]["layer_agents"][1]["name"], "reviewer");
    assert!(stored.timings["ms"].as_u64().is_some());
    let agents = stored.timings["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 4, "2 agents × 2 cycles");
    assert!(
        agents.iter().all(|a| a["ms"].as_u64().is_some() && a["completion_tokens"].as_u64() == Some(7)),
        "{agents:?}"
    );
    assert_eq!(agents[3]["layer"], 2);
    // Another attendee cannot submit Ada's generation.
    let response = app.post_json_as("Bob", "/api/submissions", &json!({"generation_id": ada_generation})).await;
    assert_eq!(response.status(), 404);
    // Nor by naming Ada while signed in as Bob.
    let response = app
        .post_json_as("Bob", "/api/submissions", &json!({"participant": "Ada", "generation_id": ada_generation}))
        .await;
    assert_eq!(response.status(), 403);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("cannot act for \"Ada\""), "{error}");
}

#[tokio::test]
async fn bad_generate_requests_are_refused_before_anything_is_stored_or_called() {
    let llm = fake().await;
    let app = spawn_with_fake(&llm, |_| {}).await;
    let mut no_placeholder = setup();
    no_placeholder["ai_configuration"]["system_prompt"] = json!("no placeholder here");
    let cases = [
        (json!({"config": setup(), "prompt": "p".repeat(200_000)}), "200000 characters"),
        (json!({"participant": "Ada", "config": no_placeholder}), "{helper_response}"),
        (json!({"participant": "Ada"}), "config"),
    ];
    for (body, text) in cases {
        let response = generate(&app, "Ada", body.clone()).await;
        assert_eq!(response.status(), 400, "{}", &body.to_string()[..80.min(body.to_string().len())]);
        let error: Value = response.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(text), "{error}");
    }
    let response = app
        .post_as(&reqwest::Client::new(), "Ada", "/api/generate")
        .await
        .header("content-type", "application/json")
        .body("{\"participant\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(count(&app, "participants").await, 1, "only Ada's claim");
    assert_eq!(count(&app, "generations").await, 0);
    assert!(llm.requests().is_empty(), "no model was called");
    // A 40-character name in any script is fine.
    let name: String = "名".repeat(40);
    generate_ok(&app, &name, None).await;
    assert_eq!(count(&app, "participants").await, 2);
}

#[tokio::test]
async fn without_an_api_key_generate_explains_what_to_set() {
    let llm = fake().await;
    let app = spawn_with_fake(&llm, |s| s.llm_api_key = None).await;
    let response = generate(&app, "Ada", json!({"config": setup()})).await;
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(error.contains("LLM_API_KEY") && error.contains("paste your own key"), "{error}");
    assert!(llm.requests().is_empty(), "no model was called");
}

#[tokio::test]
async fn generating_too_fast_gets_429() {
    let llm = fake().await;
    let app = spawn_with_fake(&llm, |s| s.generate_per_minute = 1).await;
    generate_ok(&app, "Ada", None).await;
    let response = generate(&app, "Ada", json!({"participant": "Ada", "config": setup()})).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}
