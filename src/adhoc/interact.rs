//! Clicks on the buttons and menus under a chart — `POST /slack/interactions` (verified
//! like slash commands) and Socket Mode's interactive envelopes alike. A click asks the
//! post's question again with one thing changed, through the same resolve → access → run
//! path as `/kpi`: the answer goes into the post's thread naming who asked, or to the
//! clicker alone when the data is private to them.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use slack_morphism::prelude::*;

use super::access::{Asker, Viewer};
use super::answer::answer_resolved;
use super::deliver::{AnswerTarget, deliver_answer, reply_privately};
use super::grammar::{Filter, Grain, Query};
use super::history::history_text;
use super::phrase::Called;
use super::reply::{self, ACTION_ASK, Reply};
use super::resolve::{Resolved, resolve_query};
use super::slash::CommandHandler;
use crate::catalog::{Catalog, snapshot};
use crate::i18n::Locale;
use crate::i18n::mrkdwn::Mrkdwn;
use crate::render::actions::{
    ACTION_BY, ACTION_DEFINITION, ACTION_FOLLOW, ACTION_MORE, ACTION_PERIOD, ACTION_REFRESH,
    ACTION_WHY, Asked, MORE_DEFINITION, MORE_HISTORY,
};
use crate::slack::inbound::{ActionRequest, Verifier};
use crate::spec::Period;
use crate::tr_mrkdwn;
use crate::warehouse::cost::DEFAULT_PRICE_PER_TIB_USD;

/// Where Slack sends clicks (the app manifest's `interactivity.request_url` ends with this).
pub const INTERACTIONS_PATH: &str = "/slack/interactions";
/// Largest interaction body accepted: Slack sends the whole message with a click, and a
/// post with a 200-row table block is tens of kilobytes.
pub const MAX_INTERACTION_BODY_BYTES: usize = 256 * 1024;

/// The question a post's buttons carry, as a query again; `None` when a part of it cannot
/// be read (never a guess: a guess would answer a different question).
fn query_of(asked: &Asked) -> Option<Query> {
    let grain = match asked.grain.as_deref() {
        Some(name) => Some(Grain::from_name(name)?),
        None => None,
    };
    let compare = match asked.compare.as_deref() {
        Some(name) => Some(crate::spec::Compare::parse(name)?),
        None => None,
    };
    Some(Query {
        name: asked.name.clone(),
        period: Some(asked.period.parse().ok()?),
        grain,
        compare,
        by: asked.by.clone(),
        filters: asked
            .filters
            .iter()
            .map(|(dimension, values)| Filter {
                dimension: dimension.clone(),
                values: values.clone(),
            })
            .collect(),
        private: asked.private,
        why: false,
    })
}

/// How a click's answer is given: in the clicker's language, from the warehouse now
/// (`fresh`, "Refresh") or through the cache, headed by what was clicked.
struct HowAnswered<'a> {
    locale: Locale,
    fresh: bool,
    what: Option<&'a Mrkdwn>,
}

/// What a click asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Click {
    Period(Period),
    By(String),
    Refresh,
    Definition,
    History,
    Why,
    Follow,
}

fn click_of(action: &ActionRequest) -> Option<Click> {
    let value = action.value.as_str();
    Some(match action.action_id.as_str() {
        ACTION_PERIOD => Click::Period(value.parse().ok()?),
        ACTION_BY => Click::By(value.to_string()),
        ACTION_REFRESH => Click::Refresh,
        ACTION_WHY => Click::Why,
        ACTION_FOLLOW => Click::Follow,
        ACTION_DEFINITION => Click::Definition,
        ACTION_MORE if value == MORE_HISTORY => Click::History,
        ACTION_MORE if value == MORE_DEFINITION => Click::Definition,
        _ => return None,
    })
}

#[derive(Clone)]
struct InteractionState {
    verifier: Arc<Verifier>,
    handler: Arc<CommandHandler>,
}

/// The interactions route, to merge into `serve`'s router beside `/slack/commands`, with
/// the same `verifier`.
pub fn router(verifier: Arc<Verifier>, handler: Arc<CommandHandler>) -> Router {
    let state = InteractionState { verifier, handler };
    Router::new()
        .route(INTERACTIONS_PATH, post(interaction))
        .layer(DefaultBodyLimit::max(MAX_INTERACTION_BODY_BYTES))
        .with_state(state)
}

