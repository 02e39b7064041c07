//! Each query billed to whom it is for — a report's runs, a person's questions, an alert —
//! recorded in the ledger and `/metrics`, and checked with a dry run against that payer's
//! daily budget before it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::warehouse::cost::{BudgetKind, DEFAULT_PRICE_PER_TIB_USD, OverBudget};
use crate::warehouse::reads::Reads;
use crate::warehouse::{Dialect, Estimate, Params, QueryJob, Table, Warehouse, WarehouseError};

const METRIC_BYTES: &str = "kpibot_warehouse_bytes_total";

const METRIC_BYTES_HELP: &str = "Bytes the warehouse scanned (BigQuery's job statistics), by report and by kind: run, answer, alert";

const METRIC_REFUSED: &str = "kpibot_budget_refusals_total";

const METRIC_REFUSED_HELP: &str =
    "Queries refused before they ran because a daily budget would be exceeded, by kind";

/// The price and the daily budgets (`[cost]` in the settings). A budget of `None` is none.
#[derive(Debug, Clone, PartialEq)]
pub struct CostConfig {
    /// Dollars per TiB scanned, for the estimated price beside bytes.
    pub price_per_tib_usd: f64,
    pub report_bytes_per_day: Option<u64>,
    pub person_bytes_per_day: Option<u64>,
    pub alert_bytes_per_day: Option<u64>,
}

impl Default for CostConfig {
    fn default() -> Self {
        Self {
            price_per_tib_usd: DEFAULT_PRICE_PER_TIB_USD,
            report_bytes_per_day: None,
            person_bytes_per_day: None,
            alert_bytes_per_day: None,
        }
    }
}

impl CostConfig {
    fn limit(&self, kind: BudgetKind) -> Option<u64> {
        match kind {
            BudgetKind::Report => self.report_bytes_per_day,
            BudgetKind::Person => self.person_bytes_per_day,
            BudgetKind::Alert => self.alert_bytes_per_day,
        }
        .filter(|&limit| limit > 0)
    }
}

/// Who a query is billed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer {
    pub kind: BudgetKind,
    /// The report ID, the person's Slack user ID, or the alert's name.
    pub subject: String,
}

impl Payer {
    pub fn report(id: &str) -> Self {
        Self {
            kind: BudgetKind::Report,
            subject: id.to_string(),
        }
    }

    pub fn person(user: &str) -> Self {
        Self {
            kind: BudgetKind::Person,
            subject: user.to_string(),
        }
    }

    pub fn alert(name: &str) -> Self {
        Self {
            kind: BudgetKind::Alert,
            subject: name.to_string(),
        }
    }

    /// How the ledger's spend table names this payer, e.g. `answer:U123`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.subject)
    }
}

/// What `serve` meters every query with: where spend is recorded, the budgets, and the
/// timezone whose midnight starts a budget's day.
pub struct Meter {
    pub ledger: Arc<Ledger>,
    pub config: CostConfig,
    pub timezone: Tz,
    pub metrics: Arc<Metrics>,
}

impl Meter {
    /// `warehouse` with every query billed to `payer`.
    pub fn bill<'a>(&'a self, warehouse: &'a dyn Warehouse, payer: Payer) -> Metered<'a> {
        Metered {
            inner: warehouse,
            meter: self,
            payer,
            billed: AtomicU64::new(0),
            known: AtomicBool::new(false),
        }
    }

    fn today(&self) -> NaiveDate {
        Utc::now().with_timezone(&self.timezone).date_naive()
    }

    /// The next midnight in the bot's timezone (the first instant of tomorrow, if a DST
    /// change skips midnight).
    fn next_reset(&self, today: NaiveDate) -> DateTime<chrono::FixedOffset> {
        let tomorrow = today.succ_opt().unwrap_or(today);
        let mut at = tomorrow.and_hms_opt(0, 0, 0).unwrap_or_default();
        for _ in 0..4 {
            if let Some(local) = self.timezone.from_local_datetime(&at).earliest() {
                return local.fixed_offset();
            }
            at += chrono::Duration::minutes(30);
        }
        Utc::now().fixed_offset()
    }

