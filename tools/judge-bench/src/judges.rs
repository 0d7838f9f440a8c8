//! The judges under comparison: re-implementations of the peers' decision rules, Firebreak's
//! judge (through the controller's own code path, see [`super::operator`]) and the oracle.
//!
//! Every judge sees the same [`Stream`] and, at a given cadence, the same [`Look`]s. At each
//! look it may roll back; at the horizon (4 hours, the end of the canary's steps) it promotes,
//! holds (inconclusive), or rolls back. Counts are exact per window, as if Prometheus' counters
//! were read at the window's edges (no `increase()` extrapolation, no scrape jitter).
//!
//! The peers' thresholds are fixed, as their users configure them: a multiple ([`PEER_FACTOR`])
//! of the baseline's *configured* rate (its error fraction, or crashes per pod-second), never of
//! what the baseline does during the canary.

pub use super::judge::{Final, Judge, Settings};
use super::kayenta::KayentaStyle;
use super::operator::FirebreakJudge;
use super::sim::{BLOCK_SECONDS, BLOCKS, Look, Scenario, Stream};
use super::stats::{binomial_pmf, normal_quantile};

/// The peers' fixed threshold as a multiple of the baseline's configured rate: 5× (a canary
/// whose 5xx rate over the window exceeds 5 × 1% = 5% fails the measurement).
pub const PEER_FACTOR: f64 = 5.0;

/// Argo Rollouts' `consecutiveErrorLimit` default: a metric errors after more than 4
/// consecutive measurement errors (`DefaultConsecutiveErrorLimit` in `utils/defaults`), which
/// aborts the rollout like a failure.
pub const ARGO_CONSECUTIVE_ERROR_LIMIT: u32 = 4;

/// The window of Flagger's builtin `request-success-rate` query, seconds (`interval: 1m` in
/// Flagger's documentation and tutorials).
pub const FLAGGER_METRIC_WINDOW: u32 = 60;

/// The judges of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JudgeKind {
    /// Argo Rollouts-style, `failureLimit: 0`.
    ArgoF0,
    /// Argo Rollouts-style, `failureLimit: 3`.
    ArgoF3,
    /// Argo Rollouts-style, `failureLimit: 3`, NaN (no canary requests) fails the measurement.
    ArgoF3NanFails,
    /// Argo Rollouts-style at a 2× threshold, `failureLimit: 3`.
    Argo2xF3,
    /// Flagger-style.
    Flagger,
    /// Kayenta-style.
    Kayenta,
    /// A fixed-horizon test repeated at every look.
    NaiveZ,
    /// Firebreak's judge.
    Firebreak,
    /// The single exact test at the horizon.
    Oracle,
}

impl JudgeKind {
    /// Every judge, in report order.
    pub const ALL: [JudgeKind; 9] = [
        JudgeKind::ArgoF0,
        JudgeKind::ArgoF3,
        JudgeKind::ArgoF3NanFails,
        JudgeKind::Argo2xF3,
        JudgeKind::Flagger,
        JudgeKind::Kayenta,
        JudgeKind::NaiveZ,
        JudgeKind::Firebreak,
        JudgeKind::Oracle,
    ];

