//! Every word kpibot writes to a person, in the reader's language: the message catalogs
//! (`en.ftl`, `ja.ftl`, Project Fluent), the [`Locale`] that picks one, and dates and
//! windows written the way that language writes them.
//!
//! Code never writes a sentence a person reads; it names a catalog message and its
//! variables: `tr!(locale, "kpi-refused", name = "dau", owner = "@data")`.

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate, Weekday};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

pub mod mrkdwn;

/// The English catalog, compiled in.
pub const EN_CATALOG: &str = include_str!("en.ftl");
/// The Japanese catalog, compiled in.
pub const JA_CATALOG: &str = include_str!("ja.ftl");

/// A language kpibot writes in. For reports it also decides how numbers read (`1.2万`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Locale {
    #[default]
    En,
    Ja,
}

impl Locale {
    pub const NAMES: [&'static str; 2] = ["en", "ja"];
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Ja];

    /// `en` or `ja`, as settings and specs write it.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "en" => Self::En,
            "ja" => Self::Ja,
            _ => return None,
        })
    }

    /// A Slack user's locale (`ja-JP`, `en-US`, …): Japanese for `ja*`, English otherwise,
    /// the only two catalogs there are.
    pub fn from_slack(tag: &str) -> Self {
        if tag.to_ascii_lowercase().starts_with("ja") {
            Self::Ja
        } else {
            Self::En
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ja => "ja",
        }
    }

    /// The catalog's source text.
    pub fn catalog(self) -> &'static str {
        match self {
            Self::En => EN_CATALOG,
            Self::Ja => JA_CATALOG,
        }
    }
}

/// Whether `text` is written in Japanese (holds kana or kanji), for a guess at a reader's
/// language before Slack has said it.
pub fn looks_japanese(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(c as u32,
            0x3040..=0x30FF // hiragana, katakana
            | 0x4E00..=0x9FFF // CJK unified ideographs
            | 0xFF66..=0xFF9F) // half-width katakana
    })
}

type Bundle = FluentBundle<FluentResource>;

fn bundle(locale: Locale) -> Bundle {
    let source = locale.catalog().to_string();
    // A catalog that does not parse is caught by the tests; at run time the messages
    // that did parse are still used.
    let resource = FluentResource::try_new(source).unwrap_or_else(|(partial, errors)| {
        tracing::error!(
            locale = locale.name(),
            ?errors,
            "message catalog has errors"
        );
        partial
    });
    let lang = locale.name().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new_concurrent(vec![lang]);
    // Slack and the chart font show the isolation marks as boxes: no bidi text here.
    bundle.set_use_isolating(false);
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(
            locale = locale.name(),
            ?errors,
            "message catalog has duplicate messages"
        );
    }
    bundle
}

static BUNDLES: LazyLock<[Bundle; 2]> = LazyLock::new(|| [bundle(Locale::En), bundle(Locale::Ja)]);

fn bundle_of(locale: Locale) -> &'static Bundle {
    &BUNDLES[match locale {
        Locale::En => 0,
        Locale::Ja => 1,
    }]
}

/// A message's variables: names and values (text or numbers, for plurals).
pub type Args<'a> = FluentArgs<'a>;

/// A value for a message variable.
pub fn arg<'a>(value: impl Into<FluentValue<'a>>) -> FluentValue<'a> {
    value.into()
}

/// The message `key` in `locale` with `args`. A key missing from one catalog falls back to
/// English (the tests forbid that), and one missing from both reads as the key itself:
/// never a panic.
pub fn format(locale: Locale, key: &str, args: &Args) -> String {
    // A message without variables reads the same every time (`/kpi help`, labels):
    // formatted once. The catalog's keys bound the memo.
    let plain = args.iter().next().is_none();
    if plain
        && let Some(text) = FORMATTED
            .read()
            .ok()
            .and_then(|memo| memo.get(&(locale, key.to_string())).cloned())
    {
        return text;
    }
    let text = format_uncached(locale, key, args);
    if plain && let Ok(mut memo) = FORMATTED.write() {
        memo.insert((locale, key.to_string()), text.clone());
    }
    text
}

/// Messages without variables, already formatted, by language and key.
static FORMATTED: LazyLock<std::sync::RwLock<std::collections::HashMap<(Locale, String), String>>> =
    LazyLock::new(Default::default);

fn format_uncached(locale: Locale, key: &str, args: &Args) -> String {
    for candidate in [locale, Locale::En] {
        let bundle = bundle_of(candidate);
        if let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(args), &mut errors);
            if !errors.is_empty() {
                tracing::error!(
                    key,
                    locale = candidate.name(),
                    ?errors,
                    "message formatted with errors"
                );
            }
            return text.into_owned();
        }
    }
    tracing::error!(key, "message missing from every catalog");
    key.to_string()
}

/// The message `key` in `locale`, with named variables:
/// `tr!(locale, "kpi-refused", name = report, owner = owner)`.
#[macro_export]
macro_rules! tr {
    ($locale:expr, $key:expr $(, $name:ident = $value:expr)* $(,)?) => {{
        #[allow(unused_mut)]
        let mut args = $crate::i18n::Args::new();
        $( args.set(stringify!($name), $crate::i18n::arg($value)); )*
        $crate::i18n::format($locale, $key, &args)
    }};
}

