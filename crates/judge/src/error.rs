//! What can go wrong in the judge: bad settings, bad counts, and damaged stored evidence. Each
//! message names the field or the arm and carries the rejected value.

use crate::kind::{Arm, MetricKind};

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

#[cfg(test)]
mod tests {
    use crate::ceiling::Ceiling;
    use crate::evidence::Evidence;
    use crate::fixtures::errors;
    use crate::kind::MetricKind;
    use crate::policy::{Policy, metric_alpha};
    use crate::verdict::judge;

    use super::*;

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
}
