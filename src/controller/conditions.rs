//! kstatus-compatible conditions (`Ready`, `Progressing`, `Paused`) derived from the phase, so
//! Argo CD and Flux health checks work without custom scripts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{Phase, RolloutStatus};

/// Sets the conditions of `status` from its phase and message. A condition whose status did not
/// change keeps its `lastTransitionTime`.
pub fn set(status: &mut RolloutStatus, generation: Option<i64>, now: Timestamp, paused: bool) {
    let phase = status.phase.unwrap_or_default();
    let message = status.message.clone().unwrap_or_default();
    let (ready, ready_reason) = match phase {
        Phase::Healthy => (true, "RolloutHealthy"),
        Phase::Progressing => (false, "RolloutProgressing"),
        Phase::Paused => (false, "RolloutPaused"),
        Phase::Degraded => (false, "RolloutDegraded"),
        Phase::RolledBack => (false, "RolledBack"),
    };
    let (progressing, progressing_reason) = match phase {
        Phase::Progressing | Phase::Paused => (true, "CanaryProgressing"),
        Phase::Healthy => (false, "RolloutComplete"),
        Phase::Degraded => (false, "ProgressDeadlineExceeded"),
        Phase::RolledBack => (false, "RolledBack"),
    };
    let paused_reason = if paused {
        "RolloutPaused"
    } else {
        "RolloutResumed"
    };
    for (kind, value, reason) in [
        ("Ready", ready, ready_reason),
        ("Progressing", progressing, progressing_reason),
        ("Paused", paused, paused_reason),
    ] {
        upsert(
            &mut status.conditions,
            kind,
            value,
            reason,
            &message,
            generation,
            now,
        );
    }
}

fn upsert(
    conditions: &mut Vec<Condition>,
    kind: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if value { "True" } else { "False" }.to_string();
    let fresh = Condition {
        type_: kind.to_string(),
        status: status.clone(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: Time(now),
    };
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(existing) => {
            let since = if existing.status == status {
                existing.last_transition_time.clone()
            } else {
                Time(now)
            };
            *existing = Condition {
                last_transition_time: since,
                ..fresh
            };
        }
        None => conditions.push(fresh),
    }
}
