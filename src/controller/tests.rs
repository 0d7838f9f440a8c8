//! Tests of the decision function, on the in-memory cluster of [`super::sim`].

use proptest::prelude::*;

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
fn timeline_is_bounded() {
    let mut cluster = deployed(Rollout::test().with_steps(vec![weight(10), pause(None)]));
    for i in 0..40 {
        cluster.set_image(&format!("web:{}", i + 2)).settle();
    }
    assert_eq!(cluster.status().timeline.len(), crate::api::TIMELINE_LIMIT);
}

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

fn closed_until(cluster: &Cluster, seconds: i64) -> WindowGate {
    WindowGate {
        open: false,
        message: "outside the allowed windows (Mon-Thu 09:00-16:00 Europe/Berlin)".into(),
        opens_at: Some(
            cluster
                .now
                .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
                .unwrap(),
        ),
        closes_at: None,
    }
}

#[test]
fn outside_its_window_a_new_revision_waits_before_its_first_canary_pod() {
    let mut cluster = deployed(Rollout::test());
    cluster.window = Some(closed_until(&cluster, 600));
    cluster.set_image("web:2").settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Paused));
    assert!(status.message.unwrap().contains("deployment window closed"));
    assert_eq!(cluster.pods("web:2"), 0, "not a single canary pod");
    assert_eq!(status.window.map(|w| w.open), Some(false));
    assert!(
        cluster.plans.last().unwrap().requeue_after.as_secs() <= 600,
        "looks again when it opens"
    );
    cluster.window = None;
    cluster.settle();
    assert_eq!(cluster.pods("web:2"), 1, "starts once the window opens");
}

#[test]
fn a_window_closing_mid_rollout_holds_it_but_abort_still_works() {
    let mut cluster =
        deployed(Rollout::test().with_steps(vec![weight(10), pause(Some("1m")), weight(50)]));
    cluster.set_image("web:2").settle();
    cluster.window = Some(closed_until(&cluster, 3600));
    cluster.advance(120).settle();
    let status = cluster.status();
    assert_eq!(status.current_step_index, Some(1), "held at the pause");
    assert_eq!(status.phase, Some(Phase::Paused));
    cluster.request("abort").settle();
    assert_eq!(cluster.status().phase, Some(Phase::RolledBack));
    assert_eq!(cluster.pods("web:2"), 0);
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

#[test]
fn every_rollback_trigger_notifies_and_a_hold_notifies_as_held() {
    for trigger in Trigger::ALL {
        let expected = if trigger == Trigger::CommonModeHold {
            NotificationEvent::Held
        } else {
            NotificationEvent::RolledBack
        };
        assert_eq!(
            NotificationEvent::for_reason(trigger.reason()),
            Some(expected),
            "{trigger}"
        );
        assert_eq!(trigger.reason().trigger(), Some(trigger));
    }
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

#[test]
fn a_flapping_condition_takes_two_timeline_entries_and_never_evicts_the_anchors() {
    use crate::api::{TIMELINE_LIMIT, TimelineEntry};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let at = |s: i64| Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + s).unwrap());
    let entry = |reason: Reason, s: i64| TimelineEntry {
        time: at(s),
        reason,
        message: format!("{reason} at {s}"),
        revision: Some("r2".into()),
        count: None,
        last_time: None,
    };
    let mut timeline = Vec::new();
    super::decide::push_timeline(&mut timeline, entry(Reason::Deployed, 0));
    super::decide::push_timeline(&mut timeline, entry(Reason::CanaryStarted, 1));
    for s in 0..40 {
        super::decide::push_timeline(
            &mut timeline,
            entry(Reason::AnalysisUnavailable, 10 + 2 * s),
        );
        super::decide::push_timeline(&mut timeline, entry(Reason::AnalysisRecovered, 11 + 2 * s));
    }
    let reasons: Vec<Reason> = timeline.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        [
            Reason::Deployed,
            Reason::CanaryStarted,
            Reason::AnalysisUnavailable,
            Reason::AnalysisRecovered
        ]
    );
    assert_eq!(timeline[2].count, Some(40));
    assert_eq!(timeline[3].last_time, Some(at(89)));
    assert_eq!(timeline[3].message, "AnalysisRecovered at 89");

    // Past the limit, lesser entries go before the anchors.
    for step in 0..(TIMELINE_LIMIT as i64 + 10) {
        let mut e = entry(Reason::StepCompleted, 100 + step);
        e.revision = Some(format!("r{step}"));
        super::decide::push_timeline(&mut timeline, e);
    }
    assert_eq!(timeline.len(), TIMELINE_LIMIT);
    assert_eq!(timeline[0].reason, Reason::Deployed);
    assert_eq!(timeline[1].reason, Reason::CanaryStarted);
}

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

