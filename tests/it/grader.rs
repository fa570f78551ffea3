//! The grader end to end: real Python in the real sandbox, points checked against the rubric.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::grading::{alive, cwd_of, descendants, example, grade, graded_now, grader_with, wait_until, zygote_pid};
use moa_workshop::grader::GradeStatus;
use serde_json::Value;

/// Grades every example in `dir` and compares each check with `expected.json`.
async fn check_examples(dir: &Path) {
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let grader = grader_with(|_| {}).await;
    let mut compared = 0;
    for (file, want) in expected.as_object().unwrap() {
        let code = std::fs::read_to_string(dir.join(file)).unwrap();
        let report = grade(&grader, &code).await;
        let got: serde_json::Map<String, Value> =
            report.checks.iter().map(|c| (c.id.clone(), Value::from(c.points))).collect();
        assert_eq!(
            Value::Object(got),
            want["checks"],
            "{file}: checks differ ({:?}: {:?})",
            report.status,
            report.reason
        );
        assert_eq!(Value::from(report.total), want["total"], "{file}: total differs");
        compared += 1;
    }
    assert!(compared >= 8);
}

#[tokio::test]
async fn the_workshop_examples_get_exactly_their_expected_points() {
    check_examples(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grader-examples")).await;
}

/// The shared examples may grow; when they sit beside the repository, grade them too.
#[tokio::test]
async fn the_shared_examples_get_exactly_their_expected_points_when_present() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/grader-examples");
    if shared.join("expected.json").exists() {
        check_examples(&shared).await;
    }
}

