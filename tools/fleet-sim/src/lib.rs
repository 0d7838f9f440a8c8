//! The fleet simulator: makes a kwok cluster (fake nodes; pods that are Running but run nothing)
//! look like a real fleet to Prometheus and to the controller. A development and test tool.
//!
//! - **Traffic.** Pods are grouped as a Service would see them ([`traffic::group_of`]); each group
//!   receives a total request rate, split equally among its pods that are Running, Ready and not
//!   being deleted. Every tick each such pod serves a Poisson number of requests, of which a
//!   Binomial share fail, with exponential latencies, all per the pod's annotations
//!   ([`annotations`]). The counts are served on `/metrics` for Prometheus ([`metrics`]).
//! - **Real requests** (`--serve-pods`, [`serve`]). Instead of inventing traffic, the simulator
//!   listens on the IP of every Running pod of a group (port `--pod-port`, 8080) and answers real
//!   HTTP requests — from a Gateway, say — as the pod's annotations say: 500 with the pod's error rate, else 200,
//!   after a latency drawn as for the invented traffic, with headers `x-served-by: <pod>` and
//!   `x-pod-template-hash: <hash>`. The requests are counted into the same `/metrics` series, and
//!   a pod that is served gets no invented traffic. A crashed container refuses connections (its
//!   listener and connections are closed until the restart). The pod IPs must be local: run it in
//!   a network namespace where the pod CIDR is routed to the loopback device; a pod whose address
//!   cannot be bound is logged once, and neither served nor given invented traffic.
//! - **Crashes.** A Running pod annotated [`annotations::CRASH_EVERY`] crashes now and then: its
//!   status is patched as a kubelet would write it ([`kubelet`]) — restart count up, last state
//!   terminated, waiting in CrashLoopBackOff, not Ready — and after the kubelet's back-off
//!   ([`crash::BackoffPolicy`]) running and Ready again. kwok writes a pod's status only while it
//!   is Pending or being deleted, so these patches stand.
//! - **Load** (`fleet-sim load`, [`load`]). An open-loop constant-rate HTTP load generator that
//!   reports requests per second per revision (by the `x-pod-template-hash` response header): what
//!   a demo shows live, and what tests measure a traffic split with. It needs no cluster.
//!
//! The decisions are pure ([`traffic`], [`crash`], [`kubelet`], [`serve::answer`],
//! [`serve::endpoint`], [`load::schedule`], [`load::tally`]); this module watches pods, runs the
//! clock, opens and closes the pods' listeners and applies the status patches. Crash state lives
//! in memory only, but the restart count is read from the pod, so a restarted simulator counts on.
//!
//! The binary, `fleet-sim` (`src/main.rs`), runs [`run`] until interrupted, or [`load::run`]:
//!
//! ```text
//! cargo run -p fleet-sim -- [--namespace NS] [--listen 127.0.0.1:9464] [--rps 50] [--seed S]
//!                           [--serve-pods [--pod-port 8080]]
//! cargo run -p fleet-sim -- load --url URL [--host HOST] [--header 'k: v']... --rps N
//!                           [--duration 30s] [--report-every 1s] [--json]
//! ```

pub mod annotations;
pub mod crash;
pub mod kubelet;
pub mod load;
pub mod metrics;
pub mod serve;
pub mod traffic;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use tracing::{debug, info, warn};

use self::annotations::{CrashReason, PodBehaviour};
use self::crash::{BackoffPolicy, CrashTracker, Observed, Step};
use self::metrics::{FleetMetrics, PodLabels};
use self::serve::{PodFacts, PodServers};

/// The field manager of the simulator's pod status patches.
pub const FIELD_MANAGER: &str = "firebreak-fleet-simulator";

/// The label that tells a pod's revision apart (set by the ReplicaSet controller).
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// How long the series of a pod that is gone are still served, so that the last scrape sees its
/// final counts.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// Longest wait for one status patch.
const PATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the fleet simulator: the flags of `fleet-sim` (`src/main.rs`).
#[derive(Clone, Debug, clap::Args)]
pub struct FleetConfig {
    /// Simulate only the pods of this namespace (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,

