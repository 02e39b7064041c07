//! The two charts that are not plots: the `number` KPI card (the big value, its change
//! and comparison window, and a sparkline) and the `table` image (the first rows of the
//! query result, numbers right-aligned).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::{
    Area, CHART_HEIGHT_PX, CHART_WIDTH_PX, ChartInput, DOWN, INK, LINE_WIDTH_PX, MARGIN_PX, MUTED,
    PALETTE, RenderError, UP, ZEBRA, draw_err, draw_lines, fill_under, font, min_max, over_white,
    runs, text, y_range,
};
use super::data::last_present;
use super::format::{cell_text, truncate_chars};
use crate::warehouse::Table;

/// The KPI card: the big number, its change and comparison window, and a sparkline.
pub(super) fn draw_card(root: &Area, body: &Area, input: &ChartInput) -> Result<(), RenderError> {
    let Some(card) = &input.card else {
        return draw_lines(root, body, input, false);
    };
    let (x, top) = (MARGIN_PX, 170);
    text(root, &card.label, (x, top), font(30).color(&MUTED))?;
    text(
        root,
        &card.value,
        (x, top + 100),
        font(150).style(FontStyle::Bold).color(&INK),
    )?;
    if let Some(change) = &card.change {
        let color = if card.delta == 0.0 {
            MUTED
        } else if (card.delta > 0.0) == card.higher_is_better {
            UP
        } else {
            DOWN
        };
        text(
            root,
            change,
            (x, top + 280),
            font(48).style(FontStyle::Bold).color(&color),
        )?;
    }
    if let Some(comparison) = &card.comparison {
        text(root, comparison, (x, top + 350), font(28).color(&MUTED))?;
    }
    // Sparkline of the per-x totals along the bottom.
    let totals = input.data.totals();
    if totals.iter().flatten().count() < 2 {
        return Ok(());
    }
    let (min, max) = min_max(totals.iter().flatten().copied());
    let (low, high) = y_range(min, max, false);
    let (_, spark_area) = root.split_vertically(CHART_HEIGHT_PX as i32 - 250);
    let spark_area = spark_area.margin(10, 40, MARGIN_PX as u32, MARGIN_PX as u32);
    let mut spark = ChartBuilder::on(&spark_area)
        .build_cartesian_2d(-0.5..(totals.len() as f64 - 0.5), low..high)
        .map_err(draw_err)?;
    let color = PALETTE[0];
    for run in runs(&totals) {
        let points: Vec<(f64, f64)> = run.iter().map(|(i, v)| (*i as f64, *v)).collect();
        // Opaque, pre-mixed with the white card: the same colour as a 15% wash, filled
        // at memset speed instead of blended pixel by pixel.
        fill_under(&mut spark, &points, low, over_white(color, 0.15))?;
        spark
            .draw_series(LineSeries::new(
                points,
                ShapeStyle::from(&color).stroke_width(LINE_WIDTH_PX),
            ))
            .map_err(draw_err)?;
    }
    if let Some((i, v)) = last_present(&totals) {
        spark
            .draw_series(std::iter::once(Circle::new(
                (i as f64, v),
                9,
                color.filled(),
            )))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// The first rows of the query result as a table, numbers right-aligned.
pub(super) fn draw_table(
    root: &Area,
    body: &Area,
    table: &Table,
    input: &ChartInput,
) -> Result<(), RenderError> {
    let (_, body_top) = body.get_base_pixel();
    let available = CHART_HEIGHT_PX as i32 - body_top - 30;
    let rows_shown = table.rows.len().min(input.max_rows);
    let row_height = (available / (rows_shown as i32 + 2)).clamp(28, 56);
    let size = ((row_height as f64) * 0.55) as u32;
    let columns = table.columns.len().max(1);
    let width = CHART_WIDTH_PX as i32 - 2 * MARGIN_PX;
    let column_width = width / columns as i32;
    let max_chars = ((column_width as f64) / (size as f64) * 1.6) as usize;
    let numeric: Vec<bool> = table
        .columns
        .iter()
        .map(|c| {
            matches!(
                c.ty,
                crate::warehouse::ColumnType::Integer
                    | crate::warehouse::ColumnType::Float
                    | crate::warehouse::ColumnType::Decimal
            )
        })
        .collect();
    let cell_x = |col: usize| {
        if numeric[col] {
            (
                MARGIN_PX + column_width * (col as i32 + 1) - 16,
                HPos::Right,
            )
        } else {
            (MARGIN_PX + column_width * col as i32 + 12, HPos::Left)
        }
    };
    let mut y = body_top;
    for (col, column) in table.columns.iter().enumerate() {
        let (x, h) = cell_x(col);
        text(
            root,
            &truncate_chars(&column.name, max_chars),
            (x, y + row_height / 2),
            font(size)
                .style(FontStyle::Bold)
                .color(&INK)
                .pos(Pos::new(h, VPos::Center)),
        )?;
    }
    y += row_height;
    root.draw(&PathElement::new(
        vec![(MARGIN_PX, y), (MARGIN_PX + width, y)],
        ShapeStyle::from(&MUTED).stroke_width(2),
    ))
    .map_err(draw_err)?;
    for (r, row) in table.rows.iter().take(rows_shown).enumerate() {
        if r % 2 == 1 {
            root.draw(&Rectangle::new(
                [(MARGIN_PX, y + 1), (MARGIN_PX + width, y + row_height)],
                ZEBRA.filled(),
            ))
            .map_err(draw_err)?;
        }
        for (col, cell) in row.iter().enumerate() {
            let (x, h) = cell_x(col);
            let content = truncate_chars(
                &cell_text(cell, table.columns[col].name == input.y_column, input.style),
                max_chars,
            );
            text(
                root,
                &content,
                (x, y + row_height / 2),
                font(size).color(&INK).pos(Pos::new(h, VPos::Center)),
            )?;
        }
        y += row_height;
    }
    if table.rows.len() > rows_shown {
        let more = crate::tr!(
            input.style.locale,
            "chart-more-rows",
            count = table.rows.len() - rows_shown
        );
        text(
            root,
            &more,
            (MARGIN_PX + 12, y + row_height / 2),
            font(size)
                .color(&MUTED)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )?;
    }
    Ok(())
}
