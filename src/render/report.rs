//! A report run, drawn and written: from the query's shaped data, the headline and its
//! comparison, it makes the headline label, the change text, the KPI card, the alt text,
//! the PNG and the Slack message — everything a delivery needs, in one call.

use std::sync::Arc;

use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{self, Locale};
use crate::spec::{ChartKind, Headline, PaceMethod, Pacing, ReportSpec, SlackChart, Window};
use crate::tr;
use crate::warehouse::Table;

use super::actions::Actions;
use super::data::{last_present, not_a_number_count};
use super::format::NumberStyle;
use super::native;
use super::{Card, ChartData, ChartInput, MessageFacts, RenderError, build_message, render_png};

/// The metadata keys of a paced post's target start with this (`target_value`, …).
pub const TARGET_METADATA_PREFIX: &str = "target_";

/// A report run ready to deliver: the chart, the message and the data behind it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub report_id: String,
    pub title: String,
    /// Where it goes: `#name` or a channel ID. `None` for a run without a channel.
    pub channel: Option<String>,
    /// The scheduled slot (RFC 3339), or the time an ad-hoc run ran. With the report id,
    /// it identifies the post, so a slot is never posted twice.
    pub slot: String,
    /// Post the chart and details as a thread reply under a one-line summary.
    pub thread: bool,
    /// The language the message is written in.
    pub locale: Locale,
    pub png: Vec<u8>,
    /// The exact `chat.postMessage` body, metadata included.
    pub message: serde_json::Value,
    /// The same message with the uploaded PNG, when `message` holds Slack's own chart or
    /// table block instead: posted if the workspace rejects that block.
    pub image_message: Option<serde_json::Value>,
    /// The query result behind the chart, as CSV.
    pub csv: String,
    /// Asked right before the post goes out (a scheduled slot's fence); `None` for posts
    /// no one else can make.
    pub guard: Option<PostGuard>,
    /// Thread mode, resuming a run that stopped between its two steps: the summary
    /// already posted, so only the chart's reply goes out, in this thread.
    pub resume_thread: Option<String>,
    /// Posted as a reply in this thread (an answer to a click under a post).
    pub in_thread: Option<String>,
}

/// The answer of a [`PostGuard`]'s first-step record, still to come.
pub type GuardAnswer = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// The answer of a [`PostGuard`]'s check, still to come: `None` when the post may not go
/// out, else the instant it must have been sent by (the fence's yes holds until then).
pub type GuardVerdict =
    std::pin::Pin<Box<dyn std::future::Future<Output = Option<std::time::Instant>> + Send>>;

/// Whether a post may still go out, asked at the last moment before it does; and, for a
/// post in two steps (thread mode), where to record the first step.
#[derive(Clone)]
pub struct PostGuard {
    /// Asked with the channel the post goes to, as the delivery resolved it (Slack's
    /// channel ID), before each attempt.
    check: Arc<dyn Fn(&str) -> GuardVerdict + Send + Sync>,
    first_step: Option<Arc<dyn Fn(String) -> GuardAnswer + Send + Sync>>,
}

impl PostGuard {
    pub fn new(check: impl Fn(&str) -> GuardVerdict + Send + Sync + 'static) -> Self {
        Self {
            check: Arc::new(check),
            first_step: None,
        }
    }

    /// Also records the summary's ts once a thread-mode summary is posted; the answer
    /// says whether the slot is still held (the reply may go out).
    pub fn with_first_step(
        mut self,
        record: impl Fn(String) -> GuardAnswer + Send + Sync + 'static,
    ) -> Self {
        self.first_step = Some(Arc::new(record));
        self
    }

    /// Whether the post may go out now to `channel` (as the delivery resolved it): the
    /// instant it must be sent by, or `None`.
    pub async fn allows(&self, channel: &str) -> Option<std::time::Instant> {
        (self.check)(channel).await
    }