    /// Address to serve `/metrics` on; port 0 picks a free port. The bound address is printed as
    /// the first line on stdout: `listening on 127.0.0.1:43121`.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: SocketAddr,

    /// Total request rate of a group of pods without the annotation
    /// `sim.firebreak.dev/requests-per-second`, in requests/second (invented traffic only: pods
    /// served with --serve-pods receive what their clients send).
    #[arg(long, default_value = "50", value_parser = parse_rate)]
    pub rps: f64,

    /// Simulation step: how often traffic is sampled and crashes fire (`200ms`, `1s`, or seconds).
    #[arg(long, default_value = "200ms", value_parser = parse_positive_duration)]
    pub tick: Duration,

    /// Seed of the random number generator, for reproducible traffic (default: a random seed,
    /// which is logged).
    #[arg(long)]
    pub seed: Option<u64>,

    /// First restart back-off after a crash, doubled with each consecutive crash (the kubelet's is
    /// 10s; lower it for fast tests).
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub crash_backoff_base: Duration,

    /// Longest restart back-off (the kubelet's is 300s).
    #[arg(long, default_value = "300s", value_parser = parse_positive_duration)]
    pub crash_backoff_max: Duration,

    /// Serve real HTTP on the IP of every Running pod labelled `firebreak.dev/rollout` or `app`,
    /// instead of inventing its traffic: requests fail (500) at the pod's error rate after its
    /// latency, are counted on /metrics, and are refused while its container is crashed. The pod
    /// IPs must be local (run in the data plane's network namespace).
    #[arg(long)]
    pub serve_pods: bool,

    /// The port the pods listen on with --serve-pods (0: a free port per pod).
    #[arg(long, default_value_t = serve::DEFAULT_POD_PORT, requires = "serve_pods")]
    pub pod_port: u16,
}

fn parse_rate(value: &str) -> Result<f64, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| format!("{value:?} is not a non-negative number of requests/second"))
}

fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration = annotations::parse_duration(value)?;
    if duration.is_zero() {
        return Err(format!("{value:?} must be longer than zero"));
    }
    Ok(duration)
}

/// Runs the simulator until interrupted (Ctrl-C): serves `/metrics` at `config.listen`, watches
/// pods, and simulates traffic and crashes every `config.tick`; with `config.serve_pods`, opens
/// and closes the pods' listeners every tick instead of inventing their traffic.
///
/// Errors when the address cannot be bound or the metrics server fails. A failing pod watch (no
/// access, API server down) is logged and retried with back-off.
pub async fn run(client: Client, config: FleetConfig) -> anyhow::Result<()> {
    if config.crash_backoff_max < config.crash_backoff_base {
        anyhow::bail!(
            "--crash-backoff-max ({:?}) is shorter than --crash-backoff-base ({:?})",
            config.crash_backoff_max,
            config.crash_backoff_base
        );
    }
    let metrics = Arc::new(FleetMetrics::new());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    {
        // The first line on stdout: tests and scripts read the bound address from it.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {address}")?;
        stdout.flush()?;
    }
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(serve_metrics))
        .with_state(metrics.clone());
    let mut server = tokio::spawn(async move { axum::serve(listener, app).await });
    let _stop_server = AbortOnDrop(server.abort_handle());

    let pods: Api<Pod> = match &config.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let (store, writer) = reflector::store();
    let mut watch = tokio::spawn(
        watcher(pods, watcher::Config::default())
            .default_backoff()
            .modify(|pod| pod.managed_fields_mut().clear())
            .reflect(writer)
            .for_each(|event| {
                if let Err(e) = event {
                    warn!("watching pods: {e}; retrying");
                }
                futures::future::ready(())
            }),
    );
    let _stop_watch = AbortOnDrop(watch.abort_handle());

    let seed = config.seed.unwrap_or_else(rand::random);
    info!(
        seed,
        namespace = config.namespace.as_deref().unwrap_or("(all)"),
        %address,
        serve_pods = config.serve_pods,
        "fleet simulator started (pass the same --seed to repeat its random draws)"
    );
    let mut simulator = Simulator::new(&config, seed, metrics);
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);

    tokio::select! {
        ready = store.wait_until_ready() => ready.context("the pod watch stopped before its first list")?,
        served = &mut server => return Err(server_stopped(served)),
        _ = &mut shutdown => return Ok(()),
    }
    let mut ticks = tokio::time::interval(config.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_tick = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            served = &mut server => return Err(server_stopped(served)),
            _ = &mut watch => anyhow::bail!("the pod watch ended"),
            _ = &mut shutdown => {
                info!("fleet simulator stopped");
                return Ok(());
            }
        }
        let instant = tokio::time::Instant::now();
        // A stalled process does not make up for lost time with a burst of traffic.
        let elapsed = (instant - last_tick).min(config.tick * 5);
        last_tick = instant;
        let now = Timestamp::now();
        let changes = simulator.tick(&store.state(), now, elapsed);
        for change in changes {
            let applied = tokio::time::timeout(PATCH_TIMEOUT, change.apply(&client, now)).await;
            let applied = applied.unwrap_or(Err(ApplyError::Timeout(PATCH_TIMEOUT)));
            simulator.applied(&change, applied, now);
        }
    }
}

