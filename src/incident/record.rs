//! Building the `Incident` record: a pure function of what the controller knows when it rolls
//! back (the Rollout and its status, the stable and canary templates, the analysis evidence, the
//! mitigation it performed, the clock).

use std::collections::BTreeMap;

use firebreak_judge::MetricKind;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use crate::api::{
    AnalysisStatus, Anchor, BlastRadius, FieldChange, Incident, IncidentSpec, MetricEvidence,
    MitigationAction, ROLLOUT_LABEL, Rollout, SystemChange, TimelineEntry, Triage, Trigger,
};

/// What the decision knows about the incident it is causing.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentPlan {
    /// The Incident's name (deterministic, so a retried creation finds the first one).
    pub name: String,
    /// What caused it.
    pub trigger: Trigger,
    /// One sentence with the numbers.
    pub summary: String,
    /// Whose problem it probably is.
    pub triage: Triage,
    /// The canary revision.
    pub revision: String,
    /// The stable revision.
    pub stable_revision: String,
    /// When the canary started.
    pub canary_started_at: Option<Time>,
    /// Highest canary weight reached, percent.
    pub max_weight: i32,
    /// Canary pods at the decision.
    pub pods: i32,
    /// The analysis status at the decision.
    pub analysis: Option<AnalysisStatus>,
    /// The rollout's timeline including the decision.
    pub timeline: Vec<TimelineEntry>,
}

/// The name of the Incident for canary `revision` of `rollout` started at `started`: unique per
/// canary attempt, stable across retries of the same decision.
pub fn incident_name(rollout: &str, revision: &str, started: Option<&Time>) -> String {
    let prefix: String = rollout.chars().take(200).collect();
    match started {
        Some(t) => format!("{prefix}-{revision}-{}", t.0.as_second()),
        None => format!("{prefix}-{revision}"),
    }
}

/// Seconds from the decision at `decided` to the last mitigation action (none: no mitigation).
pub fn time_to_mitigate(decided: Timestamp, mitigation: &[MitigationAction]) -> Option<i64> {
    mitigation
        .last()
        .map(|m| m.time.0.duration_since(decided).as_secs().max(0))
}

