//! A room's worth of attendees at once: 200 generate through the MoA engine (fake LLM) and
//! submit to the real grader at the same moment, retrying as told when the server says it is
//! full. The only refusals allowed are 429/503 with a Retry-After and a sentence; in the end
//! every attendee has exactly one submission and the leaderboard shows all of them.
//!
//! `MOA_LOAD_ATTENDEES` changes the crowd (200 by default).

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::moa::{config, spawn_with_fake};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");

fn attendees() -> usize {
    std::env::var("MOA_LOAD_ATTENDEES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

/// What the crowd saw, for the final assertions.
#[derive(Default)]
struct Tally {
    refusals: Vec<(u16, String)>,
}

/// Sends `request` until it is not refused with 429/503, honouring Retry-After. Any other
/// refusal, or a refusal without Retry-After or sentence, fails the test.
async fn until_accepted(tally: &mut Tally, request: impl Fn() -> reqwest::RequestBuilder) -> reqwest::Response {
    let give_up = Instant::now() + Duration::from_secs(240);
    loop {
        let response = request().send().await.expect("the server answers");
        let status = response.status().as_u16();
        if status != 429 && status != 503 {
            return response;
        }
        let retry_after: u64 = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or_else(|| panic!("{status} without Retry-After"));
        let body: Value = response.json().await.expect("a JSON refusal");
        let sentence = body["error"].as_str().expect("an error sentence").to_string();
        assert!(sentence.ends_with('.'), "{sentence}");
        tally.refusals.push((status, sentence));
        assert!(Instant::now() < give_up, "still refused after four minutes");
        // A little jitter so a refused crowd does not come back in one wave.
        let jitter = Duration::from_millis(rand::random::<u64>() % 250);
        tokio::time::sleep(Duration::from_secs(retry_after.min(5)) + jitter).await;
    }
}

/// One attendee: generate, submit, then submit the same generation again (a retried request on
/// bad Wi-Fi), which must return the same submission.
async fn attendee(app: &TestApp, client: &reqwest::Client, n: usize) -> (Tally, String) {
    let mut tally = Tally::default();
    let name = format!("Attendee {n:03}");
    let setup = config("big-main", 1, &[("a", "fast-a"), ("b", "fast-b")]);
    // Each attendee claims a name and acts with its own token from then on.
    let claimed =
        until_accepted(&mut tally, || client.post(app.url("/api/participants")).json(&json!({"name": name}))).await;
    assert_eq!(claimed.status(), 201, "{name}: claim");
    let token = claimed.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let response = until_accepted(&mut tally, || {
        client
            .post(app.url("/api/generate"))
            .header("x-participant-token", &token)
            .json(&json!({"config": setup, "prompt": null}))
    })
    .await;
    assert_eq!(response.status(), 200, "{name}: generate");
    let mut events = response.bytes_stream().eventsource();
    let mut done = None;
    while let Some(event) = events.next().await {
        let event = event.expect("a well-formed stream");
        match event.event.as_str() {
            "done" => done = Some(serde_json::from_str::<Value>(&event.data).unwrap()),
            "error" => panic!("{name}: the run failed: {}", event.data),
            _ => {}
        }
    }
    let generation = done.expect("a done event")["generation_id"].as_str().unwrap().to_string();
    let submit = || {
        client
            .post(app.url("/api/submissions"))
            .header("x-participant-token", &token)
            .json(&json!({"generation_id": generation}))
    };
    let first = until_accepted(&mut tally, submit).await;
    assert_eq!(first.status(), 200, "{name}: submit");
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["total"], 120, "{name}: {first}");
    let again: Value = until_accepted(&mut tally, submit).await.json().await.unwrap();
    assert_eq!(again["submission_id"], first["submission_id"], "{name}: a retry is the same submission");
    (tally, first["submission_id"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_generating_and_submitting_at_once_loses_and_duplicates_nothing() {
    let crowd = attendees();
    let fake = FakeLlm::start_with(
        Duration::from_millis(40),
        Box::new(|r| {
            if r.system.starts_with("You are the main model") {
                format!("Here it is:\n\n```python\n{FULL_MARKS}```")
            } else {
                format!("note {}", r.seq)
            }
        }),
    )
    .await;
    // The whole room shares one address here (as behind a venue's NAT): name claims from it
    // are not limited, the other fair-use bounds are the defaults.
    let app = spawn_with_fake(&fake, |s| s.fair_use.claims_per_ip_per_minute = 0).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let results = futures_util::future::join_all((0..crowd).map(|n| attendee(&app, &client, n))).await;
    let elapsed = started.elapsed();

    let mut submission_ids: Vec<&str> = results.iter().map(|(_, id)| id.as_str()).collect();
    submission_ids.sort();
    submission_ids.dedup();
    assert_eq!(submission_ids.len(), crowd, "one distinct submission per attendee");
    let board: Vec<Value> = reqwest::get(app.url("/api/leaderboard")).await.unwrap().json().await.unwrap();
    assert_eq!(board.len(), crowd);
    assert!(board.iter().all(|row| row["submissions"] == 1 && row["best_score"] == 120));
    use sqlx::Row;
    let count = |table: &'static str| {
        let pool = app.state.pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
                .fetch_one(&pool)
                .await
                .unwrap()
                .get::<i64, _>("n")
        }
    };
    assert_eq!(count("submissions").await, crowd as i64);
    assert_eq!(count("generations").await, crowd as i64);
    assert_eq!(count("participants").await, crowd as i64, "one participant per claim");
    assert_eq!(app.state.runs_in_flight(), 0);

    let refusals: Vec<&(u16, String)> = results.iter().flat_map(|(tally, _)| &tally.refusals).collect();
    let busy = refusals.iter().filter(|(status, _)| *status == 429).count();
    println!(
        "{crowd} attendees: generated and submitted in {:.1} s; {} refusals ({busy} × 429, {} × 503)",
        elapsed.as_secs_f64(),
        refusals.len(),
        refusals.len() - busy
    );
    if let Some((status, sentence)) = refusals.first() {
        println!("for example: {status} {sentence}");
    }
}

#[tokio::test]
async fn past_the_run_limit_new_runs_wait_their_turn_without_losing_one() {
    let fake = FakeLlm::start(Duration::from_millis(800)).await;
    let app = spawn_with_fake(&fake, |s| {
        s.max_runs = 2;
        s.generate_per_minute = 1;
    })
    .await;
    let client = reqwest::Client::new();
    let setup = config("big-main", 1, &[("a", "fast-a")]);
    let ask = || client.post(app.url("/api/moa")).json(&json!({"question": "Hi", "config": setup}));
    let first = ask().send().await.unwrap();
    let second = ask().send().await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    assert_eq!(app.state.runs_in_flight(), 2);

    let refused = ask().send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"],
        "The server is running as many MoA runs as it allows (2); please try again in a few seconds."
    );
    let ada = app.token("Ada").await;
    let generate = || {
        client
            .post(app.url("/api/generate"))
            .header("x-participant-token", &ada)
            .json(&json!({"config": setup, "prompt": null}))
    };
    assert_eq!(generate().send().await.unwrap().status(), 429);
    assert_eq!(app.state.runs_in_flight(), 2, "a refused run holds no place");

    // The runs end, their places come back, and Ada's one generation a minute was not spent.
    for response in [first, second] {
        let text = response.text().await.unwrap();
        assert!(text.contains("event: done"), "{text}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.runs_in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.state.runs_in_flight(), 0);
    let accepted = generate().send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(accepted.text().await.unwrap().contains("event: done"));
}