/// Stops a spawned task when dropped: when `run` returns, so that a caller other than the CLI is
/// not left with a server and a watch running in the background, and when a pod's listener closes.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn server_stopped(served: Result<std::io::Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match served {
        Ok(Ok(())) => anyhow::anyhow!("the metrics server stopped"),
        Ok(Err(e)) => anyhow::anyhow!("the metrics server failed: {e}"),
        Err(e) => anyhow::anyhow!("the metrics server panicked: {e}"),
    }
}

async fn serve_metrics(State(metrics): State<Arc<FleetMetrics>>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}"),
        )
            .into_response(),
    }
}

/// Whether a Service would send the pod requests: phase Running, condition Ready=True, and not
/// being deleted.
pub fn serving(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    running(pod)
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
}

/// Phase Running and not being deleted.
fn running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// What the crash state machine needs to know about a pod.
fn observe(pod: &Pod, behaviour: &PodBehaviour) -> Observed {
    let container = kubelet::crashing_container_status(pod);
    let crash_looping = container.and_then(|status| {
        let waiting = status.state.as_ref()?.waiting.as_ref()?;
        (waiting.reason.as_deref() == Some(kubelet::CRASH_LOOP_BACK_OFF)).then(|| {
            status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.finished_at.as_ref())
                .map(|t| t.0)
        })
    });
    Observed {
        running: running(pod),
        crash_every: behaviour.crash_every,
        restart_count: container.map_or(0, |s| u32::try_from(s.restart_count).unwrap_or(0)),
        crash_looping,
    }
}

/// `(namespace, name)`: pods are remembered by name, and a pod replaced under the same name (a
/// StatefulSet's) is recognised by its uid.
pub type PodKey = (String, String);

/// What the simulator remembers of a pod between ticks.
struct Remembered {
    uid: Option<String>,
    /// The labels of its series; `None` while it has none (it is in no group).
    series: Option<PodLabels>,
    /// Annotation values already warned about.
    warned: HashSet<(&'static str, String)>,
    crash: Option<CrashTracker>,
    /// The last error patching its status, already warned about.
    last_error: Option<String>,
    /// When it disappeared from the watch, if it did.
    gone_since: Option<Timestamp>,
}

/// A status change due for one pod.
#[derive(Debug)]
struct Change {
    key: PodKey,
    pod: Arc<Pod>,
    step: Step,
    reason: CrashReason,
    crash_every: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error(transparent)]
    Status(#[from] kubelet::StatusError),
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("no answer from the API server within {0:?}")]
    Timeout(Duration),
}

