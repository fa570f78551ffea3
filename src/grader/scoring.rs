//! Points, assigned outside the sandbox from what the harness observed.
//!
//! Each rubric branch of `challenge-rubric.md` is one arm below; "raises" covers both a call
//! that raised and a condition that would raise when Python evaluates it (`?` on PyResult).

use super::challenge::{CallInput, Challenge, Check};
use super::pyvalue::{PyResult, PyValue};
use super::report::{CategoryScore, CheckScore, GradeReport, GradeStatus, ValidationOutcome, letter_grade};

/// What one call of the submitted function did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Returned {
        value: PyValue,
        watched: Option<PyValue>,
    },
    Raised(String),
    /// The call did not finish in time (or the run was stopped before it).
    TimedOut,
}

type Scorer = fn(&[Outcome], &Check) -> (u32, String);

const SCORERS: &[(&str, Scorer)] = &[
    ("handles_division_by_zero", division_by_zero),
    ("handles_invalid_dates", invalid_dates),
    ("robust_error_handling", robust_error_handling),
    ("efficient_implementation", efficient_implementation),
    ("handles_empty_users_list", empty_users_list),
    ("handles_missing_keys", missing_keys),
    ("correct_average_calculation", average_calculation),
    ("correct_sorting_direction", sorting_direction),
    ("handles_no_active_users", no_active_users),
    ("doesnt_mutate_input", doesnt_mutate_input),
    ("handles_less_than_5_users", less_than_5_users),
];

pub fn knows(check_id: &str) -> bool {
    SCORERS.iter().any(|(id, _)| *id == check_id)
}

/// Outcomes in the order the harness made the calls: validation first, then each check's.
pub struct Observations<'a> {
    pub validation: &'a [Outcome],
    pub checks: Vec<&'a [Outcome]>,
}

/// Scores a run whose module loaded. `cut_short` says the run stopped before every call
/// finished (missing outcomes are then `TimedOut`).
pub fn score(challenge: &Challenge, observed: &Observations) -> GradeReport {
    let validation: Vec<ValidationOutcome> = challenge
        .validation
        .calls
        .iter()
        .zip(observed.validation)
        .map(|(call, outcome)| {
            let (passed, reason) = validation_call(outcome, call.expect_active_count_zero);
            ValidationOutcome { id: call.id.clone(), description: call.description.clone(), passed, reason }
        })
        .collect();
    let passing = validation.iter().filter(|v| v.passed).count();
    let validation_timed_out = observed.validation.contains(&Outcome::TimedOut);
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
        .map(|(check, outcomes)| {
            let (points, reason) = if outcomes.contains(&Outcome::TimedOut) {
                (0, "timed out".to_string())
            } else {
                let scorer = SCORERS.iter().find(|(id, _)| *id == check.id).map(|(_, f)| *f).expect("checked at load");
                scorer(outcomes, check)
            };
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
    let timed_out = checks.iter().any(|c| c.reason == "timed out");
    let status = if timed_out { GradeStatus::TimedOut } else { GradeStatus::Graded };
    let reason =
        timed_out.then(|| "Some checks did not finish in time and scored 0; the others kept their points.".to_string());
    let mut report = verdict(challenge, status, reason);
    report.total = checks.iter().map(|c| c.points).sum();
    report.grade = letter_grade(report.total, report.max).to_string();
    for category in &mut report.categories {
        category.points = checks.iter().filter(|c| c.category == category.id).map(|c| c.points).sum();
    }
    report.checks = checks;
    report.validation = validation;
    report
}

/// A report with no points: the shape every non-graded outcome shares.
pub fn verdict(challenge: &Challenge, status: GradeStatus, reason: Option<String>) -> GradeReport {
    GradeReport {
        total: 0,
        max: challenge.max_points,
        status,
        reason,
        checks: Vec::new(),
        validation: Vec::new(),
        grade: letter_grade(0, challenge.max_points).to_string(),
        categories: challenge
            .categories
            .iter()
            .map(|c| CategoryScore { id: c.id.clone(), title: c.title.clone(), points: 0, max: c.max })
            .collect(),
        challenge: challenge.id.clone(),
        duration_ms: 0,
    }
}

const KEYS: [&str; 3] = ["average_engagement", "top_performers", "active_count"];

fn validation_call(outcome: &Outcome, expect_active_count_zero: bool) -> (bool, String) {
    match outcome {
        Outcome::TimedOut => (false, "timed out".into()),
        Outcome::Raised(error) => (false, format!("raised {error}")),
        Outcome::Returned { value, .. } if !value.is_dict() => {
            (false, format!("returned a {}, not a dict", value.type_name()))
        }
        Outcome::Returned { value, .. } => {
            let missing: Vec<&str> = KEYS.iter().copied().filter(|k| !value.has_key(k)).collect();
            if !missing.is_empty() {
                return (false, format!("the result lacks {}", missing.join(", ")));
            }
            if expect_active_count_zero
                && !value.get("active_count", PyValue::None).is_ok_and(|v| v.py_eq(&PyValue::Int(0)))
            {
                return (false, "active_count is not 0 for an empty list".into());
            }
            (true, "ok".into())
        }
    }
}

/// The value a single-call check returned, or the points and reason when it raised.
fn returned<'a>(outcomes: &'a [Outcome], raised_points: u32, when: &str) -> Result<&'a PyValue, (u32, String)> {
    match outcomes.first() {
        Some(Outcome::Returned { value, .. }) => Ok(value),
        Some(Outcome::Raised(error)) => Err((raised_points, format!("raised {error} {when}"))),
        _ => Err((0, "timed out".into())),
    }
}

