//! The one way integration tests reach the local test environment.
//!
//! `scripts/test.sh` starts a shared environment (`scripts/env.sh up`) and exports its settings;
//! every test then asks [`TestEnv::new`] for a client and [`TestEnv::namespace`] for a namespace of
//! its own, which is deleted when the returned guard drops — also when the test panics.
//!
//! Environment variables read here:
//! - `KUBECONFIG`: the cluster to test against (any conformant cluster works).
//! - `FIREBREAK_PROMETHEUS_URL`: a Prometheus that scrapes the file_sd targets below.
//! - `FIREBREAK_SCRAPE_DIR`: the directory that Prometheus reads file_sd target files from.

#![allow(dead_code)] // each test module uses a different part of the helper

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Settings and a client for the environment under test.
pub struct TestEnv {
    /// A client for the cluster named by `KUBECONFIG`, bound to the current test's runtime.
    pub client: Client,
    /// Base URL of the test Prometheus, e.g. `http://127.0.0.1:19090`.
    pub prometheus_url: String,
    /// Directory whose `*.json` file_sd files Prometheus scrapes.
    pub scrape_dir: PathBuf,
}

fn required_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set. Run the tests with `scripts/test.sh`, which starts a local \
             environment, or start one with `scripts/env.sh up dev` and run them inside its private \
             network namespace: `scripts/env.sh exec dev bash -c 'source target/firebreak-env/dev/env && cargo test'`."
        )
    })
}

impl TestEnv {
    /// Connects to the environment. Panics with instructions when it is not configured.
    pub async fn new() -> TestEnv {
        let path = required_var("KUBECONFIG");
        let kubeconfig = Kubeconfig::read_from(&path)
            .unwrap_or_else(|e| panic!("cannot read the kubeconfig at {path}: {e}"));
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap_or_else(|e| panic!("the kubeconfig at {path} is unusable: {e}"));
        let client = Client::try_from(config).expect("kube client");
        TestEnv {
            client,
            prometheus_url: required_var("FIREBREAK_PROMETHEUS_URL"),
            scrape_dir: PathBuf::from(required_var("FIREBREAK_SCRAPE_DIR")),
        }
    }

    /// Creates a fresh namespace named after `test` (plus a unique suffix). It is deleted when the
    /// returned guard drops.
    pub async fn namespace(&self, test: &str) -> TestNamespace {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let slug: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let name = format!(
            "t-{}-{:x}{:x}",
            slug.trim_matches('-'),
            nanos & 0xffff,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("firebreak.dev/test".to_string(), "true".to_string())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        TestNamespace { name }
    }

    /// Registers a scrape target with the test Prometheus (a file_sd file); removed on drop.
    pub fn scrape_target(&self, id: &str, address: &str, labels: &[(&str, &str)]) -> ScrapeTarget {
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
            .collect();
        let body = serde_json::json!([{ "targets": [address], "labels": labels }]);
        let path = self.scrape_dir.join(format!("{id}.json"));
        // Write then rename, so Prometheus never reads half a file.
        let tmp = self.scrape_dir.join(format!(".{id}.json.tmp"));
        std::fs::write(&tmp, body.to_string()).expect("write scrape target");
        std::fs::rename(&tmp, &path).expect("publish scrape target");
        ScrapeTarget { path }
    }

    /// A Prometheus HTTP API client for the test Prometheus.
    pub fn prometheus(&self) -> prometheus_http_query::Client {
        self.prometheus_url
            .parse()
            .expect("FIREBREAK_PROMETHEUS_URL is not a URL")
    }
}

/// A namespace owned by one test; deleted (in the background on the server) on drop.
pub struct TestNamespace {
    pub name: String,
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime may be shutting down: use a private one.
        let deleted = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let client = Client::try_default().await?;
                let namespaces: Api<Namespace> = Api::all(client);
                match namespaces.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(anyhow::Error::from(e)),
                }
            })
        })
        .join();
        if let Ok(Err(e)) = deleted {
            eprintln!(
                "warning: could not delete test namespace {}: {e}",
                self.name
            );
        }
    }
}

