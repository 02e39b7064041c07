//! The `/kpi` grammar, shared by Slack and `kpibot ask`: words in, a [`Request`] out, or a
//! reply that says what was not understood. Never panics, whatever the input.
//!
//! ```text
//! help | list [tag] | describe <name> | history <report> | alerts
//! follow <question> [daily|weekdays|weekly <day>|monthly <day>] [at HH:MM] [in #channel]
//! following | unfollow <n|question>                          (フォロー, フォロー一覧, フォロー解除)
//! why <metric> [period] [vs <comparison>] [by <dim>] [where …]   (なぜ …)
//! <report> [period]
//! <metric> [period] [daily|weekly|monthly] [by <dim>] [where <dim>=<v>[,<v>…] [and …]] [private]
//! ```

pub use super::follow_words::FollowRequest;
use crate::i18n::Message;
use crate::spec::period::period_word;
use crate::spec::{Compare, Period};

pub use crate::spec::metric_sql::{Filter, Grain};

/// Longest command text accepted, in characters (Slack's own limit is about 4,000).
pub const MAX_COMMAND_CHARS: usize = 1000;

/// A question about one report or metric, not yet checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub name: String,
    pub period: Option<Period>,
    pub grain: Option<Grain>,
    pub by: Option<String>,
    pub filters: Vec<Filter>,
    /// The window the headline is compared with, when asked (`compare previous_year`,
    /// `前年同月比`); else the entry's own.
    pub compare: Option<Compare>,
    pub private: bool,
    /// Asked why it changed (`why …`, `なぜ …`): explained member by member, not charted.
    pub why: bool,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Help,
    List {
        tag: Option<String>,
    },
    Describe {
        name: String,
    },
    /// A report's last runs.
    History {
        name: String,
    },
    /// The alerts firing now.
    Alerts,
    /// Follow a question: a digest at a time of the asker's choosing.
    Follow(FollowRequest),
    /// What the asker follows.
    Following,
    /// Stop following: a number from `following`, or the question.
    Unfollow {
        which: String,
    },
    Query(Query),
}

/// Why a command could not be understood, in words for the person who typed it (in
/// their language, once it is known).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GrammarError(pub Message);

impl GrammarError {
    pub(crate) fn new(key: &'static str) -> Self {
        Self(Message::new(key))
    }

    pub(crate) fn with(self, name: &'static str, value: impl ToString) -> Self {
        Self(self.0.with(name, value))
    }
}

/// `７` → `7`, `＝` → `=`, `，`/`、` → `,`, ideographic space → space, smart quotes → `"`.
pub(crate) fn normalize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '＝' => '=',
            '，' | '、' => ',',
            '\u{3000}' => ' ',
            '“' | '”' | '「' | '」' => '"',
            c => c,
        })
        .collect()
}

/// Splits into words; `"…"` keeps spaces inside one word; `=` and `,` stand alone.
pub(crate) fn words(text: &str) -> Result<Vec<String>, GrammarError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                if quoted {
                    out.push(std::mem::take(&mut current));
                }
                quoted = !quoted;
            }
            c if quoted => current.push(c),
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            '=' | ',' => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                out.push(c.to_string());
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(GrammarError::new("grammar-unclosed-quote"));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// The longest run of words at the start of `rest` that is a period, and its length.
fn period_prefix(rest: &[String]) -> Option<(Period, usize)> {
    // Japanese words (`先月`, `過去7日`) and the one-word English ones.
    if let Some(p) = rest.first().and_then(|w| period_word(w)) {
        return Some((p, 1));
    }
    (1..=rest.len().min(4)).rev().find_map(|n| {
        let text = rest[..n].join(" ");
        text.parse::<Period>().ok().map(|p| (p, n))
    })
}

const KEYWORDS: [&str; 9] = [
    "daily", "weekly", "monthly", "by", "where", "private", "and", "compare", "vs",
];

