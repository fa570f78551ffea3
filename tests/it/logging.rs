//! The real binary's logs: `MOA_LOG_FORMAT=json` writes one JSON object per line, every line a
//! request causes carries that request's id (which the response carries as `x-request-id`),
//! and secrets sent in headers never reach the log. A bad format is a clear start-up error.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const ORGANIZER_TOKEN: &str = "organizer-secret-0123456789";
const SERVER_KEY: &str = "sk-server-secret-4711";
const HEADER_SECRETS: [&str; 3] = ["participant-own-key-0815", "cookie-secret-value-2342", "bearer-secret-value-1337"];

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_moa-workshop"));
    command.env_remove("RUST_LOG").env_remove("MOA_LOG_FORMAT");
    command
}

/// Starts `serve` on a free port in `dir` (no `.env` there); returns it, its address, and
/// its stderr lines as they come.
fn serve(dir: &tempfile::TempDir) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = binary()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("MOA_LOG_FORMAT", "json")
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("logs.db").display()))
        .env("ORGANIZER_TOKEN", ORGANIZER_TOKEN)
        .env("LLM_API_KEY", SERVER_KEY)
        .env("LLM_BASE_URL", "http://127.0.0.1:9/v1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut early = Vec::new();
    let addr = loop {
        let line = received.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no address: {early:?}"));
        if let Some(addr) = line.split("listening on http://").nth(1) {
            break addr.split('"').next().unwrap().to_string();
        }
        early.push(line);
    };
    // Lines before the address are checked with the rest.
    let (all, rest) = mpsc::channel();
    for line in early {
        all.send(line).unwrap();
    }
    std::thread::spawn(move || {
        while let Ok(line) = received.recv() {
            if all.send(line).is_err() {
                break;
            }
        }
    });
    (child, addr, rest)
}

/// The id of the request span a JSON line was written in, if any.
fn request_id(line: &Value) -> Option<&str> {
    line["spans"].as_array()?.iter().find(|span| span["name"] == "request")?["request_id"].as_str()
}

#[tokio::test]
async fn json_lines_carry_the_request_id_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, lines) = serve(&dir);
    let client = reqwest::Client::new();

    // A request that logs from inside its handler, with secrets in every sensitive header.
    let claimed = client
        .post(format!("http://{addr}/api/participants"))
        .header("authorization", format!("Bearer {}", HEADER_SECRETS[2]))
        .header("x-llm-api-key", HEADER_SECRETS[0])
        .header("cookie", format!("moa_extra={}", HEADER_SECRETS[1]))
        .json(&json!({"name": "log-ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(claimed.status(), 201);
    let claim_id = claimed.headers()["x-request-id"].to_str().unwrap().to_string();
    let token = claimed.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();

    // An id a proxy chose is kept; one that could forge log lines is replaced.
    let chosen =
        client.get(format!("http://{addr}/healthz")).header("x-request-id", "proxy-id-42").send().await.unwrap();
    assert_eq!(chosen.headers()["x-request-id"], "proxy-id-42");
    let long = "x".repeat(100);
    let replaced = client.get(format!("http://{addr}/healthz")).header("x-request-id", &long).send().await.unwrap();
    let replaced_id = replaced.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(replaced_id != long && !replaced_id.is_empty());
    // A failed organizer sign-in with a wrong token sent as Bearer.
    let wrong =
        client.post(format!("http://{addr}/api/grade")).bearer_auth(HEADER_SECRETS[2]).json(&json!({"code": ""}));
    assert_eq!(wrong.send().await.unwrap().status(), 401);

    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let lines: Vec<String> = lines.try_iter().collect();

    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    for line in &parsed {
        assert!(line["timestamp"].is_string() && line["level"].is_string() && line["fields"].is_object(), "{line}");
    }
    let of = |id: &str| parsed.iter().filter(|l| request_id(l) == Some(id)).collect::<Vec<_>>();
    let claim_lines = of(&claim_id);
    assert!(
        claim_lines.iter().any(|l| l["fields"]["message"] == "name claimed"),
        "the handler's own line carries the id {claim_id}: {lines:#?}"
    );
    assert!(
        claim_lines.iter().any(|l| l["fields"]["message"] == "finished processing request"),
        "so does the request's summary line: {claim_lines:#?}"
    );
    // Every line written in a request's span names the request: no request line is anonymous.
    for line in parsed.iter().filter(|l| l["spans"].as_array().is_some_and(|s| !s.is_empty())) {
        assert!(request_id(line).is_some_and(|id| !id.is_empty() && id != "-"), "{line}");
    }
    // The name-claimed line is the only one of its kind: it came from that request alone.
    let claimed_lines: Vec<_> = parsed.iter().filter(|l| l["fields"]["message"] == "name claimed").collect();
    assert_eq!(claimed_lines.len(), 1);
    assert!(!of("proxy-id-42").is_empty(), "the proxy's id is the one logged");
    assert!(!of(&replaced_id).is_empty());

    let all = lines.join("\n");
    for secret in HEADER_SECRETS.iter().chain([&SERVER_KEY, &ORGANIZER_TOKEN, &token.as_str()]) {
        assert!(!all.contains(secret), "{secret} reached the log:\n{all}");
    }
    assert!(!all.contains(&long), "a refused request id is not logged");
}

#[test]
fn a_bad_log_format_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("MOA_LOG_FORMAT", "yaml")
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim(), "moa-workshop: MOA_LOG_FORMAT must be text or json, not \"yaml\"");
}
