//! The verdict of one grading run, in the JSON shape `interfaces.md` fixes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckScore {
    pub id: String,
    pub points: u32,
    pub max: u32,
    pub passed: bool,
    pub reason: String,
    pub category: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationOutcome {
    pub id: String,
    pub description: String,
    pub passed: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    pub id: String,
    pub title: String,
    pub points: u32,
    pub max: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub duration_ms: u64,
}

/// The rubric's grade bands: A ≥ 90 %, B ≥ 80 %, C ≥ 70 %, D ≥ 60 %, F below.
pub fn letter_grade(total: u32, max: u32) -> &'static str {
    let percent = (total * 100).checked_div(max).unwrap_or(0);
    match percent {
        90.. => "A",
        80..=89 => "B",
        70..=79 => "C",
        60..=69 => "D",
        _ => "F",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grade_bands_match_the_rubric() {
        assert_eq!(letter_grade(120, 120), "A");
        assert_eq!(letter_grade(108, 120), "A");
        assert_eq!(letter_grade(107, 120), "B");
        assert_eq!(letter_grade(96, 120), "B");
        assert_eq!(letter_grade(84, 120), "C");
        assert_eq!(letter_grade(72, 120), "D");
        assert_eq!(letter_grade(71, 120), "F");
        assert_eq!(letter_grade(0, 120), "F");
    }
}
