//! Golden images: a rendered PNG compared pixel by pixel (with a small tolerance) with the
//! reviewed one in `tests/golden/`; `KPIBOT_UPDATE_GOLDEN=1` writes them instead.

use std::path::PathBuf;

/// A pixel counts as different when a channel differs by more than this.
const CHANNEL_TOLERANCE: i32 = 48;
/// Share of pixels allowed to differ (anti-aliasing and rounding across machines).
const MAX_DIFFERENT_PIXELS: f64 = 0.002;

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

/// Compares `actual` with `tests/golden/<name>.png`: `None` when it matches (or the
/// golden was just written), else what differs and where the actual image was saved.
pub fn differs_from_golden(name: &str, actual: &[u8]) -> Option<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let path = dir.join(format!("{name}.png"));
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
    let (w, h, got) = decode(actual);
    let (ew, eh, want) = decode(&expected);
    assert_eq!((w, h), (ew, eh), "{name}: size");
    let different = got
        .chunks(3)
        .zip(want.chunks(3))
        .filter(|(a, b)| {
            a.iter()
                .zip(b.iter())
                .any(|(x, y)| (i32::from(*x) - i32::from(*y)).abs() > CHANNEL_TOLERANCE)
        })
        .count();
    let share = different as f64 / f64::from(w * h);
    if share <= MAX_DIFFERENT_PIXELS {
        return None;
    }
    let actual_path = std::env::temp_dir().join(format!("{name}.actual.png"));
    std::fs::write(&actual_path, actual).unwrap();
    Some(format!(
        "{name}: {:.3}% of pixels differ (see {})",
        share * 100.0,
        actual_path.display()
    ))
}
