//! What an attendee's MoA system produced for the challenge prompt.

use sqlx::Row;

use super::{Pool, new_id, now_ms};

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub id: String,
    pub participant_id: String,
    pub challenge: String,
    /// The version of the challenge it was made for (its content digest).
    pub challenge_hash: String,
    /// The full MoA configuration, as workshop JSON.
    pub config: serde_json::Value,
    pub prompt: String,
    /// The main model's whole answer.
    pub answer: String,
    /// The function extracted from the answer (empty when none was found).
    pub code: String,
    /// Per-agent latency and tokens, and the run's totals.
    pub timings: serde_json::Value,
    pub created_at: i64,
    /// A digest of the configuration (empty for generations from before it was kept).
    pub config_hash: String,
}

pub struct NewGeneration<'a> {
    pub participant_id: &'a str,
    pub challenge: &'a str,
    pub challenge_hash: &'a str,
    pub config: &'a serde_json::Value,
    pub prompt: &'a str,
    pub answer: &'a str,
    pub code: &'a str,
    pub timings: &'a serde_json::Value,
    /// `evaluate::config_hash` of the configuration.
    pub config_hash: &'a str,
}

const COLUMNS: &str =
    "id, participant_id, challenge, challenge_hash, config, prompt, answer, code, timings, created_at, config_hash";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Generation, sqlx::Error> {
    let json = |column: &str| -> Result<serde_json::Value, sqlx::Error> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    Ok(Generation {
        id: row.try_get("id")?,
        participant_id: row.try_get("participant_id")?,
        challenge: row.try_get("challenge")?,
        challenge_hash: row.try_get("challenge_hash")?,
        config: json("config")?,
        prompt: row.try_get("prompt")?,
        answer: row.try_get("answer")?,
        code: row.try_get("code")?,
        timings: json("timings")?,
        created_at: row.try_get("created_at")?,
        config_hash: row.try_get("config_hash")?,
    })
}

pub async fn insert(pool: &Pool, new: NewGeneration<'_>) -> Result<Generation, sqlx::Error> {
    let id = new_id();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO generations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )))
    .bind(&id)
    .bind(new.participant_id)
    .bind(new.challenge)
    .bind(new.challenge_hash)
    .bind(new.config.to_string())
    .bind(new.prompt)
    .bind(new.answer)
    .bind(new.code)
    .bind(new.timings.to_string())
    .bind(now_ms())
    .bind(new.config_hash)
    .execute(pool)
    .await?;
    find(pool, &id).await?.ok_or(sqlx::Error::RowNotFound)
}

pub async fn find(pool: &Pool, id: &str) -> Result<Option<Generation>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM generations WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every generation, newest first; optionally one participant's only.
pub async fn list(pool: &Pool, participant_id: Option<&str>) -> Result<Vec<Generation>, sqlx::Error> {
    let rows = match participant_id {
        Some(id) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM generations WHERE participant_id = $1 ORDER BY created_at DESC"
            )))
            .bind(id)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM generations ORDER BY created_at DESC")))
                .fetch_all(pool)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}
