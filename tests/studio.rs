//! `kpibot studio` through the real binary over real HTTP on 127.0.0.1, with the example
//! reports on the embedded demo mart: the catalog lists every report, metric, policy and
//! alert in English and Japanese; each example report's page shows its chart (a PNG at the
//! address the page names, with alt text), its Slack message and its data; saving a file
//! sends a change to open pages and the page shows the edit; a broken edit shows its
//! problem at its line and keeps the last good preview; it will not listen beyond this
//! machine without a token, and with one refuses requests that lack it.

mod common;

use common::studio::{command, start};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a page may take on an unoptimised build (a preview runs the query and draws).
const PAGE_TIMEOUT_SECONDS: u64 = 120;

/// A GET: (status, headers, body bytes).
fn get(port: u16, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(PAGE_TIMEOUT_SECONDS)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, response[split + 4..].to_vec())
}

fn page(port: u16, path: &str) -> String {
    let (status, _, body) = get(port, path, "");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    String::from_utf8(body).unwrap()
}

fn dir_with_examples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_reports(dir.path());
    dir
}

#[test]
fn the_catalog_and_every_example_reports_preview_are_served_in_both_languages() {
    let dir = dir_with_examples();
    let studio = start(dir.path(), &[]);
    let settings = common::settings_in(dir.path(), &dir.path().join("reports"));
    let catalog = common::app(&settings).load_catalog().unwrap();
    let english = page(studio.port, "/?lang=en");
    let japanese = page(studio.port, "/?lang=ja");
    assert!(english.contains("<html lang=\"en\">") && english.contains("Reports"));
    assert!(japanese.contains("<html lang=\"ja\">") && japanese.contains("レポート"));
    for report in catalog.reports() {
        assert!(
            english.contains(&format!("href=\"/report/{}?lang=en\"", report.id)),
            "{} is not listed",
            report.id
        );
    }
    for metric in catalog.metrics() {
        assert!(english.contains(&format!("/entry/metric/{}?", metric.name)));
        let (status, _, _) = get(studio.port, &format!("/entry/metric/{}", metric.name), "");
        assert_eq!(status, 200, "{}", metric.name);
    }
    for policy in catalog.policies() {
        assert!(english.contains(&format!("/entry/policy/{}?", policy.name)));
    }
    for alert in catalog.alerts() {
        assert!(english.contains(&format!("/entry/alert/{}?", alert.name)));
    }
    // Search narrows the catalog.
    let found = page(studio.port, "/?lang=en&q=sign");
    assert!(
        found.contains("/report/signups_by_channel?")
            && !found.contains("/report/web_sessions_by_device?")
    );

    for report in catalog.reports() {
        for lang in ["en", "ja"] {
            let html = page(studio.port, &format!("/report/{}?lang={lang}", report.id));
            assert!(
                html.contains("class=\"slack_message\""),
                "{}: {html}",
                report.id
            );
            assert!(html.contains(&report.title) || html.contains("class=\"block header\""));
            let src = html
                .split(&format!("src=\"/report/{}/chart.png", report.id))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{}: no chart in {html}", report.id));
            let alt = html
                .split("class=\"chart\"")
                .nth(1)
                .and_then(|rest| rest.split("alt=\"").nth(1))
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            assert!(
                !alt.trim().is_empty(),
                "{}: the chart has no alt text",
                report.id
            );
            let (status, head, png) = get(
                studio.port,
                &format!(
                    "/report/{}/chart.png{}",
                    report.id,
                    src.replace("&amp;", "&")
                ),
                "",
            );
            assert_eq!(status, 200, "{}", report.id);
            assert!(
                head.contains("image/png") && png.starts_with(b"\x89PNG"),
                "{}",
                report.id
            );
            assert!(html.contains("<table class=\"data\">"), "{}", report.id);
        }
    }
    let japanese = page(studio.port, "/report/daily_active_users?lang=ja");
    for english_word in ["The Slack message", "The chart", "Problems", "Period"] {
        assert!(
            !japanese.contains(english_word),
            "{english_word} in Japanese: {japanese}"
        );
    }
}

/// Reads an open event stream until `event: change` arrives.
fn wait_for_change(stream: &mut TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(PAGE_TIMEOUT_SECONDS);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => panic!(
                "the event stream closed: {}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => {
                seen.extend_from_slice(&buffer[..n]);
                if String::from_utf8_lossy(&seen).contains("event: change") {
                    return;
                }
            }
            Err(error)
                if error.kind() == std::io::ErrorKind::WouldBlock
                    || error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(error) => panic!("{error}"),
        }
    }
    panic!("no change event: {}", String::from_utf8_lossy(&seen));
}

