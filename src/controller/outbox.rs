//! The notification outbox, pure: which notifications a decision calls for, when each is due, and
//! what a delivery attempt's outcome does to it.
//!
//! A notification is written to the Rollout's `status.pendingNotifications` in the same status
//! write as the transition that calls for it, before the first attempt; it leaves the outbox when
//! the receiver answered 2xx or the attempts ran out. A controller killed in between finds it
//! there after a restart and sends it then, with the same idempotency key
//! ([`PendingNotification::id`]), so a receiver that got the first attempt can drop the repeat.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{NotificationEvent, NotificationResult, PendingNotification, Rollout};

use super::plan::Transition;

/// Attempts per notification before it is given up (and recorded as failed).
pub const MAX_ATTEMPTS: u32 = 6;
/// The wait after the first failed attempt; doubled after each further one.
pub const BASE_DELAY: Duration = Duration::from_secs(2);
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// The most notifications kept waiting per Rollout; beyond it the oldest are given up, so a
/// receiver that is down for long cannot grow the status without bound.
pub const MAX_PENDING: usize = 20;

/// The notifications `transitions` call for: one per receiver in `spec.notifications` for each
/// transition whose reason notifies ([`NotificationEvent::for_reason`]). `incident` is the
/// Incident a `RolledBack`, `RolloutHeld` or `SecondWaveEnded` notification is about; `revision`
/// the revision concerned. Ids are `<rollout uid>.<now, Unix ms>.<event>.<n>`.
pub fn plan(
    rollout: &Rollout,
    transitions: &[Transition],
    revision: Option<&str>,
    incident: Option<&str>,
    now: Timestamp,
) -> Vec<PendingNotification> {
    let uid = rollout.metadata.uid.as_deref().unwrap_or("unknown");
    let mut planned = Vec::new();
    for transition in transitions {
        let Some(event) = NotificationEvent::for_reason(transition.reason) else {
            continue;
        };
        let about = match event {
            NotificationEvent::RolledBack
            | NotificationEvent::Held
            | NotificationEvent::SecondWaveEnded => incident,
            NotificationEvent::Started | NotificationEvent::Promoted => None,
        };
        for receiver in &rollout.spec.notifications {
            planned.push(PendingNotification {
                id: format!("{uid}.{}.{event}.{}", now.as_millisecond(), planned.len()),
                receiver: receiver.name.clone(),
                event,
                revision: revision.map(str::to_string),
                incident: about.map(str::to_string),
                decided_at: Time(now),
                attempts: 0,
                next_attempt_at: None,
                last_error: None,
            });
        }
    }
    planned
}

/// Adds `fresh` to the outbox `pending`; beyond [`MAX_PENDING`] the oldest are given up and
/// returned, to be recorded as failed.
pub fn enqueue(
    pending: &mut Vec<PendingNotification>,
    fresh: Vec<PendingNotification>,
) -> Vec<PendingNotification> {
    pending.extend(fresh);
    let excess = pending.len().saturating_sub(MAX_PENDING);
    pending.drain(..excess).collect()
}

/// Whether `p` may be attempted at `now`.
pub fn is_due(p: &PendingNotification, now: Timestamp) -> bool {
    p.next_attempt_at.as_ref().is_none_or(|t| t.0 <= now)
}

/// How long until the next notification in `pending` is due (zero if one is due now); `None`
/// when the outbox is empty.
pub fn next_due(pending: &[PendingNotification], now: Timestamp) -> Option<Duration> {
    pending
        .iter()
        .map(|p| match &p.next_attempt_at {
            Some(t) if t.0 > now => Duration::try_from(t.0.duration_since(now)).unwrap_or_default(),
            _ => Duration::ZERO,
        })
        .min()
}

