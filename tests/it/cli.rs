//! The command line as a person types it: the built binary, its help, its usage errors.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the binary in an empty folder (so no `.env` is read) with `args`.
fn run(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_moa-workshop"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_command_has_help_that_exits_0() {
    let top = run(&["--help"]);
    assert_eq!(top.status.code(), Some(0), "{}", text(&top.stderr));
    let help = text(&top.stdout);
    assert!(help.contains("serve") && help.contains("grade"), "{help}");
    assert!(!help.contains("sandbox-exec"), "the launcher stays out of the help: {help}");

    let serve = run(&["serve", "--help"]);
    assert_eq!(serve.status.code(), Some(0), "{}", text(&serve.stderr));
    let help = text(&serve.stdout);
    assert!(help.contains("--listen <ADDR>") && help.contains("MOA_LISTEN"), "{help}");

    let grade = run(&["grade", "--help"]);
    assert_eq!(grade.status.code(), Some(0), "{}", text(&grade.stderr));
    let help = text(&grade.stdout);
    for part in ["--json", "--challenge <ID_OR_DIR>", "<FILE>", "Exit code 0 whenever a verdict was reached"] {
        assert!(help.contains(part), "{part:?} missing from {help}");
    }

    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(text(&version.stdout).trim(), format!("moa-workshop {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn mistakes_exit_2_with_a_usage_line_on_stderr() {
    for args in [&["serve", "--port", "1"][..], &["grade"], &["grade", "--verbose", "x.py"], &["frobnicate"]] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: {}", text(&output.stdout));
        let stderr = text(&output.stderr);
        assert!(stderr.starts_with("error: ") && stderr.contains("Usage: moa-workshop"), "{args:?}: {stderr}");
    }
    let stderr = text(&run(&["serve", "--port", "1"]).stderr);
    assert!(stderr.contains("'--port'"), "{stderr}");
}

#[test]
fn grade_json_prints_one_report_and_exits_0_with_a_verdict() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grader-examples");
    let file = fixtures.join("02_full_marks.py");
    let output = run(&["grade", "--json", "--challenge", "calculate_user_metrics", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("stdout is exactly one JSON object");
    assert_eq!((report["total"].as_u64(), report["status"].as_str()), (Some(120), Some("graded")));

    // Flags after the file work as well; an unknown challenge is a usage mistake.
    let file = fixtures.join("05_forbidden_import.py");
    let output = run(&["grade", file.to_str().unwrap(), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], "rejected");
    let output = run(&["grade", "--challenge", "nope", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no challenge named \"nope\""));
}
