//! Test fixtures shared by the modules' tests: evidence built from repeated intervals, the
//! policy of a two-metric rollout, and proptest strategies for interval histories.

use proptest::prelude::*;

use crate::ceiling::Breach;
use crate::eprocess::GRID_HALF_WIDTH;
use crate::evidence::{Counts, Evidence};
use crate::kind::MetricKind;
use crate::policy::{Policy, metric_alpha};
use crate::verdict::Verdict;

/// One interval's counts: canary and baseline events, then canary and baseline exposure.
pub(crate) fn counts(
    canary_events: u64,
    baseline_events: u64,
    canary: f64,
    baseline: f64,
) -> Counts {
    Counts {
        canary_events,
        baseline_events,
        canary_exposure: canary,
        baseline_exposure: baseline,
    }
}

/// An empty `errorRate` record with `maxRatio` `max_ratio`.
pub(crate) fn errors(max_ratio: f64) -> Evidence {
    Evidence::new(MetricKind::ErrorRate, max_ratio).unwrap()
}

/// `intervals` identical intervals of canary/baseline errors and requests.
pub(crate) fn observed(
    max_ratio: f64,
    intervals: u32,
    canary_errors: u64,
    canary_requests: f64,
    baseline_errors: u64,
    baseline_requests: f64,
) -> Evidence {
    let mut e = errors(max_ratio);
    for _ in 0..intervals {
        e.observe(&counts(
            canary_errors,
            baseline_errors,
            canary_requests,
            baseline_requests,
        ))
        .unwrap();
    }
    e
}

/// The policy of a rollout with `confidence: 0.99` and two metrics, no ceiling.
pub(crate) fn two_metric_policy() -> Policy {
    Policy::new(metric_alpha(0.99, 2).unwrap(), None).unwrap()
}

/// The canary's lower rate bound of an error-rate ceiling breach; NaN for any other verdict.
pub(crate) fn verdict_canary_lower(verdict: &Verdict) -> f64 {
    match verdict {
        Verdict::CeilingBreached {
            breach: Breach::ErrorRate { canary, .. },
            ..
        } => canary.lower,
        _ => f64::NAN,
    }
}

/// The grid index of `R0 · 10^(j/K)`.
pub(crate) fn grid_index_of(j: i32) -> usize {
    (GRID_HALF_WIDTH + j) as usize
}

/// One interval of up to 5,000 requests per arm with error rates up to 20%.
pub(crate) fn interval() -> impl Strategy<Value = Counts> {
    (1u32..5_000, 1u32..5_000, 0.0f64..0.2, 0.0f64..0.2).prop_map(|(n, m, pn, pm)| {
        counts(
            (f64::from(n) * pn) as u64,
            (f64::from(m) * pm) as u64,
            f64::from(n),
            f64::from(m),
        )
    })
}

/// A `maxRatio` and up to a dozen intervals.
pub(crate) fn history() -> impl Strategy<Value = (f64, Vec<Counts>)> {
    (0.05f64..20.0, proptest::collection::vec(interval(), 0..12))
}

/// The record of `intervals` observed in order.
pub(crate) fn replay(max_ratio: f64, intervals: &[Counts]) -> Evidence {
    let mut e = errors(max_ratio);
    for c in intervals {
        e.observe(c).unwrap();
    }
    e
}
