//! Folder delivery: `<out>/<report-id>.png`, `.json` (the exact message) and `.csv` (the
//! data), each written whole or not at all. Used by `demo`, `preview` and tests.

use std::path::{Path, PathBuf};

use super::{Delivery, DeliveryError, Receipt, Rendered};

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
}
