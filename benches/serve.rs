//! `kpibot serve` at scale: time to ready and idle resident memory with 1,000 scheduled
//! reports, and the time to validate 10,000 specs (in process and with `kpibot check`).
//! Prints the figures; targets: ready < 300 ms, idle RSS < 40 MB, 10,000 specs < 2 s.
//! Serve is measured twice: on the embedded DuckDB demo mart (the default) and on BigQuery
//! (the production warehouse, here the tests' fake BigQuery), where DuckDB's engine is
//! never loaded into kpibot — and, with `KPIBOT_TEST_POSTGRES_URL`, on BigQuery with the
//! ledger on PostgreSQL, as a replica deployed for availability runs.
//!
//! `cargo bench --bench serve`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

const SERVED_REPORTS: usize = 1_000;
const VALIDATED_SPECS: usize = 10_000;
const RUNS: usize = 3;
const IDLE_SECONDS: u64 = 3;

fn spec(i: usize) -> String {
    format!(
        r##"title = "Report {i}"
description = "Generated for the serve benchmark."
owner = "#data-team"

[definition]
source = "mart.daily_active_users"
refreshed = "daily"
purpose = "benchmark"

[query]
sql = """
SELECT activity_date AS day, role, SUM(active_users) AS users
FROM mart.daily_active_users
WHERE activity_date BETWEEN @start_date AND @end_date
GROUP BY activity_date, role ORDER BY day
"""
period = "last 28 days"

[chart]
kind = "line"
x = "day"
y = "users"
series = "role"

[[schedule]]
cron = "0 {} {} * * Mon-Fri"
timezone = "Asia/Tokyo"
channel = "#kpi-{}"
"##,
        i % 60,
        (i / 60) % 24,
        i % 50
    )
}

fn write_specs(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        std::fs::write(dir.join(format!("report_{i:05}.toml")), spec(i)).unwrap();
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// (VmRSS, RssAnon, RssFile) in kB: all resident memory, the process's own heap and
/// stacks, and pages mapped from files (mostly the binary's code, shared and reclaimable).
fn rss_kb(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn serve_once(dir: &Path, port: u16, env: &[(&str, &str)]) -> (Duration, (u64, u64, u64)) {
    // `/readyz` is on the operations listener, beside the public one.
    let ops_port = port + 1;
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kpibot"))
        .arg("serve")
        .current_dir(dir)
        .env_remove("KPIBOT__SLACK__BOT_TOKEN")
        .env("KPIBOT__REPORTS__DIR", dir.join("reports"))
        .env("KPIBOT__HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("KPIBOT__HTTP__OPS_LISTEN", format!("127.0.0.1:{ops_port}"))
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = loop {
        if http_status(ops_port, "/readyz") == Some(200) {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never became ready"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    std::thread::sleep(Duration::from_secs(IDLE_SECONDS));
    let rss = rss_kb(child.id());
    // The shell's own `kill`, so no procps package is needed.
    Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    child.wait().unwrap();
    (ready, rss)
}

/// Starts `serve` RUNS times and prints the median time to ready and idle memory.
fn measure_serve(dir: &Path, port: u16, env: &[(&str, &str)], warehouse: &str) {
    let mut readies = Vec::new();
    let mut rsses = Vec::new();
    for _ in 0..RUNS {
        let (ready, rss) = serve_once(dir, port, env);
        readies.push(ready);
        rsses.push(rss);
    }
    readies.sort();
    rsses.sort();
    let (rss, anon, file) = rsses[RUNS / 2];
    println!(
        "serve with {SERVED_REPORTS} reports {warehouse}: ready in {:.0} ms (median of {RUNS}; min {:.0}, max {:.0}); idle RSS {:.1} MB = {:.1} MB anonymous + {:.1} MB file-backed (median)",
        readies[RUNS / 2].as_secs_f64() * 1000.0,
        readies[0].as_secs_f64() * 1000.0,
        readies[RUNS - 1].as_secs_f64() * 1000.0,
        rss as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; there is nothing to list.
    }
    let root = tempfile::tempdir().unwrap();
    let serve_dir = root.path().join("serve");
    write_specs(&serve_dir.join("reports"), SERVED_REPORTS);
    let port = 39_000 + (std::process::id() % 1000) as u16;
    // The first start builds the demo mart; it is not what is measured.
    serve_once(&serve_dir, port, &[]);
    measure_serve(&serve_dir, port, &[], "on the embedded DuckDB demo mart");
    let bigquery = common::fake_bigquery::FakeBigQuery::start_in_background(None);
    measure_serve(
        &serve_dir,
        port,
        &[
            ("KPIBOT__WAREHOUSE__KIND", "bigquery"),
            ("KPIBOT__WAREHOUSE__BIGQUERY__PROJECT", "kpibot-bench"),
            ("KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT", &bigquery.endpoint),
        ],
        "on BigQuery",
    );
    // A replica as deployed for availability: BigQuery, and the ledger on PostgreSQL.
    if let Some(server) = common::postgres::server_url() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let url = runtime.block_on(common::postgres::fresh_database(&server));
        measure_serve(
            &serve_dir,
            port,
            &[
                ("KPIBOT__WAREHOUSE__KIND", "bigquery"),
                ("KPIBOT__WAREHOUSE__BIGQUERY__PROJECT", "kpibot-bench"),
                ("KPIBOT__WAREHOUSE__BIGQUERY__ENDPOINT", &bigquery.endpoint),
                ("KPIBOT__LEDGER__URL", &url),
            ],
            "on BigQuery with the ledger on PostgreSQL (one replica)",
        );
    }

    let validate_dir = root.path().join("validate");
    write_specs(&validate_dir, VALIDATED_SPECS);
    let defaults = kpibot::spec::SpecDefaults::duckdb(chrono_tz::Asia::Tokyo);
    let mut in_process = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let files = kpibot::spec::load_dir(&validate_dir, &defaults).unwrap();
        in_process.push(started.elapsed());
        assert_eq!(files.len(), VALIDATED_SPECS);
        assert!(files.iter().all(|f| f.diagnostics.is_empty()));
    }
    in_process.sort();
    let started = Instant::now();
    let check = Command::new(env!("CARGO_BIN_EXE_kpibot"))
        .args(["check", validate_dir.to_str().unwrap()])
        .current_dir(root.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let cli = started.elapsed();
    assert!(check.success());
    println!(
        "validate {VALIDATED_SPECS} specs: {:.0} ms in process (median of {RUNS}), {:.0} ms with `kpibot check` (process start and output included)",
        in_process[RUNS / 2].as_secs_f64() * 1000.0,
        cli.as_secs_f64() * 1000.0
    );
}
