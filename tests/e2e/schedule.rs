//! Guardrails in time on the real control plane: deployment windows hold rollouts, aborts still
//! work inside a closed window, and the bake watch catches a regression after promotion.

use std::time::Duration;

use firebreak::api::{Incident, Phase, SecondWaveState, Trigger};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp, tz::TimeZone};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::analysis::rollout as analysed_rollout;
use crate::support::{
    Fleet, Receiver, RolloutTest, create_rollout, eventually, firebreak, phase, rollout_body,
    set_image, wait_for_rollout,
};
use crate::triggers::{json_receiver, rolled_back_notifications};

fn utc_hhmm(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).strftime("%H:%M").to_string()
}

#[tokio::test]
async fn a_rollout_outside_its_window_waits_and_starts_when_the_window_opens() {
    let RolloutTest {
        env: _,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("window-opens").await;
    // A daily window opening at the next minute boundary at least 15 s away.
    let now = Timestamp::now();
    let next_minute = now.as_second() / 60 * 60 + 60;
    let opens = Timestamp::from_second(if next_minute - now.as_second() < 15 {
        next_minute + 60
    } else {
        next_minute
    })
    .unwrap();
    let closes = opens.checked_add(SignedDuration::from_mins(30)).unwrap();
    let mut body = rollout_body("web", 4, "web:1", json!([{"setWeight": 25}, {"pause": {}}]));
    body["spec"]["windows"] = json!({
        "timeZone": "UTC",
        "allow": [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "start": utc_hhmm(opens), "end": utc_hhmm(closes)}]
    });
    create_rollout(&api, body).await;
    // The first deploy is not a rollout: it proceeds (there is nothing to protect yet).
    wait_for_rollout(&api, "web", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    set_image(&api, "web", "web:2").await;
    let waiting = wait_for_rollout(
        &api,
        "web",
        "v2 waiting for the window",
        Duration::from_secs(30),
        |r| {
            r.status
                .as_ref()
                .and_then(|s| s.message.as_deref())
                .is_some_and(|m| m.contains("waits to start"))
        },
    )
    .await;
    let status = waiting.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Paused));
    assert_eq!(
        status.canary_revision, None,
        "no canary pod before the window"
    );
    let window = status.window.expect("window in status");
    assert!(!window.open);
    assert_eq!(window.opens_at.map(|t| t.0), Some(opens));
    let shown = firebreak(&["status", "web", "-n", &ns.name]).await;
    assert!(
        shown.contains("Window    closed") && shown.contains("opens at"),
        "{shown}"
    );

    let started = wait_for_rollout(
        &api,
        "web",
        "v2 started once the window opened",
        Duration::from_secs(120),
        |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.canary_revision.is_some())
        },
    )
    .await;
    let late = Timestamp::now().duration_since(opens);
    assert!(
        Timestamp::now() >= opens,
        "started before the window opened"
    );
    assert!(
        late < SignedDuration::from_secs(15),
        "started {late:?} after the window opened"
    );
    assert!(started.status.unwrap().window.unwrap().open);
}

