//! The bake after promotion: one old pod kept, a regression rolls back to the previous revision.

use super::*;

#[test]
fn bake_keeps_one_old_pod_then_scales_it_down() {
    let mut rollout = Rollout::test().with_steps(vec![weight(50)]);
    rollout.spec.bake = Some(crate::api::Bake {
        duration: "1h".into(),
    });
    let mut cluster = deployed(rollout);
    cluster.set_image("web:2").settle();
    let status = cluster.status();
    assert_eq!(status.stable_revision, Some(Cluster::hash_of("web:2")));
    assert!(status.bake.is_some());
    assert_eq!(
        (cluster.pods("web:2"), cluster.pods("web:1")),
        (10, 1),
        "one pod of the previous revision stays"
    );
    cluster.advance(3599).settle();
    assert_eq!(cluster.pods("web:1"), 1);
    cluster.advance(1).settle();
    assert_eq!(cluster.status().bake, None);
    assert_eq!(cluster.pods("web:1"), 0);
    assert!(cluster.timeline().contains(&"BakeCompleted".to_string()));
}

#[test]
fn a_regression_caught_in_bake_rolls_back_to_the_previous_revision_with_an_incident() {
    let mut rollout = Rollout::test()
        .with_analysis(OnInconclusive::Hold)
        .with_steps(vec![weight(50)]);
    rollout.spec.bake = Some(crate::api::Bake {
        duration: "1h".into(),
    });
    let mut cluster = deployed(rollout);
    cluster.set_image("web:2");
    cluster.analysis_says(Gate::Pass);
    cluster.settle();
    cluster.analysis_says(Gate::Pass).settle();
    assert!(
        cluster.status().bake.is_some(),
        "{:?}",
        cluster.status().message
    );
    cluster.advance(600).analysis_says(Gate::Fail(
        "metric http-errors: canary 9% vs baseline 1%".into(),
    ));
    let plan = cluster.decide();
    let incident = plan.incident.clone().expect("an incident");
    assert_eq!(incident.trigger, Trigger::BakeFailed);
    assert_eq!(incident.revision, Cluster::hash_of("web:2"));
    assert_eq!(
        incident.stable_revision,
        Cluster::hash_of("web:1"),
        "the Incident names the revision that takes the traffic back as stable"
    );
    assert_eq!(
        incident.pods, 10,
        "the bad revision served with all its pods"
    );
    assert_eq!(
        notifications(&plan),
        [NotificationEvent::RolledBack],
        "a bake failure pages like any rollback"
    );
    assert!(plan.flip_kill_switch);
    // The previous revision grows back first; the bad one drains once it can carry the load.
    assert_eq!((cluster.pods("web:1"), cluster.pods("web:2")), (10, 10));
    cluster.analysis = None;
    cluster.settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::RolledBack));
    assert_eq!(status.stable_revision, Some(Cluster::hash_of("web:1")));
    assert_eq!(status.rolled_back_revision, Some(Cluster::hash_of("web:2")));
    assert_eq!((cluster.pods("web:1"), cluster.pods("web:2")), (10, 0));
}
