//! Hostile code in the sandbox: each test asserts containment, not just "no panic".
//! Scripts run as plain Python in a child of the fork server, confined exactly as a
//! submission's (no rules check, no harness, no audit hook), as an attacker who got past the
//! rules would; they print what they managed to do.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::grading::shipped;
use common::grading::{
    children_in, descendants, grade, grade_on, grader_with, modes, namespaces_wanted, sandbox, sandbox_in,
};
use moa_workshop::grader::GradeStatus;
use moa_workshop::grader::sandbox::Ending;

async fn run(script: &str) -> (String, moa_workshop::grader::sandbox::RunOutput) {
    run_in(Duration::from_secs(10), namespaces_wanted(), script).await
}

/// Runs `script` in a child of a fork server of its own.
async fn run_in(wall: Duration, namespaces: bool, script: &str) -> (String, moa_workshop::grader::sandbox::RunOutput) {
    let output = children_in(wall, namespaces).await.run_script(script).await.unwrap();
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
        // The grader's fork server: its launcher, (with namespaces) that namespace's first
        // process, and the interpreter that forks the next participant's child.
        let zygote = common::grading::zygote_pid(&grader).await;
        let waiting: Vec<u32> = std::iter::once(zygote).chain(descendants(zygote)).collect();
        let me = std::process::id();
        // Harmless values towards this test process (a success still shows), crippling ones
        // towards the fork server. No PRIO_USER here: as root it would reach every
        // root process on the machine (tests/it/unprivileged.rs tries it as the image's user).
        // Run in a bare child (the confinement every grading gets): inside a grading the
        // harness refuses `ctypes` on top, which would hide what the OS layers do.
        let sandbox = children_in(Duration::from_secs(10), namespaces).await;
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
        let output = sandbox.run_script(&code).await.unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(out.contains("REACHED []"), "namespaces {namespaces}: {out} {err} {:?}", output.ending);
        // The next participant, in a child of that fork server, keeps every point, whichever
        // challenge they work on.
        let next = grade(&grader, &full_marks).await;
        assert_eq!((next.status, next.total), (GradeStatus::Graded, 120), "namespaces {namespaces}: {:?}", next.reason);
        for (id, reference, max) in shipped(&grader) {
            let next = grade_on(&grader, &id, &reference).await;
            assert_eq!((next.status, next.total), (GradeStatus::Graded, max), "{id}, namespaces {namespaces}");
        }
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
        let sandbox = children_in(Duration::from_secs(10), namespaces).await;
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
        let output = sandbox.run_script(&leave).await.unwrap();
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
        let second = sandbox.run_script(&read).await.unwrap();
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
        let output = children_in(Duration::from_secs(10), namespaces)
            .await
            .run_script(
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
            )
            .await
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(out.contains("DONE") && !out.contains("OPEN"), "namespaces {namespaces}: {out}");
    }
    unsafe { libc::close(fd) };
}

