//! Notifications: which transitions notify, and the outbox after a rollback.

use super::*;

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