fn open_events(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    stream
}

#[test]
fn a_saved_edit_reaches_the_open_page_and_a_broken_one_shows_its_line_beside_the_last_good_preview()
{
    let dir = dir_with_examples();
    let studio = start(dir.path(), &[]);
    let path = dir.path().join("reports/daily_active_users.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let before = page(studio.port, "/report/daily_active_users?lang=en");
    assert!(before.contains("No problems."));

    let mut events = open_events(studio.port);
    let retitled = original.replacen("title = \"", "title = \"Edited: ", 1);
    assert_ne!(retitled, original, "the example has a title");
    std::fs::write(&path, &retitled).unwrap();
    wait_for_change(&mut events);
    let after = page(studio.port, "/report/daily_active_users?lang=en");
    assert!(after.contains("Edited: "), "{after}");

    // A misspelt key: its line and column, and the last good preview beside it.
    let broken = retitled.replacen("title = ", "titel = ", 1);
    let line = broken.lines().position(|l| l.starts_with("titel")).unwrap() + 1;
    std::fs::write(&path, &broken).unwrap();
    wait_for_change(&mut events);
    let shown = page(studio.port, "/report/daily_active_users?lang=en");
    assert!(
        shown.contains(&format!("reports/daily_active_users.toml:{line}:1")),
        "{shown}"
    );
    assert!(shown.contains("titel"), "{shown}");
    assert!(
        shown.contains("The last good preview") && shown.contains("class=\"slack_message\""),
        "{shown}"
    );
    // The catalog names the broken file, and its page shows the problem.
    let index = page(studio.port, "/?lang=en");
    let file = page(studio.port, "/file/daily_active_users.toml?lang=ja");
    assert!(
        file.contains(&format!("daily_active_users.toml:{line}:1")),
        "{file}"
    );
    assert!(
        index.contains("href=\"/file/daily_active_users.toml?"),
        "{index}"
    );
}

#[test]
fn beyond_this_machine_it_needs_a_token_and_then_every_request_must_carry_it() {
    let dir = dir_with_examples();
    let output = command(dir.path(), "0.0.0.0:0", &[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("studio.token"), "{stderr}");

    let studio = start(dir.path(), &[("KPIBOT__STUDIO__TOKEN", "s3cret-token")]);
    let (status, _, _) = get(studio.port, "/", "");
    assert_eq!(status, 401);
    let (status, head, _) = get(studio.port, "/?token=s3cret-token", "");
    assert_eq!(status, 200);
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("the token is kept in a cookie")
        .to_string();
    let (status, _, _) = get(
        studio.port,
        "/entry/metric/active_users",
        &format!("Cookie: {cookie}\r\n"),
    );
    assert_eq!(status, 200);
    let (status, _, _) = get(
        studio.port,
        "/entry/metric/active_users",
        "Cookie: kpibot_studio_token=wrong\r\n",
    );
    assert_eq!(status, 401);
}

/// Every word the studio writes in English, from the catalog (those Japanese writes the
/// same way, and those with variables, left out).
fn english_studio_words() -> Vec<String> {
    let words = |catalog: &'static str| -> std::collections::BTreeMap<&'static str, &'static str> {
        catalog
            .lines()
            .filter_map(|line| line.strip_prefix("studio-"))
            .filter_map(|line| line.split_once(" = "))
            .collect()
    };
    let ja = words(kpibot::i18n::JA_CATALOG);
    words(kpibot::i18n::EN_CATALOG)
        .into_iter()
        .filter(|(key, text)| !text.contains('{') && ja.get(key) != Some(text))
        .map(|(_, text)| text.to_string())
        .collect()
}

#[test]
fn in_a_real_browser_every_page_loads_clean_and_a_saved_edit_shows_in_the_open_page() {
    use common::chromium::Browser;
    if !common::chromium::available("the studio in a real browser") {
        return;
    }
    let dir = dir_with_examples();
    let studio = start(dir.path(), &[]);
    let settings = common::settings_in(dir.path(), &dir.path().join("reports"));
    let catalog = common::app(&settings).load_catalog().unwrap();
    let base = format!("http://127.0.0.1:{}", studio.port);
    let mut paths = vec!["/?lang=en".to_string(), "/?lang=ja".to_string()];
    for report in catalog.reports() {
        paths.push(format!("/report/{}?lang=en", report.id));
    }
    for metric in catalog.metrics() {
        paths.push(format!("/entry/metric/{}?lang=ja", metric.name));
    }
    for policy in catalog.policies() {
        paths.push(format!("/entry/policy/{}?lang=en", policy.name));
    }
    for alert in catalog.alerts() {
        paths.push(format!("/entry/alert/{}?lang=ja", alert.name));
    }
    let path = dir.path().join("reports/daily_active_users.toml");
    let axe = common::chromium::axe_script();
    common::bot::block_on(async {
        let mut browser = Browser::start().await;
        if let Some(axe) = &axe {
            // The checker sees what it must: an image without words, grey on white.
            browser
                .open("data:text/html,<html lang=en><title>t</title><main><img src=data:, width=9 height=9><p style='color:%23ccc'>faint</p></main></html>")
                .await;
            let violations = browser.accessibility_violations(axe).await.join("\n");
            assert!(
                violations.contains("image-alt") && violations.contains("color-contrast"),
                "{violations}"
            );
        }
        for page in &paths {
            let started = Instant::now();
            browser.open(&format!("{base}{page}")).await;
            eprintln!("{page}: {} ms", started.elapsed().as_millis());
            let errors = browser.take_errors();
            assert!(errors.is_empty(), "{page}: {errors:#?}");
            // Accessible: axe-core, in the same browser, finds nothing serious.
            if let Some(axe) = &axe {
                let violations = browser.accessibility_violations(axe).await;
                assert!(violations.is_empty(), "{page}: {violations:#?}");
            }
        }
        // Keyboard only: Tab reaches everything one can act on and shows where it is (a catalog, a report with its forms, an alert with its range).
        for page in [
            "/?lang=ja".to_string(),
            "/report/daily_active_users?lang=en".to_string(),
            "/entry/alert/active_users_prefecture_drop?lang=ja".to_string(),
        ] {
            browser.open(&format!("{base}{page}")).await;
            let (actionable, landed) = browser.tab_walk().await;
            let distinct: std::collections::BTreeSet<_> = landed.iter().map(|l| &l.0).collect();
            assert!(
                actionable > 3 && distinct.len() == actionable,
                "{page}: {actionable} to act on, Tab landed on {landed:#?}"
            );
            let unmarked: Vec<_> = landed.iter().filter(|l| !l.1).collect();
            assert!(
                unmarked.is_empty(),
                "{page}: focus not shown on {unmarked:#?}"
            );
        }
        // Every image drawn, each with words for those who cannot see it.
        let report = format!("{base}/report/daily_active_users?lang=en");
        browser.open(&report).await;
        let images = browser
            .eval("Array.from(document.images).map(i => [i.complete && i.naturalWidth > 0, i.alt.trim().length > 0])")
            .await;
        assert!(
            !images.as_array().unwrap().is_empty()
                && images
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| i == &serde_json::json!([true, true])),
            "{images}"
        );

        // Saved in any editor: the open page shows it, observed in the page.
        let original = std::fs::read_to_string(&path).unwrap();
        let retitled = original.replacen("title = \"", "title = \"Edited: ", 1);
        std::fs::write(&path, &retitled).unwrap();
        browser
            .wait_until(
                "the edited title in the open page",
                "document.querySelector('h1').textContent.startsWith('Edited: ')",
                Duration::from_secs(PAGE_TIMEOUT_SECONDS),
            )
            .await;
        let broken = retitled.replacen("title = ", "titel = ", 1);
        let line = broken.lines().position(|l| l.starts_with("titel")).unwrap() + 1;
        std::fs::write(&path, &broken).unwrap();
        let at = format!("daily_active_users.toml:{line}:1");
        browser
            .wait_until(
                "the problem at its line in the open page",
                &format!("Array.from(document.querySelectorAll('.diagnostic code')).some(c => c.textContent.endsWith('{at}'))"),
                Duration::from_secs(PAGE_TIMEOUT_SECONDS),
            )
            .await;
        let errors = browser.take_errors();
        assert!(errors.is_empty(), "{errors:#?}");

        // In Japanese, none of the studio's English words is left.
        browser
            .open(&format!("{base}/report/signups_by_channel?lang=ja"))
            .await;
        // Japanese is drawn with the bundled font, loaded from the studio itself, in
        // every element that shows text, the form's buttons and fields included (they do
        // not inherit the page's font unless told to, and drew empty boxes).
        let fonts = browser
            .eval("document.fonts.ready.then(() => [document.fonts.check('16px \"BIZ UDPGothic\"', '日本語'), Array.from(document.querySelectorAll('button, input, select, h1, h2, p, a, li, th, td')).filter(e => !getComputedStyle(e).fontFamily.startsWith('\"BIZ UDPGothic\"')).map(e => e.outerHTML.slice(0, 80))])")
            .await;
        assert_eq!(fonts, serde_json::json!([true, []]), "{fonts}");
        // The studio's own words: not the report's message, data, SQL or definitions.
        let text = browser
            .eval("(() => { const b = document.body.cloneNode(true); b.querySelectorAll('.slack_message, table.data, pre, code, dd, script').forEach(e => e.remove()); return b.innerText; })()")
            .await;
        let text = text.as_str().unwrap();
        for word in english_studio_words() {
            assert!(
                !text.contains(&word),
                "`{word}` in the Japanese page:\n{text}"
            );
        }
    });
}

