-- Follows: a person (or a channel) follows a question `/kpi` answers, and gets it in one
-- digest per slot. `target` is where the digest goes (the person's user ID for a direct
-- message, a channel ID for a channel follow); `person` who asked for it. A question is
-- kept as the strict grammar writes it, so the same question followed twice is one row.
CREATE TABLE IF NOT EXISTS follows (
    target     TEXT    NOT NULL,
    question   TEXT    NOT NULL,
    person     TEXT    NOT NULL,
    place      TEXT,
    cadence    TEXT    NOT NULL,
    at_minute  INTEGER NOT NULL,
    timezone   TEXT    NOT NULL,
    locale     TEXT,
    created_ms BIGINT  NOT NULL,
    paused     TEXT,
    PRIMARY KEY (target, question)
);

-- One digest per (target, slot), claimed before anything is computed and fenced like a
-- report's slot: a takeover raises `generation`, and every later step names the
-- generation it holds. `post_started_ms` is set before the first post attempt, so a
-- takeover knows whether to look for the message in Slack before posting it. Times that
-- SQL compares are milliseconds since the epoch, so both databases order them alike.
CREATE TABLE IF NOT EXISTS digests (
    target          TEXT    NOT NULL,
    slot            TEXT    NOT NULL,
    slot_ms         BIGINT  NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('claimed','posted','failed','empty')),
    owner           TEXT,
    generation      INTEGER NOT NULL,
    lease_until_ms  BIGINT,
    post_started_ms BIGINT,
    channel         TEXT,
    ts              TEXT,
    questions       INTEGER,
    error           TEXT,
    updated_ms      BIGINT  NOT NULL,
    PRIMARY KEY (target, slot)
);
