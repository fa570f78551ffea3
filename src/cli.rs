//! The command line: `serve`, `grade`, and the hidden `sandbox-exec` launcher.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::grader::report::GradeReport;
use crate::grader::{Challenges, GradeError, Grader, GraderSettings};

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Serve { listen: Option<String> },
    Grade { json: bool, challenge: Option<String>, seed: Option<u64>, file: PathBuf },
    ChallengeCheck { dir: PathBuf, json: bool },
    ChallengeNew { name: String, dir: PathBuf },
    SandboxExec(Vec<String>),
}

#[derive(Debug, Parser)]
#[command(
    name = "moa-workshop",
    version,
    about = "Mixture-of-Agents workshop server",
    after_help = "With no command, `serve` runs. Settings come from the environment or a .env file; see .env.example."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run the web app.
    Serve {
        /// Address to listen on [default: $MOA_LISTEN, else 127.0.0.1:8080].
        // Not clap's `env`: MOA_LISTEN may come from .env, which Settings reads after parsing.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Grade one Python file exactly as the server would.
    #[command(after_help = "Exit code 0 whenever a verdict was reached, whatever the score.")]
    Grade {
        /// Print the report as one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// The challenge to grade against: an id, or a challenge folder [default: the default challenge].
        #[arg(long, value_name = "ID_OR_DIR")]
        challenge: Option<String>,
        /// Draw the generated inputs from this seed (a report's `seed`), to grade exactly as before.
        #[arg(long)]
        seed: Option<u64>,
        /// The Python file to grade.
        file: PathBuf,
    },
    /// Write or check a challenge folder (see the README, "Writing a challenge").
    #[command(subcommand)]
    Challenge(ChallengeSub),
}

#[derive(Debug, Subcommand)]
enum ChallengeSub {
    /// Check a challenge folder: its format, that the reference earns the maximum, the baseline
    /// and every example what they declare, and what a do-nothing answer earns.
    #[command(after_help = "Exit code 0 when the challenge is valid, 1 with `file:line: problem` lines otherwise.")]
    Check {
        /// The challenge folder.
        dir: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Write a new, valid challenge folder to start from.
    New {
        /// Its id (the folder's name): letters, digits, '_' and '-'.
        name: String,
        /// Where to create it.
        #[arg(long, default_value = "challenges")]
        dir: PathBuf,
    },
}

/// The launcher's subcommand. Its arguments are the launcher's own protocol (see
/// `grader::sandbox::launcher_main`), passed through untouched, so it bypasses clap and
/// never appears in the help.
const SANDBOX_EXEC: &str = "sandbox-exec";

/// Parses arguments (without the program name). No command means `serve`. `Err` carries
/// clap's message and exit code (0 for `--help` and `--version`, 2 for a mistake).
pub fn parse(args: &[String]) -> Result<Command, clap::Error> {
    if args.first().map(String::as_str) == Some(SANDBOX_EXEC) {
        return Ok(Command::SandboxExec(args[1..].to_vec()));
    }
    let cli = Cli::try_parse_from(std::iter::once("moa-workshop").chain(args.iter().map(String::as_str)))?;
    Ok(match cli.command {
        None => Command::Serve { listen: None },
        Some(Sub::Serve { listen }) => Command::Serve { listen },
        Some(Sub::Grade { json, challenge, seed, file }) => Command::Grade { json, challenge, seed, file },
        Some(Sub::Challenge(ChallengeSub::Check { dir, json })) => Command::ChallengeCheck { dir, json },
        Some(Sub::Challenge(ChallengeSub::New { name, dir })) => Command::ChallengeNew { name, dir },
    })
}

/// Runs the command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let command = match parse(&args) {
        Ok(command) => command,
        Err(message) => {
            let _ = message.print();
            return message.exit_code();
        }
    };
    // The launcher must stay a single-threaded process: no runtime, no logging, no .env.
    if let Command::SandboxExec(args) = command {
        return crate::grader::sandbox::launcher_main(&args);
    }
    if let Command::ChallengeNew { name, dir } = &command {
        return match crate::grader::challenge::scaffold(dir, name) {
            Ok(path) => {
                println!("Wrote {}. Check it with: moa-workshop challenge check {}", path.display(), path.display());
                0
            }
            Err(problem) => {
                eprintln!("moa-workshop: {problem}");
                1
            }
        };
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
            crate::telemetry::init("moa_workshop=info,tower_http=info", settings.log_format);
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
        Command::Grade { json, challenge, seed, file } => {
            crate::telemetry::init("moa_workshop=warn", settings.log_format);
            runtime.block_on(grade_file(settings, json, challenge, seed, file))
        }
        Command::ChallengeCheck { dir, json } => {
            crate::telemetry::init("moa_workshop=warn", settings.log_format);
            runtime.block_on(check_challenge(settings, &dir, json))
        }
        _ => unreachable!("handled above"),
    }
}

/// The grader settings a one-off command uses: the fork server starts with the first job.
fn one_off_grader(settings: &Settings) -> Result<GraderSettings, String> {
    let launcher = std::env::current_exe().map_err(|e| format!("cannot find this program's own path: {e}"))?;
    let mut grader_settings = GraderSettings::new(launcher);
    grader_settings.python = settings.python.clone();
    grader_settings.limits.wall = settings.grade_timeout;
    grader_settings.limits.cpu_seconds = settings.grade_timeout.as_secs();
    grader_settings.prewarm = 0;
    Ok(grader_settings)
}

