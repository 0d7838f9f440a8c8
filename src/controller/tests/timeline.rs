//! The status timeline: bounded, and folded so the anchors are never evicted.

use super::*;

#[test]
fn timeline_is_bounded() {
    let mut cluster = deployed(Rollout::test().with_steps(vec![weight(10), pause(None)]));
    for i in 0..40 {
        cluster.set_image(&format!("web:{}", i + 2)).settle();
    }
    assert_eq!(cluster.status().timeline.len(), crate::api::TIMELINE_LIMIT);
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
    crate::controller::decide::push_timeline(&mut timeline, entry(Reason::Deployed, 0));
    crate::controller::decide::push_timeline(&mut timeline, entry(Reason::CanaryStarted, 1));
    for s in 0..40 {
        crate::controller::decide::push_timeline(
            &mut timeline,
            entry(Reason::AnalysisUnavailable, 10 + 2 * s),
        );
        crate::controller::decide::push_timeline(
            &mut timeline,
            entry(Reason::AnalysisRecovered, 11 + 2 * s),
        );
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
        crate::controller::decide::push_timeline(&mut timeline, e);
    }
    assert_eq!(timeline.len(), TIMELINE_LIMIT);
    assert_eq!(timeline[0].reason, Reason::Deployed);
    assert_eq!(timeline[1].reason, Reason::CanaryStarted);
}