// A child writes nothing anywhere, its working directory included (it was a capped tmpfs, or
// a watched directory on disk, that a 19,000-level chain once made the clean-up overflow a
// Tokio worker's stack with): files, directories, links, renames are all refused.
#[tokio::test]
async fn nothing_can_be_written_not_even_in_the_working_directory() {
    for namespaces in modes() {
        let (out, output) = run_in(
            Duration::from_secs(10),
            namespaces,
            r#"
import os
print("CWD", os.getcwd(), sorted(os.listdir(".")), flush=True)
refused = []
for name, call in (
    ("file", lambda: os.close(os.open("f1", os.O_CREAT | os.O_WRONLY, 0o600))),
    ("open w", lambda: open("f2", "w")),
    ("open a", lambda: open("f3", "a")),
    ("open x", lambda: open("f4", "x")),
    ("tmpfile", lambda: os.open(".", os.O_TMPFILE | os.O_WRONLY)),
    ("mkdir", lambda: os.mkdir("chain")),
    ("symlink", lambda: os.symlink(".", "link")),
    ("fifo", lambda: os.mkfifo("fifo")),
    ("chmod", lambda: os.chmod(".", 0)),
    ("rename", lambda: os.rename(".", "moved")),
):
    try:
        call()
        print("WROTE", name)
    except OSError as e:
        refused.append(e.errno)
print("REFUSED", len(refused), sorted(set(refused)), sorted(os.listdir(".")))
"#,
        )
        .await;
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!out.contains("WROTE") && out.contains("REFUSED 10 ["), "namespaces {namespaces}: {out} {err}");
        assert!(out.trim_end().ends_with("[]"), "namespaces {namespaces}: {out}");
        assert_eq!(output.ending, Ending::Exited(0));
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
try:
    open("scratch.txt", "w").write("fine")
    print("WROTE scratch.txt")
except OSError as e:
    print("DENIED scratch.txt", type(e).__name__)
"#,
        secret = secret.display().to_string(),
        db = std::env::current_dir().unwrap().join("Cargo.toml").display().to_string(),
        outside = outside.display().to_string(),
        tmp_escape = tmp_escape.display().to_string(),
    );
    let (out, _) = run(&script).await;
    assert!(!out.contains("hunter2-file") && !out.contains("READ") && !out.contains("WROTE"), "{out}");
    assert!(!outside.exists() && !tmp_escape.exists());
    // Not even its own working directory is writable.
    assert!(out.contains("DENIED scratch.txt"), "{out}");
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
    let children = children_in(Duration::from_secs(2), namespaces_wanted()).await;
    let started = Instant::now();
    let output = children
        .run_script("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n")
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
    // Against every shipped challenge: each attack runs as the module loads, before any
    // challenge-specific call, and must earn nothing on any of them.
    let challenges = shipped(&grader);
    assert!(challenges.len() >= 4, "{challenges:?}");
    for (id, reference, max) in &challenges {
        for (name, code, status, reason) in cases {
            let report = grade_on(&grader, id, code).await;
            let text = report.reason.clone().unwrap_or_default();
            if text.starts_with("Rejected before running") && code.contains("import sys") {
                // This challenge's rules refuse `sys` before anything runs: no points either.
                assert_eq!((report.status, report.total), (GradeStatus::Rejected, 0), "{id}, {name}");
                continue;
            }
            assert_eq!((report.status, report.total), (status, 0), "{id}, {name}: {:?}", report.reason);
            assert!(text.contains(reason), "{id}, {name}: {text}");
        }
        // The grader still works afterwards.
        assert_eq!(grade_on(&grader, id, reference).await.total, *max, "{id}");
    }
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

// The fork server: a fresh child per submission, and none can reach the zygote.

