//! A fresh PostgreSQL database per test, on the server `.ci/run` starts
//! (`KPIBOT_TEST_POSTGRES_URL`), and that server's other handles (its CA, the commands that
//! stop, start and restart it). Without them the PostgreSQL tests skip with one line saying
//! so; with `KPIBOT_REQUIRE_POSTGRES=1` (CI) anything missing fails them instead.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub const POSTGRES_URL_VAR: &str = "KPIBOT_TEST_POSTGRES_URL";

/// Whether the PostgreSQL tests must run rather than skip (CI sets it).
pub fn required() -> bool {
    std::env::var("KPIBOT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// The variable `name` that `.ci/postgres` exports, or `None` (and a line on stderr saying
/// what skips) when the tests should skip; a panic when it is missing but required. The one
/// way a PostgreSQL test may decide to skip.
pub fn server_var(name: &str, skipping: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if required() => panic!(
            "{name} is not set but KPIBOT_REQUIRE_POSTGRES=1: {skipping} must run (eval \"$(.ci/postgres start)\" sets it)"
        ),
        _ => {
            eprintln!(
                "skipping {skipping}: {name} is not set (eval \"$(.ci/postgres start)\" sets it)"
            );
            None
        }
    }
}

/// The server's URL, or `None` (and a line on stderr) when the tests should skip.
pub fn server_url() -> Option<String> {
    server_var(POSTGRES_URL_VAR, "the PostgreSQL tests")
}

/// Runs one of `.ci/postgres`'s server commands (`KPIBOT_TEST_POSTGRES_STOP`, …).
pub fn run_server_command(command: &str) {
    let status = Command::new("sh").args(["-c", command]).status().unwrap();
    assert!(status.success(), "`{command}` failed: {status}");
}

/// The shared server, stopped; started again when this is dropped — at the end of the test
/// or while a failing one unwinds — so one failure does not fail every later test too.
pub struct StoppedServer {
    start: Option<String>,
}

impl StoppedServer {
    /// Stops the server with `stop`; `start` starts it again.
    pub fn stop(stop: &str, start: &str) -> Self {
        run_server_command(stop);
        Self {
            start: Some(start.to_string()),
        }
    }

    /// Starts the server again now.
    pub fn start(mut self) {
        if let Some(start) = self.start.take() {
            run_server_command(&start);
        }
    }
}

impl Drop for StoppedServer {
    fn drop(&mut self) {
        if let Some(start) = self.start.take() {
            // No assert while unwinding (a panic in a panic aborts): say what went wrong.
            match Command::new("sh").args(["-c", &start]).status() {
                Ok(status) if status.success() => {}
                other => eprintln!("could not start PostgreSQL again with `{start}`: {other:?}"),
            }
        }
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..]
        .find('/')
        .map_or(base.len(), |i| authority_end + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database(server: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "kpibot_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_micros()
    );
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL server answers");
    let task = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    drop(client);
    let _ = task.await;
    with_database(server, &name)
}
