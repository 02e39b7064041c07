//! `kpibot check` on broken specs: every problem, with path, line, column and a caret,
//! snapshot-tested so a change in wording is a reviewed change.

mod common;

use std::path::Path;

use kpibot::spec::{self, SpecDefaults};

fn defaults() -> SpecDefaults {
    SpecDefaults::duckdb(chrono_tz::Asia::Tokyo)
}

/// Loads one fixture with a repo-relative path, as `kpibot check tests/fixtures/…` shows it.
fn diagnostics_of(name: &str) -> (usize, String) {
    let relative = format!("tests/fixtures/invalid/{name}.toml");
    let source = std::fs::read_to_string(common::repo_path(&relative)).unwrap();
    let file = spec::load_source(Path::new(&relative), source, &defaults());
    assert!(file.spec.is_none(), "{name} must not load as a valid spec");
    (file.diagnostics.len(), file.render_diagnostics())
}

macro_rules! fixture_test {
    ($name:ident, $min_problems:expr, [$($needle:expr),*]) => {
        #[test]
        fn $name() {
            let (count, rendered) = diagnostics_of(stringify!($name));
            assert!(count >= $min_problems, "expected at least {} problems, got {count}:\n{rendered}", $min_problems);
            $(assert!(rendered.contains($needle), "missing {:?} in:\n{rendered}", $needle);)*
            insta::assert_snapshot!(stringify!($name), rendered);
        }
    };
}

fixture_test!(
    syntax_error,
    1,
    [
        "tests/fixtures/invalid/syntax_error.toml:1:",
        "TOML syntax error"
    ]
);
fixture_test!(
    unknown_keys,
    3,
    [
        "unknown_keys.toml:1:1: error: unknown key `titel`",
        "did you mean `title`?",
        "did you mean `series`?",
        "did you mean `channel`?"
    ]
);
fixture_test!(
    wrong_types,
    6,
    [
        "`title` must be a string, found integer",
        "`tags` must be a list of strings",
        "`query.timeout_seconds` must be a positive whole number of seconds",
        "`chart.y` must be a string, found array",
        "`schedule` must be a list",
        "wrong_types.toml:15:24: error: `query.maximum_bytes_billed`"
    ]
);
fixture_test!(
    bad_params,
    4,
    [
        "bad_params.toml:21:11: error: `query.params.regions` mixes types",
        "`query.params.since` `2026-11-01T09:00:00` needs a date and, with a time, a UTC offset",
        "`start_date` cannot be a parameter name",
        "query parameter `@rol` is not one the bot provides",
        "did you mean `@role`?",
        "declare your own under [query.params]"
    ]
);
fixture_test!(
    missing_keys,
    5,
    [
        "missing required key `description`",
        "missing required key `owner`",
        "missing required table `[definition]`",
        "missing required key `query.sql`",
        "missing required key `chart.y`"
    ]
);
fixture_test!(
    unix_cron,
    2,
    [
        "unix_cron.toml:19:8: error: `0 9 * * 1-5` is a 5-field Unix cron",
        "write `0 0 9 * * 1-5`",
        "invalid cron `0 0 25 * * *`"
    ]
);
fixture_test!(
    unknown_timezone,
    2,
    [
        "unknown timezone `Asia/Tokio`",
        "did you mean `Asia/Tokyo`?",
        "unknown timezone `JST`"
    ]
);
fixture_test!(
    bad_period_and_choices,
    5,
    [
        "unparsable period",
        "`saturday` is not a valid `query.week_start`",
        "`pie` is not a valid `chart.kind`",
        "did you mean `percent`?",
        "`nativ` is not a valid `chart.slack_chart`",
        "did you mean `native`?"
    ]
);
fixture_test!(empty_sql, 1, ["`query.sql` is empty"]);
fixture_test!(
    unknown_parameters,
    2,
    [
        "unknown_parameters.toml:14:29: error: query parameter `@start_dat`",
        "did you mean `@start_date`?",
        "query parameter `@region`"
    ]
);

#[test]
fn every_fixture_has_a_test() {
    let dir = common::repo_path("tests/fixtures/invalid");
    let tested = [
        "syntax_error",
        "unknown_keys",
        "wrong_types",
        "missing_keys",
        "unix_cron",
        "unknown_timezone",
        "bad_period_and_choices",
        "empty_sql",
        "unknown_parameters",
        "bad_params",
        "warehouse_clock",
        "alert_problems",
    ];
    for entry in std::fs::read_dir(dir).unwrap() {
        let stem = entry
            .unwrap()
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            tested.contains(&stem.as_str()),
            "fixture {stem} has no test"
        );
    }
}