/// Parses command text (what follows `/kpi`).
pub fn parse(text: &str) -> Result<Request, GrammarError> {
    if text.chars().count() > MAX_COMMAND_CHARS {
        return Err(GrammarError(
            Message::new("grammar-too-long").with_number("max", MAX_COMMAND_CHARS as f64),
        ));
    }
    let words = words(&normalize(text))?;
    let Some(first) = words.first() else {
        return Ok(Request::Help);
    };
    let lower = first.to_lowercase();
    match lower.as_str() {
        "help" | "ヘルプ" | "?" => return Ok(Request::Help),
        "list" | "一覧" => {
            return match words.len() {
                1 => Ok(Request::List { tag: None }),
                2 => Ok(Request::List {
                    tag: Some(words[1].clone()),
                }),
                _ => Err(GrammarError::new("grammar-list-usage")),
            };
        }
        "describe" | "説明" => {
            return match words.get(1) {
                Some(name) if words.len() == 2 => Ok(Request::Describe { name: name.clone() }),
                _ => Err(GrammarError::new("grammar-describe-usage")),
            };
        }
        "alerts" | "アラート" => {
            return match words.len() {
                1 => Ok(Request::Alerts),
                _ => Err(GrammarError::new("grammar-alerts-usage")),
            };
        }
        "follow" | "フォロー" => {
            return super::follow_words::parse_follow(&words[1..])
                .map(Request::Follow)
                .map_err(GrammarError::new);
        }
        "following" | "フォロー一覧" | "フォロー中" => {
            return match words.len() {
                1 => Ok(Request::Following),
                _ => Err(GrammarError::new("grammar-following-usage")),
            };
        }
        "unfollow" | "フォロー解除" => {
            return match words.len() {
                1 => Err(GrammarError::new("grammar-unfollow-usage")),
                // As typed after the verb, quotes kept: a question copied from `following`
                // reads as the one followed (`where plan="free trial"`).
                _ => Ok(Request::Unfollow {
                    which: normalize(text)
                        .trim()
                        .split_once(char::is_whitespace)
                        .map_or_else(String::new, |(_, rest)| rest.trim().to_string()),
                }),
            };
        }
        "history" | "履歴" => {
            return match words.get(1) {
                Some(name) if words.len() == 2 => Ok(Request::History { name: name.clone() }),
                _ => Err(GrammarError::new("grammar-history-usage")),
            };
        }
        _ => {}
    }
    let mut query = Query {
        name: first.clone(),
        ..Query::default()
    };
    let mut i = 1;
    while i < words.len() {
        let word = words[i].to_lowercase();
        match word.as_str() {
            "daily" | "日次" | "日別" => set_grain(&mut query, Grain::Day)?,
            "weekly" | "週次" | "週別" => set_grain(&mut query, Grain::Week)?,
            "monthly" | "月次" | "月別" => set_grain(&mut query, Grain::Month)?,
            "private" | "非公開" => query.private = true,
            "by" | "別" => {
                let dim = words
                    .get(i + 1)
                    .filter(|w| !is_keyword(w))
                    .ok_or_else(|| GrammarError::new("grammar-by-needs-dimension"))?;
                if query.by.replace(dim.clone()).is_some() {
                    return Err(GrammarError::new("grammar-one-by"));
                }
                i += 1;
            }
            "compare" | "比較" | "vs" | "対" => {
                let compare = words
                    .get(i + 1)
                    .and_then(|w| Compare::parse(&w.to_lowercase()))
                    .ok_or_else(|| GrammarError::new("grammar-compare-usage"))?;
                if query.compare.replace(compare).is_some_and(|c| c != compare) {
                    return Err(GrammarError::new("grammar-one-compare"));
                }
                i += 1;
            }
            "where" | "条件" => {
                i = parse_filters(&words, i + 1, &mut query)?;
                continue;
            }
            _ => match period_prefix(&words[i..]) {
                Some((period, used)) if query.period.is_none() => {
                    query.period = Some(period);
                    i += used;
                    continue;
                }
                Some(_) => return Err(GrammarError::new("grammar-one-period")),
                None => {
                    return Err(GrammarError::new("grammar-not-understood").with("word", &words[i]));
                }
            },
        }
        i += 1;
    }
    Ok(Request::Query(query))
}

