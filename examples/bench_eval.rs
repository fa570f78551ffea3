//! How long an evaluation takes, end to end: the real app (HTTP, SSE, fair use, the engine, the
//! real grader: Python in the sandbox) measuring one configuration over many runs against a
//! fake LLM with a fixed latency per call, next to the same runs made one after another.
//!
//!     cargo run --release --example bench_eval [-- --agents 3 --layers 2 --latency-ms 300 --runs 20 --at-once 4]
//!
//! One run's critical path is (layers + 1) × latency; runs one after another take `runs` times
//! that. An evaluation (`POST /api/evaluations`) makes as many runs at once as one person may
//! (`MOA_RUNS_PER_CLIENT`): this benchmark sets it to `--at-once` (4, an event that lets each
//! person run 4 at once), then measures the default 3 as well, for information. Every run
//! counts against the other spending bounds at their defaults. The fake's main model writes
//! the full-marks solution, so every run must be graded 120.
//!
//! CPU per evaluated run, over the measured evaluation: the server's process (this one) without
//! the fake LLM and this benchmark's client, which run on a thread of their own (measured apart
//! and printed too); and the grading sandbox (the fork server and every child it reaped, read
//! from /proc), which is other processes.
//!
//! Exits non-zero when the evaluation at `--at-once` takes more than 0.3× the runs one after
//! another. `MOA_PYTHON` picks the interpreter (default: the system's `/usr/bin/python3`);
//! `MOA_SANDBOX_*` and `MOA_GRADE_*` are read from the environment, as by the server.
//!
//! This binary is its own sandbox launcher (`bench_eval sandbox-exec …`), as the server is.

#[path = "support/args.rs"]
mod args;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "../tests/common/fake_llm.rs"]
mod fake_llm;

use cpu::ms;

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use moa_workshop::app::{App, Startup};
use moa_workshop::config::Settings;
use moa_workshop::grader::Grader;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const TARGET: f64 = 0.3;
/// What `MOA_RUNS_PER_CLIENT` is when nobody sets it.
const DEFAULT_AT_ONCE: usize = 3;
/// `MOA_CALLS_PER_MINUTE` when nobody sets it.
const DEFAULT_CALLS_PER_MINUTE: usize = 250;
const FULL_MARKS: &str = include_str!("../tests/fixtures/grader-examples/02_full_marks.py");
/// The main model's system prompt starts with this, so the fake tells it from the agents'.
const MAIN: &str = "MAIN:";