/// Runs a condition that may raise; a raise scores `raised_points`.
fn evaluate(condition: impl FnOnce() -> PyResult<(u32, String)>, raised_points: u32) -> (u32, String) {
    condition().unwrap_or_else(|error| (raised_points, format!("checking the result raised {}", error.0)))
}

macro_rules! unwrap_or_score {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(scored) => return scored,
        }
    };
}

fn division_by_zero(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 0, "when days_active = 0"));
    if value.is_dict() && value.has_key("average_engagement") {
        (20, "handles days_active = 0".into())
    } else {
        (
            5,
            format!(
                "did not crash on days_active = 0, but returned a {} without average_engagement",
                value.type_name()
            ),
        )
    }
}

fn invalid_dates(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 2, "when start_date is after end_date"));
    evaluate(
        || {
            let count = value.get("active_count", PyValue::None)?;
            Ok(if count.py_eq(&PyValue::Int(0)) {
                (5, "no user is active when start_date is after end_date".into())
            } else {
                (
                    3,
                    format!(
                        "counted active users although start_date is after end_date (active_count = {})",
                        show(&count)
                    ),
                )
            })
        },
        2,
    )
}

fn robust_error_handling(outcomes: &[Outcome], check: &Check) -> (u32, String) {
    let failures: Vec<String> = outcomes
        .iter()
        .zip(&check.calls)
        .filter_map(|(outcome, call)| match outcome {
            Outcome::Returned { .. } => None,
            Outcome::Raised(error) => Some(format!("posts = {} raised {error}", first_posts(call))),
            Outcome::TimedOut => Some(format!("posts = {} timed out", first_posts(call))),
        })
        .collect();
    let survived = outcomes.len() - failures.len();
    let points = match survived {
        3 => 7,
        2 => 4,
        1 => 2,
        _ => 0,
    };
    if failures.is_empty() {
        (points, "survives posts = None, -5 and '10'".into())
    } else {
        (points, format!("{} of 3 bad values handled; {}", survived, failures.join("; ")))
    }
}

fn efficient_implementation(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 0, "with 100 users"));
    evaluate(
        || {
            let top = value.get("top_performers", PyValue::List(vec![]))?;
            let len = top.py_len()?;
            if len < 5 {
                return Ok((2, format!("top_performers holds {len} users out of 100, not 5")));
            }
            if len > 5 {
                return Ok((0, format!("top_performers holds {len} users, more than 5")));
            }
            let posts = top.iterate()?.iter().map(|u| u.get("posts", PyValue::Int(0))).collect::<PyResult<Vec<_>>>()?;
            let expected = PyValue::List([99, 98, 97, 96, 95].map(PyValue::Int).to_vec());
            if PyValue::List(posts.clone()).py_eq(&expected) {
                return Ok((10, "the five most engaged of 100 users, highest first".into()));
            }
            if posts.iter().any(|p| p.py_eq(&PyValue::Int(99))) && PyValue::distinct_count(&posts)? == 5 {
                return Ok((8, "the top five of 100 users, but not highest first".into()));
            }
            Ok((3, "five users, but not the five most engaged".into()))
        },
        0,
    )
}

fn empty_users_list(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 0, "on an empty user list"));
    if value.is_dict() && value.get("active_count", PyValue::None).is_ok_and(|c| c.py_eq(&PyValue::Int(0))) {
        (15, "an empty list gives active_count 0".into())
    } else if value.is_dict() {
        (5, "did not crash on an empty list, but active_count is not 0".into())
    } else {
        (5, format!("did not crash on an empty list, but returned a {}, not a dict", value.type_name()))
    }
}

fn missing_keys(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    unwrap_or_score!(returned(outcomes, 0, "when a user lacks comments, likes and days_active"));
    (15, "copes with missing keys".into())
}

