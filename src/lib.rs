//! kpibot: KPI reports from the warehouse's mart layer, rendered as charts and posted to
//! Slack on a schedule or on request.
//!
//! Two flows share one path. The scheduled flow, [`scheduled`]: schedule → claim (in the
//! [`ledger`]) → run → post. The ad-hoc flow, [`adhoc`]: command → resolve → authorize →
//! run → answer. Both run reports through [`pipeline`] (the [`warehouse`] query, then
//! [`render`]) and hand them to [`deliver`] (a folder, or Slack through [`slack`]). The
//! [`catalog`] of [`spec`]s is what both read. [`app`] assembles everything from
//! [`settings`]; [`cli`] holds the verbs; [`ops`] the health and metrics endpoints;
//! [`studio`] the authors' local web page.

pub mod adhoc;
pub mod alerts;
pub mod app;
pub mod budget;
pub mod catalog;
pub mod cli;
pub mod deliver;
pub mod explain;
pub mod follow;
pub mod i18n;
pub mod ledger;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod priority;
pub mod render;
pub mod retry;
pub mod scheduled;
pub mod settings;
pub mod slack;
pub mod spec;
pub mod studio;
pub mod warehouse;
