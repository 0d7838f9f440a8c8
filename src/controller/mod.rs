//! The Rollout controller: observe → decide → act → record → notify.
//!
//! - **observe** reads the Rollout, its ReplicaSets, its pods and its latest Incident from the
//!   caches of the watches the controller runs (an idle, settled Rollout costs no API request);
//!   a cached Rollout older than the status this controller last wrote is not decided on;
//! - **decide** ([`decide::decide`]) is pure: ReplicaSets, status, transitions, the Incident, the
//!   second-wave check, the notifications to send and when to look again;
//! - **act** ([`act`]) applies ReplicaSets with server-side apply, one field manager, and only
//!   when they differ from what was observed;
//! - **record** ([`record`]) writes status (only when it changed, and only on the copy the
//!   decision was made on) and then publishes one Event per transition;
//! - **notify** ([`notify`]) attempts the notifications in the status's outbox.
//!
//! State lives in the Rollout's status, its ReplicaSets and its Incidents, never in memory.

pub mod act;
pub mod analysis;
pub mod conditions;
pub mod decide;
pub mod error;
pub mod leader;
pub mod mitigate;
pub mod notify;
pub mod outbox;
pub mod plan;
pub mod record;
pub mod revisions;
pub mod second_wave;
pub mod validate;
pub mod windows;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::core::{DeserializeGuard, DynamicObject};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{info, warn};

use crate::api::{Incident, ROLLOUT_LABEL, Rollout};
use crate::traffic::{Router, TrafficRouter};
pub use error::{Error, ErrorKind};
use plan::Observed;
use revisions::Revision;

/// How long a reconcile waits for the caches' first list before trying again later.
pub const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

pub use crate::api::FIELD_MANAGER;

/// Shared state of the reconcilers.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Publishes Kubernetes Events: one recorder for every Event the controller writes.
    pub recorder: Recorder,
    /// Deployment windows for Rollouts without their own.
    pub windows: windows::WindowDefaults,
    /// The controller's own metrics.
    pub metrics: crate::telemetry::Metrics,
    /// The ReplicaSets labelled `firebreak.dev/rollout`, as the watch sees them.
    pub replica_sets: Store<ReplicaSet>,
    /// The pods labelled `firebreak.dev/rollout` (status and labels; specs are dropped).
    pub pods: Store<Pod>,
    /// The Incidents, as the watch sees them.
    pub incidents: Store<Incident>,
    /// The HTTP client of every notification (connections are reused).
    pub http: reqwest::Client,
    /// One client per Prometheus address, with a bound on concurrent queries.
    pub prometheus: crate::analysis::prometheus::PrometheusPool,
    /// The resourceVersion of the status this controller last wrote, per Rollout
    /// (namespace, name): a cached copy older than it has not caught up yet.
    written: Mutex<HashMap<(String, String), u64>>,
}

impl Context {
    /// A context over `client` whose caches start empty (the watches of [`run`] fill them).
    pub fn new(
        client: Client,
        windows: windows::WindowDefaults,
        metrics: crate::telemetry::Metrics,
        caches: Caches,
        prometheus: crate::analysis::prometheus::PrometheusPool,
    ) -> Context {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "firebreak".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Context {
            client,
            recorder,
            windows,
            metrics,
            replica_sets: caches.replica_sets,
            pods: caches.pods,
            incidents: caches.incidents,
            http: reqwest::Client::new(),
            prometheus,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers the resourceVersion of `written`, the Rollout as a status write returned it.
    pub fn remember_written(&self, written: &Rollout) {
        let Some(version) = resource_version(written) else {
            return;
        };
        let key = (written.namespace().unwrap_or_default(), written.name_any());
        let mut map = self.written.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(key, version);
    }

    fn forget_written(&self, namespace: &str, name: &str) {
        let mut map = self.written.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(namespace.to_string(), name.to_string()));
    }

    /// Whether the cached `rollout` is older than the status this controller last wrote: then
    /// its watch event is on the way, and deciding now would decide on a stale status.
    pub fn is_stale(&self, rollout: &Rollout) -> bool {
        let key = (rollout.namespace().unwrap_or_default(), rollout.name_any());
        let map = self.written.lock().unwrap_or_else(|e| e.into_inner());
        match (map.get(&key), resource_version(rollout)) {
            (Some(written), Some(cached)) => cached < *written,
            _ => false,
        }
    }

    /// The ReplicaSets owned (as controller) by `rollout`, from the cache.
    pub fn revisions_of(&self, rollout: &Rollout) -> Vec<Revision> {
        let namespace = rollout.namespace();
        let name = rollout.name_any();
        let uid = rollout.uid();
        self.replica_sets
            .state()
            .iter()
            .filter(|rs| rs.namespace() == namespace)
            .filter(|rs| rs.labels().get(ROLLOUT_LABEL) == Some(&name))
            .filter(|rs| {
                rs.owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == uid.as_ref() && o.controller == Some(true))
            })
            .filter_map(|rs| Revision::from_replica_set(rs))
            .collect()
    }

