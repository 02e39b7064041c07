//! Plotters charts: line and bar (grouped or stacked) PNGs at 2× density for Slack.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor;

use super::data::{ChartData, XAxis};
use super::fonts::{self, FONT_FAMILY};
use super::format::format_compact;
use crate::spec::{ChartKind, NumberFormat};

/// Pixel size of every chart: an 800×450 chart at 2× density.
pub const CHART_WIDTH_PX: u32 = 1600;
pub const CHART_HEIGHT_PX: u32 = 900;
const HEADER_HEIGHT_PX: u32 = 150;
const MARGIN_PX: u32 = 56;
const TITLE_SIZE_PX: u32 = 46;
const SUBTITLE_SIZE_PX: u32 = 28;
const LABEL_SIZE_PX: u32 = 26;
/// Most x labels drawn, so they never overlap.
const MAX_X_LABELS: usize = 10;

/// The plot's coordinates: x is the index on the x axis, y the value.
type Plane = Cartesian2d<RangedCoordf64, RangedCoordf64>;

const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x5f, 0x63, 0x68);
const GRID: RGBColor = RGBColor(0xe3, 0xe5, 0xe8);
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

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("the bundled font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the PNG failed: {0}")]
    Encode(String),
}

fn draw_err<E: std::fmt::Debug>(e: E) -> RenderError {
    RenderError::Draw(format!("{e:?}"))
}

/// What the chart says above the plot.
pub struct Heading<'a> {
    pub title: &'a str,
    /// The data window and timezone, e.g. `2026-10-29 – 2026-11-25 (Asia/Tokyo)`.
    pub subtitle: &'a str,
    /// Shown instead of a plot when there is no data.
    pub empty_message: &'a str,
}

/// Renders `data` as a PNG.
pub fn render_png(
    data: &ChartData,
    kind: ChartKind,
    format: NumberFormat,
    heading: &Heading,
) -> Result<Vec<u8>, RenderError> {
    if !fonts::register() {
        return Err(RenderError::Font);
    }
    let mut pixels = vec![255u8; (CHART_WIDTH_PX * CHART_HEIGHT_PX * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (CHART_WIDTH_PX, CHART_HEIGHT_PX))
            .into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw_heading(&root, heading)?;
        let (_, body) = root.split_vertically(HEADER_HEIGHT_PX);
        if data.is_empty() {
            draw_empty(&body, heading.empty_message)?;
        } else {
            match kind {
                ChartKind::Bar => draw_bars(&body, data, format, false)?,
                ChartKind::StackedBar => draw_bars(&body, data, format, true)?,
                _ => draw_lines(&body, data, format)?,
            }
        }
        root.present().map_err(draw_err)?;
    }
    encode_png(&pixels, CHART_WIDTH_PX, CHART_HEIGHT_PX)
}

fn draw_heading(
    root: &DrawingArea<BitMapBackend, Shift>,
    heading: &Heading,
) -> Result<(), RenderError> {
    let title_style = (FONT_FAMILY, TITLE_SIZE_PX)
        .into_font()
        .style(FontStyle::Bold)
        .color(&INK);
    let subtitle_style = (FONT_FAMILY, SUBTITLE_SIZE_PX).into_font().color(&MUTED);
    let x = MARGIN_PX as i32;
    root.draw(&Text::new(heading.title.to_string(), (x, 44), title_style))
        .map_err(draw_err)?;
    root.draw(&Text::new(
        heading.subtitle.to_string(),
        (x, 106),
        subtitle_style,
    ))
    .map_err(draw_err)?;
    Ok(())
}

fn draw_empty(body: &DrawingArea<BitMapBackend, Shift>, message: &str) -> Result<(), RenderError> {
    let (w, h) = body.dim_in_pixel();
    let style = (FONT_FAMILY, 40)
        .into_font()
        .color(&MUTED)
        .pos(text_anchor::Pos::new(
            text_anchor::HPos::Center,
            text_anchor::VPos::Center,
        ));
    body.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2 - 40),
        style,
    ))
    .map_err(draw_err)
}

/// The y range: bars start at zero; lines are padded, never clipped, and do not dip below
/// zero when no value does.
fn y_range(min: f64, max: f64, from_zero: bool) -> (f64, f64) {
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
    let high = if from_zero && max <= 0.0 {
        0.0
    } else {
        max + pad
    };
    (low, high)
}

