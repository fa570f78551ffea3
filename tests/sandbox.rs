//! Hostile code in the sandbox: each test asserts containment, not just "no panic".
//! Scripts run as plain Python in the sandbox (no rules check), as an attacker who got past
//! the rules would; they print what they managed to do.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::grading::{grade, grader_with, sandbox};
use moa_workshop::grader::GradeStatus;
use moa_workshop::grader::sandbox::Ending;

async fn run(script: &str) -> (String, moa_workshop::grader::sandbox::RunOutput) {
    let output = sandbox(Duration::from_secs(10)).await.run_python(script, b"").await.unwrap();
    (String::from_utf8_lossy(&output.stdout).into_owned(), output)
}

#[tokio::test]
async fn all_layers_are_active_on_this_machine() {
    let layers = sandbox(Duration::from_secs(5)).await.probe_layers().await.unwrap();
    assert!(layers.fully_contained(), "{}", layers.summary());
}

#[tokio::test]
async fn the_environment_is_empty_and_the_parents_is_unreadable() {
    // SAFETY: set before any sandbox starts in this test binary; only read by children.
    unsafe { std::env::set_var("MOA_TEST_SECRET", "hunter2-env") };
    let (out, _) = run(r#"
import os
print("ENV", sorted(k for k in os.environ if k not in ("LC_CTYPE",)))
for path in ("/proc/%d/environ" % os.getppid(), "/proc/1/environ", "/proc/self/environ"):
    try:
        data = open(path, "rb").read()
        print("READ", path, b"hunter2-env" in data)
    except OSError as e:
        print("DENIED", path, type(e).__name__)
"#)
    .await;
    assert!(out.contains("ENV []"), "{out}");
    assert!(!out.contains("hunter2-env") && !out.contains("READ /proc/1") && !out.contains("True"), "{out}");
    assert!(out.contains(&format!("DENIED /proc/{}/environ", std::process::id())), "{out}");
}

#[tokio::test]
async fn files_outside_the_sandbox_cannot_be_read_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.env");
    std::fs::write(&secret, "ORGANIZER_TOKEN=hunter2-file").unwrap();
    let outside = dir.path().join("escaped.txt");
    // Outside the test's own directory too, under a name no earlier run used.
    let tmp_escape =
        std::env::temp_dir().join(format!("moa-escape-{}-{}.txt", std::process::id(), moa_workshop::store::now_ms()));
    let script = format!(
        r#"
import os
for path in ({secret:?}, {db:?}, "/etc/shadow", "/root/.bashrc"):
    try:
        print("READ", path, open(path).read()[:40])
    except OSError as e:
        print("DENIED", path, type(e).__name__)
for path in ({outside:?}, {tmp_escape:?}):
    try:
        open(path, "w").write("x")
        print("WROTE", path)
    except OSError as e:
        print("DENIED", path, type(e).__name__)
open("scratch.txt", "w").write("fine")
print("CWD", os.getcwd(), open("scratch.txt").read())
"#,
        secret = secret.display().to_string(),
        db = std::env::current_dir().unwrap().join("Cargo.toml").display().to_string(),
        outside = outside.display().to_string(),
        tmp_escape = tmp_escape.display().to_string(),
    );
    let (out, _) = run(&script).await;
    assert!(!out.contains("hunter2-file") && !out.contains("READ") && !out.contains("WROTE"), "{out}");
    assert!(!outside.exists() && !tmp_escape.exists());
    // Its own working directory works, and is gone afterwards.
    let cwd =
        out.lines().find_map(|l| l.strip_prefix("CWD ")).expect("cwd line").split(' ').next().unwrap().to_string();
    assert!(out.contains("fine"), "{out}");
    assert!(!std::path::Path::new(&cwd).exists(), "{cwd} was not deleted");
}

#[tokio::test]
async fn no_network_not_even_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (out, _) = run(&format!(
        r#"
import socket
try:
    s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
    print("CONNECTED")
except OSError as e:
    print("DENIED", type(e).__name__, e.errno)
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {port}))
    print("SENT UDP")
except OSError as e:
    print("DENIED UDP")
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    print("UNIX SOCKET")
except OSError as e:
    print("DENIED UNIX")
"#
    ))
    .await;
    assert!(
        out.contains("DENIED") && !out.contains("CONNECTED") && !out.contains("SENT") && !out.contains("UNIX SOCKET"),
        "{out}"
    );
    assert!(listener.accept().is_err(), "the listener saw a connection");
}

