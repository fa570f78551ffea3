//! A grader (and a bare sandbox) built exactly as the server builds them.

use std::time::Duration;

use moa_workshop::grader::sandbox::{Interpreter, Sandbox};
use moa_workshop::grader::{Challenge, GradeReport, Grader, GraderSettings};

pub fn settings() -> GraderSettings {
    let mut settings = GraderSettings::new(super::launcher());
    settings.limits.namespaces = namespaces_wanted();
    settings
}

/// `MOA_SANDBOX_NAMESPACES=off` runs the sandbox tests on the seccomp-only fallback (as in a
/// container whose seccomp profile refuses namespaces).
pub fn namespaces_wanted() -> bool {
    std::env::var("MOA_SANDBOX_NAMESPACES").map_or(true, |v| !matches!(v.as_str(), "off" | "false" | "0" | "no"))
}

/// The sandbox modes to test here: with namespaces (unless switched off) and without.
pub fn modes() -> Vec<bool> {
    if namespaces_wanted() { vec![true, false] } else { vec![false] }
}

pub async fn grader_with(configure: impl FnOnce(&mut GraderSettings)) -> Grader {
    let mut settings = settings();
    configure(&mut settings);
    Grader::start(settings).await.expect("the grader starts")
}

pub async fn grade(grader: &Grader, code: &str) -> GradeReport {
    let challenge = grader.challenge(None).unwrap().clone();
    grader.grade(&challenge, code).await.expect("a verdict")
}

/// The sandbox alone, to run arbitrary scripts and look at what they could do.
pub async fn sandbox(wall: Duration) -> Sandbox {
    sandbox_in(wall, namespaces_wanted()).await
}

/// The sandbox alone, with or without namespaces.
pub async fn sandbox_in(wall: Duration, namespaces: bool) -> Sandbox {
    let interpreter = Interpreter::discover("python3").await.expect("python3 is installed");
    let mut limits = settings().limits;
    limits.wall = wall;
    limits.namespaces = namespaces;
    Sandbox { launcher: super::launcher(), interpreter, limits }
}

pub fn default_challenge() -> Challenge {
    Challenge::find(Challenge::default_id()).unwrap().clone()
}

/// Whether process `pid` is running (a zombie, dead but not yet reaped, counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `grader` keeps exactly `n` interpreters waiting, and returns their ids.
pub async fn idle_pids(grader: &Grader, n: usize) -> Vec<u32> {
    wait_until(&format!("{n} interpreters wait"), Duration::from_secs(20), || grader.idle_pids().len() == n).await;
    grader.idle_pids()
}

/// The working directory of a running process.
pub fn cwd_of(pid: u32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/cwd")).expect("the process is running")
}
