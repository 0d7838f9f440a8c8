//! The planned decision look: one exact conditional test on all the evidence, at a time fixed
//! before the data came in.
//!
//! An e-process pays for watching at every look: against one exact test at a fixed horizon,
//! the information limit, it needs noticeably more evidence (at α = 1%, about `z = 3` rather
//! than 2.33 at the horizon even with the alternative known in advance). A rollout whose steps
//! all have durations has a horizon known before any data arrives: the end of its pauses (or of
//! the bake). When it has one, the ratio test's α is split ([`PLANNED_ALPHA_SHARE`](crate::PLANNED_ALPHA_SHARE)): half to the
//! e-process, watched at every look, and half to one exact conditional test at the first
//! successful look at or after that time ([`decide`](crate::decide), `Evidence::planned_test`), which can
//! fail the canary or pass it. Both together keep P(false rollback) ≤ α by a union bound; each
//! single test keeps its own guarantee. The planned look's time is fixed when the analysis
//! starts, never moved by the data, which is what makes a one-look test valid there.

#[cfg(feature = "schemars")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::eprocess::logistic;
use crate::exact::{Pmf, binomial_pmf};

/// Width of one stratum of the planned test, in log-odds of `θ_t(R0)`: intervals whose
/// canary share of events at the limit is within 10% (in odds) of each other are pooled.
const STRATUM_WIDTH: f64 = 0.1;

/// Most strata kept; beyond this the two nearest are merged (which only makes the planned test
/// more conservative, see `Evidence::planned_test`). Steps of a rollout produce a handful.
pub(crate) const MAX_STRATA: usize = 64;

/// Intervals pooled for the planned test: those whose `θ_t(R0)` falls in one
/// `STRATUM_WIDTH` of log-odds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Stratum {
    /// `round(logit θ(R0) / STRATUM_WIDTH)` of the intervals pooled here.
    pub(crate) key: i32,
    /// Events of both arms, `Σ s_t`.
    pub(crate) events: u64,
    /// Canary events expected at the limit, `Σ s_t θ_t(R0)`.
    #[serde(with = "crate::codec::decimal")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    pub(crate) expected: f64,
}

/// The planned decision's exact test of `R ≤ R0` and of `R ≥ R0` on all the evidence at once;
/// see [`Evidence::planned_test`](crate::Evidence::planned_test).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannedTest {
    /// Canary events from intervals where both arms had exposure.
    pub canary_events: u64,
    /// Canary events expected if `R = maxRatio`, given each interval's total: `Σ s_t θ_t(R0)`
    /// (for failed requests at the odds ratio `R0` means, see `Evidence::planned_test`).
    pub expected: f64,
    /// `P(X ≥ canary_events)` at `R = maxRatio`: the p-value against the canary.
    pub upper: f64,
    /// `P(X ≤ canary_events)` at `R = maxRatio`: the p-value for it.
    pub lower: f64,
    /// The test's α (each way).
    pub alpha: f64,
}

impl PlannedTest {
    /// The canary is worse than `maxRatio`: `upper ≤ α`, and at least one event above the
    /// expectation (the condition of Hoeffding's bound, see `Evidence::planned_test`).
    pub fn rejects_below(&self) -> bool {
        self.upper <= self.alpha && self.canary_events as f64 >= self.expected + 1.0
    }

    /// The canary is better than `maxRatio`: `lower ≤ α`, at least one event below it.
    pub fn rejects_above(&self) -> bool {
        self.lower <= self.alpha && self.canary_events as f64 + 1.0 <= self.expected
    }
}

impl PlannedTest {
    /// The test on the informative intervals grouped in `strata`, with `canary_events` the
    /// canary's events among them; see [`Evidence::planned_test`](crate::Evidence::planned_test).
    pub fn of(strata: &[Stratum], canary_events: u64, alpha: f64) -> PlannedTest {
        let mut law = Pmf::zero();
        let mut expected = 0.0;
        for stratum in strata {
            let theta = (stratum.expected / stratum.events as f64).clamp(0.0, 1.0);
            law = law.convolve(&binomial_pmf(stratum.events, theta));
            expected += stratum.expected;
        }
        PlannedTest {
            canary_events,
            expected,
            upper: law.upper_tail(canary_events),
            lower: law.lower_tail(canary_events),
            alpha,
        }
    }
}

/// The conditional odds ratio that a rate ratio `R0` means for failed requests, given `events`
/// failures in `canary` and `baseline` requests so far: `ψ0 = R0 (1 − p)/(1 − R0 p)`.
///
/// Requests fail or not (Bernoulli), so given the interval's total failures the canary's are
/// Fisher's noncentral hypergeometric with odds ratio `ψ`, not `R` (the crate docs). At a 1%
/// error rate and `R0 = 1.2`, `ψ0 = 1.2024`: small, but with 10,000 failures in 4 hours the one
/// exact test sees it. `p` is the baseline's failure probability at the null,
/// `events / (R0 · canary + baseline)` pooled over every interval so far (one interval's own
/// counts would overstate it: only intervals with failures count), a function of totals the
/// test conditions on, so the test stays conditional. Clamped so that `p ≤ 0.999` and
/// `R0 p ≤ 0.999`: a probability, whatever the counts (with `R0 < 1` and far more canary failures
/// than the pooled estimate allows, `p` would exceed 1 and the margin turn negative).
pub(crate) fn odds_margin(r0: f64, events: u64, canary: f64, baseline: f64) -> f64 {
    let p = events as f64 / (r0 * canary + baseline);
    let p = p.min(0.999).min(0.999 / r0);
    r0 * (1.0 - p) / (1.0 - r0 * p)
}

