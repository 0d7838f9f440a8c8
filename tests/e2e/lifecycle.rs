//! The edges of a rollout's life on the real control plane: `Healthy` only once the old pods are
//! gone, nothing new in a namespace being deleted, objects the API server refuses reported where
//! people look, and revisions that never mix two Rollouts' pods.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firebreak::api::Phase;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::support::{
    RolloutTest, create_rollout, eventually, phase, rollout_body, set_image, wait_for_rollout,
};

fn version(meta: &impl ResourceExt) -> u64 {
    meta.resource_version()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn healthy_comes_after_the_last_old_pod_is_gone() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("healthy-after-old-pods").await;
    create_rollout(
        &api,
        rollout_body("tidy", 4, "tidy:1", json!([{"setWeight": 50}])),
    )
    .await;
    let v1 = wait_for_rollout(&api, "tidy", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    let v1_hash = v1.status.unwrap().stable_revision.unwrap();

    // etcd's resourceVersions are global: they order the last v1 pod's deletion and the
    // Rollout's status turning Healthy.
    let pods_gone: Arc<Mutex<Vec<u64>>> = Arc::default();
    let log = pods_gone.clone();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    let config = watcher::Config::default().labels(&format!("pod-template-hash={v1_hash}"));
    let pod_watch = tokio::spawn(async move {
        let mut events = watcher(pods, config).boxed();
        while let Some(Ok(event)) = events.next().await {
            if let watcher::Event::Delete(pod) = event {
                log.lock().unwrap().push(version(&pod));
            }
        }
    });
    let healthy_at: Arc<Mutex<Option<u64>>> = Arc::default();
    let seen = healthy_at.clone();
    let rollouts = api.clone();
    let rollout_watch = tokio::spawn(async move {
        let config = watcher::Config::default().fields("metadata.name=tidy");
        let mut events = watcher(rollouts, config).boxed();
        while let Some(Ok(event)) = events.next().await {
            if let watcher::Event::Apply(r) = event {
                let status = r.status.clone().unwrap_or_default();
                let promoted = status.stable_revision.as_deref() != Some(v1_hash.as_str());
                if promoted && status.phase == Some(Phase::Healthy) {
                    seen.lock().unwrap().get_or_insert(version(&r));
                }
            }
        }
    });
    // Let both watches start before the change.
    tokio::time::sleep(Duration::from_secs(1)).await;
    set_image(&api, "tidy", "tidy:2").await;
    let healthy = eventually(
        "v2 Healthy seen by the watch",
        Duration::from_secs(90),
        || async { *healthy_at.lock().unwrap() },
    )
    .await;
    let deletions = pods_gone.lock().unwrap().clone();
    pod_watch.abort();
    rollout_watch.abort();
    assert_eq!(
        deletions.len(),
        4,
        "all four v1 pods were deleted: {deletions:?}"
    );
    let last = deletions.iter().max().copied().unwrap_or(0);
    assert!(
        last < healthy,
        "Healthy (resourceVersion {healthy}) came before the last v1 pod was gone ({last})"
    );
}

#[tokio::test]
async fn nothing_new_is_created_in_a_namespace_being_deleted() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("terminating-namespace").await;
    create_rollout(
        &api,
        rollout_body(
            "late",
            6,
            "late:1",
            json!([{"setWeight": 50}, {"pause": {}}]),
        ),
    )
    .await;
    wait_for_rollout(&api, "late", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    // A finalizer keeps the namespace in Terminating while the test looks.
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns.name);
    let held: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "hold", "finalizers": ["firebreak.dev/test-hold"]}
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &held)
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .delete(&ns.name, &DeleteParams::background())
        .await
        .unwrap();
    eventually(
        "the namespace to be Terminating",
        Duration::from_secs(30),
        || {
            let namespaces = namespaces.clone();
            let name = ns.name.clone();
            async move {
                let ns = namespaces.get(&name).await.ok()?;
                (ns.status?.phase.as_deref() == Some("Terminating")).then_some(())
            }
        },
    )
    .await;
    // The namespace controller deletes the ReplicaSets and the Rollout in its own order; a
    // Rollout that outlives its ReplicaSets must not try to recreate them.
    eventually(
        "the Rollout to be deleted with its namespace",
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move { matches!(api.get_opt("late").await, Ok(None)).then_some(()) }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log_path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("../e2e-logs")
        .join(format!("{}.controller.log", ns.name));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let refused = log.matches("being terminated").count();
    config_maps
        .patch(
            "hold",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(
        refused, 0,
        "the controller tried to create objects in the terminating namespace:\n{log}"
    );
}

#[tokio::test]
async fn a_replica_set_the_api_server_refuses_is_reported_in_status_and_as_an_event() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("refused-replica-set").await;
    // Pod-template annotations over 256 KiB: the Rollout is accepted, its ReplicaSet is not.
    let mut body = rollout_body("huge", 1, "huge:1", json!([{"setWeight": 50}]));
    body["spec"]["template"]["metadata"]["annotations"] =
        json!({"example.com/blob": "x".repeat(300 * 1024)});
    create_rollout(&api, body).await;
    let degraded = wait_for_rollout(&api, "huge", "Degraded", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Degraded)
    })
    .await;
    let message = degraded.status.unwrap().message.unwrap_or_default();
    assert!(
        message.contains("refused ReplicaSet") && message.contains("annotations"),
        "the message names the object and the field: {message}"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &ns.name);
    eventually("an ObjectRefused Event", Duration::from_secs(30), || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some("ObjectRefused"))
                .then_some(())
        }
    })
    .await;

    // Fixing the spec recovers.
    api.patch(
        "huge",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"template": {"metadata": {"annotations": null}}}})),
    )
    .await
    .unwrap();
    wait_for_rollout(
        &api,
        "huge",
        "Healthy after the fix",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::Healthy),
    )
    .await;
}

#[tokio::test]
async fn two_rollouts_with_one_template_never_share_a_revision() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("twin-rollouts").await;
    // The same template, labels and selector in both.
    for name in ["twin-a", "twin-b"] {
        let mut body = rollout_body(name, 2, "twin:1", json!([{"setWeight": 50}]));
        body["spec"]["selector"] = json!({"matchLabels": {"app": "twin"}});
        body["spec"]["template"]["metadata"]["labels"] = json!({"app": "twin"});
        create_rollout(&api, body).await;
    }
    let mut hashes = Vec::new();
    for name in ["twin-a", "twin-b"] {
        let r = wait_for_rollout(&api, name, "Healthy", Duration::from_secs(60), |r| {
            phase(r) == Some(Phase::Healthy)
        })
        .await;
        hashes.push(r.status.unwrap().stable_revision.unwrap());
    }
    assert_ne!(hashes[0], hashes[1], "each Rollout's revision is its own");
    // What `{{revision}}` selects is exactly one Rollout's pods.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    for (hash, name) in hashes.iter().zip(["twin-a", "twin-b"]) {
        let selected = pods
            .list(&ListParams::default().labels(&format!("pod-template-hash={hash}")))
            .await
            .unwrap();
        let owners: Vec<String> = selected
            .items
            .iter()
            .map(|p| {
                p.labels()
                    .get("firebreak.dev/rollout")
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(owners, [name, name], "pods of revision {hash}");
    }
}
