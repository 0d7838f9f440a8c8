//! Absolute limits on the canary, whatever the baseline does.
//!
//! `errorRate.maxRate` is tested with the same mixture idea on the canary's own Bernoulli
//! requests: null `p ≤ maxRate`, alternatives on a log-odds grid above it (see
//! [`Ceiling::ErrorRate`]); anytime-valid, no baseline needed. `crashRate.maxRestartsPerPod` is a
//! hard count: a pod restarting more often than that is an observed fact, not an estimate.
//! Either breach is reported with the baseline's numbers so the caller can tell a bad change
//! from a common-mode problem.

use crate::eprocess::{GRID_HALF_WIDTH, GRID_STEP_LN, ln_weight, log_sum_exp, logistic, softplus};
use crate::evidence::Evidence;
use crate::kind::MetricKind;

/// An absolute limit on the canary, whatever the baseline does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Ceiling {
    /// `errorRate.maxRate`: canary failed requests / requests must stay at or below
    /// `max_rate` (a fraction, 0.05 = 5%). Breached when the anytime-valid test of
    /// `p ≤ max_rate` on the canary's cumulative counts rejects at the ceiling's α.
    ErrorRate {
        /// Fraction strictly between 0 and 1.
        max_rate: f64,
    },
    /// `crashRate.maxRestartsPerPod`: breached when some canary pod has restarted more than
    /// `max_restarts` times ([`Evidence::record_restarts`]).
    RestartsPerPod {
        /// Restarts allowed per pod.
        max_restarts: u32,
    },
}

impl Ceiling {
    pub(crate) fn field(&self) -> &'static str {
        match self {
            Ceiling::ErrorRate { .. } => "errorRate.maxRate",
            Ceiling::RestartsPerPod { .. } => "crashRate.maxRestartsPerPod",
        }
    }

    pub(crate) fn kind(&self) -> MetricKind {
        match self {
            Ceiling::ErrorRate { .. } => MetricKind::ErrorRate,
            Ceiling::RestartsPerPod { .. } => MetricKind::CrashRate,
        }
    }
}

/// A rate with its anytime-valid lower bound, for ceiling reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateBound {
    /// Observed events / exposure (a fraction for requests); 0 without exposure.
    pub rate: f64,
    /// The true rate exceeds this with probability ≥ `1 − alpha` at every look at once: the
    /// largest rate the ceiling test would reject, or 0.
    pub lower: f64,
    /// Error probability of `lower`.
    pub alpha: f64,
}

/// Which ceiling broke, with both arms' numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Breach {
    /// The canary's error rate is above `max_rate` with confidence `1 − canary.alpha`.
    ErrorRate {
        /// `errorRate.maxRate`, a fraction.
        max_rate: f64,
        /// The canary's error rate.
        canary: RateBound,
        /// The baseline's error rate, same test.
        baseline: RateBound,
        /// The canary's ceiling e-value (reached `1/canary.alpha`).
        e_value: f64,
        /// The baseline breaks the ceiling by the same test.
        common_mode: bool,
    },
    /// Some canary pod restarted more than `max_restarts` times.
    RestartsPerPod {
        /// `crashRate.maxRestartsPerPod`.
        max_restarts: u32,
        /// Highest restart count of one canary pod.
        canary: u32,
        /// Highest restart count of one baseline pod.
        baseline: u32,
        /// Some baseline pod restarted more than `max_restarts` times too.
        common_mode: bool,
    },
}

impl Breach {
    /// The baseline breaks the ceiling too.
    pub fn common_mode(&self) -> bool {
        match *self {
            Breach::ErrorRate { common_mode, .. } | Breach::RestartsPerPod { common_mode, .. } => {
                common_mode
            }
        }
    }
}