    /// Records the first step of a two-step post; true when there is nothing to record.
    pub async fn record_first_step(&self, ts: &str) -> bool {
        match &self.first_step {
            Some(record) => record(ts.to_string()).await,
            None => true,
        }
    }
}

impl std::fmt::Debug for PostGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostGuard")
    }
}

fn is_actions_block(block: &serde_json::Value) -> bool {
    block["type"] == "actions"
        && block["block_id"]
            .as_str()
            .is_some_and(|id| id.starts_with(super::actions::ACTIONS_BLOCK_PREFIX))
}

impl Rendered {
    /// Puts one line of context at the top of the message — and of its PNG variant, so the
    /// line is there whichever goes out (why an answer went to the asker only, who asked
    /// for a thread answer).
    pub fn prepend_context(&mut self, line: &Mrkdwn) {
        self.insert_context(line, |_| 0);
    }

    /// Puts one line of context right under the title (at the top if there is none), in
    /// the message and its PNG variant: how an ad-hoc question was read.
    pub fn context_under_title(&mut self, line: &Mrkdwn) {
        self.insert_context(line, |blocks| {
            blocks
                .iter()
                .position(|b| b["type"] == "header")
                .map_or(0, |at| at + 1)
        });
    }

    /// The actions block under the chart, if it has one (the question it answers is its
    /// `block_id`).
    pub fn actions(&self) -> Option<&serde_json::Value> {
        self.message["blocks"]
            .as_array()?
            .iter()
            .find(|b| is_actions_block(b))
    }

    /// Puts `actions`' buttons in place of the ones the message has (in its PNG variant
    /// too): the same chart offered to someone who may split by other things. When they do
    /// not fit a `block_id`, the message has no buttons rather than another question's.
    pub fn set_actions(&mut self, actions: &super::actions::Actions) {
        let block = super::actions::actions_block(actions, self.locale);
        for message in std::iter::once(&mut self.message).chain(self.image_message.as_mut()) {
            if let Some(blocks) = message["blocks"].as_array_mut()
                && let Some(at) = blocks.iter().position(is_actions_block)
            {
                match &block {
                    Some(block) => blocks[at] = block.clone(),
                    None => {
                        blocks.remove(at);
                    }
                }
            }
        }
    }

    fn insert_context(&mut self, line: &Mrkdwn, at: impl Fn(&[serde_json::Value]) -> usize) {
        let line = serde_json::json!({"type": "context", "elements": [{"type": "mrkdwn", "text": line.as_str()}]});
        for message in std::iter::once(&mut self.message).chain(self.image_message.as_mut()) {
            if let Some(blocks) = message["blocks"].as_array_mut() {
                let at = at(blocks);
                blocks.insert(at, line.clone());
            }
        }
    }

    /// A run's chart and data with the message built from `facts`, which also name the
    /// report, its title, channel and slot.
    pub fn from_facts(facts: &MessageFacts, thread: bool, png: Vec<u8>, csv: String) -> Self {
        Self {
            report_id: facts.report_id.clone(),
            title: facts.title.clone(),
            channel: facts.channel.clone(),
            slot: facts.slot.clone(),
            thread,
            locale: facts.locale,
            png,
            message: build_message(facts),
            image_message: facts.native.is_some().then(|| {
                build_message(&MessageFacts {
                    native: None,
                    ..facts.clone()
                })
            }),
            csv,
            guard: None,
            resume_thread: None,
            in_thread: None,
        }
    }
}

/// What a run found, to be drawn and written.
pub struct RunFacts<'a> {
    pub spec: &'a ReportSpec,
    pub table: &'a Table,
    pub data: &'a ChartData,
    pub window: Window,
    /// The headline value and, for `last`, the point it was read at.
    pub headline: Option<(f64, Option<String>)>,
    /// The comparison's headline and what it was compared with (a day or a window).
    pub previous: Option<(f64, String)>,
    /// The channel the message is for, if known.
    pub channel: Option<String>,
    /// The slot as written in metadata (see `pipeline::slot_text`).
    pub slot: String,
    /// Post the chart as a thread reply under a one-line summary.
    pub thread: bool,
    /// The buttons and menus under the chart.
    pub actions: Option<Actions>,
    /// Where the period stands against the metric's target, when the run is paced.
    pub pacing: Option<Pacing>,
}

