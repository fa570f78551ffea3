//! The Docker image runs the server as an unprivileged user (uid 10001) with no capabilities.
//! When these tests run as root, they run the binary that way and check the sandbox still
//! applies every layer and grades, and that hostile submissions reach nothing of the server's
//! (with namespaces and on the seccomp-only fallback); when they already run unprivileged,
//! every other grader test covers that case and this one says so.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

const IMAGE_UID: &str = "10001";

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

struct Server {
    child: Child,
    base: String,
    /// The server's TMPDIR: where the working directories of its sandboxes go.
    tmp: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server as the image user, with `inherited` open on its descriptor 7 (as a file
/// whoever started the server left open).
fn start_server(namespaces: bool, inherited: &std::path::Path) -> Server {
    use std::os::unix::fs::PermissionsExt;
    // A copy the image user can execute, in a folder it owns (as /data in the image).
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("moa-workshop");
    std::fs::copy(common::launcher(), &binary).unwrap();
    let data = dir.path().join("data");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&data).unwrap();
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let owner =
        Command::new("chown").args([&format!("{IMAGE_UID}:{IMAGE_UID}")]).arg(&data).arg(&tmp).status().unwrap();
    assert!(owner.success());
    let file = std::fs::File::open(inherited).unwrap();
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid", IMAGE_UID, "--regid", IMAGE_UID, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(&binary)
        .arg("serve")
        .current_dir(&data)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TMPDIR", &tmp)
        .env("MOA_LISTEN", "127.0.0.1:0")
        .env("MOA_GRADE_PREWARM", "2")
        .env("MOA_SANDBOX_NAMESPACES", if namespaces { "on" } else { "off" })
        .env("DATABASE_URL", format!("sqlite://{}/workshop.db?mode=rwc", data.display()))
        .stderr(Stdio::piped());
    let source = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: only dup2 between fork and exec.
    unsafe {
        command.pre_exec(move || if libc::dup2(source, 7) == 7 { Ok(()) } else { Err(std::io::Error::last_os_error()) })
    };
    let mut child = command.spawn().expect("setpriv (util-linux) runs");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = Vec::new();
    let mut lines = stderr.lines().map_while(Result::ok);
    let base = lines.by_ref().find_map(|line| {
        log.push(line.clone());
        line.find("listening on http://").map(|at| line[at + "listening on ".len()..].trim().to_string())
    });
    // Keep draining the log so the server never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    let Some(base) = base else {
        let _ = child.kill();
        panic!("the server did not start as uid {IMAGE_UID}: {log:#?}");
    };
    Server { child, base, tmp, _dir: dir }
}

