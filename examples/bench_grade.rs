//! Grading latency and throughput through the same `Grader` the server uses: real Python in
//! the real sandbox, the workshop's example submissions in turn.
//!
//!     cargo run --release --example bench_grade [-- --runs 200]
//!
//! Twice: with one interpreter started per submission (`MOA_GRADE_PREWARM=0`), and with
//! interpreters started ahead (the default). Sequential: one submission at a time, one every
//! 50 ms at most (20/s, twice the target rate; back to back, the interpreters started ahead
//! could never be replaced in time on 2 cores), for latency percentiles. Concurrent: all runs submitted at once through the queue (concurrency = CPUs),
//! for sustained submissions/s and the time each grading took once it had its turn (the
//! queue's wait left out). Every verdict is compared with `expected.json`, so a fast but
//! wrong grader fails. Then where the time of one submission goes, stage by stage.
//! Exits non-zero when the targets (p50 < 150 ms, ≥ 10 submissions/s) are missed.
//!
//! `MOA_PYTHON` picks the interpreter, as for the server (default `python3`).
//!
//! This binary is its own sandbox launcher (`bench_grade sandbox-exec …` runs the launcher),
//! as the server is, so it needs nothing but itself and `python3`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moa_workshop::grader::sandbox::{Interpreter, Sandbox};
use moa_workshop::grader::{Grader, GraderSettings, HARNESS};

const TARGET_P50: Duration = Duration::from_millis(150);
const TARGET_PER_SECOND: f64 = 10.0;
/// Sequential submissions arrive at most this often.
const PACE: Duration = Duration::from_millis(50);

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