struct Options {
    agents: usize,
    layers: u32,
    latency: Duration,
    runs: usize,
    at_once: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options { agents: 3, layers: 2, latency: Duration::from_millis(300), runs: 20, at_once: 4 };
    for (name, value) in args::numbers()? {
        match name.as_str() {
            "--agents" => options.agents = value.clamp(1, 8) as usize,
            "--layers" => options.layers = value.clamp(1, 10) as u32,
            "--latency-ms" => options.latency = Duration::from_millis(value),
            "--runs" => options.runs = value.clamp(1, 200) as usize,
            "--at-once" => options.at_once = value.max(1) as usize,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn python() -> String {
    std::env::var("MOA_PYTHON").unwrap_or_else(|_| {
        // As root the sandbox runs as a uid of its own, which cannot read a Python under /root.
        let system = std::path::Path::new("/usr/bin/python3");
        if system.exists() { system.display().to_string() } else { "python3".into() }
    })
}

/// The app on port 0 of the server's runtime, with its own SQLite file.
struct Served {
    base: String,
    grader: Arc<Grader>,
    stop: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn serve(settings: impl Fn(&str) -> Option<String>) -> Result<Served, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    let settings = Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(database_url.clone()),
        _ => settings(name),
    })?;
    let launcher = std::env::current_exe().map_err(|e| e.to_string())?;
    let app = App::build(Startup { settings, launcher }).await?;
    let grader = app.state.grader.clone().map_err(|why| format!("grading is unavailable: {why}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok(Served { base, grader, stop, serving, _dir: dir })
}

/// One evaluation as the client saw it.
struct Evaluation {
    wall: Duration,
    calls: u64,
    /// Each run's generation time (without its grading), sorted.
    generations: Vec<u64>,
}

async fn evaluate(client: &reqwest::Client, base: &str, token: &str, body: &Value) -> Result<Evaluation, String> {
    let started = Instant::now();
    let response = client
        .post(format!("{base}/api/evaluations"))
        .header("x-participant-token", token)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!(
            "POST /api/evaluations: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        ));
    }
    let runs = body["runs"].as_u64().unwrap_or(0);
    let mut generations = Vec::new();
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| e.to_string())?;
        let data: Value = serde_json::from_str(&event.data).map_err(|e| format!("{}: {e}", event.data))?;
        match event.event.as_str() {
            "run" if data["status"] != "graded" || data["score"] != 120 => {
                return Err(format!("a run was not graded full marks: {data}"));
            }
            "run" => generations.push(data["ms"].as_u64().unwrap_or(0)),
            "done" if !data["stopped"].is_null() || data["runs"] != runs => {
                return Err(format!("the evaluation stopped short: {data}"));
            }
            "done" => {
                generations.sort();
                let calls = data["calls"].as_u64().unwrap_or(0);
                return Ok(Evaluation { wall: started.elapsed(), calls, generations });
            }
            "error" => return Err(format!("the evaluation failed: {}", data["message"])),
            _ => {}
        }
    }
    Err("the stream ended without done".into())
}

/// What one measured evaluation cost, per evaluated run.
struct Figures {
    evaluation: Evaluation,
    server_cpu: Duration,
    outside_cpu: Duration,
    sandbox_cpu: Duration,
}

/// A fresh app whose people may run `at_once` runs at once; one warm-up evaluation (one run per
/// slot: the fork server, the connections, the database), then the measured one.
async fn measure(
    server: &tokio::runtime::Handle,
    fake: &fake_llm::FakeLlm,
    options: &Options,
    at_once: usize,
    body: &Value,
) -> Result<Figures, String> {
    let calls_per_run = options.layers as usize * options.agents + 1;
    let planned = (at_once + options.runs) * calls_per_run;
    let lift = planned > DEFAULT_CALLS_PER_MINUTE;
    if lift {
        println!("  ({planned} calls within a minute: MOA_CALLS_PER_MINUTE lifted)");
    }
    let (base_url, runs) = (fake.base_url.clone(), options.runs.max(20).to_string());
    let python = python();
    let served = server
        .spawn(serve(move |name| match name {
            "LLM_BASE_URL" => Some(base_url.clone()),
            "LLM_API_KEY" => Some("sk-bench".into()),
            "MOA_MODELS" => Some("fake:32768".into()),
            "MOA_PYTHON" => Some(python.clone()),
            "MOA_RUNS_PER_CLIENT" => Some(at_once.to_string()),
            "MOA_EVALUATION_MAX_RUNS" => Some(runs.clone()),
            "MOA_CALLS_PER_MINUTE" if lift => Some("0".into()),
            _ if name.starts_with("MOA_SANDBOX") || name.starts_with("MOA_GRADE") => std::env::var(name).ok(),
            _ => None,
        }))
        .await
        .map_err(|e| e.to_string())??;
    let client = reqwest::Client::new();
    let claimed: Value = client
        .post(format!("{}/api/participants", served.base))
        .json(&json!({"name": "Bench"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = claimed["token"].as_str().ok_or(format!("no token: {claimed}"))?.to_string();

    let mut warm_up = body.clone();
    warm_up["runs"] = json!(at_once.min(options.runs));
    let warm = evaluate(&client, &served.base, &token, &warm_up).await?;
    println!("  warm-up ({} runs): {} ms", warm.generations.len(), warm.wall.as_millis());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let zygote = served.grader.zygote_pid().ok_or("the grader's fork server is not running")?;
    let sandbox_before = cpu::group_cpu(zygote);
    let (process_before, _) = cpu::cpu_time();
    let outside_before = cpu::thread_cpu();
    let evaluation = evaluate(&client, &served.base, &token, body).await?;
    let outside = cpu::thread_cpu() - outside_before;
    let (process_after, _) = cpu::cpu_time();
    let sandbox = cpu::group_cpu(zygote) - sandbox_before;
    if served.grader.zygote_pid() != Some(zygote) {
        return Err("the fork server was replaced during the evaluation".into());
    }
    let _ = served.stop.send(());
    served.serving.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let runs = options.runs as u32;
    Ok(Figures {
        server_cpu: (process_after - process_before).saturating_sub(outside) / runs,
        outside_cpu: outside / runs,
        sandbox_cpu: sandbox / runs,
        evaluation,
    })
}

fn report(options: &Options, at_once: usize, figures: &Figures) -> f64 {
    let one_run = options.latency * (options.layers + 1);
    let sequential = one_run * options.runs as u32;
    let waves = options.runs.div_ceil(at_once);
    let floor = one_run * waves as u32;
    let evaluation = &figures.evaluation;
    let ratio = evaluation.wall.as_secs_f64() / sequential.as_secs_f64();
    let generations = &evaluation.generations;
    println!(
        "  {} runs: {} ms = {ratio:.3}× the runs one after another (at best {waves} waves × {} ms = {} ms, {:.3}×); \
         {} calls; every run graded 120; a generation took {}–{} ms (median {} ms)",
        generations.len(),
        evaluation.wall.as_millis(),
        one_run.as_millis(),
        floor.as_millis(),
        floor.as_secs_f64() / sequential.as_secs_f64(),
        evaluation.calls,
        generations[0],
        generations[generations.len() - 1],
        generations[generations.len() / 2],
    );
    println!(
        "  CPU per evaluated run: the server {} ms (this process less the thread of the fake LLM and this client, \
         which took {} ms more: HTTP, SSE, fair use, the engine, the LLM client, SQLite, the grader's queue); the \
         grading sandbox {} ms (other processes: the fork server and the children it reaped)",
        ms(figures.server_cpu),
        ms(figures.outside_cpu),
        ms(figures.sandbox_cpu)
    );
    ratio
}

/// Runs on this thread's own runtime, with the fake LLM and the client; the app runs on `server`.
async fn bench(server: tokio::runtime::Handle) -> Result<(), String> {
    let options = options()?;
    let fake = fake_llm::FakeLlm::start_with(
        options.latency,
        Box::new(|r| {
            if r.system.starts_with(MAIN) {
                format!("Here it is.\n\n```python\n{FULL_MARKS}```\n")
            } else {
                "Review: guard the division, the empty list and the missing keys.".into()
            }
        }),
    )
    .await;
    let agents: Vec<_> = (0..options.agents)
        .map(|i| {
            json!({"name": format!("reviewer{i}"), "model": "fake", "temperature": 0.5, "max_tokens": 512,
                   "prompt": "Review the task. Earlier answers: {helper_response}"})
        })
        .collect();
    let body = json!({"runs": options.runs, "config": {
        "main_model": "fake", "main_temperature": 0.2, "cycles": options.layers,
        "system_prompt": format!("{MAIN} write calculate_user_metrics in one Python block. Reviews: {{helper_response}}"),
        "layer_agents": agents}});
    let one_run = options.latency * (options.layers + 1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "Evaluation benchmark: {} runs of {} agents × {} layers, fake LLM at {} ms per call, each run graded by the \
         real grader ({}); load average {}",
        options.runs,
        options.agents,
        options.layers,
        options.latency.as_millis(),
        python(),
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "one run's critical path: {} calls in a row × {} ms = {} ms; {} runs one after another: {} ms",
        options.layers + 1,
        options.latency.as_millis(),
        one_run.as_millis(),
        options.runs,
        (one_run * options.runs as u32).as_millis()
    );
    println!(
        "MOA_RUNS_PER_CLIENT={} (an event that lets each person run {} at once; the default is {DEFAULT_AT_ONCE}):",
        options.at_once, options.at_once
    );
    let figures = measure(&server, &fake, &options, options.at_once, &body).await?;
    let ratio = report(&options, options.at_once, &figures);
    if options.at_once != DEFAULT_AT_ONCE {
        println!("MOA_RUNS_PER_CLIENT={DEFAULT_AT_ONCE} (the default), for information:");
        let default = measure(&server, &fake, &options, DEFAULT_AT_ONCE, &body).await?;
        report(&options, DEFAULT_AT_ONCE, &default);
    }
    let verdict = if ratio <= TARGET { "PASS" } else { "FAIL" };
    println!("{} at once: {ratio:.3}× the runs one after another — target ≤ {TARGET}×: {verdict}", options.at_once);
    if ratio > TARGET { Err(format!("the evaluation took {ratio:.3}× the runs one after another")) } else { Ok(()) }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sandbox-exec") {
        std::process::exit(moa_workshop::grader::sandbox::launcher_main(&args[1..]));
    }
    // The app on a runtime of its own; the fake LLM and the client on this thread alone, so
    // that their CPU can be told from the server's.
    let server = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let outside = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    if let Err(problem) = outside.block_on(bench(server.handle().clone())) {
        eprintln!("bench_eval: {problem}");
        std::process::exit(1);
    }
}
