//! The harness against the submission it runs, in the same interpreter: real Python in the
//! real sandbox, through `Grader::grade` exactly as the server grades. Each attack below made
//! the original buggy code (honest score: 0) score 120, or bent the report, before the harness
//! kept its state out of reach.

use crate::common;

use common::grading::{example, grade, grader_with};
use moa_workshop::grader::{GradeReport, GradeStatus};

/// The original buggy code, plus a correct implementation under another name for an attack
/// to swap in.
fn buggy_with_good_spare() -> String {
    let good = example("02_full_marks.py").replace("def calculate_user_metrics(", "def _good(");
    format!("{good}\n{}", example("01_original_buggy.py"))
}

fn points(report: &GradeReport, check: &str) -> u32 {
    report.checks.iter().find(|c| c.id == check).map(|c| c.points).unwrap_or_else(|| panic!("no check {check}"))
}

fn assert_refused(name: &str, report: &GradeReport) {
    assert_eq!((report.status, report.total), (GradeStatus::Rejected, 0), "{name}: {:?}", report.reason);
    let reason = report.reason.clone().unwrap_or_default();
    assert!(reason.contains("tampered with the grader"), "{name}: {reason}");
}

#[tokio::test]
async fn replacing_the_harness_through_main_or_a_traceback_is_refused() {
    let grader = grader_with(|_| {}).await;
    let spare = buggy_with_good_spare();
    // (a) The harness's functions, replaced where `sys.modules['__main__']` shows them.
    let through_main = format!(
        r#"{spare}
import sys
_main = sys.modules["__main__"]
_real = getattr(_main, "run_call", None)
_main.run_call = lambda nonce, function, spec, limit: _real(nonce, _good, spec, limit)
"#
    );
    // (b) The same, through the globals of the frame that called the submitted function.
    let through_traceback = format!(
        r#"{spare}
_buggy = calculate_user_metrics
def calculate_user_metrics(users, start_date, end_date):
    try:
        raise ValueError
    except ValueError as error:
        frame = error.__traceback__.tb_frame.f_back
    while frame is not None:
        found = frame.f_globals
        if not getattr(found.get("run_call"), "forged", False):
            real = found.get("run_call")
            forged = lambda nonce, function, spec, limit: real(nonce, _good, spec, limit)
            forged.forged = True
            found["run_call"] = forged
        frame = frame.f_back
    return _buggy(users, start_date, end_date)
"#
    );
    for (name, code) in [("through __main__", through_main), ("through a traceback", through_traceback)] {
        assert_refused(name, &grade(&grader, &code).await);
    }
    // The honest score of the same code, for comparison.
    assert_eq!(grade(&grader, &example("01_original_buggy.py")).await.total, 0);
}

#[tokio::test]
async fn a_forged_report_from_a_frame_s_nonce_then_an_early_exit_earns_nothing() {
    let grader = grader_with(|_| {}).await;
    // (c) Reads the nonce and the job from the harness's frames, writes a complete report with
    // a correct function's answers, and exits before the harness can say anything.
    let code = format!(
        r#"{}
import sys
frame = sys._getframe()
while frame is not None and "nonce" not in frame.f_locals:
    frame = frame.f_back
if frame is not None:
    nonce, job, tools = frame.f_locals["nonce"], frame.f_locals["job"], frame.f_globals
    out = sys.__stdout__
    def write(record):
        out.write(nonce + " " + tools["_encode"](record) + "\n")
    write({{"kind": "module", "ok": True, "reason": None}})
    for spec in job["calls"]:
        a = spec["args"]
        record = {{"kind": "call", "id": spec["id"], "outcome": "returned", "value": tools["tag"](_good(a[0], a[1], a[2])), "ms": 0.1}}
        if spec.get("watch_users"):
            record["watched"] = tools["tag"](a[0])
        write(record)
    write({{"kind": "end"}})
    out.flush()
    sys.modules["os"]._exit(3)
"#,
        buggy_with_good_spare()
    );
    let report = grade(&grader, &code).await;
    assert_eq!(report.total, 0, "{:?}: {:?}", report.status, report.reason);
}

