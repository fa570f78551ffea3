//! Shared test support: the real app on port 0 with its own SQLite file.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

pub mod browser;
pub mod fake_llm;
pub mod grading;
pub mod logs;
pub mod moa;

use moa_workshop::app::{App, Startup};
use moa_workshop::config::Settings;
use tokio::sync::oneshot;

/// The `moa-workshop` binary Cargo built for these tests: it is the sandbox launcher.
pub fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_moa-workshop"))
}

/// A running app; dropping it stops the server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub state: moa_workshop::app::AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
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
