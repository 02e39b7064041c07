//! Rendering a report run: the chart PNG and the Slack message, from the query result.
//! [`render_run`] is the one entry point the pipeline calls.

pub mod actions;
pub mod alert_chart;
pub mod backend;
mod canvas;
pub mod chart;
pub mod data;
pub mod encode;
pub mod fonts;
pub mod format;
pub mod labels;
pub mod message;
pub mod native;
pub mod page;
mod panels;
pub mod report;
pub mod standard_set;
pub mod waterfall;

pub use chart::{Card, ChartInput, RenderError};
pub use data::{ChartData, ShapeError};
pub use message::{MessageFacts, build_message};
pub use page::{render_pixmap, render_png};
pub use report::{PostGuard, Rendered, RunFacts, day_text, render_run, window_text};
