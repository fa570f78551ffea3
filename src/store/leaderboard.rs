//! Best score per participant, ranked. Equal scores share a rank (standard competition
//! ranking: 1, 1, 1, 4) and are marked tied; among them, whoever reached the score first is
//! listed first.

use serde::Serialize;
use sqlx::Row;

use super::{Pool, format_utc};

/// One row of the leaderboard: a participant's best score.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// 1 + the number of participants with a higher best score: equal scores share a rank.
    pub rank: u32,
    /// Whether someone else on this board has the same best score (and so the same rank).
    pub tied: bool,
    pub participant: String,
    pub best_score: i64,
    pub submissions: i64,
    /// When the best score was first reached (RFC 3339, UTC).
    pub best_at: String,
    /// Main model, cycles and agent count of the configuration that reached it.
    pub config_summary: String,
    #[serde(skip)]
    pub participant_id: String,
    #[serde(skip)]
    pub hidden: bool,
    #[serde(skip)]
    pub best_generation_id: String,
    /// The version of the challenge that graded the best score (organizer view).
    #[serde(skip)]
    pub challenge_hash: String,
    /// The best score's configuration came from this participant's tuning (organizer view).
    #[serde(skip)]
    pub tuned: bool,
}

impl Entry {
    /// The time of day of `best_at` (UTC), for a compact table.
    pub fn best_at_time(&self) -> &str {
        self.best_at.get(11..19).unwrap_or(&self.best_at)
    }

    /// The first characters of `challenge_hash`: enough to tell versions apart on a page.
    pub fn short_hash(&self) -> &str {
        short_hash(&self.challenge_hash)
    }
}

pub fn short_hash(hash: &str) -> &str {
    hash.get(..8).unwrap_or(hash)
}

/// Which rows to show: the public view skips hidden participants and, when frozen,
/// submissions made after the freeze.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub include_hidden: bool,
    pub until: Option<i64>,
}

impl View {
    pub const ORGANIZER: View = View { include_hidden: true, until: None };
}

/// The board of one challenge: only submissions graded for it count.
pub async fn ranking(pool: &Pool, view: View, challenge: &str) -> Result<Vec<Entry>, sqlx::Error> {
    let until = view.until.unwrap_or(i64::MAX);
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.hidden, p.created_at AS joined, b.best,
                (SELECT COUNT(*) FROM submissions c WHERE c.participant_id = p.id AND c.created_at <= $1 AND c.challenge = $3) AS submissions,
                f.generation_id, f.challenge_hash, f.created_at AS best_at, g.config,
                EXISTS (SELECT 1 FROM tuned_configs t
                        WHERE t.participant_id = p.id AND t.config_hash = g.config_hash) AS tuned
         FROM participants p
         JOIN (SELECT participant_id, MAX(total) AS best FROM submissions
               WHERE created_at <= $1 AND challenge = $3 GROUP BY participant_id) b ON b.participant_id = p.id
         JOIN submissions f ON f.id = (
               SELECT s.id FROM submissions s
               WHERE s.participant_id = p.id AND s.total = b.best AND s.created_at <= $1 AND s.challenge = $3
               ORDER BY s.created_at, s.id LIMIT 1)
         JOIN generations g ON g.id = f.generation_id
         WHERE p.hidden = 0 OR $2 = 1
         ORDER BY b.best DESC, f.created_at ASC, p.created_at ASC, p.name ASC",
    )
    .bind(until)
    .bind(i64::from(view.include_hidden))
    .bind(challenge)
    .fetch_all(pool)
    .await?;
    let mut entries = rows
        .iter()
        .map(|row| {
            let config: String = row.try_get("config")?;
            Ok(Entry {
                rank: 0,
                tied: false,
                participant: row.try_get("name")?,
                best_score: row.try_get("best")?,
                submissions: row.try_get("submissions")?,
                best_at: format_utc(row.try_get("best_at")?),
                config_summary: summarize(&config),
                participant_id: row.try_get("id")?,
                hidden: row.try_get::<i64, _>("hidden")? != 0,
                best_generation_id: row.try_get("generation_id")?,
                challenge_hash: row.try_get("challenge_hash")?,
                tuned: row.try_get::<bool, _>("tuned").or_else(|_| row.try_get::<i64, _>("tuned").map(|t| t != 0))?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    rank_ties(&mut entries);
    Ok(entries)
}

/// Ranks rows already ordered by best score, highest first: each group of equal scores takes
/// 1 + the number of rows above it, and a group of more than one is marked tied.
fn rank_ties(entries: &mut [Entry]) {
    let mut above = 0;
    for group in entries.chunk_by_mut(|a, b| a.best_score == b.best_score) {
        let (rank, tied) = (above as u32 + 1, group.len() > 1);
        for entry in group.iter_mut() {
            entry.rank = rank;
            entry.tied = tied;
        }
        above += group.len();
    }
}

/// A number that grows with every change to any leaderboard (submission, freeze, hide,
/// reset), whichever instance made it: cheap to poll.
pub async fn revision(pool: &Pool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT revision FROM leaderboard_revision WHERE id = 1").fetch_one(pool).await?.try_get("revision")
}

/// Records a change, inside the transaction that makes it, so no instance can see one
/// without the other.
pub(crate) async fn bump(tx: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE leaderboard_revision SET revision = revision + 1 WHERE id = 1").execute(tx).await?;
    Ok(())
}

/// "llama-3.3-70b · 2 cycles · 3 agents" from stored workshop JSON (wrapped or not).
pub fn summarize(config_json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(config_json).unwrap_or_default();
    let config = value.get("ai_configuration").unwrap_or(&value);
    let model = config.get("main_model").and_then(|m| m.as_str()).unwrap_or("?");
    let cycles = config.get("cycles").and_then(|c| c.as_u64()).unwrap_or(0);
    let agents = config.get("layer_agents").and_then(|a| a.as_array()).map_or(0, Vec::len);
    let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!("{model} · {} · {}", plural(cycles, "cycle"), plural(agents as u64, "agent"))
}

#[cfg(test)]
mod tests {
    use super::{Entry, rank_ties};

    fn entry(best_score: i64) -> Entry {
        Entry {
            rank: 0,
            tied: false,
            participant: format!("p{best_score}"),
            best_score,
            submissions: 1,
            best_at: String::new(),
            config_summary: String::new(),
            participant_id: String::new(),
            hidden: false,
            best_generation_id: String::new(),
            challenge_hash: String::new(),
            tuned: false,
        }
    }

    #[test]
    fn equal_scores_share_a_rank_and_say_so() {
        let mut rows: Vec<Entry> = [120, 120, 120, 98, 90, 90, 7].into_iter().map(entry).collect();
        rank_ties(&mut rows);
        let ranks: Vec<(u32, bool)> = rows.iter().map(|r| (r.rank, r.tied)).collect();
        assert_eq!(ranks, [(1, true), (1, true), (1, true), (4, false), (5, true), (5, true), (7, false)]);
    }
}
