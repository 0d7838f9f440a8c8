//! The Rollout controller: observe → decide → act → record.
//!
//! - **observe** reads the Rollout afresh (not from the watch cache, so a status just written is
//!   never decided on twice) and its ReplicaSets;
//! - **decide** ([`decide::decide`]) is pure;
//! - **act** applies ReplicaSets with server-side apply, one field manager, and only when they
//!   differ from what was observed;
//! - **record** writes status (server-side apply, only when it changed) and then publishes one
//!   Event per transition.
//!
//! State lives in the Rollout's status and its ReplicaSets, never in memory.

pub mod analysis;
pub mod conditions;
pub mod decide;
pub mod leader;
pub mod mitigate;
pub mod revisions;
pub mod second_wave;
pub mod validate;
pub mod windows;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::api::{Incident, MitigationAction, Phase, ROLLOUT_LABEL, Rollout, RolloutStatus};
use crate::traffic::{ReplicaWeighted, TrafficRouter, WeightOutcome};
use decide::{Observed, Plan};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use revisions::{Revision, build_replica_set};

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "firebreak";

/// Errors of one reconciliation. The variant name is the Event reason and metric label.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Talking to the API server failed (retried with back-off).
    #[error("Kubernetes API call failed while {action}: {source}")]
    Kube {
        /// What the controller was doing.
        action: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// The API server refused an object the rollout needs as invalid (HTTP 400 or 422), e.g. a
    /// pod-template annotation over the size limit. Reported in the Rollout's status and as an
    /// Event; retried slowly, since only a change of the spec can fix it.
    #[error("the API server refused {object}: {message}")]
    Refused {
        /// The object, e.g. `ReplicaSet checkout-bcd5f8x2k9`.
        object: String,
        /// The API server's message, which names the field.
        message: String,
    },
    /// The namespace is being deleted: nothing new is created in it.
    #[error("namespace {namespace} is being deleted; nothing new is created in it")]
    NamespaceTerminating {
        /// The namespace.
        namespace: String,
    },
}

impl Error {
    /// A short, stable label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "KubeApi",
            Error::Refused { .. } => "Refused",
            Error::NamespaceTerminating { .. } => "NamespaceTerminating",
        }
    }

    /// How long to wait before trying again: seconds for a failed call, minutes for what only
    /// a change (of the spec, or the namespace's end) settles.
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::Kube { .. } => Duration::from_secs(5),
            Error::Refused { .. } | Error::NamespaceTerminating { .. } => Duration::from_secs(300),
        }
    }
}

/// Classifies a failed write of `object` in `namespace`: a refusal of the object itself
/// ([`Error::Refused`]), a namespace being deleted ([`Error::NamespaceTerminating`]), or any
/// other API failure.
fn write_err(object: String, namespace: &str, action: String) -> impl FnOnce(kube::Error) -> Error {
    let namespace = namespace.to_string();
    move |source| match &source {
        kube::Error::Api(e) if e.code == 403 && e.message.contains("being terminated") => {
            Error::NamespaceTerminating { namespace }
        }
        kube::Error::Api(e) if e.code == 400 || e.code == 422 => Error::Refused {
            object,
            message: e.message.clone(),
        },
        _ => Error::Kube { action, source },
    }
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

/// Shared state of the reconcilers.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Publishes Kubernetes Events.
    pub recorder: Recorder,
    /// Moves traffic (replica-weighted: traffic follows pods).
    pub router: ReplicaWeighted,
    /// Deployment windows for Rollouts without their own.
    pub windows: windows::WindowDefaults,
    /// The controller's own metrics.
    pub metrics: crate::telemetry::Metrics,
    /// One pooled HTTP client per Prometheus address, shared by every look.
    pub prometheus: crate::analysis::prometheus::PrometheusPool,
}

/// The controller's metrics and health state, shared with the HTTP endpoints.
#[derive(Clone, Debug, Default)]
pub struct Telemetry {
    /// Prometheus metrics.
    pub metrics: crate::telemetry::Metrics,
    /// Readiness for `/readyz`.
    pub health: crate::telemetry::Health,
}

