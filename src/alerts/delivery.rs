//! Sending a round's notices: each claimed in the ledger, held to the access rule at the
//! time of posting, posted once (looked for first after a crash), recorded; a reply in
//! its firing's thread, a resolution also editing the root; the chart drawn and uploaded
//! with the firing.

use chrono::{Days, Utc};

use super::engine::{Kind, Notice, NoticeRef, Round};
use super::gates::{alert_gates, watched_access};
use super::judge::Reference;
use super::message::{notice_message, problem_text};
use super::notify::{Marker, NotifyError};
use super::root_edit::edit_impossible;
use super::run::{AlertRunError, AlertRunner, ClaimRenewal, style_of, title_of};
use super::watch::{Series, Sources, WatchError, lookback_days, series};
use crate::catalog::Catalog;
use crate::catalog::access::{Asker, Decision, Gate, decide, decide_post_gates, with_proven_reads};
use crate::i18n::Message;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::ledger::alerts::{NoticeClaim, NoticeKey};
use crate::render::alert_chart::{AlertChart, AlertPanel, render_alert_png};
use crate::render::format::NumberStyle;
use crate::spec::AlertSpec;
use crate::spec::alert::{Condition, is_user_target};

/// Passes over open rounds that try a failed root edit ("resolved") before the
/// resolution is recorded with the edit's failure and left.
pub const ROOT_EDIT_ATTEMPTS: u32 = 5;

const METRIC_FAILURES: &str = "kpibot_alert_notification_failures_total";
const METRIC_FAILURES_HELP: &str = "Alert notices that could not be sent, per alert";

/// Days of history drawn in an alert's chart, before the judged day.
pub const CHART_DAYS: u64 = 28;

/// Why a notice was not posted.
enum Reason {
    /// The access rule does not let its target see the data.
    Refused(Message),
    Failed(NotifyError),
}

/// Who an alert's post is for, as the access rule asks: its channel (by the name the spec
/// gives only while it still names that channel), or the person in a direct message.
pub(super) fn target_asker(alert: &AlertSpec, channel_id: &str, named: bool) -> Asker {
    let person = is_user_target(&alert.channel);
    Asker {
        user_id: if person {
            alert.channel.trim_start_matches('@').to_string()
        } else {
            String::new()
        },
        channel_id: channel_id.to_string(),
        channel_name: if person || !named {
            String::new()
        } else {
            alert.channel.trim_start_matches('#').to_string()
        },
        usergroups: Vec::new(),
        operator: false,
    }
}

impl AlertRunner {
    /// Sends every notice of `round` not yet sent; closes the round once all are.
    pub(super) async fn deliver_round(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        round: &Round,
    ) -> Result<(), AlertRunError> {
        let mut complete = true;
        for notice in &round.notices {
            match self.deliver_notice(catalog, alert, round, notice).await {
                Ok(done) => complete &= done,
                Err(error) => {
                    complete = false;
                    tracing::error!(alert = %alert.name, notice = notice.index, error = %error, "could not send an alert notice");
                }
            }
        }
        if complete {
            self.parts
                .ledger
                .finish_alert_round(&alert.name, round.evaluated_at, Utc::now())
                .await?;
        }
        Ok(())
    }

