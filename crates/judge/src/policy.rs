//! The error budget and how to judge one metric.
//!
//! `α = 1 − confidence` is split equally across metrics (Bonferroni, [`metric_alpha`]), and a
//! metric with a statistical ceiling gives [`CEILING_ALPHA_SHARE`] of its share to the ceiling
//! test and the rest to the ratio test ([`AlphaSplit`]).

use crate::ceiling::Ceiling;
use crate::error::JudgeError;
use crate::evidence::Evidence;

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

/// Default minimum number of events (both arms, from intervals where both arms had exposure)
/// before a pass. The pass test itself already needs several baseline events, this floor
/// keeps a pass from resting on one burst.
pub const DEFAULT_MIN_EVENTS: u64 = 10;

/// Default minimum number of observed intervals before a pass: evidence must span a few looks.
pub const DEFAULT_MIN_INTERVALS: u32 = 3;

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

/// How to judge one metric: its error budget, ceiling and the minimum evidence for a pass.
/// Built from the spec at each look; validated on construction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub(crate) alpha: f64,
    pub(crate) ceiling: Option<Ceiling>,
    pub(crate) min_events: u64,
    pub(crate) min_intervals: u32,
    pub(crate) planned: bool,
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
    pub(crate) fn enough_for_a_pass(&self, evidence: &Evidence) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
