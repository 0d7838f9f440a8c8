//! The judge: decides from event counts whether a canary is worse than its baseline.
//!
//! Pure and deterministic: no I/O, no clock, no Kubernetes. The controller feeds it one
//! [`Counts`] per analysis interval through [`Evidence::observe`], stores the [`Evidence`] in the
//! Rollout's status (it round-trips exactly through JSON), and asks [`judge`] for a [`Verdict`].
//!
//! # The model
//!
//! Per metric and per interval `t` we see canary events `x_t` (errors, or restarts), baseline
//! events `y_t`, and the exposures that produced them: canary `n_t` and baseline `m_t` (requests,
//! or pod-seconds for crashes). `ρ_t = n_t / (n_t + m_t)` is the canary's share of exposure and
//! `R` the canary/baseline event-rate ratio. If events in both arms are Poisson with rates
//! `R·λ_t·n_t` and `λ_t·m_t` (the baseline rate `λ_t` may swing however it likes from one
//! interval to the next), then given the interval's total `s_t = x_t + y_t` each event came from
//! the canary independently with probability
//!
//! ```text
//! θ_t(R) = ρ_t R / (ρ_t R + 1 − ρ_t)          so   x_t | s_t ~ Binomial(s_t, θ_t(R))
//! ```
//!
//! and `λ_t` cancels: daily traffic and error swings common to both arms carry no weight.
//! The log-likelihood of interval `t` is `x_t ln θ_t(R) + y_t ln(1 − θ_t(R))`; we add it up on a
//! fixed grid of ratios (see [`GRID_STEPS_PER_DECADE`], [`GRID_HALF_WIDTH`]) anchored at the
//! metric's `maxRatio` `R0`, so the evidence is a vector `ℓ(R_j)`, `R_j = R0 · 10^(j/K)`.
//! This is the conditional (multinomial) construction of Lindon & Malek, "Anytime-Valid
//! Inference for Multinomial Count Data" (NeurIPS 2022), as used for count metrics in Netflix's
//! "Sequential A/B Testing Keeps the World Streaming Netflix" (technology blog, 2024).
//!
//! In log space, with `z = ln R + ln n_t − ln m_t` and `softplus(z) = ln(1 + e^z)`:
//! `ln θ = z − softplus(z)` and `ln(1 − θ) = −softplus(z)`, which is exact and never overflows.
//!
//! For requests the errors are Bernoulli rather than Poisson. The conditional law is then
//! Fisher's noncentral hypergeometric, which differs from the binomial above in two ways of
//! order `p` (the error rate): sampling without replacement makes it less dispersed, which only
//! makes the test more conservative (Hoeffding 1963, Theorem 4: convex functions of a sample
//! drawn without replacement have smaller expectation), and its odds ratio is
//! `R (1 − p)/(1 − R p)` rather than `R`, i.e. at a 1% error rate and `R0 = 1.5` the boundary is
//! effectively 1.508. The simulations in the tests use Bernoulli requests.
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
//! # Confidence sequence and pass
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
//!
//! # The planned decision look
//!
//! An e-process pays for watching at every look: against one exact test at a fixed horizon,
//! the information limit, it needs noticeably more evidence (at α = 1%, about `z = 3` rather
//! than 2.33 at the horizon even with the alternative known in advance). A rollout whose steps
//! all have durations has a horizon known before any data arrives: the end of its pauses (or of
//! the bake). When it has one, the ratio test's α is split ([`PLANNED_ALPHA_SHARE`]): half to the
//! e-process, watched at every look, and half to one exact conditional test at the first
//! successful look at or after that time ([`decide`], [`Evidence::planned_test`]), which can
//! fail the canary or pass it. Both together keep P(false rollback) ≤ α by a union bound; each
//! single test keeps its own guarantee. The planned look's time is fixed when the analysis
//! starts, never moved by the data, which is what makes a one-look test valid there.
//!
//! # Ceilings
//!
//! `errorRate.maxRate` is tested with the same mixture idea on the canary's own Bernoulli
//! requests: null `p ≤ maxRate`, alternatives on a log-odds grid above it (see
//! [`Ceiling::ErrorRate`]); anytime-valid, no baseline needed. `crashRate.maxRestartsPerPod` is a
//! hard count: a pod restarting more often than that is an observed fact, not an estimate.
//! Either breach is reported with the baseline's numbers so the caller can tell a bad change
//! from a common-mode problem.
//!
//! # Error budget
//!
//! `α = 1 − confidence` is split equally across metrics (Bonferroni, [`metric_alpha`]), and a
//! metric with a statistical ceiling gives [`CEILING_ALPHA_SHARE`] of its share to the ceiling
//! test and the rest to the ratio test ([`AlphaSplit`]).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `K`: grid points per decade of ratio. Neighbouring grid ratios differ by `10^(1/20) ≈ 1.122`
/// (12%), finer than the margins users write (`maxRatio` 1.2 to 2) and fine enough that a
/// regression between grid points loses little power, while keeping the stored vector short.
pub const GRID_STEPS_PER_DECADE: i32 = 20;

/// `J`: grid points on each side of the anchor `R0 = maxRatio`. With `K = 20` the grid spans
/// `R0 / 1000 ..= R0 · 1000`, three decades each way: a canary a thousand times worse than its
/// margin is still resolved, and a canary with no errors at all is bounded below `R0`.
pub const GRID_HALF_WIDTH: i32 = 60;

/// Length of [`Evidence`]'s log-likelihood vector: `2·J + 1` = 121.
pub const GRID_LEN: usize = (2 * GRID_HALF_WIDTH + 1) as usize;

/// Share of a metric's α given to its statistical ceiling test (`errorRate.maxRate`); the ratio
/// test gets the remaining 90%. The ceiling catches catastrophes, which produce overwhelming
/// evidence quickly, so a small share costs it little, while the ratio test, which must detect
/// modest regressions, keeps almost all of the budget.
pub const CEILING_ALPHA_SHARE: f64 = 0.1;

/// Share of a metric's ratio-test α given to the planned decision look, when the rollout plans
/// one ([`Policy::with_planned_decision`]); the e-process, which watches at every look, keeps
/// the rest. Half and half: the planned test then detects a regression about as often as a
/// single test with the whole α would (its `z` rises from 2.33 to 2.58 at α = 1%), and the
/// e-process pays `ln 2 = 0.69` nats more per decision, a few percent of its time to detect.
pub const PLANNED_ALPHA_SHARE: f64 = 0.5;

/// Width of one stratum of the planned test, in log-odds of `θ_t(R0)`: intervals whose
/// canary share of events at the limit is within 10% (in odds) of each other are pooled.
const STRATUM_WIDTH: f64 = 0.1;

/// Most strata kept; beyond this the two nearest are merged (which only makes the planned test
/// more conservative, see [`Evidence::planned_test`]). Steps of a rollout produce a handful.
const MAX_STRATA: usize = 64;

/// Default minimum number of events (both arms, from intervals where both arms had exposure)
/// before a pass. The pass test itself already needs several baseline events, this floor
/// keeps a pass from resting on one burst.
pub const DEFAULT_MIN_EVENTS: u64 = 10;

/// Default minimum number of observed intervals before a pass: evidence must span a few looks.
pub const DEFAULT_MIN_INTERVALS: u32 = 3;

/// Ratio between neighbouring grid points, in natural log: `ln 10 / K`.
const GRID_STEP_LN: f64 = std::f64::consts::LN_10 / GRID_STEPS_PER_DECADE as f64;

/// Index of the anchor `R0` in the grid.
const ANCHOR: usize = GRID_HALF_WIDTH as usize;

/// `ln E⁺(R0)` above this counts as evidence against the canary (E > 1); the tiny margin keeps
/// floating-point noise on an empty record (where E is exactly 1) from counting.
const ADVERSE_LN_E: f64 = 1e-9;

/// Which kind of metric the evidence is about: it fixes what events and exposure mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MetricKind {
    /// Events are failed requests, exposure is requests (`errorRate`).
    ErrorRate,
    /// Events are container restarts, exposure is pod-seconds (`crashRate`).
    CrashRate,
}

impl MetricKind {
    /// The key of this kind in `analysis.metrics[]`, for error messages.
    fn field(self) -> &'static str {
        match self {
            MetricKind::ErrorRate => "errorRate",
            MetricKind::CrashRate => "crashRate",
        }
    }

    fn events_word(self) -> &'static str {
        match self {
            MetricKind::ErrorRate => "errors",
            MetricKind::CrashRate => "restarts",
        }
    }
}

/// One arm of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The new version.
    Canary,
    /// The version it is compared against (a fresh baseline ReplicaSet, or the stable one).
    Baseline,
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arm::Canary => "canary",
            Arm::Baseline => "baseline",
        })
    }
}

