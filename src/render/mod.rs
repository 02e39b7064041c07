//! Rendering a report run: the chart PNG and the Slack message, from the query result.

pub mod chart;
pub mod data;
pub mod fonts;
pub mod format;
pub mod message;

pub use chart::{Heading, RenderError, render_png};
pub use data::{ChartData, ShapeError};
pub use message::{MessageFacts, build_message};