async fn grade(base: &str, code: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base}/api/grade"))
        .json(&serde_json::json!({"code": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Field `n` (1-based, after the command name) of /proc/PID/stat.
fn stat_field(pid: u32, n: usize) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(n - 3).unwrap().to_string()
}

fn limit(pid: u32, name: &str) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    limits.lines().find(|l| l.starts_with(name)).unwrap().to_string()
}

#[tokio::test]
async fn the_image_user_grades_with_every_sandbox_layer_and_hostile_code_reaches_nothing() {
    if !is_root() {
        eprintln!("not root: the whole suite already runs unprivileged, as the image does");
        return;
    }
    let full_marks = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/grader-examples/02_full_marks.py"
    ))
    .unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let inherited = secrets.path().join("inherited.txt");
    std::fs::write(&inherited, "hunter2-inherited").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&inherited, std::fs::Permissions::from_mode(0o600)).unwrap();

    for namespaces in common::grading::modes() {
        let server = start_server(namespaces, &inherited);
        let base = server.base.clone();
        let health: serde_json::Value = reqwest::get(format!("{base}/healthz")).await.unwrap().json().await.unwrap();
        let sandbox = &health["grader"]["sandbox"];
        assert_eq!(health["grader"]["ready"], true, "{health}");
        for layer in
            ["new_session", "rlimits", "capabilities_dropped", "seccomp", "seccomp_allow_list", "inherited_fds_closed"]
        {
            assert_eq!(sandbox[layer], true, "{layer}: {health}");
        }
        for layer in [
            "user_namespace",
            "pid_namespace",
            "ipc_namespace",
            "network_namespace",
            "mount_namespace",
            "workdir_tmpfs",
        ] {
            assert_eq!(sandbox[layer], namespaces, "{layer}: {health}");
        }
        if sandbox["landlock_abi"].as_i64().unwrap_or(0) > 0 {
            assert_eq!(sandbox["landlock"], "full", "{health}");
        }
        let graded = grade(&base, &full_marks).await;
        assert_eq!((graded["status"].as_str(), graded["total"].as_u64()), (Some("graded"), Some(120)), "{graded}");

        // As the image's user, every process of that uid is the server's: find them all (the
        // first finding needed no outside knowledge: os.stat works on any /proc/N) and try to
        // cripple each, the whole uid at once, and what the server was started with. (ioprio_set
        // and SysV IPC need ctypes, which the harness refuses in any grading; tests/sandbox.rs
        // tries them in the bare sandbox.)
        let server_pid = server.child.id();
        let nice_before = stat_field(server_pid, 19);
        let files_before = limit(server_pid, "Max open files");
        let hostile = format!(
            r#"
import sys
load = getattr(sys.modules["builtins"], "__imp" + "ort__")
os = load("os")
resource = load("resource")
reached = []
def attempt(name, call):
    try:
        result = call()
    except OSError:
        return
    if result is None or (isinstance(result, int) and result >= 0):
        reached.append(name)
pids = [{server_pid}] + [p for p in range({server_pid} + 1, {server_pid} + 3000) if os.path.exists("/proc/%d" % p)]
for pid in pids:
    if pid == os.getpid():
        continue
    attempt(("prlimit", pid), lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3)))
    attempt(("setpriority", pid), lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))
    attempt(("setaffinity", pid), lambda: os.sched_setaffinity(pid, {{0}}))
    attempt(("setscheduler", pid), lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)))
attempt("PRIO_USER", lambda: os.setpriority(os.PRIO_USER, 0, 19))
attempt("PRIO_PGRP", lambda: os.setpriority(os.PRIO_PGRP, 0, 19))
for fd in range(3, 64):
    try:
        os.lseek(fd, 0, 0)
        if b"hunter2" in os.read(fd, 64):
            reached.append(("inherited fd", fd))
    except OSError:
        pass
# Leave a locked directory or a file behind: refused, a child writes nothing.
attempt("mkdir", lambda: os.mkdir("locked"))
attempt("create", lambda: os.close(os.open("inside", os.O_CREAT | os.O_WRONLY, 0)))
# The fork server that forks the next participants: its parent, by the child's own pid rules.
zygote = os.getppid()
attempt(("prlimit zygote", zygote), lambda: resource.prlimit(zygote, resource.RLIMIT_NOFILE, (3, 3)))
attempt(("kill zygote", zygote), lambda: os.kill(zygote, 0))
if reached:
    raise RuntimeError("reached %r" % (reached,))
"#
        );
        let report = grade(&base, &format!("{full_marks}\n{hostile}")).await;
        assert_eq!(
            (report["status"].as_str(), report["total"].as_u64()),
            (Some("graded"), Some(120)),
            "namespaces {namespaces}: {report}"
        );
        // The server is untouched, answers, and the next participants keep their points in
        // children of the same fork server.
        assert_eq!(stat_field(server_pid, 19), nice_before, "namespaces {namespaces}: the server was reniced");
        assert_eq!(limit(server_pid, "Max open files"), files_before, "namespaces {namespaces}");
        let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
        assert!(health.status().is_success());
        for _ in 0..2 {
            let graded = grade(&base, &full_marks).await;
            assert_eq!(
                (graded["status"].as_str(), graded["total"].as_u64()),
                (Some("graded"), Some(120)),
                "namespaces {namespaces}: {graded}"
            );
        }
        // Nothing of any grading is left in the server's TMPDIR (only the fork server's own,
        // empty, directory).
        let leftovers: Vec<_> = std::fs::read_dir(&server.tmp)
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_dir(e.path()).map_or(true, |mut d| d.next().is_some()))
            .map(|e| e.file_name())
            .collect();
        assert!(leftovers.is_empty(), "namespaces {namespaces}: left behind {leftovers:?}");
    }
}
