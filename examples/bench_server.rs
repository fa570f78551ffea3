//! What the server itself costs, measured on the real `serve` code path in a child process:
//!
//! 1. overhead: the latency the engine adds to each LLM call (target < 1 ms): one agent over
//!    ten layers is eleven calls in a row, timed through `POST /api/moa` and straight to the fake;
//! 2. streams: memory per open chat stream, and a crowd of concurrent chat streams (500 by
//!    default) that must all end with `done`;
//! 3. pages: bytes a first visit downloads (gzip) for the chat, challenge and leaderboard pages
//!    (target < 100 KB each);
//! 4. fair use: the provider calls one client can make in a minute against the default limits
//!    (a flood of the widest runs, at once and one after another).
//! 5. live fan-out: server CPU per leaderboard change with 2,000 live viewers (target < 50 ms);
//! 6. idle sockets: how long the server takes to drop 1,000 connections that send nothing
//!    (target: within the header timeout, 10 s by default, plus 2 s).
//!
//!     cargo run --release --example bench_server [-- --streams 500 --stream-latency-ms 4000 --runs 30]
//!
//! Exits non-zero when a target is missed or a stream failed.

#[path = "../tests/common/fake_llm.rs"]
mod fake_llm;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

struct Options {
    streams: usize,
    stream_latency: Duration,
    runs: usize,
    viewers: usize,
    idle: usize,
}

fn options() -> Result<Options, String> {
    let mut options =
        Options { streams: 500, stream_latency: Duration::from_millis(4000), runs: 30, viewers: 2_000, idle: 1_000 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{} needs a number", pair[0]))?;
        match pair[0].as_str() {
            "--streams" => options.streams = value.max(1) as usize,
            "--stream-latency-ms" => options.stream_latency = Duration::from_millis(value),
            "--runs" => options.runs = value.max(1) as usize,
            "--viewers" => options.viewers = value.max(1) as usize,
            "--idle" => options.idle = value.max(1) as usize,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The child: exactly what `moa-workshop serve` runs, configured by its environment.
    if args.first().is_some_and(|a| a == "serve" || a == "sandbox-exec") {
        std::process::exit(moa_workshop::cli::main(args));
    }
    let options = options()?;
    raise_open_file_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(bench(options))
}

async fn bench(options: Options) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut failures = Vec::new();
    if std::env::var("BENCH_ONLY").as_deref() == Ok("hygiene") {
        // Just the connection and fan-out figures (BENCH_ONLY=hygiene).
        let fast = fake_llm::FakeLlm::start(Duration::ZERO).await;
        return hygiene(dir.path(), &fast.base_url, &options, &mut failures)
            .await
            .and_then(|()| if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) });
    }

    let fast = fake_llm::FakeLlm::start(Duration::ZERO).await;
    let server = Server::start(dir.path(), "overhead", &fast.base_url).await?;
    let overhead = overhead(&server, &fast.base_url, options.runs).await?;
    if overhead >= 1.0 {
        failures.push(format!("the engine adds {overhead:.2} ms per call"));
    }
    pages(&server, &mut failures).await?;
    drop(server);

    let slow = fake_llm::FakeLlm::start(options.stream_latency).await;
    let server = Server::start(dir.path(), "streams", &slow.base_url).await?;
    streams(&server, options.streams, options.stream_latency, &mut failures).await?;
    drop(server);

    let counted = fake_llm::FakeLlm::start(Duration::from_millis(1)).await;
    let server = Server::start_with(dir.path(), "fair-use", &counted.base_url, &[]).await?;
    fair_use(&server, &counted, &mut failures).await?;
    drop(server);
    hygiene(dir.path(), &fast.base_url, &options, &mut failures).await?;

    if failures.is_empty() {
        println!("\nall targets met");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// A `serve` child process on its own database, talking to `llm`.
struct Server {
    child: tokio::process::Child,
    base: String,
}

/// The measurements above send a crowd's worth of runs from one address and one client, so
/// their servers lift the per-client fair-use bounds (the fair-use figure keeps the defaults).
const CROWD_FROM_ONE_CLIENT: &[(&str, &str)] = &[
    ("MOA_RUNS_PER_CLIENT", "0"),
    ("MOA_RUNS_PER_IP", "0"),
    ("MOA_CALLS_PER_MINUTE", "0"),
    ("MOA_CALLS_PER_IP_PER_MINUTE", "0"),
];

impl Server {
    async fn start(dir: &Path, name: &str, llm: &str) -> Result<Server, String> {
        Server::start_with(dir, name, llm, CROWD_FROM_ONE_CLIENT).await
    }

    async fn start_with(dir: &Path, name: &str, llm: &str, env: &[(&str, &str)]) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new(exe)
            .envs(env.iter().copied())
            .arg("serve")
            .current_dir(dir)
            .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join(format!("{name}.db")).display()))
            .env("MOA_LISTEN", "127.0.0.1:0")
            .env("LLM_BASE_URL", llm)
            .env("LLM_API_KEY", "sk-bench")
            .env("MOA_MODELS", "fake:32768")
            .env("RUST_LOG", "moa_workshop=warn,moa_workshop::app=info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut lines = tokio::io::BufReader::new(child.stderr.take().expect("piped")).lines();
        let base = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .map_err(|_| "the server did not start within 30 s")?
                .map_err(|e| e.to_string())?
                .ok_or("the server exited before listening")?;
            if let Some(at) = line.find("listening on http://") {
                break line[at + "listening on ".len()..].trim().to_string();
            }
        };
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { child, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// CPU time (user + system) the server process has used so far.
    fn cpu(&self) -> Duration {
        let pid = self.child.id().expect("running");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime and stime are 14 and 15.
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("").split_whitespace().collect();
        let ticks: u64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_micros(ticks * 1_000_000 / per_second)
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

fn config(layers: u32) -> Value {
    json!({"main_model": "fake", "main_temperature": 0.2, "cycles": layers,
           "system_prompt": "Answer with: {helper_response}",
           "layer_agents": [{"name": "solo", "model": "fake", "temperature": 0.2, "max_tokens": 256,
                             "prompt": "Improve on: {helper_response}"}]})
}

/// Runs one MoA request to its end; the number of `agent` events, or why it failed.
async fn run_moa(client: &reqwest::Client, base: &str, layers: u32) -> Result<usize, String> {
    let response = client
        .post(format!("{base}/api/moa"))
        .json(&json!({"question": "How fast is this?", "config": config(layers)}))
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut events = response.bytes_stream().eventsource();
    let mut agents = 0;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| format!("stream: {e}"))?;
        match event.event.as_str() {
            "agent" => agents += 1,
            "done" => return Ok(agents),
            "error" => return Err(format!("error event: {}", event.data)),
            _ => {}
        }
    }
    Err("the stream ended without done".into())
}

