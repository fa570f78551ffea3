//! Challenges as data (`challenges/<id>/`): the prompt attendees see, the rules checked
//! before running, the calls made, and the points each check is worth. The scoring logic
//! for each check id lives in `scoring.rs`; loading fails if a check has none.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::scoring;

/// The challenges built into the binary, the default one first.
const BUILT_IN: &[(&str, &str)] = &[(
    include_str!("../../challenges/calculate_user_metrics/challenge.json"),
    include_str!("../../challenges/calculate_user_metrics/prompt.md"),
)];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    pub id: String,
    pub title: String,
    pub function: String,
    pub max_points: u32,
    pub rules: Rules,
    pub categories: Vec<Category>,
    pub validation: Validation,
    pub checks: Vec<Check>,
    /// The generation prompt (prompt.md), not part of challenge.json.
    #[serde(skip_deserializing)]
    pub prompt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rules {
    pub allowed_imports: Vec<String>,
    pub forbidden_calls: Vec<String>,
    pub forbidden_methods: Vec<String>,
    pub forbidden_attributes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Category {
    pub id: String,
    pub title: String,
    pub max: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    pub min_passing: usize,
    pub calls: Vec<ValidationCall>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValidationCall {
    pub id: String,
    pub description: String,
    #[serde(default)]
    pub expect_active_count_zero: bool,
    #[serde(flatten)]
    pub input: CallInput,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub max: u32,
    pub category: String,
    pub title: String,
    pub description: String,
    pub calls: Vec<CallInput>,
}

/// The arguments of one call of the submitted function.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallInput {
    pub users: Json,
    pub start_date: String,
    pub end_date: String,
    /// Report the users list as it is after the call (for the mutation check).
    #[serde(default)]
    pub watch_users: bool,
}

impl Challenge {
    pub fn default_id() -> &'static str {
        "calculate_user_metrics"
    }

    /// Every built-in challenge, parsed and checked.
    pub fn built_in() -> Result<Vec<Challenge>, String> {
        BUILT_IN
            .iter()
            .map(|(json, prompt)| {
                let mut challenge: Challenge =
                    serde_json::from_str(json).map_err(|e| format!("a built-in challenge is malformed: {e}"))?;
                challenge.prompt = prompt.to_string();
                challenge.check_consistency()?;
                Ok(challenge)
            })
            .collect()
    }

    pub fn find(id: &str) -> Result<Challenge, String> {
        let all = Challenge::built_in()?;
        let known: Vec<String> = all.iter().map(|c| c.id.clone()).collect();
        all.into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| format!("no challenge named {id:?}; known: {}", known.join(", ")))
    }

    fn check_consistency(&self) -> Result<(), String> {
        let sum: u32 = self.checks.iter().map(|c| c.max).sum();
        if sum != self.max_points {
            return Err(format!("challenge {}: checks add up to {sum}, not {}", self.id, self.max_points));
        }
        for check in &self.checks {
            if !scoring::knows(&check.id) {
                return Err(format!("challenge {}: no scoring rule for check {}", self.id, check.id));
            }
            if !self.categories.iter().any(|c| c.id == check.category) {
                return Err(format!("challenge {}: check {} has an unknown category", self.id, check.id));
            }
        }
        for category in &self.categories {
            let sum: u32 = self.checks.iter().filter(|c| c.category == category.id).map(|c| c.max).sum();
            if sum != category.max {
                return Err(format!("challenge {}: category {} adds up to {sum}", self.id, category.id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_challenge_loads_and_adds_up_to_120() {
        let c = Challenge::find(Challenge::default_id()).unwrap();
        assert_eq!(c.max_points, 120);
        assert_eq!(c.checks.len(), 11);
        assert_eq!(c.validation.calls.len(), 4);
        assert!(c.prompt.contains("calculate_user_metrics"));
        assert!(Challenge::find("nope").unwrap_err().contains("calculate_user_metrics"));
    }
}
