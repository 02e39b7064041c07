//! Recently answered queries, reused for the same SQL and parameters: a warehouse wrapper
//! that answers from the cache when it can (for `/kpi`, where people ask the same thing),
//! holds at most so many answers, and runs identical questions asked together once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::{Dialect, Estimate, Params, QueryJob, Table, Warehouse, WarehouseError};

/// How long an answered query is reused for the same question.
pub const CACHE_TTL_SECONDS: u64 = 600;
/// Answers kept unless the settings say otherwise (`slash.cache_entries`).
pub const DEFAULT_CACHE_ENTRIES: usize = 256;

type Answer = Arc<OnceCell<Result<Table, WarehouseError>>>;

/// Queries running now, by their exact SQL and parameters: a second identical question
/// asked meanwhile waits for the first one's answer instead of running again.
#[derive(Default)]
pub struct InFlight {
    running: Mutex<HashMap<String, Answer>>,
}

impl InFlight {
    pub fn key(sql: &str, params: &Params) -> String {
        format!("{sql}\u{0}{params:?}")
    }

    /// `run`'s answer for `key`, or the answer of the identical query running now.
    pub async fn once<F>(&self, key: &str, run: impl FnOnce() -> F) -> Result<Table, WarehouseError>
    where
        F: std::future::Future<Output = Result<Table, WarehouseError>>,
    {
        let answer: Answer = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.entry(key.to_string()).or_default().clone()
        };
        let ran_here = std::sync::atomic::AtomicBool::new(false);
        let mut result = answer
            .get_or_init(|| {
                ran_here.store(true, std::sync::atomic::Ordering::Relaxed);
                run()
            })
            .await
            .clone();
        // Only the query that ran was billed: an identical one that waited for its answer
        // scanned nothing, so the same bytes are never counted twice.
        if !ran_here.load(std::sync::atomic::Ordering::Relaxed)
            && let Ok(table) = &mut result
        {
            table.bytes_processed = table.bytes_processed.map(|_| 0);
        }
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.get(key).is_some_and(|a| Arc::ptr_eq(a, &answer)) {
            running.remove(key);
        }
        result
    }
}

/// Recently answered queries by their exact SQL and parameters.
pub struct QueryCache {
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Table)>>,
    /// Queries running now: a second identical question waits for the first.
    in_flight: InFlight,
}

impl Default for QueryCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CACHE_ENTRIES)
    }
}

impl QueryCache {
    /// A cache holding at most `capacity` answers (the oldest go first).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            in_flight: InFlight::default(),
        }
    }

    fn key(sql: &str, params: &Params) -> String {
        InFlight::key(sql, params)
    }

    fn get(&self, sql: &str, params: &Params) -> Option<Table> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, table) = entries.get(&Self::key(sql, params))?;
        (at.elapsed() < Duration::from_secs(CACHE_TTL_SECONDS)).then(|| Table {
            // An answer from the cache scanned nothing this time.
            bytes_processed: table.bytes_processed.map(|_| 0),
            ..table.clone()
        })
    }

    fn put(&self, sql: &str, params: &Params, table: &Table) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(CACHE_TTL_SECONDS));
        while entries.len() >= self.capacity {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            entries.remove(&oldest);
        }
        entries.insert(Self::key(sql, params), (Instant::now(), table.clone()));
    }
}

/// A warehouse that answers from the cache when it can.
pub struct Cached<'a> {
    pub inner: &'a dyn Warehouse,
    pub cache: &'a QueryCache,
    /// Asked to be fresh ("Refresh"): the warehouse answers, and the cache keeps that answer.
    pub fresh: bool,
}

#[async_trait]
impl Warehouse for Cached<'_> {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError> {
        if !self.fresh
            && let Some(table) = self.cache.get(sql, params)
        {
            return Ok(table);
        }
        let key = QueryCache::key(sql, params);
        let table = self
            .cache
            .in_flight
            .once(&key, || self.inner.query(sql, params, job))
            .await?;
        self.cache.put(sql, params, &table);
        Ok(table)
    }

    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Estimate, WarehouseError> {
        self.inner.dry_run(sql, params, job).await
    }

    async fn reads(&self, sql: &str, params: &Params, job: &QueryJob) -> super::reads::Reads {
        self.inner.reads(sql, params, job).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}