/// The challenges `--challenge ID_OR_DIR` names: one folder, or every known one.
fn challenges_for(settings: &Settings, challenge: Option<&str>) -> Result<(Challenges, Option<String>), String> {
    match challenge {
        Some(dir) if std::path::Path::new(dir).join("challenge.toml").is_file() => {
            let one = crate::grader::challenge::load_folder(std::path::Path::new(dir))?;
            let id = one.id.clone();
            Ok((Challenges::from_list(vec![one]), Some(id)))
        }
        id => Ok((Challenges::load(settings.challenges_dir.as_deref())?, id.map(str::to_string))),
    }
}

async fn check_challenge(settings: Settings, dir: &std::path::Path, json: bool) -> i32 {
    let grader_settings = match one_off_grader(&settings) {
        Ok(s) => s,
        Err(problem) => {
            eprintln!("moa-workshop: {problem}");
            return 1;
        }
    };
    let verdict = crate::grader::check::check_folder(grader_settings, dir).await;
    if json {
        println!("{}", serde_json::to_string(&verdict).expect("a verdict serializes"));
    } else {
        print!("{}", verdict.human());
    }
    if verdict.valid { 0 } else { 1 }
}

async fn grade_file(
    settings: Settings,
    json: bool,
    challenge: Option<String>,
    seed: Option<u64>,
    file: PathBuf,
) -> i32 {
    let code = match std::fs::read(&file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("moa-workshop: cannot read {}: {e}", file.display());
            return 1;
        }
    };
    let (challenges, id) = match challenges_for(&settings, challenge.as_deref()) {
        Ok(found) => found,
        Err(problem) => {
            eprintln!("moa-workshop: {problem}");
            return 2;
        }
    };
    if let Err(problem) = challenges.find(id.as_deref()) {
        eprintln!("moa-workshop: {problem}");
        return 2;
    }
    let grader_settings = match one_off_grader(&settings) {
        Ok(s) => s,
        Err(problem) => {
            eprintln!("moa-workshop: {problem}");
            return 1;
        }
    };
    let grader = match Grader::start(grader_settings, std::sync::Arc::new(challenges)).await {
        Ok(grader) => grader,
        Err(problem) => {
            eprintln!("moa-workshop: grading is unavailable: {problem}");
            return 1;
        }
    };
    if !grader.layers().fully_contained() {
        eprintln!("moa-workshop: warning: the sandbox is not fully contained here ({})", grader.layers().summary());
    }
    let challenge = grader.challenge(id.as_deref()).expect("found above").clone();
    match grader.grade_with_seed(&challenge, &code, seed).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_the_documented_commands() {
        assert_eq!(parse(&args(&[])).unwrap(), Command::Serve { listen: None });
        assert_eq!(parse(&args(&["serve"])).unwrap(), Command::Serve { listen: None });
        assert_eq!(
            parse(&args(&["serve", "--listen", "0.0.0.0:8080"])).unwrap(),
            Command::Serve { listen: Some("0.0.0.0:8080".into()) }
        );
        assert_eq!(
            parse(&args(&["grade", "--json", "--challenge", "x", "f.py"])).unwrap(),
            Command::Grade { json: true, challenge: Some("x".into()), seed: None, file: "f.py".into() }
        );
        assert_eq!(
            parse(&args(&["grade", "f.py"])).unwrap(),
            Command::Grade { json: false, challenge: None, seed: None, file: "f.py".into() }
        );
    }

    #[test]
    fn mistakes_are_usage_errors_and_help_is_not() {
        use clap::error::ErrorKind;
        let kind = |list: &[&str]| parse(&args(list)).unwrap_err().kind();
        assert_eq!(kind(&["grade"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind(&["grade", "a.py", "b.py"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["serve", "--port", "1"]), ErrorKind::UnknownArgument);
        assert_eq!(kind(&["serve", "--listen"]), ErrorKind::InvalidValue);
        assert_eq!(kind(&["frobnicate"]), ErrorKind::InvalidSubcommand);
        for list in [&["--help"][..], &["serve", "--help"], &["grade", "-h"], &["help", "grade"]] {
            let error = parse(&args(list)).unwrap_err();
            assert_eq!((error.kind(), error.exit_code()), (ErrorKind::DisplayHelp, 0), "{list:?}");
        }
        assert_eq!(parse(&args(&["--version"])).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&args(&["serve", "--port", "1"])).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_launcher_gets_its_arguments_untouched_and_stays_out_of_the_help() {
        let raw = ["sandbox-exec", "--probe", "--cpu-seconds", "5", "--", "python3", "-c", "--help", "--"];
        assert_eq!(parse(&args(&raw)).unwrap(), Command::SandboxExec(args(&raw[1..])));
        let help = parse(&args(&["--help"])).unwrap_err().render().to_string();
        assert!(help.contains("serve") && help.contains("grade"), "{help}");
        assert!(!help.contains("sandbox"), "{help}");
    }
}
