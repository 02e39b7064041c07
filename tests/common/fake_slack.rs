//! A local Slack Web API for the tests: axum on 127.0.0.1, speaking Slack's wire format.
//! It checks the bearer token, stores what was posted, enforces Slack's documented rules
//! (`ok:false` with HTTP 200, Block Kit limits, upload length, completed files only) and
//! injects faults per method on request: 429 with Retry-After, 5xx, `ok:false` codes,
//! slow answers and connections dropped after the work was done.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::slack_limits::{Limiter, SlackLimits};

/// The bot token the fake accepts.
pub const TOKEN: &str = "xoxb-fake-test-token";
/// The app-level token the fake accepts for Socket Mode (`apps.connections.open`).
pub const APP_TOKEN: &str = "xapp-fake-app-token";

/// Calls a minute per tier for kpibot where this fake enforces no tiers (the default):
/// calls are not paced by them either.
pub const UNPACED_CALLS_PER_MINUTE: u32 = 100_000;

/// Slack's limits, as documented for Block Kit and chat.postMessage.
pub const MAX_BLOCKS: usize = 50;
pub const MAX_HEADER_CHARS: usize = 150;
pub const MAX_SECTION_TEXT_CHARS: usize = 3000;
pub const MAX_SECTION_FIELDS: usize = 10;
pub const MAX_FIELD_CHARS: usize = 2000;
pub const MAX_ALT_TEXT_CHARS: usize = 2000;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
pub const MAX_TEXT_CHARS: usize = 40_000;

/// A fault to inject into one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After` seconds; nothing is done.
    RateLimited { retry_after_seconds: u64 },
    /// This HTTP status (e.g. 500, 503) with an HTML body; nothing is done.
    Status(u16),
    /// HTTP 200 with `{"ok": false, "error": code}`; nothing is done.
    SlackError(&'static str),
    /// The work is done, then the answer comes this late.
    Slow(Duration),
    /// The work is done, then the answer waits until the test opens the gate: a call
    /// held for exactly as long as the race it stages, however slow the machine.
    Hold(super::Gate),
    /// The work is done, then the connection is cut before the answer's body.
    DropAfterProcessing,
    /// chat.postMessage only: `invalid_blocks` because the file is still processing.
    FileNotReady,
}

#[derive(Debug, Clone)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub at: Instant,
    pub fault: Option<Fault>,
}

#[derive(Debug, Clone)]
struct Channel {
    id: String,
    name: String,
    is_member: bool,
}

#[derive(Debug, Default)]
struct File {
    announced_length: usize,
    uploaded: Option<usize>,
    completed: bool,
}

/// Random faults for soak runs: each call fails with `rate` probability, picking one of
/// `faults` (deterministic for a seed).
#[derive(Debug, Clone)]
struct RandomFaults {
    rate: f64,
    faults: Vec<Fault>,
    state: u64,
}

impl RandomFaults {
    fn next_fraction(&mut self) -> f64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Default)]
struct Inner {
    base_url: String,
    channels: Vec<Channel>,
    /// `chat.postEphemeral` messages: (channel, user, body).
    ephemerals: Vec<(String, String, Value)>,
    /// Replies posted to a slash command's response_url: (id, body).
    responses: Vec<(String, Value)>,
    /// User groups: (id, members).
    usergroups: Vec<(String, Vec<String>)>,
    /// A workspace that does not take Slack's chart and table blocks (`invalid_blocks`).
    reject_native: bool,
    /// Each user's Slack language (`users.info` with `include_locale`); others read
    /// `en-US`, Slack's default.
    user_locales: HashMap<String, String>,
    /// Each user's timezone (`users.info` `tz`); others read `Asia/Tokyo`.
    user_timezones: HashMap<String, String>,
    /// Home tabs published (`views.publish`): (user, view).
    views: Vec<(String, Value)>,
    /// Socket Mode: where clients connect, the open connections, and the acks received.
    socket_url: String,
    sockets: Vec<tokio::sync::mpsc::UnboundedSender<String>>,
    socket_acks: Vec<Value>,
    files: HashMap<String, File>,
    messages: Vec<Posted>,
    faults: HashMap<String, VecDeque<Fault>>,
    random: Option<RandomFaults>,
    calls: Vec<Call>,
    next_id: u64,
    /// Slack's rate limits, when a test asks for them.
    limiter: Option<Limiter>,
}

