//! Analysis gates: failing, holding without data, the inconclusive deadline, incidents and
//! common-mode holds.

use super::*;

#[test]
fn failing_analysis_rolls_back_at_once_with_the_reason() {
    let mut cluster = deployed(Rollout::test().with_analysis(OnInconclusive::Hold));
    cluster.set_image("web:2").settle();
    cluster.analysis_says(Gate::Fail(
        "metric http-errors: canary error rate 5.0% vs baseline 1.0%".into(),
    ));
    let plan = cluster.decide();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::RolledBack));
    assert!(
        status
            .rollback_reason
            .unwrap()
            .contains("canary error rate 5.0%")
    );
    assert_eq!(
        plan.replica_sets[0].replicas, 0,
        "the canary is scaled down first"
    );
    assert!(cluster.timeline().contains(&"AnalysisFailed".to_string()));
}

#[test]
fn a_pause_that_ends_does_not_advance_until_analysis_passes() {
    let mut cluster = deployed(
        Rollout::test()
            .with_analysis(OnInconclusive::Hold)
            .with_steps(vec![weight(10), pause(Some("1m")), weight(50)]),
    );
    cluster.set_image("web:2").settle();
    cluster.analysis_says(Gate::Inconclusive("too little data".into()));
    cluster.advance(61).settle();
    let status = cluster.status();
    assert_eq!(status.current_step_index, Some(1), "held at the pause");
    assert_eq!(status.phase, Some(Phase::Paused));
    assert!(status.message.unwrap().contains("until analysis passes"));
    // Holding never gives up by itself with onInconclusive: Hold…
    cluster.advance(3600).settle();
    assert_eq!(cluster.status().current_step_index, Some(1));
    // …and moves on once analysis passes; the last step is gated too.
    cluster.analysis_says(Gate::Pass).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Healthy));
}

#[test]
fn one_look_without_data_is_not_an_event() {
    let mut cluster = deployed(
        Rollout::test()
            .with_analysis(OnInconclusive::Hold)
            .with_steps(vec![weight(10), pause(Some("1m")), weight(50)]),
    );
    cluster.set_image("web:2").settle();
    cluster.analysis_says(Gate::Unavailable("a scrape landed late".into()));
    if let Some(a) = cluster.analysis.as_mut() {
        a.status.consecutive_failures = 1;
    }
    cluster.settle();
    cluster.analysis_says(Gate::Pass).settle();
    let timeline = cluster.timeline();
    assert!(
        !timeline.iter().any(|r| r.starts_with("Analysis")),
        "{timeline:?}"
    );
}

#[test]
fn analysis_without_data_rolls_back_after_the_deadline_when_asked_to() {
    let mut cluster = deployed(
        Rollout::test()
            .with_analysis(OnInconclusive::Rollback)
            .with_steps(vec![weight(10), pause(Some("1m")), weight(50)]),
    );
    cluster.set_image("web:2").settle();
    cluster.analysis_says(Gate::Unavailable(
        "Prometheus at http://prometheus:9090 failed".into(),
    ));
    cluster.settle();
    assert!(
        cluster
            .timeline()
            .contains(&"AnalysisUnavailable".to_string())
    );
    cluster.advance(61).settle();
    assert_eq!(cluster.status().phase, Some(Phase::Paused));
    cluster.advance(600).settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::RolledBack));
    assert!(
        status
            .rollback_reason
            .unwrap()
            .contains("onInconclusive: Rollback")
    );
}

#[test]
fn analysis_that_has_not_looked_yet_blocks_promotion() {
    let mut cluster = deployed(
        Rollout::test()
            .with_analysis(OnInconclusive::Hold)
            .with_steps(vec![weight(100)]),
    );
    cluster.set_image("web:2").settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Paused));
    assert_eq!(status.stable_revision, Some(Cluster::hash_of("web:1")));
}

#[test]
fn a_rollback_plans_one_incident_named_after_the_canary_attempt() {
    let mut cluster = deployed(Rollout::test().with_analysis(OnInconclusive::Hold));
    cluster.set_image("web:2").settle();
    cluster.analysis_says(Gate::Fail(
        "metric http-errors: canary 5.0% vs baseline 1.0%".into(),
    ));
    let plan = cluster.decide();
    let incident = plan.incident.expect("an incident is planned");
    assert_eq!(incident.trigger, Trigger::AnalysisFailed);
    assert_eq!(incident.triage, crate::api::Triage::Change);
    assert_eq!(incident.revision, Cluster::hash_of("web:2"));
    assert_eq!(incident.max_weight, 10);
    assert!(
        incident
            .timeline
            .iter()
            .any(|e| e.reason == Reason::AnalysisFailed)
    );
    assert_eq!(cluster.status().incident, Some(incident.name));
    assert!(plan.mitigating);
    assert_eq!(cluster.decide().incident, None, "recorded once");
}

#[test]
fn a_common_mode_gate_holds_and_plans_a_common_mode_incident_once() {
    let mut cluster = deployed(
        Rollout::test()
            .with_analysis(OnInconclusive::Rollback)
            .with_steps(vec![weight(10), pause(Some("1m")), weight(50)]),
    );
    cluster.set_image("web:2").settle();
    cluster.analysis_says(Gate::CommonMode(
        "metric http-errors: both arms above 10%".into(),
    ));
    let plan = cluster.decide();
    let incident = plan.incident.expect("an incident is planned");
    assert_eq!(incident.triage, crate::api::Triage::CommonMode);
    assert!(!plan.mitigating, "nothing is rolled back");
    cluster.settle().advance(61).settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Paused));
    assert_eq!(status.current_step_index, Some(1));
    assert_eq!(
        cluster
            .timeline()
            .iter()
            .filter(|r| *r == "CommonModeHold")
            .count(),
        1
    );
}
