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

    /// Refuses a query `payer` cannot afford today: its dry run's bytes on top of what was
    /// billed to it today would pass its budget. A warehouse that bills no bytes (DuckDB)
    /// is never refused. A ledger that cannot say what was spent refuses too (transiently):
    /// a budget that cannot be checked is not assumed to have room.
    async fn check(
        &self,
        inner: &dyn Warehouse,
        payer: &Payer,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<(), WarehouseError> {
        let Some(limit_bytes) = self.config.limit(payer.kind) else {
            return Ok(());
        };
        let Some(estimate_bytes) = inner.dry_run(sql, params, job).await?.bytes_processed else {
            return Ok(());
        };
        let today = self.today();
        let spent_bytes = self.ledger.spent(&payer.key(), today).await.map_err(|e| {
            WarehouseError::Unavailable(format!(
                "the daily budget (`{}`) cannot be checked: {e}",
                payer.kind.setting()
            ))
        })?;
        if spent_bytes.saturating_add(estimate_bytes) <= limit_bytes {
            return Ok(());
        }
        self.metrics.increment(
            METRIC_REFUSED,
            METRIC_REFUSED_HELP,
            &[("kind", payer.kind.as_str())],
        );
        tracing::warn!(payer = %payer.key(), estimate_bytes, spent_bytes, limit_bytes, "query refused: over its daily budget");
        Err(WarehouseError::OverBudget(Box::new(OverBudget {
            kind: payer.kind,
            subject: payer.subject.clone(),
            limit_bytes,
            spent_bytes,
            estimate_bytes,
            resets_at: self.next_reset(today),
        })))
    }

    /// Records bytes a query of `payer`'s scanned: the day's total in the ledger (a
    /// failure is logged; the answer stands) and `/metrics`.
    async fn record(&self, payer: &Payer, job: &QueryJob, bytes: u64) {
        self.metrics.add(
            METRIC_BYTES,
            METRIC_BYTES_HELP,
            &[("kind", payer.kind.as_str()), ("report", &job.report)],
            bytes as f64,
        );
        if let Err(error) = self
            .ledger
            .add_spend(&payer.key(), self.today(), bytes)
            .await
        {
            tracing::error!(payer = %payer.key(), bytes, %error, "could not record a query's bytes in the ledger; today's budget undercounts them");
        }
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
        self.meter
            .check(self.inner, &self.payer, sql, params, job)
            .await?;
        let table = self.inner.query(sql, params, job).await?;
        if let Some(bytes) = table.bytes_processed {
            self.known.store(true, Ordering::Relaxed);
            self.billed.fetch_add(bytes, Ordering::Relaxed);
            if bytes > 0 {
                self.meter.record(&self.payer, job, bytes).await;
            }
        }
        Ok(table)
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
