//! kpibot: KPI reports from the warehouse's mart layer, rendered as charts and posted to
//! Slack on a schedule or on request.
//!
//! The flow, in module order: [`spec`] (report files) → [`pipeline`] (the one shared path)
//! → [`warehouse`] (the query) → [`render`] (chart + message) → [`deliver`] (folder or
//! Slack). [`commands`] are the CLI's verbs; [`settings`] the process configuration.

pub mod ask;
pub mod commands;
pub mod deliver;
pub mod demo;
pub mod ledger;
pub mod metrics;
pub mod pipeline;
pub mod preflight;
pub mod render;
pub mod schedule;
pub mod scheduler;
pub mod serve;
pub mod settings;
pub mod slash;
pub mod spec;
pub mod warehouse;
