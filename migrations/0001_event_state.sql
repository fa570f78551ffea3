-- Key/value settings of the running event (frozen leaderboard, event name, ...).
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
CREATE TABLE event_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