/// A message kept for later, when the reader's language is known: a key and its
/// variables (numbers stay numbers, so plurals choose right).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub key: &'static str,
    pub args: Vec<(&'static str, Arg)>,
}

/// A message variable's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Number(f64),
    /// Already Slack mrkdwn (see [`mrkdwn::Mrkdwn`]): never escaped again.
    Mrkdwn(String),
    /// A day, written the reader's way ([`date`]).
    Date(NaiveDate),
}

impl Message {
    pub fn new(key: &'static str) -> Self {
        Self {
            key,
            args: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl ToString) -> Self {
        self.args.push((name, Arg::Text(value.to_string())));
        self
    }

    /// A number variable: plural forms are chosen by it.
    pub fn with_number(mut self, name: &'static str, value: impl Into<f64>) -> Self {
        self.args.push((name, Arg::Number(value.into())));
        self
    }

    /// A day variable, written as the reader writes dates (`2026年11月29日`).
    pub fn with_date(mut self, name: &'static str, day: NaiveDate) -> Self {
        self.args.push((name, Arg::Date(day)));
        self
    }

    /// A piece already written as mrkdwn, put in as it is by [`Message::mrkdwn`].
    pub fn with_mrkdwn(mut self, name: &'static str, value: mrkdwn::Mrkdwn) -> Self {
        self.args.push((name, Arg::Mrkdwn(value.into_string())));
        self
    }

    /// The message as plain text (a chart, a header, alt text, the terminal, logs).
    pub fn text(&self, locale: Locale) -> String {
        self.format(locale, false)
    }

    /// The message as Slack mrkdwn: every text variable escaped ([`mrkdwn::escape`]).
    pub fn mrkdwn(&self, locale: Locale) -> String {
        self.format(locale, true)
    }

    fn format(&self, locale: Locale, for_slack: bool) -> String {
        let mut args = Args::new();
        for (name, value) in &self.args {
            match value {
                Arg::Text(text) if for_slack => args.set(*name, mrkdwn::escape(text)),
                Arg::Text(text) | Arg::Mrkdwn(text) => args.set(*name, text.as_str()),
                Arg::Number(number) => args.set(*name, *number),
                Arg::Date(day) => args.set(*name, date(locale, *day)),
            }
        }
        format(locale, self.key, &args)
    }
}

impl std::fmt::Display for Message {
    /// English: for logs, the CLI and errors that reach an operator.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(Locale::En))
    }
}

/// An error and its causes on one line (each cause's own words, in English).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// A weekday's short name: `Mon`, `月`.
pub fn weekday(locale: Locale, day: Weekday) -> String {
    let key = match day {
        Weekday::Mon => "weekday-mon",
        Weekday::Tue => "weekday-tue",
        Weekday::Wed => "weekday-wed",
        Weekday::Thu => "weekday-thu",
        Weekday::Fri => "weekday-fri",
        Weekday::Sat => "weekday-sat",
        Weekday::Sun => "weekday-sun",
    };
    format(locale, key, &Args::new())
}

/// A date in full: `2026-11-29`, `2026年11月29日`.
pub fn date(locale: Locale, day: NaiveDate) -> String {
    match locale {
        Locale::En => day.to_string(),
        Locale::Ja => format!("{}年{}月{}日", day.year(), day.month(), day.day()),
    }
}

/// A scheduled slot (RFC 3339, with the schedule's own offset) as its reader writes a
/// time: `2026-11-26 09:00`, `2026年11月26日 09:00`; the text as it is if it is not one.
pub fn slot_time(locale: Locale, slot: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(slot) {
        Ok(at) => format!("{} {}", date(locale, at.date_naive()), at.format("%H:%M")),
        Err(_) => slot.to_string(),
    }
}

/// An inclusive range of days: `2026-11-02 – 2026-11-29`, `2026年11月2日〜11月29日`
/// (the year once when both ends share it); one day is written as that day.
pub fn date_range(locale: Locale, start: NaiveDate, end: NaiveDate) -> String {
    if start == end {
        return date(locale, start);
    }
    match locale {
        Locale::En => format!("{start} – {end}"),
        Locale::Ja if start.year() == end.year() => {
            format!("{}〜{}月{}日", date(locale, start), end.month(), end.day())
        }
        Locale::Ja => format!("{}〜{}", date(locale, start), date(locale, end)),
    }
}

/// A day on a chart's x axis: `11/29`; in Japanese with its weekday where there is room,
/// `11/29(日)`.
pub fn axis_day(locale: Locale, day: NaiveDate, with_weekday: bool) -> String {
    match locale {
        Locale::En => day.format("%m/%d").to_string(),
        Locale::Ja if with_weekday => format!(
            "{}/{}({})",
            day.month(),
            day.day(),
            weekday(locale, day.weekday())
        ),
        Locale::Ja => format!("{}/{}", day.month(), day.day()),
    }
}

/// Joins a list the way the language does: `a, b`, `a、b`.
pub fn list(locale: Locale, items: &[String]) -> String {
    items.join(match locale {
        Locale::En => ", ",
        Locale::Ja => "、",
    })
}

#[cfg(test)]
mod tests;
