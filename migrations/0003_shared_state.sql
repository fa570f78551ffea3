-- State that every app instance behind a load balancer must see, kept in the database rather
-- than in one instance's memory. Portable SQL (SQLite and PostgreSQL).

-- Organizer sign-ins. Only the SHA-256 of the random cookie value is stored, so a copy of
-- the database cannot be used to sign in; rows past expires_at (ms) no longer count.
CREATE TABLE organizer_sessions (
    id_hash TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- One row, bumped by every change that can alter a leaderboard (a submission, freeze,
-- hide, reset). Each instance polls it to push fresh tables to its own live viewers.
-- Reset leaves it alone so it only ever grows.
CREATE TABLE leaderboard_revision (
    id BIGINT PRIMARY KEY,
    revision BIGINT NOT NULL
);
INSERT INTO leaderboard_revision (id, revision) VALUES (1, 0);
