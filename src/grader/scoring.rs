//! Points, assigned outside the sandbox from what the harness observed, by the challenge's own
//! rules: for each check, the first `[[checks.score]]` condition that holds gives its points.
//! "Raises" covers both a call that raised (the check's `raised` award) and a condition that
//! raises when evaluated with Python's semantics (its `unscorable` award).

use std::collections::BTreeMap;

use super::challenge::{Award, Challenge, Check, ValidationCall};
use super::expr::{Evaluator, Expr, Names};
use super::pyvalue::{PyResult, PyValue};
use super::report::{CategoryScore, CheckScore, GradeReport, GradeStatus, ValidationOutcome};

/// What one call of the submitted code did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The value each step returned, for the steps that finished.
    pub results: Vec<PyValue>,
    /// `"TypeError: message"` when a step raised.
    pub error: Option<String>,
    /// The call did not finish in time (or the run was stopped before it).
    pub timed_out: bool,
    /// The first step's arguments after the call, when the check looks at them.
    pub args_after: Option<PyValue>,
}

impl Observed {
    pub fn timed_out() -> Observed {
        Observed { timed_out: true, ..Observed::default() }
    }

    pub fn returned(value: PyValue) -> Observed {
        Observed { results: vec![value], ..Observed::default() }
    }

    pub fn raised(error: &str) -> Observed {
        Observed { error: Some(error.to_string()), ..Observed::default() }
    }

    /// What the call returned (its last step's value); None when it raised.
    pub fn result(&self) -> PyValue {
        if self.error.is_some() { PyValue::None } else { self.results.last().cloned().unwrap_or(PyValue::None) }
    }
}

/// One call as the scoring rules see it: its input, what the submission did, and what the
/// reference did with the same input (when it ran).
#[derive(Debug, Clone)]
pub struct CallView {
    /// The first step's arguments as given, a tuple.
    pub args: PyValue,
    pub observed: Observed,
    pub expected: Option<Observed>,
}

impl CallView {
    /// The keys `calls[i]` has; the plain names (`result`, ...) are the first call's.
    fn get(&self, name: &str) -> Option<PyValue> {
        let none_or = |v: Option<PyValue>| v.unwrap_or(PyValue::None);
        let expected = self.expected.as_ref();
        Some(match name {
            "result" => self.observed.result(),
            "results" => PyValue::List(self.observed.results.clone()),
            "error" => none_or(self.observed.error.clone().map(PyValue::Str)),
            "args" => self.args.clone(),
            "args_after" => none_or(self.observed.args_after.clone()),
            "expected" => none_or(expected.map(Observed::result)),
            "expected_results" => none_or(expected.map(|e| PyValue::List(e.results.clone()))),
            "expected_error" => none_or(expected.and_then(|e| e.error.clone()).map(PyValue::Str)),
            _ => return None,
        })
    }

    fn as_dict(&self) -> PyValue {
        PyValue::Dict(
            super::challenge::CALL_NAMES
                .iter()
                .map(|name| (PyValue::Str(name.to_string()), self.get(name).expect("a call name")))
                .collect(),
        )
    }
}

/// What a check's expressions can name.
struct CheckNames<'a> {
    calls: &'a [CallView],
    lets: &'a BTreeMap<String, Expr>,
    problem: Option<String>,
    /// `let` values and `calls`, computed once per check (the rules read them again and again).
    memo: std::cell::RefCell<BTreeMap<String, PyResult<PyValue>>>,
}

impl<'a> CheckNames<'a> {
    fn new(calls: &'a [CallView], lets: &'a BTreeMap<String, Expr>, problem: Option<String>) -> CheckNames<'a> {
        CheckNames { calls, lets, problem, memo: Default::default() }
    }
}