    /// The judge's short name in tables and the CSV.
    pub fn name(&self) -> &'static str {
        match self {
            JudgeKind::ArgoF0 => "argo-f0",
            JudgeKind::ArgoF3 => "argo-f3",
            JudgeKind::ArgoF3NanFails => "argo-f3-nanfail",
            JudgeKind::Argo2xF3 => "argo-2x-f3",
            JudgeKind::Flagger => "flagger",
            JudgeKind::Kayenta => "kayenta",
            JudgeKind::NaiveZ => "naive-z",
            JudgeKind::Firebreak => "firebreak",
            JudgeKind::Oracle => "oracle",
        }
    }

    /// One line on the rule, for the report's legend.
    pub fn describe(&self) -> &'static str {
        match self {
            JudgeKind::ArgoF0 => {
                "Argo Rollouts AnalysisTemplate, `successCondition: isNaN(result[0]) || result[0] <= 5×baseline` on the canary's rate over each look's window, `failureLimit: 0`"
            }
            JudgeKind::ArgoF3 => {
                "as argo-f0 with `failureLimit: 3` (abort on the 4th failed measurement)"
            }
            JudgeKind::ArgoF3NanFails => {
                "as argo-f3 with the documented plain `successCondition: result[0] <= 5×baseline`: a window without canary requests (NaN) fails the measurement"
            }
            JudgeKind::Argo2xF3 => "as argo-f3 with a 2×baseline threshold",
            JudgeKind::Flagger => {
                "Flagger `thresholdRange` on the canary's rate over the last 1 minute at every look; no data is a failed check; rollback at `threshold` failed checks (5 at 1-minute looks, 10 at 10-second looks)"
            }
            JudgeKind::Kayenta => {
                "Kayenta NetflixACAJudge: Mann-Whitney on 1-minute rates since the start (98% interval, tolerance 0.25, outlier filter), judged every 30 minutes, marginal 75 / pass 95"
            }
            JudgeKind::NaiveZ => {
                "one-sided Pearson score (chi-square) test of R <= maxRatio on cumulative counts at every look, alpha = 1 - confidence, once expected counts reach 5"
            }
            JudgeKind::Firebreak => {
                "Firebreak's judge through analysis::assess (confidence 0.99), its planned decision at the steps' end (the horizon): Fail = rollback, Pass at the horizon = promotion"
            }
            JudgeKind::Oracle => {
                "one exact conditional binomial test at the horizon on all the data (per weight phase), alpha = 1 - confidence, both directions"
            }
        }
    }

    /// The judge ignores the look cadence and missing looks (Kayenta reads its own 1-minute
    /// series every 30 minutes; the oracle queries once at the horizon): its outcome on a
    /// stream is the same at every cadence, so the runner computes it once per stream.
    pub fn ignores_cadence(&self) -> bool {
        matches!(self, JudgeKind::Kayenta | JudgeKind::Oracle)
    }

    /// A fresh judge for one run of `scenario` looked at every `cadence` seconds.
    pub fn build(&self, scenario: &Scenario, cadence: u32, settings: &Settings) -> Box<dyn Judge> {
        let base = scenario.baseline_rate();
        let margin = settings.margin(scenario);
        match self {
            JudgeKind::ArgoF0 => Box::new(ArgoStyle::new(PEER_FACTOR * base, 0, false)),
            JudgeKind::ArgoF3 => Box::new(ArgoStyle::new(PEER_FACTOR * base, 3, false)),
            JudgeKind::ArgoF3NanFails => Box::new(ArgoStyle::new(PEER_FACTOR * base, 3, true)),
            JudgeKind::Argo2xF3 => Box::new(ArgoStyle::new(2.0 * base, 3, false)),
            JudgeKind::Flagger => Box::new(FlaggerStyle::new(
                PEER_FACTOR * base,
                FlaggerStyle::threshold_for(cadence),
            )),
            JudgeKind::Kayenta => Box::new(KayentaStyle::new()),
            JudgeKind::NaiveZ => Box::new(NaiveZ::new(margin, settings.alpha())),
            JudgeKind::Firebreak => Box::new(FirebreakJudge::new(scenario, cadence, settings)),
            JudgeKind::Oracle => Box::new(Oracle::new(margin, settings.alpha())),
        }
    }
}

/// Argo Rollouts-style analysis: a background AnalysisRun whose metric is measured every look
/// (`interval` = the look cadence) as the canary's event rate over that window, e.g. for
/// errors `sum(increase(5xx[i])) / sum(increase(requests[i]))`.
///
/// Rules, from the Argo Rollouts analysis documentation ("Failure Conditions and Failure
/// Limit", "Handling Metric Results: NaN and Infinity / Empty array") and
/// `analysis/analysis.go` (`assessMetricStatus`):
/// - the measurement fails when `successCondition` is false: `result[0] <= threshold`, or with
///   the documented NaN guard `isNaN(result[0]) || result[0] <= threshold`. A window without
///   canary requests gives 0/0 = NaN: `NaN <= t` is false, so without the guard it fails;
/// - the metric (and the rollout) fails when failed measurements exceed `failureLimit`;
/// - a query that returns no data (`[]`) makes `result[0]` an evaluation error: the
///   measurement errors, and more than `consecutiveErrorLimit` (default 4) consecutive errors
///   error the run, which aborts the rollout;
/// - with only a `successCondition` there is no inconclusive measurement, so
///   `inconclusiveLimit` never applies; the rollout is promoted when its steps finish.
#[derive(Clone, Debug, PartialEq)]
pub struct ArgoStyle {
    threshold: f64,
    failure_limit: u32,
    nan_fails: bool,
    failed: u32,
    consecutive_errors: u32,
}

