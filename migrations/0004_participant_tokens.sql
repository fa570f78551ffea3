-- A participant proves who they are with a secret random token (kept in their browser's
-- cookie or sent as a header), not by their public display name. Only the SHA-256 of each
-- token and sign-in code is stored, so a copy of the database cannot be used to act for
-- anyone. Portable SQL (SQLite and PostgreSQL).

-- 1 once the organizer released the name: its devices are signed out and the next person
-- who claims the name takes the participant over, history included.
ALTER TABLE participants ADD COLUMN released BIGINT NOT NULL DEFAULT 0;

-- One row per signed-in device; a participant may hold several (laptop and phone).
CREATE TABLE participant_tokens (
    token_hash TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX participant_tokens_by_participant ON participant_tokens (participant_id);

-- One-time codes that sign a participant in on another device; rows past expires_at (ms)
-- no longer count, and a redeemed code is deleted.
CREATE TABLE participant_codes (
    code_hash TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL REFERENCES participants (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
