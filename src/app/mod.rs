//! The app, assembled in one place: from [`Settings`] it builds, typed at this edge (the
//! timezone a `Tz`, durations, the Slack URL checked), everything a verb needs — the
//! warehouse, the delivery and Slack client, the catalog, the scheduler's and the slash
//! handler's configuration. `serve` ([`serve`]) and every CLI verb take what it built;
//! nothing below this module imports it.

pub mod preflight;
pub mod serve;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::adhoc::AccessPolicy;
use crate::adhoc::audit::{AuditLog, AuditTarget};
use crate::adhoc::slash::CommandHandler;
use crate::adhoc::throttle::Throttle;
use crate::catalog::{Catalog, CatalogError, SharedCatalog};
use crate::deliver::{Delivery, FolderDelivery, SlackDelivery};
use crate::i18n::Locale;
use crate::metrics::Metrics;
use crate::pipeline::{RunLimits, today_in};
use crate::scheduled::SchedulerConfig;
use crate::settings::{AuditTo, DeliveryKind, Settings, SettingsError, WarehouseKind};
use crate::slack::SlackOptions;
use crate::spec::SpecDefaults;
use crate::spec::period::WindowLimits;
use crate::warehouse::bigquery::BigQueryWarehouse;
use crate::warehouse::cache::QueryCache;
use crate::warehouse::demo::{MartStatus, ensure_demo_mart};
use crate::warehouse::duckdb::DuckDbWarehouse;
use crate::warehouse::{Dialect, Warehouse};

/// The settings, parsed once into the types the rest of kpibot uses.
#[derive(Debug, Clone)]
pub struct App {
    pub settings: Settings,
    /// The bot's timezone: reports that name none, the demo mart's "yesterday".
    pub timezone: Tz,
    /// Longest a report query may run unless its spec says otherwise.
    pub query_timeout: Duration,
    /// Longest an ad-hoc (`/kpi`, `ask`) query may run.
    pub slash_timeout: Duration,
    /// How far windows may reach and how many rows a query may return.
    pub limits: RunLimits,
    /// The bot's language (`locale`): reports that state none, owners' notices.
    pub locale: Locale,
    /// The month the company's fiscal year starts in.
    pub fiscal_year_start_month: u32,
}

impl App {
    pub fn new(settings: Settings) -> Result<Self, SettingsError> {
        crate::adhoc::follow::check_settings(&settings.follows).map_err(SettingsError::Invalid)?;
        let limits = &settings.limits;
        let earliest = NaiveDate::parse_from_str(&limits.earliest_date, "%Y-%m-%d")
            .map_err(|_| SettingsError::EarliestDate(limits.earliest_date.clone()))?;
        let limits = RunLimits {
            window: WindowLimits {
                earliest,
                latest_days_ahead: limits.latest_days_ahead,
                max_days: limits.max_window_days.max(1),
            },
            max_rows: Some(limits.max_rows.max(1)),
        };
        Ok(Self {
            limits,
            timezone: settings.timezone()?,
            locale: settings.locale()?,
            fiscal_year_start_month: settings.fiscal_year_start_month()?,
            query_timeout: Duration::from_secs(settings.warehouse.query_timeout_seconds),
            slash_timeout: Duration::from_secs(settings.slash.query_timeout_seconds),
            settings,
        })
    }

