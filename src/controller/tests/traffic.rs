//! Canaries with a traffic router: exact weights independent of pods, steps that count only once
//! the gateway carries the weights, canary scale and header route steps, someone else changing
//! the weights, and rollback and promotion through the router.

use super::*;
use crate::api::{Step, TrafficWeights};
use crate::traffic::TrafficObservation;

fn scale(replicas: i32) -> Step {
    serde_json::from_value(serde_json::json!({"setCanaryScale": {"replicas": replicas}})).unwrap()
}

fn header_route(name: &str) -> Step {
    serde_json::from_value(serde_json::json!({"setHeaderRoute": {
        "name": name, "match": [{"headerName": "x-canary", "value": "1"}]}}))
    .unwrap()
}

fn routed(steps: Vec<Step>) -> Cluster {
    deployed(Rollout::test().with_router().with_steps(steps))
}

#[test]
fn a_one_percent_canary_runs_one_pod_and_the_stable_keeps_its_size() {
    let mut cluster = routed(vec![weight(1), pause(None), weight(50), pause(None)]);
    assert_eq!(
        cluster.status().traffic.unwrap().weights,
        TrafficWeights::all_stable(),
        "a deployed routed Rollout sends everything to stable"
    );
    cluster.set_image("web:2").settle();
    let status = cluster.status();
    assert_eq!(status.current_step_index, Some(1), "{:?}", status.message);
    let traffic = status.traffic.unwrap();
    assert_eq!(
        traffic.weights,
        TrafficWeights {
            stable: 99,
            canary: 1,
            baseline: 0
        }
    );
    assert!(traffic.verified && traffic.verified_at.is_some());
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (1, 10));

    cluster.request("promote").settle();
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (5, 10));
    assert_eq!(cluster.status().traffic.unwrap().weights.canary, 50);
}

#[test]
fn a_step_counts_only_once_the_gateway_has_taken_the_weights() {
    let mut cluster = routed(vec![weight(5), pause(Some("60s"))]);
    cluster.set_image("web:2");
    cluster.decide();
    cluster.pods_start();
    // The routes are written with 5%; the gateway has not confirmed anything yet.
    let plan = cluster.decide();
    assert_eq!(plan.status.current_step_index, Some(0));
    let message = plan.status.message.clone().unwrap_or_default();
    assert!(message.contains("the gateway has not taken"), "{message}");
    assert!(plan.requeue_after <= std::time::Duration::from_secs(1));
    // Now it has: the step completes.
    let plan = cluster.decide();
    assert_eq!(
        plan.status.current_step_index,
        Some(1),
        "{:?}",
        plan.status.message
    );
}

#[test]
fn a_route_the_gateway_never_accepts_rolls_back_at_the_progress_deadline() {
    let mut cluster = routed(vec![weight(5), pause(None)]);
    cluster.gateway = Err(
        "HTTPRoute web: parent default/gw: Accepted=False (NoMatchingParent: no such Gateway)"
            .into(),
    );
    cluster.set_image("web:2").settle();
    let status = cluster.status();
    assert_eq!(status.current_step_index, Some(0));
    let message = status.message.unwrap_or_default();
    assert!(
        message.contains("NoMatchingParent") && message.contains("waiting for the gateway"),
        "{message}"
    );
    cluster.advance(601).settle();
    let status = cluster.status();
    assert_eq!(
        status.phase,
        Some(Phase::RolledBack),
        "{:?}",
        status.message
    );
    assert_eq!(
        cluster.timeline().last().unwrap(),
        "ProgressDeadlineExceeded"
    );
    assert_eq!(
        status.traffic.unwrap().weights,
        TrafficWeights::all_stable()
    );
}

