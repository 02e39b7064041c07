//! The ledger on PostgreSQL, shared by any number of replicas: a connection pool that
//! reconnects by itself, statements bounded in time, TLS as `sslmode` asks, and the shared
//! migrations run under an advisory lock so replicas starting together do not race.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::redact::redact;
use super::{Cell, LedgerError, Param, statement_timeout};
use crate::deliver::error_chain;
use crate::settings::LedgerSettings;

/// A statement on a pooled connection, still running.
type PgFuture<'c, T> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'c>,
>;

/// The advisory lock replicas take while migrating ("kpibot" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6b70_6962_6f74;

pub struct PostgresLedger {
    pool: Pool,
    /// The URL with its password hidden.
    shown: String,
    timeout: Duration,
}

/// How the server's certificate is checked, from the URL's `sslmode`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CertificateCheck {
    /// `disable`, `prefer`, `require`: encrypted when asked, the server not verified (as
    /// libpq does).
    None,
    /// `verify-ca`, `verify-full`: the chain must lead to a trusted root (`sslrootcert`,
    /// else the public web roots) and name the host.
    Verify { root: Option<String> },
}

/// Splits what tokio-postgres does not parse (`sslmode=verify-*`, `sslrootcert`) out of
/// the URL.
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, CertificateCheck), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut verify = false;
    let mut root = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", "verify-full" | "verify-ca")) => {
                verify = true;
                kept.push("sslmode=require".to_string());
            }
            Some(("sslrootcert", path)) => root = Some(path.to_string()),
            _ => kept.push(pair.to_string()),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let config: tokio_postgres::Config = rebuilt
        .parse()
        .map_err(|e| format!("the URL is not a PostgreSQL connection URL ({e})"))?;
    let check = if verify {
        CertificateCheck::Verify { root }
    } else {
        CertificateCheck::None
    };
    Ok((config, check))
}

fn tls(check: &CertificateCheck) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match check {
        CertificateCheck::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        CertificateCheck::Verify { root } => {
            let mut roots = rustls::RootCertStore::empty();
            match root {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?;
                    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                        let cert: CertificateDer<'static> =
                            cert.map_err(|e| format!("sslrootcert {path} is not PEM: {e}"))?;
                        roots
                            .add(cert)
                            .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `sslmode=require`: the connection is encrypted, the certificate is not checked.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What the person running kpibot should do about a connection that failed at start.
fn open_error(shown: &str, error: &deadpool_postgres::PoolError) -> LedgerError {
    let db_code = match error {
        deadpool_postgres::PoolError::Backend(e) => e.code().cloned(),
        _ => None,
    };
    let detail = describe_pool_error(error);
    let advice = match db_code {
        Some(code)
            if code == SqlState::INVALID_PASSWORD
                || code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            "The server refused the user or password: check the user and password in KPIBOT__LEDGER__URL (for Kubernetes, the Secret it comes from)."
        }
        Some(code) if code == SqlState::INVALID_CATALOG_NAME => {
            "The database does not exist: create it (`createdb kpibot`, or in your cloud console) or fix its name at the end of KPIBOT__LEDGER__URL."
        }
        Some(_) => {
            "The server answered with an error: see the detail, and that the user may create tables in the database."
        }
        None if detail.contains("TLS") => {
            "The TLS handshake failed: with sslmode=verify-full the server's certificate must chain to sslrootcert (or a public root) and name the host in the URL. Give the CA file your provider publishes (Cloud SQL: server-ca.pem) as sslrootcert, or use sslmode=require to encrypt without checking."
        }
        None => {
            "Nothing answered: check the host and port in KPIBOT__LEDGER__URL, that the server runs and accepts connections from here (firewall, Cloud SQL connection, `pg_hba.conf`), and `sslmode`."
        }
    };
    LedgerError::Open {
        ledger: shown.to_string(),
        detail,
        advice: advice.to_string(),
    }
}

fn describe_pool_error(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => error_chain(e),
        },
        deadpool_postgres::PoolError::Timeout(_) => "no connection within the time limit".into(),
        other => other.to_string(),
    }
}

impl PostgresLedger {
    /// Builds the pool, checks one connection works, and brings the schema up to date.
    pub async fn connect(url: &str, settings: &LedgerSettings) -> Result<Self, LedgerError> {
        let ledger = Self::pool_only(url, settings, false)?;
        ledger.migrate().await?;
        Ok(ledger)
    }

    /// A pool whose every transaction the server holds read-only, with no migration: for
    /// pages that show the ledger and must never change it.
    pub fn read_only(url: &str, settings: &LedgerSettings) -> Result<Self, LedgerError> {
        Self::pool_only(url, settings, true)
    }

