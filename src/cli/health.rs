//! `kpibot health`: asks a running `serve` for `/healthz` on its operations listener, for
//! container health checks (where there is no curl).

use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::App;
use crate::ops::HEALTH_PATH;

/// How long `health` waits for `serve` to answer.
pub const HEALTH_TIMEOUT_SECONDS: u64 = 5;

/// `kpibot health`: asks a running `serve` for `/healthz` (for container health checks,
/// where there is no curl).
pub async fn health(app: &App) -> anyhow::Result<bool> {
    let settings = &app.settings;
    // The operations listener always has /healthz.
    let listen = &settings.http.ops_listen;
    let mut address: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("KPIBOT__HTTP__OPS_LISTEN `{listen}`"))?;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let answer = tokio::time::timeout(Duration::from_secs(HEALTH_TIMEOUT_SECONDS), async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(
                format!(
                    "GET {} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n",
                    HEALTH_PATH
                )
                .as_bytes(),
            )
            .await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    })
    .await
    .with_context(|| format!("no answer from {address} within {HEALTH_TIMEOUT_SECONDS} s"))?
    .with_context(|| format!("cannot reach kpibot at {address}"))?;
    Ok(answer.starts_with("HTTP/1.1 200"))
}