#[test]
fn set_canary_scale_sizes_the_canary_apart_from_its_weight() {
    let mut cluster = routed(vec![scale(3), pause(None), weight(5), pause(None)]);
    cluster.set_image("web:2").settle();
    assert_eq!(cluster.status().current_step_index, Some(1));
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (3, 10));
    assert_eq!(
        cluster.status().traffic.unwrap().weights.canary,
        0,
        "pods, but no traffic"
    );
    cluster.request("promote").settle();
    assert_eq!(
        cluster.pods("web:2"),
        3,
        "the scale holds at the next weight"
    );
    assert_eq!(cluster.status().traffic.unwrap().weights.canary, 5);
}

#[test]
fn a_header_route_is_planned_and_removed_on_promotion() {
    let mut cluster = routed(vec![header_route("testers"), pause(None)]);
    cluster.set_image("web:2").settle();
    let traffic = cluster.status().traffic.unwrap();
    assert_eq!(traffic.header_route.as_deref(), Some("testers"));
    assert_eq!(traffic.weights.canary, 0);
    let plan = cluster.plans.last().unwrap();
    assert_eq!(
        plan.header_route.as_ref().map(|h| h.name.as_str()),
        Some("testers")
    );
    assert_eq!(
        cluster.pods("web:2"),
        1,
        "at least one pod to answer the header route"
    );

    cluster.request("promote").settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Healthy));
    assert_eq!(status.traffic.unwrap().header_route, None);
    assert_eq!(cluster.plans.last().unwrap().header_route, None);
}

#[test]
fn weights_changed_by_someone_else_are_put_back_and_that_time_does_not_count() {
    let mut cluster = routed(vec![
        weight(10),
        pause(Some("60s")),
        weight(50),
        pause(None),
    ]);
    cluster.set_image("web:2").settle();
    assert_eq!(cluster.status().current_step_index, Some(1));
    cluster.advance(30);
    // A GitOps sync puts the route back to all-stable.
    cluster.traffic = Some(Ok(TrafficObservation {
        carried: Some((TrafficWeights::all_stable(), None)),
        accepted: Ok(()),
        changed_by: Some("argocd-controller".into()),
    }));
    let plan = cluster.decide();
    let entry = plan.status.timeline.last().unwrap();
    assert_eq!(entry.reason, Reason::TrafficChanged);
    assert!(
        entry.message.contains("argocd-controller"),
        "{}",
        entry.message
    );
    assert_eq!(plan.status.phase, Some(Phase::Paused));
    // Twenty seconds pass before the gateway carries 10% again (the router rewrote it).
    cluster.traffic = Some(Ok(TrafficObservation {
        carried: Some((TrafficWeights::all_stable(), None)),
        accepted: Ok(()),
        changed_by: Some("argocd-controller".into()),
    }));
    cluster.advance(20);
    cluster.decide();
    cluster.traffic = Some(Ok(TrafficObservation {
        carried: Some((
            TrafficWeights {
                stable: 90,
                canary: 10,
                baseline: 0,
            },
            None,
        )),
        accepted: Ok(()),
        changed_by: None,
    }));
    cluster.decide();
    // 30 s counted before, the 20 s at wrong weights not: 30 s still to go at 50 s in.
    cluster.advance(29).settle();
    assert_eq!(
        cluster.status().current_step_index,
        Some(1),
        "{:?}",
        cluster.status().message
    );
    cluster.advance(1).settle();
    assert_eq!(cluster.status().current_step_index, Some(3));
}

#[test]
fn an_abort_sends_everything_to_stable_first() {
    let mut cluster = routed(vec![weight(20), pause(None)]);
    cluster.set_image("web:2").settle();
    cluster.request("abort");
    let plan = cluster.decide();
    assert!(plan.mitigating && plan.flip_kill_switch);
    let traffic = plan.status.traffic.clone().unwrap();
    assert_eq!(traffic.weights, TrafficWeights::all_stable());
    assert!(
        !traffic.verified,
        "verified by the act phase, after the write"
    );
    assert_eq!(cluster.pods("web:1"), 10);
    // The canary keeps its pods for 30 s after the gateway carries everything to stable.
    assert_eq!(cluster.pods("web:2"), 2);
    cluster.settle();
    assert!(cluster.status().traffic.unwrap().verified);
    cluster.advance(29).settle();
    assert_eq!(
        cluster.pods("web:2"),
        2,
        "still inside the scale-down delay"
    );
    cluster.advance(1).settle();
    assert_eq!(cluster.pods("web:2"), 0);
    assert_eq!(cluster.status().phase, Some(Phase::RolledBack));
}

