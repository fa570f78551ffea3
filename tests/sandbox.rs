//! Hostile code in the sandbox: each test asserts containment, not just "no panic".
//! Scripts run as plain Python in the sandbox (no rules check), as an attacker who got past
//! the rules would; they print what they managed to do.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::grading::{grade, grader_with, modes, namespaces_wanted, sandbox, sandbox_in};
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
    assert!(layers.seccomp_allow_list && layers.inherited_fds_closed, "{}", layers.summary());
    if namespaces_wanted() {
        // Where the kernel refuses them, run with MOA_SANDBOX_NAMESPACES=off.
        assert!(layers.namespaced(), "{}", layers.summary());
    }
    // Switched off, the rest still holds (and says which layers are on).
    let fallback = sandbox_in(Duration::from_secs(5), false).await.probe_layers().await.unwrap();
    assert!(fallback.fully_contained() && !fallback.pid_namespace && !fallback.workdir_tmpfs, "{}", fallback.summary());
    assert!(fallback.summary().contains("namespaces: none"), "{}", fallback.summary());
}

/// Python lines that give a submission `os`, `load` (any module, past the import rules, as a
/// determined attacker would) and `libc` (ctypes), and record every call that worked.
const ATTACKER: &str = r#"
import sys
load = getattr(sys.modules["builtins"], "__imp" + "ort__")
os = load("os")
libc = load("ctypes").CDLL(None, use_errno=True)
reached = []
def attempt(name, call):
    try:
        result = call()
    except OSError:
        return
    if result is None or result >= 0:
        reached.append(name)
"#;

fn with_attacker(body: &str) -> String {
    format!("{ATTACKER}\n{body}")
}

// The finding behind these: the sandbox ran with the server's uid, so prlimit64, setpriority,
// sched_set* and ioprio_set reached the server and the interpreters waiting for the next
// submissions (RLIMIT_NOFILE 3 on one made the next participant's full marks score 0).
#[tokio::test]
async fn a_submission_reaches_no_other_process_and_cannot_spoil_the_next_grading() {
    let full_marks = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/grader-examples/02_full_marks.py"
    ))
    .unwrap();
    for namespaces in modes() {
        let grader = grader_with(|s| {
            s.prewarm = 2;
            s.limits.namespaces = namespaces;
        })
        .await;
        let waiting = common::grading::idle_pids(&grader, 2).await;
        let me = std::process::id();
        // Harmless values towards this test process (a success still shows), crippling ones
        // towards the waiting interpreters. No PRIO_USER here: as root it would reach every
        // root process on the machine (tests/unprivileged.rs tries it as the image's user).
        // Run in the sandbox itself (the launcher and confinement every grading gets): inside a
        // grading the harness refuses `ctypes` on top, which would hide what the OS layers do.
        let sandbox = sandbox_in(Duration::from_secs(10), namespaces).await;
        let code = with_attacker(&format!(
            r#"
resource = load("resource")
for pid in {waiting:?} + [{me}]:
    if pid == os.getpid():
        continue  # the interpreter this submission was handed to
    attempt(("prlimit get", pid), lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE))
    if pid != {me}:
        attempt(("prlimit set", pid), lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3)))
    attempt(("getpriority", pid), lambda: os.getpriority(os.PRIO_PROCESS, pid))
    attempt(("setpriority", pid), lambda: os.setpriority(os.PRIO_PROCESS, pid, 0 if pid == {me} else 19))
    attempt(("getaffinity", pid), lambda: os.sched_getaffinity(pid) and None)
    attempt(("setaffinity", pid), lambda: os.sched_setaffinity(pid, range(os.cpu_count())))
    attempt(("setscheduler", pid), lambda: os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0)))
    attempt(("ioprio_get", pid), lambda: libc.syscall(252, 1, pid))
    attempt(("ioprio_set", pid), lambda: libc.syscall(251, 1, pid, 0))
# On itself, all of it works.
resource.prlimit(0, resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
os.setpriority(os.PRIO_PROCESS, 0, 1)
os.sched_setaffinity(0, os.sched_getaffinity(0))
print("REACHED", reached)
"#
        ));
        let output = sandbox.run_python(&code, b"").await.unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(out.contains("REACHED []"), "namespaces {namespaces}: {out} {err} {:?}", output.ending);
        // The next participant, in the interpreter that was waiting, keeps every point.
        let next = grade(&grader, &full_marks).await;
        assert_eq!((next.status, next.total), (GradeStatus::Graded, 120), "namespaces {namespaces}: {:?}", next.reason);
        grader.shutdown();
    }
}

