-- Times are stored as fixed-format UTC text (RFC 3339, `Z`), so text order is time order
-- only under a bytewise collation. A PostgreSQL database created with a language's
-- collation (en_US.UTF-8, ja_JP.UTF-8) may order such text by other rules; every time
-- column, and every text column compared with `<` or `>`, is made "C" explicitly.
-- SQLite compares text bytewise (BINARY) already: it runs a no-op in this migration's
-- place (`ledger::SQLITE_REPLACEMENTS`).
ALTER TABLE runs ALTER COLUMN slot TYPE TEXT COLLATE "C";
ALTER TABLE runs ALTER COLUMN claimed_at TYPE TEXT COLLATE "C";
ALTER TABLE runs ALTER COLUMN started_at TYPE TEXT COLLATE "C";
ALTER TABLE runs ALTER COLUMN finished_at TYPE TEXT COLLATE "C";
ALTER TABLE runs ALTER COLUMN lease_until TYPE TEXT COLLATE "C";
ALTER TABLE runs ALTER COLUMN post_started_at TYPE TEXT COLLATE "C";
ALTER TABLE alert_rounds ALTER COLUMN evaluated_at TYPE TEXT COLLATE "C";
ALTER TABLE alert_rounds ALTER COLUMN created_at TYPE TEXT COLLATE "C";
ALTER TABLE alert_rounds ALTER COLUMN done_at TYPE TEXT COLLATE "C";
ALTER TABLE alert_notices ALTER COLUMN evaluated_at TYPE TEXT COLLATE "C";
ALTER TABLE alert_notices ALTER COLUMN lease_until TYPE TEXT COLLATE "C";
ALTER TABLE alert_notices ALTER COLUMN updated_at TYPE TEXT COLLATE "C";
ALTER TABLE alert_round_claims ALTER COLUMN evaluated_at TYPE TEXT COLLATE "C";
ALTER TABLE alert_round_claims ALTER COLUMN lease_until TYPE TEXT COLLATE "C";
ALTER TABLE warehouse_spend ALTER COLUMN day TYPE TEXT COLLATE "C";
