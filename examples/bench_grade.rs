//! Grading latency, throughput and CPU through the same `Grader` the server uses: real Python
//! in the real sandbox (the fork server and its further-confined children), the workshop's
//! example submissions in turn.
//!
//!     cargo run --release --example bench_grade [-- --runs 200]
//!
//! Twice: with the sandbox's namespaces on (the default) and off (`MOA_SANDBOX_NAMESPACES=off`,
//! as under Docker's default seccomp profile). Sequential: one submission after another, back
//! to back, for latency percentiles. Concurrent: all runs submitted at once through the queue
//! (concurrency = CPUs), for sustained gradings/s and the time each grading took once it had
//! its turn. CPU per grading: the server's own, and the sandbox's (the fork server and every
//! child it reaped, read from /proc). Every verdict is compared with `expected.json`, so a fast
//! but wrong grader fails. Then where the time of one grading goes, stage by stage, and what
//! each layer of a child's own confinement costs.
//! Exits non-zero when the targets (p95 back to back < 15 ms, ≥ 200 gradings/s, ≤ 8 ms of CPU
//! per grading) are missed.
//!
//! `MOA_PYTHON` picks the interpreter, as for the server (default `python3`).
//!
//! This binary is its own sandbox launcher (`bench_grade sandbox-exec …` runs the launcher),
//! as the server is, so it needs nothing but itself and `python3`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moa_workshop::grader::pool::Pool;
use moa_workshop::grader::sandbox::{Ending, Interpreter, Sandbox};
use moa_workshop::grader::zygote::{Zygote, child_config};
use moa_workshop::grader::{Grader, GraderSettings, HARNESS};

#[path = "support/cpu.rs"]
mod cpu;

use cpu::{cpu_time, group_cpu, ms};

const TARGET_P95: Duration = Duration::from_millis(15);
const TARGET_PER_SECOND: f64 = 200.0;
const TARGET_CPU: Duration = Duration::from_millis(8);

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

struct Figures {
    p50: Duration,
    p95: Duration,
    max: Duration,
    per_second: f64,
    loaded_p50: Duration,
    loaded_p95: Duration,
    /// Per grading, over both phases: the server's CPU and the sandbox's.
    server_cpu: Duration,
    sandbox_cpu: Duration,
}

fn python() -> String {
    std::env::var("MOA_PYTHON").unwrap_or_else(|_| "python3".into())
}

