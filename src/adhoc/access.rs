//! Who may see what: an entry's allow-lists (channels, users, user groups) against the
//! person asking and where, with the bot's one [`AccessPolicy`] deciding for entries
//! without lists.

pub use crate::settings::AccessPolicy;
use crate::spec::Access;

/// Who is asking, and where.
#[derive(Debug, Clone, Default)]
pub struct Asker {
    pub user_id: String,
    pub channel_id: String,
    /// The user's Slack user groups (resolved by the caller, cached).
    pub usergroups: Vec<String>,
}

/// Whether `asker` may see something with `access`.
pub fn allowed(access: &Access, asker: &Asker, policy: AccessPolicy) -> bool {
    if !access.has_lists() {
        return policy == AccessPolicy::Allow;
    }
    access.allowed_channels.contains(&asker.channel_id)
        || access.allowed_users.contains(&asker.user_id)
        || asker
            .usergroups
            .iter()
            .any(|g| access.allowed_usergroups.contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lists_and_the_default_policy() {
        let asker = Asker {
            user_id: "U1".into(),
            channel_id: "C1".into(),
            usergroups: vec!["S1".into()],
        };
        let open = Access::default();
        assert!(allowed(&open, &asker, AccessPolicy::Allow));
        assert!(!allowed(&open, &asker, AccessPolicy::Deny));
        let by_channel = Access {
            allowed_channels: vec!["C1".into()],
            ..Access::default()
        };
        assert!(allowed(&by_channel, &asker, AccessPolicy::Deny));
        let by_group = Access {
            allowed_usergroups: vec!["S1".into()],
            ..Access::default()
        };
        assert!(allowed(&by_group, &asker, AccessPolicy::Deny));
        let others = Access {
            allowed_users: vec!["U2".into()],
            allowed_channels: vec!["C9".into()],
            ..Access::default()
        };
        assert!(!allowed(&others, &asker, AccessPolicy::Allow));
    }
}
