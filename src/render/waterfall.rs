//! The chart of an explanation: a waterfall from the comparison window's total, through
//! each top member's part of the change (rises and drops in their own colours, the rest
//! folded into one bar), to the asked window's total — so the bars visibly add up.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::backend::SkiaBackend;
use super::canvas::{heading, png_of, white_canvas};
use super::chart::{
    CHART_HEIGHT_PX, CHART_WIDTH_PX, DOWN, GRID, INK, LABEL_SIZE_PX, MARGIN_PX, MUTED, PALETTE,
    RenderError, UP, draw_err, font, text, y_range,
};
use super::format::{NumberStyle, truncate_chars};

/// Longest bar label, in characters, before it is shortened with "…".
const BAR_LABEL_MAX_CHARS: usize = 12;
const HEADER_PX: i32 = 150;
/// Part of each slot a bar fills.
const BAR_WIDTH_FRACTION: f64 = 0.64;

/// One bar between the two totals: a member's part (or the rest's), by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub label: String,
    pub change: f64,
}

/// A waterfall to draw.
pub struct Waterfall<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
    /// The comparison window's total and its label.
    pub before: (&'a str, f64),
    pub steps: &'a [Step],
    /// The asked window's total and its label.
    pub after: (&'a str, f64),
    pub style: NumberStyle,
}

/// What a bar spans: `(label, from, to, colour)`.
type Bar = (String, f64, f64, RGBColor);

fn bars(chart: &Waterfall) -> Vec<Bar> {
    let mut bars = vec![(chart.before.0.to_string(), 0.0, chart.before.1, PALETTE[0])];
    let mut level = chart.before.1;
    for step in chart.steps {
        let colour = if step.change < 0.0 { DOWN } else { UP };
        bars.push((step.label.clone(), level, level + step.change, colour));
        level += step.change;
    }
    bars.push((chart.after.0.to_string(), 0.0, chart.after.1, PALETTE[0]));
    bars
}

/// The waterfall as a PNG.
pub fn render_waterfall_png(chart: &Waterfall) -> Result<Vec<u8>, RenderError> {
    let mut pixmap = white_canvas(CHART_WIDTH_PX, CHART_HEIGHT_PX)?;
    {
        let root = SkiaBackend::new(&mut pixmap).into_drawing_area();
        heading(&root, chart.title, chart.subtitle)?;
        let mut bars = bars(chart);
        // The axis spans the levels the walk passes through, not from zero: a change of 3 %
        // stays visible. The totals stand on the axis' floor, which is labelled.
        let levels = bars.iter().enumerate().flat_map(|(i, (_, from, to, _))| {
            let total = i == 0 || i + 1 == bars.len();
            if total { vec![*to] } else { vec![*from, *to] }
        });
        let (min, max) = super::chart::min_max(levels);
        let spread = (max - min)
            .max(max.abs().max(min.abs()) * 0.01)
            .max(f64::EPSILON);
        let (low, high) = y_range(
            if min >= 0.0 {
                (min - spread).max(0.0)
            } else {
                min - spread
            },
            max,
            false,
        );
        let last = bars.len() - 1;
        for i in [0, last] {
            bars[i].1 = low;
        }
        // Room above the tallest bar for its label.
        let high = high + (high - low) * 0.06;
        let body = root.clone().shrink(
            (MARGIN_PX, HEADER_PX),
            (
                CHART_WIDTH_PX - 2 * MARGIN_PX as u32,
                CHART_HEIGHT_PX - HEADER_PX as u32 - MARGIN_PX as u32 / 2,
            ),
        );
        let n = bars.len() as f64;
        let mut plot = ChartBuilder::on(&body)
            .x_label_area_size(60)
            .y_label_area_size(130)
            .build_cartesian_2d(-0.5..(n - 0.5), low..high)
            .map_err(draw_err)?;
        let label_style = font(LABEL_SIZE_PX - 2).color(&MUTED);
        let names: Vec<String> = bars
            .iter()
            .map(|(label, ..)| truncate_chars(label, BAR_LABEL_MAX_CHARS))
            .collect();
        plot.configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .y_labels(5)
            .y_label_formatter(&|v| chart.style.axis(*v, max.abs().max(min.abs())))
            .x_labels(bars.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                names.get(i as usize).cloned().unwrap_or_default()
            })
            .label_style(label_style)
            .draw()
            .map_err(draw_err)?;
        let half = BAR_WIDTH_FRACTION / 2.0;
        for (i, (_, from, to, colour)) in bars.iter().enumerate() {
            let x = i as f64;
            plot.draw_series(std::iter::once(Rectangle::new(
                [(x - half, *from), (x + half, *to)],
                colour.filled(),
            )))
            .map_err(draw_err)?;
        }
        // Each bar's value (a total) or part (a step, signed), just above it.
        let plot_area = plot.plotting_area().clone();
        let (ax, ay) = root.get_base_pixel();
        for (i, (_, from, to, _)) in bars.iter().enumerate() {
            let is_total = i == 0 || i + 1 == bars.len();
            let label = if is_total {
                chart.style.value(*to)
            } else {
                let change = to - from;
                let sign = if change > 0.0 { "+" } else { "" };
                format!("{sign}{}", chart.style.value(change))
            };
            let (px, py) = plot_area.map_coordinate(&(i as f64, from.max(*to)));
            let style = font(LABEL_SIZE_PX - 4)
                .style(FontStyle::Bold)
                .color(&INK)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            text(&root, &label, (px - ax, py - ay - 6), style)?;
        }
        root.present().map_err(draw_err)?;
    }
    png_of(&pixmap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bars_walk_from_one_total_to_the_other() {
        let steps = [
            Step {
                label: "福岡県".into(),
                change: -30.0,
            },
            Step {
                label: "東京都".into(),
                change: 5.0,
            },
        ];
        let chart = Waterfall {
            title: "t",
            subtitle: "s",
            before: ("before", 100.0),
            steps: &steps,
            after: ("after", 75.0),
            style: NumberStyle::integer(),
        };
        let bars = bars(&chart);
        assert_eq!(bars.len(), 4);
        assert_eq!((bars[1].1, bars[1].2), (100.0, 70.0));
        assert_eq!((bars[2].1, bars[2].2), (70.0, 75.0));
        assert_eq!(bars[2].2, bars[3].2, "the last step ends at the total");
        let png = render_waterfall_png(&chart).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }
}