impl Change {
    async fn apply(&self, client: &Client, now: Timestamp) -> Result<(), ApplyError> {
        let (namespace, name) = &self.key;
        let patch = match self.step {
            Step::Crash { backoff } => kubelet::crash_patch(&self.pod, self.reason, backoff, now)?,
            Step::Restart => kubelet::restart_patch(&self.pod, now)?,
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        Api::<Pod>::namespaced(client.clone(), namespace)
            .patch_status(name, &params, &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

/// The simulation between ticks: its random number generator, metrics, memory of pods, and with
/// `--serve-pods` the pods' listeners.
struct Simulator {
    default_rps: f64,
    policy: BackoffPolicy,
    rng: Xoshiro256PlusPlus,
    metrics: Arc<FleetMetrics>,
    pods: HashMap<PodKey, Remembered>,
    servers: Option<PodServers>,
}

impl Simulator {
    fn new(config: &FleetConfig, seed: u64, metrics: Arc<FleetMetrics>) -> Self {
        Simulator {
            default_rps: config.rps,
            policy: BackoffPolicy {
                base: config.crash_backoff_base,
                max: config.crash_backoff_max,
            },
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            servers: config
                .serve_pods
                .then(|| PodServers::new(config.pod_port, Arc::clone(&metrics))),
            metrics,
            pods: HashMap::new(),
        }
    }

    /// Advances the simulation by `elapsed` to `now` for the pods currently seen: serves their
    /// requests and returns the status changes that are due.
    fn tick(&mut self, pods: &[Arc<Pod>], now: Timestamp, elapsed: Duration) -> Vec<Change> {
        // A fixed order, so that a seed reproduces the same draws for the same pods.
        let mut pods: Vec<&Arc<Pod>> = pods.iter().collect();
        pods.sort_by_cached_key(|p| (p.namespace(), p.name_any()));

        let mut seen = HashSet::new();
        let mut members = Vec::new();
        let mut grouped = Vec::new();
        let mut changes = Vec::new();
        let mut synced = HashSet::new();
        for pod in pods {
            let namespace = pod.namespace().unwrap_or_default();
            let key = (namespace.clone(), pod.name_any());
            seen.insert(key.clone());
            let memory = remember(&mut self.pods, &key, pod);
            let (behaviour, invalid) = annotations::parse(pod.annotations());
            for problem in invalid {
                if memory.warned.insert((problem.key, problem.value.clone())) {
                    warn!("pod {namespace}/{}: {problem}", key.1);
                }
            }

            if let Some(group) = traffic::group_of(&namespace, pod.labels()) {
                let labels = PodLabels {
                    namespace: namespace.clone(),
                    pod: key.1.clone(),
                    pod_template_hash: pod
                        .labels()
                        .get(POD_TEMPLATE_HASH_LABEL)
                        .cloned()
                        .unwrap_or_default(),
                };
                if memory.series.as_ref() != Some(&labels) {
                    if let Some(old) = memory.series.take() {
                        self.metrics.forget(&old);
                    }
                    self.metrics.track(&labels);
                    memory.series = Some(labels.clone());
                }
                // A served pod's traffic is the real requests only. It still counts in its group's
                // split, so that pods whose traffic is invented keep their share.
                let invented = match &mut self.servers {
                    Some(servers) => {
                        synced.insert(key.clone());
                        let rng = &mut self.rng;
                        let facts = PodFacts {
                            labels: labels.clone(),
                            behaviour: behaviour.clone(),
                        };
                        let endpoint = serve::endpoint(pod, servers.port());
                        !servers
                            .sync(&key, endpoint, facts, &mut || rng.next_u64())
                            .is_served()
                    }
                    None => true,
                };
                members.push(traffic::Member {
                    group,
                    name: key.1.clone(),
                    created: pod.creation_timestamp().map(|t| t.0),
                    serving: serving(pod),
                    requests_per_second: behaviour.requests_per_second,
                });
                grouped.push((labels, behaviour.clone(), invented));
            }

            let rng = &mut self.rng;
            CrashTracker::sync(
                &mut memory.crash,
                &observe(pod, &behaviour),
                &self.policy,
                now,
                &mut |mean| time_to_crash(rng, mean),
            );
            if let Some(step) = memory.crash.as_ref().and_then(|c| c.due(&self.policy, now)) {
                changes.push(Change {
                    key,
                    pod: Arc::clone(pod),
                    step,
                    reason: behaviour.crash_reason,
                    crash_every: behaviour.crash_every,
                });
            }
        }

        let seconds = elapsed.as_secs_f64();
        let rates = traffic::split(&members, self.default_rps);
        for ((labels, behaviour, invented), rate) in grouped.iter().zip(rates) {
            if !invented {
                continue;
            }
            let requests = traffic::sample_requests(&mut self.rng, rate * seconds);
            if requests == 0 {
                continue;
            }
            let errors = traffic::sample_errors(&mut self.rng, requests, behaviour.error_rate);
            let rng = &mut self.rng;
            let latencies = (0..requests)
                .map(|_| traffic::sample_exponential(rng, behaviour.mean_latency_seconds));
            self.metrics.record(labels, requests, errors, latencies);
        }

        if let Some(servers) = &mut self.servers {
            servers.retain(&synced);
        }
        self.forget_gone(&seen, now);
        changes
    }

    /// Forgets pods no longer seen: their crash state at once, their series after
    /// [`FORGET_AFTER`].
    fn forget_gone(&mut self, seen: &HashSet<PodKey>, now: Timestamp) {
        let metrics = &self.metrics;
        self.pods.retain(|key, memory| {
            if seen.contains(key) {
                return true;
            }
            memory.crash = None;
            let since = *memory.gone_since.get_or_insert(now);
            let keep = since
                .checked_add(FORGET_AFTER)
                .is_ok_and(|until| now < until);
            if !keep && let Some(series) = &memory.series {
                metrics.forget(series);
            }
            keep
        });
    }

    /// Records the outcome of applying `change` at `now`.
    fn applied(&mut self, change: &Change, outcome: Result<(), ApplyError>, now: Timestamp) {
        let (namespace, name) = &change.key;
        let memory = self.pods.get_mut(&change.key);
        match outcome {
            Ok(()) => {
                let Some(memory) = memory else { return };
                memory.last_error = None;
                let restarts =
                    kubelet::crashing_container_status(&change.pod).map_or(0, |s| s.restart_count);
                match change.step {
                    Step::Crash { backoff } => info!(
                        "pod {namespace}/{name}: container crashed ({}), restart {} in {}",
                        change.reason.reason(),
                        restarts.saturating_add(1),
                        kubelet::go_duration(backoff)
                    ),
                    Step::Restart => info!("pod {namespace}/{name}: container restarted"),
                }
                let Some(tracker) = memory.crash.as_mut() else {
                    return;
                };
                let rng = &mut self.rng;
                tracker.record(
                    change.step,
                    &self.policy,
                    now,
                    change.crash_every,
                    &mut |mean| time_to_crash(rng, mean),
                );
            }
            // The pod changed since it was read (perhaps by our own last patch, not yet seen by
            // the watch): the step stays due and is retried with the fresh pod next tick.
            Err(ApplyError::Api(kube::Error::Api(status))) if status.code == 409 => {
                debug!("pod {namespace}/{name}: changed while patching its status; retrying");
            }
            Err(ApplyError::Api(kube::Error::Api(status))) if status.code == 404 => {
                debug!("pod {namespace}/{name}: gone before its status could be patched");
            }
            Err(e) => {
                // The step is retried every tick: say so once, not five times a second.
                let message = e.to_string();
                if let Some(memory) = memory
                    && memory.last_error.as_ref() != Some(&message)
                {
                    warn!("pod {namespace}/{name}: cannot simulate a container change: {message}");
                    memory.last_error = Some(message);
                }
            }
        }
    }
}

/// The time to a container's next crash: exponential with mean `mean`.
fn time_to_crash(rng: &mut Xoshiro256PlusPlus, mean: Duration) -> Duration {
    let seconds = traffic::sample_exponential(rng, mean.as_secs_f64());
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

/// The memory of the pod at `key`, started afresh when the pod is new or was replaced.
fn remember<'a>(
    pods: &'a mut HashMap<PodKey, Remembered>,
    key: &PodKey,
    pod: &Pod,
) -> &'a mut Remembered {
    let uid = pod.metadata.uid.clone();
    let memory = pods.entry(key.clone()).or_insert_with(|| Remembered {
        uid: uid.clone(),
        series: None,
        warned: HashSet::new(),
        crash: None,
        last_error: None,
        gone_since: None,
    });
    if memory.uid != uid {
        // Replaced under the same name: a new pod. Its series, if labelled alike, continue.
        memory.uid = uid;
        memory.warned.clear();
        memory.crash = None;
        memory.last_error = None;
    }
    memory.gone_since = None;
    memory
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    fn pod(phase: &str, ready: &str, deleting: bool) -> Pod {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": ready}]
            }
        }))
        .unwrap();
        if deleting {
            pod.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
            );
        }
        pod
    }

    #[test]
    fn only_running_ready_pods_not_being_deleted_serve() {
        assert!(serving(&pod("Running", "True", false)));
        assert!(!serving(&pod("Running", "False", false)));
        assert!(!serving(&pod("Pending", "True", false)));
        assert!(!serving(&pod("Running", "True", true)));
        assert!(!serving(&Pod::default()));
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: FleetConfig,
    }

    #[test]
    fn flags_have_kubelet_like_defaults_and_reject_nonsense() {
        let config = Cli::try_parse_from(["x"]).unwrap().config;
        assert_eq!(config.rps, 50.0);
        assert_eq!(config.tick, Duration::from_millis(200));
        assert_eq!(config.crash_backoff_base, Duration::from_secs(10));
        assert_eq!(config.crash_backoff_max, Duration::from_secs(300));
        assert_eq!(config.listen.ip().to_string(), "127.0.0.1");
        assert_eq!(config.seed, None);

        let config = Cli::try_parse_from([
            "x",
            "--listen",
            "127.0.0.1:0",
            "--crash-backoff-base",
            "1s",
            "--seed",
            "1",
            "--rps",
            "100",
        ])
        .unwrap()
        .config;
        assert_eq!(config.crash_backoff_base, Duration::from_secs(1));
        assert_eq!(config.seed, Some(1));
        assert_eq!(config.listen.port(), 0);

        for bad in [
            ["--rps", "-1"],
            ["--tick", "0ms"],
            ["--tick", "soon"],
            ["--crash-backoff-base", "0"],
        ] {
            assert!(
                Cli::try_parse_from(["x", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    /// A pod of ReplicaSet `shop`, Running and Ready, with these annotations.
    fn shop_pod(name: &str, annotations: serde_json::Value) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {
                    "name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                    "creationTimestamp": "2025-01-01T00:00:00Z",
                    "labels": {"app": "shop", "pod-template-hash": "abc"},
                    "annotations": annotations,
                },
                "spec": {"containers": [{"name": "app", "image": "shop:1"}]},
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{
                        "name": "app", "image": "shop:1", "imageID": "", "ready": true,
                        "restartCount": 0, "state": {"running": {}}
                    }]
                }
            }))
            .unwrap(),
        )
    }

    fn simulator(seed: u64) -> Simulator {
        let config = Cli::try_parse_from(["x"]).unwrap().config;
        Simulator::new(&config, seed, Arc::new(FleetMetrics::new()))
    }

    fn counter(text: &str, pod: &str, code: &str) -> f64 {
        let prefix = format!(
            r#"http_requests_total{{namespace="ns",pod="{pod}",pod_template_hash="abc",code="{code}"}} "#
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[test]
    fn a_simulated_minute_serves_the_annotated_rate_and_error_share() {
        let annotations = json!({
            "sim.firebreak.dev/requests-per-second": "100",
            "sim.firebreak.dev/error-rate": "0.2",
        });
        let pods: Vec<Arc<Pod>> = ["a", "b", "c"]
            .into_iter()
            .map(|name| shop_pod(name, annotations.clone()))
            .collect();
        let mut sim = simulator(1);
        let start = Timestamp::UNIX_EPOCH;
        for i in 0..300 {
            let now = start.checked_add(Duration::from_millis(200 * i)).unwrap();
            let changes = sim.tick(&pods, now, Duration::from_millis(200));
            assert!(changes.is_empty());
        }
        let text = sim.metrics.encode().unwrap();
        let (mut total, mut errors) = (0.0, 0.0);
        for pod in ["a", "b", "c"] {
            let served = counter(&text, pod, "200") + counter(&text, pod, "500");
            // 100/s for 60 s split three ways: 2,000 each, standard deviation about 45.
            assert!((served - 2000.0).abs() < 250.0, "pod {pod} served {served}");
            total += served;
            errors += counter(&text, pod, "500");
        }
        let share = errors / total;
        assert!((share - 0.2).abs() < 0.03, "error share {share}");
    }

    #[test]
    fn an_annotated_pod_comes_due_for_a_crash_and_a_pod_gone_is_forgotten() {
        let crashing = shop_pod("a", json!({"sim.firebreak.dev/crash-every": "1"}));
        let mut sim = simulator(2);
        let start = Timestamp::UNIX_EPOCH;
        let mut due = None;
        for i in 0..600 {
            let now = start.checked_add(Duration::from_millis(200 * i)).unwrap();
            if let Some(change) = sim
                .tick(
                    std::slice::from_ref(&crashing),
                    now,
                    Duration::from_millis(200),
                )
                .pop()
            {
                due = Some(change);
                break;
            }
        }
        let change = due.expect("a crash within 2 minutes at a mean of 1 s");
        assert_eq!(
            change.step,
            Step::Crash {
                backoff: Duration::from_secs(10)
            }
        );
        assert_eq!(change.key, ("ns".to_string(), "a".to_string()));

        let later = start.checked_add(Duration::from_secs(200)).unwrap();
        sim.tick(&[], later, Duration::from_millis(200));
        assert!(sim.metrics.encode().unwrap().contains(r#"pod="a""#));
        let much_later = later.checked_add(FORGET_AFTER).unwrap();
        sim.tick(&[], much_later, Duration::from_millis(200));
        assert!(!sim.metrics.encode().unwrap().contains(r#"pod="a""#));
        assert!(sim.pods.is_empty());
    }

    #[test]
    fn bad_annotations_are_survived() {
        let pod = shop_pod(
            "a",
            json!({
                "sim.firebreak.dev/error-rate": "lots",
                "sim.firebreak.dev/crash-every": "-3",
                "sim.firebreak.dev/latency-ms": "fast",
            }),
        );
        let mut sim = simulator(3);
        for _ in 0..3 {
            sim.tick(
                std::slice::from_ref(&pod),
                Timestamp::UNIX_EPOCH,
                Duration::from_secs(1),
            );
        }
        let memory = &sim.pods[&("ns".to_string(), "a".to_string())];
        assert_eq!(
            memory.warned.len(),
            3,
            "one warning per bad value, not per tick"
        );
        assert_eq!(counter(&sim.metrics.encode().unwrap(), "a", "500"), 0.0);
    }

    /// `pod` with this pod IP.
    fn with_ip(pod: &Arc<Pod>, ip: &str) -> Arc<Pod> {
        let mut pod = Pod::clone(pod);
        pod.status.as_mut().unwrap().pod_ip = Some(ip.to_string());
        Arc::new(pod)
    }

    /// `pod` as the crash patch leaves it: its container waiting in CrashLoopBackOff, not Ready.
    fn crashed(pod: &Arc<Pod>) -> Arc<Pod> {
        let mut pod = Pod::clone(pod);
        let status = pod.status.as_mut().unwrap();
        status.container_statuses.as_mut().unwrap()[0].state =
            serde_json::from_value(json!({"waiting": {"reason": "CrashLoopBackOff"}})).unwrap();
        status.conditions.as_mut().unwrap()[0].status = "False".into();
        Arc::new(pod)
    }

    /// Whether connections to `address` are refused, waiting up to 2 s for a closing listener.
    async fn refused(address: SocketAddr) -> bool {
        for _ in 0..40 {
            match tokio::net::TcpStream::connect(address).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
                Err(_) | Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_serve_pods_a_pod_with_an_ip_counts_real_requests_only() {
        let config = Cli::try_parse_from(["x", "--serve-pods", "--pod-port", "0"])
            .unwrap()
            .config;
        let mut sim = Simulator::new(&config, 4, Arc::new(FleetMetrics::new()));
        let annotations = json!({
            "sim.firebreak.dev/requests-per-second": "1000",
            "sim.firebreak.dev/error-rate": "0.5",
            "sim.firebreak.dev/latency-ms": "1",
        });
        let served = with_ip(&shop_pod("a", annotations.clone()), "127.0.6.1");
        // Without a pod IP there is nothing to listen on: its traffic is invented as before.
        let invented = shop_pod("b", annotations);
        let tick = Duration::from_millis(200);
        let mut now = Timestamp::UNIX_EPOCH;
        for _ in 0..10 {
            now = now.checked_add(tick).unwrap();
            sim.tick(&[Arc::clone(&served), Arc::clone(&invented)], now, tick);
        }
        let text = sim.metrics.encode().unwrap();
        assert_eq!(counter(&text, "a", "200") + counter(&text, "a", "500"), 0.0);
        // 1000/s split between the two pods for 2 s.
        let b = counter(&text, "b", "200") + counter(&text, "b", "500");
        assert!((b - 1000.0).abs() < 200.0, "b served {b} invented requests");

        let key: PodKey = ("ns".into(), "a".into());
        let address = sim.servers.as_ref().unwrap().local_addr(&key).unwrap();
        assert_eq!(address.ip().to_string(), "127.0.6.1");
        let load = load::LoadConfig {
            url: format!("http://{address}/").parse().unwrap(),
            host: None,
            headers: Vec::new(),
            rps: 200.0,
            duration: Duration::from_millis(500),
            report_every: Duration::from_secs(1),
            json: false,
            max_in_flight: 100,
            timeout: Duration::from_secs(10),
        };
        let summary = load::run(&load, &mut Vec::new()).await.unwrap();
        let abc = summary.tally.revisions["abc"];
        assert_eq!(abc.responses(), 100, "{summary:?}");
        let text = sim.metrics.encode().unwrap();
        assert_eq!(counter(&text, "a", "200"), abc.ok as f64);
        assert_eq!(counter(&text, "a", "500"), abc.server_errors as f64);

        // The container crashes: its port refuses connections, and no traffic is invented.
        now = now.checked_add(tick).unwrap();
        sim.tick(&[crashed(&served), Arc::clone(&invented)], now, tick);
        assert!(refused(address).await, "a crashed pod still accepts");
        assert_eq!(sim.servers.as_ref().unwrap().local_addr(&key), None);
        let text = sim.metrics.encode().unwrap();
        assert_eq!(
            counter(&text, "a", "200") + counter(&text, "a", "500"),
            100.0
        );

        // Restarted, then gone.
        now = now.checked_add(tick).unwrap();
        sim.tick(&[Arc::clone(&served), Arc::clone(&invented)], now, tick);
        let restarted = sim.servers.as_ref().unwrap().local_addr(&key).unwrap();
        assert_eq!(restarted.ip().to_string(), "127.0.6.1");
        now = now.checked_add(tick).unwrap();
        sim.tick(&[Arc::clone(&invented)], now, tick);
        assert_eq!(sim.servers.as_ref().unwrap().local_addr(&key), None);
        assert!(refused(restarted).await, "a deleted pod still accepts");
    }
}