    /// Sends one notice unless it was sent (or is being sent by a live process); `true`
    /// once it is settled, posted or failed for good.
    async fn deliver_notice(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        round: &Round,
        notice: &Notice,
    ) -> Result<bool, AlertRunError> {
        let ledger = &self.parts.ledger;
        let key = NoticeKey {
            alert: alert.name.clone(),
            evaluated_at: round.evaluated_at,
            index: notice.index,
        };
        // A reply waits for its root: until the root is posted (or failed for good), it
        // has no thread to go in, and posting it on its own would read as a new firing.
        let root_post = match &notice.root {
            Some(root) => {
                let key = root_key(alert, root);
                match ledger.notice_post(&key).await? {
                    Some(post) => Some(post),
                    // Failed for good, or never to be sent (its round was closed unsent):
                    // this reply stands on its own.
                    None if ledger.notice_state(&key).await?.as_deref() == Some("failed")
                        || ledger
                            .alert_round(&alert.name, root.evaluated_at)
                            .await?
                            .is_none_or(|r| r.done) =>
                    {
                        None
                    }
                    None => return Ok(false),
                }
            }
            None => None,
        };
        let (takeover, noted_channel, posted_ts, attempt) = match ledger
            .claim_notice(&key, notice.kind.as_str(), &self.lease(), Utc::now())
            .await?
        {
            NoticeClaim::Posted { .. } | NoticeClaim::Failed => return Ok(true),
            NoticeClaim::Held => return Ok(false),
            NoticeClaim::Won {
                takeover,
                channel,
                posted_ts,
                attempt,
            } => (takeover, channel, posted_ts, attempt),
        };
        // The claim is renewed while this notice is being sent (a chart to read and
        // upload, Slack's retries), so no other process takes it over meanwhile.
        let renewing = self.keep_claim(&key);
        let title = title_of(catalog, alert);
        let style = style_of(catalog, alert, self.config.locale);
        let facts = self.facts(alert, &title, style, round.evaluated_at);
        if notice.kind == Kind::Problem {
            // Instance names and warehouse errors can quote the data: the owner reads them
            // only where every gate over that data lets them see it.
            let gates = self.gates_now(catalog, alert, round.evaluated_at).await;
            let text = if decide_post_gates(catalog, &gates, &alert.owner).is_ok() {
                problem_text(&facts, notice, self.max_instances(alert))
            } else {
                Message::new("alert-problem-withheld")
                    .with("alert", &alert.name)
                    .with_number("count", notice.items.len() as f64)
                    .text(self.config.locale)
            };
            let result = self.parts.delivery.notify(&alert.owner, &text).await;
            let error = result.as_ref().err().map(|e| e.to_string());
            if let Some(error) = &error {
                self.failed(alert, error);
            }
            let posted = error.is_none().then_some((alert.owner.as_str(), ""));
            ledger
                .record_notice(&key, &self.owner, posted, error.as_deref(), Utc::now())
                .await?;
            return Ok(true);
        }
        let marker = Marker {
            alert: alert.name.clone(),
            evaluated_at: round.evaluated_at,
            index: notice.index,
        };
        // With its root failed for good, a reply stands on its own in the alert's channel.
        let notifier = &self.parts.notifier;
        // `named`: the spec's target resolves to this channel now. Under a root the post
        // goes where the root is, and the spec's channel name counts only while it still
        // names that channel.
        let (channel, named) = match (&root_post, noted_channel) {
            (Some((channel, _)), _) => (channel.clone(), None),
            (None, Some(channel)) => (channel, None),
            (None, None) => match notifier.channel_of(&alert.channel).await {
                Ok(channel) => (channel, Some(true)),
                Err(error) => return self.give_up(alert, &key, Reason::Failed(error)).await,
            },
        };
        ledger
            .note_notice_channel(&key, &self.owner, &channel)
            .await?;
        let named = match named {
            Some(named) => named,
            None => {
                matches!(notifier.channel_of(&alert.channel).await, Ok(current) if current == channel)
            }
        };
        // A reply already in Slack (only its root's edit left) is not refused after the
        // fact: the edit says nothing the thread does not.
        if posted_ts.is_none()
            && let Some(why) = self
                .refusal(catalog, alert, &channel, named, round.evaluated_at)
                .await
        {
            return self.give_up(alert, &key, Reason::Refused(why)).await;
        }
        let thread = root_post.as_ref().map(|(_, ts)| ts.as_str());
        let found = if let Some(ts) = posted_ts {
            // Posted already; only the root's edit is left.
            Some(ts)
        } else if takeover {
            // The process that claimed this died: it may have posted before recording.
            notifier.find(&channel, thread, &marker).await?
        } else {
            None
        };
        let ts = match found {
            Some(ts) => {
                tracing::info!(alert = %alert.name, notice = notice.index, %ts, "found the notice a stopped process had posted; recording it, not posting again");
                ts
            }
            None => {
                let chart = match notice.kind {
                    Kind::Fired | Kind::MuteSummary if root_post.is_none() => {
                        self.chart(
                            catalog, alert, &title, &style, round, notice, &marker, &channel,
                        )
                        .await
                    }
                    _ => None,
                };
                let mut body = notice_message(&facts, notice, chart.as_deref());
                if notice.kind == Kind::Fired && root_post.is_none() {
                    let asker = target_asker(alert, &channel, named);
                    if let Some(drivers) =
                        self.drivers(catalog, alert, notice, &facts, &asker).await
                    {
                        drivers.add_to(&mut body);
                    }
                }
                // The channel's turn first, shared with report posts across replicas;
                // then, right before the post, whether the notice is still ours.
                if let Some(interval) = self.config.channel_turns {
                    let give_up_at = std::time::Instant::now() + self.config.lease;
                    crate::scheduled::run::wait_for_channel_turn(
                        ledger,
                        &format!("alert {}", alert.name),
                        &channel,
                        interval,
                        give_up_at,
                    )
                    .await;
                }
                // Still ours? Asked right before each attempt (renewing the claim): a
                // process that lost it (paused past its lease) must not post what another
                // has taken over, nor post on a yes older than three sixteenths of a lease.
                let lease = self.config.lease;
                let guard = || {
                    let until = self.lease().until;
                    let (key, owner) = (&key, &self.owner);
                    async move {
                        let asked = std::time::Instant::now();
                        match ledger.renew_notice(key, owner, until).await? {
                            true => Ok(Some(asked + lease / 4 - lease / 16)),
                            false => Err(NotifyError::TakenOver),
                        }
                    }
                };
                match notifier
                    .post(&channel, &alert.channel, thread, &body, &marker, guard)
                    .await
                {
                    Ok(ts) => ts,
                    Err(NotifyError::TakenOver) => {
                        tracing::warn!(alert = %alert.name, notice = notice.index, "lost the claim on a notice before posting it; leaving it to the process that took it over");
                        return Ok(false);
                    }
                    Err(NotifyError::Ledger(error)) => return Err(error.into()),
                    Err(error) => return self.give_up(alert, &key, Reason::Failed(error)).await,
                }
            }
        };
        // The root is edited before the resolution is recorded: a process that dies in
        // between leaves the notice to a takeover, which finds the reply and edits again
        // (the same edit twice changes nothing), so the root never keeps saying "firing".
        // An edit Slack refuses is kept open in the ledger with its reason and tried again
        // by each later pass over open rounds, up to ROOT_EDIT_ATTEMPTS, unless the message
        // itself can no longer be edited; a later resolution under the same root carries
        // the newer state, so an older one never overwrites it.
        let mut error = None;
        if notice.kind == Kind::Resolved
            && let (Some(root), Some((root_channel, root_ts))) = (&notice.root, &root_post)
            && !self.superseded(alert, round.evaluated_at, root).await
            && let Err(failure) = self
                .edit_root(catalog, alert, &facts, notice, root, root_channel, root_ts)
                .await
        {
            let why = format!("the firing message could not be marked resolved: {failure}");
            if attempt < ROOT_EDIT_ATTEMPTS && !edit_impossible(&failure) {
                tracing::warn!(alert = %alert.name, attempt, error = %failure, "could not mark the firing message resolved; trying again on the next pass");
                renewing.stop().await;
                ledger
                    .hold_notice(&key, &self.owner, (&channel, &ts), &why, Utc::now())
                    .await?;
                return Ok(false);
            }
            self.failed(alert, &why);
            error = Some(why);
        }
        ledger
            .record_notice(
                &key,
                &self.owner,
                Some((&channel, &ts)),
                error.as_deref(),
                Utc::now(),
            )
            .await?;
        Ok(true)
    }