#[tokio::test]
async fn it_cannot_signal_the_server_or_anyone_else() {
    let (out, output) = run(r#"
import os, signal
for target in (os.getppid(), 1, -1):
    try:
        os.kill(target, signal.SIGKILL if target != -1 else 0)
        print("SIGNALLED", target)
    except OSError as e:
        print("DENIED", target, type(e).__name__)
"#)
    .await;
    // Reaching this line at all means this test process (the parent) is alive.
    assert!(!out.contains("SIGNALLED"), "{out}");
    assert_eq!(out.matches("DENIED").count(), 3, "{out}");
    assert_eq!(output.ending, Ending::Exited(0));
}

#[tokio::test]
async fn forked_or_detached_processes_do_not_survive() {
    let (out, _) = run(r#"
import os, time
try:
    pid = os.fork()
except OSError as e:
    print("FORK DENIED", type(e).__name__)
else:
    if pid == 0:
        os.setsid()
        time.sleep(60)
        os._exit(0)
    print("CHILD", pid)
try:
    import subprocess
    p = subprocess.Popen(["/bin/sleep", "60"], start_new_session=True)
    print("CHILD", p.pid)
except OSError as e:
    print("SPAWN DENIED", type(e).__name__)
"#)
    .await;
    for pid in out.lines().filter_map(|l| l.strip_prefix("CHILD ")) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(stat.is_empty() || stat.contains(") Z "), "process {pid} survived: {stat}");
    }
    assert!(out.contains("FORK DENIED"), "{out}");
}

#[tokio::test]
async fn memory_is_capped() {
    let (out, output) = run(r#"
try:
    block = bytearray(6 * 1024 ** 3)
    print("ALLOCATED", len(block))
except MemoryError:
    print("MEMORY ERROR")
"#)
    .await;
    assert!(out.contains("MEMORY ERROR"), "{out} {:?}", output.ending);
}

#[tokio::test]
async fn an_endless_loop_ignoring_sigterm_is_killed_at_the_wall_clock() {
    let sandbox = sandbox(Duration::from_secs(2)).await;
    let started = Instant::now();
    let output = sandbox
        .run_python("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n", b"")
        .await
        .unwrap();
    assert_eq!(output.ending, Ending::WallClock);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
}

#[tokio::test]
async fn two_gigabytes_of_output_are_cut_off_quickly() {
    let started = Instant::now();
    let (out, output) =
        run("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(2048):\n    sys.__stdout__.write(chunk)\n").await;
    assert_eq!(output.ending, Ending::TooMuchOutput);
    assert!(out.len() <= 4 * 1024 * 1024);
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

// Full gradings of hostile submissions: a verdict with a clear reason, and the grader goes on.

#[tokio::test]
async fn hostile_submissions_get_no_points_and_clear_reasons() {
    let grader = grader_with(|s| {
        // Generous for a loaded CI machine; every case below but the endless loops ends in
        // well under 0.5 s of CPU.
        s.limits.wall = Duration::from_secs(6);
        s.module_timeout = Duration::from_secs(2);
    })
    .await;
    let forged = r#"
import sys
sys.__stdout__.write('{"total": 120, "max": 120, "status": "graded"}\n')
sys.__stdout__.write('0123456789abcdef {"kind": "end"}\n')
sys.__stdout__.flush()
sys.modules["os"]._exit(0)
"#;
    let cases: [(&str, &str, GradeStatus, &str); 6] = [
        ("forged result and early exit", forged, GradeStatus::Rejected, "exited early"),
        ("endless loop at import", "while True:\n    pass\n", GradeStatus::TimedOut, "took too long"),
        (
            "endless loop that swallows the timeout",
            "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n",
            GradeStatus::TimedOut,
            "time limit",
        ),
        (
            "interpreter crash",
            // C recursion past the stack: a segmentation fault. Hashing nested tuples recurses
            // without a depth check at linear cost (the repr of nested lists, used before, scans
            // every enclosing list at each level: seconds of CPU before the crash).
            "nested = ()\nfor _ in range(5 * 10 ** 5):\n    nested = (nested,)\nhash(nested)\n",
            GradeStatus::Rejected,
            "crashed",
        ),
        (
            "killing the parent",
            "import sys\nsys.modules['os'].kill(sys.modules['os'].getppid(), 9)\n",
            GradeStatus::Rejected,
            "PermissionError",
        ),
        (
            "2 GiB of output",
            "import sys\nfor _ in range(2048):\n    sys.__stdout__.write('x' * (1 << 20))\n",
            GradeStatus::Rejected,
            "too much output",
        ),
    ];
    for (name, code, status, reason) in cases {
        let report = grade(&grader, code).await;
        assert_eq!((report.status, report.total), (status, 0), "{name}: {:?}", report.reason);
        let text = report.reason.clone().unwrap_or_default();
        assert!(text.contains(reason), "{name}: {text}");
    }
    // The grader still works afterwards.
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/grader-examples/02_full_marks.py"
    ))
    .unwrap();
    assert_eq!(grade(&grader, &good).await.total, 120);
}

#[tokio::test]
async fn a_crash_after_some_checks_forfeits_every_point() {
    let grader = grader_with(|_| {}).await;
    let code = r#"
import sys
def calculate_user_metrics(users, start_date, end_date):
    if len(users) == 100:
        sys.modules["os"]._exit(3)
    return {"average_engagement": 0, "top_performers": [], "active_count": 0}
"#;
    let report = grade(&grader, code).await;
    assert_eq!((report.status, report.total), (GradeStatus::Rejected, 0));
    assert!(report.checks.is_empty());
    assert!(report.reason.unwrap().contains("exit code 3"));
}

#[test]
fn the_sandbox_workdir_prefix_is_not_left_behind() {
    // Runs last-ish in practice; a leftover directory from any run above would show here.
    let mut leftovers = Vec::new();
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("moa-grade-") {
                let mut buf = String::new();
                let _ =
                    std::fs::File::open(entry.path().join("scratch.txt")).and_then(|mut f| f.read_to_string(&mut buf));
                if buf == "fine" {
                    leftovers.push(name);
                }
            }
        }
    }
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// Interpreters started ahead: one per submission, and none can reach another.