#[tokio::test]
async fn rebound_builtins_cannot_change_what_the_harness_reports() {
    let grader = grader_with(|_| {}).await;
    // (d) A float subclass with a lying repr, made the submission's `float`: the wrong average
    // 13.75 must not be reported as the right one, 2.95.
    let code = format!(
        r#"import sys
class Lying(float):
    def __repr__(self):
        return "2.95"
sys.modules["builtins"].float = Lying
{}"#,
        example("02_full_marks.py")
            .replace("average = sum(r['engagement_score'] for r in scored) / len(scored)", "average = float(13.75)")
    );
    assert!(code.contains("float(13.75)"));
    let report = grade(&grader, &code).await;
    assert_eq!(report.status, GradeStatus::Graded, "{:?}", report.reason);
    let check = report.checks.iter().find(|c| c.id == "correct_average_calculation").unwrap();
    assert_eq!(check.points, 0, "{}", check.reason);
    assert!(check.reason.contains("Lying"), "{}", check.reason);
    // Every builtin the harness could use, gone from builtins once the submission has taken
    // its own copies: the harness goes on as before.
    let code = format!(
        "{}\nimport sys\n_b = sys.modules['builtins']\n\
         sys._kept = sys.__dict__.get('_kept') or (_b.isinstance, _b.float, _b.dict, _b.len, _b.sum, _b.list, _b.str)\n\
         isinstance, float, dict, len, sum, list, str = sys._kept\n\
         for _name in ('str', 'int', 'float', 'list', 'dict', 'tuple', 'bool', 'type', 'len', 'repr', 'isinstance', 'round', 'ord', 'getattr', 'callable', 'RuntimeError', 'BaseException', 'Exception'):\n    \
         setattr(_b, _name, None)\n",
        example("02_full_marks.py")
    );
    let report = grade(&grader, &code).await;
    assert_eq!((report.status, report.total), (GradeStatus::Graded, 120), "{:?}", report.reason);
}

#[tokio::test]
async fn other_routes_into_the_harness_are_refused() {
    let grader = grader_with(|_| {}).await;
    let cases = [
        (
            "walking gc's objects",
            "import sys\nimp, boot = sys.modules['_imp'], sys.modules['_frozen_importlib']\n\
             gc = imp.create_builtin(boot.ModuleSpec('gc', None))\n\
             try:\n    gc.get_objects()\nexcept Exception:\n    pass\n",
            "gc.get_objects",
        ),
        (
            "importing gc",
            "import sys\ntry:\n    sys.modules['builtins'].__dict__['__imp' 'ort__']('gc')\nexcept Exception:\n    pass\n",
            "imported gc",
        ),
        (
            "a trace function",
            "import sys\ntry:\n    sys.settrace(lambda *a: None)\nexcept Exception:\n    pass\n",
            "sys.settrace",
        ),
        ("another audit hook", "import sys\nsys.addaudithook(lambda *a: None)\n", "sys.addaudithook"),
        ("a signal handler", "import sys\nsys.modules['_signal'].signal(10, lambda *a: None)\n", "signal handler"),
        (
            "replacing a function's code",
            "def f():\n    pass\nf.__code__ = (lambda: None).__code__\n",
            "replaced a function's code",
        ),
        (
            "importing ctypes (the fork server loaded it; the child removed it)",
            "import sys\ntry:\n    sys.modules['builtins'].__dict__['__imp' 'ort__']('ctypes')\nexcept Exception:\n    pass\n",
            "imported ctypes",
        ),
        (
            // Its classes stay reachable without an import; every audited use is refused.
            "ctypes' classes, found through object.__subclasses__()",
            "def walk(c, seen):\n    for s in type.__subclasses__(c):\n        if s not in seen:\n            \
             seen.add(s)\n            walk(s, seen)\n    return seen\n\
             found = {c.__name__: c for c in walk(object, set())}\n\
             try:\n    found['CDLL'](None).getpid()\nexcept Exception:\n    pass\n\
             try:\n    found['c_int'].from_address(id(found))\nexcept Exception:\n    pass\n",
            "it used ctypes.",
        ),
        (
            "a name in the harness's globals",
            "import sys\nsys._getframe().f_back.f_back.f_globals['run_call'] = print\n",
            "state",
        ),
    ];
    let function = "\ndef calculate_user_metrics(users, start_date, end_date):\n    \
                    return {'average_engagement': 0, 'top_performers': [], 'active_count': 0}\n";
    for (name, attack, why) in cases {
        let report = grade(&grader, &format!("{attack}{function}")).await;
        assert_refused(name, &report);
        assert!(report.reason.as_deref().unwrap_or("").contains(why), "{name}: {:?}", report.reason);
    }
}