#[tokio::test]
async fn the_command_line_prints_one_json_object() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grader-examples/02_full_marks.py");
    let output = std::process::Command::new(common::launcher())
        .args(["grade", "--json"])
        .arg(&file)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is exactly one JSON object");
    assert_eq!(report["total"], 120);
    assert_eq!(report["max"], 120);
    assert_eq!(report["status"], "graded");
    assert_eq!(report["reason"], Value::Null);
    let ids: Vec<&str> = report["checks"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "handles_division_by_zero",
            "handles_invalid_dates",
            "robust_error_handling",
            "efficient_implementation",
            "handles_empty_users_list",
            "handles_missing_keys",
            "correct_average_calculation",
            "correct_sorting_direction",
            "handles_no_active_users",
            "doesnt_mutate_input",
            "handles_less_than_5_users"
        ]
    );
    for check in report["checks"].as_array().unwrap() {
        for key in ["id", "points", "max", "passed", "reason"] {
            assert!(check.get(key).is_some(), "{key} missing in {check}");
        }
    }
    assert_eq!(report["validation"].as_array().unwrap().len(), 4);

    // A rejected file still exits 0 with a verdict; a missing file does not.
    let rejected = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grader-examples/05_forbidden_import.py");
    let output =
        std::process::Command::new(common::launcher()).args(["grade", "--json"]).arg(&rejected).output().unwrap();
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!((report["status"].as_str(), report["total"].as_u64()), (Some("rejected"), Some(0)));
    assert!(report["checks"].as_array().unwrap().is_empty());
    let output =
        std::process::Command::new(common::launcher()).args(["grade", "--json", "/nonexistent.py"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read"));
}

#[tokio::test]
async fn rule_violations_are_rejected_with_a_clear_reason() {
    let grader = grader_with(|_| {}).await;
    let cases = [
        ("def calculate_user_metrics(:\n", "not valid Python"),
        ("import os\n", "import of 'os'"),
        ("from subprocess import run\n", "import from 'subprocess'"),
        ("import os.path\n", "import of 'os.path'"),
        // The rubric's §2: the whole dotted name, every name of a from-import, no `*`.
        ("import dateutil.parser\n", "import of 'dateutil.parser'"),
        ("from math import *\n", "'from math import *' is not allowed"),
        ("from math import sqrt, gcd\n", "importing 'gcd' from 'math'"),
        (
            "from dateutil.relativedelta import relativedelta\n",
            "importing 'relativedelta' from 'dateutil.relativedelta'",
        ),
        ("from . import x\n", "import from '.'"),
        ("def calculate_user_metrics(u, s, e):\n    return eval('1')\n", "calling eval()"),
        ("def calculate_user_metrics(u, s, e):\n    return open('x')\n", "calling open()"),
        ("def calculate_user_metrics(u, s, e):\n    return __import__('os')\n", "calling __import__()"),
        ("import sys\nsys.modules['os'].system('id')\n", "calling .system()"),
        (
            "def calculate_user_metrics(u, s, e):\n    return calculate_user_metrics.__globals__\n",
            "attribute __globals__",
        ),
    ];
    for (code, expected) in cases {
        let report = grade(&grader, code).await;
        assert_eq!(report.status, GradeStatus::Rejected, "{code}");
        assert_eq!(report.total, 0);
        let reason = report.reason.unwrap();
        assert!(reason.contains(expected), "{code:?}: {reason}");
    }
    // Allowed imports pass the rules (dateutil need not be installed to pass the rules).
    let report = grade(
        &grader,
        "import math, heapq, json\nfrom datetime import date\nfrom typing import List\n\
         def later():\n    from dateutil.parser import parse\n",
    )
    .await;
    assert!(report.reason.unwrap().contains("does not define calculate_user_metrics"));
}

#[tokio::test]
async fn module_problems_are_rejected_with_the_python_error() {
    let grader = grader_with(|_| {}).await;
    let report = grade(&grader, "x = 1 / 0\n").await;
    assert_eq!(report.status, GradeStatus::Rejected);
    assert!(report.reason.unwrap().contains("ZeroDivisionError"));
    let report = grade(&grader, "calculate_user_metrics = 3\n").await;
    assert!(report.reason.unwrap().contains("does not define calculate_user_metrics"));
    let report = grade(&grader, "").await;
    assert_eq!(report.status, GradeStatus::Rejected);
}

#[tokio::test]
async fn objects_that_claim_to_equal_everything_earn_nothing_for_it() {
    let grader = grader_with(|_| {}).await;
    let code = r#"
class Liar:
    def __eq__(self, other):
        return True
    def __hash__(self):
        return 0
    def __sub__(self, other):
        return 0
    def __abs__(self):
        return 0
    def __len__(self):
        return 2

def calculate_user_metrics(users, start_date, end_date):
    return {"average_engagement": Liar(), "top_performers": Liar(), "active_count": Liar()}
"#;
    let report = grade(&grader, code).await;
    let points = |id: &str| report.checks.iter().find(|c| c.id == id).unwrap().points;
    assert_eq!(report.status, GradeStatus::Graded, "{:?}", report.reason);
    assert_eq!(points("correct_average_calculation"), 0);
    assert_eq!(points("handles_less_than_5_users"), 0);
    assert_eq!(points("handles_empty_users_list"), 5);
    assert_eq!(points("handles_no_active_users"), 5);
    assert_eq!(points("handles_invalid_dates"), 3);
    // A dict subclass is not plain data either.
    let code = "class D(dict):\n    pass\n\ndef calculate_user_metrics(u, s, e):\n    return D(average_engagement=0, top_performers=[], active_count=0)\n";
    let report = grade(&grader, code).await;
    assert_eq!(report.status, GradeStatus::FailedValidation);
}

#[tokio::test]
async fn prints_do_not_disturb_grading_and_mutation_is_seen() {
    let grader = grader_with(|_| {}).await;
    let code = r#"
import sys
print("hello", file=sys.stderr)
def calculate_user_metrics(users, start_date, end_date):
    print("working on", len(users))
    for u in users:
        u["engagement_score"] = 1
    users.clear()
    return {"average_engagement": 0, "top_performers": [], "active_count": 0}
"#;
    let report = grade(&grader, code).await;
    assert_eq!(report.status, GradeStatus::Graded, "{:?}", report.reason);
    let mutation = report.checks.iter().find(|c| c.id == "doesnt_mutate_input").unwrap();
    assert_eq!(mutation.points, 0, "{}", mutation.reason);
}

#[tokio::test]
async fn a_slow_check_times_out_alone_and_the_rest_keep_their_points() {
    let grader = grader_with(|s| s.call_timeout = Duration::from_millis(500)).await;
    let code = r#"
def calculate_user_metrics(users, start_date, end_date):
    if len(users) == 100:
        while True:
            pass
    return {"average_engagement": 0, "top_performers": [], "active_count": 0}
"#;
    let report = grade(&grader, code).await;
    assert_eq!(report.status, GradeStatus::TimedOut);
    let slow = report.checks.iter().find(|c| c.id == "efficient_implementation").unwrap();
    assert_eq!((slow.points, slow.reason.as_str()), (0, "timed out"));
    assert_eq!(report.checks.iter().find(|c| c.id == "handles_missing_keys").unwrap().points, 15);
    assert!(report.total > 0);
}

#[tokio::test]
async fn oversized_code_is_rejected_unread() {
    let grader = grader_with(|s| s.max_code_bytes = 1000).await;
    let report = grade(&grader, &"#".repeat(1001)).await;
    assert_eq!(report.status, GradeStatus::Rejected);
    assert!(report.reason.unwrap().contains("longer than 1000 bytes"));
}

// The fork server: each submission gets a child of its own, on the submission's own clock.

#[tokio::test]
async fn the_time_limit_counts_from_the_hand_over_not_from_the_start() {
    let grader = grader_with(|s| {
        s.prewarm = 1;
        s.limits.wall = Duration::from_secs(3);
        s.limits.cpu_seconds = 3;
        s.module_timeout = Duration::from_secs(10);
    })
    .await;
    let zygote = zygote_pid(&grader).await;
    // Idle for longer than the whole limit: that time is nobody's.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(alive(zygote));
    let busy_second = "import datetime\nend = datetime.datetime.now() + datetime.timedelta(seconds=1)\n\
                       while datetime.datetime.now() < end:\n    pass\n\n";
    let full_marks = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grader-examples/02_full_marks.py"),
    )
    .unwrap();
    let report = grade(&grader, &format!("{busy_second}{full_marks}")).await;
    assert_eq!((report.status, report.total), (GradeStatus::Graded, 120), "{:?}", report.reason);
    assert!(report.duration_ms >= 1000, "{}", report.duration_ms);
    // Its child is gone; the zygote stays for the next.
    wait_until("the child is gone", Duration::from_secs(5), || graded_now(zygote).is_empty()).await;
    assert_eq!(grader.zygote_pid(), Some(zygote));

    // And the limit still applies from the hand-over: an endless loop stops at 3 s.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let started = std::time::Instant::now();
    let report = grade(&grader, "while True:\n    pass\n").await;
    let took = started.elapsed();
    assert_eq!(report.status, GradeStatus::TimedOut, "{:?}", report.reason);
    assert!(report.reason.unwrap().contains("time limit"));
    assert!(took >= Duration::from_millis(2900) && took < Duration::from_secs(6), "{took:?}");
}

