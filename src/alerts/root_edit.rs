//! A firing's root message marked resolved: rebuilt from the root's own round, its chart
//! kept, what resolved (and what still fires) said on top — the last step of a
//! resolution notice, retried across passes until Slack takes it.

use super::engine::{Notice, NoticeRef};
use super::message::{Facts, resolved_root};
use super::notify::{Marker, NotifyError};
use super::run::{AlertRunner, parse_round, style_of};
use crate::catalog::Catalog;
use crate::spec::AlertSpec;

impl AlertRunner {
    /// Edits a firing's root once values under it resolved: rebuilt from the root's own
    /// round, its chart kept, what resolved (and what still fires) said on top.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn edit_root(
        &self,
        catalog: &Catalog,
        alert: &AlertSpec,
        facts: &Facts<'_>,
        notice: &Notice,
        root: &NoticeRef,
        channel: &str,
        ts: &str,
    ) -> Result<(), NotifyError> {
        // Without the root's own round there is nothing to rebuild it from; no later
        // attempt would have more.
        let stored = match self
            .parts
            .ledger
            .alert_round(&alert.name, root.evaluated_at)
            .await
        {
            Ok(Some(stored)) => stored,
            Ok(None) => return Ok(()),
            Err(error) => {
                tracing::warn!(alert = %alert.name, error = %error, "cannot read the firing's round to mark it resolved");
                return Ok(());
            }
        };
        let Ok(root_round) = parse_round(&stored) else {
            return Ok(());
        };
        let Some(root_notice) = root_round.notices.get(root.index as usize) else {
            return Ok(());
        };
        let root_marker = Marker {
            alert: alert.name.clone(),
            evaluated_at: root.evaluated_at,
            index: root.index,
        };
        let chart = self
            .parts
            .notifier
            .chart_of(channel, ts, &root_marker)
            .await;
        let title = facts.title;
        let root_facts = self.facts(
            alert,
            title,
            style_of(catalog, alert, self.config.locale),
            root.evaluated_at,
        );
        let body = resolved_root(
            facts,
            root_notice,
            &root_facts,
            &notice.still_firing,
            chart.as_deref(),
        );
        self.parts
            .notifier
            .update(channel, ts, &body, &root_marker)
            .await
    }
}
