use crate::common;

#[tokio::test]
async fn healthz_is_ok_once_database_and_grader_are_ready() {
    let app = common::spawn_app(|_| {}).await;
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], true);
    assert_eq!(body["grader"]["ready"], true, "{body}");
    assert!(app.database_path().exists(), "the SQLite file is created");
}

#[tokio::test]
async fn healthz_reports_a_missing_python_with_503() {
    let app = common::spawn_app(|s| s.python = "/nonexistent/python3".into()).await;
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["grader"]["problem"].as_str().unwrap().contains("/nonexistent/python3"));
    // The home page still works and says why grading is off.
    let page = reqwest::get(app.url("/")).await.unwrap().text().await.unwrap();
    assert!(page.contains("Grading is unavailable"), "{page}");
    assert!(page.contains("No API key is set"));
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test]
async fn healthz_and_the_start_up_line_say_which_uid_the_sandbox_runs_as() {
    common::logs::capture();
    let app = common::spawn_app(|_| {}).await;
    let body: serde_json::Value = reqwest::get(app.url("/healthz")).await.unwrap().json().await.unwrap();
    let sandbox = &body["grader"]["sandbox"];
    let expected = if is_root() {
        assert_eq!((sandbox["own_uid"].as_u64(), sandbox["own_uid_off"].as_str()), (Some(61000), Some("")), "{body}");
        "own uid: 61000"
    } else {
        assert_eq!((sandbox["own_uid"].is_null(), sandbox["own_uid_off"].as_str()), (true, Some("not root")), "{body}");
        "own uid: off (not root)"
    };
    let logs = common::logs::text();
    let line = logs.lines().find(|l| l.contains("sandbox layers:")).unwrap_or_default();
    assert!(line.contains(expected), "{logs}");
    // Switched off, the sandbox keeps the server's uid and says why.
    let off = common::spawn_app(|s| s.sandbox_uid = moa_workshop::config::SandboxUid::Off).await;
    let body: serde_json::Value = reqwest::get(off.url("/healthz")).await.unwrap().json().await.unwrap();
    let sandbox = &body["grader"]["sandbox"];
    assert_eq!(body["grader"]["ready"], true, "{body}");
    assert!(sandbox["own_uid"].is_null(), "{body}");
    if is_root() {
        assert_eq!(sandbox["own_uid_off"], "MOA_SANDBOX_UID=off", "{body}");
    }
}

/// A copy of the system's Python in a folder only root may enter (as pyenv's under /root).
fn private_python(dir: &tempfile::TempDir) -> String {
    use std::os::unix::fs::PermissionsExt;
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    let python = private.join("python3");
    std::fs::copy(std::fs::canonicalize(common::python()).unwrap(), &python).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    python.display().to_string()
}

#[tokio::test]
async fn a_python_the_sandbox_uid_cannot_read_keeps_the_servers_uid_unless_one_was_asked_for() {
    if !is_root() {
        eprintln!("not root: the sandbox keeps the server's uid anyway");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let python = private_python(&dir);
    // By default grading still works, with the server's uid, and healthz says why.
    let app = common::spawn_app(|s| s.python = python.clone()).await;
    let body: serde_json::Value = reqwest::get(app.url("/healthz")).await.unwrap().json().await.unwrap();
    assert_eq!(body["grader"]["ready"], true, "{body}");
    let sandbox = &body["grader"]["sandbox"];
    assert!(sandbox["own_uid"].is_null(), "{body}");
    assert_eq!(sandbox["own_uid_off"], format!("uid 61000 cannot read {python}"), "{body}");
    // Asked for by name, it is an error in a sentence.
    let asked = common::spawn_app(|s| {
        s.python = python.clone();
        s.sandbox_uid = moa_workshop::config::SandboxUid::Given { uid: 61000, gid: 61000 };
    })
    .await;
    let response = reqwest::get(asked.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let problem = body["grader"]["problem"].as_str().unwrap_or_default();
    assert!(problem.contains("uid 61000 cannot read") && problem.contains("MOA_SANDBOX_UID=off"), "{body}");
}
