//! Every automatic rollback tells the truth: a rollback for any trigger pages exactly once, and
//! its Incident names the right stable revision, the real change and what was done, with times.

use std::time::Duration;

use firebreak::api::{NotificationEvent, Phase, Trigger};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use crate::support::{
    Receiver, RolloutTest, create_rollout, eventually, firebreak, incident_with_delivered, phase,
    rollout_body, set_image, wait_for_rollout,
};

/// Creates the Secret `hooks` whose key `url` is the receiver's URL, and returns the
/// `spec.notifications` that send JSON to it.
pub(crate) async fn json_receiver(
    client: &kube::Client,
    ns: &str,
    receiver: &Receiver,
) -> serde_json::Value {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "hooks"},
        "stringData": {"url": receiver.url}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    json!([{"name": "oncall", "webhook": {"format": "json", "urlFrom": {"secretKeyRef": {"name": "hooks", "key": "url"}}}}])
}

/// Waits until `receiver` has `RolledBack` notifications, then a few seconds more, and returns
/// how many it got in all.
pub(crate) async fn rolled_back_notifications(receiver: &Receiver) -> usize {
    eventually(
        "a RolledBack notification",
        Duration::from_secs(30),
        || async { (!receiver.events("RolledBack").is_empty()).then_some(()) },
    )
    .await;
    // A duplicate would follow within a reconcile or two.
    tokio::time::sleep(Duration::from_secs(5)).await;
    receiver.events("RolledBack").len()
}

#[tokio::test]
async fn a_canary_past_its_max_duration_is_rolled_back_with_one_page_and_a_true_incident() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("trigger-max-duration").await;
    let receiver = Receiver::start(200).await;
    let mut body = rollout_body(
        "deadline",
        2,
        "deadline:1",
        json!([{"setWeight": 50}, {"pause": {}}]),
    );
    body["spec"]["strategy"]["canary"]["maxDuration"] = json!("15s");
    body["spec"]["notifications"] = json_receiver(&env.client, &ns.name, &receiver).await;
    create_rollout(&api, body).await;
    let v1 = wait_for_rollout(
        &api,
        "deadline",
        "v1 Healthy",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::Healthy),
    )
    .await;
    let v1_hash = v1.status.unwrap().stable_revision.unwrap();

    set_image(&api, "deadline", "deadline:2").await;
    let rolled_back = wait_for_rollout(
        &api,
        "deadline",
        "rollback at maxDuration",
        Duration::from_secs(90),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let status = rolled_back.status.unwrap();
    assert_eq!(status.stable_revision.as_deref(), Some(v1_hash.as_str()));

    assert_eq!(
        rolled_back_notifications(&receiver).await,
        1,
        "exactly one RolledBack notification"
    );
    let page = receiver.events("RolledBack").remove(0);
    assert_eq!(
        page["incident"]["spec"]["trigger"], "MaxDurationExceeded",
        "{page}"
    );
    let text = page["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("maximum duration") && !text.contains("unrecognised"),
        "the page names the trigger in words: {text}"
    );

    let name = status.incident.clone().expect("status.incident");
    let incident =
        incident_with_delivered(&env.client, &ns.name, &name, NotificationEvent::RolledBack).await;
    let spec = &incident.spec;
    assert_eq!(spec.trigger, Trigger::MaxDurationExceeded);
    assert_eq!(spec.stable_revision, v1_hash);
    let image = spec
        .change
        .fields
        .iter()
        .find(|f| f.path == "containers[app].image")
        .expect("the image change is recorded");
    assert_eq!(
        (image.stable.as_deref(), image.canary.as_deref()),
        (Some("deadline:1"), Some("deadline:2"))
    );
    assert!(
        spec.mitigation
            .iter()
            .any(|m| m.action == "CanaryScaledDown"),
        "{:?}",
        spec.mitigation
    );

    let postmortem = firebreak(&["postmortem", &name, "-n", &ns.name]).await;
    assert!(
        postmortem.contains("maximum duration") && !postmortem.contains("unrecognised"),
        "{postmortem}"
    );
}
