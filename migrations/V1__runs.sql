-- The run ledger: one row per (report, schedule, slot). Valid SQL for SQLite and
-- PostgreSQL alike; times are RFC 3339 text in UTC, so text order is time order.
-- IF NOT EXISTS: a SQLite ledger created before versioned migrations already has it.
CREATE TABLE IF NOT EXISTS runs (
    report      TEXT    NOT NULL,
    schedule    INTEGER NOT NULL,
    slot        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('claimed','running','delivered','failed','skipped','no_data')),
    attempts    INTEGER NOT NULL DEFAULT 1,
    claimed_at  TEXT    NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT,
    channel     TEXT,
    ts          TEXT,
    rows        BIGINT,
    bytes       BIGINT,
    owner       TEXT,
    lease_until TEXT,
    PRIMARY KEY (report, schedule, slot)
);
CREATE INDEX IF NOT EXISTS runs_open ON runs (state, lease_until);
