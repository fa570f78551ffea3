//! `POST /api/grade` over HTTP: auth, bad input, the busy queue, and the server surviving.

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");

#[tokio::test]
async fn grades_code_and_needs_the_organizer_token_when_one_is_set() {
    let app =
        common::spawn_app(|s| s.organizer_token = Some(moa_workshop::config::Secret::new("tok-123-0123456789"))).await;
    let client = reqwest::Client::new();
    let post = |token: Option<&str>| {
        let mut request = client.post(app.url("/api/grade")).json(&json!({ "code": FULL_MARKS }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let response = post(None).await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("organizer token"));
    assert_eq!(post(Some("tok-12")).await.unwrap().status(), 401);
    let response = post(Some("tok-123-0123456789")).await.unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["total"], 120);
}

#[tokio::test]
async fn malformed_requests_get_a_sentence() {
    let app = common::spawn_app(|_| {}).await;
    let client = reqwest::Client::new();
    for body in ["{", "{\"code\": 5}", "[]"] {
        let response = client
            .post(app.url("/api/grade"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().starts_with("The request body is not valid"), "{error}");
    }
}

#[tokio::test]
async fn grades_against_the_challenge_named_else_the_event_s_default() {
    let app = common::spawn_app(|s| s.active_challenges = vec!["parse_duration".into()]).await;
    let reference = app.state.challenges.find(Some("parse_duration")).unwrap().reference.clone();
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(app.url("/api/grade")).json(&body).send();
    let report: Value = post(json!({"code": reference})).await.unwrap().json().await.unwrap();
    assert_eq!(
        (report["challenge"].as_str(), report["total"].as_u64()),
        (Some("parse_duration"), Some(100)),
        "{report}"
    );
    let report: Value =
        post(json!({"code": FULL_MARKS, "challenge": "calculate_user_metrics"})).await.unwrap().json().await.unwrap();
    assert_eq!(report["total"], 120, "a loaded challenge, open or not");
    let unknown = post(json!({"code": FULL_MARKS, "challenge": "nope"})).await.unwrap();
    assert_eq!(unknown.status(), 400);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_the_server_keeps_going() {
    let app = common::spawn_app(|s| {
        s.grade_concurrency = Some(1);
        s.grade_queue = Some(0);
    })
    .await;
    // Busy for about a second at import, using only allowed modules.
    let slow = "import datetime\nend = datetime.datetime.now() + datetime.timedelta(seconds=1.5)\nwhile datetime.datetime.now() < end:\n    pass\n";
    let client = reqwest::Client::new();
    let send = || client.post(app.url("/api/grade")).json(&json!({ "code": slow })).send();
    let first = tokio::spawn(send());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = send().await.unwrap();
    assert_eq!(second.status(), 429);
    let retry: u64 = second.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    let error: Value = second.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("busy"));
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), 200);
    // Once the first is done, a new one is accepted, and health is still fine.
    let third = client.post(app.url("/api/grade")).json(&json!({ "code": FULL_MARKS })).send().await.unwrap();
    assert_eq!(third.status(), 200);
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_fork_server_stops_with_the_server() {
    let app = common::spawn_app(|s| s.grade_prewarm = Some(2)).await;
    let grader = app.state.grader.clone().expect("grading is available");
    let zygote = common::grading::zygote_pid(&grader).await;
    let pids: Vec<u32> = std::iter::once(zygote).chain(common::grading::descendants(zygote)).collect();
    let dirs = [common::grading::cwd_of(zygote)];
    app.stop().await;
    common::grading::wait_until("the waiting interpreters are gone", Duration::from_secs(5), || {
        !pids.iter().any(|&pid| common::grading::alive(pid))
    })
    .await;
    // Their working directory is removed once they are gone, a moment after on a busy machine.
    common::grading::wait_until("the fork server's directory is removed", Duration::from_secs(5), || {
        dirs.iter().all(|d| !d.exists())
    })
    .await;
}

fn namespaces_on() -> bool {
    common::grading::namespaces_wanted()
}

/// Even a server killed with SIGKILL, which cleans nothing up, leaves no interpreter running:
/// the fork server is blocked reading its socket, whose other end only the server held, and
/// exits at its end (and the launcher dies with the server, by its parent-death signal).
#[tokio::test]
async fn a_killed_server_leaves_no_interpreter_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = std::process::Command::new(common::launcher())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("kill.db").display()))
        .env("MOA_GRADE_PREWARM", "2")
        .env("RUST_LOG", "warn")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let children = |parent: u32| -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok());
                ppid == Some(parent) && common::grading::alive(*pid)
            })
            .collect()
    };
    let mut waiting = Vec::new();
    let is_zygote = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().split(|&b| b == 0).any(|a| a == b"--zygote")
    };
    let mut dirs = Vec::new();
    // A fork server can be replaced while the server starts (its start-up gradings and the
    // keeper race for the first one): wait for one that stays long enough to be looked at.
    common::grading::wait_until("the server keeps its fork server running", Duration::from_secs(30), || {
        waiting = children(server.id()).into_iter().filter(is_zygote).collect();
        if waiting.len() != 1 || common::grading::descendants(waiting[0]).is_empty() == namespaces_on() {
            return false;
        }
        // Until it has moved into its own working directory, a new fork server is still in the
        // server's (this test's directory, which holds the database).
        dirs =
            std::fs::read_link(format!("/proc/{}/cwd", waiting[0])).into_iter().filter(|d| d != dir.path()).collect();
        !dirs.is_empty()
    })
    .await;
    waiting.extend(common::grading::descendants(waiting[0]));
    server.kill().unwrap();
    server.wait().unwrap();
    common::grading::wait_until("the interpreters exit", Duration::from_secs(5), || {
        !waiting.iter().any(|&pid| common::grading::alive(pid))
    })
    .await;
    // Their working directories stay (nobody is left to delete them), empty: tidy up.
    for dir in dirs {
        std::fs::remove_dir(&dir).unwrap_or_else(|e| {
            let inside: Vec<_> = std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
            panic!("{} should be empty: {e}; it holds {inside:?}", dir.display())
        });
    }
}
