//! What an attendee measured (evaluations, comparisons, tuning searches), and the
//! configurations tuning produced for them.

use std::collections::HashSet;

use sqlx::Row;

use super::{Pool, new_id, now_ms};

#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub kind: String,
    /// The `done` event's data.
    pub result: serde_json::Value,
    pub created_at: i64,
}

pub async fn insert(
    pool: &Pool,
    participant_id: &str,
    challenge: &str,
    kind: &str,
    result: &serde_json::Value,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO evaluations (id, participant_id, challenge, kind, result, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(participant_id)
    .bind(challenge)
    .bind(kind)
    .bind(result.to_string())
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(id)
}

/// The participant's newest measurement on `challenge`.
pub async fn latest(pool: &Pool, participant_id: &str, challenge: &str) -> Result<Option<Stored>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, kind, result, created_at FROM evaluations WHERE participant_id = $1 AND challenge = $2
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(participant_id)
    .bind(challenge)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let result: String = row.try_get("result")?;
        Ok(Stored {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            result: serde_json::from_str(&result).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            created_at: row.try_get("created_at")?,
        })
    })
    .transpose()
}

/// Remembers that tuning gave `participant_id` the configuration with digest `hash`.
pub async fn record_tuned(pool: &Pool, participant_id: &str, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tuned_configs (participant_id, config_hash, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (participant_id, config_hash) DO NOTHING",
    )
    .bind(participant_id)
    .bind(hash)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// The digests of every configuration tuning gave `participant_id`.
pub async fn tuned(pool: &Pool, participant_id: &str) -> Result<HashSet<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT config_hash FROM tuned_configs WHERE participant_id = $1")
        .bind(participant_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(|row| row.try_get("config_hash")).collect()
}
