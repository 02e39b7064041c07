//! The chart under an alert: one small panel per value (up to a digest's limit), each the
//! watched series over the last weeks with the threshold drawn as a dashed line or the
//! band history predicts shaded, and the breaching point marked and labelled clear of
//! every line (a backtest shades the days it would have been firing instead).

use chrono::NaiveDate;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::backend::SkiaBackend;
use super::canvas::{heading, png_of, white_canvas};
use super::chart::{
    Area, CHART_WIDTH_PX, DOWN, GRID, INK, LABEL_SIZE_PX, MARGIN_PX, MUTED, PALETTE, RenderError,
    draw_err, font, over_white, runs, text, y_range,
};
use super::format::NumberStyle;
use super::labels::{Rect, Segment, default_spot, place_label};

/// One panel: a value's series and what it was measured against.
#[derive(Debug, Clone)]
pub struct AlertPanel {
    pub name: String,
    /// Consecutive days, oldest first; `None` is a gap.
    pub days: Vec<(NaiveDate, Option<f64>)>,
    pub threshold: Option<f64>,
    /// The band (low, high) history predicts for the judged day.
    pub band: Option<(f64, f64)>,
    /// The judged day and its value, marked.
    pub breach: Option<(NaiveDate, f64)>,
    /// Days it was firing (a backtest's spans, first and last day), shaded.
    pub firing: Vec<(NaiveDate, NaiveDate)>,
}

pub struct AlertChart<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
    pub panels: &'a [AlertPanel],
    pub style: NumberStyle,
}

const HEADER_PX: i32 = 150;
const PANEL_HEIGHT_PX: u32 = 420;
const SINGLE_PANEL_HEIGHT_PX: u32 = 700;
const PANEL_GAP_PX: i32 = 24;
const PANEL_TITLE_SIZE_PX: u32 = 30;
const MARK_RADIUS_PX: u32 = 11;

/// The chart as a PNG: one column for one panel, two for more.
pub fn render_alert_png(chart: &AlertChart) -> Result<Vec<u8>, RenderError> {
    let columns: u32 = if chart.panels.len() > 1 { 2 } else { 1 };
    let rows = (chart.panels.len() as u32).div_ceil(columns).max(1);
    let panel_height = if chart.panels.len() > 1 {
        PANEL_HEIGHT_PX
    } else {
        SINGLE_PANEL_HEIGHT_PX
    };
    let height = HEADER_PX as u32 + rows * panel_height + MARGIN_PX as u32 / 2;
    let mut pixmap = white_canvas(CHART_WIDTH_PX, height)?;
    {
        let root = SkiaBackend::new(&mut pixmap).into_drawing_area();
        heading(&root, chart.title, chart.subtitle)?;
        let width = (CHART_WIDTH_PX as i32 - 2 * MARGIN_PX) / columns as i32;
        for (index, panel) in chart.panels.iter().enumerate() {
            let column = index as i32 % columns as i32;
            let row = index as i32 / columns as i32;
            let left = MARGIN_PX + column * width;
            let top = HEADER_PX + row * panel_height as i32;
            let area = root.clone().shrink(
                (left, top),
                (
                    (width - PANEL_GAP_PX) as u32,
                    panel_height - PANEL_GAP_PX as u32,
                ),
            );
            draw_panel(&area, panel, &chart.style)?;
        }
        root.present().map_err(draw_err)?;
    }
    png_of(&pixmap)
}