/// A file_sd target file; removed on drop.
pub struct ScrapeTarget {
    path: PathBuf,
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Polls `check` every 250 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Installs Firebreak's CRDs (server-side apply) and waits until they are Established.
pub async fn install_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::{conditions, wait::await_condition};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in firebreak::api::crds() {
        let name = crd.metadata.name.clone().expect("CRDs have names");
        crds.patch(
            &name,
            &PatchParams::apply("firebreak-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("installing CRD {name}: {e}"));
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .unwrap_or_else(|_| panic!("CRD {name} never became Established"))
        .expect("watching CRD");
    }
}

/// A `firebreak controller` process limited to one namespace; killed (SIGKILL) on drop.
/// Its log goes to `target/e2e-logs/<namespace>.controller.log`.
pub struct ControllerProcess {
    child: Option<tokio::process::Child>,
    namespace: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ControllerProcess {
    /// Starts a controller watching `namespace`.
    pub fn start(namespace: &str) -> ControllerProcess {
        ControllerProcess::start_with(namespace, &[])
    }

    /// Starts a controller watching `namespace` with extra command-line `args`.
    pub fn start_with(namespace: &str, args: &[&str]) -> ControllerProcess {
        let mut process = ControllerProcess {
            child: None,
            namespace: namespace.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        };
        process.restart();
        process
    }

    /// Starts a controller watching `namespace` with extra `args` and environment variables
    /// (e.g. a `KUBECONFIG` with a ServiceAccount's token).
    pub fn start_with_env(
        namespace: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ControllerProcess {
        let mut process = ControllerProcess {
            child: None,
            namespace: namespace.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        process.restart();
        process
    }

    /// Starts the controller again (after [`ControllerProcess::kill`]).
    pub fn restart(&mut self) {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../e2e-logs");
        std::fs::create_dir_all(&dir).expect("log dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{}.controller.log", self.namespace)))
            .expect("log file");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_firebreak"))
            .args(["controller", "--namespace", &self.namespace])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FIREBREAK_LOG", "info,firebreak=debug")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("starting firebreak controller");
        self.child = Some(child);
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Peak resident memory (VmHWM) of the running process, in KiB (Linux only).
    pub fn peak_memory_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Kills the process with SIGKILL, as a node failure or OOM kill would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// Runs the `firebreak` CLI with `args`; panics with its output if it fails. Returns stdout.
pub async fn firebreak(args: &[&str]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_firebreak"))
        .args(args)
        .output()
        .await
        .expect("running firebreak");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "firebreak {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The `fleet-sim` binary (`tools/fleet-sim`), built by cargo once per test run.
///
/// Cargo hands an integration test the paths of its own package's binaries only
/// (`CARGO_BIN_EXE_*`), and the simulator is another package of the workspace, which `cargo test`
/// does not build as a plain binary. So the first test that needs it runs
/// `cargo build --bin fleet-sim` (the cargo running the tests, `$CARGO`) and takes the
/// executable's path from cargo's own report: it works from a fresh clone, whatever the target
/// directory, and never runs a simulator older than its source. When it is up to date (as after
/// `scripts/test.sh` or `scripts/demo.sh`, which build it the same way) this takes a second.
fn fleet_sim_binary() -> &'static std::path::Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let output = std::process::Command::new(cargo)
            .args([
                "build",
                "-q",
                "--bin",
                "fleet-sim",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running cargo to build fleet-sim");
        assert!(
            output.status.success(),
            "cargo build --bin fleet-sim failed (its errors are above)"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|message| {
                message["reason"] == "compiler-artifact" && message["target"]["name"] == "fleet-sim"
            })
            .and_then(|artifact| artifact["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no fleet-sim executable")
    })
}

/// A `fleet-sim` process for one namespace, registered as a scrape target of the test
/// Prometheus; killed and unregistered on drop.
pub struct Fleet {
    /// Where it serves `/metrics`, `127.0.0.1:PORT`.
    pub address: String,
    _child: tokio::process::Child,
    _stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
    _target: Option<ScrapeTarget>,
}

impl Fleet {
    /// Starts the simulator on `namespace` (seed 1, a free port, `extra` flags) and reads the
    /// address it prints first. Not registered with Prometheus: see [`Fleet::scraped_by`].
    pub async fn start(namespace: &str, extra: &[&str]) -> Fleet {
        use tokio::io::AsyncBufReadExt;
        let binary = tokio::task::spawn_blocking(fleet_sim_binary)
            .await
            .expect("building fleet-sim");
        let mut child = tokio::process::Command::new(binary)
            .args([
                "--namespace",
                namespace,
                "--listen",
                "127.0.0.1:0",
                "--seed",
                "1",
            ])
            .args(extra)
            .env("FIREBREAK_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting fleet-sim");
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("the simulator printed no address within 30 s")
            .expect("reading the simulator's stdout");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the simulator: {line:?}"))
            .to_string();
        Fleet {
            address,
            _child: child,
            _stdout: stdout,
            _target: None,
        }
    }

    /// Registers the simulator as a target of the environment's Prometheus.
    pub fn scraped_by(mut self, env: &TestEnv, id: &str) -> Fleet {
        self._target = Some(env.scrape_target(id, &self.address, &[("fleet", id)]));
        self
    }
}

/// A Prometheus of a test's own (so that a test may stop it without disturbing the others),
/// scraping `targets` every second and listening on a free loopback port.
pub struct OwnPrometheus {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    dir: PathBuf,
    child: Option<tokio::process::Child>,
}

impl OwnPrometheus {
    /// Starts it and waits until it is ready.
    pub async fn start(name: &str, targets: &[&str]) -> OwnPrometheus {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("prometheus-{name}-{port}"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = serde_json::json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "fleet", "static_configs": [{"targets": targets}]}]
        });
        std::fs::write(dir.join("prometheus.yml"), config.to_string()).unwrap();
        let mut prometheus = OwnPrometheus {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            child: None,
        };
        prometheus.restart().await;
        prometheus
    }

    /// Stops it (SIGKILL): queries fail from now on.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts it again on the same port and data.
    pub async fn restart(&mut self) {
        let binary =
            std::env::var("FIREBREAK_PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
        let child = tokio::process::Command::new(binary)
            .arg(format!(
                "--config.file={}",
                self.dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting prometheus (set FIREBREAK_PROMETHEUS_BIN if it is not on PATH)");
        self.child = Some(child);
        let ready = format!("{}/-/ready", self.url);
        eventually(
            "the test's own Prometheus to be ready",
            Duration::from_secs(30),
            || {
                let ready = ready.clone();
                async move {
                    reqwest::get(&ready)
                        .await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .map(|_| ())
                }
            },
        )
        .await;
    }
}

/// Creates the Rollout described by `body` (JSON), panicking with the API error.
pub async fn create_rollout(
    api: &Api<firebreak::api::Rollout>,
    body: serde_json::Value,
) -> firebreak::api::Rollout {
    let rollout: firebreak::api::Rollout =
        serde_json::from_value(body).expect("test Rollout deserializes");
    api.create(&PostParams::default(), &rollout)
        .await
        .expect("creating Rollout")
}

/// The Rollout's phase, if it has a status.
pub fn phase(r: &firebreak::api::Rollout) -> Option<firebreak::api::Phase> {
    r.status.as_ref().and_then(|s| s.phase)
}

/// Polls the Rollout every 200 ms until `check` holds; after `timeout`, panics naming `what` and
/// showing the last status (without its timeline, for brevity).
pub async fn wait_for_rollout(
    api: &Api<firebreak::api::Rollout>,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&firebreak::api::Rollout) -> bool,
) -> firebreak::api::Rollout {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let rollout = api.get(name).await.expect("reading Rollout");
        if check(&rollout) {
            return rollout;
        }
        if std::time::Instant::now() > deadline {
            let status = rollout.status.map(|mut s| {
                s.timeline.clear();
                s
            });
            panic!(
                "timed out after {timeout:?} waiting for {what}; last status: {}",
                serde_json::to_string_pretty(&status).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The usual set-up of a rollout test: the environment, the CRDs, a namespace of the test's own
/// and a controller watching it. Destructure it: `let RolloutTest { env, ns, controller, api } =
/// RolloutTest::start("my-test").await;`
pub struct RolloutTest {
    /// The environment.
    pub env: TestEnv,
    /// The test's namespace (deleted on drop).
    pub ns: TestNamespace,
    /// The controller watching it (killed on drop).
    pub controller: ControllerProcess,
    /// Rollouts in the namespace.
    pub api: Api<firebreak::api::Rollout>,
}

impl RolloutTest {
    /// Sets everything up for the test named `test`.
    pub async fn start(test: &str) -> RolloutTest {
        let env = TestEnv::new().await;
        install_crds(&env.client).await;
        let ns = env.namespace(test).await;
        let controller = ControllerProcess::start(&ns.name);
        let api = Api::namespaced(env.client.clone(), &ns.name);
        RolloutTest {
            env,
            ns,
            controller,
            api,
        }
    }
}

/// A Rollout (JSON) of `replicas` pods of `image` labelled `app: <name>`, with canary `steps`.
pub fn rollout_body(
    name: &str,
    replicas: i32,
    image: &str,
    steps: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "firebreak.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            },
            "strategy": {"canary": {"steps": steps}}
        }
    })
}

/// A new revision: the Rollout's container `app` runs `image`.
pub async fn set_image(api: &Api<firebreak::api::Rollout>, name: &str, image: &str) {
    roll_out(api, name, image, serde_json::json!({})).await;
}

/// A new revision: container `app` runs `image` and the pod template gets `annotations` (e.g. the
/// fleet simulator's `sim.firebreak.dev/error-rate`).
pub async fn roll_out(
    api: &Api<firebreak::api::Rollout>,
    name: &str,
    image: &str,
    annotations: serde_json::Value,
) {
    use kube::api::{Patch, PatchParams};
    let patch = serde_json::json!({"spec": {"template": {
        "metadata": {"annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": image}]}
    }}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patching the template");
}

/// The value of the first sample `query` returns from `prometheus` now, if any.
pub async fn query_value(prometheus: &prometheus_http_query::Client, query: &str) -> Option<f64> {
    let result = prometheus.query(query).get().await.ok()?;
    Some(result.data().as_vector()?.first()?.sample().value())
}

/// Waits until the Incident `name` records a delivered `event` notification, and returns it.
pub async fn incident_with_delivered(
    client: &Client,
    namespace: &str,
    name: &str,
    event: firebreak::api::NotificationEvent,
) -> firebreak::api::Incident {
    let incidents: Api<firebreak::api::Incident> = Api::namespaced(client.clone(), namespace);
    eventually(
        &format!("Incident {name} with a delivered {event} notification"),
        Duration::from_secs(30),
        || {
            let incidents = incidents.clone();
            async move {
                let incident = incidents.get_opt(name).await.ok().flatten()?;
                let sent = incident.status.as_ref().is_some_and(|s| {
                    s.notifications
                        .iter()
                        .any(|n| n.event == event && n.delivered)
                });
                sent.then_some(incident)
            }
        },
    )
    .await
}

/// One request a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Delivered {
    /// The `X-Firebreak-Delivery` header (empty when absent).
    pub delivery: String,
    /// The JSON body's `event`.
    pub event: String,
    /// The status it answered (0: it never answered).
    pub answered: u16,
}

/// A webhook receiver on 127.0.0.1 that records what it gets and answers `status` (which a test
/// may change; 0 holds the request without ever answering).
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    /// Every JSON body received, with when it arrived.
    pub received: std::sync::Arc<std::sync::Mutex<Vec<(std::time::Instant, serde_json::Value)>>>,
    /// Every request, in order of arrival, with its idempotency key and the answer given.
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<Delivered>>>,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts it on a free loopback port.
    pub async fn start(status: u16) -> Receiver {
        use std::sync::atomic::AtomicU16;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: std::sync::Arc<
            std::sync::Mutex<Vec<(std::time::Instant, serde_json::Value)>>,
        > = std::sync::Arc::default();
        let requests: std::sync::Arc<std::sync::Mutex<Vec<Delivered>>> = std::sync::Arc::default();
        let answer = std::sync::Arc::new(AtomicU16::new(status));
        let (log, requests_log, answers) = (received.clone(), requests.clone(), answer.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (log, requests_log, answers) =
                    (log.clone(), requests_log.clone(), answers.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 8192];
                    // Read headers, then the body by content-length.
                    loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buffer).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let header = |name: &str| {
                                text[..end].lines().find_map(|l| {
                                    let lower = l.to_ascii_lowercase();
                                    lower
                                        .strip_prefix(name)
                                        .map(|_| l[name.len()..].trim().to_string())
                                })
                            };
                            let length = header("content-length:")
                                .map(|v| v.parse::<usize>().unwrap_or(0))
                                .unwrap_or(0);
                            if buffer.len() >= end + 4 + length {
                                let body = &buffer[end + 4..end + 4 + length];
                                let status = answers.load(Ordering::SeqCst);
                                let value: serde_json::Value =
                                    serde_json::from_slice(body).unwrap_or_default();
                                requests_log.lock().unwrap().push(Delivered {
                                    delivery: header("x-firebreak-delivery:").unwrap_or_default(),
                                    event: value["event"].as_str().unwrap_or_default().to_string(),
                                    answered: status,
                                });
                                if !value.is_null() {
                                    log.lock().unwrap().push((std::time::Instant::now(), value));
                                }
                                if status == 0 {
                                    // Hold the request open, as a receiver that hangs would.
                                    tokio::time::sleep(Duration::from_secs(3600)).await;
                                    return;
                                }
                                let reply = format!(
                                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                                );
                                let _ = socket.write_all(reply.as_bytes()).await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            url,
            received,
            requests,
            status: answer,
            _server: server,
        }
    }

    /// Answers `status` from now on (0: hold requests without answering).
    pub fn answer(&self, status: u16) {
        self.status
            .store(status, std::sync::atomic::Ordering::SeqCst);
    }

    /// The requests about `event` so far.
    pub fn requests_about(&self, event: &str) -> Vec<Delivered> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.event == event)
            .cloned()
            .collect()
    }
}

impl Receiver {
    /// The JSON bodies received so far whose `event` is `event` (JSON format receivers).
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .filter(|v| v["event"] == event)
            .collect()
    }
}

