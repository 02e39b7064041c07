//! `/kpi follow`, `following` and `unfollow`: a question the asker may ask, kept in the
//! ledger with when it is due (their own Slack timezone, or the bot's). Whether they may
//! still see it is decided again at every digest (`crate::follow`).

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::access::{Asker, Decision, decide};
use super::context::{Answer, Context};
use super::reply::Reply;
use super::resolve::FollowAsked;
use crate::i18n::Locale;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::ledger::follows::Follow;
use crate::settings::FollowSettings;
use crate::spec::cadence::{Cadence, FollowSchedule};
use crate::{tr, tr_mrkdwn};

/// Follows `/kpi following` lists, one block each within Slack's 50 in a message.
pub const FOLLOWING_LINES_MAX: usize = 45;

/// `HH:MM` as the settings and the ledger write a time of day.
pub fn parse_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()
}

/// A follow's schedule as the ledger keeps it; `None` for a row this version cannot read.
pub fn schedule_of(follow: &Follow) -> Option<FollowSchedule> {
    Some(FollowSchedule {
        cadence: Cadence::parse(&follow.cadence)?,
        at: NaiveTime::from_hms_opt(follow.at_minute / 60, follow.at_minute % 60, 0)?,
        timezone: follow.timezone.parse().ok()?,
    })
}

/// `every Monday at 08:30 (Asia/Tokyo)`, `毎週月曜 08:30（Asia/Tokyo）`.
pub fn when_words(schedule: &FollowSchedule, locale: Locale) -> String {
    let cadence = match schedule.cadence {
        Cadence::Daily => tr!(locale, "cadence-daily"),
        Cadence::Weekdays => tr!(locale, "cadence-weekdays"),
        Cadence::Weekly(day) => tr!(
            locale,
            "cadence-weekly",
            day = crate::i18n::weekday(locale, day)
        ),
        Cadence::Monthly(day) => tr!(locale, "cadence-monthly", day = day),
    };
    tr!(
        locale,
        "follow-when",
        cadence = cadence,
        time = schedule.at.format("%H:%M").to_string(),
        timezone = schedule.timezone.name()
    )
}

