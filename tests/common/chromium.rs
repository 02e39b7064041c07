//! Headless Chromium (Debian's package, which `.ci/run` installs) driven over its DevTools
//! protocol with the chromiumoxide crate: open a page, run JavaScript in it, take its
//! screenshot, run axe-core in it, and collect every console error, uncaught exception and
//! failed load the page reports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser as Chromium, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::{Page, ScreenshotParams};
use futures_util::StreamExt;
use serde_json::Value;

/// The window every page is drawn in (screenshots are this wide).
pub const WINDOW_WIDTH_PX: u32 = 1280;
pub const WINDOW_HEIGHT_PX: u32 = 900;
/// The axe-core release `.ci/axe` fetches (pinned there with its hash).
const AXE_VERSION: &str = "4.14.1";
/// How long one DevTools command may take: a debug build's first preview is slow.
const COMMAND_TIMEOUT_S: u64 = 120;

/// A headless Chromium with one page, closed when dropped.
pub struct Browser {
    chromium: Chromium,
    /// Every tab opened, in order; the calls act on `current`.
    tabs: Vec<Page>,
    current: usize,
    _profile: tempfile::TempDir,
    errors: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(child) = self.chromium.get_mut_child() {
            let _ = child.as_mut_inner().start_kill();
        }
    }
}

