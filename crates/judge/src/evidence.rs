//! The evidence for one metric of one rollout: what an analysis interval measured ([`Counts`]),
//! and the running record built from the intervals ([`Evidence`]), small enough to keep in the
//! Rollout's status and exact through a round trip (its stored form is in `codec.rs`).

#[cfg(feature = "schemars")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::eprocess::{ANCHOR, GRID_LEN, add_interval, ln_e_above};
use crate::error::JudgeError;
use crate::kind::{Arm, MetricKind};
use crate::planned::{PlannedTest, Stratum, add_to_strata, odds_margin};

/// `ln E⁺(R0)` above this counts as evidence against the canary (E > 1); the tiny margin keeps
/// floating-point noise on an empty record (where E is exactly 1) from counting.
const ADVERSE_LN_E: f64 = 1e-9;

/// The counts of one analysis interval, as measured for both arms over the same wall-clock span.
///
/// Prometheus `increase()` returns extrapolated floats: round events to whole numbers and clamp
/// them to the exposure before building this.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    /// Canary events in the interval: failed requests, or container restarts.
    pub canary_events: u64,
    /// Baseline events in the interval.
    pub baseline_events: u64,
    /// Canary exposure in the interval: requests, or pod-seconds. Finite, ≥ 0.
    pub canary_exposure: f64,
    /// Baseline exposure in the interval, in the same unit as the canary's.
    pub baseline_exposure: f64,
}

/// The accumulated evidence for one metric of one rollout: small, serialisable, exact.
///
/// Serialised (camelCase) for the Rollout's status; every floating-point number is written as a
/// decimal string that parses back to the identical `f64` (plain JSON numbers lose the last bit
/// in `serde_json`'s default parser), and deserialising checks the record, so a damaged status
/// is an error rather than a wrong verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(JsonSchema))]
#[serde(
    try_from = "crate::codec::EvidenceRepr",
    into = "crate::codec::EvidenceRepr"
)]
pub struct Evidence {
    pub(crate) kind: MetricKind,
    pub(crate) max_ratio: f64,
    pub(crate) intervals: u32,
    pub(crate) canary_events: u64,
    pub(crate) baseline_events: u64,
    pub(crate) paired_events: u64,
    pub(crate) canary_exposure: f64,
    pub(crate) baseline_exposure: f64,
    pub(crate) ratio_numerator: f64,
    pub(crate) ratio_denominator: f64,
    pub(crate) canary_max_restarts_per_pod: u32,
    pub(crate) baseline_max_restarts_per_pod: u32,
    pub(crate) adverse_since_interval: Option<u32>,
    pub(crate) log_likelihood: Vec<f64>,
    pub(crate) paired_canary_events: u64,
    pub(crate) strata: Vec<Stratum>,
}

impl Evidence {
    /// The planned decision's exact conditional test at the limit `R0 = maxRatio`, on all the
    /// informative intervals at once, with error probability `alpha` each way.
    ///
    /// Given each interval's total `s_t`, the canary's events are independent
    /// `Binomial(s_t, θ_t(R))` (the model in the crate docs), so the canary's total `X` is a
    /// sum of independent Bernoulli trials. For failed requests `θ_t` is taken at the odds
    /// ratio the margin means for Bernoulli requests (`odds_margin` in `planned.rs`) rather than at `R0`
    /// itself, and the binomial stands in for the noncentral hypergeometric law, which is less
    /// dispersed, so this too errs on the conservative side. Within a [`Stratum`] the trials' probabilities at
    /// `R0` differ by less than 10% in odds; the stratum is replaced by `Binomial(S, θ̄)` with
    /// the same mean, and the strata are convolved exactly ([`crate::exact`]). The
    /// binomial with the same mean is the more dispersed law (Hoeffding, "On the distribution
    /// of the number of successes in independent trials", Ann. Math. Statist. 27, 1956,
    /// Theorem 4: its tails beyond one event from the mean are at least as heavy), so the
    /// p-values are exact when every interval of a stratum had the same canary share and
    /// conservative otherwise; [`PlannedTest::rejects_below`] also requires that one event
    /// of distance. This is the most a single look can know (the benchmark's oracle is the
    /// same test with one stratum per weight step); it is valid only at a look fixed in
    /// advance, which is what the planned decision is.
    pub fn planned_test(&self, alpha: f64) -> PlannedTest {
        PlannedTest::of(&self.strata, self.paired_canary_events, alpha)
    }

