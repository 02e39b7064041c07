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

    /// `run`'s answer for `key`, or the answer of the identical query running now — unless
    /// that one was refused for its asker's budget, which is not this caller's: then
    /// `run` asks for itself.
    pub async fn once<F>(&self, key: &str, run: impl Fn() -> F) -> Result<Table, WarehouseError>
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
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.get(key).is_some_and(|a| Arc::ptr_eq(a, &answer)) {
                running.remove(key);
            }
        }
        if !ran_here.load(std::sync::atomic::Ordering::Relaxed)
            && matches!(result, Err(WarehouseError::OverBudget(_)))
        {
            return run().await;
        }
        result
    }

    /// How many callers share each query running now (the one that runs it and those
    /// waiting for its answer), in no order: what a test holds the warehouse on to see
    /// identical questions meet.
    pub fn sharing(&self) -> Vec<usize> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        // The map holds one reference to each answer; every caller in `once` holds another.
        running.values().map(|a| Arc::strong_count(a) - 1).collect()
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

    /// How many callers share each query running now: [`InFlight::sharing`].
    pub fn sharing(&self) -> Vec<usize> {
        self.in_flight.sharing()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::warehouse::cost::{BudgetKind, OverBudget};

    fn refused() -> WarehouseError {
        WarehouseError::OverBudget(Box::new(OverBudget {
            kind: BudgetKind::Person,
            subject: "U0ALICE".into(),
            limit_bytes: 1,
            spent_bytes: 1,
            estimate_bytes: 1,
            resets_at: chrono::Utc::now().fixed_offset(),
        }))
    }

    fn table(bytes: u64) -> Table {
        Table {
            bytes_processed: Some(bytes),
            ..Table::default()
        }
    }

    /// Alice is over her budget and Bob is not; they ask the same thing at once. Bob is
    /// not refused for Alice's budget, and an answer shared with him costs him nothing.
    #[tokio::test]
    async fn a_refusal_for_one_askers_budget_is_not_shared_with_another() {
        let in_flight = Arc::new(InFlight::default());
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let started_tx = std::sync::Mutex::new(Some(started_tx));
        let alice = {
            let (in_flight, release) = (in_flight.clone(), release.clone());
            tokio::spawn(async move {
                in_flight
                    .once("q", || {
                        let release = release.clone();
                        if let Some(tx) = started_tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        async move {
                            release.notified().await;
                            Err(refused())
                        }
                    })
                    .await
            })
        };
        started.await.unwrap();
        let bob = {
            let in_flight = in_flight.clone();
            tokio::spawn(async move { in_flight.once("q", || async { Ok(table(4096)) }).await })
        };
        // Bob waits on Alice's query (it is in flight) until it is released.
        tokio::task::yield_now().await;
        release.notify_one();
        assert!(matches!(
            alice.await.unwrap(),
            Err(WarehouseError::OverBudget(_))
        ));
        let bob = bob.await.unwrap().expect("Bob asks for himself");
        assert_eq!(bob.bytes_processed, Some(4096));

        // A shared answer: the one who waited scanned nothing.
        let release = Arc::new(tokio::sync::Notify::new());
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let started_tx = std::sync::Mutex::new(Some(started_tx));
        let first = {
            let (in_flight, release) = (in_flight.clone(), release.clone());
            tokio::spawn(async move {
                in_flight
                    .once("r", || {
                        let release = release.clone();
                        if let Some(tx) = started_tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        async move {
                            release.notified().await;
                            Ok(table(8192))
                        }
                    })
                    .await
            })
        };
        started.await.unwrap();
        let second = {
            let in_flight = in_flight.clone();
            tokio::spawn(async move { in_flight.once("r", || async { Ok(table(1)) }).await })
        };
        tokio::task::yield_now().await;
        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().bytes_processed, Some(8192));
        let second = second.await.unwrap().unwrap();
        assert_eq!(
            second.bytes_processed,
            Some(0),
            "the shared answer cost it nothing"
        );
    }
}