async fn measure(namespaces: bool, runs: usize, list: &Arc<Vec<Submission>>) -> Result<Figures, String> {
    let mut settings = GraderSettings::new(std::env::current_exe().map_err(|e| e.to_string())?);
    settings.python = python();
    settings.queue = runs;
    settings.limits.namespaces = namespaces;
    // As the server reads it (default: the number of CPUs).
    if let Some(n) = std::env::var("MOA_GRADE_CONCURRENCY").ok().and_then(|v| v.parse::<usize>().ok()) {
        settings.concurrency = n.max(1);
    }
    let challenges = Arc::new(moa_workshop::grader::Challenges::load(None)?);
    let grader = Arc::new(Grader::start(settings, challenges).await?);
    // Warm-up: the page cache, the allocator and the fork server, not part of the figures.
    for submission in list.iter() {
        grade_one(&grader, submission).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let zygote = grader.zygote_pid().ok_or("the fork server is not running")?;
    let (self_before, _) = cpu_time();
    let sandbox_before = group_cpu(zygote);

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
    // Every child is reaped once its grading has returned.
    let sandbox_after = group_cpu(zygote);
    let (self_after, _) = cpu_time();
    if grader.zygote_pid() != Some(zygote) {
        return Err("the fork server was replaced during the bench".into());
    }
    grader.shutdown();
    let graded = 2 * runs as u32;
    Ok(Figures {
        p50: percentile(&sequential, 0.50),
        p95: percentile(&sequential, 0.95),
        max: percentile(&sequential, 1.0),
        per_second: runs as f64 / elapsed.as_secs_f64(),
        loaded_p50: percentile(&loaded, 0.50),
        loaded_p95: percentile(&loaded, 0.95),
        server_cpu: (self_after - self_before) / graded,
        sandbox_cpu: (sandbox_after - sandbox_before) / graded,
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

/// Where the time of one grading goes: what a fork server pays once (the first rows, each a
/// whole sandboxed run), and what every child pays.
async fn breakdown(grading: &Figures) -> Result<(), String> {
    let interpreter = Interpreter::discover(&python()).await?;
    let launcher = std::env::current_exe().map_err(|e| e.to_string())?;
    // The server's uid: the switch to a uid of its own is paid once per fork server start,
    // not per grading, and this machine's Python may not be readable by that uid.
    let limits = moa_workshop::grader::sandbox::Limits { uid: None, ..Default::default() };
    let sandbox = Arc::new(Sandbox { launcher, interpreter, limits });
    let python = |script: &'static str| {
        let sandbox = sandbox.clone();
        move || {
            let sandbox = sandbox.clone();
            async move {
                let output = sandbox.run_python(script, b"").await.map_err(|e| e.to_string())?;
                if output.ending != Ending::Exited(0) {
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
    let config = child_config(&sandbox.limits, &[])?;
    let args = sandbox.interpreter.import_path.clone();
    let times = 40;
    let once = [
        (
            "launcher: exec, namespaces, rlimits, capabilities, Landlock, seccomp (`sandbox-exec --probe`)",
            stage(times, || {
                let sandbox = sandbox.clone();
                async move { sandbox.probe_layers().await.map(|_| ()) }
            })
            .await?,
        ),
        ("… then Python starts, `-I -S -B -c pass`", stage(times, python("pass")).await?),
    ];
    // The fork server until it is ready: its CPU read from /proc before it is killed (killed
    // together, its processes are not all reaped by one another).
    let mut starts = (Vec::new(), Duration::ZERO);
    for _ in 0..times {
        let started = Instant::now();
        let zygote = Zygote::start(&sandbox, HARNESS, &config, &args).await?;
        starts.0.push(started.elapsed());
        starts.1 += group_cpu(zygote.pid());
    }
    starts.0.sort();
    let start = (percentile(&starts.0, 0.5), starts.1 / times as u32);
    // A bare child: fork, its own confinement, the job handed over and the child reaped.
    let pool = Pool::new((*sandbox).clone(), HARNESS, args.clone(), 1, Vec::new());
    pool.run_script("pass").await?;
    let (mut walls, mut child_cpu) = (Vec::new(), Duration::ZERO);
    let (server_before, _) = cpu_time();
    for _ in 0..times {
        let started = Instant::now();
        let output = pool.run_script("pass").await?;
        walls.push(started.elapsed());
        child_cpu += output.cpu.unwrap_or_default();
    }
    let (server_after, _) = cpu_time();
    walls.sort();
    let bare = (percentile(&walls, 0.5), (server_after - server_before) / times as u32);
    let child_cpu = child_cpu / times as u32;
    pool.shutdown();
    println!();
    println!("Paid once per fork server (median wall clock, mean CPU; each row is a whole sandboxed run):");
    println!();
    println!("| stage | wall | CPU |");
    println!("|---|---:|---:|");
    for (name, (wall, cpu)) in once {
        println!("| {name} | {} ms | {} ms |", ms(wall), ms(cpu));
    }
    println!(
        "| … or the fork server starts: Python, the harness and ctypes loaded, until it is ready | {} ms | {} ms |",
        ms(start.0),
        ms(start.1)
    );
    println!();
    println!("Paid per grading:");
    println!();
    println!("| stage | wall | CPU: child + server |");
    println!("|---|---:|---:|");
    println!(
        "| a bare child (`pass`): fork, its own confinement, hand-over, reaped | {} ms | {} + {} ms |",
        ms(bare.0),
        ms(child_cpu),
        ms(bare.1)
    );
    println!(
        "| a whole grading (back to back, p50; CPU: sandbox + server) | {} ms | {} + {} ms |",
        ms(grading.p50),
        ms(grading.sandbox_cpu),
        ms(grading.server_cpu)
    );
    layer_costs(&sandbox.interpreter.executable).await
}

/// Each layer of a child's own confinement, added one at a time: children forked by an
/// interpreter (outside the sandbox, so the rows differ by that layer alone) that has loaded
/// what a fork server loads; CPU of parent and child per fork, the least of five rounds of 200.
const LAYERS: &str = r#"
import ctypes, os, resource, sys, time, _json, _ast, _signal, _socket, select
config = __import__("json").loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
program = bytes.fromhex(config["filter"])
buffer = ctypes.create_string_buffer(program, len(program))
class Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
fprog = Fprog(len(program) // 8, ctypes.addressof(buffer))
class Attr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]
abi = libc.syscall(config["landlock_create_ruleset"], None, 0, 1)
attr = Attr(0b1_1111_1111_0011 | (1 << 13) | (1 << 14), 0, 0b11 if abi >= 6 else 0)
size = 24 if abi >= 6 else 16
limits = [(getattr(resource, n), v) for n, v in config["rlimits"]]
null = os.open("/dev/null", os.O_RDWR)
def child(level):
    if level >= 1:
        libc.prctl(1, 9, 0, 0, 0)
        os.setpgid(0, 0)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.closerange(3, 1 << 20)
    if level >= 2:
        for r, v in limits:
            resource.setrlimit(r, (v, v))
    if level >= 3:
        libc.prctl(4, 0, 0, 0, 0)
    libc.prctl(38, 1, 0, 0, 0)
    if level >= 4 and abi > 0:
        fd = libc.syscall(config["landlock_create_ruleset"], ctypes.byref(attr), size, 0)
        if fd < 0 or libc.syscall(config["landlock_restrict_self"], fd, 0) != 0:
            os._exit(3)
        os.close(fd)
    if level >= 5 and libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
        os._exit(4)
    os._exit(0)
N = 200
cpu = lambda a, b: (b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime) * 1000 / N
best = {}
# Five rounds, the levels interleaved, the least of each: other work on the machine only adds.
for _round in range(5):
    for level in range(6):
        r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(N):
            pid = os.fork()
            if pid == 0:
                child(level)
            if os.waitpid(pid, 0)[1] != 0:
                sys.exit("level %d failed" % level)
        r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        now = (cpu(c0, c1), cpu(r0, r1))
        best[level] = min(best.get(level, now), now)
for level in range(6):
    print(level, "%.3f" % best[level][0], "%.3f" % best[level][1])
"#;

async fn layer_costs(python: &Path) -> Result<(), String> {
    let config = child_config(&Default::default(), &[])?;
    let output = tokio::process::Command::new(python)
        .args(["-I", "-c", LAYERS, &config])
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !output.status.success() {
        return Err(format!("the layer costs failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let names = [
        "fork of a fork server's interpreter, `_exit` at once",
        "+ own process group, parent-death signal, descriptors 0–2 replaced, the rest closed",
        "+ rlimits (CPU, address space, files, no processes or file size)",
        "+ not dumpable",
        "+ its own Landlock layer (no writes, signal and abstract-socket scoping)",
        "+ its own seccomp filter",
    ];
    println!();
    println!(
        "A child's own layers, added one at a time (outside the sandbox; CPU per fork, least of 5 rounds of 200):"
    );
    println!();
    println!("| child does | child CPU | parent CPU |");
    println!("|---|---:|---:|");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if let [level, child, parent] = parts.as_slice() {
            let name = level.parse::<usize>().ok().and_then(|l| names.get(l)).unwrap_or(&"?");
            println!("| {name} | {child} ms | {parent} ms |");
        }
    }
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
    let cpus = std::env::var("MOA_GRADE_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(GraderSettings::new("unused".into()).concurrency);
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
    let with = measure(true, runs, &list).await?;
    let without = measure(false, runs, &list).await?;
    println!();
    println!(
        "| fork server | back to back p50 | p95 | max | concurrent: gradings/s | grading p50 | p95 | CPU per grading: sandbox + server |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, f) in [("namespaces on (default)", &with), ("namespaces off", &without)] {
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
    breakdown(&with).await?;
    let cpu = with.sandbox_cpu + with.server_cpu;
    if with.p95 >= TARGET_P95 || with.per_second < TARGET_PER_SECOND || cpu > TARGET_CPU {
        return Err(format!(
            "missed the targets: p95 {} ms (< {} ms), {:.1}/s (≥ {TARGET_PER_SECOND}), CPU {} ms (≤ {} ms)",
            ms(with.p95),
            TARGET_P95.as_millis(),
            with.per_second,
            ms(cpu),
            TARGET_CPU.as_millis()
        ));
    }
    Ok(())
}
