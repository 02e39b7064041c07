//! `kpibot follows [--person U…]`: every followed question from the ledger — who, where,
//! when next, paused or not — and how the digests ended, for operators.

use std::io::Write;

use chrono::{DateTime, Utc};

use crate::adhoc::follow::{schedule_of, slot_words, when_words};
use crate::app::App;

/// Lists the follows (of one person, with `person`) and the digests' outcomes.
pub async fn follows(
    app: &App,
    person: Option<&str>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let ledger = super::history::existing_ledger(app).await?;
    let follows = match person {
        Some(person) => ledger.follows_by(person.trim_start_matches('@')).await?,
        None => ledger.follows(None).await?,
    };
    if follows.is_empty() {
        writeln!(out, "no follows")?;
    }
    for follow in &follows {
        let schedule = schedule_of(follow);
        let when = schedule.map_or_else(
            || format!("{} (unreadable)", follow.cadence),
            |s| when_words(&s, app.locale),
        );
        let next = schedule
            .and_then(|s| Some(slot_words(s.next_slot(now)?, s.timezone)))
            .unwrap_or_default();
        let place = if follow.target == follow.person {
            "direct message".to_string()
        } else {
            format!("channel {}", follow.target)
        };
        writeln!(
            out,
            "{person}  {question}  {when}  {place}  next {next}{paused}",
            person = follow.person,
            question = follow.question,
            paused = follow
                .paused
                .as_deref()
                .map(|p| format!("  PAUSED: {p}"))
                .unwrap_or_default(),
        )?;
    }
    let counts = ledger.digest_counts().await?;
    if !counts.is_empty() {
        let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        writeln!(out, "digests: {}", counts.join(", "))?;
    }
    Ok(())
}
