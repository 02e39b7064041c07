//! A report's recent runs and an alert's recent evaluations as the ledger recorded them,
//! each with links to its Slack posts: read through a ledger opened read-only, so the
//! studio can never change it.

use chrono_tz::Tz;
use minijinja::context;
use serde::Serialize;

use super::frame::{Frame, local_time, render, serde_value};
use crate::ledger::alerts::{NoticeKey, StoredRound};
use crate::ledger::{Ledger, LedgerError, RunRecord};
use crate::spec::{AlertSpec, ReportSpec};

const RUNS: &str = r##"<section aria-labelledby="runs"><h2 id="runs">{{ t.runs }}</h2>
{% if problem %}<p>{{ problem }}</p>{% elif not runs %}<p>{{ t.runs_none }}</p>{% else %}
<table class="data runs"><thead><tr><th scope="col">{{ t.slot }}</th><th scope="col">{{ t.state }}</th><th scope="col">{{ t.rows }}</th><th scope="col">{{ t.post }}</th></tr></thead><tbody>
{% for r in runs %}<tr><td>{{ r.slot }}</td><td>{{ r.state }}{% if r.error %}: {{ r.error }}{% endif %}</td><td>{{ r.rows }}</td><td>{% if r.link %}<a href="{{ r.link }}">{{ t.open_in_slack }}</a>{% else %}{{ r.place }}{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endif %}</section>"##;

const ROUNDS: &str = r##"<section aria-labelledby="rounds"><h2 id="rounds">{{ t.rounds }}</h2>
{% if problem %}<p>{{ problem }}</p>{% elif not rounds %}<p>{{ t.rounds_none }}</p>{% else %}
<table class="data rounds"><thead><tr><th scope="col">{{ t.evaluated }}</th><th scope="col">{{ t.firing }}</th><th scope="col">{{ t.post }}</th></tr></thead><tbody>
{% for r in rounds %}<tr><td>{{ r.at }}</td><td>{{ r.firing }}</td><td>{% for p in r.posts %}{% if p.link %}<a href="{{ p.link }}">{{ t.open_in_slack }}</a>{% else %}{{ p.place }}{% endif %}{% if not loop.last %} · {% endif %}{% endfor %}</td></tr>
{% endfor %}</tbody></table>{% endif %}</section>"##;

#[derive(Serialize)]
struct PostShown {
    link: Option<String>,
    place: String,
}

#[derive(Serialize)]
struct RoundShown {
    at: String,
    firing: u32,
    posts: Vec<PostShown>,
}

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

/// A post's address: the permalink the ledger kept, else one built from the workspace's
/// address (`https://acme.slack.com/archives/C0123/p1712345678000100`), else none. Only
/// `https://` addresses become links.
pub fn post_link(
    permalink: Option<&str>,
    (channel, ts): (Option<&str>, Option<&str>),
    slack_url: Option<&str>,
) -> Option<String> {
    if let Some(permalink) = permalink.filter(|p| p.starts_with("https://")) {
        return Some(permalink.to_string());
    }
    let base = slack_url?.trim_end_matches('/');
    if !base.starts_with("https://") {
        return None;
    }
    let (channel, ts) = (channel?, ts?);
    // Only a Slack post has a Slack address: a channel ID (`C…`, `G…`, `D…`) and a
    // message ts (`1712345678.000100`); a delivery to the folder records neither.
    let channel_is_an_id = channel.len() >= 9
        && channel.starts_with(['C', 'G', 'D'])
        && channel
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let (seconds, micros) = ts.split_once('.')?;
    let digits = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit());
    (channel_is_an_id && digits(seconds) && digits(micros))
        .then(|| format!("{base}/archives/{channel}/p{seconds}{micros}"))
}

/// Where a post went, when there is no link: channel and Slack's timestamp.
fn place(channel: Option<&str>, ts: Option<&str>) -> String {
    match (channel, ts) {
        (Some(channel), Some(ts)) => format!("{channel} · {ts}"),
        _ => String::new(),
    }
}

