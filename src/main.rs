//! The `kpibot` binary: parse the command line, run the verb, report how it ended.

use std::process::ExitCode;

use clap::Parser;
use kpibot::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match cli::run(Cli::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
