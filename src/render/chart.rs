//! Charts: line, area, bar (grouped or stacked), drawn anti-aliased at 2× density with the
//! bundled font; [`super::page`] puts one on the page (title, legend) and encodes the PNG,
//! and [`super::panels`] draws the `number` card and the `table` image with the constants
//! and helpers here.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::backend::SkiaBackend;
use super::data::{ChartData, XAxis, last_present};
use super::fonts::FONT_FAMILY;
use super::format::{NumberStyle, truncate_chars};
use crate::i18n::{self, Locale};
use crate::spec::{ChartKind, Goal};
use crate::warehouse::Table;

/// Pixel size of every chart: an 800×450 chart at 2× density.
pub const CHART_WIDTH_PX: u32 = 1600;
pub const CHART_HEIGHT_PX: u32 = 900;
pub(super) const MARGIN_PX: i32 = 56;
pub(super) const LABEL_SIZE_PX: u32 = 26;
pub(super) const LINE_WIDTH_PX: u32 = 5;
/// Space kept between two x-axis labels.
const X_LABEL_GAP_PX: i32 = 24;
/// Longest category label, in characters, before it is shortened with "…".
const MAX_CATEGORY_LABEL_CHARS: usize = 14;

pub(super) const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub(super) const MUTED: RGBColor = RGBColor(0x5f, 0x63, 0x68);
pub(super) const GRID: RGBColor = RGBColor(0xe3, 0xe5, 0xe8);
pub(super) const ZEBRA: RGBColor = RGBColor(0xf4, 0xf6, 0xf8);
pub(super) const UP: RGBColor = RGBColor(0x00, 0x9E, 0x73);
pub(super) const DOWN: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// Okabe–Ito: distinguishable with the common forms of colour blindness.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x99, 0x99, 0x99),
    RGBColor(0x00, 0x00, 0x00),
];

/// The plot's coordinates: x is the index on the x axis, y the value.
type Plane = Cartesian2d<RangedCoordf64, RangedCoordf64>;
pub(super) type Area<'a> = DrawingArea<SkiaBackend<'a>, Shift>;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the bundled font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error(transparent)]
    Encode(#[from] super::encode::EncodeError),
}

pub(super) fn draw_err<E: std::fmt::Debug>(e: E) -> RenderError {
    RenderError::Draw(format!("{e:?}"))
}

/// The KPI card's figures, already formatted.
#[derive(Debug, Clone)]
pub struct Card {
    pub label: String,
    pub value: String,
    pub change: Option<String>,
    /// Sign of the change: with `higher_is_better`, up is green and down orange.
    pub delta: f64,
    pub higher_is_better: bool,
    pub comparison: Option<String>,
}

/// Everything a chart shows.
pub struct ChartInput<'a> {
    pub data: &'a ChartData,
    /// The query result, for `table` charts.
    pub table: Option<&'a Table>,
    pub kind: ChartKind,
    pub style: NumberStyle,
    pub title: &'a str,
    /// The data window and timezone, e.g. `2026-10-29 – 2026-11-25 (Asia/Tokyo)`.
    pub subtitle: &'a str,
    /// Shown instead of a plot when there is no data.
    pub empty_message: &'a str,
    pub goal: Option<&'a Goal>,
    pub label_last: bool,
    pub max_rows: usize,
    /// The `y` column, formatted with the report's style in tables.
    pub y_column: &'a str,
    pub card: Option<Card>,
}

pub(super) fn font(size: u32) -> FontDesc<'static> {
    (FONT_FAMILY, size).into_font()
}

pub(super) fn text<'a>(
    area: &Area,
    content: &str,
    at: (i32, i32),
    style: impl IntoTextStyle<'a>,
) -> Result<(), RenderError> {
    let style = style.into_text_style(area);
    area.draw(&Text::new(content.to_string(), at, style))
        .map_err(draw_err)
}

