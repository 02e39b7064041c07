//! Answers to one person: a slash command's `response_url`, a chart only they can see
//! (`chat.postEphemeral`), the user groups they belong to (for allow-lists) and the
//! language they read Slack in.

use std::time::Duration;

use serde_json::{Value, json};
use slack_morphism::prelude::*;
use tokio::time::Instant;

use super::{
    Slack, SlackError, USER_LOCALE_CACHE_SECONDS, USER_LOCALE_CACHE_USERS,
    USER_LOCALE_RETRY_SECONDS, USERGROUPS_CACHE_SECONDS, UserGroups, failure_error,
    message_request,
};

/// What kpibot knows of a user's language without asking Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocaleLookup {
    /// Slack said, recently.
    Known(Locale),
    /// Slack could not say, or is being asked right now: guess, and do not ask again yet.
    Unknown,
    /// Never asked, or long ago.
    NotAsked,
}
use crate::i18n::Locale;

/// The ids of the groups `user` is a member of.
fn groups_of(groups: &[(String, Vec<String>)], user: &str) -> Vec<String> {
    groups
        .iter()
        .filter(|(_, members)| members.iter().any(|m| m == user))
        .map(|(id, _)| id.clone())
        .collect()
}

impl Slack {
    /// Answers a slash command through its `response_url` (text, visible to the asker only).
    pub async fn respond(
        &self,
        response_url: &str,
        text: &str,
        blocks: Option<&Value>,
    ) -> Result<(), SlackError> {
        let url: url::Url = response_url
            .parse()
            .map_err(|e| SlackError::Setup(format!("Slack sent an unusable response_url: {e}")))?;
        let mut content = SlackMessageContent::new().with_text(text.to_string());
        if let Some(blocks) = blocks {
            let blocks: Vec<SlackBlock> = serde_json::from_value(blocks.clone()).map_err(|e| {
                SlackError::Setup(format!("a reply's blocks are not Block Kit: {e}"))
            })?;
            content = content.with_blocks(blocks);
        }
        let request = SlackApiPostWebhookMessageRequest::new(content);
        self.idempotent("response_url", "", self.deadline(), || {
            self.client.post_webhook_message(&url, &request)
        })
        .await
        .map(|_| ())
    }

    /// Posts a message (its blocks already pointing at an uploaded file) that only `user`
    /// sees in `channel`. Metadata is dropped: an ephemeral message is no one's record.
    pub async fn post_ephemeral(
        &self,
        mut message: Value,
        channel: &str,
        user: &str,
        deadline: Instant,
    ) -> Result<(), SlackError> {
        if let Some(m) = message.as_object_mut() {
            m.remove("metadata");
        }
        message["channel"] = json!(channel);
        message["user"] = json!(user);
        let request: SlackApiChatPostEphemeralRequest =
            message_request(message, "chat.postEphemeral", channel)?;
        let session = self.session();
        // An ephemeral message shown twice is a nuisance, not a wrong number: plain retries.
        self.idempotent("chat.postEphemeral", channel, deadline, || {
            session.chat_post_ephemeral(&request)
        })
        .await
        .map(|_| ())
    }

    /// The user groups `user` belongs to (for `allowed_usergroups`); the membership list
    /// is read once per `USERGROUPS_CACHE_SECONDS`.
    pub async fn usergroups_of(&self, user: &str) -> Result<Vec<String>, SlackError> {
        let mut cache = self.usergroups.lock().await;
        let fresh = cache.as_ref().is_some_and(|(read_at, _)| {
            read_at.elapsed() < Duration::from_secs(USERGROUPS_CACHE_SECONDS)
        });
        if !fresh {
            *cache = Some((Instant::now(), self.read_usergroups().await?));
        }
        let groups = cache
            .as_ref()
            .map(|(_, g)| g.as_slice())
            .unwrap_or_default();
        Ok(groups_of(groups, user))
    }

    /// The user's groups if the membership list is cached and fresh, without waiting: for
    /// the acknowledgement, which must answer within Slack's three seconds.
    pub fn cached_usergroups_of(&self, user: &str) -> Option<Vec<String>> {
        let cache = self.usergroups.try_lock().ok()?;
        let (read_at, groups) = cache.as_ref()?;
        (read_at.elapsed() < Duration::from_secs(USERGROUPS_CACHE_SECONDS))
            .then(|| groups_of(groups, user))
    }