/// Adds `events` from an interval with `z = logit θ(R0)` to the stratum of `z` (creating it),
/// and merges the two strata with the nearest keys while there are more than [`MAX_STRATA`].
/// Keeps `strata` sorted by key.
pub(crate) fn add_to_strata(strata: &mut Vec<Stratum>, z: f64, events: u64) {
    let key = (z / STRATUM_WIDTH).round().clamp(-1e6, 1e6) as i32;
    let expected = events as f64 * logistic(z);
    match strata.binary_search_by_key(&key, |s| s.key) {
        Ok(i) => {
            strata[i].events = strata[i].events.saturating_add(events);
            strata[i].expected += expected;
        }
        Err(i) => strata.insert(
            i,
            Stratum {
                key,
                events,
                expected,
            },
        ),
    }
    while strata.len() > MAX_STRATA {
        let Some(i) = (0..strata.len() - 1)
            .min_by_key(|&i| i64::from(strata[i + 1].key) - i64::from(strata[i].key))
        else {
            break;
        };
        let (a, b) = (strata[i], strata.remove(i + 1));
        strata[i] = Stratum {
            key: if b.events > a.events { b.key } else { a.key },
            events: a.events.saturating_add(b.events),
            expected: a.expected + b.expected,
        };
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::{counts, errors, observed};

    use super::*;
    use crate::Evidence;

    #[test]
    fn the_planned_test_is_the_exact_binomial_tail() {
        // R0 = 1 and equal exposure: θ(R0) = 1/2. Ten errors, all in the canary:
        // P(X ≥ 10) = 2^-10 under Binomial(10, 1/2).
        let e = observed(1.0, 1, 10, 1000.0, 0, 1000.0);
        let test = e.planned_test(0.01);
        assert_eq!(test.canary_events, 10);
        assert!((test.expected - 5.0).abs() < 1e-12);
        assert!((test.upper - 1.0 / 1024.0).abs() < 1e-12, "{}", test.upper);
        assert!((test.lower - 1.0).abs() < 1e-12);
        assert!(test.rejects_below() && !test.rejects_above());
        // At α = 2^-11 the same counts are not enough.
        assert!(!e.planned_test(1.0 / 2048.0).rejects_below());
    }

    #[test]
    fn strata_of_different_canary_shares_are_convolved() {
        // R0 = 1. Interval A: ρ = 1/2, θ = 1/2, 2 events (1 canary). Interval B: ρ = 3/4,
        // θ = 3/4, 2 events (2 canary). X = 3 of a Binomial(2, 1/2) + Binomial(2, 3/4):
        // P(X ≥ 3) = P(A=1)P(B=2) + P(A=2)P(B≥1) = 1/2·9/16 + 1/4·15/16 = 33/64.
        // P(X ≤ 3) = 1 − P(A=2)P(B=2) = 1 − 1/4·9/16 = 55/64.
        let mut e = errors(1.0);
        e.observe(&counts(1, 1, 100.0, 100.0)).unwrap();
        e.observe(&counts(2, 0, 300.0, 100.0)).unwrap();
        assert_eq!(e.strata.len(), 2);
        let test = e.planned_test(0.01);
        assert_eq!(test.canary_events, 3);
        assert!((test.expected - 2.5).abs() < 1e-12);
        assert!((test.upper - 33.0 / 64.0).abs() < 1e-12, "{}", test.upper);
        assert!((test.lower - 55.0 / 64.0).abs() < 1e-12, "{}", test.lower);
    }

    #[test]
    fn strata_stay_bounded_and_keep_every_event() {
        let mut e = errors(1.5);
        let mut events = 0;
        for i in 1..=200u32 {
            // A different canary share every interval, spanning 14 in log-odds.
            let n = 2f64.powf(f64::from(i) / 10.0);
            e.observe(&counts(1, 2, n, 400.0)).unwrap();
            events += 3;
        }
        assert_eq!(e.strata.len(), MAX_STRATA);
        assert!(e.strata.windows(2).all(|w| w[0].key < w[1].key));
        assert_eq!(e.strata.iter().map(|s| s.events).sum::<u64>(), events);
        // θ at the odds ratio 1.5 means for the failures so far.
        let (mut failures, mut canary, mut baseline, mut expected) = (0.0, 0.0, 0.0, 0.0);
        for i in 1..=200u32 {
            let n = 2f64.powf(f64::from(i) / 10.0);
            (failures, canary, baseline) = (failures + 3.0, canary + n, baseline + 400.0);
            let p = failures / (1.5 * canary + baseline);
            let psi = 1.5 * (1.0 - p) / (1.0 - 1.5 * p);
            expected += 3.0 * n * psi / (n * psi + 400.0);
        }
        assert!((e.planned_test(0.01).expected - expected).abs() < 1e-9);
        let back: Evidence = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
