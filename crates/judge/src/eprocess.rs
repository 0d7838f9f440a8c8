//! The grid of ratios the evidence lives on, and the mixture e-processes over it.
//!
//! # Failure: an e-process against `R ≤ R0`
//!
//! ```text
//! E_t = Σ_{d=1..J} w_d · exp(ℓ_t(R_d) − ℓ_t(R0)),   Σ w_d = 1   (w_d: see `ln_weight`)
//! ```
//!
//! Proof sketch that `P(sup_t E_t ≥ 1/α) ≤ α` for every true `R ≤ R0` (Ville 1939):
//! fix an alternative `R1 > R0`. Interval `t` multiplies its likelihood ratio by
//! `L = (θ1/θ0)^x ((1−θ1)/(1−θ0))^(s−x)`. With `x ~ Binomial(s, θ)` given everything before
//! the interval and the interval's exposures and total `s`, `E[L] = (θ·θ1/θ0 + (1−θ)(1−θ1)/(1−θ0))^s`.
//! The bracket is affine in `θ`, equals 1 at `θ = θ0` and increases with `θ` (its slope
//! `θ1/θ0 − (1−θ1)/(1−θ0)` is positive because `θ1 > θ0`), so `E[L] ≤ 1` whenever
//! `θ_t(R) ≤ θ_t(R0)`, i.e. whenever `R ≤ R0` (θ increases with `R`: monotone likelihood ratio).
//! So each `exp(ℓ(R_d) − ℓ(R0))` is a nonnegative supermartingale under the whole composite null,
//! their fixed convex combination is too, it starts at `Σ w_d = 1`, and Ville's inequality bounds
//! the probability that it ever reaches `1/α` by `α`, however often and whenever we look.
//! Traffic may depend on the past (a controller changing weights), but within an interval the
//! exposures must not depend on which arm the interval's events land in.
//!
//! The same mixture, shifted along the grid, gives the confidence sequence ([`crate::confidence`])
//! and, on the canary's own requests, the ceiling test ([`crate::ceiling`]).

/// `K`: grid points per decade of ratio. Neighbouring grid ratios differ by `10^(1/20) ≈ 1.122`
/// (12%), finer than the margins users write (`maxRatio` 1.2 to 2) and fine enough that a
/// regression between grid points loses little power, while keeping the stored vector short.
pub const GRID_STEPS_PER_DECADE: i32 = 20;

/// `J`: grid points on each side of the anchor `R0 = maxRatio`. With `K = 20` the grid spans
/// `R0 / 1000 ..= R0 · 1000`, three decades each way: a canary a thousand times worse than its
/// margin is still resolved, and a canary with no errors at all is bounded below `R0`.
pub const GRID_HALF_WIDTH: i32 = 60;

/// Length of [`Evidence`](crate::Evidence)'s log-likelihood vector: `2·J + 1` = 121.
pub const GRID_LEN: usize = (2 * GRID_HALF_WIDTH + 1) as usize;

/// Ratio between neighbouring grid points, in natural log: `ln 10 / K`.
pub(crate) const GRID_STEP_LN: f64 = std::f64::consts::LN_10 / GRID_STEPS_PER_DECADE as f64;

/// Index of the anchor `R0` in the grid.
pub(crate) const ANCHOR: usize = GRID_HALF_WIDTH as usize;

/// `ln(1 + e^a)` without overflow or cancellation.
pub(crate) fn softplus(a: f64) -> f64 {
    if a > 0.0 {
        a + (-a).exp().ln_1p()
    } else {
        a.exp().ln_1p()
    }
}

