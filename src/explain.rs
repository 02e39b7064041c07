//! Why a number moved, exactly: a metric's change between two windows split over the
//! members of one dimension, so that the parts add up to the whole change. A sum splits
//! into each member's own change; a ratio (numerator ÷ denominator) into each member's
//! **rate** effect (its own ratio moved) and **mix** effect (its share of the denominator
//! moved), by a symmetric shift-share (Kitagawa) form centred on the mean ratio.
//! Dimensions are ranked by how far their members moved unlike the whole. Pure arithmetic: what is queried, and what a
//! viewer may see, is decided before these functions see the numbers.
//!
//! The formulas, for members `i` with numerator `n` and denominator `d` in the comparison
//! window (`0`) and the asked window (`1`), totals `N`, `D`, shares `w = d / D` and rates
//! `r = n / d`:
//!
//! - sum: `Δ_i = x1_i − x0_i` (a member absent from a window counts 0 there), and
//!   `Σ Δ_i = X1 − X0`;
//! - ratio: `R = Σ w_i · r_i`. Member `i`'s part is centred on the mean ratio `R̄ = (R0 +
//!   R1) / 2`, so a member that only grew in volume at the average ratio carries nothing:
//!   `part_i = (n1_i / D1 − n0_i / D0) − (w1_i − w0_i) · R̄`, split into `mix_i = (w1_i −
//!   w0_i) · (r̄_i − R̄)` (its share moved, weighted by how far its ratio is from the
//!   mean; `r̄_i` the mean of its ratios, or its one ratio if it is new or gone) and
//!   `rate_i = part_i − mix_i` (algebraically `(r1_i − r0_i) · (w0_i + w1_i) / 2`). As
//!   `Σ (w1_i − w0_i) = 0`, the parts add up to `R1 − R0`;
//! - a member's share of the change: `part_i / ΔX` (above 100 % when others moved the
//!   other way);
//! - how well a dimension explains the change, to rank dimensions: how far its members
//!   moved *unlike the whole*. Each member has a size weight `s_i` (`x0_i / X0` for a
//!   sum, `(w0_i + w1_i) / 2` for a ratio); had every member moved in proportion to it,
//!   member `i` would carry `s_i · ΔX`. Its departure is `dep_i = part_i − s_i · ΔX`
//!   (the departures add up to 0). The power is `max |dep_i| ÷ max(|ΔX|, Σ |dep_i| / 2)`,
//!   from 0 to 1: a change spread in proportion scores 0 whatever the members' sizes (the
//!   biggest member carrying most of a uniform drop explains nothing); one member falling
//!   alone scores near 1. Where the sizes are unknown (a sum whose comparison total is
//!   about 0 against its members' sizes) the largest member's share of all movement,
//!   `max |part_i| ÷ Σ |part_i|`, is used instead.

/// One member's values in the comparison window (`before`) and the asked one (`after`);
/// `None` where the member has no row in that window. `member` is `None` for the rows
/// whose dimension value is NULL.
#[derive(Debug, Clone, PartialEq)]
pub struct SumMember {
    pub member: Option<String>,
    pub before: Option<f64>,
    pub after: Option<f64>,
}

/// A ratio's member: its numerator and denominator in each window (`None`: no row).
#[derive(Debug, Clone, PartialEq)]
pub struct RatioMember {
    pub member: Option<String>,
    pub before: Option<(f64, f64)>,
    pub after: Option<(f64, f64)>,
}

/// What one member carried of the change.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub member: Option<String>,
    /// Its size, for [`explanatory_power`]: `x0_i / X0` for a sum, its mean share of the
    /// denominator for a ratio; `None` where the sizes are unknown.
    pub weight: Option<f64>,
    /// Its part of the total change (`rate + mix` for a ratio).
    pub change: f64,
    /// For a ratio: the part from its own ratio moving.
    pub rate: Option<f64>,
    /// For a ratio: the part from its share of the denominator moving.
    pub mix: Option<f64>,
}

