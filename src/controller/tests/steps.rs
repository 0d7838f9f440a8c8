//! Walking a new revision through its steps: weights, pauses, scaling, the baseline, history,
//! and when the rollout counts as healthy.

use super::*;

#[test]
fn first_apply_deploys_straight_to_stable() {
    let cluster = deployed(Rollout::test());
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Healthy));
    assert_eq!(status.stable_revision, Some(Cluster::hash_of("web:1")));
    assert_eq!(status.canary_revision, None);
    assert_eq!(cluster.pods("web:1"), 10);
    assert_eq!(cluster.timeline(), ["Deployed"]);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(status.observed_generation, Some(1));
}

#[test]
fn image_change_walks_through_the_steps_and_promotes() {
    let mut cluster = deployed(Rollout::test());
    cluster.set_image("web:2").settle();
    // Step 1 (10%) done, step 2 is an indefinite pause.
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Paused));
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(status.canary_weight, 10);
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (1, 9));

    // Nothing moves without a promote, however long it waits.
    cluster.advance(3600).settle();
    assert_eq!(cluster.status().current_step_index, Some(1));

    cluster.request("promote").settle();
    let status = cluster.status();
    assert_eq!(
        status.current_step_index,
        Some(3),
        "50% reached, now in the 30s pause"
    );
    assert_eq!(status.canary_weight, 50);
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (5, 5));

    cluster.advance(29).settle();
    assert_eq!(
        cluster.status().current_step_index,
        Some(3),
        "pause not over after 29s"
    );
    cluster.advance(1).settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Healthy));
    assert_eq!(status.stable_revision, Some(Cluster::hash_of("web:2")));
    assert_eq!(status.canary_revision, None);
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (10, 0));
    assert_eq!(
        cluster.timeline(),
        [
            "Deployed",
            "CanaryStarted",
            "StepCompleted",
            "StepCompleted",
            "StepCompleted",
            "StepCompleted",
            "Promoted"
        ]
    );
}

#[test]
fn stable_shrinks_only_after_canary_pods_are_available() {
    let mut cluster = deployed(Rollout::test());
    cluster.set_image("web:2");
    cluster.decide();
    assert_eq!(
        (cluster.pods("web:2"), cluster.pods("web:1")),
        (1, 10),
        "canary first, stable untouched"
    );
    cluster.pods_start();
    cluster.decide();
    assert_eq!(cluster.pods("web:1"), 9);
}

#[test]
fn a_second_change_supersedes_the_running_canary() {
    let mut cluster = deployed(Rollout::test());
    cluster.set_image("web:2").settle();
    cluster.set_image("web:3").settle();
    let status = cluster.status();
    assert_eq!(status.canary_revision, Some(Cluster::hash_of("web:3")));
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(cluster.pods("web:2"), 0);
    assert_eq!(cluster.pods("web:3"), 1);
    assert!(cluster.timeline().contains(&"CanarySuperseded".to_string()));
}

#[test]
fn reverting_the_template_during_a_canary_scales_it_down() {
    let mut cluster = deployed(Rollout::test());
    cluster.set_image("web:2").settle();
    cluster.set_image("web:1").settle();
    assert_eq!(cluster.status().phase, Some(Phase::Healthy));
    assert_eq!((cluster.pods("web:1"), cluster.pods("web:2")), (10, 0));
}

#[test]
fn going_back_to_a_previous_stable_revision_skips_the_steps() {
    let mut cluster = deployed(Rollout::test());
    cluster
        .set_image("web:2")
        .settle()
        .request("promote-full")
        .settle();
    assert_eq!(
        cluster.status().stable_revision,
        Some(Cluster::hash_of("web:2"))
    );

    cluster.set_image("web:1");
    cluster.decide();
    let status = cluster.status();
    assert_eq!(
        status.stable_revision,
        Some(Cluster::hash_of("web:1")),
        "no canary steps"
    );
    assert_eq!(status.canary_revision, None);
    assert_eq!(cluster.pods("web:1"), 10);
    assert_eq!(
        cluster.pods("web:2"),
        10,
        "old stable keeps serving until the rollback target is available"
    );
    cluster.settle();
    assert_eq!((cluster.pods("web:1"), cluster.pods("web:2")), (10, 0));
    assert!(cluster.timeline().contains(&"FastRollback".to_string()));
}

