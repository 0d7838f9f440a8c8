//! Notifications survive a crash and stop with the Lease: a planned notification is in the
//! Rollout's status before it is sent, a controller killed (SIGKILL) while the receiver has not
//! answered sends it after restart with the same idempotency key, and a controller that lost
//! its Lease sends nothing more.

use std::time::Duration;

use firebreak::api::{NotificationEvent, Phase, Rollout};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::support::{
    ControllerProcess, Receiver, TestEnv, create_rollout, eventually, firebreak,
    incident_with_delivered, install_crds, phase, rollout_body, set_image, wait_for_rollout,
};
use crate::triggers::json_receiver;

/// A Rollout `web` paging `receiver`, deployed (v1 Healthy) and then moved to a canary of v2
/// held at a pause, ready to be aborted.
async fn canary_paging(client: &kube::Client, ns: &str, receiver: &Receiver) -> Api<Rollout> {
    let api: Api<Rollout> = Api::namespaced(client.clone(), ns);
    let mut body = rollout_body("web", 2, "web:1", json!([{"setWeight": 50}, {"pause": {}}]));
    body["spec"]["notifications"] = json_receiver(client, ns, receiver).await;
    create_rollout(&api, body).await;
    wait_for_rollout(&api, "web", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    set_image(&api, "web", "web:2").await;
    wait_for_rollout(
        &api,
        "web",
        "the canary's pause",
        Duration::from_secs(60),
        |r| r.status.as_ref().and_then(|s| s.current_step_index) == Some(1),
    )
    .await;
    eventually(
        "the start notification",
        Duration::from_secs(30),
        || async { (!receiver.requests_about("RolloutStarted").is_empty()).then_some(()) },
    )
    .await;
    api
}

/// Waits until `receiver` answered a `RolledBack` page with 200.
async fn page_delivered(receiver: &Receiver, when: &str) {
    eventually(
        &format!("the page delivered {when}"),
        Duration::from_secs(60),
        || async {
            receiver
                .requests_about("RolledBack")
                .iter()
                .any(|r| r.answered == 200)
                .then_some(())
        },
    )
    .await;
}

fn pending_about(rollout: &Rollout, event: NotificationEvent) -> Vec<String> {
    rollout
        .status
        .iter()
        .flat_map(|s| &s.pending_notifications)
        .filter(|p| p.event == event)
        .map(|p| p.id.clone())
        .collect()
}

#[tokio::test]
async fn a_controller_killed_before_the_receiver_answered_delivers_after_restart_once() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let ns = env.namespace("outbox-crash").await;
    let mut controller = ControllerProcess::start(&ns.name);
    let receiver = Receiver::start(200).await;
    let api = canary_paging(&env.client, &ns.name, &receiver).await;

    // The receiver now hangs: the rollback's page is sent but never answered.
    receiver.answer(0);
    firebreak(&["abort", "web", "-n", &ns.name]).await;
    wait_for_rollout(&api, "web", "rolled back", Duration::from_secs(30), |r| {
        phase(r) == Some(Phase::RolledBack)
    })
    .await;
    eventually(
        "the page to reach the receiver",
        Duration::from_secs(30),
        || async { (!receiver.requests_about("RolledBack").is_empty()).then_some(()) },
    )
    .await;
    controller.kill().await;

    // Recorded before it was sent: the outbox in status holds it, with the key the receiver saw.
    let rollout = api.get("web").await.unwrap();
    let pending = pending_about(&rollout, NotificationEvent::RolledBack);
    let first = receiver.requests_about("RolledBack");
    assert_eq!(pending.len(), 1, "{:?}", rollout.status);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        first[0].delivery, pending[0],
        "the header carries the outbox's key"
    );
    assert_eq!(first[0].answered, 0);

    receiver.answer(200);
    controller.restart();
    page_delivered(&receiver, "after the restart").await;
    // A second delivery would follow within a reconcile or two.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let all = receiver.requests_about("RolledBack");
    assert_eq!(
        all.iter().filter(|r| r.answered == 200).count(),
        1,
        "delivered once: {all:?}"
    );
    assert!(
        all.iter().all(|r| r.delivery == pending[0]),
        "every attempt carries the same key, so the receiver can drop the repeat: {all:?}"
    );
    let rollout = wait_for_rollout(
        &api,
        "web",
        "an empty outbox",
        Duration::from_secs(30),
        |r| pending_about(r, NotificationEvent::RolledBack).is_empty(),
    )
    .await;
    let name = rollout.status.unwrap().incident.expect("status.incident");
    incident_with_delivered(&env.client, &ns.name, &name, NotificationEvent::RolledBack).await;
}

#[tokio::test]
async fn a_controller_that_lost_its_lease_sends_nothing_more() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let ns = env.namespace("outbox-lease").await;
    let _controller = ControllerProcess::start_with(
        &ns.name,
        &["--leader-election", "--lease-duration-seconds", "4"],
    );
    let receiver = Receiver::start(200).await;
    let api = canary_paging(&env.client, &ns.name, &receiver).await;

    // The receiver fails: the page is retried with back-off.
    receiver.answer(500);
    firebreak(&["abort", "web", "-n", &ns.name]).await;
    eventually("a failed attempt", Duration::from_secs(30), || async {
        (!receiver.requests_about("RolledBack").is_empty()).then_some(())
    })
    .await;

    // Another controller takes the Lease and keeps renewing it (as a partitioned leader finds
    // on its return).
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &ns.name);
    let thief = tokio::spawn(async move {
        loop {
            let now =
                serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                    k8s_openapi::jiff::Timestamp::now(),
                ))
                .unwrap();
            let _ = leases
                .patch(
                    "firebreak-controller",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {
                        "holderIdentity": "another-controller",
                        "leaseDurationSeconds": 4,
                        "acquireTime": now,
                        "renewTime": now,
                    }})),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    // The controller notices at its next renewal (within the lease duration) and stops.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = receiver.requests_about("RolledBack").len();
    receiver.answer(200);
    // Retries were due every few seconds; a controller still sending would have sent by now.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let after = receiver.requests_about("RolledBack");
    assert_eq!(
        after.len(),
        before,
        "sent after losing the Lease: {after:?}"
    );
    let rollout = api.get("web").await.unwrap();
    assert_eq!(
        pending_about(&rollout, NotificationEvent::RolledBack).len(),
        1,
        "still in the outbox, for the next leader"
    );

    // The other controller goes away: this one leads again and delivers, retries carrying over.
    thief.abort();
    page_delivered(&receiver, "by the leader again").await;
}