    /// Reserves what a query of `payer`'s would scan (its dry run's estimate) within
    /// today's budget, atomically in the ledger so a burst of queries cannot overshoot it
    /// together: `Some((day, estimate))` once reserved, `None` when the payer has no
    /// budget, or [`WarehouseError::OverBudget`]. An estimate the warehouse cannot give
    /// counts as nothing, but a budget already used up still refuses. A ledger that cannot
    /// answer refuses too (transiently): a budget that cannot be checked is not assumed to
    /// have room.
    async fn reserve(
        &self,
        inner: &dyn Warehouse,
        payer: &Payer,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Option<(NaiveDate, u64)>, WarehouseError> {
        let Some(limit_bytes) = self.config.limit(payer.kind) else {
            return Ok(None);
        };
        let estimate = inner.dry_run(sql, params, job).await?.bytes_processed;
        let estimate_bytes = estimate.unwrap_or(0);
        let today = self.today();
        let unchecked = |e: crate::ledger::LedgerError| {
            WarehouseError::Unavailable(format!(
                "the daily budget (`{}`) cannot be checked in the ledger: {e}",
                payer.kind.setting()
            ))
        };
        let key = payer.key();
        let spent_bytes = if estimate.is_some()
            && self
                .ledger
                .reserve_spend(&key, today, estimate_bytes, limit_bytes)
                .await
                .map_err(unchecked)?
        {
            return Ok(Some((today, estimate_bytes)));
        } else {
            self.ledger.spent(&key, today).await.map_err(unchecked)?
        };
        if estimate.is_none() && spent_bytes < limit_bytes {
            return Ok(None);
        }
        self.metrics.increment(
            METRIC_REFUSED,
            METRIC_REFUSED_HELP,
            &[("kind", payer.kind.as_str())],
        );
        tracing::warn!(payer = %key, estimate_bytes, spent_bytes, limit_bytes, "query refused: over its daily budget");
        Err(WarehouseError::OverBudget(Box::new(OverBudget {
            kind: payer.kind,
            subject: payer.subject.clone(),
            limit_bytes,
            spent_bytes,
            estimate_bytes,
            resets_at: self.next_reset(today),
        })))
    }

    /// Settles a query of `payer`'s: what it scanned goes into `/metrics` and the day's
    /// total in the ledger — as a correction of its reservation, if it had one. A query
    /// that failed after it ran (its time or row limit) keeps its reservation, as BigQuery
    /// bills it; one that did not run gives it back. A ledger failure is logged; the
    /// answer stands.
    async fn settle(
        &self,
        payer: &Payer,
        job: &QueryJob,
        reserved: Option<(NaiveDate, u64)>,
        result: &Result<Table, WarehouseError>,
    ) -> Option<u64> {
        let scanned = match (result, reserved) {
            (Ok(table), _) => table.bytes_processed,
            (
                Err(WarehouseError::Timeout(_) | WarehouseError::TooManyRows { .. }),
                Some((_, estimate)),
            ) => Some(estimate),
            (Err(_), Some(_)) => Some(0),
            (Err(_), None) => None,
        };
        let key = payer.key();
        let recorded = match (reserved, scanned) {
            (Some((day, estimate)), scanned) => {
                let delta = scanned.unwrap_or(estimate) as i128 - estimate as i128;
                if delta == 0 {
                    Ok(())
                } else {
                    let delta = i64::try_from(delta).unwrap_or(i64::MAX);
                    self.ledger.adjust_spend(&key, day, delta).await
                }
            }
            (None, Some(bytes)) if bytes > 0 => {
                self.ledger.add_spend(&key, self.today(), bytes).await
            }
            (None, _) => Ok(()),
        };
        if let Err(error) = recorded {
            tracing::error!(payer = %key, ?scanned, %error, "could not record a query's bytes in the ledger; today's total is off by them");
        }
        if let Some(bytes) = scanned.filter(|b| *b > 0) {
            self.metrics.add(
                METRIC_BYTES,
                METRIC_BYTES_HELP,
                &[("kind", payer.kind.as_str()), ("report", &job.report)],
                bytes as f64,
            );
        }
        scanned
    }
}

/// A warehouse whose queries are billed to one payer: checked against its budget before
/// they run, their bytes recorded after, and added up for the run, answer or evaluation.
pub struct Metered<'a> {
    inner: &'a dyn Warehouse,
    meter: &'a Meter,
    payer: Payer,
    billed: AtomicU64,
    known: AtomicBool,
}

impl Metered<'_> {
    /// Bytes this payer's queries through here scanned; `None` when the warehouse never
    /// said (DuckDB).
    pub fn billed(&self) -> Option<u64> {
        self.known
            .load(Ordering::Relaxed)
            .then(|| self.billed.load(Ordering::Relaxed))
    }
}

#[async_trait::async_trait]
impl Warehouse for Metered<'_> {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError> {
        let reserved = self
            .meter
            .reserve(self.inner, &self.payer, sql, params, job)
            .await?;
        let result = self.inner.query(sql, params, job).await;
        if let Some(bytes) = self.meter.settle(&self.payer, job, reserved, &result).await {
            self.known.store(true, Ordering::Relaxed);
            self.billed.fetch_add(bytes, Ordering::Relaxed);
        }
        result
    }

    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Estimate, WarehouseError> {
        self.inner.dry_run(sql, params, job).await
    }

    async fn reads(&self, sql: &str, params: &Params, job: &QueryJob) -> Reads {
        self.inner.reads(sql, params, job).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}