/// The rows of the page's table with class `class`, each a list of its cells' text.
fn table_rows(html: &str, class: &str) -> Vec<Vec<String>> {
    let Some(start) = html.find(&format!("<table class=\"{class}\"")) else {
        return Vec::new();
    };
    let table = &html[start..];
    let table = &table[..table.find("</table>").unwrap()];
    let cell = regex::Regex::new(r"<td>(.*?)</td>").unwrap();
    table
        .split("<tr")
        .skip(2)
        .map(|row| cell.captures_iter(row).map(|c| c[1].to_string()).collect())
        .collect()
}

#[test]
fn an_alerts_page_replays_it_over_the_chosen_days_as_the_backtest_does() {
    use kpibot::alerts::backtest::backtest;
    use kpibot::alerts::engine::Kind;
    let dir = dir_with_examples();
    let studio = start(dir.path(), &[]);
    let settings = common::settings_in(dir.path(), &dir.path().join("reports"));
    let app = common::app(&settings);
    let catalog = app.load_catalog().unwrap();
    let alert = catalog.alert("active_users_prefecture_drop").unwrap();
    let to = chrono::Utc::now().date_naive() - chrono::Days::new(2);
    let chart = regex::Regex::new(
        r#"<img class="chart" src="data:image/png;base64,([^"]+)" alt="([^"]+)""#,
    )
    .unwrap();
    for days in [60, 20] {
        let from = to - chrono::Days::new(days);
        let html = page(
            studio.port,
            &format!("/entry/alert/{}?lang=en&from={from}&to={to}", alert.name),
        );
        // What `kpibot alerts backtest` computes for the same days, on the same mart.
        let expected = common::bot::block_on(async {
            // The mart the studio built, as it is (not rebuilt should the day turn).
            let warehouse = app.local_planner().expect("the studio's demo mart");
            let sources = kpibot::alerts::watch::Sources {
                warehouse: &warehouse,
                catalog: &catalog,
                timeout: app.query_timeout,
                limits: app.limits,
            };
            backtest(sources, alert, from, to, 50).await.unwrap()
        });
        let shown: Vec<(String, String, String)> = table_rows(&html, "data transitions")
            .into_iter()
            .map(|r| (r[1].clone(), r[2].clone(), r[3].clone()))
            .collect();
        let computed: Vec<(String, String, String)> = expected
            .transitions
            .iter()
            .map(|t| {
                let change = if t.kind == Kind::Fired {
                    "Fired"
                } else {
                    "Resolved"
                };
                (t.day.to_string(), t.instance.clone(), change.to_string())
            })
            .collect();
        assert_eq!(shown, computed, "{days} days");
        assert!(
            html.contains(&format!("value=\"{from}\""))
                && html.contains(&format!("value=\"{to}\"")),
            "the form keeps the days asked"
        );
        let found = chart.captures(&html).expect("the backtest's chart");
        let png =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &found[1]).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        assert!(
            found[2].contains(&from.to_string()),
            "alt text names the days: {}",
            &found[2]
        );
    }
    assert!(
        table_rows(
            &page(
                studio.port,
                &format!(
                    "/entry/alert/{}?lang=en&from={}&to={to}",
                    alert.name,
                    to - chrono::Days::new(60)
                )
            ),
            "data transitions"
        )
        .iter()
        .any(|r| r[3] == "Fired"),
        "the demo's prefecture drop fires within 60 days, so the comparison above compared something"
    );
    // Days that are not days, or too many of them, are refused in words, naming the word.
    let html = page(
        studio.port,
        "/entry/alert/signups_floor?lang=en&from=2026-13-01",
    );
    assert!(html.contains("`2026-13-01` is not a day"), "{html}");
    let html = page(
        studio.port,
        "/entry/alert/signups_floor?lang=ja&from=2020-01-01&to=2026-01-01",
    );
    assert!(html.contains("studio.backtest_days_max"), "{html}");
}