/// Whether `text` starts with a verb that takes its own words (`follow`, `unfollow`):
/// a mistake in them is said as one, never read as a question.
pub(crate) fn starts_with_verb(text: &str) -> bool {
    let normalized = normalize(text);
    let first = normalized.split_whitespace().next().unwrap_or_default();
    matches!(
        first.to_lowercase().as_str(),
        "follow"
            | "フォロー"
            | "following"
            | "フォロー一覧"
            | "フォロー中"
            | "unfollow"
            | "フォロー解除"
    )
}

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word.to_lowercase().as_str())
}

pub(crate) fn set_grain(query: &mut Query, grain: Grain) -> Result<(), GrammarError> {
    match query.grain.replace(grain) {
        Some(previous) if previous != grain => Err(GrammarError::new("grammar-one-grain")
            .with("first", previous.name())
            .with("second", grain.name())),
        _ => Ok(()),
    }
}

/// `dim = v1 , v2 and dim2 = v3`; returns the index after the last word used.
pub(crate) fn parse_filters(
    words: &[String],
    mut i: usize,
    query: &mut Query,
) -> Result<usize, GrammarError> {
    loop {
        let dimension = words
            .get(i)
            .filter(|w| !is_keyword(w) && *w != "=" && *w != ",")
            .ok_or_else(|| GrammarError::new("grammar-filter-usage"))?;
        if words.get(i + 1).map(String::as_str) != Some("=") {
            return Err(
                GrammarError::new("grammar-filter-needs-equals").with("dimension", dimension)
            );
        }
        i += 2;
        let mut values = Vec::new();
        loop {
            let value = words
                .get(i)
                .filter(|w| *w != "=" && *w != ",")
                .ok_or_else(|| {
                    GrammarError::new("grammar-filter-needs-value").with("dimension", dimension)
                })?;
            values.push(value.clone());
            i += 1;
            if words.get(i).map(String::as_str) == Some(",") {
                i += 1;
            } else {
                break;
            }
        }
        query.filters.push(Filter {
            dimension: dimension.clone(),
            values,
        });
        if words.get(i).is_some_and(|w| w.eq_ignore_ascii_case("and")) {
            i += 1;
        } else {
            return Ok(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Locale;
    use crate::spec::period::Unit;

    fn query(text: &str) -> Query {
        match parse(text).unwrap() {
            Request::Query(q) => q,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn help_list_describe_and_empty() {
        assert_eq!(parse("").unwrap(), Request::Help);
        assert_eq!(parse("   ").unwrap(), Request::Help);
        assert_eq!(parse("help").unwrap(), Request::Help);
        assert_eq!(parse("list").unwrap(), Request::List { tag: None });
        assert_eq!(
            parse("list engagement").unwrap(),
            Request::List {
                tag: Some("engagement".into())
            }
        );
        assert_eq!(
            parse("describe active_users").unwrap(),
            Request::Describe {
                name: "active_users".into()
            }
        );
        assert!(parse("describe").is_err());
    }

    #[test]
    fn the_full_metric_form() {
        let q = query(
            "active_users last 30 days weekly by role where school=\"Sakura High\",Kita and role=student private",
        );
        assert_eq!(q.name, "active_users");
        assert_eq!(q.period, Some(Period::Last(30, Unit::Day)));
        assert_eq!(q.grain, Some(Grain::Week));
        assert_eq!(q.by.as_deref(), Some("role"));
        assert_eq!(
            q.filters,
            vec![
                Filter {
                    dimension: "school".into(),
                    values: vec!["Sakura High".into(), "Kita".into()]
                },
                Filter {
                    dimension: "role".into(),
                    values: vec!["student".into()]
                },
            ]
        );
        assert!(q.private);
    }

    #[test]
    fn report_with_a_period_and_every_english_period_form() {
        for (text, period) in [
            ("dau yesterday", Period::Yesterday),
            ("dau this month", Period::This(Unit::Month)),
            ("dau month to date", Period::MonthToDate),
            ("dau last 2 weeks", Period::Last(2, Unit::Week)),
            ("dau last month", Period::Last(1, Unit::Month)),
        ] {
            assert_eq!(query(text).period, Some(period), "{text}");
        }
        assert!(matches!(
            query("dau 2026-01-01..2026-01-31").period,
            Some(Period::Between(..))
        ));
        assert!(matches!(
            query("dau since 2026-04-01").period,
            Some(Period::Since(_))
        ));
    }

    #[test]
    fn japanese_periods_and_full_width_digits() {
        for (text, period) in [
            ("dau 昨日", Period::Yesterday),
            ("dau 今日", Period::Today),
            ("dau 今週", Period::This(Unit::Week)),
            ("dau 先週", Period::Last(1, Unit::Week)),
            ("dau 今月", Period::This(Unit::Month)),
            ("dau 先月", Period::Last(1, Unit::Month)),
            ("dau 過去7日", Period::Last(7, Unit::Day)),
            ("dau 過去７日", Period::Last(7, Unit::Day)),
            ("dau 過去3ヶ月", Period::Last(3, Unit::Month)),
            ("dau 過去2週間", Period::Last(2, Unit::Week)),
            ("dau 過去3月", Period::Last(3, Unit::Month)),
            ("dau 本日", Period::Today),
            ("dau 直近4週間", Period::Last(4, Unit::Week)),
        ] {
            assert_eq!(query(text).period, Some(period), "{text}");
        }
        let q = query("dau 先月 月次 by role　where role＝student、teacher");
        assert_eq!(q.grain, Some(Grain::Month));
        assert_eq!(q.filters[0].values, vec!["student", "teacher"]);
    }

    #[test]
    fn injection_attempts_stay_values_or_unknown_names() {
        let q = query("active_users where school=\"' OR 1=1 --\"");
        assert_eq!(q.filters[0].values, vec!["' OR 1=1 --"]);
        // Unquoted, `=` splits the words: still only values and a name to be checked.
        let q = query("active_users by role;");
        assert_eq!(q.by.as_deref(), Some("role;"));
        assert!(parse("active_users by role; DROP TABLE x").is_err());
    }

    #[test]
    fn mistakes_get_a_reply_that_says_what_to_write() {
        for (text, says) in [
            ("dau last 30 dayz", "I did not understand `last`"),
            ("dau by", "`by` needs a dimension, e.g. `by role`"),
            ("dau where", "write filters as `where role=student"),
            ("dau where role", "`role` needs `=`"),
            ("dau where role=", "`role=` needs a value"),
            ("dau daily weekly", "choose one of `daily` and `weekly`"),
            ("dau yesterday today", "only one period per command"),
            ("dau by role by school", "only one `by` per command"),
            ("dau where school=\"unclosed", "a quote is not closed"),
            ("describe", "write `describe <name>`"),
            ("list a b", "write `list` or `list <tag>`"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
        // In Japanese for someone who writes Japanese.
        let error = parse("dau 過去3日 昨日").unwrap_err();
        assert_eq!(error.0.text(Locale::Ja), "期間は1つのコマンドに1つだけです");
    }

    #[test]
    fn arbitrary_input_never_panics_and_always_answers() {
        let alphabet: Vec<char> =
            "ab =,\"“”'; 0１過去日月週昨今先-.by where and daily private last 7 days\u{3000}\n\t🙂"
                .chars()
                .collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            match parse(&text) {
                Ok(_) => {}
                Err(e) => assert!(!e.to_string().is_empty(), "{text:?}"),
            }
        }
        assert!(parse(&"x".repeat(MAX_COMMAND_CHARS + 1)).is_err());
    }
}
