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
    if let Some(traffic) = &status.traffic {
        let header = traffic
            .header_route
            .as_ref()
            .map(|h| format!(", header route {h}"))
            .unwrap_or_default();
        let state = match (&traffic.verified, &traffic.message) {
            (true, _) => "verified at the gateway".to_string(),
            (false, Some(why)) => format!("not verified yet: {why}"),
            (false, None) => "not verified yet".to_string(),
        };
        let _ = writeln!(out, "Traffic   {}{header} ({state})", traffic.weights);
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
    if let Some(incident) = &status.incident {
        let ns = rollout
            .namespace()
            .map(|ns| format!(" -n {ns}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Incident  {incident}  (firebreak postmortem {incident}{ns})"
        );
    }
    let _ = writeln!(
        out,
        "Replicas  {} desired, {} current, {} ready, {} available",
        rollout.spec.replicas, status.replicas, status.ready_replicas, status.available_replicas
    );
    let now = k8s_openapi::jiff::Timestamp::now();
    let left = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| {
        t.0.duration_since(now).as_secs().max(0)
    };
    if let Some(window) = &status.window {
        match (window.open, &window.opens_at, &window.closes_at) {
            (true, _, Some(closes)) => {
                let _ = writeln!(
                    out,
                    "Window    open, closes at {} ({}s left)",
                    closes.0,
                    left(closes)
                );
            }
            (true, _, None) => {
                let _ = writeln!(out, "Window    open");
            }
            (false, Some(opens), _) => {
                let _ = writeln!(
                    out,
                    "Window    closed: {}; opens at {} (in {}s)",
                    window.message,
                    opens.0,
                    left(opens)
                );
            }
            (false, None, _) => {
                let _ = writeln!(out, "Window    closed: {}", window.message);
            }
        }
    }
    if let Some(bake) = &status.bake {
        let _ = writeln!(
            out,
            "Bake      {} against one pod of {}, until {} ({}s left)",
            bake.revision,
            bake.previous,
            bake.until.0,
            left(&bake.until)
        );
    }
    if let Some(analysis) = &status.analysis {
        // The analysis of a running canary or bake, or the record of one that has ended.
        let live = Some(&analysis.revision) == status.canary_revision.as_ref()
            || status
                .bake
                .as_ref()
                .is_some_and(|b| b.revision == analysis.revision);
        let _ = writeln!(
            out,
            "Analysis  {} after {} looks{}",
            analysis.outcome.map_or("-", |o| o.as_str()),
            analysis.looks,
            if live { "" } else { " (last canary)" }
        );
        if let Some(at) = &analysis.decision_at {
            let decided: Vec<String> = analysis
                .metrics
                .iter()
                .filter_map(|m| Some(format!("{} {}", m.name, m.planned_decision?)))
                .collect();
            // A decision ahead is only news while there is something left to decide: a canary
            // that is gone shows what its planned decision said, if it came to one.
            let outcome = match (decided.is_empty(), live) {
                (false, _) => Some(format!(": {}", decided.join(", "))),
                (true, true) => Some(format!(" (in {}s)", left(at))),
                (true, false) => None,
            };
            if let Some(outcome) = outcome {
                let _ = writeln!(out, "  planned decision at {}{outcome}", at.0);
            }
        }
        for metric in &analysis.metrics {
            let _ = writeln!(
                out,
                "  {:<14} {:<13} {}",
                metric.name, metric.verdict, metric.summary
            );
        }
    }
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

/// One line for `firebreak status --watch`: time, phase, step and weight, each metric's verdict
/// with its numbers, and the message.
pub fn line(rollout: &Rollout, now: k8s_openapi::jiff::Timestamp) -> String {
    let status = rollout.status.clone().unwrap_or_default();
    let steps = rollout.spec.strategy.canary.steps.len();
    let mut out = format!(
        "{}  {:<11}",
        now.strftime("%H:%M:%S"),
        status
            .phase
            .map_or_else(|| "Pending".to_string(), |p| p.to_string())
    );
    match status.current_step_index {
        Some(step) => {
            let _ = write!(
                out,
                " step {}/{steps} weight {:>3}%",
                (step as usize + 1).min(steps),
                status.canary_weight
            );
        }
        None => out.push_str("                     "),
    }
    if let Some(analysis) = status
        .analysis
        .as_ref()
        .filter(|a| Some(&a.revision) == status.canary_revision.as_ref())
    {
        for metric in &analysis.metrics {
            let _ = write!(out, " | {} {}", metric.name, metric.verdict);
        }
    }
    if let Some(message) = &status.message {
        let _ = write!(out, " | {message}");
    }
    out
}

/// Whether `rollout` has settled: its status describes the current spec and it is Healthy (no
/// canary), RolledBack or Degraded.
pub fn settled(rollout: &Rollout) -> bool {
    let Some(status) = &rollout.status else {
        return false;
    };
    status.observed_generation == rollout.metadata.generation
        && match status.phase {
            Some(crate::api::Phase::Healthy) => status.canary_revision.is_none(),
            Some(crate::api::Phase::RolledBack | crate::api::Phase::Degraded) => true,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AnalysisStatus, Phase, RolloutStatus};
    use crate::controller::sim::TestRollout;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn rolled_back_with_a_planned_decision_ahead() -> Rollout {
        let mut rollout = Rollout::test();
        let ahead = k8s_openapi::jiff::Timestamp::now()
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(14))
            .unwrap();
        rollout.status = Some(RolloutStatus {
            phase: Some(Phase::RolledBack),
            stable_revision: Some("stable1234".into()),
            rolled_back_revision: Some("canary5678".into()),
            analysis: Some(AnalysisStatus {
                revision: "canary5678".into(),
                decision_at: Some(Time(ahead)),
                ..AnalysisStatus::default()
            }),
            ..RolloutStatus::default()
        });
        rollout
    }

    #[test]
    fn a_gone_canary_shows_no_planned_decision_still_ahead() {
        let shown = render(&rolled_back_with_a_planned_decision_ahead());
        assert!(shown.contains("(last canary)"), "{shown}");
        assert!(!shown.contains("planned decision"), "{shown}");
    }

    #[test]
    fn a_running_canary_shows_when_its_planned_decision_comes() {
        let mut rollout = rolled_back_with_a_planned_decision_ahead();
        if let Some(status) = rollout.status.as_mut() {
            status.phase = Some(Phase::Paused);
            status.canary_revision = Some("canary5678".into());
        }
        let shown = render(&rollout);
        assert!(
            shown.contains("planned decision at") && shown.contains("(in "),
            "{shown}"
        );
    }

    #[test]
    fn routed_traffic_shows_its_weights_and_whether_the_gateway_took_them() {
        let mut rollout = rolled_back_with_a_planned_decision_ahead();
        if let Some(status) = rollout.status.as_mut() {
            status.traffic = Some(crate::api::TrafficStatus {
                weights: crate::api::TrafficWeights::for_canary(5, false),
                header_route: Some("testers".into()),
                verified: false,
                message: Some(
                    "HTTPRoute web: parent gw/x has not reported on the route yet".into(),
                ),
                ..Default::default()
            });
        }
        let shown = render(&rollout);
        assert!(
            shown.contains("Traffic   stable 95%, canary 5%, header route testers (not verified yet: HTTPRoute web: parent gw/x has not reported"),
            "{shown}"
        );
    }
}