#[test]
fn report_and_alert_pages_show_their_recent_runs_with_links_to_their_posts_and_never_write_the_ledger()
 {
    use chrono::TimeZone;
    use kpibot::ledger::alerts::NoticeKey;
    use kpibot::ledger::{Lease, Ledger, Outcome, SlotKey};
    let dir = dir_with_examples();
    let path = dir.path().join("ledger.sqlite");
    let slot = |hour| SlotKey {
        report: "daily_active_users".into(),
        schedule: 0,
        slot: chrono::Utc
            .with_ymd_and_hms(2026, 12, 1, hour, 0, 0)
            .unwrap(),
    };
    let now = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 5).unwrap();
    common::bot::block_on(async {
        let ledger = Ledger::open(&path).unwrap();
        let lease = Lease {
            owner: "bot".into(),
            until: now + chrono::Duration::seconds(30),
        };
        for (hour, outcome) in [
            (
                0,
                Outcome::Delivered {
                    channel: "C0KPIDAILY".into(),
                    ts: "1764547200.000100".into(),
                    rows: 31,
                    bytes: None,
                },
            ),
            (
                1,
                Outcome::Delivered {
                    channel: "C0KPIDAILY".into(),
                    ts: "1764550800.000200".into(),
                    rows: 32,
                    bytes: None,
                },
            ),
            (
                2,
                Outcome::Failed {
                    error: "channel_not_found".into(),
                },
            ),
            (
                3,
                Outcome::Delivered {
                    channel: "folder".into(),
                    ts: "/srv/kpi/out/daily_active_users.png".into(),
                    rows: 33,
                    bytes: None,
                },
            ),
        ] {
            ledger.claim(&slot(hour), &lease, now).await.unwrap();
            ledger.mark_running(&slot(hour), now).await.unwrap();
            ledger.finish(&slot(hour), &outcome, now).await.unwrap();
        }
        ledger
            .set_permalink(
                &slot(0),
                "https://acme.slack.com/archives/C0KPIDAILY/p1764547200000100?kept=1",
            )
            .await
            .unwrap();
        // An alert's evaluation that posted one notice (and a second notice unposted).
        let evaluated = chrono::Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap();
        let alert = "active_users_prefecture_drop";
        assert!(
            ledger
                .insert_alert_round(alert, evaluated, None, "{}", 1, 2, None, "bot", now)
                .await
                .unwrap()
        );
        let notice = NoticeKey {
            alert: alert.into(),
            evaluated_at: evaluated,
            index: 0,
        };
        ledger
            .claim_notice(&notice, "fired", &lease, now)
            .await
            .unwrap();
        ledger
            .record_notice(
                &notice,
                "bot",
                Some(("C0ALERTS01", "1764633600.000300")),
                None,
                now,
            )
            .await
            .unwrap();
    });
    let before = std::fs::read(&path).unwrap();
    let studio = start(
        dir.path(),
        &[("KPIBOT__STUDIO__SLACK_URL", "https://acme.slack.com")],
    );
    let html = page(studio.port, "/report/daily_active_users?lang=en");
    let runs = table_rows(&html, "data runs");
    assert_eq!(runs.len(), 4, "{html}");
    // Newest first, in the schedule's timezone (Asia/Tokyo: UTC 03:00 is 12:00). A
    // delivery to the folder is no Slack post: where it went, and no link.
    assert!(
        runs[0][0].starts_with("2026-12-01 12:00")
            && runs[0][3] == "folder · /srv/kpi/out/daily_active_users.png",
        "{runs:?}"
    );
    assert!(runs[1][1].contains("channel_not_found"), "{runs:?}");
    assert!(
        runs[2][3]
            .contains("href=\"https://acme.slack.com/archives/C0KPIDAILY/p1764550800000200\""),
        "built from the workspace's address: {runs:?}"
    );
    assert!(
        runs[3][3].contains("?kept=1"),
        "the kept permalink: {runs:?}"
    );
    assert_eq!(runs[2][2], "32");
    let html = page(studio.port, "/report/daily_active_users?lang=ja");
    assert!(
        html.contains("最近の実行") && html.contains("投稿済み"),
        "{html}"
    );
    // An alert's page: its evaluations, with a link to the post each notice made.
    let html = page(
        studio.port,
        "/entry/alert/active_users_prefecture_drop?lang=en",
    );
    let rounds = table_rows(&html, "data rounds");
    assert_eq!(rounds.len(), 1, "{html}");
    assert!(
        rounds[0][0].starts_with("2026-12-02 09:00") && rounds[0][1] == "1",
        "{rounds:?}"
    );
    assert!(
        rounds[0][2]
            .contains("href=\"https://acme.slack.com/archives/C0ALERTS01/p1764633600000300\""),
        "{rounds:?}"
    );
    drop(studio);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the studio changed the ledger file"
    );
    assert!(
        !dir.path().join("ledger.sqlite-wal").exists()
            || std::fs::metadata(dir.path().join("ledger.sqlite-wal"))
                .unwrap()
                .len()
                == 0
    );
    // Without a ledger file, the page says so and none is created.
    let empty = dir_with_examples();
    let studio = start(empty.path(), &[]);
    let html = page(studio.port, "/report/daily_active_users?lang=en");
    assert!(
        html.contains("The ledger has no run of this report yet."),
        "{html}"
    );
    assert!(!empty.path().join("ledger.sqlite").exists());
}

