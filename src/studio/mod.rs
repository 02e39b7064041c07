//! `kpibot studio`: a local web page for report authors over the same `reports/` folder
//! and settings as every other verb — each report previewed as it will be posted (the
//! chart, the Slack message drawn as Slack shows it, the data, what the query took, every
//! `check` diagnostic with the lines around it), the catalog of reports, metrics, policies
//! and alerts, and the page updated as files are saved (server-sent events from a poll of
//! the folder's fingerprint, as hot reload takes it), each report's recent runs, and each
//! alert replayed over a chosen range. Read-only: it never writes a spec or posts to
//! Slack, and reads the ledger through a connection that cannot write. It listens on
//! 127.0.0.1 unless told otherwise, and anywhere else only with a token.

mod backtest;
mod frame;
mod page;
mod preview;
mod runs;
mod slack_html;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use tokio::sync::watch;

use crate::catalog::{Catalog, merge_catalog};
use crate::i18n::Locale;
use crate::ledger::Ledger;
use crate::pipeline::RunLimits;
use crate::spec::{self, LoadedFile, Period};
use crate::warehouse::Warehouse;
pub use preview::{DIAGNOSTIC_CONTEXT_LINES, PREVIEW_TABLE_ROWS_MAX};

/// How often the folder is looked at for saved files, in milliseconds.
pub const STUDIO_WATCH_INTERVAL_MS: u64 = 200;
/// The cookie that keeps a token given once in the address.
const TOKEN_COOKIE: &str = "kpibot_studio_token";

/// Why the studio cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StudioError {
    #[error(
        "studio.listen is `{0}`, which is not an address: give an IP and port such as 127.0.0.1:8787"
    )]
    Listen(String),
    #[error(
        "the studio would listen on {0}, which other machines can reach, without a token: set studio.token (KPIBOT__STUDIO__TOKEN) and open the page with ?token=…, or listen on 127.0.0.1"
    )]
    NeedsToken(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Where to listen, checked: any address but this host's needs a token.
pub fn listen_address(listen: &str, token: Option<&str>) -> Result<SocketAddr, StudioError> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| StudioError::Listen(listen.to_string()))?;
    if !addr.ip().is_loopback() && token.is_none_or(|t| t.trim().is_empty()) {
        return Err(StudioError::NeedsToken(addr));
    }
    Ok(addr)
}

/// The folder as last read: every file with its diagnostics, and the catalog in which a
/// broken file keeps its last good version.
struct Loaded {
    catalog: Arc<Catalog>,
    files: Vec<LoadedFile>,
    /// Why the folder itself could not be read, if it could not.
    error: Option<String>,
}

/// What the studio reads, as the app assembled it from the settings.
#[derive(Debug, Clone)]
pub struct Parts {
    pub reports_dir: std::path::PathBuf,
    pub defaults: spec::SpecDefaults,
    pub limits: RunLimits,
    pub query_timeout: Duration,
    /// The bot's language: pages and previews unless the page asks for another.
    pub locale: Locale,
    /// Alerts' settings: a backtest's default range, instances and charts.
    pub alerts: crate::settings::AlertsSettings,
    /// The longest backtest, in days (`studio.backtest_days_max`).
    pub backtest_days_max: u32,
    /// Recent runs on a report's page (`studio.runs_shown`).
    pub runs_shown: usize,
    /// The workspace's address, for links to posts (`studio.slack_url`).
    pub slack_url: Option<String>,
}

/// A warehouse the page can preview on.
pub struct Source {
    /// Its name in the page's address: `configured` (the settings' warehouse) or `demo`
    /// (the embedded demo mart).
    pub name: &'static str,
    pub warehouse: Arc<dyn Warehouse>,
}

/// A name the address gives, if it gives one (blank is none).
fn named(asked: Option<&str>) -> Option<&str> {
    asked.map(str::trim).filter(|a| !a.is_empty())
}

/// What the studio reads besides the folder: the warehouses previews run on (the first
/// unless the page asks for another), and the ledger, opened read-only, for recent runs.
pub struct Reads {
    pub warehouses: Vec<Source>,
    pub ledger: Result<Option<Ledger>, String>,
}