    /// Waits (at most [`CACHE_SYNC_TIMEOUT`]) until the ReplicaSet, pod and Incident caches have
    /// had their first complete list; `false` if they have not by then.
    pub async fn caches_ready(&self) -> bool {
        let all = async {
            self.replica_sets.wait_until_ready().await.ok()?;
            self.pods.wait_until_ready().await.ok()?;
            self.incidents.wait_until_ready().await.ok()
        };
        matches!(
            tokio::time::timeout(CACHE_SYNC_TIMEOUT, all).await,
            Ok(Some(()))
        )
    }

    /// The Incident `name` in `namespace`, from the cache.
    pub fn incident(&self, namespace: &str, name: &str) -> Option<Arc<Incident>> {
        self.incidents.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Incident `name` in `namespace`: from the cache, or read from the API server when the
    /// cache does not have it yet (one created in this reconcile).
    pub async fn read_incident(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Incident>, kube::Error> {
        if let Some(cached) = self.incident(namespace, name) {
            return Ok(Some(Incident::clone(&cached)));
        }
        Api::<Incident>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
    }
}

/// resourceVersions are etcd revisions, which grow; one that is not a number is never compared.
fn resource_version<K: Resource>(object: &K) -> Option<u64> {
    object.meta().resource_version.as_deref()?.parse().ok()
}

/// The readers of the caches a [`Context`] reads from.
pub struct Caches {
    /// ReplicaSets labelled `firebreak.dev/rollout`.
    pub replica_sets: Store<ReplicaSet>,
    /// Pods labelled `firebreak.dev/rollout`.
    pub pods: Store<Pod>,
    /// Incidents.
    pub incidents: Store<Incident>,
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
    fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let rollouts: Api<DeserializeGuard<Rollout>> = api(&client, &namespace);
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
    let labelled = || watcher::Config::default().labels(ROLLOUT_LABEL);
    let (replica_sets, writer) = reflector::store();
    let replica_set_events = watcher(api::<ReplicaSet>(&client, &namespace), labelled())
        .default_backoff()
        .modify(|rs| rs.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    // Pods only feed the crash analysis: they fill a cache and never trigger a reconcile.
    let (pods, writer) = reflector::store();
    let pod_events = watcher(api::<Pod>(&client, &namespace), labelled())
        .default_backoff()
        .modify(|pod| {
            pod.managed_fields_mut().clear();
            pod.annotations_mut().clear();
            pod.spec = None;
        })
        .reflect(writer)
        .touched_objects()
        .for_each(|_| futures::future::ready(()));
    let (incidents, writer) = reflector::store();
    let incident_events = watcher(
        api::<Incident>(&client, &namespace),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|i| i.managed_fields_mut().clear())
    .reflect(writer)
    .touched_objects();
    let context = Arc::new(Context::new(
        client,
        windows,
        telemetry.metrics.clone(),
        Caches {
            replica_sets,
            pods,
            incidents,
        },
        crate::analysis::prometheus::PrometheusPool::new()?,
    ));
    let (rollout_store, writer) = reflector::store();
    let forget = context.clone();
    let rollout_events = watcher(rollouts, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(guard) = event {
                let (namespace, name) = (guard.namespace().unwrap_or_default(), guard.name_any());
                forget.metrics.set_rollout_phase(&namespace, &name, None);
                forget.forget_written(&namespace, &name);
            }
        })
        .applied_objects();
    telemetry.health.set_ready(true);
    info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        "controller started"
    );
    let route_events = route_watch(&context.client, &namespace).await;
    let routed_store = rollout_store.clone();
    let controller = Controller::for_stream(rollout_events, rollout_store)
        .owns_stream(replica_set_events)
        .watches_stream_with(
            route_events,
            move |route: DynamicObject| routed_by(&routed_store, &route),
            crate::traffic::gateway::RouteKind::Http.api_resource(),
        )
        .watches_stream(incident_events, |incident: Incident| {
            let namespace = incident.namespace()?;
            Some(ObjectRef::new(&incident.spec.rollout).within(&namespace))
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                warn!(error = %e, "reconcile failed");
            }
        });
    // The pod cache lives as long as the controller; the controller ends on a signal.
    tokio::select! {
        () = controller => {}
        () = pod_events => warn!("the pod watch ended"),
    }
    info!("controller stopped");
    Ok(())
}