#[test]
fn the_page_previews_on_the_configured_warehouse_or_the_embedded_demo_as_asked() {
    let dir = dir_with_examples();
    // A configured DuckDB mart that is not the demo: the demo's tables, with a role the
    // demo never has, so each preview shows which warehouse it ran on.
    let mart = dir.path().join("configured.duckdb");
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    kpibot::warehouse::demo::ensure_demo_mart(&mart, yesterday).unwrap();
    duckdb::Connection::open(&mart)
        .unwrap()
        .execute_batch("UPDATE mart.daily_active_users SET role = 'auditor'")
        .unwrap();
    let mart_text = mart.display().to_string();
    let studio = start(
        dir.path(),
        &[
            ("KPIBOT__WAREHOUSE__DUCKDB__DEMO_MART", "false"),
            ("KPIBOT__WAREHOUSE__DUCKDB__PATH", mart_text.as_str()),
        ],
    );
    let configured = page(studio.port, "/report/daily_active_users?lang=en");
    let asked = page(
        studio.port,
        "/report/daily_active_users?lang=en&warehouse=configured",
    );
    let demo = page(
        studio.port,
        "/report/daily_active_users?lang=en&warehouse=demo",
    );
    assert!(configured.contains("<td>auditor</td>") && asked.contains("<td>auditor</td>"));
    assert!(
        !demo.contains("auditor") && demo.contains("<td>student</td>"),
        "{demo}"
    );
    assert!(
        demo.contains("<option value=\"demo\" selected>")
            && demo.contains("<option value=\"configured\">"),
        "the switch shows the warehouse shown"
    );
    assert!(
        demo.contains("chart.png?lang=en&amp;warehouse=demo"),
        "the chart is the demo's too"
    );
    let (status, _, png) = get(
        studio.port,
        "/report/daily_active_users/chart.png?lang=en&warehouse=demo",
        "",
    );
    assert!(status == 200 && png.starts_with(b"\x89PNG"));
    // The demo mart was built beside it, not over the configured file.
    assert!(dir.path().join("data/demo.duckdb").exists());
    let unknown = page(
        studio.port,
        "/report/daily_active_users?lang=en&warehouse=prod",
    );
    assert!(
        unknown.contains("no warehouse `prod` here: choose configured or demo"),
        "{unknown}"
    );
}

