//! The server process killed (SIGKILL, no goodbye) while submissions are being graded, then
//! started again on the same SQLite file: the database is intact, every submission that was
//! answered is still there with the same score, none is half-written or doubled, a resubmitted
//! generation counts once, and no sandboxed grading outlives the server that started it.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::fake_llm::FakeLlm;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

const FULL_MARKS: &str = include_str!("../fixtures/grader-examples/02_full_marks.py");
/// A submission that is still being graded when the server dies: it shrugs off the harness's
/// own import alarm, so only the server's wall clock (or its death) can end it.
const SLEEPER: &str = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n\n\
                       def calculate_user_metrics(users, purchases):\n    return {}\n";

/// The real binary, as an operator runs it, on `dir`'s database.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, llm: &str) -> Server {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_moa-workshop"))
            .arg("serve")
            .current_dir(dir)
            .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join("workshop.db").display()))
            .env("MOA_LISTEN", "127.0.0.1:0")
            .env("LLM_BASE_URL", llm)
            .env("LLM_API_KEY", "sk-crash-test")
            .env("MOA_MODELS", "fake-main:32768,fake-agent:8192")
            .env("MOA_GENERATE_PER_MINUTE", "0")
            .env("MOA_SUBMIT_PER_MINUTE", "0")
            .env("MOA_GRADE_TIMEOUT_SECS", "60")
            // Sandboxed runs work in here, so the test can find any that outlive the server.
            .env("TMPDIR", &tmp)
            .env("RUST_LOG", "moa_workshop=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (found, address) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(at) = line.find("listening on http://") {
                    let _ = found.send(line[at + "listening on ".len()..].trim().to_string());
                }
            }
        });
        let base = address.recv_timeout(Duration::from_secs(30)).expect("the server says where it listens");
        Server { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose working directory lies under `dir`: sandboxed gradings of this test.
fn processes_working_in(dir: &Path) -> Vec<(u32, PathBuf)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            cwd.starts_with(dir).then_some((pid, cwd))
        })
        .collect()
}

/// Claims `name` and returns its participant token.
async fn claim(client: &reqwest::Client, server: &Server, name: &str) -> String {
    let response = client.post(server.url("/api/participants")).json(&json!({ "name": name })).send().await.unwrap();
    assert_eq!(response.status(), 201, "{name}");
    response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
}

