//! `moa-workshop challenge check DIR`: is this challenge folder fit for an event? Its format,
//! then, graded in the sandbox: the reference earns the maximum, the baseline and every example
//! what they declare, each check can award its maximum and 0, and what doing nothing earns.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::challenge::{self, Challenge, Challenges};
use super::expr::repr;
use super::pyvalue::PyValue;
use super::report::{GradeReport, GradeStatus};
use super::{Grader, GraderSettings};

/// Seeds a challenge with generated inputs is tried with (fixed, so a check is reproducible).
const TRIAL_SEEDS: [u64; 3] = [1, 2, 3];

/// Above this share of the maximum, a do-nothing answer earns too much.
const DO_NOTHING_WARNING_PERCENT: u32 = 25;

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub valid: bool,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
    pub max: u32,
    pub reference_total: Option<u32>,
    pub baseline_total: Option<u32>,
    pub do_nothing_total: Option<u32>,
}

impl Verdict {
    fn invalid(problems: Vec<String>) -> Verdict {
        Verdict {
            valid: false,
            problems,
            warnings: Vec::new(),
            max: 0,
            reference_total: None,
            baseline_total: None,
            do_nothing_total: None,
        }
    }

    /// What `challenge check` prints without `--json`.
    pub fn human(&self) -> String {
        let mut out = String::new();
        for problem in &self.problems {
            out += &format!("{problem}\n");
        }
        for warning in &self.warnings {
            out += &format!("warning: {warning}\n");
        }
        let show = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        out += &format!(
            "{}: maximum {}, reference {}, baseline {}, do-nothing {}\n",
            if self.valid { "valid" } else { "NOT valid" },
            self.max,
            show(self.reference_total),
            show(self.baseline_total),
            show(self.do_nothing_total)
        );
        out
    }
}

pub async fn check_folder(settings: GraderSettings, dir: &Path) -> Verdict {
    let path = dir.to_path_buf();
    let compiled = tokio::task::spawn_blocking(move || challenge::compile_folder(&path)).await;
    let challenge = match compiled {
        Ok(Ok(challenge)) => challenge,
        Ok(Err(problems)) => return Verdict::invalid(problems.iter().map(ToString::to_string).collect()),
        Err(e) => return Verdict::invalid(vec![format!("reading the folder failed: {e}")]),
    };
    let origin = dir.display().to_string();
    let grader = match Grader::start(settings, Arc::new(Challenges::from_list(vec![challenge]))).await {
        Ok(grader) => grader,
        Err(problem) => return Verdict::invalid(vec![format!("{origin}/reference.py: {problem}")]),
    };
    let challenge = grader.challenge(None).expect("the one challenge").clone();
    let mut verdict = Verdict::invalid(Vec::new());
    verdict.max = challenge.max_points();
    let seeds: Vec<Option<u64>> =
        if challenge.uses_generated_inputs() { TRIAL_SEEDS.iter().copied().map(Some).collect() } else { vec![None] };
    let mut trials: Vec<GradeReport> = Vec::new();

    for seed in &seeds {
        match grade(&grader, &challenge, &challenge.reference, *seed).await {
            Ok(report) => {
                if report.total != verdict.max {
                    verdict.problems.push(format!(
                        "{origin}/reference.py: earns {} of {}{}: {}",
                        report.total,
                        verdict.max,
                        seed_note(*seed),
                        shortfall(&report)
                    ));
                }
                verdict.reference_total = Some(verdict.reference_total.map_or(report.total, |t| t.min(report.total)));
            }
            Err(problem) => verdict.problems.push(format!("{origin}/reference.py: {problem}")),
        }
    }
    match grade(&grader, &challenge, &challenge.baseline, seeds[0]).await {
        Ok(report) => {
            if report.total != challenge.baseline_total {
                verdict.problems.push(format!(
                    "{origin}/baseline.py: earns {}, but baseline_total says {}{}",
                    report.total,
                    challenge.baseline_total,
                    seed_note(seeds[0])
                ));
            }
            verdict.baseline_total = Some(report.total);
            trials.push(report);
        }
        Err(problem) => verdict.problems.push(format!("{origin}/baseline.py: {problem}")),
    }
    for example in &challenge.examples {
        match grade(&grader, &challenge, &example.code, seeds[0]).await {
            Ok(report) => {
                let mut wrong: Vec<String> = Vec::new();
                for check in &report.checks {
                    let want = example.checks.get(&check.id).copied().unwrap_or(0);
                    if want != check.points {
                        wrong.push(format!("{} {} (expected {want}: {})", check.id, check.points, check.reason));
                    }
                }
                if report.total != example.total || !wrong.is_empty() {
                    verdict.problems.push(format!(
                        "{origin}/examples/{}: earns {} ({}), expected {}{}",
                        example.file,
                        report.total,
                        if wrong.is_empty() { report.reason.clone().unwrap_or_default() } else { wrong.join("; ") },
                        example.total,
                        seed_note(seeds[0])
                    ));
                }
                trials.push(report);
            }
            Err(problem) => verdict.problems.push(format!("{origin}/examples/{}: {problem}", example.file)),
        }
    }
    // Doing nothing: the best constant answer of a plausible shape.
    let mut best: Option<u32> = None;
    for code in do_nothing_answers(&grader, &challenge).await {
        if let Ok(report) = grade(&grader, &challenge, &code, seeds[0]).await {
            best = Some(best.map_or(report.total, |b| b.max(report.total)));
            trials.push(report);
        }
    }
    verdict.do_nothing_total = best;
    if let Some(total) = best
        && total * 100 > verdict.max * DO_NOTHING_WARNING_PERCENT
    {
        verdict.warnings.push(format!(
            "a constant answer earns {total} of {} (more than {DO_NOTHING_WARNING_PERCENT} %): the checks reward doing nothing",
            verdict.max
        ));
    }
    for check in &challenge.checks {
        let lowest = trials.iter().flat_map(|r| r.checks.iter()).filter(|c| c.id == check.id).map(|c| c.points).min();
        match lowest {
            Some(0) => {}
            Some(n) => verdict.warnings.push(format!(
                "check {} gave at least {n} to every trial submission (baseline, examples, constant answers): can it award 0?",
                check.id
            )),
            None => verdict.warnings.push(format!("check {} was never scored by a trial submission", check.id)),
        }
    }
    grader.shutdown();
    verdict.valid = verdict.problems.is_empty();
    verdict
}

