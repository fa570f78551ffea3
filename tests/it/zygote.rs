//! The fork server: every submission runs in a child of one confined interpreter, and the
//! child's own layers (process group, rlimits, Landlock, seccomp) keep it away from the
//! zygote and from the siblings graded beside it. Bare scripts (no harness, no audit hook,
//! ctypes allowed) show what the OS layers alone refuse; gradings show what a participant gets.

use crate::common;

use std::time::Duration;

use common::grading::{
    alive, children_in, descendants, grade, graded_now, grader_with, modes, pid_inside, wait_until, zygote_pid,
};
use moa_workshop::grader::GradeStatus;
use moa_workshop::grader::sandbox::Ending;

fn full_marks() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grader-examples/02_full_marks.py"))
        .unwrap()
}

/// Full marks after `seconds` of busy work at import: a sibling that is still running when
/// the other submission acts.
fn slow_full_marks(seconds: f64) -> String {
    format!(
        "import datetime\n_end = datetime.datetime.now() + datetime.timedelta(seconds={seconds})\n\
         while datetime.datetime.now() < _end:\n    pass\n\n{}",
        full_marks()
    )
}

/// Lines that give a bare script `os`, `libc` (ctypes) and `attempt`, which records every call
/// that worked.
const ATTACKER: &str = r#"
import ctypes, os, resource, socket, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
reached = []
def attempt(name, call):
    try:
        result = call()
    except OSError:
        return
    if result is None or (type(result) is int and result >= 0):
        reached.append(name)
"#;

