//! kpibot's Slack client, on slack-morphism: the connector and its URL rule, every Web API
//! call with its failure classified and retried ([`failure`]), and what each flow asks of
//! Slack — channels by name, file uploads, posts and history pages ([`calls`]), answers to
//! a person ([`replies`]), and commands arriving over HTTP or Socket Mode ([`inbound`]).
//! Delivery's exactly-once rules live in `deliver`, not here.

pub mod calls;
pub mod failure;
pub mod inbound;
pub mod limits;
pub mod post_once;
pub mod replies;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::time::Instant;

use crate::i18n::mrkdwn::{self, Mrkdwn};
use crate::i18n::{Locale, Message};
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::settings::{Secret, Settings};
use failure::{CallFailure, FailureClass, classify, next_delay, timed_out};

/// Channels per `conversations.list` page.
pub const CHANNEL_PAGE_SIZE: u16 = 1000;
/// How long a user's language (from `users.info`) is reused before it is read again.
pub const USER_LOCALE_CACHE_SECONDS: u64 = 3600;
/// After Slack could not say a user's language, how long the guess is used before asking
/// again.
pub const USER_LOCALE_RETRY_SECONDS: u64 = 300;
/// How many users' languages are kept; past it the cache starts afresh.
pub const USER_LOCALE_CACHE_USERS: usize = 10_000;
/// How long user-group memberships are reused before `usergroups.list` is read again.
pub const USERGROUPS_CACHE_SECONDS: u64 = 600;
/// How long a method is held back after a 429 that names no Retry-After.
pub const RATE_LIMIT_HOLD_MS: u64 = 1_000;

const METRIC_API_ERRORS: &str = "kpibot_slack_api_errors_total";
const METRIC_API_ERRORS_HELP: &str = "Failed Slack API calls by method and error code";
const METRIC_RETRIES: &str = "kpibot_slack_retries_total";
const METRIC_RETRIES_HELP: &str = "Slack API calls repeated after a failure, by method";

/// How kpibot talks to Slack; built from settings, or directly by tests.
#[derive(Debug, Clone)]
pub struct SlackOptions {
    /// Base URL of the Web API, e.g. `https://slack.com/api`.
    pub api_url: String,
    pub bot_token: Secret,
    pub retry: RetryPolicy,
    /// Shortest time between two posts to one channel.
    pub channel_interval: Duration,
    /// Deliveries in flight at once, across all channels.
    pub max_concurrent_posts: usize,
    /// How many calls a minute each rate-limit tier's methods get.
    pub tier_rates: limits::TierRates,
}

impl SlackOptions {
    pub fn from_settings(settings: &Settings) -> Result<Self, SlackError> {
        let slack = &settings.slack;
        let bot_token = slack.bot_token.clone().ok_or_else(|| {
            SlackError::Setup(
                "Slack delivery needs a bot token: set KPIBOT__SLACK__BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…)".into(),
            )
        })?;
        Ok(Self {
            api_url: slack.api_url.clone(),
            bot_token,
            retry: RetryPolicy {
                request_timeout: Duration::from_secs(slack.request_timeout_seconds),
                deadline: Duration::from_secs(slack.retry_deadline_seconds),
                ..RetryPolicy::default()
            },
            channel_interval: Duration::from_millis(slack.channel_post_interval_ms),
            max_concurrent_posts: slack.max_concurrent_posts,
            tier_rates: limits::TierRates {
                tier1_per_minute: slack.tier1_per_minute,
                tier2_per_minute: slack.tier2_per_minute,
                tier3_per_minute: slack.tier3_per_minute,
                tier4_per_minute: slack.tier4_per_minute,
            },
        })
    }
}

/// A Slack call that failed for good, or a Slack set-up that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("{}", self.text(Locale::En))]
    Call {
        method: &'static str,
        /// Slack's error code, or `timeout`, `connection`, `http_503`, `unconfirmed`.
        code: String,
        /// Boxed: an error travels by value through every seam.
        detail: Option<Box<failure::Detail>>,
        attempts: u32,
        /// What the owner should do, worded in the reader's language when it is shown.
        advice: Message,
    },
    #[error("{0}")]
    Setup(String),
}

