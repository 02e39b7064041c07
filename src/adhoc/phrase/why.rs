//! Questions that ask why a number moved, the way people ask them: `why DAU last week`,
//! `why did active users drop last week?`, `なぜ先週のアクティブユーザーは減ったのか`,
//! `アクティブユーザーが減ったのはなぜ？` — the question inside read like any other, and
//! marked as a why question; or `None` when the text does not ask why.

use super::{Called, Reading};
use crate::adhoc::grammar::{GrammarError, Query};

/// Words that ask why, at the start or at the end.
const WHY_PREFIXES: [&str; 4] = ["why ", "なぜ", "なんで", "どうして"];
const WHY_SUFFIXES: [&str; 3] = [" why", "はなぜ", "なぜ"];
/// Words before the question that say nothing about the number.
const FILLERS_BEFORE: [&str; 4] = ["did ", "does ", "is ", "are "];
/// What the change did, at the end: the question is about the number, not the verb.
const FILLERS_AFTER: [&str; 20] = [
    "が減った",
    "は減った",
    "減った",
    "が増えた",
    "は増えた",
    "増えた",
    "が下がった",
    "下がった",
    "が上がった",
    "上がった",
    "が落ちた",
    "落ちた",
    "が変わった",
    "変わった",
    "が伸びた",
    "伸びた",
    " go down",
    " go up",
    " so much",
    " change",
];
/// Sentence endings around a why: `…のか`, `…の`, `…んだろう`.
const PARTICLES: [&str; 6] = ["のか", "んだろう", "のだろう", "でしょうか", "ですか", "の"];
/// English words that say what the number did, anywhere in the question (`why did DAU
/// drop last week`): left out only when the question does not read with them.
const CHANGE_WORDS: [&str; 16] = [
    "drop",
    "dropped",
    "fall",
    "fell",
    "rise",
    "rose",
    "change",
    "changed",
    "go",
    "went",
    "down",
    "up",
    "increase",
    "increased",
    "decrease",
    "decreased",
];

/// `text` without the first of `words` it starts with (ASCII case ignored).
fn strip_start<'t>(text: &'t str, words: &[&str]) -> Option<&'t str> {
    words.iter().find_map(|w| {
        text.get(..w.len())
            .filter(|h| h.eq_ignore_ascii_case(w))
            .map(|_| &text[w.len()..])
    })
}

/// `text` without the first of `words` it ends with (ASCII case ignored).
fn strip_end<'t>(text: &'t str, words: &[&str]) -> Option<&'t str> {
    words.iter().find_map(|w| {
        let at = text.len().checked_sub(w.len())?;
        text.get(at..)
            .filter(|t| t.eq_ignore_ascii_case(w))
            .map(|_| &text[..at])
    })
}

/// The question in a text that asks why (empty when nothing is left of it); `None` when
/// the text does not ask why.
pub(super) fn why_question(text: &str) -> Option<String> {
    let mut rest = text.trim();
    let mut asks = false;
    if let Some(after) = strip_start(rest, &WHY_PREFIXES) {
        asks = true;
        rest = after.trim_start();
        if let Some(after) = strip_start(rest, &FILLERS_BEFORE) {
            rest = after.trim_start();
        }
    } else if rest.eq_ignore_ascii_case("why") {
        return Some(String::new());
    }
    // Peel the end until nothing more comes off: `？`, `はなぜ`, `の`, `が減った`.
    loop {
        let before = rest;
        rest = rest
            .trim_end_matches(['?', '？', '、', ',', '。'])
            .trim_end();
        if let Some(r) = strip_end(rest, &WHY_SUFFIXES) {
            asks = true;
            rest = r;
        } else if let Some(r) = strip_end(rest, &FILLERS_AFTER) {
            rest = r;
        } else if let Some(r) = strip_end(rest, &PARTICLES) {
            rest = r;
        }
        rest = rest.trim_end();
        if rest == before {
            break;
        }
    }
    asks.then(|| {
        rest.trim()
            .trim_start_matches(['、', ','])
            .trim()
            .to_string()
    })
}

/// `question` without the English words that say what the number did; `None` when it
/// has none.
fn without_change_words(question: &str) -> Option<String> {
    let words: Vec<&str> = question.split_whitespace().collect();
    let kept: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !CHANGE_WORDS.iter().any(|c| c.eq_ignore_ascii_case(w)))
        .collect();
    (kept.len() < words.len() && !kept.is_empty()).then(|| kept.join(" "))
}

/// The why question in `text`, read by `read` and marked; `None` when `text` does not ask
/// why. A why with nothing readable after it says how to ask.
pub(super) fn read_why(text: &str, read: &dyn Fn(&str) -> Reading) -> Option<Reading> {
    let question = why_question(text)?;
    let usage = || Reading::Mistake(GrammarError::new("grammar-why-usage"));
    if question.is_empty() {
        return Some(usage());
    }
    let why = |(mut query, called): (Query, Called)| {
        query.why = true;
        (query, called)
    };
    let mut first = None;
    for candidate in std::iter::once(question.clone()).chain(without_change_words(&question)) {
        match read(&candidate) {
            Reading::Question { query, called } => {
                let (query, called) = why((query, called));
                return Some(Reading::Question { query, called });
            }
            Reading::Choose(readings) => {
                return Some(Reading::Choose(readings.into_iter().map(why).collect()));
            }
            Reading::Command(_) => return Some(usage()),
            other => {
                first.get_or_insert(other);
            }
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_inside_a_why_is_found_however_it_is_asked() {
        for (text, question) in [
            ("why active_users last 7 days", "active_users last 7 days"),
            ("Why did DAU drop last week?", "DAU drop last week"),
            ("active users last week why?", "active users last week"),
            ("なぜ active_users 過去7日", "active_users 過去7日"),
            (
                "なぜ先週のアクティブユーザーは減ったのか",
                "先週のアクティブユーザー",
            ),
            ("アクティブユーザーが減ったのはなぜ？", "アクティブユーザー"),
            (
                "先週のアクティブユーザーはなぜ減った？",
                "先週のアクティブユーザー",
            ),
            ("どうして新規登録が増えたの？", "新規登録"),
            ("why", ""),
            ("なぜ？", ""),
        ] {
            assert_eq!(why_question(text).as_deref(), Some(question), "{text}");
        }
        for text in [
            "active_users last 7 days",
            "signups 減った",
            "churn where reason=whys",
        ] {
            assert_eq!(why_question(text), None, "{text}");
        }
        assert_eq!(
            without_change_words("DAU drop last week").as_deref(),
            Some("DAU last week")
        );
        assert_eq!(without_change_words("sign ups"), None);
    }

    #[test]
    fn a_long_run_of_whys_is_read_without_recursion() {
        let text = "なぜ".repeat(2_000);
        assert_eq!(why_question(&text).as_deref(), Some(""));
    }
}