fn average_calculation(outcomes: &[Outcome], check: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 0, "while averaging"));
    let (right, wrong) = check.calls.first().map(expected_averages).unwrap_or((f64::NAN, f64::NAN));
    evaluate(
        || {
            let average = value.get("average_engagement", PyValue::Int(0))?;
            if average.abs_diff(right)? < 0.01 {
                return Ok((15, format!("average over active users only ({right})")));
            }
            if average.abs_diff(wrong)? < 0.01 {
                return Ok((0, format!("divided by all users, inactive ones included ({wrong} instead of {right})")));
            }
            Ok((5, format!("average_engagement is {}, expected {right}", show(&average))))
        },
        0,
    )
}

/// The right average for a call's users, and the classic wrong one: the active users' raw
/// score divided by the number of *all* users. For the default challenge these are
/// 2.95 and 14.75 (the original grader computed them from its data; its comments said
/// 2.75 and 13.75, but the numbers it compared with were these).
fn expected_averages(call: &CallInput) -> (f64, f64) {
    let users = call.users.as_array().map(Vec::as_slice).unwrap_or_default();
    let field = |u: &serde_json::Value, key: &str| u.get(key).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let active: Vec<&serde_json::Value> = users
        .iter()
        .filter(|u| {
            let login = u.get("last_login").and_then(serde_json::Value::as_str).unwrap_or("");
            call.start_date.as_str() <= login && login <= call.end_date.as_str()
        })
        .collect();
    let raw = |u: &serde_json::Value| field(u, "posts") * 2.0 + field(u, "comments") * 1.5 + field(u, "likes") * 0.1;
    let engagement: f64 = active.iter().map(|u| raw(u) / field(u, "days_active")).sum();
    let raw_total: f64 = active.iter().map(|u| raw(u)).sum();
    (engagement / active.len() as f64, raw_total / users.len() as f64)
}

fn sorting_direction(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 0, "while ranking users"));
    evaluate(
        || {
            let top = value.get("top_performers", PyValue::List(vec![]))?;
            if top.py_len()? == 0 {
                return Ok((0, "top_performers is empty".into()));
            }
            let posts_is_10 =
                |u: PyValue| -> PyResult<bool> { Ok(u.get("posts", PyValue::None)?.py_eq(&PyValue::Int(10))) };
            if posts_is_10(top.index(0)?)? {
                return Ok((10, "top performers sorted highest first".into()));
            }
            if posts_is_10(top.index(-1)?)? {
                return Ok((0, "top performers sorted lowest first".into()));
            }
            Ok((5, "the most engaged user is neither first nor last in top_performers".into()))
        },
        0,
    )
}

fn no_active_users(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 0, "when nobody is active"));
    evaluate(
        || {
            let zero = PyValue::Int(0);
            if value.get("active_count", PyValue::None)?.py_eq(&zero)
                && value.get("average_engagement", PyValue::None)?.py_eq(&zero)
            {
                Ok((10, "no active users gives count 0 and average 0".into()))
            } else {
                Ok((5, "with no active users, active_count and average_engagement should both be 0".into()))
            }
        },
        0,
    )
}

fn doesnt_mutate_input(outcomes: &[Outcome], check: &Check) -> (u32, String) {
    unwrap_or_score!(returned(outcomes, 0, "on a single user"));
    let Some(Outcome::Returned { watched: Some(users_after), .. }) = outcomes.first() else {
        return (0, "the input could not be inspected after the call".into());
    };
    let before =
        check.calls.first().and_then(|c| c.users.get(0)).map(PyValue::from_plain_json).unwrap_or(PyValue::None);
    evaluate(
        || {
            let first = users_after.index(0)?;
            Ok(if first.contains(&PyValue::Str("engagement_score".into()))? {
                (0, "added engagement_score to the caller's user dict".into())
            } else if !first.py_eq(&before) {
                (0, "changed the caller's user dict".into())
            } else {
                (8, "leaves the input untouched".into())
            })
        },
        0,
    )
}

fn less_than_5_users(outcomes: &[Outcome], _: &Check) -> (u32, String) {
    let value = unwrap_or_score!(returned(outcomes, 0, "with two users"));
    evaluate(
        || {
            let len = value.get("top_performers", PyValue::List(vec![]))?.py_len()?;
            Ok(if len == 2 {
                (5, "both users listed when there are fewer than 5".into())
            } else {
                (0, format!("top_performers holds {len} users, expected both of the 2"))
            })
        },
        0,
    )
}

fn first_posts(call: &CallInput) -> String {
    let posts = call.users.get(0).and_then(|u| u.get("posts"));
    posts.map(PyValue::from_plain_json).map(|v| show(&v)).unwrap_or_default()
}

