//! Recently answered queries, reused for the same SQL and parameters: a warehouse wrapper
//! that answers from the cache when it can (for `/kpi`, where people ask the same thing).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Dialect, Estimate, Params, QueryJob, Table, Warehouse, WarehouseError};

/// How long an answered query is reused for the same question.
pub const CACHE_TTL_SECONDS: u64 = 600;

/// Recently answered queries by their exact SQL and parameters.
#[derive(Default)]
pub struct QueryCache {
    entries: Mutex<HashMap<String, (Instant, Table)>>,
}

impl QueryCache {
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
        entries.insert(Self::key(sql, params), (Instant::now(), table.clone()));
    }
}

/// A warehouse that answers from the cache when it can.
pub struct Cached<'a> {
    pub inner: &'a dyn Warehouse,
    pub cache: &'a QueryCache,
}

#[async_trait]
impl Warehouse for Cached<'_> {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError> {
        if let Some(table) = self.cache.get(sql, params) {
            return Ok(table);
        }
        let table = self.inner.query(sql, params, job).await?;
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

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}
