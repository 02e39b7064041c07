//! `[[target]]`: a metric's target per month or week (optionally for one dimension
//! value), and pacing — the value to date against the target, and where the period will
//! land at this pace — by a stated method.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{Datelike, Days, Months, NaiveDate};

pub use super::metric::TargetPeriod;
use super::metric::{Accumulate, Filter, IntervalUnit, MetricKind, MetricSpec};
use super::walk::{Reader, Tbl};
use super::{Diagnostic, LoadedFile, Window};

/// How the end of a period is projected from its value to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceMethod {
    /// The value to date divided by the elapsed share of the period's days.
    Linear,
    /// The value to date scaled as the same period a year earlier grew from the same day
    /// to its end (`last year's whole period / last year's to-date`); linear where last
    /// year has no data.
    LastYear,
}

#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub metric: String,
    pub per: TargetPeriod,
    /// The target of every period not listed in `values`.
    pub value: Option<f64>,
    /// Targets of particular periods, by the period's first day.
    pub values: BTreeMap<NaiveDate, f64>,
    /// The one dimension value the target is for (`where = { channel = "ads" }`); `None`:
    /// the metric's total.
    pub filter: Option<Filter>,
    pub pace: PaceMethod,
    /// The mart table the targets are read from at run time instead of `value`/`values`
    /// (see [`super::target_table`]).
    pub table: Option<String>,
    pub path: PathBuf,
    pub span: std::ops::Range<usize>,
}

const TARGET_KEYS: [&str; 7] = ["metric", "per", "value", "values", "where", "pace", "table"];

impl TargetSpec {
    /// The target of the period starting on `start`.
    pub fn value_for(&self, start: NaiveDate) -> Option<f64> {
        self.values.get(&start).copied().or(self.value)
    }

    /// Whether this target is for a question with these filters and no split: the same
    /// single value on the target's dimension, or no filter on either side.
    pub fn applies_to(&self, filters: &[Filter]) -> bool {
        match &self.filter {
            None => filters.is_empty(),
            Some(own) => filters.len() == 1 && filters[0] == *own,
        }
    }
}

/// Why a pace alert has no one target to judge against.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaceTargetError {
    #[error("metric `{0}` has no target for this total to pace against")]
    None(String),
    #[error("metric `{0}` has more than one target for this total; the alert must name its `per`")]
    Ambiguous(String),
}

impl PaceTargetError {
    /// The metric without one target.
    pub fn metric(&self) -> &str {
        match self {
            PaceTargetError::None(m) | PaceTargetError::Ambiguous(m) => m,
        }
    }
}

/// The one target a pace alert on `metric`, filtered by `filters`, judges against: the
/// target for that same total (see [`TargetSpec::applies_to`]), of period `per` if given.
pub fn pace_target<'a>(
    targets: impl IntoIterator<Item = &'a TargetSpec>,
    metric: &str,
    filters: &[Filter],
    per: Option<TargetPeriod>,
) -> Result<&'a TargetSpec, PaceTargetError> {
    let matching: Vec<&TargetSpec> = targets
        .into_iter()
        .filter(|t| t.metric == metric && t.applies_to(filters))
        .filter(|t| per.is_none_or(|p| t.per == p))
        .collect();
    match matching.as_slice() {
        [] => Err(PaceTargetError::None(metric.to_string())),
        [one] => Ok(one),
        _ => Err(PaceTargetError::Ambiguous(metric.to_string())),
    }
}

/// Where a period stands against its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    pub target: f64,
    pub to_date: f64,
    /// `to_date / target`.
    pub attainment: f64,
    /// Where the period lands at this pace.
    pub projected: f64,
    /// `projected / target`.
    pub pace: f64,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub elapsed_days: u32,
    pub period_days: u32,
    pub method: PaceMethod,
}

/// The pacing of `window` (its value to date `to_date`) against `target`, when the window
/// runs from the start of one target period into it; `last_year` is (last year's value
/// over the whole period, over the same days to date), for [`PaceMethod::LastYear`].
pub fn pacing(
    target: &TargetSpec,
    window: Window,
    to_date: f64,
    last_year: Option<(f64, f64)>,
) -> Option<Pacing> {
    let goal = target.value_for(target.per.around(window.start).0);
    pacing_against(target, goal, window, to_date, last_year)
}

