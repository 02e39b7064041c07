//! A Plotters drawing backend on a tiny-skia pixmap: anti-aliased lines, shapes and text,
//! where Plotters' own bitmap backend draws jagged edges.

use std::convert::Infallible;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};

use super::fonts;
use tiny_skia::{FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// Draws into an RGBA pixmap (premultiplied; charts start from an opaque background).
pub struct SkiaBackend<'a> {
    pixmap: &'a mut Pixmap,
}

impl<'a> SkiaBackend<'a> {
    pub fn new(pixmap: &'a mut Pixmap) -> Self {
        Self { pixmap }
    }

    /// Fills `path`, or strokes it with the style's width.
    fn paint_path<S: BackendStyle>(
        &mut self,
        path: Option<tiny_skia::Path>,
        style: &S,
        fill: bool,
    ) {
        let Some(path) = path else {
            return;
        };
        let paint = paint_for(style.color());
        let identity = Transform::identity();
        if fill {
            self.pixmap
                .fill_path(&path, &paint, FillRule::Winding, identity, None);
        } else {
            let stroke = stroke_for(style.stroke_width());
            self.pixmap
                .stroke_path(&path, &paint, &stroke, identity, None);
        }
    }
}

fn paint_for(color: BackendColor) -> Paint<'static> {
    let mut paint = Paint::default();
    let (r, g, b) = color.rgb;
    paint.set_color_rgba8(r, g, b, (color.alpha.clamp(0.0, 1.0) * 255.0).round() as u8);
    paint.anti_alias = true;
    paint
}

fn stroke_for(width: u32) -> Stroke {
    Stroke {
        width: width.max(1) as f32,
        line_cap: LineCap::Round,
        line_join: LineJoin::Round,
        ..Stroke::default()
    }
}

/// Plotters gives pixel indices; a 1-pixel line is sharp when drawn through pixel centres.
fn centre(point: BackendCoord) -> (f32, f32) {
    (point.0 as f32 + 0.5, point.1 as f32 + 0.5)
}

/// A line of text laid out with the font's advances, kerning and side bearings (Plotters'
/// own ab_glyph path drops the left side bearing, which makes letter spacing uneven).
struct TextLayout {
    font: &'static FontRef<'static>,
    scale: PxScale,
    width: f32,
    ascent: f32,
    descent: f32,
}

impl TextLayout {
    fn new<S: BackendTextStyle>(text: &str, style: &S) -> Option<Self> {
        let font = fonts::font_for(matches!(style.style(), FontStyle::Bold))?;
        let scale = PxScale::from(style.size() as f32);
        let scaled = font.as_scaled(scale);
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                width += scaled.kern(p, id);
            }
            width += scaled.h_advance(id);
            previous = Some(id);
        }
        Some(Self {
            font,
            scale,
            width,
            ascent: scaled.ascent(),
            descent: scaled.descent(),
        })
    }

    fn height(&self) -> f32 {
        self.ascent - self.descent
    }
}

/// A path through pixel centres; `None` when there are too few points to draw.
fn polyline(
    points: impl IntoIterator<Item = BackendCoord>,
    closed: bool,
) -> Option<tiny_skia::Path> {
    let mut builder = PathBuilder::new();
    for (i, point) in points.into_iter().enumerate() {
        let (x, y) = centre(point);
        if i == 0 {
            builder.move_to(x, y);
        } else {
            builder.line_to(x, y);
        }
    }
    if closed {
        builder.close();
    }
    builder.finish()
}

