//! A Slack message drawn the way Slack shows it, as HTML for the studio: the header,
//! sections with their fields, context lines, the image or Slack's own chart and table
//! blocks drawn as such, dividers and the buttons — every word escaped, mrkdwn read as
//! Slack reads it (`*bold*`, `_italic_`, `~strike~`, `` `code` ``, `<url|text>`).

use serde_json::Value;

/// HTML-escapes `text`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Slack's escapes undone (`&lt;` → `<`), as Slack shows them.
fn unescape_slack(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// One span of mrkdwn between markers: `*…*` and the like, when the marker opens at a
/// word's start and closes at a word's end, as Slack reads them.
fn styled(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let tag = match c {
            '*' => Some("strong"),
            '_' => Some("em"),
            '~' => Some("s"),
            '`' => Some("code"),
            _ => None,
        };
        let opens = i == 0 || !chars[i - 1].is_alphanumeric();
        if let Some(tag) = tag.filter(|_| opens)
            && let Some(len) = chars[i + 1..].iter().position(|&d| d == c)
            && len > 0
        {
            let inner: String = chars[i + 1..i + 1 + len].iter().collect();
            let inner = if tag == "code" {
                escape(&inner)
            } else {
                styled(&inner)
            };
            out.push_str(&format!("<{tag}>{inner}</{tag}>"));
            i += len + 2;
            continue;
        }
        out.push_str(&escape(&c.to_string()));
        i += 1;
    }
    out
}

/// Slack mrkdwn as HTML: links and mentions, then styles; new lines kept.
pub fn mrkdwn(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&styled(&unescape_slack(&rest[..start])));
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&escape(&rest[start..]));
            rest = "";
            break;
        };
        let inside = &rest[start + 1..start + end];
        let (target, label) = inside.split_once('|').unwrap_or((inside, inside));
        let label = unescape_slack(label);
        if target.starts_with("http://") || target.starts_with("https://") {
            out.push_str(&format!(
                "<a href=\"{}\">{}</a>",
                escape(&unescape_slack(target)),
                escape(&label)
            ));
        } else {
            // A channel (`#C…`), a user (`@U…`) or a special mention: shown as Slack does.
            out.push_str(&format!(
                "<span class=\"mention\">{}</span>",
                escape(&label)
            ));
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(&styled(&unescape_slack(rest)));
    out.replace('\n', "<br>")
}

fn text_of(object: &Value) -> String {
    let text = object["text"].as_str().unwrap_or_default();
    if object["type"] == "mrkdwn" {
        mrkdwn(text)
    } else {
        escape(text).replace('\n', "<br>")
    }
}