    /// An empty record for a metric of `kind` whose `maxRatio` is `max_ratio` (a ratio, e.g. 1.5:
    /// the canary may have up to 1.5 times the baseline's rate). `max_ratio` becomes the grid
    /// anchor `R0`; if the spec's `maxRatio` changes, start a new record.
    ///
    /// Errors with [`JudgeError::InvalidMaxRatio`] unless `max_ratio` is finite and positive.
    pub fn new(kind: MetricKind, max_ratio: f64) -> Result<Evidence, JudgeError> {
        if !(max_ratio.is_finite() && max_ratio > 0.0) {
            return Err(JudgeError::InvalidMaxRatio {
                kind,
                value: max_ratio,
            });
        }
        Ok(Evidence {
            kind,
            max_ratio,
            intervals: 0,
            canary_events: 0,
            baseline_events: 0,
            paired_events: 0,
            canary_exposure: 0.0,
            baseline_exposure: 0.0,
            ratio_numerator: 0.0,
            ratio_denominator: 0.0,
            canary_max_restarts_per_pod: 0,
            baseline_max_restarts_per_pod: 0,
            adverse_since_interval: None,
            log_likelihood: vec![0.0; GRID_LEN],
            paired_canary_events: 0,
            strata: Vec::new(),
        })
    }

    /// Adds one interval's counts.
    ///
    /// Every valid interval counts towards the totals (and so towards the ceiling test). Only an
    /// interval with exposure in both arms and at least one event updates the ratio evidence:
    /// with an arm unexposed `ρ` is 0 or 1 and `θ` does not depend on `R`, and with no events
    /// the conditional likelihood is 1 whatever `R` is.
    ///
    /// Errors, leaving `self` unchanged, on an exposure that is negative, NaN or infinite,
    /// events in an arm with no exposure, more errors than requests ([`MetricKind::ErrorRate`]),
    /// or totals that would overflow.
    pub fn observe(&mut self, interval: &Counts) -> Result<(), JudgeError> {
        let Counts {
            canary_events: x,
            baseline_events: y,
            canary_exposure: n,
            baseline_exposure: m,
        } = *interval;
        check_arm(self.kind, Arm::Canary, x, n)?;
        check_arm(self.kind, Arm::Baseline, y, m)?;
        let overflow = |arm| JudgeError::Overflow {
            arm,
            intervals: self.intervals,
        };
        let canary_events = self
            .canary_events
            .checked_add(x)
            .ok_or(overflow(Arm::Canary))?;
        let baseline_events = self
            .baseline_events
            .checked_add(y)
            .ok_or(overflow(Arm::Baseline))?;
        let canary_exposure = self.canary_exposure + n;
        if !canary_exposure.is_finite() {
            return Err(overflow(Arm::Canary));
        }
        let baseline_exposure = self.baseline_exposure + m;
        if !baseline_exposure.is_finite() {
            return Err(overflow(Arm::Baseline));
        }

        let informative = n > 0.0 && m > 0.0 && (x > 0 || y > 0);
        let mut paired_events = self.paired_events;
        let mut ratio_numerator = self.ratio_numerator;
        let mut ratio_denominator = self.ratio_denominator;
        let mut log_likelihood = None;
        let mut paired_canary_events = self.paired_canary_events;
        let mut strata = None;
        if informative {
            paired_events = paired_events
                .checked_add(x)
                .and_then(|p| p.checked_add(y))
                .ok_or(overflow(Arm::Canary))?;
            paired_canary_events = paired_canary_events
                .checked_add(x)
                .ok_or(overflow(Arm::Canary))?;
            let mut next = self.strata.clone();
            let margin = match self.kind {
                MetricKind::ErrorRate => odds_margin(
                    self.max_ratio,
                    canary_events.saturating_add(baseline_events),
                    canary_exposure,
                    baseline_exposure,
                ),
                MetricKind::CrashRate => self.max_ratio,
            };
            add_to_strata(&mut next, margin.ln() + n.ln() - m.ln(), x + y);
            strata = Some(next);
            // Mantel–Haenszel accumulators, see `point_estimate`. Scaled so n + m cannot overflow.
            let scale = n.max(m);
            let (ns, ms) = (n / scale, m / scale);
            let rho = ns / (ns + ms);
            let one_minus_rho = ms / (ns + ms);
            ratio_numerator += x as f64 * one_minus_rho;
            ratio_denominator += y as f64 * rho;
            let mut next = self.log_likelihood.clone();
            add_interval(&mut next, self.max_ratio.ln(), x, y, n, m);
            if !(ratio_numerator.is_finite()
                && ratio_denominator.is_finite()
                && next.iter().all(|l| l.is_finite()))
            {
                return Err(overflow(Arm::Canary));
            }
            log_likelihood = Some(next);
        }

        self.canary_events = canary_events;
        self.baseline_events = baseline_events;
        self.canary_exposure = canary_exposure;
        self.baseline_exposure = baseline_exposure;
        self.paired_events = paired_events;
        self.ratio_numerator = ratio_numerator;
        self.ratio_denominator = ratio_denominator;
        self.intervals = self.intervals.saturating_add(1);
        if let Some(next) = log_likelihood {
            self.log_likelihood = next;
        }
        if let Some(next) = strata {
            self.strata = next;
        }
        self.paired_canary_events = paired_canary_events;
        if ln_e_above(&self.log_likelihood, ANCHOR) > ADVERSE_LN_E {
            self.adverse_since_interval.get_or_insert(self.intervals);
        } else {
            self.adverse_since_interval = None;
        }
        Ok(())
    }

