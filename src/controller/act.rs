//! The act phase: carries out a [`Plan`]: the kill switch, the traffic router, the
//! ReplicaSets (server-side apply, only those that differ), deletions, and the Incident record.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use crate::api::{Incident, MitigationAction, Rollout};
use crate::traffic::gateway::GatewayRouter;
use crate::traffic::services::{self, ServiceTarget};
use crate::traffic::{Router, TrafficRouter};

use super::error::{Error, ErrorKind, read_err, write_err};
use super::plan::Plan;
use super::revisions::{self, Revision, build_replica_set};
use super::{Context, FIELD_MANAGER, mitigate, validate};

/// Longest a rollback waits for the gateway to report all requests on stable before the canary
/// shrinks anyway (a rollback never waits on a gateway for long).
pub const ROLLBACK_VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Applies the planned ReplicaSets (only those that differ) and deletes the retired ones. With a
/// router the Services and routes come first. In a rollback the kill switch is flipped first,
/// then all traffic goes to stable (verified at the gateway), then the canary shrinks; the
/// mitigation actions are returned with their times, for the Incident.
///
/// # Errors
/// A failed write; [`Error::Router`] when the router failed outside a rollback (the routes it
/// had changed are put back).
pub async fn act(
    ctx: &Context,
    api: &Api<ReplicaSet>,
    rollout: &Rollout,
    router: &Router<'_>,
    observed: &[Revision],
    plan: &Plan,
    decided: Timestamp,
) -> Result<Vec<MitigationAction>, Error> {
    let mut mitigation = Vec::new();
    if plan.flip_kill_switch
        && let Some(kill_switch) = &rollout.spec.kill_switch
    {
        let namespace = rollout.namespace().unwrap_or_default();
        mitigation.extend(mitigate::flip(&ctx.client, &namespace, kill_switch).await);
    }
    if let Router::GatewayApi(gateway) = router {
        mitigation.extend(route(ctx, gateway, rollout, plan, decided).await?);
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
    // Behind a router a rolled-back canary shrinks after its scale-down delay, in a later
    // reconcile: that one records it.
    let shrinks_now = plan.mitigating && matches!(router, Router::Replicas);
    if shrinks_now || !shrunk.is_empty() {
        mitigation.push(MitigationAction {
            time: Time(Timestamp::now()),
            action: "CanaryScaledDown".into(),
            detail: format!(
                "{} scaled to 0 pods{}",
                if shrunk.is_empty() { "the canary ReplicaSet".to_string() } else { shrunk.join(", ") },
                match router {
                    Router::Replicas => "; without a traffic router traffic follows pods, so the stable serves all requests",
                    Router::GatewayApi(_) => "",
                }
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
            Err(e) => {
                return Err(write_err(
                    format!("ReplicaSet {name}"),
                    &rollout.namespace().unwrap_or_default(),
                )(e));
            }
        }
    }
    Ok(mitigation)
}

/// Points the Services at their revisions and writes the planned weights to the routes (unless
/// the gateway already carries them). In a rollback, waits until the gateway carries all traffic
/// to stable (at most [`ROLLBACK_VERIFY_TIMEOUT`]) and returns that as a mitigation action; a
/// failure then is recorded, not returned, so the canary still shrinks.
async fn route(
    ctx: &Context,
    gateway: &GatewayRouter<'_>,
    rollout: &Rollout,
    plan: &Plan,
    decided: Timestamp,
) -> Result<Vec<MitigationAction>, Error> {
    let (Some(traffic), Some(stable)) = (&plan.status.traffic, &plan.status.stable_revision) else {
        return Ok(Vec::new());
    };
    let Some(routing) = &rollout.spec.strategy.canary.traffic_routing else {
        return Ok(Vec::new());
    };
    // Without a canary the canary Service selects the bake's slice of the previous revision
    // (it gets a share of requests during the bake), else the stable.
    let canary = plan
        .status
        .canary_revision
        .as_ref()
        .or(plan.status.bake.as_ref().map(|b| &b.previous))
        .unwrap_or(stable);
    let baseline = plan
        .replica_sets
        .iter()
        .find(|d| d.arm == revisions::Arm::Baseline && d.replicas > 0)
        .map_or(stable, |d| &d.hash);
    let mut targets = vec![
        ServiceTarget {
            name: routing.services.stable.clone(),
            hash: stable.clone(),
        },
        ServiceTarget {
            name: routing.services.canary.clone(),
            hash: canary.clone(),
        },
    ];
    if let Some(name) = &routing.services.baseline {
        targets.push(ServiceTarget {
            name: name.clone(),
            hash: baseline.clone(),
        });
    }
    let started = Timestamp::now();
    let written = async {
        let created = services::point(&ctx.client, rollout, &targets).await?;
        if !created.is_empty() {
            info!(services = ?created, "created the traffic router's Services");
        }
        if !traffic.verified {
            gateway
                .set_weight(traffic.weights, plan.header_route.as_ref())
                .await?;
        }
        Ok::<_, crate::traffic::RouterError>(())
    }
    .await;
    if !plan.mitigating {
        return written.map(|()| Vec::new()).map_err(|e| Error::Router {
            router: gateway.name().to_string(),
            message: e.message,
        });
    }
    let action = match written {
        Ok(()) => {
            let verified = verify_until(gateway, traffic.weights, ROLLBACK_VERIFY_TIMEOUT).await;
            let took = Timestamp::now().duration_since(started).as_millis();
            match verified {
                Ok(()) => MitigationAction {
                    time: Time(Timestamp::now()),
                    action: "TrafficToStable".into(),
                    detail: format!(
                        "all requests to stable {} ms after the decision: routes {} carry {}, verified by the gateway {took} ms after the write",
                        Timestamp::now().duration_since(decided).as_millis(),
                        route_names(gateway),
                        traffic.weights
                    ),
                },
                Err(why) => MitigationAction {
                    time: Time(Timestamp::now()),
                    action: "TrafficToStableUnverified".into(),
                    detail: format!(
                        "routes {} written with {}, but the gateway had not confirmed within {}s: {why}; the canary is scaled down anyway",
                        route_names(gateway),
                        traffic.weights,
                        ROLLBACK_VERIFY_TIMEOUT.as_secs()
                    ),
                },
            }
        }
        Err(e) => {
            warn!(error = %e, "the traffic router failed during a rollback");
            ctx.metrics.record_error(ErrorKind::Router.as_str());
            MitigationAction {
                time: Time(Timestamp::now()),
                action: "TrafficToStableFailed".into(),
                detail: format!("{e}; the canary is scaled down anyway"),
            }
        }
    };
    Ok(vec![action])
}

fn route_names(gateway: &GatewayRouter<'_>) -> String {
    gateway
        .targets()
        .iter()
        .map(|t| format!("{}/{}", t.kind.kind(), t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the routes every 250 ms until they carry `weights` (no header route) and the gateway
/// accepted them, for at most `timeout`. Returns why not, when it gives up.
async fn verify_until(
    gateway: &GatewayRouter<'_>,
    weights: crate::api::TrafficWeights,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let why = match gateway.verify().await {
            Ok(o) if o.verifies(weights, None) => return Ok(()),
            Ok(o) => o.why_not(weights, None),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(why);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates the Incident a decision planned; one that already exists (a retried decision after a
/// crash) is left as it is. Returns the record.
pub async fn create_incident(
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
        Err(e) => {
            return Err(write_err(
                format!("Incident {}", plan.name),
                &rollout.namespace().unwrap_or_default(),
            )(e));
        }
    }
    Ok(incident)
}

/// Appends mitigation `actions` done after the Incident `name` was written to its record, and
/// recomputes its time-to-mitigate (from the decision to the last action). A record that cannot
/// be updated is logged, never retried at the cost of the rollout.
pub async fn complete_mitigation(
    ctx: &Context,
    namespace: &str,
    name: &str,
    actions: Vec<MitigationAction>,
) {
    let api: Api<Incident> = Api::namespaced(ctx.client.clone(), namespace);
    let mut incident = match ctx.read_incident(namespace, name).await {
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
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await
    {
        warn!(incident = %name, error = %e, "could not complete the Incident's mitigation");
    }
}

/// Whether `namespace` is being deleted (read only when a new object is about to be created).
pub async fn namespace_terminating(ctx: &Context, namespace: &str) -> Result<bool, Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    match api.get_opt(namespace).await {
        Ok(ns) => Ok(ns.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())),
        // Without permission to read it (RBAC from before this check), the write itself tells:
        // a refusal for a namespace being deleted backs off (`Error::NamespaceTerminating`).
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::debug!(error = %e, "cannot read the namespace; assuming it is not being deleted");
            Ok(false)
        }
        Err(e) => Err(read_err(format!("namespace {namespace}"))(e)),
    }
}