/// What the chart shows, in words: the title and each series' latest value, so the post
/// is searchable and readable with a screen reader.
fn alt_text(title: &str, data: &ChartData, style: NumberStyle) -> String {
    let locale = style.locale;
    let latest: Vec<String> = data
        .series
        .iter()
        .filter_map(|s| {
            let (i, v) = last_present(&s.values)?;
            Some(tr!(
                locale,
                "alt-series-latest",
                series = s.name.as_str(),
                value = style.value(v),
                at = day_text(locale, &data.x.full_label(i)),
            ))
        })
        .collect();
    if latest.is_empty() {
        tr!(locale, "alt-no-data", title = title)
    } else {
        tr!(
            locale,
            "alt-latest",
            title = title,
            values = i18n::list(locale, &latest)
        )
    }
}

/// A point's label as the reader writes it: a date (`2026-11-29`) in the language's form,
/// anything else (a category) as it is.
pub fn day_text(locale: Locale, label: &str) -> String {
    match label.parse::<chrono::NaiveDate>() {
        Ok(day) => i18n::date(locale, day),
        Err(_) => label.to_string(),
    }
}

/// A window and its timezone: `2026-11-02 – 2026-11-29 (Asia/Tokyo)`,
/// `2026年11月2日〜11月29日 (Asia/Tokyo)`.
pub fn window_text(locale: Locale, window: Window, timezone: &str) -> String {
    format!(
        "{} ({timezone})",
        i18n::date_range(locale, window.start, window.end)
    )
}

/// Draws the chart and writes the message for one run.
pub fn render_run(facts: RunFacts<'_>) -> Result<Rendered, RenderError> {
    let spec = facts.spec;
    let style = NumberStyle::of(&spec.chart);
    let locale = style.locale;
    let window = facts.window;
    let tz_name = spec.timezone.name();
    let window_text = window_text(locale, window, tz_name);
    let empty_message = tr!(locale, "chart-no-data", window = window_text.as_str());
    let headline = &facts.headline;
    let headline_label = match (spec.chart.headline, headline) {
        (Headline::Last, Some((_, Some(at)))) => {
            tr!(locale, "headline-latest-at", date = day_text(locale, at))
        }
        (Headline::Last, _) => tr!(locale, "headline-latest"),
        (Headline::Total, _) => tr!(locale, "headline-total"),
        (Headline::Average, _) => tr!(locale, "headline-average"),
    };
    let change = match (headline, facts.previous) {
        (Some((current, _)), Some((previous, compared_with))) => Some((
            style.change(*current, previous),
            *current - previous,
            tr!(locale, "change-versus", compared = compared_with),
        )),
        _ => None,
    };
    let card = headline
        .as_ref()
        .filter(|_| spec.chart.kind == ChartKind::Number)
        .map(|(value, _)| Card {
            label: headline_label.clone(),
            value: style.value(*value),
            change: change.as_ref().map(|(text, _, _)| text.clone()),
            delta: change.as_ref().map_or(0.0, |(_, delta, _)| *delta),
            higher_is_better: spec.chart.higher_is_better,
            comparison: change.as_ref().map(|(_, _, window)| window.clone()),
        });
    let png = render_png(&ChartInput {
        data: facts.data,
        table: Some(facts.table),
        kind: spec.chart.kind,
        style,
        title: &spec.title,
        subtitle: &window_text,
        empty_message: &empty_message,
        goal: spec.chart.goal.as_ref(),
        label_last: spec.chart.label_last,
        max_rows: spec.chart.max_rows,
        y_column: &spec.chart.y.name,
        card,
    })?;
    let message = MessageFacts {
        report_id: spec.id.clone(),
        title: spec.title.clone(),
        locale,
        channel: facts.channel,
        slot: facts.slot,
        window_start: window.start.to_string(),
        window_end: window.end.to_string(),
        window_text,
        timezone: tz_name.to_string(),
        headline_label,
        headline_text: headline.as_ref().map(|(v, _)| style.value(*v)),
        headline_raw: headline.as_ref().map(|(v, _)| *v),
        change_text: change.map(|(text, _, window)| format!("{text} {window}")),
        alt_text: alt_text(&spec.title, facts.data, style),
        source: spec.definition.source.clone(),
        refreshed: spec.definition.refreshed.clone(),
        not_numbers: not_a_number_count(facts.table, &spec.chart.y.name),
        actions: facts.actions,
        native: match (spec.chart.slack_chart, spec.chart.kind) {
            (SlackChart::Image, _) => None,
            (SlackChart::Native, ChartKind::Table) => native::table_block(
                facts.table,
                &spec.title,
                &spec.chart.y.name,
                style,
                spec.chart.max_rows,
            ),
            // Slack's chart has no target line: a goal keeps the picture.
            (SlackChart::Native, _) if spec.chart.goal.is_some() => None,
            (SlackChart::Native, kind) => {
                native::chart_block(kind, facts.data, &spec.title, locale)
            }
        },
    };
    let mut rendered = Rendered::from_facts(&message, facts.thread, png, facts.table.to_csv());
    if let Some(pacing) = facts.pacing {
        rendered.add_pacing(&pacing, style);
    }
    Ok(rendered)
}

