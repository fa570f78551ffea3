//! A provider misbehaving in every way the workshop saw (or could): slow and endless streams,
//! connections cut mid-answer, bytes that are not text, floods, and a room-wide 429 storm. Each
//! run must end, promptly, with a sentence on the agent that suffered, and leave nothing
//! running: no open connection to the provider, no engine task still at work.

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::fake_llm::FakeLlm;
use common::moa::{config, last, named, run, spawn_with_fake};

/// Waits until the app holds no connection to the fake and runs no engine task.
async fn assert_nothing_left_running(app: &TestApp, fake: &FakeLlm) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while (fake.in_flight() > 0 || app.state.runs_in_flight() > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.in_flight(), 0, "requests to the provider are still open");
    assert_eq!(app.state.runs_in_flight(), 0, "an engine task is still running");
}

fn agent_error(events: &[common::moa::Ev], agent: &str) -> String {
    let event = named(events, "agent").into_iter().find(|e| e.data["agent"] == agent).expect("the agent reported");
    event.data["error"].as_str().unwrap_or_else(|| panic!("{agent} has no error: {event:?}")).to_string()
}

#[tokio::test]
async fn every_broken_stream_ends_with_a_sentence_on_its_agent() {
    let fake = FakeLlm::start(Duration::from_millis(60)).await;
    let app = spawn_with_fake(&fake, |s| {
        s.llm_timeout = Duration::from_secs(2);
        s.llm_retry_window = Duration::from_secs(3);
        s.models.extend(
            ["trickle", "dropped", "garbage", "flood"]
                .map(|name| moa_workshop::config::ModelSpec { name: name.into(), context_tokens: 8192 }),
        );
    })
    .await;
    let agents =
        [("good", "fast-a"), ("dripping", "trickle"), ("cut", "dropped"), ("noise", "garbage"), ("firehose", "flood")];
    let started = Instant::now();
    let events = tokio::time::timeout(Duration::from_secs(15), run(&app, "Go", &config("fast-a", 1, &agents)))
        .await
        .expect("the run ends");
    assert_eq!(last(&events).name, "done", "{events:#?}");
    assert!(started.elapsed() < Duration::from_secs(6), "the run took {:?}", started.elapsed());

    assert_eq!(agent_error(&events, "dripping"), "no complete answer within 2 s (timed out)");
    let cut = agent_error(&events, "cut");
    assert!(cut.starts_with("the connection to the provider broke: "), "{cut}");
    assert_eq!(agent_error(&events, "noise"), "the provider sent a malformed answer: the stream was not valid UTF-8");
    let flood = agent_error(&events, "firehose");
    assert!(flood.contains("longer than"), "{flood}");
    let good = named(&events, "agent").into_iter().find(|e| e.data["agent"] == "good").unwrap();
    assert!(good.data["error"].is_null());
    // A stream that failed after text arrived is not retried (the page already showed it).
    let count = |model: &str| fake.requests().iter().filter(|r| r.model == model).count();
    assert_eq!((count("dropped"), count("garbage"), count("flood")), (1, 1, 1));
    assert_nothing_left_running(&app, &fake).await;
}

#[tokio::test]
async fn a_room_wide_429_storm_ends_every_run_within_the_retry_window() {
    let fake = FakeLlm::start(Duration::from_millis(20)).await;
    // A room of 40 attendees, sent from this one client: its per-client bound is lifted.
    let app = spawn_with_fake(&fake, |s| {
        s.llm_retry_window = Duration::from_secs(2);
        s.fair_use.runs_per_client = 0;
    })
    .await;
    let storm = config("fast-a", 1, &[("one", "fail-429"), ("two", "fail-429"), ("three", "fast-b")]);
    let started = Instant::now();
    let runs = (0..40).map(|_| run(&app, "Everyone at once", &storm));
    let results = tokio::time::timeout(Duration::from_secs(20), futures_util::future::join_all(runs))
        .await
        .expect("every run ends");
    assert!(started.elapsed() < Duration::from_secs(6), "the storm took {:?}", started.elapsed());
    for events in &results {
        assert_eq!(last(events).name, "done", "{events:#?}");
        assert!(agent_error(events, "one").starts_with("rate limited by the provider (HTTP 429)"));
        assert!(agent_error(events, "two").starts_with("rate limited by the provider (HTTP 429)"));
    }
    // Retries are bounded per call: at most 4 attempts each, never a retry loop.
    let limited = fake.requests().iter().filter(|r| r.model == "fail-429").count();
    assert!((80..=320).contains(&limited), "{limited} rate-limited requests for 80 calls");
    assert_nothing_left_running(&app, &fake).await;
}

#[tokio::test]
async fn a_client_leaving_during_an_endless_stream_stops_the_provider_call() {
    let fake = FakeLlm::start(Duration::from_millis(50)).await;
    let app = spawn_with_fake(&fake, |s| {
        s.models.push(moa_workshop::config::ModelSpec { name: "trickle".into(), context_tokens: 8192 })
    })
    .await;
    let response = common::moa::post_moa(&app, "Bye", &config("fast-a", 1, &[("dripping", "trickle")])).await;
    use futures_util::StreamExt;
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("a first event");
    assert!(first.is_some());
    assert_eq!(fake.in_flight(), 1);
    drop(body);
    assert_nothing_left_running(&app, &fake).await;
    assert_eq!(fake.abandoned(), 1);
}