impl DrawingBackend for SkiaBackend<'_> {
    type ErrorType = Infallible;

    fn get_size(&self) -> (u32, u32) {
        (self.pixmap.width(), self.pixmap.height())
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Infallible>> {
        Ok(())
    }

    /// Source-over blend of one pixel; text coverage arrives here as alpha.
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let (w, h) = self.get_size();
        if point.0 < 0 || point.1 < 0 || point.0 as u32 >= w || point.1 as u32 >= h {
            return Ok(());
        }
        let alpha = color.alpha.clamp(0.0, 1.0);
        if alpha <= 0.0 {
            return Ok(());
        }
        let index = (point.1 as usize * w as usize + point.0 as usize) * 4;
        let data = self.pixmap.data_mut();
        let (r, g, b) = color.rgb;
        for (channel, source) in [r, g, b].into_iter().enumerate() {
            let dst = f64::from(data[index + channel]);
            data[index + channel] = (f64::from(source) * alpha + dst * (1.0 - alpha)).round() as u8;
        }
        let dst_alpha = f64::from(data[index + 3]) / 255.0;
        data[index + 3] = ((alpha + dst_alpha * (1.0 - alpha)) * 255.0).round() as u8;
        Ok(())
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        self.draw_path(vec![from, to], style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let paint = paint_for(style.color());
        if fill {
            let rect = Rect::from_ltrb(
                upper_left.0.min(bottom_right.0) as f32,
                upper_left.1.min(bottom_right.1) as f32,
                (upper_left.0.max(bottom_right.0) + 1) as f32,
                (upper_left.1.max(bottom_right.1) + 1) as f32,
            );
            if let Some(rect) = rect {
                self.pixmap
                    .fill_rect(rect, &paint, Transform::identity(), None);
            }
            return Ok(());
        }
        let (l, t) = centre(upper_left);
        let (r, b) = centre(bottom_right);
        let outline =
            Rect::from_ltrb(l.min(r), t.min(b), l.max(r), t.max(b)).map(PathBuilder::from_rect);
        self.paint_path(outline, style, false);
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        self.paint_path(polyline(path, false), style, false);
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let (x, y) = centre(center);
        self.paint_path(
            PathBuilder::from_circle(x, y, radius.max(1) as f32),
            style,
            fill,
        );
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Infallible>> {
        Ok(TextLayout::new(text, style).map_or((0, 0), |l| {
            (l.width.ceil() as u32, l.height().ceil() as u32)
        }))
    }

    /// Text anchored like Plotters anchors it, drawn on the font's baseline with coverage
    /// blended into the canvas. Rotated text is not used by kpibot's charts.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        let color = style.color();
        let Some(layout) = TextLayout::new(text, style) else {
            return Ok(());
        };
        if color.alpha <= 0.0 {
            return Ok(());
        }
        let anchor = style.anchor();
        let left = pos.0 as f32
            - match anchor.h_pos {
                HPos::Left => 0.0,
                HPos::Center => layout.width / 2.0,
                HPos::Right => layout.width,
            };
        let baseline = pos.1 as f32
            + match anchor.v_pos {
                VPos::Top => layout.ascent,
                VPos::Center => (layout.ascent + layout.descent) / 2.0,
                VPos::Bottom => layout.descent,
            };
        let scaled = layout.font.as_scaled(layout.scale);
        let mut x = left;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                x += scaled.kern(p, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(layout.scale, point(x, baseline));
            x += scaled.h_advance(id);
            let Some(outline) = layout.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut coverage = Vec::new();
            outline.draw(|gx, gy, c| coverage.push((gx, gy, c)));
            for (gx, gy, c) in coverage {
                let pixel = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                let blended = BackendColor {
                    alpha: color.alpha * f64::from(c.min(1.0)),
                    rgb: color.rgb,
                };
                self.draw_pixel(pixel, blended)?;
            }
        }
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        self.paint_path(polyline(vertices, true), style, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    use super::*;

    /// The box (left, top, right, bottom) of dark pixels after drawing `text` anchored at
    /// (200, 100).
    fn ink_box(text: &str, h: HPos, v: VPos) -> (u32, u32, u32, u32) {
        assert!(fonts::register());
        let mut pixmap = Pixmap::new(400, 200).unwrap();
        pixmap.fill(tiny_skia::Color::WHITE);
        {
            let root = SkiaBackend::new(&mut pixmap).into_drawing_area();
            let style = ("sans-serif", 40)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(h, v));
            root.draw(&Text::new(text.to_string(), (200, 100), style))
                .unwrap();
        }
        let dark: Vec<(u32, u32)> = (0..200)
            .flat_map(|y| (0..400).map(move |x| (x, y)))
            .filter(|(x, y)| pixmap.pixel(*x, *y).is_some_and(|p| p.red() < 128))
            .collect();
        let xs = dark.iter().map(|p| p.0);
        let ys = dark.iter().map(|p| p.1);
        (
            xs.clone().min().unwrap(),
            ys.clone().min().unwrap(),
            xs.max().unwrap(),
            ys.max().unwrap(),
        )
    }

    #[test]
    fn text_is_anchored_where_plotters_asks() {
        let (left, top, _, _) = ink_box("Hx", HPos::Left, VPos::Top);
        assert!(
            (200..=206).contains(&left),
            "left-anchored text starts at the anchor: {left}"
        );
        assert!(
            (100..=112).contains(&top),
            "top-anchored text hangs from the anchor: {top}"
        );
        let (_, _, right, bottom) = ink_box("Hx", HPos::Right, VPos::Bottom);
        assert!(
            (194..=200).contains(&right),
            "right-anchored text ends at the anchor: {right}"
        );
        assert!(
            bottom <= 100,
            "bottom-anchored text sits on the anchor: {bottom}"
        );
        let (left, top, right, bottom) = ink_box("H", HPos::Center, VPos::Center);
        assert!(
            (left + right) / 2 >= 197 && (left + right) / 2 <= 203,
            "centred: {left}..{right}"
        );
        assert!(
            (top + bottom) / 2 >= 94 && (top + bottom) / 2 <= 106,
            "centred: {top}..{bottom}"
        );
    }

    #[test]
    fn japanese_text_is_drawn_not_boxes() {
        assert!(fonts::covers(
            "日次アクティブユーザー 都道府県 東京都 先週 ¥ 万 億"
        ));
        let (left, _, right, _) = ink_box("日次", HPos::Left, VPos::Top);
        assert!(
            right - left > 60,
            "two ideographs are about two ems wide: {}",
            right - left
        );
    }
}
