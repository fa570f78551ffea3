//! A database that cannot store anything: read-only, a full disk, or one that cannot be
//! opened at all. /healthz says so with the cause, a generation refuses before it spends a
//! run, people get "the server cannot save right now: <cause>", and start-up names the cause.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::fake_llm::FakeLlm;
use common::moa::{config, spawn_with_fake, use_fake};
use moa_workshop::app::{App, Startup};
use serde_json::{Value, json};

async fn healthz(app: &common::TestApp) -> (u16, Value) {
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn generate(app: &common::TestApp, token: &str) -> reqwest::Response {
    let body = json!({"config": config("fast-a", 1, &[("one", "fast-b")])});
    let request = reqwest::Client::new().post(app.url("/api/generate")).header("x-participant-token", token);
    request.json(&body).send().await.unwrap()
}

#[tokio::test]
async fn a_read_only_database_is_reported_and_no_run_is_spent() {
    let fake = FakeLlm::start(Duration::from_millis(10)).await;
    let app = spawn_with_fake(&fake, |_| {}).await;
    let token = app.token("Ada").await;
    let path = app.database_path();
    let read_only = app.restart(|s| {
        use_fake(s, &fake);
        s.database_url = format!("sqlite://{}?mode=ro", path.display());
    });
    let app = read_only.await;

    let (status, body) = healthz(&app).await;
    assert_eq!(status, 503, "{body}");
    let problem = body["database_problem"].as_str().unwrap();
    assert!(problem.contains("read-only"), "{problem}");

    let refused = generate(&app, &token).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    let sentence = body["error"].as_str().unwrap();
    assert!(sentence.starts_with("The server cannot save right now: the database is read-only"), "{sentence}");
    assert_eq!(fake.requests().len(), 0, "no model call was made for an answer that could not be kept");
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop; None where mounting is
/// not allowed (not root, no CAP_SYS_ADMIN).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk(dir))
    }

    fn fill(&self) {
        let filler = self.0.path().join("filler");
        let _ = Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", filler.display())).arg("bs=4k").output();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_turns_health_red_with_the_cause() {
    let Some(disk) = SmallDisk::mount("4m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); the read-only test covers the same paths");
        return;
    };
    let fake = FakeLlm::start(Duration::from_millis(10)).await;
    let db = disk.0.path().join("full.db");
    let app = spawn_with_fake(&fake, |s| s.database_url = format!("sqlite://{}?mode=rwc", db.display())).await;
    assert_eq!(healthz(&app).await.0, 200);
    disk.fill();

    // Claiming a name is a write: it fails with the cause, not a generic 500.
    let mut refused = None;
    for i in 0..50 {
        let claim = json!({"name": format!("Person {i}")});
        let response = reqwest::Client::new().post(app.url("/api/participants")).json(&claim).send().await.unwrap();
        if !response.status().is_success() {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("a write failed on the full disk");
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    let sentence = body["error"].as_str().unwrap();
    assert!(sentence.starts_with("The server cannot save right now: "), "{sentence}");
    assert!(sentence.contains("full") || sentence.contains("cannot write"), "{sentence}");

    let (status, body) = healthz(&app).await;
    assert_eq!(status, 503, "{body}");
    let problem = body["database_problem"].as_str().unwrap();
    assert!(problem.contains("full") || problem.contains("cannot write"), "{problem}");
    app.stop().await;
}

async fn start_up_problem(database_url: String) -> (String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&dir);
    settings.database_url = database_url;
    let started = Instant::now();
    let problem = App::build(Startup { settings, launcher: common::launcher() }).await.err().expect("start-up fails");
    (problem, started.elapsed())
}

#[tokio::test]
async fn start_up_names_why_the_database_cannot_be_opened() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (problem, took) = start_up_problem(format!("postgres://moa@127.0.0.1:{closed}/moa")).await;
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(problem.starts_with("cannot open the database: "), "{problem}");
    assert!(problem.to_lowercase().contains("refused"), "{problem}");

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
    let (problem, took) = start_up_problem(format!("sqlite://{}", garbage.display())).await;
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(problem.contains("not a database"), "{problem}");
}