impl SlackError {
    /// The failure and what to do about it, in `locale` (English in logs).
    pub fn text(&self, locale: Locale) -> String {
        match self {
            SlackError::Call {
                method,
                code,
                detail,
                attempts,
                advice,
            } => {
                let code = match detail {
                    Some(detail) => format!("`{code}` ({})", detail.text(locale)),
                    None => format!("`{code}`"),
                };
                crate::tr!(
                    locale,
                    "slack-call-failed",
                    method = *method,
                    code = code,
                    attempts = *attempts,
                    advice = advice.text(locale)
                )
            }
            SlackError::Setup(why) => why.clone(),
        }
    }

    /// [`SlackError::text`] as Slack mrkdwn, for a notice: Slack's words and the channel
    /// escaped, the code still code.
    pub fn mrkdwn(&self, locale: Locale) -> Mrkdwn {
        match self {
            SlackError::Call {
                method,
                code,
                detail,
                attempts,
                advice,
            } => {
                let code = match detail {
                    Some(detail) => {
                        format!("`{}` ({})", mrkdwn::escape(code), detail.mrkdwn(locale))
                    }
                    None => format!("`{}`", mrkdwn::escape(code)),
                };
                Mrkdwn::formatted(crate::tr_mrkdwn!(
                    locale,
                    "slack-call-failed",
                    method = *method,
                    code = Mrkdwn::formatted(code),
                    attempts = *attempts,
                    advice = Mrkdwn::formatted(advice.mrkdwn(locale))
                ))
            }
            SlackError::Setup(why) => Mrkdwn::value(why),
        }
    }

    /// A short machine-readable code for logs, metrics and the ledger.
    pub fn code(&self) -> &str {
        match self {
            SlackError::Call { code, .. } => code,
            SlackError::Setup(_) => "setup",
        }
    }
}

/// Which token a failure is about, so the advice names the right setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// The bot token (`xoxb-…`), for every Web API call.
    Bot,
    /// The app-level token (`xapp-…`), for Socket Mode.
    App,
}

/// Whether the Slack API URL is plain HTTP to this machine (a local fake Slack): `Ok(false)`
/// for HTTPS, `Ok(true)` for http://127.0.0.1 or localhost, and why not otherwise.
pub fn plain_http_allowed(api_url: &str) -> Result<bool, String> {
    let uri: axum::http::Uri = api_url
        .parse()
        .map_err(|e| format!("`{api_url}` is not a URL: {e}"))?;
    let loopback = matches!(
        uri.host(),
        Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
    );
    match (uri.scheme_str(), loopback) {
        (Some("https"), _) => Ok(false),
        (Some("http"), true) => Ok(true),
        _ => Err(format!(
            "`{api_url}` must be an https:// URL (plain http is only allowed to 127.0.0.1, for tests)"
        )),
    }
}

/// Plain HTTP only to this machine (a local fake Slack); anything else must be HTTPS.
pub fn connector(api_url: &str) -> Result<SlackClientHyperHttpsConnector, SlackError> {
    let plain_http = plain_http_allowed(api_url)
        .map_err(|why| SlackError::Setup(format!("KPIBOT__SLACK__API_URL {why}")))?;
    let builder = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder,
        // No system certificate store (e.g. a distroless image): use the bundled roots.
        Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots(),
    };
    let https = if plain_http {
        builder.https_or_http().enable_http1().build()
    } else {
        builder.https_only().enable_http1().enable_http2().build()
    };
    Ok(SlackClientHyperConnector::with_connector(https)
        .with_slack_api_url(api_url.trim_end_matches('/')))
}