pub(super) fn text_width(area: &Area, content: &str, size: u32) -> i32 {
    area.estimate_text_size(content, &font(size).into_text_style(area))
        .map_or(content.chars().count() as i32 * size as i32, |(w, _)| {
            w as i32
        })
}

/// The y range: bars and areas start at zero; lines are padded, never clipped, and do not
/// dip below zero when no value does. The goal line is always inside.
pub(super) fn y_range(min: f64, max: f64, from_zero: bool) -> (f64, f64) {
    let (min, max) = if from_zero {
        (min.min(0.0), max.max(0.0))
    } else {
        (min, max)
    };
    let span = max - min;
    let pad = if span > 0.0 {
        span * 0.08
    } else {
        max.abs().max(1.0) * 0.1
    };
    // Never pad below zero when no value is negative.
    let low = if min >= 0.0 {
        (min - pad).max(0.0)
    } else {
        min - pad
    };
    let low = if from_zero && min >= 0.0 { 0.0 } else { low };
    let high = if from_zero && max < 0.0 {
        0.0
    } else {
        max + pad
    };
    (low, high)
}

fn value_bounds(input: &ChartInput, stacked: bool) -> (f64, f64) {
    let data = input.data;
    let (mut min, mut max) = if stacked {
        (0..data.x.len()).fold((0.0f64, 0.0f64), |(lo, hi), i| {
            let values = data.series.iter().filter_map(|s| s.values[i]);
            let pos: f64 = values.clone().filter(|v| *v > 0.0).sum();
            let neg: f64 = values.filter(|v| *v < 0.0).sum();
            (lo.min(neg), hi.max(pos))
        })
    } else {
        min_max(
            data.series
                .iter()
                .flat_map(|s| s.values.iter().flatten().copied()),
        )
    };
    if let Some(goal) = input.goal {
        min = min.min(goal.value);
        max = max.max(goal.value);
    }
    (min, max)
}

/// The smallest and largest of `values` (infinities when there are none).
pub(super) fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// Builds the plot with its y axis; x labels are drawn separately so they never overlap.
fn build<'a>(
    root: &Area,
    body: &DrawingArea<SkiaBackend<'a>, Shift>,
    input: &ChartInput,
    (low, high): (f64, f64),
) -> Result<ChartContext<'a, SkiaBackend<'a>, Plane>, RenderError> {
    let style = input.style;
    let widest_y_label = [low, high, (low + high) / 2.0]
        .iter()
        .map(|v| {
            text_width(
                root,
                &style.axis(*v, low.abs().max(high.abs())),
                LABEL_SIZE_PX,
            )
        })
        .max()
        .unwrap_or(80);
    let x_count = input.data.x.len();
    let mut chart = ChartBuilder::on(body)
        .margin_left(MARGIN_PX as u32 / 2)
        .margin_right(MARGIN_PX as u32)
        .margin_bottom(16)
        .margin_top(10)
        .x_label_area_size(56)
        .y_label_area_size((widest_y_label + 36) as u32)
        .build_cartesian_2d(-0.5..(x_count as f64 - 0.5), low..high)
        .map_err(draw_err)?;
    let axis_max = low.abs().max(high.abs());
    let y_formatter = |v: &f64| style.axis(*v, axis_max);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .x_labels(0)
        .y_labels(8)
        .y_label_formatter(&y_formatter)
        .label_style(font(LABEL_SIZE_PX).color(&MUTED))
        .draw()
        .map_err(draw_err)?;
    Ok(chart)
}