#[derive(Clone)]
pub struct FakeSlack {
    /// The Web API base URL, for `KPIBOT__SLACK__API_URL`.
    pub api_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSlack {
    /// Starts the fake on a free port with the given channels: `(id, name, bot is member)`.
    pub async fn start(channels: &[(&str, &str, bool)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner {
            base_url: base_url.clone(),
            channels: channels
                .iter()
                .map(|(id, name, is_member)| Channel {
                    id: id.to_string(),
                    name: name.to_string(),
                    is_member: *is_member,
                })
                .collect(),
            ..Inner::default()
        }));
        let sockets = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        inner.lock().unwrap().socket_url = format!("ws://{}/link", sockets.local_addr().unwrap());
        tokio::spawn(serve_sockets(sockets, inner.clone()));
        let app = Router::new()
            .route("/api/{method}", get(api).post(api))
            .route("/upload/{file_id}", post(upload))
            .route("/response/{id}", post(response_url))
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            api_url: format!("{base_url}/api"),
            inner,
        }
    }

    /// Starts the fake on its own thread and runtime, for tests that run the real binary
    /// from synchronous code.
    pub fn start_in_background(channels: &[(&str, &str, bool)]) -> Self {
        let channels: Vec<(String, String, bool)> = channels
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
            .collect();
        super::start_in_background(move || async move {
            let refs: Vec<(&str, &str, bool)> = channels
                .iter()
                .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
                .collect();
            FakeSlack::start(&refs).await
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap())
    }

    /// Queues faults for the next calls of `method` (e.g. `chat.postMessage`).
    pub fn fail_next(&self, method: &str, faults: impl IntoIterator<Item = Fault>) {
        self.with(|s| {
            s.faults
                .entry(method.to_string())
                .or_default()
                .extend(faults)
        });
    }

    /// Drops every fault still queued (a process that was killed did not use them up).
    pub fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }

    /// From now on, every call fails with probability `rate`, with one of `faults`.
    pub fn fail_randomly(&self, rate: f64, faults: Vec<Fault>, seed: u64) {
        self.with(|s| {
            s.random = Some(RandomFaults {
                rate,
                faults,
                state: seed.max(1),
            })
        });
    }

    /// Adds a channel: `(id, name, bot is member)`.
    pub fn add_channel(&self, id: &str, name: &str, is_member: bool) {
        self.with(|s| {
            s.channels.push(Channel {
                id: id.into(),
                name: name.into(),
                is_member,
            })
        });
    }

    /// A response_url for a slash command sent to kpibot.
    pub fn response_url(&self, id: &str) -> String {
        self.with(|s| format!("{}/response/{id}", s.base_url))
    }

    /// Replies posted to the response_url with this id.
    pub fn responses(&self, id: &str) -> Vec<Value> {
        self.with(|s| {
            s.responses
                .iter()
                .filter(|(i, _)| i == id)
                .map(|(_, v)| v.clone())
                .collect()
        })
    }

    /// Ephemeral messages: (channel, user, body).
    pub fn ephemerals(&self) -> Vec<(String, String, Value)> {
        self.with(|s| s.ephemerals.clone())
    }

    /// Socket Mode connections open now.
    pub fn socket_connections(&self) -> usize {
        self.with(|s| {
            s.sockets.retain(|tx| !tx.is_closed());
            s.sockets.len()
        })
    }

    /// Sends a slash command over Socket Mode, as Slack does, on one open connection.
    pub fn push_slash_command(&self, envelope_id: &str, payload: Value) -> bool {
        let envelope = json!({
            "envelope_id": envelope_id,
            "type": "slash_commands",
            "accepts_response_payload": true,
            "payload": payload,
        })
        .to_string();
        self.with(|s| s.sockets.iter().any(|tx| tx.send(envelope.clone()).is_ok()))
    }

    /// Sends a click (a `block_actions` payload) over Socket Mode, as Slack does.
    pub fn push_interaction(&self, envelope_id: &str, payload: Value) -> bool {
        let envelope = json!({
            "envelope_id": envelope_id,
            "type": "interactive",
            "accepts_response_payload": false,
            "payload": payload,
        })
        .to_string();
        self.with(|s| s.sockets.iter().any(|tx| tx.send(envelope.clone()).is_ok()))
    }

    /// Sends an Events API event (an `event_callback` body) over Socket Mode, as Slack
    /// does.
    pub fn push_event(&self, envelope_id: &str, payload: Value) -> bool {
        let envelope = json!({
            "envelope_id": envelope_id,
            "type": "events_api",
            "accepts_response_payload": false,
            "retry_attempt": 0,
            "retry_reason": "",
            "payload": payload,
        })
        .to_string();
        self.with(|s| s.sockets.iter().any(|tx| tx.send(envelope.clone()).is_ok()))
    }

    /// Every Home tab published (`views.publish`), in order: (user, view).
    pub fn published_views(&self) -> Vec<(String, Value)> {
        self.with(|s| s.views.clone())
    }

    /// The acknowledgements clients sent back over Socket Mode.
    pub fn socket_acks(&self) -> Vec<Value> {
        self.with(|s| s.socket_acks.clone())
    }

    /// Makes the workspace refuse `data_visualization` and `data_table` blocks.
    pub fn reject_native_blocks(&self) {
        self.with(|s| s.reject_native = true);
    }

    /// Sets the language a user reads Slack in (`ja-JP`, `en-US`).
    pub fn set_user_locale(&self, user: &str, locale: &str) {
        self.with(|s| {
            s.user_locales.insert(user.into(), locale.into());
        });
    }

    /// Sets a user's timezone as their Slack profile gives it (`America/New_York`).
    pub fn set_user_timezone(&self, user: &str, timezone: &str) {
        self.with(|s| {
            s.user_timezones.insert(user.into(), timezone.into());
        });
    }

    /// Adds a user group with these members.
    pub fn add_usergroup(&self, id: &str, members: &[&str]) {
        self.with(|s| {
            s.usergroups
                .push((id.into(), members.iter().map(|m| m.to_string()).collect()))
        });
    }

    /// A report post already in `channel`, as kpibot posts them (its metadata names the
    /// report and slot): what a process that died after posting left behind.
    pub fn add_post(&self, channel: &str, report_id: &str, slot: &str) {
        self.add_bot_message(
            channel,
            kpibot::render::message::METADATA_EVENT_TYPE,
            json!({"report_id": report_id, "slot": slot}),
        );
    }

    /// A message of the bot's already in `channel` with this metadata (a digest a process
    /// posted before it died).
    pub fn add_bot_message(&self, channel: &str, event_type: &str, payload: Value) {
        self.with(|s| {
            s.next_id += 1;
            let ts = format!("{}.{:06}", 1_800_000_000 + s.next_id, s.next_id);
            let body = json!({
                "type": "message", "bot_id": "B0KPIBOT", "text": event_type, "ts": ts,
                "metadata": {"event_type": event_type, "event_payload": payload},
            });
            s.messages.push(Posted {
                channel: channel.to_string(),
                ts,
                thread_ts: None,
                body,
                at: Instant::now(),
            });
        })
    }

    /// `count` messages from people in `channel`, newer than anything posted so far: a busy
    /// channel the bot must search through.
    pub fn add_chatter(&self, channel: &str, count: usize) {
        self.with(|s| {
            for _ in 0..count {
                s.next_id += 1;
                let ts = format!("{}.{:06}", 1_800_000_000 + s.next_id, s.next_id);
                let body = json!({"type": "message", "user": "U0CHATTY", "text": "ok!", "ts": ts});
                s.messages.push(Posted {
                    channel: channel.to_string(),
                    ts,
                    thread_ts: None,
                    body,
                    at: Instant::now(),
                });
            }
        })
    }

    /// Every message posted, in order.
    pub fn messages(&self) -> Vec<Posted> {
        self.with(|s| s.messages.clone())
    }

    /// Messages posted to `channel` (an ID).
    /// How many times `chat.update` edited the message at `ts`.
    pub fn edits_of(&self, ts: &str) -> u64 {
        self.with(|s| {
            s.messages
                .iter()
                .find(|m| m.ts == ts)
                .and_then(|m| m.body["edited_count"].as_u64())
                .unwrap_or(0)
        })
    }

    pub fn messages_in(&self, channel: &str) -> Vec<Posted> {
        self.with(|s| {
            s.messages
                .iter()
                .filter(|m| m.channel == channel)
                .cloned()
                .collect()
        })
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    /// Calls of one method.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| c.method == method)
                .cloned()
                .collect()
        })
    }

    /// From now on, Slack's rate limits hold: tiers, posts per channel, history pages.
    pub fn enforce_limits(&self, limits: SlackLimits) {
        self.with(|s| s.limiter = Some(Limiter::new(limits)));
    }

    /// How many calls of `method` were answered 429.
    pub fn rate_limited(&self, method: &str) -> usize {
        self.with(|s| {
            s.calls
                .iter()
                .filter(|c| {
                    c.method == method && matches!(c.fault, Some(Fault::RateLimited { .. }))
                })
                .count()
        })
    }

    /// How many faults were injected so far.
    pub fn faults_injected(&self) -> usize {
        self.with(|s| s.calls.iter().filter(|c| c.fault.is_some()).count())
    }

    /// Files completed through files.completeUploadExternal.
    pub fn completed_files(&self) -> usize {
        self.with(|s| s.files.values().filter(|f| f.completed).count())
    }
}