    /// Records the highest restart count of any single pod seen now in each arm (Kubernetes'
    /// `restartCount`, which is cumulative per pod). The record keeps the running maximum, so a
    /// pod that restarted and was then replaced still counts. Only for
    /// [`MetricKind::CrashRate`]; errors with [`JudgeError::KindMismatch`] otherwise.
    pub fn record_restarts(
        &mut self,
        canary_max_per_pod: u32,
        baseline_max_per_pod: u32,
    ) -> Result<(), JudgeError> {
        if self.kind != MetricKind::CrashRate {
            return Err(JudgeError::KindMismatch {
                ceiling: "crashRate.maxRestartsPerPod",
                kind: self.kind,
            });
        }
        self.canary_max_restarts_per_pod = self.canary_max_restarts_per_pod.max(canary_max_per_pod);
        self.baseline_max_restarts_per_pod =
            self.baseline_max_restarts_per_pod.max(baseline_max_per_pod);
        Ok(())
    }

    /// The metric kind.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// The grid anchor `R0`: the `maxRatio` this record was created for.
    pub fn max_ratio(&self) -> f64 {
        self.max_ratio
    }

    /// Intervals observed (saturates at `u32::MAX`).
    pub fn intervals(&self) -> u32 {
        self.intervals
    }

    /// Total canary events (errors, or restarts).
    pub fn canary_events(&self) -> u64 {
        self.canary_events
    }

    /// Total baseline events.
    pub fn baseline_events(&self) -> u64 {
        self.baseline_events
    }

    /// Events of both arms from intervals where both arms had exposure: the events the ratio
    /// evidence rests on.
    pub fn paired_events(&self) -> u64 {
        self.paired_events
    }

    /// Total canary exposure: requests, or pod-seconds.
    pub fn canary_exposure(&self) -> f64 {
        self.canary_exposure
    }

    /// Total baseline exposure: requests, or pod-seconds.
    pub fn baseline_exposure(&self) -> f64 {
        self.baseline_exposure
    }

    /// Highest restart count of one canary pod recorded so far.
    pub fn canary_max_restarts_per_pod(&self) -> u32 {
        self.canary_max_restarts_per_pod
    }

    /// Highest restart count of one baseline pod recorded so far.
    pub fn baseline_max_restarts_per_pod(&self) -> u32 {
        self.baseline_max_restarts_per_pod
    }

    /// The 1-based interval since which the failure e-value has stayed above 1 (the evidence
    /// has leaned against the canary), or `None` if it does not now. The incident's anchor:
    /// the caller maps it to a time.
    pub fn adverse_since_interval(&self) -> Option<u32> {
        self.adverse_since_interval
    }