/// [`pacing`] against `goal`, the period's target wherever it was read from (the spec's
/// `values`, or a mart table).
pub fn pacing_against(
    target: &TargetSpec,
    goal: Option<f64>,
    window: Window,
    to_date: f64,
    last_year: Option<(f64, f64)>,
) -> Option<Pacing> {
    let (period_start, period_end) = target.per.around(window.start);
    if window.start != period_start || window.end > period_end || window.end < window.start {
        return None;
    }
    let goal = goal.filter(|v| *v != 0.0)?;
    let elapsed_days = (window.end - period_start).num_days() as u32 + 1;
    let period_days = (period_end - period_start).num_days() as u32 + 1;
    let linear = to_date * f64::from(period_days) / f64::from(elapsed_days);
    let (projected, method) = match (target.pace, last_year) {
        (PaceMethod::LastYear, Some((whole, so_far))) if so_far > 0.0 && whole.is_finite() => {
            (to_date * whole / so_far, PaceMethod::LastYear)
        }
        _ => (linear, PaceMethod::Linear),
    };
    Some(Pacing {
        target: goal,
        to_date,
        attainment: to_date / goal,
        projected,
        pace: projected / goal,
        period_start,
        period_end,
        elapsed_days,
        period_days,
        method,
    })
}

/// The same period a year earlier (whole, and to the same day), for last year's shape.
pub fn last_year_windows(pacing_window: Window, per: TargetPeriod) -> (Window, Window) {
    let start = per.around(pacing_window.start).0;
    let shift = |d: NaiveDate| match per {
        TargetPeriod::Month => d - Months::new(12),
        // The same weekday 52 weeks earlier.
        TargetPeriod::Week => d - Days::new(364),
    };
    let (ly_start, ly_end) = per.around(shift(start));
    let elapsed = (pacing_window.end - start).num_days() as u64;
    let to_date_end = (ly_start + Days::new(elapsed)).min(ly_end);
    (
        Window {
            start: ly_start,
            end: ly_end,
        },
        Window {
            start: ly_start,
            end: to_date_end,
        },
    )
}

impl Reader<'_> {
    pub(super) fn targets(&mut self, root: &Tbl) -> Option<Vec<TargetSpec>> {
        self.array_of_tables(
            root,
            "target",
            "write each target as `[[target]]` with metric, per and value",
            |r, t| r.target(t),
        )
    }

    fn target(&mut self, t: &Tbl) -> Option<TargetSpec> {
        self.check_keys(t, &TARGET_KEYS);
        let metric = self.string(t, "metric", true);
        let per = self.choice(t, "per", &TargetPeriod::NAMES, TargetPeriod::parse, None);
        let pace = self.choice(
            t,
            "pace",
            &["linear", "last_year"],
            |s| match s {
                "linear" => Some(PaceMethod::Linear),
                "last_year" => Some(PaceMethod::LastYear),
                _ => None,
            },
            Some(PaceMethod::Linear),
        );
        let value = match Self::lookup(t, "value") {
            None => Some(None),
            Some(v) => match number(v.get_ref()) {
                Some(n) => Some(Some(n)),
                None => {
                    self.wrong_type(t, "value", v, "a number above 0");
                    None
                }
            },
        };
        let per = per?;
        let mut values = BTreeMap::new();
        let mut ok = true;
        if let Some(table) = self.table(t, "values", false) {
            for (key, v) in table.table.iter() {
                let text = key.get_ref().to_string();
                let start = period_start(per, &text);
                match (start, number(v.get_ref())) {
                    (Some(start), Some(n)) => {
                        values.insert(start, n);
                    }
                    (None, _) => {
                        self.error(key.span(), format!("`{text}` is not a {}", per_word(per)))
                            .hint = Some(match per {
                            TargetPeriod::Month => "write months as `2026-12`".into(),
                            TargetPeriod::Week => {
                                "write weeks by their Monday, e.g. `2026-12-07`".into()
                            }
                        });
                        ok = false;
                    }
                    (_, None) => {
                        self.error(
                            v.span(),
                            format!("the target of `{text}` must be a number above 0"),
                        );
                        ok = false;
                    }
                }
            }
        }
        let value = value?;
        let table = self.string(t, "table", false);
        if let Some(table) = &table {
            if !table.get_ref().split('.').all(super::walk::is_identifier) {
                self.error(
                    table.span(),
                    format!("`{}` is not a table name", table.get_ref()),
                )
                .hint = Some("write the mart table's name, e.g. `mart.kpi_targets`".into());
                ok = false;
            } else if value.is_some() || !values.is_empty() {
                self.error(
                    table.span(),
                    "a target is read from `table` or written with `value`/`values`, not both",
                )
                .hint = Some("keep one: the table's rows, or the numbers in this file".into());
                ok = false;
            }
        }
        if table.is_none() && value.is_none() && values.is_empty() && ok {
            self.error(t.anchor.clone(), "a target needs `value` or `values`")
                .hint = Some(
                "write `value = 12000` for every period and `[target.values]` for particular ones, or `table = \"mart.kpi_targets\"` to read them from the mart"
                    .into(),
            );
            return None;
        }
        let mut filter = None;
        if let Some(table) = self.table(t, "where", false) {
            let entries: Vec<_> = table.table.iter().collect();
            match entries.as_slice() {
                [(key, v)] if v.get_ref().as_str().is_some() => {
                    filter = Some(Filter {
                        dimension: key.get_ref().to_string(),
                        values: vec![v.get_ref().as_str().unwrap_or_default().to_string()],
                    });
                }
                _ => {
                    self.error(
                        table.anchor.clone(),
                        "a target's `where` names one dimension and one value",
                    )
                    .hint = Some("e.g. `where = { channel = \"ads\" }`".into());
                    ok = false;
                }
            }
        }
        let metric = metric?;
        (ok).then(|| TargetSpec {
            span: metric.span(),
            metric: metric.into_inner(),
            per,
            value,
            values,
            filter,
            pace: pace.unwrap_or(PaceMethod::Linear),
            table: table.map(|t| t.into_inner()),
            path: self.path.to_path_buf(),
        })
    }
}