/// Where the screenshots kept as goldens live (the README shows them).
const GOLDEN_SCREENSHOTS: &str = "docs/studio";
/// A pixel differs when a channel differs by more than this (anti-aliasing does less).
const PIXEL_CHANNEL_TOLERANCE: u8 = 48;
/// The share of pixels that may differ before a screenshot no longer matches its golden
/// (a heading's worth of missing or boxed glyphs is more).
const DIFFERING_PIXELS_MAX_PERCENT: f64 = 0.5;

/// A PNG's (width, height, RGBA pixels).
fn rgba(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buffer).unwrap();
    let pixels = &buffer[..frame.buffer_size()];
    let rgba = match frame.color_type {
        png::ColorType::Rgba => pixels.to_vec(),
        png::ColorType::Rgb => pixels
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("a screenshot in {other:?}"),
    };
    (frame.width, frame.height, rgba)
}

/// The share of pixels (percent) that differ between two screenshots of one size; None
/// when their sizes differ.
fn differing_percent(a: &[u8], b: &[u8]) -> Option<f64> {
    let ((aw, ah, a), (bw, bh, b)) = (rgba(a), rgba(b));
    if (aw, ah) != (bw, bh) {
        return None;
    }
    let differing = a
        .chunks(4)
        .zip(b.chunks(4))
        .filter(|(p, q)| {
            p.iter()
                .zip(q.iter())
                .any(|(x, y)| x.abs_diff(*y) > PIXEL_CHANNEL_TOLERANCE)
        })
        .count();
    Some(differing as f64 * 100.0 / f64::from(aw * ah))
}