/// Which x positions get a label: days, Mondays, month starts or quarter starts by span;
/// every category (then thinned so none overlap).
fn x_tick_candidates(x: &XAxis, locale: Locale, with_weekday: bool) -> Vec<(usize, String)> {
    use chrono::Datelike;
    match x {
        XAxis::Dates(days) => {
            let span = days.len();
            let pick: Box<dyn Fn(&chrono::NaiveDate) -> bool> = if span <= 16 {
                Box::new(|_| true)
            } else if span <= 70 {
                Box::new(|d| d.weekday() == chrono::Weekday::Mon)
            } else if span <= 400 {
                Box::new(|d| d.day() == 1)
            } else {
                Box::new(|d| d.day() == 1 && d.month0() % 3 == 0)
            };
            days.iter()
                .enumerate()
                .filter(|(_, d)| pick(d))
                .map(|(i, d)| {
                    let label = if span <= 70 {
                        i18n::axis_day(locale, *d, with_weekday)
                    } else {
                        d.format("%Y/%m").to_string()
                    };
                    (i, label)
                })
                .collect()
        }
        XAxis::Categories(names) => names
            .iter()
            .enumerate()
            .map(|(i, n)| (i, truncate_chars(n, MAX_CATEGORY_LABEL_CHARS)))
            .collect(),
    }
}

/// Shortens `label` with "…" until it is at most `room` pixels wide.
fn fit(root: &Area, label: &str, room: i32) -> String {
    if text_width(root, label, LABEL_SIZE_PX) <= room {
        return label.to_string();
    }
    let chars: Vec<char> = label.chars().collect();
    for keep in (1..chars.len()).rev() {
        let candidate: String = chars[..keep].iter().collect::<String>() + "…";
        if text_width(root, &candidate, LABEL_SIZE_PX) <= room {
            return candidate;
        }
    }
    "…".to_string()
}

/// Draws x labels under the plot: centred on their position, kept inside the image, and
/// skipped when they would touch the previous one.
fn draw_x_labels(
    root: &Area,
    chart: &ChartContext<SkiaBackend, Plane>,
    input: &ChartInput,
    low: f64,
) -> Result<(), RenderError> {
    let area = chart.plotting_area();
    let (x_range, _) = area.get_pixel_range();
    let mut last_right = i32::MIN;
    let slot = (x_range.end - x_range.start) as f64 / input.data.x.len().max(1) as f64;
    // Days in Japanese carry their weekday, `11/29(日)`, when every label still fits.
    let locale = input.style.locale;
    let with_weekday = x_tick_candidates(&input.data.x, locale, true);
    let fits = with_weekday.windows(2).all(|pair| {
        let room = slot * (pair[1].0 - pair[0].0) as f64;
        let widths = text_width(root, &pair[0].1, LABEL_SIZE_PX).max(text_width(
            root,
            &pair[1].1,
            LABEL_SIZE_PX,
        ));
        f64::from(widths + X_LABEL_GAP_PX) <= room
    });
    let candidates = if fits {
        with_weekday
    } else {
        x_tick_candidates(&input.data.x, locale, false)
    };
    // Categories: label every k-th bar (k as small as keeps a few characters readable) and
    // shorten each label to its room, so every labelled bar has a label.
    let (step, room) = match input.data.x {
        XAxis::Categories(_) => {
            let widest = candidates
                .iter()
                .map(|(_, l)| text_width(root, l, LABEL_SIZE_PX))
                .max()
                .unwrap_or(0);
            let readable = widest.min(text_width(root, "カテゴリ", LABEL_SIZE_PX));
            let step = ((f64::from(readable + X_LABEL_GAP_PX) / slot).ceil() as usize).max(1);
            (step, (slot * step as f64) as i32 - X_LABEL_GAP_PX)
        }
        XAxis::Dates(_) => (1, i32::MAX),
    };
    for (i, label) in candidates.into_iter().filter(|(i, _)| i % step == 0) {
        let label = fit(root, &label, room);
        let (px, py) = area.map_coordinate(&(i as f64, low));
        let width = text_width(root, &label, LABEL_SIZE_PX);
        let left = (px - width / 2).clamp(x_range.start - 40, CHART_WIDTH_PX as i32 - width - 8);
        if left < last_right + X_LABEL_GAP_PX {
            continue;
        }
        text(
            root,
            &label,
            (left, py + 14),
            font(LABEL_SIZE_PX).color(&MUTED),
        )?;
        area.draw(&PathElement::new(
            vec![(i as f64, low), (i as f64, low)],
            MUTED,
        ))
        .map_err(draw_err)?;
        last_right = left + width;
    }
    Ok(())
}