/// Everything that can go wrong in the judge. The variant name is meant as the Event reason;
/// [`JudgeError::metric_label`] gives the metric label.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum JudgeError {
    /// `maxRatio` is not a positive finite number.
    #[error("analysis.metrics[].{}.maxRatio must be a positive number, got {value}", .kind.field())]
    InvalidMaxRatio {
        /// The metric kind whose field is wrong.
        kind: MetricKind,
        /// The rejected value.
        value: f64,
    },
    /// `maxRate` is not a fraction strictly between 0 and 1.
    #[error(
        "analysis.metrics[].errorRate.maxRate must be a fraction strictly between 0 and 1 \
         (0.05 means 5%), got {0}"
    )]
    InvalidMaxRate(f64),
    /// `analysis.confidence` is not strictly between 0 and 1.
    #[error("analysis.confidence must be strictly between 0 and 1 (0.99 means 99%), got {0}")]
    InvalidConfidence(f64),
    /// No metrics to split the error budget over.
    #[error("analysis.metrics must list at least one metric")]
    NoMetrics,
    /// A per-metric α outside (0, 1).
    #[error("a metric's false-alarm probability must be strictly between 0 and 1, got {0}")]
    InvalidAlpha(f64),
    /// An exposure that is negative, NaN or infinite.
    #[error("{arm} exposure must be a finite, non-negative number, got {value}")]
    InvalidExposure {
        /// Which arm.
        arm: Arm,
        /// The rejected value.
        value: f64,
    },
    /// More failed requests than requests in one interval.
    #[error("{arm} reported {events} errors out of {exposure} requests in one interval")]
    EventsExceedExposure {
        /// Which arm.
        arm: Arm,
        /// Events reported.
        events: u64,
        /// Requests reported.
        exposure: f64,
    },
    /// Events in an interval where the arm had no exposure at all.
    #[error("{arm} reported {events} events in an interval with no exposure")]
    EventsWithoutExposure {
        /// Which arm.
        arm: Arm,
        /// Events reported.
        events: u64,
    },
    /// Cumulative totals no longer fit; the evidence record must be restarted.
    #[error("{arm} totals overflowed after {intervals} intervals; start a new evidence record")]
    Overflow {
        /// Which arm.
        arm: Arm,
        /// Intervals observed so far.
        intervals: u32,
    },
    /// The policy and the evidence are for different kinds of metric.
    #[error("a {ceiling} ceiling cannot judge {kind:?} evidence")]
    KindMismatch {
        /// The ceiling's field name.
        ceiling: &'static str,
        /// The evidence's kind.
        kind: MetricKind,
    },
    /// Stored evidence (from a Rollout's status) does not describe a valid record.
    #[error("stored analysis evidence is unusable: {0}")]
    CorruptEvidence(String),
}

impl JudgeError {
    /// A short, stable, snake_case label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            JudgeError::InvalidMaxRatio { .. } => "invalid_max_ratio",
            JudgeError::InvalidMaxRate(_) => "invalid_max_rate",
            JudgeError::InvalidConfidence(_) => "invalid_confidence",
            JudgeError::NoMetrics => "no_metrics",
            JudgeError::InvalidAlpha(_) => "invalid_alpha",
            JudgeError::InvalidExposure { .. } => "invalid_exposure",
            JudgeError::EventsExceedExposure { .. } => "events_exceed_exposure",
            JudgeError::EventsWithoutExposure { .. } => "events_without_exposure",
            JudgeError::Overflow { .. } => "overflow",
            JudgeError::KindMismatch { .. } => "kind_mismatch",
            JudgeError::CorruptEvidence(_) => "corrupt_evidence",
        }
    }
}

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "EvidenceRepr", into = "EvidenceRepr")]
pub struct Evidence {
    kind: MetricKind,
    max_ratio: f64,
    intervals: u32,
    canary_events: u64,
    baseline_events: u64,
    paired_events: u64,
    canary_exposure: f64,
    baseline_exposure: f64,
    ratio_numerator: f64,
    ratio_denominator: f64,
    canary_max_restarts_per_pod: u32,
    baseline_max_restarts_per_pod: u32,
    adverse_since_interval: Option<u32>,
    log_likelihood: Vec<f64>,
    paired_canary_events: u64,
    strata: Vec<Stratum>,
}

/// Intervals pooled for the planned test: those whose `θ_t(R0)` falls in one
/// [`STRATUM_WIDTH`] of log-odds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stratum {
    /// `round(logit θ(R0) / STRATUM_WIDTH)` of the intervals pooled here.
    key: i32,
    /// Events of both arms, `Σ s_t`.
    events: u64,
    /// Canary events expected at the limit, `Σ s_t θ_t(R0)`.
    #[serde(with = "exact")]
    #[schemars(with = "String")]
    expected: f64,
}

/// The planned decision's exact test of `R ≤ R0` and of `R ≥ R0` on all the evidence at once;
/// see [`Evidence::planned_test`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlannedTest {
    /// Canary events from intervals where both arms had exposure.
    pub canary_events: u64,
    /// Canary events expected if `R = maxRatio`, given each interval's total: `Σ s_t θ_t(R0)`
    /// (for failed requests at the odds ratio `R0` means, see [`Evidence::planned_test`]).
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
    /// expectation (the condition of Hoeffding's bound, see [`Evidence::planned_test`]).
    pub fn rejects_below(&self) -> bool {
        self.upper <= self.alpha && self.canary_events as f64 >= self.expected + 1.0
    }

    /// The canary is better than `maxRatio`: `lower ≤ α`, at least one event below it.
    pub fn rejects_above(&self) -> bool {
        self.lower <= self.alpha && self.canary_events as f64 + 1.0 <= self.expected
    }
}

impl Evidence {
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

    /// The failure e-value `E_t` against `R ≤ maxRatio` (see the module docs): 1 with no
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

    /// The planned decision's exact conditional test at the limit `R0 = maxRatio`, on all the
    /// informative intervals at once, with error probability `alpha` each way.
    ///
    /// Given each interval's total `s_t`, the canary's events are independent
    /// `Binomial(s_t, θ_t(R))` (the model in the module docs), so the canary's total `X` is a
    /// sum of independent Bernoulli trials. For failed requests `θ_t` is taken at the odds
    /// ratio the margin means for Bernoulli requests ([`odds_margin`]) rather than at `R0`
    /// itself, and the binomial stands in for the noncentral hypergeometric law, which is less
    /// dispersed, so this too errs on the conservative side. Within a [`Stratum`] the trials' probabilities at
    /// `R0` differ by less than 10% in odds; the stratum is replaced by `Binomial(S, θ̄)` with
    /// the same mean, and the strata are convolved exactly ([`crate::analysis::exact`]). The
    /// binomial with the same mean is the more dispersed law (Hoeffding, "On the distribution
    /// of the number of successes in independent trials", Ann. Math. Statist. 27, 1956,
    /// Theorem 4: its tails beyond one event from the mean are at least as heavy), so the
    /// p-values are exact when every interval of a stratum had the same canary share and
    /// conservative otherwise; [`PlannedTest::rejects_below`] also requires that one event
    /// of distance. This is the most a single look can know (the benchmark's oracle is the
    /// same test with one stratum per weight step); it is valid only at a look fixed in
    /// advance, which is what the planned decision is.
    pub fn planned_test(&self, alpha: f64) -> PlannedTest {
        let mut law = crate::analysis::exact::Pmf::zero();
        let mut expected = 0.0;
        for stratum in &self.strata {
            let theta = (stratum.expected / stratum.events as f64).clamp(0.0, 1.0);
            law = law.convolve(&crate::analysis::exact::binomial_pmf(stratum.events, theta));
            expected += stratum.expected;
        }
        let x = self.paired_canary_events;
        PlannedTest {
            canary_events: x,
            expected,
            upper: law.upper_tail(x),
            lower: law.lower_tail(x),
            alpha,
        }
    }

