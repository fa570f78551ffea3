//! Evaluate, compare, tune: a configuration measured over many generations of the challenge,
//! each graded, none a submission. `POST /api/evaluations`, `/api/comparisons` and
//! `/api/tuning` stream JSON events (`interfaces.md`); the challenge page's `/challenge/lab/…`
//! stream the same as HTML fragments. Every generation is admitted by fair use like any run
//! (runs at once, calls and tokens per minute), so a measurement spends what the person may.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse;
use axum::routing::post;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::evaluate::{self, Difference, Summary, Trial, tune};
use crate::grader::challenge::{Challenge, extract_code};
use crate::grader::{GradeError, Grader};
use crate::live::fair_use::Client;
use crate::llm::{RetryPolicy, Routes, chat_with_retry};
use crate::moa::{self, Config, Plan, Runner};
use crate::state::AppState;
use crate::store::{evaluations, event, participants::Participant};
use crate::web::api::grader;
use crate::web::charts;
use crate::web::events;
use crate::web::fair_use::{ClientIp, client};
use crate::web::json::JsonBody;
use crate::web::participants::Caller;
use crate::web::run_stream::{KEEP_ALIVE, PAGE_KEEP_ALIVE, admit, routes_and_payer, sse_response, user_key};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/evaluations", post(api_evaluate))
        .route("/challenge/lab/evaluate", post(|s, h, ip, c, b| evaluate(s, h, ip, c, b, true)))
        .route("/api/comparisons", post(api_compare))
        .route("/challenge/lab/compare", post(|s, h, ip, c, b| compare(s, h, ip, c, b, true)))
        .route("/api/tuning", post(api_tune))
        .route("/challenge/lab/tune", post(|s, h, ip, c, b| tuning(s, h, ip, c, b, true)))
}

/// `POST /api/evaluations`: generates and grades one configuration `runs` times (as many at once
/// as this client may run; each counts against its fair-use bounds; none is a submission).
#[utoipa::path(post, path = "/api/evaluations", tag = "challenge", request_body = EvaluateRequest,
    security(("participant_header" = []), ("participant_cookie" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "run {index, total, status, \
            score, checks: {id: points}, calls, prompt_tokens, completion_tokens, ms} per graded generation, then done \
            {runs, scores, mean, median, min, max, stdev, check_pass_rate, calls, prompt_tokens, completion_tokens, \
            max_points, stopped} or error {message}."),
        (status = 400, description = "The configuration or number of runs is not valid", body = crate::error::ErrorBody),
        (status = 401, description = "No participant token", body = crate::error::ErrorBody),
        (status = 403, description = "The organizer turned evaluation off", body = crate::error::ErrorBody)))]
async fn api_evaluate(
    state: State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    caller: Caller,
    body: JsonBody<EvaluateRequest>,
) -> Result<Response, AppError> {
    evaluate(state, headers, ip, caller, body, false).await
}

/// `POST /api/comparisons`: two configurations (or one and its main model alone) evaluated over
/// the same number of runs, interleaved, with the difference in mean scores and its 95 %
/// bootstrap interval.
#[utoipa::path(post, path = "/api/comparisons", tag = "challenge", request_body = CompareRequest,
    security(("participant_header" = []), ("participant_cookie" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "run events as for \
            /api/evaluations with side \"a\" or \"b\", then done {a: summary, b: summary, b_label, difference: \
            {mean, low, high, significant, method}, max_points, stopped} or error {message}."),
        (status = 400, description = "A configuration or the number of runs is not valid", body = crate::error::ErrorBody),
        (status = 401, description = "No participant token", body = crate::error::ErrorBody),
        (status = 403, description = "The organizer turned evaluation off", body = crate::error::ErrorBody)))]
async fn api_compare(
    state: State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    caller: Caller,
    body: JsonBody<CompareRequest>,
) -> Result<Response, AppError> {
    compare(state, headers, ip, caller, body, false).await
}

