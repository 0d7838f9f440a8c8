//! What kstatus — the library Flux, `kubectl wait`-style tools and cli-utils' appliers use to read
//! a resource's health — computes for real Rollouts in each phase: objects read from the real API
//! server, run through the real library by `tools/kstatus-check` (built by
//! `scripts/toolchain.sh`; its path in `FIREBREAK_KSTATUS`, which `scripts/env.sh` exports).

use std::time::Duration;

use firebreak::api::{Phase, Rollout};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::support::{RolloutTest, create_rollout, firebreak, phase, rollout_body, set_image};

/// The kstatus checker's path. Panics, before any cluster work, when it is not configured.
fn checker() -> String {
    std::env::var("FIREBREAK_KSTATUS").unwrap_or_else(|_| {
        panic!(
            "FIREBREAK_KSTATUS is not set. It names tools/kstatus-check, which scripts/toolchain.sh \
             builds: run the tests with `scripts/test.sh`, or start an environment with \
             `scripts/env.sh up NAME` and run the tests under `scripts/env.sh exec NAME` after `source target/firebreak-env/NAME/env`."
        )
    })
}

/// What kstatus computed for one object.
#[derive(Debug)]
struct Kstatus {
    /// `Current`, `InProgress`, `Failed`, `Terminating` or `Unknown`.
    status: String,
    /// The message it shows, e.g. the Rollout's `status.message`.
    message: String,
    /// The reason of the `Reconciling` or `Stalled` condition it derived, if any.
    reason: Option<String>,
}