/// The wait after failed attempt number `attempts` (1-based): [`BASE_DELAY`] × 2^(attempts−1),
/// at most [`MAX_DELAY`].
pub fn backoff(attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(20);
    BASE_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

/// The outcome of one delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed (`error` never contains the URL); worth retrying.
    Failed(String),
    /// It cannot be sent until the spec or a Secret changes (receiver removed from the spec,
    /// Secret missing): given up at once.
    Impossible(String),
}

/// What becomes of a notification after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum After {
    /// Stays in the outbox, due again at `next_attempt_at`.
    Retry(PendingNotification),
    /// Leaves the outbox with this result (delivered, or given up).
    Done(NotificationResult),
}

/// Applies `attempt`, which ended at `now`, to `p`.
pub fn after(p: &PendingNotification, attempt: Attempt, now: Timestamp) -> After {
    let attempts = p.attempts + 1;
    let result = |delivered, attempts, error| result(p, delivered, attempts, error, now);
    match attempt {
        Attempt::Delivered => After::Done(result(true, attempts, None)),
        Attempt::Impossible(error) => After::Done(result(false, p.attempts, Some(error))),
        Attempt::Failed(error) if attempts >= MAX_ATTEMPTS => After::Done(result(
            false,
            attempts,
            Some(format!("after {attempts} attempts: {error}")),
        )),
        Attempt::Failed(error) => {
            let wait = SignedDuration::try_from(backoff(attempts)).unwrap_or_default();
            let mut next = p.clone();
            next.attempts = attempts;
            next.next_attempt_at = Some(Time(now.checked_add(wait).unwrap_or(now)));
            next.last_error = Some(error);
            After::Retry(next)
        }
    }
}

/// The record of a notification given up without an attempt (the outbox overflowed).
pub fn given_up(p: &PendingNotification, now: Timestamp) -> NotificationResult {
    let error = format!(
        "given up: more than {MAX_PENDING} notifications were waiting{}",
        p.last_error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default()
    );
    result(p, false, p.attempts, Some(error), now)
}