/// Builds the Incident object. `stable` and `canary` are the two pod templates; `mitigation` the
/// actions the act step performed, in order, with their times.
pub fn build(
    rollout: &Rollout,
    plan: &IncidentPlan,
    stable: Option<&PodTemplateSpec>,
    canary: &PodTemplateSpec,
    mitigation: Vec<MitigationAction>,
    now: Timestamp,
) -> Incident {
    let location: Vec<MetricEvidence> = plan
        .analysis
        .iter()
        .flat_map(|a| a.metrics.iter())
        .map(|m| MetricEvidence {
            metric: m.name.clone(),
            verdict: m.verdict,
            summary: m.summary.clone(),
            canary_events: m.evidence.canary_events(),
            canary_exposure: m.evidence.canary_exposure(),
            baseline_events: m.evidence.baseline_events(),
            baseline_exposure: m.evidence.baseline_exposure(),
        })
        .collect();

    let errors = plan
        .analysis
        .iter()
        .flat_map(|a| a.metrics.iter())
        .find(|m| m.evidence.kind() == MetricKind::ErrorRate)
        .map(|m| &m.evidence);
    let crashes = plan
        .analysis
        .iter()
        .flat_map(|a| a.metrics.iter())
        .find(|m| m.evidence.kind() == MetricKind::CrashRate)
        .map(|m| &m.evidence);
    let mitigated_at = mitigation.last().map_or(now, |m| m.time.0);
    let started = plan.canary_started_at.as_ref().map(|t| t.0);
    let blast_radius = BlastRadius {
        max_weight: plan.max_weight,
        served_seconds: started.map_or(0, |s| mitigated_at.duration_since(s).as_secs().max(0)),
        traffic_share: errors.and_then(|e| {
            let total = e.canary_exposure() + e.baseline_exposure();
            (total > 0.0).then(|| e.canary_exposure() / total)
        }),
        canary_requests: errors.map(|e| e.canary_exposure().round() as u64),
        canary_failed_requests: errors.map(|e| e.canary_events()),
        excess_failed_requests: errors.map(|e| {
            let baseline_rate = if e.baseline_exposure() > 0.0 {
                e.baseline_events() as f64 / e.baseline_exposure()
            } else {
                0.0
            };
            (e.canary_events() as f64 - baseline_rate * e.canary_exposure())
                .max(0.0)
                .round() as u64
        }),
        pods: plan.pods,
        restarts: crashes.map(|c| c.canary_max_restarts_per_pod()),
    };

    let evidence_turned_at = plan.analysis.as_ref().and_then(|a| a.adverse_since.clone());
    let detect_from = evidence_turned_at
        .as_ref()
        .or(plan.canary_started_at.as_ref())
        .map(|t| t.0);
    let time_to_detect_seconds = detect_from.map(|from| now.duration_since(from).as_secs().max(0));
    let time_to_mitigate_seconds = time_to_mitigate(now, &mitigation);

    let name = rollout.name_any();
    let owner = OwnerReference {
        api_version: Rollout::api_version(&()).into_owned(),
        kind: Rollout::kind(&()).into_owned(),
        name: name.clone(),
        uid: rollout.uid().unwrap_or_default(),
        controller: Some(false),
        block_owner_deletion: None,
    };
    let mut incident = Incident::new(
        &plan.name,
        IncidentSpec {
            rollout: name.clone(),
            revision: plan.revision.clone(),
            stable_revision: plan.stable_revision.clone(),
            trigger: plan.trigger,
            summary: plan.summary.clone(),
            triage: plan.triage,
            blast_radius,
            location,
            anchor: Anchor {
                canary_started_at: plan.canary_started_at.clone(),
                evidence_turned_at,
                detected_at: Some(Time(now)),
            },
            change: SystemChange {
                fields: stable.map(|s| template_diff(s, canary)).unwrap_or_default(),
            },
            mitigation,
            time_to_detect_seconds,
            time_to_mitigate_seconds,
            timeline: plan.timeline.clone(),
        },
    );
    // The Incident outlives the rollout's next revision but is tidied up with the Rollout itself.
    incident.metadata = ObjectMeta {
        name: Some(plan.name.clone()),
        namespace: rollout.namespace(),
        labels: Some(BTreeMap::from([(ROLLOUT_LABEL.to_string(), name)])),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    incident
}

/// The differences between two pod templates that matter to a person: per container (by name)
/// image, command, args, environment variables (plain values shown; values from Secrets never —
/// only where they come from), resources and probes; plus added and removed containers.
pub fn template_diff(stable: &PodTemplateSpec, canary: &PodTemplateSpec) -> Vec<FieldChange> {
    let containers = |t: &PodTemplateSpec| -> BTreeMap<String, Container> {
        t.spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| (c.name.clone(), c.clone()))
            .collect()
    };
    let (old, new) = (containers(stable), containers(canary));
    let mut changes = Vec::new();
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let path = |field: &str| format!("containers[{name}].{field}");
        match (old.get(name), new.get(name)) {
            (Some(_), None) => changes.push(FieldChange {
                path: format!("containers[{name}]"),
                stable: Some("present".into()),
                canary: None,
            }),
            (None, Some(c)) => changes.push(FieldChange {
                path: format!("containers[{name}]"),
                stable: None,
                canary: Some(c.image.clone().unwrap_or_default()),
            }),
            (Some(a), Some(b)) => {
                push(
                    &mut changes,
                    path("image"),
                    a.image.clone(),
                    b.image.clone(),
                );
                push(
                    &mut changes,
                    path("command"),
                    a.command.as_ref().map(|c| c.join(" ")),
                    b.command.as_ref().map(|c| c.join(" ")),
                );
                push(
                    &mut changes,
                    path("args"),
                    a.args.as_ref().map(|c| c.join(" ")),
                    b.args.as_ref().map(|c| c.join(" ")),
                );
                let env = |c: &Container| -> BTreeMap<String, String> {
                    c.env
                        .iter()
                        .flatten()
                        .map(|e| (e.name.clone(), env_value(e)))
                        .collect()
                };
                let (ea, eb) = (env(a), env(b));
                let keys: std::collections::BTreeSet<&String> =
                    ea.keys().chain(eb.keys()).collect();
                for key in keys {
                    push(
                        &mut changes,
                        path(&format!("env[{key}]")),
                        ea.get(key).cloned(),
                        eb.get(key).cloned(),
                    );
                }
                push(
                    &mut changes,
                    path("resources"),
                    compact(&a.resources),
                    compact(&b.resources),
                );
                push(
                    &mut changes,
                    path("readinessProbe"),
                    compact(&a.readiness_probe),
                    compact(&b.readiness_probe),
                );
                push(
                    &mut changes,
                    path("livenessProbe"),
                    compact(&a.liveness_probe),
                    compact(&b.liveness_probe),
                );
            }
            (None, None) => {}
        }
    }
    changes
}