/// Runs the checker on `objects` (JSON, as the API server returned them), all in one call.
async fn kstatus(objects: &[&Value]) -> Vec<Kstatus> {
    let path = checker();
    let mut child = tokio::process::Command::new(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting the kstatus checker {path}: {e}"));
    let mut input = String::new();
    for object in objects {
        input.push_str(&object.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).await.expect("writing");
    drop(stdin);
    let output = child.wait_with_output().await.expect("running the checker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{path} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), objects.len(), "one line per object: {stdout}");
    lines
        .into_iter()
        .zip(objects)
        .map(|(line, object)| {
            assert_eq!(
                line["name"], object["metadata"]["name"],
                "lines in input order: {stdout}"
            );
            Kstatus {
                status: line["status"].as_str().unwrap_or_default().to_string(),
                message: line["message"].as_str().unwrap_or_default().to_string(),
                reason: line["conditions"][0]["reason"].as_str().map(String::from),
            }
        })
        .collect()
}

/// The Rollout `name` exactly as the API server serves it, once `check` holds for it.
async fn capture(
    raw: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&Rollout) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let object = serde_json::to_value(raw.get(name).await.expect("reading Rollout")).unwrap();
        let rollout: Rollout = serde_json::from_value(object.clone()).expect("a Rollout");
        if check(&rollout) {
            return object;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {name}: {what}; last status: {:#}",
                object["status"]
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn raw_api(test: &RolloutTest) -> Api<DynamicObject> {
    Api::namespaced_with(
        test.env.client.clone(),
        &test.ns.name,
        &ApiResource::erase::<Rollout>(&()),
    )
}

fn status_message(object: &Value) -> String {
    object["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The `(status, reason)` of condition `kind` on the object.
fn condition(object: &Value, kind: &str) -> Option<(String, String)> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
}

fn canary_revision(r: &Rollout) -> Option<&str> {
    r.status.as_ref().and_then(|s| s.canary_revision.as_deref())
}

#[tokio::test]
async fn kstatus_reads_a_healthy_rollout_as_current_and_an_unobserved_change_as_in_progress() {
    checker();
    let mut test = RolloutTest::start("kstatus-generation").await;
    let raw = raw_api(&test);
    create_rollout(
        &test.api,
        rollout_body("web", 2, "web:1", json!([{"setWeight": 50}, {"pause": {}}])),
    )
    .await;
    let healthy = capture(&raw, "web", "phase Healthy", |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    assert_eq!(
        healthy["status"]["observedGeneration"],
        healthy["metadata"]["generation"]
    );

    // A change the controller has not seen yet: it is dead while the spec changes.
    test.controller.kill().await;
    set_image(&test.api, "web", "web:2").await;
    let unobserved = serde_json::to_value(raw.get("web").await.unwrap()).unwrap();
    let generation = unobserved["metadata"]["generation"].as_i64().unwrap();
    let observed = unobserved["status"]["observedGeneration"].as_i64().unwrap();
    assert!(generation > observed, "{generation} > {observed}");
    assert_eq!(
        condition(&unobserved, "Ready"),
        Some(("True".into(), "RolloutHealthy".into())),
        "the conditions still describe the old generation"
    );

    let got = kstatus(&[&healthy, &unobserved]).await;
    assert_eq!(got[0].status, "Current", "healthy: {:?}", got[0]);
    assert_eq!(got[1].status, "InProgress", "unobserved: {:?}", got[1]);
    assert_eq!(
        got[1].message,
        format!("Rollout generation is {generation}, but latest observed generation is {observed}")
    );
}

#[tokio::test]
async fn kstatus_reads_a_moving_or_held_canary_as_in_progress_and_a_rollback_as_failed() {
    checker();
    let test = RolloutTest::start("kstatus-canary").await;
    let raw = raw_api(&test);
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    create_rollout(
        &test.api,
        rollout_body("moving", 2, "moving:1", steps.clone()),
    )
    .await;
    create_rollout(&test.api, rollout_body("held", 2, "held:1", steps)).await;
    for name in ["moving", "held"] {
        capture(&raw, name, "phase Healthy", |r| {
            phase(r) == Some(Phase::Healthy)
        })
        .await;
    }

    // A canary whose pods cannot be scheduled stays Progressing at its first step (until the
    // default 600 s progress deadline).
    let patch = json!({"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "moving:2"}],
        "nodeSelector": {"disk": "does-not-exist"}
    }}}});
    test.api
        .patch("moving", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patching the template");
    set_image(&test.api, "held", "held:2").await;
    let moving = capture(&raw, "moving", "a canary waiting for pods", |r| {
        phase(r) == Some(Phase::Progressing) && canary_revision(r).is_some()
    })
    .await;
    let held = capture(&raw, "held", "the canary held at the pause", |r| {
        phase(r) == Some(Phase::Paused) && canary_revision(r).is_some()
    })
    .await;

    firebreak(&["abort", "held", "-n", &test.ns.name]).await;
    let rolled_back = capture(&raw, "held", "phase RolledBack", |r| {
        phase(r) == Some(Phase::RolledBack)
    })
    .await;
    assert_eq!(
        condition(&rolled_back, "Stalled"),
        Some(("True".into(), "RolledBack".into()))
    );

    let got = kstatus(&[&moving, &held, &rolled_back]).await;
    let shown: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|k| {
            (
                k.status.as_str(),
                k.reason.as_deref().unwrap_or(""),
                k.message.as_str(),
            )
        })
        .collect();
    let rolled_back_message = status_message(&rolled_back);
    assert_eq!(
        shown,
        [
            (
                "InProgress",
                "RolloutProgressing",
                &*status_message(&moving)
            ),
            ("InProgress", "RolloutPaused", &*status_message(&held)),
            ("Failed", "RolledBack", &*rolled_back_message),
        ]
    );
    assert!(
        rolled_back_message.contains("rolled back"),
        "{rolled_back_message}"
    );
}

#[tokio::test]
async fn kstatus_reads_a_spec_the_controller_rejects_as_failed_with_the_reason() {
    checker();
    let test = RolloutTest::start("kstatus-invalid").await;
    let raw = raw_api(&test);
    // The CRD schema accepts matchExpressions; the controller's validation does not.
    let mut body = rollout_body("odd", 1, "odd:1", json!([{"setWeight": 50}]));
    body["spec"]["selector"]["matchExpressions"] =
        json!([{"key": "app", "operator": "In", "values": ["odd"]}]);
    create_rollout(&test.api, body).await;
    let degraded = capture(&raw, "odd", "phase Degraded", |r| {
        phase(r) == Some(Phase::Degraded)
    })
    .await;
    let message = status_message(&degraded);
    assert!(
        message.starts_with("invalid spec: spec.selector.matchExpressions"),
        "{message}"
    );
    for kind in ["Ready", "Progressing"] {
        assert_eq!(
            condition(&degraded, kind),
            Some(("False".into(), "InvalidSpec".into())),
            "{kind}"
        );
    }

    let got = kstatus(&[&degraded]).await;
    assert_eq!(
        (
            got[0].status.as_str(),
            got[0].reason.as_deref(),
            got[0].message.as_str()
        ),
        ("Failed", Some("InvalidSpec"), message.as_str())
    );
}
