//! `POST /slack/events`: the Events API over HTTP, signed like commands — its
//! `url_verification` answered with the challenge, and `app_home_opened` publishing the
//! person's Home tab in the background (Slack wants its answer within three seconds).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use slack_morphism::prelude::*;

use super::slash::CommandHandler;
use crate::slack::inbound::{OnHomeOpened, Verifier, home_opened_by};

/// Where Slack sends events (the app manifest's `event_subscriptions.request_url`).
pub const EVENTS_PATH: &str = "/slack/events";

/// Largest event body accepted; an `app_home_opened` event is a few kilobytes.
pub const MAX_EVENT_BODY_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct EventsState {
    verifier: Arc<Verifier>,
    handler: Arc<CommandHandler>,
}

/// The events route, to merge into `serve`'s router; `verifier` is the one the command
/// and interaction routes share.
pub fn router(verifier: Arc<Verifier>, handler: Arc<CommandHandler>) -> Router {
    Router::new()
        .route(EVENTS_PATH, post(event))
        .layer(DefaultBodyLimit::max(MAX_EVENT_BODY_BYTES))
        .with_state(EventsState { verifier, handler })
}

/// What publishes a Home tab when it is opened, for Socket Mode.
pub fn on_home_opened(handler: Arc<CommandHandler>) -> OnHomeOpened {
    Arc::new(move |user| {
        let handler_for_task = handler.clone();
        handler
            .answers
            .spawn(async move { handler_for_task.publish_home(&user, None).await });
    })
}

async fn event(State(state): State<EventsState>, headers: HeaderMap, body: Bytes) -> Response {
    let text = match state.verifier.verify(&headers, &body) {
        Ok(text) => text,
        Err((status, why)) => {
            tracing::warn!(status = status.as_u16(), why, "Slack event rejected");
            return (status, why.to_string()).into_response();
        }
    };
    match serde_json::from_str::<SlackPushEvent>(text) {
        Ok(SlackPushEvent::UrlVerification(verification)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"challenge": verification.challenge}).to_string(),
        )
            .into_response(),
        Ok(SlackPushEvent::EventCallback(callback)) => {
            if let Some(user) = home_opened_by(&callback) {
                on_home_opened(state.handler.clone())(user);
            }
            StatusCode::OK.into_response()
        }
        Ok(SlackPushEvent::AppRateLimited(limited)) => {
            tracing::warn!(?limited, "Slack is holding back events (app_rate_limited)");
            StatusCode::OK.into_response()
        }
        // An event kpibot does not read is acknowledged, so Slack does not send it again.
        Err(error) => {
            tracing::debug!(error = %error, "an event kpibot does not read");
            StatusCode::OK.into_response()
        }
    }
}
