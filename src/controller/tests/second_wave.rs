//! The second-wave watch after a rollback: it ends once and notifies once.

use super::*;

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
fn the_second_wave_watches_then_ends_once_and_notifies() {
    use crate::api::SecondWaveState;
    use firebreak_judge::Counts;
    let mut cluster = rolled_back_with_incident();
    let plan = cluster.decide();
    assert_eq!(second_wave_state(&cluster), Some(SecondWaveState::Watching));
    let window = crate::controller::second_wave::window(&cluster.rollout);
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
    let window = crate::controller::second_wave::window(&cluster.rollout);
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