/// A short Python-looking rendering of a value for reasons.
fn show(value: &PyValue) -> String {
    let text = match value {
        PyValue::None => "None".to_string(),
        PyValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        PyValue::Int(n) => n.to_string(),
        PyValue::BigInt(_) => "a huge int".to_string(),
        PyValue::Float(f) => format!("{f}"),
        PyValue::Str(s) => format!("'{s}'"),
        PyValue::Surrogates(points) => {
            let text: String = points
                .iter()
                .map(|&p| char::from_u32(p).map(String::from).unwrap_or_else(|| format!("\\u{p:04x}")))
                .collect();
            format!("'{text}'")
        }
        other => format!("a {}", other.type_name()),
    };
    text.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grader::challenge::Challenge;

    fn challenge() -> Challenge {
        Challenge::find(Challenge::default_id()).unwrap().clone()
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

    fn ret(value: PyValue) -> Outcome {
        Outcome::Returned { value, watched: None }
    }

    fn raised() -> Outcome {
        Outcome::Raised("TypeError: boom".into())
    }

    fn user_posts(p: i128) -> PyValue {
        dict(&[("posts", i(p))])
    }

    /// Points the named check gives for these outcomes.
    fn points(id: &str, outcomes: &[Outcome]) -> u32 {
        let c = challenge();
        let check = c.checks.iter().find(|ch| ch.id == id).unwrap();
        let scorer = SCORERS.iter().find(|(name, _)| *name == id).unwrap().1;
        scorer(outcomes, check).0
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
    fn the_average_check_compares_with_the_originals_numbers() {
        let c = challenge();
        let check = c.checks.iter().find(|ch| ch.id == "correct_average_calculation").unwrap();
        let (right, wrong) = expected_averages(&check.calls[0]);
        assert!((right - 2.95).abs() < 1e-9 && (wrong - 14.75).abs() < 1e-9, "{right} {wrong}");
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
        let after = |users: PyValue| Outcome::Returned { value: PyValue::None, watched: Some(users) };
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
        let checks: Vec<Vec<Outcome>> = c.checks.iter().map(|ch| vec![good.clone(); ch.calls.len()]).collect();
        let observe = |validation: &[Outcome]| {
            score(&c, &Observations { validation, checks: checks.iter().map(Vec::as_slice).collect() })
        };
        let report = observe(&[good.clone(), raised(), raised(), raised()]);
        assert_eq!((report.status, report.total), (GradeStatus::FailedValidation, 0));
        assert_eq!(report.validation.len(), 4);
        assert!(report.checks.is_empty());
        let report = observe(&[good.clone(), raised(), raised(), good.clone()]);
        assert_eq!(report.status, GradeStatus::Graded);
        assert!(report.total > 0);
        // V2 also needs active_count == 0.
        let nonzero =
            ret(dict(&[("average_engagement", i(0)), ("top_performers", list(vec![])), ("active_count", i(1))]));
        let report = observe(&[nonzero.clone(), nonzero, raised(), raised()]);
        assert_eq!(report.status, GradeStatus::FailedValidation);
        assert!(!report.validation[1].passed);
        // Timed-out validation is reported as a timeout, not a failure of the code.
        let report = observe(&[good.clone(), Outcome::TimedOut, Outcome::TimedOut, Outcome::TimedOut]);
        assert_eq!((report.status, report.total), (GradeStatus::TimedOut, 0));
    }

    #[test]
    fn timed_out_checks_score_zero_and_others_keep_points() {
        let c = challenge();
        let good = ret(dict(&[("average_engagement", i(0)), ("top_performers", list(vec![])), ("active_count", i(0))]));
        let mut checks: Vec<Vec<Outcome>> = c.checks.iter().map(|ch| vec![good.clone(); ch.calls.len()]).collect();
        let missing = c.checks.iter().position(|ch| ch.id == "handles_missing_keys").unwrap();
        checks[missing] = vec![Outcome::TimedOut];
        let report = score(
            &c,
            &Observations {
                validation: &[good.clone(), good.clone(), good.clone(), good],
                checks: checks.iter().map(Vec::as_slice).collect(),
            },
        );
        assert_eq!(report.status, GradeStatus::TimedOut);
        let check = report.checks.iter().find(|ch| ch.id == "handles_missing_keys").unwrap();
        assert_eq!((check.points, check.reason.as_str()), (0, "timed out"));
        assert!(report.checks.iter().find(|ch| ch.id == "handles_division_by_zero").unwrap().points == 20);
        assert_eq!(report.total, report.categories.iter().map(|c| c.points).sum::<u32>());
    }
}
