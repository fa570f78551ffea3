//! How close a MoA run gets to its critical path, end to end: the real app (HTTP, SSE, the
//! OpenAI-compatible client) against a fake LLM with a fixed latency per call, next to the same
//! calls made one after another (the original Streamlit app's way).
//!
//!     cargo run --release --example bench_moa [-- --agents 3 --layers 3 --latency-ms 300 --runs 5]
//!
//! The critical path is (layers + 1) × latency: each layer waits for its slowest agent, then
//! the main model answers. Both streams are measured: the API's JSON events (`POST /api/moa`)
//! and the chat page's server-rendered HTML fragments (`POST /chat/run`, Markdown rendered as
//! it arrives). Exits non-zero when the worst measured run of either (after one warm-up run)
//! exceeds 1.15× the critical path.

#[path = "support/args.rs"]
mod args;
#[path = "../tests/common/fake_llm.rs"]
mod fake_llm;

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use moa_workshop::app::{App, Startup};
use moa_workshop::config::Settings;
use serde_json::json;

const TARGET: f64 = 1.15;

struct Options {
    agents: usize,
    layers: u32,
    latency: Duration,
    runs: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options { agents: 3, layers: 3, latency: Duration::from_millis(300), runs: 5 };
    for (name, value) in args::numbers()? {
        match name.as_str() {
            "--agents" => options.agents = value.clamp(1, 8) as usize,
            "--layers" => options.layers = value.clamp(1, 10) as u32,
            "--latency-ms" => options.latency = Duration::from_millis(value),
            "--runs" => options.runs = value.max(1) as usize,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let options = options()?;
    let fake = fake_llm::FakeLlm::start(options.latency).await;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    let settings = Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database_url.clone()),
        "LLM_BASE_URL" => Some(fake.base_url.clone()),
        "LLM_API_KEY" => Some("sk-bench".into()),
        "MOA_MODELS" => Some("fake:32768".into()),
        // Many runs from this one client: the fair-use bound on calls per minute is lifted.
        "MOA_CALLS_PER_MINUTE" | "MOA_CALLS_PER_IP_PER_MINUTE" => Some("0".into()),
        _ => None,
    })?;
    // The grader is not needed here; without its launcher it just reports itself unavailable.
    let app = App::build(Startup { settings, launcher: "/nonexistent".into() }).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(app.serve(listener, std::future::pending()));

    let agents: Vec<_> = (0..options.agents)
        .map(|i| {
            json!({"name": format!("agent{i}"), "model": "fake", "temperature": 0.5, "max_tokens": 512,
                         "prompt": "Answer well. {helper_response}"})
        })
        .collect();
    let body = json!({"question": "What is a mixture of agents?", "config": {
        "main_model": "fake", "main_temperature": 0.5, "cycles": options.layers,
        "system_prompt": "Answer using: {helper_response}", "layer_agents": agents}});
    let critical = options.latency * (options.layers + 1);
    println!(
        "MoA benchmark: {} agents × {} layers, fake LLM at {} ms per call",
        options.agents,
        options.layers,
        options.latency.as_millis()
    );
    println!(
        "critical path: {} calls in a row × {} ms = {} ms (one after another it would be {} ms)",
        options.layers + 1,
        options.latency.as_millis(),
        critical.as_millis(),
        (options.latency * (options.layers * options.agents as u32 + 1)).as_millis()
    );

    let client = reqwest::Client::new();
    let mut worst = 0f64;
    let mut ratios = Vec::new();
    for (view, path) in [("API events", "/api/moa"), ("page fragments", "/chat/run")] {
        println!("{view} ({path}):");
        ratios.clear();
        for run in 0..=options.runs {
            let started = Instant::now();
            let response = client.post(format!("{base}{path}")).json(&body).send().await.map_err(|e| e.to_string())?;
            let mut events = response.bytes_stream().eventsource();
            let (mut frames, mut bytes, mut done) = (0, 0, None);
            while let Some(event) = events.next().await {
                let event = event.map_err(|e| e.to_string())?;
                frames += 1;
                bytes += event.data.len();
                match event.event.as_str() {
                    "done" => done = Some(started.elapsed()),
                    "end" if !event.data.contains("notice error") => done = Some(started.elapsed()),
                    "error" | "end" => return Err(format!("the run failed: {}", event.data)),
                    _ => {}
                }
            }
            let done = done.ok_or("the stream ended without its last event")?;
            let ratio = done.as_secs_f64() / critical.as_secs_f64();
            let label = if run == 0 { "warm-up".to_string() } else { format!("run {run}") };
            println!(
                "{label:>8}: {:>5} ms ({ratio:.3}× the critical path), {frames} events, {:.1} KB",
                done.as_millis(),
                bytes as f64 / 1024.0
            );
            if run > 0 {
                ratios.push(ratio);
            }
        }
        ratios.sort_by(f64::total_cmp);
        worst = worst.max(ratios[ratios.len() - 1]);
    }
    // The original's way: every agent of every layer, then the main model, one after another.
    let calls = options.layers as usize * options.agents + 1;
    let started = Instant::now();
    for _ in 0..calls {
        fake_llm::call_directly(&client, &fake.base_url).await?;
    }
    let sequential = started.elapsed();
    let median_ms = ratios[ratios.len() / 2] * critical.as_secs_f64() * 1000.0;
    println!(
        "one after another: {} ms for the same {calls} calls ({:.1}× the median MoA run of {median_ms:.0} ms)",
        sequential.as_millis(),
        sequential.as_secs_f64() * 1000.0 / median_ms
    );
    let median = ratios[ratios.len() / 2];
    let verdict = if worst <= TARGET { "PASS" } else { "FAIL" };
    println!("page median {median:.3}×, worst of both {worst:.3}× — target ≤ {TARGET}×: {verdict}");
    if worst > TARGET { Err(format!("the worst run took {worst:.3}× its critical path")) } else { Ok(()) }
}
