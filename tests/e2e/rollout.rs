//! The canary engine on the real control plane: the CRD's validation, the lifecycle of a rollout
//! with real ReplicaSets and pods, abort, the progress deadline, and a controller killed mid-way.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use firebreak::api::{POD_TEMPLATE_HASH_LABEL, Phase, ROLLOUT_LABEL, Rollout};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};

use crate::support::{
    RolloutTest, TestEnv, create_rollout, eventually, firebreak, install_crds, phase, rollout_body,
    set_image, wait_for_rollout,
};

fn step(r: &Rollout) -> Option<i32> {
    r.status.as_ref().and_then(|s| s.current_step_index)
}

/// Running, non-terminating pods of rollout `name`, counted by pod-template-hash.
async fn running_pods(client: &Client, ns: &str, name: &str) -> BTreeMap<String, usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}={name}")))
        .await
        .expect("listing pods");
    let mut counts = BTreeMap::new();
    for pod in list.items {
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if running && pod.metadata.deletion_timestamp.is_none() {
            let hash = pod
                .labels()
                .get(POD_TEMPLATE_HASH_LABEL)
                .cloned()
                .unwrap_or_default();
            *counts.entry(hash).or_default() += 1;
        }
    }
    counts
}

/// Waits until the running pods are exactly `want` (hash → count).
async fn wait_for_pods(client: &Client, ns: &str, name: &str, want: &[(&str, usize)]) {
    let want: BTreeMap<String, usize> = want
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(h, n)| (h.to_string(), *n))
        .collect();
    let what = format!("running pods {want:?}");
    eventually(&what, Duration::from_secs(60), || {
        let want = want.clone();
        async move {
            let got = running_pods(client, ns, name).await;
            (got == want).then_some(())
        }
    })
    .await;
}

fn hashes(r: &Rollout) -> (String, String) {
    let status = r.status.clone().unwrap_or_default();
    (
        status.stable_revision.unwrap_or_default(),
        status.canary_revision.unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_crd_rejects_invalid_rollouts_with_a_message_naming_the_field() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let ns = env.namespace("crd-validation").await;
    let api: Api<Rollout> = Api::namespaced(env.client.clone(), &ns.name);
    let steps = json!([{"setWeight": 10}]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "selector",
            {
                let mut r = rollout_body("a", 1, "app:1", steps.clone());
                r["spec"]["selector"]["matchLabels"] = json!({"app": "other"});
                r
            },
            "spec.selector.matchLabels",
        ),
        (
            "weight",
            rollout_body("b", 1, "app:1", json!([{"setWeight": 150}])),
            "setWeight",
        ),
        (
            "duration",
            rollout_body(
                "c",
                1,
                "app:1",
                json!([{"pause": {"duration": "5 minutes"}}]),
            ),
            "duration",
        ),
        (
            "no steps",
            rollout_body("d", 1, "app:1", json!([])),
            "steps",
        ),
        (
            "both in a step",
            rollout_body("e", 1, "app:1", json!([{"setWeight": 10, "pause": {}}])),
            "exactly one of setWeight, pause, setCanaryScale or setHeaderRoute",
        ),
        (
            "empty step",
            rollout_body("f", 1, "app:1", json!([{}])),
            "exactly one of setWeight, pause, setCanaryScale or setHeaderRoute",
        ),
    ];
    // Post the raw JSON: the typed client could not even represent some of these.
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &ns.name,
        &kube::api::ApiResource::erase::<Rollout>(&()),
    );
    for (case, body, expected) in cases {
        let object: kube::api::DynamicObject = serde_json::from_value(body).unwrap();
        match raw.create(&PostParams::default(), &object).await {
            Ok(_) => panic!("the API server accepted an invalid Rollout ({case})"),
            Err(kube::Error::Api(e)) => {
                assert_eq!(e.code, 422, "{case}: {e:?}");
                assert!(
                    e.message.contains(expected),
                    "{case}: message {:?} does not mention {expected:?}",
                    e.message
                );
            }
            Err(e) => panic!("{case}: unexpected error {e}"),
        }
    }
    // And a valid one is accepted.
    create_rollout(&api, rollout_body("ok", 1, "app:1", steps)).await;
}

