//! Start-up: settings → database → grader → router → listener, and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::grader::{Challenges, Grader, GraderSettings};
use crate::llm::{Catalog, ChatProvider, ClientLimits, OpenAiProvider};
use crate::state::AppState;
use crate::store;
use crate::web;

/// What differs between the real server and a test: where the launcher binary is.
pub struct Startup {
    pub settings: Settings,
    pub launcher: PathBuf,
}

pub struct App {
    pub state: AppState,
    shutdown: watch::Sender<bool>,
}

impl App {
    /// Opens the database and prepares the grader. Only a broken database is fatal: without
    /// Python the app still serves chat and explains why grading is off.
    pub async fn build(startup: Startup) -> Result<App, String> {
        let settings = startup.settings;
        if let Some(token) = &settings.organizer_token {
            crate::config::check_organizer_token(token)?;
        }
        let pool = store::connect(&settings.database_url).await?;
        tracing::info!(database = %redact_url(&settings.database_url), "database ready");
        let dir = settings.challenges_dir.clone();
        let challenges = tokio::task::spawn_blocking(move || Challenges::load(dir.as_deref()))
            .await
            .map_err(|e| format!("loading the challenges failed: {e}"))??;
        let challenges = Arc::new(challenges);
        let ids: Vec<&str> = challenges.all().iter().map(|c| c.id.as_str()).collect();
        tracing::info!(challenges = %ids.join(", "), "challenges loaded");
        for id in &settings.active_challenges {
            challenges.find(Some(id)).map_err(|problem| format!("MOA_CHALLENGES: {problem}"))?;
        }
        let grader = start_grader(&settings, startup.launcher, challenges.clone()).await;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let limits = ClientLimits { connect: settings.llm_connect_timeout, request: settings.llm_timeout };
        let llm: Arc<dyn ChatProvider> =
            Arc::new(crate::metrics::Metered::new(OpenAiProvider::new(limits)?, &settings.providers()));
        let catalog = Catalog::new(settings.providers(), llm.clone());
        for provider in catalog.providers() {
            tracing::info!(
                provider = %provider.name,
                base_url = %redact_url(&provider.base_url),
                key = if provider.api_key.is_some() { "set" } else { "none" },
                discover = provider.discover,
                "LLM provider"
            );
        }
        // The first discovery runs in the background: start-up and pages never wait for a provider.
        let _ = catalog.offer();
        let live = Arc::new(crate::live::Live::new(&settings));
        let state = AppState {
            settings: Arc::new(settings),
            pool,
            grader,
            challenges,
            shutdown: shutdown_rx,
            llm,
            catalog,
            live,
            active_runs: Arc::default(),
            storage: Arc::default(),
        };
        Ok(App { state, shutdown })
    }

    /// Serves until `stop` resolves, then lets open requests finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = web::build_router(self.state.clone());
        let state = &self.state;
        let (pool, challenges) = (state.pool.clone(), state.challenges.clone());
        let configured = state.settings.active_challenges.clone();
        let render = move || {
            let (pool, challenges, configured) = (pool.clone(), challenges.clone(), configured.clone());
            async move { web::leaderboard::render_boards(&pool, &challenges, &configured).await }
        };
        tokio::spawn(state.live.clone().watch_leaderboard(state.pool.clone(), render, state.shutdown.clone()));
        let shutdown = self.shutdown;
        let settings = &self.state.settings;
        let max_connections = match settings.max_connections {
            0 => web::server::automatic_connection_cap(open_file_limit()),
            n => n,
        };
        let limits = web::server::ConnectionLimits { header_timeout: settings.header_timeout, max_connections };
        tracing::info!(max_connections, header_timeout_s = limits.header_timeout.as_secs_f64(), "connection limits");
        web::server::serve(listener, router, limits, async move {
            stop.await;
            tracing::info!("shutting down");
            let _ = shutdown.send(true);
        })
        .await;
        // Open requests are done: the fork server and its children are not needed any more.
        if let Ok(grader) = &self.state.grader {
            grader.shutdown();
        }
        Ok(())
    }
}