#[tokio::test]
async fn every_submission_gets_a_fresh_child_and_cannot_touch_the_fork_server() {
    let grader = grader_with(|s| s.prewarm = 1).await;
    let zygote = common::grading::zygote_pid(&grader).await;
    // Tries to leave a file, a module attribute and a builtin behind, and to kill (and read)
    // the fork server; every call fails if it finds traces of an earlier submission, so a
    // child that inherited anything of another scores nothing.
    let code = r#"
import sys
os = sys.modules["os"]
found = sorted(os.listdir(".")), getattr(sys, "graded_here", None), getattr(sys.modules["builtins"], "graded_here", None)
sys.graded_here = sys.modules["builtins"].graded_here = os.getpid()
try:
    fd = os.open("left_behind.txt", os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"secret of " + str(os.getpid()).encode())
    found += ("WROTE",)
except OSError:
    pass
for pid in (os.getppid(), 1):
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
    return {"average_engagement": 0, "top_performers": [], "active_count": 0}
"#;
    let clean = grade(&grader, code).await;
    assert_eq!(clean.status, GradeStatus::Graded, "{:?}", clean.validation);
    assert!(clean.validation.iter().all(|v| v.passed), "{:?}", clean.validation);
    // One after another and side by side, each in a fresh child of the same fork server.
    for _ in 0..3 {
        let report = grade(&grader, code).await;
        assert_eq!((report.status, report.total), (clean.status, clean.total), "{:?}", report.validation);
    }
    let (a, b) = tokio::join!(grade(&grader, code), grade(&grader, code));
    for report in [a, b] {
        assert_eq!((report.status, report.total), (clean.status, clean.total), "{:?}", report.validation);
    }
    assert_eq!(grader.zygote_pid(), Some(zygote));
    assert!(common::grading::alive(zygote));
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

// The finding behind these: the sandbox kept the server's uid, so the kernel's same-uid rules
// (signals, prlimit, priorities) let it reach the server's processes, and a file only the
// server's uid may read was readable wherever Landlock let it look.
#[tokio::test]
async fn as_root_the_sandbox_runs_as_a_uid_of_its_own() {
    let server = unsafe { libc::geteuid() };
    for namespaces in modes() {
        let layers = sandbox_in(Duration::from_secs(5), namespaces).await.probe_layers().await.unwrap();
        let (out, _) = run_in(
            Duration::from_secs(10),
            namespaces,
            "import os\nprint('IDS', os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups())",
        )
        .await;
        if is_root() {
            assert_eq!(layers.own_uid, Some(61000), "{}", layers.summary());
            assert!(layers.summary().contains("own uid: 61000"), "{}", layers.summary());
            assert!(out.contains("IDS 61000 61000 61000 61000 []"), "namespaces {namespaces}: {out}");
        } else {
            assert_eq!((layers.own_uid, layers.own_uid_off.as_str()), (None, "not root"), "{}", layers.summary());
            assert!(layers.summary().contains("own uid: off (not root)"), "{}", layers.summary());
            assert!(out.contains(&format!("IDS {server} {server}")), "namespaces {namespaces}: {out}");
        }
    }
}

#[tokio::test]
async fn a_file_only_the_servers_uid_may_read_is_unreadable_even_where_landlock_allows_it() {
    if !is_root() {
        eprintln!("not root: the sandbox keeps the server's uid, which can read what it owns");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (secret, public) = (dir.path().join("secret.env"), dir.path().join("public.txt"));
    std::fs::write(&secret, "ORGANIZER_TOKEN=hunter2-private").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&public, "anyone").unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The server (this process) reads it.
    assert!(std::fs::read_to_string(&secret).unwrap().contains("hunter2"));
    for namespaces in modes() {
        // Landlock lets the sandbox read this directory, as it does Python's installation.
        let mut sandbox = sandbox_in(Duration::from_secs(10), namespaces).await;
        sandbox.interpreter.paths.push(dir.path().to_path_buf());
        let path = sandbox.interpreter.import_path.clone();
        let pool = moa_workshop::grader::pool::Pool::new(sandbox, moa_workshop::grader::HARNESS, path, 1, Vec::new());
        let script = format!(
            r#"
for path in ({public:?}, {secret:?}):
    try:
        print("READ", path, open(path).read())
    except OSError as e:
        print("DENIED", path, type(e).__name__)
"#,
            public = public.display().to_string(),
            secret = secret.display().to_string(),
        );
        let output = pool.run_script(&script).await.unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(out.contains(&format!("READ {} anyone", public.display())), "namespaces {namespaces}: {out}");
        assert!(
            out.contains(&format!("DENIED {} PermissionError", secret.display())) && !out.contains("hunter2"),
            "namespaces {namespaces}: {out}"
        );
    }
}

/// In a forked child of this process (the "server", as root): takes the sandbox's identity (or
/// not), drops every capability as the launcher does, and tries, with no seccomp filter and no
/// Landlock, to signal this process, read its limits, renice it and pin it. Returns a bit per
/// call that worked (64: the switch failed).
fn reach_parent_from_a_child(identity: Option<(u32, u32)>) -> i32 {
    let parent = unsafe { libc::getpid() };
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let c = moa_workshop::grader::sandbox::confine::Confinement { identity, ..Default::default() };
        let switched = moa_workshop::grader::sandbox::confine::own_identity(&c);
        if identity.is_some() && !matches!(switched, Ok(Ok(_))) {
            unsafe { libc::_exit(64) };
        }
        let none = rustix::thread::CapabilitySets {
            effective: rustix::thread::CapabilitySet::empty(),
            permitted: rustix::thread::CapabilitySet::empty(),
            inheritable: rustix::thread::CapabilitySet::empty(),
        };
        if rustix::thread::set_capabilities(None, none).is_err() {
            unsafe { libc::_exit(64) };
        }
        let mut reached = 0;
        unsafe {
            if libc::kill(parent, 0) == 0 {
                reached |= 1;
            }
            let mut old: libc::rlimit64 = std::mem::zeroed();
            if libc::prlimit64(parent, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) == 0 {
                reached |= 2;
            }
            let nice = libc::getpriority(libc::PRIO_PROCESS, parent as libc::id_t);
            if libc::setpriority(libc::PRIO_PROCESS, parent as libc::id_t, nice) == 0 {
                reached |= 4;
            }
            let mut cpus: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_getaffinity(parent, size, &mut cpus) == 0
                && libc::sched_setaffinity(parent, size, &cpus) == 0
            {
                reached |= 8;
            }
            libc::_exit(reached);
        }
    }
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
    assert!(libc::WIFEXITED(status), "{status}");
    libc::WEXITSTATUS(status)
}

#[test]
fn the_own_uid_alone_keeps_signals_limits_and_scheduling_away_from_the_server() {
    if !is_root() {
        eprintln!("not root: no uid to switch to");
        return;
    }
    // Without its own uid, a child with no capability at all still signals its root parent and
    // reads its limits by the same-uid rules: what seccomp alone stood in front of. (Priority
    // and affinity need the caller's capabilities to cover the target's, which a root server's
    // do not; against a server of the same uid without capabilities, they work too.)
    assert_eq!(reach_parent_from_a_child(None), 1 | 2);
    assert_eq!(reach_parent_from_a_child(Some((61000, 61000))), 0);
}
