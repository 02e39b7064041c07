//! A normalized question cut into its parts, longest match first at each place: names
//! (entries and dimensions), periods, grains, comparisons, `by`/`別`, `private`, and the
//! words and particles that carry no meaning here (`の`, `を`, `数`, `show me`). What
//! matches nothing is kept as unknown, a whole ASCII word or a run of other characters.

use super::calendar::{Calendar, period_at};
use crate::catalog::names::{NameIndex, NamedEntry};
use crate::spec::metric_sql::Grain;
use crate::spec::{Compare, Period};

/// What one part of a question is.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A name: the entries it stands for, and whether a dimension of some metric has it
    /// (which metric's is decided once the entry is known).
    Name {
        entries: Vec<NamedEntry>,
        dimension: bool,
    },
    /// A period, with every reading it has.
    Period(Vec<Period>),
    Grain(Grain),
    Compare(Compare),
    /// `by`, `per`, `別`, `ごと`.
    By,
    Private,
    /// A particle or a word that says nothing here.
    Filler,
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: Kind,
    /// The part as it is in the normalized question.
    pub text: String,
    /// Where the part starts in the normalized question, in bytes.
    pub at: usize,
}

/// Words with one meaning here, normalized. Matched whole where they are ASCII.
const KEYWORDS: &[(&str, Word)] = &[
    ("by", Word::By),
    ("per", Word::By),
    ("別", Word::By),
    ("ごと", Word::By),
    ("毎", Word::By),
    ("each", Word::By),
    ("split by", Word::By),
    ("broken down by", Word::By),
    ("日毎", Word::Grain(Grain::Day)),
    ("週毎", Word::Grain(Grain::Week)),
    ("月毎", Word::Grain(Grain::Month)),
    ("昨年同月比", Word::Compare(Compare::PreviousYear)),
    ("対前年比", Word::Compare(Compare::PreviousYear)),
    ("vs previous year", Word::Compare(Compare::PreviousYear)),
    (
        "compared to last year",
        Word::Compare(Compare::PreviousYear),
    ),
    ("対前月比", Word::Compare(Compare::PreviousMonth)),
    ("vs previous month", Word::Compare(Compare::PreviousMonth)),
    (
        "compared to last month",
        Word::Compare(Compare::PreviousMonth),
    ),
    ("daily", Word::Grain(Grain::Day)),
    ("日次", Word::Grain(Grain::Day)),
    ("日別", Word::Grain(Grain::Day)),
    ("日ごと", Word::Grain(Grain::Day)),
    ("毎日", Word::Grain(Grain::Day)),
    ("weekly", Word::Grain(Grain::Week)),
    ("週次", Word::Grain(Grain::Week)),
    ("週別", Word::Grain(Grain::Week)),
    ("週ごと", Word::Grain(Grain::Week)),
    ("毎週", Word::Grain(Grain::Week)),
    ("monthly", Word::Grain(Grain::Month)),
    ("月次", Word::Grain(Grain::Month)),
    ("月別", Word::Grain(Grain::Month)),
    ("月ごと", Word::Grain(Grain::Month)),
    ("毎月", Word::Grain(Grain::Month)),
    ("private", Word::Private),
    ("非公開", Word::Private),
    ("自分だけ", Word::Private),
    ("前年同月比", Word::Compare(Compare::PreviousYear)),
    ("前年同期比", Word::Compare(Compare::PreviousYear)),
    ("前年同週比", Word::Compare(Compare::PreviousYear)),
    ("前年比", Word::Compare(Compare::PreviousYear)),
    ("昨対", Word::Compare(Compare::PreviousYear)),
    ("year over year", Word::Compare(Compare::PreviousYear)),
    ("vs last year", Word::Compare(Compare::PreviousYear)),
    ("yoy", Word::Compare(Compare::PreviousYear)),
    ("前月比", Word::Compare(Compare::PreviousMonth)),
    ("month over month", Word::Compare(Compare::PreviousMonth)),
    ("vs last month", Word::Compare(Compare::PreviousMonth)),
    ("mom", Word::Compare(Compare::PreviousMonth)),
    ("前週比", Word::Compare(Compare::PreviousWeek)),
    ("week over week", Word::Compare(Compare::PreviousWeek)),
    ("vs last week", Word::Compare(Compare::PreviousWeek)),
    ("wow", Word::Compare(Compare::PreviousWeek)),
    ("前期比", Word::Compare(Compare::PreviousPeriod)),
    (
        "compare previous_period",
        Word::Compare(Compare::PreviousPeriod),
    ),
    (
        "compare previous_week",
        Word::Compare(Compare::PreviousWeek),
    ),
    (
        "compare previous_month",
        Word::Compare(Compare::PreviousMonth),
    ),
    (
        "compare previous_year",
        Word::Compare(Compare::PreviousYear),
    ),
    ("compare none", Word::Compare(Compare::None)),
    ("の", Word::Filler),
    ("は", Word::Filler),
    ("を", Word::Filler),
    ("が", Word::Filler),
    ("で", Word::Filler),
    ("に", Word::Filler),
    ("について", Word::Filler),
    ("教えて", Word::Filler),
    ("見せて", Word::Filler),
    ("ください", Word::Filler),
    ("下さい", Word::Filler),
    ("推移", Word::Filler),
    ("件数", Word::Filler),
    ("人数", Word::Filler),
    ("数", Word::Filler),
    ("グラフ", Word::Filler),
    ("show", Word::Filler),
    ("me", Word::Filler),
    ("the", Word::Filler),
    ("for", Word::Filler),
    ("in", Word::Filler),
    ("of", Word::Filler),
    ("during", Word::Filler),
    ("what", Word::Filler),
    ("were", Word::Filler),
    ("was", Word::Filler),
    ("how", Word::Filler),
    ("many", Word::Filler),
    ("please", Word::Filler),
    ("chart", Word::Filler),
];