fn push(
    changes: &mut Vec<FieldChange>,
    path: String,
    stable: Option<String>,
    canary: Option<String>,
) {
    if stable != canary {
        changes.push(FieldChange {
            path,
            stable,
            canary,
        });
    }
}

fn env_value(e: &EnvVar) -> String {
    if let Some(value) = &e.value {
        return value.clone();
    }
    match e.value_from.as_ref() {
        Some(from) if from.secret_key_ref.is_some() => {
            let s = from
                .secret_key_ref
                .as_ref()
                .unwrap_or_else(|| unreachable!());
            format!("(from Secret {} key {})", s.name, s.key)
        }
        Some(from) if from.config_map_key_ref.is_some() => {
            let c = from
                .config_map_key_ref
                .as_ref()
                .unwrap_or_else(|| unreachable!());
            format!("(from ConfigMap {} key {})", c.name, c.key)
        }
        Some(_) => "(from a field or resource reference)".into(),
        None => String::new(),
    }
}

/// A field as compact JSON; an empty value (`{}`, `[]`, `null`) counts as absent, since the API
/// server fills in `resources: {}` where the spec has none, and that is no change.
fn compact<T: serde::Serialize>(value: &Option<T>) -> Option<String> {
    value
        .as_ref()
        .and_then(|v| serde_json::to_string(v).ok())
        .filter(|s| !matches!(s.as_str(), "{}" | "[]" | "null"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_the_api_server_filled_in_empty_are_no_change() {
        let spec = template("web:1", json!([]));
        let mut stored = spec.clone();
        if let Some(c) = stored.spec.as_mut().and_then(|s| s.containers.first_mut()) {
            c.resources = Some(Default::default());
        }
        let mut canary = spec;
        if let Some(c) = canary.spec.as_mut().and_then(|s| s.containers.first_mut()) {
            c.image = Some("web:2".into());
        }
        let paths: Vec<String> = template_diff(&stored, &canary)
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(paths, ["containers[web].image"]);
    }

    fn template(image: &str, env: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image, "env": env}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_diff_shows_images_and_env_but_never_secret_values() {
        let stable = template(
            "web:1",
            json!([{"name": "LOG", "value": "info"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        );
        let canary = template(
            "web:2",
            json!([{"name": "LOG", "value": "debug"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}]),
        );
        let diff = template_diff(&stable, &canary);
        let paths: Vec<&str> = diff.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "containers[web].image",
                "containers[web].env[LOG]",
                "containers[web].env[TOKEN]"
            ]
        );
        assert_eq!(diff[0].canary.as_deref(), Some("web:2"));
        assert_eq!(diff[2].canary.as_deref(), Some("(from Secret s2 key k)"));
    }

    #[test]
    fn names_are_stable_per_canary_attempt() {
        let t = Time("2026-11-21T10:00:00Z".parse().unwrap());
        assert_eq!(incident_name("web", "abc", Some(&t)), "web-abc-1795255200");
        assert_eq!(incident_name("web", "abc", None), "web-abc");
    }
}