/// A target: a finite number above zero (attainment divides by it).
fn number(value: &toml::de::DeValue) -> Option<f64> {
    let n: f64 = match value {
        toml::de::DeValue::Integer(i) => i.as_str().replace('_', "").parse().ok()?,
        toml::de::DeValue::Float(f) => f.as_str().replace('_', "").parse().ok()?,
        _ => return None,
    };
    (n.is_finite() && n > 0.0).then_some(n)
}

fn per_word(per: TargetPeriod) -> &'static str {
    match per {
        TargetPeriod::Month => "month (`YYYY-MM`)",
        TargetPeriod::Week => "week's Monday (`YYYY-MM-DD`)",
    }
}

fn period_start(per: TargetPeriod, text: &str) -> Option<NaiveDate> {
    match per {
        TargetPeriod::Month => NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok(),
        TargetPeriod::Week => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .filter(|d| d.weekday() == chrono::Weekday::Mon),
    }
}

/// Whether `metric`'s value over a period is what a target is set for: a total (a sum or
/// count), or a running total from the start of the same period (month to date for a
/// monthly target).
fn targetable(metric: &MetricSpec, per: TargetPeriod) -> bool {
    let unit = match per {
        TargetPeriod::Month => IntervalUnit::Month,
        TargetPeriod::Week => IntervalUnit::Week,
    };
    metric.is_additive()
        || matches!(&metric.kind, MetricKind::Cumulative(c) if c.accumulate == Accumulate::ToDate(unit))
}