#[test]
fn screenshots_of_the_catalog_and_a_preview_match_their_goldens_in_both_languages() {
    use common::chromium::Browser;
    if !common::chromium::available("the studio's screenshots") {
        return;
    }
    // Fixed data and a fixed period: a configured mart built through a day long past.
    let dir = dir_with_examples();
    let mart = dir.path().join("configured.duckdb");
    let through = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    kpibot::warehouse::demo::ensure_demo_mart(&mart, through).unwrap();
    let mart_text = mart.display().to_string();
    let studio = start(
        dir.path(),
        &[
            ("KPIBOT__WAREHOUSE__DUCKDB__DEMO_MART", "false"),
            ("KPIBOT__WAREHOUSE__DUCKDB__PATH", mart_text.as_str()),
        ],
    );
    let base = format!("http://127.0.0.1:{}", studio.port);
    let update = std::env::var("KPIBOT_UPDATE_GOLDENS").is_ok_and(|v| v == "1");
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN_SCREENSHOTS);
    let shots = [
        ("catalog-en", "/?lang=en"),
        ("catalog-ja", "/?lang=ja"),
        (
            "report-en",
            "/report/daily_active_users?lang=en&period=2026-11-01..2026-11-28",
        ),
        (
            "report-ja",
            "/report/daily_active_users?lang=ja&period=2026-11-01..2026-11-28",
        ),
    ];
    let mut mismatches = Vec::new();
    common::bot::block_on(async {
        let mut browser = Browser::start().await;
        for (name, path) in shots {
            browser.open(&format!("{base}{path}")).await;
            // What changes with the clock or the machine is hidden (next posts, the query's
            // time) or named plainly (a warehouse by its name, not its path); the rest is
            // the page as drawn.
            browser
                .eval("document.fonts.ready.then(() => { document.querySelectorAll('select.varies').forEach(s => { s.classList.remove('varies'); s.querySelectorAll('option').forEach(o => o.textContent = o.value); }); const s = document.createElement('style'); s.textContent = '.varies { visibility: hidden !important; }'; document.head.appendChild(s); return Array.from(document.images).every(i => i.complete); })")
                .await;
            let shot = browser.screenshot().await;
            let golden = folder.join(format!("{name}.png"));
            if update {
                std::fs::create_dir_all(&folder).unwrap();
                std::fs::write(&golden, &shot).unwrap();
                continue;
            }
            let kept = std::fs::read(&golden).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; KPIBOT_UPDATE_GOLDENS=1 writes it",
                    golden.display()
                )
            });
            let differing = differing_percent(&shot, &kept);
            if differing.is_none_or(|p| p > DIFFERING_PIXELS_MAX_PERCENT) {
                let actual = std::env::temp_dir().join(format!("kpibot-studio-{name}.png"));
                std::fs::write(&actual, &shot).unwrap();
                mismatches.push(format!(
                    "{name}: {} differ from {} (see {})",
                    differing.map_or("sizes".into(), |p| format!("{p:.2}% of pixels")),
                    golden.display(),
                    actual.display()
                ));
            }
        }
    });
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// Open studio tabs at once: more than the six connections a browser gives one host.
const OPEN_TABS: usize = 10;

#[test]
fn ten_open_tabs_all_load_and_each_shows_a_saved_edit() {
    use common::chromium::Browser;
    if !common::chromium::available("the studio's open tabs") {
        return;
    }
    let dir = dir_with_examples();
    let studio = start(dir.path(), &[]);
    let settings = common::settings_in(dir.path(), &dir.path().join("reports"));
    let ids: Vec<String> = common::app(&settings)
        .load_catalog()
        .unwrap()
        .reports()
        .map(|r| r.id.clone())
        .collect();
    let base = format!("http://127.0.0.1:{}", studio.port);
    let path = dir.path().join("reports/daily_active_users.toml");
    common::bot::block_on(async {
        let mut browser = Browser::start().await;
        browser
            .open(&format!("{base}/report/daily_active_users?lang=en"))
            .await;
        // Each tab that held its own event stream held a connection: the seventh tab's
        // page never loaded. They share one now, so every tab opens.
        for i in 1..OPEN_TABS {
            let page = match ids.get(i) {
                Some(id) => format!("{base}/report/{id}?lang=ja"),
                None => format!("{base}/?lang=en&q={i}"),
            };
            browser.open_in_new_tab(&page).await;
        }
        assert_eq!(browser.tab_count(), OPEN_TABS);
        let shown = browser.eval("document.body.dataset.version").await;
        let original = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            original.replacen("title = \"", "title = \"Edited: ", 1),
        )
        .unwrap();
        // Every tab hears of the save, and shows the folder as it is now.
        for tab in 0..OPEN_TABS {
            browser.switch_to(tab);
            browser
                .wait_until(
                    &format!("tab {tab} to show the saved folder"),
                    &format!(
                        "document.readyState === 'complete' && document.body.dataset.version !== {shown}"
                    ),
                    Duration::from_secs(PAGE_TIMEOUT_SECONDS),
                )
                .await;
        }
        browser.switch_to(0);
        browser
            .wait_until(
                "the edit in the first tab",
                "document.querySelector('h1').textContent.startsWith('Edited: ')",
                Duration::from_secs(PAGE_TIMEOUT_SECONDS),
            )
            .await;
    });
}

