//! `kpibot run <report>`: the real binary renders a report and posts it to the fake Slack
//! (with a token) or writes it to the output folder (without one).

mod common;

use std::path::Path;

use common::fake_slack::{FakeSlack, TOKEN};

fn kpibot(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (bool, String, String) {
    let reports = common::repo_path("reports");
    let mut all = vec![("KPIBOT__REPORTS__DIR", reports.to_str().unwrap())];
    all.extend_from_slice(env);
    common::run_kpibot(args, dir, &all)
}

#[test]
fn run_posts_to_slack_with_a_token_and_writes_files_without_one() {
    let slack = FakeSlack::start_in_background(&[
        ("C0KPIDAILY", "kpi-daily", true),
        ("C0OUTSIDE1", "not-invited", false),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
    ];

    let (ok, stdout, stderr) = kpibot(&["run", "daily_active_users"], dir.path(), &env);
    assert!(ok, "{stdout}{stderr}");
    let messages = slack.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].channel, "C0KPIDAILY",
        "the schedule's #kpi-daily"
    );
    assert!(
        stdout.contains(&format!(
            "https://fake.slack.test/archives/C0KPIDAILY/p{}",
            messages[0].ts.replace('.', "")
        )),
        "{stdout}"
    );
    assert_eq!(
        messages[0].body["blocks"][0]["text"]["text"],
        "日次アクティブユーザー (DAU)"
    );

    let (ok, stdout, stderr) = kpibot(
        &["run", "daily_active_users", "--channel", "#not-invited"],
        dir.path(),
        &env,
    );
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("not_in_channel") && stderr.contains("/invite @kpibot"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(slack.messages().len(), 1, "nothing posted to #not-invited");

    let (ok, stdout, stderr) = kpibot(&["run", "daily_active_users"], dir.path(), &[]);
    assert!(ok, "{stdout}{stderr}");
    assert!(dir.path().join("out/daily_active_users.png").exists());
    assert_eq!(slack.messages().len(), 1, "no token: nothing posted");
}