/// A metric's change over one dimension: the totals, each member's part, largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Decomposition {
    pub before: f64,
    pub after: f64,
    /// `after − before`, which the members' parts add up to.
    pub change: f64,
    /// Largest absolute part first; ties keep the order the members came in.
    pub members: Vec<Contribution>,
}

impl Decomposition {
    /// Whether `value` (a part, or the change) is only rounding: within 1e-9 of the
    /// larger total, or exactly 0.
    pub fn negligible(&self, value: f64) -> bool {
        value.abs() <= NEGLIGIBLE_RELATIVE * self.before.abs().max(self.after.abs())
    }
}

/// Parts and changes smaller than this share of the larger total are rounding, not change.
pub const NEGLIGIBLE_RELATIVE: f64 = 1e-9;

/// Why a ratio cannot be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecomposeError {
    #[error("the denominator adds up to 0 in the {0} window, so the ratio has no value there")]
    NoDenominator(&'static str),
}

/// A sum's change, member by member.
pub fn decompose_sum(members: &[SumMember]) -> Decomposition {
    let before = members.iter().filter_map(|m| m.before).sum::<f64>();
    let after = members.iter().filter_map(|m| m.after).sum::<f64>();
    // Sizes are known where the comparison total is not about 0 against its parts.
    let spread = members
        .iter()
        .filter_map(|m| m.before)
        .map(f64::abs)
        .sum::<f64>();
    let sized = before.abs() > 1e-9 * spread;
    let parts = members
        .iter()
        .map(|m| Contribution {
            member: m.member.clone(),
            weight: sized.then(|| m.before.unwrap_or(0.0) / before),
            change: m.after.unwrap_or(0.0) - m.before.unwrap_or(0.0),
            rate: None,
            mix: None,
        })
        .collect();
    Decomposition {
        before,
        after,
        change: after - before,
        members: ranked(parts),
    }
}

/// A ratio's change, member by member, split into rate and mix.
pub fn decompose_ratio(members: &[RatioMember]) -> Result<Decomposition, DecomposeError> {
    let totals = |pick: fn(&RatioMember) -> Option<(f64, f64)>| {
        members
            .iter()
            .filter_map(pick)
            .fold((0.0, 0.0), |(n, d), (mn, md)| (n + mn, d + md))
    };
    let (n0, d0) = totals(|m| m.before);
    let (n1, d1) = totals(|m| m.after);
    if d0 == 0.0 {
        return Err(DecomposeError::NoDenominator("comparison"));
    }
    if d1 == 0.0 {
        return Err(DecomposeError::NoDenominator("asked"));
    }
    let (r_before, r_after) = (n0 / d0, n1 / d1);
    let mean = (r_before + r_after) / 2.0;
    let parts = members
        .iter()
        .map(|m| {
            let (mn0, md0) = m.before.unwrap_or((0.0, 0.0));
            let (mn1, md1) = m.after.unwrap_or((0.0, 0.0));
            let (w0, w1) = (md0 / d0, md1 / d1);
            let change = (mn1 / d1 - mn0 / d0) - (w1 - w0) * mean;
            let own = match (md0 != 0.0, md1 != 0.0) {
                (true, true) => Some((mn0 / md0 + mn1 / md1) / 2.0),
                (true, false) => Some(mn0 / md0),
                (false, true) => Some(mn1 / md1),
                (false, false) => None,
            };
            // New in, or gone from, a window: only its share moved (its rate part is 0).
            let mix = own.map_or(0.0, |r| (w1 - w0) * (r - mean));
            Contribution {
                member: m.member.clone(),
                weight: Some((w0 + w1) / 2.0),
                change,
                // The rest, so the two parts add up to the member's part to the last bit.
                rate: Some(change - mix),
                mix: Some(mix),
            }
        })
        .collect();
    Ok(Decomposition {
        before: r_before,
        after: r_after,
        change: r_after - r_before,
        members: ranked(parts),
    })
}