async fn start_grader(
    settings: &Settings,
    launcher: PathBuf,
    challenges: Arc<Challenges>,
) -> Result<Arc<Grader>, String> {
    let mut grader_settings = GraderSettings::new(launcher);
    grader_settings.python = settings.python.clone();
    grader_settings.limits.wall = settings.grade_timeout;
    grader_settings.limits.cpu_seconds = settings.grade_timeout.as_secs();
    grader_settings.limits.namespaces = settings.sandbox_namespaces;
    match settings.sandbox_uid {
        crate::config::SandboxUid::Automatic => {}
        crate::config::SandboxUid::Off => grader_settings.limits.uid = None,
        crate::config::SandboxUid::Given { uid, gid } => {
            grader_settings.limits.uid = Some((uid, gid));
            grader_settings.limits.uid_required = true;
        }
    }
    if let Some(n) = settings.grade_concurrency {
        grader_settings.concurrency = n;
    }
    if let Some(n) = settings.grade_queue {
        grader_settings.queue = n;
    }
    grader_settings.prewarm = settings.grade_prewarm.unwrap_or(grader_settings.concurrency);
    let result = async {
        let grader = Grader::start(grader_settings, challenges).await?;
        let layers = grader.layers();
        if layers.fully_contained() {
            tracing::info!(python = %grader.interpreter().executable.display(), "sandbox layers: {}", layers.summary());
        } else {
            tracing::warn!("sandbox is NOT fully contained on this kernel; layers: {}", layers.summary());
        }
        grader.self_test().await?;
        Ok::<_, String>(Arc::new(grader))
    }
    .await;
    if let Err(problem) = &result {
        tracing::error!(%problem, "grading is unavailable");
    }
    result
}

/// `user:password@` and a `password=` parameter never reach the log.
fn redact_url(url: &str) -> String {
    let (main, query) = url.split_once('?').map_or((url, None), |(main, query)| (main, Some(query)));
    let main = match (main.find("://"), main.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &main[..scheme], &main[at + 1..]),
        _ => main.to_string(),
    };
    let Some(query) = query else { return main };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=…"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{main}?{}", query.join("&"))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// `moa-workshop serve`: runs until SIGINT/SIGTERM.
pub async fn run_server(settings: Settings) -> Result<(), String> {
    let open_files = raise_open_file_limit();
    tracing::info!(open_files, "file descriptor limit");
    let listen = settings.listen.clone();
    let launcher = std::env::current_exe().map_err(|e| format!("cannot find this program's own path: {e}"))?;
    let app = App::build(Startup { settings, launcher }).await?;
    let listener = TcpListener::bind(&listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("listening on http://{addr}");
    app.serve(listener, shutdown_signal()).await.map_err(|e| e.to_string())?;
    // Give in-flight gradings a moment; their processes are killed with their handles.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// Each open chat stream holds two sockets (the browser's and the provider's), so the usual
/// soft limit of 1,024 descriptors would start refusing a room of 500. Raises the soft limit
/// to the hard one (as far as the system allows) and returns the limit now in force.
fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum.unwrap_or(u64::MAX);
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// The soft open-file limit now in force (`None` in rustix means unlimited).
fn open_file_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(super::redact_url("postgres://u:pw@db:5432/x"), "postgres://…@db:5432/x");
        assert_eq!(super::redact_url("sqlite://data/w.db"), "sqlite://data/w.db");
        assert_eq!(
            super::redact_url("postgres://db/x?user=u&password=pw&sslmode=require"),
            "postgres://db/x?user=u&password=…&sslmode=require"
        );
        assert_eq!(
            super::redact_url("postgres://u:p@w@db/x?sslrootcert=/a@b.crt"),
            "postgres://…@db/x?sslrootcert=/a@b.crt"
        );
    }
}
