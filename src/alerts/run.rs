//! The alert flow behind `kpibot serve`: at each alert's cron slot, evaluate it (observe
//! the warehouse, step the state machine from the last recorded state) and record the
//! round — its new state and its notices — in one ledger statement; then send each notice
//! once: claimed before posting, looked for after a crash, recorded after. Rounds left
//! open by a dead process are finished by whoever runs next.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::engine::{AlertState, Phase, Round, evaluate};
use super::message::Facts;
use super::notify::{Notifier, NotifyError};
use super::watch::{Sources, observe};
use crate::budget::Payer;
use crate::catalog::access::AccessPolicy;
use crate::catalog::{Catalog, SharedCatalog, snapshot};
use crate::deliver::Delivery;
use crate::i18n::Locale;
use crate::ledger::alerts::StoredRound;
use crate::ledger::{Lease, Ledger, LedgerError};
use crate::metrics::Metrics;
use crate::pipeline::RunLimits;
use crate::render::format::NumberStyle;
use crate::scheduled::cron::{next_slot, slots_between};
use crate::spec::AlertSpec;
use crate::spec::alert::Watch;
use crate::warehouse::Warehouse;

/// Renews a claim (a notice's, a round's) while it is alive; dropped, however its owner
/// ends (a panic included), it stops.
pub(super) struct ClaimRenewal(pub(super) Option<tokio::task::JoinHandle<()>>);

impl ClaimRenewal {
    /// Stops renewing and waits until no renewal is under way, so none lands after the
    /// claim is let go.
    pub(super) async fn stop(mut self) {
        if let Some(renewing) = self.0.take() {
            renewing.abort();
            let _ = renewing.await;
        }
    }
}

impl Drop for ClaimRenewal {
    fn drop(&mut self) {
        if let Some(renewing) = &self.0 {
            renewing.abort();
        }
    }
}

const METRIC_FIRING: &str = "kpibot_alert_firing_instances";
const METRIC_FIRING_HELP: &str = "Alert instances firing after the latest evaluation, per alert";
const METRIC_EVALUATIONS: &str = "kpibot_alert_evaluations_total";
const METRIC_EVALUATIONS_HELP: &str =
    "Alert evaluations by outcome (quiet, notified, error, failed)";
/// How often the runner wakes without a due slot, to finish rounds another process left.
pub const RECOVERY_CHECK_SECONDS: u64 = 30;

/// While another process evaluates a round, how many times a lease its round is looked
/// for (and its claim checked for lapsing).
const ROUND_WAIT_CHECKS_PER_LEASE: u32 = 4;

/// What the alert flow runs with.
pub struct AlertParts {
    pub catalog: SharedCatalog,
    pub ledger: Arc<Ledger>,
    pub warehouse: Arc<dyn Warehouse>,
    /// Owners' notes.
    pub delivery: Arc<dyn Delivery>,
    pub notifier: Notifier,
    pub metrics: Arc<Metrics>,
    /// Bills each evaluation's queries to its alert, within the alert's daily budget.
    pub meter: Arc<crate::budget::Meter>,
}

#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// How long a notice's claim lasts: after it, another process may take it over.
    pub lease: Duration,
    /// Missed slots younger than this are evaluated (the newest only) at start-up.
    pub catch_up: Duration,
    pub query_timeout: Duration,
    pub limits: RunLimits,
    pub max_instances: u32,
    pub digest_charts: usize,
    /// Alerts evaluated at once when many fall due together.
    pub max_concurrent_evaluations: usize,
    /// Slack's spacing between posts to one channel, taken as turns in the ledger (the
    /// same turns report posts take), so replicas posting alerts and reports to one
    /// channel keep its pace between them. `None`: not Slack, no turns.
    pub channel_turns: Option<Duration>,
    pub locale: Locale,
    /// Who may see entries with no allow-list or policy (the `/kpi` setting).
    pub access_policy: AccessPolicy,
}

pub struct AlertRunner {
    pub(super) parts: AlertParts,
    pub(super) config: AlertConfig,
    pub(super) owner: String,
    /// Places for evaluations running at once (`max_concurrent_evaluations`).
    places: tokio::sync::Semaphore,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertRunError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("the recorded round of alert `{0}` cannot be read: {1}")]
    Corrupt(String, String),
}

