-- Attendees, what their MoA systems generated, and what they submitted for grading.
-- Portable SQL (SQLite and PostgreSQL); every integer is BIGINT so both decode as i64;
-- timestamps are milliseconds since the Unix epoch.
CREATE TABLE participants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- the trimmed, lower-cased name: display names are unique per event
    name_key TEXT NOT NULL UNIQUE,
    hidden BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE generations (
    id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL REFERENCES participants (id),
    challenge TEXT NOT NULL,
    config TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    code TEXT NOT NULL,
    timings TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX generations_by_participant ON generations (participant_id, created_at);

CREATE TABLE submissions (
    id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL REFERENCES participants (id),
    -- one submission per generation: a retried request never counts twice
    generation_id TEXT NOT NULL UNIQUE REFERENCES generations (id),
    total BIGINT NOT NULL,
    max_points BIGINT NOT NULL,
    status TEXT NOT NULL,
    report TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX submissions_by_participant ON submissions (participant_id, total, created_at);