/// Adds `x ln θ(R_j) + y ln(1 − θ(R_j))` at every grid point, using
/// `z = ln R + ln n − ln m`, `ln θ = z − softplus(z)`, `ln(1 − θ) = −softplus(z)`.
/// Requires `n > 0`, `m > 0`.
pub(crate) fn add_interval(
    log_likelihood: &mut [f64],
    ln_anchor: f64,
    x: u64,
    y: u64,
    n: f64,
    m: f64,
) {
    let (xf, sf) = (x as f64, x as f64 + y as f64);
    let ln_share = n.ln() - m.ln();
    for (i, l) in log_likelihood.iter_mut().enumerate() {
        let z = ln_anchor + (i as f64 - ANCHOR as f64) * GRID_STEP_LN + ln_share;
        *l += xf * z - sf * softplus(z);
    }
}

/// `ln w_d` for the mixture weights, `d = 1..=J`, which sum to 1:
///
/// ```text
/// w_d ∝ 1/d for d ≤ D,   w_d ∝ D/d² for d > D,   D = 24
/// ```
///
/// Flat in `ln d` up to `D` (ratios up to `10^(24/20) ≈ 16` times the margin): every scale of
/// regression that takes a while to show gets the same prior mass, so a 5× regression costs
/// no more than a 1.5× one (`w_1 = 0.23`, `w_4 = 0.057`, `w_12 = 0.019`, `w_24 = 0.0095`).
/// Beyond `D` a single event is strong evidence, so the mass falls like `1/d²`
/// (`ln(1/w_60) = 6.5`). Compared with `1/d²` weights throughout, this detects regressions
/// of 3× the margin and more sooner and the smallest ones slightly later (the judge benchmark,
/// `docs/judge-benchmark.md`, has the numbers).
pub(crate) fn ln_weight(d: usize) -> f64 {
    LN_WEIGHTS[d]
}

/// `D` of [`ln_weight`].
const WEIGHT_KNEE: f64 = 24.0;

/// `ln w_d` by `d` (index 0 unused), computed once.
static LN_WEIGHTS: std::sync::LazyLock<[f64; GRID_HALF_WIDTH as usize + 1]> =
    std::sync::LazyLock::new(|| {
        let raw = |d: f64| {
            if d <= WEIGHT_KNEE {
                1.0 / d
            } else {
                WEIGHT_KNEE / (d * d)
            }
        };
        let total: f64 = (1..=GRID_HALF_WIDTH).map(|d| raw(f64::from(d))).sum();
        std::array::from_fn(|d| (raw(d as f64) / total).ln())
    });

/// Streaming `ln Σ exp(a_i)`; `-∞` for an empty input.
pub(crate) fn log_sum_exp(terms: impl Iterator<Item = f64>) -> f64 {
    let (mut max, mut sum) = (f64::NEG_INFINITY, 0.0);
    for a in terms {
        if a <= max {
            sum += (a - max).exp();
        } else {
            sum = sum * (max - a).exp() + 1.0;
            max = a;
        }
    }
    if sum == 0.0 {
        f64::NEG_INFINITY
    } else {
        max + sum.ln()
    }
}

/// `ln E⁺(R_k) = ln Σ_{d=1..J} w_d exp(ℓ(R_{k+d}) − ℓ(R_k))`, the e-process against `R ≤ R_k`:
/// the same mixture at every `k`, shifted. Alternatives beyond the grid's top are dropped, which
/// only makes it smaller (still valid: the weights then sum to less than 1).
pub(crate) fn ln_e_above(l: &[f64], k: usize) -> f64 {
    let base = l[k];
    let last = (k + GRID_HALF_WIDTH as usize).min(l.len() - 1);
    log_sum_exp((k + 1..=last).map(|i| ln_weight(i - k) + l[i] - base))
}

/// `ln E⁻(R_k) = ln Σ_{d=1..J} w_d exp(ℓ(R_{k−d}) − ℓ(R_k))`, the e-process against `R ≥ R_k`.
pub(crate) fn ln_e_below(l: &[f64], k: usize) -> f64 {
    let base = l[k];
    let first = k.saturating_sub(GRID_HALF_WIDTH as usize);
    log_sum_exp((first..k).map(|i| ln_weight(k - i) + l[i] - base))
}

