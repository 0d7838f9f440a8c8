//! Proof that the test environment is made of real parts: the scheduler places pods on kwok
//! nodes, the API server serves CRDs with a status subresource and watches, and Prometheus scrapes.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use kube::{Api, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestEnv, eventually, query_value};

#[tokio::test]
async fn deployment_pods_are_scheduled_on_kwok_nodes_and_run() {
    let env = TestEnv::new().await;
    let ns = env.namespace("deployment-pods-run").await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &ns.name);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]}
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    // The deployment controller (kube-controller-manager) creates a ReplicaSet and pods, the
    // scheduler binds them, and kwok plays the kubelet: they must all end up Running.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    let running = eventually(
        "3 Running pods of deployment web",
        Duration::from_secs(90),
        || {
            let pods = pods.clone();
            async move {
                let list = pods
                    .list(&ListParams::default().labels("app=web"))
                    .await
                    .ok()?;
                let running: Vec<Pod> = list
                    .items
                    .into_iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .collect();
                (running.len() == 3).then_some(running)
            }
        },
    )
    .await;

    let nodes: Api<Node> = Api::all(env.client.clone());
    for pod in running {
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let node_name = node_name
            .unwrap_or_else(|| panic!("pod {} is Running but unscheduled", pod.name_any()));
        let node = nodes.get(&node_name).await.unwrap();
        assert_eq!(
            node.annotations()
                .get("kwok.x-k8s.io/node")
                .map(String::as_str),
            Some("fake"),
            "pod {} runs on {node_name}, which is not a kwok node",
            pod.name_any()
        );
    }

    let available = await_condition(deployments, "web", |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.available_replicas)
            == Some(3)
    });
    tokio::time::timeout(Duration::from_secs(60), available)
        .await
        .expect("deployment web never reported 3 available replicas")
        .unwrap();
}

/// A throwaway custom resource, used only to prove that CRDs work end to end.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "smoke.firebreak.dev",
    version = "v1",
    kind = "Probe",
    namespaced,
    status = "ProbeStatus"
)]
struct ProbeSpec {
    target: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
struct ProbeStatus {
    seen: u32,
}

#[tokio::test]
async fn custom_resource_is_created_watched_and_status_patched() {
    let env = TestEnv::new().await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let ssa = PatchParams::apply("firebreak-tests").force();
    crds.patch(Probe::crd_name(), &ssa, &Patch::Apply(Probe::crd()))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, Probe::crd_name(), conditions::is_crd_established()),
    )
    .await
    .expect("the Probe CRD was never Established")
    .unwrap();

    let ns = env.namespace("crd-status").await;
    let probes: Api<Probe> = Api::namespaced(env.client.clone(), &ns.name);
    let mut events = watcher(probes.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();

    probes
        .create(
            &PostParams::default(),
            &Probe::new(
                "p",
                ProbeSpec {
                    target: "db".into(),
                },
            ),
        )
        .await
        .unwrap();
    // The status subresource: a patch of the main resource must not change status…
    probes
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"seen": 99}})),
        )
        .await
        .unwrap();
    // …and a patch through /status must.
    probes
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"seen": 1}})),
        )
        .await
        .unwrap();

    let watched = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(probe) = events.try_next().await.unwrap() {
            if probe.status.is_some() {
                return probe;
            }
        }
        panic!("watch ended")
    })
    .await
    .expect("the watch never delivered the status update");
    assert_eq!(watched.spec.target, "db");
    assert_eq!(
        watched.status,
        Some(ProbeStatus { seen: 1 }),
        "status written through the main resource leaked in"
    );
}

#[tokio::test]
async fn prometheus_scrapes_itself_and_registered_targets() {
    let env = TestEnv::new().await;
    let prometheus = env.prometheus();

    let self_up = eventually(
        "Prometheus to report up{job=\"prometheus\"} == 1",
        Duration::from_secs(60),
        || {
            let prometheus = prometheus.clone();
            async move {
                let result = prometheus
                    .query("up{job=\"prometheus\"}")
                    .get()
                    .await
                    .ok()?;
                let vector = result.data().as_vector()?.first()?.clone();
                (vector.sample().value() == 1.0).then_some(())
            }
        },
    )
    .await;
    let () = self_up;

    // A target of our own, registered through the file_sd directory the project controls.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let body = "# TYPE smoke_answer gauge\nsmoke_answer 42\n";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    let test_id = format!("smoke-{}", address.replace([':', '.'], "-"));
    let _target = env.scrape_target(&test_id, &address, &[("test", &test_id)]);

    let query = format!("smoke_answer{{test=\"{test_id}\"}}");
    let value = eventually(
        "Prometheus to scrape the registered target",
        Duration::from_secs(60),
        || {
            let prometheus = prometheus.clone();
            let query = query.clone();
            async move { query_value(&prometheus, &query).await }
        },
    )
    .await;
    assert_eq!(value, 42.0);
    let up = prometheus
        .query(format!("up{{test=\"{test_id}\"}}"))
        .get()
        .await
        .unwrap();
    assert_eq!(up.data().as_vector().unwrap()[0].sample().value(), 1.0);
    server.abort();
}