/// Checks every target against the metrics of all files: it names one, that metric adds
/// up over a period, and its `where` names one of the metric's dimensions (kept by
/// column).
pub fn link_targets(files: &mut [LoadedFile]) {
    let metrics: BTreeMap<String, MetricSpec> = files
        .iter()
        .flat_map(|f| f.metrics.iter())
        .map(|m| (m.name.clone(), m.clone()))
        .collect();
    let mut seen: Vec<(String, TargetPeriod, Option<Filter>, PathBuf)> = Vec::new();
    for file in files.iter_mut() {
        let mut problems = Vec::new();
        for target in file.targets.iter_mut() {
            let problem =
                |message: String| Diagnostic::new(&file.path, target.span.clone(), message);
            let Some(metric) = metrics.get(&target.metric) else {
                problems.push(
                    problem(format!("no metric is named `{}`", target.metric)).maybe_hint(
                        super::diagnostic::closest(
                            &target.metric,
                            metrics.keys().map(String::as_str),
                        )
                        .map(|c| format!("did you mean `{c}`?")),
                    ),
                );
                continue;
            };
            if !targetable(metric, target.per) {
                problems.push(
                    problem(format!(
                        "`{}` is not a total over a {}, so a target cannot be paced",
                        metric.name,
                        target.per.name()
                    ))
                    .with_hint("set targets on sums and counts, or on a cumulative metric to date of the same period (`grain_to_date`)"),
                );
                continue;
            }
            // The dimension by its column, before targets are compared: `チャネル` and
            // `channel` name one target.
            if let Some(filter) = &mut target.filter {
                match super::names::dimension_of(metric, &filter.dimension) {
                    Some((column, _)) => filter.dimension = column.to_string(),
                    None => {
                        problems.push(problem(format!(
                            "`{}` is not a dimension of `{}`",
                            filter.dimension, metric.name
                        )));
                        continue;
                    }
                }
            }
            let key = (target.metric.clone(), target.per, target.filter.clone());
            if let Some((.., first)) = seen
                .iter()
                .find(|(m, p, f, _)| (m, p, f) == (&key.0, &key.1, &key.2))
            {
                problems.push(
                    problem(format!(
                        "`{}` already has a target per {}{}",
                        target.metric,
                        target.per.name(),
                        target.filter.as_ref().map_or(String::new(), |f| format!(
                            " where {} = {}",
                            f.dimension,
                            f.values.join(", ")
                        ))
                    ))
                    .with_hint(format!(
                        "{} sets it; give particular periods in its `[target.values]`",
                        first.display()
                    )),
                );
                continue;
            }
            seen.push((key.0, key.1, key.2, file.path.clone()));
        }
        if !problems.is_empty() {
            file.diagnostics.extend(problems);
            file.targets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(per: TargetPeriod, value: f64, pace: PaceMethod) -> TargetSpec {
        TargetSpec {
            metric: "signups".into(),
            per,
            value: Some(value),
            values: BTreeMap::new(),
            filter: None,
            pace,
            table: None,
            path: "t.toml".into(),
            span: 0..0,
        }
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn window(start: &str, end: &str) -> Window {
        Window {
            start: day(start),
            end: day(end),
        }
    }

    #[test]
    fn half_a_month_at_half_the_target_is_on_pace() {
        // November has 30 days: 15 elapsed, 600 of 1,200.
        let t = target(TargetPeriod::Month, 1200.0, PaceMethod::Linear);
        let p = pacing(&t, window("2026-11-01", "2026-11-15"), 600.0, None).unwrap();
        assert_eq!((p.elapsed_days, p.period_days), (15, 30));
        assert_eq!(p.attainment, 0.5);
        assert_eq!(p.projected, 1200.0);
        assert_eq!(p.pace, 1.0);
    }

    #[test]
    fn month_ends_of_28_to_31_days_and_a_dst_change_count_calendar_days() {
        let t = target(TargetPeriod::Month, 1000.0, PaceMethod::Linear);
        // (window end, days in the month): February 2026 (28), February 2028 (29),
        // April (30), March 2026 (31, with the US and EU clocks changing in it).
        for (end, days) in [
            ("2026-02-14", 28),
            ("2028-02-14", 29),
            ("2026-04-15", 30),
            ("2026-03-15", 31),
        ] {
            let end = day(end);
            let start = end.with_day(1).unwrap();
            let p = pacing(&t, Window { start, end }, 410.0, None).unwrap();
            assert_eq!(p.period_days, days, "{end}");
            let elapsed = f64::from(end.day());
            assert!((p.projected - 410.0 * f64::from(days) / elapsed).abs() < 1e-9);
            assert_eq!(p.period_end, start + Months::new(1) - Days::new(1));
        }
    }

    #[test]
    fn last_years_shape_scales_the_value_to_date() {
        // Last December: 300 by the 10th, 1,500 in all: this year's 400 by the 10th
        // projects to 2,000, not the linear 1,240.
        let t = target(TargetPeriod::Month, 1600.0, PaceMethod::LastYear);
        let w = window("2026-12-01", "2026-12-10");
        let p = pacing(&t, w, 400.0, Some((1500.0, 300.0))).unwrap();
        assert_eq!(p.projected, 2000.0);
        assert_eq!(p.pace, 1.25);
        assert_eq!(p.method, PaceMethod::LastYear);
        let (whole, to_date) = last_year_windows(w, TargetPeriod::Month);
        assert_eq!(
            (whole.start, whole.end),
            (day("2025-12-01"), day("2025-12-31"))
        );
        assert_eq!(to_date.end, day("2025-12-10"));
        // Without last year's data the method falls back to linear, and says so.
        let p = pacing(&t, w, 400.0, None).unwrap();
        assert_eq!((p.method, p.projected), (PaceMethod::Linear, 1240.0));
    }

    #[test]
    fn only_a_window_from_a_periods_start_within_it_is_paced() {
        let t = target(TargetPeriod::Week, 70.0, PaceMethod::Linear);
        // 2026-11-30 is a Monday.
        assert!(pacing(&t, window("2026-11-30", "2026-12-02"), 30.0, None).is_some());
        assert!(pacing(&t, window("2026-12-01", "2026-12-02"), 30.0, None).is_none());
        assert!(pacing(&t, window("2026-11-30", "2026-12-08"), 30.0, None).is_none());
        let p = pacing(&t, window("2026-11-30", "2026-12-02"), 30.0, None).unwrap();
        assert_eq!(p.projected, 70.0);
    }
}
