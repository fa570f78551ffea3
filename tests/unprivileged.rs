//! The Docker image runs the server as an unprivileged user (uid 10001) with no capabilities.
//! When these tests run as root, they run the binary that way and check the sandbox still
//! applies every layer and grades; when they already run unprivileged, every other grader test
//! covers that case and this one says so.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const IMAGE_UID: &str = "10001";

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test]
async fn the_image_user_grades_with_every_sandbox_layer() {
    if !is_root() {
        eprintln!("not root: the whole suite already runs unprivileged, as the image does");
        return;
    }
    // A copy the image user can execute, in a folder it owns (as /data in the image).
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("moa-workshop");
    std::fs::copy(common::launcher(), &binary).unwrap();
    let submission = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/grader-examples/02_full_marks.py");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let owner = Command::new("chown").args([&format!("{IMAGE_UID}:{IMAGE_UID}")]).arg(&data).status().unwrap();
    assert!(owner.success());

    let mut server = Command::new("setpriv")
        .args(["--reuid", IMAGE_UID, "--regid", IMAGE_UID, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(&binary)
        .arg("serve")
        .current_dir(&data)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("MOA_LISTEN", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}/workshop.db?mode=rwc", data.display()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux) runs");
    let stderr = BufReader::new(server.stderr.take().unwrap());
    let mut log = Vec::new();
    let base = stderr.lines().map_while(Result::ok).find_map(|line| {
        log.push(line.clone());
        line.find("listening on http://").map(|at| line[at + "listening on ".len()..].trim().to_string())
    });
    let Some(base) = base else {
        let _ = server.kill();
        panic!("the server did not start as uid {IMAGE_UID}: {log:#?}");
    };
    let health: serde_json::Value = reqwest::get(format!("{base}/healthz")).await.unwrap().json().await.unwrap();
    let graded: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/grade"))
        .json(&serde_json::json!({"code": std::fs::read_to_string(submission).unwrap()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let sandbox = &health["grader"]["sandbox"];
    assert_eq!(health["grader"]["ready"], true, "{health}");
    for layer in ["new_session", "rlimits", "capabilities_dropped", "seccomp"] {
        assert_eq!(sandbox[layer], true, "{layer}: {health}");
    }
    if sandbox["landlock_abi"].as_i64().unwrap_or(0) > 0 {
        assert_eq!(sandbox["landlock"], "full", "{health}");
    }
    assert_eq!((graded["status"].as_str(), graded["total"].as_u64()), (Some("graded"), Some(120)), "{graded}");
}