/// The studio's state, shared by every request.
pub struct Studio {
    app: Parts,
    warehouses: Vec<Source>,
    /// The ledger opened read-only (None: no SQLite file yet; Err: why it cannot be read).
    ledger: Result<Option<Ledger>, String>,
    loaded: RwLock<Loaded>,
    /// Counts the changes seen in the folder; each is sent to every open page.
    changes: watch::Sender<u64>,
    token: Option<String>,
    /// The last good preview of each (report, period, language): shown beside a broken
    /// edit's diagnostics, and what the chart's address serves.
    previews: Mutex<HashMap<String, Arc<preview::Preview>>>,
}

impl Studio {
    /// The studio over `app`'s folder and the warehouses in `reads`, the folder read once.
    pub fn new(app: Parts, reads: Reads, token: Option<String>) -> Arc<Self> {
        // Versions start from the moment the studio started, so a page left open across a
        // restart never mistakes the new studio's versions for the ones it showed.
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2));
        let (changes, _) = watch::channel(started_ms);
        let studio = Arc::new(Self {
            app,
            warehouses: reads.warehouses,
            ledger: reads.ledger,
            loaded: RwLock::new(Loaded {
                catalog: Arc::new(Catalog::default()),
                files: Vec::new(),
                error: None,
            }),
            changes,
            token: token.filter(|t| !t.trim().is_empty()),
            previews: Mutex::new(HashMap::new()),
        });
        studio.reload();
        studio
    }

    /// Reads the folder again: valid files replace their entries, broken ones keep their
    /// last good version in the catalog and show their diagnostics.
    fn reload(&self) {
        let defaults = self.app.defaults.clone();
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        match spec::load_dir(&self.app.reports_dir, &defaults) {
            Ok(files) => {
                let (catalog, _) = merge_catalog(&loaded.catalog, &files);
                loaded.catalog = Arc::new(catalog);
                loaded.files = files;
                loaded.error = None;
            }
            Err(error) => loaded.error = Some(error.to_string()),
        }
    }

    /// Polls the folder's fingerprint; on a change, reads it again and tells every page.
    async fn watch(self: Arc<Self>) {
        let defaults = self.app.defaults.clone();
        let dir = self.app.reports_dir.clone();
        let mut seen = crate::catalog::reload::fingerprint(&dir, &defaults);
        loop {
            tokio::time::sleep(Duration::from_millis(STUDIO_WATCH_INTERVAL_MS)).await;
            let now = crate::catalog::reload::fingerprint(&dir, &defaults);
            if now != seen {
                seen = now;
                self.reload();
                self.changes.send_modify(|version| *version += 1);
            }
        }
    }

    fn version(&self) -> u64 {
        *self.changes.borrow()
    }

    /// The warehouse the page asks for by name (the first when it names none), or what
    /// to say when there is none by that name.
    fn warehouse(&self, asked: Option<&str>) -> Result<&dyn Warehouse, String> {
        let asked = named(asked);
        self.warehouses
            .iter()
            .find(|s| asked.is_none_or(|a| a == s.name))
            .map(|s| s.warehouse.as_ref())
            .ok_or_else(|| {
                let names: Vec<&str> = self.warehouses.iter().map(|s| s.name).collect();
                format!(
                    "no warehouse `{}` here: choose {}",
                    asked.unwrap_or_default(),
                    names.join(" or ")
                )
            })
    }

    /// The choice the page offers: (name, what it is, whether it is the one asked for).
    fn warehouse_choices(&self, asked: Option<&str>) -> Vec<(String, String, bool)> {
        let asked = named(asked);
        self.warehouses
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let chosen = asked.map_or(i == 0, |a| a == s.name);
                (
                    s.name.to_string(),
                    format!("{}: {}", s.name, s.warehouse.describe()),
                    chosen,
                )
            })
            .collect()
    }

    fn snapshot(&self) -> (Arc<Catalog>, Vec<LoadedFile>, Option<String>) {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        (
            loaded.catalog.clone(),
            loaded.files.clone(),
            loaded.error.clone(),
        )
    }
}

/// What a page may be asked for in its address.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// `en` or `ja`; the bot's language when absent.
    pub lang: Option<String>,
    /// A period for the preview (`last 7 days`); the report's own when absent.
    pub period: Option<String>,
    /// Words to look for in the catalog.
    pub q: Option<String>,
    /// The warehouse to preview on, by name (`demo`, `configured`).
    pub warehouse: Option<String>,
    /// The token, when the studio needs one (kept in a cookie once given).
    pub token: Option<String>,
    /// The first and last day an alert's backtest judges (`YYYY-MM-DD`).
    pub from: Option<String>,
    pub to: Option<String>,
}

