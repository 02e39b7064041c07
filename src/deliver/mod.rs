//! The delivery seam: hand a rendered report to Slack or to a folder and get a receipt.

pub mod folder;

use std::path::PathBuf;

pub use folder::FolderDelivery;

/// A report run ready to deliver: the chart, the message and the data behind it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub report_id: String,
    pub png: Vec<u8>,
    /// The exact `chat.postMessage` body, metadata included.
    pub message: serde_json::Value,
    /// The query result behind the chart, as CSV.
    pub csv: String,
}

/// Proof that a delivery happened, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    Folder {
        png: PathBuf,
        json: PathBuf,
        csv: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Somewhere a rendered report can go.
#[async_trait::async_trait]
pub trait Delivery: Send + Sync {
    async fn deliver(&self, rendered: &Rendered) -> Result<Receipt, DeliveryError>;
}
