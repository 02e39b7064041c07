//! The warehouse as one process shares it between its flows (scheduled posts, alerts,
//! `/kpi`): at most `warehouse.max_concurrent_queries` queries run at once, the rest queue
//! first come first served (BigQuery queues a project's interactive queries and refuses
//! them past its queue, so kpibot queues its own instead), and a query identical to one
//! running now — the same SQL, parameters, row limit, time limit and bytes cap, as reports
//! sharing a query in a due minute ask — waits for that one's answer instead of running
//! again.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::cache::InFlight;
use super::{Dialect, Estimate, Params, QueryJob, Table, Warehouse, WarehouseError};

/// A warehouse with a bound on queries at once and identical queries run once.
pub struct SharedWarehouse {
    inner: Arc<dyn Warehouse>,
    places: Semaphore,
    in_flight: InFlight,
}

impl SharedWarehouse {
    pub fn new(inner: Arc<dyn Warehouse>, max_concurrent_queries: usize) -> Self {
        Self {
            inner,
            places: Semaphore::new(max_concurrent_queries.max(1)),
            in_flight: InFlight::default(),
        }
    }

    /// Runs `work` once a place is free.
    async fn in_turn<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        // Never closed: a permit always comes.
        let _place = self.places.acquire().await;
        work.await
    }
}

#[async_trait]
impl Warehouse for SharedWarehouse {
    async fn query(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Table, WarehouseError> {
        // Shared only by queries that would run alike: the same limits and bytes cap (the
        // billing labels are the first asker's).
        let key = format!(
            "{}\u{0}{}\u{0}{:?}\u{0}{:?}",
            InFlight::key(sql, params),
            job.max_rows,
            job.timeout,
            job.maximum_bytes_billed
        );
        self.in_flight
            .once(&key, || self.in_turn(self.inner.query(sql, params, job)))
            .await
    }

    async fn dry_run(
        &self,
        sql: &str,
        params: &Params,
        job: &QueryJob,
    ) -> Result<Estimate, WarehouseError> {
        self.in_turn(self.inner.dry_run(sql, params, job)).await
    }

    async fn reads(&self, sql: &str, params: &Params, job: &QueryJob) -> super::reads::Reads {
        self.in_turn(self.inner.reads(sql, params, job)).await
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
}
