//! Challenges as data, through the command line an organizer uses: every shipped challenge
//! passes `challenge check`; a new one starts valid; a broken one says `file:line: problem`;
//! a challenge folder of one's own grades with `grade --challenge DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common;

fn run(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moa-workshop"))
        .args(args)
        .current_dir(dir)
        .env("MOA_PYTHON", common::python())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn shipped() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("challenges");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("challenge.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn check_json(dir: &Path) -> (Option<i32>, Value) {
    let out = run(&["challenge", "check", "--json", dir.to_str().unwrap()], Path::new("/"));
    let verdict = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code(), verdict)
}

#[test]
fn every_shipped_challenge_passes_challenge_check() {
    let dirs = shipped();
    assert!(dirs.len() >= 4, "{dirs:?}");
    for dir in dirs {
        let (code, verdict) = check_json(&dir);
        assert_eq!(code, Some(0), "{}: {verdict}", dir.display());
        assert_eq!(verdict["valid"], true, "{verdict}");
        assert_eq!(verdict["reference_total"], verdict["max"], "{verdict}");
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("calculate_user_metrics") {
            // The original's points, kept: a constant answer of the right shape earns 87.
            assert_eq!(verdict["do_nothing_total"], 87, "{verdict}");
            assert!(
                verdict["warnings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|w| w.as_str().unwrap().contains("constant answer earns 87"))
            );
        } else {
            assert!(verdict["do_nothing_total"].as_u64().unwrap() * 4 <= verdict["max"].as_u64().unwrap(), "{verdict}");
        }
    }
}

#[test]
fn a_new_challenge_is_valid_and_grades_and_a_broken_one_says_where() {
    let work = tempfile::tempdir().unwrap();
    let out = run(&["challenge", "new", "vowels", "--dir", "."], work.path());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = work.path().join("vowels");
    let (code, verdict) = check_json(&folder);
    assert_eq!(
        (code, verdict["valid"].clone(), verdict["baseline_total"].clone()),
        (Some(0), true.into(), 55.into()),
        "{verdict}"
    );
    // It grades as any challenge does.
    std::fs::write(work.path().join("mine.py"), "def count_vowels(text):\n    return 3\n").unwrap();
    let out = run(&["grade", "--json", "--challenge", folder.to_str().unwrap(), "mine.py"], work.path());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["challenge"], "vowels", "{report}");
    assert_eq!(report["total"], 45 + 5, "{report}");
    // A second `new` of the same name refuses to touch it.
    assert_eq!(run(&["challenge", "new", "vowels", "--dir", "."], work.path()).status.code(), Some(1));

    // An example no one gave the points of is a problem, not skipped in silence.
    let examples = folder.join("examples");
    std::fs::create_dir_all(&examples).unwrap();
    std::fs::write(examples.join("01_three.py"), "def count_vowels(text):\n    return 3\n").unwrap();
    let out = run(&["challenge", "check", folder.to_str().unwrap()], Path::new("/"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("examples/expected.json is missing"));
    std::fs::write(examples.join("expected.json"), "{}").unwrap();
    let out = run(&["challenge", "check", folder.to_str().unwrap()], Path::new("/"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("has no entry for examples/01_three.py"));
    std::fs::remove_dir_all(&examples).unwrap();

    // Broken: a typo in a condition's name, a rule worth more than its check, a bad expression.
    let manifest = folder.join("challenge.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replacen("when = \"result == 3\"", "when = \"reslt == 3\"", 1)
        .replacen("points = 35\n", "points = 36\n", 1)
        .replacen("when = \"result == 0\"", "when = \"result == (0\"", 1);
    std::fs::write(&manifest, &text).unwrap();
    let out = run(&["challenge", "check", folder.to_str().unwrap()], Path::new("/"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (line, problem) in [
        (line_of("reslt == 3"), "unknown name 'reslt'"),
        (line_of("points = 36"), "more than its max 35"),
        (line_of("result == (0"), "when"),
    ] {
        let wanted = format!("challenge.toml:{line}: ");
        assert!(
            stdout.lines().any(|l| l.contains(&wanted) && l.contains(problem)),
            "{wanted}…{problem} missing from:\n{stdout}"
        );
    }
    let (_, verdict) = check_json(&folder);
    assert_eq!(verdict["valid"], false);
    assert!(verdict["problems"].as_array().unwrap().len() >= 3, "{verdict}");
}

#[test]
fn the_json_schema_accepts_every_shipped_manifest_and_refuses_a_wrong_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("challenges");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("challenge.schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for dir in shipped() {
        let manifest: Value = toml::from_str(&std::fs::read_to_string(dir.join("challenge.toml")).unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&manifest).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", dir.display());
    }
    let wrong: Value = toml::from_str("title = 1\n[[checks]]\nid = 'x'\n").unwrap();
    assert!(!validator.is_valid(&wrong));
}

/// The hostile routes the sandbox tests take on the default challenge hold on every shipped
/// one: a submission that reaches the harness's frames and swaps what it calls is refused with
/// 0, and the grading after it is untouched (the reference keeps its maximum).
#[tokio::test]
async fn tampering_is_refused_on_every_shipped_challenge() {
    let grader = common::grading::grader_with(|_| {}).await;
    for challenge in grader.challenges().all().to_vec() {
        let entry = &challenge.entry;
        let tampering = format!(
            r#"{reference}
def _tamper():
    try:
        raise ValueError
    except ValueError as error:
        frame = error.__traceback__.tb_frame.f_back
    while frame is not None:
        frame.f_globals["run_call"] = None
        frame = frame.f_back
_real = {entry}
def {entry}(*args, **kwargs):
    _tamper()
    return _real(*args, **kwargs)
"#,
            reference = challenge.reference
        );
        let report = grader.grade(&challenge, &tampering).await.unwrap();
        assert_eq!(report.total, 0, "{}: {:?} {:?}", challenge.id, report.status, report.reason);
        assert!(report.reason.as_deref().unwrap_or("").contains("tampered"), "{}: {:?}", challenge.id, report.reason);
        let honest = grader.grade(&challenge, &challenge.reference).await.unwrap();
        assert_eq!(honest.total, challenge.max_points(), "{}: {:?}", challenge.id, honest.reason);
    }
}
