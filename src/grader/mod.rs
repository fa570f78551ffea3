//! Grading: rules check, validation gate and checks, all run by `harness.py` inside the
//! sandbox; points assigned here from what it observed. The server and `moa-workshop grade`
//! both go through [`Grader::grade`].

pub mod challenge;
pub mod check;
pub mod expr;
pub mod pool;
pub mod pyvalue;
pub mod report;
pub mod sandbox;
pub mod scoring;
pub mod zygote;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::Semaphore;

use challenge::{Call, CallInput, Step};
pub use challenge::{Challenge, Challenges};
use pool::Pool;
use pyvalue::PyValue;
use report::caps;
pub use report::{GradeReport, GradeStatus};
use sandbox::{Ending, Interpreter, Layers, Limits, Sandbox};
use scoring::{CallView, Observations, Observed};

/// The program that runs in the sandbox (`harness.py`): it reports observations, never points.
pub const HARNESS: &str = include_str!("harness.py");

/// How grading is set up; every field has a sensible default.
#[derive(Debug, Clone)]
pub struct GraderSettings {
    /// The Python interpreter to run (a name on PATH or a path).
    pub python: String,
    /// The `moa-workshop` binary that confines and starts Python (`sandbox-exec`).
    pub launcher: PathBuf,
    pub limits: Limits,
    /// Per-call limit inside the harness; the wall-clock limit still bounds the whole run.
    pub call_timeout: Duration,
    pub module_timeout: Duration,
    /// Gradings that run at once, and how many more may wait for a turn.
    pub concurrency: usize,
    pub queue: usize,
    /// Submissions longer than this are rejected unread.
    pub max_code_bytes: usize,
    /// Above 0, the fork server starts with the grader and is replaced in the background when
    /// it dies; 0 starts it with the first grading (what a one-off `grade` wants). Every
    /// grading runs in a child of its own either way.
    pub prewarm: usize,
}

