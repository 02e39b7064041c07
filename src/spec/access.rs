//! `[access]` (and a metric's or a policy's allow-lists): who may see an entry.

use std::ops::Range;

use super::walk::{Reader, Tbl};

/// Who may ask for a report or metric in Slack. Empty lists mean the default policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Answers only ephemerally (to the person who asked).
    pub restricted: bool,
    pub allowed_channels: Vec<String>,
    pub allowed_users: Vec<String>,
    pub allowed_usergroups: Vec<String>,
    /// Where the lists are written (the `[access]` table, a metric or a policy), for
    /// diagnostics.
    pub span: Range<usize>,
}

impl Access {
    /// Whether any allow-list is set (otherwise the default policy decides).
    pub fn has_lists(&self) -> bool {
        !(self.allowed_channels.is_empty()
            && self.allowed_users.is_empty()
            && self.allowed_usergroups.is_empty())
    }
}

pub(super) const ACCESS_KEYS: [&str; 4] = [
    "restricted",
    "allowed_channels",
    "allowed_users",
    "allowed_usergroups",
];

impl Reader<'_> {
    /// `restricted` and the allow-lists, in a metric or a report's `[access]`.
    pub(super) fn access(&mut self, t: &Tbl) -> Option<Access> {
        let restricted = self.flag(t, "restricted", false);
        let allowed_channels = self.string_list(t, "allowed_channels");
        let allowed_users = self.string_list(t, "allowed_users");
        let allowed_usergroups = self.string_list(t, "allowed_usergroups");
        Some(Access {
            restricted: restricted?,
            allowed_channels: allowed_channels?,
            allowed_users: allowed_users?,
            allowed_usergroups: allowed_usergroups?,
            span: t.anchor.clone(),
        })
    }
}
