-- Alerts. A round is one evaluation of one alert: its new state and the notices it
-- decided to send, written in one statement, so a restart or another replica finds either
-- the whole decision or none of it. Each notice is claimed before it is posted and
-- recorded after, like a report's slot, so no notice is ever sent twice.
CREATE TABLE IF NOT EXISTS alert_rounds (
    alert        TEXT    NOT NULL,
    evaluated_at TEXT    NOT NULL,
    round        TEXT    NOT NULL,
    firing       INTEGER NOT NULL,
    notices      INTEGER NOT NULL,
    owner        TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    done_at      TEXT,
    PRIMARY KEY (alert, evaluated_at)
);
CREATE INDEX IF NOT EXISTS alert_rounds_open ON alert_rounds (done_at);

CREATE TABLE IF NOT EXISTS alert_notices (
    alert        TEXT    NOT NULL,
    evaluated_at TEXT    NOT NULL,
    idx          INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('claimed','posted','failed')),
    attempts     INTEGER NOT NULL DEFAULT 1,
    owner        TEXT,
    lease_until  TEXT,
    channel      TEXT,
    ts           TEXT,
    error        TEXT,
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (alert, evaluated_at, idx)
);
