//! The data plane (`fleet-sim --serve-pods`): a real HTTP listener on each simulated pod's IP, so
//! that a Gateway can proxy real requests to the pods of a kwok cluster, which run nothing.
//!
//! Every request is answered as the pod's annotations say ([`annotations`](super::annotations)):
//! after a latency drawn from the same exponential distribution as the invented traffic, it fails
//! with HTTP 500 with the pod's error-rate probability, else succeeds with 200 ([`answer`]). The
//! response names the pod and its revision in the headers [`SERVED_BY_HEADER`] and
//! [`POD_TEMPLATE_HASH_HEADER`]. Each request is counted into the pod's series on `/metrics`, the
//! same series the invented traffic fills ([`FleetMetrics::record`]), so the operator's Prometheus
//! queries see real traffic unchanged.
//!
//! **A crashed container refuses connections.** While the simulated container waits in
//! CrashLoopBackOff its process is dead, and a dead process has no listening socket: the kernel
//! answers a connection attempt with a reset (connection refused), and the connections that were
//! open are closed with it. So the simulator closes the pod's listener and every open connection
//! (requests in flight included), and opens a fresh listener when the container runs again. A 503
//! would be what a proxy in front of a crashed pod answers, not the pod.
//!
//! The listener's address must be local: `--serve-pods` runs in a network namespace where the pod
//! CIDR is routed to the loopback device. A failed bind is logged once per pod and retried every
//! tick; it never stops the simulator.
//!
//! The pure parts are [`answer`] (the response to one request) and [`endpoint`] (where and whether
//! a pod listens); [`PodServer`] serves one pod given its facts, with no cluster needed; and
//! [`PodServers`] opens and closes the listeners as the simulator sees pods change.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::annotations::PodBehaviour;
use super::metrics::{FleetMetrics, PodLabels};
use super::{AbortOnDrop, PodKey, kubelet, traffic};

/// The port the pods listen on unless `--pod-port` says otherwise.
pub const DEFAULT_POD_PORT: u16 = 8080;

/// Response header naming the pod that answered.
pub const SERVED_BY_HEADER: &str = "x-served-by";

/// Response header carrying the answering pod's `pod-template-hash` label (its revision); absent
/// when the pod has no such label.
pub const POD_TEMPLATE_HASH_HEADER: &str = "x-pod-template-hash";

/// Connections a pod's listener queues before accepting them (the `listen(2)` backlog).
const BACKLOG: u32 = 1024;

/// Pause after a failed `accept` (out of file descriptors, say) before the next, so the listener
/// does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// What a pod's listener needs to know to answer: the labels of its series and its behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    /// The pod's namespace, name and `pod-template-hash` (empty when it has none).
    pub labels: PodLabels,
    /// The pod's behaviour from its annotations (error rate, mean latency).
    pub behaviour: PodBehaviour,
}

/// How one request ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served: HTTP 200.
    Success,
    /// A simulated application error: HTTP 500.
    Failure,
}

impl Outcome {
    /// The response's status code.
    pub fn status(self) -> StatusCode {
        match self {
            Outcome::Success => StatusCode::OK,
            Outcome::Failure => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The response to one request: how it ends, and after how long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Answer {
    /// Success or failure.
    pub outcome: Outcome,
    /// How long the pod takes to answer.
    pub latency: Duration,
}

/// The answer to one request to a pod behaving as `behaviour` says: a failure with probability
/// `error_rate` (a Binomial draw of one request, [`traffic::sample_errors`]) and an exponential
/// latency with mean `mean_latency_seconds` ([`traffic::sample_exponential`]) — the draws the
/// invented traffic makes, one request at a time.
pub fn answer<R: Rng + ?Sized>(rng: &mut R, behaviour: &PodBehaviour) -> Answer {
    let failed = traffic::sample_errors(rng, 1, behaviour.error_rate) == 1;
    let seconds = traffic::sample_exponential(rng, behaviour.mean_latency_seconds);
    Answer {
        outcome: if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        },
        latency: Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX),
    }
}

/// Whether the pod's container process is alive, which decides whether its port accepts
/// connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// Running: the listener is open.
    Up,
    /// Crashed, waiting in CrashLoopBackOff: connections are refused.
    Down,
}