/// Whether `text` is a Slack conversation or user ID rather than a `#name`.
pub fn is_slack_id(text: &str) -> bool {
    text.len() >= 9
        && text.starts_with(['C', 'G', 'D', 'U', 'W'])
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// What the report's owner should do about a Slack error code.
pub fn advice(code: &str, channel: &str, detail: Option<&failure::Detail>) -> Message {
    advice_for(Token::Bot, code, channel, detail)
}

/// [`advice`] for a call made with `token`.
pub fn advice_for(
    token: Token,
    code: &str,
    channel: &str,
    detail: Option<&failure::Detail>,
) -> Message {
    let channel_name = if channel.starts_with('#') || is_slack_id(channel) {
        channel.to_string()
    } else {
        format!("#{channel}")
    };
    let message = match code {
        "not_in_channel" => Message::new("advice-not-in-channel"),
        "channel_not_found" => Message::new("advice-channel-not-found"),
        "is_archived" => Message::new("advice-archived"),
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            match token {
                Token::Bot => Message::new("advice-bot-token"),
                Token::App => Message::new("advice-app-token"),
            }
        }
        "missing_scope" => Message::new("advice-missing-scope").with(
            "scope",
            match detail {
                Some(failure::Detail::NeedsScope(scope)) => scope.as_str(),
                _ => "missing",
            },
        ),
        "invalid_blocks"
        | "msg_too_long"
        | "invalid_arguments"
        | "invalid_metadata_format"
        | "too_many_attachments" => Message::new("advice-kpibot-bug"),
        "ratelimited" => Message::new("advice-rate-limited"),
        "unconfirmed" => Message::new("advice-unconfirmed"),
        "timeout" | "connection" | "bad_response" => Message::new("advice-unreachable"),
        code if code.starts_with("http_5") => Message::new("advice-server-errors"),
        _ => Message::new("advice-unknown-code").with("code", code),
    };
    message
        .with("channel", channel)
        .with("channel_name", channel_name)
}

/// The error for a call that failed for good after `attempts`.
pub fn failure_error(failure: CallFailure, attempts: u32, channel: &str) -> SlackError {
    SlackError::Call {
        advice: advice(&failure.code, channel, failure.detail.as_ref()),
        method: failure.method,
        code: failure.code,
        detail: failure.detail.map(Box::new),
        attempts,
    }
}

/// A `chat.*` request from a message body kpibot built; one that does not fit Slack's
/// request type is a kpibot bug, reported as such.
pub fn message_request<T: serde::de::DeserializeOwned>(
    body: serde_json::Value,
    method: &'static str,
    channel: &str,
) -> Result<T, SlackError> {
    serde_json::from_value(body).map_err(|e| SlackError::Call {
        method,
        code: "invalid_message".into(),
        detail: Some(Box::new(failure::Detail::Quoted(e.to_string()))),
        attempts: 0,
        advice: advice("invalid_blocks", channel, None),
    })
}

type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// Every user group's id and member user ids.
type UserGroups = Vec<(String, Vec<String>)>;

/// The Slack Web API as kpibot uses it: one client, one token, one retry policy.
pub struct Slack {
    client: Client,
    token: SlackApiToken,
    options: SlackOptions,
    /// Channel name (without `#`, lower case) → ID, filled from `conversations.list`.
    channel_ids: tokio::sync::Mutex<HashMap<String, String>>,
    /// Every user group's members, from `usergroups.list`, and when it was read.
    usergroups: tokio::sync::Mutex<Option<(Instant, UserGroups)>>,
    /// Each user's language, from `users.info` (`include_locale`) — `None` while unknown —
    /// and until when that holds before Slack is asked again.
    user_locales: std::sync::Mutex<HashMap<String, (Instant, Option<Locale>)>>,
    /// Every call waits its turn here: its method's tier, and any 429's Retry-After.
    gate: limits::RateGate,
    metrics: Arc<Metrics>,
}

impl Slack {
    pub fn new(options: SlackOptions, metrics: Arc<Metrics>) -> Result<Self, SlackError> {
        let client = SlackClient::new(connector(&options.api_url)?);
        let token = SlackApiToken::new(SlackApiTokenValue(options.bot_token.expose().to_string()));
        Ok(Self {
            client,
            token,
            gate: limits::RateGate::new(options.tier_rates),
            options,
            channel_ids: tokio::sync::Mutex::new(HashMap::new()),
            usergroups: tokio::sync::Mutex::new(None),
            user_locales: std::sync::Mutex::new(HashMap::new()),
            metrics,
        })
    }