/// The HTTPRoutes and GRPCRoutes (one stream), so that a gateway's status report or someone
/// else's change of the weights triggers the reconcile of the Rollouts routing through them.
/// Empty when the Gateway API CRDs are not installed when the controller starts (routes are then
/// still read at each reconcile).
async fn route_watch(
    client: &Client,
    namespace: &Option<String>,
) -> futures::stream::BoxStream<'static, Result<DynamicObject, watcher::Error>> {
    use crate::traffic::gateway::RouteKind;
    use futures::StreamExt;
    let mut streams = Vec::new();
    for kind in [RouteKind::Http, RouteKind::Grpc] {
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        if let Err(e) = api.list_metadata(&ListParams::default().limit(1)).await {
            info!(kind = kind.kind(), error = %e, "not watching Gateway API routes (are the Gateway API CRDs installed?); routes are read at each reconcile only");
            continue;
        }
        streams.push(
            watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(|route| route.managed_fields_mut().clear())
                .touched_objects()
                .boxed(),
        );
    }
    futures::stream::select_all(streams).boxed()
}

/// The Rollouts (from the cache) that route through `route`: a managed route is named after its
/// Rollout; an existing one is listed in the Rollout's `gatewayAPI.httpRoutes`/`grpcRoutes`.
fn routed_by(
    rollouts: &Store<DeserializeGuard<Rollout>>,
    route: &DynamicObject,
) -> Vec<ObjectRef<DeserializeGuard<Rollout>>> {
    let namespace = route.namespace().unwrap_or_default();
    let name = route.name_any();
    let kind = route
        .types
        .as_ref()
        .map(|t| t.kind.as_str())
        .unwrap_or("HTTPRoute");
    rollouts
        .state()
        .iter()
        .filter_map(|guard| guard.0.as_ref().ok())
        .filter(|r| r.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|r| {
            let Some(gateway) = r
                .spec
                .strategy
                .canary
                .traffic_routing
                .as_ref()
                .and_then(|t| t.gateway_api.as_ref())
            else {
                return false;
            };
            let listed = match kind {
                "GRPCRoute" => &gateway.grpc_routes,
                _ => &gateway.http_routes,
            };
            (gateway.http_route.is_some() && kind == "HTTPRoute" && r.name_any() == name)
                || listed.iter().any(|l| l.name == name)
        })
        .map(|r| ObjectRef::new(&r.name_any()).within(&namespace))
        .collect()
}

fn error_policy(_: Arc<DeserializeGuard<Rollout>>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(error = %error, kind = %error.kind(), "retrying");
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
    let result = reconcile_inner(guard.clone(), ctx.clone())
        .instrument(span)
        .await;
    let outcome = result.as_ref().err().map_or("ok", Error::metric_label);
    ctx.metrics
        .observe_reconcile(started.elapsed().as_secs_f64(), outcome);
    if let (Err(error), Ok(rollout)) = (&result, &guard.0) {
        report_error(&ctx, rollout, error).await;
    }
    result
}

/// A failed reconcile as a Warning Event on the Rollout, with the error kind as its reason
/// (`KubeRead`, `KubeWrite`, `NamespaceTerminating`, ...). Refusals and invalid specs were
/// already reported with their status; a conflict is retried at once and is no news.
async fn report_error(ctx: &Context, rollout: &Rollout, error: &Error) {
    match error.kind() {
        ErrorKind::Conflict | ErrorKind::Refused | ErrorKind::InvalidSpec => {}
        ErrorKind::KubeRead
        | ErrorKind::KubeWrite
        | ErrorKind::NamespaceTerminating
        | ErrorKind::Prometheus
        | ErrorKind::Router
        | ErrorKind::Notification => {
            record::publish(
                ctx,
                &rollout.object_ref(&()),
                kube::runtime::events::EventType::Warning,
                error.metric_label(),
                "Reconcile",
                &error.to_string(),
            )
            .await;
        }
    }
}