/// `ln E` of the ceiling test for `events` failures in `requests` Bernoulli requests against
/// the null `p ≤ p0`, `λ0 = logit p0`:
///
/// ```text
/// E = Σ_{d=1..J} w_d (p_d/p0)^x ((1−p_d)/(1−p0))^(n−x),   logit p_d = λ0 + d · ln10 / K
/// ```
///
/// Each factor has expectation `≤ 1` per request when the request's failure probability is at
/// most `p0` (the argument of [`crate::eprocess`] with `θ` replaced by `p`), so `E` is a
/// nonnegative supermartingale under `p ≤ p0` and Ville's inequality applies: anytime-valid.
/// The alternatives are spaced in odds, so they stay below 1 for any ceiling (up to 1000× the
/// ceiling's odds). Weights as in [`ln_weight`].
pub(crate) fn ln_ceiling_e(events: u64, requests: f64, lambda0: f64) -> f64 {
    let x = events as f64;
    let rest = (requests - x).max(0.0);
    let (ln_p0, ln_q0) = (-softplus(-lambda0), -softplus(lambda0));
    log_sum_exp((1..=GRID_HALF_WIDTH as usize).map(|d| {
        let lambda = lambda0 + d as f64 * GRID_STEP_LN;
        let (ln_p, ln_q) = (-softplus(-lambda), -softplus(lambda));
        ln_weight(d) + x * (ln_p - ln_p0) + rest * (ln_q - ln_q0)
    }))
}