#[tokio::test]
async fn the_harness_s_frames_below_the_submission_hold_no_secret() {
    let grader = grader_with(|_| {}).await;
    // Searches every frame below the submitted function, and the functions, defaults and
    // closures they show, for the nonce (32 hexadecimal digits): answering correctly only if
    // it finds one, it passes validation only where the harness leaks it.
    let code = r#"
import sys
def looks_like_nonce(value):
    return type(value) is str and len(value) == 32 and all(c in "0123456789abcdef" for c in value)
def search(value, seen, depth):
    if depth > 6 or id(value) in seen:
        return False
    seen.add(id(value))
    if looks_like_nonce(value):
        return True
    if type(value) is dict:
        return any(search(k, seen, depth + 1) or search(v, seen, depth + 1) for k, v in list(value.items()))
    if type(value) in (list, tuple):
        return any(search(v, seen, depth + 1) for v in value)
    if callable(value) and hasattr(value, "__code__"):
        cells = [c.cell_contents for c in (value.__closure__ or ()) if c.cell_contents is not None]
        return search(cells, seen, depth + 1) or search(value.__defaults__ or (), seen, depth + 1)
    return False
def calculate_user_metrics(users, start_date, end_date):
    frame, seen = sys._getframe(1), set()
    while frame is not None:
        if search(dict(frame.f_locals), seen, 0) or search(frame.f_globals, seen, 0):
            return {"average_engagement": 0, "top_performers": [], "active_count": 0}
        frame = frame.f_back
    raise LookupError("no nonce in reach")
"#;
    let report = grade(&grader, code).await;
    assert_eq!(report.status, GradeStatus::FailedValidation, "{:?}", report.reason);
    assert!(report.validation.iter().all(|v| v.reason.contains("no nonce in reach")), "{:?}", report.validation);
}