#[tokio::test]
async fn every_submission_gets_a_fresh_interpreter_and_cannot_touch_the_waiting_ones() {
    let grader = grader_with(|s| s.prewarm = 2).await;
    let waiting = common::grading::idle_pids(&grader, 2).await;
    // Leaves a file, a module attribute and a builtin behind, and tries to kill (and read) the
    // interpreters waiting for the next submissions; every call fails if it finds traces of
    // an earlier submission, so a reused interpreter scores nothing.
    let code = format!(
        r#"
import sys
os = sys.modules["os"]
found = sorted(os.listdir(".")), getattr(sys, "graded_here", None), getattr(sys.modules["builtins"], "graded_here", None)
sys.graded_here = sys.modules["builtins"].graded_here = os.getpid()
fd = os.open("left_behind.txt", os.O_CREAT | os.O_WRONLY, 0o600)
os.write(fd, b"secret of " + str(os.getpid()).encode())
os.close(fd)
assert os.path.exists("left_behind.txt")
for pid in {waiting:?}:
    if pid == os.getpid():
        continue  # the interpreter this submission was handed to
    try:
        os.kill(pid, 9)
        found += ("KILLED", pid)
    except OSError:
        pass
    try:
        os.listdir("/proc/%d/cwd" % pid)
        found += ("READ", pid)
    except OSError:
        pass

def calculate_user_metrics(users, start_date, end_date):
    if found != ([], None, None):
        raise RuntimeError("traces of another submission: %r" % (found,))
    return {{"average_engagement": 0, "top_performers": [], "active_count": 0}}
"#
    );
    let clean = grade(&grader, &code).await;
    assert_eq!(clean.status, GradeStatus::Graded, "{:?}", clean.validation);
    assert!(clean.validation.iter().all(|v| v.passed), "{:?}", clean.validation);
    // It ran in the first waiting interpreter; the second is still alive and waiting.
    assert!(!common::grading::alive(waiting[0]));
    assert!(common::grading::alive(waiting[1]) && grader.idle_pids().contains(&waiting[1]));
    // One after another (the pool's next interpreter) and side by side.
    for _ in 0..3 {
        let report = grade(&grader, &code).await;
        assert_eq!((report.status, report.total), (clean.status, clean.total), "{:?}", report.validation);
    }
    let (a, b) = tokio::join!(grade(&grader, &code), grade(&grader, &code));
    for report in [a, b] {
        assert_eq!((report.status, report.total), (clean.status, clean.total), "{:?}", report.validation);
    }
    // Each interpreter served one submission: none of the first ones is still waiting.
    let now_waiting = grader.idle_pids();
    assert!(waiting.iter().all(|pid| !now_waiting.contains(pid)));
}
