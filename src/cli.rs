//! The command line: `serve`, `grade`, and the hidden `sandbox-exec` launcher.

use std::path::PathBuf;

use crate::config::Settings;
use crate::grader::report::GradeReport;
use crate::grader::{GradeError, Grader, GraderSettings};

const USAGE: &str = "\
moa-workshop — Mixture-of-Agents workshop server

USAGE:
    moa-workshop serve [--listen ADDR]
        Run the web app (default address: $MOA_LISTEN, else 127.0.0.1:8080).
    moa-workshop grade [--json] [--challenge ID] FILE
        Grade one Python file exactly as the server would. Exit code 0 whenever a verdict
        was reached, whatever the score.

Settings come from the environment or a .env file; see .env.example.
";

#[derive(Debug, PartialEq)]
pub enum Command {
    Serve { listen: Option<String> },
    Grade { json: bool, challenge: Option<String>, file: PathBuf },
    SandboxExec(Vec<String>),
    Help,
    Version,
}

/// Parses arguments (without the program name). No command means `serve`.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some(command) = args.first() else { return Ok(Command::Serve { listen: None }) };
    let mut rest = args[1..].iter();
    match command.as_str() {
        "serve" => {
            let mut listen = None;
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--listen" => {
                        listen = Some(rest.next().ok_or("--listen needs an address, e.g. 0.0.0.0:8080")?.clone())
                    }
                    other => return Err(format!("serve: unknown argument {other:?}")),
                }
            }
            Ok(Command::Serve { listen })
        }
        "grade" => {
            let (mut json, mut challenge, mut file) = (false, None, None);
            while let Some(arg) = rest.next() {
                match arg.as_str() {
                    "--json" => json = true,
                    "--challenge" => challenge = Some(rest.next().ok_or("--challenge needs an id")?.clone()),
                    flag if flag.starts_with("--") => return Err(format!("grade: unknown option {flag:?}")),
                    path if file.is_none() => file = Some(PathBuf::from(path)),
                    extra => return Err(format!("grade: only one file at a time ({extra:?} is extra)")),
                }
            }
            let file = file.ok_or("grade: which file? e.g. moa-workshop grade --json solution.py")?;
            Ok(Command::Grade { json, challenge, file })
        }
        "sandbox-exec" => Ok(Command::SandboxExec(args[1..].to_vec())),
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        other => Err(format!("unknown command {other:?}")),
    }
}

/// Runs the command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let command = match parse(&args) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("moa-workshop: {problem}\n\n{USAGE}");
            return 2;
        }
    };
    // The launcher must stay a single-threaded process: no runtime, no logging, no .env.
    if let Command::SandboxExec(args) = command {
        return crate::grader::sandbox::launcher_main(&args);
    }
    match command {
        Command::Help => {
            print!("{USAGE}");
            return 0;
        }
        Command::Version => {
            println!("moa-workshop {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        _ => {}
    }
    let _ = dotenvy::dotenv();
    let mut settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("moa-workshop: {problem}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("moa-workshop: cannot start: {e}");
            return 1;
        }
    };
    match command {
        Command::Serve { listen } => {
            init_tracing("moa_workshop=info,tower_http=info");
            if let Some(listen) = listen {
                settings.listen = listen;
            }
            match runtime.block_on(crate::app::run_server(settings)) {
                Ok(()) => 0,
                Err(problem) => {
                    tracing::error!("{problem}");
                    1
                }
            }
        }
        Command::Grade { json, challenge, file } => {
            init_tracing("moa_workshop=warn");
            runtime.block_on(grade_file(settings, json, challenge, file))
        }
        _ => unreachable!("handled above"),
    }
}

async fn grade_file(settings: Settings, json: bool, challenge: Option<String>, file: PathBuf) -> i32 {
    let code = match std::fs::read(&file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("moa-workshop: cannot read {}: {e}", file.display());
            return 1;
        }
    };
    let launcher = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => {
            eprintln!("moa-workshop: cannot find this program's own path: {e}");
            return 1;
        }
    };
    let mut grader_settings = GraderSettings::new(launcher);
    grader_settings.python = settings.python;
    grader_settings.limits.wall = settings.grade_timeout;
    grader_settings.limits.cpu_seconds = settings.grade_timeout.as_secs();
    // One file: an interpreter waiting for a second submission would be wasted.
    grader_settings.prewarm = 0;
    let grader = match Grader::start(grader_settings).await {
        Ok(grader) => grader,
        Err(problem) => {
            eprintln!("moa-workshop: grading is unavailable: {problem}");
            return 1;
        }
    };
    if !grader.layers().fully_contained() {
        eprintln!("moa-workshop: warning: the sandbox is not fully contained here ({})", grader.layers().summary());
    }
    let challenge = match grader.challenge(challenge.as_deref()) {
        Ok(challenge) => challenge,
        Err(problem) => {
            eprintln!("moa-workshop: {problem}");
            return 2;
        }
    };
    match grader.grade(challenge, &code).await {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string(&report).expect("a report serializes"));
            } else {
                print!("{}", human_report(&report));
            }
            0
        }
        Err(GradeError::Busy { .. }) => unreachable!("the command line grades one file"),
        Err(GradeError::Internal(problem)) => {
            eprintln!("moa-workshop: {problem}");
            1
        }
    }
}

fn human_report(report: &GradeReport) -> String {
    let mut out = format!("{} / {} (grade {}, {})\n", report.total, report.max, report.grade, report.status.as_str());
    if let Some(reason) = &report.reason {
        out += &format!("{reason}\n");
    }
    for v in &report.validation {
        out += &format!("  validation {:<3} {:<4} {}\n", v.id, if v.passed { "ok" } else { "FAIL" }, v.reason);
    }
    for c in &report.checks {
        out += &format!("  {:>2}/{:<2} {:<28} {}\n", c.points, c.max, c.id, c.reason);
    }
    out
}

fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only for a person at a terminal, not in log files or `docker logs`.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_documented_commands() {
        assert_eq!(parse(&args(&[])), Ok(Command::Serve { listen: None }));
        assert_eq!(
            parse(&args(&["serve", "--listen", "0.0.0.0:8080"])),
            Ok(Command::Serve { listen: Some("0.0.0.0:8080".into()) })
        );
        assert_eq!(
            parse(&args(&["grade", "--json", "--challenge", "x", "f.py"])),
            Ok(Command::Grade { json: true, challenge: Some("x".into()), file: "f.py".into() })
        );
        assert!(parse(&args(&["grade"])).unwrap_err().contains("which file"));
        assert!(parse(&args(&["serve", "--port", "1"])).is_err());
        assert!(parse(&args(&["frobnicate"])).is_err());
    }
}
