//! `/kpi` in Slack — the ad-hoc flow's front: `POST /slack/commands` (signature checked,
//! body bounded) and Socket Mode both reach [`CommandHandler::acknowledge`], which answers
//! at once (Slack gives 3 s) and finishes in the background through [`super::answer`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::json;

use super::access::{AccessPolicy, Asker, Viewer};
use super::answer::{Context, answer_resolved};
use super::audit::{AuditEntry, AuditLog};
use super::deliver::{AnswerTarget, deliver_answer, reply_privately};
use super::phrase::Calendar;
use super::reply::Reply;
use super::resolve::{Resolved, resolve};
use super::throttle::{Admitted, Throttle};
use crate::catalog::{Catalog, SharedCatalog, snapshot};
use crate::deliver::SlackDelivery;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::i18n::{Locale, looks_japanese};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::pipeline::RunLimits;
use crate::slack::inbound::{Ack, CommandRequest, OnCommand, Verifier};
use crate::slack::replies::LocaleLookup;
use crate::warehouse::cache::QueryCache;
use crate::warehouse::{Trigger, Warehouse};
use crate::{tr, tr_mrkdwn};

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
    pub policy: AccessPolicy,
    /// How far windows may reach and how many rows a query may return.
    pub limits: RunLimits,
    pub cache: QueryCache,
    /// Questions per person per minute, and queries at once.
    pub throttle: Throttle,
    /// One JSON line per ad-hoc request.
    pub audit: AuditLog,
    /// Answers being worked on after their acknowledgement: `serve` waits for them at
    /// shutdown, so a question acknowledged during a rolling restart still gets its answer.
    pub answers: tokio_util::task::TaskTracker,
    /// The bot's language, for an asker whose Slack language is not known yet.
    pub locale: Locale,
    /// The month the company's fiscal year starts in (`今年度`, `上期`, `Q3`).
    pub fiscal_year_start_month: u32,
    /// The run ledger, for `/kpi history` and the "History" item under posts.
    pub ledger: Option<Arc<Ledger>>,
    /// Bills each answer's queries to the asker, within their daily budget.
    pub meter: Option<Arc<crate::budget::Meter>>,
    /// Following from Slack: bounds and the default time.
    pub follows: crate::settings::FollowSettings,
}

#[derive(Clone)]
struct SlashState {
    verifier: Arc<Verifier>,
    handler: Arc<CommandHandler>,
}