    /// The failure e-value `E_t` against `R ≤ maxRatio` (see [`crate::eprocess`]): 1 with no
    /// evidence, large when the canary looks worse than allowed; rollback at `1/α`. May be
    /// `+∞` for overwhelming evidence.
    pub fn e_value(&self) -> f64 {
        ln_e_above(&self.log_likelihood, ANCHOR).exp()
    }

    /// The cumulative log-likelihood (natural log) at each grid ratio, index `i` for ratio
    /// `maxRatio · 10^((i − J)/K)`; length [`GRID_LEN`].
    pub fn log_likelihood(&self) -> &[f64] {
        &self.log_likelihood
    }
}

/// Validates one arm's counts for one interval.
fn check_arm(kind: MetricKind, arm: Arm, events: u64, exposure: f64) -> Result<(), JudgeError> {
    if !(exposure.is_finite() && exposure >= 0.0) {
        return Err(JudgeError::InvalidExposure {
            arm,
            value: exposure,
        });
    }
    if events > 0 && exposure == 0.0 {
        return Err(JudgeError::EventsWithoutExposure { arm, events });
    }
    if kind == MetricKind::ErrorRate && events as f64 > exposure {
        return Err(JudgeError::EventsExceedExposure {
            arm,
            events,
            exposure,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::fixtures::{counts, errors, observed};

    #[test]
    fn intervals_without_both_arms_or_without_events_carry_no_ratio_evidence() {
        let mut e = errors(1.5);
        e.observe(&counts(0, 0, 0.0, 0.0)).unwrap();
        e.observe(&counts(0, 5, 0.0, 100.0)).unwrap();
        e.observe(&counts(3, 0, 100.0, 0.0)).unwrap();
        e.observe(&counts(0, 0, 100.0, 100.0)).unwrap();
        assert!(e.log_likelihood().iter().all(|&l| l == 0.0));
        assert_eq!((e.canary_events(), e.baseline_events()), (3, 5));
        assert_eq!((e.canary_exposure(), e.baseline_exposure()), (200.0, 200.0));
        assert_eq!((e.intervals(), e.paired_events()), (4, 0));
    }

    #[test]
    fn evidence_turning_against_the_canary_is_dated() {
        let mut e = errors(1.5);
        e.observe(&counts(1, 9, 100.0, 900.0)).unwrap();
        assert_eq!(e.adverse_since_interval(), None);
        e.observe(&counts(5, 9, 100.0, 900.0)).unwrap();
        e.observe(&counts(5, 9, 100.0, 900.0)).unwrap();
        assert_eq!(e.adverse_since_interval(), Some(2));
        for _ in 0..20 {
            e.observe(&counts(0, 20, 100.0, 900.0)).unwrap();
        }
        assert_eq!(e.adverse_since_interval(), None);
    }

    #[test]
    fn bad_counts_are_rejected_and_leave_the_evidence_alone() {
        let mut e = observed(1.5, 3, 2, 100.0, 10, 900.0);
        let before = e.clone();
        for (bad, message) in [
            (
                counts(0, 0, f64::NAN, 1.0),
                "canary exposure must be a finite, non-negative number, got NaN",
            ),
            (
                counts(0, 0, 1.0, -5.0),
                "baseline exposure must be a finite, non-negative number, got -5",
            ),
            (
                counts(101, 0, 100.0, 100.0),
                "canary reported 101 errors out of 100 requests in one interval",
            ),
            (
                counts(0, 2, 100.0, 0.0),
                "baseline reported 2 events in an interval with no exposure",
            ),
        ] {
            assert_eq!(e.observe(&bad).unwrap_err().to_string(), message);
            assert_eq!(e, before);
        }
        let mut big = errors(1.5);
        big.observe(&counts(u64::MAX, 0, f64::MAX, 1.0)).unwrap();
        let before = big.clone();
        assert_eq!(
            big.observe(&counts(1, 0, 1.0, 1.0))
                .unwrap_err()
                .to_string(),
            "canary totals overflowed after 1 intervals; start a new evidence record"
        );
        assert!(big.observe(&counts(0, 0, f64::MAX, 1.0)).is_err());
        assert_eq!(big, before);
    }
}
