//! A grader (and a bare sandbox) built exactly as the server builds them.

use std::time::Duration;

use moa_workshop::grader::sandbox::{Interpreter, Sandbox};
use moa_workshop::grader::{Challenge, GradeReport, Grader, GraderSettings};

pub fn settings() -> GraderSettings {
    GraderSettings::new(super::launcher())
}

pub async fn grader_with(configure: impl FnOnce(&mut GraderSettings)) -> Grader {
    let mut settings = settings();
    configure(&mut settings);
    Grader::start(settings).await.expect("the grader starts")
}

pub async fn grade(grader: &Grader, code: &str) -> GradeReport {
    let challenge = grader.challenge(None).unwrap().clone();
    grader.grade(&challenge, code).await.expect("a verdict")
}

/// The sandbox alone, to run arbitrary scripts and look at what they could do.
pub async fn sandbox(wall: Duration) -> Sandbox {
    let interpreter = Interpreter::discover("python3").await.expect("python3 is installed");
    let mut limits = settings().limits;
    limits.wall = wall;
    Sandbox { launcher: super::launcher(), interpreter, limits }
}

pub fn default_challenge() -> Challenge {
    Challenge::find(Challenge::default_id()).unwrap().clone()
}