fn draw_goal(
    root: &Area,
    chart: &mut ChartContext<SkiaBackend, Plane>,
    input: &ChartInput,
) -> Result<(), RenderError> {
    let Some(goal) = input.goal else {
        return Ok(());
    };
    let n = input.data.x.len() as f64;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(-0.5, goal.value), (n - 0.5, goal.value)],
            14,
            10,
            ShapeStyle::from(&INK).stroke_width(3),
        ))
        .map_err(draw_err)?;
    let (px, py) = chart.plotting_area().map_coordinate(&(n - 0.5, goal.value));
    let name = match &goal.label {
        Some(label) => label.clone(),
        None => crate::tr!(input.style.locale, "chart-goal"),
    };
    let label = format!("{name} {}", input.style.compact(goal.value));
    text(
        root,
        &label,
        (px - 8, py - 8),
        font(LABEL_SIZE_PX)
            .style(FontStyle::Bold)
            .color(&INK)
            .pos(Pos::new(HPos::Right, VPos::Bottom)),
    )
}

/// Unbroken runs of present values, with their x index.
pub(super) fn runs(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => current.push((i, *v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

pub(super) fn draw_lines(
    root: &Area,
    body: &Area,
    input: &ChartInput,
    filled: bool,
) -> Result<(), RenderError> {
    let (min, max) = value_bounds(input, false);
    let (low, high) = y_range(min, max, filled);
    let mut chart = build(root, body, input, (low, high))?;
    let baseline = low.max(0.0).min(high);
    for (index, series) in input.data.series.iter().enumerate().rev() {
        let color = PALETTE[index % PALETTE.len()];
        let style = ShapeStyle::from(&color).stroke_width(LINE_WIDTH_PX);
        // Each unbroken run is its own line: a gap in the data is a gap in the chart.
        for run in runs(&series.values) {
            let points: Vec<(f64, f64)> = run.iter().map(|(i, v)| (*i as f64, *v)).collect();
            if filled && points.len() > 1 {
                fill_under(&mut chart, &points, baseline, color.mix(0.18))?;
            }
            if points.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(points[0], 7, style.filled())))
                    .map_err(draw_err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(draw_err)?;
            }
        }
    }
    draw_goal(root, &mut chart, input)?;
    if input.label_last {
        draw_last_labels(root, &chart, input)?;
    }
    draw_x_labels(root, &chart, input, low)
}

/// Shades the area between a run of points and the baseline.
/// `color` at `opacity` over the white background, as an opaque colour.
pub(super) fn over_white(color: RGBColor, opacity: f64) -> RGBAColor {
    let mix = |c: u8| (f64::from(c) * opacity + 255.0 * (1.0 - opacity)).round() as u8;
    RGBAColor(mix(color.0), mix(color.1), mix(color.2), 1.0)
}

pub(super) fn fill_under(
    chart: &mut ChartContext<SkiaBackend, Plane>,
    points: &[(f64, f64)],
    baseline: f64,
    color: RGBAColor,
) -> Result<(), RenderError> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Ok(());
    };
    let mut polygon = points.to_vec();
    polygon.push((last.0, baseline));
    polygon.push((first.0, baseline));
    chart
        .draw_series(std::iter::once(Polygon::new(polygon, color.filled())))
        .map_err(draw_err)?;
    Ok(())
}

