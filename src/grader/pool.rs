//! Sandboxed interpreters started ahead of time. Each has confined itself, started Python and
//! loaded the harness, and waits for one job on stdin; it grades exactly one submission and is
//! discarded, and a replacement starts in the background. Start-up thus leaves the latency of
//! a grading without any process serving two submissions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::sandbox::{Ending, RunOutput, Sandbox, Started};

/// What the harness prints once it is ready for its job.
const READY: &[u8] = b"ready";

pub struct Pool {
    shared: Arc<Shared>,
    filler: Option<JoinHandle<()>>,
}

struct Shared {
    sandbox: Sandbox,
    script: &'static str,
    args: Vec<String>,
    /// Interpreters kept waiting; 0 starts one per grading, on demand.
    size: usize,
    idle: Mutex<VecDeque<Started>>,
    /// Signalled when the pool may be short: a grading that took an interpreter is over, or a
    /// dead one was thrown away.
    wanted: Notify,
    closed: AtomicBool,
}

impl Pool {
    /// Starts keeping `size` interpreters running `script args…` ready (needs a Tokio runtime).
    pub fn new(sandbox: Sandbox, script: &'static str, args: Vec<String>, size: usize) -> Pool {
        let shared = Arc::new(Shared {
            sandbox,
            script,
            args,
            size,
            idle: Mutex::new(VecDeque::new()),
            wanted: Notify::new(),
            closed: AtomicBool::new(false),
        });
        let filler = (size > 0).then(|| tokio::spawn(keep_filled(shared.clone())));
        Pool { shared, filler }
    }

    /// Runs one job in an interpreter of its own: a waiting one if there is one, else one
    /// started now. The wall-clock limit counts from the hand-over either way.
    pub async fn run(&self, input: &[u8]) -> Result<RunOutput, String> {
        let (process, waited) = match self.take_idle() {
            Some(process) => (process, true),
            None => (self.shared.start().await?, false),
        };
        // The replacement starts once this grading is over (or abandoned), not while it runs:
        // on 2 cores a start-up beside the grading made it about 1.6 times slower.
        let _replace = ReplaceWhenDone(&self.shared.wanted);
        let output = process.run(input).await.map_err(|e| format!("cannot start the sandbox: {e}"))?;
        // The harness reports on the rules before any submitted code runs: silence means the
        // interpreter died while it waited (or during the hand-over), not the submission's doing.
        // With namespaces, Python outlives a killed launcher by a moment and may have started
        // on its job: a SIGKILL before the CPU limit could have been reached also came from
        // outside (with room for the CPU its start-up used, or a submission that spins into
        // the limit would be graded twice).
        let killed_early = output.ending == Ending::Signaled(libc::SIGKILL)
            && !super::cpu_limit_reachable(output.elapsed, self.shared.sandbox.limits.cpu_seconds);
        if waited && ((output.stdout.is_empty() && output.ending != Ending::WallClock) || killed_early) {
            tracing::warn!(ending = ?output.ending, "a waiting sandboxed interpreter had died; using a new one");
            let process = self.shared.start().await?;
            return process.run(input).await.map_err(|e| format!("cannot start the sandbox: {e}"));
        }
        Ok(output)
    }

    /// A waiting interpreter that is still alive, if any.
    fn take_idle(&self) -> Option<Started> {
        loop {
            let mut process = self.shared.idle.lock().expect("pool lock").pop_front()?;
            if !process.has_exited() {
                return Some(process);
            }
            self.shared.wanted.notify_one();
            tracing::warn!("a waiting sandboxed interpreter had died; replacing it");
        }
    }

    /// Process ids of the interpreters waiting now.
    pub fn idle_pids(&self) -> Vec<u32> {
        self.shared.idle.lock().expect("pool lock").iter().filter_map(Started::pid).collect()
    }

    /// Stops starting interpreters and kills the waiting ones. Gradings still running finish;
    /// later ones start their own interpreter.
    pub fn shutdown(&self) {
        if let Some(filler) = &self.filler {
            filler.abort();
        }
        let idle = {
            let mut idle = self.shared.idle.lock().expect("pool lock");
            self.shared.closed.store(true, Ordering::SeqCst);
            std::mem::take(&mut *idle)
        };
        // Dropping each kills its process group and deletes its working directory.
        drop(idle);
    }
}

struct ReplaceWhenDone<'a>(&'a Notify);

impl Drop for ReplaceWhenDone<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    /// Starts an interpreter and waits until the harness is ready for its job.
    async fn start(&self) -> Result<Started, String> {
        let mut process =
            self.sandbox.start_python(self.script, &self.args).map_err(|e| format!("cannot start the sandbox: {e}"))?;
        // Start-up is not the submission's time, but it must not hang a grading forever.
        process.wait_for_line(READY, self.sandbox.limits.wall).await?;
        Ok(process)
    }
}

/// Keeps `size` interpreters waiting, starting the missing ones side by side: after a burst,
/// one at a time could not keep up with gradings that take less than a start-up.
async fn keep_filled(shared: Arc<Shared>) {
    let mut starting = tokio::task::JoinSet::new();
    let mut failures = 0u32;
    loop {
        let missing = shared.size.saturating_sub(shared.idle.lock().expect("pool lock").len() + starting.len());
        for _ in 0..missing {
            let shared = shared.clone();
            starting.spawn(async move { shared.start().await });
        }
        // Dropping this task (shutdown) aborts the start-ups in `starting`; each kills its process.
        let started = tokio::select! {
            _ = shared.wanted.notified() => continue,
            Some(started) = starting.join_next() => started,
        };
        match started {
            Ok(Ok(process)) => {
                failures = 0;
                let mut idle = shared.idle.lock().expect("pool lock");
                // Checked under the lock that `shutdown` drains with: nothing is added after it.
                if shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                idle.push_back(process);
            }
            Ok(Err(problem)) => {
                // Gradings still start their own interpreter (and report the problem); retry
                // slowly so a broken Python does not spin.
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%problem, "cannot keep a sandboxed interpreter ready");
                }
                tokio::time::sleep(Duration::from_secs(failures.min(30) as u64)).await;
            }
            Err(_) => {} // aborted or panicked: started again on the next turn
        }
    }
}
