//! A participant's results on the challenge page, rendered by the server: each generation's
//! code (with what changed since the one before), its grade, and the history of them all.
//! The same partials serve the page's first load, the end of a run and a submission.

use askama::Template;

use crate::error::AppError;
use crate::grader::GradeStatus;
use crate::metrics::Limit;
use crate::state::AppState;
use crate::store::generations::{self, Generation};
use crate::store::participants::Participant;
use crate::store::submissions::{self, Submission};
use crate::store::{format_utc, leaderboard};
use crate::web::api::{grade_error, grader};
use crate::web::challenge::too_fast;
use crate::web::leaderboard::public_view;
use crate::web::markdown::escape_text;

/// `ms` as a `<time>` the page shows in the reader's own time zone (UTC until then).
pub fn time_html(ms: i64) -> String {
    let iso = format_utc(ms);
    let short = format!("{} UTC", iso.get(11..16).unwrap_or(&iso));
    format!(r#"<time datetime="{iso}">{short}</time>"#)
}

#[derive(Template)]
#[template(path = "results/generation.html")]
struct GenerationCard<'a> {
    id: &'a str,
    number: usize,
    when: String,
    code: &'a str,
    diff: Option<String>,
    report: Option<String>,
    /// Why the last Submit did not grade it (the grader was busy, …).
    problem: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "results/report.html")]
struct ReportTemplate<'a> {
    generation: &'a str,
    report: &'a crate::grader::GradeReport,
    graded: bool,
    status: &'static str,
    standing: Option<String>,
}

struct HistoryRow {
    id: String,
    number: usize,
    when: String,
    score: String,
}

#[derive(Template)]
#[template(path = "results/history.html")]
struct HistoryTemplate<'a> {
    challenge: &'a str,
    rows: Vec<HistoryRow>,
}

/// This participant's generations for `challenge`, oldest first (their numbers are positions).
async fn generations_of(
    state: &AppState,
    participant: &Participant,
    challenge: &str,
) -> Result<Vec<Generation>, AppError> {
    let mut list: Vec<Generation> = generations::list(&state.pool, Some(&participant.id))
        .await?
        .into_iter()
        .filter(|g| g.challenge == challenge)
        .collect();
    list.sort_by_key(|g| g.created_at);
    Ok(list)
}

/// What the challenge page shows of `participant`'s work on `challenge`, from one read of their
/// generations: the card of the one `wanted` names (else the newest; empty before the first),
/// with `problem` if submitting it just failed, and the history of them all.
pub async fn results_html(
    state: &AppState,
    participant: &Participant,
    challenge: &str,
    wanted: Option<&str>,
    problem: Option<&str>,
) -> Result<(String, String), AppError> {
    let all = generations_of(state, participant, challenge).await?;
    let shown = match wanted {
        Some(id) => all.iter().find(|g| g.id == id),
        None => all.last(),
    };
    let card = match shown {
        Some(generation) => generation_card(state, participant, &all, generation, problem).await?,
        None => String::new(),
    };
    Ok((card, history_html(state, participant, &all, challenge).await?))
}

/// The card of `generation`, one of `all` (the participant's for its challenge, oldest first),
/// with its grade if it was submitted, or `problem` if submitting it just failed.
async fn generation_card(
    state: &AppState,
    participant: &Participant,
    all: &[Generation],
    generation: &Generation,
    problem: Option<&str>,
) -> Result<String, AppError> {
    let position = all.iter().position(|g| g.id == generation.id).unwrap_or(all.len());
    let previous = position.checked_sub(1).and_then(|i| all.get(i)).filter(|p| !p.code.is_empty());
    let report = match submissions::for_generation(&state.pool, &generation.id).await? {
        Some(submission) => Some(report_html(state, participant, &submission).await?),
        None => None,
    };
    let card = GenerationCard {
        id: &generation.id,
        number: position + 1,
        when: time_html(generation.created_at),
        code: &generation.code,
        diff: previous.and_then(|p| diff_html(&p.code, &generation.code)),
        report,
        problem,
    };
    card.render().map_err(AppError::from)
}

/// The history table of `all`, `participant`'s generations for `challenge`, oldest first.
async fn history_html(
    state: &AppState,
    participant: &Participant,
    all: &[Generation],
    challenge: &str,
) -> Result<String, AppError> {
    let graded: Vec<Submission> = submissions::list(&state.pool, Some(&participant.id)).await?;
    let rows = all
        .iter()
        .enumerate()
        .rev()
        .map(|(i, g)| {
            let score = match graded.iter().find(|s| s.generation_id == g.id) {
                Some(s) if s.status == GradeStatus::Graded.as_str() => format!("{} / {}", s.total, s.max_points),
                Some(s) => format!("0 / {} ({})", s.max_points, status_label(&s.status)),
                None if g.code.is_empty() => "no code found".into(),
                None => "not submitted".into(),
            };
            HistoryRow { id: g.id.clone(), number: i + 1, when: time_html(g.created_at), score }
        })
        .collect();
    HistoryTemplate { challenge, rows }.render().map_err(AppError::from)
}