/// Words that would be markup if a page let them through.
const HOSTILE: [&str; 4] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "</textarea><b>bold</b>",
];

/// Whether a page carries any of HOSTILE's markup as markup.
fn carries_markup(html: &str) -> Option<&'static str> {
    ["<script>alert", "<img src=x", "<svg onload", "<b>bold"]
        .into_iter()
        .find(|m| html.contains(m))
}

#[test]
fn nothing_typed_into_the_address_or_written_in_a_file_becomes_markup_in_a_page() {
    let dir = dir_with_examples();
    // A report whose own words carry markup: shown as text in the catalog and its page.
    let path = dir.path().join("reports/daily_active_users.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let in_toml = HOSTILE[1].replace('"', "\\\"");
    let edited = original.replacen("title = \"", &format!("title = \"DAU {in_toml} "), 1);
    assert_ne!(edited, original);
    std::fs::write(&path, edited).unwrap();
    let studio = start(dir.path(), &[]);
    let mut shown = 0;
    for word in HOSTILE {
        let w: String = form_urlencoded::byte_serialize(word.as_bytes()).collect();
        for address in [
            format!("/?lang=en&q={w}"),
            format!("/report/daily_active_users?lang=ja&period={w}"),
            format!("/report/daily_active_users?lang=en&warehouse={w}"),
            format!("/report/daily_active_users?lang={w}"),
            format!("/entry/alert/active_users_prefecture_drop?lang=en&from={w}&to={w}"),
            format!("/entry/alert/active_users_prefecture_drop?lang=en&from=2026-11-01&to={w}"),
            format!("/entry/metric/{w}?lang=en"),
            format!("/entry/{w}/x?lang=en"),
            format!("/report/{w}?lang=ja"),
            format!("/file/{w}?lang=en"),
        ] {
            let (_, _, body) = get(studio.port, &address, "");
            let html = String::from_utf8_lossy(&body);
            assert_eq!(carries_markup(&html), None, "{address}:\n{html}");
            shown += usize::from(html.contains("&lt;") || html.contains("&quot;"));
        }
    }
    for address in ["/?lang=en", "/report/daily_active_users?lang=en"] {
        let html = page(studio.port, address);
        assert_eq!(carries_markup(&html), None, "{address}:\n{html}");
        assert!(
            html.contains("DAU &quot;&gt;&lt;img src=x"),
            "{address}: the title shown as text:\n{html}"
        );
    }
    assert!(
        shown > 10,
        "the hostile words are shown, escaped, on the pages that echo them"
    );
}

#[test]
fn on_bigquery_a_preview_shows_the_bytes_its_query_scanned_and_the_demo_is_offered_beside_it() {
    let dir = dir_with_examples();
    let bigquery = common::fake_bigquery::on_demo_mart(dir.path());
    bigquery.set_bytes_per_cell(64);
    let studio = start(dir.path(), &common::fake_bigquery::settings_for(&bigquery));
    let html = page(studio.port, "/report/daily_active_users?lang=en");
    assert!(
        !bigquery.calls_of("jobs.query").is_empty(),
        "the preview ran on BigQuery"
    );
    let scanned = regex::Regex::new(r"· ([0-9.]+ (?:KiB|MiB|GiB|TiB)) scanned")
        .unwrap()
        .captures(&html)
        .unwrap_or_else(|| panic!("no bytes scanned on the page:\n{html}"));
    assert_ne!(&scanned[1], "0.0 KiB");
    assert!(
        html.contains("<option value=\"configured\" selected>")
            && html.contains("<option value=\"demo\">"),
        "{html}"
    );
    let demo = page(
        studio.port,
        "/report/daily_active_users?lang=ja&warehouse=demo",
    );
    assert!(
        !demo.contains("scanned") && !demo.contains("スキャン"),
        "DuckDB reports no bytes"
    );
}
