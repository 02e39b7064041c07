//! Where a value label goes beside the point it names: the nearest of a few spots around
//! the point that stays inside the plot and clear of every line drawn there (the series,
//! a dashed threshold) and of every box already taken (the point's mark, other labels).
//! Pure geometry in canvas pixels, so it is tested without drawing.

/// A box on the canvas, in pixels; `right` and `bottom` are outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
}

/// A straight line on the canvas, from one pixel to another.
pub type Segment = ((i32, i32), (i32, i32));

/// Space kept between a label and any line or box.
pub const CLEARANCE_PX: i32 = 6;
/// Space between a label and the point it names, horizontally.
const SIDE_GAP_PX: i32 = 8;
/// How much further each ring of spots is from the point than the one before.
const RING_STEP_PX: i32 = 18;
/// Rings tried before giving up.
const RINGS: i32 = 8;

impl Rect {
    /// The box of `size` (width, height) with its top-left corner at `(left, top)`.
    pub fn at(left: i32, top: i32, (width, height): (i32, i32)) -> Self {
        Self {
            left,
            top,
            right: left + width,
            bottom: top + height,
        }
    }

    /// The square around a round mark at `center`.
    pub fn around((x, y): (i32, i32), radius: i32) -> Self {
        Self {
            left: x - radius,
            top: y - radius,
            right: x + radius,
            bottom: y + radius,
        }
    }

    fn grown(&self, by: i32) -> Self {
        Self {
            left: self.left - by,
            top: self.top - by,
            right: self.right + by,
            bottom: self.bottom + by,
        }
    }

    pub fn overlaps(&self, other: &Rect) -> bool {
        self.left < other.right
            && other.left < self.right
            && self.top < other.bottom
            && other.top < self.bottom
    }

    fn inside(&self, bounds: &Rect) -> bool {
        self.left >= bounds.left
            && self.top >= bounds.top
            && self.right <= bounds.right
            && self.bottom <= bounds.bottom
    }

    /// Whether the segment passes through the box (Liang–Barsky clipping).
    pub fn crossed_by(&self, ((x0, y0), (x1, y1)): Segment) -> bool {
        let (x0, y0) = (f64::from(x0), f64::from(y0));
        let (dx, dy) = (f64::from(x1) - x0, f64::from(y1) - y0);
        let (mut enter, mut leave) = (0.0_f64, 1.0_f64);
        for (p, q) in [
            (-dx, x0 - f64::from(self.left)),
            (dx, f64::from(self.right) - x0),
            (-dy, y0 - f64::from(self.top)),
            (dy, f64::from(self.bottom) - y0),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
                continue;
            }
            let r = q / p;
            if p < 0.0 {
                enter = enter.max(r);
            } else {
                leave = leave.min(r);
            }
            if enter > leave {
                return false;
            }
        }
        true
    }
}

/// The box for a label of `size` naming the point `at` (drawn with a mark of `radius`):
/// the nearest spot around the point (above-left first, where the eye looks for it) that
/// lies inside `bounds` with [`CLEARANCE_PX`] to spare from every line in `lines` and
/// every box in `taken`. `None` when no spot within reach is clear.
pub fn place_label(
    at: (i32, i32),
    radius: i32,
    size: (i32, i32),
    bounds: Rect,
    lines: &[Segment],
    taken: &[Rect],
) -> Option<Rect> {
    candidates(at, radius, size).find(|spot| {
        let kept = spot.grown(CLEARANCE_PX);
        spot.inside(&bounds)
            && !lines.iter().any(|line| kept.crossed_by(*line))
            && !taken.iter().any(|other| kept.overlaps(other))
    })
}

/// The spot a label takes when no clear one is found: above-left of the point.
pub fn default_spot(at: (i32, i32), radius: i32, size: (i32, i32)) -> Rect {
    candidates(at, radius, size).next().unwrap()
}