impl ArgoStyle {
    /// `threshold` is an event rate (errors per request, restarts per pod-second).
    pub fn new(threshold: f64, failure_limit: u32, nan_fails: bool) -> ArgoStyle {
        ArgoStyle {
            threshold,
            failure_limit,
            nan_fails,
            failed: 0,
            consecutive_errors: 0,
        }
    }
}

impl Judge for ArgoStyle {
    fn look(&mut self, look: &Look, stream: &Stream) -> bool {
        if look.missing {
            self.consecutive_errors += 1;
            return self.consecutive_errors > ARGO_CONSECUTIVE_ERROR_LIMIT;
        }
        self.consecutive_errors = 0;
        let w = stream.sum(look.blocks.clone());
        let failed = if w.canary_exposure == 0 {
            self.nan_fails
        } else {
            w.canary_events as f64 / w.canary_exposure as f64 > self.threshold
        };
        if failed {
            self.failed += 1;
        }
        self.failed > self.failure_limit
    }

    fn finish(&mut self, _: &Stream) -> Final {
        Final::Promote
    }
}

/// Flagger-style analysis: at every look (`analysis.interval` = the cadence) the canary's
/// rate over the last [`FLAGGER_METRIC_WINDOW`] seconds is checked against `thresholdRange`
/// (the builtin `request-success-rate` with `min` = 100 − threshold, in percent).
///
/// Rules, from Flagger's "Metrics Analysis" docs and `pkg/controller/scheduler_metrics.go`:
/// a query with no values ("no values found … probably … is not receiving traffic", which
/// includes a window without canary requests, and a failed query) is a failed check, like a
/// value outside the range; failed checks accumulate in `status.failedChecks`, and at the start
/// of the next iteration the canary is rolled back once they reach `analysis.threshold`. The
/// threshold follows Flagger's examples: 5 with 1-minute looks (docs), 10 with 10-second looks
/// (the Skipper tutorial).
#[derive(Clone, Debug, PartialEq)]
pub struct FlaggerStyle {
    threshold: f64,
    max_failed: u32,
    failed: u32,
}

impl FlaggerStyle {
    /// `threshold` is an event rate; `max_failed` is `analysis.threshold`.
    pub fn new(threshold: f64, max_failed: u32) -> FlaggerStyle {
        FlaggerStyle {
            threshold,
            max_failed,
            failed: 0,
        }
    }

    /// `analysis.threshold` for looks every `cadence` seconds.
    pub fn threshold_for(cadence: u32) -> u32 {
        if cadence < 60 { 10 } else { 5 }
    }
}

impl Judge for FlaggerStyle {
    fn look(&mut self, look: &Look, stream: &Stream) -> bool {
        if self.failed >= self.max_failed {
            return true;
        }
        let end = look.blocks.end;
        let start = end.saturating_sub((FLAGGER_METRIC_WINDOW / BLOCK_SECONDS) as usize);
        let w = stream.sum(start..end);
        let ok = !look.missing
            && w.canary_exposure > 0
            && w.canary_events as f64 / w.canary_exposure as f64 <= self.threshold;
        if !ok {
            self.failed += 1;
        }
        false
    }

    fn finish(&mut self, _: &Stream) -> Final {
        if self.failed >= self.max_failed {
            Final::Rollback
        } else {
            Final::Promote
        }
    }
}

/// `θ0 = ρ R0 / (ρ R0 + 1 − ρ)`: the probability that an event came from the canary when its
/// share of exposure is `ρ` and its rate is `R0` times the baseline's (the judge's model, the
/// crate docs of `firebreak_judge`).
pub fn canary_share(rho: f64, r0: f64) -> f64 {
    rho * r0 / (rho * r0 + 1.0 - rho)
}