/// The widest configuration the server accepts: 8 agents × 10 layers, 81 calls a run.
fn widest() -> Value {
    let agents: Vec<Value> = (0..8)
        .map(|n| {
            json!({"name": format!("agent{n}"), "model": "fake", "temperature": 0.2, "max_tokens": 128,
                        "prompt": "Improve on: {helper_response}"})
        })
        .collect();
    json!({"main_model": "fake", "main_temperature": 0.2, "cycles": 10,
           "system_prompt": "Answer with: {helper_response}", "layer_agents": agents})
}

/// Fair use against the default limits: one anonymous client without cookies first sends 60
/// of the widest runs at once (the finding: 4,091 provider calls), then keeps starting them one
/// after another; reports the provider calls it got in, all within the same minute.
async fn fair_use(server: &Server, llm: &fake_llm::FakeLlm, failures: &mut Vec<String>) -> Result<(), String> {
    let client = reqwest::Client::new();
    let ask = || client.post(server.url("/api/moa")).json(&json!({"question": "Spend it all", "config": widest()}));
    let started = Instant::now();
    let flood = futures_util::future::join_all((0..60).map(|_| ask().send())).await;
    let mut accepted = 0;
    let mut open = Vec::new();
    for response in flood {
        let response = response.map_err(|e| format!("request: {e}"))?;
        if response.status().is_success() {
            accepted += 1;
            open.push(response);
        }
    }
    for response in open {
        response.text().await.map_err(|e| format!("stream: {e}"))?;
    }
    let mut refused_with = None;
    for _ in 0..100 {
        let response = ask().send().await.map_err(|e| format!("request: {e}"))?;
        if !response.status().is_success() {
            let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            refused_with = Some((response.status().as_u16(), retry_after, response.text().await.unwrap_or_default()));
            break;
        }
        accepted += 1;
        response.text().await.map_err(|e| format!("stream: {e}"))?;
    }
    let calls = llm.requests().len();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "
fair use: one client, no cookies, the widest runs (8 agents x 10 layers), default limits"
    );
    println!(
        "  60 at once, then one after another: {accepted} runs admitted, {calls} provider calls in {elapsed:.1} s"
    );
    println!("  calls one client can make per minute: {calls} (MOA_CALLS_PER_MINUTE = 250; before: 4,091 for 60 runs)");
    match refused_with {
        Some((status, retry_after, body)) => {
            println!("  then: {status}, Retry-After {}, {body}", retry_after.as_deref().unwrap_or("none"))
        }
        None => failures.push("one client was never refused".into()),
    }
    if calls > 250 {
        failures.push(format!("one client made {calls} provider calls in a minute"));
    }
    Ok(())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Milliseconds the engine adds per LLM call (median over `runs`).
