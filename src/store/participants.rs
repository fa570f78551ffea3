//! Attendees: a display name that is unique per event (as people read it, not as bytes
//! compare), and the secret tokens that prove a request comes from its owner.
//!
//! A name is claimed once (`claim`), which creates the participant and its first token;
//! other devices sign in with a one-time code; the organizer can release a name. The
//! database keeps only SHA-256 hashes of tokens and codes.

use std::time::Duration;

use sqlx::Row;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use super::sessions::hash;
use super::{Pool, new_id, now_ms};

#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    pub id: String,
    pub name: String,
    pub hidden: bool,
    pub created_at: i64,
}

pub const MAX_NAME_CHARS: usize = 40;

/// Marks name keys computed by [`normalize_name`]; keys of older databases were the plain
/// lower-cased name and are upgraded at start-up ([`upgrade_name_keys`]). A control
/// character, which no name (old or new) may contain, so no old key can look upgraded.
const KEY_PREFIX: &str = "\u{1}2:";

/// Letters that render as nothing (Hangul fillers, the braille blank): allowed by their general
/// category, yet a name made of them looks empty or like another name.
const BLANK_LETTERS: &[char] = &['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}', '\u{2800}'];

/// Trims a display name and checks it: 1–40 characters, any script, nothing invisible.
/// Returns the name to show (NFC, inner whitespace collapsed) and the key that makes names
/// unique: NFKC, lower case, then the Unicode TS #39 confusable skeleton, so `Ａda`, `Аda`
/// (Cyrillic) and `ADA` are all the name `Ada`.
pub fn normalize_name(raw: &str) -> Result<(String, String), String> {
    if let Some(c) = raw.chars().find(|&c| invisible(c)) {
        return Err(format!(
            "A display name cannot contain invisible, control or text-direction characters (it has U+{:04X}); \
             please type it again.",
            u32::from(c)
        ));
    }
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let name: String = collapsed.nfc().collect();
    let length = name.chars().count();
    if length == 0 {
        return Err("Please choose a display name (1 to 40 characters).".into());
    }
    if length > MAX_NAME_CHARS {
        return Err(format!("That name has {length} characters; the limit is {MAX_NAME_CHARS}."));
    }
    Ok((name.clone(), name_key(&name)))
}

/// Control, format (zero-width joiners, bidi overrides), private-use, unassigned and
/// line/paragraph separator characters, and blank letters.
fn invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) && c != '\t'
        || BLANK_LETTERS.contains(&c)
}

fn name_key(name: &str) -> String {
    let folded: String = name.nfkc().collect::<String>().to_lowercase();
    // Variation selectors only choose a glyph style; a trailing one must not make a new name.
    let folded: String = folded.chars().filter(|&c| !is_variation_selector(c)).collect();
    let skeleton: String = unicode_security::skeleton(&folded).collect::<String>().to_lowercase();
    format!("{KEY_PREFIX}{skeleton}")
}

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{180B}'..='\u{180D}')
}

const COLUMNS: &str = "p.id, p.name, p.hidden, p.created_at";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Participant, sqlx::Error> {
    Ok(Participant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        hidden: row.try_get::<i64, _>("hidden")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// The participant whose name reads as `name`, if any.
pub async fn find_by_name(pool: &Pool, name: &str) -> Result<Option<Participant>, sqlx::Error> {
    let Ok((display, key)) = normalize_name(name) else { return Ok(None) };
    // A name from an older database whose new key collided keeps its old one.
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM participants p WHERE p.name_key = $1 OR p.name_key = $2"
    )))
    .bind(key)
    .bind(display.to_lowercase())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find(pool: &Pool, id: &str) -> Result<Option<Participant>, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM participants p WHERE p.id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A fresh participant token: 256 random bits, hex.
fn new_token() -> String {
    format!("{}{}", new_id(), new_id())
}

/// Whether `token` has the shape of one this server hands out (checked before any query).
fn token_shape(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The participant `token` names, if it is a live token.
pub async fn by_token(pool: &Pool, token: &str) -> Result<Option<Participant>, sqlx::Error> {
    if !token_shape(token) {
        return Ok(None);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM participant_tokens t JOIN participants p ON p.id = t.participant_id
         WHERE t.token_hash = $1 AND p.released = 0"
    )))
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// What claiming a name came to.
#[derive(Debug)]
pub enum Claim {
    /// The caller holds the name now, with this new token (a new participant, or one the
    /// organizer released).
    Claimed { participant: Participant, token: String, created: bool },
    /// The caller's token already names this participant: nothing changes.
    AlreadyYours(Participant),
    /// Someone else holds the name (shown as they wrote it).
    Taken(String),
}