/// Runs the controller until SIGTERM/SIGINT. `namespace`: watch only that namespace;
/// `windows`: the deployment windows of Rollouts without their own.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    windows: windows::WindowDefaults,
    telemetry: Telemetry,
) -> anyhow::Result<()> {
    let (rollouts, replica_sets): (Api<DeserializeGuard<Rollout>>, Api<ReplicaSet>) =
        match &namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    // Started together with the CRDs (a GitOps sync, `kubectl apply -f` of a directory), the
    // controller may come up before the API server serves Rollouts: wait for it, saying why.
    let mut waited = 0u32;
    while let Err(e) = rollouts.list(&ListParams::default().limit(1)).await {
        if waited.is_multiple_of(15) {
            warn!(
                error = %e,
                "waiting for the Rollout CRD to be established; install it with `firebreak crd | kubectl apply --server-side -f -`"
            );
        }
        waited += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if waited > 0 {
        info!("the Rollout CRD is established");
    }
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "firebreak".into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    telemetry.health.set_ready(true);
    let context = Arc::new(Context {
        client,
        recorder,
        router: ReplicaWeighted,
        windows,
        metrics: telemetry.metrics.clone(),
        prometheus: crate::analysis::prometheus::PrometheusPool::new()?,
    });
    info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        "controller started"
    );
    Controller::new(rollouts, watcher::Config::default())
        .owns(
            replica_sets,
            watcher::Config::default().labels(ROLLOUT_LABEL),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "reconcile failed");
            }
        })
        .await;
    info!("controller stopped");
    Ok(())
}

fn error_policy(_: Arc<DeserializeGuard<Rollout>>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(error = %error, kind = error.metric_label(), "retrying");
    ctx.metrics.record_error(error.metric_label());
    Action::requeue(error.retry_after())
}

async fn reconcile(
    guard: Arc<DeserializeGuard<Rollout>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    // Every log line of a reconcile carries the rollout, its namespace and its revision.
    let (name, namespace, revision) = match &guard.0 {
        Ok(r) => (
            r.name_any(),
            r.namespace().unwrap_or_default(),
            revisions::template_hash(&r.name_any(), &r.spec.template),
        ),
        Err(invalid) => (
            invalid.metadata.name.clone().unwrap_or_default(),
            invalid.metadata.namespace.clone().unwrap_or_default(),
            String::new(),
        ),
    };
    let span = tracing::info_span!("reconcile", rollout = %name, namespace = %namespace, revision = %revision);
    let result = reconcile_inner(guard, ctx.clone()).instrument(span).await;
    let outcome = result.as_ref().err().map_or("ok", Error::metric_label);
    ctx.metrics
        .observe_reconcile(started.elapsed().as_secs_f64(), outcome);
    result
}