/// The naive approach: a fixed-horizon test repeated at every look. The one-sided Pearson
/// score test (the signed square root of the 2×2 chi-square for the ratio null) of
/// `R ≤ maxRatio` on the cumulative counts: with canary events `x` of `s` and canary exposure
/// share `ρ`, `z = (x − s θ0) / sqrt(s θ0 (1 − θ0))`, rollback when `z > Φ⁻¹(1 − α)`. As the
/// textbooks ask, it tests only once the expected counts `s θ0` and `s (1 − θ0)` reach 5
/// (Cochran 1954). Missing looks are skipped; the next cumulative query sees their events.
/// Promotes at the horizon when it never fired.
#[derive(Clone, Debug, PartialEq)]
pub struct NaiveZ {
    r0: f64,
    z: f64,
}

impl NaiveZ {
    /// Tests `R ≤ r0` at level `alpha` at every look.
    pub fn new(r0: f64, alpha: f64) -> NaiveZ {
        NaiveZ {
            r0,
            z: normal_quantile(1.0 - alpha),
        }
    }
}

impl Judge for NaiveZ {
    fn look(&mut self, look: &Look, stream: &Stream) -> bool {
        if look.missing {
            return false;
        }
        let c = stream.sum(0..look.blocks.end);
        let (n, m) = (c.canary_exposure as f64, c.baseline_exposure as f64);
        if n == 0.0 || m == 0.0 {
            return false;
        }
        let theta = canary_share(n / (n + m), self.r0);
        let s = (c.canary_events + c.baseline_events) as f64;
        if s * theta < 5.0 || s * (1.0 - theta) < 5.0 {
            return false;
        }
        let z = (c.canary_events as f64 - s * theta) / (s * theta * (1.0 - theta)).sqrt();
        z > self.z
    }

    fn finish(&mut self, _: &Stream) -> Final {
        Final::Promote
    }
}

/// The oracle: one exact conditional binomial test at the horizon with all the data. Within
/// weight phase `k` (one phase, or three with stepped weights) the canary's events given the
/// phase's total `s_k` are `Binomial(s_k, θ_k)` with `θ_k = θ0(ρ_k, R0)`, `ρ_k` the canary's
/// share of the phase's exposure; the phases are independent, so the canary's total is their
/// convolution, computed exactly ([`binomial_pmf`]). Rollback when
/// `P(X ≥ x | R = R0) ≤ α`; promotion when `P(X ≤ x | R = R0) ≤ α` (the mirror-image test of
/// `R ≥ R0`, as Firebreak's pass); otherwise inconclusive. It ignores missing looks (its one
/// query is at the horizon). The most a single test at one look can know.
#[derive(Clone, Debug, PartialEq)]
pub struct Oracle {
    r0: f64,
    alpha: f64,
}

impl Oracle {
    /// Tests at `R0 = r0` with error probability `alpha` each way.
    pub fn new(r0: f64, alpha: f64) -> Oracle {
        Oracle { r0, alpha }
    }

    /// `(P(X ≥ x), P(X ≤ x))` under `R = R0` for the canary's total `x` of `stream`.
    pub fn tails(&self, stream: &Stream) -> (f64, f64) {
        let phases = stream.weights.phases();
        let mut law = super::stats::Pmf::zero();
        let mut x = 0;
        for p in 0..phases {
            let range = p * BLOCKS / phases..(p + 1) * BLOCKS / phases;
            let c = stream.sum(range);
            let (n, m) = (c.canary_exposure as f64, c.baseline_exposure as f64);
            x += c.canary_events;
            let s = c.canary_events + c.baseline_events;
            let theta = if n + m > 0.0 {
                canary_share(n / (n + m), self.r0)
            } else {
                0.0
            };
            law = law.convolve(&binomial_pmf(s, theta));
        }
        (law.upper_tail(x), law.lower_tail(x))
    }
}

impl Judge for Oracle {
    fn look(&mut self, _: &Look, _: &Stream) -> bool {
        false
    }

    fn finish(&mut self, stream: &Stream) -> Final {
        let (upper, lower) = self.tails(stream);
        if upper <= self.alpha {
            Final::Rollback
        } else if lower <= self.alpha {
            Final::Promote
        } else {
            Final::Inconclusive
        }
    }
}