/// The environment's Gateway (Traefik, `scripts/env.sh`): where requests enter, and the Gateway
/// routes attach to.
pub struct Gateway {
    /// Traefik's entrypoint, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The Gateway's name.
    pub name: String,
    /// The Gateway's namespace.
    pub namespace: String,
}

impl Gateway {
    /// Reads `FIREBREAK_GATEWAY_URL`, `FIREBREAK_GATEWAY_NAME` and `FIREBREAK_GATEWAY_NAMESPACE`.
    pub fn from_env() -> Gateway {
        Gateway {
            url: required_var("FIREBREAK_GATEWAY_URL"),
            name: required_var("FIREBREAK_GATEWAY_NAME"),
            namespace: required_var("FIREBREAK_GATEWAY_NAMESPACE"),
        }
    }

    /// A `parentRefs` entry naming this Gateway.
    pub fn parent_ref(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "namespace": self.namespace})
    }
}

/// What `fleet-sim load` measured: responses per revision (by `x-pod-template-hash`).
#[derive(Clone, Debug)]
pub struct LoadSummary {
    /// Requests sent.
    pub sent: u64,
    /// Responses received (any status).
    pub responses: u64,
    /// Per revision: (2xx, 5xx, other) responses.
    pub revisions: std::collections::BTreeMap<String, (u64, u64, u64)>,
    /// Connection errors and timeouts.
    pub failed: u64,
}