    /// Why `alert` may not post to its target now, if it may not: the same rule a `/kpi`
    /// answer goes through, with the target as the asker (a channel, or a person in a
    /// direct message), against the catalog as it is at the time of posting.
    async fn refusal(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        channel_id: &str,
        named: bool,
        at: chrono::DateTime<Utc>,
    ) -> Option<Message> {
        if catalog.policies_incomplete() {
            return Some(
                Message::new("alert-refused")
                    .with("channel", &alert.channel)
                    .with("alert", &alert.name),
            );
        }
        let gates = self.gates_now(catalog, alert, at).await;
        let person = is_user_target(&alert.channel);
        let asker = target_asker(alert, channel_id, named);
        // A `restricted` entry answers only privately: never into a channel.
        let private = watched_access(catalog, alert).is_some_and(|a| a.restricted);
        match decide(
            &gates,
            &asker,
            self.config.access_policy,
            private,
            &alert.owner,
        ) {
            Decision::Channel => None,
            Decision::Private { .. } if person => None,
            _ => Some(
                Message::new("alert-refused")
                    .with("channel", &alert.channel)
                    .with("alert", &alert.name),
            ),
        }
    }

    /// The gates over what `alert` posts, with the catalog as it is now: what it watches
    /// (its metric's or report's lists and policies) and every policy covering what the
    /// warehouse proves its query reads (through views and table functions).
    async fn gates_now(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        at: chrono::DateTime<Utc>,
    ) -> Vec<Gate> {
        let gates = alert_gates(catalog, alert, self.parts.warehouse.dialect());
        if !catalog.has_policies() {
            return gates;
        }
        let proven = super::watch::reads(self.sources(catalog), alert, at).await;
        with_proven_reads(gates, catalog, &proven)
    }