#[tokio::test]
async fn every_name_the_harness_uses_is_bound_before_submitted_code_runs() {
    // No function of the harness looks a name up in globals or builtins when it runs: each is
    // bound when the harness loads (`_make_harness` and class bodies, which run then, are the
    // exception).
    let check = r#"
import dis, sys, types
def walk(code, path):
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield path + [const.co_name], const
            yield from walk(const, path + [const.co_name])
found = []
for path, code in walk(compile(sys.stdin.read(), "harness", "exec"), []):
    is_class_body = code.co_flags & 0x2 == 0  # not CO_NEWLOCALS: a class body or the module
    names = sorted({i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")})
    if path != ["_make_harness"] and names and not is_class_body:
        found.append("/".join(path) + " " + repr(names))
print("\n".join(found))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-I", "-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(moa_workshop::grader::HARNESS.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let found = String::from_utf8_lossy(&output.stdout);
    assert!(found.trim().is_empty(), "looked up at call time:\n{found}");
}

#[tokio::test]
async fn a_lone_surrogate_in_a_correct_result_is_judged_not_called_forgery() {
    let grader = grader_with(|_| {}).await;
    let code = example("02_full_marks.py").replace(
        "return {'average_engagement': average,",
        "return {'note': '\\ud800', 'pair': '\\ud83d\\ude00', 'average_engagement': average,",
    );
    assert!(code.contains("'note'"));
    let report = grade(&grader, &code).await;
    assert_eq!((report.status, report.total), (GradeStatus::Graded, 120), "{:?}", report.reason);
    // And as the only value: a str, not a dict.
    let code = "def calculate_user_metrics(users, start_date, end_date):\n    return '\\udfff'\n";
    let report = grade(&grader, code).await;
    assert_eq!(report.status, GradeStatus::FailedValidation, "{:?}", report.reason);
    assert!(report.validation.iter().all(|v| v.reason.starts_with("returned a str")), "{:?}", report.validation);
}

#[tokio::test]
async fn huge_names_and_messages_cannot_make_a_large_report() {
    let grader = grader_with(|_| {}).await;
    // Under 700 bytes of code; class and exception names of 250,000 characters each.
    let code = r#"
N = "N" * 250000
def calculate_user_metrics(users, start_date, end_date):
    if users and len(users) == 1:
        raise type(N, (Exception,), {})(N)
    if users:
        return type(N, (), {})()
    return {"average_engagement": type(N, (), {})(), "top_performers": [], "active_count": 0}
"#;
    assert!(code.len() < 700);
    let report = grade(&grader, code).await;
    let stored = serde_json::to_string(&report).unwrap();
    assert!(stored.len() < 20_000, "{} bytes: {:?}", stored.len(), report.reason);
    assert!(report.validation.iter().any(|v| v.reason.starts_with("returned a NNNN")), "{:?}", report.validation);
}

#[tokio::test]
async fn a_submission_that_kills_itself_is_told_so() {
    let grader = grader_with(|_| {}).await;
    for kill in ["os.killpg(0, 9)", "os.kill(0, 9)", "os.killpg(0, 24)"] {
        let code = format!(
            "import sys\nos = sys.modules['os']\n\ndef calculate_user_metrics(users, start_date, end_date):\n    \
             {kill}\n"
        );
        let (jobs, zygotes) = grader.sandbox_counts();
        let report = grade(&grader, &code).await;
        assert_eq!((report.status, report.total), (GradeStatus::Rejected, 0), "{kill}: {:?}", report.reason);
        let reason = report.reason.unwrap_or_default();
        assert!(reason.contains("the submission killed its own process"), "{kill}: {reason}");
        // Graded once: a child's own kill is its verdict, not a reason to run it again.
        let (jobs_now, zygotes_now) = grader.sandbox_counts();
        assert_eq!((jobs_now - jobs, zygotes_now - zygotes.max(1)), (1, 0), "{kill}");
    }
}

#[tokio::test]
async fn the_cpu_limit_is_still_called_the_cpu_limit() {
    // A loop that swallows the harness's alarm runs into the kernel's CPU limit (1 s) before
    // the wall clock (5 s).
    let grader = grader_with(|s| {
        s.limits.cpu_seconds = 1;
        s.limits.wall = std::time::Duration::from_secs(5);
    })
    .await;
    let code = "def calculate_user_metrics(users, start_date, end_date):\n    while True:\n        \
                try:\n            while True:\n                pass\n        except BaseException:\n            pass\n";
    let report = grade(&grader, code).await;
    assert_eq!((report.status, report.total), (GradeStatus::TimedOut, 0), "{:?}", report.reason);
    assert!(report.reason.unwrap_or_default().contains("CPU time limit"));
}

#[tokio::test]
async fn every_example_still_gets_its_points_with_the_stronger_harness() {
    // Quick guard beside tests/it/grader.rs: the full-marks and the trimmed examples.
    let grader = grader_with(|_| {}).await;
    assert_eq!(grade(&grader, &example("02_full_marks.py")).await.total, 120);
    let report = grade(&grader, &example("03_division_fix_only.py")).await;
    assert_eq!(points(&report, "handles_division_by_zero"), 20);
}

#[tokio::test]
async fn honest_code_that_logs_formats_tracebacks_and_recurses_is_not_called_tampering() {
    let grader = grader_with(|_| {}).await;
    // logging and traceback look at frames (sys._getframe, tb_frame) while submitted code runs:
    // allowed, since the frames below it hold nothing of the harness's.
    let code = format!(
        r#"import datetime, heapq, math, json, logging, typing, sys
log = logging.getLogger("metrics")
sys.setrecursionlimit(5000)  # kept for every call: the harness only undoes a lower limit
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
{}
_graded = calculate_user_metrics
def calculate_user_metrics(users, start_date, end_date):
    logging.warning("%d users", len(users))
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("a division failed")
    datetime.datetime.strptime("2024-01-01", "%Y-%m-%d")
    depth(3000)
    return _graded(users, start_date, end_date)
"#,
        example("02_full_marks.py")
    );
    let report = grade(&grader, &code).await;
    assert_eq!((report.status, report.total), (GradeStatus::Graded, 120), "{:?}", report.reason);
}

#[tokio::test]
async fn when_the_wall_clock_stops_a_run_the_finished_checks_keep_their_points() {
    // Correct for its first calls, then a loop that swallows the harness's per-call alarm, so
    // only the server's wall clock (3 s) ends the run: the rubric (§5) keeps what finished.
    let grader = grader_with(|s| s.limits.wall = std::time::Duration::from_secs(3)).await;
    let good = example("02_full_marks.py").replace("def calculate_user_metrics(", "def _good(");
    let code = format!(
        r#"{good}
_calls = [0]
def calculate_user_metrics(users, start_date, end_date):
    _calls[0] += 1
    if _calls[0] <= 6:
        return _good(users, start_date, end_date)
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
"#
    );
    let report = grade(&grader, &code).await;
    assert_eq!(report.status, GradeStatus::TimedOut, "{:?}", report.reason);
    assert!(report.total > 0 && report.total < 120, "{} {:?}", report.total, report.reason);
    assert!(report.checks.iter().any(|c| c.passed), "{:?}", report.checks);
    assert!(report.checks.iter().any(|c| c.reason == "timed out"), "{:?}", report.checks);
    assert!(report.reason.unwrap_or_default().contains("time limit ran out"));
}