impl PageQuery {
    fn locale(&self, app: &Parts) -> Locale {
        self.lang
            .as_deref()
            .and_then(Locale::parse)
            .unwrap_or(app.locale)
    }
}

/// The studio's pages and its event stream.
pub fn router(studio: Arc<Studio>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/report/{id}", get(report))
        .route("/report/{id}/chart.png", get(chart))
        .route("/entry/{kind}/{name}", get(entry))
        .route("/file/{*path}", get(file))
        .route("/events", get(events))
        .route("/font/{file}", get(font))
        .layer(middleware::from_fn_with_state(studio.clone(), guard))
        .with_state(studio)
}

/// With a token set, every request carries it (in the address once, then its cookie).
async fn guard(State(studio): State<Arc<Studio>>, request: Request, next: Next) -> Response {
    let Some(token) = &studio.token else {
        return next.run(request).await;
    };
    let in_query = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .any(|(k, v)| k == "token" && v == token.as_str());
    let in_cookie = cookie(request.headers(), TOKEN_COOKIE).is_some_and(|v| v == *token);
    if !in_query && !in_cookie {
        return (
            StatusCode::UNAUTHORIZED,
            "kpibot studio: open the address printed at start-up, with its ?token=…",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    if in_query
        && let Ok(value) =
            format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/").parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

async fn index(State(studio): State<Arc<Studio>>, Query(query): Query<PageQuery>) -> Html<String> {
    let (catalog, files, error) = studio.snapshot();
    let locale = query.locale(&studio.app);
    Html(page::index(
        &page::Frame::new(locale, studio.version(), &query),
        &catalog,
        (&files, &studio.app.reports_dir),
        error.as_deref(),
        Utc::now(),
    ))
}

/// The preview's key: the report, the period asked and the language.
fn preview_key(id: &str, query: &PageQuery, locale: Locale) -> String {
    format!(
        "{id}|{}|{}|{locale:?}",
        query.period.as_deref().unwrap_or_default(),
        query.warehouse.as_deref().unwrap_or_default()
    )
}

/// Runs the preview of `id`; `Ok(None)` when there is no such report.
async fn run_preview(
    studio: &Studio,
    id: &str,
    query: &PageQuery,
) -> Result<Option<Arc<preview::Preview>>, String> {
    let (catalog, _, _) = studio.snapshot();
    let Some(spec) = catalog.get(id) else {
        return Ok(None);
    };
    let locale = query.locale(&studio.app);
    let period = match query.period.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(text) => Some(text.parse::<Period>().map_err(|e| e.to_string())?),
        None => None,
    };
    let warehouse = studio.warehouse(query.warehouse.as_deref())?;
    let preview = preview::run(&studio.app, warehouse, spec, (period, locale), Utc::now()).await?;
    let preview = Arc::new(preview);
    studio
        .previews
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(preview_key(id, query, locale), preview.clone());
    Ok(Some(preview))
}

async fn report(
    State(studio): State<Arc<Studio>>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (catalog, files, _) = studio.snapshot();
    let locale = query.locale(&studio.app);
    let Some(spec) = catalog.get(&id).cloned() else {
        return not_found(&studio, &query, &id);
    };
    let file = files.iter().find(|f| spec::report_id(&f.path) == id);
    let diagnostics = file.map(preview::diagnostics).unwrap_or_default();
    let key = preview_key(&id, &query, locale);
    // A broken edit is not run: its last good version is shown beside its problems.
    let (current, failure) = if diagnostics.is_empty() {
        match run_preview(&studio, &id, &query).await {
            Ok(preview) => (preview, None),
            Err(error) => (None, Some(error)),
        }
    } else {
        (None, None)
    };
    let last_good = match &current {
        Some(_) => None,
        None => studio
            .previews
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned(),
    };
    let frame = page::Frame::new(locale, studio.version(), &query);
    let app = &studio.app;
    let runs = runs::section(
        &frame,
        &studio.ledger,
        &spec,
        app.runs_shown,
        app.slack_url.as_deref(),
    )
    .await;
    let html = page::report(
        &frame,
        (&catalog, &spec),
        page::Shown {
            preview: current.as_deref().or(last_good.as_deref()),
            stale: current.is_none(),
            failure: failure.as_deref(),
            diagnostics: &diagnostics,
            warehouses: studio.warehouse_choices(query.warehouse.as_deref()),
            after: runs,
        },
        Utc::now(),
    );
    Html(html).into_response()
}

async fn chart(
    State(studio): State<Arc<Studio>>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let locale = query.locale(&studio.app);
    let key = preview_key(&id, &query, locale);
    let cached = studio
        .previews
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&key)
        .cloned();
    let preview = match cached {
        Some(preview) => Some(preview),
        None => run_preview(&studio, &id, &query).await.ok().flatten(),
    };
    match preview {
        Some(preview) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            preview.png.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The bundled font (BIZ UDPGothic), so every page draws Japanese as the charts do,
/// whatever fonts the machine has; it never changes while the studio runs.
async fn font(Path(file): Path<String>) -> Response {
    let bold = match file.as_str() {
        "regular.ttf" => false,
        "bold.ttf" => true,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "font/ttf"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        crate::render::fonts::ttf(bold),
    )
        .into_response()
}

async fn entry(
    State(studio): State<Arc<Studio>>,
    Path((kind, name)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (catalog, _, _) = studio.snapshot();
    let frame = page::Frame::new(query.locale(&studio.app), studio.version(), &query);
    let now = Utc::now();
    let after = match catalog.alert(&name).filter(|_| kind == "alert") {
        Some(alert) => {
            let asked = (query.from.as_deref(), query.to.as_deref());
            match studio.warehouse(query.warehouse.as_deref()) {
                Ok(warehouse) => {
                    let reads = (&studio.app, warehouse);
                    let app = &studio.app;
                    let replayed =
                        backtest::section(&frame, reads, &catalog, alert, asked, now).await;
                    let slack_url = app.slack_url.as_deref();
                    let rounds = runs::alert_section(
                        &frame,
                        &studio.ledger,
                        alert,
                        app.runs_shown,
                        slack_url,
                    )
                    .await;
                    replayed + &rounds
                }
                Err(why) => format!("<p role=\"alert\">{}</p>", slack_html::escape(&why)),
            }
        }
        None => String::new(),
    };
    match page::entry(&frame, &catalog, &kind, &name, now, after) {
        Some(html) => Html(html).into_response(),
        None => not_found(&studio, &query, &name),
    }
}

async fn file(
    State(studio): State<Arc<Studio>>,
    Path(path): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let (_, files, _) = studio.snapshot();
    let reports_dir = &studio.app.reports_dir;
    let Some(file) = files
        .iter()
        .find(|f| page::relative(&f.path, reports_dir) == path)
    else {
        return not_found(&studio, &query, &path);
    };
    let frame = page::Frame::new(query.locale(&studio.app), studio.version(), &query);
    Html(page::file(&frame, file, &preview::diagnostics(file))).into_response()
}

fn not_found(studio: &Studio, query: &PageQuery, name: &str) -> Response {
    let frame = page::Frame::new(query.locale(&studio.app), studio.version(), query);
    (StatusCode::NOT_FOUND, Html(page::not_found(&frame, name))).into_response()
}

/// Server-sent events: `change` with the new version each time the folder changes.
/// The folder's version now (`event: version`), then each change (`event: change`): a page
/// that shows another version reloads, so a change made before its stream opened is not
/// missed.
async fn events(State(studio): State<Arc<Studio>>) -> impl IntoResponse {
    use futures_util::StreamExt;
    let mut receiver = studio.changes.subscribe();
    let now = *receiver.borrow_and_update();
    let first = Event::default().event("version").data(now.to_string());
    let changes = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        let version = *receiver.borrow_and_update();
        let event = Event::default().event("change").data(version.to_string());
        Some((Ok::<_, Infallible>(event), receiver))
    });
    let stream = futures_util::stream::once(async move { Ok(first) }).chain(changes);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Serves the studio on `listener` until Ctrl-C, the folder watched meanwhile.
pub async fn serve(
    parts: Parts,
    reads: Reads,
    listener: tokio::net::TcpListener,
    token: Option<String>,
) -> std::io::Result<()> {
    let studio = Studio::new(parts, reads, token);
    tokio::spawn(studio.clone().watch());
    // Open pages hold their event streams: Ctrl-C stops at once rather than wait on them.
    tokio::select! {
        served = axum::serve(listener, router(studio)).into_future() => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