impl GraderSettings {
    pub fn new(launcher: PathBuf) -> GraderSettings {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        GraderSettings {
            python: "python3".into(),
            launcher,
            limits: Limits::default(),
            call_timeout: Duration::from_secs(2),
            module_timeout: Duration::from_secs(3),
            concurrency: cpus,
            queue: cpus * 16,
            max_code_bytes: 100_000,
            prewarm: cpus,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GradeError {
    #[error("the grader is busy; retry in {retry_after_s} s")]
    Busy { retry_after_s: u64 },
    /// Our fault, not the submission's: the sandbox or the interpreter misbehaved.
    #[error("grading failed: {0}")]
    Internal(String),
}

pub struct Grader {
    settings: GraderSettings,
    interpreter: Interpreter,
    pool: Pool,
    layers: Layers,
    challenges: Arc<Challenges>,
    /// What the reference solution did on each fixed-input challenge's calls, by challenge id
    /// (computed once at start; challenges with generated inputs run it per grading).
    expected: HashMap<String, Arc<Vec<Observed>>>,
    permits: Semaphore,
    waiting: AtomicUsize,
    /// Moving average of a grading's duration, for Retry-After.
    average_ms: AtomicU64,
}

/// The calls of one grading, in job order: the challenge's, with generated ones as the
/// reference drew them for this grading (`None` until drawn).
struct Plan<'a> {
    challenge: &'a Challenge,
    drawn: Vec<Option<(Call, String)>>,
}

impl<'a> Plan<'a> {
    fn new(challenge: &'a Challenge) -> Plan<'a> {
        Plan { challenge, drawn: vec![None; challenge.calls.len()] }
    }

    /// Takes in what the generator drew, by call id; an error when a call is left undrawn.
    fn draw(&mut self, generated: Vec<(String, Call)>) -> Result<(), GradeError> {
        for (id, call) in generated {
            if let Some(i) = self.challenge.calls.iter().position(|c| c.id == id) {
                let job = call.job_json(&id, self.challenge.calls[i].watch);
                self.drawn[i] = Some((call, job));
            }
        }
        let undrawn = self
            .challenge
            .calls
            .iter()
            .zip(&self.drawn)
            .any(|(c, d)| matches!(c.input, CallInput::Generated(_)) && d.is_none());
        if undrawn {
            return Err(GradeError::Internal("the generator did not make every call".into()));
        }
        Ok(())
    }

    fn call(&self, i: usize) -> Option<&Call> {
        match (&self.challenge.calls[i].input, &self.drawn[i]) {
            (_, Some((call, _))) | (CallInput::Fixed { call, .. }, None) => Some(call),
            (CallInput::Generated(_), None) => None,
        }
    }

    /// The job's list of calls for one phase (a range of call indexes), as JSON text.
    fn job_calls(&self, range: std::ops::Range<usize>) -> String {
        let mut out = String::from("[");
        for i in range {
            if out.len() > 1 {
                out.push(',');
            }
            let call = &self.challenge.calls[i];
            match (&call.input, &self.drawn[i]) {
                (_, Some((_, job))) | (CallInput::Fixed { job, .. }, None) => out.push_str(job),
                (CallInput::Generated(function), None) => {
                    out.push_str(&json!({"id": call.id, "watch": call.watch, "generate": function}).to_string())
                }
            }
        }
        out.push(']');
        out
    }
}

/// What a sandboxed run of some code produced.
enum RunOutcome {
    /// A verdict before any scoring: rejected, crashed, cut short before the checks...
    Verdict(GradeReport),
    Observed {
        /// Calls drawn by the generator (a reference run with generated inputs), by call id.
        generated: Vec<(String, Call)>,
        /// One per call, validation first, in job order.
        outcomes: Vec<Observed>,
        /// Why the run stopped before it finished, when it did (missing outcomes timed out).
        cut_short: Option<String>,
    },
}

impl Grader {
    /// Finds the interpreter, checks which sandbox layers the kernel offers, and prepares every
    /// challenge: its reference solution must earn the maximum, here, in the sandbox.
    pub async fn start(settings: GraderSettings, challenges: Arc<Challenges>) -> Result<Grader, String> {
        if challenges.all().is_empty() {
            return Err("no challenge to grade".into());
        }
        let interpreter = Interpreter::discover(&settings.python).await?;
        let mut sandbox = Sandbox {
            launcher: settings.launcher.clone(),
            interpreter: interpreter.clone(),
            limits: settings.limits.clone(),
        };
        let mut layers = sandbox.probe_layers().await?;
        if let (Some(uid), Some(path)) = (layers.own_uid, layers.python_unreadable.clone()) {
            let problem = format!(
                "the sandbox's own uid {uid} cannot read {path}, part of the Python interpreter {}: install \
                 Python where every user can read it, or point MOA_PYTHON at one that is (e.g. /usr/bin/python3)",
                interpreter.executable.display()
            );
            if sandbox.limits.uid_required {
                return Err(format!("{problem}; or set MOA_SANDBOX_UID=off"));
            }
            // Not asked for by name: grading keeps working, with the server's uid, and says so.
            tracing::warn!("{problem}; the sandbox keeps the server's uid");
            sandbox.limits.uid = None;
            layers = sandbox.probe_layers().await?;
            layers.own_uid_off = format!("uid {uid} cannot read {path}");
        }
        let mut preload: Vec<String> = vec!["random".into()];
        for c in challenges.all() {
            for module in c.rules.prebound.iter().chain(c.rules.imports.keys()) {
                if !preload.contains(module) {
                    preload.push(module.clone());
                }
            }
        }
        // The harness puts back the import path that `-S` leaves out.
        let pool = Pool::new(sandbox, HARNESS, interpreter.import_path.clone(), settings.prewarm, preload);
        let mut grader = Grader {
            permits: Semaphore::new(settings.concurrency.max(1)),
            waiting: AtomicUsize::new(0),
            average_ms: AtomicU64::new(100),
            challenges,
            expected: HashMap::new(),
            settings,
            interpreter,
            pool,
            layers,
        };
        let mut expected = HashMap::new();
        for challenge in grader.challenges.all() {
            if !challenge.uses_generated_inputs() {
                let plan = Plan::new(challenge);
                let reference = grader.observe(&plan, &challenge.reference, None).await;
                match reference {
                    Ok(RunOutcome::Observed { outcomes, cut_short: None, .. }) => {
                        // The reference against its own answers: the self-test of this challenge.
                        let report = scoring::score(challenge, &views(&plan, &outcomes, &outcomes));
                        reference_scored(challenge, &report)?;
                        expected.insert(challenge.id.clone(), Arc::new(outcomes));
                    }
                    Ok(RunOutcome::Verdict(report)) => {
                        return Err(format!(
                            "challenge {}: the reference solution did not run ({:?}: {})",
                            challenge.id,
                            report.status,
                            report.reason.unwrap_or_default()
                        ));
                    }
                    Ok(RunOutcome::Observed { cut_short: Some(why), .. }) => {
                        return Err(format!("challenge {}: the reference solution was cut short: {why}", challenge.id));
                    }
                    Err(e) => return Err(format!("challenge {}: {e}", challenge.id)),
                }
            }
        }
        grader.expected = expected;
        Ok(grader)
    }

    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    pub fn interpreter(&self) -> &Interpreter {
        &self.interpreter
    }

    /// The fork server's launcher pid (its process group), once it runs.
    pub fn zygote_pid(&self) -> Option<u32> {
        self.pool.zygote_pid()
    }

    /// Submissions waiting for a grading turn.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Gradings running now.
    pub fn running(&self) -> usize {
        self.settings.concurrency.max(1).saturating_sub(self.permits.available_permits())
    }

    /// Jobs handed to a fork server so far (a job run again counts twice), and servers started.
    pub fn sandbox_counts(&self) -> (u64, u64) {
        self.pool.counts()
    }

    /// Kills the fork server and its children and starts no more; for a server that is stopping.
    pub fn shutdown(&self) {
        self.pool.shutdown();
    }

    /// Every challenge this grader knows, the default first.
    pub fn challenges(&self) -> &Arc<Challenges> {
        &self.challenges
    }

    /// A challenge by id (the default one for `None`).
    pub fn challenge(&self, id: Option<&str>) -> Result<&Arc<Challenge>, String> {
        self.challenges.find(id)
    }

    /// Grades the reference solution of every challenge with generated inputs (start-up already
    /// graded the others); proves the interpreter runs inside the sandbox and that each
    /// challenge can award its maximum.
    pub async fn self_test(&self) -> Result<(), String> {
        for challenge in self.challenges.all().iter().filter(|c| c.uses_generated_inputs()) {
            let report = self.grade(challenge, &challenge.reference).await.map_err(|e| e.to_string())?;
            reference_scored(challenge, &report)?;
        }
        Ok(())
    }

    /// What the reference solution returned for the first validation call.
    pub async fn reference_outcome_of_first_call(&self, challenge: &Challenge) -> Result<PyValue, GradeError> {
        if let Some(expected) = self.expected.get(&challenge.id) {
            return Ok(expected.first().map(Observed::result).unwrap_or(PyValue::None));
        }
        match self.observe(&Plan::new(challenge), &challenge.reference, Some(1)).await? {
            RunOutcome::Observed { outcomes, .. } => {
                Ok(outcomes.first().map(Observed::result).unwrap_or(PyValue::None))
            }
            RunOutcome::Verdict(report) => Err(GradeError::Internal(report.reason.unwrap_or_default())),
        }
    }

    /// Grades `code` against `challenge`, waiting for a turn (or answering `Busy`).
    pub async fn grade(&self, challenge: &Challenge, code: &str) -> Result<GradeReport, GradeError> {
        self.grade_with_seed(challenge, code, None).await
    }

    /// Grades as [`Grader::grade`]; generated inputs come from `seed` when given (to grade a
    /// submission again exactly as before), else from a fresh one.
    pub async fn grade_with_seed(
        &self,
        challenge: &Challenge,
        code: &str,
        seed: Option<u64>,
    ) -> Result<GradeReport, GradeError> {
        if code.len() > self.settings.max_code_bytes {
            let reason = format!("The code is longer than {} bytes.", self.settings.max_code_bytes);
            return Ok(scoring::verdict(challenge, GradeStatus::Rejected, Some(reason)));
        }
        let _turn = self.wait_for_turn().await?;
        let started = std::time::Instant::now();
        let mut report = self.run(challenge, code, seed).await?.capped();
        crate::metrics::metrics().graded(report.status.as_str(), started.elapsed());
        let ms = started.elapsed().as_millis() as u64;
        report.duration_ms = ms;
        let previous = self.average_ms.load(Ordering::Relaxed);
        self.average_ms.store((previous * 7 + ms) / 8, Ordering::Relaxed);
        Ok(report)
    }

    async fn wait_for_turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, GradeError> {
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave_queue = scopeguard(|| {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        });
        if queued >= self.settings.queue && self.permits.available_permits() == 0 {
            let per_slot = self.average_ms.load(Ordering::Relaxed).max(1);
            let ahead = (queued as u64 + 1).div_ceil(self.settings.concurrency.max(1) as u64);
            crate::metrics::refused(crate::metrics::Limit::GradeQueue);
            return Err(GradeError::Busy { retry_after_s: (ahead * per_slot).div_ceil(1000).max(1) });
        }
        self.permits.acquire().await.map_err(|_| GradeError::Internal("the grader is shutting down".into()))
    }

    async fn run(&self, challenge: &Challenge, code: &str, seed: Option<u64>) -> Result<GradeReport, GradeError> {
        let mut plan = Plan::new(challenge);
        let (expected, seed) = if challenge.uses_generated_inputs() {
            // The reference draws this grading's inputs (in a run of its own: the submission
            // never shares an interpreter with it) and says what it returns for them.
            let seed = seed.unwrap_or_else(rand::random);
            let reference = self.observe(&plan, &challenge.reference, Some(seed)).await?;
            let RunOutcome::Observed { generated, outcomes, cut_short: None } = reference else {
                return Err(GradeError::Internal(format!(
                    "the reference solution of {} did not run to its end on generated inputs (seed {seed})",
                    challenge.id
                )));
            };
            plan.draw(generated)?;
            (Arc::new(outcomes), Some(seed))
        } else {
            let expected = self.expected.get(&challenge.id).cloned().unwrap_or_default();
            (expected, None)
        };
        let mut report = conclude(&plan, self.observe(&plan, code, None).await?, &expected);
        report.seed = seed;
        Ok(report)
    }

    /// Runs `code` in a child of the fork server on the planned calls; with a seed, the
    /// generator draws the calls still to generate first.
    async fn observe(&self, plan: &Plan<'_>, code: &str, seed: Option<u64>) -> Result<RunOutcome, GradeError> {
        let challenge = plan.challenge;
        let nonce = {
            let mut bytes = [0u8; 16];
            rand::fill(&mut bytes);
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let job = self.job(plan, code, &nonce, seed);
        let output = self.pool.run(job.as_bytes()).await.map_err(GradeError::Internal)?;
        let records = parse_records(&output.stdout, &nonce);
        let ran = Run {
            ending: &output.ending,
            elapsed: output.elapsed,
            cpu: output.cpu,
            cpu_limit: self.settings.limits.cpu_seconds,
        };
        interpret(challenge, records, &ran, &output.stderr, seed.is_some())
    }

    /// The job for the harness, as JSON text: the calls' part was serialized at load.
    fn job(&self, plan: &Plan<'_>, code: &str, nonce: &str, seed: Option<u64>) -> String {
        let challenge = plan.challenge;
        let validation = challenge.validation.calls.len();
        let rest = json!({
            "nonce": nonce,
            "code": code,
            "rules": challenge.rules,
            "entry": challenge.entry,
            "generator": seed.map(|seed| json!({"code": challenge.generator.as_deref().unwrap_or(""), "seed": seed.to_string()})),
            "call_timeout_s": self.settings.call_timeout.as_secs_f64(),
            "module_timeout_s": self.settings.module_timeout.as_secs_f64(),
            "caps": {
                "name": caps::NAME_CHARS,
                "error": caps::ERROR_CHARS,
                "str": caps::STR_CHARS,
                "nodes": caps::NODES,
                "depth": caps::DEPTH,
            },
        })
        .to_string();
        // `rest` is an object: the phases go in as its first member.
        format!(
            "{{\"phases\":[{},{}],{}",
            plan.job_calls(0..validation),
            plan.job_calls(validation..challenge.calls.len()),
            &rest[1..]
        )
    }
}

/// A reference solution must earn its challenge's maximum.
fn reference_scored(challenge: &Challenge, report: &GradeReport) -> Result<(), String> {
    if report.total == challenge.max_points() {
        return Ok(());
    }
    Err(format!(
        "challenge {}: the reference solution scored {} instead of {} ({:?}: {})",
        challenge.id,
        report.total,
        challenge.max_points(),
        report.status,
        report.reason.clone().unwrap_or_default()
    ))
}

/// The report for what a run produced, scored against the reference's outcomes.
fn conclude(plan: &Plan<'_>, outcome: RunOutcome, expected: &[Observed]) -> GradeReport {
    let challenge = plan.challenge;
    match outcome {
        RunOutcome::Verdict(report) => report,
        RunOutcome::Observed { outcomes, cut_short, .. } => {
            let mut report = scoring::score(challenge, &views(plan, &outcomes, expected));
            if let Some(why) = cut_short {
                report.reason = Some(format!(
                    "{}: checks that had not finished scored 0; finished ones kept their points.",
                    capitalize(&why)
                ));
            }
            report
        }
    }
}

/// The scorer's view of a run: each call's input, outcome and the reference's outcome.
fn views(plan: &Plan<'_>, outcomes: &[Observed], expected: &[Observed]) -> Observations {
    let challenge = plan.challenge;
    let mut all = outcomes.iter().enumerate().map(|(i, observed)| {
        let args = plan.call(i).map(|call| PyValue::Tuple(call.steps[0].args.clone())).unwrap_or(PyValue::None);
        CallView { args, observed: observed.clone(), expected: expected.get(i).cloned() }
    });
    let validation = all.by_ref().take(challenge.validation.calls.len()).collect();
    let checks = challenge.checks.iter().map(|c| all.by_ref().take(c.inputs.count()).collect()).collect();
    Observations { validation, checks }
}

/// Runs `f` when dropped, so queue counts stay right when a request is cancelled.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f()
            }
        }
    }
    Guard(Some(f))
}

