//! Shared test support: the real app on port 0 with its own SQLite file.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

pub mod browser;
pub mod fake_llm;
pub mod grading;
pub mod live;
pub mod logs;
pub mod moa;
pub mod scores;

use moa_workshop::app::{App, Startup};
use moa_workshop::config::Settings;
use tokio::sync::oneshot;

/// The `moa-workshop` binary Cargo built for these tests: it is the sandbox launcher.
pub fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_moa-workshop"))
}

/// The Python the grader runs in tests: the system's where there is one, because as root the
/// sandbox runs as a uid of its own, which cannot read an interpreter installed under `/root`
/// (pyenv's, say); otherwise `python3` on PATH.
pub fn python() -> String {
    let system = std::path::Path::new("/usr/bin/python3");
    if system.exists() { system.display().to_string() } else { "python3".into() }
}

/// Tokens of the participants tests claimed, by database URL and name.
static TOKENS: std::sync::Mutex<std::collections::BTreeMap<(String, String), String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// A running app; dropping it stops the server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub state: moa_workshop::state::AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The participant token of `name`, claimed through `POST /api/participants` the first time
    /// a test acts as `name` on this database (any instance of it), then remembered.
    pub async fn token(&self, name: &str) -> String {
        // "Ada" and " ada " are one participant.
        let name_key = moa_workshop::store::participants::normalize_name(name).map_or(name.to_string(), |(_, key)| key);
        let key = (self.state.settings.database_url.clone(), name_key);
        let known = TOKENS.lock().unwrap().get(&key).cloned();
        // A reset or a release forgets the participant: claim again then.
        if let Some(token) = known
            && moa_workshop::store::participants::by_token(&self.state.pool, &token).await.unwrap().is_some()
        {
            return token;
        }
        let response = reqwest::Client::new()
            .post(self.url("/api/participants"))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, 201, "claiming {name:?}: {body}");
        let token = body["token"].as_str().expect("a token").to_string();
        TOKENS.lock().unwrap().insert(key, token.clone());
        token
    }

    /// A request to `path` made as participant `name` (header `X-Participant-Token`).
    pub async fn post_as(&self, client: &reqwest::Client, name: &str, path: &str) -> reqwest::RequestBuilder {
        client.post(self.url(path)).header("x-participant-token", self.token(name).await)
    }

    /// `POST path` with the JSON `body`, as participant `name` (claimed on first use).
    pub async fn post_json_as(&self, name: &str, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.post_as(&reqwest::Client::new(), name, path).await.json(body).send().await.expect("the server answers")
    }

    /// The page at `path` as the organizer (Bearer `token`) sees it.
    pub async fn organizer_page(&self, token: &str, path: &str) -> String {
        let response = reqwest::Client::new().get(self.url(path)).bearer_auth(token).send().await;
        response.expect("the server answers").text().await.expect("a page")
    }

    /// The stored participant `name`, claimed through the API first if needed.
    pub async fn participant(&self, name: &str) -> moa_workshop::store::participants::Participant {
        self.token(name).await;
        moa_workshop::store::participants::find_by_name(&self.state.pool, name).await.unwrap().expect("claimed")
    }

    pub fn database_path(&self) -> PathBuf {
        self.dir.path().join("test.db")
    }

    /// Stops the server and starts a new one on the same database file.
    pub async fn restart(mut self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        self.stop().await;
        spawn_app_in(dir, configure).await
    }

    /// Stops the server and waits for it (graceful shutdown included).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Default settings for tests: no key, no token, a fresh database in a temp dir.
pub fn test_settings(dir: &tempfile::TempDir) -> Settings {
    let mut settings = Settings::from_lookup(|_| None).expect("defaults are valid");
    settings.database_url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    settings.listen = "127.0.0.1:0".into();
    settings.python = python();
    settings
}

/// Starts the app with `configure` applied to the default test settings.
pub async fn spawn_app(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    spawn_app_in(dir, configure).await
}

/// Starts the app on an existing directory (to test restarts on the same database).
pub async fn spawn_app_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&dir);
    configure(&mut settings);
    let app = App::build(Startup { settings, launcher: launcher() }).await.expect("app starts");
    let state = app.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    TestApp { addr, base: format!("http://{addr}"), dir, state, stop: Some(stop), server: Some(server) }
}