async fn reconcile_inner(
    guard: Arc<DeserializeGuard<Rollout>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let cached = match &guard.0 {
        Ok(rollout) => rollout,
        Err(invalid) => {
            report_invalid(&ctx, invalid).await?;
            return Ok(Action::await_change());
        }
    };
    let name = cached.name_any();
    let namespace = cached.namespace().unwrap_or_default();
    let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &namespace);

    // Observe, fresh: the watch cache may not yet hold the status this controller just wrote.
    let rollout = match api
        .get_opt(&name)
        .await
        .map_err(kube_err(format!("reading Rollout {namespace}/{name}")))?
    {
        Some(r) => r,
        None => {
            ctx.metrics.set_rollout_phase(&namespace, &name, None);
            return Ok(Action::await_change());
        }
    };
    if rollout.metadata.deletion_timestamp.is_some() {
        ctx.metrics.set_rollout_phase(&namespace, &name, None);
        return Ok(Action::await_change());
    }
    // The name is a label value on every ReplicaSet and pod (`firebreak.dev/rollout`); the CRD
    // refuses longer names, but an object stored before that rule may have one.
    let checked = if name.len() > validate::MAX_NAME_LENGTH {
        Err(validate::SpecError::Field {
            field: "metadata.name".into(),
            message: format!(
                "is {} characters; a Rollout's name is a label value, at most {}: recreate the Rollout with a shorter name",
                name.len(),
                validate::MAX_NAME_LENGTH
            ),
        })
    } else {
        validate::validate(&rollout.spec)
    };
    let spec = match checked {
        Ok(spec) => spec,
        Err(e) => {
            record_degraded(
                &ctx,
                &api,
                &rollout,
                conditions::Degraded::InvalidSpec,
                &format!("invalid spec: {e}"),
            )
            .await?;
            ctx.metrics
                .set_rollout_phase(&namespace, &name, Some("Degraded"));
            return Ok(Action::await_change());
        }
    };
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let owned = rs_api
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}={name}")))
        .await
        .map_err(kube_err("listing ReplicaSets"))?;
    let uid = rollout.uid();
    let revisions: Vec<Revision> = owned
        .items
        .iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == uid.as_ref() && o.controller == Some(true))
        })
        .filter_map(Revision::from_replica_set)
        .collect();

    let now = Timestamp::now();
    let analysis = analysis::observe(&ctx.client, &ctx.prometheus, &rollout, &spec, now).await;
    let plan = decide::decide(&Observed {
        rollout: &rollout,
        spec: &spec,
        revisions: &revisions,
        now,
        analysis: analysis.as_ref(),
        window: ctx.windows.gate(&rollout, now),
    });

    if let Some(a) = &analysis {
        let before = rollout
            .status
            .as_ref()
            .and_then(|s| s.analysis.as_ref())
            .map_or(0, |p| p.looks);
        if a.status.looks > before {
            for metric in &a.status.metrics {
                ctx.metrics
                    .record_analysis(&metric.name, metric.verdict.as_str());
            }
        }
    }
    let creates = plan
        .replica_sets
        .iter()
        .any(|d| !revisions.iter().any(|r| r.name == d.name));
    if creates && namespace_terminating(&ctx, &namespace).await? {
        info!("namespace is being deleted: no new ReplicaSet is created in it");
        ctx.metrics.set_rollout_phase(&namespace, &name, None);
        return Ok(Action::await_change());
    }
    let mitigation = match act(&ctx, &rs_api, &rollout, &revisions, &plan).await {
        Ok(mitigation) => mitigation,
        Err(refused @ Error::Refused { .. }) => {
            let what =
                format!("{refused}. Fix spec.template (or the field it names) and apply again");
            record_degraded(
                &ctx,
                &api,
                &rollout,
                conditions::Degraded::ObjectRefused,
                &what,
            )
            .await?;
            ctx.metrics
                .set_rollout_phase(&namespace, &name, Some("Degraded"));
            return Err(refused);
        }
        Err(e) => return Err(e),
    };
    if plan.flip_kill_switch
        && let Some(incident) = &plan.incident
    {
        // From the evidence turning against the canary (or the decision) to the canary shrunk.
        let from = incident
            .analysis
            .as_ref()
            .and_then(|a| a.adverse_since.as_ref())
            .map_or(now, |t| t.0);
        let seconds = Timestamp::now().duration_since(from).as_secs_f64();
        ctx.metrics
            .observe_rollback(seconds, incident.trigger.as_str());
    }
    let incident = match &plan.incident {
        Some(incident) => Some(
            create_incident(&ctx, &rollout, &spec, &revisions, incident, mitigation, now).await?,
        ),
        None => {
            // Mitigation that finishes after the decision (the bad revision of a failed bake
            // drains once the previous one can carry the load) completes the existing record.
            if !mitigation.is_empty()
                && let Some(name) = plan.status.incident.as_deref()
            {
                complete_mitigation(&ctx, &namespace, name, mitigation).await;
            }
            None
        }
    };
    record(&ctx, &api, &rollout, &plan).await?;
    let phase = plan.status.phase.map(|p| p.to_string());
    ctx.metrics
        .set_rollout_phase(&namespace, &name, phase.as_deref());
    notify(&ctx, &rollout, &plan, incident);
    let second_wave = second_wave::check(&ctx, &rollout, Timestamp::now()).await;
    let requeue = second_wave.map_or(plan.requeue_after, |w| w.min(plan.requeue_after));
    Ok(Action::requeue(requeue))
}