impl LoadSummary {
    fn from_json(summary: &serde_json::Value) -> LoadSummary {
        let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        LoadSummary {
            sent: count(&summary["sent"]),
            responses: count(&summary["responses"]),
            revisions: summary["revisions"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                (
                                    count(&v["ok"]),
                                    count(&v["server_errors"]),
                                    count(&v["other"]),
                                ),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            failed: count(&summary["connection_errors"]) + count(&summary["timeouts"]),
        }
    }

    /// Responses `revision` gave.
    pub fn of(&self, revision: &str) -> u64 {
        self.revisions
            .get(revision)
            .map_or(0, |(ok, errors, other)| ok + errors + other)
    }

    /// `revision`'s share of the responses, in percent.
    pub fn percent(&self, revision: &str) -> f64 {
        100.0 * self.of(revision) as f64 / self.responses.max(1) as f64
    }
}

/// Arguments of `fleet-sim load` through `gateway` for `host`, with extra `headers`.
fn load_args(
    gateway: &Gateway,
    host: &str,
    headers: &[&str],
    rps: u32,
    seconds: u32,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "load",
        "--url",
        &gateway.url,
        "--host",
        host,
        "--rps",
        &rps.to_string(),
        "--duration",
        &format!("{seconds}s"),
        "--json",
        "--report-every",
        "500ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for header in headers {
        args.extend(["--header".to_string(), header.to_string()]);
    }
    args
}