/// The Chromium binary: `KPIBOT_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn binary() -> String {
    std::env::var("KPIBOT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Whether CI demands the browser tests (`KPIBOT_REQUIRE_CHROMIUM=1`).
fn required() -> bool {
    std::env::var("KPIBOT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1")
}

/// Whether the browser tests can run: Chromium is installed. Without it they skip with one
/// line saying so; with `KPIBOT_REQUIRE_CHROMIUM=1` (CI, which installs it) they fail.
pub fn available(skipping: &str) -> bool {
    if std::path::Path::new(&binary()).exists() {
        return true;
    }
    assert!(
        !required(),
        "{} is missing but KPIBOT_REQUIRE_CHROMIUM=1: {skipping} must run (install Debian's chromium)",
        binary()
    );
    eprintln!(
        "skipping {skipping}: {} is missing (install Debian's chromium; .ci/run does)",
        binary()
    );
    false
}

/// axe-core's script (`KPIBOT_AXE_JS`, else where `.ci/axe` keeps it), or None when it is
/// missing and CI does not demand it.
pub fn axe_script() -> Option<String> {
    // Where `.ci/axe` keeps it (which CI exports as KPIBOT_AXE_JS).
    let path = std::env::var("KPIBOT_AXE_JS").unwrap_or_else(|_| {
        let cache = std::env::var("XDG_CACHE_HOME")
            .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").unwrap_or_default()));
        format!("{cache}/kpibot-axe/axe-core-{AXE_VERSION}/axe.min.js")
    });
    match std::fs::read_to_string(&path) {
        Ok(script) => Some(script),
        Err(error) => {
            assert!(
                !required(),
                "{path}: {error}; CI must run the accessibility check (.ci/axe fetches it)"
            );
            eprintln!("skipping the accessibility check: {path}: {error} (run .ci/axe)");
            None
        }
    }
}

impl Browser {
    /// Starts Chromium headless with a blank page, its errors watched.
    pub async fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(binary())
            .new_headless_mode()
            .no_sandbox()
            .args(["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .user_data_dir(profile.path())
            .window_size(WINDOW_WIDTH_PX, WINDOW_HEIGHT_PX)
            .viewport(None)
            .launch_timeout(Duration::from_secs(COMMAND_TIMEOUT_S))
            .request_timeout(Duration::from_secs(COMMAND_TIMEOUT_S))
            .build()
            .expect("a browser configuration");
        let (chromium, mut handler) = Chromium::launch(config).await.unwrap_or_else(|error| {
            panic!(
                "cannot start {} ({error}): install Debian's chromium (.ci/run does)",
                binary()
            )
        });
        let mut tasks = vec![tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if event.is_err() {
                    // A message this crate cannot parse is not the page's fault.
                    continue;
                }
            }
        })];
        let page = chromium.new_page("about:blank").await.unwrap();
        page.enable_log().await.unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .unwrap();
        let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
        let kept = errors.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(event) = exceptions.next().await {
                let details = &event.exception_details;
                let text = details
                    .exception
                    .as_ref()
                    .and_then(|e| e.description.clone())
                    .unwrap_or_else(|| details.text.clone());
                kept.lock().unwrap().push(format!("exception: {text}"));
            }
        }));
        let kept = errors.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(event) = console.next().await {
                if event.r#type == ConsoleApiCalledType::Error {
                    let args: Vec<_> = event.args.iter().map(|a| a.value.clone()).collect();
                    kept.lock()
                        .unwrap()
                        .push(format!("console.error: {args:?}"));
                }
            }
        }));
        let kept = errors.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(event) = log.next().await {
                if event.entry.level == LogEntryLevel::Error {
                    let entry = &event.entry;
                    let url = entry.url.clone().unwrap_or_default();
                    kept.lock()
                        .unwrap()
                        .push(format!("log: {} {url}", entry.text));
                }
            }
        }));
        Self {
            chromium,
            tabs: vec![page],
            current: 0,
            _profile: profile,
            errors,
            tasks,
        }
    }

    fn tab(&self) -> &Page {
        &self.tabs[self.current]
    }

    /// Opens `url` in a new tab, which the calls then act on; the tabs before stay open.
    /// (Only the first tab's errors are collected.)
    pub async fn open_in_new_tab(&mut self, url: &str) {
        let tab = self.chromium.new_page("about:blank").await.unwrap();
        self.tabs.push(tab);
        self.current = self.tabs.len() - 1;
        self.open(url).await;
    }

    /// How many tabs are open.
    pub fn tab_count(&self) -> usize {
        self.tabs.len()
    }

    /// Makes the calls act on tab `index` (in the order they were opened).
    pub fn switch_to(&mut self, index: usize) {
        assert!(index < self.tabs.len(), "no tab {index}");
        self.current = index;
    }

    /// What the page reported as errors since the last call, in order.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap())
    }

    /// Opens `url` and waits until it has loaded completely.
    pub async fn open(&mut self, url: &str) {
        self.tab()
            .goto(url)
            .await
            .unwrap_or_else(|error| panic!("cannot open {url}: {error}"));
        // The page before may reload itself on a change: the new one is loaded when its
        // own address is, completely.
        let loaded = format!(
            "document.readyState === 'complete' && location.href === {}",
            serde_json::json!(url)
        );
        self.wait_until(url, &loaded, Duration::from_secs(COMMAND_TIMEOUT_S))
            .await;
    }

    /// The value of `expression` in the page (a promise is awaited).
    pub async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|error| panic!("{expression}: {error}"))
    }

    async fn try_eval(&self, expression: &str) -> Result<Value, String> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .return_by_value(true)
            .await_promise(true)
            .build()
            .map_err(|e| e.to_string())?;
        // An exception thrown in the page comes back as an error.
        let result = self
            .tab()
            .evaluate_expression(params)
            .await
            .map_err(|e| e.to_string())?;
        Ok(result.value().cloned().unwrap_or(Value::Null))
    }

    /// Waits until `expression` is true in the page (it may reload meanwhile: an
    /// evaluation a reload cuts short counts as not yet).
    pub async fn wait_until(&mut self, what: &str, expression: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.try_eval(expression).await == Ok(Value::Bool(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            // Give the page's own work (a reload, a fetch) the loop before asking again.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Presses a key (`Tab`, `Enter`) wherever the page's focus is, as a person would.
    pub async fn press_key(&mut self, key: &str) {
        let body = self.tab().find_element("body").await.unwrap();
        body.press_key(key)
            .await
            .unwrap_or_else(|error| panic!("cannot press {key}: {error}"));
    }

    /// Walks the page with the Tab key from the top: each element the focus lands on (its
    /// opening tag, shortened), and whether it showed a focus outline there. As many steps
    /// as it takes to leave the page again (a date field takes one per part), at most four
    /// per element one can act on (the drawn Slack message's buttons are disabled: they
    /// only show); with how many elements there are to act on.
    pub async fn tab_walk(&mut self) -> (usize, Vec<(String, bool)>) {
        let actionable = self
            .eval("document.querySelectorAll('a[href], button:enabled, input:enabled:not([type=hidden]), select:enabled, textarea:enabled, summary').length")
            .await
            .as_u64()
            .unwrap_or(0) as usize;
        // Each element is told apart by a number of its own, not by its markup.
        self.eval("document.querySelectorAll('a[href], button:enabled, input:enabled:not([type=hidden]), select:enabled, textarea:enabled, summary').forEach((e, i) => e.dataset.walk = i), document.activeElement && document.activeElement.blur(), true")
            .await;
        let mut landed: Vec<(String, bool)> = Vec::new();
        for _ in 0..actionable * 4 {
            self.press_key("Tab").await;
            let at = self
                .eval("(() => { const e = document.activeElement; const s = getComputedStyle(e); return [e === document.body ? '<body>' : (e.dataset.walk || '?') + ' ' + e.outerHTML.slice(0, 90), s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2]; })()")
                .await;
            let tag = at[0].as_str().unwrap_or_default().to_string();
            if tag.starts_with("<body") {
                break;
            }
            landed.push((tag, at[1].as_bool().unwrap_or(false)));
        }
        (actionable, landed)
    }

    /// What the window shows, as a PNG (WINDOW_WIDTH_PX by WINDOW_HEIGHT_PX).
    pub async fn screenshot(&mut self) -> Vec<u8> {
        self.tab()
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .build(),
            )
            .await
            .unwrap_or_else(|error| panic!("no screenshot: {error}"))
    }

    /// Runs axe-core in the open page: the rules it breaks with impact `serious` or
    /// `critical`, each with the elements that break it.
    pub async fn accessibility_violations(&mut self, axe: &str) -> Vec<String> {
        if self.eval("typeof window.axe").await != "object" {
            self.try_eval(axe)
                .await
                .unwrap_or_else(|error| panic!("axe-core does not load: {error}"));
        }
        let found = self
            .eval(
                "axe.run(document).then(r => ({
                   passed: r.passes.length,
                   serious: r.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                          + v.nodes.map(n => n.target.join(' ')).join(', '))}))",
            )
            .await;
        // A checker that checked nothing proves nothing.
        assert!(
            found["passed"].as_u64() > Some(10),
            "axe-core ran no rules: {found}"
        );
        found["serious"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }
}