async fn grade(grader: &Grader, challenge: &Challenge, code: &str, seed: Option<u64>) -> Result<GradeReport, String> {
    grader.grade_with_seed(challenge, code, seed).await.map_err(|e| e.to_string())
}

fn seed_note(seed: Option<u64>) -> String {
    seed.map(|s| format!(" (generated inputs, seed {s})")).unwrap_or_default()
}

/// Why a report is short of the maximum, briefly.
fn shortfall(report: &GradeReport) -> String {
    if report.status != GradeStatus::Graded {
        return report.reason.clone().unwrap_or_else(|| report.status.as_str().to_string());
    }
    let lost: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{} {}/{} ({})", c.id, c.points, c.max, c.reason))
        .collect();
    lost.join("; ")
}

/// Submissions that compute nothing: an entry that returns a constant (the challenge's own
/// `do_nothing`, or the reference's answer to the first validation call emptied, and the
/// obvious ones), or a class whose every method does.
async fn do_nothing_answers(grader: &Grader, challenge: &Challenge) -> Vec<String> {
    let mut constants: Vec<PyValue> =
        vec![PyValue::None, PyValue::Int(0), PyValue::Str(String::new()), PyValue::List(vec![]), PyValue::Dict(vec![])];
    if let Some(expr) = &challenge.do_nothing
        && let Ok(value) = super::expr::Evaluator::new(&()).eval(expr)
    {
        constants.push(value);
    } else if let Ok(first) = grader.reference_outcome_of_first_call(challenge).await {
        constants.push(emptied(&first));
    }
    let is_class = challenge.reference.lines().any(|l| l.starts_with(&format!("class {}", challenge.entry)));
    constants
        .iter()
        .map(|value| {
            let value = repr(value);
            if is_class {
                format!(
                    "class {}:\n    def __init__(self, *args, **kwargs):\n        pass\n\n    def __getattr__(self, name):\n        return lambda *args, **kwargs: {value}\n",
                    challenge.entry
                )
            } else {
                format!("def {}(*args, **kwargs):\n    return {value}\n", challenge.entry)
            }
        })
        .collect()
}

/// The same shape with nothing in it: numbers 0, strs and containers empty, dict keys kept.
fn emptied(value: &PyValue) -> PyValue {
    match value {
        PyValue::Bool(_) => PyValue::Bool(false),
        PyValue::Int(_) | PyValue::BigInt(_) => PyValue::Int(0),
        PyValue::Float(_) => PyValue::Float(0.0),
        PyValue::Str(_) | PyValue::Surrogates(_) => PyValue::Str(String::new()),
        PyValue::List(_) => PyValue::List(vec![]),
        PyValue::Tuple(_) => PyValue::Tuple(vec![]),
        PyValue::Dict(pairs) => PyValue::Dict(pairs.iter().map(|(k, v)| (k.clone(), emptied(v))).collect()),
        PyValue::None | PyValue::Opaque(_) => PyValue::None,
    }
}
