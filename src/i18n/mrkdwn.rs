//! Values in Slack mrkdwn: the catalogs' messages are mrkdwn (their `*bold*` and `` `code` ``
//! are kpibot's own), and every value put into one — from the warehouse, a spec or a
//! person — goes through [`escape`] here, so it reads as the text it is and never becomes a
//! mention, a link or formatting.
//!
//! What [`escape`] does to a value:
//! - `&`, `<`, `>` become `&amp;`, `&lt;`, `&gt;` (Slack's rule): `<!channel>`, `<!here>`,
//!   `<@U…>`, `<#C…>` and `<https://…|text>` stay text, and Slack shows the characters.
//! - Slack has no escape for formatting, so a character that could format becomes a
//!   lookalike: a backtick always (it would open or close code), `*` and `~` always (bold,
//!   strike — and never close the `*…*` a message puts a value in), `_` unless it stands
//!   between two ASCII letters or digits, where Slack never reads it as italics (so
//!   `daily_active_users` keeps its underscores; beside Japanese, where Slack's word
//!   boundaries are less clear, it becomes the lookalike).
//! - Line breaks become spaces: a value never starts a line, so never a quote (`>`) or a
//!   list.
//!
//! Messages are formatted for Slack with [`crate::tr_mrkdwn!`] or
//! [`super::Message::mrkdwn`], which escape every text variable; a piece already written
//! as mrkdwn (a catalog message formatted so, a mention kpibot builds) is passed as
//! [`Mrkdwn`] and left as it is.

use std::borrow::Cow;

use fluent_bundle::FluentValue;

/// Stands in for `*` in a value: ASTERISK OPERATOR, which Slack never reads as bold.
pub const ASTERISK_LOOKALIKE: char = '\u{2217}';
/// Stands in for `_` in a value: MODIFIER LETTER LOW MACRON, never italics.
pub const UNDERSCORE_LOOKALIKE: char = '\u{02CD}';
/// Stands in for `~` in a value: TILDE OPERATOR, never strike-through.
pub const TILDE_LOOKALIKE: char = '\u{223C}';
/// Stands in for a backtick in a value: MODIFIER LETTER GRAVE ACCENT, never code.
pub const BACKTICK_LOOKALIKE: char = '\u{02CB}';

/// Whether `c` ends a line in Slack's eyes (or any reader's).
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// A value written for Slack mrkdwn, on one line: see the module's documentation.
pub fn escape(value: &str) -> String {
    escape_chars(value, false)
}

/// Text shown verbatim in a code block (```), where Slack formats nothing: `&`, `<`, `>`
/// escaped as [`escape`] escapes them and a run of three backticks made lookalikes, the
/// lines and the rest kept — a spec's source keeps its shape but can neither mention
/// anyone nor close the block.
pub fn code_block(text: &str) -> String {
    let body = escape_chars(text.trim_end_matches(is_line_break), true);
    format!("```\n{body}\n```")
}

/// Backticks in a row that close a code block.
const FENCE_BACKTICKS: usize = 3;

fn escape_chars(value: &str, in_code_block: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    // Whether the backtick at `i` is one of a run long enough to be a fence.
    let in_fence = |i: usize| {
        let before = chars[..i].iter().rev().take_while(|c| **c == '`').count();
        let after = chars[i + 1..].iter().take_while(|c| **c == '`').count();
        before + 1 + after >= FENCE_BACKTICKS
    };
    let mut out = String::with_capacity(value.len() + value.len() / 8);
    for (i, &c) in chars.iter().enumerate() {
        let between_words = || {
            i > 0
                && chars[i - 1].is_ascii_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric())
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' if !in_code_block || in_fence(i) => out.push(BACKTICK_LOOKALIKE),
            '*' if !in_code_block => out.push(ASTERISK_LOOKALIKE),
            '~' if !in_code_block => out.push(TILDE_LOOKALIKE),
            '_' if !in_code_block && !between_words() => out.push(UNDERSCORE_LOOKALIKE),
            '\r' if in_code_block && chars.get(i + 1) == Some(&'\n') => {}
            c if is_line_break(c) => out.push(if in_code_block { '\n' } else { ' ' }),
            c => out.push(c),
        }
    }
    out
}

/// `text` (mrkdwn) cut to at most `max` characters, ending in `…` when cut, never inside
/// an entity (a cut `&amp;` would leave a bare `&`).
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    out.push('…');
    out
}

/// What a reader sees of mrkdwn kpibot wrote: entities read as their characters and the
/// lookalikes as what they stand for (for tests, and to compare a post with its value).
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .chars()
        .map(|c| match c {
            ASTERISK_LOOKALIKE => '*',
            UNDERSCORE_LOOKALIKE => '_',
            TILDE_LOOKALIKE => '~',
            BACKTICK_LOOKALIKE => '`',
            c => c,
        })
        .collect()
}

/// Text that is already mrkdwn — a catalog message formatted with
/// [`crate::tr_mrkdwn!`] or [`super::Message::mrkdwn`], or a mention kpibot builds — passed
/// into another message as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mrkdwn(String);

