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

    /// Every built-in challenge, parsed and checked once (pages and pushes read them often).
    pub fn built_in() -> Result<&'static [Challenge], String> {
        static PARSED: std::sync::OnceLock<Result<Vec<Challenge>, String>> = std::sync::OnceLock::new();
        let parsed = PARSED.get_or_init(|| {
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
        });
        parsed.as_deref().map_err(Clone::clone)
    }

    pub fn find(id: &str) -> Result<&'static Challenge, String> {
        let all = Challenge::built_in()?;
        all.iter().find(|c| c.id == id).ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
            format!("no challenge named {id:?}; known: {}", known.join(", "))
        })
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

/// The code to grade from a model's answer: the first fenced block that defines `function`,
/// else the first fenced block, else the `def function(...)` block with its indented body.
/// Empty when the answer holds no code at all.
pub fn extract_code(answer: &str, function: &str) -> String {
    let blocks = fenced_blocks(answer);
    let defines = |code: &&String| code.lines().any(|l| l.trim_start().starts_with(&format!("def {function}(")));
    if let Some(block) = blocks.iter().find(defines).or(blocks.first()) {
        return block.trim_matches('\n').to_string();
    }
    let lines: Vec<&str> = answer.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with(&format!("def {function}("))) else {
        return String::new();
    };
    let body = lines[start + 1..].iter().take_while(|l| l.trim().is_empty() || l.starts_with([' ', '\t'])).count();
    lines[start..=start + body].join("\n").trim_end().to_string()
}

/// Contents of ``` fenced blocks, in order (an unclosed last block runs to the end).
fn fenced_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match (&mut current, fence) {
            (None, true) => current = Some(Vec::new()),
            (Some(lines), true) => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), false) => lines.push(line),
            (None, false) => {}
        }
    }
    if let Some(lines) = current {
        blocks.push(lines.join("\n"));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_extracted_like_the_workshop_did() {
        let f = "calculate_user_metrics";
        let fenced =
            "Here you go:\n```python\nimport math\ndef calculate_user_metrics(u, s, e):\n    return {}\n```\nDone.";
        assert_eq!(extract_code(fenced, f), "import math\ndef calculate_user_metrics(u, s, e):\n    return {}");
        let two = "```json\n{}\n```\n```\ndef calculate_user_metrics(u, s, e):\n    pass\n```";
        assert_eq!(extract_code(two, f), "def calculate_user_metrics(u, s, e):\n    pass");
        assert_eq!(extract_code("```\nprint(1)\n```", f), "print(1)");
        let bare = "Sure.\ndef calculate_user_metrics(u, s, e):\n    x = 1\n\n    return x\nThat is all.";
        assert_eq!(extract_code(bare, f), "def calculate_user_metrics(u, s, e):\n    x = 1\n\n    return x");
        assert_eq!(extract_code("no code here", f), "");
        assert_eq!(
            extract_code("```python\ndef calculate_user_metrics(a, b, c):\n    return 1", f),
            "def calculate_user_metrics(a, b, c):\n    return 1"
        );
    }

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
