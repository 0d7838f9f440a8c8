//! `firebreak status`: a Rollout's state in a form a person reads at a glance.

use std::fmt::Write;

use kube::ResourceExt;

use crate::api::Rollout;

/// Number of timeline entries `firebreak status` shows.
pub const TIMELINE_SHOWN: usize = 10;

/// Renders `rollout` as a few aligned lines of text, ending with a newline.
pub fn render(rollout: &Rollout) -> String {
    let mut out = String::new();
    let status = rollout.status.clone().unwrap_or_default();
    let steps = rollout.spec.strategy.canary.steps.len();
    let phase = status
        .phase
        .map_or_else(|| "Pending".to_string(), |p| p.to_string());
    let _ = writeln!(
        out,
        "Rollout   {}/{}",
        rollout.namespace().unwrap_or_default(),
        rollout.name_any()
    );
    let _ = write!(out, "Phase     {phase}");
    if let Some(step) = status.current_step_index {
        let _ = write!(
            out,
            "  (step {}/{steps}, canary weight {}%)",
            (step as usize + 1).min(steps),
            status.canary_weight
        );
    }
    out.push('\n');
    if let Some(message) = &status.message {
        let _ = writeln!(out, "Message   {message}");
    }
    let _ = writeln!(
        out,
        "Stable    {}  ({} available)",
        status.stable_revision.as_deref().unwrap_or("-"),
        status.stable_available_replicas
    );
    if let Some(canary) = &status.canary_revision {
        let _ = writeln!(
            out,
            "Canary    {canary}  ({} available)",
            status.canary_available_replicas
        );
    }
    if let Some(bad) = &status.rolled_back_revision {
        let _ = writeln!(
            out,
            "RolledBack {bad}: {}",
            status
                .rollback_reason
                .as_deref()
                .unwrap_or("reason not recorded")
        );
    }
    let _ = writeln!(
        out,
        "Replicas  {} desired, {} current, {} ready, {} available",
        rollout.spec.replicas, status.replicas, status.ready_replicas, status.available_replicas
    );
    if !status.timeline.is_empty() {
        out.push_str("Timeline\n");
        let skip = status.timeline.len().saturating_sub(TIMELINE_SHOWN);
        for entry in &status.timeline[skip..] {
            let _ = writeln!(
                out,
                "  {}  {:<18} {}",
                entry.time.0.strftime("%Y-%m-%d %H:%M:%S"),
                entry.reason,
                entry.message
            );
        }
    }
    out
}