/// Largest absolute part first; a stable sort, so equal parts keep their order.
fn ranked(mut parts: Vec<Contribution>) -> Vec<Contribution> {
    parts.sort_by(|a, b| b.change.abs().total_cmp(&a.change.abs()));
    parts
}

/// `member`'s share of the whole change (`None` when nothing changed in total).
pub fn share_of_change(member: &Contribution, decomposition: &Decomposition) -> Option<f64> {
    (!decomposition.negligible(decomposition.change)).then(|| member.change / decomposition.change)
}

/// How well one dimension explains a change (0 to 1): its largest departure from moving
/// in proportion to size (see the module's formulas).
pub fn explanatory_power(decomposition: &Decomposition) -> f64 {
    let change = decomposition.change;
    let members = &decomposition.members;
    if decomposition.negligible(change) || members.len() <= 1 {
        return 0.0;
    }
    let weights: Option<Vec<f64>> = members.iter().map(|m| m.weight).collect();
    let power = match weights {
        Some(weights) => {
            let departures: Vec<f64> = members
                .iter()
                .zip(&weights)
                .map(|(m, w)| (m.change - w * change).abs())
                .collect();
            let largest = departures.iter().copied().fold(0.0, f64::max);
            let moved = departures.iter().sum::<f64>() / 2.0;
            largest / change.abs().max(moved)
        }
        None => {
            let all: f64 = members.iter().map(|m| m.change.abs()).sum();
            members[0].change.abs() / all
        }
    };
    power.clamp(0.0, 1.0)
}

