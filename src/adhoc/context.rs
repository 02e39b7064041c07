//! What every answer to a command is ([`Answer`]: text, or a chart to post) and what it
//! is answered with ([`Context`]: the catalog, the warehouse, the asker's language, the
//! bounds) — shared by the answers to questions and to why questions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::access::{AccessPolicy, Asker};
use super::phrase::Calendar;
use super::reply::Reply;
use crate::budget::Payer;
use crate::catalog::Catalog;
use crate::i18n::Locale;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::ledger::Ledger;
use crate::pipeline::RunLimits;
use crate::render::Rendered;
use crate::warehouse::cache::QueryCache;
use crate::warehouse::{Trigger, Warehouse};

/// A reply to a command.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Text only: help, lists, definitions, and everything that went wrong.
    Text(Reply),
    /// A chart, to post in the channel or (when `ephemeral`) to the asker only.
    Chart {
        rendered: Box<Rendered>,
        ephemeral: bool,
        rows: usize,
        /// Bytes the answer's queries scanned (0 from the cache; `None`: the warehouse
        /// does not say).
        bytes: Option<u64>,
        /// Why an answer asked in a channel went to the asker only, in one line.
        why_private: Option<Mrkdwn>,
    },
}

impl Answer {
    /// How the request ended, for the audit log and metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Answer::Chart {
                ephemeral: true, ..
            } => "answered_privately",
            Answer::Chart { .. } => "answered",
            Answer::Text(reply) => reply.outcome(),
        }
    }

    /// Bytes the answer's queries scanned, where the warehouse says.
    pub fn bytes(&self) -> Option<u64> {
        match self {
            Answer::Chart { bytes, .. } => *bytes,
            Answer::Text(_) => None,
        }
    }

    /// Rows behind the answer (0 for text).
    pub fn rows(&self) -> usize {
        match self {
            Answer::Chart { rows, .. } => *rows,
            Answer::Text(_) => 0,
        }
    }
}

/// Everything an answer needs.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub warehouse: &'a dyn Warehouse,
    /// What asked: `/kpi` in Slack or `kpibot ask` (BigQuery cost label).
    pub trigger: Trigger,
    pub timezone: Tz,
    pub now: DateTime<Utc>,
    pub timeout: Duration,
    pub policy: AccessPolicy,
    /// How far windows may reach and how many rows a query may return.
    pub limits: RunLimits,
    pub cache: Option<&'a QueryCache>,
    /// The run ledger, for `history` (only `serve` has one).
    pub ledger: Option<&'a Ledger>,
    /// Slack, for the links `/kpi history` shows; `None` outside Slack (`kpibot ask`).
    pub slack: Option<&'a crate::slack::Slack>,
    /// Bills the asker for the answer's queries and keeps them within their daily budget
    /// (`serve`; `None`: not metered).
    pub meter: Option<&'a crate::budget::Meter>,
    /// Answer from the warehouse now, not from the cache ("Refresh").
    pub fresh: bool,
    /// The asker's language: every word of the answer is in it, unless a report states
    /// its own `locale`.
    pub locale: Locale,
    /// The month the company's fiscal year starts in (`今年度`, `上期`, `Q3`).
    pub fiscal_year_start_month: u32,
    /// Following from Slack: its bounds and default time (`serve`; `None`: following
    /// needs the bot).
    pub follows: Option<&'a crate::settings::FollowSettings>,
}

impl Context<'_> {
    /// The warehouse billed to `asker` (their daily budget), when answers are metered.
    pub fn metered(&self, asker: &Asker) -> Option<crate::budget::Metered<'_>> {
        self.meter
            .map(|meter| meter.bill(self.warehouse, Payer::person(&asker.user_id)))
    }

    /// What period words are read against: today in the bot's timezone, the fiscal year.
    pub fn calendar(&self) -> Calendar {
        Calendar::at(self.timezone, self.now, self.fiscal_year_start_month)
    }
}
