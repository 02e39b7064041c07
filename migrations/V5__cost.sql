-- What queries cost. Each query's bytes (BigQuery's statistics) are added to the day's
-- total of whoever it is billed to — a report's scheduled runs ('run:<report>'), a
-- person's /kpi questions and clicks ('answer:<user>'), an alert ('alert:<alert>') — and
-- each day's totals are what the daily budgets are checked against. `day` is the date in
-- the bot's timezone; `queries` counts the queries behind the bytes.
CREATE TABLE IF NOT EXISTS warehouse_spend (
    payer   TEXT   NOT NULL,
    day     TEXT   NOT NULL,
    bytes   BIGINT NOT NULL,
    queries BIGINT NOT NULL,
    PRIMARY KEY (payer, day)
);

-- The bytes an alert's evaluation scanned, beside the round it recorded.
ALTER TABLE alert_rounds ADD COLUMN bytes BIGINT;