    /// The grid ratio at index `i` (`0 ..` [`GRID_LEN`]); exactly `maxRatio` at the anchor.
    fn ratio_at(&self, i: usize) -> f64 {
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
    fn estimate(&self, alpha: f64) -> Estimate {
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

/// The conditional odds ratio that a rate ratio `R0` means for failed requests, given `events`
/// failures in `canary` and `baseline` requests so far: `ψ0 = R0 (1 − p)/(1 − R0 p)`.
///
/// Requests fail or not (Bernoulli), so given the interval's total failures the canary's are
/// Fisher's noncentral hypergeometric with odds ratio `ψ`, not `R` (module docs). At a 1%
/// error rate and `R0 = 1.2`, `ψ0 = 1.2024`: small, but with 10,000 failures in 4 hours the one
/// exact test sees it. `p` is the baseline's failure probability at the null,
/// `events / (R0 · canary + baseline)` pooled over every interval so far (one interval's own
/// counts would overstate it: only intervals with failures count), a function of totals the
/// test conditions on, so the test stays conditional. Clamped so that `R0 p ≤ 0.999`.
fn odds_margin(r0: f64, events: u64, canary: f64, baseline: f64) -> f64 {
    let p = events as f64 / (r0 * canary + baseline);
    let p = p.min(0.999 / r0);
    r0 * (1.0 - p) / (1.0 - r0 * p)
}

/// Adds `events` from an interval with `z = logit θ(R0)` to the stratum of `z` (creating it),
/// and merges the two strata with the nearest keys while there are more than [`MAX_STRATA`].
/// Keeps `strata` sorted by key.
fn add_to_strata(strata: &mut Vec<Stratum>, z: f64, events: u64) {
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

/// `ln(1 + e^a)` without overflow or cancellation.
fn softplus(a: f64) -> f64 {
    if a > 0.0 {
        a + (-a).exp().ln_1p()
    } else {
        a.exp().ln_1p()
    }
}

/// Adds `x ln θ(R_j) + y ln(1 − θ(R_j))` at every grid point, using
/// `z = ln R + ln n − ln m`, `ln θ = z − softplus(z)`, `ln(1 − θ) = −softplus(z)`.
/// Requires `n > 0`, `m > 0`.
fn add_interval(log_likelihood: &mut [f64], ln_anchor: f64, x: u64, y: u64, n: f64, m: f64) {
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
fn ln_weight(d: usize) -> f64 {
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
fn log_sum_exp(terms: impl Iterator<Item = f64>) -> f64 {
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
fn ln_e_above(l: &[f64], k: usize) -> f64 {
    let base = l[k];
    let last = (k + GRID_HALF_WIDTH as usize).min(l.len() - 1);
    log_sum_exp((k + 1..=last).map(|i| ln_weight(i - k) + l[i] - base))
}

/// `ln E⁻(R_k) = ln Σ_{d=1..J} w_d exp(ℓ(R_{k−d}) − ℓ(R_k))`, the e-process against `R ≥ R_k`.
fn ln_e_below(l: &[f64], k: usize) -> f64 {
    let base = l[k];
    let first = k.saturating_sub(GRID_HALF_WIDTH as usize);
    log_sum_exp((first..k).map(|i| ln_weight(k - i) + l[i] - base))
}

/// Logistic function, `1 / (1 + e^-λ)`.
fn logistic(lambda: f64) -> f64 {
    (-softplus(-lambda)).exp()
}

/// `ln E` of the ceiling test for `events` failures in `requests` Bernoulli requests against
/// the null `p ≤ p0`, `λ0 = logit p0`:
///
/// ```text
/// E = Σ_{d=1..J} w_d (p_d/p0)^x ((1−p_d)/(1−p0))^(n−x),   logit p_d = λ0 + d · ln10 / K
/// ```
///
/// Each factor has expectation `≤ 1` per request when the request's failure probability is at
/// most `p0` (the argument of the module docs with `θ` replaced by `p`), so `E` is a
/// nonnegative supermartingale under `p ≤ p0` and Ville's inequality applies: anytime-valid.
/// The alternatives are spaced in odds, so they stay below 1 for any ceiling (up to 1000× the
/// ceiling's odds). Weights as in [`ln_weight`].
fn ln_ceiling_e(events: u64, requests: f64, lambda0: f64) -> f64 {
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

/// `1 − confidence` split equally across the rollout's metrics (Bonferroni): the α each metric
/// may spend, so that P(any false rollback over the whole rollout) ≤ 1 − confidence.
///
/// `confidence` is a fraction strictly between 0 and 1 (`analysis.confidence`, e.g. 0.99);
/// `metrics` the number of entries in `analysis.metrics`, at least 1.
pub fn metric_alpha(confidence: f64, metrics: usize) -> Result<f64, JudgeError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(JudgeError::InvalidConfidence(confidence));
    }
    if metrics == 0 {
        return Err(JudgeError::NoMetrics);
    }
    Ok((1.0 - confidence) / metrics as f64)
}

/// How one metric's α is spent between its two tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlphaSplit {
    /// For the ratio test (and the ratio bounds shown to people).
    pub ratio: f64,
    /// For the ceiling test; 0 when the metric has no statistical ceiling.
    pub ceiling: f64,
    /// For the planned decision look's test; 0 when none is planned.
    pub planned: f64,
}

impl AlphaSplit {
    /// Splits `alpha`: [`CEILING_ALPHA_SHARE`] (10%) to the ceiling and the rest to the ratio
    /// when the metric has a statistical ceiling (`errorRate.maxRate`), all of it to the ratio
    /// otherwise (a `maxRestartsPerPod` count has no false-alarm probability to pay for).
    pub fn new(alpha: f64, statistical_ceiling: bool) -> AlphaSplit {
        if statistical_ceiling {
            AlphaSplit {
                ratio: alpha * (1.0 - CEILING_ALPHA_SHARE),
                ceiling: alpha * CEILING_ALPHA_SHARE,
                planned: 0.0,
            }
        } else {
            AlphaSplit {
                ratio: alpha,
                ceiling: 0.0,
                planned: 0.0,
            }
        }
    }

    /// Moves [`PLANNED_ALPHA_SHARE`] of the ratio test's α to the planned decision look. The
    /// three tests together still spend at most the metric's α (a union bound).
    pub fn with_planned_decision(self) -> AlphaSplit {
        AlphaSplit {
            ratio: self.ratio * (1.0 - PLANNED_ALPHA_SHARE),
            planned: self.ratio * PLANNED_ALPHA_SHARE,
            ..self
        }
    }
}

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
    fn field(&self) -> &'static str {
        match self {
            Ceiling::ErrorRate { .. } => "errorRate.maxRate",
            Ceiling::RestartsPerPod { .. } => "crashRate.maxRestartsPerPod",
        }
    }

    fn kind(&self) -> MetricKind {
        match self {
            Ceiling::ErrorRate { .. } => MetricKind::ErrorRate,
            Ceiling::RestartsPerPod { .. } => MetricKind::CrashRate,
        }
    }
}

/// How to judge one metric: its error budget, ceiling and the minimum evidence for a pass.
/// Built from the spec at each look; validated on construction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    alpha: f64,
    ceiling: Option<Ceiling>,
    min_events: u64,
    min_intervals: u32,
    planned: bool,
}

impl Policy {
    /// `alpha` is this metric's share of `1 − confidence` ([`metric_alpha`]), strictly between
    /// 0 and 1; it is split with [`AlphaSplit::new`]. The minimum evidence for a pass defaults to
    /// [`DEFAULT_MIN_EVENTS`] and [`DEFAULT_MIN_INTERVALS`].
    pub fn new(alpha: f64, ceiling: Option<Ceiling>) -> Result<Policy, JudgeError> {
        if !(alpha > 0.0 && alpha < 1.0) {
            return Err(JudgeError::InvalidAlpha(alpha));
        }
        if let Some(Ceiling::ErrorRate { max_rate }) = ceiling
            && !(max_rate > 0.0 && max_rate < 1.0)
        {
            return Err(JudgeError::InvalidMaxRate(max_rate));
        }
        Ok(Policy {
            alpha,
            ceiling,
            min_events: DEFAULT_MIN_EVENTS,
            min_intervals: DEFAULT_MIN_INTERVALS,
            planned: false,
        })
    }

    /// Requires at least `min_events` paired events and `min_intervals` observed intervals
    /// before a pass (never before a fail: strong evidence of harm is acted on at once).
    pub fn with_min_evidence(self, min_events: u64, min_intervals: u32) -> Policy {
        Policy {
            min_events,
            min_intervals,
            ..self
        }
    }

    /// The rollout plans a decision look (the end of its steps, or of the bake): the ratio
    /// test's α is shared between the e-process and that look's exact test
    /// ([`AlphaSplit::with_planned_decision`]), from the first look on.
    pub fn with_planned_decision(self) -> Policy {
        Policy {
            planned: true,
            ..self
        }
    }

    /// Whether `evidence` has the minimum for a pass: `min_events` paired events and
    /// `min_intervals` intervals.
    fn enough_for_a_pass(&self, evidence: &Evidence) -> bool {
        evidence.paired_events >= self.min_events && evidence.intervals >= self.min_intervals
    }

    /// Whether a decision look is planned.
    pub fn planned(&self) -> bool {
        self.planned
    }

    /// The metric's whole α.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// How the α is spent.
    pub fn split(&self) -> AlphaSplit {
        let split = AlphaSplit::new(
            self.alpha,
            matches!(self.ceiling, Some(Ceiling::ErrorRate { .. })),
        );
        if self.planned {
            split.with_planned_decision()
        } else {
            split
        }
    }

    /// The ceiling, if any.
    pub fn ceiling(&self) -> Option<Ceiling> {
        self.ceiling
    }
}

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

/// Why there is no decision yet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InconclusiveReason {
    /// No interval had events in either arm while both arms were exposed: nothing to compare.
    /// (A quiet service looks like this for a long time; whether that may advance is the
    /// controller's call, a pass it is not.)
    NoEvents,
    /// The bounds already exclude the limit, but there is less evidence than the policy's
    /// minimum for a pass.
    TooLittleEvidence {
        /// Paired events so far.
        events: u64,
        /// Paired events required.
        min_events: u64,
        /// Intervals so far.
        intervals: u32,
        /// Intervals required.
        min_intervals: u32,
    },
    /// The confidence bounds still straddle `maxRatio`.
    Undecided,
}

impl fmt::Display for InconclusiveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InconclusiveReason::NoEvents => f.write_str("no events in either arm to compare yet"),
            InconclusiveReason::TooLittleEvidence {
                events,
                min_events,
                intervals,
                min_intervals,
            } => write!(
                f,
                "a pass needs {} events and {} intervals, have {} and {}",
                group(min_events),
                min_intervals,
                group(events),
                intervals
            ),
            InconclusiveReason::Undecided => {
                f.write_str("the confidence bounds still straddle the limit")
            }
        }
    }
}

/// The judge's decision for one metric at one look.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The canary is within `maxRatio` of the baseline: `ratio.upper ≤ maxRatio`.
    Pass {
        /// The ratio estimate.
        ratio: Estimate,
    },
    /// The canary is worse than `maxRatio` allows: `e_value ≥ threshold = 1/α`, and
    /// `ratio.lower ≥ maxRatio`.
    Fail {
        /// The ratio estimate.
        ratio: Estimate,
        /// The failure e-value `E_t` (may be `+∞`).
        e_value: f64,
        /// `1/α` for the ratio test.
        threshold: f64,
    },
    /// An absolute ceiling broke. Checked before the ratio; the ratio test's outcome is kept so
    /// the caller can tell a bad change from a common-mode problem ([`Verdict::is_common_mode`]).
    CeilingBreached {
        /// The ceiling and both arms' numbers.
        breach: Breach,
        /// The ratio estimate.
        ratio: Estimate,
        /// The ratio test fails as well (the canary is also worse than the baseline).
        ratio_fails: bool,
    },
    /// The planned decision look's exact test found the canary worse than `maxRatio`.
    PlannedFail {
        /// The ratio estimate (anytime bounds, which need not exclude `maxRatio`).
        ratio: Estimate,
        /// The exact test.
        test: PlannedTest,
    },
    /// The planned decision look's exact test found the canary within `maxRatio`.
    PlannedPass {
        /// The ratio estimate.
        ratio: Estimate,
        /// The exact test.
        test: PlannedTest,
    },
    /// Not enough evidence either way; never a pass.
    Inconclusive {
        /// The ratio estimate so far.
        ratio: Estimate,
        /// Why.
        reason: InconclusiveReason,
    },
}

impl Verdict {
    /// The ratio estimate carried by every verdict.
    pub fn ratio(&self) -> &Estimate {
        match self {
            Verdict::Pass { ratio }
            | Verdict::Fail { ratio, .. }
            | Verdict::CeilingBreached { ratio, .. }
            | Verdict::PlannedFail { ratio, .. }
            | Verdict::PlannedPass { ratio, .. }
            | Verdict::Inconclusive { ratio, .. } => ratio,
        }
    }

