//! Folder delivery: `<out>/<report-id>.png`, `.json` (the exact message) and `.csv` (the
//! data), each written whole or not at all; owner notices go to `<out>/notices.log`. The
//! default delivery: `demo`, `preview`, `run` and `serve` without a Slack token.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Delivery, DeliveryError, PostIdentity, Receipt, Rendered};

/// Where folder delivery writes owner notices.
pub const NOTICES_FILE: &str = "notices.log";

pub struct FolderDelivery {
    dir: PathBuf,
}

impl FolderDelivery {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Writes through a temporary file and a rename, so readers never see half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DeliveryError> {
    let fail = |source| DeliveryError::Write {
        path: path.to_path_buf(),
        source,
    };
    let temp = path.with_extension(format!(
        "{}.tmp-{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    std::fs::write(&temp, bytes).map_err(fail)?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        fail(e)
    })
}

#[async_trait::async_trait]
impl Delivery for FolderDelivery {
    async fn deliver(&self, rendered: &Rendered) -> Result<Receipt, DeliveryError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| DeliveryError::Write {
            path: self.dir.clone(),
            source,
        })?;
        super::check_guard(rendered, rendered.channel.as_deref().unwrap_or_default()).await?;
        let path = |ext: &str| self.dir.join(format!("{}.{ext}", rendered.report_id));
        let (png, json, csv) = (path("png"), path("json"), path("csv"));
        let mut message = serde_json::to_string_pretty(&rendered.message)
            .expect("a serde_json::Value always serializes");
        message.push('\n');
        write_atomically(&csv, rendered.csv.as_bytes())?;
        write_atomically(&png, &rendered.png)?;
        write_atomically(&json, message.as_bytes())?;
        Ok(Receipt::Folder { png, json, csv })
    }

    /// The report's files, if the message written there is for the same slot.
    async fn find_existing(&self, post: &PostIdentity) -> Result<Option<Receipt>, DeliveryError> {
        let path = |ext: &str| self.dir.join(format!("{}.{ext}", post.report_id));
        let Ok(text) = std::fs::read_to_string(path("json")) else {
            return Ok(None);
        };
        let written: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let same_slot = written["metadata"]["event_payload"]["slot"] == post.slot.as_str();
        Ok(same_slot.then(|| Receipt::Folder {
            png: path("png"),
            json: path("json"),
            csv: path("csv"),
        }))
    }

    async fn notify(&self, recipient: &str, text: &str) -> Result<(), DeliveryError> {
        let path = self.dir.join(NOTICES_FILE);
        let fail = |source| DeliveryError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(fail)?;
        writeln!(file, "to {recipient}: {}", text.replace('\n', "\n    ")).map_err(fail)
    }
}