async fn interaction(
    State(state): State<InteractionState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match state.verifier.form(&headers, &body) {
        Ok(form) => form,
        Err((status, why)) => {
            tracing::warn!(status = status.as_u16(), why, "interaction rejected");
            return (status, why.to_string()).into_response();
        }
    };
    let Some(event) = form
        .get("payload")
        .and_then(|p| serde_json::from_str::<SlackInteractionEvent>(p).ok())
    else {
        return (StatusCode::BAD_REQUEST, "no interaction payload").into_response();
    };
    for action in actions_in(&event) {
        state.handler.on_action(action);
    }
    // Slack wants the acknowledgement within three seconds; the answer follows.
    StatusCode::OK.into_response()
}

/// The clicks in an interaction payload (only `block_actions` on messages have any).
pub fn actions_in(event: &SlackInteractionEvent) -> Vec<ActionRequest> {
    let SlackInteractionEvent::BlockActions(event) = event else {
        return Vec::new();
    };
    let (message_ts, container_channel, ephemeral) = match &event.container {
        SlackInteractionActionContainer::Message(m) => (
            Some(m.message_ts.0.clone()),
            m.channel_id.as_ref().map(|c| c.0.clone()),
            m.is_ephemeral.unwrap_or(false),
        ),
        _ => (None, None, false),
    };
    let channel_id = event
        .channel
        .as_ref()
        .map(|c| c.id.0.clone())
        .or(container_channel)
        .unwrap_or_default();
    let channel_name = event
        .channel
        .as_ref()
        .and_then(|c| c.name.clone())
        .unwrap_or_default();
    // A post that is itself a reply answers in its parent's thread.
    let thread_ts = event
        .message
        .as_ref()
        .and_then(|m| m.origin.thread_ts.as_ref().map(|t| t.0.clone()))
        .or(message_ts)
        .filter(|_| !ephemeral);
    let user_id = event
        .user
        .as_ref()
        .map(|u| u.id.0.clone())
        .unwrap_or_default();
    event
        .actions
        .iter()
        .flatten()
        .map(|a| ActionRequest {
            user_id: user_id.clone(),
            channel_id: channel_id.clone(),
            channel_name: channel_name.clone(),
            thread_ts: thread_ts.clone(),
            action_id: a.action_id.0.clone(),
            block_id: a.block_id.as_ref().map(|b| b.0.clone()).unwrap_or_default(),
            value: a
                .selected_option
                .as_ref()
                .map(|o| o.value.clone())
                .or_else(|| a.value.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// The Socket Mode callback for interactive envelopes: the same handling as over HTTP.
pub fn on_action(handler: Arc<CommandHandler>) -> crate::slack::inbound::OnAction {
    Arc::new(move |action| handler.on_action(action))
}

impl CommandHandler {
    /// Takes a click: answered in the background (tracked, so `serve` waits for it).
    pub fn on_action(self: &Arc<Self>, action: ActionRequest) {
        let this = self.clone();
        self.answers.spawn(async move {
            let started = Instant::now();
            let mut audit = ClickAudit::default();
            let outcome = this.handle_action(&action, &mut audit).await;
            this.record_line(
                &action.user_id,
                &action.channel_id,
                &format!("(click) {} {}", action.action_id, action.value),
                (&audit.entries, &audit.policies, audit.rows, audit.bytes),
                &outcome,
                started,
            );
        });
    }

    /// The Follow button under a post: that exact question followed by the clicker with
    /// the defaults (daily at the default time, their own timezone), said privately with
    /// an Unfollow button.
    async fn follow_clicked(
        &self,
        action: &ActionRequest,
        (asker, viewer): (&super::access::Asker, &Viewer<'_>),
        catalog: &crate::catalog::Catalog,
        mut query: Query,
        locale: crate::i18n::Locale,
    ) -> String {
        query.private = false;
        let resolved = resolve_query(
            catalog,
            query,
            Called::default(),
            self.warehouse.dialect(),
            self.timezone,
            viewer,
            locale,
        );
        let reply = self.follow_resolved(resolved, asker, catalog, locale).await;
        reply_privately(
            &self.slack,
            &AnswerTarget::click(action),
            (&reply.text(locale), reply.blocks(locale).as_ref()),
            reply.outcome(),
        )
        .await
    }

    /// A question resolved, followed by `asker` with the defaults: the reply saying so.
    async fn follow_resolved(
        &self,
        resolved: super::resolve::Resolved,
        asker: &super::access::Asker,
        catalog: &crate::catalog::Catalog,
        locale: crate::i18n::Locale,
    ) -> Reply {
        let request = super::grammar::FollowRequest {
            question: String::new(),
            cadence: None,
            at: None,
            channel: None,
        };
        let resolved = super::resolve::follow_of(resolved, request, locale);
        let context = self.context(catalog, locale, false);
        match super::answer::answer_resolved(&context, resolved, asker).await {
            super::context::Answer::Text(reply) => reply,
            super::context::Answer::Chart { .. } => {
                Reply::Mistake(tr_mrkdwn!(locale, "grammar-follow-usage"))
            }
        }
    }

    /// An Unfollow button: the clicker's own follow, or the follow of the channel they
    /// clicked in; never anyone else's.
    async fn unfollow_clicked(
        &self,
        action: &ActionRequest,
        locale: crate::i18n::Locale,
    ) -> String {
        let Some((target, question)) = super::reply::unfollow_of(&action.value) else {
            return tr_mrkdwn!(locale, "action-outdated");
        };
        let Some(ledger) = &self.ledger else {
            return tr_mrkdwn!(locale, "follow-needs-bot");
        };
        // Theirs: their own, the channel's they clicked in, or a channel's they made.
        let made_it = || async {
            ledger
                .follows(Some(target))
                .await
                .unwrap_or_default()
                .iter()
                .any(|f| f.question == question && f.person == action.user_id)
        };
        if target != action.user_id && target != action.channel_id && !made_it().await {
            return tr_mrkdwn!(locale, "unfollow-unknown", which = question);
        }
        match ledger.remove_follow(target, question).await {
            Ok(true) => {
                tracing::info!(person = %action.user_id, target = %target, question = %question, "unfollowed");
                tr_mrkdwn!(locale, "unfollow-button-done", question = question)
            }
            Ok(false) => tr_mrkdwn!(locale, "unfollow-unknown", which = question),
            Err(error) => tr_mrkdwn!(locale, "follow-failed", error = error.to_string().as_str()),
        }
    }

    /// Answers one click; the outcome for the audit line, whose other facts go in `audit`.
    async fn handle_action(&self, action: &ActionRequest, audit: &mut ClickAudit) -> String {
        let guess = self.locale;
        let locale = self.asker_locale_of(&action.user_id, guess).await;
        let asker = self.asker_for_action(action).await;
        let catalog = snapshot(&self.catalog);
        // A button under a question asked back: its value is the whole question.
        if action.action_id.starts_with(ACTION_ASK) {
            let resolved = self.resolve(&catalog, &action.value, &asker, locale);
            audit.entries = resolved.entries();
            let how = HowAnswered {
                locale,
                fresh: false,
                what: None,
            };
            return self
                .answer_click(action, &asker, &catalog, resolved, how, audit)
                .await;
        }
        if action.action_id == super::reply::ACTION_UNFOLLOW {
            let text = self.unfollow_clicked(action, locale).await;
            // On the Home tab (no channel): the tab shows it, published again.
            if action.channel_id.is_empty() {
                self.publish_home(&action.user_id, Some(&text)).await;
                return "follows".into();
            }
            return self.tell(action, &text, "follows").await;
        }
        // A Follow button on the Home tab's catalog: that entry, with the defaults.
        if action.action_id == super::home::ACTION_FOLLOW_ENTRY {
            let resolved = self.resolve(&catalog, &action.value, &asker, locale);
            audit.entries = resolved.entries();
            let reply = self
                .follow_resolved(resolved, &asker, &catalog, locale)
                .await;
            // The tab, published again, says what happened (a refusal too).
            self.publish_home(&action.user_id, Some(&reply.text(locale)))
                .await;
            return reply.outcome().to_string();
        }
        let Some(asked) = Asked::from_block_id(&action.block_id) else {
            return self
                .tell(action, &tr_mrkdwn!(locale, "action-outdated"), "mistake")
                .await;
        };
        let (Some(click), Some(mut query)) = (click_of(action), query_of(&asked)) else {
            return self
                .tell(action, &tr_mrkdwn!(locale, "action-outdated"), "mistake")
                .await;
        };
        let viewer = Viewer {
            catalog: &catalog,
            asker: &asker,
            policy: self.policy,
        };
        audit.entries.push(asked.name.clone());
        let what = match &click {
            Click::Definition => {
                let text = reply::describe(&viewer, &asked.name, self.warehouse.dialect(), locale)
                    .unwrap_or_else(|| reply::unknown_name(&viewer, &asked.name, locale));
                return self.tell(action, &text, "catalog").await;
            }
            Click::History => return self.history(action, &viewer, &asked.name, locale).await,
            Click::Follow => {
                return self
                    .follow_clicked(action, (&asker, &viewer), &catalog, query, locale)
                    .await;
            }
            Click::Period(period) => {
                query.period = Some(*period);
                tr_mrkdwn!(
                    locale,
                    "action-asked-period",
                    period = period.words(locale),
                    user = Mrkdwn::mention(&action.user_id)
                )
            }
            Click::By(dimension) => {
                query.by = Some(dimension.clone());
                let label = catalog
                    .metric(&asked.name)
                    .and_then(|m| m.dimensions.get(dimension).cloned())
                    .unwrap_or_else(|| dimension.clone());
                tr_mrkdwn!(
                    locale,
                    "action-asked-by",
                    dimension = label,
                    user = Mrkdwn::mention(&action.user_id)
                )
            }
            Click::Refresh => tr_mrkdwn!(
                locale,
                "action-asked-refresh",
                user = Mrkdwn::mention(&action.user_id)
            ),
            Click::Why => {
                query.why = true;
                tr_mrkdwn!(
                    locale,
                    "action-asked-why",
                    user = Mrkdwn::mention(&action.user_id)
                )
            }
        };
        let what = Mrkdwn::formatted(what);
        let resolved = resolve_query(
            &catalog,
            query,
            Called::default(),
            self.warehouse.dialect(),
            self.timezone,
            &viewer,
            locale,
        );
        let how = HowAnswered {
            locale,
            fresh: click == Click::Refresh,
            what: Some(&what),
        };
        self.answer_click(action, &asker, &catalog, resolved, how, audit)
            .await
    }

    /// Answers what a click resolved to: a reply to the clicker, or a chart where they
    /// clicked (counted against their limit, answered in a query slot).
    async fn answer_click(
        &self,
        action: &ActionRequest,
        asker: &Asker,
        catalog: &Catalog,
        resolved: Resolved,
        how: HowAnswered<'_>,
        audit: &mut ClickAudit,
    ) -> String {
        let HowAnswered {
            locale,
            fresh,
            what,
        } = how;
        if let Resolved::Reply(reply) = &resolved {
            return self
                .tell(action, &reply.text(locale), reply.outcome())
                .await;
        }
        audit.policies = resolved.policies();
        let admitted = match self.throttle.admit(&action.user_id) {
            Ok(admitted) => admitted,
            Err(per_minute) => {
                let text = Reply::TooManyQuestions { per_minute }.text(locale);
                return self.tell(action, &text, "rate_limited").await;
            }
        };
        // "Refresh" means the warehouse now, not the answer cached a minute ago.
        let context = self.context(catalog, locale, fresh);
        let answer = {
            let _slot = self.throttle.query_slot(&admitted).await;
            answer_resolved(&context, resolved, asker).await
        };
        audit.rows = answer.rows();
        audit.bytes = answer.bytes();
        let target = AnswerTarget::click(action);
        deliver_answer(&self.slack, answer, &target, what, locale).await
    }

    /// A text only the clicker sees, where they clicked.
    async fn tell(&self, action: &ActionRequest, text: &str, outcome: &str) -> String {
        reply_privately(
            &self.slack,
            &AnswerTarget::click(action),
            (text, None),
            outcome,
        )
        .await
    }

    /// The report's last runs, to the clicker alone.
    async fn history(
        &self,
        action: &ActionRequest,
        viewer: &Viewer<'_>,
        name: &str,
        locale: Locale,
    ) -> String {
        let price = self
            .meter
            .as_ref()
            .map_or(DEFAULT_PRICE_PER_TIB_USD, |m| m.config.price_per_tib_usd);
        let text = history_text(
            self.ledger.as_deref(),
            Some(self.slack.slack()),
            viewer,
            name,
            locale,
            price,
        )
        .await;
        self.tell(action, &text, "catalog").await
    }

    async fn asker_for_action(&self, action: &ActionRequest) -> Asker {
        let usergroups = self.usergroups_of(&action.user_id).await;
        Asker {
            user_id: action.user_id.clone(),
            channel_id: action.channel_id.clone(),
            channel_name: action.channel_name.clone(),
            usergroups,
            operator: false,
        }
    }
}

/// What a click's audit line records besides its outcome.
#[derive(Debug, Default)]
struct ClickAudit {
    entries: Vec<String>,
    policies: Vec<String>,
    rows: usize,
    bytes: Option<u64>,
}