#[test]
fn duplicate_report_ids_across_folders_are_reported() {
    let dir = common::repo_path("tests/fixtures/duplicate_ids");
    let files = spec::load_dir(&dir, &defaults()).unwrap();
    let flagged: Vec<_> = files.iter().filter(|f| !f.diagnostics.is_empty()).collect();
    assert_eq!(flagged.len(), 1, "exactly the second file is flagged");
    let rendered = flagged[0].render_diagnostics();
    assert!(rendered.contains("duplicate report id `dau`"), "{rendered}");
    assert!(
        rendered.contains("marketing/dau.toml already defines"),
        "{rendered}"
    );
}

#[test]
fn the_example_reports_are_valid() {
    let files = spec::load_dir(&common::repo_path("reports"), &defaults()).unwrap();
    assert!(files.len() >= 6, "at least six example reports");
    for file in &files {
        assert!(file.diagnostics.is_empty(), "{}", file.render_diagnostics());
    }
}

fixture_test!(
    warehouse_clock,
    3,
    [
        "warehouse_clock.toml:14:27: error: `CURRENT_DATE` is the warehouse's clock",
        "warehouse_clock.toml:14:48: error: `current_date` is the warehouse's clock",
        "`NOW` is the warehouse's clock",
        "use @run_date"
    ]
);

/// Every problem in a folder that needs all its files at once (policies live anywhere).
fn folder_diagnostics(folder: &str) -> String {
    let files = spec::load_dir(Path::new(folder), &defaults()).unwrap();
    files
        .iter()
        .filter(|f| !f.diagnostics.is_empty())
        .map(|f| f.render_diagnostics())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_access_wider_than_its_policy_and_a_schedule_outside_it_are_errors() {
    let rendered = folder_diagnostics("tests/fixtures/policy");
    for needle in [
        "too_wide.toml:23:2: error: [access] allows channel `#general`, which policy `revenue` does not",
        "[access] allows user `U0INTERN`",
        "this schedule posts to `#general`, which policy `revenue` does not allow to see `mart.daily_signups`",
        "reads_the_host.toml:11:7: error: report SQL may not use `read_text` (reads files on the bot's host)",
    ] {
        assert!(
            rendered.contains(needle),
            "missing {needle:?} in:\n{rendered}"
        );
    }
    insta::assert_snapshot!("policy_problems", rendered);
}

#[test]
fn a_spec_that_is_not_utf8_is_that_files_error_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::repo_path("reports/daily_active_users.toml"),
        dir.path().join("daily_active_users.toml"),
    )
    .unwrap();
    // `title = "日次"` saved as Shift-JIS, as Windows editors here often do.
    let mut shift_jis = b"owner = \"#data-team\"\ntitle = \"".to_vec();
    shift_jis.extend([0x93, 0xfa, 0x8e, 0x9f]);
    shift_jis.extend(b"\"\n");
    std::fs::write(dir.path().join("sjis.toml"), &shift_jis).unwrap();
    let files = spec::load_dir(dir.path(), &defaults()).unwrap();
    let good = files
        .iter()
        .find(|f| f.path.ends_with("daily_active_users.toml"))
        .unwrap();
    assert!(good.is_valid(), "{}", good.render_diagnostics());
    let bad = files
        .iter()
        .find(|f| f.path.ends_with("sjis.toml"))
        .unwrap();
    let rendered = bad.render_diagnostics();
    assert!(
        rendered.contains(
            "sjis.toml:2:10: error: this file is not UTF-8: byte 30 (0x93 0xfa 0x8e 0x9f)"
        ),
        "{rendered}"
    );
    assert!(rendered.contains("SHIFT_JIS"), "{rendered}");
}

fixture_test!(
    alert_problems,
    13,
    [
        "alert_problems.toml:4:8: error: `signups drop` cannot be an alert name",
        "an alert has one condition; `above` and `below` are both set",
        "did you mean `against`?",
        "`change` needs one of `percent` or `units`, not zero",
        "unknown timezone `JST`",
        "`band` needs `min_weeks` ≤ `weeks`",
        "missing required key `alert[2].channel`",
        "did you mean `remind_every`?",
        "`someday` is not a weekday",
        "`9-9` is not an hour range",
        "`recover = 80` is past the firing threshold",
        "`ignore` is not a valid `alert[3].on_no_data`",
        "`min_value = -5` is below 0",
        "`min_change` only goes with `change`",
        "`min_value` only goes with `above`, `change` or `band`"
    ]
);