fn shown(frame: &Frame, spec: &ReportSpec, run: &RunRecord, slack_url: Option<&str>) -> RunShown {
    let timezone: Tz = spec
        .schedules
        .get(run.key.schedule as usize)
        // A schedule since removed: the report's first schedule's clock.
        .or(spec.schedules.first())
        .map(|s| s.timezone)
        .unwrap_or(chrono_tz::UTC);
    RunShown {
        slot: local_time(run.key.slot, timezone),
        state: crate::tr!(frame.locale, crate::adhoc::history::state_key(run.state)),
        error: run.error.clone().unwrap_or_default(),
        rows: run.rows.map(|r| r.to_string()).unwrap_or_default(),
        link: post_link(
            run.permalink.as_deref(),
            (run.channel.as_deref(), run.ts.as_deref()),
            slack_url,
        ),
        place: place(run.channel.as_deref(), run.ts.as_deref()),
    }
}

/// Why the ledger cannot be read, in the page's language.
fn unreadable(frame: &Frame, why: String) -> String {
    crate::tr!(frame.locale, "studio-runs-no-ledger", why = why)
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
        Err(why) => (Vec::new(), Some(unreadable(frame, why.clone()))),
        Ok(None) => (Vec::new(), None),
        Ok(Some(ledger)) => match ledger.history(Some(&spec.id), limit).await {
            Ok(runs) => (
                runs.iter()
                    .map(|run| shown(frame, spec, run, slack_url))
                    .collect(),
                None,
            ),
            Err(error) => (Vec::new(), Some(unreadable(frame, error.to_string()))),
        },
    };
    render(
        RUNS,
        context! { t => frame.words(), runs => serde_value(&runs), problem => problem },
    )
}

/// One evaluation with the posts its notices made.
async fn round_shown(
    ledger: &Ledger,
    alert: &AlertSpec,
    round: &StoredRound,
    slack_url: Option<&str>,
) -> Result<RoundShown, LedgerError> {
    let mut posts = Vec::new();
    for index in 0..round.notices {
        let key = NoticeKey {
            alert: round.alert.clone(),
            evaluated_at: round.evaluated_at,
            index,
        };
        if let Some((channel, ts)) = ledger.notice_post(&key).await? {
            let at = (Some(channel.as_str()), Some(ts.as_str()));
            posts.push(PostShown {
                link: post_link(None, at, slack_url),
                place: place(at.0, at.1),
            });
        }
    }
    Ok(RoundShown {
        at: local_time(round.evaluated_at, alert.timezone),
        firing: round.firing,
        posts,
    })
}

async fn rounds_of(
    ledger: &Ledger,
    alert: &AlertSpec,
    limit: usize,
    slack_url: Option<&str>,
) -> Result<Vec<RoundShown>, LedgerError> {
    let mut shown = Vec::new();
    for round in ledger.alert_history(Some(&alert.name), limit).await? {
        shown.push(round_shown(ledger, alert, &round, slack_url).await?);
    }
    Ok(shown)
}

/// An alert's section: its newest `limit` evaluations (how many values were firing) with
/// links to the posts they made, or why there are none.
pub async fn alert_section(
    frame: &Frame,
    ledger: &Result<Option<Ledger>, String>,
    alert: &AlertSpec,
    limit: usize,
    slack_url: Option<&str>,
) -> String {
    let (rounds, problem) = match ledger {
        Err(why) => (Vec::new(), Some(unreadable(frame, why.clone()))),
        Ok(None) => (Vec::new(), None),
        Ok(Some(ledger)) => match rounds_of(ledger, alert, limit, slack_url).await {
            Ok(rounds) => (rounds, None),
            Err(error) => (Vec::new(), Some(unreadable(frame, error.to_string()))),
        },
    };
    render(
        ROUNDS,
        context! { t => frame.words(), rounds => serde_value(&rounds), problem => problem },
    )
}
