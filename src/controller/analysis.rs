//! The observe side of canary analysis: when a look is due, ask the providers (Prometheus, pod
//! status) for the window's counts and fold them in with the pure [`crate::analysis::assess`].

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use tracing::warn;

use crate::analysis::assess::{self, Gate, Observation, Schedule};
use crate::analysis::crashes::PodCrashes;
use crate::analysis::prometheus::PrometheusPool;
use crate::analysis::provider::{Arms, Look, MetricProvider, ProviderError};
use crate::analysis::template::Variables;
use crate::api::{AnalysisOutcome, AnalysisStatus, Rollout};

use super::revisions::{baseline_hash, template_hash};
use super::second_wave;
use super::validate::{ValidSpec, planned_duration};
use crate::api::Incident;
use firebreak_judge::Counts;

/// The analysis as the decision sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalysisInput {
    /// The analysis status to record.
    pub status: AnalysisStatus,
    /// What the analysis allows.
    pub gate: Gate,
    /// When the next look is due.
    pub next_look: Duration,
}

/// The Gate a previous look left behind.
fn gate_of(status: &AnalysisStatus) -> Gate {
    let message = status.message.clone().unwrap_or_default();
    match status.outcome {
        Some(AnalysisOutcome::Pass) => Gate::Pass,
        Some(AnalysisOutcome::Fail) => Gate::Fail(message),
        Some(AnalysisOutcome::Unavailable) => Gate::Unavailable(message),
        Some(AnalysisOutcome::CommonMode) => Gate::CommonMode(message),
        Some(AnalysisOutcome::Inconclusive) | None => Gate::Inconclusive(message),
    }
}

/// Looks at the canary if analysis is configured, a canary of the spec's template is running with
/// a non-zero weight, and a look is due. `None` when there is nothing to analyse. Error-rate
/// metrics are measured through `prometheus` (the controller's pooled clients), crash metrics
/// from the pod cache `pods`. A Prometheus that cannot answer is counted in `metrics` as
/// `PrometheusUnavailable`.
pub async fn observe(
    pods: &Store<Pod>,
    prometheus: &PrometheusPool,
    metrics: &crate::telemetry::Metrics,
    rollout: &Rollout,
    spec: &ValidSpec,
    now: Timestamp,
) -> Option<AnalysisInput> {
    let analysis = rollout.spec.analysis.as_ref()?;
    let status = rollout.status.as_ref()?;
    let canary = template_hash(&rollout.name_any(), &spec.template);
    let canary_runs =
        status.canary_revision.as_deref() == Some(canary.as_str()) && status.canary_weight > 0;
    // During a bake the promoted revision is judged against the previous one's remaining pod.
    let baking = status
        .bake
        .as_ref()
        .filter(|b| b.revision == canary && !canary_runs);
    let baseline = match (canary_runs, baking) {
        (true, _) => {
            let stable = status.stable_revision.clone()?;
            if spec.baseline {
                baseline_hash(&stable)
            } else {
                stable
            }
        }
        (false, Some(bake)) => bake.previous.clone(),
        (false, None) => return None,
    };
    let previous = status.analysis.as_ref();
    let every = assess::interval(analysis);

    match assess::schedule(previous, analysis, &canary, now) {
        Schedule::Start => {
            // The plan's end: the bake's, or the canary steps'.
            let plan = match baking {
                Some(_) => spec.bake,
                None => planned_duration(&spec.steps),
            };
            let decision_at = assess::decision_at(analysis, now, plan);
            return Some(match assess::start(analysis, &canary, now, decision_at) {
                Ok(status) => AnalysisInput {
                    gate: gate_of(&status),
                    status,
                    next_look: every,
                },
                Err(why) => AnalysisInput {
                    status: AnalysisStatus {
                        revision: canary,
                        ..AnalysisStatus::default()
                    },
                    gate: Gate::Unavailable(why),
                    next_look: every,
                },
            });
        }
        Schedule::Wait(wait) => {
            let previous = previous?.clone();
            return Some(AnalysisInput {
                gate: gate_of(&previous),
                status: previous,
                next_look: wait,
            });
        }
        Schedule::Look(_) => {}
    }
    let previous = previous?;

    let name = rollout.name_any();
    let namespace = rollout.namespace().unwrap_or_default();
    let crashes = PodCrashes::new(pods, &previous.pod_restarts);
    let mut observations = Vec::with_capacity(analysis.metrics.len());
    for metric in &analysis.metrics {
        let window = assess::window_seconds(previous, &metric.name, now);
        let interval = format!("{window}s");
        let arms = Arms {
            canary: Variables {
                revision: &canary,
                arm: "canary",
                namespace: &namespace,
                rollout: &name,
                interval: &interval,
            },
            baseline: Variables {
                revision: &baseline,
                arm: "baseline",
                namespace: &namespace,
                rollout: &name,
                interval: &interval,
            },
        };
        // The spec's validation gives every metric exactly one kind.
        let provider: &dyn MetricProvider = if metric.error_rate.is_some() {
            prometheus
        } else {
            &crashes
        };
        let look = Look {
            metric,
            arms: &arms,
            at: now,
            window_seconds: window,
        };
        let measured = provider.measure(look).await;
        if let Err(ProviderError::Prometheus(e)) = &measured {
            let error = super::Error::Prometheus {
                address: e.address().to_string(),
                message: e.to_string(),
            };
            warn!(error = %error, metric = %metric.name, "analysis look without data");
            metrics.record_error(error.metric_label());
        }
        observations.push(Observation::from(measured));
    }
    let assessment = assess::assess(previous, analysis, &observations, now);
    let next_look = match assess::schedule(Some(&assessment.status), analysis, &canary, now) {
        Schedule::Wait(wait) => wait,
        _ => every,
    };
    Some(AnalysisInput {
        status: assessment.status,
        gate: assessment.gate,
        next_look,
    })
}

/// The stable's errors and requests over the second-wave watch of `incident` that ended at
/// `until` (see [`second_wave::Step::Measure`]): the stable revision's counts in the canary arm
/// of [`Counts`] (both arms are asked the same query), or why they could not be measured.
pub async fn second_wave(
    prometheus: &PrometheusPool,
    rollout: &Rollout,
    incident: &Incident,
    until: Timestamp,
    window: Duration,
) -> Result<Counts, String> {
    let Some(error_rate) = second_wave::metric(rollout).and_then(|m| m.error_rate.as_ref()) else {
        return Err("no error-rate analysis to compare with".into());
    };
    let interval = format!("{}s", window.as_secs());
    let vars = second_wave::variables(incident, &interval);
    let arms = Arms {
        canary: vars.clone(),
        baseline: vars,
    };
    prometheus
        .error_counts(&error_rate.prometheus, &arms, until.as_second())
        .await
        .map_err(|e| e.to_string())
}
