-- A digest's slot is fixed-format UTC text like every other time the ledger keeps: made
-- "C" on PostgreSQL, as V7 made the others, so text order is time order whatever the
-- database's collation. (The ledger compares digests by `slot_ms`; the slot text is their
-- name.) SQLite compares text bytewise already: it runs a no-op in this migration's place.
ALTER TABLE digests ALTER COLUMN slot TYPE TEXT COLLATE "C";