    /// Renews this process's claim on `key` every third of the lease until the returned
    /// guard is dropped.
    fn keep_claim(&self, key: &NoticeKey) -> ClaimRenewal {
        let ledger = self.parts.ledger.clone();
        let (key, owner, lease) = (key.clone(), self.owner.clone(), self.config.lease);
        ClaimRenewal(Some(tokio::spawn(async move {
            let mut every = tokio::time::interval(lease / 3);
            every.tick().await;
            loop {
                every.tick().await;
                let until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
                match ledger.renew_notice(&key, &owner, until).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(error) => {
                        tracing::warn!(alert = %key.alert, error = %error, "could not renew a notice's claim")
                    }
                }
            }
        })))
    }

    /// Records a notice as failed for good and tells the owner why, in their language.
    async fn give_up(
        &self,
        alert: &AlertSpec,
        key: &NoticeKey,
        reason: Reason,
    ) -> Result<bool, AlertRunError> {
        let locale = self.config.locale;
        let (logged, told) = match &reason {
            Reason::Refused(message) => (
                message.to_string(),
                Mrkdwn::formatted(message.mrkdwn(locale)),
            ),
            Reason::Failed(NotifyError::Slack(error)) => (error.to_string(), error.mrkdwn(locale)),
            Reason::Failed(other) => (other.to_string(), Mrkdwn::value(&other.to_string())),
        };
        self.failed(alert, &logged);
        self.parts
            .ledger
            .record_notice(key, &self.owner, None, Some(&logged), Utc::now())
            .await?;
        let text = Message::new("alert-not-posted")
            .with("alert", &alert.name)
            .with("channel", &alert.channel)
            .with_mrkdwn("reason", told)
            .mrkdwn(locale);
        if let Err(notify) = self.parts.delivery.notify(&alert.owner, &text).await {
            tracing::error!(alert = %alert.name, error = %notify, "the owner could not be told either");
        }
        Ok(true)
    }

    fn failed(&self, alert: &AlertSpec, error: &str) {
        tracing::error!(alert = %alert.name, error, "alert notice not sent");
        self.parts.metrics.increment(
            METRIC_FAILURES,
            METRIC_FAILURES_HELP,
            &[("alert", &alert.name)],
        );
    }

    /// The chart under a firing's root: a panel per value (up to the digest's limit).
    #[allow(clippy::too_many_arguments)]
    async fn chart(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        title: &str,
        style: &NumberStyle,
        round: &Round,
        notice: &Notice,
        marker: &Marker,
        channel: &str,
    ) -> Option<String> {
        alert.watch.as_ref()?;
        let day = super::evaluated_day(alert, round.evaluated_at);
        let from = day - Days::new(CHART_DAYS.max(lookback_days(&alert.condition)));
        // The chart's query is the alert's too, within its budget.
        let metered = self.parts.meter.bill(
            self.parts.warehouse.as_ref(),
            crate::budget::Payer::alert(&alert.name),
        );
        let sources = Sources {
            warehouse: &metered,
            ..self.sources(catalog)
        };
        let values: Series = match series(sources, alert, from, day).await {
            Ok(values) => values,
            Err(error) => {
                log_chart_error(alert, &error);
                return None;
            }
        };
        let panels: Vec<AlertPanel> = notice
            .items
            .iter()
            .take(self.config.digest_charts.max(1))
            .map(|item| panel(alert, &values, item, from, day, title))
            .collect();
        let subtitle = format!(
            "{} – {} ({})",
            from + Days::new(1),
            day,
            alert.timezone.name()
        );
        let (owned_title, owned_style) = (title.to_string(), *style);
        // Drawing is CPU work: off the async workers, at background priority.
        let drawn = tokio::task::spawn_blocking(move || {
            crate::priority::background(|| {
                render_alert_png(&AlertChart {
                    title: &owned_title,
                    subtitle: &subtitle,
                    panels: &panels,
                    style: owned_style,
                })
            })
        })
        .await;
        let png = match drawn {
            Ok(Ok(png)) => png,
            Ok(Err(error)) => {
                tracing::warn!(alert = %alert.name, error = %error, "could not draw the alert's chart; posting without it");
                return None;
            }
            Err(error) => {
                tracing::warn!(alert = %alert.name, error = %error, "drawing the alert's chart stopped; posting without it");
                return None;
            }
        };
        match self
            .parts
            .notifier
            .upload_chart(marker, title, &png, channel)
            .await
        {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::warn!(alert = %alert.name, error = %error, "could not upload the alert's chart; posting without it");
                None
            }
        }
    }
}

