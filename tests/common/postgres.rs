//! A fresh PostgreSQL database per test, on the server `.ci/run` starts
//! (`KPIBOT_TEST_POSTGRES_URL`). Without that variable the PostgreSQL tests skip with one
//! line saying so; with `KPIBOT_REQUIRE_POSTGRES=1` (CI) a missing server fails them.

use std::sync::atomic::{AtomicU32, Ordering};

pub const POSTGRES_URL_VAR: &str = "KPIBOT_TEST_POSTGRES_URL";

/// The server's URL, or `None` (and a line on stderr) when the tests should skip.
pub fn server_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("KPIBOT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => panic!(
            "{POSTGRES_URL_VAR} is not set but KPIBOT_REQUIRE_POSTGRES=1: the PostgreSQL tests must run (see .ci/run)"
        ),
        _ => {
            eprintln!(
                "skipping the PostgreSQL ledger tests: {POSTGRES_URL_VAR} is not set (.ci/run starts a throwaway server and sets it)"
            );
            None
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
