//! Fair use (issue 13): one client cannot spend the room's key, fill `MOA_MAX_RUNS` or hold
//! the grader for everyone else; each refusal is a 429 with a sentence and Retry-After.

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::moa::{config, spawn_with_fake};
use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");

fn small() -> Value {
    config("big-main", 1, &[("a", "fast-a")])
}

/// An anonymous `/api/moa` request, from the browser with this `moa_browser` id if any.
fn ask(app: &TestApp, browser: Option<&str>, setup: &Value) -> reqwest::RequestBuilder {
    let request = reqwest::Client::new().post(app.url("/api/moa")).json(&json!({"question": "Hi", "config": setup}));
    match browser {
        Some(id) => request.header("cookie", format!("moa_browser={id}")),
        None => request,
    }
}

async fn refusal(response: reqwest::Response) -> (u16, u64, String) {
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map_or(0, |v| v.to_str().unwrap().parse().unwrap());
    let body: Value = response.json().await.unwrap();
    (status, retry_after, body["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn one_client_holding_slow_runs_cannot_fill_the_server() {
    // Agents that take a while: runs stay open while the flood arrives.
    let llm = FakeLlm::start(Duration::from_millis(1500)).await;
    let app = spawn_with_fake(&llm, |s| s.max_runs = 10).await;
    let hog = "a".repeat(32);
    let flood = futures_util::future::join_all((0..20).map(|_| ask(&app, Some(&hog), &small()).send())).await;
    let accepted: Vec<_> = flood.into_iter().map(Result::unwrap).filter(|r| r.status() == 200).collect();
    assert_eq!(accepted.len(), 3, "MOA_RUNS_PER_CLIENT (3) at once");
    let (status, retry_after, sentence) = refusal(ask(&app, Some(&hog), &small()).send().await.unwrap()).await;
    assert_eq!((status, retry_after), (429, 5));
    assert!(sentence.contains("You already have 3 runs going"), "{sentence}");
    // Everyone else still gets in.
    let other = ask(&app, Some(&"b".repeat(32)), &small()).send().await.unwrap();
    assert_eq!(other.status(), 200);
    let ada = app.post_json_as("Ada", "/api/generate", &json!({"config": small()})).await;
    assert_eq!(ada.status(), 200);
    // A script that drops its cookies is one client: its address.
    let cookieless = futures_util::future::join_all((0..5).map(|_| ask(&app, None, &small()).send())).await;
    let (open, refused): (Vec<_>, Vec<_>) = cookieless.into_iter().map(Result::unwrap).partition(|r| r.status() == 200);
    assert_eq!(open.len(), 3, "{:?}", refusal(refused.into_iter().next().unwrap()).await);
    drop((accepted, other, open));
}

#[tokio::test]
async fn fresh_browser_ids_from_one_address_meet_the_address_backstop() {
    let llm = FakeLlm::start(Duration::from_millis(1500)).await;
    let app = spawn_with_fake(&llm, |s| s.fair_use.runs_per_ip = 4).await;
    let ids: Vec<String> = (0..8).map(|n| format!("{n:032x}")).collect();
    let runs = futures_util::future::join_all(ids.iter().map(|id| ask(&app, Some(id), &small()).send())).await;
    let statuses: Vec<u16> = runs.iter().map(|r| r.as_ref().unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 4, "{statuses:?}");
    let (status, _, sentence) = refusal(ask(&app, Some(&"f".repeat(32)), &small()).send().await.unwrap()).await;
    assert_eq!(status, 429);
    assert!(sentence.contains("Your network address already has 4 runs going"), "{sentence}");
    drop(runs);
}

#[tokio::test]
async fn one_client_cannot_make_thousands_of_provider_calls_a_minute() {
    let llm = FakeLlm::start(Duration::from_millis(1)).await;
    let app = spawn_with_fake(&llm, |_| {}).await;
    let agents: Vec<(String, &str)> = (0..8).map(|n| (format!("agent{n}"), "fast-a")).collect();
    let agents: Vec<(&str, &str)> = agents.iter().map(|(n, m)| (n.as_str(), *m)).collect();
    let widest = config("big-main", 10, &agents);
    let browser = "c".repeat(32);
    // Runs one after another (never more than one at once): the calls per minute still stop it.
    let mut refused = None;
    for _ in 0..10 {
        let response = ask(&app, Some(&browser), &widest).send().await.unwrap();
        if response.status() != 200 {
            refused = Some(refusal(response).await);
            break;
        }
        assert!(response.text().await.unwrap().contains("event: done"));
    }
    let (status, retry_after, sentence) = refused.expect("the client was stopped");
    assert_eq!(status, 429);
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(sentence.contains("This run would make 81 model calls") && sentence.contains("250"), "{sentence}");
    let calls = llm.requests().len();
    assert!(calls <= 250, "{calls} provider calls in a minute from one client");
    // Another attendee is not affected.
    assert_eq!(ask(&app, Some(&"d".repeat(32)), &small()).send().await.unwrap().status(), 200);
}

/// The tokens a run of `setup` plans for ("Hi"), as the server estimates them.
async fn planned(llm: &FakeLlm, setup: &Value) -> u64 {
    let app = spawn_with_fake(llm, |_| {}).await;
    let config: moa_workshop::moa::Config = serde_json::from_value(setup.clone()).unwrap();
    let plan = moa_workshop::moa::prepare(config, "Hi", &app.state.catalog.offer()).unwrap();
    moa_workshop::live::fair_use::planned_tokens(&plan)
}

#[tokio::test]
async fn the_event_key_has_an_optional_token_budget_that_counts_real_usage() {
    let llm = FakeLlm::start(Duration::from_millis(1)).await;
    let one = planned(&llm, &small()).await;
    let app = spawn_with_fake(&llm, |s| s.fair_use.event_tokens_per_minute = one * 3 / 2).await;
    // Each run plans for `one` tokens but uses only what the fake reports (36): the budget
    // counts that once the run is over, so runs one after another keep fitting.
    for n in 0..4 {
        let run = ask(&app, Some(&format!("{n:032x}")), &small()).send().await.unwrap();
        assert_eq!(run.status(), 200, "run {n}");
        assert!(run.text().await.unwrap().contains("event: done"));
    }
    let big = config("big-main", 3, &[("a", "fast-a"), ("b", "fast-b"), ("c", "fast-c")]);
    let (status, _, sentence) = refusal(ask(&app, None, &big).send().await.unwrap()).await;
    assert_eq!(status, 400, "{sentence}");
    assert!(sentence.contains("more than the event's key allows per minute"), "{sentence}");
    // An attendee's own key is not the event's to budget.
    let own = ask(&app, None, &big).header("x-llm-api-key", "sk-own-key-123").send().await.unwrap();
    assert_eq!(own.status(), 200);
}

#[tokio::test]
async fn the_event_budget_refuses_with_retry_after_while_spent() {
    let llm = FakeLlm::start(Duration::from_millis(1500)).await;
    let one = planned(&llm, &small()).await;
    let budget = one * 5 / 2;
    let app = spawn_with_fake(&llm, |s| s.fair_use.event_tokens_per_minute = budget).await;
    // Slow runs at once, from different browsers: each counts what it planned, so two fit.
    let runs =
        futures_util::future::join_all((0..4).map(|n| ask(&app, Some(&format!("{n:032x}")), &small()).send())).await;
    let statuses: Vec<u16> = runs.iter().map(|r| r.as_ref().unwrap().status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{statuses:?}");
    let (status, retry_after, sentence) = refusal(ask(&app, None, &small()).send().await.unwrap()).await;
    assert_eq!(status, 429);
    assert!(retry_after >= 1);
    let expected = format!("The event's API key is at its budget of {budget} tokens per minute");
    assert!(sentence.contains(&expected), "{sentence}");
    drop(runs);
}

#[tokio::test]
async fn the_chat_can_require_a_claimed_name() {
    let llm = FakeLlm::start(Duration::from_millis(1)).await;
    let app = spawn_with_fake(&llm, |s| s.fair_use.chat_requires_name = true).await;
    let (status, _, sentence) = refusal(ask(&app, None, &small()).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(sentence.contains("claim a display name"), "{sentence}");
    let page = reqwest::get(app.url("/chat")).await.unwrap().text().await.unwrap();
    assert!(page.contains("claim a display name first"), "the page says so");
    let named = ask(&app, None, &small()).header("x-participant-token", app.token("Ada").await).send().await.unwrap();
    assert_eq!(named.status(), 200);
    // By default the chat is open to anonymous visitors, and the page gives them a browser id.
    let open = spawn_with_fake(&llm, |_| {}).await;
    assert_eq!(ask(&open, None, &small()).send().await.unwrap().status(), 200);
    let page = reqwest::get(open.url("/chat")).await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("moa_browser=") && cookie.contains("HttpOnly"), "{cookie}");
}

/// Stores a generation of `code` for `name` and returns its id.
async fn generation(app: &TestApp, name: &str, code: &str) -> String {
    let participant = app.participant(name).await;
    let new = moa_workshop::store::generations::NewGeneration {
        participant_id: &participant.id,
        challenge: "calculate_user_metrics",
        challenge_hash: "",
        config: &small(),
        prompt: "write it",
        answer: code,
        code,
        timings: &json!({"ms": 1}),
        config_hash: "",
    };
    moa_workshop::store::generations::insert(&app.state.pool, new).await.unwrap().id
}

async fn submit(app: &TestApp, name: &str, generation_id: &str) -> reqwest::Response {
    app.post_json_as(name, "/api/submissions", &json!({"generation_id": generation_id})).await
}

#[tokio::test]
async fn a_flood_of_slow_submissions_delays_only_its_sender() {
    let app = common::spawn_app(|s| {
        s.grade_concurrency = Some(2);
        s.grade_queue = Some(8);
        s.submit_per_minute = 0;
    })
    .await;
    // 40 submissions that loop at import time, from one participant, all at once.
    let looping = "while True:\n    pass\n";
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(generation(&app, "Prankster", looping).await);
    }
    let honest = generation(&app, "Ada", FULL_MARKS).await;
    let started = Instant::now();
    let sent = futures_util::future::join_all(flood.iter().map(|id| {
        let app = &app;
        async move {
            let response = submit(app, "Prankster", id).await;
            (response.status().as_u16(), Instant::now())
        }
    }));
    let honest_grade = async {
        // Let the flood arrive first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = submit(&app, "Ada", &honest).await;
        (response.status().as_u16(), response.json::<Value>().await.unwrap(), Instant::now())
    };
    let (flood, (status, grade, honest_at)) = tokio::join!(sent, honest_grade);
    assert_eq!(status, 200, "the honest attendee was not refused: {grade}");
    assert_eq!(grade["total"], 120);
    let graded_flood: Vec<&Instant> = flood.iter().filter(|(s, _)| *s == 200).map(|(_, at)| at).collect();
    assert_eq!(graded_flood.len(), 1, "one grading slot for the flood's sender");
    assert_eq!(flood.iter().filter(|(s, _)| *s == 429).count(), 39);
    // Ada did not queue behind the flood: her grade came back no later than about one looping
    // submission (its 3 s import limit) after the flood's single one (on a quiet machine, before).
    assert!(
        honest_at <= *graded_flood[0] + Duration::from_secs(3),
        "Ada waited for the flood: {:?} after the start",
        honest_at - started
    );
}