async fn report_html(state: &AppState, participant: &Participant, submission: &Submission) -> Result<String, AppError> {
    let report = &submission.report;
    ReportTemplate {
        generation: &submission.generation_id,
        report,
        graded: report.status == GradeStatus::Graded,
        status: status_label(report.status.as_str()),
        standing: standing(state, participant, &submission.challenge, report.max).await?,
    }
    .render()
    .map_err(AppError::from)
}

/// Where the participant's best score stands on the public board, as a sentence; none while the
/// board is frozen (no spoilers) or for a hidden name.
async fn standing(
    state: &AppState,
    participant: &Participant,
    challenge: &str,
    max: u32,
) -> Result<Option<String>, AppError> {
    let (view, frozen) = public_view(state).await?;
    if frozen.is_some() {
        return Ok(None);
    }
    let board = leaderboard::ranking(&state.pool, view, challenge).await?;
    let Some(mine) = board.iter().find(|row| row.participant_id == participant.id) else { return Ok(None) };
    let others = board.iter().filter(|row| row.rank == mine.rank).count() - 1;
    let tie = match others {
        0 => String::new(),
        1 => ", tied with 1 other".into(),
        n => format!(", tied with {n} others"),
    };
    Ok(Some(format!(
        "Your best score, {} / {max}, ranks {} of {} on the leaderboard{tie}.",
        mine.best_score,
        ordinal(mine.rank as usize),
        board.len()
    )))
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// A grade's status as the participant reads it.
fn status_label(status: &str) -> &'static str {
    match status {
        "graded" => "graded",
        "rejected" => "rejected before running",
        "failed_validation" => "the basic calls failed",
        "timed_out" => "timed out",
        _ => "not graded",
    }
}

/// The lines that changed from `before` to `after`, marked `+`/`-` with a little context;
/// none when nothing changed.
fn diff_html(before: &str, after: &str) -> Option<String> {
    let diff = similar::TextDiff::from_lines(before, after);
    if diff.ratio() == 1.0 {
        return None;
    }
    let mut html = String::new();
    for group in diff.grouped_ops(2) {
        if !html.is_empty() {
            html.push_str("<span class=\"gap\">⋯</span>\n");
        }
        for op in group {
            for change in diff.iter_changes(&op) {
                let (tag, sign) = match change.tag() {
                    similar::ChangeTag::Delete => ("del", '-'),
                    similar::ChangeTag::Insert => ("ins", '+'),
                    similar::ChangeTag::Equal => ("span", ' '),
                };
                let line = escape_text(change.value().trim_end_matches('\n'));
                html.push_str(&format!("<{tag}>{sign} {line}</{tag}>\n"));
            }
        }
    }
    Some(html)
}

/// `id` if it is one of `participant`'s generations.
pub async fn own_generation(state: &AppState, participant: &Participant, id: &str) -> Result<Generation, AppError> {
    generations::find(&state.pool, id.trim())
        .await?
        .filter(|g| g.participant_id == participant.id)
        .ok_or_else(|| AppError::NotFound(format!("{} has no generation with that id.", participant.name)))
}

/// Grades `generation` once: submitting it again returns the stored grade, so a retried
/// request on bad Wi-Fi never counts twice. A participant has at most one submission being
/// graded at a time, so a flood delays only its sender.
pub async fn grade(
    state: &AppState,
    participant: &Participant,
    generation: &Generation,
) -> Result<Submission, AppError> {
    let retry_after_s = state.settings.grade_timeout.as_secs().max(1);
    // A retried request for a generation being graded right now waits for that grade.
    let waiting_until = std::time::Instant::now() + state.settings.grade_timeout * 2;
    loop {
        if let Some(existing) = submissions::for_generation(&state.pool, &generation.id).await? {
            return Ok(existing);
        }
        let Some(_slot) = state.live.fair_use.grading_slot(&participant.id, &generation.id, retry_after_s)? else {
            if std::time::Instant::now() > waiting_until {
                return Err(too_fast(Limit::GradingPerParticipant, "submitting", retry_after_s));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let grader = grader(state)?;
        let challenge = grader.challenge(Some(&generation.challenge)).map_err(AppError::internal)?;
        state
            .live
            .submit_limit
            .check(&participant.id)
            .map_err(|wait| too_fast(Limit::SubmitPerMinute, "submitting", wait))?;
        let report = grader.grade(challenge, &generation.code).await.map_err(|e| {
            state.live.submit_limit.refund(&participant.id);
            grade_error(e)
        })?;
        let (stored, inserted) = submissions::record(&state.pool, &participant.id, &generation.id, &report).await?;
        if inserted {
            state.live.leaderboard_changed();
        }
        return Ok(stored);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_marks_changed_lines_and_escapes_them() {
        let html = diff_html("def f():\n    return 1\n", "def f():\n    return 1 < 2\n").unwrap();
        assert!(html.contains("<del>-     return 1</del>"), "{html}");
        assert!(html.contains("<ins>+     return 1 &#60; 2</ins>"), "{html}");
        assert_eq!(diff_html("same\n", "same\n"), None);
    }

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(ordinal).to_vec();
        assert_eq!(got, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]);
    }

    #[test]
    fn times_are_marked_for_the_reader_s_zone() {
        assert_eq!(time_html(1_795_456_391_000), r#"<time datetime="2026-11-23T17:53:11Z">17:53 UTC</time>"#);
    }
}