    /// The pool, no connection made yet.
    fn pool_only(
        url: &str,
        settings: &LedgerSettings,
        read_only: bool,
    ) -> Result<Self, LedgerError> {
        let shown = redact(url);
        let setup = |detail: String, advice: &str| LedgerError::Open {
            ledger: shown.clone(),
            detail,
            advice: advice.to_string(),
        };
        let (mut config, check) = parse_url(url).map_err(|d| {
            setup(d, "Write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE (for a Unix socket, postgres://USER:PASSWORD@/DATABASE?host=/cloudsql/PROJECT:REGION:INSTANCE).")
        })?;
        let timeout = statement_timeout(settings);
        config.connect_timeout(timeout);
        config.application_name("kpibot");
        // The server gives up on a statement when kpibot does, so a statement abandoned by
        // the client does not hold locks on.
        let mut server_timeout = format!("-c statement_timeout={}", timeout.as_millis());
        if read_only {
            server_timeout.push_str(" -c default_transaction_read_only=on");
        }
        let options = match config.get_options() {
            Some(theirs) if !theirs.is_empty() => format!("{theirs} {server_timeout}"),
            _ => server_timeout,
        };
        config.options(&options);
        let tls = tls(&check).map_err(|d| setup(d, "Fix sslrootcert, or use sslmode=require."))?;
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_millis(settings.pool_wait_ms)))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(|e| setup(e.to_string(), "This is a bug in kpibot's pool set-up."))?;
        Ok(Self {
            pool,
            shown,
            timeout,
        })
    }

    pub fn describe(&self) -> String {
        self.shown.clone()
    }

    /// Connects once and checks the server takes writes, changing nothing (for
    /// `config --check`): unreachable, refused password and missing database each come
    /// back with what to do.
    pub async fn probe(url: &str, settings: &LedgerSettings) -> Result<(), LedgerError> {
        let ledger = Self::pool_only(url, settings, false)?;
        drop(
            ledger
                .pool
                .get()
                .await
                .map_err(|e| open_error(&ledger.shown, &e))?,
        );
        ledger.check_writable().await
    }

    /// Runs the shared migrations while holding an advisory lock: a second replica
    /// starting at the same moment waits, then finds them applied.
    async fn migrate(&self) -> Result<(), LedgerError> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| open_error(&self.shown, &e))?;
        let migration = |e: &dyn std::error::Error| LedgerError::Migration(error_chain(e));
        // Waits for another replica's migration, bounded by the statement timeout.
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
            .await
            .map_err(|e| migration(&e))?;
        let client_ref: &mut tokio_postgres::Client = &mut client;
        let result = super::migrations(false).run_async(client_ref).await;
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
            .await;
        result.map_err(|e| migration(&e))?;
        unlocked.map_err(|e| migration(&e))?;
        Ok(())
    }

    /// A pooled connection; after a database restart the dead ones are dropped and new
    /// ones made, so a failover heals without a kpibot restart.
    async fn client(&self) -> Result<deadpool_postgres::Object, LedgerError> {
        self.pool
            .get()
            .await
            .map_err(|e| LedgerError::Unavailable(describe_pool_error(&e)))
    }

    /// Runs `work` on a connection, bounded by the statement timeout, once more on a fresh
    /// connection when the first one turned out to be closed (the server restarted).
    async fn with_retry<T>(
        &self,
        sql: &str,
        params: &[Param],
        work: impl for<'c> Fn(
            &'c deadpool_postgres::Object,
            &'c str,
            &'c [&'c (dyn ToSql + Sync)],
        ) -> PgFuture<'c, T>,
    ) -> Result<T, LedgerError> {
        let sql = numbered(sql);
        let values = to_sql(params);
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let client = self.client().await?;
            let result = tokio::time::timeout(self.timeout, work(&client, &sql, &refs)).await;
            match result {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if error.is_closed() && attempt < 2 => {
                    drop(deadpool_postgres::Object::take(client));
                    continue;
                }
                Ok(Err(error)) => {
                    let failure = classify(&error);
                    if matches!(failure, LedgerError::Unavailable(_)) && !error.is_closed() {
                        // A read-only or shutting-down server: not a connection to reuse.
                        drop(deadpool_postgres::Object::take(client));
                    }
                    return Err(failure);
                }
                Err(_) => {
                    // The connection may be wedged: do not give it back to the pool.
                    drop(deadpool_postgres::Object::take(client));
                    return Err(LedgerError::Unavailable(format!(
                        "no answer within {} ms",
                        self.timeout.as_millis()
                    )));
                }
            }
        }
    }

    pub(crate) async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, LedgerError> {
        self.with_retry(sql, params, |client, sql, refs| {
            Box::pin(async move {
                let statement = client.prepare_cached(sql).await?;
                client.execute(&statement, refs).await
            })
        })
        .await
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Vec<Cell>>, LedgerError> {
        let rows = self
            .with_retry(sql, params, |client, sql, refs| {
                Box::pin(async move {
                    let statement = client.prepare_cached(sql).await?;
                    client.query(&statement, refs).await
                })
            })
            .await?;
        rows.iter().map(cells).collect()
    }

    /// The server answers and takes writes: a replica that a failover left read-only does
    /// not count.
    pub async fn check_writable(&self) -> Result<(), LedgerError> {
        let rows = self.query("SHOW transaction_read_only", &[]).await?;
        match rows.first().and_then(|row| row.first()) {
            Some(Cell::Text(value)) if value == "off" => Ok(()),
            _ => Err(LedgerError::Unavailable(
                "the server is read-only (a standby): the ledger needs the primary".into(),
            )),
        }
    }
}

