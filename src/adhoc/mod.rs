//! The ad-hoc flow — command → resolve → authorize → run → answer — for `/kpi …` in Slack
//! and `kpibot ask` on the command line: one [`grammar`], one resolver against the catalog
//! ([`resolve`], with metric questions made into reports by [`metric`] and [`sql`]), one
//! access rule ([`access`]), the same pipeline the scheduled reports use ([`answer`]), and
//! one type for what a person reads ([`reply`]). [`slash`] is its Slack front door.

/// The one access rule lives beside the catalog it reads (alerts use it too);
/// `adhoc::access` still names it.
pub use crate::catalog::access;
pub mod answer;
pub mod audit;
pub mod context;
pub mod deliver;
pub mod events;
pub mod follow;
pub mod follow_words;
pub mod grammar;
pub mod history;
pub mod home;
pub mod interact;
pub mod metric;
pub mod phrase;
pub mod reply;
pub mod resolve;
pub mod slash;
/// Metric SQL lives with the specs (alerts generate it too); `adhoc::sql` still names it.
pub use crate::spec::metric_sql as sql;
pub mod throttle;
pub mod why;

pub use access::{AccessPolicy, Asker, allowed};
pub use answer::{Answer, Context, answer, answer_resolved};
pub use reply::Reply;
pub use resolve::{Resolved, resolve};
