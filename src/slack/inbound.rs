//! What Slack sends kpibot: requests signed with the app's signing secret (checked here,
//! with the five-minute timestamp window), slash-command fields, clicks on buttons, and
//! Socket Mode, where the same commands and clicks arrive over a WebSocket opened with the
//! app-level token.

use std::collections::HashMap;
use std::sync::Arc;

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
pub type OnCommand = Arc<dyn Fn(CommandRequest) -> String + Send + Sync>;

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

/// Turns an interaction payload into its clicks.
pub type ReadActions = fn(&SlackInteractionEvent) -> Vec<ActionRequest>;

/// What Socket Mode hands interactive envelopes to.
#[derive(Clone)]
struct InteractionHandling {
    read: ReadActions,
    on_action: OnAction,
}

/// Checks requests against the app's signing secret.
pub struct Verifier(SlackEventSignatureVerifier);

impl Verifier {
    pub fn new(signing_secret: &str) -> Self {
        Self(SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
            signing_secret.to_string(),
        )))
    }

    /// The request's form fields when it is signed by Slack within the last five minutes;
    /// otherwise the status and reason to refuse it with.
    pub fn form(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<HashMap<String, String>, (StatusCode, &'static str)> {
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
        if self.0.verify(signature, text, timestamp).is_err() {
            return Err((StatusCode::UNAUTHORIZED, "bad signature or stale timestamp"));
        }
        Ok(form_urlencoded::parse(body).into_owned().collect())
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
    let text = match on_command {
        Some(on_command) => on_command(CommandRequest {
            text: event.text.unwrap_or_default(),
            command: event.command.0,
            user_id: event.user_id.0,
            channel_id: event.channel_id.0,
            channel_name: event.channel_name.unwrap_or_default(),
            response_url: event.response_url.0.to_string(),
        }),
        None => "kpibot is starting; try again in a moment".into(),
    };
    Ok(
        SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
            .with_response_type(SlackMessageResponseType::Ephemeral),
    )
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

/// Receives slash commands and clicks over Socket Mode (no public URL needed) until
/// `shutdown`.
pub async fn run_socket_mode(
    on_command: OnCommand,
    (read, on_action): (ReadActions, OnAction),
    api_url: &str,
    app_token: &str,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), SlackError> {
    let client = Arc::new(SlackClient::new(connector(api_url)?));
    let callbacks = SlackSocketModeListenerCallbacks::new()
        .with_command_events(on_socket_command)
        .with_interaction_events(on_socket_interaction);
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client)
            .with_error_handler(|error, _, _| {
                tracing::error!(error = %error, "Socket Mode error");
                axum::http::StatusCode::OK
            })
            .with_user_state(on_command)
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
                advice: advice_for(Token::App, &failure.code, "", failure.detail.as_deref()),
                method: "apps.connections.open",
                code: failure.code,
                detail: failure.detail,
                attempts: 1,
            }
        })?;
    listener.start().await;
    tracing::info!("slash commands and buttons enabled over Socket Mode");
    let _ = shutdown.changed().await;
    listener.shutdown().await;
    Ok(())
}