fn draw_panel(area: &Area, panel: &AlertPanel, style: &NumberStyle) -> Result<(), RenderError> {
    text(
        area,
        &panel.name,
        (0, 0),
        font(PANEL_TITLE_SIZE_PX).style(FontStyle::Bold).color(&INK),
    )?;
    let values: Vec<f64> = panel
        .days
        .iter()
        .filter_map(|(_, v)| *v)
        .chain(panel.threshold)
        .chain(panel.band.iter().flat_map(|(l, h)| [*l, *h]))
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = y_range(min, max, min >= 0.0);
    let n = panel.days.len().max(1) as f64;
    let (_, body) = area.split_vertically(PANEL_TITLE_SIZE_PX as i32 + 16);
    let mut chart = ChartBuilder::on(&body)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(120)
        .build_cartesian_2d(-0.5..(n - 0.5), low..high)
        .map_err(draw_err)?;
    let label_style = font(LABEL_SIZE_PX - 4).color(&MUTED);
    let day_at = |x: f64| {
        let index = x.round();
        (index >= 0.0)
            .then(|| panel.days.get(index as usize).map(|(d, _)| *d))
            .flatten()
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .y_labels(4)
        .y_label_formatter(&|v| style.compact(*v))
        .x_labels(5)
        .x_label_formatter(&|x| {
            day_at(*x)
                .map(|d| d.format("%m/%d").to_string())
                .unwrap_or_default()
        })
        .label_style(label_style)
        .draw()
        .map_err(draw_err)?;
    if let Some((band_low, band_high)) = panel.band {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(-0.5, band_low), (n - 0.5, band_high)],
                over_white(PALETTE[2], 0.16).filled(),
            )))
            .map_err(draw_err)?;
    }
    for (from, to) in &panel.firing {
        let index = |day: &NaiveDate| panel.days.iter().position(|(d, _)| d == day);
        if let (Some(a), Some(b)) = (index(from), index(to)) {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a as f64 - 0.5, low), (b as f64 + 0.5, high)],
                    over_white(DOWN, 0.18).filled(),
                )))
                .map_err(draw_err)?;
        }
    }
    let line = ShapeStyle::from(&PALETTE[0]).stroke_width(4);
    let series: Vec<Option<f64>> = panel.days.iter().map(|(_, v)| *v).collect();
    // What is drawn in the plot, in canvas pixels, for the label to keep clear of.
    let plot_area = chart.plotting_area().clone();
    let to_px = move |x: f64, y: f64| plot_area.map_coordinate(&(x, y));
    let mut lines: Vec<Segment> = Vec::new();
    let mut taken: Vec<Rect> = Vec::new();
    for run in runs(&series) {
        let points: Vec<(f64, f64)> = run.iter().map(|(i, v)| (*i as f64, *v)).collect();
        if points.len() == 1 {
            taken.push(Rect::around(to_px(points[0].0, points[0].1), 5));
            chart
                .draw_series(std::iter::once(Circle::new(points[0], 5, line.filled())))
                .map_err(draw_err)?;
        } else {
            lines.extend(
                points
                    .windows(2)
                    .map(|w| (to_px(w[0].0, w[0].1), to_px(w[1].0, w[1].1))),
            );
            chart
                .draw_series(LineSeries::new(points, line))
                .map_err(draw_err)?;
        }
    }
    if let Some(threshold) = panel.threshold {
        lines.push((to_px(-0.5, threshold), to_px(n - 0.5, threshold)));
        chart
            .draw_series(DashedLineSeries::new(
                vec![(-0.5, threshold), (n - 0.5, threshold)],
                12,
                8,
                ShapeStyle::from(&INK).stroke_width(3),
            ))
            .map_err(draw_err)?;
    }
    if let Some((day, value)) = panel.breach
        && let Some(i) = panel.days.iter().position(|(d, _)| *d == day)
    {
        let at = (i as f64, value);
        chart
            .draw_series(std::iter::once(Circle::new(
                at,
                MARK_RADIUS_PX,
                ShapeStyle::from(&DOWN).filled(),
            )))
            .map_err(draw_err)?;
        let point = to_px(at.0, at.1);
        taken.push(Rect::around(point, MARK_RADIUS_PX as i32));
        let label = style.value(value);
        let label_style = font(LABEL_SIZE_PX)
            .style(FontStyle::Bold)
            .color(&DOWN)
            .pos(Pos::new(HPos::Left, VPos::Top));
        let (width, height) = area
            .estimate_text_size(&label, &label_style)
            .map_err(draw_err)?;
        let size = (width as i32, (height as i32).max(LABEL_SIZE_PX as i32));
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let plot = Rect {
            left: xs.start,
            top: ys.start,
            right: xs.end,
            bottom: ys.end,
        };
        let spot = place_label(point, MARK_RADIUS_PX as i32, size, plot, &lines, &taken)
            .unwrap_or_else(|| default_spot(point, MARK_RADIUS_PX as i32, size));
        // Plot coordinates map to canvas pixels; the label is drawn relative to the panel.
        let (ax, ay) = area.get_base_pixel();
        text(area, &label, (spot.left - ax, spot.top - ay), label_style)?;
    }
    Ok(())
}
