//! Golden images: a rendered PNG compared pixel by pixel (with a small tolerance) with the
//! reviewed one in `tests/golden/`; `KPIBOT_UPDATE_GOLDEN=1` writes them instead.
//!
//! The tolerance is for anti-aliasing and rounding, never for a missing word: few pixels
//! may differ in all, and no 16×16 tile may hold more than a handful of them (one short
//! label such as "目標" is hundreds of pixels, all in a few tiles).

use std::path::{Path, PathBuf};

/// A pixel counts as different when a channel differs by more than this.
const CHANNEL_TOLERANCE: i32 = 48;
/// Pixels allowed to differ in the whole image.
pub const MAX_DIFFERENT_PIXELS: usize = 200;
/// Side of the square tiles the image is cut into.
pub const TILE_PX: u32 = 16;
/// Pixels allowed to differ within one tile: a stray anti-aliased edge, not a glyph.
pub const MAX_DIFFERENT_IN_TILE: usize = 6;

/// RGB pixels of a PNG (palette expanded).
pub fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

/// How far one image is from another of the same size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Difference {
    /// Pixels with a channel off by more than the tolerance.
    pub pixels: usize,
    /// The most such pixels in any one tile, and that tile's top-left corner.
    pub worst_tile: (usize, (u32, u32)),
}

impl Difference {
    /// Within the tolerance: the same picture.
    pub fn is_within_tolerance(&self) -> bool {
        self.pixels <= MAX_DIFFERENT_PIXELS && self.worst_tile.0 <= MAX_DIFFERENT_IN_TILE
    }
}

/// Compares two PNGs of the same size.
pub fn difference(actual: &[u8], expected: &[u8]) -> Difference {
    let (w, h, got) = decode(actual);
    let (ew, eh, want) = decode(expected);
    assert_eq!((w, h), (ew, eh), "size");
    let tiles_across = w.div_ceil(TILE_PX) as usize;
    let mut per_tile = vec![0usize; tiles_across * h.div_ceil(TILE_PX) as usize];
    let mut pixels = 0;
    for (index, (a, b)) in got.chunks(3).zip(want.chunks(3)).enumerate() {
        let differs = a
            .iter()
            .zip(b)
            .any(|(x, y)| (i32::from(*x) - i32::from(*y)).abs() > CHANNEL_TOLERANCE);
        if differs {
            pixels += 1;
            let (x, y) = (index as u32 % w, index as u32 / w);
            per_tile[(y / TILE_PX) as usize * tiles_across + (x / TILE_PX) as usize] += 1;
        }
    }
    let (tile, count) = per_tile
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| **c)
        .map_or((0, 0), |(t, c)| (t, *c));
    let corner = (
        (tile % tiles_across) as u32 * TILE_PX,
        (tile / tiles_across) as u32 * TILE_PX,
    );
    Difference {
        pixels,
        worst_tile: (count, corner),
    }
}

/// `tests/golden/<name>.png`.
pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}.png"))
}

/// A fresh directory of this test run's own under Cargo's temporary directory for
/// integration tests, kept after the run so a failure's images can be looked at (and
/// never shared with another run, worktree or test).
fn actual_dir(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir_in(base)
        .unwrap()
        .keep()
}

/// Compares `actual` with `tests/golden/<name>.png`: `None` when it matches (or the
/// golden was just written), else what differs and where the actual image was saved.
pub fn differs_from_golden(name: &str, actual: &[u8]) -> Option<String> {
    let path = golden_path(name);
    if std::env::var_os("KPIBOT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; run with KPIBOT_UPDATE_GOLDEN=1",
            path.display()
        )
    });
    let diff = difference(actual, &expected);
    if diff.is_within_tolerance() {
        return None;
    }
    let actual_path = actual_dir(name).join(format!("{name}.actual.png"));
    std::fs::write(&actual_path, actual).unwrap();
    let (in_tile, (x, y)) = diff.worst_tile;
    Some(format!(
        "{name}: {} pixels differ (at most {MAX_DIFFERENT_PIXELS}), {in_tile} of them in the \
         {TILE_PX}×{TILE_PX} tile at ({x}, {y}) (at most {MAX_DIFFERENT_IN_TILE}); see {}",
        diff.pixels,
        actual_path.display()
    ))
}
