//! A Plotters drawing backend on a tiny-skia pixmap: anti-aliased lines, shapes and text,
//! where Plotters' own bitmap backend draws jagged edges.

use std::convert::Infallible;

use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, DrawingBackend, DrawingErrorKind,
};
use tiny_skia::{FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// Draws into an RGBA pixmap (premultiplied; charts start from an opaque background).
pub struct SkiaBackend<'a> {
    pixmap: &'a mut Pixmap,
}

impl<'a> SkiaBackend<'a> {
    pub fn new(pixmap: &'a mut Pixmap) -> Self {
        Self { pixmap }
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
        if let Some(rect) = Rect::from_ltrb(l.min(r), t.min(b), l.max(r), t.max(b)) {
            let path = PathBuilder::from_rect(rect);
            self.pixmap.stroke_path(
                &path,
                &paint,
                &stroke_for(style.stroke_width()),
                Transform::identity(),
                None,
            );
        }
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        if let Some(path) = polyline(path, false) {
            self.pixmap.stroke_path(
                &path,
                &paint_for(style.color()),
                &stroke_for(style.stroke_width()),
                Transform::identity(),
                None,
            );
        }
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
        if let Some(path) = PathBuilder::from_circle(x, y, radius.max(1) as f32) {
            let paint = paint_for(style.color());
            if fill {
                self.pixmap.fill_path(
                    &path,
                    &paint,
                    FillRule::Winding,
                    Transform::identity(),
                    None,
                );
            } else {
                self.pixmap.stroke_path(
                    &path,
                    &paint,
                    &stroke_for(style.stroke_width()),
                    Transform::identity(),
                    None,
                );
            }
        }
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Infallible>> {
        if let Some(path) = polyline(vertices, true) {
            self.pixmap.fill_path(
                &path,
                &paint_for(style.color()),
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
        Ok(())
    }
}
