//! What Slack sends kpibot: requests signed with the app's signing secret (checked here,
//! with the five-minute timestamp window, and each taken once), slash-command fields,
//! clicks on buttons, and Socket Mode, where the same commands and clicks arrive over a
//! WebSocket opened with the app-level token.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use super::failure::classify;
use super::{SlackError, Token, advice_for, connector};

/// The fields of a slash command kpibot uses.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub text: String,
    pub command: String,
    pub user_id: String,
    pub channel_id: String,
    /// The channel's name without `#` (`directmessage` or `privategroup` where Slack
    /// does not say).
    pub channel_name: String,
    pub response_url: String,
}

/// What answers a command at once (the acknowledgement's text), for HTTP and Socket Mode.
pub type OnCommand = Arc<dyn Fn(CommandRequest) -> Ack + Send + Sync>;

/// The immediate answer to a command, only the asker sees it: a text, and Block Kit
/// blocks when it has buttons (a question asked back).
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub text: String,
    pub blocks: Option<serde_json::Value>,
}

impl From<String> for Ack {
    fn from(text: String) -> Self {
        Self { text, blocks: None }
    }
}

/// One click on a button or menu under a post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    pub user_id: String,
    pub channel_id: String,
    pub channel_name: String,
    /// The thread to answer in: the post's own ts, or its parent's when the post is a
    /// reply; `None` for an ephemeral post (it has no thread).
    pub thread_ts: Option<String>,
    pub action_id: String,
    pub block_id: String,
    /// The button's value or the chosen option's.
    pub value: String,
}

/// What takes a click (its answer comes later), for HTTP and Socket Mode.
pub type OnAction = Arc<dyn Fn(ActionRequest) + Send + Sync>;

/// Called with the user whose Home tab was opened (`app_home_opened`).
pub type OnHomeOpened = Arc<dyn Fn(String) + Send + Sync>;

/// The user whose Home tab a pushed event says was opened, if it is that event.
pub fn home_opened_by(event: &SlackPushEventCallback) -> Option<String> {
    match &event.event {
        SlackEventCallbackBody::AppHomeOpened(opened)
            if opened.tab.as_deref().is_none_or(|tab| tab == "home") =>
        {
            Some(opened.user.0.clone())
        }
        _ => None,
    }
}

/// Turns an interaction payload into its clicks.
pub type ReadActions = fn(&SlackInteractionEvent) -> Vec<ActionRequest>;

/// What Socket Mode hands interactive envelopes to.
#[derive(Clone)]
struct InteractionHandling {
    read: ReadActions,
    on_action: OnAction,
}

/// How far a request's timestamp may be from now, in seconds (Slack's rule, applied by
/// the verifier): a signature is remembered until its timestamp is this far behind.
pub const SIGNATURE_WINDOW_SECONDS: i64 = SlackEventSignatureVerifier::MAX_TIMESTAMP_AGE_SECONDS;
/// Signatures remembered at most (about 100 bytes each); past it the oldest is forgotten.
/// One workspace's commands and clicks come a few per second at the busiest, so the
/// whole five-minute window fits many times over.
pub const MAX_REMEMBERED_SIGNATURES: usize = 10_000;

/// Signatures of the requests already taken, so a captured request cannot be sent again
/// while its timestamp is still accepted.
#[derive(Debug)]
struct SeenSignatures {
    capacity: usize,
    seen: HashSet<String>,
    /// In arrival order, with each request's timestamp (Unix seconds).
    order: VecDeque<(String, i64)>,
}

impl SeenSignatures {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers `signature`, of a request stamped `timestamp`; false if it was seen
    /// before. `now` in Unix seconds.
    fn first_time(&mut self, signature: &str, timestamp: i64, now: i64) -> bool {
        // Signatures whose timestamps the verifier refuses by now need no remembering.
        while let Some((oldest, stamped)) = self.order.front() {
            if now - stamped <= SIGNATURE_WINDOW_SECONDS {
                break;
            }
            self.seen.remove(oldest);
            self.order.pop_front();
        }
        if self.seen.contains(signature) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some((oldest, _)) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(signature.to_string());
        self.order.push_back((signature.to_string(), timestamp));
        true
    }
}

/// Checks requests against the app's signing secret, and takes each signed request once.
/// One is shared by every endpoint that verifies (`/slack/commands`,
/// `/slack/interactions`), so a request taken by one cannot be sent to the other.
pub struct Verifier {
    check: SlackEventSignatureVerifier,
    seen: Mutex<SeenSignatures>,
}

impl Verifier {
    pub fn new(signing_secret: &str) -> Self {
        Self {
            check: SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
                signing_secret.to_string(),
            )),
            seen: Mutex::new(SeenSignatures::new(MAX_REMEMBERED_SIGNATURES)),
        }
    }

    /// The request's form fields when it is signed by Slack within the last five minutes
    /// and was not received before; otherwise the status and reason to refuse it with.
    pub fn form(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<HashMap<String, String>, (StatusCode, &'static str)> {
        self.verify(headers, body)?;
        Ok(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The request's body as text when it is signed by Slack within the last five minutes
    /// and was not received before (the Events API's JSON); otherwise the status and
    /// reason to refuse it with.
    pub fn verify<'b>(
        &self,
        headers: &HeaderMap,
        body: &'b [u8],
    ) -> Result<&'b str, (StatusCode, &'static str)> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (Some(signature), Some(timestamp)) = (
            header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
            header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
        ) else {
            return Err((StatusCode::UNAUTHORIZED, "missing Slack signature headers"));
        };
        let Ok(text) = std::str::from_utf8(body) else {
            return Err((StatusCode::BAD_REQUEST, "the body is not UTF-8"));
        };
        // Checks the HMAC and that the timestamp is within five minutes.
        if self.check.verify(signature, text, timestamp).is_err() {
            return Err((StatusCode::UNAUTHORIZED, "bad signature or stale timestamp"));
        }
        // Only a verified signature is remembered: forged ones cannot crowd out real ones.
        let stamped = timestamp.parse().unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        let first = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first_time(signature, stamped, now);
        if !first {
            return Err((
                StatusCode::UNAUTHORIZED,
                "this signed request was already received",
            ));
        }
        Ok(text)
    }
}

