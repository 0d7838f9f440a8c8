//! The record phase: the Rollout's status (server-side apply, only when it changed, only on the
//! copy the decision was made on), the transitions as Events through the controller's one
//! recorder, the Degraded reports of Rollouts it cannot act on, and the Incident's second-wave
//! state.

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::api::{Incident, Phase, Rollout, RolloutStatus, SecondWave};
use crate::incident::message::truncate;

use super::error::{Error, read_err, write_err};
use super::plan::Plan;
use super::{Context, FIELD_MANAGER, conditions};

/// Writes the status when it changed, then publishes the transitions as Events. Returns the
/// Rollout as written, when it was.
pub async fn record(
    ctx: &Context,
    api: &Api<Rollout>,
    rollout: &Rollout,
    plan: &Plan,
) -> Result<Option<Rollout>, Error> {
    let name = rollout.name_any();
    let mut written = None;
    if rollout.status.as_ref() != Some(&plan.status) {
        written = Some(apply_status(ctx, api, rollout, &plan.status).await?);
    }
    let reference = rollout.object_ref(&());
    for t in &plan.transitions {
        info!(rollout = %name, namespace = rollout.namespace().unwrap_or_default(), reason = %t.reason, "{}", t.message);
        let type_ = if t.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(
            ctx,
            &reference,
            type_,
            t.reason.as_str(),
            "Reconcile",
            &t.message,
        )
        .await;
    }
    Ok(written)
}

/// Writes `status` as the Rollout's whole status (server-side apply, [`FIELD_MANAGER`]) on the
/// condition that the Rollout is still the copy `rollout` the decision was made on (its
/// resourceVersion): a decision made on a stale copy is never written ([`Error::Conflict`]).
/// Remembers the resourceVersion written, so the next reconcile can tell a cache that has not
/// caught up yet ([`Context::is_stale`]).
pub async fn apply_status(
    ctx: &Context,
    api: &Api<Rollout>,
    rollout: &Rollout,
    status: &RolloutStatus,
) -> Result<Rollout, Error> {
    let name = rollout.name_any();
    let body = json!({
        "apiVersion": Rollout::api_version(&()),
        "kind": Rollout::kind(&()),
        "metadata": {"resourceVersion": rollout.resource_version()},
        "status": status,
    });
    let written = api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(write_err(
            format!(
                "status of Rollout {}/{name}",
                rollout.namespace().unwrap_or_default()
            ),
            &rollout.namespace().unwrap_or_default(),
        ))?;
    ctx.remember_written(&written);
    Ok(written)
}

/// Most bytes of an Event's note (the API server's limit is 1 kB); longer notes are cut.
pub const EVENT_NOTE_LIMIT: usize = 1000;

/// Publishes an Event about `reference` with the controller's one Event recorder: `type_`,
/// `reason` (CamelCase), `action` (what the controller was doing, e.g. `Reconcile`) and `note`
/// (cut to [`EVENT_NOTE_LIMIT`] bytes). An Event that cannot be published never undoes what was
/// already done: it is logged.
pub async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(note, EVENT_NOTE_LIMIT)),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, reference).await {
        warn!(error = %e, %reason, "could not publish Event");
    }
}

/// Records `wave` as the second-wave state of the Incident `namespace/name` (a JSON merge patch
/// of its status with [`FIELD_MANAGER`]). A record that cannot be written is logged; the check
/// runs again at the next reconcile.
pub async fn write_second_wave(ctx: &Context, namespace: &str, name: &str, wave: &SecondWave) {
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), namespace);
    let body = json!({"status": {"secondWave": wave}});
    if let Err(e) = api
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&body),
        )
        .await
    {
        warn!(incident = %name, error = %e, "could not record the second-wave check");
    }
}

/// A Rollout the controller cannot act on (its spec fails validation, or the API server refused
/// an object it needs): say so in status (phase Degraded, the message naming the field and the
/// fix, conditions with the cause's reason), in the `firebreak_rollouts` gauge, and as a Warning
/// Event with that reason, and leave the ReplicaSets as they are. Writes only when the status
/// would change.
pub async fn record_degraded(
    ctx: &Context,
    api: &Api<Rollout>,
    rollout: &Rollout,
    cause: conditions::Degraded,
    message: &str,
) -> Result<(), Error> {
    ctx.metrics.set_rollout_phase(
        &rollout.namespace().unwrap_or_default(),
        &rollout.name_any(),
        Some(&Phase::Degraded.to_string()),
    );
    let mut status = rollout.status.clone().unwrap_or_default();
    status.phase = Some(Phase::Degraded);
    status.message = Some(message.to_string());
    status.observed_generation = rollout.metadata.generation;
    conditions::set_degraded(
        &mut status,
        rollout.metadata.generation,
        Timestamp::now(),
        cause,
    );
    if rollout.status.as_ref() != Some(&status) {
        apply_status(ctx, api, rollout, &status).await?;
    }
    if rollout.status.as_ref().and_then(|s| s.message.as_deref()) != status.message.as_deref() {
        publish(
            ctx,
            &rollout.object_ref(&()),
            EventType::Warning,
            cause.reason().as_str(),
            "Reconcile",
            message,
        )
        .await;
    }
    Ok(())
}

/// An object that does not even deserialize: report it in its status and move on.
pub async fn report_invalid(
    ctx: &Context,
    invalid: &kube::core::error_boundary::InvalidObject,
) -> Result<(), Error> {
    let (Some(name), Some(namespace)) = (&invalid.metadata.name, &invalid.metadata.namespace)
    else {
        return Ok(());
    };
    warn!(rollout = %name, namespace = %namespace, error = %invalid.error, "Rollout does not deserialize");
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        namespace,
        &kube::api::ApiResource::erase::<Rollout>(&()),
    );
    let mut status = RolloutStatus {
        phase: Some(Phase::Degraded),
        message: Some(format!(
            "invalid spec: the Rollout cannot be read by the controller: {}",
            invalid.error
        )),
        observed_generation: invalid.metadata.generation,
        ..RolloutStatus::default()
    };
    // Stalled=True with reason InvalidSpec, so kstatus and GitOps tools read it as failed.
    conditions::set_degraded(
        &mut status,
        invalid.metadata.generation,
        Timestamp::now(),
        conditions::Degraded::InvalidSpec,
    );
    // Conditions carry the time they were set: write only when the report is new, or every
    // write would wake this reconcile again.
    let current = api
        .get_opt(name)
        .await
        .map_err(read_err(format!("invalid Rollout {namespace}/{name}")))?;
    let reported = current
        .as_ref()
        .and_then(|o| o.data["status"]["message"].as_str());
    if reported == status.message.as_deref() {
        return Ok(());
    }
    let body = json!({
        "apiVersion": Rollout::api_version(&()),
        "kind": Rollout::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(write_err(
        format!("status of invalid Rollout {namespace}/{name}"),
        namespace,
    ))?;
    Ok(())
}
