//! A grader (and a bare sandbox) built exactly as the server builds them.

use std::time::Duration;

use moa_workshop::grader::sandbox::{Interpreter, Sandbox};
use std::sync::Arc;

use moa_workshop::grader::{Challenge, Challenges, GradeReport, Grader, GraderSettings};

pub fn settings() -> GraderSettings {
    let mut settings = GraderSettings::new(super::launcher());
    settings.python = super::python();
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
    Grader::start(settings, built_in_challenges()).await.expect("the grader starts")
}

/// Every challenge built into the binary, as the server loads them without MOA_CHALLENGES_DIR.
pub fn built_in_challenges() -> Arc<Challenges> {
    Arc::new(Challenges::load(None).expect("the built-in challenges are valid"))
}

pub async fn grade(grader: &Grader, code: &str) -> GradeReport {
    let challenge = grader.challenge(None).unwrap().clone();
    grader.grade(&challenge, code).await.expect("a verdict")
}

/// Grades `code` against the shipped challenge `id`.
pub async fn grade_on(grader: &Grader, id: &str, code: &str) -> GradeReport {
    let challenge = grader.challenge(Some(id)).unwrap().clone();
    grader.grade(&challenge, code).await.expect("a verdict")
}

/// Every shipped challenge: (id, its reference solution, its maximum).
pub fn shipped(grader: &Grader) -> Vec<(String, String, u32)> {
    grader.challenges().all().iter().map(|c| (c.id.clone(), c.reference.clone(), c.max_points())).collect()
}

/// The sandbox alone, to run arbitrary scripts and look at what they could do.
pub async fn sandbox(wall: Duration) -> Sandbox {
    sandbox_in(wall, namespaces_wanted()).await
}

/// The sandbox alone, with or without namespaces.
pub async fn sandbox_in(wall: Duration, namespaces: bool) -> Sandbox {
    let interpreter = Interpreter::discover(&super::python()).await.expect("python3 is installed");
    let mut limits = settings().limits;
    limits.wall = wall;
    limits.namespaces = namespaces;
    Sandbox { launcher: super::launcher(), interpreter, limits }
}

pub fn default_challenge() -> Challenge {
    (**built_in_challenges().find(None).unwrap()).clone()
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

/// Waits until `grader` runs its fork server, and returns the launcher's pid.
pub async fn zygote_pid(grader: &Grader) -> u32 {
    wait_until("the fork server runs", Duration::from_secs(20), || grader.zygote_pid().is_some()).await;
    grader.zygote_pid().unwrap()
}

/// Fields of /proc/PID/stat after the command name: (state, ppid, pgrp).
fn stat_of(pid: u32) -> Option<(String, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(") ")?.1.split(' ');
    let state = rest.next()?.to_string();
    Some((state, rest.next()?.parse().ok()?, rest.next()?.parse().ok()?))
}

/// Every living process below `pid` (found through each process's parent).
pub fn descendants(pid: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|p| stat_of(p).filter(|(state, ..)| state != "Z").map(|(_, ppid, _)| (p, ppid)))
                .collect()
        })
        .unwrap_or_default();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(all.iter().filter(|&&(_, ppid)| ppid == parent).map(|&(p, _)| p));
        i += 1;
    }
    found.remove(0);
    found
}

/// The fork server's children running now (each leads a process group of its own), by host pid.
pub fn graded_now(zygote: u32) -> Vec<u32> {
    descendants(zygote).into_iter().filter(|&p| stat_of(p).is_some_and(|(_, _, pgrp)| pgrp == p)).collect()
}

/// The pid of host process `pid` as seen inside its innermost PID namespace.
pub fn pid_inside(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("NSpid:")).expect("an NSpid line");
    line.split_whitespace().last().unwrap().parse().unwrap()
}

/// A pool (a fork server) as the grader keeps it, to run bare scripts in its children.
pub async fn children_in(wall: Duration, namespaces: bool) -> moa_workshop::grader::pool::Pool {
    let sandbox = sandbox_in(wall, namespaces).await;
    let path = sandbox.interpreter.import_path.clone();
    moa_workshop::grader::pool::Pool::new(sandbox, moa_workshop::grader::HARNESS, path, 1, Vec::new())
}

/// The working directory of a running process.
pub fn cwd_of(pid: u32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/cwd")).expect("the process is running")
}

/// One of the workshop's example submissions (tests/fixtures/grader-examples).
pub fn example(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grader-examples");
    std::fs::read_to_string(dir.join(name)).unwrap()
}
