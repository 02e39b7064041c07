//! Headless Chromium (Debian's package, which `.ci/run` installs) driven over its DevTools
//! protocol with tokio-tungstenite: open a page, run JavaScript in it, and collect every
//! console error, uncaught exception and failed load the page reports.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium with one page, killed when dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: Socket,
    next_id: u64,
    /// What the page reported as errors, in order.
    pub errors: Vec<String>,
    /// Load events seen (a navigation's may arrive before its command's answer).
    loads: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Chromium binary: `KPIBOT_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn binary() -> String {
    std::env::var("KPIBOT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Whether the browser tests can run: Chromium is installed. Without it they skip with one
/// line saying so; with `KPIBOT_REQUIRE_CHROMIUM=1` (CI, which installs it) they fail.
pub fn available(skipping: &str) -> bool {
    if std::path::Path::new(&binary()).exists() {
        return true;
    }
    let required = std::env::var("KPIBOT_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{} is missing but KPIBOT_REQUIRE_CHROMIUM=1: {skipping} must run (install Debian's chromium)",
        binary()
    );
    eprintln!(
        "skipping {skipping}: {} is missing (install Debian's chromium; .ci/run does)",
        binary()
    );
    false
}

impl Browser {
    /// Starts Chromium headless and attaches to its first page.
    pub async fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(binary())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,1024",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {} ({error}): install Debian's chromium (.ci/run does)",
                    binary()
                )
            });
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = lines
            .find_map(|line| {
                let line = line.ok()?;
                line.split("DevTools listening on ")
                    .nth(1)
                    .map(str::to_string)
            })
            .expect("Chromium prints its DevTools address");
        std::thread::spawn(move || for _ in lines {});
        // The browser's port; its page targets are listed at /json/list.
        let port: u16 = endpoint
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("a port in the DevTools address");
        let page = loop {
            let list = http_json(port, "/json/list").await;
            if let Some(url) = list.as_array().into_iter().flatten().find_map(|t| {
                (t["type"] == "page")
                    .then(|| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
                    .flatten()
            }) {
                break url;
            }
            tokio::task::yield_now().await;
        };
        let (socket, _) = tokio_tungstenite::connect_async(page.as_str())
            .await
            .unwrap_or_else(|error| panic!("cannot open {page}: {error}"));
        let mut browser = Self {
            child,
            _profile: profile,
            socket,
            next_id: 0,
            errors: Vec::new(),
            loads: 0,
        };
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({})).await;
        }
        browser
    }

    /// Sends a command and waits for its answer, keeping the events that arrive meanwhile.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).await.unwrap();
        loop {
            let value = self.next_message().await;
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    panic!("{method} failed: {error}");
                }
                return value["result"].clone();
            }
        }
    }

    async fn next_message(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(120), self.socket.next())
                .await
                .expect("Chromium answers within two minutes")
                .expect("the DevTools connection stays open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            self.note(&value);
            return value;
        }
    }

    /// Keeps what the page reports as an error.
    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Page.loadEventFired") => self.loads += 1,
            Some("Runtime.exceptionThrown") => {
                self.errors.push(params["exceptionDetails"].to_string())
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors.push(params["args"].to_string())
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(params["entry"].to_string())
            }
            _ => {}
        }
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn open(&mut self, url: &str) {
        let before = self.loads;
        self.call("Page.navigate", json!({"url": url})).await;
        while self.loads == before {
            self.next_message().await;
        }
        // A load event may be the page before's (it reloads itself on a change): the new
        // one is loaded when its own address is, completely.
        let loaded = format!(
            "document.readyState === 'complete' && location.href === {}",
            json!(url)
        );
        self.wait_until(url, &loaded, Duration::from_secs(120))
            .await;
    }

    /// The value of `expression` in the page.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression} threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page (it may reload meanwhile: a reload
    /// answers the evaluation with an error, which counts as not yet).
    pub async fn wait_until(&mut self, what: &str, expression: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            self.next_id += 1;
            let id = self.next_id;
            let message = json!({"id": id, "method": "Runtime.evaluate", "params": {"expression": expression, "returnByValue": true}}).to_string();
            self.socket.send(Message::text(message)).await.unwrap();
            let answer = loop {
                let value = self.next_message().await;
                if value["id"] == id {
                    break value;
                }
            };
            if answer["result"]["result"]["value"] == true {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            // Let the page's own events (a reload) arrive before asking again.
            let _ = tokio::time::timeout(Duration::from_millis(100), self.next_message()).await;
        }
    }
}

/// A GET answered with JSON, from Chromium's own HTTP endpoint (which keeps the
/// connection open: the body is read to its `Content-Length`).
async fn http_json(port: u16, path: &str) -> Value {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut stream = tokio::io::BufReader::new(stream);
    stream
        .get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.unwrap();
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}
