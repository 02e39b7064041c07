//! An alert's page's backtest: the alert replayed over the days the page asks for, through
//! the same judge and state machine `serve` uses, drawn as a chart with its transitions.

use base64::Engine;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use minijinja::context;
use serde::Serialize;

use super::Parts;
use super::frame::{Frame, local_time, render, serde_value};
use crate::alerts::backtest::{Backtest, backtest, draw, instances_max, range_or_default};
use crate::alerts::engine::Kind;
use crate::alerts::watch::Sources;
use crate::catalog::Catalog;
use crate::spec::AlertSpec;
use crate::warehouse::Warehouse;

const BACKTEST: &str = r##"<section aria-labelledby="backtest"><h2 id="backtest">{{ t.backtest }}</h2>
<form method="get" class="range" aria-label="{{ t.backtest_range }}"><input type="hidden" name="lang" value="{{ lang }}">{% if warehouse %}<input type="hidden" name="warehouse" value="{{ warehouse }}">{% endif %}
<label>{{ t.backtest_from }} <input type="date" name="from" value="{{ from }}"></label>
<label>{{ t.backtest_to }} <input type="date" name="to" value="{{ to }}"></label>
<button type="submit">{{ t.apply }}</button></form>
{% if problem %}<div class="diagnostic" role="alert"><p>{{ problem }}</p></div>{% else %}
<p>{{ summary }}</p>
{% if png %}<img class="chart" src="data:image/png;base64,{{ png }}" alt="{{ alt }}">{% endif %}
{% if transitions %}<table class="data transitions"><thead><tr><th scope="col">{{ t.evaluated }}</th><th scope="col">{{ t.day }}</th><th scope="col">{{ t.instance }}</th><th scope="col">{{ t.change }}</th><th scope="col">{{ t.value }}</th><th scope="col">{{ t.against }}</th></tr></thead><tbody>
{% for r in transitions %}<tr class="{{ r.kind }}"><td>{{ r.at }}</td><td>{{ r.day }}</td><td>{{ r.instance }}</td><td>{{ r.change }}</td><td>{{ r.value }}</td><td>{{ r.against }}</td></tr>
{% endfor %}</tbody></table>{% else %}<p>{{ t.backtest_none }}</p>{% endif %}
{% endif %}</section>"##;

#[derive(Serialize)]
struct TransitionShown {
    at: String,
    day: String,
    instance: String,
    /// `fired` or `resolved`, for the row's class.
    kind: &'static str,
    change: String,
    value: String,
    against: String,
}

/// The earliest and latest year a day typed on the page may have (chrono's own range
/// is far wider, and its arithmetic panics near the ends).
const YEARS_ACCEPTED: std::ops::RangeInclusive<i32> = 1900..=2999;

/// The days to replay: those the page asks for, else the settings' default range ending
/// on the day the alert judges now (shortened to `studio.backtest_days_max`); a word that
/// is not a day, a range backwards or longer than `studio.backtest_days_max` is refused in
/// words.
fn range(
    frame: &Frame,
    parts: &Parts,
    alert: &AlertSpec,
    (from, to): (Option<&str>, Option<&str>),
    now: DateTime<Utc>,
) -> Result<(NaiveDate, NaiveDate), String> {
    let day = |word: Option<&str>| -> Result<Option<NaiveDate>, String> {
        let Some(word) = word.map(str::trim).filter(|w| !w.is_empty()) else {
            return Ok(None);
        };
        NaiveDate::parse_from_str(word, "%Y-%m-%d")
            .ok()
            .filter(|d| YEARS_ACCEPTED.contains(&d.year()))
            .map(Some)
            .ok_or_else(|| crate::tr!(frame.locale, "studio-bad-date", word = word.to_string()))
    };
    let most = parts.backtest_days_max.max(1);
    let default_days = parts.alerts.backtest_days.min(most - 1);
    let (from, to) = range_or_default(alert, (day(from)?, day(to)?), default_days, now);
    let (from_text, to_text) = (from.to_string(), to.to_string());
    if to < from {
        return Err(crate::tr!(
            frame.locale,
            "studio-range-backwards",
            from = from_text,
            to = to_text
        ));
    }
    // Both ends count: 2026-01-01 to 2026-01-01 is one day.
    if (to - from).num_days() + 1 > i64::from(most) {
        return Err(crate::tr!(
            frame.locale,
            "studio-range-too-long",
            from = from_text,
            to = to_text,
            days = most
        ));
    }
    Ok((from, to))
}