/// Applies the planned ReplicaSets (only those that differ) and deletes the retired ones. In a
/// rollback the kill switch is flipped first and traffic moved before the canary shrinks; the
/// mitigation actions are returned with their times, for the Incident.
async fn act(
    ctx: &Context,
    api: &Api<ReplicaSet>,
    rollout: &Rollout,
    observed: &[Revision],
    plan: &Plan,
) -> Result<Vec<MitigationAction>, Error> {
    let mut mitigation = Vec::new();
    if plan.flip_kill_switch
        && let Some(kill_switch) = &rollout.spec.kill_switch
    {
        let namespace = rollout.namespace().unwrap_or_default();
        mitigation.extend(mitigate::flip(&ctx.client, &namespace, kill_switch).await);
    }
    let weight = plan.status.canary_weight.clamp(0, 100) as u8;
    match ctx.router.set_weight(weight).await {
        Ok(WeightOutcome::Routed) if plan.mitigating => mitigation.push(MitigationAction {
            time: Time(Timestamp::now()),
            action: "TrafficToStable".into(),
            detail: format!("router {}: canary weight 0%", ctx.router.name()),
        }),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "traffic router failed"),
    }
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    for desired in &plan.replica_sets {
        let unchanged = observed.iter().any(|r| {
            r.name == desired.name
                && r.desired == desired.replicas
                && r.number == desired.number
                && r.promoted_at == desired.promoted_at
        });
        if unchanged {
            continue;
        }
        let rs = build_replica_set(rollout, desired);
        api.patch(&desired.name, &apply, &Patch::Apply(&rs))
            .await
            .map_err(write_err(
                format!("ReplicaSet {}", desired.name),
                &rollout.namespace().unwrap_or_default(),
                format!(
                    "applying ReplicaSet {} ({} replicas)",
                    desired.name, desired.replicas
                ),
            ))?;
    }
    let rolled_back = plan.status.rolled_back_revision.as_deref();
    let shrunk: Vec<String> = plan
        .replica_sets
        .iter()
        .filter(|d| {
            d.replicas == 0
                && (plan.mitigating || Some(d.hash.as_str()) == rolled_back)
                && observed.iter().any(|r| r.name == d.name && r.desired > 0)
        })
        .map(|d| d.name.clone())
        .collect();
    if plan.mitigating || !shrunk.is_empty() {
        mitigation.push(MitigationAction {
            time: Time(Timestamp::now()),
            action: "CanaryScaledDown".into(),
            detail: format!(
                "{} scaled to 0 pods; without a traffic router traffic follows pods, so the stable serves all requests",
                if shrunk.is_empty() { "the canary ReplicaSet".to_string() } else { shrunk.join(", ") }
            ),
        });
    }
    // A rollback during the bake grows the previous revision back before the bad one drains
    // (it serves all traffic, so shrinking it first would leave too few pods).
    if let Some(incident) = plan
        .incident
        .as_ref()
        .filter(|i| i.trigger == crate::api::Trigger::BakeFailed)
        && let Some(restored) = plan
            .replica_sets
            .iter()
            .find(|d| d.hash == incident.stable_revision)
    {
        mitigation.push(MitigationAction {
            time: Time(Timestamp::now()),
            action: "StableScaledUp".into(),
            detail: format!(
                "previous revision {} ({}) scaled to {} pods; revision {} drains once they are available",
                incident.stable_revision, restored.name, restored.replicas, incident.revision
            ),
        });
    }
    for name in &plan.delete {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(kube_err(format!("deleting ReplicaSet {name}"))(e)),
        }
    }
    Ok(mitigation)
}

/// Sends the notifications the decision's transitions call for, in the background: a receiver
/// never delays the controller.
fn notify(ctx: &Context, rollout: &Rollout, plan: &Plan, incident: Option<Incident>) {
    use crate::incident::notify::{NotificationEvent, spawn};
    if rollout.spec.notifications.is_empty() {
        return;
    }
    let mut now = rollout.clone();
    now.status = Some(plan.status.clone());
    for transition in &plan.transitions {
        let Some(event) = NotificationEvent::for_reason(transition.reason) else {
            continue;
        };
        let about = matches!(
            event,
            NotificationEvent::RolledBack | NotificationEvent::Held
        )
        .then(|| incident.clone())
        .flatten();
        spawn(ctx.client.clone(), &now, event, about);
    }
}

/// Creates the Incident a decision planned; one that already exists (a retried decision after a
/// crash) is left as it is. Returns the record.
async fn create_incident(
    ctx: &Context,
    rollout: &Rollout,
    spec: &validate::ValidSpec,
    revisions: &[Revision],
    plan: &crate::incident::record::IncidentPlan,
    mut mitigation: Vec<MitigationAction>,
    now: Timestamp,
) -> Result<Incident, Error> {
    if plan.triage == crate::api::Triage::CommonMode {
        mitigation.push(MitigationAction {
            time: Time(now),
            action: "Held".into(),
            detail: "rollout held at its step; nothing rolled back, since the baseline is as bad as the canary".into(),
        });
    }
    let stable = revisions
        .iter()
        .find(|r| r.hash == plan.stable_revision && r.arm == revisions::Arm::Revision)
        .map(|r| &r.template);
    let incident =
        crate::incident::record::build(rollout, plan, stable, &spec.template, mitigation, now);
    let api: Api<Incident> =
        Api::namespaced(ctx.client.clone(), &rollout.namespace().unwrap_or_default());
    match api
        .create(&kube::api::PostParams::default(), &incident)
        .await
    {
        Ok(_) => info!(incident = %plan.name, rollout = %rollout.name_any(), "incident recorded"),
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(kube_err(format!("creating Incident {}", plan.name))(e)),
    }
    Ok(incident)
}