// SysV shared memory passed the address-space limit and outlived the run; a later
// submission read what an earlier one left there.
#[tokio::test]
async fn sysv_ipc_is_refused_and_nothing_outlives_the_run() {
    let key = 0x6d6f_6100 + (std::process::id() & 0xff) as i32;
    let visible_on_host = || {
        std::fs::read_to_string("/proc/sysvipc/shm")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|line| line.split_whitespace().next().and_then(|k| k.parse::<i32>().ok()) == Some(key))
    };
    for namespaces in modes() {
        let sandbox = sandbox_in(Duration::from_secs(10), namespaces).await;
        let leave = with_attacker(&format!(
            r#"
ctypes = load("ctypes")
libc.shmget.restype = ctypes.c_int
libc.shmat.restype = ctypes.c_void_p
for name, call in (("shm", lambda: libc.shmget({key}, 1 << 20, 0o1600)), ("sem", lambda: libc.semget({key}, 1, 0o1600)), ("msg", lambda: libc.msgget({key}, 0o1600))):
    ident = call()
    if ident >= 0:
        reached.append(name)
        if name == "shm":
            ctypes.memmove(libc.shmat(ident, None, 0), b"secret-of-the-first", 19)
print("REACHED", reached)
"#
        ));
        let output = sandbox.run_python(&leave, b"").await.unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        let leftover = visible_on_host();
        let read = with_attacker(&format!(
            r#"
ctypes = load("ctypes")
libc.shmat.restype = ctypes.c_void_p
ident = libc.shmget({key}, 0, 0)
print("FOUND", ctypes.string_at(libc.shmat(ident, None, 0), 19) if ident >= 0 else None)
"#
        ));
        let second = sandbox.run_python(&read, b"").await.unwrap();
        let second = String::from_utf8_lossy(&second.stdout).into_owned();
        if leftover {
            // Today's code: clean up what the first run left, then fail.
            let _ = std::process::Command::new("ipcrm").arg("-M").arg(key.to_string()).status();
        }
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(out.contains("REACHED []"), "namespaces {namespaces}: {out} {err} {:?}", output.ending);
        assert!(!leftover, "namespaces {namespaces}: a SysV segment outlived the run");
        assert!(second.contains("FOUND None"), "namespaces {namespaces}: {second}");
    }
}

#[tokio::test]
async fn other_processes_are_invisible_with_namespaces() {
    if !namespaces_wanted() {
        eprintln!("namespaces are off: other pids can be seen (not reached) in /proc");
        return;
    }
    let (out, _) = run(&format!(
        r#"
import os
for pid in ({me}, {parent}):
    try:
        os.stat("/proc/%d" % pid)
        print("SEEN", pid)
    except OSError as e:
        print("HIDDEN", pid, type(e).__name__)
print("SELF", os.getpid(), os.path.exists("/proc/%d" % os.getpid()))
"#,
        me = std::process::id(),
        parent = std::os::unix::process::parent_id(),
    ))
    .await;
    assert!(!out.contains("SEEN") && out.matches("HIDDEN").count() == 2, "{out}");
    assert!(out.contains("True"), "{out}");
}

// The launcher closed no inherited descriptor: a file the server was started with on fd 7
// was readable inside.
#[tokio::test]
async fn descriptors_the_server_inherited_do_not_reach_python() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("inherited.txt");
    std::fs::write(&secret, "hunter2-inherited").unwrap();
    let path = std::ffi::CString::new(secret.to_str().unwrap()).unwrap();
    // Without O_CLOEXEC, as a descriptor handed down by whoever started the server.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    for namespaces in modes() {
        let output = sandbox_in(Duration::from_secs(10), namespaces)
            .await
            .run_python(
                r#"
import os
for fd in range(3, 256):
    try:
        os.lseek(fd, 0, 0)
        print("OPEN", fd, os.read(fd, 64))
    except OSError:
        pass
print("DONE")
"#,
                b"",
            )
            .await
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(out.contains("DONE") && !out.contains("OPEN"), "namespaces {namespaces}: {out}");
    }
    unsafe { libc::close(fd) };
}

#[tokio::test]
async fn the_working_directory_is_capped_in_files() {
    for namespaces in modes() {
        let started = Instant::now();
        let output = sandbox_in(Duration::from_secs(10), namespaces)
            .await
            .run_python(
                r#"
import os, time
made = 0
try:
    for made in range(1, 2001):
        os.close(os.open("f%d" % made, os.O_CREAT | os.O_WRONLY, 0o600))
except OSError as e:
    print("REFUSED", made, e.errno, flush=True)
print("MADE", made, flush=True)
time.sleep(5)
print("DONE", flush=True)
"#,
                b"",
            )
            .await
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        if namespaces {
            // The tmpfs refuses the 256th inode (its root is one); the run goes on.
            assert!(out.contains("REFUSED 256 28") && out.contains("DONE"), "{out}");
        } else {
            // On disk, the server sees the directory pass its cap and stops the run.
            assert_eq!(output.ending, Ending::TooMuchWritten, "{out}");
            assert!(!out.contains("DONE") && started.elapsed() < Duration::from_secs(5), "{out}");
        }
    }
}