/// What a failed statement means for the ledger: the database away for now (retry later)
/// or a real error. Server states that pass with time count as away: shutting down or
/// starting (57P0x), a read-only standby after a failover (25006), serialization
/// failures and deadlocks (40001, 40P01), out of resources (53xxx), connection faults
/// (08xxx). Without a server answer, a closed connection or an I/O failure is away too;
/// anything else (a parameter of the wrong type) is a bug, not an outage.
fn classify(error: &tokio_postgres::Error) -> LedgerError {
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        let transient = code.starts_with("57P")
            || code.starts_with("53")
            || code.starts_with("08")
            || matches!(code, "25006" | "40001" | "40P01");
        let message = format!("{} ({code})", db.message());
        return if transient {
            LedgerError::Unavailable(message)
        } else {
            LedgerError::Postgres(message)
        };
    }
    let io = std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>());
    if error.is_closed() || io {
        LedgerError::Unavailable(error.to_string())
    } else {
        LedgerError::Postgres(error.to_string())
    }
}

/// `?N` placeholders (what SQLite reads) as PostgreSQL's `$N`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn to_sql(params: &[Param]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|param| -> Box<dyn ToSql + Sync + Send> {
            match param {
                Param::Text(text) => Box::new(text.clone()),
                Param::Int(int) => Box::new(*int),
                Param::BigInt(int) => Box::new(*int),
            }
        })
        .collect()
}

fn cells(row: &tokio_postgres::Row) -> Result<Vec<Cell>, LedgerError> {
    let read = |e: tokio_postgres::Error| LedgerError::Postgres(e.to_string());
    (0..row.len())
        .map(|index| {
            let column_type = row.columns()[index].type_();
            Ok(if *column_type == Type::INT4 {
                row.try_get::<_, Option<i32>>(index)
                    .map_err(read)?
                    .map_or(Cell::Null, |i| Cell::Int(i.into()))
            } else if *column_type == Type::INT8 {
                row.try_get::<_, Option<i64>>(index)
                    .map_err(read)?
                    .map_or(Cell::Null, Cell::Int)
            } else if *column_type == Type::INT2 {
                row.try_get::<_, Option<i16>>(index)
                    .map_err(read)?
                    .map_or(Cell::Null, |i| Cell::Int(i.into()))
            } else {
                row.try_get::<_, Option<String>>(index)
                    .map_err(read)?
                    .map_or(Cell::Null, Cell::Text)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_dollars() {
        assert_eq!(
            numbered("WHERE a = ?1 AND b = ?12 AND CAST(?3 AS TEXT) IS NULL"),
            "WHERE a = $1 AND b = $12 AND CAST($3 AS TEXT) IS NULL"
        );
    }

    #[test]
    fn verify_modes_and_unix_sockets_are_understood() {
        let (config, check) = parse_url(
            "postgres://u:p@db.example.com/kpibot?sslmode=verify-full&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(
            check,
            CertificateCheck::Verify {
                root: Some("/ca.pem".into())
            }
        );
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        let (config, check) =
            parse_url("postgres://u:p@/kpibot?host=/cloudsql/proj:asia-northeast1:ledger").unwrap();
        assert_eq!(check, CertificateCheck::None);
        assert!(matches!(
            config.get_hosts(),
            [tokio_postgres::config::Host::Unix(path)] if path.to_str() == Some("/cloudsql/proj:asia-northeast1:ledger")
        ));
        assert!(parse_url("mysql://nope").is_err());
    }
}