/// Dimensions ranked by [`explanatory_power`], best first; equal scores in the order
/// given.
pub fn rank_dimensions(dimensions: &[(String, Decomposition)]) -> Vec<(&str, f64, &Decomposition)> {
    let mut ranked: Vec<(&str, f64, &Decomposition)> = dimensions
        .iter()
        .map(|(name, d)| (name.as_str(), explanatory_power(d), d))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
    }

    /// A value: often zero, sometimes negative, sometimes absent.
    fn value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            1 => Just(None),
            1 => Just(Some(0.0)),
            6 => (-1_000i32..100_000).prop_map(|v| Some(f64::from(v) / 4.0)),
        ]
    }

    fn members() -> impl Strategy<Value = Vec<SumMember>> {
        proptest::collection::vec((value(), value()), 0..40).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (before, after))| SumMember {
                    // The last one is the NULL member.
                    member: (i % 7 != 6).then(|| format!("m{i}")),
                    before,
                    after,
                })
                .collect()
        })
    }

    fn ratio_members() -> impl Strategy<Value = Vec<RatioMember>> {
        let pair = prop_oneof![
            1 => Just(None),
            1 => (0u32..50).prop_map(|n| Some((f64::from(n), 0.0))),
            6 => (0u32..5_000, 1u32..5_000).prop_map(|(n, d)| Some((f64::from(n), f64::from(d)))),
        ];
        proptest::collection::vec((pair.clone(), pair), 1..40).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (before, after))| RatioMember {
                    member: Some(format!("m{i}")),
                    before,
                    after,
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn a_sums_parts_add_up_to_its_change(members in members()) {
            let d = decompose_sum(&members);
            let parts: f64 = d.members.iter().map(|m| m.change).sum();
            prop_assert!(close(parts, d.change), "{parts} vs {}", d.change);
            prop_assert_eq!(d.members.len(), members.len());
            let power = explanatory_power(&d);
            prop_assert!((0.0..=1.0).contains(&power));
        }

        #[test]
        fn a_ratios_rate_and_mix_add_up_to_its_change(members in ratio_members()) {
            let Ok(d) = decompose_ratio(&members) else {
                return Ok(());
            };
            let mut total = 0.0;
            for m in &d.members {
                let (rate, mix) = (m.rate.unwrap(), m.mix.unwrap());
                prop_assert!(close(rate + mix, m.change));
                total += rate + mix;
            }
            prop_assert!(close(total, d.change), "{total} vs {}", d.change);
        }

        /// Renaming members changes no number: the explanation is about the data.
        #[test]
        fn renaming_members_changes_no_part_or_share(members in members()) {
            let renamed: Vec<SumMember> = members
                .iter()
                .map(|m| SumMember {
                    member: m.member.as_ref().map(|n| format!("z-{n}")),
                    ..m.clone()
                })
                .collect();
            let (a, b) = (decompose_sum(&members), decompose_sum(&renamed));
            let changes = |d: &Decomposition| d.members.iter().map(|m| m.change).collect::<Vec<_>>();
            prop_assert_eq!(changes(&a), changes(&b));
            prop_assert_eq!(explanatory_power(&a), explanatory_power(&b));
        }
    }

    #[test]
    fn a_worked_ratio_example_splits_into_rate_and_mix() {
        // Minutes per submission: A 100 min / 10 subs → 120 / 10; B 50 / 10 → 100 / 30.
        let members = [
            RatioMember {
                member: Some("A".into()),
                before: Some((100.0, 10.0)),
                after: Some((120.0, 10.0)),
            },
            RatioMember {
                member: Some("B".into()),
                before: Some((50.0, 10.0)),
                after: Some((100.0, 30.0)),
            },
        ];
        let d = decompose_ratio(&members).unwrap();
        assert!(close(d.before, 7.5) && close(d.after, 5.5));
        let a = d
            .members
            .iter()
            .find(|m| m.member.as_deref() == Some("A"))
            .unwrap();
        // R̄ = 6.5. A: share 0.5 → 0.25, ratio 10 → 12: part 3 − 5 + 0.25 × 6.5 = −0.375,
        // mix −0.25 × (11 − 6.5) = −1.125, rate (12 − 10) × 0.375 = 0.75.
        assert!(close(a.change, -0.375));
        assert!(close(a.mix.unwrap(), -1.125) && close(a.rate.unwrap(), 0.75));
        let b = d
            .members
            .iter()
            .find(|m| m.member.as_deref() == Some("B"))
            .unwrap();
        // B: share 0.5 → 0.75, ratio 5 → 3.33: part 2.5 − 2.5 − 0.25 × 6.5 = −1.625.
        assert!(close(b.change, -1.625));
        assert!(close(
            b.mix.unwrap(),
            0.25 * ((5.0 + 10.0 / 3.0) / 2.0 - 6.5)
        ));
        assert!(close(b.rate.unwrap(), (10.0 / 3.0 - 5.0) * 0.625));
        assert!(close(a.change + b.change, -2.0));
        // Volume alone at the same ratio carries nothing: A stays 50/10, B grows 50/10 →
        // 150/30, both at 5.
        let volume = decompose_ratio(&[
            RatioMember {
                member: Some("A".into()),
                before: Some((50.0, 10.0)),
                after: Some((50.0, 10.0)),
            },
            RatioMember {
                member: Some("B".into()),
                before: Some((50.0, 10.0)),
                after: Some((150.0, 30.0)),
            },
        ])
        .unwrap();
        assert!(volume.members.iter().all(|m| close(m.change, 0.0)));
        assert_eq!(explanatory_power(&volume), 0.0);
        assert_eq!(
            decompose_ratio(&[RatioMember {
                member: None,
                before: Some((1.0, 0.0)),
                after: Some((1.0, 1.0)),
            }]),
            Err(DecomposeError::NoDenominator("comparison"))
        );
    }

    #[test]
    fn the_dimension_whose_few_members_carry_the_drop_ranks_first() {
        let sum = |rows: &[(&str, f64, f64)]| {
            decompose_sum(
                &rows
                    .iter()
                    .map(|(m, b, a)| SumMember {
                        member: Some(m.to_string()),
                        before: Some(*b),
                        after: Some(*a),
                    })
                    .collect::<Vec<_>>(),
            )
        };
        // Fukuoka alone carries the drop; roles share it evenly.
        let prefecture = sum(&[
            ("福岡県", 5000.0, 1700.0),
            ("東京都", 9000.0, 9050.0),
            ("大阪府", 7000.0, 6980.0),
            ("北海道", 3000.0, 3010.0),
            ("沖縄県", 1000.0, 990.0),
        ]);
        let role = sum(&[
            ("student", 15000.0, 13000.0),
            ("teacher", 6000.0, 5000.0),
            ("parent", 4000.0, 3730.0),
        ]);
        assert!(close(prefecture.change, role.change));
        assert_eq!(prefecture.members[0].member.as_deref(), Some("福岡県"));
        let dims = vec![
            ("role".to_string(), role),
            ("prefecture".to_string(), prefecture),
        ];
        let ranked = rank_dimensions(&dims);
        // Both fell 3,270 of 25,000 (−13.08 %). Prefectures: Fukuoka fell 3,300 where its
        // size gives 654, a departure of 2,646 (0.809 of the change). Roles: each fell
        // about in proportion; the largest departure is the parents' 253 (0.077).
        assert_eq!(ranked[0].0, "prefecture");
        let growth: f64 = -3270.0 / 25000.0;
        assert!(close(
            ranked[0].1,
            (-3300.0 - 5000.0 * growth).abs() / 3270.0
        ));
        assert!(close(
            ranked[1].1,
            (-270.0 - 4000.0 * growth).abs() / 3270.0
        ));
        let fukuoka = &ranked[0].2.members[0];
        // Of the net drop (−3,270) Fukuoka carries more than all of it: others rose.
        assert!(close(
            share_of_change(fukuoka, ranked[0].2).unwrap(),
            3300.0 / 3270.0
        ));
        // An even spread explains nothing; one member alone, nothing either.
        let even = sum(&[("a", 10.0, 5.0), ("b", 10.0, 5.0)]);
        assert_eq!(explanatory_power(&even), 0.0);
        assert_eq!(explanatory_power(&sum(&[("a", 10.0, 5.0)])), 0.0);
    }
    /// The README's worked example, to the digits it prints.
    #[test]
    fn the_readme_worked_example() {
        let sum = decompose_sum(
            &[("A", 100.0, 60.0), ("B", 50.0, 55.0), ("C", 10.0, 15.0)].map(
                |(m, before, after)| SumMember {
                    member: Some(m.into()),
                    before: Some(before),
                    after: Some(after),
                },
            ),
        );
        let parts: Vec<(Option<&str>, f64)> = sum
            .members
            .iter()
            .map(|m| (m.member.as_deref(), m.change))
            .collect();
        assert_eq!(
            parts,
            vec![(Some("A"), -40.0), (Some("B"), 5.0), (Some("C"), 5.0)]
        );
        assert!(close(
            share_of_change(&sum.members[0], &sum).unwrap(),
            40.0 / 30.0
        ));
        assert!(close(explanatory_power(&sum), 21.25 / 30.0));
        let ratio = decompose_ratio(
            &[
                ("maths", (600.0, 100.0), (700.0, 100.0)),
                ("English", (200.0, 100.0), (250.0, 125.0)),
            ]
            .map(|(m, before, after)| RatioMember {
                member: Some(m.into()),
                before: Some(before),
                after: Some(after),
            }),
        )
        .unwrap();
        let rounded = |x: f64| (x * 1000.0).round() / 1000.0;
        assert_eq!((rounded(ratio.before), rounded(ratio.after)), (4.0, 4.222));
        let maths = &ratio.members[0];
        assert_eq!(maths.member.as_deref(), Some("maths"));
        assert_eq!(
            (
                rounded(maths.change),
                rounded(maths.rate.unwrap()),
                rounded(maths.mix.unwrap())
            ),
            (0.340, 0.472, -0.133)
        );
        let english = &ratio.members[1];
        assert_eq!(
            (
                rounded(english.change),
                rounded(english.rate.unwrap()),
                rounded(english.mix.unwrap())
            ),
            (-0.117, 0.0, -0.117)
        );
    }
}