/// Logistic function, `1 / (1 + e^-λ)`.
pub(crate) fn logistic(lambda: f64) -> f64 {
    (-softplus(-lambda)).exp()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::evidence::Counts;
    use crate::fixtures::{errors, grid_index_of, history, interval, observed, replay};

    use super::*;

    #[test]
    fn one_interval_log_likelihood_is_the_binomial_in_theta() {
        // ρ = 100 / (100 + 300) = 1/4. At R = R0 = 2: θ = (1/4·2) / (1/4·2 + 3/4) = 0.4.
        // At R = 20 (j = +20): θ = 5 / (5 + 0.75) = 20/23.
        let e = observed(2.0, 1, 3, 100.0, 2, 300.0);
        let l = e.log_likelihood();
        let at_anchor = 3.0 * 0.4f64.ln() + 2.0 * 0.6f64.ln();
        assert!(
            (l[grid_index_of(0)] - at_anchor).abs() < 1e-12,
            "{}",
            l[ANCHOR]
        );
        let theta = 20.0 / 23.0;
        let at_twenty = 3.0 * f64::ln(theta) + 2.0 * f64::ln(1.0 - theta);
        assert!((l[grid_index_of(20)] - at_twenty).abs() < 1e-12);
        // j = -20 is R = 0.2: θ = 0.05 / 0.8 = 1/16.
        let at_fifth = 3.0 * f64::ln(1.0 / 16.0) + 2.0 * f64::ln(15.0 / 16.0);
        assert!((l[grid_index_of(-20)] - at_fifth).abs() < 1e-12);
    }

    #[test]
    fn e_value_of_a_single_event_matches_the_hand_sum() {
        // R0 = 1, equal exposure (ρ = 1/2), one canary error: θ(R) = R/(R+1), θ(R0) = 1/2, so
        // E = Σ_d w_d · 2R_d/(R_d+1) with R_d = 10^(d/20), w_d ∝ 1/d (d ≤ 24), 24/d² (d > 24).
        // One baseline error instead gives Σ_d w_d · 2/(R_d+1); the two add up to 2 Σ w_d = 2.
        let canary = observed(1.0, 1, 1, 1.0, 0, 1.0).e_value();
        let baseline = observed(1.0, 1, 0, 1.0, 1, 1.0).e_value();
        assert!((canary - 1.395_398_172_970_823_4).abs() < 1e-12, "{canary}");
        assert!(
            (baseline - 0.604_601_827_029_176_9).abs() < 1e-12,
            "{baseline}"
        );
        assert!((canary + baseline - 2.0).abs() < 1e-12);
        // An empty record has E = Σ w_d = 1.
        assert!((errors(1.5).e_value() - 1.0).abs() < 1e-12);
    }

    proptest! {
        // No regression files: the cases are cheap to regenerate and the tree is shared.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn more_canary_errors_never_lower_the_e_value(
            (max_ratio, past) in history(),
            last in interval(),
        ) {
            prop_assume!((last.canary_events as f64) < last.canary_exposure);
            let base = replay(max_ratio, &past);
            let mut fewer = base.clone();
            fewer.observe(&last).unwrap();
            let mut more = base;
            more.observe(&Counts { canary_events: last.canary_events + 1, ..last }).unwrap();
            let a = ln_e_above(fewer.log_likelihood(), ANCHOR);
            let b = ln_e_above(more.log_likelihood(), ANCHOR);
            prop_assert!(b >= a - 1e-9 * a.abs().max(1.0), "{} then {}", a, b);
        }

        #[test]
        fn the_tests_are_monotone_along_the_grid((max_ratio, past) in history()) {
            // Concavity of ℓ in ln R, which the bisections for the bounds rely on.
            let e = replay(max_ratio, &past);
            let l = e.log_likelihood();
            for k in 1..GRID_LEN {
                let tol = 1e-9 * l[k].abs().max(1.0);
                prop_assert!(ln_e_above(l, k) <= ln_e_above(l, k - 1) + tol);
                prop_assert!(ln_e_below(l, k) >= ln_e_below(l, k - 1) - tol);
            }
        }
    }
}
