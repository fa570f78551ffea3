//! Best scores put straight into the store, for tests of how the boards show a roomful of
//! participants: each name gets a participant, one generation and one graded submission of
//! the default challenge, without running the grader. Live boards are told at the end.

use moa_workshop::grader::{GradeReport, GradeStatus};
use moa_workshop::store::participants::{self, Claim};
use moa_workshop::store::{generations, submissions};
use serde_json::json;

use super::TestApp;

pub const CHALLENGE: &str = "calculate_user_metrics";

/// Stores a best score of `total` out of 120 for each `(name, total)`, one after the other.
/// Returns the ids of their generations, in the same order.
pub async fn seed(app: &TestApp, scores: &[(&str, u32)]) -> Vec<String> {
    let pool = &app.state.pool;
    let mut ids = Vec::new();
    for &(name, total) in scores {
        let participant = match participants::claim(pool, name, None).await.unwrap() {
            Ok(Claim::Claimed { participant, .. }) => participant,
            other => panic!("cannot claim {name:?}: {other:?}"),
        };
        let generation = generation(app, &participant.id, "pass").await;
        let report = GradeReport {
            total,
            max: 120,
            status: GradeStatus::Graded,
            reason: None,
            checks: Vec::new(),
            validation: Vec::new(),
            grade: "A".into(),
            categories: Vec::new(),
            challenge: CHALLENGE.into(),
            challenge_hash: String::new(),
            seed: None,
            duration_ms: 1,
        };
        submissions::record(pool, &participant.id, &generation, &report).await.unwrap();
        ids.push(generation);
    }
    app.state.live.leaderboard_changed();
    ids
}

/// Stores a generation of `code` for the default challenge by `participant_id` (configuration:
/// "llama-3.3-70b · 2 cycles · 2 agents"); its id.
pub async fn generation(app: &TestApp, participant_id: &str, code: &str) -> String {
    let config = json!({"ai_configuration": {"main_model": "llama-3.3-70b", "main_temperature": 0.1, "cycles": 2,
        "system_prompt": "{helper_response}", "layer_agents": [
            {"name": "a", "model": "llama3.1-8b", "temperature": 0.0, "prompt": "{helper_response}", "max_tokens": 512},
            {"name": "b", "model": "llama3.1-8b", "temperature": 0.0, "prompt": "{helper_response}", "max_tokens": 512}]}});
    let new = generations::NewGeneration {
        participant_id,
        challenge: CHALLENGE,
        challenge_hash: "",
        config: &config,
        prompt: "write it",
        answer: &format!("```python\n{code}\n```"),
        code,
        timings: &json!({"ms": 1}),
        config_hash: "",
    };
    generations::insert(&app.state.pool, new).await.unwrap().id
}
