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

/// Recently answered queries by their exact SQL and parameters.
pub struct QueryCache {
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Table)>>,
    /// Queries running now, by key: a second identical question waits for the first.
    in_flight: Mutex<HashMap<String, Answer>>,
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
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    fn key(sql: &str, params: &Params) -> String {
        format!("{sql}\u{0}{params:?}")
    }

    fn get(&self, sql: &str, params: &Params) -> Option<Table> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, table) = entries.get(&Self::key(sql, params))?;
        (at.elapsed() < Duration::from_secs(CACHE_TTL_SECONDS)).then(|| table.clone())
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

    /// The one in-flight answer for `key`, shared by everyone asking it now.
    fn in_flight(&self, key: &str) -> Answer {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        in_flight.entry(key.to_string()).or_default().clone()
    }

    fn landed(&self, key: &str, answer: &Answer) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if in_flight.get(key).is_some_and(|a| Arc::ptr_eq(a, answer)) {
            in_flight.remove(key);
        }
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
        let answer = self.cache.in_flight(&key);
        let result = answer
            .get_or_init(|| self.inner.query(sql, params, job))
            .await
            .clone();
        self.cache.landed(&key, &answer);
        let table = result?;
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
