//! Attendees, known by a display name that is unique per event.

use sqlx::Row;

use super::{Pool, new_id, now_ms};

#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    pub id: String,
    pub name: String,
    pub hidden: bool,
    pub created_at: i64,
}

pub const MAX_NAME_CHARS: usize = 40;

/// Trims a display name and checks it: 1–40 characters, any script, no control characters.
/// Returns the name to show and the key that makes names unique (case-insensitive).
pub fn normalize_name(raw: &str) -> Result<(String, String), String> {
    let name = raw.trim();
    let length = name.chars().count();
    if length == 0 {
        return Err("Please choose a display name (1 to 40 characters).".into());
    }
    if length > MAX_NAME_CHARS {
        return Err(format!("That name has {length} characters; the limit is {MAX_NAME_CHARS}."));
    }
    if name.chars().any(char::is_control) {
        return Err("A display name cannot contain control characters.".into());
    }
    let collapsed = name.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok((collapsed.clone(), collapsed.to_lowercase()))
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Participant, sqlx::Error> {
    Ok(Participant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        hidden: row.try_get::<i64, _>("hidden")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// The participant with this display name (any case), if any.
pub async fn find_by_name(pool: &Pool, name: &str) -> Result<Option<Participant>, sqlx::Error> {
    let Ok((_, key)) = normalize_name(name) else { return Ok(None) };
    let row = sqlx::query("SELECT id, name, hidden, created_at FROM participants WHERE name_key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find(pool: &Pool, id: &str) -> Result<Option<Participant>, sqlx::Error> {
    let row = sqlx::query("SELECT id, name, hidden, created_at FROM participants WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The participant with this name, created on first use. `Ok((participant, created))`.
pub async fn get_or_create(pool: &Pool, name: &str) -> Result<Result<(Participant, bool), String>, sqlx::Error> {
    let (display, key) = match normalize_name(name) {
        Ok(pair) => pair,
        Err(problem) => return Ok(Err(problem)),
    };
    // Two requests racing for a new name both end up with the one row that won.
    let inserted = sqlx::query(
        "INSERT INTO participants (id, name, name_key, hidden, created_at) VALUES ($1, $2, $3, 0, $4)
         ON CONFLICT (name_key) DO NOTHING",
    )
    .bind(new_id())
    .bind(&display)
    .bind(&key)
    .bind(now_ms())
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    let participant = find_by_name(pool, &display).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok(Ok((participant, inserted)))
}

pub async fn all(pool: &Pool) -> Result<Vec<Participant>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, name, hidden, created_at FROM participants ORDER BY created_at, name")
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// A participant with how much they did: the organizer's overview, counted in the database
/// rather than by loading every generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub participant: Participant,
    pub generations: i64,
    pub submissions: i64,
    pub best: Option<i64>,
}

pub async fn activity(pool: &Pool) -> Result<Vec<Activity>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.hidden, p.created_at,
                (SELECT COUNT(*) FROM generations g WHERE g.participant_id = p.id) AS generations,
                (SELECT COUNT(*) FROM submissions s WHERE s.participant_id = p.id) AS submissions,
                (SELECT MAX(s.total) FROM submissions s WHERE s.participant_id = p.id) AS best
         FROM participants p ORDER BY p.created_at, p.name",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Activity {
                participant: from_row(row)?,
                generations: row.try_get("generations")?,
                submissions: row.try_get("submissions")?,
                best: row.try_get("best")?,
            })
        })
        .collect()
}

pub async fn set_hidden(pool: &Pool, id: &str, hidden: bool) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("UPDATE participants SET hidden = $1 WHERE id = $2")
        .bind(i64::from(hidden))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let found = done.rows_affected() == 1;
    if found {
        super::leaderboard::bump(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_checked_and_keyed_case_insensitively() {
        assert_eq!(normalize_name("  Ada   Lovelace "), Ok(("Ada Lovelace".into(), "ada lovelace".into())));
        assert_eq!(normalize_name("Zoë 🚀").unwrap().0, "Zoë 🚀");
        assert_eq!(normalize_name("李小龍").unwrap().1, "李小龍");
        assert!(normalize_name("   ").is_err());
        assert!(normalize_name(&"x".repeat(40)).is_ok());
        assert!(normalize_name(&"x".repeat(41)).unwrap_err().contains("41 characters"));
        assert!(normalize_name(&"é".repeat(40)).is_ok(), "characters, not bytes");
        assert!(normalize_name("a\u{0}b").is_err());
    }
}
