-- Whether a post of the slot may exist, known without asking Slack: its history is
-- rate-limited hard (Tier 1) and cannot carry one lookup per slot of a busy morning.
--
-- post_started_at: when the post guard first said "yes" to a post attempt, by any
-- generation of the row (a takeover keeps it).
-- tracked_generation: the generation up to which every holder recorded its attempts. A
-- claim by this version sets 1 and each takeover by it the next; a row claimed or taken
-- over by an older version (a rolling upgrade) breaks the chain for good. Recovery skips
-- the lookup only where tracked_generation = attempts and post_started_at is NULL.
ALTER TABLE runs ADD COLUMN post_started_at TEXT;
ALTER TABLE runs ADD COLUMN tracked_generation INTEGER;

-- An alert round is claimed before its query runs, so two replicas never both evaluate
-- it. The claim lapses with its lease when its process dies before recording the round;
-- another replica then takes it over.
CREATE TABLE IF NOT EXISTS alert_round_claims (
    alert        TEXT NOT NULL,
    evaluated_at TEXT NOT NULL,
    owner        TEXT NOT NULL,
    lease_until  TEXT NOT NULL,
    PRIMARY KEY (alert, evaluated_at)
);

-- Slack takes about one post a second per channel, from all replicas together. Before
-- each scheduled post a replica takes the channel's next turn here (one statement) and
-- waits for it, so replicas posting to one channel do not collide into 429s.
CREATE TABLE IF NOT EXISTS channel_turns (
    channel TEXT   NOT NULL PRIMARY KEY,
    next_ms BIGINT NOT NULL
);
