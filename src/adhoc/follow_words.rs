//! The words of `/kpi follow`: when (`daily`, `weekdays`, `weekly monday`, `monthly 1`,
//! `毎日`, `平日`, `毎週月曜`, `毎月1日`), at what time (`at 8:30`, `9時`, `9時30分`) and
//! where (`in #channel`), taken out of the words wherever they stand; the rest is the
//! question, read as any `/kpi` question is.

use chrono::{NaiveTime, Weekday};

use crate::spec::cadence::Cadence;

/// `/kpi follow …` as typed: the question and when it is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowRequest {
    /// The question's own words, for the phrase reader.
    pub question: String,
    pub cadence: Option<Cadence>,
    pub at: Option<NaiveTime>,
    /// `in #channel`: a channel follows, not the person.
    pub channel: Option<String>,
}

/// `monday`, `mon`, `月`, `月曜`, `月曜日` (one day: `土日` is two, and no day).
fn weekday_word(word: &str) -> Option<Weekday> {
    let lower = word.to_lowercase();
    let japanese = lower
        .strip_suffix("曜日")
        .or_else(|| lower.strip_suffix('曜'))
        .unwrap_or(&lower);
    let day = match japanese {
        "月" => Weekday::Mon,
        "火" => Weekday::Tue,
        "水" => Weekday::Wed,
        "木" => Weekday::Thu,
        "金" => Weekday::Fri,
        "土" => Weekday::Sat,
        "日" => Weekday::Sun,
        _ => return lower.parse().ok(),
    };
    Some(day)
}

/// `8:30`, `08:30`, `９：００`, `9時`, `9時30分`, `9時半`, `午後3時`, `午前9時` (and `9時に`).
fn time_word(word: &str) -> Option<NaiveTime> {
    let word = word.strip_suffix('に').unwrap_or(word).replace('：', ":");
    let (afternoon, word) = match (word.strip_prefix("午後"), word.strip_prefix("午前")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => (false, word.as_str()),
    };
    let time = clock_word(word)?;
    if !afternoon {
        return Some(time);
    }
    use chrono::Timelike;
    (time.hour() < 12).then(|| time + chrono::Duration::hours(12))
}

fn clock_word(word: &str) -> Option<NaiveTime> {
    if let Some((hour, minute)) = word.split_once(':') {
        return NaiveTime::from_hms_opt(hour.parse().ok()?, minute.parse().ok()?, 0);
    }
    let (hour, rest) = word.split_once('時')?;
    let minute = match rest {
        "" => 0,
        "半" => 30,
        minutes => minutes.strip_suffix('分')?.parse().ok()?,
    };
    NaiveTime::from_hms_opt(hour.parse().ok()?, minute, 0)
}

/// `1`, `1日`, `1st`: a day of the month.
fn month_day_word(word: &str) -> Option<u32> {
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    let rest = &word[digits.len()..];
    let day: u32 = digits.parse().ok()?;
    let suffix_ok = matches!(rest, "" | "日" | "st" | "nd" | "rd" | "th");
    (suffix_ok && (1..=31).contains(&day)).then_some(day)
}

fn is_channel_word(word: &str) -> bool {
    word.starts_with('#') || word.starts_with("<#")
}

/// Whether `words` say only at what time and where (`at 9:00 in #sales`).
fn only_when_where(words: &[String]) -> bool {
    let mut i = 0;
    while i < words.len() {
        let lower = words[i].to_lowercase();
        let next = words.get(i + 1).map(String::as_str);
        if (lower == "at" || lower == "に") && next.and_then(time_word).is_some()
            || (lower == "in" || lower == "で") && next.is_some_and(is_channel_word)
        {
            i += 2;
        } else if time_word(&words[i]).is_some() {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// A one-word Japanese cadence: `毎日`, `平日`, `毎週月曜(日)`, `毎月1日`.
fn japanese_cadence(word: &str) -> Option<Cadence> {
    match word {
        "毎日" => return Some(Cadence::Daily),
        "平日" => return Some(Cadence::Weekdays),
        _ => {}
    }
    if let Some(day) = word.strip_prefix("毎週") {
        return weekday_word(day).map(Cadence::Weekly);
    }
    word.strip_prefix("毎月")
        .and_then(month_day_word)
        .map(Cadence::Monthly)
}

/// Sets a slot once; a second, different value is the mistake `key` names.
fn set<T: PartialEq>(
    slot: &mut Option<T>,
    value: T,
    key: &'static str,
) -> Result<(), &'static str> {
    match slot.replace(value) {
        Some(previous) if Some(&previous) != slot.as_ref() => Err(key),
        _ => Ok(()),
    }
}

/// The words after `follow`; a mistake is the catalog key that words it.
pub fn parse_follow(words: &[String]) -> Result<FollowRequest, &'static str> {
    let mut cadence = None;
    let mut at = None;
    let mut channel = None;
    let mut question: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        let lower = word.to_lowercase();
        let next = words.get(i + 1).map(String::as_str);
        if let Some(found) = japanese_cadence(word) {
            set(&mut cadence, found, "grammar-follow-one-cadence")?;
        } else if lower == "weekdays" {
            set(
                &mut cadence,
                Cadence::Weekdays,
                "grammar-follow-one-cadence",
            )?;
        } else if let (Some(day), "weekly" | "every") =
            (next.and_then(weekday_word), lower.as_str())
        {
            set(
                &mut cadence,
                Cadence::Weekly(day),
                "grammar-follow-one-cadence",
            )?;
            i += 1;
        } else if let (Some(day), "monthly") = (next.and_then(month_day_word), lower.as_str()) {
            set(
                &mut cadence,
                Cadence::Monthly(day),
                "grammar-follow-one-cadence",
            )?;
            i += 1;
        } else if lower == "daily" && !question.is_empty() && only_when_where(&words[i + 1..]) {
            // Last (or followed only by the time and the channel), it says when;
            // elsewhere it is the question's grain.
            set(&mut cadence, Cadence::Daily, "grammar-follow-one-cadence")?;
        } else if let (Some(time), "at" | "に") = (next.and_then(time_word), lower.as_str()) {
            // `at` before anything but a time stays the question's (`country=AT`).
            set(&mut at, time, "grammar-follow-one-time")?;
            i += 1;
        } else if let Some(time) = time_word(word) {
            set(&mut at, time, "grammar-follow-one-time")?;
        } else if (lower == "in" || lower == "で") && next.is_some_and(is_channel_word) {
            // `in the last 30 days` stays the question's.
            channel = next.map(str::to_string);
            i += 1;
        } else {
            question.push(word);
        }
        i += 1;
    }
    if question.is_empty() {
        return Err("grammar-follow-usage");
    }
    Ok(FollowRequest {
        question: question
            .iter()
            .map(|w| quoted(w))
            .collect::<Vec<_>>()
            .join(" "),
        cadence,
        at,
        channel,
    })
}