    /// A ceiling broke in both arms while the canary is not worse than the baseline: the
    /// problem is not this change (triage `common-mode`: hold, do not roll back).
    pub fn is_common_mode(&self) -> bool {
        match self {
            Verdict::CeilingBreached {
                breach,
                ratio_fails,
                ..
            } => breach.common_mode() && !ratio_fails,
            _ => false,
        }
    }

    /// One sentence for people, carrying the numbers: rates of both arms, the ratio bound and
    /// confidence, the limit, and the exposure, e.g. "canary error rate 4.1% vs baseline 0.90%
    /// (ratio 4.6, ≥ 2.3 with 99.55% confidence, limit 1.5×; e-value 412 ≥ 223) over 12,480
    /// canary requests". Bounds are rounded outwards and confidences down, so the sentence
    /// never claims more than the test earned. `evidence` must be the record the verdict was
    /// computed from.
    pub fn summary(&self, evidence: &Evidence) -> String {
        let kind = evidence.kind;
        let rates = format!(
            "canary {} vs baseline {}",
            rate_text(kind, evidence.canary_events, evidence.canary_exposure),
            rate_value(kind, evidence.baseline_events, evidence.baseline_exposure)
        );
        let over = format!(
            "over {}",
            exposure_text(kind, evidence.canary_exposure, Arm::Canary)
        );
        let limit = format!("limit {}×", plain(evidence.max_ratio));
        let confidence = |alpha: f64| confidence_text(alpha);
        match self {
            Verdict::Pass { ratio } => format!(
                "{rates} (ratio {}≤ {} with {} confidence, {limit}) {over}",
                point_text(ratio),
                sig(ratio.upper, 2, Round::Up),
                confidence(ratio.alpha)
            ),
            Verdict::Fail {
                ratio,
                e_value,
                threshold,
            } => format!(
                "{rates} (ratio {}≥ {} with {} confidence, {limit}; e-value {} ≥ {}) {over}",
                point_text(ratio),
                sig(ratio.lower, 2, Round::Down),
                confidence(ratio.alpha),
                sig(*e_value, 3, Round::Down),
                sig(*threshold, 3, Round::Up)
            ),
            Verdict::PlannedFail { ratio, test } => format!(
                "{rates} (ratio {}{limit}) {over}; planned decision: {} canary {} where {} \
                 are expected at the limit, P(as many or more) = {} ≤ {}",
                point_text(ratio),
                group(test.canary_events),
                kind.events_word(),
                sig(test.expected, 3, Round::Nearest),
                sig(test.upper, 2, Round::Up),
                sig(test.alpha, 2, Round::Down)
            ),
            Verdict::PlannedPass { ratio, test } => format!(
                "{rates} (ratio {}{limit}) {over}; planned decision: {} canary {} where {} \
                 are expected at the limit, P(as few or fewer) = {} ≤ {}",
                point_text(ratio),
                group(test.canary_events),
                kind.events_word(),
                sig(test.expected, 3, Round::Nearest),
                sig(test.lower, 2, Round::Up),
                sig(test.alpha, 2, Round::Down)
            ),
            Verdict::Inconclusive { ratio, reason } => match reason {
                InconclusiveReason::NoEvents => format!(
                    "no {} in either arm over {} and {}: inconclusive, nothing to compare yet",
                    kind.events_word(),
                    exposure_text(kind, evidence.canary_exposure, Arm::Canary),
                    exposure_text(kind, evidence.baseline_exposure, Arm::Baseline)
                ),
                _ => format!(
                    "{rates} (ratio {}between {} and {} with {} confidence, {limit}) {over}: \
                     inconclusive, {reason}",
                    point_text(ratio),
                    sig(ratio.lower, 2, Round::Down),
                    sig(ratio.upper, 2, Round::Up),
                    confidence(2.0 * ratio.alpha)
                ),
            },
            Verdict::CeilingBreached {
                breach,
                ratio,
                ratio_fails,
            } => {
                let triage = if self.is_common_mode() {
                    "common-mode".to_string()
                } else if *ratio_fails {
                    format!(
                        "change; the canary is also worse than the baseline, ratio ≥ {}",
                        sig(ratio.lower.max(evidence.max_ratio), 2, Round::Down)
                    )
                } else {
                    "change".to_string()
                };
                match *breach {
                    Breach::ErrorRate {
                        max_rate,
                        canary,
                        baseline,
                        common_mode,
                        ..
                    } => format!(
                        "canary error rate {} (≥ {} with {} confidence) breaks the {} ceiling \
                         {over}; baseline {}{} ({triage})",
                        percent(canary.rate, Round::Nearest),
                        percent(canary.lower, Round::Down),
                        confidence(canary.alpha),
                        percent(max_rate, Round::Nearest),
                        percent(baseline.rate, Round::Nearest),
                        if common_mode {
                            format!(
                                " (≥ {}) breaks it too",
                                percent(baseline.lower, Round::Down)
                            )
                        } else {
                            " does not".to_string()
                        }
                    ),
                    Breach::RestartsPerPod {
                        max_restarts,
                        canary,
                        baseline,
                        common_mode,
                    } => format!(
                        "a canary pod restarted {canary} times, above the ceiling of \
                         {max_restarts} per pod; baseline pods at most {baseline}{} ({triage})",
                        if common_mode { ", above it too" } else { "" }
                    ),
                }
            }
        }
    }
}

/// Judges one metric: ceiling first (a hard stop), then the ratio test, then pass or
/// inconclusive. See the module docs for the tests and their guarantees.
///
/// Errors with [`JudgeError::KindMismatch`] when the policy's ceiling is for another metric kind.
pub fn judge(evidence: &Evidence, policy: &Policy) -> Result<Verdict, JudgeError> {
    if let Some(ceiling) = policy.ceiling
        && ceiling.kind() != evidence.kind
    {
        return Err(JudgeError::KindMismatch {
            ceiling: ceiling.field(),
            kind: evidence.kind,
        });
    }
    let split = policy.split();
    let threshold = -split.ratio.ln();
    let mut ratio = evidence.estimate(split.ratio);
    let l = &evidence.log_likelihood;
    let ln_e_fail = ln_e_above(l, ANCHOR);
    let ratio_fails = ln_e_fail >= threshold;
    if ratio_fails {
        // Certified by the test itself; keeps the shown bound consistent with the decision.
        ratio.lower = ratio.lower.max(evidence.max_ratio);
        ratio.point = ratio.point.map(|p| p.max(ratio.lower));
    }

    if let Some(breach) = ceiling_breach(evidence, policy.ceiling, split.ceiling) {
        return Ok(Verdict::CeilingBreached {
            breach,
            ratio,
            ratio_fails,
        });
    }
    if ratio_fails {
        return Ok(Verdict::Fail {
            ratio,
            e_value: ln_e_fail.exp(),
            threshold: 1.0 / split.ratio,
        });
    }
    if evidence.paired_events == 0 {
        return Ok(Verdict::Inconclusive {
            ratio,
            reason: InconclusiveReason::NoEvents,
        });
    }
    if ln_e_below(l, ANCHOR) >= threshold {
        ratio.upper = ratio.upper.min(evidence.max_ratio);
        ratio.point = ratio.point.map(|p| p.min(ratio.upper));
        if policy.enough_for_a_pass(evidence) {
            return Ok(Verdict::Pass { ratio });
        }
        return Ok(Verdict::Inconclusive {
            ratio,
            reason: InconclusiveReason::TooLittleEvidence {
                events: evidence.paired_events,
                min_events: policy.min_events,
                intervals: evidence.intervals,
                min_intervals: policy.min_intervals,
            },
        });
    }
    Ok(Verdict::Inconclusive {
        ratio,
        reason: InconclusiveReason::Undecided,
    })
}

/// Judges one metric at the planned decision look: [`judge`] first (a fail or a ceiling breach
/// stands), then the exact test of [`Evidence::planned_test`] at the policy's planned α, which
/// fails the canary ([`Verdict::PlannedFail`]) or passes it ([`Verdict::PlannedPass`], only
/// with the policy's minimum evidence). Call it once per rollout, at the first successful look
/// at or after a time fixed before the data came in: the test is exact at one such look and
/// has no guarantee if it is repeated or timed by the data. Without a planned decision in the
/// policy it is [`judge`].
///
/// Errors as [`judge`].
pub fn decide(evidence: &Evidence, policy: &Policy) -> Result<Verdict, JudgeError> {
    let verdict = judge(evidence, policy)?;
    if !policy.planned
        || matches!(
            verdict,
            Verdict::Fail { .. } | Verdict::CeilingBreached { .. }
        )
    {
        return Ok(verdict);
    }
    let test = evidence.planned_test(policy.split().planned);
    let ratio = *verdict.ratio();
    if test.rejects_below() {
        return Ok(Verdict::PlannedFail { ratio, test });
    }
    if test.rejects_above()
        && policy.enough_for_a_pass(evidence)
        && !matches!(verdict, Verdict::Pass { .. })
    {
        return Ok(Verdict::PlannedPass { ratio, test });
    }
    Ok(verdict)
}