/// The value at the end of each line, in the line's colour.
fn draw_last_labels(
    root: &Area,
    chart: &ChartContext<SkiaBackend, Plane>,
    input: &ChartInput,
) -> Result<(), RenderError> {
    for (index, series) in input.data.series.iter().enumerate() {
        let Some((i, v)) = last_present(&series.values) else {
            continue;
        };
        let color = PALETTE[index % PALETTE.len()];
        let (px, py) = chart.plotting_area().map_coordinate(&(i as f64, v));
        chart
            .plotting_area()
            .draw(&Circle::new((i as f64, v), 8, color.filled()))
            .map_err(draw_err)?;
        text(
            root,
            &input.style.compact(v),
            (px - 12, py - 14),
            font(LABEL_SIZE_PX)
                .style(FontStyle::Bold)
                .color(&color)
                .pos(Pos::new(HPos::Right, VPos::Bottom)),
        )?;
    }
    Ok(())
}

pub(super) fn draw_bars(
    root: &Area,
    body: &Area,
    input: &ChartInput,
    stacked: bool,
) -> Result<(), RenderError> {
    let data = input.data;
    let n = data.x.len();
    let (min, max) = value_bounds(input, stacked);
    let (low, high) = y_range(min, max, true);
    let mut chart = build(root, body, input, (low, high))?;
    let slot_width = 0.8;
    let groups = if stacked { 1 } else { data.series.len().max(1) };
    let bar_width = slot_width / groups as f64;
    let mut stack_pos = vec![0.0f64; n];
    let mut stack_neg = vec![0.0f64; n];
    for (index, series) in data.series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = series
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .map(|(i, v)| {
                let (left, bottom, top) = if stacked {
                    let base = if v >= 0.0 {
                        &mut stack_pos[i]
                    } else {
                        &mut stack_neg[i]
                    };
                    let bottom = *base;
                    *base += v;
                    (i as f64 - slot_width / 2.0, bottom, *base)
                } else {
                    (
                        i as f64 - slot_width / 2.0 + bar_width * index as f64,
                        0.0,
                        v,
                    )
                };
                Rectangle::new(
                    [(left, bottom), (left + bar_width * 0.92, top)],
                    color.filled(),
                )
            })
            .collect();
        chart.draw_series(bars).map_err(draw_err)?;
    }
    draw_goal(root, &mut chart, input)?;
    draw_x_labels(root, &chart, input, low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_start_at_zero_and_lines_are_padded() {
        assert_eq!(y_range(100.0, 200.0, true).0, 0.0);
        let (low, high) = y_range(100.0, 200.0, false);
        assert!(low < 100.0 && low > 0.0 && high > 200.0);
        let (low, _) = y_range(-50.0, 10.0, true);
        assert!(low < -50.0);
        let (low, high) = y_range(0.0, 0.0, true);
        assert!(low == 0.0 && high > 0.0, "all zeros still get an axis");
    }

    #[test]
    fn gaps_split_lines() {
        let r = runs(&[Some(1.0), None, Some(2.0), Some(3.0), None]);
        assert_eq!(r, vec![vec![(0, 1.0)], vec![(2, 2.0), (3, 3.0)]]);
    }

    #[test]
    fn date_ticks_follow_the_span() {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let days = |n: usize| XAxis::Dates(start.iter_days().take(n).collect());
        assert_eq!(
            x_tick_candidates(&days(14), Locale::En, false).len(),
            14,
            "two weeks: every day"
        );
        let weekly = x_tick_candidates(&days(60), Locale::En, false);
        assert!(weekly.iter().all(|(i, _)| {
            (start + chrono::Days::new(*i as u64))
                .format("%a")
                .to_string()
                == "Mon"
        }));
        let monthly = x_tick_candidates(&days(365), Locale::En, false);
        assert_eq!(monthly.len(), 12);
        assert_eq!(monthly[1].1, "2026/02");
        assert_eq!(
            x_tick_candidates(&days(731), Locale::En, false).len(),
            9,
            "two years: quarters"
        );
    }
}