/// `POST /api/tuning`: a search from `config` within `budget.generations` generations (never
/// more): each trial changes the best configuration so far by one move and keeps it when it
/// scores higher.
#[utoipa::path(post, path = "/api/tuning", tag = "challenge", request_body = TuneRequest,
    security(("participant_header" = []), ("participant_cookie" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "trial {index, config, \
            score, best_score, reason} per generation, then done {best_config, best_score, trials, calls, curve, \
            max_points, stopped} or error {message}."),
        (status = 400, description = "The configuration or budget is not valid", body = crate::error::ErrorBody),
        (status = 401, description = "No participant token", body = crate::error::ErrorBody),
        (status = 403, description = "The organizer turned tuning off", body = crate::error::ErrorBody)))]
async fn api_tune(
    state: State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    caller: Caller,
    body: JsonBody<TuneRequest>,
) -> Result<Response, AppError> {
    tuning(state, headers, ip, caller, body, false).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"config": {"main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 2,
        "system_prompt": "Write the function. Reviews: {helper_response}",
        "layer_agents": [{"name": "bug_hunter", "model": "llama3.1-8b", "temperature": 0.0,
            "prompt": "Find the bugs. Earlier answers: {helper_response}", "max_tokens": 512}]}, "runs": 10}))]
struct EvaluateRequest {
    config: Config,
    runs: u32,
    #[serde(default)]
    challenge: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"config": {"main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 2,
        "system_prompt": "Write the function. Reviews: {helper_response}",
        "layer_agents": [{"name": "bug_hunter", "model": "llama3.1-8b", "temperature": 0.0,
            "prompt": "Find the bugs. Earlier answers: {helper_response}", "max_tokens": 512}]}, "against": null, "runs": 10}))]
struct CompareRequest {
    config: Config,
    /// The other side; none means `config`'s main model alone.
    #[serde(default)]
    against: Option<Config>,
    runs: u32,
    #[serde(default)]
    challenge: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"config": {"main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 1,
        "system_prompt": "Write the function. Reviews: {helper_response}",
        "layer_agents": [{"name": "bug_hunter", "model": "llama3.1-8b", "temperature": 0.0,
            "prompt": "Find the bugs. Earlier answers: {helper_response}", "max_tokens": 512}]}, "budget": {"generations": 10}}))]