pub(super) fn parse_round(stored: &StoredRound) -> Result<Round, AlertRunError> {
    serde_json::from_str(&stored.round)
        .map_err(|e| AlertRunError::Corrupt(stored.alert.clone(), e.to_string()))
}

/// What people read as the alert's name: its title, else the watched metric's label.
pub fn title_of(catalog: &Catalog, alert: &AlertSpec) -> String {
    if let Some(title) = &alert.title {
        return title.clone();
    }
    match &alert.watch {
        Some(Watch::Metric { metric, .. }) => catalog
            .metric(metric)
            .map_or_else(|| alert.name.clone(), |m| m.label.clone()),
        Some(Watch::Report { report, .. }) => catalog
            .get(report)
            .map_or_else(|| alert.name.clone(), |r| r.title.clone()),
        None => alert.name.clone(),
    }
}

/// How the watched values are written.
pub fn style_of(catalog: &Catalog, alert: &AlertSpec, locale: Locale) -> NumberStyle {
    let mut style = NumberStyle::integer();
    style.locale = locale;
    match &alert.watch {
        Some(Watch::Metric { metric, .. }) => {
            if let Some(m) = catalog.metric(metric) {
                style.format = m.format;
            }
        }
        Some(Watch::Report { report, .. }) => {
            if let Some(r) = catalog.get(report) {
                style.format = r.chart.format;
            }
        }
        None => {}
    }
    style
}

impl AlertRunner {
    pub fn new(parts: AlertParts, config: AlertConfig, owner: String) -> Self {
        Self {
            places: tokio::sync::Semaphore::new(config.max_concurrent_evaluations.max(1)),
            parts,
            config,
            owner,
        }
    }

    pub(super) fn lease(&self) -> Lease {
        Lease {
            owner: self.owner.clone(),
            until: Utc::now() + chrono::Duration::from_std(self.config.lease).unwrap_or_default(),
        }
    }

    pub(super) fn max_instances(&self, alert: &AlertSpec) -> usize {
        alert.max_instances.unwrap_or(self.config.max_instances) as usize
    }