#[tokio::test]
async fn initial_deploy_becomes_ready_with_labelled_owned_pods() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("initial-deploy").await;

    let started = Instant::now();
    create_rollout(
        &api,
        rollout_body("web", 3, "web:1", json!([{"setWeight": 20}, {"pause": {}}])),
    )
    .await;
    let ready = wait_for_rollout(&api, "web", "phase Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    eprintln!(
        "measured: initial deploy of 3 pods Healthy after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let status = ready.status.unwrap();
    let stable = status.stable_revision.clone().unwrap();
    assert_eq!(status.available_replicas, 3);
    assert_eq!(status.observed_generation, ready.metadata.generation);
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.status.clone())
    };
    assert_eq!(condition("Ready").as_deref(), Some("True"));
    assert_eq!(condition("Progressing").as_deref(), Some("False"));
    assert_eq!(
        running_pods(&env.client, &ns.name, "web").await,
        BTreeMap::from([(stable.clone(), 3)])
    );

    let replica_sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns.name);
    let rs = replica_sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(rs.len(), 1);
    let owner = &rs[0].owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Rollout", "web", Some(true))
    );
    assert_eq!(rs[0].labels().get(POD_TEMPLATE_HASH_LABEL), Some(&stable));
    assert_eq!(
        rs[0]
            .annotations()
            .get("firebreak.dev/revision")
            .map(String::as_str),
        Some("1")
    );

    let shown = firebreak(&["status", "web", "-n", &ns.name]).await;
    assert!(
        shown.contains("Healthy") && shown.contains(&stable),
        "{shown}"
    );

    // Every transition is an Event on the Rollout.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &ns.name);
    let deployed = eventually("a Deployed Event", Duration::from_secs(20), || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("Deployed"))
        }
    })
    .await;
    assert_eq!(
        deployed.regarding.and_then(|r| r.name).as_deref(),
        Some("web")
    );

    // A reconcile that finds nothing to change writes nothing: poke the Rollout (an unrelated
    // annotation triggers a reconcile) and check the time of the controller's last status write.
    let status_written = |r: &Rollout| {
        r.managed_fields()
            .iter()
            .find(|f| {
                f.manager.as_deref() == Some("firebreak")
                    && f.subresource.as_deref() == Some("status")
            })
            .and_then(|f| f.time.clone())
    };
    let before = status_written(&api.get("web").await.unwrap());
    assert!(
        before.is_some(),
        "the controller writes status with field manager firebreak"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let poke = json!({"metadata": {"annotations": {"example.com/poke": "1"}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&poke))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        status_written(&api.get("web").await.unwrap()),
        before,
        "status rewritten with no change"
    );
}

#[tokio::test]
async fn an_image_change_walks_through_10_and_50_percent_and_is_promoted() {
    let RolloutTest {
        env,
        ns,
        controller,
        api,
    } = RolloutTest::start("canary-steps").await;
    let steps = json!([{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]);
    create_rollout(&api, rollout_body("shop", 10, "shop:1", steps)).await;
    let v1 = wait_for_rollout(
        &api,
        "shop",
        "phase Healthy",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::Healthy),
    )
    .await;
    let (stable, _) = hashes(&v1);

    let started = Instant::now();
    set_image(&api, "shop", "shop:2").await;
    let at10 = wait_for_rollout(
        &api,
        "shop",
        "the 10% pause",
        Duration::from_secs(60),
        |r| step(r) == Some(1) && phase(r) == Some(Phase::Paused),
    )
    .await;
    let (_, canary) = hashes(&at10);
    assert_eq!(at10.status.as_ref().unwrap().canary_weight, 10);
    wait_for_pods(&env.client, &ns.name, "shop", &[(&stable, 9), (&canary, 1)]).await;

    firebreak(&["promote", "shop", "-n", &ns.name]).await;
    let at50 = wait_for_rollout(
        &api,
        "shop",
        "the 50% pause",
        Duration::from_secs(60),
        |r| step(r) == Some(3) && phase(r) == Some(Phase::Paused),
    )
    .await;
    assert_eq!(at50.status.as_ref().unwrap().canary_weight, 50);
    wait_for_pods(&env.client, &ns.name, "shop", &[(&stable, 5), (&canary, 5)]).await;

    firebreak(&["promote", "shop", "-n", &ns.name]).await;
    let done = wait_for_rollout(&api, "shop", "promotion", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    eprintln!(
        "measured: three-step rollout (10% → 50% → promoted, two manual promotes) took {:.1}s; controller peak RSS {} KiB",
        started.elapsed().as_secs_f64(),
        controller.peak_memory_kib().unwrap_or(0)
    );
    assert_eq!(hashes(&done), (canary.clone(), String::new()));
    wait_for_pods(&env.client, &ns.name, "shop", &[(&canary, 10)]).await;
    let reasons: Vec<String> = done
        .status
        .unwrap()
        .timeline
        .into_iter()
        .map(|e| e.reason.to_string())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| *r == "Promoted").count(),
        1,
        "{reasons:?}"
    );
}