/// The breach, if the policy's ceiling is broken by the canary.
fn ceiling_breach(evidence: &Evidence, ceiling: Option<Ceiling>, alpha: f64) -> Option<Breach> {
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

// ---------------------------------------------------------------------------------------------
// Text.

#[derive(Clone, Copy)]
enum Round {
    Nearest,
    Down,
    Up,
}

/// `x` with `digits` significant digits (more for large numbers, never in exponent form below
/// 10^15), rounded as asked so that shown bounds are never tighter than the true ones.
fn sig(x: f64, digits: i32, round: Round) -> String {
    if x.is_nan() {
        return "n/a".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "∞" } else { "-∞" }.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    if x.abs() >= 1e15 {
        return format!("{x:.1e}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let rounded = |decimals: i32| {
        let scale = 10f64.powi(decimals);
        let scaled = x * scale;
        // A hair of slack so that 2.3 stored as 2.2999999… still floors to 2.3.
        let r = match round {
            Round::Nearest => scaled.round(),
            Round::Down => (scaled * (1.0 + 1e-12)).floor(),
            Round::Up => (scaled * (1.0 - 1e-12)).ceil(),
        };
        r / scale
    };
    let mut decimals = (digits - 1 - magnitude).clamp(0, 17);
    let mut value = rounded(decimals);
    // 0.997 rounds to 1.00: one digit too many once the rounding carried into a new magnitude.
    if decimals > 0 && value.abs() >= 10f64.powi(magnitude + 1) {
        decimals -= 1;
        value = rounded(decimals);
    }
    format!("{value:.prec$}", prec = decimals as usize)
}

/// A setting as the user wrote it, to 4 significant digits without trailing zeros: 1.5 → "1.5".
fn plain(x: f64) -> String {
    let text = sig(x, 4, Round::Nearest);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A fraction as a percentage with two significant digits: 0.041 → "4.1%".
fn percent(fraction: f64, round: Round) -> String {
    format!("{}%", sig(fraction * 100.0, 2, round))
}

/// "99.5%" for alpha 0.0045: two significant digits of α, rounded down so the confidence shown
/// is never more than was earned; trailing zeros dropped ("99%").
fn confidence_text(alpha: f64) -> String {
    let alpha_percent = (alpha * 100.0).clamp(1e-12, 100.0);
    let decimals = (1 - alpha_percent.log10().floor() as i32).clamp(0, 12);
    let scale = 10f64.powi(decimals);
    let value = ((100.0 - alpha_percent) * scale * (1.0 + 1e-12)).floor() / scale;
    let text = format!("{value:.prec$}", prec = decimals as usize);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}%")
}

/// An integer with thousands separators: 12480 → "12,480".
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate_value(kind: MetricKind, events: u64, exposure: f64) -> String {
    if exposure <= 0.0 {
        return "n/a".to_string();
    }
    match kind {
        MetricKind::ErrorRate => percent(events as f64 / exposure, Round::Nearest),
        MetricKind::CrashRate => sig(events as f64 / (exposure / 3600.0), 2, Round::Nearest),
    }
}

fn rate_text(kind: MetricKind, events: u64, exposure: f64) -> String {
    match kind {
        MetricKind::ErrorRate => format!("error rate {}", rate_value(kind, events, exposure)),
        MetricKind::CrashRate => format!(
            "{} restarts per pod-hour",
            rate_value(kind, events, exposure)
        ),
    }
}

fn exposure_text(kind: MetricKind, exposure: f64, arm: Arm) -> String {
    match kind {
        MetricKind::ErrorRate if exposure < 1e15 => {
            format!("{} {arm} requests", group(exposure.round() as u64))
        }
        MetricKind::ErrorRate => format!("{exposure:.2e} {arm} requests"),
        MetricKind::CrashRate => {
            format!(
                "{} {arm} pod-hours",
                sig(exposure / 3600.0, 2, Round::Nearest)
            )
        }
    }
}

fn point_text(ratio: &Estimate) -> String {
    match ratio.point {
        Some(p) => format!("{}, ", sig(p, 2, Round::Nearest)),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Storage form.

/// The stored form of [`Evidence`] in a Rollout's status.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "AnalysisEvidence")]
struct EvidenceRepr {
    /// `ErrorRate` (events are failed requests, exposure requests) or `CrashRate` (restarts,
    /// pod-seconds).
    kind: MetricKind,
    /// The metric's maxRatio when this record started: the grid anchor.
    #[serde(with = "exact")]
    #[schemars(with = "String")]
    max_ratio: f64,
    /// Analysis intervals observed.
    intervals: u32,
    /// Total canary events.
    canary_events: u64,
    /// Total baseline events.
    baseline_events: u64,
    /// Events from intervals where both arms had exposure.
    paired_events: u64,
    /// Total canary exposure (requests or pod-seconds).
    #[serde(with = "exact")]
    #[schemars(with = "String")]
    canary_exposure: f64,
    /// Total baseline exposure (requests or pod-seconds).
    #[serde(with = "exact")]
    #[schemars(with = "String")]
    baseline_exposure: f64,
    /// Mantel–Haenszel numerator, sum of canary events times the baseline's exposure share.
    #[serde(with = "exact")]
    #[schemars(with = "String")]
    ratio_numerator: f64,
    /// Mantel–Haenszel denominator, sum of baseline events times the canary's exposure share.
    #[serde(with = "exact")]
    #[schemars(with = "String")]
    ratio_denominator: f64,
    /// Highest restart count of one canary pod.
    #[serde(default)]
    canary_max_restarts_per_pod: u32,
    /// Highest restart count of one baseline pod.
    #[serde(default)]
    baseline_max_restarts_per_pod: u32,
    /// The interval since which the evidence has leaned against the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    adverse_since_interval: Option<u32>,
    /// Cumulative log-likelihood at ratios maxRatio·10^(j/20), j = -60..60 (121 values).
    #[serde(with = "exact_vec")]
    #[schemars(with = "Vec<String>")]
    log_likelihood: Vec<f64>,
    /// Canary events from intervals where both arms had exposure.
    #[serde(default)]
    paired_canary_events: u64,
    /// The planned decision's strata: events pooled by the canary's share of events at the limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    strata: Vec<Stratum>,
}

impl From<Evidence> for EvidenceRepr {
    fn from(e: Evidence) -> EvidenceRepr {
        let Evidence {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        } = e;
        EvidenceRepr {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        }
    }
}

impl TryFrom<EvidenceRepr> for Evidence {
    type Error = JudgeError;

    fn try_from(r: EvidenceRepr) -> Result<Evidence, JudgeError> {
        let EvidenceRepr {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        } = r;
        let corrupt = |what: String| Err(JudgeError::CorruptEvidence(what));
        if !(max_ratio.is_finite() && max_ratio > 0.0) {
            return corrupt(format!("maxRatio {max_ratio} is not a positive number"));
        }
        for (name, value) in [
            ("canaryExposure", canary_exposure),
            ("baselineExposure", baseline_exposure),
            ("ratioNumerator", ratio_numerator),
            ("ratioDenominator", ratio_denominator),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return corrupt(format!(
                    "{name} {value} is not a finite, non-negative number"
                ));
            }
        }
        if log_likelihood.len() != GRID_LEN {
            return corrupt(format!(
                "logLikelihood has {} values, expected {GRID_LEN}",
                log_likelihood.len()
            ));
        }
        if let Some(bad) = log_likelihood.iter().find(|l| !l.is_finite()) {
            return corrupt(format!("logLikelihood holds {bad}"));
        }
        if u128::from(paired_events) > u128::from(canary_events) + u128::from(baseline_events) {
            return corrupt(format!(
                "pairedEvents {paired_events} exceeds canaryEvents + baselineEvents"
            ));
        }
        if paired_canary_events > paired_events {
            return corrupt(format!(
                "pairedCanaryEvents {paired_canary_events} exceeds pairedEvents {paired_events}"
            ));
        }
        if strata.len() > MAX_STRATA || !strata.windows(2).all(|w| w[0].key < w[1].key) {
            return corrupt(format!(
                "strata must be at most {MAX_STRATA}, sorted by key without repeats"
            ));
        }
        if let Some(bad) = strata.iter().find(|s| {
            !(s.expected.is_finite() && s.expected >= 0.0 && s.expected <= s.events as f64)
        }) {
            return corrupt(format!(
                "a stratum expects {} of its {} events",
                bad.expected, bad.events
            ));
        }
        Ok(Evidence {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        })
    }
}

/// `f64` as the shortest decimal string that parses back to the same bits. `serde_json`'s
/// default number parser is off by one bit for roughly one number in ten, which would make
/// stored evidence drift with every read-modify-write of the status.
mod exact {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn to_text(x: f64) -> String {
        // Rust's `{}` and `{:e}` print the shortest digits that round-trip.
        if x != 0.0 && !(1e-5..1e16).contains(&x.abs()) {
            format!("{x:e}")
        } else {
            format!("{x}")
        }
    }

    pub fn from_text<E: Error>(text: &str) -> Result<f64, E> {
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(E::custom(format!("{text:?} is not a finite number"))),
        }
    }

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_text(*x))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        from_text(&String::deserialize(d)?)
    }
}

