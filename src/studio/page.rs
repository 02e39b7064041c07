//! The studio's pages, rendered on the server with minijinja (every value escaped unless
//! built as HTML here): the catalog, a report's preview, a metric's, policy's or alert's
//! definition, a file's problems. Every word the studio writes comes from the message
//! catalogs, in English or Japanese; a few lines of script reload the page when the
//! folder changes.

use chrono::{DateTime, Utc};
use minijinja::context;
use minijinja::value::Value;
use serde::Serialize;

pub use super::frame::Frame;
use super::frame::{local_time, render, serde_value};
use super::preview::{Preview, Shown as ShownDiagnostic};
use super::slack_html;
use crate::catalog::Catalog;
use crate::spec::{LoadedFile, ReportSpec};

/// Next posts listed for each schedule.
pub const NEXT_SLOTS_SHOWN: usize = 3;

const LAYOUT: &str = r##"<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{{ heading }} — {{ t.title }}</title>
<style>
@font-face { font-family: "BIZ UDPGothic"; src: url("/font/regular.ttf") format("truetype"); font-weight: normal; font-display: block; }
@font-face { font-family: "BIZ UDPGothic"; src: url("/font/bold.ttf") format("truetype"); font-weight: bold; font-display: block; }
button, input, select, textarea { font: inherit; }
body { font-family: "BIZ UDPGothic", sans-serif; color: #1b1b1b; background: #fff; margin: 0; line-height: 1.5; }
a { color: #0b57a4; } a:focus, button:focus, input:focus, input:focus-within, select:focus, summary:focus { outline: 3px solid #b35c00; outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; }
header { background: #1b1b1b; color: #fff; padding: .5rem 1rem; display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
header a { color: #fff; } main { padding: 1rem; max-width: 80rem; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(24rem, 1fr)); gap: 1.5rem; }
.slack_message { border: 1px solid #ccc; border-radius: 8px; padding: 1rem; max-width: 40rem; }
.bot_name { font-weight: bold; } .tag { font-size: .75rem; background: #e8e8e8; color: #1b1b1b; padding: 0 .3rem; border-radius: 3px; }
.block { margin: .5rem 0; } .fields { display: grid; grid-template-columns: 1fr 1fr; gap: .5rem; }
.context { font-size: .85rem; color: #4a4a4a; } .mention { color: #0b57a4; background: #e8f1fb; }
.image img, .chart img { max-width: 100%; } .native_chart { width: 100%; max-width: 30rem; border: 1px solid #ddd; }
table.data { border-collapse: collapse; } table.data th, table.data td { border: 1px solid #ccc; padding: .2rem .5rem; text-align: left; }
.diagnostic { border-left: 4px solid #b3261e; padding-left: .75rem; margin: 1rem 0; }
.diagnostic pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; } .pointed { background: #fde7e4; font-weight: bold; }
.stale { border: 2px dashed #8a6d00; padding: .5rem; }
code, pre { font-family: ui-monospace, monospace, "BIZ UDPGothic"; }
</style>
</head>
<body data-version="{{ version }}">
<a class="skip" href="#main">{{ t.skip }}</a>
<header>
<strong><a href="/?lang={{ lang }}">{{ t.title }}</a></strong>
<form action="/" method="get" role="search">
<input type="hidden" name="lang" value="{{ lang }}">
<label for="q">{{ t.search_label }}</label>
<input id="q" name="q" type="search" value="{{ q }}">
<button type="submit">{{ t.search }}</button>
</form>
<nav aria-label="{{ t.language }}">{{ t.language }}: <a href="?lang=en{{ keep }}" lang="en">English</a> · <a href="?lang=ja{{ keep }}" lang="ja">日本語</a></nav>
<span>{{ t.live }}</span>
</header>
<main id="main">
<h1>{{ heading }}</h1>
{{ body }}
</main>
<script>
// The folder's version this page shows; a different one means reload. A browser gives a
// host six connections, so the studio's open tabs share one event stream: the tab holding
// the lock listens and tells the others, and answers a new tab that asks what it last
// heard; when it goes, or its stream fails for good, the next tab takes the lock. Without
// locks (plain http beyond this machine) each tab listens itself.
(function () {
  var shown = document.body.dataset.version;
  var heard = null;
  var tabs = window.BroadcastChannel ? new BroadcastChannel("kpibot-studio") : null;
  function seen(version) { if (version && version !== shown) { location.reload(); } }
  function listen(stop) {
    var changes = new EventSource("/events");
    function hear(event) {
      heard = event.data;
      if (tabs) { tabs.postMessage({ version: heard }); }
      if (heard !== shown) { changes.close(); stop(); seen(heard); }
    }
    changes.addEventListener("version", hear);
    changes.addEventListener("change", hear);
    changes.onerror = function () {
      if (changes.readyState === EventSource.CLOSED) { heard = null; stop(); setTimeout(start, 1000); }
    };
    window.addEventListener("pagehide", function () { changes.close(); stop(); });
  }
  function start() {
    if (tabs && navigator.locks) {
      navigator.locks.request("kpibot-studio-events", function () {
        return new Promise(function (done) { listen(done); });
      });
    } else {
      listen(function () {});
    }
  }
  if (tabs) {
    tabs.onmessage = function (message) {
      var data = message.data || {};
      if (data.ask && heard) { tabs.postMessage({ version: heard }); }
      seen(data.version);
    };
    tabs.postMessage({ ask: true });
  }
  window.addEventListener("pageshow", function (event) { if (event.persisted) { location.reload(); } });
  start();
})();
</script>
</body>
</html>
"##;

const INDEX: &str = r##"
{% if error %}<p role="alert">{{ error }}</p>{% endif %}
{% if broken %}<section><h2>{{ t.broken }}</h2><ul>
{% for f in broken %}<li><a href="/file/{{ f.link }}?lang={{ lang }}">{{ f.path }}</a> ({{ f.count }})</li>{% endfor %}
</ul></section>{% endif %}
<section><h2>{{ t.reports }}</h2><ul>
{% for r in reports %}<li><a href="/report/{{ r.id }}?lang={{ lang }}">{{ r.title }}</a> <code>{{ r.id }}</code> — {{ t.owner }} {{ r.owner }}{% if r.next %} — {{ t.next_posts }} <span class="varies">{{ r.next }}</span>{% endif %}</li>{% else %}<li>{{ t.none }}</li>{% endfor %}
</ul></section>
{% for group in groups %}<section><h2>{{ group.heading }}</h2><ul>
{% for e in group.entries %}<li><a href="/entry/{{ group.kind }}/{{ e.name }}?lang={{ lang }}">{{ e.title }}</a> <code>{{ e.name }}</code></li>{% else %}<li>{{ t.none }}</li>{% endfor %}
</ul></section>{% endfor %}
"##;

const REPORT: &str = r##"
<form method="get">
<input type="hidden" name="lang" value="{{ lang }}">
<label for="period">{{ t.period }}</label>
<input id="period" name="period" value="{{ period }}" placeholder="{{ own_period }}">
<label for="warehouse">{{ t.warehouse }}</label>
<select id="warehouse" name="warehouse" class="varies">{% for w in warehouses %}<option value="{{ w[0] }}"{% if w[2] %} selected{% endif %}>{{ w[1] }}</option>{% endfor %}</select>
<button type="submit">{{ t.apply }}</button>
</form>
<section aria-labelledby="problems"><h2 id="problems">{{ t.diagnostics }}</h2>
{% include "diagnostics" %}
{% if failure %}<p role="alert">{{ failure }}</p>{% endif %}
</section>
{% if preview %}<div{% if stale %} class="stale"{% endif %}>
{% if stale %}<p>{{ t.last_good }}</p>{% endif %}
<div class="columns">
<section><h2>{{ t.message }}</h2>{{ message }}</section>
<section class="chart"><h2>{{ t.chart }}</h2><img src="{{ chart_src }}" alt="{{ alt }}"></section>
</div>
<section><h2>{{ t.query }}</h2><p class="varies">{{ stats }}</p></section>
<section><h2>{{ t.data }}</h2><table class="data"><tr>{% for c in columns %}<th scope="col">{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>{% if more %}<p>{{ more }}</p>{% endif %}</section>
</div>{% endif %}
<section><h2>{{ t.catalog }}</h2>{{ definition }}</section>
"##;

const DEFINITION: &str = r##"<dl>
{% for row in rows %}<dt>{{ row[0] }}</dt><dd{% if row[0] == t.next_posts %} class="varies"{% endif %}>{% if row[2] %}<pre><code>{{ row[1] }}</code></pre>{% else %}{{ row[1] }}{% endif %}</dd>
{% endfor %}</dl>"##;

const FILE: &str = r##"
{% include "diagnostics" %}
"##;

/// `body` in the layout, under `heading`.
fn layout(frame: &Frame, heading: &str, body: String) -> String {
    let keep = frame.keep();
    render(
        LAYOUT,
        context! {
            lang => frame.lang(),
            t => frame.words(),
            heading => heading,
            version => frame.version,
            q => frame.q.clone(),
            keep => keep,
            body => Value::from_safe_string(body),
        },
    )
}

#[derive(Serialize)]
struct Listed {
    name: String,
    title: String,
}

#[derive(Serialize)]
struct ReportListed {
    id: String,
    title: String,
    owner: String,
    next: Option<String>,
}

/// The next posts of one cron in its timezone, each with where it goes.
fn slots_of(
    cron: &cron::Schedule,
    timezone: chrono_tz::Tz,
    channel: &str,
    now: DateTime<Utc>,
) -> Vec<String> {
    crate::scheduled::cron::slots_after(cron, timezone, now)
        .take(NEXT_SLOTS_SHOWN)
        .map(|slot| format!("{} → {channel}", local_time(slot, timezone)))
        .collect()
}

fn next_slots(spec: &ReportSpec, now: DateTime<Utc>) -> Vec<String> {
    spec.schedules
        .iter()
        .flat_map(|s| slots_of(&s.cron, s.timezone, &s.channel, now))
        .collect()
}

fn matches(q: &str, texts: &[&str]) -> bool {
    let q = q.trim().to_lowercase();
    q.is_empty() || texts.iter().any(|t| t.to_lowercase().contains(&q))
}

/// `path` under the reports folder, as the studio's addresses name files.
pub fn relative(path: &std::path::Path, reports_dir: &std::path::Path) -> String {
    path.strip_prefix(reports_dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The catalog: files with problems, then reports, metrics, policies and alerts.
pub fn index(
    frame: &Frame,
    catalog: &Catalog,
    (files, reports_dir): (&[LoadedFile], &std::path::Path),
    error: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let q = frame.q.as_str();
    let broken: Vec<Value> = files
        .iter()
        .filter(|f| !f.diagnostics.is_empty())
        .map(|f| {
            context! {
                path => f.path.display().to_string(),
                link => relative(&f.path, reports_dir),
                count => f.diagnostics.len(),
            }
        })
        .collect();
    let reports: Vec<Value> = catalog
        .reports()
        .filter(|r| matches(q, &[&r.id, &r.title, &r.description, &r.owner]))
        .map(|r| {
            serde_value(ReportListed {
                id: r.id.clone(),
                title: r.title.clone(),
                owner: r.owner.clone(),
                next: next_slots(r, now).into_iter().next(),
            })
        })
        .collect();
    let metrics: Vec<Listed> = catalog
        .metrics()
        .filter(|m| matches(q, &[&m.name, &m.label, &m.description]))
        .map(|m| Listed {
            name: m.name.clone(),
            title: m.label.clone(),
        })
        .collect();
    let policies: Vec<Listed> = catalog
        .policies()
        .iter()
        .filter(|p| matches(q, &[&p.name, &p.description, &p.table]))
        .map(|p| Listed {
            name: p.name.clone(),
            title: p.table.clone(),
        })
        .collect();
    let alerts: Vec<Listed> = catalog
        .alerts()
        .filter(|a| matches(q, &[&a.name, a.title.as_deref().unwrap_or_default()]))
        .map(|a| Listed {
            name: a.name.clone(),
            title: a.title.clone().unwrap_or_else(|| a.name.clone()),
        })
        .collect();
    let groups = vec![
        context! { heading => frame.word("studio-metrics"), kind => "metric", entries => serde_value(&metrics) },
        context! { heading => frame.word("studio-policies"), kind => "policy", entries => serde_value(&policies) },
        context! { heading => frame.word("studio-alerts"), kind => "alert", entries => serde_value(&alerts) },
    ];
    let body = render(
        INDEX,
        context! {
            t => frame.words(),
            lang => frame.lang(),
            error => error,
            broken => broken,
            reports => reports,
            groups => groups,
        },
    );
    layout(frame, &frame.word("studio-catalog"), body)
}

/// A definition list: (label, text, is code).
fn definition(frame: &Frame, rows: Vec<(String, String, bool)>) -> String {
    let rows: Vec<(String, String, bool)> = rows
        .into_iter()
        .filter(|(_, text, _)| !text.trim().is_empty())
        .collect();
    render(
        DEFINITION,
        context! { t => frame.words(), rows => serde_value(&rows) },
    )
}

fn report_definition(
    frame: &Frame,
    catalog: &Catalog,
    spec: &ReportSpec,
    now: DateTime<Utc>,
) -> String {
    let w = |key: &str| frame.word(key);
    let policies: Vec<String> = catalog
        .report_policies(spec)
        .iter()
        .map(|p| format!("{} ({})", p.name, p.owner))
        .collect();
    definition(
        frame,
        vec![
            (w("studio-purpose"), spec.definition.purpose.clone(), false),
            (w("studio-description"), spec.description.clone(), false),
            (w("studio-source"), spec.definition.source.clone(), false),
            (
                w("studio-refreshed"),
                spec.definition.refreshed.clone(),
                false,
            ),
            (w("studio-owner"), spec.owner.clone(), false),
            (
                w("studio-next-posts"),
                next_slots(spec, now).join("\n"),
                true,
            ),
            (w("studio-covered-by"), policies.join(", "), false),
            (w("studio-sql"), spec.query.sql.trim().to_string(), true),
        ],
    )
}

/// What a report's page shows besides its definition.
pub struct Shown<'a> {
    /// The preview: this version's, or the last good one.
    pub preview: Option<&'a Preview>,
    /// The preview is not this version's (the file is broken, or the run failed).
    pub stale: bool,
    pub failure: Option<&'a str>,
    pub diagnostics: &'a [ShownDiagnostic],
    /// The warehouses to choose from: (name, what it is, whether it is the one shown).
    pub warehouses: Vec<(String, String, bool)>,
    /// Sections drawn after the definition (the report's recent runs).
    pub after: String,
}

/// A report's page: its problems, its preview (the Slack message, the chart, the query's
/// cost, the data) and its definition.
pub fn report(
    frame: &Frame,
    (catalog, spec): (&Catalog, &ReportSpec),
    shown: Shown<'_>,
    now: DateTime<Utc>,
) -> String {
    let lang = frame.lang();
    let chart_src = format!(
        "/report/{}/chart.png?lang={lang}{}&v={}",
        spec.id,
        frame.keep(),
        frame.version
    );
    let (message, stats, columns, rows, more, alt) = match shown.preview {
        Some(p) => {
            let mut stats = crate::tr!(
                frame.locale,
                "studio-query-stats",
                rows = p.row_count,
                ms = p.elapsed_ms.to_string(),
                window = p.window.clone()
            );
            if let Some(bytes) = p.bytes {
                stats.push_str(" · ");
                stats.push_str(&crate::tr!(
                    frame.locale,
                    "studio-bytes",
                    bytes = crate::warehouse::cost::bytes_text(bytes)
                ));
            }
            let more = (p.row_count > p.rows.len()).then(|| {
                crate::tr!(
                    frame.locale,
                    "studio-rows-more",
                    count = p.row_count - p.rows.len()
                )
            });
            (
                slack_html::message(&p.message, &chart_src),
                stats,
                p.columns.clone(),
                p.rows.clone(),
                more,
                p.alt_text.clone(),
            )
        }
        None => Default::default(),
    };
    let body = render(
        REPORT,
        context! {
            t => frame.words(),
            lang => lang,
            period => frame.period.clone(),
            own_period => spec.query.period.to_string(),
            warehouses => serde_value(&shown.warehouses),
            diagnostics => serde_value(shown.diagnostics),
            failure => shown.failure,
            preview => shown.preview.is_some(),
            stale => shown.stale,
            message => Value::from_safe_string(message),
            chart_src => chart_src,
            alt => alt,
            stats => stats,
            columns => serde_value(&columns),
            rows => serde_value(&rows),
            more => more,
            definition => Value::from_safe_string(report_definition(frame, catalog, spec, now)),
        },
    );
    layout(frame, &spec.title, body + &shown.after)
}

/// A metric's, policy's or alert's page: its definition; `None` if there is none by that
/// name.
pub fn entry(
    frame: &Frame,
    catalog: &Catalog,
    kind: &str,
    name: &str,
    now: DateTime<Utc>,
    after: String,
) -> Option<String> {
    let w = |key: &str| frame.word(key);
    let (heading, rows) = match kind {
        "metric" => {
            let m = catalog.metric(name)?;
            let dimensions: Vec<String> = m
                .dimensions
                .iter()
                .map(|(d, label)| format!("{d} ({label})"))
                .collect();
            (
                m.label.clone(),
                vec![
                    (w("studio-description"), m.description.clone(), false),
                    (w("studio-table"), m.table.clone(), true),
                    (w("studio-columns"), dimensions.join(", "), false),
                    (w("studio-refreshed"), m.refreshed.clone(), false),
                    (w("studio-owner"), m.owner.clone(), false),
                ],
            )
        }
        "policy" => {
            let p = catalog.policies().iter().find(|p| p.name == name)?;
            let allowed = [
                p.allowed.allowed_channels.join(", "),
                p.allowed.allowed_users.join(", "),
                p.allowed.allowed_usergroups.join(", "),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · ");
            (
                p.name.clone(),
                vec![
                    (w("studio-description"), p.description.clone(), false),
                    (w("studio-table"), p.table.clone(), true),
                    (w("studio-columns"), p.columns.join(", "), false),
                    (w("studio-allowed"), allowed, false),
                    (w("studio-owner"), p.owner.clone(), false),
                ],
            )
        }
        "alert" => {
            let a = catalog.alert(name)?;
            let next = slots_of(&a.cron, a.timezone, &a.channel, now);
            (
                a.title.clone().unwrap_or_else(|| a.name.clone()),
                vec![
                    (
                        w("studio-condition"),
                        crate::alerts::message::definition(
                            a,
                            &crate::alerts::run::style_of(catalog, a, frame.locale),
                            frame.locale,
                        ),
                        false,
                    ),
                    (w("studio-next-posts"), next.join("\n"), true),
                    (w("studio-owner"), a.owner.clone(), false),
                ],
            )
        }
        _ => return None,
    };
    Some(layout(frame, &heading, definition(frame, rows) + &after))
}

/// A file's page: its problems with the lines around each.
pub fn file(frame: &Frame, file: &LoadedFile, diagnostics: &[ShownDiagnostic]) -> String {
    let body = render(
        FILE,
        context! { t => frame.words(), diagnostics => serde_value(diagnostics) },
    );
    layout(frame, &file.path.display().to_string(), body)
}

/// Nothing by that name.
pub fn not_found(frame: &Frame, name: &str) -> String {
    let text = crate::tr!(frame.locale, "studio-not-found", name = name.to_string());
    layout(frame, &text, String::new())
}