    /// What kpibot knows of a user's language without waiting on Slack: for the
    /// acknowledgement, which must answer within Slack's three seconds.
    pub fn cached_locale_of(&self, user: &str) -> LocaleLookup {
        let Ok(cache) = self.user_locales.lock() else {
            return LocaleLookup::NotAsked;
        };
        match cache.get(user) {
            Some((until, known)) if Instant::now() < *until => match known {
                Some(locale) => LocaleLookup::Known(*locale),
                None => LocaleLookup::Unknown,
            },
            _ => LocaleLookup::NotAsked,
        }
    }

    fn remember_locale(&self, user: &str, locale: Option<Locale>, for_seconds: u64) {
        if let Ok(mut cache) = self.user_locales.lock() {
            if cache.len() >= USER_LOCALE_CACHE_USERS {
                cache.clear();
            }
            let until = Instant::now() + Duration::from_secs(for_seconds);
            cache.insert(user.to_string(), (until, locale));
        }
    }

    /// The user's language from their Slack settings (`users.info` with `include_locale`,
    /// scope `users:read`), cached for `USER_LOCALE_CACHE_SECONDS`. One attempt, never
    /// retried: a question's answer does not wait on it. When Slack cannot say (the scope
    /// is missing, Slack is down) the caller's `guess` is used and Slack is not asked about
    /// this user again for `USER_LOCALE_RETRY_SECONDS` — nor while a lookup is under way —
    /// so a missing scope or an outage costs one call per person, not one per question.
    pub async fn locale_of(&self, user: &str, guess: Locale) -> Result<Locale, SlackError> {
        match self.cached_locale_of(user) {
            LocaleLookup::Known(locale) => return Ok(locale),
            LocaleLookup::Unknown => return Ok(guess),
            LocaleLookup::NotAsked => {}
        }
        // Unknown until Slack answers: concurrent questions from this person guess.
        self.remember_locale(user, None, USER_LOCALE_RETRY_SECONDS);
        Ok(self.user_info(user).await?.locale.map_or(guess, |tag| {
            let locale = Locale::from_slack(&tag.0);
            self.remember_locale(user, Some(locale), USER_LOCALE_CACHE_SECONDS);
            locale
        }))
    }

    /// `users.info` with the user's locale; one attempt, never retried.
    async fn user_info(&self, user: &str) -> Result<SlackUser, SlackError> {
        let session = self.session();
        let request = SlackApiUsersInfoRequest {
            user: SlackUserId(user.to_string()),
            include_locale: Some(true),
        };
        let info = self
            .attempt("users.info", session.users_info(&request))
            .await
            .map_err(|failure| failure_error(failure, 1, ""))?;
        Ok(info.user)
    }

    /// The user's timezone from their Slack profile (`users.info`, scope `users:read`):
    /// the IANA name Slack gives (`Asia/Tokyo`), or `None` when it gives none. One attempt.
    pub async fn timezone_of(&self, user: &str) -> Result<Option<String>, SlackError> {
        let info = self.user_info(user).await?;
        if let Some(tag) = &info.locale {
            self.remember_locale(
                user,
                Some(Locale::from_slack(&tag.0)),
                USER_LOCALE_CACHE_SECONDS,
            );
        }
        Ok(info.tz)
    }

    async fn read_usergroups(&self) -> Result<UserGroups, SlackError> {
        let deadline = self.deadline();
        let session = self.session();
        let request = SlackApiUserGroupsListRequest {
            include_count: None,
            include_disabled: Some(false),
            include_users: Some(true),
            team_id: None,
        };
        let groups = self
            .idempotent("usergroups.list", "", deadline, || {
                session.usergroups_list(&request)
            })
            .await?;
        Ok(groups
            .usergroups
            .into_iter()
            .map(|g| {
                let members = g.users.unwrap_or_default().into_iter().map(|u| u.0);
                (g.id.0, members.collect())
            })
            .collect())
    }
}