fn x_label_for(x: &XAxis, value: f64) -> String {
    let index = value.round();
    if (value - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    x.label(index as usize)
}

fn configure<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Plane>,
    data: &ChartData,
    format: NumberFormat,
) -> Result<(), RenderError>
where
    DB::ErrorType: 'static,
{
    let x_formatter = |v: &f64| x_label_for(&data.x, *v);
    let y_formatter = |v: &f64| format_compact(*v, format);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .x_labels(data.x.len().clamp(1, MAX_X_LABELS))
        .y_labels(6)
        .x_label_formatter(&x_formatter)
        .y_label_formatter(&y_formatter)
        .label_style((FONT_FAMILY, LABEL_SIZE_PX).into_font().color(&MUTED))
        .draw()
        .map_err(|e| RenderError::Draw(format!("{e:?}")))
}

fn build<'a, DB: DrawingBackend + 'a>(
    body: &DrawingArea<DB, Shift>,
    x_count: usize,
    (low, high): (f64, f64),
) -> Result<ChartContext<'a, DB, Plane>, RenderError>
where
    DB::ErrorType: 'static,
{
    ChartBuilder::on(body)
        .margin_left(MARGIN_PX / 2)
        .margin_right(MARGIN_PX)
        .margin_bottom(MARGIN_PX / 2)
        .margin_top(10)
        .x_label_area_size(60)
        .y_label_area_size(130)
        .build_cartesian_2d(-0.5..(x_count as f64 - 0.5), low..high)
        .map_err(draw_err)
}

fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Plane>,
) -> Result<(), RenderError>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .label_font((FONT_FAMILY, LABEL_SIZE_PX).into_font().color(&INK))
        .draw()
        .map_err(|e| RenderError::Draw(format!("{e:?}")))
}

fn draw_lines<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    data: &ChartData,
    format: NumberFormat,
) -> Result<(), RenderError>
where
    DB::ErrorType: 'static,
{
    let values = data
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied());
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let mut chart = build(body, data.x.len(), y_range(min, max, false))?;
    configure(&mut chart, data, format)?;
    for (index, series) in data.series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let style = ShapeStyle::from(&color).stroke_width(5);
        let mut labelled = false;
        // Each unbroken run is its own line: a gap in the data is a gap in the chart.
        for run in runs(&series.values) {
            let points: Vec<(f64, f64)> = run.iter().map(|(i, v)| (*i as f64, *v)).collect();
            let drawn = if points.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(points[0], 7, style.filled())))
                    .map_err(draw_err)?
            } else {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(draw_err)?
            };
            if !labelled {
                labelled = true;
                drawn.label(series.name.clone()).legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 36, y)],
                        ShapeStyle::from(&color).stroke_width(6),
                    )
                });
            }
        }
    }
    if data.series.len() > 1 {
        draw_legend(&mut chart)?;
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    data: &ChartData,
    format: NumberFormat,
    stacked: bool,
) -> Result<(), RenderError>
where
    DB::ErrorType: 'static,
{
    let n = data.x.len();
    let (min, max) = if stacked {
        (0..n).fold((0.0f64, 0.0f64), |(lo, hi), i| {
            let pos: f64 = data
                .series
                .iter()
                .filter_map(|s| s.values[i])
                .filter(|v| *v > 0.0)
                .sum();
            let neg: f64 = data
                .series
                .iter()
                .filter_map(|s| s.values[i])
                .filter(|v| *v < 0.0)
                .sum();
            (lo.min(neg), hi.max(pos))
        })
    } else {
        let values = data
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied());
        values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let mut chart = build(body, n, y_range(min, max, true))?;
    configure(&mut chart, data, format)?;
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
        chart
            .draw_series(bars)
            .map_err(draw_err)?
            .label(series.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 10), (x + 24, y + 10)], color.filled()));
    }
    if data.series.len() > 1 {
        draw_legend(&mut chart)?;
    }
    Ok(())
}

/// Unbroken runs of present values, with their x index.
fn runs(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
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

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, RenderError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| RenderError::Encode(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| RenderError::Encode(e.to_string()))?;
    }
    Ok(out)
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
    }

    #[test]
    fn gaps_split_lines() {
        let r = runs(&[Some(1.0), None, Some(2.0), Some(3.0), None]);
        assert_eq!(r, vec![vec![(0, 1.0)], vec![(2, 2.0), (3, 3.0)]]);
    }
}
