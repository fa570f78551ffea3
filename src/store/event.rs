//! The running event: whether the public leaderboard is frozen, and resetting everything.

use sqlx::Row;

use super::{Pool, leaderboard, now_ms};

const FROZEN_AT: &str = "leaderboard_frozen_at";

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
/// Organizer sessions stay open, and the leaderboard revision keeps growing.
pub async fn reset(pool: &Pool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for table in ["submissions", "generations", "participants", "event_state"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}"))).execute(&mut *tx).await?;
    }
    leaderboard::bump(&mut tx).await?;
    tx.commit().await
}