impl Rendered {
    /// The pacing line under the title (target, attainment, projection and its method)
    /// and the same numbers in the message's metadata, for machines.
    fn add_pacing(&mut self, pacing: &Pacing, style: NumberStyle) {
        let locale = self.locale;
        let percent = |v: f64| format!("{:.0}%", v * 100.0);
        let key = match pacing.method {
            PaceMethod::Linear => "target-line-linear",
            PaceMethod::LastYear => "target-line-last-year",
        };
        let line = crate::tr_mrkdwn!(
            locale,
            key,
            target = style.value(pacing.target),
            period = i18n::date_range(locale, pacing.period_start, pacing.period_end),
            to_date = style.value(pacing.to_date),
            attainment = percent(pacing.attainment),
            projected = style.value(pacing.projected),
            pace = percent(pacing.pace),
            elapsed = i64::from(pacing.elapsed_days),
            days = i64::from(pacing.period_days)
        );
        self.context_under_title(&Mrkdwn::formatted(line));
        // Flat and all strings, as Slack's payload (and slack-morphism's type) requires:
        // `target_value`, `target_pace`, … — numbers written in full.
        let numbers = [
            ("value", pacing.target.to_string()),
            ("period_start", pacing.period_start.to_string()),
            ("period_end", pacing.period_end.to_string()),
            ("to_date", pacing.to_date.to_string()),
            ("attainment", pacing.attainment.to_string()),
            ("projected", pacing.projected.to_string()),
            ("pace", pacing.pace.to_string()),
            ("elapsed_days", pacing.elapsed_days.to_string()),
            ("period_days", pacing.period_days.to_string()),
            (
                "method",
                match pacing.method {
                    PaceMethod::Linear => "linear",
                    PaceMethod::LastYear => "last_year",
                }
                .to_string(),
            ),
        ];
        for message in std::iter::once(&mut self.message).chain(self.image_message.as_mut()) {
            if let Some(payload) = message["metadata"]["event_payload"].as_object_mut() {
                for (key, value) in &numbers {
                    payload.insert(
                        format!("{TARGET_METADATA_PREFIX}{key}"),
                        value.clone().into(),
                    );
                }
            }
        }
    }
}