/// A user or the world doing something between two decisions.
#[derive(Clone, Debug)]
enum Op {
    NewImage(u8),
    Promote,
    PromoteFull,
    Abort,
    Retry,
    Scale(i32),
    Wait(i64),
    PodsStart,
    Break(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..5).prop_map(Op::NewImage),
        Just(Op::Promote),
        Just(Op::PromoteFull),
        Just(Op::Abort),
        Just(Op::Retry),
        (0i32..15).prop_map(Op::Scale),
        (1i64..700).prop_map(Op::Wait),
        Just(Op::PodsStart),
        Just(Op::PodsStart),
        (1u8..5).prop_map(Op::Break),
    ]
}

fn apply(cluster: &mut Cluster, op: &Op) {
    match op {
        Op::NewImage(n) => {
            cluster.set_image(&format!("web:{n}"));
        }
        Op::Promote => {
            cluster.request("promote");
        }
        Op::PromoteFull => {
            cluster.request("promote-full");
        }
        Op::Abort => {
            cluster.request("abort");
        }
        Op::Retry => {
            cluster.request("retry");
        }
        Op::Scale(n) => cluster.rollout.spec.replicas = *n,
        Op::Wait(s) => {
            cluster.advance(*s);
        }
        Op::PodsStart => cluster.pods_start(),
        Op::Break(n) => cluster.broken.push(Cluster::hash_of(&format!("web:{n}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Outside a rollback, a plan never takes away available pods the Rollout needs: the pods
    /// that stay available (planned ∧ available) are at least min(replicas, available before).
    #[test]
    fn capacity_never_drops_below_replicas(ops in proptest::collection::vec(op(), 1..40)) {
        let mut cluster = deployed(Rollout::test().with_steps(vec![weight(20), pause(Some("1m")), weight(60), pause(None)]));
        for op in &ops {
            apply(&mut cluster, op);
            let before: Vec<_> = cluster.revisions.clone();
            let replicas = cluster.rollout.spec.replicas;
            let available_before: i32 = before.iter().map(|r| r.available).sum();
            let plan = cluster.decide();
            let mitigation = plan.transitions.iter().any(|t| {
                matches!(t.reason.as_str(), "Aborted" | "ProgressDeadlineExceeded" | "CanarySuperseded")
            });
            if mitigation || !cluster.broken.is_empty() {
                continue;
            }
            let kept: i32 = before
                .iter()
                .map(|r| {
                    let planned = plan
                        .replica_sets
                        .iter()
                        .find(|d| d.hash == r.hash && d.arm == r.arm)
                        .map_or(r.desired, |d| d.replicas);
                    r.available.min(planned)
                })
                .sum();
            prop_assert!(
                kept >= replicas.min(available_before),
                "after {op:?}: {kept} pods stay available, {replicas} replicas wanted, {available_before} were available"
            );
        }
    }

    /// A revision that was rolled back is never promoted nor given pods again while the template
    /// stays the same, unless the user retries.
    #[test]
    fn an_aborted_revision_is_never_re_promoted(ops in proptest::collection::vec(op(), 1..40)) {
        let mut cluster = deployed(Rollout::test());
        cluster.set_image("web:9").settle().request("abort").settle();
        let bad = Cluster::hash_of("web:9");
        prop_assert_eq!(cluster.status().rolled_back_revision, Some(bad.clone()));
        for op in ops.iter().filter(|op| !matches!(op, Op::NewImage(_) | Op::Retry)) {
            apply(&mut cluster, op);
            cluster.settle();
            prop_assert_ne!(cluster.status().stable_revision, Some(bad.clone()));
            prop_assert_eq!(cluster.pods("web:9"), 0);
        }
    }

    /// Whatever happens, the decision never panics and re-deciding on its own result changes nothing.
    #[test]
    fn decisions_are_idempotent(ops in proptest::collection::vec(op(), 1..30)) {
        let mut cluster = deployed(Rollout::test());
        for op in &ops {
            apply(&mut cluster, op);
            cluster.decide();
            let status = cluster.status();
            let revisions = cluster.revisions.clone();
            let again = cluster.decide();
            prop_assert!(again.transitions.is_empty(), "second decision made transitions: {:?}", again.transitions);
            prop_assert_eq!(&status.stable_revision, &cluster.status().stable_revision);
            let desired = |rs: &Vec<super::revisions::Revision>| rs.iter().map(|r| (r.hash.clone(), r.desired)).collect::<Vec<_>>();
            prop_assert_eq!(desired(&revisions), desired(&cluster.revisions));
        }
    }
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
        serde_yaml::from_str(include_str!("../../tests/golden/incident.yaml")).unwrap();
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

fn second_wave_state(cluster: &Cluster) -> Option<crate::api::SecondWaveState> {
    cluster
        .incident
        .as_ref()?
        .status
        .as_ref()?
        .second_wave
        .as_ref()
        .map(|w| w.state)
}

#[test]
fn a_rollback_puts_one_rolled_back_notification_per_receiver_in_the_outbox() {
    let cluster = rolled_back_with_incident();
    let pending = cluster.status().pending_notifications;
    assert_eq!(
        pending.iter().map(|p| p.event).collect::<Vec<_>>(),
        [NotificationEvent::Started, NotificationEvent::RolledBack],
        "nothing was delivered in this test: the start is still waiting too"
    );
    let pending = &pending[1..];
    assert_eq!(pending[0].event, NotificationEvent::RolledBack);
    assert_eq!(pending[0].receiver, "oncall");
    assert_eq!(pending[0].incident, cluster.status().incident);
    assert_eq!(pending[0].attempts, 0);
}

#[test]
fn the_second_wave_watches_then_ends_once_and_notifies() {
    use crate::analysis::judge::Counts;
    use crate::api::SecondWaveState;
    let mut cluster = rolled_back_with_incident();
    let plan = cluster.decide();
    assert_eq!(second_wave_state(&cluster), Some(SecondWaveState::Watching));
    let window = super::second_wave::window(&cluster.rollout);
    assert!(
        plan.requeue_after <= window,
        "looks again when the watch ends"
    );

    // Still watching: nothing to record, look again when it ends.
    cluster.advance(5);
    let plan = cluster.decide();
    assert_eq!(plan.second_wave, None);
    assert!(plan.transitions.is_empty());

    // The watch is over and the stable is back to its rate before the canary.
    cluster.advance(window.as_secs() as i64);
    cluster.second_wave = Some(Ok(Counts {
        canary_events: 11,
        baseline_events: 11,
        canary_exposure: 1000.0,
        baseline_exposure: 1000.0,
    }));
    let plan = cluster.decide();
    assert_eq!(
        second_wave_state(&cluster),
        Some(SecondWaveState::Recovered)
    );
    assert_eq!(
        plan.transitions
            .iter()
            .map(|t| t.reason)
            .collect::<Vec<_>>(),
        [Reason::SecondWaveRecovered]
    );
    assert_eq!(notifications(&plan), [NotificationEvent::SecondWaveEnded]);
    assert!(
        cluster
            .status()
            .pending_notifications
            .iter()
            .any(|p| p.event == NotificationEvent::SecondWaveEnded)
    );

    // Ended: nothing more, however often it looks.
    cluster.advance(3600);
    let plan = cluster.decide();
    assert!(plan.transitions.is_empty() && plan.second_wave.is_none());
}

#[test]
fn a_second_wave_end_whose_incident_write_was_lost_is_not_announced_twice() {
    use crate::api::SecondWaveState;
    let mut cluster = rolled_back_with_incident();
    cluster.decide();
    let window = super::second_wave::window(&cluster.rollout);
    cluster.advance(window.as_secs() as i64 + 1);
    cluster.second_wave = Some(Err("Prometheus at http://prometheus:9090: no answer".into()));
    let watching = cluster.incident.clone();
    let plan = cluster.decide();
    assert_eq!(plan.transitions.len(), 1);
    assert_eq!(second_wave_state(&cluster), Some(SecondWaveState::Unknown));
    // The controller died before the Incident's status was written: it still says Watching.
    cluster.incident = watching;
    let again = cluster.decide();
    assert!(again.transitions.is_empty(), "{:?}", again.transitions);
    assert_eq!(
        again.second_wave.map(|w| w.state),
        Some(SecondWaveState::Unknown),
        "the Incident gets its end recorded again"
    );
}

#[test]
fn a_common_mode_hold_has_no_second_wave() {
    let mut cluster = rolled_back_with_incident();
    if let Some(i) = cluster.incident.as_mut() {
        i.spec.triage = crate::api::Triage::CommonMode;
    }
    let plan = cluster.decide();
    assert_eq!(plan.second_wave, None);
}

#[test]
fn a_due_notification_brings_the_next_look_forward() {
    let mut cluster = rolled_back_with_incident();
    // The outbox holds a notification due in 7 s: the plan looks again by then.
    let mut status = cluster.status();
    status.pending_notifications.remove(0);
    status.pending_notifications[0].next_attempt_at =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            cluster.now + k8s_openapi::jiff::SignedDuration::from_secs(7),
        ));
    cluster.rollout.status = Some(status);
    cluster.incident = None;
    let plan = cluster.decide();
    assert_eq!(plan.requeue_after, std::time::Duration::from_secs(7));
}