/// [`exact`] for a vector.
mod exact_vec {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&super::exact::to_text(*x))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| super::exact::from_text(t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    // -----------------------------------------------------------------------------------------
    // Fixtures.

    fn counts(canary_events: u64, baseline_events: u64, canary: f64, baseline: f64) -> Counts {
        Counts {
            canary_events,
            baseline_events,
            canary_exposure: canary,
            baseline_exposure: baseline,
        }
    }

    fn errors(max_ratio: f64) -> Evidence {
        Evidence::new(MetricKind::ErrorRate, max_ratio).unwrap()
    }

    /// `intervals` identical intervals of canary/baseline errors and requests.
    fn observed(
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
    fn two_metric_policy() -> Policy {
        Policy::new(metric_alpha(0.99, 2).unwrap(), None).unwrap()
    }

    fn verdict_canary_lower(verdict: &Verdict) -> f64 {
        match verdict {
            Verdict::CeilingBreached {
                breach: Breach::ErrorRate { canary, .. },
                ..
            } => canary.lower,
            _ => f64::NAN,
        }
    }

    fn grid_index_of(j: i32) -> usize {
        (GRID_HALF_WIDTH + j) as usize
    }

    // -----------------------------------------------------------------------------------------
    // Exact values.

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

    #[test]
    fn damaged_strata_are_rejected() {
        let e = observed(1.5, 3, 2, 100.0, 3, 100.0);
        let mut value = serde_json::to_value(&e).unwrap();
        value["strata"][0]["expected"] = serde_json::json!("1e9");
        let err = serde_json::from_value::<Evidence>(value).unwrap_err();
        assert!(err.to_string().contains("stratum"), "{err}");
    }

    #[test]
    fn decide_adds_the_planned_test_only_when_planned() {
        // 40 canary errors vs 48 baseline errors in 4× the requests: ratio 3.3 against 1.5.
        // At α = 0.01 the e-process needs more; the exact test at α/2 already rejects.
        let e = observed(1.5, 4, 10, 1000.0, 12, 4000.0);
        let plain = Policy::new(0.01, None).unwrap();
        let planned = plain.with_planned_decision();
        assert!(matches!(
            judge(&e, &planned).unwrap(),
            Verdict::Inconclusive { .. }
        ));
        assert_eq!(decide(&e, &plain).unwrap(), judge(&e, &plain).unwrap());
        let verdict = decide(&e, &planned).unwrap();
        let Verdict::PlannedFail { test, .. } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(test.upper <= 0.005 && test.alpha == 0.005, "{test:?}");
        let text = verdict.summary(&e);
        assert!(
            text.contains("planned decision: 40 canary errors"),
            "{text}"
        );
        // The mirror image: 12 canary errors of 92 where 92 · 1.5/5.5 = 25 are expected at the
        // limit pass the exact test before the e-process.
        let good = observed(1.5, 4, 3, 1000.0, 20, 4000.0);
        assert!(matches!(
            judge(&good, &planned).unwrap(),
            Verdict::Inconclusive { .. }
        ));
        assert!(matches!(
            decide(&good, &planned).unwrap(),
            Verdict::PlannedPass { .. }
        ));
    }

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

    // -----------------------------------------------------------------------------------------
    // Verdicts.

    #[test]
    fn no_events_is_inconclusive_and_says_so() {
        let e = observed(1.5, 20, 0, 150.0, 0, 2_850.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert!(matches!(
            verdict,
            Verdict::Inconclusive {
                reason: InconclusiveReason::NoEvents,
                ..
            }
        ));
        assert_eq!(
            verdict.summary(&e),
            "no errors in either arm over 3,000 canary requests and 57,000 baseline requests: \
             inconclusive, nothing to compare yet"
        );
    }

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
    fn a_hard_regression_fails_with_the_numbers_in_the_sentence() {
        // 10 looks of 1,248 canary requests at 50% errors vs 1% of 11,232 baseline requests.
        let e = observed(1.5, 10, 624, 1_248.0, 112, 11_232.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        let Verdict::Fail {
            ratio,
            e_value,
            threshold,
        } = verdict
        else {
            panic!("expected a failure, got {verdict:?}");
        };
        assert!(e_value >= threshold && ratio.lower >= 30.0, "{ratio:?}");
        assert!((threshold - 200.0).abs() < 1e-9, "{threshold}");
        assert_eq!(
            verdict.summary(&e),
            format!(
                "canary error rate 50% vs baseline 1.0% (ratio 50, ≥ {} with 99.5% confidence, \
                 limit 1.5×; e-value {} ≥ 200) over 12,480 canary requests",
                sig(ratio.lower, 2, Round::Down),
                sig(e_value, 3, Round::Down)
            )
        );
        assert!(!verdict.is_common_mode());
    }

    #[test]
    fn a_healthy_canary_with_plenty_of_data_passes() {
        // 60 looks, canary 10% weight at the baseline's 1% error rate.
        let e = observed(1.5, 60, 3, 300.0, 27, 2_700.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        let Verdict::Pass { ratio } = verdict else {
            panic!("expected a pass, got {verdict:?}");
        };
        assert!(ratio.upper <= 1.5 && ratio.lower < 1.0, "{ratio:?}");
        assert_eq!(
            verdict.summary(&e),
            format!(
                "canary error rate 1.0% vs baseline 1.0% (ratio 1.0, ≤ {} with 99.5% confidence, \
                 limit 1.5×) over 18,000 canary requests",
                sig(ratio.upper, 2, Round::Up)
            )
        );
    }

    #[test]
    fn a_pass_needs_the_minimum_evidence() {
        // One look with 1,000 baseline errors and none from the canary: the bounds exclude 1.5
        // already, but one interval is not a rollout's worth of evidence.
        let e = observed(1.5, 1, 0, 10_000.0, 1_000, 10_000.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert_eq!(
            verdict,
            Verdict::Inconclusive {
                ratio: *verdict.ratio(),
                reason: InconclusiveReason::TooLittleEvidence {
                    events: 1_000,
                    min_events: DEFAULT_MIN_EVENTS,
                    intervals: 1,
                    min_intervals: DEFAULT_MIN_INTERVALS,
                }
            }
        );
        assert!(verdict.ratio().upper <= 1.5);
        let relaxed = two_metric_policy().with_min_evidence(10, 1);
        assert!(matches!(judge(&e, &relaxed).unwrap(), Verdict::Pass { .. }));
    }

    #[test]
    fn a_little_data_straddling_the_limit_is_undecided() {
        let e = observed(1.5, 5, 1, 100.0, 9, 900.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert!(
            matches!(
                verdict,
                Verdict::Inconclusive {
                    reason: InconclusiveReason::Undecided,
                    ..
                }
            ),
            "{verdict:?}"
        );
        let ratio = verdict.ratio();
        assert!(ratio.lower < 1.5 && ratio.upper > 1.5, "{ratio:?}");
        let text = verdict.summary(&e);
        assert!(
            text.starts_with("canary error rate 1.0% vs baseline 1.0% (ratio 1.0, between ")
                && text.ends_with(
                    "with 99% confidence, limit 1.5×) over 500 canary requests: inconclusive, \
                     the confidence bounds still straddle the limit"
                ),
            "{text}"
        );
    }

    #[test]
    fn daily_swings_in_traffic_and_error_rate_cancel_out() {
        // Night: little traffic, the canary holds half of it, and everyone errs at 10%.
        // Day: lots of traffic, the canary holds 5%, and everyone errs at 0.1%. Pooled, the
        // canary's rate is 6.9× the baseline's (Simpson's paradox); interval by interval the two
        // arms are identical, and that is what the judge sees.
        let mut e = errors(1.5);
        for _ in 0..10 {
            e.observe(&counts(50, 50, 500.0, 500.0)).unwrap();
            e.observe(&counts(5, 95, 5_000.0, 95_000.0)).unwrap();
        }
        let pooled = (e.canary_events() as f64 / e.canary_exposure())
            / (e.baseline_events() as f64 / e.baseline_exposure());
        assert!(pooled > 6.0, "{pooled}");
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert!((verdict.ratio().point.unwrap() - 1.0).abs() < 1e-12);
        assert!(e.e_value() < 1.0, "{}", e.e_value());
        assert!(
            matches!(verdict, Verdict::Pass { .. }),
            "{}",
            verdict.summary(&e)
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

    #[test]
    fn crash_rates_read_per_pod_hour() {
        // Canary: 2 pods for an hour, 12 restarts; baseline 10 pods, 6 restarts.
        let mut e = Evidence::new(MetricKind::CrashRate, 2.0).unwrap();
        for _ in 0..12 {
            e.observe(&counts(1, 0, 600.0, 3_000.0)).unwrap();
        }
        for _ in 0..6 {
            e.observe(&counts(0, 1, 1.0, 3_000.0)).unwrap();
        }
        let verdict = judge(&e, &Policy::new(0.005, None).unwrap()).unwrap();
        let text = verdict.summary(&e);
        assert!(
            text.starts_with("canary 6.0 restarts per pod-hour vs baseline 0.40 (ratio "),
            "{text}"
        );
        assert!(text.ends_with("over 2.0 canary pod-hours"), "{text}");
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
    fn fail_and_pass_agree_with_the_bounds() {
        let policy = two_metric_policy();
        for (x, y) in [(30u64, 270u64), (60, 270), (90, 270), (10, 270), (0, 30)] {
            let e = observed(1.5, 10, x, 1_000.0, y, 9_000.0);
            let verdict = judge(&e, &policy).unwrap();
            let ratio = verdict.ratio();
            assert!(ratio.lower <= ratio.upper, "{verdict:?}");
            match verdict {
                Verdict::Fail { .. } => assert!(ratio.lower >= 1.5),
                Verdict::Pass { .. } => assert!(ratio.upper <= 1.5),
                _ => assert!(ratio.lower < 1.5 || ratio.upper > 1.5),
            }
            let fails = e.e_value() >= 1.0 / policy.split().ratio;
            assert_eq!(fails, matches!(verdict, Verdict::Fail { .. }));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Inputs, errors, storage.

    #[test]
    fn bad_settings_are_explained_with_the_field_and_the_value() {
        assert_eq!(
            Evidence::new(MetricKind::ErrorRate, -1.0)
                .unwrap_err()
                .to_string(),
            "analysis.metrics[].errorRate.maxRatio must be a positive number, got -1"
        );
        assert_eq!(
            Evidence::new(MetricKind::CrashRate, f64::NAN)
                .unwrap_err()
                .to_string(),
            "analysis.metrics[].crashRate.maxRatio must be a positive number, got NaN"
        );
        assert!(Evidence::new(MetricKind::ErrorRate, 0.0).is_err());
        assert!(Evidence::new(MetricKind::ErrorRate, f64::INFINITY).is_err());
        assert_eq!(
            Policy::new(0.005, Some(Ceiling::ErrorRate { max_rate: 5.0 }))
                .unwrap_err()
                .to_string(),
            "analysis.metrics[].errorRate.maxRate must be a fraction strictly between 0 and 1 \
             (0.05 means 5%), got 5"
        );
        assert_eq!(
            metric_alpha(99.0, 2).unwrap_err().to_string(),
            "analysis.confidence must be strictly between 0 and 1 (0.99 means 99%), got 99"
        );
        assert_eq!(metric_alpha(0.99, 0), Err(JudgeError::NoMetrics));
        assert!(Policy::new(0.0, None).is_err() && Policy::new(f64::NAN, None).is_err());
        let crash = Evidence::new(MetricKind::CrashRate, 2.0).unwrap();
        let error_policy = Policy::new(0.01, Some(Ceiling::ErrorRate { max_rate: 0.05 })).unwrap();
        assert_eq!(
            judge(&crash, &error_policy).unwrap_err().metric_label(),
            "kind_mismatch"
        );
        assert!(errors(1.5).record_restarts(1, 1).is_err());
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

    #[test]
    fn the_error_budget_is_split_across_metrics_then_tests() {
        let alpha = metric_alpha(0.99, 2).unwrap();
        assert!((alpha - 0.005).abs() < 1e-15);
        let split = AlphaSplit::new(alpha, true);
        assert!((split.ratio - 0.0045).abs() < 1e-15 && (split.ceiling - 0.0005).abs() < 1e-15);
        assert_eq!(
            AlphaSplit::new(alpha, false),
            AlphaSplit {
                ratio: alpha,
                ceiling: 0.0,
                planned: 0.0,
            }
        );
        let restarts = Policy::new(alpha, Some(Ceiling::RestartsPerPod { max_restarts: 3 }));
        assert_eq!(restarts.unwrap().split().ratio, alpha);
        // A planned decision takes half of the ratio test's share; the three still add up.
        let planned = Policy::new(alpha, Some(Ceiling::ErrorRate { max_rate: 0.05 }))
            .unwrap()
            .with_planned_decision()
            .split();
        assert!((planned.ratio - 0.00225).abs() < 1e-15);
        assert!((planned.planned - 0.00225).abs() < 1e-15);
        assert!((planned.ratio + planned.planned + planned.ceiling - alpha).abs() < 1e-15);
    }

    #[test]
    fn evidence_is_stored_as_exact_decimal_strings() {
        let mut e = observed(1.5, 7, 3, 333.3, 17, 2_999.7);
        e.observe(&counts(0, 1, 0.1, 1.2)).unwrap();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["maxRatio"], "1.5");
        assert_eq!(json["kind"], "ErrorRate");
        assert_eq!(json["intervals"], 8);
        let l = json["logLikelihood"].as_array().unwrap();
        assert_eq!(l.len(), GRID_LEN);
        assert!(l.iter().all(|v| v.is_string()));
        let back: Evidence = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
        for (a, b) in back.log_likelihood().iter().zip(e.log_likelihood()) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        // A damaged status is an error, not a wrong verdict.
        let mut json = serde_json::to_value(&e).unwrap();
        json["logLikelihood"].as_array_mut().unwrap().pop();
        let err = serde_json::from_value::<Evidence>(json).unwrap_err();
        assert!(
            err.to_string().contains("logLikelihood has 120 values"),
            "{err}"
        );
        let mut json = serde_json::to_value(&e).unwrap();
        json["logLikelihood"][3] = "NaN".into();
        assert!(serde_json::from_value::<Evidence>(json).is_err());
    }

    #[test]
    fn the_stored_form_has_a_schema_for_the_crd() {
        let schema = serde_json::to_value(schemars::schema_for!(Evidence)).unwrap();
        let properties = &schema["properties"];
        assert_eq!(properties["maxRatio"]["type"], "string");
        assert_eq!(properties["logLikelihood"]["items"]["type"], "string");
        assert_eq!(properties["canaryEvents"]["type"], "integer");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group(12_480), "12,480");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000_000), "1,000,000");
        assert_eq!(confidence_text(0.0045), "99.55%");
        assert_eq!(confidence_text(0.01), "99%");
        assert_eq!(confidence_text(0.0005), "99.95%");
        assert_eq!(sig(2.349, 2, Round::Down), "2.3");
        assert_eq!(sig(2.301, 2, Round::Up), "2.4");
        assert_eq!(sig(412.7, 3, Round::Down), "412");
        assert_eq!(sig(f64::INFINITY, 2, Round::Up), "∞");
        assert_eq!(percent(0.041, Round::Nearest), "4.1%");
        assert_eq!(percent(0.009, Round::Nearest), "0.90%");
        assert_eq!(percent(0.00997, Round::Nearest), "1.0%");
        assert_eq!(sig(9.96, 2, Round::Up), "10");
        for x in [0.1, 1.5, -1234.5678901234567, 1e-300, 6.02e23, 5e-324, -0.0] {
            assert_eq!(
                exact::to_text(x).parse::<f64>().unwrap().to_bits(),
                x.to_bits()
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // Properties.

    fn interval() -> impl Strategy<Value = Counts> {
        (1u32..5_000, 1u32..5_000, 0.0f64..0.2, 0.0f64..0.2).prop_map(|(n, m, pn, pm)| {
            counts(
                (f64::from(n) * pn) as u64,
                (f64::from(m) * pm) as u64,
                f64::from(n),
                f64::from(m),
            )
        })
    }

    fn history() -> impl Strategy<Value = (f64, Vec<Counts>)> {
        (0.05f64..20.0, proptest::collection::vec(interval(), 0..12))
    }

    fn replay(max_ratio: f64, intervals: &[Counts]) -> Evidence {
        let mut e = errors(max_ratio);
        for c in intervals {
            e.observe(c).unwrap();
        }
        e
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

        #[test]
        fn evidence_round_trips_through_json((max_ratio, past) in history()) {
            let e = replay(max_ratio, &past);
            let text = serde_json::to_string(&e).unwrap();
            let back: Evidence = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, e);
        }

        #[test]
        fn observe_and_judge_never_panic(
            max_ratio in any::<f64>(),
            raw in proptest::collection::vec(
                (any::<u64>(), any::<u64>(), any::<f64>(), any::<f64>()), 0..6),
            small in proptest::collection::vec((0u64..10, 0u64..10, 0.0f64..20.0, 0.0f64..20.0), 0..6),
            alpha in any::<f64>(),
            max_rate in any::<f64>(),
        ) {
            for kind in [MetricKind::ErrorRate, MetricKind::CrashRate] {
                let Ok(mut e) = Evidence::new(kind, max_ratio) else { continue };
                for &(x, y, n, m) in raw.iter().chain(&small) {
                    let _ = e.observe(&counts(x, y, n, m));
                }
                prop_assert!(e.log_likelihood().iter().all(|l| l.is_finite()));
                let ceiling = match kind {
                    MetricKind::ErrorRate => Ceiling::ErrorRate { max_rate },
                    MetricKind::CrashRate => Ceiling::RestartsPerPod { max_restarts: 1 },
                };
                for policy in [Policy::new(alpha, Some(ceiling)), Policy::new(0.01, None)]
                    .into_iter()
                    .flatten()
                {
                    let verdict = judge(&e, &policy).unwrap();
                    let _ = verdict.summary(&e);
                }
                let _ = serde_json::to_string(&e).unwrap();
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Seeded simulations: many looks, stepped weights, Bernoulli requests.

    /// Debug builds run fewer replications; the seeds are fixed, so every run is the same.
    const NULL_RUNS: usize = if cfg!(debug_assertions) { 600 } else { 4_000 };
    const POWER_RUNS: usize = if cfg!(debug_assertions) { 200 } else { 2_000 };

    /// Binomial(n, p) by geometric jumps between successes: exact, O(n·p) work.
    fn binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if p > 0.5 {
            return n - binomial(rng, n, 1.0 - p);
        }
        let ln_q = (-p).ln_1p();
        let (mut successes, mut position) = (0u64, 0u64);
        loop {
            let u: f64 = rng.random();
            let failures_before = ((1.0 - u).ln() / ln_q).floor();
            if failures_before + 1.0 > (n - position) as f64 {
                return successes;
            }
            position += failures_before as u64 + 1;
            successes += 1;
        }
    }

    /// Poisson(mean) by counting uniform products (Knuth), split for large means.
    fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
        if mean > 30.0 {
            return poisson(rng, mean / 2.0) + poisson(rng, mean / 2.0);
        }
        let limit = (-mean).exp();
        let (mut k, mut product) = (0u64, rng.random::<f64>());
        while product > limit {
            k += 1;
            product *= rng.random::<f64>();
        }
        k
    }

    #[derive(Clone, Copy)]
    enum Errors {
        /// Each request fails independently (what real services look like).
        Bernoulli,
        /// Poisson counts: the model the conditional test is exact for.
        Poisson,
    }

    /// A rollout of 240 looks of 30 s (2 hours): canary weight 5% → 20% → 50% in thirds,
    /// the stable ReplicaSet as baseline, traffic and error rate swinging together through a
    /// day-like cycle, errors at `ratio` times the baseline's rate in the canary.
    #[derive(Clone, Copy)]
    struct Rollout {
        requests_per_second: f64,
        baseline_error_rate: f64,
        ratio: f64,
        max_ratio: f64,
        errors: Errors,
    }

    const LOOKS: usize = 240;

    #[derive(Default)]
    struct Outcome {
        failed_at: Option<usize>,
        passed_at: Option<usize>,
    }

    impl Rollout {
        fn weight(t: usize) -> f64 {
            match t * 3 / LOOKS {
                0 => 0.05,
                1 => 0.20,
                _ => 0.50,
            }
        }

        /// Runs one rollout; checks the failure test (and the pass test, when `watch_pass`) at
        /// every look; stops at the first failure when `stop_on_fail`.
        /// The counts of the [`LOOKS`] looks of one run.
        fn looks(&self, seed: u64) -> Vec<Counts> {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let phase = rng.random::<f64>() * std::f64::consts::TAU;
            (0..LOOKS)
                .map(|t| {
                    let cycle = (phase + t as f64 * std::f64::consts::TAU / 80.0).sin();
                    let requests = (self.requests_per_second * 30.0 * (1.0 + 0.8 * cycle)).round();
                    let rate = self.baseline_error_rate * (1.0 + 0.5 * cycle);
                    let n = (requests * Self::weight(t)).round();
                    let m = requests - n;
                    let (x, y) = match self.errors {
                        Errors::Bernoulli => (
                            binomial(&mut rng, n as u64, (rate * self.ratio).min(1.0)),
                            binomial(&mut rng, m as u64, rate),
                        ),
                        Errors::Poisson => (
                            poisson(&mut rng, n * rate * self.ratio),
                            poisson(&mut rng, m * rate),
                        ),
                    };
                    counts(x, y, n, m)
                })
                .collect()
        }

        /// Runs one rollout through the public API with a planned decision at the last look:
        /// [`judge`] at every look, [`decide`] at the last. Whether it failed, and whether the
        /// failure came from the planned test.
        fn run_planned(&self, seed: u64, alpha: f64) -> (bool, bool) {
            let policy = Policy::new(alpha, None).unwrap().with_planned_decision();
            let mut e = errors(self.max_ratio);
            for (t, c) in self.looks(seed).iter().enumerate() {
                e.observe(c).unwrap();
                let verdict = if t + 1 == LOOKS {
                    decide(&e, &policy).unwrap()
                } else {
                    judge(&e, &policy).unwrap()
                };
                match verdict {
                    Verdict::Fail { .. } => return (true, false),
                    Verdict::PlannedFail { .. } => return (true, true),
                    _ => {}
                }
            }
            (false, false)
        }

        fn run(&self, seed: u64, alpha: f64, watch_pass: bool, stop_on_fail: bool) -> Outcome {
            let mut e = errors(self.max_ratio);
            let threshold = -alpha.ln();
            let mut outcome = Outcome::default();
            for (t, c) in self.looks(seed).iter().enumerate() {
                e.observe(c).unwrap();
                let l = e.log_likelihood();
                if outcome.failed_at.is_none() && ln_e_above(l, ANCHOR) >= threshold {
                    outcome.failed_at = Some(t);
                    if stop_on_fail {
                        // The public API says the same thing at this look.
                        let policy = Policy::new(alpha, None).unwrap();
                        assert!(matches!(judge(&e, &policy).unwrap(), Verdict::Fail { .. }));
                        return outcome;
                    }
                }
                if watch_pass && outcome.passed_at.is_none() && ln_e_below(l, ANCHOR) >= threshold {
                    outcome.passed_at = Some(t);
                }
            }
            outcome
        }
    }

    /// Wilson score interval at 95% for `k` successes in `n` trials.
    fn wilson(k: usize, n: usize) -> (f64, f64) {
        let (k, n, z) = (k as f64, n as f64, 1.96);
        let p = k / n;
        let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        (centre - half, centre + half)
    }

    /// Asserts `k` false decisions in `runs` are consistent with a rate ≤ `alpha`: at most
    /// `alpha·runs + 3·sqrt(runs·alpha·(1−alpha))` (a one-sided 3σ binomial margin).
    fn assert_rate_at_most(what: &str, k: usize, runs: usize, alpha: f64) {
        let (lo, hi) = wilson(k, runs);
        let limit = alpha * runs as f64 + 3.0 * (runs as f64 * alpha * (1.0 - alpha)).sqrt();
        println!(
            "{what}: {k}/{runs} = {:.4} (95% Wilson [{lo:.4}, {hi:.4}]), alpha {alpha}",
            k as f64 / runs as f64
        );
        assert!(
            k as f64 <= limit,
            "{what}: {k} of {runs} runs = {:.4}, 95% interval [{lo:.4}, {hi:.4}], \
             exceeds alpha {alpha} by more than 3 binomial sd",
            k as f64 / runs as f64
        );
    }

    fn null_rates(rollout: Rollout, alpha: f64, seed: u64) -> (usize, usize) {
        let (mut fails, mut passes) = (0, 0);
        for run in 0..NULL_RUNS {
            let outcome = rollout.run(seed + run as u64, alpha, true, false);
            fails += usize::from(outcome.failed_at.is_some());
            passes += usize::from(outcome.passed_at.is_some());
        }
        (fails, passes)
    }

    #[test]
    fn an_unchanged_canary_is_rarely_rolled_back_however_often_we_look() {
        let alpha = 0.05;
        let rollout = Rollout {
            requests_per_second: 20.0,
            baseline_error_rate: 0.01,
            ratio: 1.0,
            max_ratio: 1.5,
            errors: Errors::Bernoulli,
        };
        let (fails, passes) = null_rates(rollout, alpha, 1_000);
        assert_rate_at_most("false rollback at R = 1", fails, NULL_RUNS, alpha);
        println!("passes at R = 1: {passes}/{NULL_RUNS}");
        assert!(passes as f64 >= 0.5 * NULL_RUNS as f64, "{passes}");
    }

    #[test]
    fn a_canary_exactly_at_the_margin_is_neither_rolled_back_nor_promoted_too_often() {
        let alpha = 0.05;
        for (errors, model, seed) in [
            (Errors::Bernoulli, "Bernoulli requests", 2_000_000),
            (Errors::Poisson, "Poisson counts", 3_000_000),
        ] {
            let rollout = Rollout {
                requests_per_second: 20.0,
                baseline_error_rate: 0.01,
                ratio: 1.5,
                max_ratio: 1.5,
                errors,
            };
            let (fails, passes) = null_rates(rollout, alpha, seed);
            let what = |decision: &str| format!("{decision} at R = maxRatio, {model}");
            assert_rate_at_most(&what("false rollback"), fails, NULL_RUNS, alpha);
            assert_rate_at_most(&what("wrong promotion"), passes, NULL_RUNS, alpha);
        }
    }

    #[test]
    fn the_error_ceiling_is_rarely_crossed_by_a_canary_at_the_ceiling() {
        // 200 canary requests per look at exactly 5% errors, 240 looks.
        let alpha = 0.05;
        let threshold = -f64::ln(alpha);
        let lambda0 = (0.05f64 / 0.95).ln();
        let mut breaches = 0;
        for run in 0..NULL_RUNS {
            let mut rng = ChaCha8Rng::seed_from_u64(4_000_000 + run as u64);
            let (mut x, mut n) = (0u64, 0.0);
            for _ in 0..LOOKS {
                x += binomial(&mut rng, 200, 0.05);
                n += 200.0;
                if ln_ceiling_e(x, n, lambda0) >= threshold {
                    breaches += 1;
                    break;
                }
            }
        }
        assert_rate_at_most(
            "false ceiling breach at p = maxRate",
            breaches,
            NULL_RUNS,
            alpha,
        );
    }

    fn detection(rollout: Rollout, alpha: f64, seed: u64) -> (usize, Vec<usize>) {
        let mut times = Vec::new();
        for run in 0..POWER_RUNS {
            if let Some(t) = rollout.run(seed + run as u64, alpha, false, true).failed_at {
                times.push(t);
            }
        }
        times.sort_unstable();
        (times.len(), times)
    }

    #[test]
    fn real_regressions_are_caught() {
        // Production settings: confidence 0.99 over two metrics, 90% of a metric's α to the ratio.
        let alpha = AlphaSplit::new(metric_alpha(0.99, 2).unwrap(), true).ratio;
        for (ratio, max_ratio, rps, seed) in
            [(2.0, 1.5, 50.0, 5_000_000u64), (5.0, 1.2, 20.0, 6_000_000)]
        {
            let rollout = Rollout {
                requests_per_second: rps,
                baseline_error_rate: 0.01,
                ratio,
                max_ratio,
                errors: Errors::Bernoulli,
            };
            let (detected, times) = detection(rollout, alpha, seed);
            let (lo, hi) = wilson(detected, POWER_RUNS);
            let median = times
                .get(times.len() / 2)
                .map_or(f64::NAN, |&t| (t + 1) as f64 / 2.0);
            let p90 = times
                .get(times.len() * 9 / 10)
                .map_or(f64::NAN, |&t| (t + 1) as f64 / 2.0);
            println!(
                "R = {ratio} vs maxRatio {max_ratio} at {rps} req/s: detected {detected}/{POWER_RUNS} \
                 (95% [{lo:.3}, {hi:.3}]), median {median} min, p90 {p90} min"
            );
            assert!(
                detected as f64 >= 0.9 * POWER_RUNS as f64,
                "R = {ratio} vs {max_ratio}: detected in {detected} of {POWER_RUNS} runs \
                 (95% interval [{lo:.3}, {hi:.3}]), below 90%"
            );
        }
    }

    #[test]
    fn the_planned_decision_keeps_false_rollbacks_at_the_margin_within_alpha() {
        // The union of the e-process at every look and the exact test at the last one.
        let alpha = 0.05;
        for (errors, model, seed) in [
            (Errors::Bernoulli, "Bernoulli requests", 7_000_000),
            (Errors::Poisson, "Poisson counts", 8_000_000),
        ] {
            let rollout = Rollout {
                requests_per_second: 20.0,
                baseline_error_rate: 0.01,
                ratio: 1.5,
                max_ratio: 1.5,
                errors,
            };
            let fails = (0..NULL_RUNS)
                .filter(|&run| rollout.run_planned(seed + run as u64, alpha).0)
                .count();
            let what = format!("false rollback at R = maxRatio with a planned decision, {model}");
            assert_rate_at_most(&what, fails, NULL_RUNS, alpha);
        }
    }

    #[test]
    fn the_planned_decision_catches_what_the_e_process_alone_misses() {
        // A 2× regression against maxRatio 1.5 at 2 req/s: little information in 2 hours.
        let alpha = 0.01;
        let rollout = Rollout {
            requests_per_second: 2.0,
            baseline_error_rate: 0.01,
            ratio: 2.0,
            max_ratio: 1.5,
            errors: Errors::Bernoulli,
        };
        let (alone, _) = detection(rollout, alpha, 9_000_000);
        let (mut planned, mut by_planned_test) = (0, 0);
        for run in 0..POWER_RUNS {
            let (failed, planned_test) = rollout.run_planned(9_000_000 + run as u64, alpha);
            planned += usize::from(failed);
            by_planned_test += usize::from(planned_test);
        }
        println!(
            "detected: e-process alone {alone}/{POWER_RUNS}, with the planned decision \
             {planned}/{POWER_RUNS} ({by_planned_test} by the planned test)"
        );
        // Same streams: more detections, and a tenth of the runs more at least.
        assert!(
            planned >= alone + POWER_RUNS / 10,
            "planned {planned}, alone {alone} of {POWER_RUNS}"
        );
    }
}
