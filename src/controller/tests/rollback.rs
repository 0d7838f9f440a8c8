//! Aborts, one-off requests, and rollbacks at the progress deadline or past `maxDuration`.

use super::*;

#[test]
fn abort_restores_stable_and_blocks_the_revision_until_retry() {
    let mut cluster = deployed(Rollout::test());
    cluster
        .set_image("web:2")
        .settle()
        .request("promote")
        .settle();
    assert_eq!(cluster.pods("web:2"), 5);

    cluster.request("abort");
    let plan = cluster.decide();
    // The canary is scaled down before the stable grows: mitigation first.
    let order: Vec<i32> = plan.replica_sets.iter().map(|d| d.replicas).collect();
    assert_eq!(order, [0, 10]);
    cluster.settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::RolledBack));
    assert_eq!(status.rolled_back_revision, Some(Cluster::hash_of("web:2")));
    assert_eq!(status.canary_weight, 0);
    assert_eq!((cluster.pods("web:1"), cluster.pods("web:2")), (10, 0));

    // Never rolled out again by itself, however often it looks.
    cluster.advance(86_400).settle();
    assert_eq!(cluster.pods("web:2"), 0);
    assert_eq!(cluster.status().phase, Some(Phase::RolledBack));

    cluster.request("retry").settle();
    let status = cluster.status();
    assert_eq!(status.canary_revision, Some(Cluster::hash_of("web:2")));
    assert_eq!(
        status.current_step_index,
        Some(1),
        "restarted from the first step"
    );
    assert_eq!(status.rolled_back_revision, None);
}

#[test]
fn a_request_is_acted_on_once() {
    let mut cluster = deployed(Rollout::test().with_steps(vec![
        weight(10),
        pause(None),
        weight(20),
        pause(None),
    ]));
    cluster
        .set_image("web:2")
        .settle()
        .request("promote")
        .settle();
    assert_eq!(cluster.status().current_step_index, Some(3));
    // The same annotation seen again (no new nonce) does nothing.
    cluster.advance(60).settle();
    assert_eq!(cluster.status().current_step_index, Some(3));
}

#[test]
fn canary_that_never_becomes_available_is_rolled_back_at_the_deadline() {
    let mut cluster = deployed(Rollout::test());
    cluster.broken.push(Cluster::hash_of("web:2"));
    cluster.set_image("web:2").settle();
    assert_eq!(cluster.status().phase, Some(Phase::Progressing));
    cluster.advance(599).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Progressing));
    let requeue = cluster.plans.last().unwrap().requeue_after;
    assert!(
        requeue.as_secs() <= 1,
        "looks again right at the deadline, not {requeue:?} later"
    );
    cluster.advance(1).settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::RolledBack));
    assert!(
        status
            .rollback_reason
            .unwrap()
            .contains("progress deadline exceeded")
    );
    assert!(
        cluster
            .timeline()
            .contains(&"ProgressDeadlineExceeded".to_string())
    );
    assert_eq!((cluster.pods("web:1"), cluster.pods("web:2")), (10, 0));
}

#[test]
fn stable_that_never_becomes_available_is_degraded_not_rolled_back() {
    let mut cluster = Cluster::new(Rollout::test());
    cluster.broken.push(Cluster::hash_of("web:1"));
    cluster.settle().advance(601).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Degraded));
    assert_eq!(cluster.pods("web:1"), 10);
}

#[test]
fn a_canary_past_its_max_duration_is_rolled_back() {
    let mut rollout = Rollout::test();
    rollout.spec.strategy.canary.max_duration = Some("10m".into());
    let mut cluster = deployed(rollout);
    cluster.set_image("web:2").settle().advance(599).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Paused));
    cluster.advance(1).settle();
    let plan = cluster.plans.last().cloned().expect("a plan");
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::RolledBack));
    assert!(status.rollback_reason.unwrap().contains("maxDuration"));
    let rollback = cluster
        .plans
        .iter()
        .find(|p| p.incident.is_some())
        .expect("the rollback plans an Incident");
    assert_eq!(
        rollback.incident.as_ref().map(|i| i.trigger),
        Some(Trigger::MaxDurationExceeded)
    );
    assert_eq!(
        notifications(rollback),
        [NotificationEvent::RolledBack],
        "a maxDuration rollback pages like any rollback"
    );
    assert!(notifications(&plan).is_empty(), "and only once");
}