fn ok(mut body: Value) -> Response {
    body["ok"] = json!(true);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn slack_error(code: &str, errors: Option<Vec<String>>) -> Response {
    let mut body = json!({"ok": false, "error": code});
    if let Some(errors) = errors {
        body["errors"] = json!(errors);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// Whether an injected fault stops the work before it is done (answered at once).
fn refusal(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::RateLimited {
            retry_after_seconds,
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (
                    header::CONTENT_TYPE,
                    "application/json; charset=utf-8".to_string(),
                ),
                (header::RETRY_AFTER, retry_after_seconds.to_string()),
            ],
            json!({"ok": false, "error": "ratelimited"}).to_string(),
        )
            .into_response(),
        Fault::Status(code) => (
            StatusCode::from_u16(*code).unwrap(),
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>upstream error</body></html>",
        )
            .into_response(),
        Fault::SlackError(code) => slack_error(code, None),
        Fault::FileNotReady => slack_error(
            "invalid_blocks",
            Some(vec![
                "invalid slack file [json-pointer:/blocks/2/slack_file]".into(),
            ]),
        ),
        Fault::Slow(_) | Fault::Hold(_) | Fault::DropAfterProcessing => return None,
    })
}

/// Applies a fault that lets the work happen but spoils the answer.
async fn spoil(fault: Option<Fault>, response: Response) -> Response {
    match fault {
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            response
        }
        Some(Fault::Hold(gate)) => {
            gate.passed().await;
            response
        }
        Some(Fault::DropAfterProcessing) => {
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        _ => response,
    }
}

/// A 429 when `method` is over one of Slack's limits (if enforced); the call is marked so.
fn over_limit(state: &Mutex<Inner>, method: &str, params: &Value) -> Option<Response> {
    let mut s = state.lock().unwrap();
    let retry_after_seconds = s.limiter.as_mut()?.refuse(method, params, Instant::now())?;
    let fault = Fault::RateLimited {
        retry_after_seconds,
    };
    if let Some(call) = s.calls.last_mut() {
        call.fault = Some(fault.clone());
    }
    refusal(&fault)
}

/// Records a call and decides its fault, if any.
fn begin_call(state: &Mutex<Inner>, method: &str) -> Option<Fault> {
    let mut s = state.lock().unwrap();
    let fault = take_fault(&mut s, method);
    s.calls.push(Call {
        method: method.to_string(),
        at: Instant::now(),
        fault: fault.clone(),
    });
    fault
}

fn take_fault(s: &mut Inner, method: &str) -> Option<Fault> {
    if let Some(fault) = s.faults.get_mut(method).and_then(VecDeque::pop_front) {
        return Some(fault);
    }
    let random = s.random.as_mut()?;
    if random.next_fraction() >= random.rate {
        return None;
    }
    let index = (random.next_fraction() * random.faults.len() as f64) as usize;
    let fault = random.faults[index.min(random.faults.len() - 1)].clone();
    // An unprocessed file is only meaningful for posts; elsewhere it is a plain 500.
    if fault == Fault::FileNotReady && method != "chat.postMessage" {
        return Some(Fault::Status(500));
    }
    Some(fault)
}

