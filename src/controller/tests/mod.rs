//! Tests of the decision function, on the in-memory cluster of [`super::sim`], by theme. The
//! fixtures shared by several themes are here.

mod analysis;
mod bake;
mod notifications;
mod properties;
mod rollback;
mod second_wave;
mod steps;
mod timeline;
mod traffic;
mod windows;

use crate::analysis::assess::Gate;
use crate::api::{OnInconclusive, PAUSED_ANNOTATION, Phase, Rollout};

use super::decide::{Plan, WindowGate, canary_replicas, stable_replicas};
use crate::api::NotificationEvent;
use crate::api::{Reason, Trigger};

/// The notifications a plan's transitions call for, in order.
fn notifications(plan: &Plan) -> Vec<NotificationEvent> {
    plan.transitions
        .iter()
        .filter_map(|t| NotificationEvent::for_reason(t.reason))
        .collect()
}
use super::sim::{Cluster, TestRollout, pause, weight};

fn deployed(rollout: Rollout) -> Cluster {
    let mut cluster = Cluster::new(rollout);
    cluster.settle();
    cluster
}

/// A rolled-back cluster whose Rollout pages one receiver, and the Incident of its rollback as
/// the cache would hold it (created at the decision).
fn rolled_back_with_incident() -> Cluster {
    let mut rollout = Rollout::test().with_analysis(OnInconclusive::Hold);
    rollout.spec.notifications = vec![
        serde_json::from_value(
            serde_json::json!({"name": "oncall", "webhook": {"format": "json",
            "urlFrom": {"secretKeyRef": {"name": "hook", "key": "url"}}}}),
        )
        .unwrap(),
    ];
    let mut cluster = deployed(rollout);
    cluster.set_image("web:2").settle();
    cluster.analysis_says(Gate::Fail(
        "metric http-errors: canary 5% vs baseline 1%".into(),
    ));
    let plan = cluster.decide();
    let name = plan.incident.clone().expect("an incident").name;
    let mut incident: crate::api::Incident =
        serde_yaml::from_str(include_str!("../../../tests/golden/incident.yaml")).unwrap();
    incident.metadata.name = Some(name);
    incident.metadata.namespace = Some("test".into());
    incident.metadata.creation_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(cluster.now),
    );
    incident.spec.rollout = "web".into();
    incident.spec.location[0].metric = "http-errors".into();
    incident.status = None;
    cluster.incident = Some(incident);
    cluster.analysis = None;
    cluster
}
