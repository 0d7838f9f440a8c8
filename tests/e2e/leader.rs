//! Two controllers with leader election: only the leader reconciles; killing it mid-rollout hands
//! over to the standby, which finishes the rollout exactly once.

use std::time::{Duration, Instant};

use firebreak::api::{Phase, Rollout};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use crate::support::{
    ControllerProcess, TestEnv, create_rollout, eventually, install_crds, phase, rollout_body,
    set_image, wait_for_rollout,
};

const ELECTION: &[&str] = &["--leader-election", "--lease-duration-seconds", "4"];

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("firebreak-controller")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test]
async fn killing_the_leader_mid_rollout_hands_over_and_the_rollout_finishes_once() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let ns = env.namespace("leader-failover").await;
    let mut first = ControllerProcess::start_with(&ns.name, ELECTION);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &ns.name);
    let first_id = format!("firebreak-{}", first.pid().unwrap());
    eventually(
        "the first controller to lead",
        Duration::from_secs(30),
        || {
            let leases = leases.clone();
            let first_id = first_id.clone();
            async move { (holder(&leases).await? == first_id).then_some(()) }
        },
    )
    .await;
    let second = ControllerProcess::start_with(&ns.name, ELECTION);
    let second_id = format!("firebreak-{}", second.pid().unwrap());

    let api: Api<Rollout> = Api::namespaced(env.client.clone(), &ns.name);
    let steps = json!([{"setWeight": 20}, {"pause": {"duration": "5s"}}, {"setWeight": 60}, {"pause": {"duration": "3s"}}]);
    create_rollout(&api, rollout_body("web", 5, "web:1", steps)).await;
    wait_for_rollout(&api, "web", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    set_image(&api, "web", "web:2").await;
    let mid = wait_for_rollout(
        &api,
        "web",
        "the first pause",
        Duration::from_secs(60),
        |r| r.status.as_ref().and_then(|s| s.current_step_index) == Some(1),
    )
    .await;
    let canary = mid.status.unwrap().canary_revision.unwrap();
    assert_eq!(
        holder(&leases).await.as_deref(),
        Some(first_id.as_str()),
        "the standby must not have taken over"
    );

    first.kill().await;
    let killed = Instant::now();
    eventually(
        "the standby to take the Lease",
        Duration::from_secs(30),
        || {
            let leases = leases.clone();
            let second_id = second_id.clone();
            async move { (holder(&leases).await? == second_id).then_some(()) }
        },
    )
    .await;
    let failover = killed.elapsed();
    eprintln!(
        "measured: leader failover took {:.1}s (lease duration 4s)",
        failover.as_secs_f64()
    );
    assert!(
        failover < Duration::from_secs(12),
        "failover took {failover:?}"
    );

    let done = wait_for_rollout(
        &api,
        "web",
        "promotion by the new leader",
        Duration::from_secs(60),
        |r| {
            phase(r) == Some(Phase::Healthy)
                && r.status.as_ref().and_then(|s| s.stable_revision.clone()) == Some(canary.clone())
        },
    )
    .await;
    let timeline = done.status.unwrap().timeline;
    let count = |reason: &str| {
        timeline
            .iter()
            .filter(|e| {
                e.reason.as_str() == reason && e.revision.as_deref() == Some(canary.as_str())
            })
            .count()
    };
    assert_eq!(
        (
            count("CanaryStarted"),
            count("Promoted"),
            count("StepCompleted")
        ),
        (1, 1, 4),
        "{timeline:?}"
    );
    drop(second);
}
