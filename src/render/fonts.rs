//! The bundled font (BIZ UDPGothic, SIL OFL; see `assets/fonts/`): full Japanese coverage,
//! registered with Plotters' ab_glyph backend so no system font is ever needed.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The family name every chart element asks for.
pub const FONT_FAMILY: &str = "sans-serif";

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/BIZUDPGothic-Regular.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/BIZUDPGothic-Bold.ttf");

/// The bundled font file itself (TrueType), regular or bold: for pages that must draw
/// Japanese the way the charts do on any machine (`kpibot studio` serves it).
pub fn ttf(bold: bool) -> &'static [u8] {
    if bold { BOLD } else { REGULAR }
}

/// Registers the bundled font once per process. Returns false if the font data is
/// unreadable (a broken build), which the renderer turns into an error.
pub fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, REGULAR).is_ok()
            && plotters::style::register_font(FONT_FAMILY, FontStyle::Bold, BOLD).is_ok()
    })
}

/// The bundled font for a style, parsed once.
pub fn font_for(bold: bool) -> Option<&'static ab_glyph::FontRef<'static>> {
    static REGULAR_FONT: OnceLock<Option<ab_glyph::FontRef<'static>>> = OnceLock::new();
    static BOLD_FONT: OnceLock<Option<ab_glyph::FontRef<'static>>> = OnceLock::new();
    let (cell, bytes) = if bold {
        (&BOLD_FONT, BOLD)
    } else {
        (&REGULAR_FONT, REGULAR)
    };
    cell.get_or_init(|| ab_glyph::FontRef::try_from_slice(bytes).ok())
        .as_ref()
}

/// Whether the bundled font has a glyph for every character of `text` (whitespace aside).
pub fn covers(text: &str) -> bool {
    use ab_glyph::Font;
    let Some(font) = font_for(false) else {
        return false;
    };
    text.chars()
        .filter(|c| !c.is_whitespace())
        .all(|c| font.glyph_id(c).0 != 0)
}