#[tokio::test]
async fn a_window_closing_mid_rollout_holds_it_and_abort_still_works() {
    let RolloutTest {
        env: _,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("window-closes").await;
    let steps =
        json!([{"setWeight": 25}, {"pause": {"duration": "3s"}}, {"setWeight": 50}, {"pause": {}}]);
    create_rollout(&api, rollout_body("cart", 4, "cart:1", steps)).await;
    wait_for_rollout(&api, "cart", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    set_image(&api, "cart", "cart:2").await;
    wait_for_rollout(
        &api,
        "cart",
        "the canary at 25%",
        Duration::from_secs(60),
        |r| r.status.as_ref().and_then(|s| s.current_step_index) == Some(1),
    )
    .await;

    // A freeze starts now (civil UTC times), while the canary is in its 3 s pause.
    let now = Timestamp::now().to_zoned(TimeZone::UTC);
    let from = now
        .checked_sub(SignedDuration::from_hours(1))
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let to = now
        .checked_add(SignedDuration::from_hours(1))
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let freeze =
        json!({"spec": {"windows": {"timeZone": "UTC", "deny": [{"from": from, "to": to}]}}});
    api.patch("cart", &PatchParams::default(), &Patch::Merge(&freeze))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let held = api.get("cart").await.unwrap().status.unwrap();
    assert_eq!(
        held.current_step_index,
        Some(1),
        "advanced inside a freeze: {:?}",
        held.message
    );
    assert_eq!(held.phase, Some(Phase::Paused));
    assert!(held.message.unwrap().contains("deployment window closed"));

    firebreak(&["abort", "cart", "-n", &ns.name]).await;
    let aborted = wait_for_rollout(
        &api,
        "cart",
        "abort inside the freeze",
        Duration::from_secs(30),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    assert!(
        aborted
            .status
            .unwrap()
            .timeline
            .iter()
            .any(|e| e.reason == firebreak::api::Reason::Aborted)
    );
}

#[tokio::test]
async fn a_regression_that_appears_after_promotion_is_caught_in_bake() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("bake").await;
    let _fleet = Fleet::start(&ns.name, &[]).await.scraped_by(&env, &ns.name);
    let receiver = Receiver::start(200).await;
    let steps = json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]);
    let mut body = analysed_rollout("pay", &env.prometheus_url, steps, 0.02);
    body["spec"]["bake"] = json!({"duration": "10m"});
    body["spec"]["notifications"] = json_receiver(&env.client, &ns.name, &receiver).await;
    create_rollout(&api, body).await;
    let v1 = wait_for_rollout(&api, "pay", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    let v1_hash = v1.status.unwrap().stable_revision.unwrap();

    set_image(&api, "pay", "pay:2").await;
    let baking = wait_for_rollout(
        &api,
        "pay",
        "v2 promoted and baking",
        Duration::from_secs(240),
        |r| r.status.as_ref().is_some_and(|s| s.bake.is_some()),
    )
    .await;
    let v2_hash = baking.status.unwrap().stable_revision.unwrap();
    assert_ne!(v2_hash, v1_hash);

    // The bug ripens after promotion: v2's pods start failing 20% of requests.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    let v2_pods = pods
        .list(&ListParams::default().labels(&format!("pod-template-hash={v2_hash}")))
        .await
        .unwrap();
    for pod in v2_pods.items {
        let patch = json!({"metadata": {"annotations": {"sim.firebreak.dev/error-rate": "0.2"}}});
        pods.patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    }
    let rolled_back = wait_for_rollout(
        &api,
        "pay",
        "rollback during bake",
        Duration::from_secs(120),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let status = rolled_back.status.unwrap();
    assert_eq!(
        status.stable_revision.as_deref(),
        Some(v1_hash.as_str()),
        "back to the previous revision"
    );
    assert_eq!(
        status.rolled_back_revision.as_deref(),
        Some(v2_hash.as_str())
    );
    assert!(
        status
            .timeline
            .iter()
            .any(|e| e.reason == firebreak::api::Reason::BakeFailed)
    );
    let incidents: Api<Incident> = Api::namespaced(env.client.clone(), &ns.name);
    let name = status.incident.clone().unwrap();
    let incident = incidents.get(&name).await.unwrap();
    let spec = &incident.spec;
    assert_eq!(spec.trigger, Trigger::BakeFailed);
    // The record tells the truth: the previous revision took the traffic back, and the change
    // is the real one (the image), not the bad revision compared with itself.
    assert_eq!(
        (spec.revision.as_str(), spec.stable_revision.as_str()),
        (v2_hash.as_str(), v1_hash.as_str())
    );
    let paths: Vec<&str> = spec.change.fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["containers[app].image"], "{:?}", spec.change.fields);
    assert_eq!(spec.change.fields[0].stable.as_deref(), Some("pay:1"));
    assert_eq!(spec.change.fields[0].canary.as_deref(), Some("pay:2"));
    assert_eq!(
        rolled_back_notifications(&receiver).await,
        1,
        "a bake failure pages exactly once"
    );
    wait_for_rollout(
        &api,
        "pay",
        "the previous revision at full size",
        Duration::from_secs(60),
        |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.stable_available_replicas == 4 && s.available_replicas == 4)
        },
    )
    .await;
    // What was done, with times: the previous revision scaled up, then the bad one down.
    let incident = eventually(
        "the bad revision's scale-down in the Incident",
        Duration::from_secs(30),
        || {
            let incidents = incidents.clone();
            let name = name.clone();
            async move {
                let incident = incidents.get(&name).await.ok()?;
                incident
                    .spec
                    .mitigation
                    .iter()
                    .any(|m| m.action == "CanaryScaledDown")
                    .then_some(incident)
            }
        },
    )
    .await;
    let actions: Vec<&str> = incident
        .spec
        .mitigation
        .iter()
        .map(|m| m.action.as_str())
        .collect();
    assert_eq!(actions, ["StableScaledUp", "CanaryScaledDown"]);
    let times: Vec<_> = incident.spec.mitigation.iter().map(|m| m.time.0).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(incident.spec.time_to_mitigate_seconds.is_some());

    // The second wave watches the revision that serves now, on fresh requests.
    let wave = eventually("the second-wave result", Duration::from_secs(90), || {
        let incidents = incidents.clone();
        let name = name.clone();
        async move {
            let incident = incidents.get(&name).await.ok()?;
            let wave = incident.status?.second_wave?;
            (wave.state != SecondWaveState::Watching).then_some(wave)
        }
    })
    .await;
    assert_eq!(wave.state, SecondWaveState::Recovered, "{wave:?}");
    assert!(
        !wave.message.contains("over 0 requests"),
        "measured on fresh requests of {v1_hash}: {}",
        wave.message
    );
    let postmortem = firebreak(&["postmortem", &name, "-n", &ns.name]).await;
    assert!(
        !postmortem.contains(&format!("stable revision `{v2_hash}`")),
        "{postmortem}"
    );
}