impl Mrkdwn {
    /// `text` as mrkdwn kpibot wrote: its values already escaped.
    pub fn formatted(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// A value, escaped.
    pub fn value(value: &str) -> Self {
        Self(escape(value))
    }

    /// A mention of a Slack user (`U…`, `W…`) or user group (`S…`): `<@U…>`,
    /// `<!subteam^S…>`. The id is escaped, so it cannot close the mention early.
    pub fn mention(id: &str) -> Self {
        let id = id.trim_start_matches('@');
        if id.starts_with('S') {
            Self(format!("<!subteam^{}>", escape(id)))
        } else {
            Self(format!("<@{}>", escape(id)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Mrkdwn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message variable for [`crate::tr_mrkdwn!`]: text is escaped, [`Mrkdwn`] and numbers
/// are used as they are.
pub trait Variable {
    fn into_arg(self) -> FluentValue<'static>;
}

impl Variable for &str {
    fn into_arg(self) -> FluentValue<'static> {
        FluentValue::String(Cow::Owned(escape(self)))
    }
}

impl Variable for String {
    fn into_arg(self) -> FluentValue<'static> {
        self.as_str().into_arg()
    }
}

impl Variable for &String {
    fn into_arg(self) -> FluentValue<'static> {
        self.as_str().into_arg()
    }
}

impl Variable for Mrkdwn {
    fn into_arg(self) -> FluentValue<'static> {
        FluentValue::String(Cow::Owned(self.0))
    }
}

impl Variable for &Mrkdwn {
    fn into_arg(self) -> FluentValue<'static> {
        FluentValue::String(Cow::Owned(self.0.clone()))
    }
}

macro_rules! number_variables {
    ($($t:ty),*) => {$(
        impl Variable for $t {
            fn into_arg(self) -> FluentValue<'static> {
                FluentValue::from(self)
            }
        }
    )*};
}
number_variables!(u32, u64, usize, i32, i64, f64);

/// The message `key` in `locale` as Slack mrkdwn, every text variable escaped:
/// `tr_mrkdwn!(locale, "kpi-unknown", name = typed)`. Pass a piece that is already mrkdwn
/// as [`Mrkdwn`].
#[macro_export]
macro_rules! tr_mrkdwn {
    ($locale:expr, $key:expr $(, $name:ident = $value:expr)* $(,)?) => {{
        #[allow(unused_mut)]
        let mut args = $crate::i18n::Args::new();
        $( args.set(stringify!($name), $crate::i18n::mrkdwn::Variable::into_arg($value)); )*
        $crate::i18n::format($locale, $key, &args)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_and_entities_become_text() {
        assert_eq!(
            escape("<!channel> & <https://x|Dashboard> &lt;"),
            "&lt;!channel&gt; &amp; &lt;https://x|Dashboard&gt; &amp;lt;"
        );
    }

    #[test]
    fn formatting_characters_become_lookalikes_but_identifiers_keep_underscores() {
        assert_eq!(escape("daily_active_users"), "daily_active_users");
        assert_eq!(escape("_x_ *y* ~z~ `w`"), "ˍxˍ ∗y∗ ∼z∼ ˋwˋ");
        assert_eq!(escape("東京_大阪"), "東京ˍ大阪");
        assert_eq!(escape("a_"), "aˍ");
    }

    #[test]
    fn line_breaks_become_spaces_except_in_a_code_block() {
        assert_eq!(escape("a\n> b\r\n• c"), "a &gt; b  • c");
        assert_eq!(
            code_block("x = `*_y_*`\n  ^ <!here> ```\n"),
            "```\nx = `*_y_*`\n  ^ &lt;!here&gt; ˋˋˋ\n```"
        );
    }

    #[test]
    fn unescaping_gives_back_the_value() {
        let value = "<@U1> & &amp; *_~` 日本語 a_b";
        assert_eq!(unescape(&escape(value)), value);
    }

    #[test]
    fn truncating_never_splits_an_entity() {
        let text = escape("ab<cd");
        assert_eq!(text, "ab&lt;cd");
        assert_eq!(truncate(&text, 8), "ab&lt;cd");
        assert_eq!(truncate(&text, 7), "ab&lt;…");
        assert_eq!(truncate(&text, 6), "ab…");
        assert_eq!(truncate(&text, 4), "ab…");
    }

    #[test]
    fn mentions_cannot_be_closed_early() {
        assert_eq!(Mrkdwn::mention("@U0ALICE01").as_str(), "<@U0ALICE01>");
        assert_eq!(
            Mrkdwn::mention("S0ONCALL01").as_str(),
            "<!subteam^S0ONCALL01>"
        );
        assert_eq!(
            Mrkdwn::mention("U1> <!channel").as_str(),
            "<@U1&gt; &lt;!channel>"
        );
    }

    #[test]
    fn the_macro_escapes_text_and_keeps_mrkdwn_and_numbers() {
        let text = crate::tr_mrkdwn!(
            crate::i18n::Locale::En,
            "kpi-unknown-hint",
            name = "<!here>",
            suggestion = Mrkdwn::formatted("*dau*")
        );
        assert!(text.contains("`&lt;!here&gt;`"), "{text}");
        assert!(text.contains("`*dau*`"), "{text}");
        let count = crate::tr_mrkdwn!(crate::i18n::Locale::En, "kpi-too-many", count = 3usize);
        assert!(count.contains("3 questions"), "{count}");
    }
}
