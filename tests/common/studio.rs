//! `kpibot studio` as a process for the tests and benchmarks: started on a free port over
//! a folder, its printed address read, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Studio {
    child: Child,
    pub port: u16,
}

impl Drop for Studio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn command(dir: &std::path::Path, listen: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kpibot"));
    command
        .args(["studio", "--listen", listen])
        .current_dir(dir)
        .env("KPIBOT__REPORTS__DIR", dir.join("reports"))
        .env("KPIBOT__WAREHOUSE__DUCKDB__PATH", dir.join("demo.duckdb"))
        .env("KPIBOT__LEDGER__PATH", dir.join("ledger.sqlite"))
        .env_remove("KPIBOT__SLACK__BOT_TOKEN")
        .envs(env.iter().copied());
    command
}

/// Starts the studio and reads the address it prints.
pub fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Studio {
    let mut child = command(dir, "127.0.0.1:0", env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .find_map(|line| line.ok().filter(|l| l.contains("kpibot studio: open")))
        .expect("the studio prints its address");
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line}"));
    // The rest of its output is not read; it must not block on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Studio { child, port }
}
