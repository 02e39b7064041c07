//! Questions the way people ask them: the names on the charts and their aliases, in any
//! word order, with Japanese particles (`先週のアクティブユーザー`, `ロール別`), months,
//! fiscal years and comparisons ([`calendar`]) — read into the same [`Query`] the strict
//! grammar makes, with how it was read ([`Called`], for the read-back line), or the
//! readings to choose from when a phrase means two things. Never a silent guess.

pub mod calendar;
mod readback;
mod tokens;
mod why;

use super::grammar::{self, GrammarError, Query, Request};
use crate::catalog::Catalog;
use crate::catalog::names::{EntryKind, NamedEntry};
use crate::spec::alias::{fold, normalize};
use crate::spec::names::dimension_of;
use crate::spec::period::Unit;
use crate::spec::{Compare, Period};
pub use calendar::Calendar;
pub use readback::{read_back, read_back_line};
use tokens::{Kind, tokens};

/// Most readings offered when a question means several things.
pub const MAX_CHOICES: usize = 5;
/// Shortest typed start of a name (in characters) that is looked up as a prefix.
pub const MIN_PREFIX_CHARS: usize = 2;

/// The names a question used, as the asker wrote them, for the read-back line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Called {
    /// The entry's name as typed (an alias, a label), when it was not its id.
    pub entry: Option<String>,
    /// The split's name as typed, when it was not the dimension's id.
    pub by: Option<String>,
}

/// What a question text was read as.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Help, lists, history and the like: as the strict grammar reads them.
    Command(Request),
    /// One question about one entry.
    Question { query: Query, called: Called },
    /// Two or more readings: the asker chooses (each a whole question).
    Choose(Vec<(Query, Called)>),
    /// What could not be read, in words for the asker.
    Mistake(GrammarError),
    /// No entry answers to this name.
    Unknown(String),
}

/// Reads `text` against the catalog: first as the strict grammar (an id, then the
/// grammar's words), else as a phrase. `sees` says whether the asker may see an entry:
/// entries they may not see are never offered as a choice.
pub fn read(
    catalog: &Catalog,
    text: &str,
    calendar: &Calendar,
    sees: &dyn Fn(EntryKind, &str) -> bool,
) -> Reading {
    let plain = read_plain(catalog, text, calendar, sees);
    // A text that reads as it is (a name that happens to hold `なぜ`, `where reason = why`)
    // is not asking why; one that does not may be.
    if matches!(
        plain,
        Reading::Question { .. } | Reading::Choose(_) | Reading::Command(_)
    ) || text.chars().count() > grammar::MAX_COMMAND_CHARS
    {
        return plain;
    }
    why::read_why(text, &|t| read_plain(catalog, t, calendar, sees)).unwrap_or(plain)
}

/// [`read`] without asking why.
fn read_plain(
    catalog: &Catalog,
    text: &str,
    calendar: &Calendar,
    sees: &dyn Fn(EntryKind, &str) -> bool,
) -> Reading {
    let strict = grammar::parse(text);
    match &strict {
        Ok(Request::Query(query)) if is_entry(catalog, &query.name) => {
            let mut query = query.clone();
            let called = Called {
                entry: None,
                by: name_dimensions(catalog, &mut query),
            };
            return Reading::Question { query, called };
        }
        Ok(Request::Query(_)) => {}
        Ok(request) => return Reading::Command(request.clone()),
        Err(error)
            if text.chars().count() > grammar::MAX_COMMAND_CHARS
                || grammar::starts_with_verb(text) =>
        {
            return Reading::Mistake(error.clone());
        }
        Err(_) => {}
    }
    match phrase(catalog, text, calendar, sees) {
        Phrase::Read(reading) => reading,
        // Nothing in it names an entry: the strict grammar's words are the clearer ones.
        Phrase::NoEntry(name) => match strict {
            Err(error) => Reading::Mistake(error),
            Ok(Request::Query(query)) => Reading::Unknown(query.name),
            Ok(_) => Reading::Unknown(name),
        },
    }
}