/// The harness's records, in order; lines without this run's nonce are ignored (a submission
/// printing to the real stdout cannot forge a record by accident).
fn parse_records(stdout: &[u8], nonce: &str) -> Vec<Result<Json, String>> {
    let prefix = format!("{nonce} ");
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|record| serde_json::from_str(record).map_err(|e| e.to_string()))
        .collect()
}

/// How the sandboxed process ended, with what is needed to tell why.
struct Run<'a> {
    ending: &'a Ending,
    /// From the hand-over to the end.
    elapsed: Duration,
    /// The process's own CPU time, where known (a zygote's child).
    cpu: Option<Duration>,
    /// The CPU limit (RLIMIT_CPU) in seconds; the kernel enforces it with SIGKILL.
    cpu_limit: u64,
}

/// Turns the harness's records and the way the process ended into observations or a verdict.
/// A report is believed only when the harness wrote its last record and the process then
/// exited with 0.
fn interpret(
    challenge: &Challenge,
    records: Vec<Result<Json, String>>,
    ran: &Run,
    stderr: &[u8],
    generates: bool,
) -> Result<RunOutcome, GradeError> {
    let ending = ran.ending;
    let verdict = |status, reason: String| Ok(RunOutcome::Verdict(scoring::verdict(challenge, status, Some(reason))));
    let malformed = || {
        verdict(
            GradeStatus::Rejected,
            "The grading process reported nonsense (forged or corrupted output), so no points were given.".into(),
        )
    };
    let mut records = records.into_iter();
    let mut next = || records.next().map(|r| r.ok());

    // Nothing the submission wrote has run before the rules record: a missing one is our fault.
    let rules = match next() {
        Some(Some(rules)) if kind(&rules) == "rules" => rules,
        Some(_) => return malformed(),
        None => {
            return Err(GradeError::Internal(format!(
                "Python did not start in the sandbox ({ending:?}): {}",
                String::from_utf8_lossy(stderr).trim()
            )));
        }
    };
    if rules["ok"] != Json::Bool(true) {
        let why = rules["reason"].as_str().unwrap_or("the code breaks a rule");
        return verdict(GradeStatus::Rejected, format!("Rejected before running: {why}."));
    }
    // The generator runs before any of the code under test: its record is the harness's.
    let mut generated = Vec::new();
    if generates {
        let record = next().flatten().filter(|r| kind(r) == "generated");
        let Some(record) = record else {
            return Err(GradeError::Internal("the challenge's generator reported nothing".into()));
        };
        if record["ok"] != Json::Bool(true) {
            return Err(GradeError::Internal(format!(
                "the challenge's generator failed: {}",
                record["reason"].as_str().unwrap_or("?")
            )));
        }
        for pair in record["calls"].as_array().into_iter().flatten() {
            let call = pair.get(1).and_then(|t| PyValue::from_tagged(t).ok()).and_then(|v| call_from_value(&v));
            match (pair.get(0).and_then(Json::as_str), call) {
                (Some(id), Some(call)) => generated.push((id.to_string(), call)),
                _ => return Err(GradeError::Internal("the generator made a call that is not plain data".into())),
            }
        }
    }
    let stopped = stop_reason(ran);
    let tampered = |record: &Json| {
        let why = record["reason"].as_str().unwrap_or("it changed the grader");
        verdict(
            GradeStatus::Rejected,
            format!("The submission tampered with the grader ({why}), so no points were given."),
        )
    };

    // Records in the order the job listed them: a module record before each phase that runs
    // the module (fresh), then that phase's calls.
    enum Expect<'a> {
        Module,
        Call(&'a str),
    }
    let (validation_calls, check_calls) = challenge.calls.split_at(challenge.validation.calls.len());
    let mut expected: Vec<Expect> = vec![Expect::Module];
    expected.extend(validation_calls.iter().map(|c| Expect::Call(&c.id)));
    if challenge.rules.fresh_module_per_phase {
        expected.push(Expect::Module);
    }
    expected.extend(check_calls.iter().map(|c| Expect::Call(&c.id)));
    let mut outcomes = Vec::with_capacity(challenge.calls.len());
    let mut seen = 0;
    let mut ended = false;
    for record in records.by_ref().map(|r| r.ok()) {
        let Some(record) = record else { return malformed() };
        if kind(&record) == "tampered" {
            return tampered(&record);
        }
        if kind(&record) == "end" {
            ended = true;
            break;
        }
        match expected.get(seen) {
            Some(Expect::Module) if kind(&record) == "module" => {
                if record["ok"] != Json::Bool(true) {
                    let status = if record["timed_out"] == Json::Bool(true) {
                        GradeStatus::TimedOut
                    } else {
                        GradeStatus::Rejected
                    };
                    let why = record["reason"].as_str().unwrap_or("the module failed");
                    return verdict(status, format!("{}.", capitalize(why)));
                }
            }
            Some(Expect::Call(id)) if kind(&record) == "call" && record["id"].as_str() == Some(id) => {
                match call_outcome(&record) {
                    Some(outcome) => outcomes.push(outcome),
                    None => return malformed(),
                }
            }
            _ => return malformed(),
        }
        seen += 1;
    }
    if ended && (seen != expected.len() || records.next().is_some()) {
        return malformed();
    }
    if seen == 0 && !ended {
        let (status, why) = stopped;
        return verdict(status, format!("While the module was loading, {why}."));
    }
    let mut cut_short = None;
    if !ended {
        let (status, why) = stopped;
        // The rubric (§5): when the time runs out, finished checks keep their points. Only the
        // limits the server enforces count as that; a record needs the nonce, which submitted
        // code cannot reach, so what was reported before the cut is the harness's own.
        if status != GradeStatus::TimedOut {
            return verdict(status, format!("Before grading finished, {why}; no points were given."));
        }
        outcomes.resize(challenge.calls.len(), Observed::timed_out());
        cut_short = Some(why);
    } else if *ending != Ending::Exited(0) {
        let (_, why) = stopped;
        return verdict(
            GradeStatus::Rejected,
            format!(
                "The Python process did not exit cleanly after the grader's last report ({why}), so no points were given."
            ),
        );
    }
    Ok(RunOutcome::Observed { generated, outcomes, cut_short })
}