fn log_chart_error(alert: &AlertSpec, error: &WatchError) {
    tracing::warn!(alert = %alert.name, error = %error, "could not read the series for the alert's chart");
}

fn root_key(alert: &AlertSpec, root: &NoticeRef) -> NoticeKey {
    NoticeKey {
        alert: alert.name.clone(),
        evaluated_at: root.evaluated_at,
        index: root.index,
    }
}

/// One value's panel: its last days, the threshold or band, the judged point marked.
fn panel(
    alert: &AlertSpec,
    values: &Series,
    item: &super::engine::Item,
    from: chrono::NaiveDate,
    day: chrono::NaiveDate,
    title: &str,
) -> AlertPanel {
    let series = values.get(&item.instance);
    let first = day - Days::new(CHART_DAYS - 1);
    let days = first
        .iter_days()
        .take_while(|d| *d <= day)
        .filter(|d| *d > from)
        .map(|d| (d, series.and_then(|s| s.get(&d).copied())))
        .collect();
    let (threshold, band) = match (&alert.condition, &item.reference) {
        (Condition::Above(x) | Condition::Below(x), _) => (Some(*x), None),
        (_, Some(Reference::Band { low, high, .. })) => (None, Some((*low, *high))),
        _ => (None, None),
    };
    AlertPanel {
        name: if item.instance.is_empty() {
            title.to_string()
        } else {
            item.instance.clone()
        },
        days,
        threshold,
        band,
        // A pace alert's value is the period's projection, not a day's: not drawn.
        breach: item
            .value
            .filter(|_| !matches!(item.reference, Some(Reference::Pace { .. })))
            .map(|v| (day, v)),
        firing: Vec::new(),
    }
}