// A ~19,000-level directory chain made the recursive clean-up overflow a Tokio worker's
// stack and abort the server; with namespaces the working directory is a capped tmpfs.
#[tokio::test]
async fn a_deep_directory_chain_and_a_locked_directory_are_removed() {
    for namespaces in modes() {
        let sandbox = sandbox_in(Duration::from_secs(20), namespaces).await;
        let output = sandbox
            .run_python(
                r#"
import os
base = os.getcwd()
print("CWD", base, flush=True)
fd = os.open("locked-file", os.O_CREAT | os.O_WRONLY, 0)
os.mkdir("locked")
os.close(os.open("locked/inside", os.O_CREAT | os.O_WRONLY, 0))
os.chmod("locked", 0)
# Built from the top (each level pushes the chain one down), so no call walks a deep path.
depth = 0
try:
    os.mkdir("chain")
    while depth < 19000:
        os.mkdir("top")
        os.rename("chain", "top/d")
        os.rename("top", "chain")
        depth += 1
except OSError as e:
    print("STOPPED", e.errno)
print("DEPTH", depth, flush=True)
"#,
                b"",
            )
            .await
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        let err = String::from_utf8_lossy(&output.stderr);
        let cwd = out.lines().find_map(|l| l.strip_prefix("CWD ")).expect("cwd line").to_string();
        if namespaces {
            let Some(depth) = out.lines().find_map(|l| l.strip_prefix("DEPTH ")) else {
                panic!("{out} {err} {:?}", output.ending)
            };
            let depth: usize = depth.parse().unwrap();
            assert!(depth < 300, "the tmpfs's file-count cap did not hold: {depth}");
        } else {
            // On disk, the watched quota stops it long before 19,000 levels.
            assert_eq!(output.ending, Ending::TooMuchWritten, "{out} {err}");
        }
        assert!(!std::path::Path::new(&cwd).exists(), "namespaces {namespaces}: {cwd} was left behind");
    }
}

/// What the clean-up must survive however the tree came about: 19,000 levels (the recursive
/// removal overflowed a 2 MiB stack), a locked directory, a symbolic link out.
#[test]
fn the_clean_up_removes_any_tree_without_recursing_or_following_links() {
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
    let outside = tempfile::tempdir_in(&base).unwrap();
    std::fs::write(outside.path().join("keep.txt"), "kept").unwrap();
    let root = tempfile::Builder::new().prefix("moa-grade-").tempdir_in(&base).unwrap().keep();
    let at = |name: &str| root.join(name);
    std::fs::create_dir(at("chain")).unwrap();
    for _ in 0..19_000 {
        std::fs::create_dir(at("top")).unwrap();
        std::fs::rename(at("chain"), at("top/d")).unwrap();
        std::fs::rename(at("top"), at("chain")).unwrap();
    }
    std::fs::create_dir(at("locked")).unwrap();
    std::fs::write(at("locked/inside"), "x").unwrap();
    std::os::unix::fs::symlink(outside.path(), at("link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(at("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // A small stack: any recursion per level would overflow it long before 19,000.
    let target = root.clone();
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || moa_workshop::grader::sandbox::remove_tree(&target))
        .unwrap()
        .join()
        .unwrap();
    assert!(!root.exists(), "{} was left behind", root.display());
    assert_eq!(std::fs::read_to_string(outside.path().join("keep.txt")).unwrap(), "kept");
}

#[tokio::test]
async fn the_environment_is_empty_and_the_parents_is_unreadable() {
    // SAFETY: set before any sandbox starts in this test binary; only read by children.
    unsafe { std::env::set_var("MOA_TEST_SECRET", "hunter2-env") };
    let (out, _) = run(&r#"
import os
print("ENV", sorted(k for k in os.environ if k not in ("LC_CTYPE",)))
for path in ("/proc/%d/environ" % SERVER, "/proc/1/environ", "/proc/self/environ"):
    try:
        data = open(path, "rb").read()
        print("READ", path, b"hunter2-env" in data)
    except OSError as e:
        print("DENIED", path, type(e).__name__)
"#
    .replace("SERVER", &std::process::id().to_string()))
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