impl Names for CheckNames<'_> {
    fn lookup(&self, name: &str, eval: &Evaluator) -> Option<PyResult<PyValue>> {
        if let Some(known) = self.memo.borrow().get(name) {
            return Some(known.clone());
        }
        if name == "calls" {
            let calls = Ok(PyValue::List(self.calls.iter().map(CallView::as_dict).collect()));
            self.memo.borrow_mut().insert(name.to_string(), calls.clone());
            return Some(calls);
        }
        if name == super::challenge::PROBLEM_NAME
            && let Some(problem) = &self.problem
        {
            return Some(Ok(PyValue::Str(problem.clone())));
        }
        if let Some(value) = self.calls.first().and_then(|c| c.get(name)) {
            return Some(Ok(value));
        }
        let value = eval.eval(self.lets.get(name)?);
        self.memo.borrow_mut().insert(name.to_string(), value.clone());
        Some(value)
    }
}

/// Outcomes in the order the harness made the calls: validation first, then each check's.
pub struct Observations {
    pub validation: Vec<CallView>,
    pub checks: Vec<Vec<CallView>>,
}

/// Scores a run whose module loaded.
pub fn score(challenge: &Challenge, observed: &Observations) -> GradeReport {
    let validation: Vec<ValidationOutcome> = challenge
        .validation
        .calls
        .iter()
        .zip(&observed.validation)
        .map(|(call, view)| {
            let (passed, reason) = validation_call(call, view);
            ValidationOutcome { id: call.id.clone(), description: call.description.clone(), passed, reason }
        })
        .collect();
    let passing = validation.iter().filter(|v| v.passed).count();
    let validation_timed_out = observed.validation.iter().any(|v| v.observed.timed_out);
    if passing < challenge.validation.min_passing {
        let (status, reason) = if validation_timed_out {
            (GradeStatus::TimedOut, "The validation calls did not finish in time, so no points were given.".to_string())
        } else {
            (
                GradeStatus::FailedValidation,
                format!(
                    "Failed validation: only {passing} of {} basic calls worked (at least {} must), so no points were given.",
                    validation.len(),
                    challenge.validation.min_passing
                ),
            )
        };
        let mut report = verdict(challenge, status, Some(reason));
        report.validation = validation;
        return report;
    }

    let checks: Vec<CheckScore> = challenge
        .checks
        .iter()
        .zip(&observed.checks)
        .map(|(check, calls)| {
            let (points, reason) = score_check(check, calls);
            let points = points.min(check.max);
            CheckScore {
                id: check.id.clone(),
                points,
                max: check.max,
                passed: points == check.max,
                reason,
                category: check.category.clone(),
                title: check.title.clone(),
            }
        })
        .collect();
    let timed_out = checks.iter().any(|c| c.reason == TIMED_OUT);
    let status = if timed_out { GradeStatus::TimedOut } else { GradeStatus::Graded };
    let reason =
        timed_out.then(|| "Some checks did not finish in time and scored 0; the others kept their points.".to_string());
    let mut report = verdict(challenge, status, reason);
    report.total = checks.iter().map(|c| c.points).sum();
    report.grade = challenge.letter_grade(report.total).to_string();
    for category in &mut report.categories {
        category.points = checks.iter().filter(|c| c.category == category.id).map(|c| c.points).sum();
    }
    report.checks = checks;
    report.validation = validation;
    report
}

const TIMED_OUT: &str = "timed out";

/// A check's points and reason for what its calls did.
pub fn score_check(check: &Check, calls: &[CallView]) -> (u32, String) {
    if calls.iter().any(|c| c.observed.timed_out) {
        return (0, TIMED_OUT.into());
    }
    let names = CheckNames::new(calls, &check.lets, None);
    let eval = Evaluator::new(&names);
    let award = |a: &Award, eval: &Evaluator| (a.points, eval.render(&a.reason));
    if let Some(raised) = &check.raised
        && calls.iter().any(|c| c.observed.error.is_some())
    {
        // The reason's `error` is the first call's; say which call raised when it was another.
        let first_raising = calls.iter().position(|c| c.observed.error.is_some()).unwrap_or(0);
        let reordered: Vec<CallView> =
            std::iter::once(calls[first_raising].clone()).chain(calls.iter().cloned()).collect();
        let names = CheckNames::new(&reordered[..], &check.lets, None);
        return award(raised, &Evaluator::new(&names));
    }
    for rule in &check.score {
        match rule.when.as_ref().map(|w| eval.truthy(w)).unwrap_or(Ok(true)) {
            Ok(true) => return award(&rule.award, &eval),
            Ok(false) => {}
            Err(problem) => {
                let names = CheckNames::new(calls, &check.lets, Some(problem.0));
                return award(&check.unscorable, &Evaluator::new(&names));
            }
        }
    }
    (0, "no scoring rule applies".into())
}

