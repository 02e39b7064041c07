//! Bounded work: a report whose query returns two million rows fails fast with a message
//! naming the row limit, and the process never holds the answer in memory.

mod common;

/// Peak resident memory of `kpibot <args>` in KiB, measured by the kernel (getrusage of the
/// child, through Python's standard library).
fn peak_rss_kib(args: &[&str], dir: &std::path::Path, reports: &std::path::Path) -> (u64, String) {
    let script = "import resource, subprocess, sys\n\
                  p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n\
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                  print(p.stdout + p.stderr)";
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_kpibot"))
        .args(args)
        .current_dir(dir)
        .env("KPIBOT__REPORTS__DIR", reports)
        .env("KPIBOT__WAREHOUSE__DUCKDB__PATH", dir.join("demo.duckdb"))
        .env_remove("KPIBOT__SLACK__BOT_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (first, rest) = text.split_once('\n').unwrap();
    (first.trim().parse().unwrap(), rest.to_string())
}

#[test]
fn two_million_rows_fail_at_the_row_limit_and_memory_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    std::fs::write(
        reports.join("huge.toml"),
        r##"title = "Every event"
description = "Two million rows: far more than any chart can show."
owner = "#data-team"
[definition]
source = "generated"
refreshed = "never"
purpose = "Test."
[query]
sql = """
SELECT DATE '2026-01-01' + (i % 300)::INTEGER AS day, i AS n
FROM range(2000000) AS t(i)
WHERE @end_date IS NOT NULL
"""
[chart]
kind = "line"
x = "day"
y = "n"
"##,
    )
    .unwrap();
    let (peak_kib, output) = peak_rss_kib(&["preview", "huge"], dir.path(), &reports);
    assert!(
        output.contains("more than 100000 rows") && output.contains("limits.max_rows"),
        "{output}"
    );
    assert!(
        peak_kib < 300 * 1024,
        "peak RSS {} MiB while refusing a two-million-row answer",
        peak_kib / 1024
    );
}