#[tokio::test]
async fn a_child_cannot_fork_exec_write_files_or_open_sockets() {
    for namespaces in modes() {
        let pool = children_in(Duration::from_secs(10), namespaces).await;
        let script = format!(
            r#"{ATTACKER}
attempt("fork", lambda: os.fork() and None)
attempt("clone", lambda: 0 if libc.syscall(56, 17, 0, 0, 0, 0) >= 0 else -1)
attempt("spawn", lambda: subprocess.Popen(["/bin/true"]) and None)
attempt("exec", lambda: os.execv(sys.executable, [sys.executable, "-c", "pass"]))
for path in ("new.txt", "/tmp/moa-child-wrote.txt", os.path.join(os.getcwd(), "x")):
    attempt(("create", path), lambda: open(path, "w").close())
    attempt(("append", path), lambda: os.close(os.open(path, os.O_WRONLY | os.O_APPEND)))
attempt("mkdir", lambda: os.mkdir("d"))
attempt("mkdir tmp", lambda: os.mkdir("/tmp/moa-child-dir"))
attempt("symlink", lambda: os.symlink("/etc/passwd", "link"))
attempt("chmod", lambda: os.chmod(".", 0o777))
attempt("socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) and None)
attempt("socketpair", lambda: socket.socketpair() and None)
attempt("setsid", lambda: os.setsid())
attempt("setpgid", lambda: os.setpgid(0, 1))
attempt("prctl", lambda: 0 if libc.prctl(4, 1, 0, 0, 0) == 0 else -1)
# Reading still works: its own libraries, and what Python imports at run time.
import json, decimal
print("READ", len(open(os.__file__).read()) > 0, json.dumps([1]))
print("REACHED", reached)
"#
        );
        let output = pool.run_script(&script).await.unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(out.contains("READ True [1]") && out.contains("REACHED []"), "namespaces {namespaces}: {out} {err}");
        assert_eq!(output.ending, Ending::Exited(0), "{err}");
        assert!(!std::path::Path::new("/tmp/moa-child-wrote.txt").exists());
        assert!(!std::path::Path::new("/tmp/moa-child-dir").exists());
    }
}

// Siblings share the zygote's namespaces and uid: only the child's own layers keep them apart.
#[tokio::test]
async fn a_child_cannot_reach_the_zygote_or_a_sibling_running_beside_it() {
    for namespaces in modes() {
        let pool = children_in(Duration::from_secs(10), namespaces).await;
        // Both are bare children of the same zygote: the OS layers alone, ctypes allowed.
        let victim = r#"
import os, resource, time
before = (resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0))
end = time.monotonic() + 1.5
while time.monotonic() < end:
    pass
after = (resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0), os.sched_getaffinity(0))
print("UNTOUCHED", before == after, after)
"#;
        let attack = async {
            wait_until("the fork server runs", Duration::from_secs(10), || pool.zygote_pid().is_some()).await;
            let zygote = pool.zygote_pid().unwrap();
            wait_until("the sibling runs", Duration::from_secs(10), || !graded_now(zygote).is_empty()).await;
            let sibling = pid_inside(graded_now(zygote)[0]);
            let script = format!(
                r#"{ATTACKER}
targets = [os.getppid(), {sibling}]
assert os.getpid() not in targets
print("TARGETS", targets, os.getpid())
for pid in targets:
    attempt(("kill", pid), lambda: os.kill(pid, 0))
    attempt(("killpg", pid), lambda: os.killpg(pid, 0))
    attempt(("tgkill", pid), lambda: libc.syscall(234, pid, pid, 0) or None)
    attempt(("prlimit get", pid), lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE) and None)
    attempt(("prlimit set", pid), lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3)))
    attempt(("setpriority", pid), lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
    attempt(("setaffinity", pid), lambda: os.sched_setaffinity(pid, {{0}}))
    attempt(("ptrace", pid), lambda: 0 if libc.ptrace(16, pid, 0, 0) == 0 else -1)
    attempt(("pidfd_open", pid), lambda: 0 if libc.syscall(434, pid, 0) >= 0 else -1)
    attempt(("process_vm_readv", pid), lambda: 0 if libc.syscall(310, pid, 0, 0, 0, 0, 0) >= 0 else -1)
    for name in ("status", "environ", "mem", "maps", "cmdline", "fd"):
        attempt(("read /proc", pid, name), lambda: open("/proc/%d/%s" % (pid, name), "rb").read(1) and None)
# Its own process group, which is its own alone.
print("GROUP", os.getpgrp() == os.getpid())
print("REACHED", reached)
"#
            );
            pool.run_script(&script).await.unwrap()
        };
        let (victim, attacker) = tokio::join!(pool.run_script(victim), attack);
        let victim = victim.unwrap();
        let (out, err) = (String::from_utf8_lossy(&attacker.stdout), String::from_utf8_lossy(&attacker.stderr));
        assert!(out.contains("REACHED []") && out.contains("GROUP True"), "namespaces {namespaces}: {out} {err}");
        let (vout, verr) = (String::from_utf8_lossy(&victim.stdout), String::from_utf8_lossy(&victim.stderr));
        assert!(vout.contains("UNTOUCHED True"), "namespaces {namespaces}: {vout} {verr} {:?}", victim.ending);
        assert_eq!(victim.ending, Ending::Exited(0));
        assert_eq!(pool.counts().1, 1, "the zygote was replaced");

        // And through a grading (harness, audit hook): the submission reaches the zygote neither.
        let grader = grader_with(|s| {
            s.prewarm = 1;
            s.limits.namespaces = namespaces;
        })
        .await;
        let zygote = zygote_pid(&grader).await;
        let code = "import sys\nos = sys.modules['os']\nos.kill(os.getppid(), 9)\n";
        let report = grade(&grader, code).await;
        assert!(report.reason.unwrap_or_default().contains("PermissionError"), "namespaces {namespaces}");
        assert_eq!(grade(&grader, &full_marks()).await.total, 120);
        assert_eq!(grader.zygote_pid(), Some(zygote));
        grader.shutdown();
    }
}

