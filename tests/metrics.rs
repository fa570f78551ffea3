//! `GET /metrics`: scraped after real work (a chat run against the fake LLM, a grading, a
//! refused claim, an open live stream), parsed as the text format, and refused without a token.
//! Counters belong to the process, which this file's tests share: they compare before/after.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::fake_llm::FakeLlm;
use common::moa::{config, run, spawn_with_fake};
use futures_util::StreamExt;
use moa_workshop::config::{ModelSpec, Secret};
use serde_json::json;

const METRICS_TOKEN: &str = "metrics-token-0123456789";
const ORGANIZER_TOKEN: &str = "organizer-token-0123456789";
const FULL_MARKS: &str = include_str!("fixtures/grader-examples/02_full_marks.py");
/// A model name with the characters the format must escape in a label value.
const ODD_MODEL: &str = "odd\"model\\name";

/// One sample: metric name and labels.
type Series = (String, BTreeMap<String, String>);

/// Parses the text exposition format strictly enough to catch a broken escape or line: every
/// line is a `#` comment (HELP/TYPE/UNIT/EOF) or `name{label="value",…} number`.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    assert!(text.ends_with("# EOF\n"), "the exposition ends with # EOF: {text}");
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap();
            assert!(["HELP", "TYPE", "UNIT", "EOF"].contains(&kind), "unexpected comment line {line:?}");
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value on {line:?}"));
        let name = &line[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            loop {
                let (start, _) = *chars.peek().unwrap_or_else(|| panic!("unterminated labels in {line:?}"));
                let eq = inner[start..].find("=\"").unwrap_or_else(|| panic!("bad label in {line:?}")) + start;
                let key = inner[start..eq].to_string();
                while chars.peek().is_some_and(|(i, _)| *i <= eq + 1) {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars.next().unwrap_or_else(|| panic!("unterminated value in {line:?}")) {
                        (_, '\\') => match chars.next().map(|(_, c)| c) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?} in {line:?}"),
                        },
                        (_, '"') => break,
                        (_, '\n') => panic!("raw newline in {line:?}"),
                        (_, c) => value.push(c),
                    }
                }
                labels.insert(key, value);
                match chars.next() {
                    Some((_, ',')) => continue,
                    Some((i, '}')) => {
                        rest = &inner[i + 1..];
                        break;
                    }
                    other => panic!("expected , or }} but found {other:?} in {line:?}"),
                }
            }
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no value on {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {value:?} in {line:?}"));
        assert!(samples.insert((name.to_string(), labels), value).is_none(), "repeated series {line:?}");
    }
    samples
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    (name.to_string(), labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// The value of one series (0 when absent).
fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples.get(&series(name, labels)).copied().unwrap_or(0.0)
}

