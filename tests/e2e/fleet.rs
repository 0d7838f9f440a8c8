//! The fleet simulator (`fleet-sim`, in `tools/fleet-sim`) against the real control plane and
//! Prometheus: kwok's pods serve the annotated traffic as Prometheus sees it, and crash as the API
//! shows it.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::{Fleet, TestEnv, eventually};

fn is_serving(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Waits until `count` pods matching `selector` are Running and Ready.
async fn await_serving(pods: &Api<Pod>, selector: &str, count: usize) {
    eventually(
        &format!("{count} Running and Ready pods {selector}"),
        Duration::from_secs(90),
        || async move {
            let list = pods
                .list(&ListParams::default().labels(selector))
                .await
                .ok()?;
            (list.items.iter().filter(|p| is_serving(p)).count() == count).then_some(())
        },
    )
    .await;
}

/// The value of a PromQL query that returns one sample, if it does.
async fn scalar(prometheus: &prometheus_http_query::Client, query: &str) -> Option<f64> {
    let result = prometheus.query(query).get().await.ok()?;
    let vector = result.data().as_vector()?;
    match vector.as_slice() {
        [one] => Some(one.sample().value()),
        _ => None,
    }
}

#[tokio::test]
async fn prometheus_sees_the_annotated_request_rate_and_error_share() {
    let env = TestEnv::new().await;
    let ns = env.namespace("fleet-traffic").await;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns.name);
    let shop: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "shop"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {
                    "labels": {"app": "shop"},
                    "annotations": {
                        "sim.firebreak.dev/error-rate": "0.2",
                        "sim.firebreak.dev/requests-per-second": "100"
                    }
                },
                "spec": {"containers": [{"name": "shop", "image": "example.com/shop:1"}]}
            }
        }
    }))
    .unwrap();
    replica_sets
        .create(&PostParams::default(), &shop)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    await_serving(&pods, "app=shop", 3).await;

    let simulator = Fleet::start(&ns.name, &[]).await;
    let id = format!("fleet-{}", ns.name);
    let _target = env.scrape_target(&id, &simulator.address, &[("test", &id)]);
    let prometheus = env.prometheus();
    let series = format!(
        r#"http_requests_total{{namespace="{}",test="{id}"}}"#,
        ns.name
    );

    // Judge only once every series (3 pods × 2 codes) has 20 s of scrapes (every 2 s) behind it.
    let scraped = format!("count(count_over_time({series}[24s]) >= 10)");
    eventually(
        "Prometheus to hold 20 s of the simulator's counters for 3 pods",
        Duration::from_secs(120),
        || {
            let (prometheus, scraped) = (prometheus.clone(), scraped.clone());
            async move { (scalar(&prometheus, &scraped).await? == 6.0).then_some(()) }
        },
    )
    .await;

    let total = scalar(&prometheus, &format!("sum(rate({series}[20s]))"))
        .await
        .expect("a total request rate");
    let failing = scalar(
        &prometheus,
        &format!(
            r#"sum(rate({series_500}[20s])) / sum(rate({series}[20s]))"#,
            series_500 = series.replace("}", r#",code="500"}"#)
        ),
    )
    .await
    .expect("an error share");
    let per_pod = prometheus
        .query(format!("sum by (pod) (rate({series}[20s]))"))
        .get()
        .await
        .unwrap();
    let per_pod: Vec<f64> = per_pod
        .data()
        .as_vector()
        .unwrap()
        .iter()
        .map(|s| s.sample().value())
        .collect();

    // 100 requests/second over 20 s is about 2,000 requests: Poisson noise is about 2%, and
    // Prometheus' extrapolation at the window's edges adds a little more.
    assert!(
        (70.0..=130.0).contains(&total),
        "Prometheus reports {total:.1} requests/second for the shop pods, expected about 100"
    );
    assert!(
        (0.12..=0.28).contains(&failing),
        "Prometheus reports an error share of {failing:.3}, expected about 0.2"
    );
    assert_eq!(per_pod.len(), 3, "request rates by pod: {per_pod:?}");
    for rate in &per_pod {
        assert!(
            (18.0..=48.0).contains(rate),
            "the Service-like split gives each pod about 33 requests/second: {per_pod:?}"
        );
    }
}

/// What the test saw of a crashing pod's status over time.
#[derive(Debug, Default)]
struct Seen {
    most_restarts: i32,
    /// A status waiting in CrashLoopBackOff with the pod not Ready, and its back-off message.
    crash_loop: Option<String>,
    /// `(exit code, reason)` of the last termination.
    terminated: Option<(i32, String)>,
    /// Running and Ready again after at least one restart.
    recovered: bool,
}

impl Seen {
    fn observe(&mut self, pod: &Pod) {
        let Some(container) = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
        else {
            return;
        };
        let ContainerStatus {
            restart_count,
            state,
            last_state,
            ready,
            ..
        } = container;
        self.most_restarts = self.most_restarts.max(*restart_count);
        let waiting = state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(waiting) = waiting
            && waiting.reason.as_deref() == Some("CrashLoopBackOff")
            && !ready
            && !is_serving(pod)
        {
            self.crash_loop = waiting.message.clone();
        }
        if let Some(terminated) = last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
            self.terminated = Some((
                terminated.exit_code,
                terminated.reason.clone().unwrap_or_default(),
            ));
        }
        let running = state.as_ref().is_some_and(|s| s.running.is_some());
        if *restart_count >= 1 && running && *ready && is_serving(pod) {
            self.recovered = true;
        }
    }

    fn done(&self) -> bool {
        self.most_restarts >= 2 && self.crash_loop.is_some() && self.recovered
    }
}

#[tokio::test]
async fn annotated_pods_crash_back_off_and_recover_as_the_api_shows() {
    let env = TestEnv::new().await;
    let ns = env.namespace("fleet-crash").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    for (name, reason) in [("crashy", "Error"), ("oom", "OOMKilled")] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": {"app": "crash"},
                "annotations": {
                    "sim.firebreak.dev/crash-every": "2",
                    "sim.firebreak.dev/crash-reason": reason
                }
            },
            "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    await_serving(&pods, "app=crash", 2).await;

    let mut events = watcher(pods.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let _simulator = Fleet::start(&ns.name, &["--crash-backoff-base", "1s"]).await;

    let (mut crashy, mut oom) = (Seen::default(), Seen::default());
    let watched = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(pod) = events.try_next().await.expect("pod watch") {
            match pod.name_any().as_str() {
                "crashy" => crashy.observe(&pod),
                "oom" => oom.observe(&pod),
                _ => {}
            }
            if crashy.done() && oom.done() {
                return;
            }
        }
    })
    .await;
    assert!(
        watched.is_ok(),
        "within 90 s, both pods should crash twice (a crash every 2 s on average), back off and \
         recover; saw crashy: {crashy:?}, oom: {oom:?}"
    );

    let message = crashy.crash_loop.unwrap();
    assert!(
        message.starts_with("back-off ") && message.contains("restarting failed container=app"),
        "{message}"
    );
    assert_eq!(crashy.terminated, Some((1, "Error".to_string())));
    assert_eq!(oom.terminated, Some((137, "OOMKilled".to_string())));
}