/// The status record of `p`'s delivery, ended at `now`.
fn result(
    p: &PendingNotification,
    delivered: bool,
    attempts: u32,
    error: Option<String>,
    now: Timestamp,
) -> NotificationResult {
    NotificationResult {
        name: p.receiver.clone(),
        event: p.event,
        delivered,
        attempts,
        error,
        time: Some(Time(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Reason;
    use proptest::prelude::*;

    fn rollout(receivers: &[&str]) -> Rollout {
        let notifications: Vec<serde_json::Value> = receivers
            .iter()
            .map(|n| {
                serde_json::json!({"name": n, "webhook": {"format": "json", "urlFrom": {"secretKeyRef": {"name": "s", "key": "url"}}}})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "firebreak.dev/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "strategy": {"canary": {"steps": []}},
                "notifications": notifications,
            }
        }))
        .unwrap()
    }

    fn transition(reason: Reason) -> Transition {
        Transition {
            reason,
            message: String::new(),
            warning: false,
        }
    }

    fn now() -> Timestamp {
        "2026-12-03T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_rollback_notifies_every_receiver_once_about_its_incident() {
        let planned = plan(
            &rollout(&["oncall", "audit"]),
            &[
                transition(Reason::StepCompleted),
                transition(Reason::AnalysisFailed),
            ],
            Some("abc"),
            Some("web-abc-1"),
            now(),
        );
        assert_eq!(planned.len(), 2);
        assert!(
            planned
                .iter()
                .all(|p| p.event == NotificationEvent::RolledBack
                    && p.incident.as_deref() == Some("web-abc-1")
                    && p.attempts == 0
                    && is_due(p, now()))
        );
        assert_ne!(planned[0].id, planned[1].id, "one key per receiver");
        assert!(planned[0].id.starts_with("u-1."));
    }

    #[test]
    fn started_and_promoted_are_not_about_an_incident_and_steps_notify_nobody() {
        let r = rollout(&["oncall"]);
        let planned = plan(
            &r,
            &[
                transition(Reason::CanaryStarted),
                transition(Reason::Promoted),
            ],
            None,
            Some("old-incident"),
            now(),
        );
        assert_eq!(
            planned.iter().map(|p| p.event).collect::<Vec<_>>(),
            [NotificationEvent::Started, NotificationEvent::Promoted]
        );
        assert!(planned.iter().all(|p| p.incident.is_none()));
        assert!(plan(&r, &[transition(Reason::StepCompleted)], None, None, now()).is_empty());
        assert!(
            plan(
                &rollout(&[]),
                &[transition(Reason::AnalysisFailed)],
                None,
                None,
                now()
            )
            .is_empty()
        );
    }

    #[test]
    fn the_second_wave_end_notifies() {
        let planned = plan(
            &rollout(&["oncall"]),
            &[transition(Reason::SecondWaveNotRecovered)],
            None,
            Some("web-abc-1"),
            now(),
        );
        assert_eq!(planned[0].event, NotificationEvent::SecondWaveEnded);
    }

    #[test]
    fn failures_back_off_until_the_attempts_run_out() {
        let mut p = plan(
            &rollout(&["oncall"]),
            &[transition(Reason::Aborted)],
            None,
            None,
            now(),
        )
        .remove(0);
        let mut t = now();
        for n in 1..MAX_ATTEMPTS {
            match after(&p, Attempt::Failed("HTTP 500".into()), t) {
                After::Retry(next) => {
                    assert_eq!(next.attempts, n);
                    assert!(!is_due(&next, t));
                    assert_eq!(next_due(std::slice::from_ref(&next), t), Some(backoff(n)));
                    assert_eq!(next.id, p.id, "the key survives retries");
                    t = next.next_attempt_at.clone().unwrap().0;
                    assert!(is_due(&next, t));
                    p = next;
                }
                After::Done(r) => panic!("gave up after {n} attempts: {r:?}"),
            }
        }
        match after(&p, Attempt::Failed("HTTP 500".into()), t) {
            After::Done(r) => {
                assert!(!r.delivered);
                assert_eq!(r.attempts, MAX_ATTEMPTS);
                assert!(r.error.unwrap().contains("HTTP 500"));
            }
            After::Retry(_) => panic!("retried past MAX_ATTEMPTS"),
        }
    }

    #[test]
    fn a_delivery_or_an_impossible_one_leaves_the_outbox() {
        let p = plan(
            &rollout(&["oncall"]),
            &[transition(Reason::Promoted)],
            None,
            None,
            now(),
        )
        .remove(0);
        assert!(
            matches!(after(&p, Attempt::Delivered, now()), After::Done(r) if r.delivered && r.attempts == 1)
        );
        assert!(matches!(
            after(&p, Attempt::Impossible("Secret shop/s not found".into()), now()),
            After::Done(r) if !r.delivered && r.attempts == 0
        ));
    }

    proptest! {
        #[test]
        fn backoff_grows_and_is_capped(n in 1u32..100) {
            prop_assert!(backoff(n) >= BASE_DELAY);
            prop_assert!(backoff(n) <= MAX_DELAY);
            prop_assert!(backoff(n + 1) >= backoff(n));
        }

        #[test]
        fn the_outbox_is_bounded_and_keeps_the_newest(existing in 0usize..30, fresh in 0usize..30) {
            let one = plan(&rollout(&["oncall"]), &[transition(Reason::Promoted)], None, None, now()).remove(0);
            let make = |prefix: &str, n: usize| (0..n).map(|i| PendingNotification { id: format!("{prefix}{i}"), ..one.clone() }).collect::<Vec<_>>();
            let mut pending = make("old", existing);
            let dropped = enqueue(&mut pending, make("new", fresh));
            prop_assert!(pending.len() <= MAX_PENDING);
            prop_assert_eq!(pending.len() + dropped.len(), existing + fresh);
            let kept_new = pending.iter().filter(|p| p.id.starts_with("new")).count();
            prop_assert_eq!(kept_new, fresh.min(MAX_PENDING));
        }
    }
}
