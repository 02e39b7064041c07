//! `kpibot studio`'s loop for an author: the time from saving a report's file to the
//! updated preview in the open page of a real browser (headless Chromium over its DevTools
//! protocol), for each example report. The title is changed on each save; the preview
//! counts as updated when the page shows the new title and every image on it (the chart,
//! in the message and beside it) has loaded. Prints each report's median and slowest of
//! SAVES_PER_REPORT saves; the target is well under a second.
//!
//! `cargo bench --bench studio_save` (needs Debian's chromium; `.ci/run` installs it)

use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

const SAVES_PER_REPORT: usize = 5;
const PAGE_TIMEOUT_SECONDS: u64 = 120;

fn main() {
    if !common::chromium::available("the studio save benchmark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reports = common::copy_reports(dir.path());
    let settings = common::settings_in(dir.path(), &reports);
    let mut ids: Vec<String> = common::app(&settings)
        .load_catalog()
        .unwrap()
        .reports()
        .map(|r| r.id.clone())
        .collect();
    ids.sort();
    let studio = common::studio::start(dir.path(), &[]);
    let base = format!("http://127.0.0.1:{}", studio.port);
    println!("save → updated preview in the browser, {SAVES_PER_REPORT} saves each");
    println!("{:<32} {:>10} {:>10}", "report", "median ms", "max ms");
    common::bot::block_on(async {
        let mut browser = common::chromium::Browser::start().await;
        for id in &ids {
            let path = reports.join(format!("{id}.toml"));
            let original = std::fs::read_to_string(&path).unwrap();
            browser.open(&format!("{base}/report/{id}?lang=en")).await;
            let mut times = Vec::new();
            for save in 0..SAVES_PER_REPORT {
                let marker = format!("Saved {save}: ");
                let edited = original.replacen("title = \"", &format!("title = \"{marker}"), 1);
                let started = Instant::now();
                std::fs::write(&path, &edited).unwrap();
                browser
                    .wait_until(
                        &format!("{id} after save {save}"),
                        &format!(
                            "document.querySelector('h1').textContent.startsWith('{marker}') && Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
                        ),
                        Duration::from_secs(PAGE_TIMEOUT_SECONDS),
                    )
                    .await;
                times.push(started.elapsed().as_millis());
            }
            std::fs::write(&path, &original).unwrap();
            times.sort();
            println!(
                "{:<32} {:>10} {:>10}",
                id,
                times[times.len() / 2],
                times[times.len() - 1]
            );
        }
    });
}