async fn reconcile_inner(
    guard: Arc<DeserializeGuard<Rollout>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let rollout = match &guard.0 {
        Ok(rollout) => rollout,
        Err(invalid) => {
            record::report_invalid(&ctx, invalid).await?;
            return Ok(Action::await_change());
        }
    };
    let name = rollout.name_any();
    let namespace = rollout.namespace().unwrap_or_default();
    // A controller that just started decides only once every cache has listed its objects: a
    // ReplicaSet missing from a cache still filling would look like a vanished stable.
    if !ctx.caches_ready().await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if rollout.metadata.deletion_timestamp.is_some() {
        ctx.metrics.set_rollout_phase(&namespace, &name, None);
        return Ok(Action::await_change());
    }
    // Observe, from the caches. A copy older than the status just written waits for its watch
    // event (which triggers this reconcile again), so no decision is made twice.
    if ctx.is_stale(rollout) {
        tracing::debug!("the cache has not caught up with the last status write yet");
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &namespace);
    let spec = match checked_spec(rollout) {
        Ok(spec) => spec,
        Err(e) => {
            let error = Error::InvalidSpec {
                message: e.to_string(),
            };
            record::record_degraded(
                &ctx,
                &api,
                rollout,
                conditions::Degraded::InvalidSpec,
                &error.to_string(),
            )
            .await?;
            return Err(error);
        }
    };
    let revisions = ctx.revisions_of(rollout);
    let now = Timestamp::now();
    let analysis = analysis::observe(
        &ctx.pods,
        &ctx.prometheus,
        &ctx.metrics,
        rollout,
        &spec,
        now,
    )
    .await;
    let incident = rollout
        .status
        .as_ref()
        .and_then(|s| s.incident.as_deref())
        .and_then(|i| ctx.incident(&namespace, i));
    let measured = match second_wave::step(rollout, incident.as_deref(), now) {
        second_wave::Step::Measure { until, window } => match incident.as_deref() {
            Some(incident) => {
                Some(analysis::second_wave(&ctx.prometheus, rollout, incident, until, window).await)
            }
            None => None,
        },
        second_wave::Step::Idle | second_wave::Step::Start { .. } | second_wave::Step::Wait(_) => {
            None
        }
    };
    let router = Router::for_rollout(&ctx.client, rollout);
    let traffic = match &router {
        Router::Replicas => None,
        Router::GatewayApi(gateway) => Some(gateway.verify().await.map_err(|e| e.message)),
    };
    let plan = decide::decide(&Observed {
        rollout,
        spec: &spec,
        revisions: &revisions,
        now,
        analysis: analysis.as_ref(),
        window: ctx.windows.gate(rollout, now),
        incident: incident.as_deref(),
        second_wave: measured.as_ref(),
        traffic: traffic.as_ref(),
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
    if creates && act::namespace_terminating(&ctx, &namespace).await? {
        info!("namespace is being deleted: no new ReplicaSet is created in it");
        ctx.metrics.set_rollout_phase(&namespace, &name, None);
        return Ok(Action::await_change());
    }
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let mitigation = match act::act(&ctx, &rs_api, rollout, &router, &revisions, &plan, now).await {
        Ok(mitigation) => mitigation,
        Err(failed @ Error::Router { .. }) => {
            let what = format!(
                "{failed}. Routes changed in this attempt were put back; fix the route or Service it names (see docs/gitops.md), and the next attempt moves on"
            );
            record::record_degraded(
                &ctx,
                &api,
                rollout,
                conditions::Degraded::RouterFailed,
                &what,
            )
            .await?;
            return Err(failed);
        }
        Err(refused @ Error::Refused { .. }) => {
            let what =
                format!("{refused}. Fix spec.template (or the field it names) and apply again");
            record::record_degraded(
                &ctx,
                &api,
                rollout,
                conditions::Degraded::ObjectRefused,
                &what,
            )
            .await?;
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
    match &plan.incident {
        Some(incident) => {
            act::create_incident(&ctx, rollout, &spec, &revisions, incident, mitigation, now)
                .await?;
        }
        None => {
            // Mitigation that finishes after the decision (the bad revision of a failed bake
            // drains once the previous one can carry the load) completes the existing record.
            if !mitigation.is_empty()
                && let Some(name) = plan.status.incident.as_deref()
            {
                act::complete_mitigation(&ctx, &namespace, name, mitigation).await;
            }
        }
    }
    let written = record::record(&ctx, &api, rollout, &plan).await?;
    if let (Some(wave), Some(incident)) = (&plan.second_wave, plan.status.incident.as_deref()) {
        record::write_second_wave(&ctx, &namespace, incident, wave).await;
    }
    let phase = plan.status.phase.map(|p| p.to_string());
    ctx.metrics
        .set_rollout_phase(&namespace, &name, phase.as_deref());
    let current = written.as_ref().unwrap_or(rollout);
    let next_attempt = notify::send_due(&ctx, &api, current, &plan.given_up).await?;
    let requeue = next_attempt.map_or(plan.requeue_after, |n| {
        plan.requeue_after.min(n.max(Duration::from_secs(1)))
    });
    Ok(Action::requeue(requeue))
}

/// The Rollout's spec, checked by the controller (what the CRD's schema and CEL rules cannot
/// check, and objects stored before a rule existed).
fn checked_spec(rollout: &Rollout) -> Result<validate::ValidSpec, validate::SpecError> {
    let name = rollout.name_any();
    // The name is a label value on every ReplicaSet and pod (`firebreak.dev/rollout`); the CRD
    // refuses longer names, but an object stored before that rule may have one.
    if name.len() > validate::MAX_NAME_LENGTH {
        return Err(validate::SpecError::Field {
            field: "metadata.name".into(),
            message: format!(
                "is {} characters; a Rollout's name is a label value, at most {}: recreate the Rollout with a shorter name",
                name.len(),
                validate::MAX_NAME_LENGTH
            ),
        });
    }
    validate::validate(&rollout.spec)
}

#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;