/// A word given back to the reader as one word: quoted if it holds a space.
fn quoted(word: &str) -> String {
    if word.contains(char::is_whitespace) {
        format!("\"{word}\"")
    } else {
        word.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FollowRequest, &'static str> {
        let words: Vec<String> = text.split_whitespace().skip(1).map(String::from).collect();
        parse_follow(&words)
    }

    fn follow(text: &str) -> FollowRequest {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn english_and_japanese_schedules_are_read_wherever_they_stand() {
        let english = follow("follow active_users by role weekly monday at 8:30");
        assert_eq!(english.question, "active_users by role");
        assert_eq!(english.cadence, Some(Cadence::Weekly(Weekday::Mon)));
        assert_eq!(english.at, NaiveTime::from_hms_opt(8, 30, 0));
        let japanese = follow("フォロー 毎週月曜 9時 アクティブユーザー 先週");
        assert_eq!(japanese.question, "アクティブユーザー 先週");
        assert_eq!(japanese.cadence, Some(Cadence::Weekly(Weekday::Mon)));
        assert_eq!(japanese.at, NaiveTime::from_hms_opt(9, 0, 0));
        assert_eq!(
            follow("フォロー 売上 毎月1日 9時半").cadence,
            Some(Cadence::Monthly(1))
        );
        for sunday in ["毎週日", "毎週日曜", "毎週日曜日"] {
            assert_eq!(
                follow(&format!("フォロー 売上 {sunday}")).cadence,
                Some(Cadence::Weekly(Weekday::Sun)),
                "{sunday}"
            );
        }
        // Two days are not one: left to the question, never read as Saturday.
        assert_eq!(follow("フォロー 売上 毎週土日").cadence, None);
        assert_eq!(
            follow("follow dau weekdays").cadence,
            Some(Cadence::Weekdays)
        );
        assert_eq!(
            follow("follow signups in #sales daily").channel.as_deref(),
            Some("#sales")
        );
    }

    #[test]
    fn a_grain_is_the_questions_and_a_last_daily_is_when() {
        let grain = follow("follow active_users weekly last 90 days");
        assert_eq!(grain.question, "active_users weekly last 90 days");
        assert_eq!(grain.cadence, None);
        let when = follow("follow active_users weekly daily");
        assert_eq!(when.question, "active_users weekly");
        assert_eq!(when.cadence, Some(Cadence::Daily));
        let then = follow("follow signups daily at 9:00 in #growth");
        assert_eq!(then.question, "signups");
        assert_eq!(then.cadence, Some(Cadence::Daily));
        assert_eq!(then.channel.as_deref(), Some("#growth"));
        let words = follow("follow signups in the last 30 days");
        assert_eq!(words.question, "signups in the last 30 days");
        assert_eq!(words.channel, None);
        assert_eq!(
            follow("フォロー 売上 毎日 9時に").at,
            NaiveTime::from_hms_opt(9, 0, 0)
        );
        assert_eq!(
            follow("フォロー 売上 毎日 9：00").at,
            NaiveTime::from_hms_opt(9, 0, 0)
        );
        assert_eq!(
            follow("フォロー 売上 午後3時").at,
            NaiveTime::from_hms_opt(15, 0, 0)
        );
        // `at` before what is not a time is the question's; a value `AT` too.
        let country = follow("follow signups where country = AT");
        assert_eq!(
            (country.question.as_str(), country.at),
            ("signups where country = AT", None)
        );
        assert_eq!(follow("follow dau at noon").question, "dau at noon");
        assert_eq!(
            follow("follow dau 9:5").at,
            NaiveTime::from_hms_opt(9, 5, 0)
        );
        assert_eq!(follow("follow dau 24:00").question, "dau 24:00");
    }

    #[test]
    fn mistakes_are_named_not_guessed() {
        for text in [
            "follow",
            "follow at 9:00",
            "follow dau weekdays 毎日",
            "follow dau 9:00 10:00",
        ] {
            assert!(parse(text).is_err(), "{text} was read");
        }
    }
}
