//! An explanation written for Slack and for files: the headline change, the members that
//! carried it in the dimension that explains it best (rate and mix for a ratio), one line
//! per other dimension, the waterfall (or Slack's own bar chart where it fits), the SQL
//! that reproduces it, and `kpibot_explanation` metadata with every number shown. Also the
//! one-line driver an alert's root states.

use serde_json::{Value, json};

use super::why::{Explained, Explanation};
pub use super::why_data::About;
use super::why_data::shown;
use crate::explain::{Contribution, share_of_change};
use crate::i18n::mrkdwn::{self, Mrkdwn};
use crate::i18n::{self, Locale};
use crate::render::data::{ChartData, Series, XAxis};
use crate::render::format::{NumberStyle, truncate_chars};
use crate::render::message::{FILE_ID_PLACEHOLDER, post_marker};
use crate::render::native::chart_block;
use crate::render::waterfall::{Step, Waterfall, render_waterfall_png};
use crate::render::{RenderError, Rendered};
use crate::spec::explain_sql::Split;
use crate::spec::{ChartKind, NumberFormat};
use crate::{tr, tr_mrkdwn};

pub use crate::render::message::EXPLANATION_EVENT_TYPE;
/// Other dimensions given a line each.
pub const OTHER_DIMENSIONS_SHOWN: usize = 4;
/// Longest SQL shown in the message, in characters (Slack's section limit is 3,000).
const SQL_SHOWN_MAX_CHARS: usize = 2_800;
/// Slack's limits the message keeps.
const HEADER_MAX_CHARS: usize = 150;
const SECTION_MAX_CHARS: usize = 3_000;
const TEXT_MAX_CHARS: usize = 3_000;
const ALT_TEXT_MAX_CHARS: usize = 2_000;