/// CPU time (user + system) of this process and of its reaped children: the sandboxes.
fn cpu_time() -> (Duration, Duration) {
    let of = |who| {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    (of(libc::RUSAGE_SELF), of(libc::RUSAGE_CHILDREN))
}

struct Figures {
    p50: Duration,
    p95: Duration,
    max: Duration,
    per_second: f64,
    loaded_p50: Duration,
    loaded_p95: Duration,
    /// Per submission, over both phases: the server's CPU and the sandboxes'.
    server_cpu: Duration,
    sandbox_cpu: Duration,
}

fn python() -> String {
    std::env::var("MOA_PYTHON").unwrap_or_else(|_| "python3".into())
}

async fn measure(prewarm: usize, runs: usize, list: &Arc<Vec<Submission>>) -> Result<Figures, String> {
    let mut settings = GraderSettings::new(std::env::current_exe().map_err(|e| e.to_string())?);
    settings.python = python();
    settings.queue = runs;
    settings.prewarm = prewarm;
    let grader = Arc::new(Grader::start(settings).await?);
    // Warm-up: the page cache, the allocator and the pool, not part of the figures.
    for submission in list.iter() {
        grade_one(&grader, submission).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (self_before, children_before) = cpu_time();

    let mut sequential = Vec::with_capacity(runs);
    let mut next = tokio::time::Instant::now();
    for i in 0..runs {
        tokio::time::sleep_until(next).await;
        next += PACE;
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
    grader.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (self_after, children_after) = cpu_time();
    let graded = 2 * runs as u32;
    Ok(Figures {
        p50: percentile(&sequential, 0.50),
        p95: percentile(&sequential, 0.95),
        max: percentile(&sequential, 1.0),
        per_second: runs as f64 / elapsed.as_secs_f64(),
        loaded_p50: percentile(&loaded, 0.50),
        loaded_p95: percentile(&loaded, 0.95),
        server_cpu: (self_after - self_before) / graded,
        sandbox_cpu: (children_after - children_before) / graded,
    })
}

/// Median wall-clock time and mean CPU time of `run`, one at a time.
async fn stage<F: Future<Output = Result<(), String>>>(
    times: usize,
    mut run: impl FnMut() -> F,
) -> Result<(Duration, Duration), String> {
    run().await?;
    let (_, cpu_before) = cpu_time();
    let mut walls = Vec::with_capacity(times);
    for _ in 0..times {
        let started = Instant::now();
        run().await?;
        walls.push(started.elapsed());
    }
    let (_, cpu_after) = cpu_time();
    walls.sort();
    Ok((percentile(&walls, 0.5), (cpu_after - cpu_before) / times as u32))
}

/// Where the time of one submission's sandbox goes, cumulatively.
async fn breakdown(warm_grading: Duration) -> Result<(), String> {
    let interpreter = Interpreter::discover(&python()).await?;
    let launcher = std::env::current_exe().map_err(|e| e.to_string())?;
    let sandbox = Arc::new(Sandbox { launcher, interpreter, limits: Default::default() });
    let python = |script: &'static str| {
        let sandbox = sandbox.clone();
        move || {
            let sandbox = sandbox.clone();
            async move {
                let output = sandbox.run_python(script, b"").await.map_err(|e| e.to_string())?;
                if output.ending != moa_workshop::grader::sandbox::Ending::Exited(0) {
                    return Err(format!(
                        "{script:?} ended {:?}: {}",
                        output.ending,
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
                Ok(())
            }
        }
    };
    let times = 40;
    let rows = [
        (
            "launcher: exec, rlimits, capabilities, Landlock, seccomp (`sandbox-exec --probe`)",
            stage(times, || {
                let sandbox = sandbox.clone();
                async move { sandbox.probe_layers().await.map(|_| ()) }
            })
            .await?,
        ),
        ("… then Python starts, `-I -S -B -c pass`", stage(times, python("pass")).await?),
        (
            "… and runs what `-S` leaves out: `import site; site.main()`",
            stage(times, python("import site\nsite.main()\n")).await?,
        ),
        (
            "… or imports what the harness used to: `ast`, `json`, `signal`, `time`",
            stage(times, python("import ast, json, signal, time\n")).await?,
        ),
        ("… or starts the harness as now, until it is ready (no job)", stage(times, python(HARNESS)).await?),
    ];
    println!();
    println!("Where the time goes (median wall clock, mean CPU; each row is a whole sandboxed run):");
    println!();
    println!("| stage | wall | CPU |");
    println!("|---|---:|---:|");
    for (name, (wall, cpu)) in rows {
        println!("| {name} | {} ms | {} ms |", ms(wall), ms(cpu));
    }
    println!(
        "| a grading handed to a waiting interpreter, until the verdict (p50 above) | {} ms | |",
        ms(warm_grading)
    );
    Ok(())
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
    let cpus = GraderSettings::new("unused".into()).concurrency;
    // Other work on the machine skews every figure; say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let interpreter = Interpreter::discover(&python()).await?;
    println!(
        "{runs} gradings of {} example submissions, one by one then all at once; Python {} ({}); concurrency {cpus}; \
         load average {}",
        list.len(),
        interpreter.version,
        interpreter.executable.display(),
        load.split(' ').next().unwrap_or("?")
    );
    let cold = measure(0, runs, &list).await?;
    let warm = measure(cpus, runs, &list).await?;
    println!();
    println!(
        "| interpreters | sequential p50 | p95 | max | concurrent: submissions/s | grading p50 | p95 | CPU per submission: sandbox + server |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, f) in [("started per submission (MOA_GRADE_PREWARM=0)", &cold), ("started ahead (default)", &warm)] {
        println!(
            "| {name} | {} ms | {} ms | {} ms | {:.1} | {} ms | {} ms | {} + {} ms |",
            ms(f.p50),
            ms(f.p95),
            ms(f.max),
            f.per_second,
            ms(f.loaded_p50),
            ms(f.loaded_p95),
            ms(f.sandbox_cpu),
            ms(f.server_cpu)
        );
    }
    breakdown(warm.p50).await?;
    if warm.p50 >= TARGET_P50 || warm.per_second < TARGET_PER_SECOND {
        return Err(format!(
            "missed the targets: p50 {} ms (< {} ms), {:.1}/s (≥ {TARGET_PER_SECOND})",
            ms(warm.p50),
            TARGET_P50.as_millis(),
            warm.per_second
        ));
    }
    Ok(())
}
