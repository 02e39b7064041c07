//! One explanation run: a metric split over the given dimensions in the asked window and
//! its comparison by one warehouse query ([`crate::spec::explain_sql`]), decomposed and
//! ranked ([`crate::explain`]). Which dimensions may be computed is decided before this is
//! called; what the query reads can be proven first with [`Prepared::reads`].

use crate::explain::{
    DecomposeError, Decomposition, decompose_ratio, decompose_sum, explanatory_power,
};
use crate::i18n::{self, Locale};
use crate::spec::explain_sql::{ExplainSqlError, Split, explain_sql, members_of, sum_members};
use crate::spec::metric::Filter;
use crate::spec::{MetricSpec, Window};
use crate::tr;
use crate::warehouse::reads::Reads;
use crate::warehouse::{Params, QueryJob, Warehouse, WarehouseError};

/// Why an explanation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    #[error(transparent)]
    Sql(#[from] ExplainSqlError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Decompose(#[from] DecomposeError),
}

impl WhyError {
    /// What went wrong, for the person who asked.
    pub fn text(&self, locale: Locale) -> String {
        let window = |w: &Window| i18n::date_range(locale, w.start, w.end);
        match self {
            WhyError::Warehouse(error) => super::warehouse_failure(error, locale),
            WhyError::Sql(ExplainSqlError::NotAdditive(name)) => {
                tr!(locale, "why-error-not-additive", name = name.as_str())
            }
            WhyError::Sql(ExplainSqlError::NoDimensions(name)) => {
                tr!(locale, "why-error-no-dimensions", name = name.as_str())
            }
            WhyError::Sql(ExplainSqlError::Overlapping(asked, compared)) => tr!(
                locale,
                "why-error-overlapping",
                asked = window(asked),
                compared = window(compared)
            ),
            WhyError::Decompose(DecomposeError::NoDenominator(which)) => {
                tr!(locale, "why-error-no-denominator", window = *which)
            }
            // A bug in kpibot's own query: said as it is.
            WhyError::Sql(other @ ExplainSqlError::MissingColumn(_)) => other.to_string(),
        }
    }
}

/// The explanation's query, ready to prove and run.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub metric: String,
    pub dimensions: Vec<String>,
    pub asked: Window,
    pub compared: Window,
    pub sql: String,
    pub params: Params,
    pub split: Split,
}

/// One dimension's decomposition and how well it explains the change.
#[derive(Debug, Clone)]
pub struct Explained {
    pub dimension: String,
    pub power: f64,
    pub decomposition: Decomposition,
}

/// A finished explanation: every dimension, best explanation first.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub prepared: Prepared,
    pub dimensions: Vec<Explained>,
    /// Rows the query returned; bytes it scanned where the warehouse says.
    pub rows: usize,
    pub bytes: Option<u64>,
}

impl Explanation {
    /// The change's totals: `(before, after)` (every dimension's parts add up to them).
    pub fn totals(&self) -> Option<(f64, f64)> {
        self.dimensions
            .first()
            .map(|d| (d.decomposition.before, d.decomposition.after))
    }
}

/// The query for `metric` over `dimensions`, `filters`, `asked` against `compared`.
pub fn prepare(
    warehouse: &dyn Warehouse,
    metric: &MetricSpec,
    dimensions: &[&str],
    filters: &[Filter],
    asked: Window,
    compared: Window,
) -> Result<Prepared, WhyError> {
    let (sql, params, split) = explain_sql(
        warehouse.dialect(),
        metric,
        dimensions,
        filters,
        asked,
        compared,
    )?;
    Ok(Prepared {
        metric: metric.name.clone(),
        dimensions: dimensions.iter().map(|d| d.to_string()).collect(),
        asked,
        compared,
        sql,
        params,
        split,
    })
}

impl Prepared {
    /// What the query reads, as the warehouse proves it without reading data.
    pub async fn reads(&self, warehouse: &dyn Warehouse, job: &QueryJob) -> Reads {
        warehouse.reads(&self.sql, &self.params, job).await
    }

    /// Runs the query and explains the change by each dimension, best first.
    pub async fn run(
        self,
        warehouse: &dyn Warehouse,
        job: &QueryJob,
    ) -> Result<Explanation, WhyError> {
        let table = warehouse.query(&self.sql, &self.params, job).await?;
        let names: Vec<&str> = self.dimensions.iter().map(String::as_str).collect();
        let per_dimension = members_of(&table, &names)?;
        let mut dimensions = Vec::with_capacity(names.len());
        for (name, members) in names.iter().zip(per_dimension) {
            let decomposition = match self.split {
                Split::Sum => decompose_sum(&sum_members(&members)),
                Split::Ratio => decompose_ratio(&members)?,
            };
            dimensions.push(Explained {
                dimension: name.to_string(),
                power: explanatory_power(&decomposition),
                decomposition,
            });
        }
        // Best explanation first; equal scores in the catalog's order.
        dimensions.sort_by(|a, b| b.power.total_cmp(&a.power));
        Ok(Explanation {
            rows: table.rows.len(),
            bytes: table.bytes_processed,
            prepared: self,
            dimensions,
        })
    }
}