/// A part of a change, signed: `+1,234`, `-3,385`, `+1.2 pt` for percentages.
fn signed(style: &NumberStyle, value: f64) -> String {
    if style.format == NumberFormat::Percent {
        return format!("{:+.1} pt", value * 100.0);
    }
    let sign = if value > 0.0 { "+" } else { "" };
    format!("{sign}{}", style.value(value))
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// `福岡県 -3,385, 94% of the drop`: the top member of the best dimension, for an alert's
/// root; `None` when nothing changed or no dimension explains it.
pub fn driver_line(explanation: &Explanation, about: &About) -> Option<String> {
    let best = explanation.dimensions.first()?;
    let top = best.decomposition.members.first()?;
    let share = share_of_change(top, &best.decomposition)?;
    Some(member_share(about, top, share, best.decomposition.change))
}

/// `福岡県 -3,385, 94% of the drop`: a member's part and its share of the whole change.
pub fn member_share(about: &About, member: &Contribution, share: f64, total: f64) -> String {
    // A member that moved against the whole is said to, not given a negative share.
    let key = match (total < 0.0, share < 0.0) {
        (true, false) => "why-share-of-drop",
        (false, false) => "why-share-of-rise",
        (true, true) => "why-against-drop",
        (false, true) => "why-against-rise",
    };
    tr_mrkdwn!(
        about.locale,
        key,
        member = about.member(&member.member),
        part = signed(&about.style(), member.change),
        share = percent(share.abs())
    )
}

/// One member's line: its part, share and, for a ratio, rate and mix.
fn member_line(about: &About, explained: &Explained, member: &Contribution) -> String {
    let d = &explained.decomposition;
    let mut line = match share_of_change(member, d) {
        Some(share) => member_share(about, member, share, d.change),
        None => format!(
            "{} {}",
            mrkdwn::escape(&about.member(&member.member)),
            signed(&about.style(), member.change)
        ),
    };
    if let (Some(rate), Some(mix)) = (member.rate, member.mix) {
        line.push_str(&tr_mrkdwn!(
            about.locale,
            "why-rate-mix",
            rate = signed(&about.style(), rate),
            mix = signed(&about.style(), mix)
        ));
    }
    format!("• {line}")
}

/// The explanation as a post: message (metadata included), waterfall PNG and CSV.
pub fn render_explanation(
    explanation: &Explanation,
    about: &About,
    channel: Option<String>,
    slot: String,
) -> Result<Rendered, RenderError> {
    let locale = about.locale;
    let style = about.style();
    let prepared = &explanation.prepared;
    let title = tr!(locale, "why-title", label = about.label);
    let asked = i18n::date_range(locale, prepared.asked.start, prepared.asked.end);
    let compared = i18n::date_range(locale, prepared.compared.start, prepared.compared.end);
    let (before, after) = explanation.totals().unwrap_or((0.0, 0.0));
    let headline = tr_mrkdwn!(
        locale,
        "why-headline",
        before = style.value(before),
        after = style.value(after),
        change = style.change(after, before),
        asked = asked.as_str(),
        compared = compared.as_str(),
        timezone = about.timezone
    );
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate_chars(&title, HEADER_MAX_CHARS), "emoji": true}}),
        section(&headline),
    ];
    let best = explanation
        .dimensions
        .first()
        .filter(|d| !d.decomposition.negligible(d.decomposition.change));
    let mut steps = Vec::new();
    let mut fallback = headline.clone();
    match best {
        None => blocks.push(section(&tr_mrkdwn!(locale, "why-no-change"))),
        Some(best) => {
            let (named, folded) = shown(best);
            let mut lines = vec![tr_mrkdwn!(
                locale,
                "why-best",
                dimension = about.dimension(&best.dimension),
                power = percent(best.power)
            )];
            lines.extend(named.iter().map(|m| member_line(about, best, m)));
            steps.extend(named.iter().map(|m| Step {
                label: about.member(&m.member),
                change: m.change,
            }));
            if let Some((count, part)) = folded {
                lines.push(format!(
                    "• {}",
                    tr_mrkdwn!(
                        locale,
                        "why-others",
                        count = count as f64,
                        part = signed(&style, part)
                    )
                ));
                steps.push(Step {
                    label: tr!(locale, "why-others-label", count = count as f64),
                    change: part,
                });
            }
            if let Some(line) = driver_line(explanation, about) {
                fallback = format!("{fallback} · {line}");
            }
            blocks.push(section(&lines.join("\n")));
        }
    }
    let alt = tr!(
        locale,
        "why-alt",
        label = about.label,
        before = style.value(before),
        after = style.value(after),
        parts = i18n::list(
            locale,
            &steps
                .iter()
                .map(|s| format!("{} {}", s.label, signed(&style, s.change)))
                .collect::<Vec<_>>()
        )
    );
    let chart = Waterfall {
        title: &title,
        subtitle: &tr!(
            locale,
            "why-subtitle",
            asked = asked.as_str(),
            compared = compared.as_str()
        ),
        before: (&short_window(locale, prepared.compared), before),
        steps: &steps,
        after: (&short_window(locale, prepared.asked), after),
        style,
    };
    let png = render_waterfall_png(&chart)?;
    let image_at = blocks.len();
    blocks.push(json!({
        "type": "image",
        "slack_file": {"id": FILE_ID_PLACEHOLDER},
        "alt_text": truncate_chars(&alt, ALT_TEXT_MAX_CHARS),
    }));
    let others: Vec<String> = explanation
        .dimensions
        .iter()
        .skip(1)
        .filter(|d| !d.decomposition.negligible(d.decomposition.change))
        .take(OTHER_DIMENSIONS_SHOWN)
        .filter_map(|d| {
            let top = d.decomposition.members.first()?;
            let share = share_of_change(top, &d.decomposition)?;
            Some(format!(
                "• {}",
                tr_mrkdwn!(
                    locale,
                    "why-other-dimension",
                    dimension = about.dimension(&d.dimension),
                    driver =
                        Mrkdwn::formatted(member_share(about, top, share, d.decomposition.change)),
                    power = percent(d.power)
                )
            ))
        })
        .collect();
    if !others.is_empty() {
        blocks.push(section(&format!(
            "{}\n{}",
            tr_mrkdwn!(locale, "why-other-dimensions"),
            others.join("\n")
        )));
    }
    let how = match prepared.split {
        Split::Sum => tr_mrkdwn!(locale, "why-how-sum"),
        Split::Ratio => tr_mrkdwn!(locale, "why-how-ratio"),
    };
    // Its block_id names the post, so a lost answer (a thread reply has no metadata in
    // Slack's history) is found, not posted twice.
    let report_id = format!("{}_why", prepared.metric);
    blocks.push(json!({"type": "context", "block_id": post_marker(&report_id, &slot), "elements": [{"type": "mrkdwn", "text": mrkdwn::truncate(&how, SECTION_MAX_CHARS)}]}));
    if prepared.sql.chars().count() <= SQL_SHOWN_MAX_CHARS {
        blocks.push(section(&format!(
            "{}\n{}",
            tr_mrkdwn!(locale, "why-sql"),
            mrkdwn::code_block(&prepared.sql)
        )));
    }
    let mut message = json!({
        "text": mrkdwn::truncate(&format!("{} · {fallback}", mrkdwn::escape(&title)), TEXT_MAX_CHARS),
        "blocks": blocks,
        "metadata": super::why_data::metadata(explanation, about, &report_id, &slot),
        "unfurl_links": false,
        "unfurl_media": false,
    });
    if let Some(channel) = &channel {
        message["channel"] = json!(channel);
    }
    // Slack's own bar chart of the parts, where it fits; the PNG otherwise.
    let native = native_bars(&title, &steps, locale);
    let image_message = native.as_ref().map(|_| message.clone());
    if let Some(block) = native {
        message["blocks"][image_at] = block;
    }
    Ok(Rendered {
        // Its own files beside the metric's chart (`active_users_why.png`).
        report_id,
        title,
        channel,
        slot,
        thread: false,
        locale,
        png,
        message,
        image_message,
        csv: super::why_data::csv(explanation).to_csv(),
        guard: None,
        resume_thread: None,
        in_thread: None,
    })
}