/// Slack's answer to a missing or wrong bearer token; `None` when the token is right.
fn auth_refusal(headers: &HeaderMap) -> Option<Response> {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        None => Some(slack_error("not_authed", None)),
        Some(value) if value == format!("Bearer {TOKEN}") => None,
        Some(_) => Some(slack_error("invalid_auth", None)),
    }
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// Slack's Block Kit rules, as `invalid_blocks` error strings.
fn block_errors(
    blocks: &[Value],
    files: &HashMap<String, File>,
    reject_native: bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut native_charts = 0;
    // Slack refuses a message whose blocks repeat a block_id.
    let mut block_ids = std::collections::HashSet::new();
    for (i, block) in blocks.iter().enumerate() {
        if let Some(id) = block["block_id"].as_str()
            && !block_ids.insert(id)
        {
            errors.push(format!(
                "duplicate block_id {id} [json-pointer:/blocks/{i}/block_id]"
            ));
        }
    }
    if blocks.len() > MAX_BLOCKS {
        errors.push(format!(
            "no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
        ));
    }
    for (i, block) in blocks.iter().enumerate() {
        let at = |field: &str| format!("[json-pointer:/blocks/{i}/{field}]");
        match block["type"].as_str() {
            Some("header") => {
                if chars(&block["text"]["text"]) > MAX_HEADER_CHARS {
                    errors.push(format!(
                        "must be less than {} characters {}",
                        MAX_HEADER_CHARS + 1,
                        at("text/text")
                    ));
                }
            }
            Some("section") => {
                if chars(&block["text"]["text"]) > MAX_SECTION_TEXT_CHARS {
                    errors.push(format!(
                        "must be less than 3001 characters {}",
                        at("text/text")
                    ));
                }
                let fields = block["fields"].as_array().cloned().unwrap_or_default();
                if fields.len() > MAX_SECTION_FIELDS {
                    errors.push(format!(
                        "must provide no more than 10 items {}",
                        at("fields")
                    ));
                }
                if fields.iter().any(|f| chars(&f["text"]) > MAX_FIELD_CHARS) {
                    errors.push(format!(
                        "must be less than 2001 characters {}",
                        at("fields")
                    ));
                }
                if block.get("text").is_none() && fields.is_empty() {
                    errors.push(format!("must provide text or fields {}", at("text")));
                }
            }
            Some("image") => {
                if chars(&block["alt_text"]) > MAX_ALT_TEXT_CHARS {
                    errors.push(format!(
                        "must be less than 2001 characters {}",
                        at("alt_text")
                    ));
                }
                if let Some(id) = block["slack_file"]["id"].as_str()
                    && !files.get(id).is_some_and(|f| f.completed)
                {
                    errors.push(format!("invalid slack file {}", at("slack_file")));
                }
            }
            Some("context") => {
                let elements = block["elements"].as_array().cloned().unwrap_or_default();
                if elements.is_empty() || elements.len() > MAX_CONTEXT_ELEMENTS {
                    errors.push(format!("must provide 1 to 10 items {}", at("elements")));
                }
                if elements
                    .iter()
                    .any(|e| chars(&e["text"]) > MAX_SECTION_TEXT_CHARS)
                {
                    errors.push(format!(
                        "must be less than 3001 characters {}",
                        at("elements")
                    ));
                }
            }
            Some("divider") => {}
            Some("data_visualization" | "data_table") if reject_native => {
                errors.push(format!(
                    "unsupported block type {} {}",
                    block["type"],
                    at("type")
                ));
            }
            Some("data_visualization") => {
                native_charts += 1;
                errors.extend(chart_errors(block, &at));
            }
            Some("data_table") => errors.extend(table_errors(block, &at)),
            Some("actions") => errors.extend(actions_errors(block, &at)),
            other => errors.push(format!("unsupported block type {other:?} {}", at("type"))),
        }
    }
    if native_charts > MAX_NATIVE_CHARTS {
        errors.push(format!(
            "no more than {MAX_NATIVE_CHARTS} data_visualization blocks allowed [json-pointer:/blocks]"
        ));
    }
    errors
}

/// Slack's Block Kit rules for blocks that need no uploaded file, for tests of the fake.
pub fn check_blocks(blocks: &[Value]) -> Vec<String> {
    block_errors(blocks, &HashMap::new(), false)
}

/// Slack's limits on an `actions` block and its elements.
const MAX_BLOCK_ID_CHARS: usize = 255;
const MAX_ACTION_ELEMENTS: usize = 25;
const MAX_OPTION_TEXT_CHARS: usize = 75;
const MAX_OPTION_VALUE_CHARS: usize = 150;
const MAX_SELECT_OPTIONS: usize = 100;
const MAX_OVERFLOW_OPTIONS: usize = 5;
const MAX_BUTTON_VALUE_CHARS: usize = 2000;

fn actions_errors(block: &Value, at: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut errors = Vec::new();
    if chars(&block["block_id"]) > MAX_BLOCK_ID_CHARS {
        errors.push(format!(
            "must be less than 256 characters {}",
            at("block_id")
        ));
    }
    let elements = block["elements"].as_array().cloned().unwrap_or_default();
    if elements.is_empty() || elements.len() > MAX_ACTION_ELEMENTS {
        errors.push(format!("must provide 1 to 25 items {}", at("elements")));
    }
    let mut ids = std::collections::HashSet::new();
    for (j, e) in elements.iter().enumerate() {
        let here = |f: &str| at(&format!("elements/{j}/{f}"));
        let id = e["action_id"].as_str().unwrap_or_default();
        if id.is_empty() || id.len() > MAX_BLOCK_ID_CHARS || !ids.insert(id.to_string()) {
            errors.push(format!("action_id must be unique {}", here("action_id")));
        }
        let options_ok = |max: usize| {
            let options = e["options"].as_array().cloned().unwrap_or_default();
            !options.is_empty()
                && options.len() <= max
                && options.iter().all(|o| {
                    o["text"]["type"] == "plain_text"
                        && (1..=MAX_OPTION_TEXT_CHARS).contains(&chars(&o["text"]["text"]))
                        && (1..=MAX_OPTION_VALUE_CHARS).contains(&chars(&o["value"]))
                })
        };
        let ok = match e["type"].as_str() {
            Some("button") => {
                (1..=MAX_OPTION_TEXT_CHARS).contains(&chars(&e["text"]["text"]))
                    && chars(&e["value"]) <= MAX_BUTTON_VALUE_CHARS
            }
            Some("static_select") => options_ok(MAX_SELECT_OPTIONS),
            Some("overflow") => options_ok(MAX_OVERFLOW_OPTIONS),
            _ => false,
        };
        if !ok {
            errors.push(format!("invalid element {}", here("type")));
        }
    }
    errors
}