/// Where a pod listens, and whether its container is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod IP and the pods' port.
    pub address: SocketAddr,
    /// Up or down.
    pub container: Container,
}

/// Where and whether `pod` listens on `port`: `None` when it is not Running, is being deleted, has
/// no pod IP yet, or uses the host's network (its IP is the node's, shared with other pods). Its
/// container is up when the status of its main container ([`kubelet::crashing_container`]) says
/// running, or, without such a status, when the pod is Ready.
pub fn endpoint(pod: &Pod, port: u16) -> Option<Endpoint> {
    if !super::running(pod) {
        return None;
    }
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
    {
        return None;
    }
    let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
    let up = match kubelet::crashing_container_status(pod) {
        Some(status) => status.state.as_ref().is_some_and(|s| s.running.is_some()),
        None => super::serving(pod),
    };
    Some(Endpoint {
        address: SocketAddr::new(ip, port),
        container: if up { Container::Up } else { Container::Down },
    })
}

/// The message for a failed bind, with the likely fix when the address is not local.
pub fn bind_failure(address: SocketAddr, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::AddrNotAvailable {
        format!(
            "cannot serve on {address}: {} is not a local address ({error}); run fleet-sim \
             --serve-pods inside the network namespace where the pod network is local",
            address.ip()
        )
    } else {
        format!("cannot serve on {address}: {error}")
    }
}

/// One pod's HTTP listener and its open connections, served by a task. Dropping it closes the
/// listener and every connection (requests in flight are cut off), as a dying process would; the
/// sockets close as soon as the runtime has dropped the task, not before `drop` returns.
pub struct PodServer {
    address: SocketAddr,
    facts: watch::Sender<Arc<PodFacts>>,
    _task: AbortOnDrop,
}