#[tokio::test]
async fn abort_mid_way_leaves_only_stable_pods_serving() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("abort").await;
    create_rollout(
        &api,
        rollout_body(
            "cart",
            4,
            "cart:1",
            json!([{"setWeight": 50}, {"pause": {}}]),
        ),
    )
    .await;
    let v1 = wait_for_rollout(
        &api,
        "cart",
        "phase Healthy",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::Healthy),
    )
    .await;
    let (stable, _) = hashes(&v1);

    set_image(&api, "cart", "cart:2").await;
    let paused = wait_for_rollout(
        &api,
        "cart",
        "the 50% pause",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::Paused),
    )
    .await;
    let (_, canary) = hashes(&paused);
    wait_for_pods(&env.client, &ns.name, "cart", &[(&stable, 2), (&canary, 2)]).await;

    firebreak(&["abort", "cart", "-n", &ns.name]).await;
    let aborted = wait_for_rollout(
        &api,
        "cart",
        "phase RolledBack",
        Duration::from_secs(30),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let status = aborted.status.unwrap();
    assert_eq!(
        status.rolled_back_revision.as_deref(),
        Some(canary.as_str())
    );
    assert_eq!(status.canary_weight, 0);
    assert!(
        status
            .timeline
            .iter()
            .any(|e| e.reason == firebreak::api::Reason::Aborted)
    );
    wait_for_pods(&env.client, &ns.name, "cart", &[(&stable, 4)]).await;

    // It stays rolled back; `retry` rolls it out again from the first step.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        phase(&api.get("cart").await.unwrap()),
        Some(Phase::RolledBack)
    );
    firebreak(&["retry", "cart", "-n", &ns.name]).await;
    wait_for_rollout(
        &api,
        "cart",
        "the canary again",
        Duration::from_secs(30),
        |r| hashes(r).1 == canary && phase(r) == Some(Phase::Paused),
    )
    .await;
}

#[tokio::test]
async fn a_canary_whose_pods_never_become_ready_is_rolled_back_at_the_deadline() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("deadline").await;
    let mut body = rollout_body("api", 2, "api:1", json!([{"setWeight": 50}, {"pause": {}}]));
    body["spec"]["progressDeadlineSeconds"] = json!(8);
    create_rollout(&api, body).await;
    let v1 = wait_for_rollout(&api, "api", "phase Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    let (stable, _) = hashes(&v1);

    // The new revision asks for a node that does not exist: its pods stay Pending.
    let patch =
        json!({"spec": {"template": {"spec": {"nodeSelector": {"disk": "does-not-exist"}}}}});
    api.patch("api", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let started = Instant::now();
    let rolled_back = wait_for_rollout(
        &api,
        "api",
        "phase RolledBack",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(7),
        "rolled back after {waited:?}, before the 8s deadline"
    );
    let reason = rolled_back
        .status
        .as_ref()
        .unwrap()
        .rollback_reason
        .clone()
        .unwrap();
    assert!(
        reason.contains("progress deadline exceeded") && reason.contains("0/1"),
        "{reason}"
    );
    wait_for_pods(&env.client, &ns.name, "api", &[(&stable, 2)]).await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    let remaining = pods.list(&ListParams::default()).await.unwrap().items;
    assert!(
        remaining
            .iter()
            .all(|p| p.labels().get(POD_TEMPLATE_HASH_LABEL) == Some(&stable)
                || p.metadata.deletion_timestamp.is_some()),
        "canary pods left behind"
    );
}

#[tokio::test]
async fn a_controller_killed_mid_rollout_finishes_it_exactly_once_after_restart() {
    let RolloutTest {
        env,
        ns,
        mut controller,
        api,
    } = RolloutTest::start("controller-kill").await;
    let steps = json!([{"setWeight": 20}, {"pause": {"duration": "3s"}}, {"setWeight": 60}, {"pause": {"duration": "3s"}}]);
    create_rollout(&api, rollout_body("pay", 5, "pay:1", steps)).await;
    wait_for_rollout(&api, "pay", "phase Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    set_image(&api, "pay", "pay:2").await;
    let mid = wait_for_rollout(
        &api,
        "pay",
        "the first pause",
        Duration::from_secs(60),
        |r| step(r) == Some(1),
    )
    .await;
    let (_, canary) = hashes(&mid);
    controller.kill().await;
    // While it is dead, time passes and the pause ends; nothing may move.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(step(&api.get("pay").await.unwrap()), Some(1));
    controller.restart();

    let done = wait_for_rollout(&api, "pay", "promotion", Duration::from_secs(90), |r| {
        phase(r) == Some(Phase::Healthy) && hashes(r).0 == canary
    })
    .await;
    wait_for_pods(&env.client, &ns.name, "pay", &[(&canary, 5)]).await;
    let timeline = done.status.unwrap().timeline;
    let count = |reason: &str| {
        timeline
            .iter()
            .filter(|e| e.reason.as_str() == reason && e.revision.as_deref() == Some(&canary))
            .count()
    };
    assert_eq!(count("CanaryStarted"), 1, "{timeline:?}");
    assert_eq!(count("Promoted"), 1, "{timeline:?}");
    assert_eq!(count("StepCompleted"), 4, "{timeline:?}");
}
