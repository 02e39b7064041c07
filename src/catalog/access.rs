//! Who may see what, and where an answer may go — the one access rule every path that
//! answers a person goes through. An entry is guarded by its own allow-lists (`[access]`,
//! a metric's lists) and by every data policy that covers it; each is a [`Gate`]. An
//! answer is posted in the channel only when every gate allows that channel; a person
//! every gate allows (by name, group or channel) gets it privately anywhere else; anyone
//! else is refused with the owner to ask. Entries with no gate follow the bot's
//! [`AccessPolicy`].

use crate::catalog::Catalog;
use crate::i18n::mrkdwn::{self, Mrkdwn};
use crate::i18n::{self, Locale, Message};
pub use crate::settings::AccessPolicy;
use crate::spec::policy::allows_channel;
pub use crate::spec::policy::base_columns;
use crate::spec::{Access, MetricSpec, ReportSpec};
use crate::tr_mrkdwn;

/// Who is asking, and where.
#[derive(Debug, Clone, Default)]
pub struct Asker {
    pub user_id: String,
    pub channel_id: String,
    /// The channel's name without `#`, as Slack sends it (policies may name channels).
    pub channel_name: String,
    /// The user's Slack user groups (resolved by the caller, cached).
    pub usergroups: Vec<String>,
    /// The bot's operator at its command line (`kpibot ask`), who already holds the bot's
    /// own credentials: no person to check, so every gate is open.
    pub operator: bool,
}

/// One rule an answer must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// The data policy, or `None` for the entry's own allow-lists.
    pub policy: Option<String>,
    /// What the gate guards, in words (for the reason a private answer gives): Slack
    /// mrkdwn, the entry's or the policy's checked names in code spans.
    pub data: String,
    /// Who to ask for access.
    pub owner: String,
    pub allowed: Access,
}

/// Where an answer may go.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// In the channel it was asked in.
    Channel,
    /// To the asker only; `why` is set when the channel was not allowed (not when the
    /// asker or the entry asked for privacy).
    Private { why: Option<Message> },
    /// Not at all: `owner` is who to ask.
    Refused { owner: String },
}

impl Gate {
    fn allows_channel(&self, asker: &Asker) -> bool {
        allows_channel(&self.allowed, &asker.channel_id)
            || (!asker.channel_name.is_empty()
                && allows_channel(&self.allowed, &format!("#{}", asker.channel_name)))
    }

    fn allows_person(&self, asker: &Asker) -> bool {
        self.allowed.allowed_users.contains(&asker.user_id)
            || asker
                .usergroups
                .iter()
                .any(|g| self.allowed.allowed_usergroups.contains(g))
    }
}

/// The gates of an entry: its own allow-lists, if it has any, then each policy.
pub fn gates<'p>(
    own: &Access,
    owner: &str,
    name: &str,
    policies: impl IntoIterator<Item = &'p crate::spec::PolicySpec>,
) -> Vec<Gate> {
    let mut gates = Vec::new();
    if own.has_lists() {
        gates.push(Gate {
            policy: None,
            data: format!("`{name}`"),
            owner: owner.to_string(),
            allowed: own.clone(),
        });
    }
    gates.extend(policies.into_iter().map(|p| Gate {
        policy: Some(p.name.clone()),
        data: p.data(),
        owner: p.owner.clone(),
        allowed: p.allowed.clone(),
    }));
    gates
}

/// The gates of a report: its `[access]` and every policy its SQL falls under.
pub fn report_gates(catalog: &Catalog, report: &ReportSpec) -> Vec<Gate> {
    gates(
        &report.access,
        &report.owner,
        &report.id,
        catalog.report_policies(report),
    )
}

/// The gates of a query written by hand (an alert's `rows` or `stale` SQL): every policy
/// covering what it reads.
pub fn query_gates(catalog: &Catalog, reads: &crate::warehouse::reads::Reads) -> Vec<Gate> {
    gates(
        &Access::default(),
        "",
        "",
        crate::spec::policy::reads_policies(reads, catalog.policies()),
    )
}

/// `gates` and, besides them, the gate of every policy covering what `reads` proves a
/// query reads (a metric on a view, a report through a table function).
pub fn with_proven_reads(
    mut gates: Vec<Gate>,
    catalog: &Catalog,
    reads: &crate::warehouse::reads::Reads,
) -> Vec<Gate> {
    for gate in query_gates(catalog, reads) {
        if !gates.contains(&gate) {
            gates.push(gate);
        }
    }
    gates
}

