//! What the warehouse has billed each payer today: each query's bytes added to the day's
//! total of a report's runs, a person's questions or an alert, which the daily budgets are
//! checked against.

use chrono::NaiveDate;

use super::{Cell, Ledger, LedgerError, Param, text};

/// A day as the spend table keys it.
fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn bigint(n: u64) -> Param {
    Param::BigInt(Some(i64::try_from(n).unwrap_or(i64::MAX)))
}

impl Ledger {
    /// Adds one query's `bytes` to `payer`'s total for `day`. One statement.
    pub async fn add_spend(
        &self,
        payer: &str,
        day: NaiveDate,
        bytes: u64,
    ) -> Result<(), LedgerError> {
        self.execute(
            "INSERT INTO warehouse_spend (payer, day, bytes, queries)
             VALUES (?1, ?2, CAST(?3 AS BIGINT), 1)
             ON CONFLICT (payer, day) DO UPDATE SET
                 bytes = warehouse_spend.bytes + CAST(?3 AS BIGINT),
                 queries = warehouse_spend.queries + 1",
            &[text(payer), text(day_text(day)), bigint(bytes)],
        )
        .await?;
        Ok(())
    }

    /// Reserves `bytes` of `payer`'s budget for `day` if they fit under `limit` with what
    /// is spent already, in one statement: of queries racing for the last of a budget
    /// (from any process), only those that fit get through. `false`: they do not fit.
    pub async fn reserve_spend(
        &self,
        payer: &str,
        day: NaiveDate,
        bytes: u64,
        limit: u64,
    ) -> Result<bool, LedgerError> {
        let reserved = self
            .execute(
                "INSERT INTO warehouse_spend (payer, day, bytes, queries)
                 SELECT CAST(?1 AS TEXT), CAST(?2 AS TEXT), CAST(?3 AS BIGINT), 1
                 WHERE CAST(?3 AS BIGINT) <= CAST(?4 AS BIGINT)
                 ON CONFLICT (payer, day) DO UPDATE SET
                     bytes = warehouse_spend.bytes + CAST(?3 AS BIGINT),
                     queries = warehouse_spend.queries + 1
                 WHERE warehouse_spend.bytes + CAST(?3 AS BIGINT) <= CAST(?4 AS BIGINT)",
                &[
                    text(payer),
                    text(day_text(day)),
                    bigint(bytes),
                    bigint(limit),
                ],
            )
            .await?;
        Ok(reserved == 1)
    }

    /// Corrects `payer`'s total for `day` by `delta` bytes: a reservation made from a dry
    /// run's estimate, once the query says what it scanned (or did not run).
    pub async fn adjust_spend(
        &self,
        payer: &str,
        day: NaiveDate,
        delta: i64,
    ) -> Result<(), LedgerError> {
        self.execute(
            "UPDATE warehouse_spend SET bytes = bytes + CAST(?3 AS BIGINT)
             WHERE payer = ?1 AND day = ?2",
            &[text(payer), text(day_text(day)), Param::BigInt(Some(delta))],
        )
        .await?;
        Ok(())
    }

    /// The bytes billed to `payer` on `day` so far (0 when nothing was).
    pub async fn spent(&self, payer: &str, day: NaiveDate) -> Result<u64, LedgerError> {
        let rows = self
            .query(
                "SELECT bytes FROM warehouse_spend WHERE payer = ?1 AND day = ?2",
                &[text(payer), text(day_text(day))],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|row| row.first())
            .and_then(Cell::int)
            .map_or(0, |b| b.max(0) as u64))
    }

    /// Every payer's bytes and queries on `day`, largest first.
    pub async fn spend_on(&self, day: NaiveDate) -> Result<Vec<(String, u64, u64)>, LedgerError> {
        let rows = self
            .query(
                "SELECT payer, bytes, queries FROM warehouse_spend WHERE day = ?1
                 ORDER BY bytes DESC, payer",
                &[text(day_text(day))],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let [payer, bytes, queries] = row.as_slice() else {
                    return None;
                };
                Some((
                    payer.text()?,
                    bytes.int()?.max(0) as u64,
                    queries.int()?.max(0) as u64,
                ))
            })
            .collect())
    }
}