/// A generated call (a list of `(name, args, kwargs)` tuples) as steps.
fn call_from_value(value: &PyValue) -> Option<Call> {
    let PyValue::List(items) = value else { return None };
    let steps = items
        .iter()
        .map(|item| match item {
            PyValue::Tuple(parts) => match parts.as_slice() {
                [PyValue::Str(name), PyValue::Tuple(args), PyValue::Dict(kwargs)] => Some(Step {
                    name: name.clone(),
                    args: args.clone(),
                    kwargs: kwargs
                        .iter()
                        .map(|(k, v)| match k {
                            PyValue::Str(k) => Some((k.clone(), v.clone())),
                            _ => None,
                        })
                        .collect::<Option<_>>()?,
                }),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<Vec<Step>>>()?;
    (!steps.is_empty()).then_some(Call { steps })
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn kind(record: &Json) -> &str {
    record["kind"].as_str().unwrap_or("")
}

fn call_outcome(record: &Json) -> Option<Observed> {
    let values = match record.get("values") {
        Some(Json::Array(values)) => values.iter().map(|v| PyValue::from_tagged(v).ok()).collect::<Option<Vec<_>>>()?,
        None => Vec::new(),
        Some(_) => return None,
    };
    let args_after = match record.get("watched") {
        Some(w) => Some(PyValue::from_tagged(w).ok()?),
        None => None,
    };
    match record["outcome"].as_str()? {
        "returned" => Some(Observed { results: values, error: None, timed_out: false, args_after }),
        "raised" => Some(Observed {
            results: values,
            error: Some(caps::cut(record["error"].as_str()?, caps::NAME_CHARS + 2 + caps::ERROR_CHARS)),
            timed_out: false,
            args_after,
        }),
        "timed_out" => Some(Observed::timed_out()),
        _ => None,
    }
}

/// More CPU than an interpreter's start-up (and its wait for the job) ever uses, with room
/// for a loaded machine.
const CPU_BEFORE_HAND_OVER: Duration = Duration::from_secs(1);

/// Whether a run killed after `elapsed` (from the hand-over) can have used up `cpu_seconds` of
/// CPU: one process (no threads, no children survive) uses no more CPU than wall-clock time,
/// plus what its start-up used before the hand-over; and where its own CPU time is known
/// (`cpu`, a fork server's child, counted from its fork, from `wait4`), that reached the limit
/// less a tenth (at least 0.1 s). Either suffices: `wait4`'s figure was seen 10 ms short of
/// the limit that killed the process, and further short on a loaded machine. If neither
/// holds, the kill came from elsewhere.
pub(crate) fn cpu_limit_reachable(elapsed: Duration, cpu: Option<Duration>, cpu_seconds: u64) -> bool {
    let limit = Duration::from_secs(cpu_seconds);
    let by_cpu = cpu.is_some_and(|cpu| cpu + (limit / 10).max(Duration::from_millis(100)) >= limit);
    by_cpu || elapsed + CPU_BEFORE_HAND_OVER >= limit
}

/// Why a run that did not report "end" stopped, as a status and a clause.
fn stop_reason(ran: &Run) -> (GradeStatus, String) {
    match ran.ending {
        Ending::WallClock => (GradeStatus::TimedOut, "the time limit ran out".into()),
        // The kernel's CPU limit and a kill the submission sent itself look the same: the time
        // since the hand-over tells them apart.
        Ending::Signaled(libc::SIGXCPU) | Ending::Signaled(libc::SIGKILL)
            if !cpu_limit_reachable(ran.elapsed, ran.cpu, ran.cpu_limit) =>
        {
            (GradeStatus::Rejected, "the submission killed its own process".into())
        }
        Ending::Signaled(libc::SIGXCPU) | Ending::Signaled(libc::SIGKILL) => {
            (GradeStatus::TimedOut, "the CPU time limit ran out".into())
        }
        Ending::TooMuchOutput => (GradeStatus::Rejected, "the code printed far too much output".into()),
        Ending::TooMuchWritten => (GradeStatus::Rejected, "the code wrote too many or too large files".into()),
        Ending::Signaled(signal) => {
            (GradeStatus::Rejected, format!("the Python interpreter crashed (signal {signal})"))
        }
        Ending::Exited(code) => (GradeStatus::Rejected, format!("the Python process exited early (exit code {code})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records a run of the full-marks solution writes, as the harness writes them.
    fn honest_records(challenge: &Challenge) -> Vec<Result<Json, String>> {
        let good = json!([
            "d",
            [
                [["s", "average_engagement"], ["i", "0"]],
                [["s", "top_performers"], ["l", []]],
                [["s", "active_count"], ["i", "0"]]
            ]
        ]);
        let mut records = vec![json!({"kind": "rules", "ok": true}), json!({"kind": "module", "ok": true})];
        for v in &challenge.validation.calls {
            records.push(json!({"kind": "call", "id": v.id, "outcome": "returned", "values": [good]}));
        }
        records.push(json!({"kind": "module", "ok": true}));
        for check in &challenge.checks {
            for i in 0..check.inputs.count() {
                let id = format!("{}#{i}", check.id);
                let watched = json!(["t", [["l", []], ["s", "2024-01-01"], ["s", "2024-01-31"]]]);
                records.push(
                    json!({"kind": "call", "id": id, "outcome": "returned", "values": [good], "watched": watched}),
                );
            }
        }
        records.push(json!({"kind": "end"}));
        records.into_iter().map(Ok).collect()
    }

    fn default_challenge() -> Challenge {
        challenge::load_all(None).unwrap().into_iter().find(|c| c.id == challenge::DEFAULT_ID).unwrap()
    }

    fn judge_ran(challenge: &Challenge, records: Vec<Result<Json, String>>, ran: &Run) -> GradeReport {
        let outcome = interpret(challenge, records, ran, b"", false).unwrap();
        conclude(&Plan::new(challenge), outcome, &[]).capped()
    }

    fn judge(records: Vec<Result<Json, String>>, ending: Ending, elapsed_ms: u64) -> GradeReport {
        let ran = Run { ending: &ending, elapsed: Duration::from_millis(elapsed_ms), cpu: None, cpu_limit: 10 };
        judge_ran(&default_challenge(), records, &ran)
    }

    #[test]
    fn a_complete_report_counts_only_from_a_clean_exit() {
        let challenge = &default_challenge();
        assert!(judge(honest_records(challenge), Ending::Exited(0), 50).total > 0);
        for ending in [Ending::Exited(3), Ending::Signaled(libc::SIGKILL), Ending::WallClock] {
            let report = judge(honest_records(challenge), ending.clone(), 50);
            assert_eq!((report.total, report.status), (0, GradeStatus::Rejected), "{ending:?}");
            assert!(report.reason.unwrap().contains("did not exit cleanly"), "{ending:?}");
        }
    }

    #[test]
    fn when_the_time_runs_out_finished_checks_keep_their_points() {
        let challenge = &default_challenge();
        let complete = judge(honest_records(challenge), Ending::Exited(0), 50);
        let mut records = honest_records(challenge);
        records.truncate(10);
        let report = judge(records, Ending::WallClock, 10_000);
        assert_eq!(report.status, GradeStatus::TimedOut);
        assert!(report.total > 0 && report.total < complete.total, "{} of {}", report.total, complete.total);
        let last = report.checks.last().unwrap();
        assert_eq!((last.points, last.reason.as_str()), (0, "timed out"));
    }

    #[test]
    fn a_self_inflicted_kill_is_told_apart_from_the_cpu_limit() {
        let challenge = &default_challenge();
        let mut records = honest_records(challenge);
        records.truncate(3);
        let early = judge(records.clone(), Ending::Signaled(libc::SIGKILL), 40);
        assert_eq!(early.status, GradeStatus::Rejected);
        assert!(early.reason.unwrap().contains("killed its own process"));
        let late = judge(records, Ending::Signaled(libc::SIGKILL), 9_500);
        assert_eq!(late.status, GradeStatus::TimedOut);
        assert!(late.reason.unwrap().contains("CPU time limit"));
    }

    #[test]
    fn with_the_child_s_cpu_time_known_a_kill_is_judged_by_it() {
        let challenge = &default_challenge();
        let mut records = honest_records(challenge);
        records.truncate(3);
        let judge_cpu = |cpu_ms: u64| {
            let ending = Ending::Signaled(libc::SIGKILL);
            let ran = Run {
                ending: &ending,
                elapsed: Duration::from_millis(8_500),
                cpu: Some(Duration::from_millis(cpu_ms)),
                cpu_limit: 10,
            };
            judge_ran(challenge, records.clone(), &ran)
        };
        // 8.5 s after the hand-over (too early for the wall-clock rule to call it the limit):
        // 0.2 s of CPU means it slept, then killed itself; 9.2 s means the limit killed it.
        let slept = judge_cpu(200);
        assert_eq!(slept.status, GradeStatus::Rejected);
        assert!(slept.reason.unwrap().contains("killed its own process"));
        let spun = judge_cpu(9_200);
        assert_eq!(spun.status, GradeStatus::TimedOut);
        assert!(spun.reason.unwrap().contains("CPU time limit"));
    }

    #[test]
    fn a_tampered_record_refuses_the_run() {
        let challenge = &default_challenge();
        let mut records = honest_records(challenge);
        records.truncate(4);
        records.push(Ok(json!({"kind": "tampered", "reason": "it used gc.get_objects"})));
        let report = judge(records, Ending::Exited(0), 40);
        assert_eq!((report.total, report.status), (0, GradeStatus::Rejected));
        assert!(report.reason.unwrap().contains("tampered with the grader (it used gc.get_objects)"));
    }

    #[test]
    fn huge_names_and_errors_are_cut() {
        let challenge = &default_challenge();
        let mut records = honest_records(challenge);
        let name = "N".repeat(250_000);
        for record in records.iter_mut().skip(2).take(4) {
            let record = record.as_mut().unwrap();
            record["values"] = json!([["o", name]]);
        }
        records[7].as_mut().unwrap()["outcome"] = json!("raised");
        records[7].as_mut().unwrap()["error"] = json!(format!("{name}: {name}"));
        let report = judge(records, Ending::Exited(0), 40);
        let stored = serde_json::to_string(&report).unwrap();
        assert!(stored.len() < 20_000, "{} bytes", stored.len());
        for reason in report.validation.iter().map(|v| &v.reason).chain(report.reason.iter()) {
            assert!(reason.chars().count() <= caps::REASON_CHARS, "{reason}");
        }
    }
}
