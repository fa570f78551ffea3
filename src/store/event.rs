//! The running event: whether the public leaderboard is frozen, and resetting everything.

use sqlx::Row;

use super::{Pool, leaderboard, now_ms};

const FROZEN_AT: &str = "leaderboard_frozen_at";
/// The challenges attendees may pick, ids separated by commas, as the organizer last chose.
const ACTIVE_CHALLENGES: &str = "active_challenges";

/// Set while the organizer has turned evaluation and tuning off (a competition is on).
const LAB_OFF: &str = "evaluation_off";

/// Whether the organizer turned evaluation and tuning off.
pub async fn lab_off(pool: &Pool) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT value FROM event_state WHERE key = $1").bind(LAB_OFF).fetch_optional(pool).await?;
    Ok(row.is_some())
}

pub async fn set_lab_off(pool: &Pool, off: bool) -> Result<(), sqlx::Error> {
    if off {
        sqlx::query(
            "INSERT INTO event_state (key, value, updated_at) VALUES ($1, '1', $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(LAB_OFF)
        .bind(now_ms())
        .execute(pool)
        .await?;
    } else {
        sqlx::query("DELETE FROM event_state WHERE key = $1").bind(LAB_OFF).execute(pool).await?;
    }
    Ok(())
}

/// The challenges the organizer opened on the organizer page; `None` until they chose.
pub async fn active_challenges(pool: &Pool) -> Result<Option<Vec<String>>, sqlx::Error> {
    let row = sqlx::query("SELECT value FROM event_state WHERE key = $1")
        .bind(ACTIVE_CHALLENGES)
        .fetch_optional(pool)
        .await?;
    let value = row.map(|r| r.try_get::<String, _>("value")).transpose()?;
    Ok(value.map(|v| v.split(',').filter(|id| !id.is_empty()).map(str::to_string).collect()))
}

pub async fn set_active_challenges(pool: &Pool, ids: &[String]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO event_state (key, value, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(ACTIVE_CHALLENGES)
    .bind(ids.join(","))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    leaderboard::bump(&mut tx).await?;
    tx.commit().await
}

/// When the public leaderboard was frozen (ms), if it is.
pub async fn frozen_at(pool: &Pool) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query("SELECT value FROM event_state WHERE key = $1").bind(FROZEN_AT).fetch_optional(pool).await?;
    Ok(row.and_then(|r| r.try_get::<String, _>("value").ok()).and_then(|v| v.parse().ok()))
}

pub async fn freeze(pool: &Pool, frozen: bool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if frozen {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO event_state (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(FROZEN_AT)
        .bind(now.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query("DELETE FROM event_state WHERE key = $1").bind(FROZEN_AT).execute(&mut *tx).await?;
    }
    leaderboard::bump(&mut tx).await?;
    tx.commit().await
}

/// Deletes every participant, generation and submission, and unfreezes, in one transaction.
/// Organizer sessions and the chosen challenges stay, and the leaderboard revision keeps growing.
pub async fn reset(pool: &Pool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for table in ["tuned_configs", "evaluations", "submissions", "generations", "participants"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM event_state WHERE key <> $1").bind(ACTIVE_CHALLENGES).execute(&mut *tx).await?;
    leaderboard::bump(&mut tx).await?;
    tx.commit().await
}
