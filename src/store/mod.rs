//! The database: SQLite by default, PostgreSQL when `DATABASE_URL` says so. One pool type
//! (`AnyPool`) and portable SQL with `$n` parameters, so both run the same migrations and
//! queries. SQL lives in the entity modules below, in functions taking the pool.

pub mod evaluations;
pub mod event;
pub mod generations;
pub mod leaderboard;
pub mod participants;
pub mod sessions;
pub mod submissions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;

pub type Pool = sqlx::AnyPool;

/// `migrations/*.sql`, compiled into the binary, so a copied binary needs no files beside it.
/// Versions and descriptions come from the file names (`0004_participant_tokens.sql`).
static MIGRATOR: Migrator = sqlx::migrate!();

/// How long start-up waits for the database to answer at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the database named by `url` (creating a SQLite file and its folder if needed) and
/// brings its schema up to date.
pub async fn connect(url: &str) -> Result<Pool, String> {
    sqlx::any::install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        prepare_sqlite(url).await?;
    }
    // One connection first, by hand: a pool retries failed connections until its timeout and
    // then reports only that it timed out, not why.
    let first = async {
        let mut conn = sqlx::AnyConnection::connect(url).await?;
        // SQLite opens files lazily: reading the schema proves it is a database.
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        if is_sqlite {
            sqlx::query("SELECT count(*) FROM sqlite_master").execute(&mut conn).await?;
        }
        conn.close().await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, first).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("cannot open the database: {}", describe(&e))),
        Err(_) => {
            return Err(format!(
                "cannot open the database: it did not answer within {} s (is DATABASE_URL's host reachable?)",
                CONNECT_TIMEOUT.as_secs()
            ));
        }
    }
    let pool = AnyPoolOptions::new()
        .acquire_timeout(CONNECT_TIMEOUT)
        .max_connections(if is_sqlite { 8 } else { 16 })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if is_sqlite {
                    // Readers never block the writer; a busy writer waits instead of failing.
                    sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
    if is_sqlite {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await
            .map_err(|e| format!("cannot switch the database to WAL mode: {e}"))?;
    }
    MIGRATOR.run(&pool).await.map_err(|e| format!("cannot migrate the database: {e}"))?;
    participants::upgrade_name_keys(&pool).await.map_err(|e| format!("cannot upgrade participant names: {e}"))?;
    Ok(pool)
}

/// A database error as a cause a person can act on, naming storage problems plainly.
fn describe(e: &sqlx::Error) -> String {
    storage_problem(e).unwrap_or_else(|| e.to_string())
}

/// Why the database cannot store anything right now, when that is what `e` says: read-only,
/// disk full, unreachable, broken. Other errors (a constraint, a bug in a query) are None.
pub fn storage_problem(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_string();
            // SQLite reports (extended) result codes as numbers, PostgreSQL SQLSTATEs.
            let sqlite = code.parse::<i64>().ok().map(|c| c & 0xff);
            let cause = match (sqlite, code.as_str()) {
                (Some(8), _) | (_, "25006") => "the database is read-only",
                (Some(13), _) | (_, "53100") => "the disk holding the database is full",
                (Some(10), _) | (_, "58030") => "the database cannot write to its disk",
                (Some(14), _) => "the database file cannot be opened",
                (Some(11 | 26), _) | (_, "XX001" | "XX002") => "the database file is damaged or not a database",
                (Some(5 | 6), _) => "the database is locked by another program",
                (_, c) if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                    "the database server refuses connections"
                }
                _ => return None,
            };
            Some(format!("{cause} ({message})"))
        }
        sqlx::Error::PoolTimedOut => Some("the database does not answer".into()),
        sqlx::Error::PoolClosed => Some("the database is closed".into()),
        sqlx::Error::Io(io) => Some(format!("the database cannot be reached ({io})")),
        sqlx::Error::Tls(tls) => Some(format!("the database connection is refused ({tls})")),
        _ => None,
    }
}

/// Proves the database accepts a write now, before work that would be lost if it did not
/// (a generation spends a model run first): one committed write of a small row.
pub async fn check_writable(pool: &Pool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO event_state (key, value, updated_at) VALUES ('write_check', '', $1)
         ON CONFLICT (key) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// The last write that failed for a storage reason, so /healthz can report it: a probe write
/// may pass (updating a row needs no new space) while real inserts fail on a full disk.
#[derive(Debug, Default)]
pub struct StorageHealth {
    last_fault: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

/// How long a failed write keeps /healthz at 503 after the fact.
pub const FAULT_REMEMBERED: Duration = Duration::from_secs(30);

impl StorageHealth {
    pub fn failed(&self, cause: &str) {
        *self.last_fault.lock().expect("not poisoned") = Some((std::time::Instant::now(), cause.to_string()));
    }

    /// The cause of a write that failed within [`FAULT_REMEMBERED`], and how long ago.
    pub fn recent_fault(&self) -> Option<(Duration, String)> {
        let fault = self.last_fault.lock().expect("not poisoned");
        fault.as_ref().map(|(at, cause)| (at.elapsed(), cause.clone())).filter(|(ago, _)| *ago < FAULT_REMEMBERED)
    }
}

/// Creates the folder of a SQLite file, which SQLite will not do itself.
async fn prepare_sqlite(url: &str) -> Result<(), String> {
    let options =
        SqliteConnectOptions::from_str(url).map_err(|e| format!("DATABASE_URL is not a valid SQLite URL: {e}"))?;
    let file = options.get_filename();
    if file == Path::new(":memory:") {
        return Ok(());
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create the database folder {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A fresh random identifier (128 bits, hex): unguessable, so ids can be shared in URLs.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ms` since the epoch as an RFC 3339 UTC timestamp, e.g. `2026-11-23T17:53:11Z`.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), era by era of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `ms` since the epoch as a person reads it on a page, e.g. `23 Nov 17:53 UTC` (pages put
/// [`format_utc`] beside it, in a `<time datetime>`).
pub fn format_human_utc(ms: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let iso = format_utc(ms);
    let (date, time) = iso.split_once('T').unwrap_or((&iso, ""));
    let mut fields = date.rsplit('-');
    let day = fields.next().unwrap_or("").trim_start_matches('0');
    let month = fields.next().and_then(|m| m.parse::<usize>().ok()).and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    format!("{day} {} {} UTC", month.unwrap_or(&"?"), time.get(..5).unwrap_or(time))
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_times_are_day_month_and_minute() {
        assert_eq!(super::format_human_utc(0), "1 Jan 00:00 UTC");
        assert_eq!(super::format_human_utc(1_795_456_391_000), "23 Nov 17:53 UTC");
    }

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(super::format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::format_utc(1_795_456_391_000), "2026-11-23T17:53:11Z");
    }
}
