-- Evaluations, comparisons and tuning searches an attendee ran (issue: evaluate, compare, tune),
-- kept so they can come back to them; and the configurations a tuning search produced, so the
-- organizer can tell submissions made from them. Portable SQL (SQLite and PostgreSQL).
CREATE TABLE evaluations (
    id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    challenge TEXT NOT NULL,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX evaluations_by_participant ON evaluations (participant_id, created_at);
CREATE TABLE tuned_configs (
    participant_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (participant_id, config_hash)
);
-- Each generation's configuration digest (evaluate::config_hash), so a board can tell the ones
-- tuning produced; generations from before keep an empty one.
ALTER TABLE generations ADD COLUMN config_hash TEXT NOT NULL DEFAULT '';
