//! The notify phase: attempts the notifications that are due in the Rollout's outbox
//! (`status.pendingNotifications`, planned by [`super::outbox`]), all at once, then writes the
//! outbox back and records each finished delivery as an Event and in its Incident's status.
//!
//! It runs inside the reconcile, so a controller that loses its Lease (and with it the running
//! reconciles) sends nothing more; the new leader finds the outbox in status.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{Incident, NotificationResult, PendingNotification, Rollout};
use crate::incident::deliver::{self, payload, post, webhook_url};
use crate::incident::message::{message_for, truncate};

use super::Context;
use super::error::Error;
use super::outbox::{self, After, Attempt};
use super::record::{apply_status, publish};

/// Attempts every notification of `rollout`'s outbox that is due now, and records the outcomes;
/// `given_up` are notifications the decision dropped from a full outbox, recorded as failed.
/// Returns how long until the next one is due (`None`: the outbox is empty).
///
/// # Errors
///
/// Writing the outbox back failed; the notifications stay in it and are attempted again (with
/// the same idempotency key, so a receiver can drop what it already got).
pub async fn send_due(
    ctx: &Context,
    api: &Api<Rollout>,
    rollout: &Rollout,
    given_up: &[PendingNotification],
) -> Result<Option<Duration>, Error> {
    let mut status = rollout.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let mut finished: Vec<(PendingNotification, NotificationResult)> = given_up
        .iter()
        .map(|p| (p.clone(), outbox::given_up(p, now)))
        .collect();
    let (due, waiting): (Vec<_>, Vec<_>) = status
        .pending_notifications
        .iter()
        .cloned()
        .partition(|p| outbox::is_due(p, now));
    if !due.is_empty() {
        let attempts =
            futures::future::join_all(due.iter().map(|p| attempt(ctx, rollout, p))).await;
        let ended = Timestamp::now();
        let mut remaining = waiting;
        for (p, attempt) in due.iter().zip(attempts) {
            match outbox::after(p, attempt, ended) {
                After::Retry(next) => {
                    warn!(
                        receiver = %p.receiver,
                        event = %p.event,
                        delivery = %p.id,
                        attempts = next.attempts,
                        error = next.last_error.as_deref().unwrap_or_default(),
                        "notification not delivered yet; retrying later"
                    );
                    remaining.push(next);
                }
                After::Done(result) => finished.push((p.clone(), result)),
            }
        }
        remaining.sort_by_key(|p| p.decided_at.0);
        status.pending_notifications = remaining;
        apply_status(ctx, api, rollout, &status).await?;
    }
    report(ctx, rollout, &finished).await;
    Ok(outbox::next_due(
        &status.pending_notifications,
        Timestamp::now(),
    ))
}

/// One attempt of `p`: the receiver's URL from its Secret, the message, one POST.
async fn attempt(ctx: &Context, rollout: &Rollout, p: &PendingNotification) -> Attempt {
    let Some(receiver) = rollout
        .spec
        .notifications
        .iter()
        .find(|n| n.name == p.receiver)
    else {
        return Attempt::Impossible(format!(
            "receiver {} is no longer in spec.notifications",
            p.receiver
        ));
    };
    let namespace = rollout.namespace().unwrap_or_default();
    let incident = match p.incident.as_deref() {
        Some(name) => incident(ctx, &namespace, name).await,
        None => None,
    };
    let mut message = message_for(p.event, rollout, incident.as_ref());
    if message.revision.is_none() {
        message.revision = p.revision.clone();
    }
    let body = payload(receiver.webhook.format, &message, incident.as_ref(), &p.id);
    let url = match webhook_url(&ctx.client, &namespace, receiver).await {
        Ok(url) => url,
        Err(e) => return Attempt::Failed(e),
    };
    match post(&ctx.http, &url, &body, &p.id).await {
        Ok(()) => Attempt::Delivered,
        Err(e) => Attempt::Failed(e),
    }
}

/// The Incident `name`, or `None` (logged) when it cannot be read.
async fn incident(ctx: &Context, namespace: &str, name: &str) -> Option<Incident> {
    match ctx.read_incident(namespace, name).await {
        Ok(found) => found,
        Err(e) => {
            warn!(incident = %name, error = %e, "could not read the Incident for a notification");
            None
        }
    }
}

/// Each finished delivery as an Event on the Rollout (`NotificationSent` or
/// `NotificationFailed`) and in its Incident's `status.notifications`.
async fn report(
    ctx: &Context,
    rollout: &Rollout,
    finished: &[(PendingNotification, NotificationResult)],
) {
    let reference = rollout.object_ref(&());
    let mut by_incident: BTreeMap<&str, Vec<NotificationResult>> = BTreeMap::new();
    for (p, result) in finished {
        let attempts = format!(
            "{} attempt{}",
            result.attempts,
            if result.attempts == 1 { "" } else { "s" }
        );
        let (type_, reason, note) = if result.delivered {
            info!(receiver = %p.receiver, event = %p.event, delivery = %p.id, attempts = result.attempts, "notification delivered");
            (
                EventType::Normal,
                "NotificationSent",
                format!(
                    "{}: {} notification delivered after {attempts}",
                    p.receiver, p.event
                ),
            )
        } else {
            let error = Error::Notification {
                receiver: p.receiver.clone(),
                message: result.error.clone().unwrap_or_default(),
            };
            warn!(error = %error, event = %p.event, delivery = %p.id, "notification given up");
            ctx.metrics.record_error(error.metric_label());
            (
                EventType::Warning,
                error.metric_label(),
                format!(
                    "{}: {} notification not delivered: {}",
                    p.receiver,
                    p.event,
                    result.error.as_deref().unwrap_or("unknown error")
                ),
            )
        };
        publish(
            ctx,
            &reference,
            type_,
            reason,
            "Notify",
            &truncate(&note, 900),
        )
        .await;
        if let Some(incident) = p.incident.as_deref() {
            by_incident
                .entry(incident)
                .or_default()
                .push(result.clone());
        }
    }
    let namespace = rollout.namespace().unwrap_or_default();
    for (incident, results) in by_incident {
        deliver::record_results(&ctx.client, &namespace, incident, &results).await;
    }
}
