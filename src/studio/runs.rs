//! A report's recent runs as the ledger recorded them, each with a link to its Slack post:
//! read through a ledger opened read-only, so the studio can never change it.

use chrono_tz::Tz;
use minijinja::context;
use serde::Serialize;

use super::frame::{Frame, render, serde_value};
use crate::ledger::{Ledger, RunRecord, RunState};
use crate::spec::ReportSpec;

const RUNS: &str = r##"<section aria-labelledby="runs"><h2 id="runs">{{ t.runs }}</h2>
{% if problem %}<p>{{ problem }}</p>{% elif not runs %}<p>{{ t.runs_none }}</p>{% else %}
<table class="data runs"><thead><tr><th scope="col">{{ t.slot }}</th><th scope="col">{{ t.state }}</th><th scope="col">{{ t.rows }}</th><th scope="col">{{ t.post }}</th></tr></thead><tbody>
{% for r in runs %}<tr><td>{{ r.slot }}</td><td>{{ r.state }}{% if r.error %}: {{ r.error }}{% endif %}</td><td>{{ r.rows }}</td><td>{% if r.link %}<a href="{{ r.link }}">{{ t.open_in_slack }}</a>{% else %}{{ r.place }}{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endif %}</section>"##;

#[derive(Serialize)]
struct RunShown {
    slot: String,
    state: String,
    error: String,
    rows: String,
    link: Option<String>,
    /// Where it went, when there is no link: channel and Slack's timestamp.
    place: String,
}

/// The words for a run's state in the page's language.
fn state_word(frame: &Frame, state: RunState) -> String {
    let key = match state {
        RunState::Claimed => "studio-state-claimed",
        RunState::Running => "studio-state-running",
        RunState::Delivered => "studio-state-delivered",
        RunState::Failed => "studio-state-failed",
        RunState::Skipped => "studio-state-skipped",
        RunState::NoData => "studio-state-no-data",
    };
    crate::tr!(frame.locale, key)
}

/// A post's address: the permalink the ledger kept, else one built from the workspace's
/// address (`https://acme.slack.com/archives/C0123/p1712345678000100`), else none.
pub fn post_link(run: &RunRecord, slack_url: Option<&str>) -> Option<String> {
    if let Some(permalink) = run.permalink.as_ref().filter(|p| p.starts_with("https://")) {
        return Some(permalink.clone());
    }
    let base = slack_url?.trim_end_matches('/');
    if !base.starts_with("https://") {
        return None;
    }
    let (channel, ts) = (run.channel.as_deref()?, run.ts.as_deref()?);
    let ts: String = ts.chars().filter(char::is_ascii_digit).collect();
    Some(format!("{base}/archives/{channel}/p{ts}"))
}

fn shown(frame: &Frame, spec: &ReportSpec, run: &RunRecord, slack_url: Option<&str>) -> RunShown {
    let timezone: Tz = spec
        .schedules
        .get(run.key.schedule as usize)
        .map(|s| s.timezone)
        .unwrap_or(chrono_tz::UTC);
    RunShown {
        slot: format!(
            "{} ({})",
            run.key
                .slot
                .with_timezone(&timezone)
                .format("%Y-%m-%d %H:%M"),
            timezone.name()
        ),
        state: state_word(frame, run.state),
        error: run.error.clone().unwrap_or_default(),
        rows: run.rows.map(|r| r.to_string()).unwrap_or_default(),
        link: post_link(run, slack_url),
        place: match (&run.channel, &run.ts) {
            (Some(channel), Some(ts)) => format!("{channel} · {ts}"),
            _ => String::new(),
        },
    }
}

/// The section: the newest `limit` runs of `spec`, or why there are none.
pub async fn section(
    frame: &Frame,
    ledger: &Result<Option<Ledger>, String>,
    spec: &ReportSpec,
    limit: usize,
    slack_url: Option<&str>,
) -> String {
    let (runs, problem) = match ledger {
        Err(why) => (
            Vec::new(),
            Some(crate::tr!(
                frame.locale,
                "studio-runs-no-ledger",
                why = why.clone()
            )),
        ),
        Ok(None) => (Vec::new(), None),
        Ok(Some(ledger)) => match ledger.history(Some(&spec.id), limit).await {
            Ok(runs) => (
                runs.iter()
                    .map(|run| shown(frame, spec, run, slack_url))
                    .collect(),
                None,
            ),
            Err(error) => (
                Vec::new(),
                Some(crate::tr!(
                    frame.locale,
                    "studio-runs-no-ledger",
                    why = error.to_string()
                )),
            ),
        },
    };
    render(
        RUNS,
        context! { t => frame.words(), runs => serde_value(&runs), problem => problem },
    )
}