    /// Runs until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut cursors: HashMap<String, DateTime<Utc>> = HashMap::new();
        match self.parts.ledger.latest_alert_rounds(None).await {
            Ok(rounds) => {
                for round in rounds {
                    cursors.insert(round.alert.clone(), round.evaluated_at);
                    if let Ok(parsed) = parse_round(&round) {
                        self.publish_state(&round.alert, &parsed.state);
                    }
                }
            }
            Err(error) => tracing::error!(error = %error, "cannot read the alerts' last states"),
        }
        let started = Utc::now();
        loop {
            self.finish_open_rounds().await;
            let catalog = snapshot(&self.parts.catalog);
            let now = Utc::now();
            let catch_up = chrono::Duration::from_std(self.config.catch_up).unwrap_or_default();
            // The alerts due now are evaluated side by side (a slow query delays only its
            // own alert), as many at once as there are places; all end before the sleep.
            let mut evaluations = tokio::task::JoinSet::new();
            for alert in catalog.alerts() {
                let since = cursors
                    .get(&alert.name)
                    .copied()
                    .unwrap_or(started - catch_up)
                    .max(now - catch_up);
                // Only the newest missed slot: an alert says how things are now.
                if let Some(slot) = slots_between(&alert.cron, alert.timezone, since, now).last() {
                    cursors.insert(alert.name.clone(), *slot);
                    let (runner, catalog, name, slot) =
                        (self.clone(), catalog.clone(), alert.name.clone(), *slot);
                    evaluations.spawn(async move {
                        let Ok(_place) = runner.places.acquire().await else {
                            return;
                        };
                        let Some(alert) = catalog.alert(&name) else {
                            return;
                        };
                        if let Err(error) = runner.evaluate_slot(&catalog, alert, slot).await {
                            tracing::error!(alert = %name, error = %error, "alert evaluation failed");
                            runner.count(&name, "failed");
                        }
                    });
                }
            }
            while evaluations.join_next().await.is_some() {}
            let next = catalog
                .alerts()
                .filter_map(|a| next_slot(&a.cron, a.timezone, Utc::now()))
                .min();
            let recovery = Duration::from_secs(RECOVERY_CHECK_SECONDS);
            let sleep = next
                .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(recovery)
                .min(recovery);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    fn count(&self, alert: &str, outcome: &str) {
        self.parts.metrics.increment(
            METRIC_EVALUATIONS,
            METRIC_EVALUATIONS_HELP,
            &[("alert", alert), ("outcome", outcome)],
        );
    }

    fn publish_state(&self, alert: &str, state: &AlertState) {
        let firing = state
            .instances
            .values()
            .filter(|s| s.phase == Phase::Firing)
            .count();
        self.parts.metrics.set(
            METRIC_FIRING,
            METRIC_FIRING_HELP,
            &[("alert", alert)],
            firing as f64,
        );
    }

    /// Rounds whose notices are not all sent (a process died, or a post failed), oldest
    /// first.
    async fn finish_open_rounds(&self) {
        let open = match self.parts.ledger.open_alert_rounds().await {
            Ok(open) => open,
            Err(error) => {
                tracing::error!(error = %error, "cannot list open alert rounds");
                return;
            }
        };
        let catalog = snapshot(&self.parts.catalog);
        for stored in open {
            let Some(alert) = catalog.alert(&stored.alert) else {
                tracing::warn!(alert = %stored.alert, "an open round of an alert no longer in the catalog is closed unsent");
                let _ = self
                    .parts
                    .ledger
                    .finish_alert_round(&stored.alert, stored.evaluated_at, Utc::now())
                    .await;
                continue;
            };
            let result = match parse_round(&stored) {
                Ok(round) => self.deliver_round(&catalog, alert, &round).await,
                Err(error) => {
                    // Unreadable (written by another version?): closed, not retried forever.
                    let _ = self
                        .parts
                        .ledger
                        .finish_alert_round(&stored.alert, stored.evaluated_at, Utc::now())
                        .await;
                    Err(error)
                }
            };
            if let Err(error) = result {
                tracing::error!(alert = %stored.alert, error = %error, "could not finish an alert round");
            }
        }
    }

    /// One evaluation of `alert` at `slot`, unless it is already recorded; then its
    /// notices.
    pub async fn evaluate_slot(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        slot: DateTime<Utc>,
    ) -> Result<(), AlertRunError> {
        let ledger = &self.parts.ledger;
        let round = match self.claim_or_await_round(alert, slot).await? {
            Some(stored) => parse_round(&stored)?,
            None => {
                // Held while the queries run, however long they take: a claim left to
                // lapse mid-evaluation would let another replica run the round again.
                let renewing = self.renew_round_claim(&alert.name, slot);
                let evaluated = self.evaluate_claimed(catalog, alert, slot).await;
                renewing.stop().await;
                // Done with the claim, recorded or not: a process waiting for this round
                // finds it, or takes the claim over at once instead of after a lease.
                if let Err(error) = ledger
                    .release_alert_round(&alert.name, slot, &self.owner, Utc::now())
                    .await
                {
                    tracing::warn!(alert = %alert.name, error = %error, "could not let go of an alert round's claim; it lapses with its lease");
                }
                match evaluated? {
                    Some(round) => round,
                    None => return Ok(()),
                }
            }
        };
        self.publish_state(&alert.name, &round.state);
        self.deliver_round(catalog, alert, &round).await
    }

    /// Evaluates `alert` at `slot` under this process's claim and records the round:
    /// the round to deliver (this one, or the one another process recorded first), or
    /// `None` when a later round exists already.
    async fn evaluate_claimed(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        slot: DateTime<Utc>,
    ) -> Result<Option<Round>, AlertRunError> {
        let ledger = &self.parts.ledger;
        let previous = ledger.latest_alert_rounds(Some(&alert.name)).await?;
        let base = previous.first().map(|p| p.evaluated_at);
        let state = match previous.first() {
            Some(p) if p.evaluated_at >= slot => return Ok(None),
            Some(p) => parse_round(p)?.state,
            None => AlertState::default(),
        };
        let known: Vec<String> = state.instances.keys().cloned().collect();
        let metered = self
            .parts
            .meter
            .bill(self.parts.warehouse.as_ref(), Payer::alert(&alert.name));
        let seen = observe(
            Sources {
                warehouse: &metered,
                ..self.sources(catalog)
            },
            alert,
            slot,
            &known,
            self.config.locale,
        )
        .await;
        let errored = seen
            .values()
            .any(|s| matches!(s, super::judge::Seen::Error(_)));
        let round = evaluate(alert, &state, seen, slot, self.max_instances(alert));
        let firing = round
            .state
            .instances
            .values()
            .filter(|s| s.phase == Phase::Firing)
            .count() as u32;
        let json = serde_json::to_string(&round)
            .map_err(|e| AlertRunError::Corrupt(alert.name.clone(), e.to_string()))?;
        let inserted = ledger
            .insert_alert_round(
                &alert.name,
                slot,
                base,
                &json,
                firing,
                round.notices.len() as u32,
                metered.billed(),
                &self.owner,
                Utc::now(),
            )
            .await?;
        let outcome = if errored {
            "error"
        } else if round.notices.is_empty() {
            "quiet"
        } else {
            "notified"
        };
        self.count(&alert.name, outcome);
        if inserted {
            return Ok(Some(round));
        }
        // Another replica recorded this round first: send what it decided. Or it
        // recorded a later one from the same state: this slot is past.
        match ledger.alert_round(&alert.name, slot).await? {
            Some(stored) => Ok(Some(parse_round(&stored)?)),
            None => Ok(None),
        }
    }

    /// The round of `alert` at `slot` if one is recorded (by any process), else `None`
    /// once this process holds the claim to evaluate it. While another process's claim
    /// holds, its round is waited for; a claim that lapses (its process died before
    /// recording) is taken over. Two replicas never both run one round's queries.
    async fn claim_or_await_round(
        &self,
        alert: &AlertSpec,
        slot: DateTime<Utc>,
    ) -> Result<Option<StoredRound>, AlertRunError> {
        let ledger = &self.parts.ledger;
        loop {
            if let Some(stored) = ledger.alert_round(&alert.name, slot).await? {
                return Ok(Some(stored));
            }
            if ledger
                .claim_alert_round(&alert.name, slot, &self.lease(), Utc::now())
                .await?
            {
                return Ok(None);
            }
            tokio::time::sleep(self.config.lease / ROUND_WAIT_CHECKS_PER_LEASE).await;
        }
    }

    /// Renews this process's claim on a round every third of the lease until aborted;
    /// stops (and says so) once another process has taken it over.
    fn renew_round_claim(&self, alert: &str, slot: DateTime<Utc>) -> ClaimRenewal {
        let (ledger, alert, owner) = (
            self.parts.ledger.clone(),
            alert.to_string(),
            self.owner.clone(),
        );
        let lease = self.config.lease;
        ClaimRenewal(Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
                let renewed = ledger
                    .claim_alert_round(
                        &alert,
                        slot,
                        &Lease {
                            owner: owner.clone(),
                            until,
                        },
                        Utc::now(),
                    )
                    .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(%alert, "another process took this alert round over mid-evaluation; only one of the two rounds is recorded");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%alert, %error, "could not renew the claim on an alert round; trying again");
                    }
                }
            }
        })))
    }

    pub(super) fn sources<'a>(&'a self, catalog: &'a Catalog) -> Sources<'a> {
        Sources {
            warehouse: self.parts.warehouse.as_ref(),
            catalog,
            timeout: self.config.query_timeout,
            limits: self.config.limits,
        }
    }

    pub(super) fn facts<'a>(
        &self,
        alert: &'a AlertSpec,
        title: &'a str,
        style: NumberStyle,
        at: DateTime<Utc>,
    ) -> Facts<'a> {
        Facts {
            alert,
            title,
            style,
            locale: self.config.locale,
            evaluated_at: at,
            day: super::evaluated_day(alert, at),
        }
    }
}