#[tokio::test]
async fn the_fork_server_is_killed_and_its_directory_deleted_on_shutdown() {
    let grader = grader_with(|s| s.prewarm = 2).await;
    let zygote = zygote_pid(&grader).await;
    let pids: Vec<u32> = std::iter::once(zygote).chain(descendants(zygote)).collect();
    let dir = cwd_of(zygote);
    assert!(pids.iter().all(|&pid| alive(pid)) && dir.exists());
    grader.shutdown();
    assert!(grader.zygote_pid().is_none());
    wait_until("the fork server is gone", Duration::from_secs(5), || !pids.iter().any(|&p| alive(p))).await;
    wait_until("its directory is gone", Duration::from_secs(5), || !dir.exists()).await;
    // Nothing starts afterwards, and grading still works (with a fork server of its own).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(grader.zygote_pid().is_none());
    assert_eq!(grade(&grader, "x = 1\n").await.status, GradeStatus::Rejected);
    assert!(grader.zygote_pid().is_none());

    // A grader that is simply dropped leaves nothing either.
    let grader = grader_with(|s| s.prewarm = 2).await;
    let zygote = zygote_pid(&grader).await;
    let pids: Vec<u32> = std::iter::once(zygote).chain(descendants(zygote)).collect();
    drop(grader);
    wait_until("the dropped grader's fork server is gone", Duration::from_secs(5), || !pids.iter().any(|&p| alive(p)))
        .await;
}

#[tokio::test]
async fn the_module_runs_as_main_with_the_allowed_modules_bound_and_runs_again_for_the_checks() {
    let grader = grader_with(|_| {}).await;
    // The eight modules are bound already: no import needed (as in the original).
    let code = "def calculate_user_metrics(users, start_date, end_date):\n    \
                return {'average_engagement': math.floor(0.5), 'top_performers': heapq.nlargest(5, []), 'active_count': 0}\n";
    let report = grade(&grader, code).await;
    assert_eq!(report.status, GradeStatus::Graded, "{:?}", report.reason);
    // `__name__` is "__main__": an example-usage block runs at load, and its failure is a load error.
    let code =
        format!("{}\nif __name__ == '__main__':\n    raise ValueError('example usage')\n", example("02_full_marks.py"));
    let report = grade(&grader, &code).await;
    assert_eq!(report.status, GradeStatus::Rejected);
    assert!(report.reason.as_deref().unwrap_or("").contains("ValueError: example usage"), "{:?}", report.reason);
    // Executed twice: the checks start from a fresh module. The average check is the ninth
    // call of the checks (the validation gate made four before them).
    let code = "CALLS = []\ndef calculate_user_metrics(users, start_date, end_date):\n    CALLS.append(1)\n    \
                return {'average_engagement': len(CALLS), 'top_performers': [], 'active_count': 0}\n";
    let report = grade(&grader, code).await;
    let average = report.checks.iter().find(|c| c.id == "correct_average_calculation").unwrap();
    assert!(average.reason.contains("average_engagement is 9,"), "{}", average.reason);
}
