//! The chart page: the title, the subtitle and the legend above the body, which is the
//! plot from [`super::chart`], the card or table from [`super::panels`], or the empty
//! message; rendered to pixels and encoded as a PNG.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use tiny_skia::Pixmap;

use super::backend::SkiaBackend;
use super::chart::{
    Area, CHART_HEIGHT_PX, CHART_WIDTH_PX, ChartInput, INK, LABEL_SIZE_PX, LINE_WIDTH_PX,
    MARGIN_PX, MUTED, PALETTE, RenderError, draw_bars, draw_err, draw_lines, font, text,
    text_width,
};
use super::panels::{draw_card, draw_table};
use crate::spec::ChartKind;

const TITLE_SIZE_PX: u32 = 46;
const SUBTITLE_SIZE_PX: u32 = 28;

/// Renders the chart as a PNG.
pub fn render_png(input: &ChartInput) -> Result<Vec<u8>, RenderError> {
    super::canvas::png_of(&render_pixmap(input)?)
}

/// Renders the chart to pixels (RGBA, opaque).
pub fn render_pixmap(input: &ChartInput) -> Result<Pixmap, RenderError> {
    let mut pixmap = super::canvas::white_canvas(CHART_WIDTH_PX, CHART_HEIGHT_PX)?;
    {
        let root = SkiaBackend::new(&mut pixmap).into_drawing_area();
        draw_chart(&root, input)?;
        root.present().map_err(draw_err)?;
    }
    Ok(pixmap)
}

fn draw_chart(root: &Area, input: &ChartInput) -> Result<(), RenderError> {
    let x = MARGIN_PX;
    text(
        root,
        input.title,
        (x, 30),
        font(TITLE_SIZE_PX).style(FontStyle::Bold).color(&INK),
    )?;
    text(
        root,
        input.subtitle,
        (x, 92),
        font(SUBTITLE_SIZE_PX).color(&MUTED),
    )?;
    let mut header = 146;
    let with_legend = input.data.series.len() > 1
        && matches!(
            input.kind,
            ChartKind::Line | ChartKind::Area | ChartKind::Bar | ChartKind::StackedBar
        );
    if with_legend && !input.data.is_empty() {
        header = draw_legend(root, input, header + 4)? + 16;
    }
    let (_, body) = root.split_vertically(header);
    if input.kind == ChartKind::Table {
        return match input.table.filter(|t| !t.rows.is_empty()) {
            Some(table) => draw_table(root, &body, table, input),
            None => draw_empty(&body, input.empty_message),
        };
    }
    if input.data.is_empty() {
        return draw_empty(&body, input.empty_message);
    }
    match input.kind {
        ChartKind::Bar => draw_bars(root, &body, input, false),
        ChartKind::StackedBar => draw_bars(root, &body, input, true),
        ChartKind::Number => draw_card(root, &body, input),
        ChartKind::Area => draw_lines(root, &body, input, true),
        ChartKind::Line | ChartKind::Table => draw_lines(root, &body, input, false),
    }
}

/// A row of coloured swatches and series names under the subtitle, wrapping as needed.
/// Returns the y just below it.
fn draw_legend(root: &Area, input: &ChartInput, top: i32) -> Result<i32, RenderError> {
    let right = CHART_WIDTH_PX as i32 - MARGIN_PX;
    let (mut x, mut y) = (MARGIN_PX, top);
    let row_height = 40;
    let bars = matches!(input.kind, ChartKind::Bar | ChartKind::StackedBar);
    for (index, series) in input.data.series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let width = 40 + text_width(root, &series.name, LABEL_SIZE_PX) + 36;
        if x + width > right && x > MARGIN_PX {
            x = MARGIN_PX;
            y += row_height;
        }
        let middle = y + 16;
        if bars {
            root.draw(&Rectangle::new(
                [(x, middle - 11), (x + 22, middle + 11)],
                color.filled(),
            ))
            .map_err(draw_err)?;
        } else {
            root.draw(&PathElement::new(
                vec![(x, middle), (x + 30, middle)],
                ShapeStyle::from(&color).stroke_width(LINE_WIDTH_PX + 1),
            ))
            .map_err(draw_err)?;
        }
        text(
            root,
            &series.name,
            (x + 40, middle),
            font(LABEL_SIZE_PX)
                .color(&INK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
        x += width;
    }
    Ok(y + row_height)
}

fn draw_empty(body: &Area, message: &str) -> Result<(), RenderError> {
    let (w, h) = body.dim_in_pixel();
    body.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2 - 40),
        font(40)
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))
    .map_err(draw_err)
}
