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

/// Glyph positions are rounded to 1/16 pixel (no visible difference: the goldens hold), so
/// a glyph is rasterised once per size and such offset, then reused from the cache.
const SUBPIXEL_STEPS: f32 = 16.0;
/// Cached glyph bitmaps before the cache starts over (a chart uses a few hundred).
const GLYPH_CACHE_ENTRIES: usize = 4096;

/// One rasterised glyph at one size and sub-pixel offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GlyphKey {
    bold: bool,
    glyph: u16,
    size_bits: u32,
    offset: (u8, u8),
}

/// A glyph's coverage (0..=255), row by row, placed relative to its pixel origin.
struct GlyphBitmap {
    left: i32,
    top: i32,
    width: usize,
    coverage: Vec<u8>,
}

fn subpixel_step(fraction: f32) -> u8 {
    ((fraction * SUBPIXEL_STEPS).floor() as u8).min(SUBPIXEL_STEPS as u8 - 1)
}

/// The glyph's bitmap from the process-wide cache, rasterised on first use: tick labels
/// repeat the same digits in every chart, and rasterising an outline costs more than
/// blending it.
fn cached_glyph(
    key: GlyphKey,
    font: &'static FontRef<'static>,
    scale: PxScale,
) -> std::sync::Arc<GlyphBitmap> {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};
    static CACHE: LazyLock<Mutex<HashMap<GlyphKey, Arc<GlyphBitmap>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    if let Some(hit) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return hit.clone();
    }
    let position = point(
        f32::from(key.offset.0) / SUBPIXEL_STEPS,
        f32::from(key.offset.1) / SUBPIXEL_STEPS,
    );
    let glyph = ab_glyph::GlyphId(key.glyph).with_scale_and_position(scale, position);
    let bitmap = match font.outline_glyph(glyph) {
        Some(outline) => {
            let bounds = outline.px_bounds();
            let width = bounds.width() as usize;
            let mut coverage = vec![0u8; width * bounds.height() as usize];
            outline.draw(|gx, gy, c| {
                coverage[gy as usize * width + gx as usize] = (c.min(1.0) * 255.0 + 0.5) as u8;
            });
            GlyphBitmap {
                left: bounds.min.x as i32,
                top: bounds.min.y as i32,
                width,
                coverage,
            }
        }
        None => GlyphBitmap {
            left: 0,
            top: 0,
            width: 0,
            coverage: Vec::new(),
        },
    };
    let bitmap = Arc::new(bitmap);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= GLYPH_CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(key, bitmap.clone());
    bitmap
}

/// An opacity in 0..=1 as 0..=255.
fn alpha_255(alpha: f64) -> u32 {
    (alpha.clamp(0.0, 1.0) * 255.0 + 0.5) as u32
}

/// Source-over blend of `rgb` at opacity `alpha` (0..=255) into one pixel, in integers.
fn blend(pixmap: &mut Pixmap, (x, y): BackendCoord, rgb: (u8, u8, u8), alpha: u32) {
    let (w, h) = (pixmap.width(), pixmap.height());
    if alpha == 0 || x < 0 || y < 0 || x as u32 >= w || y as u32 >= h {
        return;
    }
    let index = (y as usize * w as usize + x as usize) * 4;
    let pixel = &mut pixmap.data_mut()[index..index + 4];
    if alpha >= 255 {
        // Inside a glyph: full coverage replaces the pixel.
        pixel.copy_from_slice(&[rgb.0, rgb.1, rgb.2, 255]);
        return;
    }
    let keep = 255 - alpha;
    for (channel, source) in [rgb.0, rgb.1, rgb.2].into_iter().enumerate() {
        let mixed = u32::from(source) * alpha + u32::from(pixel[channel]) * keep;
        pixel[channel] = ((mixed + 127) / 255) as u8;
    }
    pixel[3] = (alpha + (u32::from(pixel[3]) * keep + 127) / 255) as u8;
}

/// Plotters gives pixel indices; a 1-pixel line is sharp when drawn through pixel centres.
fn centre(point: BackendCoord) -> (f32, f32) {
    (point.0 as f32 + 0.5, point.1 as f32 + 0.5)
}

/// A line of text laid out with the font's advances, kerning and side bearings (Plotters'
/// own ab_glyph path drops the left side bearing, which makes letter spacing uneven).
struct TextLayout {
    font: &'static FontRef<'static>,
    bold: bool,
    scale: PxScale,
    width: f32,
    ascent: f32,
    descent: f32,
}

impl TextLayout {
    fn new<S: BackendTextStyle>(text: &str, style: &S) -> Option<Self> {
        let bold = matches!(style.style(), FontStyle::Bold);
        let font = fonts::font_for(bold)?;
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
            bold,
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
        blend(self.pixmap, point, color.rgb, alpha_255(color.alpha));
        Ok(())
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        // Grid lines, ticks and axes: a thin horizontal or vertical line through pixel
        // centres covers whole pixels, so it is a rectangle (filled at memset speed), the
        // same pixels the anti-aliased stroke with its round caps would cover.
        if style.stroke_width().max(1) == 1 && (from.0 == to.0 || from.1 == to.1) {
            return self.draw_rect(from, to, style, true);
        }
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
            let origin = (x.floor(), baseline.floor());
            let key = GlyphKey {
                bold: layout.bold,
                glyph: id.0,
                size_bits: layout.scale.y.to_bits(),
                offset: (
                    subpixel_step(x - origin.0),
                    subpixel_step(baseline - origin.1),
                ),
            };
            x += scaled.h_advance(id);
            let bitmap = cached_glyph(key, layout.font, layout.scale);
            let opacity = alpha_255(color.alpha);
            let (left, top) = (origin.0 as i32 + bitmap.left, origin.1 as i32 + bitmap.top);
            for (row, line) in bitmap
                .coverage
                .chunks_exact(bitmap.width.max(1))
                .enumerate()
            {
                for (column, &coverage) in line.iter().enumerate() {
                    if coverage == 0 {
                        continue;
                    }
                    let alpha = (u32::from(coverage) * opacity + 127) / 255;
                    blend(
                        self.pixmap,
                        (left + column as i32, top + row as i32),
                        color.rgb,
                        alpha,
                    );
                }
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