/// Claims `name`. `held` is the token the caller already has, if any. Two requests racing for
/// one name: exactly one gets it, the other hears it is taken.
pub async fn claim(pool: &Pool, name: &str, held: Option<&str>) -> Result<Result<Claim, String>, sqlx::Error> {
    let (display, key) = match normalize_name(name) {
        Ok(pair) => pair,
        Err(problem) => return Ok(Err(problem)),
    };
    if let Some(token) = held
        && let Some(mine) = by_token(pool, token).await?
        && find_by_name(pool, &display).await?.is_some_and(|p| p.id == mine.id)
    {
        return Ok(Ok(Claim::AlreadyYours(mine)));
    }
    let token = new_token();
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let id = new_id();
    let created = sqlx::query(
        "INSERT INTO participants (id, name, name_key, hidden, created_at, released) VALUES ($1, $2, $3, 0, $4, 0)
         ON CONFLICT (name_key) DO NOTHING",
    )
    .bind(&id)
    .bind(&display)
    .bind(&key)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let id = if created {
        id
    } else {
        // A released name is taken over by whoever claims it first.
        let row = sqlx::query("UPDATE participants SET released = 0 WHERE name_key = $1 AND released = 1 RETURNING id")
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            Some(row) => row.try_get("id")?,
            None => {
                tx.rollback().await?;
                let holder = find_by_name(pool, &display).await?.map_or(display, |p| p.name);
                return Ok(Ok(Claim::Taken(holder)));
            }
        }
    };
    insert_token(&mut tx, &id, &token, now).await?;
    tx.commit().await?;
    let participant = find(pool, &id).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok(Ok(Claim::Claimed { participant, token, created }))
}

/// Gives participant `id` the display name `name`, keeping their scores and sign-ins. The error
/// is a sentence: the name is not valid, or someone else holds one that looks the same.
pub async fn rename(pool: &Pool, id: &str, name: &str) -> Result<Result<Participant, String>, sqlx::Error> {
    let (display, key) = match normalize_name(name) {
        Ok(pair) => pair,
        Err(problem) => return Ok(Err(problem)),
    };
    let changed = sqlx::query("UPDATE participants SET name = $1, name_key = $2 WHERE id = $3")
        .bind(&display)
        .bind(&key)
        .bind(id)
        .execute(pool)
        .await;
    match changed {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let holder = find_by_name(pool, &display).await?.map_or(display, |p| p.name);
            Ok(Err(format!(
                "The name {holder:?} is taken (names that look the same count as one); please pick another."
            )))
        }
        Err(e) => Err(e),
        Ok(_) => Ok(Ok(find(pool, id).await?.ok_or(sqlx::Error::RowNotFound)?)),
    }
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    token: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO participant_tokens (token_hash, participant_id, created_at) VALUES ($1, $2, $3)")
        .bind(hash(token))
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Participants from before tokens existed kept their id in the browser's cookie. The first
/// time that browser comes back, the id buys one token (then never again: the participant
/// has a token from then on). `None` when `id` is not such a participant.
pub async fn upgrade_legacy(pool: &Pool, id: &str) -> Result<Option<(Participant, String)>, sqlx::Error> {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let token = new_token();
    let upgraded = sqlx::query(
        "INSERT INTO participant_tokens (token_hash, participant_id, created_at)
         SELECT $1, p.id, $3 FROM participants p WHERE p.id = $2 AND p.released = 0
           AND NOT EXISTS (SELECT 1 FROM participant_tokens t WHERE t.participant_id = p.id)",
    )
    .bind(hash(&token))
    .bind(id)
    .bind(now_ms())
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if !upgraded {
        return Ok(None);
    }
    Ok(find(pool, id).await?.map(|p| (p, token)))
}

/// Characters of sign-in codes: no 0/O, 1/I/L, so a code read aloud or off a phone is typed right.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_CHARS: usize = 10;

/// A code as typed: upper case, without spaces or dashes.
fn clean_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// A one-time code that signs `participant_id` in on another device within `lifetime`
/// (e.g. `K7MQ2-XW9RT`, about 49 bits). Making one cancels the previous one.
pub async fn new_sign_in_code(pool: &Pool, participant_id: &str, lifetime: Duration) -> Result<String, sqlx::Error> {
    let code: String = {
        use rand::RngExt;
        let mut rng = rand::rng();
        (0..CODE_CHARS).map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char).collect()
    };
    let now = now_ms();
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM participant_codes WHERE expires_at <= $1 OR participant_id = $2")
        .bind(now)
        .bind(participant_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO participant_codes (code_hash, participant_id, expires_at) VALUES ($1, $2, $3)")
        .bind(hash(&code))
        .bind(participant_id)
        .bind(now.saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(format!("{}-{}", &code[..CODE_CHARS / 2], &code[CODE_CHARS / 2..]))
}

/// Redeems a sign-in code once: the participant it was made for and a new token for this
/// device, or `None` when the code is unknown, used or expired.
pub async fn redeem_sign_in_code(pool: &Pool, code: &str) -> Result<Option<(Participant, String)>, sqlx::Error> {
    let code = clean_code(code);
    if code.len() != CODE_CHARS {
        return Ok(None);
    }
    let now = now_ms();
    let mut tx = pool.begin().await?;
    // Deleting is the redemption: of two devices racing with one code, one gets the row.
    let row =
        sqlx::query("DELETE FROM participant_codes WHERE code_hash = $1 AND expires_at > $2 RETURNING participant_id")
            .bind(hash(&code))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let id: String = row.try_get("participant_id")?;
    let token = new_token();
    insert_token(&mut tx, &id, &token, now).await?;
    tx.commit().await?;
    Ok(find(pool, &id).await?.map(|p| (p, token)))
}

/// The organizer frees a name: every device holding it is signed out, its codes are void,
/// and the next claim of the name takes the participant over (scores and history stay).
pub async fn release(pool: &Pool, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let found = sqlx::query("UPDATE participants SET released = 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    for table in ["participant_tokens", "participant_codes"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE participant_id = $1")))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(found)
}

