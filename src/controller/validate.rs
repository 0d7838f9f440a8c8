//! Checks of a Rollout's spec that the CRD schema and its CEL rules cannot express, turning the
//! spec into the plain values the decision works with.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::{InvalidDuration, RolloutSpec};

use super::decide::{DEFAULT_PROGRESS_DEADLINE, DEFAULT_REVISION_HISTORY_LIMIT};

/// A canary step, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Canary weight in percent, 0–100.
    SetWeight(i32),
    /// Wait for the duration, or (None) until `promote`.
    Pause(Option<Duration>),
}

/// How long the canary steps take when nothing holds them: the sum of the pauses' durations.
/// `None` when a pause waits for `promote` (the plan has no fixed end). The analysis's planned
/// decision look is this long after the canary starts ([`crate::analysis::assess::decision_at`]).
pub fn planned_duration(steps: &[StepKind]) -> Option<Duration> {
    steps
        .iter()
        .try_fold(Duration::ZERO, |total, step| match step {
            StepKind::SetWeight(_) => Some(total),
            StepKind::Pause(pause) => pause.map(|d| total.saturating_add(d)),
        })
}

/// A spec that passed validation, in the decision's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    /// Pods at steady state, ≥ 0.
    pub replicas: i32,
    /// The pod template.
    pub template: PodTemplateSpec,
    /// The canary steps, at least one.
    pub steps: Vec<StepKind>,
    /// Run a dedicated baseline ReplicaSet.
    pub baseline: bool,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.progressDeadlineSeconds`.
    pub progress_deadline: Duration,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: usize,
    /// The selector as a label-selector string, e.g. `app=checkout`.
    pub selector_string: String,
    /// `spec.bake.duration`.
    pub bake: Option<Duration>,
    /// `spec.strategy.canary.maxDuration`.
    pub max_duration: Option<Duration>,
}

/// A spec the controller cannot act on. The message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A duration field does not parse.
    #[error("{field}: {source}")]
    Duration {
        /// Path of the field, e.g. `spec.strategy.canary.steps[1].pause.duration`.
        field: String,
        /// What was wrong.
        source: InvalidDuration,
    },
    /// Any other invalid field.
    #[error("{field}: {message}")]
    Field {
        /// Path of the field.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl SpecError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError::Field {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Validates `spec`. The first problem found is returned.
pub fn validate(spec: &RolloutSpec) -> Result<ValidSpec, SpecError> {
    if spec.replicas < 0 {
        return Err(SpecError::field(
            "spec.replicas",
            format!("must be 0 or more, got {}", spec.replicas),
        ));
    }
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    if match_labels.is_empty() {
        return Err(SpecError::field(
            "spec.selector.matchLabels",
            "must name at least one label of spec.template.metadata.labels",
        ));
    }
    for (key, value) in &match_labels {
        if template_labels.get(key) != Some(value) {
            return Err(SpecError::field(
                "spec.selector.matchLabels",
                format!(
                    "{key}={value} is not among spec.template.metadata.labels; add it there or remove it from the selector"
                ),
            ));
        }
    }
    if spec
        .selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(SpecError::field(
            "spec.selector.matchExpressions",
            "is not supported; select pods with spec.selector.matchLabels",
        ));
    }

    let canary = &spec.strategy.canary;
    if canary.steps.is_empty() {
        return Err(SpecError::field(
            "spec.strategy.canary.steps",
            "needs at least one step, e.g. `- setWeight: 20` then `- pause: {duration: 5m}`",
        ));
    }
    let mut steps = Vec::with_capacity(canary.steps.len());
    for (i, step) in canary.steps.iter().enumerate() {
        let field = format!("spec.strategy.canary.steps[{i}]");
        let kind = match (step.set_weight, &step.pause) {
            (Some(w), None) if (0..=100).contains(&w) => StepKind::SetWeight(w),
            (Some(w), None) => {
                return Err(SpecError::field(
                    format!("{field}.setWeight"),
                    format!("must be a percentage 0-100, got {w}"),
                ));
            }
            (None, Some(pause)) => StepKind::Pause(match &pause.duration {
                None => None,
                Some(d) => Some(d.to_duration().map_err(|source| SpecError::Duration {
                    field: format!("{field}.pause.duration"),
                    source,
                })?),
            }),
            _ => {
                return Err(SpecError::field(
                    field,
                    "set exactly one of setWeight or pause",
                ));
            }
        };
        steps.push(kind);
    }

    let progress_deadline = match spec.progress_deadline_seconds {
        None => DEFAULT_PROGRESS_DEADLINE,
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        Some(s) => {
            return Err(SpecError::field(
                "spec.progressDeadlineSeconds",
                format!("must be at least 1, got {s}"),
            ));
        }
    };
    let revision_history_limit = match spec.revision_history_limit {
        None => DEFAULT_REVISION_HISTORY_LIMIT,
        Some(n) if n >= 0 => n as usize,
        Some(n) => {
            return Err(SpecError::field(
                "spec.revisionHistoryLimit",
                format!("must be 0 or more, got {n}"),
            ));
        }
    };
    if let Some(analysis) = &spec.analysis
        && let Some(interval) = &analysis.interval
    {
        interval
            .to_duration()
            .map_err(|source| SpecError::Duration {
                field: "spec.analysis.interval".into(),
                source,
            })?;
    }
    let bake = match &spec.bake {
        Some(bake) => Some(
            bake.duration
                .to_duration()
                .map_err(|source| SpecError::Duration {
                    field: "spec.bake.duration".into(),
                    source,
                })?,
        ),
        None => None,
    };
    let max_duration = match &canary.max_duration {
        Some(d) => Some(d.to_duration().map_err(|source| SpecError::Duration {
            field: "spec.strategy.canary.maxDuration".into(),
            source,
        })?),
        None => None,
    };

    let selector_string = match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(ValidSpec {
        replicas: spec.replicas,
        template: spec.template.clone(),
        steps,
        baseline: canary.baseline,
        paused: spec.paused,
        progress_deadline,
        revision_history_limit,
        selector_string,
        bake,
        max_duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planned_duration_is_the_sum_of_the_pauses_unless_one_waits_for_promote() {
        let minutes = |m: u64| StepKind::Pause(Some(Duration::from_secs(60 * m)));
        let steps = [
            StepKind::SetWeight(10),
            minutes(5),
            StepKind::SetWeight(50),
            minutes(30),
        ];
        assert_eq!(planned_duration(&steps), Some(Duration::from_secs(35 * 60)));
        assert_eq!(
            planned_duration(&[StepKind::SetWeight(10)]),
            Some(Duration::ZERO)
        );
        let manual = [StepKind::SetWeight(10), minutes(5), StepKind::Pause(None)];
        assert_eq!(planned_duration(&manual), None);
    }
}
