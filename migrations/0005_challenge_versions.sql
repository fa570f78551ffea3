-- Which challenge, and which version of it (a digest of its folder), each generation was made
-- for and each submission was graded by: editing a challenge mid-event never mixes scores
-- unseen. Portable SQL (SQLite and PostgreSQL); rows from before keep an empty hash.
ALTER TABLE generations ADD COLUMN challenge_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE submissions ADD COLUMN challenge TEXT NOT NULL DEFAULT '';
ALTER TABLE submissions ADD COLUMN challenge_hash TEXT NOT NULL DEFAULT '';
UPDATE submissions SET challenge = (SELECT g.challenge FROM generations g WHERE g.id = submissions.generation_id);
CREATE INDEX submissions_by_challenge ON submissions (challenge, participant_id, total, created_at);