fn is_entry(catalog: &Catalog, name: &str) -> bool {
    catalog.metric(name).is_some() || catalog.get(name).is_some()
}

enum Phrase {
    Read(Reading),
    /// No entry named; the first word not understood, if any.
    NoEntry(String),
}

/// A question read as a phrase.
fn phrase(
    catalog: &Catalog,
    text: &str,
    calendar: &Calendar,
    sees: &dyn Fn(EntryKind, &str) -> bool,
) -> Phrase {
    let mistake = |e: GrammarError| Phrase::Read(Reading::Mistake(e));
    let words = match grammar::words(&grammar::normalize(text)) {
        Ok(words) => words,
        Err(error) => return mistake(error),
    };
    // `where` and what follows are the strict grammar's: values are values.
    let mut query = Query::default();
    let mut head = words.clone();
    if let Some(at) = words
        .iter()
        .position(|w| matches!(normalize(w).as_str(), "where" | "条件"))
    {
        match grammar::parse_filters(&words, at + 1, &mut query) {
            Ok(end) => {
                head = words[..at].to_vec();
                head.extend_from_slice(&words[end..]);
            }
            Err(error) => return mistake(error),
        }
    }
    let normalized = normalize(&head.join(" "));
    let found = tokens(catalog.name_index(), &normalized, calendar);
    // A word not understood is shown as typed (`DROP`, not `drop`) where lower case kept
    // every character's place.
    let shown = fold(&head.join(" "));
    let as_typed = |token: &tokens::Token| {
        let same_places = shown.len() == normalized.len()
            && shown
                .chars()
                .map(char::len_utf8)
                .eq(normalized.chars().map(char::len_utf8));
        shown
            .get(token.at..token.at + token.text.len())
            .filter(|_| same_places)
            .map_or_else(|| token.text.clone(), str::to_string)
    };

    // Splits: a dimension name next to `by` / `別` / `ごと`, as typed.
    let mut by: Option<String> = None;
    let mut used = vec![false; found.len()];
    for (i, token) in found.iter().enumerate() {
        if token.kind != Kind::By {
            continue;
        }
        // `by role` names what follows, `ロール別` what comes before.
        let (after, before) = (Some(i + 1), i.checked_sub(1));
        let order = if token.text.is_ascii() {
            [after, before]
        } else {
            [before, after]
        };
        let neighbour = order
            .into_iter()
            .flatten()
            .filter(|&j| j < found.len() && !used[j])
            .find(|&j| {
                matches!(
                    found[j].kind,
                    Kind::Name {
                        dimension: true,
                        ..
                    }
                ) || (matches!(found[j].kind, Kind::Unknown)
                    && !grammar::is_keyword(&found[j].text))
            });
        // A quote is never part of a name (`＂ロール` reads as `ロール`, as the command it
        // writes back says it).
        let Some(named) = neighbour
            .map(|j| found[j].text.replace('"', ""))
            .filter(|named| !named.is_empty())
        else {
            return mistake(GrammarError::new("grammar-by-needs-dimension"));
        };
        let j = neighbour.unwrap_or_default();
        if by.replace(named).is_some() {
            return mistake(GrammarError::new("grammar-one-by"));
        }
        used[i] = true;
        used[j] = true;
    }

    // A dimension's name that itself ends in `別`/`ごと` (`学校種別`) splits on its own.
    for (token, used) in found.iter().zip(used.iter_mut()) {
        if let Kind::Name {
            dimension: true,
            entries: named,
        } = &token.kind
            && !*used
            && named.is_empty()
            && (token.text.ends_with('別') || token.text.ends_with("ごと"))
        {
            if by.replace(token.text.clone()).is_some() {
                return mistake(GrammarError::new("grammar-one-by"));
            }
            *used = true;
        }
    }
    let mut entries: Option<(Vec<NamedEntry>, String)> = None;
    let mut periods: Option<Vec<Period>> = None;
    let mut unknown: Option<String> = None;
    let mut unknowns = 0;
    // A dimension named without `by`: a mistake only in a question that names an entry.
    let mut lone_dimension: Option<String> = None;
    for (token, _) in found.iter().zip(&used).filter(|(_, used)| !**used) {
        match &token.kind {
            Kind::Name { entries: named, .. } if !named.is_empty() => match &entries {
                Some((first, _))
                    if first
                        .iter()
                        .any(|e| named.iter().any(|n| n.kind == e.kind && n.id == e.id)) => {}
                Some((first, _)) => {
                    return mistake(
                        GrammarError::new("phrase-two-names")
                            .with("first", &first[0].written)
                            .with("second", &named[0].written),
                    );
                }
                None => entries = Some((named.clone(), token.text.clone())),
            },
            Kind::Name { .. } => {
                lone_dimension.get_or_insert_with(|| token.text.clone());
            }
            Kind::Period(readings) => {
                if periods.replace(readings.clone()).is_some() {
                    return mistake(GrammarError::new("grammar-one-period"));
                }
            }
            Kind::Grain(grain) => {
                if let Err(error) = grammar::set_grain(&mut query, *grain) {
                    return mistake(error);
                }
            }
            Kind::Compare(compare) => {
                if query
                    .compare
                    .replace(*compare)
                    .is_some_and(|c| c != *compare)
                {
                    return mistake(GrammarError::new("grammar-one-compare"));
                }
            }
            Kind::Private => query.private = true,
            Kind::Filler | Kind::By => {}
            Kind::Unknown => {
                unknowns += 1;
                if unknown.is_none() {
                    unknown = Some(as_typed(token));
                }
            }
        }
    }

    // No name matched whole: a typed start of names (`アクティブ`), if it is one.
    let mut by_prefix = false;
    let (candidates, typed) = match (entries, &unknown) {
        (Some(_), None) if lone_dimension.is_some() => {
            let word = lone_dimension.unwrap_or_default();
            return mistake(GrammarError::new("phrase-split-needs-by").with("word", word));
        }
        (Some((named, typed)), None) => (named, typed),
        (Some(_), Some(word)) => {
            return mistake(GrammarError::new("grammar-not-understood").with("word", word));
        }
        // A typed start stands for a name only alone: `sign ups` is not `sign…` and `ups`.
        (None, Some(word)) if unknowns > 1 => return Phrase::NoEntry(word.clone()),
        (None, Some(word)) => {
            let starting = prefix_entries(catalog, word);
            if starting.is_empty() {
                return Phrase::NoEntry(word.clone());
            }
            by_prefix = true;
            (starting, word.clone())
        }
        // Nothing but separators: the strict grammar's reply, which echoes what was typed.
        (None, None) if found.is_empty() => return Phrase::NoEntry(text.trim().to_string()),
        (None, None) => {
            return mistake(GrammarError::new("phrase-needs-name").with("text", text.trim()));
        }
    };
    // More readings than can be offered are never built (nor their access decided).
    let visible: Vec<&NamedEntry> = candidates
        .iter()
        .filter(|e| sees(e.kind, &e.id))
        .take(MAX_CHOICES)
        .collect();
    // Entries the asker may not see are no choice; if they see none, the first is asked
    // for as typed and access refuses it as it would its id.
    let chosen: Vec<&NamedEntry> = if visible.is_empty() {
        // A typed start of names they may not see names nothing they may ask for.
        if by_prefix {
            return Phrase::NoEntry(typed);
        }
        candidates.iter().take(1).collect()
    } else {
        visible
    };
    let periods = periods.unwrap_or_else(|| default_window(query.compare));
    let mut readings = Vec::new();
    for entry in &chosen {
        for period in periods
            .iter()
            .map(Some)
            .chain(periods.is_empty().then_some(None))
        {
            let mut q = query.clone();
            q.name = entry.id.clone();
            q.period = period.copied();
            q.by = by.clone();
            let called = Called {
                entry: (normalize(&entry.id) != normalize(&typed)).then(|| entry.written.clone()),
                by: name_dimensions(catalog, &mut q),
            };
            readings.push((q, called));
        }
    }
    readings.truncate(MAX_CHOICES);
    if readings.len() == 1 {
        let (query, called) = readings.remove(0);
        Phrase::Read(Reading::Question { query, called })
    } else {
        Phrase::Read(Reading::Choose(readings))
    }
}