fn validation_call(call: &ValidationCall, view: &CallView) -> (bool, String) {
    if view.observed.timed_out {
        return (false, TIMED_OUT.into());
    }
    if let Some(error) = &view.observed.error {
        return (false, format!("raised {error}"));
    }
    let lets = BTreeMap::new();
    let names = CheckNames::new(std::slice::from_ref(view), &lets, None);
    let eval = Evaluator::new(&names);
    match eval.truthy(&call.passes) {
        Ok(true) => (true, "ok".into()),
        Ok(false) => (false, eval.render(&call.failure)),
        Err(problem) => (false, format!("checking the result raised {}", problem.0)),
    }
}

/// A report with no points: the shape every non-graded outcome shares.
pub fn verdict(challenge: &Challenge, status: GradeStatus, reason: Option<String>) -> GradeReport {
    GradeReport {
        total: 0,
        max: challenge.max_points(),
        status,
        reason,
        checks: Vec::new(),
        validation: Vec::new(),
        grade: challenge.letter_grade(0).to_string(),
        categories: challenge
            .categories
            .iter()
            .map(|c| CategoryScore { id: c.id.clone(), title: c.title.clone(), points: 0, max: c.max })
            .collect(),
        challenge: challenge.id.clone(),
        challenge_hash: challenge.hash.clone(),
        seed: None,
        duration_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grader::challenge::{Challenge, Inputs};

    fn challenge() -> Challenge {
        crate::grader::challenge::load_all(None)
            .unwrap()
            .into_iter()
            .find(|c| c.id == crate::grader::challenge::DEFAULT_ID)
            .unwrap()
    }

    fn s(text: &str) -> PyValue {
        PyValue::Str(text.into())
    }

    fn i(n: i128) -> PyValue {
        PyValue::Int(n)
    }

    fn f(x: f64) -> PyValue {
        PyValue::Float(x)
    }

    fn dict(pairs: &[(&str, PyValue)]) -> PyValue {
        PyValue::Dict(pairs.iter().map(|(k, v)| (s(k), v.clone())).collect())
    }

    fn list(items: Vec<PyValue>) -> PyValue {
        PyValue::List(items)
    }

    fn ret(value: PyValue) -> Observed {
        Observed::returned(value)
    }

    fn raised() -> Observed {
        Observed::raised("TypeError: boom")
    }

    fn user_posts(p: i128) -> PyValue {
        dict(&[("posts", i(p))])
    }

    /// The calls of a check as the scorer sees them, with these outcomes.
    fn views(check: &Check, outcomes: &[Observed]) -> Vec<CallView> {
        let Inputs::Fixed(calls) = &check.inputs else { panic!("fixed inputs") };
        calls
            .iter()
            .zip(outcomes)
            .map(|(call, o)| CallView {
                args: PyValue::Tuple(call.steps[0].args.clone()),
                observed: o.clone(),
                expected: None,
            })
            .collect()
    }

    /// Points the named check gives for these outcomes.
    fn points(id: &str, outcomes: &[Observed]) -> u32 {
        let c = challenge();
        let check = c.checks.iter().find(|ch| ch.id == id).unwrap();
        score_check(check, &views(check, outcomes)).0
    }

    fn observe(c: &Challenge, validation: &[Observed], checks: &[Vec<Observed>]) -> GradeReport {
        let validation = c
            .validation
            .calls
            .iter()
            .zip(validation)
            .map(|(v, o)| CallView {
                args: PyValue::Tuple(v.call.steps[0].args.clone()),
                observed: o.clone(),
                expected: None,
            })
            .collect();
        let checks = c.checks.iter().zip(checks).map(|(ch, o)| views(ch, o)).collect();
        score(c, &Observations { validation, checks })
    }

    #[test]
    fn division_by_zero_branches() {
        let id = "handles_division_by_zero";
        assert_eq!(points(id, &[ret(dict(&[("average_engagement", i(0))]))]), 20);
        assert_eq!(points(id, &[ret(dict(&[("avg", i(0))]))]), 5);
        assert_eq!(points(id, &[ret(PyValue::None)]), 5);
        assert_eq!(points(id, &[raised()]), 0);
    }

    #[test]
    fn invalid_dates_branches() {
        let id = "handles_invalid_dates";
        assert_eq!(points(id, &[ret(dict(&[("active_count", i(0))]))]), 5);
        assert_eq!(points(id, &[ret(dict(&[("active_count", f(0.0))]))]), 5);
        assert_eq!(points(id, &[ret(dict(&[("active_count", PyValue::Bool(false))]))]), 5);
        assert_eq!(points(id, &[ret(dict(&[("active_count", i(1))]))]), 3);
        assert_eq!(points(id, &[ret(dict(&[]))]), 3, "None != 0");
        assert_eq!(points(id, &[ret(dict(&[("active_count", s("0"))]))]), 3);
        assert_eq!(points(id, &[ret(list(vec![]))]), 2, ".get on a list raises");
        assert_eq!(points(id, &[raised()]), 2);
    }

    #[test]
    fn robust_error_handling_counts_calls_that_did_not_raise() {
        let id = "robust_error_handling";
        let ok = || ret(PyValue::None);
        assert_eq!(points(id, &[ok(), ok(), ok()]), 7);
        assert_eq!(points(id, &[ok(), raised(), ok()]), 4);
        assert_eq!(points(id, &[raised(), raised(), ok()]), 2);
        assert_eq!(points(id, &[raised(), raised(), raised()]), 0);
    }

    #[test]
    fn efficient_implementation_branches() {
        let id = "efficient_implementation";
        let top =
            |posts: &[i128]| ret(dict(&[("top_performers", list(posts.iter().map(|&p| user_posts(p)).collect()))]));
        assert_eq!(points(id, &[top(&[99, 98, 97, 96, 95])]), 10);
        assert_eq!(points(id, &[top(&[95, 96, 97, 98, 99])]), 8);
        assert_eq!(points(id, &[top(&[99, 99, 97, 96, 95])]), 3, "not 5 distinct");
        assert_eq!(points(id, &[top(&[0, 1, 2, 3, 4])]), 3);
        assert_eq!(points(id, &[top(&[99, 98])]), 2);
        assert_eq!(points(id, &[ret(dict(&[]))]), 2, "missing key means []");
        assert_eq!(points(id, &[top(&[99, 98, 97, 96, 95, 94])]), 0);
        assert_eq!(points(id, &[raised()]), 0);
        // Python semantics: floats equal ints, a tuple is not a list but its items compare.
        let floats = ret(dict(&[(
            "top_performers",
            list([99.0, 98.0, 97.0, 96.0, 95.0].iter().map(|&p| dict(&[("posts", f(p))])).collect()),
        )]));
        assert_eq!(points(id, &[floats]), 10);
        let tuple = ret(dict(&[(
            "top_performers",
            PyValue::Tuple([99, 98, 97, 96, 95].iter().map(|&p| user_posts(p)).collect()),
        )]));
        assert_eq!(points(id, &[tuple]), 10);
        // len works on a str; .get on its characters raises.
        assert_eq!(points(id, &[ret(dict(&[("top_performers", s("abcde"))]))]), 0);
        assert_eq!(points(id, &[ret(dict(&[("top_performers", s("ab"))]))]), 2);
        assert_eq!(points(id, &[ret(dict(&[("top_performers", i(5))]))]), 0, "len(int) raises");
        // Items without posts count as 0; unhashable posts make set() raise only when 99 is there.
        let missing = ret(dict(&[("top_performers", list(vec![dict(&[]); 5]))]));
        assert_eq!(points(id, &[missing]), 3);
        let unhashable = ret(dict(&[(
            "top_performers",
            list(vec![user_posts(99), dict(&[("posts", list(vec![]))]), user_posts(1), user_posts(2), user_posts(3)]),
        )]));
        assert_eq!(points(id, &[unhashable]), 0);
        assert_eq!(points(id, &[ret(PyValue::Opaque("Liar".into()))]), 0);
    }

    #[test]
    fn empty_users_list_branches() {
        let id = "handles_empty_users_list";
        assert_eq!(points(id, &[ret(dict(&[("active_count", i(0))]))]), 15);
        assert_eq!(points(id, &[ret(dict(&[("active_count", i(2))]))]), 5);
        assert_eq!(points(id, &[ret(list(vec![]))]), 5);
        assert_eq!(points(id, &[ret(PyValue::Opaque("Liar".into()))]), 5);
        assert_eq!(points(id, &[raised()]), 0);
    }

    #[test]
    fn missing_keys_only_needs_no_raise() {
        assert_eq!(points("handles_missing_keys", &[ret(PyValue::None)]), 15);
        assert_eq!(points("handles_missing_keys", &[raised()]), 0);
    }

    #[test]
    fn average_calculation_branches() {
        let id = "correct_average_calculation";
        let avg = |v: PyValue| ret(dict(&[("average_engagement", v)]));
        assert_eq!(points(id, &[avg(f(2.95))]), 15);
        assert_eq!(points(id, &[avg(f(2.955))]), 15);
        assert_eq!(points(id, &[avg(f(14.75))]), 0, "divided by all users");
        assert_eq!(points(id, &[avg(f(2.75))]), 5);
        assert_eq!(points(id, &[avg(f(f64::NAN))]), 5);
        assert_eq!(points(id, &[avg(i(3))]), 5);
        assert_eq!(points(id, &[ret(dict(&[]))]), 5, "missing means 0");
        assert_eq!(points(id, &[avg(s("2.95"))]), 0, "a string cannot be subtracted");
        assert_eq!(points(id, &[avg(PyValue::None)]), 0);
        assert_eq!(points(id, &[avg(PyValue::Opaque("Liar".into()))]), 0);
        assert_eq!(points(id, &[ret(list(vec![]))]), 0);
        assert_eq!(points(id, &[raised()]), 0);
    }

    #[test]
    fn sorting_direction_branches() {
        let id = "correct_sorting_direction";
        let top =
            |posts: &[i128]| ret(dict(&[("top_performers", list(posts.iter().map(|&p| user_posts(p)).collect()))]));
        assert_eq!(points(id, &[top(&[10, 5, 1])]), 10);
        assert_eq!(points(id, &[top(&[1, 5, 10])]), 0);
        assert_eq!(points(id, &[top(&[5, 10, 1])]), 5);
        assert_eq!(points(id, &[top(&[])]), 0);
        assert_eq!(points(id, &[ret(dict(&[]))]), 0);
        assert_eq!(points(id, &[ret(dict(&[("top_performers", list(vec![i(10)]))]))]), 0, "int has no .get");
        assert_eq!(points(id, &[raised()]), 0);
    }

    #[test]
    fn no_active_users_branches() {
        let id = "handles_no_active_users";
        let r = |count: PyValue, avg: PyValue| ret(dict(&[("active_count", count), ("average_engagement", avg)]));
        assert_eq!(points(id, &[r(i(0), i(0))]), 10);
        assert_eq!(points(id, &[r(i(0), f(0.0))]), 10);
        assert_eq!(points(id, &[r(i(0), PyValue::None)]), 5);
        assert_eq!(points(id, &[r(i(1), i(0))]), 5);
        assert_eq!(points(id, &[r(PyValue::Opaque("EqualsAll".into()), i(0))]), 5);
        assert_eq!(points(id, &[ret(PyValue::None)]), 0);
        assert_eq!(points(id, &[raised()]), 0);
    }

    #[test]
    fn doesnt_mutate_input_branches() {
        let id = "doesnt_mutate_input";
        let original = || {
            dict(&[
                ("last_login", s("2024-01-15")),
                ("posts", i(10)),
                ("comments", i(5)),
                ("likes", i(20)),
                ("days_active", i(10)),
            ])
        };
        let after = |users: PyValue| Observed {
            results: vec![PyValue::None],
            args_after: Some(PyValue::Tuple(vec![users, s("2024-01-01"), s("2024-01-31")])),
            ..Observed::default()
        };
        assert_eq!(points(id, &[after(list(vec![original()]))]), 8);
        let mut gained = original();
        if let PyValue::Dict(pairs) = &mut gained {
            pairs.push((s("engagement_score"), f(1.0)));
        }
        assert_eq!(points(id, &[after(list(vec![gained]))]), 0);
        let mut changed = original();
        if let PyValue::Dict(pairs) = &mut changed {
            pairs[1].1 = i(11);
        }
        assert_eq!(points(id, &[after(list(vec![changed]))]), 0);
        let mut as_float = original();
        if let PyValue::Dict(pairs) = &mut as_float {
            pairs[1].1 = f(10.0);
        }
        assert_eq!(points(id, &[after(list(vec![as_float]))]), 8, "10.0 == 10");
        assert_eq!(points(id, &[after(list(vec![]))]), 0, "users[0] raises on an emptied list");
        assert_eq!(points(id, &[raised()]), 0);
    }

    #[test]
    fn less_than_5_users_branches() {
        let id = "handles_less_than_5_users";
        let top = |v: PyValue| ret(dict(&[("top_performers", v)]));
        assert_eq!(points(id, &[top(list(vec![user_posts(1), user_posts(2)]))]), 5);
        assert_eq!(points(id, &[top(list(vec![user_posts(1)]))]), 0);
        assert_eq!(points(id, &[top(s("ab"))]), 5, "Python's len of a str");
        assert_eq!(points(id, &[top(PyValue::None)]), 0);
        assert_eq!(points(id, &[raised()]), 0);
    }

    #[test]
    fn validation_gate_needs_two_passing_calls() {
        let c = challenge();
        let good = ret(dict(&[("average_engagement", i(0)), ("top_performers", list(vec![])), ("active_count", i(0))]));
        let checks: Vec<Vec<Observed>> = c.checks.iter().map(|ch| vec![good.clone(); ch.inputs.count()]).collect();
        let report = observe(&c, &[good.clone(), raised(), raised(), raised()], &checks);
        assert_eq!((report.status, report.total), (GradeStatus::FailedValidation, 0));
        assert_eq!(report.validation.len(), 4);
        assert!(report.checks.is_empty());
        let report = observe(&c, &[good.clone(), raised(), raised(), good.clone()], &checks);
        assert_eq!(report.status, GradeStatus::Graded);
        assert!(report.total > 0);
        // V2 also needs active_count == 0.
        let nonzero =
            ret(dict(&[("average_engagement", i(0)), ("top_performers", list(vec![])), ("active_count", i(1))]));
        let report = observe(&c, &[nonzero.clone(), nonzero, raised(), raised()], &checks);
        assert_eq!(report.status, GradeStatus::FailedValidation);
        assert!(!report.validation[1].passed);
        // Timed-out validation is reported as a timeout, not a failure of the code.
        let report =
            observe(&c, &[good.clone(), Observed::timed_out(), Observed::timed_out(), Observed::timed_out()], &checks);
        assert_eq!((report.status, report.total), (GradeStatus::TimedOut, 0));
    }

    #[test]
    fn timed_out_checks_score_zero_and_others_keep_points() {
        let c = challenge();
        let good = ret(dict(&[("average_engagement", i(0)), ("top_performers", list(vec![])), ("active_count", i(0))]));
        let mut checks: Vec<Vec<Observed>> = c.checks.iter().map(|ch| vec![good.clone(); ch.inputs.count()]).collect();
        let missing = c.checks.iter().position(|ch| ch.id == "handles_missing_keys").unwrap();
        checks[missing] = vec![Observed::timed_out()];
        let report = observe(&c, &vec![good; 4], &checks);
        assert_eq!(report.status, GradeStatus::TimedOut);
        let check = report.checks.iter().find(|ch| ch.id == "handles_missing_keys").unwrap();
        assert_eq!((check.points, check.reason.as_str()), (0, "timed out"));
        assert!(report.checks.iter().find(|ch| ch.id == "handles_division_by_zero").unwrap().points == 20);
        assert_eq!(report.total, report.categories.iter().map(|c| c.points).sum::<u32>());
    }
}