#[derive(Debug, Clone, Copy)]
enum Word {
    By,
    Grain(Grain),
    Compare(Compare),
    Private,
    Filler,
}

/// Characters that only separate parts.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || ",、。・()[]{}?!「」『』:;/~〜".contains(c)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `text[at..at + len]` starts and ends on word boundaries where it is ASCII.
fn on_boundaries(text: &str, at: usize, len: usize) -> bool {
    let inner_first = text[at..].chars().next();
    let before = text[..at].chars().next_back();
    let inner_last = text[..at + len].chars().next_back();
    let after = text[at + len..].chars().next();
    let cut = |a: Option<char>, b: Option<char>| {
        a.is_some_and(is_word_char) && b.is_some_and(is_word_char)
    };
    !cut(before, inner_first) && !cut(inner_last, after)
}

/// The longest name at `at`, and its length.
fn name_at(index: &NameIndex, text: &str, at: usize) -> Option<(Kind, usize)> {
    let rest = &text[at..];
    let mut ends: Vec<usize> = rest
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take_while(|&end| end <= index.longest)
        .collect();
    ends.reverse();
    ends.into_iter().find_map(|len| {
        let key = &rest[..len];
        let entries = index.entries.get(key);
        let dimension = index.dimensions.contains(key);
        if (entries.is_none() && !dimension) || !on_boundaries(text, at, len) {
            return None;
        }
        Some((
            Kind::Name {
                entries: entries.cloned().unwrap_or_default(),
                dimension,
            },
            len,
        ))
    })
}

fn keyword_at(text: &str, at: usize) -> Option<(Kind, usize)> {
    let rest = &text[at..];
    let (word, meaning) = KEYWORDS
        .iter()
        .filter(|(w, _)| rest.starts_with(w) && on_boundaries(text, at, w.len()))
        .max_by_key(|(w, _)| w.len())?;
    let kind = match *meaning {
        Word::By => Kind::By,
        Word::Grain(grain) => Kind::Grain(grain),
        Word::Compare(compare) => Kind::Compare(compare),
        Word::Private => Kind::Private,
        Word::Filler => Kind::Filler,
    };
    Some((kind, word.len()))
}

/// Cuts `text` (normalized) into tokens.
pub fn tokens(index: &NameIndex, text: &str, calendar: &Calendar) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut at = 0;
    // Whether the last token is an unknown run that the next unknown character extends.
    let mut extending = false;
    while at < text.len() {
        let c = text[at..].chars().next().expect("at a character");
        if is_separator(c) {
            at += c.len_utf8();
            extending = false;
            continue;
        }
        let period = period_at(&text[at..], calendar)
            .filter(|f| on_boundaries(text, at, f.len))
            .map(|f| (Kind::Period(f.readings), f.len));
        // The longest wins; on a tie a name (the author's word) beats a keyword, and a
        // period beats both.
        let best = [
            (0, keyword_at(text, at)),
            (1, name_at(index, text, at)),
            (2, period),
        ]
        .into_iter()
        .filter_map(|(rank, found)| found.map(|(kind, len)| (rank, kind, len)))
        .max_by_key(|(rank, _, len)| (*len, *rank));
        if let Some((_, kind, len)) = best {
            out.push(Token {
                kind,
                text: text[at..at + len].to_string(),
                at,
            });
            at += len;
            extending = false;
            continue;
        }
        let len = if is_word_char(c) {
            text[at..]
                .char_indices()
                .find(|(_, c)| !is_word_char(*c))
                .map_or(text.len() - at, |(i, _)| i)
        } else {
            c.len_utf8()
        };
        let piece = &text[at..at + len];
        match out.last_mut() {
            Some(last) if extending && !is_word_char(c) => last.text.push_str(piece),
            _ => out.push(Token {
                kind: Kind::Unknown,
                text: piece.to_string(),
                at,
            }),
        }
        extending = !is_word_char(c);
        at += len;
    }
    out
}
