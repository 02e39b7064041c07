//! The audit log of ad-hoc requests: one JSON line for every request, whatever happened to
//! it (answered, answered privately, refused, failed, timed out, help and lists, a task
//! that panicked) — who, where, what was asked, which entries and data policies, rows,
//! outcome and duration. Written to a file rotated by size, or to stdout for a log
//! collector. Never a secret or a `response_url`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// A file, renamed to `<file>.1` (older ones shifted up to `keep`) once it would grow
    /// past `max_bytes`.
    File {
        path: PathBuf,
        max_bytes: u64,
        keep: usize,
    },
    /// Standard output, one JSON object per line (Cloud Run, Kubernetes log collectors).
    Stdout,
}

/// One request, as the audit log records it.
pub struct AuditEntry<'a> {
    pub user: &'a str,
    pub channel: &'a str,
    /// The command as typed, e.g. `/kpi active_users by role`.
    pub command: &'a str,
    /// The reports and metrics the request was about.
    pub entries: &'a [String],
    /// The data policies they fell under.
    pub policies: &'a [String],
    pub rows: usize,
    /// Bytes the warehouse scanned for it (BigQuery; `None` where it does not say).
    pub bytes: Option<u64>,
    pub outcome: &'a str,
    pub duration: Duration,
}

/// The audit log: opened on first use and appended to, one write per line.
pub struct AuditLog {
    target: AuditTarget,
    file: Mutex<Option<(std::fs::File, u64)>>,
}

/// The name a rotated file gets: `audit.jsonl.1` is the newest old one.
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

impl AuditLog {
    /// A log appended to `path`, never rotated (tests, and callers without settings).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::to(AuditTarget::File {
            path: path.into(),
            max_bytes: u64::MAX,
            keep: 0,
        })
    }

    pub fn to(target: AuditTarget) -> Self {
        Self {
            target,
            file: Mutex::new(None),
        }
    }

    /// Writes one line; a failure to write is logged at error level, never lost silently.
    pub fn write(&self, entry: &AuditEntry) {
        let line = json!({
            "time": Utc::now().to_rfc3339(),
            "user": entry.user,
            "channel": entry.channel,
            "command": entry.command,
            "entries": entry.entries,
            "policies": entry.policies,
            "rows": entry.rows,
            // Bytes scanned are known only on warehouses that report them (BigQuery).
            "bytes": entry.bytes,
            "outcome": entry.outcome,
            "duration_ms": entry.duration.as_millis() as u64,
        });
        let text = format!("{line}\n");
        let written = match &self.target {
            AuditTarget::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            AuditTarget::File {
                path,
                max_bytes,
                keep,
            } => self.append(path, *max_bytes, *keep, text.as_bytes()),
        };
        if let Err(e) = written {
            tracing::error!(target = ?self.target, error = %e, entry = %line, "could not write the audit log");
        }
    }

    fn append(&self, path: &Path, max_bytes: u64, keep: usize, line: &[u8]) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, size)) = file.as_ref()
            && *size > 0
            && size.saturating_add(line.len() as u64) > max_bytes
        {
            *file = None;
            if keep == 0 {
                std::fs::remove_file(path)?;
            } else {
                for n in (1..keep).rev() {
                    let from = rotated(path, n);
                    if from.exists() {
                        std::fs::rename(&from, rotated(path, n + 1))?;
                    }
                }
                std::fs::rename(path, rotated(path, 1))?;
            }
        }
        if file.is_none() {
            // A fresh machine's `data/` may not exist yet: a line is never lost to that.
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder)?;
            }
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            let size = opened.metadata()?.len();
            *file = Some((opened, size));
        }
        let (handle, size) = file.as_mut().expect("opened above");
        // One write per line, so concurrent lines never interleave.
        handle.write_all(line)?;
        *size += line.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(outcome: &str) -> AuditEntry<'_> {
        AuditEntry {
            user: "U1",
            channel: "C1",
            command: "/kpi active_users",
            entries: &[],
            policies: &[],
            rows: 3,
            bytes: Some(2048),
            outcome,
            duration: Duration::from_millis(12),
        }
    }

    #[test]
    fn the_file_rotates_at_the_size_set_and_keeps_that_many_old_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::to(AuditTarget::File {
            path: path.clone(),
            max_bytes: 600,
            keep: 2,
        });
        for _ in 0..30 {
            log.write(&entry("answered"));
        }
        let current = std::fs::metadata(&path).unwrap().len();
        assert!(current <= 600, "the live file is {current} bytes");
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "only two old files are kept");
        for file in [path.clone(), rotated(&path, 1)] {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines() {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(value["outcome"], "answered");
                assert_eq!(value["duration_ms"], 12);
            }
        }
    }

    #[test]
    fn a_folder_not_made_yet_is_made_so_no_line_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/audit/audit.jsonl");
        AuditLog::new(&path).write(&entry("answered"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