/// A window under a bar: `11/05–11/10`.
fn short_window(locale: Locale, window: crate::spec::Window) -> String {
    let day = |d| i18n::axis_day(locale, d, false);
    if window.start == window.end {
        return day(window.start);
    }
    format!("{}–{}", day(window.start), day(window.end))
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn::truncate(text, SECTION_MAX_CHARS)}})
}

/// Slack's own bar chart of the parts, through the same rules as a report's; `None` when
/// they do not fit it.
fn native_bars(title: &str, steps: &[Step], locale: Locale) -> Option<Value> {
    let data = ChartData {
        x: XAxis::Categories(steps.iter().map(|s| s.label.clone()).collect()),
        series: vec![Series {
            name: tr!(locale, "why-series"),
            values: steps.iter().map(|s| Some(s.change)).collect(),
        }],
    };
    chart_block(ChartKind::Bar, &data, title, locale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::{RatioMember, SumMember, decompose_ratio, decompose_sum};
    use crate::pipeline::why::{Explained, Prepared};
    use crate::warehouse::Params;
    use chrono::NaiveDate;

    fn explanation(decomposition: crate::explain::Decomposition, split: Split) -> Explanation {
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        Explanation {
            prepared: Prepared {
                metric: "m".into(),
                dimensions: vec!["d".into()],
                asked: crate::spec::Window {
                    start: day(8),
                    end: day(14),
                },
                compared: crate::spec::Window {
                    start: day(1),
                    end: day(7),
                },
                sql: "SELECT 1".into(),
                params: Params::new(),
                split,
            },
            dimensions: vec![Explained {
                dimension: "d".into(),
                power: 0.5,
                decomposition,
            }],
            rows: 0,
            bytes: None,
        }
    }

    fn render(explanation: &Explanation, locale: Locale) -> Rendered {
        let dimensions = std::collections::BTreeMap::from([("d".to_string(), "D".to_string())]);
        let about = About {
            label: "M",
            dimensions: &dimensions,
            format: NumberFormat::Integer,
            split: explanation.prepared.split,
            locale,
            timezone: "Asia/Tokyo",
        };
        render_explanation(explanation, &about, None, "2026-11-15T00:00:00Z".into()).unwrap()
    }

    fn texts(message: &Value) -> String {
        message["blocks"].to_string()
    }

    /// The mrkdwn of every section and context (a chart's labels are plain text).
    fn mrkdwn_of(message: &Value) -> String {
        let mut out = Vec::new();
        for block in message["blocks"].as_array().unwrap() {
            out.extend(block["text"]["text"].as_str().map(str::to_string));
            for element in block["elements"].as_array().into_iter().flatten() {
                out.extend(element["text"].as_str().map(str::to_string));
            }
        }
        out.join("\n")
    }

    #[test]
    fn members_are_escaped_nulls_are_flagged_and_metadata_is_strings() {
        let members = [
            (Some("<!channel> *x* `y`"), 10.0, 2.0),
            (None, 5.0, 6.0),
            (Some(""), 3.0, 4.0),
        ]
        .map(|(member, before, after)| SumMember {
            member: member.map(str::to_string),
            before: Some(before),
            after: Some(after),
        });
        for locale in [Locale::En, Locale::Ja] {
            let rendered = render(&explanation(decompose_sum(&members), Split::Sum), locale);
            let message = &rendered.message;
            assert!(!mrkdwn_of(message).contains("<!channel>"), "{message}");
            assert!(!message["text"].as_str().unwrap().contains("<!channel>"));
            let payload = message["metadata"]["event_payload"].as_object().unwrap();
            assert!(payload.values().all(Value::is_string), "{payload:?}");
            assert_eq!(payload["member_2_null"], "true");
            // An empty member's label cannot go in Slack's own chart: the picture instead.
            assert!(!texts(message).contains("data_visualization"));
        }
    }

    #[test]
    fn a_ratios_parts_are_written_as_fractions_and_rounding_is_no_change() {
        let ratio = |after: (f64, f64)| {
            decompose_ratio(&[
                RatioMember {
                    member: Some("a".into()),
                    before: Some((6.0, 10.0)),
                    after: Some(after),
                },
                RatioMember {
                    member: Some("b".into()),
                    before: Some((2.0, 10.0)),
                    after: Some((2.0, 10.0)),
                },
            ])
            .unwrap()
        };
        let moved = render(&explanation(ratio((7.0, 10.0)), Split::Ratio), Locale::En);
        let text = texts(&moved.message);
        assert!(text.contains("+0.05"), "{text}");
        assert!(text.contains("rate +0.05"), "{text}");
        // 0.1 + 0.2 style noise is not a change to explain.
        let mut still = ratio((6.0, 10.0));
        still.after += 1e-17;
        still.change = still.after - still.before;
        let rendered = render(&explanation(still, Split::Ratio), Locale::En);
        assert!(
            texts(&rendered.message).contains("Nothing changed"),
            "{}",
            rendered.message
        );
    }
}