/// The gates of a metric question touching `columns` (measured, filtered, split by).
/// A derived metric is guarded by its inputs' own lists as well as its own.
pub fn metric_gates(catalog: &Catalog, metric: &MetricSpec, columns: &[&str]) -> Vec<Gate> {
    let mut all = gates(
        &metric.access,
        &metric.owner,
        &metric.name,
        catalog.metric_policies(metric, columns),
    );
    for (access, owner, name) in metric.input_access() {
        all.extend(gates(access, owner, name, []));
    }
    all
}

/// Where an answer guarded by `gates` may go for `asker`. `private` when the asker asked
/// for it or the entry is `restricted`; `owner` is the entry's owner (asked when the bot's
/// policy denies entries without gates).
pub fn decide(
    gates: &[Gate],
    asker: &Asker,
    default: AccessPolicy,
    private: bool,
    owner: &str,
) -> Decision {
    let quiet = || {
        if private {
            Decision::Private { why: None }
        } else {
            Decision::Channel
        }
    };
    if asker.operator {
        return quiet();
    }
    if gates.is_empty() {
        return match default {
            AccessPolicy::Allow => quiet(),
            AccessPolicy::Deny => Decision::Refused {
                owner: owner.to_string(),
            },
        };
    }
    if let Some(refusing) = gates
        .iter()
        .find(|g| !g.allows_channel(asker) && !g.allows_person(asker))
    {
        return Decision::Refused {
            owner: refusing.owner.clone(),
        };
    }
    match gates.iter().find(|g| !g.allows_channel(asker)) {
        None => quiet(),
        Some(gate) => Decision::Private {
            why: Some(match &gate.policy {
                Some(policy) => Message::new("message-private-policy")
                    .with_mrkdwn("data", Mrkdwn::formatted(gate.data.as_str()))
                    .with("policy", policy),
                None => Message::new("message-private")
                    .with_mrkdwn("data", Mrkdwn::formatted(gate.data.as_str())),
            }),
        },
    }
}

/// Why data may not go to a destination the entry itself names (a schedule's channel, an
/// alert's target, a root's channel), in words that name no data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// A file that may hold policies cannot be read: who may see what cannot be told.
    PoliciesUnreadable,
    /// This policy (or, `None`, the entry's own lists) does not allow the destination.
    NotAllowed { policy: Option<String> },
}

impl Held {
    /// The reason, in `locale`, naming the policy and the destination but no data.
    pub fn text(&self, locale: Locale, destination: &str) -> String {
        match self {
            Held::PoliciesUnreadable => tr_mrkdwn!(locale, "held-policies-unreadable"),
            Held::NotAllowed {
                policy: Some(policy),
            } => tr_mrkdwn!(
                locale,
                "held-policy",
                policy = policy.as_str(),
                destination = destination
            ),
            Held::NotAllowed { policy: None } => {
                tr_mrkdwn!(locale, "held-own-list", destination = destination)
            }
        }
    }
}

/// Whether data that `reads` establishes may be posted to `destination` (a channel as
/// written — an ID or a `#name` — or a user `@U…`), decided with `catalog` as it is now:
/// the entry's own lists and every policy covering what the query reads must allow it.
/// The entry chose the destination, so an entry with no gate posts there.
pub fn decide_post(
    catalog: &Catalog,
    own: &Access,
    reads: &crate::warehouse::reads::Reads,
    destination: &str,
) -> Result<(), Held> {
    decide_post_gates(
        catalog,
        &gates(
            own,
            "",
            "",
            crate::spec::policy::reads_policies(reads, catalog.policies()),
        ),
        destination,
    )
}

/// [`decide_post`] for gates already gathered (a metric question's, by its columns).
pub fn decide_post_gates(catalog: &Catalog, gates: &[Gate], destination: &str) -> Result<(), Held> {
    if catalog.policies_incomplete() {
        return Err(Held::PoliciesUnreadable);
    }
    let person = destination.strip_prefix('@');
    let refusing = gates.iter().find(|gate| match person {
        Some(user) => !gate.allowed.allowed_users.iter().any(|u| u == user),
        None => !allows_channel(&gate.allowed, destination),
    });
    match refusing {
        None => Ok(()),
        Some(gate) => Err(Held::NotAllowed {
            policy: gate.policy.clone(),
        }),
    }
}