#[test]
fn scaling_mid_rollout_resizes_both_revisions() {
    let mut cluster = deployed(Rollout::test());
    cluster.set_image("web:2").settle();
    cluster.rollout.spec.replicas = 20;
    cluster.settle();
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (2, 18));
    cluster.rollout.spec.replicas = 3;
    cluster.settle();
    assert_eq!((cluster.pods("web:2"), cluster.pods("web:1")), (1, 2));
}

#[test]
fn spec_paused_and_pause_annotation_hold_the_rollout() {
    let mut cluster =
        deployed(Rollout::test().with_steps(vec![weight(10), pause(Some("10s")), weight(50)]));
    cluster.rollout.spec.paused = true;
    cluster.set_image("web:2").settle().advance(60).settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Paused));
    assert_eq!(status.current_step_index, Some(0));
    assert_eq!(
        cluster.pods("web:2"),
        1,
        "the current weight is still applied"
    );
    let paused = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Paused")
        .unwrap();
    assert_eq!(paused.status, "True");

    cluster.rollout.spec.paused = false;
    cluster.rollout.metadata.annotations =
        Some([(PAUSED_ANNOTATION.to_string(), "true".to_string())].into());
    cluster.advance(60).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Paused));
    cluster.rollout.metadata.annotations = None;
    cluster.settle().advance(10).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Healthy));
}

#[test]
fn baseline_runs_the_stable_template_at_the_canary_size_and_goes_away() {
    let mut cluster = deployed(Rollout::test().with_baseline());
    cluster.set_image("web:2").settle();
    assert_eq!(cluster.baseline_pods(), 1);
    cluster.request("promote").settle();
    assert_eq!(cluster.baseline_pods(), 5);
    cluster.advance(30).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Healthy));
    assert_eq!(cluster.baseline_pods(), 0);
}

#[test]
fn history_keeps_only_the_limit_of_old_revisions() {
    let mut cluster = deployed(Rollout::test().with_history_limit(1));
    for image in ["web:2", "web:3", "web:4"] {
        cluster
            .set_image(image)
            .settle()
            .request("promote-full")
            .settle();
    }
    let names: Vec<&str> = cluster.revisions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(cluster.revisions.len(), 2, "stable + 1 old: {names:?}");
    assert_eq!(cluster.pods("web:4"), 10);
    assert_eq!(cluster.pods("web:3"), 0);
}

#[test]
fn replica_math_rounds_up_and_keeps_a_stable_pod() {
    assert_eq!(canary_replicas(10, 10), 1);
    assert_eq!(canary_replicas(10, 15), 2);
    assert_eq!(canary_replicas(3, 1), 1);
    assert_eq!(canary_replicas(3, 0), 0);
    assert_eq!(canary_replicas(0, 50), 0);
    assert_eq!(canary_replicas(4, 100), 4);
    assert_eq!(stable_replicas(1, 1, 50), 1);
    assert_eq!(stable_replicas(4, 4, 100), 0);
    assert_eq!(stable_replicas(10, 3, 30), 7);
}

#[test]
fn healthy_only_once_the_old_revision_has_no_pods_left() {
    let mut cluster = deployed(Rollout::test().with_steps(vec![weight(50)]));
    cluster.slow_shutdown = true;
    cluster.set_image("web:2");
    // Walk until the promotion has scaled the old revision down, without its pods going away.
    for _ in 0..10 {
        cluster.decide();
        if cluster.status().stable_revision == Some(Cluster::hash_of("web:2")) {
            break;
        }
        cluster.pods_start();
    }
    // The old revision's pods are shutting down (terminating, not yet gone).
    cluster.decide();
    assert_eq!(cluster.pods("web:1"), 0, "the old revision is scaled down");
    let status = cluster.status();
    assert_eq!(
        status.phase,
        Some(Phase::Progressing),
        "old pods still terminating: {:?}",
        status.message
    );
    assert!(
        status
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("to terminate"),
        "{:?}",
        status.message
    );
    cluster.pods_start();
    cluster.decide();
    assert_eq!(cluster.status().phase, Some(Phase::Healthy));
}
