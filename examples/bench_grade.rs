//! Grading latency and throughput through the same `Grader` the server uses: real Python in
//! the real sandbox, the workshop's example submissions in turn.
//!
//!     cargo run --release --example bench_grade [-- --runs 200]
//!
//! Sequential: one submission at a time, for latency percentiles. Concurrent: all runs
//! submitted at once through the queue (concurrency = CPUs), for sustained submissions/s and
//! the time each grading took once it had its turn (the queue's wait left out).
//! Every verdict is compared with `expected.json`, so a fast but wrong grader fails.
//! Exits non-zero when the targets (p50 < 150 ms, ≥ 10 submissions/s) are missed.
//!
//! This binary is its own sandbox launcher (`bench_grade sandbox-exec …` runs the launcher),
//! as the server is, so it needs nothing but itself and `python3`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moa_workshop::grader::{Grader, GraderSettings};

const TARGET_P50: Duration = Duration::from_millis(150);
const TARGET_PER_SECOND: f64 = 10.0;

struct Submission {
    name: String,
    code: String,
    total: u32,
}

fn submissions() -> Result<Vec<Submission>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grader-examples");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let mut list = Vec::new();
    for (name, want) in expected.as_object().ok_or("expected.json is not an object")? {
        let code = std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let total = want["total"].as_u64().ok_or(format!("{name}: no total"))? as u32;
        list.push(Submission { name: name.clone(), code, total });
    }
    Ok(list)
}

fn runs() -> Result<usize, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(200),
        [flag, n] if flag == "--runs" => {
            n.parse::<usize>().map(|n| n.max(1)).map_err(|_| "--runs needs a number".into())
        }
        _ => Err("usage: bench_grade [--runs N]".into()),
    }
}

/// Grades one submission and checks its total; returns how long the caller waited, and how
/// long the grading itself took (without the wait for a turn).
async fn grade_one(grader: &Grader, submission: &Submission) -> Result<(Duration, Duration), String> {
    let challenge = grader.challenge(None)?;
    let started = Instant::now();
    let report = grader.grade(challenge, &submission.code).await.map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if report.total != submission.total {
        return Err(format!(
            "{} scored {} instead of {} ({:?}: {:?})",
            submission.name, report.total, submission.total, report.status, report.reason
        ));
    }
    Ok((took, Duration::from_millis(report.duration_ms)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

struct Figures {
    p50: Duration,
    p95: Duration,
    max: Duration,
    per_second: f64,
    loaded_p50: Duration,
    loaded_p95: Duration,
}

async fn measure(grader: Arc<Grader>, list: Arc<Vec<Submission>>, runs: usize) -> Result<Figures, String> {
    // Warm-up: caches, the page cache and the allocator, not part of the figures.
    for submission in list.iter() {
        grade_one(&grader, submission).await?;
    }
    let mut sequential = Vec::with_capacity(runs);
    for i in 0..runs {
        sequential.push(grade_one(&grader, &list[i % list.len()]).await?.0);
    }
    sequential.sort();

    let started = Instant::now();
    let tasks: Vec<_> = (0..runs)
        .map(|i| {
            let (grader, list) = (grader.clone(), list.clone());
            tokio::spawn(async move { grade_one(&grader, &list[i % list.len()]).await })
        })
        .collect();
    let mut loaded = Vec::with_capacity(runs);
    for task in tasks {
        loaded.push(task.await.map_err(|e| e.to_string())??.1);
    }
    let elapsed = started.elapsed();
    loaded.sort();
    Ok(Figures {
        p50: percentile(&sequential, 0.50),
        p95: percentile(&sequential, 0.95),
        max: percentile(&sequential, 1.0),
        per_second: runs as f64 / elapsed.as_secs_f64(),
        loaded_p50: percentile(&loaded, 0.50),
        loaded_p95: percentile(&loaded, 0.95),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sandbox-exec") {
        std::process::exit(moa_workshop::grader::sandbox::launcher_main(&args[1..]));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    if let Err(problem) = runtime.block_on(bench()) {
        eprintln!("bench_grade: {problem}");
        std::process::exit(1);
    }
}

async fn bench() -> Result<(), String> {
    let runs = runs()?;
    let list = Arc::new(submissions()?);
    let launcher = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut settings = GraderSettings::new(launcher);
    settings.queue = runs;
    let concurrency = settings.concurrency;
    let grader = Arc::new(Grader::start(settings).await?);
    if !grader.layers().fully_contained() {
        eprintln!("warning: the sandbox is not fully contained here ({})", grader.layers().summary());
    }
    // Other work on the machine skews every figure; say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{runs} gradings of {} example submissions; Python {}; concurrency {concurrency}; load average {}",
        list.len(),
        grader.interpreter().version,
        load.split(' ').next().unwrap_or("?")
    );
    let f = measure(grader, list, runs).await?;
    println!();
    println!("| sequential p50 | p95 | max | concurrent: submissions/s | grading p50 | grading p95 |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} ms | {} ms | {} ms | {:.1} | {} ms | {} ms |",
        ms(f.p50),
        ms(f.p95),
        ms(f.max),
        f.per_second,
        ms(f.loaded_p50),
        ms(f.loaded_p95)
    );
    if f.p50 >= TARGET_P50 || f.per_second < TARGET_PER_SECOND {
        return Err(format!(
            "missed the targets: p50 {} ms (< {} ms), {:.1}/s (≥ {TARGET_PER_SECOND})",
            ms(f.p50),
            TARGET_P50.as_millis(),
            f.per_second
        ));
    }
    Ok(())
}
