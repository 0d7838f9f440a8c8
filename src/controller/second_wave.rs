//! The second-wave check: after a rollback, keep watching the stable revision for a short window
//! and record whether its error rate went back to its level during the canary. If it did not,
//! the problem is probably not the rolled-back change, and people are told so.

use std::time::Duration;

use firebreak_judge::{Counts, Evidence, MetricKind, Policy, Verdict, judge};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::warn;

use crate::analysis::assess;
use crate::analysis::prometheus::{Arms, error_counts};
use crate::analysis::template::Variables;
use crate::api::{Incident, Phase, Rollout, SecondWave, SecondWaveState, Triage};

use super::Context;

/// Shortest second-wave window.
pub const MIN_WINDOW: Duration = Duration::from_secs(10);
/// Longest second-wave window.
pub const MAX_WINDOW: Duration = Duration::from_secs(600);

/// The window: four analysis intervals, between [`MIN_WINDOW`] and [`MAX_WINDOW`].
pub fn window(rollout: &Rollout) -> Duration {
    let interval = rollout
        .spec
        .analysis
        .as_ref()
        .map_or(assess::DEFAULT_INTERVAL, assess::interval);
    (interval * 4).clamp(MIN_WINDOW, MAX_WINDOW)
}

/// Whether the stable recovered: `false` only when the judge finds, with confidence
/// `1 − alpha`, that its error rate after the rollback (`errors_after` of `requests_after`) is more
/// than `max_ratio` times its rate during the canary (`errors_before` of `requests_before`, as the
/// baseline arm measured it). Both rates are estimates, so the comparison is the same conditional
/// test the canary was judged with (the "after" window as one arm, the "before" one as the other);
/// too little data is no evidence of a second wave.
pub fn recovered(
    errors_after: u64,
    requests_after: f64,
    errors_before: u64,
    requests_before: f64,
    max_ratio: f64,
    alpha: f64,
) -> bool {
    let Ok(mut evidence) = Evidence::new(MetricKind::ErrorRate, max_ratio) else {
        return true;
    };
    let counts = Counts {
        canary_events: errors_after.min(requests_after.max(0.0) as u64),
        baseline_events: errors_before.min(requests_before.max(0.0) as u64),
        canary_exposure: requests_after.max(0.0),
        baseline_exposure: requests_before.max(0.0),
    };
    if evidence.observe(&counts).is_err() {
        return true;
    }
    !matches!(
        Policy::new(alpha, None).and_then(|p| judge(&evidence, &p)),
        Ok(Verdict::Fail { .. })
    )
}