async fn overhead(server: &Server, llm: &str, runs: usize) -> Result<f64, String> {
    const LAYERS: u32 = 10;
    let calls = LAYERS as usize + 1;
    let client = reqwest::Client::new();
    let (mut through, mut direct) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        let started = Instant::now();
        run_moa(&client, &server.base, LAYERS).await?;
        let moa = started.elapsed().as_secs_f64() * 1000.0;
        let started = Instant::now();
        for _ in 0..calls {
            fake_llm::call_directly(&client, llm).await?;
        }
        let straight = started.elapsed().as_secs_f64() * 1000.0;
        if run > 0 {
            through.push(moa / calls as f64);
            direct.push(straight / calls as f64);
        }
    }
    let (through, direct) = (median(through), median(direct));
    let added = through - direct;
    println!("overhead: {calls} calls in a row, fake LLM answering at once, median of {runs} runs");
    println!("  per call through POST /api/moa: {through:.3} ms");
    println!("  per call straight to the fake:  {direct:.3} ms");
    let note = if added < 0.0 { " — below zero: no measurable overhead, the rest is noise" } else { "" };
    println!("  added by the server and engine: {added:.3} ms per call (target < 1 ms){note}");
    Ok(added)
}

/// Memory per open stream and a crowd of streams that must all finish.
async fn streams(server: &Server, crowd: usize, latency: Duration, failures: &mut Vec<String>) -> Result<(), String> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(crowd).build().map_err(|e| e.to_string())?;
    // Warm the allocator and the connection pools first, so the baseline is not a cold one.
    futures_util::future::join_all((0..20).map(|_| run_moa(&client, &server.base, 1))).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = server.rss_kib();

    let started = Instant::now();
    let runs: Vec<_> = (0..crowd)
        .map(|_| {
            let (client, base) = (client.clone(), server.base.clone());
            tokio::spawn(async move { run_moa(&client, &base, 1).await })
        })
        .collect();
    // Sample while every stream is open (each lasts two latencies: one agent, then the main model).
    let mut peak = idle;
    while started.elapsed() < latency * 2 - latency / 4 {
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut errors = Vec::new();
    for run in runs {
        match run.await.map_err(|e| e.to_string())? {
            Ok(1) => {}
            Ok(agents) => errors.push(format!("{agents} agent results instead of 1")),
            Err(e) => errors.push(e),
        }
    }
    let wall = started.elapsed();
    let per_stream = (peak.saturating_sub(idle)) as f64 / crowd as f64;
    println!(
        "\nstreams: {crowd} chat streams at once (each 2 calls of {} ms) against one server on {} CPUs",
        latency.as_millis(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "  server memory idle {:.1} MiB, with every stream open {:.1} MiB",
        idle as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!("  memory per open stream: {per_stream:.1} KiB");
    println!(
        "  all done in {:.2} s (ideal {:.2} s); errors: {}",
        wall.as_secs_f64(),
        (latency * 2).as_secs_f64(),
        errors.len()
    );
    if let Some(first) = errors.first() {
        println!("  first error: {first}");
        failures.push(format!("{} of {crowd} streams failed", errors.len()));
    }
    Ok(())
}

/// First-visit bytes per page: the HTML and every static file it links, gzip as browsers ask.
async fn pages(server: &Server, failures: &mut Vec<String>) -> Result<(), String> {
    let client = reqwest::Client::builder().gzip(false).build().map_err(|e| e.to_string())?;
    println!("\npages: first visit, gzip (what a browser downloads before anything is cached)");
    println!("  {:<14} {:>10} {:>10} {:>8}", "page", "raw", "gzip", "files");
    for page in ["/chat", "/challenge", "/leaderboard"] {
        let html = client
            .get(server.url(page))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let mut urls = vec![page.to_string()];
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in html.match_indices(attribute) {
                let start = at + attribute.len();
                let url = &html[start..start + html[start..].find('"').unwrap_or(0)];
                if url.starts_with("http") || url.starts_with("//") {
                    failures.push(format!("{page} loads {url} from another site"));
                }
                if url.starts_with("/static/") {
                    urls.push(url.to_string());
                }
            }
        }
        let (mut raw, mut gzip) = (0, 0);
        for url in &urls {
            let plain = client.get(server.url(url)).send().await.map_err(|e| e.to_string())?;
            raw += plain.bytes().await.map_err(|e| e.to_string())?.len();
            let packed = client
                .get(server.url(url))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            gzip += packed.bytes().await.map_err(|e| e.to_string())?.len();
        }
        println!("  {page:<14} {:>7.1} KB {:>7.1} KB {:>8}", raw as f64 / 1024.0, gzip as f64 / 1024.0, urls.len());
        if gzip >= 100 * 1024 {
            failures.push(format!("{page} weighs {gzip} bytes compressed"));
        }
    }
    println!(
        "  static files: Cache-Control immutable for a year under content-hashed URLs, so later visits fetch none"
    );
    Ok(())
}

/// The crowd needs more sockets than a default soft limit of 1,024 allows.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Live fan-out and idle sockets, each on a fresh server.
async fn hygiene(dir: &Path, llm: &str, options: &Options, failures: &mut Vec<String>) -> Result<(), String> {
    let server = Server::start_with(dir, "fanout", llm, &[("ORGANIZER_TOKEN", FANOUT_TOKEN)]).await?;
    live_fanout(&server, options.viewers, failures).await?;
    drop(server);
    let server = Server::start(dir, "idle", llm).await?;
    idle_sockets(&server, options.idle, failures).await?;
    drop(server);
    Ok(())
}

const FANOUT_TOKEN: &str = "bench-organizer-token-0123456789";

/// Opens `viewers` live leaderboard streams, then changes the leaderboard (freeze / unfreeze)
/// a few times, waiting each time until every viewer has the new table; reports the server's
/// CPU time per change.
async fn live_fanout(server: &Server, viewers: usize, failures: &mut Vec<String>) -> Result<(), String> {
    const CHANGES: usize = 10;
    let client = reqwest::Client::builder().pool_max_idle_per_host(viewers + 8).build().map_err(|e| e.to_string())?;
    let received = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let mut tasks = Vec::with_capacity(viewers);
    for _ in 0..viewers {
        let response = client.get(server.url("/leaderboard/stream")).send().await.map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("a live viewer got HTTP {}", response.status()));
        }
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let mut events = response.bytes_stream().eventsource();
            while let Some(Ok(event)) = events.next().await {
                if event.event == "leaderboard" {
                    received.add_permits(1);
                }
            }
        }));
    }
    let wait_all = |received: std::sync::Arc<tokio::sync::Semaphore>| async move {
        tokio::time::timeout(Duration::from_secs(60), received.acquire_many(viewers as u32))
            .await
            .map_err(|_| "not every viewer received the table within 60 s".to_string())?
            .map_err(|e| e.to_string())?
            .forget();
        Ok::<_, String>(())
    };
    wait_all(received.clone()).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.cpu();
    let started = Instant::now();
    // Not following the redirect: the dashboard it leads to is not part of a change's cost.
    let organizer =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| e.to_string())?;
    for change in 0..CHANGES {
        let frozen = if change % 2 == 0 { "1" } else { "0" };
        let answer = organizer
            .post(server.url("/organizer/freeze"))
            .bearer_auth(FANOUT_TOKEN)
            .form(&[("frozen", frozen)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status().is_redirection() {
            return Err(format!("freezing answered HTTP {}", answer.status()));
        }
        wait_all(received.clone()).await?;
    }
    let per_change = (server.cpu() - before) / CHANGES as u32;
    let wall = started.elapsed() / CHANGES as u32;
    println!(
        "live fan-out: {viewers} viewers, server CPU per leaderboard change {:.1} ms (target < 50 ms), \
         every viewer updated within {:.0} ms",
        per_change.as_secs_f64() * 1e3,
        wall.as_secs_f64() * 1e3
    );
    if per_change >= Duration::from_millis(50) {
        failures.push(format!("one leaderboard change costs {:.1} ms of CPU", per_change.as_secs_f64() * 1e3));
    }
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// Opens `count` connections that never send a byte and times how long the server takes to
/// close all of them (the header timeout, 10 s by default).
async fn idle_sockets(server: &Server, count: usize, failures: &mut Vec<String>) -> Result<(), String> {
    use tokio::io::AsyncReadExt;
    let addr = server.base.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("connect: {e}"))?);
    }
    let closes = sockets.into_iter().map(|mut tcp| async move {
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(60), tcp.read(&mut buf)).await;
    });
    futures_util::future::join_all(closes).await;
    let took = started.elapsed();
    let health = reqwest::get(server.url("/healthz")).await.map_err(|e| e.to_string())?.status();
    println!(
        "idle sockets: the server dropped {count} idle connections after {:.1} s (header timeout 10 s); /healthz then {health}",
        took.as_secs_f64()
    );
    if took > Duration::from_secs(12) {
        failures.push(format!("{count} idle sockets stayed open {:.1} s", took.as_secs_f64()));
    }
    Ok(())
}
