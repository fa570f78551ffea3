//! Graded submissions: one per generation, so a retried request never counts twice.

use sqlx::Row;

use super::{Pool, new_id, now_ms};
use crate::grader::GradeReport;

#[derive(Debug, Clone)]
pub struct Submission {
    pub id: String,
    pub participant_id: String,
    pub generation_id: String,
    pub total: i64,
    pub max_points: i64,
    pub status: String,
    /// The challenge and the version of it that graded this (also in `report`, kept as
    /// columns so a board can be read per challenge).
    pub challenge: String,
    pub challenge_hash: String,
    pub report: GradeReport,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, participant_id, generation_id, total, max_points, status, challenge, challenge_hash, report, created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Submission, sqlx::Error> {
    let report: String = row.try_get("report")?;
    Ok(Submission {
        id: row.try_get("id")?,
        participant_id: row.try_get("participant_id")?,
        generation_id: row.try_get("generation_id")?,
        total: row.try_get("total")?,
        max_points: row.try_get("max_points")?,
        status: row.try_get("status")?,
        challenge: row.try_get("challenge")?,
        challenge_hash: row.try_get("challenge_hash")?,
        report: serde_json::from_str(&report).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_at: row.try_get("created_at")?,
    })
}

/// Stores the grade of a generation. If that generation was already submitted (a retry, or
/// two clicks racing, on any instance), the stored submission is returned instead and
/// nothing is added: the unique generation_id decides, not a check before the insert.
pub async fn record(
    pool: &Pool,
    participant_id: &str,
    generation_id: &str,
    report: &GradeReport,
) -> Result<(Submission, bool), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO submissions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (generation_id) DO NOTHING"
    )))
    .bind(new_id())
    .bind(participant_id)
    .bind(generation_id)
    .bind(i64::from(report.total))
    .bind(i64::from(report.max))
    .bind(report.status.as_str())
    .bind(&report.challenge)
    .bind(&report.challenge_hash)
    .bind(serde_json::to_string(report).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        super::leaderboard::bump(&mut tx).await?;
    }
    tx.commit().await?;
    let stored = for_generation(pool, generation_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok((stored, inserted))
}

pub async fn for_generation(pool: &Pool, generation_id: &str) -> Result<Option<Submission>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM submissions WHERE generation_id = $1")))
        .bind(generation_id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every submission, oldest first; optionally one participant's only.
pub async fn list(pool: &Pool, participant_id: Option<&str>) -> Result<Vec<Submission>, sqlx::Error> {
    let rows = match participant_id {
        Some(id) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM submissions WHERE participant_id = $1 ORDER BY created_at, id"
            )))
            .bind(id)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM submissions ORDER BY created_at, id")))
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}