/// The window a comparison asked without a period compares: the last whole month for
/// month and year comparisons, the last whole week for a week's.
fn default_window(compare: Option<Compare>) -> Vec<Period> {
    match compare {
        Some(Compare::PreviousMonth | Compare::PreviousYear) => vec![Period::Last(1, Unit::Month)],
        Some(Compare::PreviousWeek) => vec![Period::Last(1, Unit::Week)],
        _ => Vec::new(),
    }
}

/// The entries a typed word is the start of (at least [`MIN_PREFIX_CHARS`] long).
fn prefix_entries(catalog: &Catalog, word: &str) -> Vec<NamedEntry> {
    if word.chars().count() < MIN_PREFIX_CHARS {
        return Vec::new();
    }
    catalog
        .name_index()
        .entries_starting(&normalize(word))
        .into_iter()
        .cloned()
        .collect()
}

/// The dimension of entry `metric` that `name` names, and the name as written.
fn dimension_named(catalog: &Catalog, metric: &str, name: &str) -> Option<(String, String)> {
    let (dimension, written) = dimension_of(catalog.metric(metric)?, name)?;
    Some((dimension.to_string(), written))
}

/// The split and filters written with a dimension's label or alias (`by ロール`,
/// `where ロール=student`) name the dimension; the split's name as typed is returned when
/// it was not the dimension's id. A name no dimension of the entry answers to is kept, for
/// the metric's own "no such dimension" reply.
fn name_dimensions(catalog: &Catalog, query: &mut Query) -> Option<String> {
    for filter in &mut query.filters {
        if let Some((dimension, _)) = dimension_named(catalog, &query.name, &filter.dimension) {
            filter.dimension = dimension;
        }
    }
    let typed = query.by.as_deref()?;
    let (dimension, written) = dimension_named(catalog, &query.name, typed)?;
    let called = (dimension != typed).then_some(written);
    query.by = Some(dimension);
    called
}

/// The canonical command for a reading: what the strict grammar reads as the same
/// question (the text of a choice's button).
pub fn command(query: &Query) -> String {
    let mut out = vec![query.name.clone()];
    if query.why {
        out.insert(0, "why".to_string());
    }
    if let Some(period) = query.period {
        out.push(period.to_string());
    }
    if let Some(grain) = query.grain {
        out.push(grain.name().to_string());
    }
    if let Some(by) = &query.by {
        out.push(format!("by {}", quoted(by)));
    }
    if let Some(compare) = query.compare {
        out.push(format!("compare {}", compare.name()));
    }
    for (i, filter) in query.filters.iter().enumerate() {
        let values: Vec<String> = filter.values.iter().map(|v| quoted(v)).collect();
        out.push(format!(
            "{} {}={}",
            if i == 0 { "where" } else { "and" },
            quoted(&filter.dimension),
            values.join(",")
        ));
    }
    if query.private {
        out.push("private".into());
    }
    out.join(" ")
}

fn quoted(value: &str) -> String {
    if value
        .chars()
        .any(|c| c.is_whitespace() || "=,\"".contains(c))
        || value.is_empty()
    {
        format!("\"{}\"", value.replace('"', ""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
#[path = "phrase_tests.rs"]
mod tests;
