//! `/kpi alerts`: the alerts firing now, as the last evaluations left them, for the person
//! asking — only those whose data they may see, by the same access rule as every answer.

use chrono::{DateTime, Utc};

use super::engine::{Phase, Round};
use super::gates::alert_gates;
use super::run::title_of;
use crate::catalog::Catalog;
use crate::catalog::access::{AccessPolicy, Asker, visible};
use crate::i18n::{self, Locale, Message};
use crate::ledger::Ledger;

/// Values named per alert; the rest are counted.
const MAX_NAMED_INSTANCES: usize = 10;

/// The firing alerts `asker` may see, one line each, as Slack mrkdwn.
pub async fn firing_text(
    ledger: Option<&Ledger>,
    catalog: &Catalog,
    dialect: crate::warehouse::Dialect,
    asker: &Asker,
    policy: AccessPolicy,
    locale: Locale,
) -> String {
    let Some(ledger) = ledger else {
        return Message::new("history-needs-ledger").mrkdwn(locale);
    };
    let rounds = match ledger.latest_alert_rounds(None).await {
        Ok(rounds) => rounds,
        Err(error) => {
            return Message::new("history-unavailable")
                .with("error", i18n::error_chain(&error))
                .mrkdwn(locale);
        }
    };
    let mut lines = Vec::new();
    for stored in rounds.iter().filter(|r| r.firing > 0) {
        let Some(alert) = catalog.alert(&stored.alert) else {
            continue;
        };
        if !visible(&alert_gates(catalog, alert, dialect), asker, policy) {
            continue;
        }
        let Ok(round) = serde_json::from_str::<Round>(&stored.round) else {
            continue;
        };
        let title = title_of(catalog, alert);
        let firing: Vec<(&String, DateTime<Utc>)> = round
            .state
            .instances
            .iter()
            .filter(|(_, s)| s.phase == Phase::Firing)
            .map(|(name, s)| (name, s.since))
            .collect();
        let Some(since) = firing.iter().map(|(_, at)| *at).min() else {
            continue;
        };
        let mut names: Vec<String> = firing
            .iter()
            .take(MAX_NAMED_INSTANCES)
            .map(|(name, _)| {
                if name.is_empty() {
                    title.clone()
                } else {
                    (*name).clone()
                }
            })
            .collect();
        if firing.len() > MAX_NAMED_INSTANCES {
            names.push(
                Message::new("alert-more")
                    .with_number("count", (firing.len() - MAX_NAMED_INSTANCES) as f64)
                    .text(locale),
            );
        }
        lines.push(
            Message::new("alert-list-item")
                .with("title", &title)
                .with("alert", &alert.name)
                .with("instances", i18n::list(locale, &names))
                .with(
                    "since",
                    since
                        .with_timezone(&alert.timezone)
                        .format("%Y-%m-%d %H:%M")
                        .to_string(),
                )
                .mrkdwn(locale),
        );
    }
    if lines.is_empty() {
        return Message::new("alert-list-none").mrkdwn(locale);
    }
    let mut text = vec![
        Message::new("alert-list-heading")
            .with_number("count", lines.len() as f64)
            .mrkdwn(locale),
    ];
    text.extend(lines);
    text.join("\n")
}
