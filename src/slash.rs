//! `POST /slack/commands`: Slack's slash-command requests, verified with the signing
//! secret, acknowledged at once (Slack gives 3 s), then answered in the background through
//! the same [`crate::ask`] path as `kpibot ask`.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::json;
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

use crate::ask::{self, Answer, Asker, DefaultPolicy, QueryCache};
use crate::deliver::{Delivery, DeliveryError, SlackDelivery, error_chain};
use crate::metrics::Metrics;
use crate::scheduler::SharedCatalog;
use crate::spec::Catalog;
use crate::warehouse::Warehouse;

/// Where Slack sends slash commands (the app manifest's `url` ends with this).
pub const COMMANDS_PATH: &str = "/slack/commands";
/// Largest request body accepted; Slack's command payloads are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

const METRIC_COMMANDS: &str = "kpibot_slash_commands_total";
const METRIC_COMMANDS_HELP: &str = "Slash commands by outcome";

/// What answering a command needs.
pub struct CommandHandler {
    pub catalog: SharedCatalog,
    pub warehouse: Arc<dyn Warehouse>,
    pub slack: Arc<SlackDelivery>,
    pub metrics: Arc<Metrics>,
    pub timezone: Tz,
    pub timeout: Duration,
    pub policy: DefaultPolicy,
    pub cache: QueryCache,
    /// One JSON line per ad-hoc request.
    pub audit_log: PathBuf,
    /// The audit log, opened once and appended to.
    pub audit_file: std::sync::Mutex<Option<std::fs::File>>,
}

#[derive(Clone)]
struct SlashState {
    verifier: Arc<SlackEventSignatureVerifier>,
    handler: Arc<CommandHandler>,
}

/// The slash-command route, to merge into `serve`'s router.
pub fn router(signing_secret: &str, handler: Arc<CommandHandler>) -> Router {
    let state = SlashState {
        verifier: Arc::new(SlackEventSignatureVerifier::new(&SlackSigningSecret::new(
            signing_secret.to_string(),
        ))),
        handler,
    };
    Router::new()
        .route(COMMANDS_PATH, post(command))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn reject(status: StatusCode, why: &str) -> Response {
    tracing::warn!(status = status.as_u16(), why, "slash command rejected");
    (status, why.to_string()).into_response()
}

fn ephemeral(text: &str) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"response_type": "ephemeral", "text": text}).to_string(),
    )
        .into_response()
}

async fn command(State(state): State<SlashState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(signature), Some(timestamp)) = (
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER),
        header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP),
    ) else {
        return reject(StatusCode::UNAUTHORIZED, "missing Slack signature headers");
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return reject(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    // Checks the HMAC and that the timestamp is within five minutes.
    if state.verifier.verify(signature, text, timestamp).is_err() {
        return reject(StatusCode::UNAUTHORIZED, "bad signature or stale timestamp");
    }
    let form: std::collections::HashMap<String, String> =
        form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let request = CommandRequest {
        text: field("text"),
        command: field("command"),
        user_id: field("user_id"),
        channel_id: field("channel_id"),
        response_url: field("response_url"),
    };
    ephemeral(&state.handler.acknowledge(request))
}

/// The fields of a slash command kpibot uses.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub text: String,
    pub command: String,
    pub user_id: String,
    pub channel_id: String,
    pub response_url: String,
}

impl CommandHandler {
    /// The immediate reply to a command, for HTTP and Socket Mode alike. Help, lists,
    /// definitions and mistakes need no query and are answered here; anything that needs
    /// the warehouse is acknowledged and answered in the background.
    pub fn acknowledge(self: &Arc<Self>, request: CommandRequest) -> String {
        let catalog = self
            .catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let resolved = ask::resolve(
            &catalog,
            &request.text,
            self.warehouse.dialect(),
            self.timezone,
        );
        if let ask::Resolved::Reply(reply) = resolved {
            self.record(&request, 0, "text");
            return reply;
        }
        let ack = format!(
            "Working on `{} {}`…",
            if request.command.is_empty() {
                "/kpi"
            } else {
                &request.command
            },
            request.text.trim()
        );
        let this = self.clone();
        tokio::spawn(async move { this.handle(request, catalog, resolved).await });
        ack
    }