async fn scrape(app: &common::TestApp, token: &str) -> BTreeMap<Series, f64> {
    let response =
        reqwest::Client::new().get(app.url("/metrics")).bearer_auth(token).send().await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn a_scrape_after_real_work_shows_the_counters_moved() {
    let fake = FakeLlm::start(Duration::from_millis(20)).await;
    let app = spawn_with_fake(&fake, |s| {
        s.organizer_token = Some(Secret::new(ORGANIZER_TOKEN));
        s.metrics_token = Some(Secret::new(METRICS_TOKEN));
        s.models.push(ModelSpec { name: ODD_MODEL.into(), context_tokens: 8192 });
        // A failing agent fails once: its outcome is what this test counts.
        s.llm_retry_window = Duration::ZERO;
        s.fair_use.claims_per_ip_per_minute = 1;
    })
    .await;
    let before = scrape(&app, METRICS_TOKEN).await;

    // A chat run: two agents (one failing with a 500) in one layer, then the main model.
    let calls_before = fake.requests().len();
    let events = run(&app, "What is 2+2?", &config(ODD_MODEL, 1, &[("a", "fast-a"), ("b", "fail-500")])).await;
    assert_eq!(events.last().unwrap().name, "done", "{events:?}");
    let calls = (fake.requests().len() - calls_before) as f64;
    assert_eq!(calls, 3.0);

    // A grading, through the organizer API.
    let graded = reqwest::Client::new()
        .post(app.url("/api/grade"))
        .bearer_auth(ORGANIZER_TOKEN)
        .json(&json!({"code": FULL_MARKS}))
        .send()
        .await
        .unwrap();
    assert_eq!(graded.status(), 200);

    // A refusal: the second name claimed from this address within the minute.
    for (name, status) in [("metrics-ada", 201), ("metrics-grace", 429)] {
        let claimed = reqwest::Client::new()
            .post(app.url("/api/participants"))
            .json(&json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(claimed.status(), status, "{name}");
    }

    // An open live leaderboard stream.
    let live = reqwest::get(app.url("/leaderboard/stream")).await.unwrap();
    let mut live_body = live.bytes_stream();
    live_body.next().await.expect("the first frame").unwrap();

    let after = scrape(&app, METRICS_TOKEN).await;
    let moved = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    let calls_total = "moa_provider_calls_total";
    assert_eq!(moved(calls_total, &[("provider", "default"), ("model", "fast-a"), ("outcome", "ok")]), 1.0);
    assert_eq!(moved(calls_total, &[("provider", "default"), ("model", "fail-500"), ("outcome", "server_error")]), 1.0);
    assert_eq!(
        moved(calls_total, &[("provider", "default"), ("model", ODD_MODEL), ("outcome", "ok")]),
        1.0,
        "the odd model name survives escaping: {after:?}"
    );
    assert!(moved("moa_llm_call_duration_seconds_count", &[("provider", "default")]) >= calls);
    assert!(moved("moa_llm_call_duration_seconds_sum", &[("provider", "default")]) > 0.0);
    let in_slowest_bucket =
        value(&after, "moa_llm_call_duration_seconds_bucket", &[("provider", "default"), ("le", "+Inf")]);
    assert_eq!(in_slowest_bucket, value(&after, "moa_llm_call_duration_seconds_count", &[("provider", "default")]));
    assert!(moved("moa_grading_duration_seconds_count", &[("status", "graded")]) >= 1.0);
    assert!(moved("moa_refusals_total", &[("limit", "claims_per_ip_per_minute")]) >= 1.0);
    assert!(value(&after, "moa_sse_streams_open", &[("route", "/leaderboard/stream")]) >= 1.0);
    assert_eq!(value(&after, "moa_runs_in_flight", &[]), 0.0, "the run is over");
    assert_eq!(value(&after, "moa_grading_queue_depth", &[]), 0.0);
    for family in ["moa_runs_in_flight", "moa_grading_queue_depth", "moa_gradings_running"] {
        assert!(after.contains_key(&series(family, &[])), "{family} is exposed");
    }

    // The stream is counted until its client leaves.
    drop(live_body);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = scrape(&app, METRICS_TOKEN).await;
        if value(&now, "moa_sse_streams_open", &[("route", "/leaderboard/stream")]) == 0.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the closed stream is still counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_need_a_token() {
    let app = common::spawn_app(|s| {
        s.organizer_token = Some(Secret::new(ORGANIZER_TOKEN));
        s.metrics_token = Some(Secret::new(METRICS_TOKEN));
    })
    .await;
    let client = reqwest::Client::new();
    let get = |token: Option<&'static str>| {
        let request = client.get(app.url("/metrics"));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    for (token, status) in [(None, 401), (Some("not-the-metrics-token"), 401), (Some(METRICS_TOKEN), 200)] {
        let response = get(token).await;
        assert_eq!(response.status(), status, "{token:?}");
        let body = response.text().await.unwrap();
        if status == 401 {
            let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
            assert!(error["error"].as_str().unwrap().contains("Authorization: Bearer"), "{error}");
            assert!(!body.contains("moa_"), "no metrics without the token");
        } else {
            assert!(body.contains("moa_runs_in_flight"), "{body}");
        }
    }
    assert_eq!(get(Some(ORGANIZER_TOKEN)).await.status(), 200, "the organizer token reads metrics too");

    // No token set at all: refused with the recipe, never open.
    let untokened = common::spawn_app(|_| {}).await;
    let response = reqwest::get(untokened.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 503);
    let error: serde_json::Value = response.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("MOA_METRICS_TOKEN"), "{error}");

    // Switched off: there is no such page.
    let off = common::spawn_app(|s| {
        s.metrics_enabled = false;
        s.metrics_token = Some(Secret::new(METRICS_TOKEN));
    })
    .await;
    let response = reqwest::Client::new().get(off.url("/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