    /// Today's date in the bot's timezone.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        today_in(self.timezone, now)
    }

    pub fn reports_dir(&self) -> &Path {
        &self.settings.reports.dir
    }

    /// The folder that folder delivery writes to.
    pub fn out_dir(&self) -> &PathBuf {
        &self.settings.delivery.folder
    }

    /// What fills in what a spec leaves out: the bot's timezone and the warehouse's dialect.
    pub fn spec_defaults(&self) -> SpecDefaults {
        SpecDefaults {
            timezone: self.timezone,
            dialect: match self.settings.warehouse.kind {
                WarehouseKind::Duckdb => Dialect::DuckDb,
                WarehouseKind::Bigquery => Dialect::BigQuery,
            },
            dbt: crate::spec::dbt::DbtFiles {
                semantic_manifest: self.settings.dbt.semantic_manifest.clone(),
                manifest: self.settings.dbt.manifest.clone(),
            },
        }
    }

    /// Loads every spec for a one-shot verb; invalid specs are an error that shows them.
    pub fn load_catalog(&self) -> Result<Catalog, CatalogError> {
        crate::catalog::load_strict(self.reports_dir(), &self.spec_defaults())
    }

    /// Opens the configured warehouse; for the embedded demo, builds or refreshes the demo
    /// mart first so it holds data through yesterday in the bot's timezone.
    pub async fn open_warehouse(
        &self,
        now: DateTime<Utc>,
        log: &mut dyn Write,
    ) -> anyhow::Result<Box<dyn Warehouse>> {
        match self.settings.warehouse.kind {
            WarehouseKind::Duckdb => Ok(Box::new(self.open_duckdb(now, log)?)),
            WarehouseKind::Bigquery => {
                let bigquery = &self.settings.warehouse.bigquery;
                // Checked here so no job is ever sent to an empty project.
                if bigquery.project.trim().is_empty() {
                    bail!(
                        "KPIBOT__WAREHOUSE__BIGQUERY__PROJECT is not set: name the Google Cloud project BigQuery jobs run in"
                    );
                }
                Ok(Box::new(BigQueryWarehouse::open(bigquery).await?))
            }
        }
    }

    /// The embedded DuckDB warehouse as it is on disk, if that is the warehouse and its file
    /// exists: its planner proves what queries read without building or refreshing anything.
    pub fn local_planner(&self) -> Option<DuckDbWarehouse> {
        let duck = &self.settings.warehouse.duckdb;
        match self.settings.warehouse.kind {
            WarehouseKind::Duckdb => {
                DuckDbWarehouse::open_with_extracts(&duck.path, &duck.extracts).ok()
            }
            WarehouseKind::Bigquery => None,
        }
    }

    /// The embedded DuckDB warehouse, with the demo mart built or refreshed when in use.
    pub fn open_duckdb(
        &self,
        now: DateTime<Utc>,
        log: &mut dyn Write,
    ) -> anyhow::Result<DuckDbWarehouse> {
        let duck = &self.settings.warehouse.duckdb;
        if duck.demo_mart {
            let yesterday = self.today(now) - Days::new(1);
            // Check through the connection the bot keeps, not a second instance.
            if let Ok(current) = DuckDbWarehouse::open_with_extracts(&duck.path, &duck.extracts)
                && current.demo_data_through() >= Some(yesterday)
            {
                return Ok(current);
            }
            if ensure_demo_mart(&duck.path, yesterday)? == MartStatus::Built {
                writeln!(
                    log,
                    "built the demo mart {} (data through {yesterday})",
                    duck.path.display()
                )?;
            }
        }
        Ok(DuckDbWarehouse::open_with_extracts(
            &duck.path,
            &duck.extracts,
        )?)
    }

    /// The Slack delivery when Slack is the delivery (slash commands need more of it than
    /// the `Delivery` seam offers), `None` for the folder.
    pub fn open_slack(&self, metrics: Arc<Metrics>) -> anyhow::Result<Option<Arc<SlackDelivery>>> {
        Ok(match self.settings.effective_delivery() {
            DeliveryKind::Slack => Some(Arc::new(SlackDelivery::new(
                SlackOptions::from_settings(&self.settings)?,
                metrics,
            )?)),
            DeliveryKind::Folder | DeliveryKind::Auto => None,
        })
    }

    /// The configured delivery: Slack when it is chosen (or a bot token is set), else the
    /// folder.
    pub fn open_delivery(&self, metrics: Arc<Metrics>) -> anyhow::Result<Arc<dyn Delivery>> {
        Ok(match self.open_slack(metrics)? {
            Some(slack) => slack,
            None => Arc::new(FolderDelivery::new(self.out_dir().clone())),
        })
    }

    /// How the scheduler behaves, from the `scheduler` settings.
    pub fn scheduler_config(&self) -> SchedulerConfig {
        let scheduler = &self.settings.scheduler;
        SchedulerConfig {
            catch_up: Duration::from_secs(scheduler.catch_up_hours * 3600),
            lease: Duration::from_secs(scheduler.lease_seconds.max(1)),
            warehouse_outage: Duration::from_secs(scheduler.warehouse_outage_seconds),
            warehouse_retry_base: Duration::from_millis(scheduler.warehouse_retry_base_ms.max(1)),
            default_timeout: self.query_timeout,
            shutdown_grace: Duration::from_secs(scheduler.shutdown_grace_seconds),
            limits: self.limits,
            locale: self.locale,
            recovery_retry: Duration::from_secs(scheduler.recovery_retry_seconds.max(1)),
            max_concurrent_runs: scheduler.max_concurrent_runs.max(1),
            channel_turns: None,
        }
    }

    /// How the alert flow behaves, from the `alerts` and `scheduler` settings.
    pub fn alert_config(&self) -> crate::alerts::run::AlertConfig {
        let scheduler = &self.settings.scheduler;
        let alerts = &self.settings.alerts;
        crate::alerts::run::AlertConfig {
            lease: Duration::from_secs(scheduler.lease_seconds.max(1)),
            catch_up: Duration::from_secs(scheduler.catch_up_hours * 3600),
            query_timeout: self.query_timeout,
            limits: self.limits,
            max_instances: alerts.max_instances.max(1),
            digest_charts: alerts.digest_charts.max(1) as usize,
            max_concurrent_evaluations: alerts.max_concurrent_evaluations.max(1),
            channel_turns: None,
            locale: self.locale,
            access_policy: self.settings.slash.default_policy,
        }
    }

    /// The `/kpi` handler over the running catalog, warehouse and Slack.
    pub fn command_handler(
        &self,
        catalog: SharedCatalog,
        warehouse: Arc<dyn Warehouse>,
        slack: Arc<SlackDelivery>,
        metrics: Arc<Metrics>,
        ledger: Option<Arc<crate::ledger::Ledger>>,
    ) -> CommandHandler {
        CommandHandler {
            catalog,
            warehouse,
            slack,
            metrics: metrics.clone(),
            timezone: self.timezone,
            timeout: self.slash_timeout,
            policy: self.access_policy(),
            limits: self.limits,
            cache: QueryCache::with_capacity(self.settings.slash.cache_entries),
            throttle: Throttle::new(
                self.settings.slash.max_questions_per_minute,
                self.settings.slash.max_concurrent_queries,
            ),
            audit: AuditLog::to(self.audit_target()),
            answers: Default::default(),
            locale: self.locale,
            fiscal_year_start_month: self.fiscal_year_start_month,
            meter: ledger
                .clone()
                .map(|ledger| self.meter(ledger, metrics.clone())),
            ledger,
            follows: self.settings.follows.clone(),
        }
    }

    /// What every query in `serve` is billed and budgeted through.
    pub fn meter(
        &self,
        ledger: Arc<crate::ledger::Ledger>,
        metrics: Arc<Metrics>,
    ) -> Arc<crate::budget::Meter> {
        let cost = &self.settings.cost;
        let budget = |bytes: u64| (bytes > 0).then_some(bytes);
        Arc::new(crate::budget::Meter {
            ledger,
            config: crate::budget::CostConfig {
                price_per_tib_usd: cost.price_per_tib_usd,
                report_bytes_per_day: budget(cost.report_bytes_per_day),
                person_bytes_per_day: budget(cost.person_bytes_per_day),
                alert_bytes_per_day: budget(cost.alert_bytes_per_day),
            },
            timezone: self.timezone,
            metrics,
        })
    }

    /// Where the `/kpi` audit log goes.
    pub fn audit_target(&self) -> AuditTarget {
        let slash = &self.settings.slash;
        match slash.audit_to {
            AuditTo::Stdout => AuditTarget::Stdout,
            AuditTo::File => AuditTarget::File {
                path: slash.audit_log.clone(),
                max_bytes: slash.audit_max_bytes.max(1),
                keep: slash.audit_files_kept,
            },
        }
    }

    /// Who may ask for entries without allow-lists.
    pub fn access_policy(&self) -> AccessPolicy {
        self.settings.slash.default_policy
    }
}
