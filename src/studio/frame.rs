//! What every studio page shares: its language and the words it writes in it (from the
//! message catalogs), the folder's version, the address's words, and the template call.

use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::Serialize;

use super::PageQuery;
use super::slack_html;
use crate::i18n::Locale;

/// Every word the studio writes: `studio-<name>` in the catalogs, `t.<name>` in templates.
const WORDS: [&str; 58] = [
    "studio-title",
    "studio-skip",
    "studio-search",
    "studio-search-label",
    "studio-reports",
    "studio-metrics",
    "studio-policies",
    "studio-alerts",
    "studio-broken",
    "studio-owner",
    "studio-source",
    "studio-refreshed",
    "studio-purpose",
    "studio-description",
    "studio-next-posts",
    "studio-sql",
    "studio-reads",
    "studio-covered-by",
    "studio-message",
    "studio-chart",
    "studio-data",
    "studio-query",
    "studio-period",
    "studio-language",
    "studio-apply",
    "studio-diagnostics",
    "studio-no-diagnostics",
    "studio-last-good",
    "studio-live",
    "studio-none",
    "studio-catalog",
    "studio-table",
    "studio-columns",
    "studio-allowed",
    "studio-condition",
    "studio-backtest",
    "studio-backtest-range",
    "studio-backtest-from",
    "studio-backtest-to",
    "studio-backtest-none",
    "studio-evaluated",
    "studio-day",
    "studio-instance",
    "studio-change",
    "studio-value",
    "studio-against",
    "studio-runs",
    "studio-runs-none",
    "studio-runs-no-ledger",
    "studio-post",
    "studio-slot",
    "studio-state",
    "studio-rows",
    "studio-open-in-slack",
    "studio-warehouse",
    "studio-rounds",
    "studio-rounds-none",
    "studio-firing",
];

/// What every page shares: its language, the folder's version, the address's words.
pub struct Frame {
    pub locale: Locale,
    pub version: u64,
    pub q: String,
    pub period: String,
    /// The warehouse asked for by name (`demo`, `configured`); empty for the first.
    pub warehouse: String,
}

impl Frame {
    pub fn new(locale: Locale, version: u64, query: &PageQuery) -> Self {
        Self {
            locale,
            version,
            q: query.q.clone().unwrap_or_default(),
            period: query.period.clone().unwrap_or_default(),
            warehouse: query.warehouse.clone().unwrap_or_default(),
        }
    }

    /// What a link to another view of this page keeps from the address: the period and
    /// the warehouse (`&period=…&warehouse=…`).
    pub(super) fn keep(&self) -> String {
        [("period", &self.period), ("warehouse", &self.warehouse)]
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| {
                let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
                format!("&{name}={value}")
            })
            .collect()
    }

    pub(super) fn lang(&self) -> &'static str {
        match self.locale {
            Locale::Ja => "ja",
            Locale::En => "en",
        }
    }

    pub(super) fn words(&self) -> Value {
        let words: std::collections::BTreeMap<String, String> = WORDS
            .iter()
            .map(|key| {
                let name = key.trim_start_matches("studio-").replace('-', "_");
                (name, crate::tr!(self.locale, key))
            })
            .collect();
        serde_value(&words)
    }

    pub(super) fn word(&self, key: &str) -> String {
        crate::tr!(self.locale, key)
    }
}

/// Any serialisable value, for a template.
pub(super) fn serde_value<T: Serialize>(value: T) -> Value {
    Value::from(Serde(value))
}

/// A moment as the studio writes it: on the clock of `timezone`, which is named
/// (`2026-12-01 09:00 (Asia/Tokyo)`).
pub(super) fn local_time(at: chrono::DateTime<chrono::Utc>, timezone: chrono_tz::Tz) -> String {
    format!(
        "{} ({})",
        at.with_timezone(&timezone).format("%Y-%m-%d %H:%M"),
        timezone.name()
    )
}

/// Every check problem with the lines around it (`diagnostics` and the words `t` in the
/// context): included by the report's page and the file's page.
const DIAGNOSTICS: &str = r##"{% for d in diagnostics %}<div class="diagnostic" role="alert"><p><code>{{ d.at }}</code>: {{ d.message }}</p>{% if d.hint %}<p>{{ d.hint }}</p>{% endif %}
<pre>{% for l in d.lines %}<span{% if l[2] %} class="pointed"{% endif %}>{{ l[0] }} | {{ l[1] }}</span>
{% endfor %}</pre></div>{% else %}<p>{{ t.no_diagnostics }}</p>{% endfor %}"##;

/// Renders `template` with every value HTML-escaped (minijinja escapes by the template's
/// file name, and a template given as a string has none: without this, a word typed into
/// the address, a file's content or a ledger's row would be markup in the page). What is
/// already HTML is passed as `Value::from_safe_string`.
pub(super) fn render(template: &str, ctx: Value) -> String {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    // Text escaped as markupsafe does (`& < > " '`): minijinja's own also writes `/` as
    // `&#x2f;`, which is safe but makes every address and path in the page unreadable
    // in its source.
    env.set_formatter(|out, state, value| match value.as_str() {
        Some(text) if !value.is_safe() => out
            .write_str(&slack_html::escape(text))
            .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "page output")),
        _ => minijinja::escape_formatter(out, state, value),
    });
    let drawn = env
        .add_template("diagnostics", DIAGNOSTICS)
        .and_then(|()| env.render_str(template, ctx));
    drawn.unwrap_or_else(|error| {
        format!(
            "<p>kpibot studio could not draw this page: {}</p>",
            slack_html::escape(&error.to_string())
        )
    })
}