impl CommandRequest {
    /// The command in a verified form body.
    pub fn from_form(form: &HashMap<String, String>) -> Self {
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        Self {
            text: field("text"),
            command: field("command"),
            user_id: field("user_id"),
            channel_id: field("channel_id"),
            channel_name: field("channel_name"),
            response_url: field("response_url"),
        }
    }
}

/// The Socket Mode callback: the same acknowledgement as over HTTP, sent back on the
/// WebSocket as the envelope's response payload.
async fn on_socket_command(
    event: SlackCommandEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let on_command = state.read().await.get_user_state::<OnCommand>().cloned();
    let ack = match on_command {
        Some(on_command) => on_command(CommandRequest {
            text: event.text.unwrap_or_default(),
            command: event.command.0,
            user_id: event.user_id.0,
            channel_id: event.channel_id.0,
            channel_name: event.channel_name.unwrap_or_default(),
            response_url: event.response_url.0.to_string(),
        }),
        None => Ack::from("kpibot is starting; try again in a moment".to_string()),
    };
    let mut content = SlackMessageContent::new().with_text(ack.text);
    if let Some(blocks) = ack.blocks.and_then(|b| serde_json::from_value(b).ok()) {
        content = content.with_blocks(blocks);
    }
    Ok(SlackCommandEventResponse::new(content)
        .with_response_type(SlackMessageResponseType::Ephemeral))
}

/// The Socket Mode callback for clicks: acknowledged by the listener at once, answered
/// in the background like over HTTP.
async fn on_socket_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let handling = state
        .read()
        .await
        .get_user_state::<InteractionHandling>()
        .cloned();
    if let Some(handling) = handling {
        for action in (handling.read)(&event) {
            (handling.on_action)(action);
        }
    }
    Ok(())
}

/// The Socket Mode callback for the Events API's events: a Home tab opened.
async fn on_socket_push(
    event: SlackPushEventCallback,
    _client: Arc<SlackHyperClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let on_home = state.read().await.get_user_state::<OnHomeOpened>().cloned();
    if let (Some(on_home), Some(user)) = (on_home, home_opened_by(&event)) {
        on_home(user);
    }
    Ok(())
}

/// Receives slash commands, clicks and Home tab openings over Socket Mode (no public URL
/// needed) until `shutdown`.
pub async fn run_socket_mode(
    (on_command, on_home): (OnCommand, OnHomeOpened),
    (read, on_action): (ReadActions, OnAction),
    api_url: &str,
    app_token: &str,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), SlackError> {
    let client = Arc::new(SlackClient::new(connector(api_url)?));
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_socket_command)
        .with_interaction_events(on_socket_interaction)
        .with_push_events(on_socket_push);
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client)
            .with_error_handler(|error, _, _| {
                tracing::error!(error = %error, "Socket Mode error");
                axum::http::StatusCode::OK
            })
            .with_user_state(on_command)
            .with_user_state(on_home)
            .with_user_state(InteractionHandling { read, on_action }),
    );
    let listener = SlackClientSocketModeListener::new(
        &SlackClientSocketModeConfig::new(),
        environment,
        callbacks,
    );
    listener
        .listen_for(&SlackApiToken::new(SlackApiTokenValue(
            app_token.to_string(),
        )))
        .await
        .map_err(|e| {
            let failure = classify("apps.connections.open", &e);
            SlackError::Call {
                advice: advice_for(Token::App, &failure.code, "", failure.detail.as_ref()),
                method: "apps.connections.open",
                code: failure.code,
                detail: failure.detail.map(Box::new),
                attempts: 1,
            }
        })?;
    listener.start().await;
    tracing::info!("slash commands and buttons enabled over Socket Mode");
    let _ = shutdown.changed().await;
    listener.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_taken_once_while_its_timestamp_is_accepted() {
        let mut seen = SeenSignatures::new(10);
        let at = 1_800_000_000;
        assert!(seen.first_time("v0=a", at, at));
        assert!(!seen.first_time("v0=a", at, at + SIGNATURE_WINDOW_SECONDS));
        // Past the window the verifier refuses it anyway; it is forgotten.
        assert!(seen.first_time("v0=b", at, at + SIGNATURE_WINDOW_SECONDS + 1));
        assert!(!seen.seen.contains("v0=a"));
    }

    #[test]
    fn memory_is_bounded_and_the_oldest_go_first() {
        let mut seen = SeenSignatures::new(3);
        let at = 1_800_000_000;
        for signature in ["v0=1", "v0=2", "v0=3", "v0=4"] {
            assert!(seen.first_time(signature, at, at));
        }
        assert_eq!(seen.order.len(), 3);
        assert_eq!(seen.seen.len(), 3);
        assert!(!seen.first_time("v0=4", at, at), "the newest are kept");
        assert!(seen.first_time("v0=1", at, at), "the oldest was forgotten");
    }
}