impl PodServer {
    /// Binds `address` (port 0 picks a free port) and serves HTTP/1.1 on it as `facts` say,
    /// counting every request into `metrics`. `seed` seeds the server's random draws.
    ///
    /// Must be called within a Tokio runtime. Errors when the address cannot be bound (not local,
    /// in use); see [`bind_failure`] for a message.
    pub fn bind(
        address: SocketAddr,
        facts: PodFacts,
        metrics: Arc<FleetMetrics>,
        seed: u64,
    ) -> io::Result<PodServer> {
        let socket = match address {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // The closed listener of a crashed container leaves its connections in TIME_WAIT; the
        // restarted one must bind the same address regardless, as servers do.
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        let listener = socket.listen(BACKLOG)?;
        let bound = listener.local_addr()?;
        let (sender, receiver) = watch::channel(Arc::new(facts));
        let shared = Arc::new(Shared {
            facts: receiver,
            metrics,
            rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(seed)),
        });
        let task = tokio::spawn(accept(listener, shared));
        Ok(PodServer {
            address: bound,
            facts: sender,
            _task: AbortOnDrop(task.abort_handle()),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Answers the next requests as `facts` say (the pod's annotations or labels changed).
    pub fn update(&self, facts: PodFacts) {
        self.facts.send_if_modified(|current| {
            let changed = **current != facts;
            if changed {
                *current = Arc::new(facts);
            }
            changed
        });
    }
}

/// What the connections of one pod share.
struct Shared {
    facts: watch::Receiver<Arc<PodFacts>>,
    metrics: Arc<FleetMetrics>,
    rng: Mutex<Xoshiro256PlusPlus>,
}

/// Accepts connections until the task is aborted; the connections are tasks of a [`JoinSet`], so
/// aborting this task closes them all.
async fn accept(listener: TcpListener, pod: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(serve_connection(stream, Arc::clone(&pod)));
            }
            Err(e) => {
                debug!("accepting a connection: {e}");
                tokio::time::sleep(ACCEPT_PAUSE).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_connection(stream: TcpStream, pod: Arc<Shared>) {
    // Small responses: do not let Nagle's algorithm hold them back.
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let pod = Arc::clone(&pod);
        async move {
            drop(request);
            Ok::<_, Infallible>(respond(&pod).await)
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        debug!("serving a connection: {e}");
    }
}

/// Answers one request as the pod's current facts say, and counts it.
async fn respond(pod: &Shared) -> Response<Body> {
    let started = tokio::time::Instant::now();
    let facts = Arc::clone(&pod.facts.borrow());
    let answer = {
        let mut rng = pod.rng.lock().unwrap_or_else(PoisonError::into_inner);
        answer(&mut *rng, &facts.behaviour)
    };
    tokio::time::sleep(answer.latency).await;
    // A request cut off before this point (the client left, the container crashed) is not
    // counted, as an instrumented server would not count it either.
    pod.metrics.record(
        &facts.labels,
        1,
        u64::from(answer.outcome == Outcome::Failure),
        [started.elapsed().as_secs_f64()],
    );
    response(&facts, answer.outcome)
}

/// The response for `outcome` from the pod of `facts`.
fn response(facts: &PodFacts, outcome: Outcome) -> Response<Body> {
    let labels = &facts.labels;
    let body = match outcome {
        Outcome::Success => format!("served by {}\n", labels.pod),
        Outcome::Failure => format!(
            "simulated failure from {} (error rate {})\n",
            labels.pod, facts.behaviour.error_rate
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = outcome.status();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Pod names and label values are valid header values; should one not be, it is left out.
    if let Ok(name) = HeaderValue::from_str(&labels.pod) {
        headers.insert(SERVED_BY_HEADER, name);
    }
    if !labels.pod_template_hash.is_empty()
        && let Ok(hash) = HeaderValue::from_str(&labels.pod_template_hash)
    {
        headers.insert(POD_TEMPLATE_HASH_HEADER, hash);
    }
    response
}

/// A pod's listener as [`PodServers::sync`] left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The pod has no endpoint ([`endpoint`] is `None`): nothing is served, and the invented
    /// traffic applies to it as without `--serve-pods`.
    NoEndpoint,
    /// Open, bound to this address.
    Open(SocketAddr),
    /// Closed because the container is down: connections are refused.
    Closed,
    /// The address could not be bound (logged once); retried at the next sync.
    BindFailed,
}

impl Listener {
    /// Whether the pod's traffic is real requests only (no invented traffic): it has an endpoint,
    /// whether or not the listener is open.
    pub fn is_served(self) -> bool {
        match self {
            Listener::NoEndpoint => false,
            Listener::Open(_) | Listener::Closed | Listener::BindFailed => true,
        }
    }
}

/// The listeners of all served pods, opened and closed as the pods change.
pub struct PodServers {
    port: u16,
    metrics: Arc<FleetMetrics>,
    pods: HashMap<PodKey, Served>,
}

#[derive(Default)]
struct Served {
    /// The open listener and the address it was asked to bind (its port may have been 0).
    server: Option<(SocketAddr, PodServer)>,
    /// The last bind failure logged, so that it is logged once.
    reported: Option<String>,
}

impl PodServers {
    /// No listeners yet; pods will listen on `port` (0: a free port per pod, for tests), counting
    /// requests into `metrics`.
    pub fn new(port: u16, metrics: Arc<FleetMetrics>) -> Self {
        PodServers {
            port,
            metrics,
            pods: HashMap::new(),
        }
    }

    /// The port the pods listen on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Brings the listener of the pod at `key` in line with its `endpoint` and `facts`: opens it
    /// when the container is up (seeding its random draws with `seed()`), closes it when the
    /// container is down, the pod lost its endpoint or its IP changed, and hands changed facts to
    /// an open one. Must be called within a Tokio runtime.
    pub fn sync(
        &mut self,
        key: &PodKey,
        endpoint: Option<Endpoint>,
        facts: PodFacts,
        seed: &mut dyn FnMut() -> u64,
    ) -> Listener {
        let served = self.pods.entry(key.clone()).or_default();
        let Some(endpoint) = endpoint else {
            served.server = None;
            return Listener::NoEndpoint;
        };
        if served
            .server
            .as_ref()
            .is_some_and(|(asked, _)| *asked != endpoint.address)
        {
            debug!(
                "pod {}/{}: address changed to {}",
                key.0, key.1, endpoint.address
            );
            served.server = None;
        }
        match endpoint.container {
            Container::Down => {
                if served.server.take().is_some() {
                    debug!("pod {}/{}: container down, listener closed", key.0, key.1);
                }
                Listener::Closed
            }
            Container::Up => {
                if let Some((_, server)) = &served.server {
                    server.update(facts);
                    return Listener::Open(server.local_addr());
                }
                match PodServer::bind(endpoint.address, facts, Arc::clone(&self.metrics), seed()) {
                    Ok(server) => {
                        let bound = server.local_addr();
                        debug!("pod {}/{}: serving HTTP on {bound}", key.0, key.1);
                        served.reported = None;
                        served.server = Some((endpoint.address, server));
                        Listener::Open(bound)
                    }
                    Err(e) => {
                        let message = bind_failure(endpoint.address, &e);
                        if served.reported.as_ref() != Some(&message) {
                            warn!("pod {}/{}: {message}", key.0, key.1);
                            served.reported = Some(message);
                        }
                        Listener::BindFailed
                    }
                }
            }
        }
    }

    /// Closes the listeners of the pods not in `keep` (gone, or no longer in a traffic group).
    pub fn retain(&mut self, keep: &HashSet<PodKey>) {
        self.pods.retain(|key, _| keep.contains(key));
    }

    /// The address the pod at `key` is served on, if its listener is open.
    pub fn local_addr(&self, key: &PodKey) -> Option<SocketAddr> {
        let (_, server) = self.pods.get(key)?.server.as_ref()?;
        Some(server.local_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load;
    use serde_json::json;

    fn behaviour(error_rate: f64, latency_ms: f64) -> PodBehaviour {
        PodBehaviour {
            error_rate,
            mean_latency_seconds: latency_ms / 1e3,
            ..PodBehaviour::default()
        }
    }

    fn facts(pod: &str, hash: &str, behaviour: PodBehaviour) -> PodFacts {
        PodFacts {
            labels: PodLabels {
                namespace: "ns".into(),
                pod: pod.into(),
                pod_template_hash: hash.into(),
            },
            behaviour,
        }
    }

    #[test]
    fn answers_fail_at_the_error_rate_after_exponential_latencies() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let n = 20_000;
        let answers: Vec<Answer> = (0..n)
            .map(|_| answer(&mut rng, &behaviour(0.2, 50.0)))
            .collect();
        let failures = answers
            .iter()
            .filter(|a| a.outcome == Outcome::Failure)
            .count() as f64;
        // Binomial(20,000, 0.2): standard deviation about 57 requests; allow 5 of them.
        assert!((failures - 4000.0).abs() < 285.0, "{failures} failures");
        let mean = answers.iter().map(|a| a.latency.as_secs_f64()).sum::<f64>() / n as f64;
        assert!((mean - 0.050).abs() < 0.002, "mean latency {mean}");

        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        for _ in 0..100 {
            assert_eq!(
                answer(&mut rng, &behaviour(0.0, 0.0)),
                Answer {
                    outcome: Outcome::Success,
                    latency: Duration::ZERO
                }
            );
            assert_eq!(
                answer(&mut rng, &behaviour(1.0, 5.0)).outcome,
                Outcome::Failure
            );
        }
        assert_eq!(Outcome::Success.status(), StatusCode::OK);
        assert_eq!(Outcome::Failure.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    /// A kwok pod, Running and Ready with one running container, with this pod IP.
    fn kwok_pod(ip: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "shop-abc-1", "namespace": "ns"},
            "spec": {"containers": [{"name": "app", "image": "shop:1"}]},
            "status": {
                "phase": "Running",
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "app", "image": "shop:1", "imageID": "", "ready": true,
                    "restartCount": 0, "state": {"running": {}}
                }]
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_running_pod_listens_on_its_ip_and_a_crashed_one_is_down() {
        let pod = kwok_pod(Some("10.244.1.7"));
        assert_eq!(
            endpoint(&pod, 8080),
            Some(Endpoint {
                address: "10.244.1.7:8080".parse().unwrap(),
                container: Container::Up
            })
        );
        let v6 = kwok_pod(Some("fd00::7"));
        assert_eq!(
            endpoint(&v6, 80).unwrap().address,
            "[fd00::7]:80".parse().unwrap()
        );

        // As the simulator's crash patch leaves it (kubelet::crash_patch).
        let mut crashed = pod.clone();
        let status = crashed.status.as_mut().unwrap();
        status.container_statuses.as_mut().unwrap()[0].state =
            serde_json::from_value(json!({"waiting": {"reason": "CrashLoopBackOff"}})).unwrap();
        status.conditions.as_mut().unwrap()[0].status = "False".into();
        assert_eq!(endpoint(&crashed, 8080).unwrap().container, Container::Down);

        // Without container statuses, readiness decides.
        let mut bare = pod.clone();
        bare.status.as_mut().unwrap().container_statuses = None;
        assert_eq!(endpoint(&bare, 8080).unwrap().container, Container::Up);
        bare.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        assert_eq!(endpoint(&bare, 8080).unwrap().container, Container::Down);
    }

    #[test]
    fn pods_without_an_address_of_their_own_are_not_served() {
        assert_eq!(endpoint(&kwok_pod(None), 8080), None);
        assert_eq!(endpoint(&kwok_pod(Some("not-an-ip")), 8080), None);
        let mut host = kwok_pod(Some("172.18.0.2"));
        host.spec.as_mut().unwrap().host_network = Some(true);
        assert_eq!(endpoint(&host, 8080), None);
        let mut pending = kwok_pod(Some("10.244.1.7"));
        pending.status.as_mut().unwrap().phase = Some("Pending".into());
        assert_eq!(endpoint(&pending, 8080), None);
        let mut deleting = kwok_pod(Some("10.244.1.7"));
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(endpoint(&deleting, 8080), None);
    }

    #[test]
    fn a_non_local_address_is_explained() {
        let address: SocketAddr = "10.244.1.7:8080".parse().unwrap();
        let error = io::Error::from(io::ErrorKind::AddrNotAvailable);
        let message = bind_failure(address, &error);
        assert!(
            message
                .starts_with("cannot serve on 10.244.1.7:8080: 10.244.1.7 is not a local address"),
            "{message}"
        );
        assert!(message.contains("network namespace"), "{message}");
        let in_use = bind_failure(address, &io::Error::from(io::ErrorKind::AddrInUse));
        assert!(!in_use.contains("network namespace"), "{in_use}");
    }

    /// The load generator's settings for `requests` requests at `rps` to `address`.
    fn load_at(address: SocketAddr, rps: f64, requests: u32) -> load::LoadConfig {
        load::LoadConfig {
            url: format!("http://{address}/").parse().unwrap(),
            host: None,
            headers: Vec::new(),
            rps,
            duration: Duration::from_secs_f64(f64::from(requests) / rps),
            report_every: Duration::from_secs(1),
            json: false,
            max_in_flight: 1000,
            timeout: Duration::from_secs(10),
        }
    }

    async fn run_load(config: &load::LoadConfig) -> load::Summary {
        let mut out = Vec::new();
        load::run(config, &mut out).await.unwrap()
    }

    fn counter(metrics: &FleetMetrics, pod: &str, hash: &str, code: &str) -> u64 {
        let prefix = format!(
            r#"http_requests_total{{namespace="ns",pod="{pod}",pod_template_hash="{hash}",code="{code}"}} "#
        );
        let text = metrics.encode().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_served_pod_fails_its_share_of_real_requests_and_counts_them() {
        let metrics = Arc::new(FleetMetrics::new());
        let pod = facts("shop-abc-1", "abc", behaviour(0.2, 1.0));
        metrics.track(&pod.labels);
        let server = PodServer::bind(
            "127.0.5.7:0".parse().unwrap(),
            pod,
            Arc::clone(&metrics),
            42,
        )
        .unwrap();
        assert_eq!(server.local_addr().ip().to_string(), "127.0.5.7");

        let summary = run_load(&load_at(server.local_addr(), 500.0, 1000)).await;
        assert_eq!(summary.tally.sent, 1000, "{summary:?}");
        assert_eq!(summary.tally.skipped, 0);
        assert_eq!(summary.tally.connection_errors, 0);
        assert_eq!(summary.tally.timeouts, 0);
        let revisions: Vec<&String> = summary.tally.revisions.keys().collect();
        assert_eq!(revisions, ["abc"], "revisions by x-pod-template-hash");
        let abc = &summary.tally.revisions["abc"];
        assert_eq!(abc.ok + abc.server_errors, 1000);
        assert_eq!(abc.other, 0);
        // Binomial(1000, 0.2): mean 200, standard deviation 12.6; 4 of them either side.
        assert!(
            (150..=250).contains(&abc.server_errors),
            "{} of 1000 failed at an error rate of 0.2",
            abc.server_errors
        );
        // The same counts reach /metrics, in the invented traffic's series.
        assert_eq!(counter(&metrics, "shop-abc-1", "abc", "200"), abc.ok);
        assert_eq!(
            counter(&metrics, "shop-abc-1", "abc", "500"),
            abc.server_errors
        );
        let p50 = summary.tally.percentile(0.5).unwrap();
        assert!(p50 >= Duration::from_micros(300), "p50 {p50:?}");
        assert!(p50 < Duration::from_millis(200), "p50 {p50:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changed_facts_change_the_answers_and_a_pod_without_hash_is_named() {
        let metrics = Arc::new(FleetMetrics::new());
        let server = PodServer::bind(
            "127.0.5.8:0".parse().unwrap(),
            facts("lonely", "", behaviour(0.0, 0.0)),
            Arc::clone(&metrics),
            1,
        )
        .unwrap();
        let summary = run_load(&load_at(server.local_addr(), 200.0, 20)).await;
        assert_eq!(summary.tally.revisions["lonely"].ok, 20, "{summary:?}");

        server.update(facts("lonely", "", behaviour(1.0, 0.0)));
        let summary = run_load(&load_at(server.local_addr(), 200.0, 20)).await;
        assert_eq!(
            summary.tally.revisions["lonely"].server_errors, 20,
            "{summary:?}"
        );
    }

    /// Whether a connection to `address` is refused, waiting up to 2 s for a closing listener.
    async fn refused(address: SocketAddr) -> bool {
        for _ in 0..40 {
            match TcpStream::connect(address).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return true,
                Err(_) | Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        false
    }

    /// Writes `request` to `stream` and reads until the end of the response headers (the
    /// response bodies here are short enough to come with them).
    async fn exchange(stream: &TcpStream, request: &[u8]) -> String {
        stream.writable().await.unwrap();
        assert_eq!(stream.try_write(request).unwrap(), request.len());
        let mut reply = Vec::new();
        let mut buffer = [0; 4096];
        while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
            stream.readable().await.unwrap();
            match stream.try_read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("reading the response: {e}"),
            }
        }
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// Whether the peer closes `stream` (end of stream or reset) within 2 s.
    async fn closed_by_peer(stream: &TcpStream) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut buffer = [0; 4096];
        loop {
            if tokio::time::timeout_at(deadline, stream.readable())
                .await
                .is_err()
            {
                return false;
            }
            match stream.try_read(&mut buffer) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return true,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crashed_container_refuses_connections_until_it_restarts() {
        let metrics = Arc::new(FleetMetrics::new());
        let mut servers = PodServers::new(0, Arc::clone(&metrics));
        let key: PodKey = ("ns".into(), "shop-abc-1".into());
        let ip: IpAddr = "127.0.5.9".parse().unwrap();
        let up = Some(Endpoint {
            address: SocketAddr::new(ip, 0),
            container: Container::Up,
        });
        let pod = facts("shop-abc-1", "abc", behaviour(0.0, 0.0));
        let mut seed = || 7;

        let Listener::Open(address) = servers.sync(&key, up, pod.clone(), &mut seed) else {
            panic!("not listening")
        };
        assert_eq!(address.ip(), ip);
        assert_eq!(servers.local_addr(&key), Some(address));
        // A second sync keeps the same listener.
        assert_eq!(
            servers.sync(&key, up, pod.clone(), &mut seed),
            Listener::Open(address)
        );
        let summary = run_load(&load_at(address, 200.0, 20)).await;
        assert_eq!(summary.tally.revisions["abc"].ok, 20, "{summary:?}");
        // A kept-alive connection, idle after one request, as a Gateway's pool holds them.
        let kept_alive = TcpStream::connect(address).await.unwrap();
        let reply = exchange(&kept_alive, b"GET / HTTP/1.1\r\nhost: shop\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.contains("x-pod-template-hash: abc"), "{reply}");
        assert!(reply.contains("x-served-by: shop-abc-1"), "{reply}");

        let down = Some(Endpoint {
            address: SocketAddr::new(ip, 0),
            container: Container::Down,
        });
        assert_eq!(
            servers.sync(&key, down, pod.clone(), &mut seed),
            Listener::Closed
        );
        assert!(Listener::Closed.is_served());
        assert_eq!(servers.local_addr(&key), None);
        assert!(refused(address).await, "{address} still accepts");
        assert!(
            closed_by_peer(&kept_alive).await,
            "an open connection outlived the crash"
        );
        let summary = run_load(&load_at(address, 200.0, 20)).await;
        assert_eq!(summary.tally.connection_errors, 20, "{summary:?}");
        assert!(summary.tally.revisions.is_empty());

        let Listener::Open(restarted) = servers.sync(&key, up, pod.clone(), &mut seed) else {
            panic!("not listening after the restart")
        };
        let summary = run_load(&load_at(restarted, 200.0, 20)).await;
        assert_eq!(summary.tally.revisions["abc"].ok, 20, "{summary:?}");

        // The pod is gone.
        servers.retain(&HashSet::new());
        assert!(refused(restarted).await, "{restarted} still accepts");
        assert_eq!(
            counter(&metrics, "shop-abc-1", "abc", "200"),
            41,
            "only real requests count: 40 from the load, 1 on the kept-alive connection"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_pod_ip_moves_the_listener() {
        let mut servers = PodServers::new(0, Arc::new(FleetMetrics::new()));
        let key: PodKey = ("ns".into(), "p".into());
        let pod = facts("p", "abc", behaviour(0.0, 0.0));
        let at = |ip: &str| {
            Some(Endpoint {
                address: SocketAddr::new(ip.parse().unwrap(), 0),
                container: Container::Up,
            })
        };
        let Listener::Open(first) = servers.sync(&key, at("127.0.5.10"), pod.clone(), &mut || 1)
        else {
            panic!("not listening")
        };
        let Listener::Open(second) = servers.sync(&key, at("127.0.5.11"), pod.clone(), &mut || 1)
        else {
            panic!("not listening")
        };
        assert_eq!(second.ip().to_string(), "127.0.5.11");
        assert!(refused(first).await, "the old address still accepts");
        // No endpoint any more (the pod stopped running): closed, and invented traffic applies.
        let listener = servers.sync(&key, None, pod, &mut || 1);
        assert_eq!(listener, Listener::NoEndpoint);
        assert!(!listener.is_served());
        assert!(refused(second).await, "{second} still accepts");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bind_failure_is_reported_once_and_not_fatal() {
        let mut servers = PodServers::new(0, Arc::new(FleetMetrics::new()));
        let key: PodKey = ("ns".into(), "p".into());
        // TEST-NET-2 (RFC 5737): never a local address. Binding sends nothing.
        let endpoint = Some(Endpoint {
            address: "198.51.100.7:8080".parse().unwrap(),
            container: Container::Up,
        });
        let pod = facts("p", "abc", behaviour(0.0, 0.0));
        for _ in 0..3 {
            assert_eq!(
                servers.sync(&key, endpoint, pod.clone(), &mut || 1),
                Listener::BindFailed
            );
        }
        let reported = servers.pods[&key].reported.clone().unwrap();
        assert!(reported.contains("not a local address"), "{reported}");
        assert_eq!(servers.local_addr(&key), None);
    }
}