/// Runs the check for a rolled-back Rollout whose latest Incident has not finished it. Returns
/// when to look again while the watch runs.
pub async fn check(ctx: &Context, rollout: &Rollout, now: Timestamp) -> Option<Duration> {
    let status = rollout.status.as_ref()?;
    if status.phase != Some(Phase::RolledBack) {
        return None;
    }
    let name = status.incident.clone()?;
    let namespace = rollout.namespace().unwrap_or_default();
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), &namespace);
    let incident = api.get_opt(&name).await.ok()??;
    if incident.spec.triage == Triage::CommonMode {
        return None;
    }
    let params = PatchParams::apply("firebreak-second-wave");
    let write = |wave: SecondWave| {
        let api = api.clone();
        let name = name.clone();
        async move {
            let body = json!({"status": {"secondWave": wave}});
            if let Err(e) = api.patch_status(&name, &params, &Patch::Merge(&body)).await {
                warn!(incident = %name, error = %e, "could not record the second-wave check");
            }
        }
    };
    let wave = incident.status.as_ref().and_then(|s| s.second_wave.clone());
    let length = window(rollout);
    let until = match &wave {
        None => {
            let until = now
                .checked_add(SignedDuration::try_from(length).ok()?)
                .ok()?;
            write(SecondWave {
                state: SecondWaveState::Watching,
                until: Some(Time(until)),
                message: format!(
                    "watching stable revision {} for {}s after the rollback",
                    incident.spec.stable_revision,
                    length.as_secs()
                ),
            })
            .await;
            return Some(length);
        }
        Some(w) if w.state == SecondWaveState::Watching => w.until.clone().map_or(now, |t| t.0),
        Some(_) => return None,
    };
    if now < until {
        return Some(Duration::try_from(until.duration_since(now)).unwrap_or(MIN_WINDOW));
    }

    // The watch is over: compare the stable's error rate now with the baseline's during the canary.
    let metric = rollout
        .spec
        .analysis
        .as_ref()
        .and_then(|a| a.metrics.iter().find(|m| m.error_rate.is_some()));
    let evidence = incident
        .spec
        .location
        .iter()
        .find(|l| Some(&l.metric) == metric.map(|m| &m.name));
    let (state, message) = match (metric.and_then(|m| m.error_rate.as_ref()), evidence) {
        (Some(error_rate), Some(before)) => {
            let interval = format!("{}s", length.as_secs());
            let rollout_name = rollout.name_any();
            let vars = Variables {
                revision: &incident.spec.stable_revision,
                arm: "baseline",
                namespace: &namespace,
                rollout: &rollout_name,
                interval: &interval,
            };
            let arms = Arms {
                canary: vars.clone(),
                baseline: vars,
            };
            match error_counts(&error_rate.prometheus, &arms, until.as_second()).await {
                Ok(after) => {
                    let rate_before = if before.baseline_exposure > 0.0 {
                        before.baseline_events as f64 / before.baseline_exposure
                    } else {
                        0.0
                    };
                    let max_ratio = error_rate
                        .max_ratio
                        .unwrap_or(assess::DEFAULT_ERROR_MAX_RATIO);
                    let rate_after = if after.canary_exposure > 0.0 {
                        after.canary_events as f64 / after.canary_exposure
                    } else {
                        0.0
                    };
                    let numbers = format!(
                        "stable error rate {:.2}% over {} requests in the {}s after the rollback, vs {:.2}% during the canary",
                        rate_after * 100.0,
                        after.canary_exposure,
                        length.as_secs(),
                        rate_before * 100.0
                    );
                    let alpha = 1.0
                        - rollout
                            .spec
                            .analysis
                            .as_ref()
                            .and_then(|a| a.confidence)
                            .unwrap_or(assess::DEFAULT_CONFIDENCE);
                    if recovered(
                        after.canary_events,
                        after.canary_exposure,
                        before.baseline_events,
                        before.baseline_exposure,
                        max_ratio,
                        alpha,
                    ) {
                        (
                            SecondWaveState::Recovered,
                            format!("{numbers}: no evidence of a lasting rise"),
                        )
                    } else {
                        (
                            SecondWaveState::NotRecovered,
                            format!(
                                "{numbers}: still elevated beyond doubt, so the problem is probably not this change; look elsewhere"
                            ),
                        )
                    }
                }
                Err(e) => (
                    SecondWaveState::Unknown,
                    format!("could not measure the stable's error rate: {e}"),
                ),
            }
        }
        _ => (
            SecondWaveState::Unknown,
            "no error-rate analysis to compare with".to_string(),
        ),
    };
    write(SecondWave {
        state,
        until: Some(Time(until)),
        message: message.clone(),
    })
    .await;
    let event = Event {
        type_: if state == SecondWaveState::NotRecovered {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: format!("SecondWave{state}"),
        note: Some(message),
        action: "SecondWaveCheck".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &rollout.object_ref(&())).await {
        warn!(error = %e, "could not publish Event");
    }
    let mut finished = incident;
    finished
        .status
        .get_or_insert_with(Default::default)
        .second_wave = Some(SecondWave {
        state,
        until: Some(Time(until)),
        message: event.note.clone().unwrap_or_default(),
    });
    crate::incident::notify::spawn(
        ctx.client.clone(),
        rollout,
        crate::incident::notify::NotificationEvent::SecondWaveEnded,
        Some(finished),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_needs_evidence_of_a_lasting_rise() {
        // 1.9% after vs 0.9% before, but the "before" is only 9 errors: not evidence enough.
        assert!(recovered(92, 4865.0, 9, 1000.0, 1.5, 0.01));
        assert!(recovered(10, 1000.0, 10, 1000.0, 1.5, 0.01));
        assert!(
            !recovered(60, 1000.0, 10, 1000.0, 1.5, 0.01),
            "6x the rate before: not recovered"
        );
        assert!(!recovered(600, 10_000.0, 100, 10_000.0, 1.5, 0.01));
        assert!(
            recovered(0, 0.0, 10, 1000.0, 1.5, 0.01),
            "no traffic: nothing to say against it"
        );
    }
}
