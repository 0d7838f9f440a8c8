//! The second-wave check: after a rollback, keep watching the stable revision for a short window
//! and record whether its error rate went back to its level during the canary. If it did not,
//! the problem is probably not the rolled-back change, and people are told so.
//!
//! Pure: [`step`] says what to do next, the controller's observe phase measures when it says
//! [`Step::Measure`], and [`conclude`] turns the numbers into the recorded end.

use std::time::Duration;

use firebreak_judge::{Counts, Evidence, MetricKind, Policy, Verdict, judge};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::analysis::assess;
use crate::analysis::template::Variables;
use crate::api::{Incident, Phase, Rollout, SecondWave, SecondWaveState, Triage};

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

/// What the second-wave check does next, decided from the Rollout and its latest Incident.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing: the Rollout is not rolled back, has no Incident (or it is not in the cache yet),
    /// the Incident is a common-mode hold, or the check has ended.
    Idle,
    /// Start watching the stable revision until `until`.
    Start {
        /// When the watch ends: now plus [`window`].
        until: Timestamp,
    },
    /// Watching: look again after this long.
    Wait(Duration),
    /// The watch is over: measure the stable's errors over the `window` that ended at `until`,
    /// then [`conclude`].
    Measure {
        /// When the watch ended.
        until: Timestamp,
        /// Its length.
        window: Duration,
    },
}

/// The next step of the check for `rollout`, whose latest Incident (`status.incident`) is
/// `incident`, at `now`. Pure.
pub fn step(rollout: &Rollout, incident: Option<&Incident>, now: Timestamp) -> Step {
    let Some(status) = rollout.status.as_ref() else {
        return Step::Idle;
    };
    let (Some(name), Some(incident)) = (status.incident.as_deref(), incident) else {
        return Step::Idle;
    };
    if status.phase != Some(Phase::RolledBack)
        || incident.metadata.name.as_deref() != Some(name)
        || incident.spec.triage == Triage::CommonMode
    {
        return Step::Idle;
    }
    let length = window(rollout);
    match incident
        .status
        .as_ref()
        .and_then(|s| s.second_wave.as_ref())
    {
        None => match SignedDuration::try_from(length)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
        {
            Some(until) => Step::Start { until },
            None => Step::Idle,
        },
        Some(wave) if wave.state == SecondWaveState::Watching => {
            let until = wave.until.as_ref().map_or(now, |t| t.0);
            if now < until {
                Step::Wait(Duration::try_from(until.duration_since(now)).unwrap_or(MIN_WINDOW))
            } else {
                Step::Measure {
                    until,
                    window: length,
                }
            }
        }
        Some(_) => Step::Idle,
    }
}

/// The state to record when the watch starts.
pub fn watching(incident: &Incident, until: Timestamp, length: Duration) -> SecondWave {
    SecondWave {
        state: SecondWaveState::Watching,
        until: Some(Time(until)),
        message: format!(
            "watching stable revision {} for {}s after the rollback",
            incident.spec.stable_revision,
            length.as_secs()
        ),
    }
}

/// The error-rate metric the check measures the stable with: the Rollout's first `errorRate`
/// metric, if any.
pub fn metric(rollout: &Rollout) -> Option<&crate::api::Metric> {
    rollout
        .spec
        .analysis
        .as_ref()
        .and_then(|a| a.metrics.iter().find(|m| m.error_rate.is_some()))
}

/// The template variables of the measurement: the stable revision, as the `baseline` arm, over
/// the `interval` (e.g. `40s`) of the watch.
pub fn variables<'a>(incident: &'a Incident, interval: &'a str) -> Variables<'a> {
    Variables {
        revision: &incident.spec.stable_revision,
        arm: "baseline",
        namespace: incident.metadata.namespace.as_deref().unwrap_or_default(),
        rollout: &incident.spec.rollout,
        interval,
    }
}

/// How the check ends, from the stable's counts over the watch (`after`: errors as events and
/// requests as exposure in the canary arm of [`Counts`], or why they could not be measured):
/// compares them with the baseline's rate during the canary, as recorded in the Incident's
/// evidence (`spec.location`). Pure.
pub fn conclude(
    rollout: &Rollout,
    incident: &Incident,
    until: Timestamp,
    length: Duration,
    after: Option<&Result<Counts, String>>,
) -> SecondWave {
    let metric = metric(rollout);
    let before = incident
        .spec
        .location
        .iter()
        .find(|l| Some(&l.metric) == metric.map(|m| &m.name));
    let (state, message) = match (metric.and_then(|m| m.error_rate.as_ref()), before, after) {
        (Some(error_rate), Some(before), Some(Ok(after))) => {
            let rate = |events: u64, exposure: f64| {
                if exposure > 0.0 {
                    events as f64 / exposure
                } else {
                    0.0
                }
            };
            let numbers = format!(
                "stable error rate {:.2}% over {} requests in the {}s after the rollback, vs {:.2}% during the canary",
                rate(after.canary_events, after.canary_exposure) * 100.0,
                after.canary_exposure,
                length.as_secs(),
                rate(before.baseline_events, before.baseline_exposure) * 100.0
            );
            let max_ratio = error_rate
                .max_ratio
                .unwrap_or(assess::DEFAULT_ERROR_MAX_RATIO);
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
        (Some(_), Some(_), Some(Err(e))) => (
            SecondWaveState::Unknown,
            format!("could not measure the stable's error rate: {e}"),
        ),
        (Some(_), Some(_), None) => (
            SecondWaveState::Unknown,
            "the stable's error rate was not measured".to_string(),
        ),
        (Some(_), None, _) => (
            SecondWaveState::Unknown,
            "the Incident has no error-rate evidence from the canary to compare with".to_string(),
        ),
        (None, _, _) => (
            SecondWaveState::Unknown,
            "no error-rate analysis to compare with".to_string(),
        ),
    };
    SecondWave {
        state,
        until: Some(Time(until)),
        message,
    }
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