/// Appends mitigation `actions` done after the Incident `name` was written to its record, and
/// recomputes its time-to-mitigate (from the decision to the last action). A record that cannot
/// be updated is logged, never retried at the cost of the rollout.
async fn complete_mitigation(
    ctx: &Context,
    namespace: &str,
    name: &str,
    actions: Vec<MitigationAction>,
) {
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), namespace);
    let mut incident = match api.get_opt(name).await {
        Ok(Some(incident)) => incident,
        Ok(None) => return,
        Err(e) => {
            warn!(incident = %name, error = %e, "could not read the Incident to complete its mitigation");
            return;
        }
    };
    incident.spec.mitigation.extend(actions);
    if let Some(decided) = &incident.spec.anchor.detected_at {
        incident.spec.time_to_mitigate_seconds =
            crate::incident::record::time_to_mitigate(decided.0, &incident.spec.mitigation);
    }
    let patch = json!({"spec": {
        "mitigation": incident.spec.mitigation,
        "timeToMitigateSeconds": incident.spec.time_to_mitigate_seconds,
    }});
    if let Err(e) = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        warn!(incident = %name, error = %e, "could not complete the Incident's mitigation");
    }
}

/// Writes the status when it changed, then publishes the transitions as Events.
async fn record(
    ctx: &Context,
    api: &Api<Rollout>,
    rollout: &Rollout,
    plan: &Plan,
) -> Result<(), Error> {
    let name = rollout.name_any();
    if rollout.status.as_ref() != Some(&plan.status) {
        apply_status(api, &name, &plan.status).await?;
    }
    let reference = rollout.object_ref(&());
    for t in &plan.transitions {
        info!(rollout = %name, namespace = rollout.namespace().unwrap_or_default(), reason = %t.reason, "{}", t.message);
        let event = Event {
            type_: if t.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: t.reason.to_string(),
            note: Some(truncate(&t.message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        };
        // An Event that cannot be published must not undo a rollout step already recorded.
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            warn!(error = %e, "could not publish Event");
        }
    }
    Ok(())
}

async fn apply_status(api: &Api<Rollout>, name: &str, status: &RolloutStatus) -> Result<(), Error> {
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
    .map_err(kube_err(format!("writing status of Rollout {name}")))?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Whether `namespace` is being deleted (read only when a new object is about to be created).
async fn namespace_terminating(ctx: &Context, namespace: &str) -> Result<bool, Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    match api.get_opt(namespace).await {
        Ok(ns) => Ok(ns.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())),
        // Without permission to read it (RBAC from before this check), the write itself tells:
        // a refusal for a namespace being deleted backs off (`Error::NamespaceTerminating`).
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::debug!(error = %e, "cannot read the namespace; assuming it is not being deleted");
            Ok(false)
        }
        Err(e) => Err(kube_err(format!("reading namespace {namespace}"))(e)),
    }
}

/// A Rollout the controller cannot act on (its spec fails validation, or the API server refused
/// an object it needs): say so in status (phase Degraded, the message naming the field and the
/// fix, conditions with the cause's reason) and as a Warning Event with that reason, and leave
/// the ReplicaSets as they are. Writes only when the status would change.
async fn record_degraded(
    ctx: &Context,
    api: &Api<Rollout>,
    rollout: &Rollout,
    cause: conditions::Degraded,
    message: &str,
) -> Result<(), Error> {
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
        apply_status(api, &rollout.name_any(), &status).await?;
    }
    if rollout.status.as_ref().and_then(|s| s.message.as_deref()) != status.message.as_deref() {
        let event = Event {
            type_: EventType::Warning,
            reason: cause.reason().as_str().into(),
            note: Some(truncate(message, 1000)),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &rollout.object_ref(&())).await {
            warn!(error = %e, "could not publish Event");
        }
    }
    Ok(())
}

/// An object that does not even deserialize: report it in its status and move on.
async fn report_invalid(
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
    let current = api.get_opt(name).await.map_err(kube_err(format!(
        "reading invalid Rollout {namespace}/{name}"
    )))?;
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
    .map_err(kube_err(format!(
        "reporting invalid Rollout {namespace}/{name}"
    )))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
