//! The confidence sequence for the rate ratio `R`: a point estimate and anytime-valid bounds.
//!
//! Inverting the same construction at every grid point gives an anytime-valid confidence
//! sequence for `R` (Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric,
//! nonasymptotic confidence sequences", Annals of Statistics 2021). We invert one-sided mixtures
//! rather than the two-sided point-null mixture: the one-sided null `R ≤ R_k` is composite, so
//! the bounds hold for every true `R`, also between grid points, not only at grid points.
//! - Lower bound: `E⁺_t(R_k) = Σ_d w_d exp(ℓ(R_{k+d}) − ℓ(R_k))` tests `R ≤ R_k`; the lower
//!   bound is the largest `R_k` it rejects (`E⁺ ≥ 1/α`), or 0.
//! - Upper bound: `E⁻_t(R_k) = Σ_d w_d exp(ℓ(R_{k−d}) − ℓ(R_k))` tests `R ≥ R_k` (the mirror
//!   image of the proof above); the upper bound is the smallest `R_k` it rejects, or ∞.
//!
//! `ℓ` is concave in `ln R` (the Bernoulli log-likelihood is concave in its log-odds, and
//! `logit θ = ln R + logit ρ`), so `ℓ(R_{k+d}) − ℓ(R_k)` falls as `k` rises: `E⁺` is
//! nonincreasing and `E⁻` nondecreasing along the grid, the rejected sets are intervals, and a
//! bisection finds each bound. Each bound holds with probability at least `1 − α` at all looks
//! at once; both together with at least `1 − 2α`. Fail is `E⁺(R0) ≥ 1/α` (the lower bound
//! reaches `R0`); pass is `E⁻(R0) ≥ 1/α` (the upper bound reaches `R0`), so a wrong promotion
//! (pass while `R ≥ R0`) also has probability at most `α`.

use crate::eprocess::{ANCHOR, GRID_LEN, GRID_STEPS_PER_DECADE, ln_e_above, ln_e_below};
use crate::evidence::Evidence;

/// The canary/baseline rate ratio `R`: a point estimate and anytime-valid one-sided bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Mantel–Haenszel estimate (ratio), `None` when no interval had events in either arm with
    /// both arms exposed. 0 if only the baseline had events, `+∞` if only the canary had.
    pub point: Option<f64>,
    /// `R > lower` with probability ≥ `1 − alpha` at every look at once; a grid ratio, or 0.
    pub lower: f64,
    /// `R < upper` with probability ≥ `1 − alpha` at every look at once; a grid ratio, or `+∞`.
    pub upper: f64,
    /// The one-sided error probability of each bound; `[lower, upper]` together cover `R` with
    /// probability ≥ `1 − 2·alpha`.
    pub alpha: f64,
}

impl Evidence {
    /// The grid ratio at index `i` (`0 ..` [`GRID_LEN`]); exactly `maxRatio` at the anchor.
    pub(crate) fn ratio_at(&self, i: usize) -> f64 {
        let j = i as f64 - ANCHOR as f64;
        self.max_ratio * 10f64.powf(j / GRID_STEPS_PER_DECADE as f64)
    }

    /// Mantel–Haenszel rate-ratio estimate `Σ x_t (1−ρ_t) / Σ y_t ρ_t` over the informative
    /// intervals (Mantel & Haenszel 1959; Rothman, Greenland & Lash, "Modern Epidemiology",
    /// ch. 15, person-time data). With constant `ρ` it is exactly the maximum-likelihood
    /// estimate `(x/n)/(y/m)` of the conditional model; with varying `ρ` it stays consistent where
    /// the pooled ratio of rates would not (Simpson's paradox). `None` without paired events;
    /// 0 when only the baseline had events, `+∞` when only the canary had.
    fn point_estimate(&self) -> Option<f64> {
        match (self.ratio_numerator > 0.0, self.ratio_denominator > 0.0) {
            (false, false) => None,
            (_, false) => Some(f64::INFINITY),
            (_, true) => Some(self.ratio_numerator / self.ratio_denominator),
        }
    }

    /// Point estimate and one-sided anytime-valid bounds for `R`, each at level `1 − alpha`.
    pub(crate) fn estimate(&self, alpha: f64) -> Estimate {
        let threshold = -alpha.ln();
        let l = &self.log_likelihood;
        let indices: [usize; GRID_LEN] = std::array::from_fn(|i| i);
        // E⁺ is nonincreasing along the grid: the rejected nulls `R ≤ R_k` form a prefix.
        let rejected_below = indices.partition_point(|&k| ln_e_above(l, k) >= threshold);
        let lower = match rejected_below {
            0 => 0.0,
            count => self.ratio_at(count - 1),
        };
        // E⁻ is nondecreasing: the rejected nulls `R ≥ R_k` form a suffix.
        let first_rejected_above = indices.partition_point(|&k| ln_e_below(l, k) < threshold);
        let upper = if first_rejected_above == GRID_LEN {
            f64::INFINITY
        } else {
            self.ratio_at(first_rejected_above)
        };
        // Shown next to the bounds, so keep it between them; it is outside only when the
        // MH estimate and the grid disagree by less than a grid step.
        let point = self.point_estimate().map(|p| p.clamp(lower, upper));
        Estimate {
            point,
            lower,
            upper,
            alpha,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::eprocess::{GRID_HALF_WIDTH, ln_weight};
    use crate::fixtures::{errors, observed};

    use super::*;

    #[test]
    fn the_anchor_is_exactly_max_ratio_and_the_grid_spans_three_decades() {
        let e = errors(1.5);
        assert_eq!(e.ratio_at(ANCHOR), 1.5);
        assert!((e.ratio_at(0) - 0.0015).abs() < 1e-15);
        assert!((e.ratio_at(GRID_LEN - 1) - 1500.0).abs() < 1e-9);
        let weights: f64 = (1..=GRID_HALF_WIDTH as usize)
            .map(|d| ln_weight(d).exp())
            .sum();
        assert!((weights - 1.0).abs() < 1e-12);
    }

    #[test]
    fn without_evidence_nothing_is_rejected_anywhere_on_the_grid() {
        // Every mixture starts at most at 1 (its weights sum to at most 1), so no bound can
        // move before data arrives, at any level.
        let e = errors(1.5);
        for k in 0..GRID_LEN {
            assert!(ln_e_above(e.log_likelihood(), k) <= 1e-12, "E+ at {k}");
            assert!(ln_e_below(e.log_likelihood(), k) <= 1e-12, "E- at {k}");
        }
        let ratio = e.estimate(0.5);
        assert_eq!(
            (ratio.point, ratio.lower, ratio.upper),
            (None, 0.0, f64::INFINITY)
        );
    }

    #[test]
    fn point_estimate_is_the_rate_ratio_when_the_share_is_constant() {
        // Canary 40 errors / 4,000 requests (1%), baseline 100 / 40,000 (0.25%): ratio 4.
        let e = observed(1.5, 4, 10, 1_000.0, 25, 10_000.0);
        let ratio = e.estimate(0.01);
        assert!((ratio.point.unwrap() - 4.0).abs() < 1e-12, "{ratio:?}");
        assert!(ratio.lower < 4.0 && 4.0 < ratio.upper, "{ratio:?}");
    }
}
