//! A firing's root message marked resolved: rebuilt from the root's own round, its chart
//! kept, what resolved (and what still fires) said on top — the last step of a
//! resolution notice, retried across passes until Slack takes it.

use chrono::{DateTime, Utc};

use super::engine::{Kind, Notice, NoticeRef};
use super::message::{Facts, resolved_root};
use super::notify::{Marker, NotifyError};
use super::run::{AlertRunner, parse_round, style_of};
use crate::catalog::Catalog;
use crate::spec::AlertSpec;

impl AlertRunner {
    /// Edits a firing's root once values under it resolved: rebuilt from the root's own
    /// round, its chart, drivers line and Why? button kept, what resolved (and what still fires)
    /// said on top.
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
        // The chart, the drivers line and the Why? button stay as they were posted.
        let (chart, kept) = self
            .parts
            .notifier
            .root_parts(
                channel,
                ts,
                &root_marker,
                super::drivers::Drivers::is_one_of,
            )
            .await;
        let title = facts.title;
        let root_facts = self.facts(
            alert,
            title,
            style_of(catalog, alert, self.config.locale),
            root.evaluated_at,
        );
        let mut body = resolved_root(
            facts,
            root_notice,
            &root_facts,
            &notice.still_firing,
            chart.as_deref(),
        );
        if let Some(drivers) = super::drivers::Drivers::from_blocks(kept) {
            drivers.add_to(&mut body);
        }
        self.parts
            .notifier
            .update(channel, ts, &body, &root_marker)
            .await
    }

    /// Whether a resolution under `root` was decided in a round after `evaluated_at`: its
    /// edit carries the newer state (what still fires), so this older one is left. When
    /// the ledger cannot say, not superseded (the edit is made; a later one corrects it).
    pub(super) async fn superseded(
        &self,
        alert: &AlertSpec,
        evaluated_at: DateTime<Utc>,
        root: &NoticeRef,
    ) -> bool {
        let later = match self
            .parts
            .ledger
            .alert_rounds_after(&alert.name, evaluated_at)
            .await
        {
            Ok(later) => later,
            Err(error) => {
                tracing::warn!(alert = %alert.name, error = %error, "cannot read later rounds; editing the root anyway");
                return false;
            }
        };
        later
            .iter()
            .filter_map(|stored| parse_round(stored).ok())
            .any(|round| {
                round
                    .notices
                    .iter()
                    .any(|n| n.kind == Kind::Resolved && n.root.as_ref() == Some(root))
            })
    }
}

/// Whether Slack says the message itself can never be edited (gone, too old, not the
/// bot's): no later pass would do better. Anything else (the bot removed from the
/// channel, a token, an outage) an operator can fix between passes.
pub(super) fn edit_impossible(error: &NotifyError) -> bool {
    matches!(
        error,
        NotifyError::Slack(e) if matches!(e.code(), "message_not_found" | "cant_update_message" | "edit_window_closed")
    )
}