/// Sends `rps` requests per second for `seconds` through `gateway` to the route of `host` (the
/// load generator of `fleet-sim`) and returns what came back.
pub async fn load(
    gateway: &Gateway,
    host: &str,
    headers: &[&str],
    rps: u32,
    seconds: u32,
) -> LoadSummary {
    let binary = tokio::task::spawn_blocking(fleet_sim_binary)
        .await
        .expect("building fleet-sim");
    let output = tokio::process::Command::new(binary)
        .args(load_args(gateway, host, headers, rps, seconds))
        .env("FIREBREAK_LOG", "warn")
        .output()
        .await
        .expect("running fleet-sim load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "fleet-sim load failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["kind"] == "summary")
        .expect("fleet-sim load printed no summary");
    LoadSummary::from_json(&summary)
}

/// Sends batches of requests (one second at 100/s) through `gateway` (with `headers`) until a whole batch reaches
/// `revision`, at most for 15 s: a gateway's data plane may apply a route shortly after it
/// reports it accepted.
pub async fn settled(gateway: &Gateway, host: &str, headers: &[&str], revision: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let batch = load(gateway, host, headers, 100, 1).await;
        if batch.responses > 0 && batch.of(revision) == batch.responses {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway never sent all requests to {revision}: {batch:?}"
        );
    }
}