/// An instant on the schedule's wall clock, as a reader of `locale` writes it.
pub fn slot_words(slot: DateTime<Utc>, timezone: Tz) -> String {
    slot.with_timezone(&timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn text(reply: String) -> Answer {
    Answer::Text(Reply::Follows(vec![(reply, None)]))
}

/// The channel an `in …` names: `<#C123|name>` as Slack escapes it, or `#name`.
fn names_channel(written: &str, asker: &Asker) -> bool {
    match written.strip_prefix("<#") {
        Some(escaped) => {
            let id = escaped
                .trim_end_matches('>')
                .split('|')
                .next()
                .unwrap_or_default();
            id == asker.channel_id
        }
        None => written.trim_start_matches('#') == asker.channel_name,
    }
}

/// Follows `asked` for the asker (or, `in #channel`, for the channel it was typed in),
/// after deciding they may see it as `/kpi` would.
pub async fn follow(context: &Context<'_>, asked: FollowAsked, asker: &Asker) -> Answer {
    let locale = context.locale;
    let (Some(settings), Some(ledger)) = (context.follows, context.ledger) else {
        return text(tr_mrkdwn!(locale, "follow-needs-bot"));
    };
    let for_channel = asked.request.channel.is_some();
    if let Some(written) = &asked.request.channel
        && (!names_channel(written, asker) || asker.channel_id.starts_with('D'))
    {
        return text(tr_mrkdwn!(
            locale,
            "follow-channel-here",
            channel = written.as_str()
        ));
    }
    // The same rule as the digest will apply (which adds what the warehouse proves the
    // query reads, decided again at every digest).
    match decide(
        &asked.gates,
        asker,
        context.policy,
        asked.private,
        &asked.owner,
    ) {
        Decision::Refused { owner } => {
            return text(tr_mrkdwn!(
                locale,
                "follow-refused",
                name = asked.name.as_str(),
                owner = owner.as_str()
            ));
        }
        Decision::Private { .. } if for_channel => {
            return text(tr_mrkdwn!(
                locale,
                "follow-channel-refused",
                name = asked.name.as_str(),
                owner = asked.owner.as_str()
            ));
        }
        Decision::Private { .. } | Decision::Channel => {}
    }
    let target = if for_channel {
        asker.channel_id.clone()
    } else {
        asker.user_id.clone()
    };
    let failed = |error: &dyn std::fmt::Display| {
        tracing::error!(error = %error, "could not record a follow");
        text(tr_mrkdwn!(
            locale,
            "follow-failed",
            error = error.to_string().as_str()
        ))
    };
    let (existing, all) = match (
        ledger.follows(Some(&target)).await,
        ledger.count_follows().await,
    ) {
        (Ok(existing), Ok(all)) => (existing, all),
        (Err(error), _) | (_, Err(error)) => return failed(&error),
    };
    let again = existing.iter().any(|f| f.question == asked.question);
    let max = if for_channel {
        settings.max_per_channel
    } else {
        settings.max_per_person
    };
    if !again && existing.len() >= max as usize {
        let key = if for_channel {
            "follow-too-many-channel"
        } else {
            "follow-too-many"
        };
        return text(tr_mrkdwn!(locale, key, max = max));
    }
    if !again && all >= u64::from(settings.max_total) {
        return text(tr_mrkdwn!(
            locale,
            "follow-too-many-total",
            max = settings.max_total
        ));
    }
    let timezone = if for_channel {
        context.timezone
    } else {
        person_timezone(context, &asker.user_id).await
    };
    let schedule = FollowSchedule {
        cadence: asked.request.cadence.unwrap_or(Cadence::Daily),
        at: asked
            .request
            .at
            .or_else(|| parse_time(&settings.default_time))
            .unwrap_or(NaiveTime::MIN),
        timezone,
    };
    let follow = Follow {
        target,
        question: asked.question.clone(),
        person: asker.user_id.clone(),
        cadence: schedule.cadence.text(),
        at_minute: minutes_of(schedule.at),
        timezone: timezone.name().to_string(),
        locale: Some(locale.name().to_string()),
        created_at: context.now,
        paused: None,
        place: for_channel.then(|| asker.channel_name.clone()),
    };
    if let Err(error) = ledger.add_follow(&follow).await {
        return failed(&error);
    }
    let number = match ledger.follows_by(&asker.user_id).await {
        Ok(mine) => mine
            .iter()
            .position(|f| f.target == follow.target && f.question == follow.question)
            .map_or(0, |i| i + 1),
        Err(_) => 0,
    };
    tracing::info!(person = %asker.user_id, target = %follow.target, question = %follow.question, cadence = %follow.cadence, "followed");
    let next = schedule
        .next_slot(context.now)
        .map(|slot| slot_words(slot, timezone))
        .unwrap_or_default();
    let key = if for_channel {
        "follow-done-channel"
    } else {
        "follow-done"
    };
    let line = tr_mrkdwn!(
        locale,
        key,
        question = asked.question.as_str(),
        when = when_words(&schedule, locale).as_str(),
        next = next.as_str(),
        number = number
    );
    Answer::Text(Reply::Follows(vec![(
        line,
        Some((follow.target.clone(), follow.question.clone())),
    )]))
}

fn minutes_of(time: NaiveTime) -> u32 {
    use chrono::Timelike;
    time.hour() * 60 + time.minute()
}

/// The person's timezone in Slack (`users.info` `tz`), else the bot's.
async fn person_timezone(context: &Context<'_>, user: &str) -> Tz {
    let Some(slack) = context.slack else {
        return context.timezone;
    };
    match slack.timezone_of(user).await {
        Ok(Some(name)) => name.parse().unwrap_or(context.timezone),
        Ok(None) => context.timezone,
        Err(error) => {
            tracing::warn!(error = %error, "could not read the person's timezone (users.info, scope users:read); using the bot's");
            context.timezone
        }
    }
}

/// `/kpi following`: what the asker follows (and the channel follows they made),
/// numbered as `unfollow` takes them.
pub async fn following(context: &Context<'_>, asker: &Asker) -> Answer {
    let locale = context.locale;
    let Some(ledger) = context.ledger else {
        return text(tr_mrkdwn!(locale, "follow-needs-bot"));
    };
    let mine = match ledger.follows_by(&asker.user_id).await {
        Ok(mine) => mine,
        Err(error) => {
            return text(tr_mrkdwn!(
                locale,
                "follow-failed",
                error = error.to_string().as_str()
            ));
        }
    };
    if mine.is_empty() {
        return text(tr_mrkdwn!(locale, "following-none"));
    }
    let mut lines = vec![(tr_mrkdwn!(locale, "following-heading"), None)];
    for (i, follow) in mine.iter().enumerate().take(FOLLOWING_LINES_MAX) {
        lines.push((
            following_line(i + 1, follow, context.now, locale),
            Some((follow.target.clone(), follow.question.clone())),
        ));
    }
    if mine.len() > FOLLOWING_LINES_MAX {
        lines.push((
            tr_mrkdwn!(
                locale,
                "home-more-follows",
                count = mine.len() - FOLLOWING_LINES_MAX
            ),
            None,
        ));
    }
    Answer::Text(Reply::Follows(lines))
}

/// One numbered line of `/kpi following` (and of the Home tab).
pub fn following_line(
    number: usize,
    follow: &Follow,
    now: DateTime<Utc>,
    locale: Locale,
) -> String {
    let schedule = schedule_of(follow);
    let when = schedule.map_or_else(|| follow.cadence.clone(), |s| when_words(&s, locale));
    let mut place = if follow.target.starts_with('C') || follow.target.starts_with('G') {
        tr_mrkdwn!(locale, "following-in", channel = follow.target.as_str())
    } else {
        String::new()
    };
    match (
        &follow.paused,
        schedule.and_then(|s| s.next_slot(now).map(|n| (n, s))),
    ) {
        (Some(reason), _) => place.push_str(&tr_mrkdwn!(
            locale,
            "following-paused",
            reason = Mrkdwn::formatted(reason.as_str())
        )),
        (None, Some((next, schedule))) => {
            place.push_str(" · ");
            place.push_str(&tr_mrkdwn!(
                locale,
                "following-next",
                next = slot_words(next, schedule.timezone).as_str()
            ));
        }
        (None, None) => {}
    }
    tr_mrkdwn!(
        locale,
        "following-line",
        number = number,
        question = follow.question.as_str(),
        when = when.as_str(),
        place = Mrkdwn::formatted(place)
    )
}

/// `/kpi unfollow <n|question>`: by its number in `following`, or by the question as
/// typed or as the strict grammar writes it.
pub async fn unfollow(
    context: &Context<'_>,
    which: &str,
    canonical: Option<String>,
    asker: &Asker,
) -> Answer {
    let locale = context.locale;
    let Some(ledger) = context.ledger else {
        return text(tr_mrkdwn!(locale, "follow-needs-bot"));
    };
    let mine = ledger.follows_by(&asker.user_id).await.unwrap_or_default();
    let chosen = match which.trim().parse::<usize>() {
        Ok(n) => n.checked_sub(1).and_then(|i| mine.get(i)),
        Err(_) => mine.iter().find(|f| {
            f.question == which.trim() || canonical.as_deref() == Some(f.question.as_str())
        }),
    };
    let Some(chosen) = chosen else {
        return text(tr_mrkdwn!(locale, "unfollow-unknown", which = which));
    };
    match ledger.remove_follow(&chosen.target, &chosen.question).await {
        Ok(_) => {
            tracing::info!(person = %asker.user_id, target = %chosen.target, question = %chosen.question, "unfollowed");
            text(tr_mrkdwn!(
                locale,
                "unfollow-done",
                question = chosen.question.as_str()
            ))
        }
        Err(error) => text(tr_mrkdwn!(
            locale,
            "follow-failed",
            error = error.to_string().as_str()
        )),
    }
}

/// The bounds a settings file may not pass: a digest's blocks must fit in one message.
pub fn check_settings(settings: &FollowSettings) -> Result<(), String> {
    let max = crate::settings::DIGEST_QUESTIONS_MAX;
    if settings.max_per_person > max || settings.max_per_channel > max {
        return Err(format!(
            "follows.max_per_person and follows.max_per_channel may be at most {max}: a digest shows two blocks per question and Slack allows 50 in a message"
        ));
    }
    if parse_time(&settings.default_time).is_none() {
        return Err(format!(
            "follows.default_time `{}` is not a time of day as HH:MM (24-hour), e.g. `09:00`",
            settings.default_time
        ));
    }
    Ok(())
}