/// Spots around the point, ring by ring outwards: above-left, below-left, above-right,
/// below-right, then straight left and right.
fn candidates(
    (x, y): (i32, i32),
    radius: i32,
    (width, height): (i32, i32),
) -> impl Iterator<Item = Rect> {
    (0..RINGS).flat_map(move |ring| {
        let d = radius + CLEARANCE_PX + ring * RING_STEP_PX;
        let left_of = x - SIDE_GAP_PX - width;
        let right_of = x + SIDE_GAP_PX;
        let size = (width, height);
        [
            Rect::at(left_of, y - d - height, size),
            Rect::at(left_of, y + d, size),
            Rect::at(right_of, y - d - height, size),
            Rect::at(right_of, y + d, size),
            Rect::at(x - d - width, y - height / 2, size),
            Rect::at(x + d, y - height / 2, size),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLOT: Rect = Rect {
        left: 0,
        top: 0,
        right: 700,
        bottom: 400,
    };
    const SIZE: (i32, i32) = (70, 30);

    fn clear(spot: &Rect, lines: &[Segment], taken: &[Rect]) -> bool {
        lines.iter().all(|l| !spot.crossed_by(*l)) && taken.iter().all(|t| !spot.overlaps(t))
    }

    #[test]
    fn segments_through_corners_edges_and_past_the_box() {
        let b = Rect::at(10, 10, (20, 10));
        assert!(b.crossed_by(((0, 15), (100, 15))), "straight through");
        assert!(b.crossed_by(((0, 0), (40, 40))), "diagonally through");
        assert!(b.crossed_by(((15, 12), (16, 13))), "wholly inside");
        assert!(!b.crossed_by(((0, 25), (100, 25))), "below");
        assert!(!b.crossed_by(((0, 0), (5, 40))), "to the left");
        assert!(!b.crossed_by(((40, 0), (100, 30))), "ends before it");
        assert!(
            !b.crossed_by(((0, 30), (30, 21))),
            "passes under the corner"
        );
    }

    #[test]
    fn a_label_whose_usual_spot_lies_on_the_threshold_moves_off_it() {
        // The digest's case: the breach just under a dashed threshold, at the plot's right
        // edge, the series falling into it from the upper left.
        let point = (660, 300);
        let threshold: Segment = ((0, 268), (700, 268));
        let series: [Segment; 2] = [((600, 120), (640, 200)), ((640, 200), point)];
        let mark = Rect::around(point, 11);
        let usual = default_spot(point, 11, SIZE);
        assert!(
            usual.crossed_by(threshold),
            "the test starts where the old label sat: {usual:?}"
        );
        let lines = [threshold, series[0], series[1]];
        let spot = place_label(point, 11, SIZE, PLOT, &lines, &[mark]).unwrap();
        assert!(
            clear(&spot.grown(CLEARANCE_PX), &lines, &[mark]),
            "{spot:?}"
        );
        assert!(spot.inside(&PLOT));
        assert!(
            spot.top > 268,
            "below the threshold, not through it: {spot:?}"
        );
    }

    #[test]
    fn labels_placed_one_after_another_never_overlap_and_keep_clear_of_lines() {
        // Points crowded together under a zigzag: each label takes its box, the next one
        // avoids it.
        let zigzag: Vec<Segment> = (0..14)
            .map(|i| {
                (
                    (i * 50, 150 + (i % 2) * 60),
                    ((i + 1) * 50, 150 + ((i + 1) % 2) * 60),
                )
            })
            .collect();
        let points = [(300, 210), (330, 200), (350, 205), (370, 190)];
        let mut taken: Vec<Rect> = points.iter().map(|p| Rect::around(*p, 5)).collect();
        let mut labels = Vec::new();
        for point in points {
            let spot = place_label(point, 5, SIZE, PLOT, &zigzag, &taken).unwrap();
            assert!(clear(&spot, &zigzag, &taken), "{spot:?}");
            taken.push(spot);
            labels.push(spot);
        }
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn no_clear_spot_is_said_so_rather_than_drawn_over_a_line() {
        // A plot striped every 10 pixels: nowhere for a 30-pixel-high label.
        let stripes: Vec<Segment> = (0..40).map(|i| ((0, i * 10), (700, i * 10))).collect();
        assert_eq!(place_label((350, 200), 5, SIZE, PLOT, &stripes, &[]), None);
    }
}