struct TuneRequest {
    config: Config,
    budget: Budget,
    #[serde(default)]
    challenge: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Budget {
    generations: u32,
}

/// Everything one measurement needs to make and grade generations for one participant.
struct Lab {
    state: AppState,
    participant: Participant,
    client: Client,
    routes: Routes,
    event_pays: bool,
    challenge: Arc<Challenge>,
    grader: Arc<Grader>,
    /// Set when a spending bound refuses a generation: no further one starts.
    stopped: AtomicBool,
}

/// One event of a measurement's stream: its name and its data (as `interfaces.md` lists them).
type Step = (&'static str, Value);

async fn evaluate(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Caller(me): Caller,
    JsonBody(request): JsonBody<EvaluateRequest>,
    page: bool,
) -> Result<Response, AppError> {
    let (lab, challenge) = open_lab(&state, &headers, &ip, me, request.challenge.as_deref()).await?;
    let runs = lab.runs(request.runs)?;
    let prompt = request.prompt.filter(|p| !p.trim().is_empty()).unwrap_or_else(|| challenge.prompt.clone());
    let plan = lab.plan(request.config, &prompt)?;
    let title = format!("Evaluating over {runs} runs");
    Ok(stream(&state, page, "evaluation", &title, lab, move |lab, out| async move {
        let trials = lab.trials(vec![plan; runs as usize], &out, None).await;
        let summary = lab.summary(&trials);
        let stop = lab.stop_reason();
        Ok(json!({"runs": summary.runs, "scores": summary.scores, "mean": summary.mean, "median": summary.median,
            "min": summary.min, "max": summary.max, "stdev": summary.stdev, "check_pass_rate": summary.check_pass_rate,
            "calls": summary.calls, "prompt_tokens": summary.prompt_tokens, "completion_tokens": summary.completion_tokens,
            "max_points": lab.challenge.max_points(), "stopped": stop}))
    }))
}

async fn compare(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Caller(me): Caller,
    JsonBody(request): JsonBody<CompareRequest>,
    page: bool,
) -> Result<Response, AppError> {
    let (lab, challenge) = open_lab(&state, &headers, &ip, me, request.challenge.as_deref()).await?;
    let runs = lab.runs(request.runs)?;
    let a = lab.plan(request.config, &challenge.prompt)?;
    let (b, b_label) = match request.against {
        Some(config) => (lab.plan(config, &challenge.prompt)?, "the other configuration".to_string()),
        None => (a.main_alone(&state.catalog.offer()), format!("{} alone", a.config.main_model)),
    };
    let title = format!("This configuration vs {b_label}, {runs} runs each");
    Ok(stream(&state, page, "comparison", &title, lab, move |lab, out| async move {
        // Interleaved, so both sides meet the same moments of the provider.
        let plans: Vec<Plan> = (0..runs).flat_map(|_| [a.clone(), b.clone()]).collect();
        let trials = lab.trials(plans, &out, Some(["a", "b"])).await;
        let side = |which: usize| -> Vec<Trial> {
            trials.iter().enumerate().filter(|(i, _)| i % 2 == which).map(|(_, t)| t.clone()).collect()
        };
        let (sa, sb) = (lab.summary(&side(0)), lab.summary(&side(1)));
        let difference: Difference = evaluate::difference(&sa.scores, &sb.scores);
        Ok(json!({"a": sa, "b": sb, "b_label": b_label, "difference": difference,
            "max_points": lab.challenge.max_points(), "stopped": lab.stop_reason()}))
    }))
}

async fn tuning(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Caller(me): Caller,
    JsonBody(request): JsonBody<TuneRequest>,
    page: bool,
) -> Result<Response, AppError> {
    let (lab, challenge) = open_lab(&state, &headers, &ip, me, request.challenge.as_deref()).await?;
    let budget = lab.runs(request.budget.generations)?;
    let start = lab.plan(request.config, &challenge.prompt)?;
    let title = format!("Tuning within {budget} generations");
    Ok(stream(&state, page, "tuning", &title, lab, move |lab, out| async move { lab.tune(start, budget, &out).await }))
}

/// Checks that this participant may measure here now, and gathers what a measurement needs.
async fn open_lab(
    state: &AppState,
    headers: &HeaderMap,
    ip: &ClientIp,
    participant: Participant,
    challenge: Option<&str>,
) -> Result<(Lab, Arc<Challenge>), AppError> {
    if !state.settings.evaluation || event::lab_off(&state.pool).await? {
        return Err(AppError::Forbidden(
            "Evaluation and tuning are turned off for this event (a competition is on); generate and submit as usual."
                .into(),
        ));
    }
    let user_key = user_key(headers)?;
    let challenge = events::open(state, challenge).await?;
    let grader = grader(state)?.clone();
    // Every provider is routed, so that tuning may move the main model to another.
    let (routes, event_pays) = routes_and_payer(state, user_key, |_| true)?;
    let client = client(Some(&participant), headers, ip);
    let lab = Lab {
        state: state.clone(),
        participant,
        client,
        routes,
        event_pays,
        challenge: challenge.clone(),
        grader,
        stopped: AtomicBool::new(false),
    };
    Ok((lab, challenge))
}

impl Lab {
    fn runs(&self, asked: u32) -> Result<u32, AppError> {
        let max = self.state.settings.evaluation_max_runs;
        if !(1..=max).contains(&asked) {
            return Err(AppError::BadRequest(format!(
                "Ask for 1 to {max} generations (the organizer's limit), not {asked}."
            )));
        }
        Ok(asked)
    }

    fn plan(&self, config: Config, prompt: &str) -> Result<Plan, AppError> {
        moa::prepare(config, prompt, &self.state.catalog.offer()).map_err(AppError::BadRequest)
    }

    fn stop_reason(&self) -> Option<String> {
        self.stopped
            .load(Ordering::SeqCst)
            .then(|| "A spending bound stopped it early; the runs so far are counted.".into())
    }

    fn summary(&self, trials: &[Trial]) -> Summary {
        let full: BTreeMap<String, u32> = self.challenge.checks.iter().map(|c| (c.id.clone(), c.max)).collect();
        evaluate::summarize(trials, &full)
    }

    /// Generates and grades each plan, as many at once as this client may run, reporting a
    /// `run` event as each is graded. The results come back in the plans' order; plans not
    /// started because a spending bound refused one are left out.
    async fn trials(
        &self,
        plans: Vec<Plan>,
        out: &mpsc::UnboundedSender<Step>,
        sides: Option<[&str; 2]>,
    ) -> Vec<Trial> {
        let total = plans.len();
        let parallel = match self.state.settings.fair_use.runs_per_client {
            0 => total,
            n => n.min(total),
        };
        let mut done: Vec<(usize, Trial)> = futures_util::stream::iter(plans.into_iter().enumerate())
            .map(|(index, plan)| async move { (index, self.trial(&plan).await) })
            .buffer_unordered(parallel.max(1))
            .filter_map(|(index, trial)| async move { trial.map(|t| (index, t)) })
            .inspect(|(index, trial)| {
                let mut data = json!({"index": index, "total": total, "status": trial.status, "score": trial.score,
                    "checks": trial.checks, "calls": trial.calls, "prompt_tokens": trial.prompt_tokens,
                    "completion_tokens": trial.completion_tokens, "ms": trial.ms});
                if let Some(sides) = sides {
                    data["side"] = json!(sides[index % 2]);
                }
                let _ = out.send(("run", data));
            })
            .collect()
            .await;
        done.sort_by_key(|(index, _)| *index);
        done.into_iter().map(|(_, trial)| trial).collect()
    }

    /// One generation of `plan`, graded; `None` when fair use refused it (then no further
    /// generation of this measurement starts).
    async fn trial(&self, plan: &Plan) -> Option<Trial> {
        if self.stopped.load(Ordering::SeqCst) {
            return None;
        }
        // A bound that frees up within seconds (the person's chat run ending, the minute's calls
        // rolling over) is waited for, up to half a minute; a longer one ends the measurement.
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let admission = loop {
            match admit(&self.state, &self.client, plan, self.event_pays) {
                Ok(admission) => break admission,
                Err(AppError::Busy { retry_after_s, .. })
                    if retry_after_s <= 5 && std::time::Instant::now() < patience =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(refusal) => {
                    tracing::info!(refusal = %refusal, "a measurement stops at a fair-use bound");
                    self.stopped.store(true, Ordering::SeqCst);
                    return None;
                }
            }
        };
        let started = std::time::Instant::now();
        // The engine reports its progress on a channel; a measurement needs only the answer.
        let (events, _progress) = mpsc::unbounded_channel();
        let runner = Runner {
            provider: self.state.llm.as_ref(),
            routes: &self.routes,
            retry_window: self.state.settings.llm_retry_window,
        };
        let run = moa::run(&runner, plan, &events).await;
        let ms = started.elapsed().as_millis() as u64;
        let mut trial = Trial {
            score: 0,
            status: String::new(),
            checks: BTreeMap::new(),
            missed: Vec::new(),
            calls: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            ms,
        };
        let summary = match run {
            Ok(summary) => summary,
            Err(error) => {
                trial.status = "failed".into();
                trial.missed.push(("run".into(), error.to_string()));
                return Some(trial);
            }
        };
        admission.settle(summary.prompt_tokens + summary.completion_tokens);
        trial.calls = summary.calls;
        trial.prompt_tokens = summary.prompt_tokens;
        trial.completion_tokens = summary.completion_tokens;
        let code = extract_code(&summary.answer, &self.challenge.entry);
        if code.is_empty() {
            trial.status = "no_code".into();
            trial.missed.push(("code".into(), "no Python code was found in the main model's answer".into()));
            return Some(trial);
        }
        let report = loop {
            match self.grader.grade(&self.challenge, &code).await {
                Ok(report) => break report,
                Err(GradeError::Busy { .. }) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                Err(GradeError::Internal(cause)) => {
                    tracing::error!(%cause, "cannot grade a measured generation");
                    trial.status = "failed".into();
                    return Some(trial);
                }
            }
        };
        trial.score = report.total;
        trial.status = report.status.as_str().into();
        trial.checks = report.checks.iter().map(|c| (c.id.clone(), c.points)).collect();
        trial.missed = report.checks.iter().filter(|c| !c.passed).map(|c| (c.id.clone(), c.reason.clone())).collect();
        if let Some(reason) = report.reason.filter(|_| report.checks.is_empty()) {
            trial.missed.push((trial.status.clone(), reason));
        }
        Some(trial)
    }

    /// Hill-climbing from `start` within `budget` generations: each trial changes the best
    /// configuration so far by one move (`evaluate::tune`) and is kept when it scores higher.
    async fn tune(&self, start: Plan, budget: u32, out: &mpsc::UnboundedSender<Step>) -> Result<Value, String> {
        let offer = self.state.catalog.offer();
        let mut best = start;
        let Some(first) = self.trial(&best).await else { return Err(self.refused()) };
        let mut best_trial = first;
        let mut calls = u64::from(best_trial.calls);
        let mut curve = vec![best_trial.score];
        let trial_event = |index: usize, config: &Config, score: u32, best_score: u32, reason: &str| {
            let _ = out.send((
                "trial",
                json!({"index": index, "config": config.to_export(crate::store::now_ms()),
                "score": score, "best_score": best_score, "reason": reason}),
            ));
        };
        trial_event(0, &best.config, best_trial.score, best_trial.score, "the starting configuration");
        let mut moves = tune::MOVES.iter().cycle();
        let mut tried = 1;
        let mut fruitless = 0;
        while tried < budget && fruitless < tune::MOVES.len() * 2 {
            let step = *moves.next().expect("cycle");
            let candidate = match step {
                tune::Move::RewritePrompt if best_trial.missed.is_empty() => None,
                tune::Move::RewritePrompt => {
                    // One call to the main model, counted by fair use like a run of it alone.
                    let alone = best.main_alone(&offer);
                    let Ok(_admission) = admit(&self.state, &self.client, &alone, self.event_pays) else {
                        self.stopped.store(true, Ordering::SeqCst);
                        break;
                    };
                    let request = tune::rewrite_request(&best.config, &best_trial.missed);
                    calls += 1;
                    self.ask(&best.config, &request)
                        .await
                        .and_then(|reply| tune::with_rewritten_prompt(&best.config, &reply))
                }
                other => tune::apply(other, &best.config, &offer),
            };
            let Some((config, reason)) = candidate else {
                fruitless += 1;
                continue;
            };
            // A move that overflows a context or breaks a limit is skipped, not tried.
            let Ok(plan) = moa::prepare(config, &best.question, &offer) else {
                fruitless += 1;
                continue;
            };
            fruitless = 0;
            let Some(trial) = self.trial(&plan).await else { break };
            tried += 1;
            calls += u64::from(trial.calls);
            let score = trial.score;
            if score > best_trial.score {
                (best, best_trial) = (plan, trial);
            } else {
                // The next rewrite learns from this failure too.
                best_trial.missed = trial.missed.into_iter().chain(best_trial.missed).take(12).collect();
            }
            curve.push(best_trial.score);
            trial_event(tried as usize - 1, &best.config, score, best_trial.score, &reason);
        }
        let hash = evaluate::config_hash(&best.config);
        evaluations::record_tuned(&self.state.pool, &self.participant.id, &hash).await.map_err(|e| e.to_string())?;
        Ok(json!({"best_config": best.config.to_export(crate::store::now_ms()), "best_score": best_trial.score,
            "trials": tried, "calls": calls, "curve": curve, "max_points": self.challenge.max_points(),
            "stopped": self.stop_reason()}))
    }

    fn refused(&self) -> String {
        "A spending bound refused the first generation; wait a minute and try again.".into()
    }

    /// One plain call to `config`'s main model (the prompt rewrite), on the measurement's routes.
    async fn ask(&self, config: &Config, request: &crate::llm::ChatRequest) -> Option<String> {
        let provider = config.main_provider.as_deref().unwrap_or_default();
        let route = self.routes.get(provider)?;
        let mut text = String::new();
        let (result, _) = chat_with_retry(
            self.state.llm.as_ref(),
            &route.endpoint,
            request,
            &mut |piece| text.push_str(piece),
            RetryPolicy::within(self.state.settings.llm_retry_window),
        )
        .await;
        result.ok().map(|_| text)
    }
}

/// Runs `work` and streams its steps: JSON events for the API, fragments for the page. The
/// final `done` is stored for the participant; a client that goes away stops the work.
fn stream<F, Fut>(state: &AppState, page: bool, kind: &'static str, title: &str, lab: Lab, work: F) -> Response
where
    F: FnOnce(Arc<Lab>, mpsc::UnboundedSender<Step>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Value, String>> + Send,
{
    let (out, received) = mpsc::unbounded_channel::<Step>();
    let lab = Arc::new(lab);
    let mut shutdown = state.shutdown.clone();
    crate::telemetry::spawn_in_current_span(async move {
        let started = std::time::Instant::now();
        let task = work(lab.clone(), out.clone());
        let last = tokio::select! {
            _ = out.closed() => return,
            _ = shutdown.wait_for(|stopping| *stopping) => Err("The server is shutting down; the runs so far are lost.".into()),
            result = task => result,
        };
        let step = match last {
            Ok(mut done) => {
                done["kind"] = json!(kind);
                done["ms"] = json!(started.elapsed().as_millis() as u64);
                let stored =
                    evaluations::insert(&lab.state.pool, &lab.participant.id, &lab.challenge.id, kind, &done).await;
                if let Err(e) = stored {
                    tracing::error!(error = %e, "cannot store a measurement");
                }
                ("done", done)
            }
            Err(message) => ("error", json!({"message": message})),
        };
        let _ = out.send(step);
    });
    let mut view = page.then(|| LabView::new(kind, title));
    let opening = view.as_ref().map(|v| Ok(sse::Event::default().event("fragment").data(v.opening())));
    let frames = futures_util::stream::unfold((received, false), |(mut received, ended)| async move {
        if ended {
            return None;
        }
        let step = received.recv().await?;
        let last = matches!(step.0, "done" | "error");
        Some((step, (received, last)))
    })
    .map(move |(name, data)| {
        let frame = match &mut view {
            None => sse::Event::default().event(name).data(data.to_string()),
            Some(view) => {
                let last = matches!(name, "done" | "error");
                let html = view.update(name, &data).replace('\r', "");
                sse::Event::default().event(if last { "end" } else { "fragment" }).data(html)
            }
        };
        Ok::<_, std::convert::Infallible>(frame)
    });
    let keep_alive = if page { PAGE_KEEP_ALIVE } else { KEEP_ALIVE };
    sse_response(futures_util::stream::iter(opening).chain(frames), keep_alive)
}

/// A measurement as the challenge page shows it.
struct LabView {
    kind: &'static str,
    title: String,
    done: usize,
}

#[derive(Template)]
#[template(path = "lab/opening.html")]
struct Opening<'a> {
    title: &'a str,
    tuning: bool,
}

#[derive(Template)]
#[template(path = "lab/result.html")]
pub struct ResultView {
    /// (label, summary, histogram) per side.
    sides: Vec<(String, Summary, String)>,
    difference: Option<Difference>,
    max_points: u32,
    /// Tuning: the best score's curve (SVG), the best configuration (JSON) and trials.
    curve: Option<String>,
    best_config: Option<String>,
    best_score: Option<u32>,
    trials: Option<u64>,
    calls: u64,
    /// The whole measurement's wall time.
    seconds: f64,
    stopped: Option<String>,
}

impl LabView {
    fn new(kind: &'static str, title: &str) -> LabView {
        LabView { kind, title: title.to_string(), done: 0 }
    }

    fn opening(&self) -> String {
        let opening = Opening { title: &self.title, tuning: self.kind == "tuning" };
        format!(r#"<div id="lab" data-swap="inner">{}</div>"#, opening.render().expect("lab partials render"))
    }

    fn update(&mut self, name: &str, data: &Value) -> String {
        let number = data["index"].as_u64().unwrap_or(0) + 1;
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_string();
        let step = match name {
            "run" => {
                self.done += 1;
                let side = data["side"].as_str().map(|s| format!("{} · ", s.to_uppercase())).unwrap_or_default();
                let detail = format!("{} · {:.1} s", text("status"), data["ms"].as_f64().unwrap_or(0.0) / 1000.0);
                StepLine {
                    progress: format!("{} of {} generations graded", self.done, data["total"]),
                    line: Some((format!("{side}run {number}"), data["score"].to_string(), detail)),
                    error: false,
                }
            }
            "trial" => StepLine {
                progress: format!("trial {number} · best so far {}", data["best_score"]),
                line: Some((format!("trial {number}"), data["score"].to_string(), text("reason"))),
                error: false,
            },
            "done" => {
                let Some(view) = result_view(data) else { return String::new() };
                let result = view.render().expect("lab partials render");
                return format!(r#"<p id="lab-progress">Done.</p><div id="lab-result">{result}</div>"#);
            }
            _ => StepLine { progress: text("message"), line: None, error: true },
        };
        step.render().expect("lab partials render")
    }
}

#[derive(Template)]
#[template(path = "lab/step.html")]
struct StepLine {
    progress: String,
    /// (what, score, details)
    line: Option<(String, String, String)>,
    error: bool,
}

/// A stored measurement as the challenge page shows it on a later visit.
pub fn stored_html(stored: &evaluations::Stored) -> Result<String, AppError> {
    let Some(view) = result_view(&stored.result) else { return Ok(String::new()) };
    let title = match stored.kind.as_str() {
        "comparison" => "Your last comparison",
        "tuning" => "Your last tuning search",
        _ => "Your last evaluation",
    };
    Ok(format!(
        r#"<article class="card lab" tabindex="-1"><h3>{title} <span class="muted small">{}</span></h3>{}</article>"#,
        crate::web::results::time_html(stored.created_at),
        view.render()?
    ))
}

/// A stored or just finished measurement's `done` data as the page shows it.
pub fn result_view(data: &Value) -> Option<ResultView> {
    let max_points = data["max_points"].as_u64().unwrap_or(0) as u32;
    let kind = data["kind"].as_str().unwrap_or("evaluation").to_string();
    let side = |label: &str, value: &Value| -> Option<(String, Summary, String)> {
        let summary: Summary = serde_json::from_value(value.clone()).ok()?;
        let title = format!("Scores of {} runs: {label}", summary.runs);
        let svg = charts::histogram_svg(&summary.scores, max_points, &title);
        Some((label.to_string(), summary, svg))
    };
    let (sides, difference) = match kind.as_str() {
        "comparison" => {
            let b_label = data["b_label"].as_str().unwrap_or("B");
            let sides = vec![side("this configuration", &data["a"])?, side(b_label, &data["b"])?];
            (sides, serde_json::from_value(data["difference"].clone()).ok())
        }
        "tuning" => (Vec::new(), None),
        _ => (vec![side("this configuration", data)?], None),
    };
    let curve: Option<Vec<u32>> = serde_json::from_value(data["curve"].clone()).ok();
    Some(ResultView {
        sides,
        difference,
        max_points,
        curve: curve.map(|c| charts::curve_svg(&c, max_points)),
        best_config: data.get("best_config").map(|c| serde_json::to_string_pretty(c).unwrap_or_default()),
        best_score: data["best_score"].as_u64().map(|s| s as u32),
        trials: data["trials"].as_u64(),
        calls: data["calls"].as_u64().unwrap_or(0),
        seconds: data["ms"].as_f64().unwrap_or(0.0) / 1000.0,
        stopped: data["stopped"].as_str().map(str::to_string),
    })
}
