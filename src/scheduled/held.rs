//! Slots held by access: whether a scheduled report may post to its channel now (the
//! catalog and policies as they are at that moment, what the warehouse proves the query
//! reads), and what a held slot records and tells its owner — once, naming no data.

use super::Scheduler;
use crate::catalog::Catalog;
use crate::catalog::access::{Held, decide_post};
use crate::deliver::PostIdentity;
use crate::i18n::Locale;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::ledger::{Outcome, SlotKey};
use crate::pipeline::{self, RunOptions};
use crate::spec::{ReportSpec, ScheduleSpec};
use crate::tr_mrkdwn;
use crate::warehouse::reads::Reads;

impl Scheduler {
    /// Whether the report may post to the schedule's channel now: its own `[access]` as
    /// the catalog has it now (a removed or changed report counts as it is now) and every
    /// policy covering what the warehouse proves the query reads — asked once per run, the
    /// first time a policy exists to hold it against. Clears the told-once mark when allowed.
    pub(super) async fn allowed_now(
        &self,
        key: &SlotKey,
        spec: &ReportSpec,
        schedule: &ScheduleSpec,
        options: &RunOptions,
        reads: &mut Option<Reads>,
    ) -> Result<(), Held> {
        let catalog = self.catalog();
        let proven = self.proven_reads(&catalog, spec, options, reads).await;
        let own = catalog
            .get(&spec.id)
            .map_or(&spec.access, |now| &now.access);
        let decided = decide_post(&catalog, own, &proven, &schedule.channel);
        if decided.is_ok() {
            self.held_told
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&super::ScheduleId::of(key));
        }
        decided
    }

    /// What the run's query reads, asked of the warehouse once and only while some policy
    /// could cover it: with none, there is nothing to hold it against.
    pub(super) async fn proven_reads(
        &self,
        catalog: &Catalog,
        spec: &ReportSpec,
        options: &RunOptions,
        reads: &mut Option<Reads>,
    ) -> Reads {
        if !catalog.has_policies() {
            return Reads::nothing();
        }
        if reads.is_none() {
            *reads = Some(pipeline::reads(self.parts.warehouse.as_ref(), spec, options).await);
        }
        reads.clone().unwrap_or_else(Reads::nothing)
    }

    /// Records a slot held by access and tells the owner once per reason, in words that
    /// name no data.
    pub(super) async fn held(
        &self,
        key: &SlotKey,
        spec: &ReportSpec,
        schedule: &ScheduleSpec,
        post: &PostIdentity,
        held: Held,
    ) -> Outcome {
        let locale = self.locale_of(spec);
        let why = held.text(locale, &schedule.channel);
        tracing::warn!(report = %spec.id, slot = %post.slot, channel = %schedule.channel, reason = %held.text(Locale::En, &schedule.channel), "held by access: not posted");
        let first = self
            .held_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(super::ScheduleId::of(key), why.clone())
            .as_deref()
            != Some(why.as_str());
        if first {
            let text = tr_mrkdwn!(
                locale,
                "notice-held",
                title = spec.title.as_str(),
                report = spec.id.as_str(),
                slot = crate::i18n::slot_time(locale, &post.slot),
                channel = schedule.channel.as_str(),
                why = Mrkdwn::formatted(why)
            );
            self.notify_owner(spec, &text).await;
        }
        Outcome::Skipped {
            reason: format!("held: {}", held.text(Locale::En, &schedule.channel)),
        }
    }
}