/// Generates as `token`'s participant and returns the generation id.
async fn generate(client: &reqwest::Client, server: &Server, token: &str, prompt: &str) -> String {
    let config = json!({"main_model": "fake-main", "main_temperature": 0.1, "cycles": 1,
        "system_prompt": "You are the main model. {helper_response}",
        "layer_agents": [{"name": "a", "model": "fake-agent", "temperature": 0.1, "max_tokens": 256,
                          "prompt": "Help. {helper_response}"}]});
    let response = client
        .post(server.url("/api/generate"))
        .header("x-participant-token", token)
        .json(&json!({"config": config, "prompt": prompt}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        let event = event.unwrap();
        if event.event == "done" {
            let done: Value = serde_json::from_str(&event.data).unwrap();
            return done["generation_id"].as_str().unwrap().to_string();
        }
        assert_ne!(event.event, "error", "{}", event.data);
    }
    panic!("no done event");
}

/// Submits; `None` when no answer came (the server died).
async fn submit(client: &reqwest::Client, base: &str, name: &str, token: &str, generation: &str) -> Option<Value> {
    let response = client
        .post(format!("{base}/api/submissions"))
        .header("x-participant-token", token)
        .json(&json!({"generation_id": generation}))
        .send()
        .await
        .ok()?;
    assert_eq!(response.status(), 200, "{name}");
    response.json().await.ok()
}

async fn board(client: &reqwest::Client, server: &Server) -> Vec<Value> {
    client.get(server.url("/api/leaderboard")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_mid_grading_loses_nothing_that_was_answered() {
    let fake = FakeLlm::start_with(
        Duration::from_millis(5),
        Box::new(|r| {
            let code = if r.user.contains("sleep") { SLEEPER } else { FULL_MARKS };
            if r.system.starts_with("You are the main model") { format!("```python\n{code}```") } else { "ok".into() }
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let server = Server::start(dir.path(), &fake.base_url);
    let crowd: Vec<String> = (0..24).map(|n| format!("Crash {n:02}")).collect();
    let mut generations = Vec::new();
    let mut tokens = Vec::new();
    for name in &crowd {
        let token = claim(&client, &server, name).await;
        generations.push(generate(&client, &server, &token, "write it").await);
        tokens.push(token);
    }
    let sleepy = claim(&client, &server, "Sleepy").await;
    let sleeper = generate(&client, &server, &sleepy, "write it, then sleep").await;

    // The sleeper takes a grading slot and stays in it; the others race for the rest.
    let sleeping = tokio::spawn({
        let (client, url, sleeper) = (client.clone(), server.url("/api/submissions"), sleeper.clone());
        async move {
            client.post(url).header("x-participant-token", sleepy).json(&json!({"generation_id": sleeper})).send().await
        }
    });
    let (answered_tx, mut answered_rx) = tokio::sync::mpsc::unbounded_channel();
    for ((name, generation), token) in crowd.iter().zip(&generations).zip(&tokens) {
        let (client, base, name, generation, answered, token) =
            (client.clone(), server.base.clone(), name.clone(), generation.clone(), answered_tx.clone(), token.clone());
        tokio::spawn(async move {
            if let Some(body) = submit(&client, &base, &name, &token, &generation).await {
                let _ = answered.send((name, body));
            }
        });
    }
    drop(answered_tx);
    let mut answered = Vec::new();
    while answered.len() < 8 {
        answered.push(answered_rx.recv().await.expect("submissions are answered"));
    }
    let before = board(&client, &server).await;
    let work = dir.path().join("tmp");
    assert!(!processes_working_in(&work).is_empty(), "gradings are running when the server dies");
    server.kill();
    // Answers already on the wire when the server died count as answered too.
    while let Some(late) = answered_rx.recv().await {
        answered.push(late);
    }
    assert!(sleeping.await.unwrap().is_err(), "the sleeper never got an answer");

    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_working_in(&work).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(processes_working_in(&work), vec![], "sandboxed gradings outlived their server");

    // The file itself: intact, and every stored submission complete and tied to its rows.
    {
        use sqlx::Row;
        use sqlx::sqlite::SqlitePoolOptions;
        let url = format!("sqlite://{}", dir.path().join("workshop.db").display());
        let pool = SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        let check: String = sqlx::query("PRAGMA integrity_check").fetch_one(&pool).await.unwrap().get(0);
        assert_eq!(check, "ok");
        assert!(sqlx::query("PRAGMA foreign_key_check").fetch_all(&pool).await.unwrap().is_empty());
        let orphans: i64 = sqlx::query(
            "SELECT COUNT(*) FROM submissions s LEFT JOIN generations g ON g.id = s.generation_id WHERE g.id IS NULL",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
        assert_eq!(orphans, 0);
        pool.close().await;
    }

    let server = Server::start(dir.path(), &fake.base_url);
    let after = board(&client, &server).await;
    for row in &before {
        let same = after.iter().find(|r| r["participant"] == row["participant"]).expect("still on the board");
        assert_eq!((&same["best_score"], &same["submissions"]), (&row["best_score"], &row["submissions"]));
    }
    for (name, body) in &answered {
        let row = after.iter().find(|r| r["participant"] == name.as_str()).expect("an answered submission is kept");
        assert_eq!(row["best_score"], body["total"]);
    }
    // Everyone resubmits (the page retries); answered ones get their stored submission back.
    for ((name, generation), token) in crowd.iter().zip(&generations).zip(&tokens) {
        let body = submit(&client, &server.base, name, token, generation).await.expect("answered after the restart");
        if let Some((_, first)) = answered.iter().find(|(n, _)| n == name) {
            assert_eq!(body["submission_id"], first["submission_id"], "{name}: the same submission");
        }
    }
    let after = board(&client, &server).await;
    assert_eq!(after.iter().filter(|r| r["participant"] != "Sleepy").count(), crowd.len());
    assert!(after.iter().all(|r| r["submissions"] == 1), "{after:?}");
    server.kill();
}