    /// Answers in the background; every path ends in a reply or an error-level log.
    /// `resolved` comes from the acknowledgement, against the same catalog snapshot.
    async fn handle(
        &self,
        request: CommandRequest,
        catalog: Arc<Catalog>,
        resolved: ask::Resolved,
    ) {
        // Only an allow-list of user groups needs the asker's groups from Slack.
        let needs_groups = matches!(
            &resolved,
            ask::Resolved::Run { access, .. } if !access.allowed_usergroups.is_empty()
        );
        let usergroups = if needs_groups {
            match self.slack.usergroups_of(&request.user_id).await {
                Ok(groups) => groups,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the user's groups; group allow-lists will not match");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let asker = Asker {
            user_id: request.user_id.clone(),
            channel_id: request.channel_id.clone(),
            usergroups,
        };
        let context = ask::Context {
            catalog: &catalog,
            warehouse: self.warehouse.as_ref(),
            trigger: crate::warehouse::Trigger::Slash,
            timezone: self.timezone,
            now: Utc::now(),
            timeout: self.timeout,
            policy: self.policy,
            cache: Some(&self.cache),
        };
        let answer = ask::answer_resolved(&context, resolved, &asker).await;
        let (outcome, rows) = match &answer {
            Answer::Text(_) => ("text", 0),
            Answer::Chart {
                ephemeral: true,
                rows,
                ..
            } => ("private_chart", *rows),
            Answer::Chart { rows, .. } => ("chart", *rows),
        };
        let delivered = match answer {
            Answer::Text(text) => self.slack.respond(&request.response_url, &text).await,
            Answer::Chart {
                rendered,
                ephemeral: true,
                ..
            } => {
                self.slack
                    .post_ephemeral(&rendered, &request.channel_id, &request.user_id)
                    .await
            }
            Answer::Chart { mut rendered, .. } => {
                rendered.channel = Some(request.channel_id.clone());
                self.slack.deliver(&rendered).await.map(|_| ())
            }
        };
        let outcome = match &delivered {
            Ok(()) => outcome.to_string(),
            Err(error) => {
                let text = format!("I could not post the answer here: {}", error_chain(error));
                if let Err(e) = self.slack.respond(&request.response_url, &text).await {
                    tracing::error!(error = %e, reply = %text, "could not answer a slash command at all");
                }
                format!("failed:{}", error.code())
            }
        };
        self.record(&request, rows, &outcome);
    }

    /// Counts the command and writes its audit line.
    fn record(&self, request: &CommandRequest, rows: usize, outcome: &str) {
        self.metrics.increment(
            METRIC_COMMANDS,
            METRIC_COMMANDS_HELP,
            &[("outcome", outcome.split(':').next().unwrap_or("failed"))],
        );
        self.audit(request, rows, outcome);
    }

    fn audit(&self, request: &CommandRequest, rows: usize, outcome: &str) {
        let line = json!({
            "time": Utc::now().to_rfc3339(),
            "user": request.user_id,
            "channel": request.channel_id,
            "command": format!("{} {}", request.command, request.text),
            "rows": rows,
            // Bytes scanned are known only on warehouses that report them (BigQuery).
            "bytes": serde_json::Value::Null,
            "outcome": outcome,
        });
        let mut file = self.audit_file.lock().unwrap_or_else(|p| p.into_inner());
        if file.is_none() {
            *file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.audit_log)
                .map_err(|e| tracing::error!(path = %self.audit_log.display(), error = %e, "cannot open the audit log"))
                .ok();
        }
        let written = match file.as_mut() {
            // One write per line, so concurrent lines never interleave.
            Some(f) => f.write_all(format!("{line}\n").as_bytes()),
            None => Err(std::io::Error::other("the audit log is not open")),
        };
        if let Err(e) = written {
            tracing::error!(path = %self.audit_log.display(), error = %e, entry = %line, "could not write the audit log");
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
    let handler = state
        .read()
        .await
        .get_user_state::<Arc<CommandHandler>>()
        .cloned();
    let text = match handler {
        Some(handler) => handler.acknowledge(CommandRequest {
            text: event.text.unwrap_or_default(),
            command: event.command.0,
            user_id: event.user_id.0,
            channel_id: event.channel_id.0,
            response_url: event.response_url.0.to_string(),
        }),
        None => "kpibot is starting; try again in a moment".into(),
    };
    Ok(
        SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
            .with_response_type(SlackMessageResponseType::Ephemeral),
    )
}

/// Receives slash commands over Socket Mode (no public URL needed) until `shutdown`.
pub async fn run_socket_mode(
    handler: Arc<CommandHandler>,
    api_url: &str,
    app_token: &str,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), DeliveryError> {
    let client = Arc::new(SlackClient::new(crate::deliver::slack::connector(api_url)?));
    let callbacks = SlackSocketModeListenerCallbacks::new().with_command_events(on_socket_command);
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client)
            .with_error_handler(|error, _, _| {
                tracing::error!(error = %error, "Socket Mode error");
                axum::http::StatusCode::OK
            })
            .with_user_state(handler),
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
            let failure = crate::deliver::retry::classify("apps.connections.open", &e);
            DeliveryError::Slack {
                advice: crate::deliver::slack::advice(&failure.code, "", failure.detail.as_deref())
                    .replace("KPIBOT__SLACK__BOT_TOKEN", "KPIBOT__SLACK__APP_TOKEN")
                    .replace(
                        "Bot User OAuth Token (xoxb-…)",
                        "app-level token (xapp-…, scope connections:write)",
                    ),
                method: "apps.connections.open",
                code: failure.code,
                detail: failure.detail,
                attempts: 1,
            }
        })?;
    listener.start().await;
    tracing::info!("slash commands enabled over Socket Mode");
    let _ = shutdown.changed().await;
    listener.shutdown().await;
    Ok(())
}