/// Gives names stored by older versions (a plain lower-cased key) the confusable-aware key.
/// When two old names now read the same, the older keeps it and the other keeps its old key
/// (both still work; neither can be claimed again by a lookalike of the first).
pub async fn upgrade_name_keys(pool: &Pool) -> Result<(), sqlx::Error> {
    let rows = sqlx::query("SELECT id, name FROM participants WHERE name_key NOT LIKE $1 ORDER BY created_at, id")
        .bind(format!("{KEY_PREFIX}%"))
        .fetch_all(pool)
        .await?;
    for row in rows {
        let (id, name): (String, String) = (row.try_get("id")?, row.try_get("name")?);
        // Names that are no longer acceptable (invisible characters) keep their old key.
        let Ok((_, key)) = normalize_name(&name) else { continue };
        sqlx::query(
            "UPDATE participants SET name_key = $1 WHERE id = $2
             AND NOT EXISTS (SELECT 1 FROM participants other WHERE other.name_key = $1)",
        )
        .bind(key)
        .bind(id)
        .execute(pool)
        .await?;
    }
    Ok(())
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
    /// The best score in each challenge submitted to: (challenge id, score), by id.
    pub best: Vec<(String, i64)>,
}

pub async fn activity(pool: &Pool) -> Result<Vec<Activity>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.hidden, p.created_at,
                (SELECT COUNT(*) FROM generations g WHERE g.participant_id = p.id) AS generations,
                (SELECT COUNT(*) FROM submissions s WHERE s.participant_id = p.id) AS submissions
         FROM participants p ORDER BY p.created_at, p.name",
    )
    .fetch_all(pool)
    .await?;
    // Scores of different challenges are never compared: one best per challenge.
    let bests = sqlx::query(
        "SELECT participant_id, challenge, MAX(total) AS best FROM submissions
         GROUP BY participant_id, challenge ORDER BY participant_id, challenge",
    )
    .fetch_all(pool)
    .await?;
    let mut best_of: std::collections::HashMap<String, Vec<(String, i64)>> = std::collections::HashMap::new();
    for row in &bests {
        let best: i64 = row.try_get("best")?;
        best_of.entry(row.try_get("participant_id")?).or_default().push((row.try_get("challenge")?, best));
    }
    rows.iter()
        .map(|row| {
            let participant = from_row(row)?;
            Ok(Activity {
                best: best_of.remove(&participant.id).unwrap_or_default(),
                participant,
                generations: row.try_get("generations")?,
                submissions: row.try_get("submissions")?,
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
    fn names_are_trimmed_checked_and_keyed() {
        assert_eq!(normalize_name("  Ada   Lovelace ").unwrap().0, "Ada Lovelace");
        assert_eq!(normalize_name("Zoë 🚀").unwrap().0, "Zoë 🚀");
        assert!(normalize_name("李小龍").is_ok());
        assert!(normalize_name("   ").is_err());
        assert!(normalize_name(&"x".repeat(40)).is_ok());
        assert!(normalize_name(&"x".repeat(41)).unwrap_err().contains("41 characters"));
        assert!(normalize_name(&"é".repeat(40)).is_ok(), "characters, not bytes");
        assert!(normalize_name("a\u{0}b").is_err());
    }

    #[test]
    fn lookalikes_share_a_key_and_invisible_characters_are_refused() {
        let key = |name: &str| normalize_name(name).unwrap().1;
        for same in ["ADA", "ada", "\u{FF21}da", "\u{0410}da", "Ada\u{FE0F}"] {
            assert_eq!(key(same), key("Ada"), "{same:?}");
        }
        assert_eq!(key("Zoe\u{0308}"), key("Zo\u{00EB}"), "NFD and NFC");
        assert_eq!(normalize_name("Zoe\u{0308}").unwrap().0, "Zo\u{00EB}", "shown composed");
        assert_ne!(key("Ada"), key("Adam"));
        assert_ne!(key("Zoë"), key("Zoe"));
        for bad in
            ["A\u{200D}da", "Ada\u{200B}", "\u{202E}adA", "Ad\u{2066}a", "\u{3164}", "Ada\u{3164}", "Ada\u{00AD}"]
        {
            let problem = normalize_name(bad).unwrap_err();
            assert!(problem.contains("invisible"), "{bad:?}: {problem}");
        }
    }

    #[test]
    fn codes_are_cleaned_before_lookup() {
        assert_eq!(clean_code(" k7mq2-xw9rt "), "K7MQ2XW9RT");
        assert!(token_shape(&new_token()));
        assert!(!token_shape("ada"));
    }
}