/// A `fleet-sim load` running in the background; its reports are kept with their arrival time.
pub struct BackgroundLoad {
    /// Every report line (`"kind": "report"`) with the wall-clock time it arrived.
    pub reports:
        std::sync::Arc<std::sync::Mutex<Vec<(k8s_openapi::jiff::Timestamp, serde_json::Value)>>>,
    _child: tokio::process::Child,
    _reader: tokio::task::JoinHandle<()>,
}

impl BackgroundLoad {
    /// Starts sending `rps` requests per second for up to `seconds` through `gateway` to `host`.
    pub async fn start(gateway: &Gateway, host: &str, rps: u32, seconds: u32) -> BackgroundLoad {
        use tokio::io::AsyncBufReadExt;
        let binary = tokio::task::spawn_blocking(fleet_sim_binary)
            .await
            .expect("building fleet-sim");
        let mut child = tokio::process::Command::new(binary)
            .args(load_args(gateway, host, &[], rps, seconds))
            .env("FIREBREAK_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting fleet-sim load");
        let stdout = child.stdout.take().expect("piped stdout");
        let reports: std::sync::Arc<std::sync::Mutex<Vec<_>>> = std::sync::Arc::default();
        let sink = reports.clone();
        let reader = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                    && value["kind"] == "report"
                {
                    sink.lock()
                        .unwrap()
                        .push((k8s_openapi::jiff::Timestamp::now(), value));
                }
            }
        });
        BackgroundLoad {
            reports,
            _child: child,
            _reader: reader,
        }
    }

    /// Responses of `revision` in one report line.
    pub fn responses_of(report: &serde_json::Value, revision: &str) -> u64 {
        report["revisions"][revision].as_object().map_or(0, |r| {
            ["ok", "server_errors", "other"]
                .iter()
                .map(|k| r.get(*k).and_then(serde_json::Value::as_u64).unwrap_or(0))
                .sum()
        })
    }
}
