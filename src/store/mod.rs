//! The database: SQLite by default, PostgreSQL when `DATABASE_URL` says so. One pool type
//! (`AnyPool`) and portable SQL with `$n` parameters, so both run the same migrations and
//! queries. SQL lives in the entity modules below, in functions taking the pool.

pub mod event;
pub mod generations;
pub mod leaderboard;
pub mod participants;
pub mod sessions;
pub mod submissions;

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;

use futures_util::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::SqliteConnectOptions;

pub type Pool = sqlx::AnyPool;

/// Migrations compiled into the binary, so a copied binary needs no files beside it.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "event state", include_str!("../../migrations/0001_event_state.sql")),
    (2, "workshop", include_str!("../../migrations/0002_workshop.sql")),
    (3, "shared state", include_str!("../../migrations/0003_shared_state.sql")),
];

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Opens the database named by `url` (creating a SQLite file and its folder if needed) and
/// brings its schema up to date.
pub async fn connect(url: &str) -> Result<Pool, String> {
    sqlx::any::install_default_drivers();
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        prepare_sqlite(url).await?;
    }
    let pool = AnyPoolOptions::new()
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
    Migrator::new(Embedded)
        .await
        .map_err(|e| format!("cannot read the migrations: {e}"))?
        .run(&pool)
        .await
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    Ok(pool)
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
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
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

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(super::format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(super::format_utc(1_795_456_391_000), "2026-11-23T17:53:11Z");
    }
}