#[test]
fn promotion_moves_all_traffic_to_the_canary_then_drains_the_old_stable_once_routed() {
    let mut cluster = routed(vec![weight(50), pause(Some("10s"))]);
    cluster.set_image("web:2").settle();
    cluster.advance(10);
    // The last step ends: the canary grows, then all requests go to it, which the gateway
    // has not confirmed yet.
    cluster.decide();
    cluster.pods_start();
    cluster.gateway = Err("parent default/gw has not yet seen generation 5".into());
    let plan = cluster.decide();
    assert_eq!(plan.status.traffic.as_ref().unwrap().weights.canary, 100);
    cluster.decide();
    cluster.decide();
    assert_eq!(
        cluster.status().stable_revision,
        Some(Cluster::hash_of("web:1")),
        "not promoted while the gateway has not confirmed 100% to the canary"
    );
    assert!(
        cluster
            .status()
            .message
            .unwrap_or_default()
            .contains("has not yet seen generation 5")
    );
    cluster.gateway = Ok(());
    // This decision still sees the refusal; the gateway's next report confirms.
    cluster.decide();
    cluster.settle();
    let status = cluster.status();
    assert_eq!(status.stable_revision, Some(Cluster::hash_of("web:2")));
    assert_eq!(status.phase, Some(Phase::Healthy));
    assert_eq!(
        status.traffic.unwrap().weights,
        TrafficWeights::all_stable()
    );
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (10, 0));
}

#[test]
fn with_a_baseline_the_baseline_gets_the_canarys_weight() {
    let mut cluster = deployed(
        Rollout::test()
            .with_router()
            .with_baseline()
            .with_steps(vec![weight(10), pause(None)]),
    );
    cluster.set_image("web:2").settle();
    let traffic = cluster.status().traffic.unwrap();
    assert_eq!(
        traffic.weights,
        TrafficWeights {
            stable: 80,
            canary: 10,
            baseline: 10
        }
    );
    assert_eq!(cluster.baseline_pods(), 1);
}

#[test]
fn during_a_bake_the_previous_revisions_slice_gets_its_share_of_requests() {
    let mut rollout = Rollout::test()
        .with_router()
        .with_steps(vec![weight(50), pause(Some("10s"))]);
    rollout.spec.bake = Some(crate::api::Bake {
        duration: "1h".into(),
    });
    let mut cluster = deployed(rollout);
    cluster.set_image("web:2").settle();
    cluster.advance(10).settle();
    let status = cluster.status();
    assert_eq!(status.stable_revision, Some(Cluster::hash_of("web:2")));
    assert!(status.bake.is_some());
    // One pod of the previous revision next to ten: a share of 100/11, rounded up.
    assert_eq!(
        status.traffic.unwrap().weights,
        TrafficWeights {
            stable: 90,
            canary: 10,
            baseline: 0
        }
    );
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (10, 1));
    cluster.advance(3600).settle();
    let status = cluster.status();
    assert_eq!(status.bake, None);
    assert_eq!(
        status.traffic.unwrap().weights,
        TrafficWeights::all_stable()
    );
    assert_eq!(cluster.pods("web:1"), 0);
}

#[test]
fn removing_the_router_from_the_spec_clears_the_traffic_status() {
    let mut cluster = routed(vec![weight(10), pause(None)]);
    assert!(cluster.status().traffic.is_some());
    cluster.rollout.spec.strategy.canary.traffic_routing = None;
    cluster.settle();
    assert_eq!(cluster.status().traffic, None);
    assert_eq!(cluster.status().phase, Some(Phase::Healthy));
}