/// Whether `asker` may see what `gates` guard at all (here or privately).
pub fn visible(gates: &[Gate], asker: &Asker, default: AccessPolicy) -> bool {
    !matches!(
        decide(gates, asker, default, false, ""),
        Decision::Refused { .. }
    )
}

/// The catalog as one person sees it from one channel: only what they may see.
pub struct Viewer<'a> {
    pub catalog: &'a Catalog,
    pub asker: &'a Asker,
    pub policy: AccessPolicy,
}

impl Viewer<'_> {
    pub fn sees_report(&self, report: &ReportSpec) -> bool {
        visible(&report_gates(self.catalog, report), self.asker, self.policy)
    }

    pub fn sees_metric(&self, metric: &MetricSpec) -> bool {
        let gates = metric_gates(self.catalog, metric, &base_columns(metric));
        visible(&gates, self.asker, self.policy)
    }

    /// The dimensions of `metric` this person may split or filter by.
    pub fn dimensions<'m>(&self, metric: &'m MetricSpec) -> Vec<&'m str> {
        metric
            .dimensions
            .keys()
            .map(String::as_str)
            .filter(|d| {
                let mut columns = base_columns(metric);
                columns.push(d);
                visible(
                    &metric_gates(self.catalog, metric, &columns),
                    self.asker,
                    self.policy,
                )
            })
            .collect()
    }

    /// Every report id and metric name this person may see.
    /// Every name the asker may ask by: ids, titles, labels and aliases of what they may
    /// see (never an alias of what they may not).
    pub fn names_people_use(&self) -> Vec<&str> {
        let reports = self.catalog.reports().filter(|r| self.sees_report(r));
        let metrics = self.catalog.metrics().filter(|m| self.sees_metric(m));
        let mut names: Vec<&str> = Vec::new();
        for r in reports {
            names.extend([r.id.as_str(), r.title.as_str()]);
            names.extend(r.aliases.iter().map(|a| a.text.as_str()));
        }
        for m in metrics {
            names.extend([m.name.as_str(), m.label.as_str()]);
            names.extend(m.aliases.iter().map(|a| a.text.as_str()));
        }
        names
    }

    pub fn names(&self) -> Vec<&str> {
        let reports = self.catalog.reports().filter(|r| self.sees_report(r));
        let metrics = self.catalog.metrics().filter(|m| self.sees_metric(m));
        reports
            .map(|r| r.id.as_str())
            .chain(metrics.map(|m| m.name.as_str()))
            .collect()
    }
}

/// Who may see what `gates` guard, in words (Slack mrkdwn), for `describe`.
pub fn who_may_see(gates: &[Gate], policy: AccessPolicy, locale: Locale) -> Mrkdwn {
    if gates.is_empty() {
        return Mrkdwn::formatted(match policy {
            AccessPolicy::Allow => tr_mrkdwn!(locale, "who-anyone"),
            AccessPolicy::Deny => tr_mrkdwn!(locale, "who-no-one"),
        });
    }
    let lines = gates
        .iter()
        .map(|g| {
            let lists = [
                &g.allowed.allowed_channels,
                &g.allowed.allowed_users,
                &g.allowed.allowed_usergroups,
            ];
            let who: Vec<String> = lists
                .into_iter()
                .flatten()
                .map(|x| format!("`{}`", mrkdwn::escape(x)))
                .collect();
            let who = Mrkdwn::formatted(i18n::list(locale, &who));
            match &g.policy {
                Some(name) => tr_mrkdwn!(
                    locale,
                    "who-policy",
                    policy = name,
                    data = Mrkdwn::formatted(g.data.as_str()),
                    who = who
                ),
                None => tr_mrkdwn!(locale, "who-own-list", who = who),
            }
        })
        .collect::<Vec<_>>()
        .join(match locale {
            Locale::En => "; ",
            Locale::Ja => "。",
        });
    Mrkdwn::formatted(lines)
}

/// Whether `asker` may see something with `access` alone (no policies).
pub fn allowed(access: &Access, asker: &Asker, policy: AccessPolicy) -> bool {
    visible(&gates(access, "", "", []), asker, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lists_and_the_default_policy() {
        let asker = Asker {
            user_id: "U1".into(),
            channel_id: "C1".into(),
            channel_name: String::new(),
            usergroups: vec!["S1".into()],
            operator: false,
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
