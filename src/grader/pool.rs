//! Keeps one fork server (`zygote.rs`) running and hands it the jobs. Every submission gets a
//! fresh child, confined further before any of its code runs, and no process serves two
//! submissions; Python's start-up and the harness's loading are paid once per zygote.
//!
//! A zygote that died is replaced (in the background when `prewarm` is on, else by the next
//! grading); a job it lost before its child's ending was known runs once more in the new one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::sandbox::{RunOutput, Sandbox};
use super::zygote::{RunError, Zygote, child_config};

pub struct Pool {
    shared: Arc<Shared>,
    keeper: Option<JoinHandle<()>>,
}

struct Shared {
    sandbox: Sandbox,
    script: &'static str,
    args: Vec<String>,
    config: Result<String, String>,
    current: tokio::sync::Mutex<Option<Arc<Zygote>>>,
    /// A copy of the current zygote, for synchronous callers (pids, shutdown).
    latest: std::sync::Mutex<Option<Arc<Zygote>>>,
    closed: AtomicBool,
    jobs: AtomicU64,
    zygotes: AtomicU64,
}

impl Pool {
    /// Keeps a zygote running `script args…` (needs a Tokio runtime), with the `preload`
    /// modules loaded before its first fork; with `prewarm` 0, it is started by the first job
    /// and replaced by the first job after it died.
    pub fn new(
        sandbox: Sandbox,
        script: &'static str,
        args: Vec<String>,
        prewarm: usize,
        preload: Vec<String>,
    ) -> Pool {
        let config = child_config(&sandbox.limits, &preload);
        let shared = Arc::new(Shared {
            sandbox,
            script,
            args,
            config,
            current: tokio::sync::Mutex::new(None),
            latest: std::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
            jobs: AtomicU64::new(0),
            zygotes: AtomicU64::new(0),
        });
        let keeper = (prewarm > 0).then(|| tokio::spawn(keep_running(shared.clone())));
        Pool { shared, keeper }
    }

    /// Runs one job in a child of its own. The wall-clock limit counts from the hand-over.
    pub async fn run(&self, input: &[u8]) -> Result<RunOutput, String> {
        let mut lost = None;
        for _attempt in 0..2 {
            let zygote = self.shared.zygote().await?;
            self.shared.jobs.fetch_add(1, Ordering::Relaxed);
            match zygote.run(input).await {
                Ok(output) => return Ok(output),
                Err(RunError::Failed(problem)) => return Err(format!("cannot run the sandbox: {problem}")),
                Err(RunError::Lost(problem)) => {
                    // Its child died with it (parent-death signal); no verdict came from it.
                    tracing::warn!(%problem, "the grading sandbox's fork server stopped; running the job again");
                    self.shared.discard(&zygote).await;
                    lost = Some(problem);
                }
            }
        }
        Err(format!("the grading sandbox stopped twice while grading ({})", lost.unwrap_or_default()))
    }

    /// Runs a bare script in a child, confined like a submission's but with no harness around
    /// it, no rules and no audit hook (for tests of the OS layers).
    pub async fn run_script(&self, script: &str) -> Result<RunOutput, String> {
        self.run(serde_json::json!({ "script": script }).to_string().as_bytes()).await
    }

    /// The current zygote's launcher pid (its process group), once it has started.
    pub fn zygote_pid(&self) -> Option<u32> {
        self.shared.latest.lock().expect("pool lock").as_ref().filter(|z| z.is_alive()).map(|z| z.pid())
    }

    /// Jobs handed to a zygote so far (a job run again counts twice), and zygotes started.
    pub fn counts(&self) -> (u64, u64) {
        (self.shared.jobs.load(Ordering::Relaxed), self.shared.zygotes.load(Ordering::Relaxed))
    }

    /// Stops the zygote and its children and keeps none running any more; a later job gets a
    /// zygote of its own, gone with it.
    pub fn shutdown(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        if let Some(keeper) = &self.keeper {
            keeper.abort();
        }
        // Dropping the last handle kills the zygote's group and every child by its pidfd;
        // a grading still running holds its own handle and ends (killed) on its own.
        if let Some(zygote) = self.shared.latest.lock().expect("pool lock").take() {
            zygote.kill_all();
        }
        if let Ok(mut current) = self.shared.current.try_lock() {
            current.take();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    /// The running zygote, started now if there is none. After shutdown, one for this job
    /// alone: it dies when the job lets go of it.
    async fn zygote(&self) -> Result<Arc<Zygote>, String> {
        let mut current = self.current.lock().await;
        if let Some(zygote) = current.as_ref().filter(|z| z.is_alive()) {
            return Ok(zygote.clone());
        }
        let config = self.config.clone()?;
        let zygote = Arc::new(Zygote::start(&self.sandbox, self.script, &config, &self.args).await?);
        self.zygotes.fetch_add(1, Ordering::Relaxed);
        if self.closed.load(Ordering::SeqCst) {
            return Ok(zygote);
        }
        *current = Some(zygote.clone());
        *self.latest.lock().expect("pool lock") = Some(zygote.clone());
        Ok(zygote)
    }

    /// Forgets `zygote` if it is still the current one (a new one starts on the next turn).
    async fn discard(&self, zygote: &Arc<Zygote>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|z| Arc::ptr_eq(z, zygote)) {
            current.take();
        }
        zygote.kill_all();
    }
}

/// Keeps a zygote running: starts one, waits for it to die, starts the next. Retries slowly
/// when starting fails, so a broken Python does not spin (gradings report the problem).
async fn keep_running(shared: Arc<Shared>) {
    let mut failures = 0u32;
    loop {
        match shared.zygote().await {
            Ok(zygote) => {
                failures = 0;
                zygote.died().await;
                tracing::warn!("the grading sandbox's fork server stopped; starting a new one");
            }
            Err(problem) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%problem, "cannot keep the grading sandbox's fork server running");
                }
                tokio::time::sleep(Duration::from_secs(failures.min(30) as u64)).await;
            }
        }
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
    }
}
