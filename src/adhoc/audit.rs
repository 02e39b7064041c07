//! The audit log of ad-hoc requests: one JSON line per request, appended to a file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::Utc;
use serde_json::json;

use crate::slack::inbound::CommandRequest;

/// Where audit lines go, opened on first use and appended to.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl AuditLog {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: Mutex::new(None),
        }
    }

    /// Writes one line for `request`; a failure to write is logged at error level.
    pub fn write(&self, request: &CommandRequest, rows: usize, outcome: &str) {
        let line = json!({
            "time": Utc::now().to_rfc3339(),
            "user": request.user_id,
            "channel": request.channel_id,
            "command": format!("{} {}", request.command, request.text),
            "rows": rows,
            // Bytes scanned are known only on warehouses that report them (BigQuery).
            "bytes": serde_json::Value::Null,
            "outcome": outcome,
        });
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.is_none() {
            *file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| tracing::error!(path = %self.path.display(), error = %e, "cannot open the audit log"))
                .ok();
        }
        let written = match file.as_mut() {
            // One write per line, so concurrent lines never interleave.
            Some(f) => f.write_all(format!("{line}\n").as_bytes()),
            None => Err(std::io::Error::other("the audit log is not open")),
        };
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), error = %e, entry = %line, "could not write the audit log");
        }
    }
}
