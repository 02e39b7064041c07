//! The access rule as a property, over generated catalogs and askers: an answer reaches a
//! channel only if every covering policy (and the entry's own list) allows that channel,
//! and reaches a person only if every one of them allows that person (by name, group, or
//! the channel they ask from) — and nobody every rule allows is refused.

use std::path::Path;

use kpibot::adhoc::access::{Asker, Decision, decide, report_gates};
use kpibot::catalog::Catalog;
use kpibot::settings::AccessPolicy;
use kpibot::spec::{self, SpecDefaults};
use proptest::prelude::*;

const TABLES: [&str; 2] = ["mart.sales", "mart.usage"];
const COLUMNS: [&str; 3] = ["region", "amount", "school"];
const CHANNELS: [&str; 3] = ["C0AAAAAAAA", "C0BBBBBBBB", "C0CCCCCCCC"];
const USERS: [&str; 2] = ["U0ALICE001", "U0BOB00001"];
const GROUPS: [&str; 2] = ["S0ANALYST1", "S0SALES001"];

#[derive(Debug, Clone)]
struct Lists {
    channels: Vec<usize>,
    users: Vec<usize>,
    groups: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Policy {
    table: usize,
    columns: Vec<usize>,
    lists: Lists,
}

fn subset(n: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..n, 0..=n).prop_map(|s| s.into_iter().collect())
}

fn lists() -> impl Strategy<Value = Lists> {
    (subset(3), subset(2), subset(2)).prop_map(|(channels, users, groups)| Lists {
        channels,
        users,
        groups,
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    (0..2usize, subset(3), lists())
        .prop_filter("a policy allows someone", |(_, _, l)| {
            !(l.channels.is_empty() && l.users.is_empty() && l.groups.is_empty())
        })
        .prop_map(|(table, columns, lists)| Policy {
            table,
            columns,
            lists,
        })
}

fn toml_list(key: &str, items: &[usize], names: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|&i| format!("\"{}\"", names[i])).collect();
    format!("{key} = [{}]\n", quoted.join(", "))
}

fn lists_toml(lists: &Lists) -> String {
    toml_list("allowed_channels", &lists.channels, &CHANNELS)
        + &toml_list("allowed_users", &lists.users, &USERS)
        + &toml_list("allowed_usergroups", &lists.groups, &GROUPS)
}

fn allows(lists: &Lists, asker: &Asker) -> (bool, bool) {
    let channel = lists
        .channels
        .iter()
        .any(|&c| CHANNELS[c] == asker.channel_id);
    let person = lists.users.iter().any(|&u| USERS[u] == asker.user_id)
        || lists
            .groups
            .iter()
            .any(|&g| asker.usergroups.iter().any(|x| x == GROUPS[g]));
    (channel, person)
}

proptest! {
    #[test]
    fn answers_reach_only_channels_and_people_every_rule_allows(
        policies in proptest::collection::vec(policy(), 0..4),
        table in 0..2usize,
        selected in subset(3),
        star in any::<bool>(),
        own in proptest::option::of(lists()),
        channel in 0..3usize,
        user in 0..2usize,
        groups in subset(2),
    ) {
        let mut policy_file = String::new();
        for (i, p) in policies.iter().enumerate() {
            policy_file += &format!(
                "[[policy]]\nname = \"p{i}\"\ntable = \"{}\"\nowner = \"#owner{i}\"\n{}{}\n",
                TABLES[p.table],
                toml_list("columns", &p.columns, &COLUMNS),
                lists_toml(&p.lists),
            );
        }
        let columns: Vec<&str> = selected.iter().map(|&c| COLUMNS[c]).collect();
        let select = if star || columns.is_empty() { "*".to_string() } else { columns.join(", ") };
        let access = own
            .as_ref()
            .filter(|l| !(l.channels.is_empty() && l.users.is_empty() && l.groups.is_empty()))
            .map(|l| format!("[access]\n{}", lists_toml(l)))
            .unwrap_or_default();
        let report = format!(
            "title = \"t\"\ndescription = \"d\"\nowner = \"#o\"\n[definition]\nsource = \"s\"\nrefreshed = \"r\"\npurpose = \"p\"\n[query]\nsql = \"SELECT {select} FROM {} WHERE day BETWEEN @start_date AND @end_date\"\n[chart]\nkind = \"table\"\nx = \"region\"\ny = \"amount\"\n{access}",
            TABLES[table]
        );
        let defaults = SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
        let mut files = vec![spec::load_source(Path::new("report.toml"), report, &defaults)];
        if !policies.is_empty() {
            files.push(spec::load_source(Path::new("policies.toml"), policy_file, &defaults));
        }
        prop_assert!(files.iter().all(|f| f.diagnostics.is_empty()), "{:?}", files[0].diagnostics);
        let catalog = Catalog::from_loaded(&files);
        let spec = catalog.get("report").expect("the report loads");
        let asker = Asker {
            user_id: USERS[user].into(),
            channel_id: CHANNELS[channel].into(),
            channel_name: String::new(),
            usergroups: groups.iter().map(|&g| GROUPS[g].to_string()).collect(),
            operator: false,
        };
        // The rules that apply, found independently of kpibot's coverage code.
        let mut rules: Vec<&Lists> = policies
            .iter()
            .filter(|p| p.table == table
                && (p.columns.is_empty() || star || columns.is_empty()
                    || p.columns.iter().any(|c| selected.contains(c))))
            .map(|p| &p.lists)
            .collect();
        if let Some(own) = own.as_ref().filter(|l| !(l.channels.is_empty() && l.users.is_empty() && l.groups.is_empty())) {
            rules.push(own);
        }
        let verdicts: Vec<(bool, bool)> = rules.iter().map(|l| allows(l, &asker)).collect();
        let decision = decide(&report_gates(&catalog, spec), &asker, AccessPolicy::Allow, false, "#o");
        match &decision {
            Decision::Channel => prop_assert!(verdicts.iter().all(|(c, _)| *c), "{decision:?} {verdicts:?}"),
            Decision::Private { .. } => {
                prop_assert!(verdicts.iter().all(|(c, p)| *c || *p), "{decision:?} {verdicts:?}");
                prop_assert!(!verdicts.iter().all(|(c, _)| *c), "needlessly private");
            }
            Decision::Refused { .. } => prop_assert!(
                verdicts.iter().any(|(c, p)| !*c && !*p),
                "refused someone every rule allows: {verdicts:?}"
            ),
        }
    }
}