/// The slash-command route, to merge into `serve`'s router. `verifier` is shared with
/// the interactions route, so a signed request is taken once by either.
pub fn router(verifier: Arc<Verifier>, handler: Arc<CommandHandler>) -> Router {
    let state = SlashState { verifier, handler };
    Router::new()
        .route(COMMANDS_PATH, post(command))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn reject(status: StatusCode, why: &str) -> Response {
    tracing::warn!(status = status.as_u16(), why, "slash command rejected");
    (status, why.to_string()).into_response()
}

fn ephemeral(ack: &Ack) -> Response {
    let mut body = json!({"response_type": "ephemeral", "text": ack.text});
    if let Some(blocks) = &ack.blocks {
        body["blocks"] = blocks.clone();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn command(State(state): State<SlashState>, headers: HeaderMap, body: Bytes) -> Response {
    match state.verifier.form(&headers, &body) {
        Ok(form) => ephemeral(&state.handler.acknowledge(CommandRequest::from_form(&form))),
        Err((status, why)) => reject(status, why),
    }
}

/// The handler as Socket Mode's acknowledgement callback.
pub fn on_command(handler: Arc<CommandHandler>) -> OnCommand {
    Arc::new(move |request| handler.acknowledge(request))
}

/// What one request was about and how it ended: one audit line.
struct Done<'a> {
    request: &'a CommandRequest,
    started: Instant,
    entries: Vec<String>,
    policies: Vec<String>,
    rows: usize,
    bytes: Option<u64>,
    outcome: String,
}

impl CommandHandler {
    /// The asker as far as the acknowledgement can tell without waiting on Slack: user
    /// groups only if they are already cached.
    fn asker(&self, request: &CommandRequest, usergroups: Vec<String>) -> Asker {
        Asker {
            user_id: request.user_id.clone(),
            channel_id: request.channel_id.clone(),
            channel_name: request.channel_name.clone(),
            usergroups,
            operator: false,
        }
    }

    /// A command resolved against `catalog` as `asker` sees it, in `locale`.
    pub(crate) fn resolve(
        &self,
        catalog: &Catalog,
        text: &str,
        asker: &Asker,
        locale: Locale,
    ) -> Resolved {
        let viewer = Viewer {
            catalog,
            asker,
            policy: self.policy,
        };
        let calendar = Calendar::at(self.timezone, Utc::now(), self.fiscal_year_start_month);
        resolve(
            catalog,
            text,
            self.warehouse.dialect(),
            self.timezone,
            &calendar,
            &viewer,
            locale,
        )
    }

    /// The asker's language as far as the acknowledgement can tell without waiting on
    /// Slack: their Slack language if it was read recently, else Japanese for a command
    /// written in Japanese, else the bot's language; and whether Slack should be asked.
    fn ack_locale(&self, request: &CommandRequest) -> (Locale, bool) {
        let guess = if looks_japanese(&request.text) {
            Locale::Ja
        } else {
            self.locale
        };
        match self.slack.slack().cached_locale_of(&request.user_id) {
            LocaleLookup::Known(locale) => (locale, false),
            LocaleLookup::Unknown => (guess, false),
            LocaleLookup::NotAsked => (guess, true),
        }
    }

    /// The groups `user` belongs to (for group allow-lists); none, with a warning, when
    /// Slack cannot say.
    pub(crate) async fn usergroups_of(&self, user: &str) -> Vec<String> {
        match self.slack.slack().usergroups_of(user).await {
            Ok(groups) => groups,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the user's groups; group allow-lists will not match");
                Vec::new()
            }
        }
    }

    /// How an answer is worked out for this handler, as `locale` reads it; `fresh` skips
    /// the cache ("Refresh").
    pub(crate) fn context<'a>(
        &'a self,
        catalog: &'a Catalog,
        locale: Locale,
        fresh: bool,
    ) -> Context<'a> {
        Context {
            catalog,
            warehouse: self.warehouse.as_ref(),
            trigger: Trigger::Slash,
            timezone: self.timezone,
            now: Utc::now(),
            timeout: self.timeout,
            policy: self.policy,
            limits: self.limits,
            cache: Some(&self.cache),
            ledger: self.ledger.as_deref(),
            slack: Some(self.slack.slack()),
            meter: self.meter.as_deref(),
            fresh,
            fiscal_year_start_month: self.fiscal_year_start_month,
            locale,
            follows: Some(&self.follows),
        }
    }

    /// A Slack user's language (cached); `guess` if Slack cannot say.
    pub(crate) async fn asker_locale_of(&self, user: &str, guess: Locale) -> Locale {
        match self.slack.slack().locale_of(user, guess).await {
            Ok(locale) => locale,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the user's language (users.info, scope users:read); answering in the guessed one");
                guess
            }
        }
    }

    /// The immediate reply to a command, for HTTP and Socket Mode alike. Help, lists,
    /// definitions and mistakes need no query and are answered here; anything that needs
    /// the warehouse is acknowledged and answered in the background. A background answer
    /// that panics still answers the person and writes its audit line.
    pub fn acknowledge(self: &Arc<Self>, request: CommandRequest) -> Ack {
        let started = Instant::now();
        let catalog = snapshot(&self.catalog);
        let cached_groups = self
            .slack
            .slack()
            .cached_usergroups_of(&request.user_id)
            .unwrap_or_default();
        let asker = self.asker(&request, cached_groups);
        let (locale, ask_slack) = self.ack_locale(&request);
        let resolved = self.resolve(&catalog, &request.text, &asker, locale);
        let (resolved, admitted) = match self.admit(&request.user_id, resolved) {
            Ok(admitted) => admitted,
            Err(reply) => return self.reply_now(&request, reply, locale, ask_slack, started),
        };
        let command = format!(
            "{} {}",
            if request.command.is_empty() {
                "/kpi"
            } else {
                &request.command
            },
            request.text.trim()
        );
        let ack = tr_mrkdwn!(locale, "kpi-working", command = command);
        let this = self.clone();
        let answering = tokio::spawn({
            let this = this.clone();
            let request = request.clone();
            async move {
                this.handle(request, catalog, (resolved, admitted), locale, started)
                    .await
            }
        });
        // Tracked: `serve` waits for the answer (and its panic reply) before it exits.
        self.answers.spawn(async move {
            if let Err(failure) = answering.await {
                tracing::error!(error = %failure, command = %request.text, "answering a slash command stopped");
                let reply = Reply::Failed {
                    name: request.text.trim().to_string(),
                    error: Mrkdwn::formatted(tr_mrkdwn!(locale, "kpi-internal-error")),
                    owner: tr!(locale, "kpi-operators"),
                    timed_out: false,
                };
                let target = AnswerTarget::command(&request);
                reply_privately(&this.slack, &target, (&reply.text(locale), None), "panicked").await;
                this.record(Done {
                    request: &request,
                    started,
                    entries: Vec::new(),
                    policies: Vec::new(),
                    rows: 0,
                    bytes: None,
                    outcome: "panicked".into(),
                });
            }
        });
        Ack::from(ack)
    }

    /// Everything that takes a query slot (a question for the warehouse, `/kpi history`,
    /// `/kpi alerts`) counts against the asker's limit first; what the catalog answers
    /// alone (help, lists, definitions, mistakes) does not. `Err`: the reply to give now.
    fn admit(&self, user: &str, resolved: Resolved) -> Result<(Resolved, Admitted), Reply> {
        match resolved {
            Resolved::Reply(reply) => Err(reply),
            needs_slot => match self.throttle.admit(user) {
                Ok(admitted) => Ok((needs_slot, admitted)),
                Err(per_minute) => Err(Reply::TooManyQuestions { per_minute }),
            },
        }
    }

    /// A reply given in the acknowledgement itself, with its audit line.
    fn reply_now(
        self: &Arc<Self>,
        request: &CommandRequest,
        reply: Reply,
        locale: Locale,
        ask_slack: bool,
        started: Instant,
    ) -> Ack {
        self.record(Done {
            request,
            started,
            entries: Vec::new(),
            policies: Vec::new(),
            rows: 0,
            bytes: None,
            outcome: reply.outcome().to_string(),
        });
        if ask_slack {
            // The next answer to this person is in their own language.
            let this = self.clone();
            let request = request.clone();
            self.answers.spawn(async move {
                this.asker_locale_of(&request.user_id, locale).await;
            });
        }
        Ack {
            text: reply.text(locale),
            blocks: reply.blocks(locale),
        }
    }

    /// Answers in the background; every path ends in a reply or an error-level log.
    /// `resolved` comes from the acknowledgement, against the same catalog snapshot, and
    /// was counted against the asker's limit there.
    async fn handle(
        &self,
        request: CommandRequest,
        catalog: Arc<Catalog>,
        (resolved, admitted): (Resolved, Admitted),
        ack_locale: Locale,
        started: Instant,
    ) {
        let locale = self.asker_locale_of(&request.user_id, ack_locale).await;
        // Only an allow-list of user groups needs the asker's groups from Slack.
        let usergroups = if resolved.needs_usergroups() {
            self.usergroups_of(&request.user_id).await
        } else {
            Vec::new()
        };
        let asker = self.asker(&request, usergroups);
        // Resolved again in the asker's own language if the acknowledgement guessed wrong
        // (a metric answer's title is written while resolving).
        let resolved = if locale == ack_locale {
            resolved
        } else {
            self.resolve(&catalog, &request.text, &asker, locale)
        };
        let entries = resolved.entries();
        let policies = resolved.policies();
        let context = self.context(&catalog, locale, false);
        let answer = {
            let _slot = self.throttle.query_slot(&admitted).await;
            answer_resolved(&context, resolved, &asker).await
        };
        let (rows, bytes) = (answer.rows(), answer.bytes());
        let target = AnswerTarget::command(&request);
        let outcome = deliver_answer(&self.slack, answer, &target, None, locale).await;
        self.record(Done {
            request: &request,
            started,
            entries,
            policies,
            rows,
            bytes,
            outcome,
        });
    }

    /// Counts the command and writes its audit line.
    fn record(&self, done: Done) {
        self.record_line(
            &done.request.user_id,
            &done.request.channel_id,
            &format!("{} {}", done.request.command, done.request.text),
            (&done.entries, &done.policies, done.rows, done.bytes),
            &done.outcome,
            done.started,
        );
    }

    /// Counts a request (a command or a click) and writes its audit line.
    pub(crate) fn record_line(
        &self,
        user: &str,
        channel: &str,
        command: &str,
        (entries, policies, rows, bytes): (&[String], &[String], usize, Option<u64>),
        outcome: &str,
        started: Instant,
    ) {
        self.metrics.increment(
            METRIC_COMMANDS,
            METRIC_COMMANDS_HELP,
            &[("outcome", outcome.split(':').next().unwrap_or("failed"))],
        );
        self.audit.write(&AuditEntry {
            user,
            channel,
            command,
            entries,
            policies,
            rows,
            bytes,
            outcome,
            duration: started.elapsed(),
        });
    }
}