#[tokio::test]
async fn a_child_that_kills_or_hangs_itself_does_not_disturb_a_sibling() {
    let grader = grader_with(|s| {
        s.prewarm = 1;
        s.concurrency = 3;
        s.limits.wall = Duration::from_secs(4);
    })
    .await;
    let zygote = zygote_pid(&grader).await;
    let (jobs_before, zygotes_before) = grader.sandbox_counts();
    let killer = "import sys\nos = sys.modules['os']\n\ndef calculate_user_metrics(users, start_date, end_date):\n    \
                  os.kill(0, 9)\n";
    let hanger = "def calculate_user_metrics(users, start_date, end_date):\n    while True:\n        try:\n            \
                  while True:\n                pass\n        except BaseException:\n            pass\n";
    let victim_code = slow_full_marks(1.0);
    let (victim, killed, hung) =
        tokio::join!(grade(&grader, &victim_code), grade(&grader, killer), grade(&grader, hanger));
    assert_eq!((victim.status, victim.total), (GradeStatus::Graded, 120), "{:?}", victim.reason);
    assert_eq!((killed.status, killed.total), (GradeStatus::Rejected, 0), "{:?}", killed.reason);
    assert!(killed.reason.unwrap_or_default().contains("killed its own process"));
    assert_eq!(hung.status, GradeStatus::TimedOut, "{:?}", hung.reason);
    // Each was run exactly once (a self-kill is no reason to grade again), by the same zygote.
    assert_eq!(grader.sandbox_counts(), (jobs_before + 3, zygotes_before));
    assert_eq!(grader.zygote_pid(), Some(zygote));
    wait_until("no child is left", Duration::from_secs(5), || graded_now(zygote).is_empty()).await;
}

#[tokio::test]
async fn a_dead_zygote_is_replaced_and_the_grading_still_gets_an_honest_result() {
    for namespaces in modes() {
        let grader = grader_with(|s| {
            s.prewarm = 1;
            s.limits.namespaces = namespaces;
        })
        .await;
        let first = zygote_pid(&grader).await;
        let victim_code = slow_full_marks(1.0);
        let victim = grade(&grader, &victim_code);
        let killer = async {
            wait_until("the grading runs", Duration::from_secs(10), || !graded_now(first).is_empty()).await;
            let child = graded_now(first)[0];
            unsafe { libc::killpg(first as i32, libc::SIGKILL) };
            wait_until("the child died with its zygote", Duration::from_secs(5), || !alive(child)).await;
        };
        let (report, ()) = tokio::join!(victim, killer);
        // Lost before its ending was known, the job ran again in a new zygote.
        assert_eq!(
            (report.status, report.total),
            (GradeStatus::Graded, 120),
            "namespaces {namespaces}: {:?}",
            report.reason
        );
        let second = zygote_pid(&grader).await;
        assert_ne!(second, first);
        assert!(!alive(first));
        assert_eq!(grade(&grader, &full_marks()).await.total, 120);
        // Killed while idle: replaced in the background, before the next submission arrives.
        unsafe { libc::killpg(second as i32, libc::SIGKILL) };
        wait_until("a new zygote runs", Duration::from_secs(10), || grader.zygote_pid().is_some_and(|z| z != second))
            .await;
        assert_eq!(grade(&grader, &full_marks()).await.total, 120);
        grader.shutdown();
    }
}

#[tokio::test]
async fn no_process_is_left_after_shutdown() {
    for namespaces in modes() {
        let grader = std::sync::Arc::new(
            grader_with(|s| {
                s.prewarm = 1;
                s.limits.namespaces = namespaces;
                s.limits.wall = Duration::from_secs(3);
            })
            .await,
        );
        let zygote = zygote_pid(&grader).await;
        let hanging = {
            let grader = grader.clone();
            tokio::spawn(async move { grade(&grader, "while True:\n    pass\n").await })
        };
        wait_until("the grading runs", Duration::from_secs(10), || !graded_now(zygote).is_empty()).await;
        let all: Vec<u32> = std::iter::once(zygote).chain(descendants(zygote)).collect();
        assert!(all.len() >= 2, "{all:?}");
        grader.shutdown();
        wait_until("every sandbox process is gone", Duration::from_secs(5), || !all.iter().any(|&p| alive(p))).await;
        // The grading that was running ends with a verdict, not a hang.
        let report = tokio::time::timeout(Duration::from_secs(15), hanging).await.unwrap().unwrap();
        assert_ne!(report.status, GradeStatus::Graded);
        assert!(grader.zygote_pid().is_none());
    }
}
