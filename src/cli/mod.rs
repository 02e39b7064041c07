//! The command line, a file per verb: `check`, `run` (with `demo` and `preview`), `ask`,
//! `schedule`, `history`, `config`, `health`; `serve` is [`crate::app::serve`], `studio`
//! is [`crate::studio`]. Each verb
//! takes the [`App`] that the settings were assembled into.

pub mod alerts;
pub mod ask;
pub mod check;
mod check_targets;
pub mod config;
pub mod follows;
pub mod health;
pub mod history;
pub mod ledger;
pub mod run;
pub mod schedule;
pub mod studio;

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::Utc;
use clap::{Parser, Subcommand};

use crate::app::App;
use crate::settings::{LogFormat, Settings};

#[derive(Parser)]
#[command(
    name = "kpibot",
    version,
    about = "KPI reports from your mart layer, as charts in Slack"
)]
pub struct Cli {
    /// Settings file (default: ./kpibot.toml if it exists). Environment variables
    /// KPIBOT__SECTION__KEY override it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build the embedded demo mart if needed and run every report into a folder.
    Demo {
        /// Output folder (default: the delivery.folder setting, `out`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate every report spec and print every problem at once.
    Check {
        /// Folder of specs (default: the reports.dir setting, `reports`).
        dir: Option<PathBuf>,
        /// Also prepare every query on the warehouse and check the chart's columns.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run one report into a folder; post nothing.
    Preview {
        /// The report id (its file name without `.toml`).
        report: String,
        /// Override the report's period, e.g. "last 7 days" or "2026-01-01..2026-01-31".
        #[arg(long)]
        period: Option<String>,
        /// Output folder (default: the delivery.folder setting, `out`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run one report now and deliver it: to Slack when KPIBOT__SLACK__BOT_TOKEN is set,
    /// else into the output folder.
    Run {
        /// The report id (its file name without `.toml`).
        report: String,
        /// Post here instead of the first schedule's channel (`#name` or an ID).
        #[arg(long)]
        channel: Option<String>,
        /// Override the report's period, e.g. "last 7 days".
        #[arg(long)]
        period: Option<String>,
    },
    /// Answer a `/kpi` command here, e.g. `kpibot ask "active_users last 30 days by role"`;
    /// a chart and its message go to the output folder.
    Ask {
        /// The command text, as typed after `/kpi`.
        text: String,
    },
    /// Run the bot: post every report on its schedule, serve /healthz, /readyz, /metrics.
    Serve,
    /// List every report's next fire times, in each schedule's timezone.
    Schedule {
        /// How many upcoming slots per schedule.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
    /// Show recent runs from the ledger, newest first.
    History {
        /// Only this report.
        report: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Every followed question (`/kpi follow`): who, where, when next, paused or not.
    Follows {
        /// Only this person's (a Slack user ID).
        #[arg(long)]
        person: Option<String>,
    },
    /// Alerts: every instance's state, or `alerts backtest <alert>` to replay one over
    /// history.
    Alerts {
        #[command(subcommand)]
        command: Option<AlertsCommand>,
    },
    /// Work on the run ledger itself.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// The authors' workbench: a local web page previewing every report as it will be
    /// posted, updated as you save, with the catalog (`studio.listen`, 127.0.0.1:8787).
    Studio {
        /// Listen here instead (an address other than 127.0.0.1 needs `studio.token`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Print the effective settings, secrets redacted.
    Config {
        /// Instead, report missing or inconsistent settings for `serve` (exit 1 on errors).
        #[arg(long)]
        check: bool,
    },
    /// Exit 0 if a running `kpibot serve` answers /healthz (for container health checks).
    Health,
}

/// `kpibot alerts …`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Replay an alert over history against the warehouse: when it would have fired and
    /// resolved. Writes the transitions as CSV into the output folder too.
    Backtest {
        /// The alert's name (`name = …` in its `[[alert]]`).
        alert: String,
        /// First day judged (YYYY-MM-DD; default: `alerts.backtest_days` before --until).
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        /// Last day judged (default: the day the next evaluation would judge).
        #[arg(long)]
        until: Option<chrono::NaiveDate>,
        /// Output folder (default: the delivery.folder setting, `out`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `kpibot ledger …`
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Copy a SQLite ledger's history (and any open runs) into the ledger the settings
    /// name, usually PostgreSQL (KPIBOT__LEDGER__URL). Rows already there are kept;
    /// running it twice copies nothing the second time.
    Migrate {
        /// The SQLite ledger file to copy from, e.g. data/ledger.sqlite.
        #[arg(long)]
        from: PathBuf,
    },
}

/// Logs go to stderr: `serve` at the configured level (default info), one-shot commands
/// at warn so their output stays readable. `RUST_LOG` overrides both.
fn init_logging(settings: &Settings, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let level = if serving {
        settings.log.level.as_str()
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs the verb `cli` names; the exit code says whether it succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    init_logging(&settings, matches!(cli.command, Command::Serve));
    let app = App::new(settings)?;
    let mut stdout = std::io::stdout();
    let now = Utc::now();
    match cli.command {
        Command::Demo { out } => {
            let out = out.unwrap_or_else(|| app.out_dir().clone());
            let failed = run::demo(&app, &out, now, &mut stdout).await?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Check { dir, dry_run } => {
            let dir = dir.unwrap_or_else(|| app.reports_dir().to_path_buf());
            let warehouse = if dry_run {
                Some(app.open_warehouse(now, &mut std::io::stderr()).await?)
            } else {
                None
            };
            // What each query reads is proven by the warehouse where one can be asked
            // cheaply: the dry run's, or an existing embedded DuckDB file's planner.
            let planner = match &warehouse {
                Some(_) => None,
                None => app.local_planner(),
            };
            let planner = warehouse.as_deref().or(planner
                .as_ref()
                .map(|w| w as &dyn crate::warehouse::Warehouse));
            let summary =
                check::check(&dir, &app, warehouse.as_deref(), planner, now, &mut stdout).await?;
            Ok(if summary.invalid == 0 && summary.files > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Preview {
            report,
            period,
            out,
        } => {
            let out = out.unwrap_or_else(|| app.out_dir().clone());
            run::preview(&app, &report, period.as_deref(), &out, now, &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            report,
            channel,
            period,
        } => {
            run::run(
                &app,
                &report,
                channel.as_deref(),
                period.as_deref(),
                now,
                &mut stdout,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ask { text } => {
            ask::ask(&app, &text, now, &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Studio { listen } => {
            studio::studio(&app, listen.as_deref(), &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            crate::app::serve::serve(&app).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedule { count } => {
            schedule::schedule(&app, count, now, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Follows { person } => {
            follows::follows(&app, person.as_deref(), now, &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::History { report, limit } => {
            history::history(&app, report.as_deref(), limit, &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts {
            command:
                Some(AlertsCommand::Backtest {
                    alert,
                    since,
                    until,
                    out,
                }),
        } => {
            let result =
                alerts::backtest_command(&app, &alert, since, until, now, &mut stdout).await?;
            let out = out.unwrap_or_else(|| app.out_dir().clone());
            std::fs::create_dir_all(&out)?;
            let csv = out.join(format!("backtest_{alert}.csv"));
            alerts::write_csv(&result, &csv)?;
            let png = out.join(format!("backtest_{alert}.png"));
            alerts::draw_backtest(&app, &alert, &result, &png)?;
            if png.exists() {
                println!(
                    "  transitions written to {} and drawn in {}",
                    csv.display(),
                    png.display()
                );
            } else {
                println!("  transitions written to {}", csv.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts { command: None } => {
            alerts::list(&app, now, &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger {
            command: LedgerCommand::Migrate { from },
        } => {
            ledger::migrate(&app, &from, &mut stdout).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { check: false } => {
            print!("{}", app.settings.to_redacted_toml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { check: true } => Ok(if config::config_check(&app, &mut stdout).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
        Command::Health => Ok(if health::health(&app).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }),
    }
}