    /// When a call started now must stop retrying.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.options.retry.deadline
    }

    /// A session on the bot token, for one sequence of calls.
    pub fn session(&self) -> SlackClientSession<'_, SlackClientHyperHttpsConnector> {
        self.client.open_session(&self.token)
    }

    /// One attempt of one call, bounded by the request timeout, classified on failure.
    pub async fn attempt<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, SlackClientError>>,
    ) -> Result<T, CallFailure> {
        self.turn(method).await;
        self.send(method, call).await
    }

    /// Waits for `method`'s turn under Slack's rate limits.
    pub async fn turn(&self, method: &'static str) {
        self.gate.turn(method).await;
    }

    /// [`Slack::attempt`] once its turn is taken ([`Slack::turn`]).
    pub async fn send<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, SlackClientError>>,
    ) -> Result<T, CallFailure> {
        let timeout = self.options.retry.request_timeout;
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => classify(method, &error),
            Err(_) => timed_out(method, timeout),
        };
        // A tiered method is limited for the whole workspace: everyone's calls wait. A
        // post's 429 is its channel's (about one post a second each): the post's own retry
        // waits it out holding the channel's turn, and posts elsewhere go on.
        if let FailureClass::RateLimited(retry_after) = result.class
            && method != "chat.postMessage"
        {
            let hold = retry_after.unwrap_or(Duration::from_millis(RATE_LIMIT_HOLD_MS));
            self.gate.hold(method, hold);
        }
        self.metrics.increment(
            METRIC_API_ERRORS,
            METRIC_API_ERRORS_HELP,
            &[("method", method), ("code", &result.code)],
        );
        Err(result)
    }

    /// Waits before the next attempt, if policy and deadline allow one.
    pub async fn wait_to_retry(
        &self,
        failure: &CallFailure,
        attempt: u32,
        deadline: Instant,
    ) -> bool {
        match next_delay(&self.options.retry, failure, attempt) {
            Some(delay) if Instant::now() + delay <= deadline => {
                tracing::warn!(
                    method = failure.method,
                    code = %failure.code,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "Slack call failed; retrying"
                );
                self.metrics.increment(
                    METRIC_RETRIES,
                    METRIC_RETRIES_HELP,
                    &[("method", failure.method)],
                );
                tokio::time::sleep(delay).await;
                true
            }
            _ => false,
        }
    }

    /// Runs a call that is safe to repeat, retrying as the failure's class allows.
    pub async fn idempotent<T, Fut>(
        &self,
        method: &'static str,
        channel: &str,
        deadline: Instant,
        call: impl Fn() -> Fut,
    ) -> Result<T, SlackError>
    where
        Fut: Future<Output = Result<T, SlackClientError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(method, call()).await {
                Ok(value) => return Ok(value),
                Err(failure) => {
                    if !self.wait_to_retry(&failure, attempt, deadline).await {
                        return Err(failure_error(failure, attempt, channel));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_told_apart() {
        assert!(is_slack_id("C0123456789"));
        assert!(is_slack_id("U0ABCDEF12"));
        assert!(!is_slack_id("#kpi-daily"));
        assert!(!is_slack_id("kpi-daily"));
        assert!(!is_slack_id("Cat"));
    }

    #[test]
    fn advice_names_the_channel_and_the_fix() {
        assert_eq!(
            advice("not_in_channel", "#kpi-daily", None).to_string(),
            "invite @kpibot to #kpi-daily: type `/invite @kpibot` in #kpi-daily"
        );
        assert!(
            advice(
                "missing_scope",
                "#x",
                Some(&failure::Detail::NeedsScope("files:write".into()))
            )
            .to_string()
            .contains("files:write")
        );
        assert!(
            advice("invalid_auth", "#x", None)
                .to_string()
                .contains("KPIBOT__SLACK__BOT_TOKEN")
        );
        assert!(
            advice_for(Token::App, "invalid_auth", "", None)
                .to_string()
                .contains("KPIBOT__SLACK__APP_TOKEN")
        );
        assert!(
            advice("not_in_channel", "#kpi-daily", None)
                .text(Locale::Ja)
                .contains("/invite @kpibot")
        );
    }
}