/// Slack's own line or bar chart block, drawn as an SVG of its points with the numbers
/// beside it in a table (what a screen reader reads).
fn chart(block: &Value) -> String {
    let chart = &block["chart"];
    let series = chart["series"].as_array().cloned().unwrap_or_default();
    let values: Vec<Vec<(String, f64)>> = series
        .iter()
        .map(|s| {
            s["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p["label"].as_str().unwrap_or_default().to_string(),
                        p["value"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .collect();
    let all: Vec<f64> = values.iter().flatten().map(|(_, v)| *v).collect();
    let (low, high) = all
        .iter()
        .fold((0.0_f64, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if high > low { high - low } else { 1.0 };
    let (width, height) = (480.0, 160.0);
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {width} {height}\" class=\"native_chart\">",
        escape(block["title"].as_str().unwrap_or("chart"))
    );
    let bar = chart["type"] == "bar";
    for (k, points) in values.iter().enumerate() {
        let n = points.len().max(1) as f64;
        let colour = ["#1d6fa5", "#b3261e", "#2e7d32", "#6a1b9a"][k % 4];
        if bar {
            for (i, (_, v)) in points.iter().enumerate() {
                let x = width * i as f64 / n;
                let h = height * (v - low) / span;
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>",
                    height - h,
                    (width / n) * 0.8
                ));
            }
        } else {
            let path: Vec<String> = points
                .iter()
                .enumerate()
                .map(|(i, (_, v))| {
                    let x = if n > 1.0 {
                        width * i as f64 / (n - 1.0)
                    } else {
                        0.0
                    };
                    format!("{x:.1},{:.1}", height - height * (v - low) / span)
                })
                .collect();
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            ));
        }
    }
    svg.push_str("</svg>");
    let mut table = String::from("<details><summary>Data</summary><table class=\"data\">");
    for (s, points) in series.iter().zip(&values) {
        let name = escape(s["name"].as_str().unwrap_or_default());
        for (label, value) in points {
            table.push_str(&format!(
                "<tr><th scope=\"row\">{name} {}</th><td>{value}</td></tr>",
                escape(label)
            ));
        }
    }
    table.push_str("</table></details>");
    format!(
        "<figure class=\"block native\"><figcaption>{} <span class=\"tag\">Slack chart block</span></figcaption>{svg}{table}</figure>",
        escape(block["title"].as_str().unwrap_or_default())
    )
}

/// Slack's own table block.
fn data_table(block: &Value) -> String {
    let mut html = String::from("<table class=\"block data\">");
    for (i, row) in block["rows"].as_array().into_iter().flatten().enumerate() {
        html.push_str("<tr>");
        for cell in row.as_array().into_iter().flatten() {
            let text = cell["text"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| cell.to_string());
            let tag = if i == 0 { "th scope=\"col\"" } else { "td" };
            let close = if i == 0 { "th" } else { "td" };
            html.push_str(&format!("<{tag}>{}</{close}>", escape(&text)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

fn element(element: &Value) -> String {
    match element["type"].as_str() {
        Some("button") => format!(
            "<button type=\"button\" disabled>{}</button>",
            text_of(&element["text"])
        ),
        Some("static_select") => {
            let options: String = element["options"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| format!("<option>{}</option>", text_of(&o["text"])))
                .collect();
            let label = text_of(&element["placeholder"]);
            format!(
                "<select aria-label=\"{label}\" disabled><option>{label}</option>{options}</select>"
            )
        }
        Some("overflow") => {
            "<button type=\"button\" disabled aria-label=\"More\">⋯</button>".into()
        }
        Some("image") => format!(
            "<img src=\"\" alt=\"{}\">",
            escape(element["alt_text"].as_str().unwrap_or_default())
        ),
        _ => text_of(element),
    }
}

/// A context or actions block: its elements in a row.
fn elements(block: &Value, kind: &str) -> String {
    let parts: Vec<String> = block["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(element)
        .collect();
    format!("<div class=\"block {kind}\">{}</div>", parts.join(" "))
}

/// The message's blocks as HTML; `image_src` is where the chart's PNG is served.
pub fn message(message: &Value, image_src: &str) -> String {
    let mut html = String::from("<div class=\"slack_message\">");
    html.push_str("<div class=\"bot_name\">kpibot <span class=\"tag\">APP</span></div>");
    let blocks = message["blocks"].as_array().cloned().unwrap_or_default();
    if blocks.is_empty() {
        html.push_str(&format!(
            "<p>{}</p>",
            mrkdwn(message["text"].as_str().unwrap_or_default())
        ));
    }
    for block in &blocks {
        html.push_str(&match block["type"].as_str() {
            Some("header") => format!(
                "<h3 class=\"block header\">{}</h3>",
                text_of(&block["text"])
            ),
            Some("section") => {
                let mut section = String::from("<div class=\"block section\">");
                if block.get("text").is_some() {
                    section.push_str(&format!("<p>{}</p>", text_of(&block["text"])));
                }
                let fields: String = block["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| format!("<div class=\"field\">{}</div>", text_of(f)))
                    .collect();
                if !fields.is_empty() {
                    section.push_str(&format!("<div class=\"fields\">{fields}</div>"));
                }
                if block.get("accessory").is_some() {
                    section.push_str(&element(&block["accessory"]));
                }
                section.push_str("</div>");
                section
            }
            Some(kind @ ("context" | "actions")) => elements(block, kind),
            Some("image") => format!(
                "<figure class=\"block image\"><img src=\"{}\" alt=\"{}\"></figure>",
                escape(image_src),
                escape(block["alt_text"].as_str().unwrap_or_default())
            ),
            Some("data_visualization") => chart(block),
            Some("data_table") => data_table(block),
            Some("divider") => "<hr class=\"block divider\">".into(),
            other => format!(
                "<div class=\"block unknown\">{}</div>",
                escape(other.unwrap_or("?"))
            ),
        });
    }
    html.push_str("</div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mrkdwn_reads_as_slack_reads_it_and_nothing_escapes() {
        assert_eq!(
            mrkdwn("*合計* _week_ `a&lt;b` <https://x.test/?a=1&amp;b=2|the run> <#C1|data-team>"),
            "<strong>合計</strong> <em>week</em> <code>a&lt;b</code> <a href=\"https://x.test/?a=1&amp;b=2\">the run</a> <span class=\"mention\">data-team</span>"
        );
        assert_eq!(mrkdwn("<script>"), "<span class=\"mention\">script</span>");
        assert_eq!(mrkdwn("a &lt;b&gt;\nc"), "a &lt;b&gt;<br>c");
        assert_eq!(mrkdwn("snake_case_name"), "snake_case_name");
    }

    #[test]
    fn every_block_kpibot_posts_is_drawn() {
        let message = json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Active <users>"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Total*\n1,234"}]},
            {"type": "image", "slack_file": {"url": "x"}, "alt_text": "Active users, last 7 days"},
            {"type": "data_visualization", "title": "DAU", "chart": {"type": "line", "series": [{"name": "value", "data": [{"label": "12/1", "value": 1}, {"label": "12/2", "value": 3}]}]}},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Refresh"}}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "source: `mart.dau`"}]},
        ]});
        let html = message_html(&message);
        for part in [
            "Active &lt;users&gt;",
            "<strong>Total</strong><br>1,234",
            "alt=\"Active users, last 7 days\"",
            "<polyline",
            "Refresh</button>",
            "<code>mart.dau</code>",
        ] {
            assert!(html.contains(part), "{part} missing from {html}");
        }
    }

    fn message_html(message: &Value) -> String {
        super::message(message, "/chart.png")
    }
}
