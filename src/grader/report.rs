//! The verdict of one grading run, in the JSON shape `interfaces.md` fixes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GradeStatus {
    Graded,
    Rejected,
    FailedValidation,
    TimedOut,
}

impl GradeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GradeStatus::Graded => "graded",
            GradeStatus::Rejected => "rejected",
            GradeStatus::FailedValidation => "failed_validation",
            GradeStatus::TimedOut => "timed_out",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckScore {
    pub id: String,
    pub points: u32,
    pub max: u32,
    pub passed: bool,
    pub reason: String,
    pub category: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidationOutcome {
    pub id: String,
    pub description: String,
    pub passed: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryScore {
    pub id: String,
    pub title: String,
    pub points: u32,
    pub max: u32,
}

/// A grading's verdict (see interfaces.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GradeReport {
    pub total: u32,
    pub max: u32,
    pub status: GradeStatus,
    pub reason: Option<String>,
    pub checks: Vec<CheckScore>,
    pub validation: Vec<ValidationOutcome>,
    /// A–F band of the total.
    pub grade: String,
    pub categories: Vec<CategoryScore>,
    pub challenge: String,
    /// The version of the challenge that graded it (a digest of its folder).
    #[serde(default)]
    pub challenge_hash: String,
    /// The seed its generated inputs came from, to grade it again the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub duration_ms: u64,
}

/// Every length cap on what a submission can put into a report. The Rust side owns them: the
/// harness receives them with its job (so the pipe stays small) and everything it reports is
/// cut again here, whatever it claims.
pub mod caps {
    /// A type name (a class, or an exception's), in characters.
    pub const NAME_CHARS: usize = 100;
    /// An exception's text after its type name.
    pub const ERROR_CHARS: usize = 300;
    /// Any one reason in a stored report (overall, per check, per validation call).
    pub const REASON_CHARS: usize = 600;
    /// A string value the harness reports as data (longer ones are opaque).
    pub const STR_CHARS: usize = 200_000;
    /// Values (nodes) in one reported result, and how deeply they may nest.
    pub const NODES: usize = 50_000;
    pub const DEPTH: usize = 24;

    /// `text` cut to at most `max` characters, with "…" when something was cut.
    pub fn cut(text: &str, max: usize) -> String {
        match text.char_indices().nth(max.saturating_sub(1)) {
            Some((end, _)) if text[end..].chars().nth(1).is_some() => format!("{}…", &text[..end]),
            _ => text.to_string(),
        }
    }
}

impl GradeReport {
    /// Cuts every reason to [`caps::REASON_CHARS`]: nothing a submission sends can make a
    /// stored report large.
    pub fn capped(mut self) -> GradeReport {
        let cut = |text: &mut String| {
            if text.len() > caps::REASON_CHARS {
                *text = caps::cut(text, caps::REASON_CHARS);
            }
        };
        if let Some(reason) = &mut self.reason {
            cut(reason);
        }
        self.checks.iter_mut().for_each(|c| cut(&mut c.reason));
        self.validation.iter_mut().for_each(|v| cut(&mut v.reason));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_short_text_and_marks_a_cut() {
        assert_eq!(caps::cut("abc", 3), "abc");
        assert_eq!(caps::cut("abcd", 3), "ab…");
        assert_eq!(caps::cut("ééééé", 4).chars().count(), 4);
        assert_eq!(caps::cut("", 3), "");
    }
}