/// Slack's limits on a `data_visualization` block.
const MAX_NATIVE_CHARTS: usize = 2;
const MAX_CHART_TITLE_CHARS: usize = 50;
const MAX_CHART_SERIES: usize = 6;
const MAX_CHART_CATEGORIES: usize = 20;
const MAX_CHART_LABEL_CHARS: usize = 20;
const MAX_PIE_SEGMENTS: usize = 12;
/// Slack's limits on a `data_table` block.
const MAX_TABLE_ROWS: usize = 101;
const MAX_TABLE_CHARS: usize = 10_000;
const MAX_TABLE_COLUMNS: usize = 20;

fn chart_errors(block: &Value, at: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut errors = Vec::new();
    let title = chars(&block["title"]);
    if title == 0 || title > MAX_CHART_TITLE_CHARS {
        errors.push(format!(
            "must be 1 to {MAX_CHART_TITLE_CHARS} characters {}",
            at("title")
        ));
    }
    let chart = &block["chart"];
    match chart["type"].as_str() {
        Some("line" | "bar" | "area") => {
            let categories: Vec<&str> = chart["axis_config"]["categories"]
                .as_array()
                .map(|c| c.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if categories.is_empty() || categories.len() > MAX_CHART_CATEGORIES {
                errors.push(format!(
                    "must provide 1 to {MAX_CHART_CATEGORIES} categories {}",
                    at("chart/axis_config/categories")
                ));
            }
            if categories
                .iter()
                .any(|c| c.chars().count() > MAX_CHART_LABEL_CHARS)
            {
                errors.push(format!(
                    "labels must be at most {MAX_CHART_LABEL_CHARS} characters {}",
                    at("chart/axis_config/categories")
                ));
            }
            let series = chart["series"].as_array().cloned().unwrap_or_default();
            if series.is_empty() || series.len() > MAX_CHART_SERIES {
                errors.push(format!(
                    "must provide 1 to {MAX_CHART_SERIES} series {}",
                    at("chart/series")
                ));
            }
            let mut names = std::collections::HashSet::new();
            for (j, s) in series.iter().enumerate() {
                let name = s["name"].as_str().unwrap_or_default();
                if name.is_empty()
                    || name.chars().count() > MAX_CHART_LABEL_CHARS
                    || !names.insert(name)
                {
                    errors.push(format!(
                        "series names must be unique and 1 to {MAX_CHART_LABEL_CHARS} characters {}",
                        at(&format!("chart/series/{j}/name"))
                    ));
                }
                let labels: Vec<&str> = s["data"]
                    .as_array()
                    .map(|d| d.iter().filter_map(|p| p["label"].as_str()).collect())
                    .unwrap_or_default();
                let numbers = s["data"]
                    .as_array()
                    .is_some_and(|d| d.iter().all(|p| p["value"].is_number()));
                if labels != categories || !numbers {
                    errors.push(format!(
                        "data must have one number for each category, in order {}",
                        at(&format!("chart/series/{j}/data"))
                    ));
                }
            }
        }
        Some("pie") => {
            let segments = chart["segments"].as_array().map_or(0, Vec::len);
            if segments == 0 || segments > MAX_PIE_SEGMENTS {
                errors.push(format!(
                    "must provide 1 to {MAX_PIE_SEGMENTS} segments {}",
                    at("chart/segments")
                ));
            }
        }
        other => errors.push(format!(
            "unsupported chart type {other:?} {}",
            at("chart/type")
        )),
    }
    errors
}

fn table_errors(block: &Value, at: &dyn Fn(&str) -> String) -> Vec<String> {
    let mut errors = Vec::new();
    let rows = block["rows"].as_array().cloned().unwrap_or_default();
    if rows.len() < 2 || rows.len() > MAX_TABLE_ROWS {
        errors.push(format!(
            "must provide 2 to {MAX_TABLE_ROWS} rows {}",
            at("rows")
        ));
    }
    let width = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    if width == 0 || width > MAX_TABLE_COLUMNS {
        errors.push(format!(
            "rows must have 1 to {MAX_TABLE_COLUMNS} cells {}",
            at("rows/0")
        ));
    }
    let mut total_chars = 0;
    for (r, row) in rows.iter().enumerate() {
        let cells = row.as_array().cloned().unwrap_or_default();
        total_chars += cells.iter().map(|c| chars(&c["text"])).sum::<usize>();
        if cells.len() != width {
            errors.push(format!(
                "every row must have the same number of cells {}",
                at(&format!("rows/{r}"))
            ));
        }
        for (c, cell) in cells.iter().enumerate() {
            let ok = match cell["type"].as_str() {
                Some("raw_text") => chars(&cell["text"]) >= 1,
                Some("raw_number") => cell["value"].is_number() && chars(&cell["text"]) >= 1,
                Some("rich_text") => r > 0,
                _ => false,
            };
            if !ok {
                errors.push(format!("invalid cell {}", at(&format!("rows/{r}/{c}"))));
            }
        }
    }
    if total_chars > MAX_TABLE_CHARS {
        errors.push(format!(
            "cells must hold at most {MAX_TABLE_CHARS} characters in all {}",
            at("rows")
        ));
    }
    if let Some(size) = block.get("page_size")
        && !size.as_u64().is_some_and(|n| (1..=100).contains(&n))
    {
        errors.push(format!("must be 1 to 100 {}", at("page_size")));
    }
    errors
}

fn post_message(s: &mut Inner, params: &Value) -> Response {
    let Some(channel_ref) = params["channel"].as_str() else {
        return slack_error("channel_not_found", None);
    };
    let is_user = channel_ref.starts_with('U') || channel_ref.starts_with('W');
    let channel = s
        .channels
        .iter()
        .find(|c| c.id == channel_ref || format!("#{}", c.name) == channel_ref)
        .cloned();
    let channel_id = match (&channel, is_user) {
        (Some(c), _) if !c.is_member => return slack_error("not_in_channel", None),
        (Some(c), _) => c.id.clone(),
        // A user ID posts into the direct-message channel with that user, as Slack does.
        (None, true) => dm_channel(channel_ref),
        (None, false) if channel_ref.starts_with('D') => channel_ref.to_string(),
        (None, false) => return slack_error("channel_not_found", None),
    };
    let text = params["text"].as_str().unwrap_or_default();
    let blocks = params["blocks"].as_array().cloned().unwrap_or_default();
    if text.is_empty() && blocks.is_empty() {
        return slack_error("no_text", None);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return slack_error("msg_too_long", None);
    }
    let errors = block_errors(&blocks, &s.files, s.reject_native);
    if !errors.is_empty() {
        return slack_error("invalid_blocks", Some(errors));
    }
    if let Some(metadata) = params.get("metadata") {
        let payload_ok = metadata["event_payload"].as_object().is_none_or(|p| {
            p.values()
                .all(|v| v.is_string() || v.is_number() || v.is_boolean())
        });
        if metadata["event_type"].as_str().is_none_or(str::is_empty) || !payload_ok {
            return slack_error("invalid_metadata_format", None);
        }
    }
    let thread_ts = params["thread_ts"].as_str().map(str::to_string);
    if let Some(parent) = &thread_ts
        && !s
            .messages
            .iter()
            .any(|m| &m.ts == parent && m.channel == channel_id)
    {
        return slack_error("thread_not_found", None);
    }
    s.next_id += 1;
    let ts = format!("{}.{:06}", 1_800_000_000 + s.next_id, s.next_id);
    let mut message = params.clone();
    message["ts"] = json!(ts);
    message["type"] = json!("message");
    message["bot_id"] = json!("B0KPIBOT");
    s.messages.push(Posted {
        channel: channel_id.clone(),
        ts: ts.clone(),
        thread_ts,
        body: message.clone(),
        at: Instant::now(),
    });
    if let Some(m) = message.as_object_mut() {
        m.remove("channel");
    }
    ok(json!({"channel": channel_id, "ts": ts, "message": message}))
}

/// `views.publish`: a Home tab for a user, its blocks checked as Slack checks a view's
/// (at most 100, each valid); `invalid_arguments` otherwise.
fn publish_view(s: &mut Inner, params: &Value) -> Response {
    let user = params["user_id"].as_str().unwrap_or_default().to_string();
    // The view arrives as JSON, or as a JSON string in a form field.
    let view = match &params["view"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    };
    if user.is_empty() || view["type"] != "home" {
        return slack_error("invalid_arguments", None);
    }
    let blocks = view["blocks"].as_array().cloned().unwrap_or_default();
    if blocks.len() > 100 {
        return slack_error(
            "invalid_arguments",
            Some(vec![
                "must provide no more than 100 items [json-pointer:/view/blocks]".into(),
            ]),
        );
    }
    let errors = block_errors(&blocks, &s.files, s.reject_native);
    if !errors.is_empty() {
        return slack_error("invalid_arguments", Some(errors));
    }
    s.views.push((user, view.clone()));
    // The view as Slack returns it: with its id, team, hash and an empty state.
    let id = format!("V0VIEW{:04}", s.views.len());
    let mut published = view;
    for (key, value) in [
        ("id", json!(id)),
        ("team_id", json!("T0FAKE")),
        ("state", json!({"values": {}})),
        ("hash", json!(format!("1700000000.{id}"))),
        ("previous_view_id", Value::Null),
        ("root_view_id", json!(id)),
        ("app_id", json!("A0KPIBOT")),
        ("bot_id", json!("B0KPIBOT")),
        ("private_metadata", json!("")),
        ("callback_id", json!("")),
        ("external_id", json!("")),
        ("clear_on_close", json!(false)),
        ("notify_on_close", json!(false)),
        ("app_installed_team_id", json!("T0FAKE")),
    ] {
        published[key] = value;
    }
    ok(json!({"view": published}))
}

/// The direct-message channel Slack keeps between the bot and a user.
fn dm_channel(user: &str) -> String {
    format!("D{user}")
}

/// `chat.update`: replaces a message's text, blocks (checked like a new post's) and,
/// when given, its metadata; `message_not_found` for a ts that is not there.
fn update_message(s: &mut Inner, params: &Value) -> Response {
    let channel = params["channel"].as_str().unwrap_or_default().to_string();
    let ts = params["ts"].as_str().unwrap_or_default().to_string();
    let blocks = params["blocks"].as_array().cloned().unwrap_or_default();
    let errors = block_errors(&blocks, &s.files, s.reject_native);
    if !errors.is_empty() {
        return slack_error("invalid_blocks", Some(errors));
    }
    let Some(message) = s
        .messages
        .iter_mut()
        .find(|m| m.channel == channel && m.ts == ts)
    else {
        return slack_error("message_not_found", None);
    };
    for key in ["text", "blocks", "metadata"] {
        if let Some(value) = params.get(key) {
            message.body[key] = value.clone();
        }
    }
    let edits = message.body["edited_count"].as_u64().unwrap_or(0) + 1;
    message.body["edited_count"] = json!(edits);
    message.body["edited"] = json!({"user": "B0KPIBOT", "ts": ts});
    ok(json!({"channel": channel, "ts": ts, "text": params["text"]}))
}

/// The most messages a history or replies page may hold.
fn page_max(s: &Inner) -> usize {
    s.limiter
        .as_ref()
        .map_or(usize::MAX, |l| l.limits.history_page_max)
}

fn history(s: &Inner, params: &Value) -> Response {
    let channel = params["channel"].as_str().unwrap_or_default();
    if !channel.starts_with('D') && !s.channels.iter().any(|c| c.id == channel) {
        return slack_error("channel_not_found", None);
    }
    let oldest: f64 = params["oldest"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0);
    // `latest`: the end of the range (default now); both ends included with `inclusive`.
    let latest: f64 = params["latest"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(f64::MAX);
    let with_metadata = params["include_all_metadata"].as_str() == Some("true");
    let limit: usize = params["limit"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .min(page_max(s));
    let offset: usize = params["cursor"]
        .as_str()
        .and_then(|c| c.strip_prefix("offset:"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let mut top_level: Vec<&Posted> = s
        .messages
        .iter()
        .filter(|m| m.channel == channel && m.thread_ts.is_none())
        .filter(|m| m.ts.parse::<f64>().unwrap_or(0.0) >= oldest)
        .filter(|m| m.ts.parse::<f64>().unwrap_or(0.0) <= latest)
        .collect();
    top_level.reverse(); // newest first, as Slack returns them
    let page: Vec<Value> = top_level
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| {
            let mut body = m.body.clone();
            if let Some(o) = body.as_object_mut() {
                o.remove("channel");
                if !with_metadata {
                    o.remove("metadata");
                }
            }
            body
        })
        .collect();
    let more = offset + limit < top_level.len();
    ok(json!({
        "messages": page,
        "has_more": more,
        "response_metadata": {"next_cursor": if more { format!("offset:{}", offset + limit) } else { String::new() }},
    }))
}

fn replies(s: &Inner, params: &Value) -> Response {
    let channel = params["channel"].as_str().unwrap_or_default();
    let parent = params["ts"].as_str().unwrap_or_default();
    let thread: Vec<Value> = s
        .messages
        .iter()
        .filter(|m| {
            m.channel == channel && (m.ts == parent || m.thread_ts.as_deref() == Some(parent))
        })
        .map(|m| {
            let mut body = m.body.clone();
            if let Some(o) = body.as_object_mut() {
                o.remove("channel");
                // conversations.replies does not return metadata without asking for it.
                o.remove("metadata");
            }
            body
        })
        .collect();
    if thread.is_empty() {
        return slack_error("thread_not_found", None);
    }
    ok(json!({"messages": thread, "has_more": false, "response_metadata": {"next_cursor": ""}}))
}

fn list_channels(s: &Inner, params: &Value) -> Response {
    let limit: usize = params["limit"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .min(1000);
    let offset: usize = params["cursor"]
        .as_str()
        .and_then(|c| c.strip_prefix("offset:"))
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = s
        .channels
        .iter()
        .skip(offset)
        .take(limit)
        .map(|c| {
            json!({
                "id": c.id, "name": c.name, "name_normalized": c.name,
                "created": 1_700_000_000, "is_channel": true, "is_member": c.is_member,
            })
        })
        .collect();
    let more = offset + limit < s.channels.len();
    ok(json!({
        "channels": page,
        "response_metadata": {"next_cursor": if more { format!("offset:{}", offset + limit) } else { String::new() }},
    }))
}

fn params_of(query: HashMap<String, String>, body: &Bytes) -> Value {
    let mut params: Value = serde_json::from_slice(body).unwrap_or_else(|_| json!({}));
    if !params.is_object() {
        params = json!({});
    }
    for (k, v) in query {
        params[k] = json!(v);
    }
    params
}

async fn api(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = begin_call(&state, &method);
    if let Some(refused) = fault.as_ref().and_then(refusal) {
        return refused;
    }
    if method == "apps.connections.open" {
        let app_token = format!("Bearer {APP_TOKEN}");
        return match headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            Some(value) if value == app_token => {
                let url = state.lock().unwrap().socket_url.clone();
                ok(json!({"url": url}))
            }
            Some(_) => slack_error("invalid_auth", None),
            None => slack_error("not_authed", None),
        };
    }
    if let Some(denied) = auth_refusal(&headers) {
        return denied;
    }
    let params = params_of(query, &body);
    if let Some(refused) = over_limit(&state, &method, &params) {
        return refused;
    }
    let response = {
        let mut s = state.lock().unwrap();
        match method.as_str() {
            "chat.postMessage" => post_message(&mut s, &params),
            "conversations.history" => history(&s, &params),
            "chat.postEphemeral" => {
                let user = params["user"].as_str().unwrap_or_default().to_string();
                let channel = params["channel"].as_str().unwrap_or_default().to_string();
                let blocks = params["blocks"].as_array().cloned().unwrap_or_default();
                let errors = block_errors(&blocks, &s.files, s.reject_native);
                if user.is_empty() {
                    slack_error("user_not_found", None)
                } else if !errors.is_empty() {
                    slack_error("invalid_blocks", Some(errors))
                } else {
                    s.ephemerals.push((channel, user, params.clone()));
                    ok(json!({"message_ts": "1800000000.000001"}))
                }
            }
            "usergroups.list" => {
                let groups: Vec<Value> = s
                    .usergroups
                    .iter()
                    .map(|(id, users)| {
                        json!({"id": id, "team_id": "T0FAKE", "name": id, "handle": id,
                               "is_usergroup": true, "is_external": false,
                               "date_create": 1_700_000_000, "created_by": "U0ADMIN",
                               "prefs": {"channels": [], "groups": []},
                               "users": users, "user_count": users.len()})
                    })
                    .collect();
                ok(json!({"usergroups": groups}))
            }
            "users.info" => {
                let user = params["user"].as_str().unwrap_or_default().to_string();
                if user.is_empty() {
                    return slack_error("user_not_found", None);
                }
                let tz = s
                    .user_timezones
                    .get(&user)
                    .cloned()
                    .unwrap_or_else(|| "Asia/Tokyo".into());
                let offset = tz
                    .parse::<chrono_tz::Tz>()
                    .map(|zone| {
                        use chrono::Offset;
                        chrono::Utc::now()
                            .with_timezone(&zone)
                            .offset()
                            .fix()
                            .local_minus_utc()
                    })
                    .unwrap_or(32400);
                let mut body = json!({
                    "id": user, "team_id": "T0FAKE", "name": user.to_lowercase(),
                    "deleted": false, "color": "9f69e7", "real_name": user,
                    "tz": tz, "tz_label": tz, "tz_offset": offset,
                    "profile": {"real_name": user, "display_name": user, "team": "T0FAKE"},
                    "is_admin": false, "is_owner": false, "is_bot": false,
                    "is_app_user": false, "updated": 1_700_000_000,
                });
                // Slack includes the locale only when asked for it.
                if params["include_locale"].as_str() == Some("true") {
                    body["locale"] = json!(
                        s.user_locales
                            .get(&user)
                            .cloned()
                            .unwrap_or_else(|| "en-US".into())
                    );
                }
                ok(json!({"user": body}))
            }
            "conversations.replies" => replies(&s, &params),
            "views.publish" => publish_view(&mut s, &params),
            "chat.update" => update_message(&mut s, &params),
            "conversations.open" => {
                // A JSON list, or a comma-separated form field.
                let users = match &params["users"] {
                    Value::Array(list) => list
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.as_str().unwrap_or_default().to_string(),
                };
                match users.split(',').next().filter(|u| !u.is_empty()) {
                    Some(user) => ok(json!({"channel": {"id": dm_channel(user)}})),
                    None => slack_error("users_list_not_supplied", None),
                }
            }
            "conversations.list" => list_channels(&s, &params),
            "chat.getPermalink" => {
                let channel = params["channel"].as_str().unwrap_or_default().to_string();
                let ts = params["message_ts"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if s.messages
                    .iter()
                    .any(|m| m.channel == channel && m.ts == ts)
                {
                    ok(json!({
                        "channel": channel,
                        "permalink": format!("https://fake.slack.test/archives/{channel}/p{}", ts.replace('.', "")),
                    }))
                } else {
                    slack_error("message_not_found", None)
                }
            }
            "files.getUploadURLExternal" => {
                let length: Option<usize> = params["length"].as_str().and_then(|l| l.parse().ok());
                match (params["filename"].as_str(), length) {
                    (Some(_), Some(length)) if length > 0 => {
                        s.next_id += 1;
                        let file_id = format!("F{:08}", s.next_id);
                        s.files.insert(
                            file_id.clone(),
                            File {
                                announced_length: length,
                                ..File::default()
                            },
                        );
                        ok(json!({
                            "file_id": file_id,
                            "upload_url": format!("{}/upload/{file_id}", s.base_url),
                        }))
                    }
                    _ => slack_error("invalid_arguments", None),
                }
            }
            "files.completeUploadExternal" => {
                let files = params["files"].as_array().cloned().unwrap_or_default();
                let mut done = Vec::new();
                for f in &files {
                    let id = f["id"].as_str().unwrap_or_default();
                    match s.files.get_mut(id) {
                        Some(file) if file.uploaded == Some(file.announced_length) => {
                            file.completed = true;
                            done.push(json!({"id": id, "title": f["title"]}));
                        }
                        _ => return slack_error("file_not_found", None),
                    }
                }
                if done.is_empty() {
                    slack_error("invalid_arguments", None)
                } else {
                    ok(json!({"files": done}))
                }
            }
            _ => slack_error("unknown_method", None),
        }
    };
    spoil(fault, response).await
}

/// Socket Mode: each connection gets `hello`, then whatever the test pushes; text frames
/// from the client are acknowledgements.
async fn serve_sockets(listener: tokio::net::TcpListener, state: Arc<Mutex<Inner>>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    while let Ok((tcp, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(socket) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let (mut sink, mut stream) = socket.split();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let hello = json!({
                "type": "hello", "num_connections": 1,
                "debug_info": {"host": "fake-slack"}, "connection_info": {"app_id": "A0FAKE"},
            });
            if sink
                .send(Message::Text(hello.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
            state.lock().unwrap().sockets.push(tx);
            loop {
                tokio::select! {
                    Some(text) = rx.recv() => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                            state.lock().unwrap().socket_acks.push(value);
                        }
                        Some(Ok(Message::Ping(data))) => {
                            let _ = sink.send(Message::Pong(data)).await;
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    },
                }
            }
        });
    }
}

/// A slash command's response_url: Slack answers a plain `ok`.
async fn response_url(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut s = state.lock().unwrap();
    s.calls.push(Call {
        method: "response_url".into(),
        at: Instant::now(),
        fault: None,
    });
    s.responses.push((id, value));
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok").into_response()
}

async fn upload(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(file_id): Path<String>,
    body: Bytes,
) -> Response {
    let fault = begin_call(&state, "files.upload");
    if let Some(refused) = fault.as_ref().and_then(refusal) {
        return refused;
    }
    let response = {
        let mut s = state.lock().unwrap();
        match s.files.get_mut(&file_id) {
            None => (StatusCode::NOT_FOUND, "unknown upload URL").into_response(),
            Some(file) if body.len() != file.announced_length => (
                StatusCode::BAD_REQUEST,
                format!(
                    "length {} does not match the announced {}",
                    body.len(),
                    file.announced_length
                ),
            )
                .into_response(),
            Some(file) => {
                file.uploaded = Some(body.len());
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain")],
                    format!("OK - {}", body.len()),
                )
                    .into_response()
            }
        }
    };
    spoil(fault, response).await
}
