//! A blank canvas to draw a chart on (allocated already white: premultiplied opaque white
//! is all 0xFF, one pass over the pixels instead of zeroing then filling), and the heading
//! the alert chart and the waterfall share.

use plotters::prelude::*;
use tiny_skia::Pixmap;

use super::chart::{Area, INK, MARGIN_PX, MUTED, RenderError, font, text};
use super::fonts;

const TITLE_SIZE_PX: u32 = 44;
const SUBTITLE_SIZE_PX: u32 = 26;

/// A white canvas `width` × `height` pixels, once the fonts are registered.
pub(super) fn white_canvas(width: u32, height: u32) -> Result<Pixmap, RenderError> {
    if !fonts::register() {
        return Err(RenderError::Font);
    }
    let size = tiny_skia::IntSize::from_wh(width, height)
        .ok_or_else(|| RenderError::Draw("cannot size the canvas".into()))?;
    let white = vec![u8::MAX; width as usize * height as usize * 4];
    Pixmap::from_vec(white, size)
        .ok_or_else(|| RenderError::Draw("cannot allocate the canvas".into()))
}

/// The finished canvas as a PNG.
pub(super) fn png_of(pixmap: &Pixmap) -> Result<Vec<u8>, RenderError> {
    Ok(super::encode::encode_indexed_png(
        pixmap.data(),
        pixmap.width(),
        pixmap.height(),
    )?)
}

/// The title in bold and the subtitle under it, at the top left.
pub(super) fn heading(root: &Area, title: &str, subtitle: &str) -> Result<(), RenderError> {
    text(
        root,
        title,
        (MARGIN_PX, 28),
        font(TITLE_SIZE_PX).style(FontStyle::Bold).color(&INK),
    )?;
    text(
        root,
        subtitle,
        (MARGIN_PX, 90),
        font(SUBTITLE_SIZE_PX).color(&MUTED),
    )
}