/// Anytime-valid lower confidence bound at level `1 − alpha` for a Bernoulli failure
/// probability: the largest `p0` whose ceiling test ([`ln_ceiling_e`]) rejects `p ≤ p0`, found
/// by bisection in log-odds (the test is monotone in `p0` by the same concavity argument as the
/// ratio bounds). Returns the rejected end of the final bracket, so it errs low; 0 when no `p0`
/// is rejected.
fn rate_lower_bound(events: u64, requests: f64, alpha: f64) -> f64 {
    let threshold = -alpha.ln();
    let rejects = |lambda: f64| ln_ceiling_e(events, requests, lambda) >= threshold;
    let (mut lo, mut hi) = (-60.0, 60.0);
    if events == 0 || !rejects(lo) {
        return 0.0;
    }
    if rejects(hi) {
        return logistic(hi);
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if rejects(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    logistic(lo)
}

/// The breach, if the policy's ceiling is broken by the canary.
pub(crate) fn ceiling_breach(
    evidence: &Evidence,
    ceiling: Option<Ceiling>,
    alpha: f64,
) -> Option<Breach> {
    match ceiling? {
        Ceiling::ErrorRate { max_rate } => {
            let threshold = -alpha.ln();
            let lambda0 = max_rate.ln() - (-max_rate).ln_1p();
            let ln_e = ln_ceiling_e(evidence.canary_events, evidence.canary_exposure, lambda0);
            if ln_e < threshold {
                return None;
            }
            let bound = |events: u64, exposure: f64| RateBound {
                rate: if exposure > 0.0 {
                    events as f64 / exposure
                } else {
                    0.0
                },
                lower: rate_lower_bound(events, exposure, alpha),
                alpha,
            };
            let baseline_ln_e = ln_ceiling_e(
                evidence.baseline_events,
                evidence.baseline_exposure,
                lambda0,
            );
            Some(Breach::ErrorRate {
                max_rate,
                canary: bound(evidence.canary_events, evidence.canary_exposure),
                baseline: bound(evidence.baseline_events, evidence.baseline_exposure),
                e_value: ln_e.exp(),
                common_mode: baseline_ln_e >= threshold,
            })
        }
        Ceiling::RestartsPerPod { max_restarts } => {
            let (canary, baseline) = (
                evidence.canary_max_restarts_per_pod,
                evidence.baseline_max_restarts_per_pod,
            );
            (canary > max_restarts).then_some(Breach::RestartsPerPod {
                max_restarts,
                canary,
                baseline,
                common_mode: baseline > max_restarts,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::{counts, observed, verdict_canary_lower};
    use crate::policy::Policy;
    use crate::summary::{Round, percent, sig};
    use crate::verdict::{Verdict, judge};

    use super::*;

    #[test]
    fn ceiling_e_value_matches_the_hand_sum() {
        // p0 = 0.1, 2 errors in 3 requests:
        // E = Σ_d w_d (p_d/0.1)² ((1−p_d)/0.9), logit p_d = logit 0.1 + d·ln10/20.
        let ln_e = ln_ceiling_e(2, 3.0, (0.1f64 / 0.9).ln());
        assert!(
            (ln_e.exp() - 4.983_100_391_279_679).abs() < 1e-12,
            "{}",
            ln_e.exp()
        );
    }

    #[test]
    fn a_canary_over_the_error_ceiling_is_a_change_when_the_baseline_is_fine() {
        let e = observed(1.5, 10, 624, 1_248.0, 112, 11_232.0);
        let policy = Policy::new(0.005, Some(Ceiling::ErrorRate { max_rate: 0.05 })).unwrap();
        let verdict = judge(&e, &policy).unwrap();
        let Verdict::CeilingBreached {
            breach:
                Breach::ErrorRate {
                    canary,
                    baseline,
                    common_mode,
                    ..
                },
            ratio_fails,
            ..
        } = verdict
        else {
            panic!("expected a ceiling breach, got {verdict:?}");
        };
        assert!(!common_mode && ratio_fails && !verdict.is_common_mode());
        assert_eq!(canary.rate, 0.5);
        assert!(canary.lower > 0.45 && canary.lower < 0.5, "{canary:?}");
        assert!(
            baseline.lower > 0.0 && baseline.lower < 0.01,
            "{baseline:?}"
        );
        assert_eq!(canary.alpha, 0.0005);
        assert_eq!(
            verdict.summary(&e),
            format!(
                "canary error rate 50% (≥ {} with 99.95% confidence) breaks the 5.0% ceiling \
                 over 12,480 canary requests; baseline 1.0% does not (change; the canary is also \
                 worse than the baseline, ratio ≥ {})",
                percent(canary.lower, Round::Down),
                sig(verdict.ratio().lower, 2, Round::Down)
            )
        );
    }

    #[test]
    fn both_arms_over_the_ceiling_is_common_mode() {
        // Both arms at 20% errors, ceiling 5%: not this change.
        let e = observed(1.5, 10, 100, 500.0, 1_000, 5_000.0);
        let policy = Policy::new(0.005, Some(Ceiling::ErrorRate { max_rate: 0.05 })).unwrap();
        let verdict = judge(&e, &policy).unwrap();
        assert!(verdict.is_common_mode(), "{verdict:?}");
        let Verdict::CeilingBreached {
            breach: Breach::ErrorRate { baseline, .. },
            ..
        } = verdict
        else {
            unreachable!()
        };
        assert_eq!(
            verdict.summary(&e),
            format!(
                "canary error rate 20% (≥ {} with 99.95% confidence) breaks the 5.0% ceiling \
                 over 5,000 canary requests; baseline 20% (≥ {}) breaks it too (common-mode)",
                percent(verdict_canary_lower(&verdict), Round::Down),
                percent(baseline.lower, Round::Down)
            )
        );
    }

    #[test]
    fn a_rate_just_under_the_ceiling_never_breaches_it() {
        // 4.9% errors against a 5% ceiling, a million requests: the bound is below 5%.
        let e = observed(1.5, 100, 490, 10_000.0, 4_900, 100_000.0);
        let policy = Policy::new(0.005, Some(Ceiling::ErrorRate { max_rate: 0.05 })).unwrap();
        assert!(matches!(judge(&e, &policy).unwrap(), Verdict::Pass { .. }));
    }

    #[test]
    fn restarts_per_pod_are_a_hard_count() {
        let mut e = Evidence::new(MetricKind::CrashRate, 2.0).unwrap();
        e.observe(&counts(0, 0, 3_600.0, 36_000.0)).unwrap();
        let policy = Policy::new(0.005, Some(Ceiling::RestartsPerPod { max_restarts: 3 })).unwrap();
        e.record_restarts(3, 0).unwrap();
        assert!(!matches!(
            judge(&e, &policy).unwrap(),
            Verdict::CeilingBreached { .. }
        ));
        e.record_restarts(4, 1).unwrap();
        e.record_restarts(0, 0).unwrap(); // a replaced pod does not erase the count
        let verdict = judge(&e, &policy).unwrap();
        assert_eq!(
            verdict,
            Verdict::CeilingBreached {
                breach: Breach::RestartsPerPod {
                    max_restarts: 3,
                    canary: 4,
                    baseline: 1,
                    common_mode: false
                },
                ratio: *verdict.ratio(),
                ratio_fails: false,
            }
        );
        assert_eq!(
            verdict.summary(&e),
            "a canary pod restarted 4 times, above the ceiling of 3 per pod; baseline pods at \
             most 1 (change)"
        );
        e.record_restarts(0, 5).unwrap();
        assert!(judge(&e, &policy).unwrap().is_common_mode());
    }
}