fn transitions(
    frame: &Frame,
    catalog: &Catalog,
    alert: &AlertSpec,
    result: &Backtest,
) -> Vec<TransitionShown> {
    let style = crate::alerts::run::style_of(catalog, alert, frame.locale);
    result
        .transitions
        .iter()
        .map(|t| {
            let (kind, key) = match t.kind {
                Kind::Resolved => ("resolved", "studio-resolved"),
                _ => ("fired", "studio-fired"),
            };
            TransitionShown {
                at: local_time(t.at, alert.timezone),
                day: crate::i18n::date(frame.locale, t.day),
                instance: if t.instance.is_empty() {
                    "—".into()
                } else {
                    t.instance.clone()
                },
                kind,
                change: crate::tr!(frame.locale, key),
                value: t.value.map(|v| style.value(v)).unwrap_or_default(),
                against: crate::alerts::message::against_text(
                    &style,
                    frame.locale,
                    t.reference.as_ref(),
                ),
            }
        })
        .collect()
}

/// What a replay gave the page.
#[derive(Default)]
struct Replayed {
    problem: Option<String>,
    summary: String,
    /// The chart, base64 for a `data:` address.
    png: Option<String>,
    rows: Vec<TransitionShown>,
}

async fn replay(
    frame: &Frame,
    (parts, warehouse): (&Parts, &dyn Warehouse),
    catalog: &Catalog,
    alert: &AlertSpec,
    (from, to): (NaiveDate, NaiveDate),
) -> Replayed {
    let sources = Sources {
        warehouse,
        catalog,
        timeout: parts.query_timeout,
        limits: parts.limits,
    };
    let instances = instances_max(alert, parts.alerts.max_instances);
    let result = match backtest(sources, alert, from, to, instances).await {
        Ok(result) => result,
        Err(error) => {
            return Replayed {
                problem: Some(error.to_string()),
                ..Replayed::default()
            };
        }
    };
    let charts = parts.alerts.digest_charts as usize;
    let (png, problem) = match draw(catalog, alert, &result, charts, frame.locale, true) {
        Ok(png) => (
            png.map(|png| base64::engine::general_purpose::STANDARD.encode(png)),
            None,
        ),
        Err(error) => (None, Some(error.to_string())),
    };
    Replayed {
        problem,
        summary: crate::tr!(
            frame.locale,
            "studio-backtest-summary",
            evaluations = result.evaluations
        ),
        png,
        rows: transitions(frame, catalog, alert, &result),
    }
}

/// The section for `alert`: the range form, then the chart and the transitions, or what
/// kept them from being drawn.
pub async fn section(
    frame: &Frame,
    reads: (&Parts, &dyn Warehouse),
    catalog: &Catalog,
    alert: &AlertSpec,
    asked: (Option<&str>, Option<&str>),
    now: DateTime<Utc>,
) -> String {
    let (from, to, replayed) = match range(frame, reads.0, alert, asked, now) {
        Err(why) => (
            asked.0.unwrap_or_default().to_string(),
            asked.1.unwrap_or_default().to_string(),
            Replayed {
                problem: Some(why),
                ..Replayed::default()
            },
        ),
        Ok((from, to)) => (
            from.to_string(),
            to.to_string(),
            replay(frame, reads, catalog, alert, (from, to)).await,
        ),
    };
    let title = crate::alerts::run::title_of(catalog, alert);
    let alt = format!(
        "{}: {from} – {to}. {}",
        crate::tr!(frame.locale, "backtest-title", title = title),
        replayed.summary
    );
    render(
        BACKTEST,
        context! {
            t => frame.words(), lang => frame.lang(), from => from, to => to,
            warehouse => frame.warehouse.clone(),
            problem => replayed.problem, summary => replayed.summary, png => replayed.png,
            alt => alt, transitions => serde_value(&replayed.rows),
        },
    )
}
