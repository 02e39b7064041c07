//! What answers cost, through `kpibot serve` on the fake BigQuery: each answer's bytes in
//! the audit log, the ledger and `/metrics`, and a person over their daily budget refused
//! after the dry run, before any job is billed — in their own language.

mod common;

use std::time::Duration;

use common::bot::*;
use common::fake_bigquery::FakeBigQuery;
use common::fake_slack::{FakeSlack, TOKEN};
use kpibot::i18n::Locale;
use kpibot::ledger::Ledger;
use kpibot::settings::LedgerSettings;

const SECRET: &str = "budget-signing-secret";
const SALES: &str = "C0SALES001";
const GIB: u64 = 1 << 30;
/// The daily budget per person in this test.
const BUDGET_BYTES: u64 = 100 * GIB;

fn ask(bot: &Bot, slack: &FakeSlack, user: &str, text: &str, reply_id: &str) {
    let body = command_form(text, user, (SALES, "sales"), &slack.response_url(reply_id));
    let response = post_signed_command(bot.port(), SECRET, &body).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Jobs BigQuery ran for real (billed), not dry runs.
fn billed_jobs(bigquery: &FakeBigQuery) -> usize {
    bigquery
        .calls_of("jobs.query")
        .iter()
        .filter(|c| c.body["dryRun"] != true)
        .count()
}

fn audit_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn each_answer_says_what_it_scanned_and_a_person_over_budget_is_refused_before_any_job_runs() {
    let slack = FakeSlack::start_in_background(&[(SALES, "sales", true)]);
    slack.set_user_locale("U0KENJI", "ja-JP");
    let dir = setup(&[]);
    std::fs::copy(
        common::repo_path("reports/metrics.toml"),
        dir.path().join("reports/metrics.toml"),
    )
    .unwrap();
    let today = kpibot::pipeline::today_in(chrono_tz::Asia::Tokyo, chrono::Utc::now());
    let bigquery = common::fake_bigquery::on_demo_mart(dir.path());
    bigquery.set_bytes_per_cell(4096);
    // Alice and Kenji have nearly used up today's budget; Bob has used none of his.
    let ledger_path = dir.path().join("ledger.sqlite");
    block_on(async {
        let ledger = Ledger::from_settings(&LedgerSettings {
            path: ledger_path.clone(),
            ..LedgerSettings::default()
        })
        .await
        .unwrap();
        for user in ["U0ALICE", "U0KENJI"] {
            ledger
                .add_spend(&format!("answer:{user}"), today, BUDGET_BYTES - 1)
                .await
                .unwrap();
        }
    });
    let audit = dir.path().join("audit.jsonl");
    let budget = BUDGET_BYTES.to_string();
    let mut env = common::fake_bigquery::settings_for(&bigquery).to_vec();
    env.extend([
        ("KPIBOT__SLACK__BOT_TOKEN", TOKEN),
        ("KPIBOT__SLACK__API_URL", slack.api_url.as_str()),
        ("KPIBOT__SLACK__SIGNING_SECRET", SECRET),
        ("KPIBOT__SLASH__AUDIT_LOG", audit.to_str().unwrap()),
        ("KPIBOT__COST__PERSON_BYTES_PER_DAY", budget.as_str()),
    ]);
    let bot = Bot::new(dir.path(), &env);
    let child = bot.start("serve.log");

    // Bob is answered, and the answer's bytes are known everywhere they are counted.
    ask(
        &bot,
        &slack,
        "U0BOB",
        "signups last 7 days by channel",
        "bob",
    );
    wait_for("Bob's chart in #sales", Duration::from_secs(30), || {
        !slack.messages_in(SALES).is_empty()
    });
    wait_for("Bob's audit line", Duration::from_secs(10), || {
        !audit_lines(&audit).is_empty()
    });
    let line = &audit_lines(&audit)[0];
    assert_eq!(line["outcome"], "answered", "{line}");
    let bob_bytes = line["bytes"]
        .as_u64()
        .expect("the audit line has the bytes");
    let billed: u64 = bigquery
        .calls_of("jobs.query")
        .iter()
        .filter(|c| c.body["dryRun"] != true && c.body["labels"]["kpibot_trigger"] == "slash")
        .count() as u64;
    assert!(bob_bytes > 0 && billed >= 1, "{line}");
    let bob_spent = block_on(async {
        let ledger = Ledger::from_settings(&LedgerSettings {
            path: ledger_path.clone(),
            ..LedgerSettings::default()
        })
        .await
        .unwrap();
        ledger.spent("answer:U0BOB", today).await.unwrap()
    });
    assert_eq!(
        bob_spent, bob_bytes,
        "the ledger's day total is the audit's bytes"
    );
    let (_, metrics) = bot.get("/metrics").unwrap();
    assert!(
        metrics.contains(&format!(
            "kpibot_warehouse_bytes_total{{kind=\"answer\",report=\"signups\"}} {bob_bytes}"
        )),
        "{metrics}"
    );

    // Alice would pass her budget: refused after the dry run, no job billed, in English.
    // (Another window than Bob's: his answer, from the cache, would cost nothing.)
    let jobs_before = billed_jobs(&bigquery);
    ask(
        &bot,
        &slack,
        "U0ALICE",
        "signups last 14 days by channel",
        "alice",
    );
    wait_for("Alice's refusal", Duration::from_secs(30), || {
        !slack.responses("alice").is_empty()
    });
    let tomorrow = today + chrono::Days::new(1);
    let refusal = slack.responses("alice")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        refusal.contains(
            "you have already used 100.0 GiB of your 100.0 GiB a day (`cost.person_bytes_per_day`)"
        ),
        "{refusal}"
    );
    assert!(
        refusal.contains(&format!(
            "Your budget resets at {} 00:00 (UTC+09:00)",
            kpibot::i18n::date(Locale::En, tomorrow)
        )),
        "{refusal}"
    );
    // Kenji reads it in Japanese.
    ask(&bot, &slack, "U0KENJI", "signups last 28 days", "kenji");
    wait_for("Kenji's refusal", Duration::from_secs(30), || {
        !slack.responses("kenji").is_empty()
    });
    let refusal = slack.responses("kenji")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        refusal.contains("1 日の予算 100.0 GiB（`cost.person_bytes_per_day`）のうち 100.0 GiB をすでに使っています"),
        "{refusal}"
    );
    assert!(
        refusal.contains(&format!(
            "予算は {} 00:00 (UTC+09:00) にリセットされます",
            kpibot::i18n::date(Locale::Ja, tomorrow)
        )),
        "{refusal}"
    );
    assert_eq!(
        billed_jobs(&bigquery),
        jobs_before,
        "no job ran for a question over budget"
    );
    assert_eq!(
        slack.messages_in(SALES).len(),
        1,
        "only Bob's chart was posted"
    );
    wait_for("three audit lines", Duration::from_secs(10), || {
        audit_lines(&audit).len() == 3
    });
    let outcomes: Vec<_> = audit_lines(&audit)
        .iter()
        .map(|l| l["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["answered", "over_budget", "over_budget"]);
    let (_, metrics) = bot.get("/metrics").unwrap();
    assert!(
        metrics.contains("kpibot_budget_refusals_total{kind=\"answer\"} 2"),
        "{metrics}"
    );
    assert!(terminate(child).success());
}

#[test]
fn a_report_over_its_daily_budget_is_not_run_and_its_owner_is_told_why_and_until_when() {
    let dir = setup(&[(
        "fast.toml",
        report_toml("Fast", EVERY_TWO_SECONDS, "#kpi-fast"),
    )]);
    let bigquery = common::fake_bigquery::on_demo_mart(dir.path());
    // Less than one run scans: the first run is refused before its query.
    let mut env = common::fake_bigquery::settings_for(&bigquery).to_vec();
    env.push(("KPIBOT__COST__REPORT_BYTES_PER_DAY", "1024"));
    let bot = Bot::new(dir.path(), &env);
    let child = bot.start("serve.log");
    let notices = dir.path().join("out/notices.log");
    wait_for("the owner to be told", Duration::from_secs(20), || {
        std::fs::read_to_string(&notices).is_ok_and(|n| n.contains("cost.report_bytes_per_day"))
    });
    assert!(terminate(child).success());
    let notice = std::fs::read_to_string(&notices).unwrap();
    assert!(notice.starts_with("to #data-team:"), "{notice}");
    // One run is more than the whole budget: waiting for midnight would not help.
    assert!(
        notice.contains("more than the report's 1.0 KiB a day (`cost.report_bytes_per_day`): narrow its query, or raise the budget"),
        "{notice}"
    );
    assert!(
        !dir.path().join("out/fast.png").exists(),
        "the run went ahead"
    );
    assert_eq!(billed_jobs(&bigquery), 0, "no job ran: only dry runs");
}
