//! Organizer sign-ins, shared by every instance behind a load balancer. The browser keeps a
//! random id in a cookie; the database keeps only its SHA-256 and when it expires.

use std::time::Duration;

use super::{Pool, new_id, now_ms};

/// Opens a session that lasts `lifetime` and returns the id to put in the cookie.
pub async fn open(pool: &Pool, lifetime: Duration) -> Result<String, sqlx::Error> {
    let id = new_id();
    let now = now_ms();
    // Sign-ins are rare, so this is a fine moment to forget the expired ones.
    sqlx::query("DELETE FROM organizer_sessions WHERE expires_at <= $1").bind(now).execute(pool).await?;
    sqlx::query("INSERT INTO organizer_sessions (id_hash, created_at, expires_at) VALUES ($1, $2, $3)")
        .bind(hash(&id))
        .bind(now)
        .bind(now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)))
        .execute(pool)
        .await?;
    Ok(id)
}

/// Whether `id` names a session that is open and not expired.
pub async fn is_open(pool: &Pool, id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT id_hash FROM organizer_sessions WHERE id_hash = $1 AND expires_at > $2")
        .bind(hash(id))
        .bind(now_ms())
        .fetch_optional(pool)
        .await?;
    Ok(row.is_some())
}

pub async fn close(pool: &Pool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM organizer_sessions WHERE id_hash = $1").bind(hash(id)).execute(pool).await?;
    Ok(())
}

/// What the database stores for a session id. The id is 128 random bits, so a plain hash
/// cannot be reversed by guessing.
pub fn hash(id: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, id.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
