//! Incidents on the real control plane, Prometheus and the fleet simulator: the record of a bad
//! canary, the kill switch flipped before the canary shrinks, notifications that never delay a
//! rollback, and a common-mode failure that holds instead of rolling back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firebreak::api::{Incident, Phase, Rollout, Triage};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::PostParams;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::analysis::rollout as analysed_rollout;
use crate::support::{
    Fleet, Receiver, RolloutTest, create_rollout, eventually, phase, roll_out, wait_for_rollout,
};

async fn incident_of(client: &kube::Client, ns: &str, rollout: &Rollout) -> Incident {
    let name = rollout
        .status
        .as_ref()
        .and_then(|s| s.incident.clone())
        .expect("status.incident is set");
    let incidents: Api<Incident> = Api::namespaced(client.clone(), ns);
    eventually(&format!("Incident {name}"), Duration::from_secs(20), || {
        let incidents = incidents.clone();
        let name = name.clone();
        async move { incidents.get_opt(&name).await.ok().flatten() }
    })
    .await
}

/// Whether `observed` is within `sigmas` binomial standard errors (plus 1 count) of `p` × `n`.
fn close_to(observed: u64, n: f64, p: f64, sigmas: f64) -> bool {
    let expected = n * p;
    let sd = (n * p * (1.0 - p)).sqrt();
    (observed as f64 - expected).abs() <= sigmas * sd + 1.0
}

#[tokio::test]
async fn a_bad_canary_leaves_an_incident_and_the_kill_switch_flips_before_it_shrinks() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("incident-record").await;
    let _fleet = Fleet::start(&ns.name, &[]).await.scraped_by(&env, &ns.name);
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns.name);
    let flags: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "flags"}, "data": {"new-checkout": "true"}}),
    )
    .unwrap();
    config_maps
        .create(&PostParams::default(), &flags)
        .await
        .unwrap();

    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    let mut body = analysed_rollout("shop", &env.prometheus_url, steps, 0.02);
    body["spec"]["killSwitch"] =
        json!({"configMap": {"name": "flags", "key": "new-checkout", "value": "false"}});
    create_rollout(&api, body).await;
    wait_for_rollout(&api, "shop", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    // Record every ReplicaSet change with its resourceVersion: etcd revisions are global, so they
    // order the ConfigMap's change and the canary's scale-down.
    let seen: Arc<Mutex<Vec<(String, i32, u64)>>> = Arc::default();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns.name);
    let log = seen.clone();
    let watch = tokio::spawn(async move {
        let mut events = watcher(replica_sets, watcher::Config::default())
            .applied_objects()
            .boxed();
        while let Some(Ok(rs)) = events.next().await {
            let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let version = rs
                .resource_version()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            log.lock().unwrap().push((rs.name_any(), replicas, version));
        }
    });

    roll_out(
        &api,
        "shop",
        "shop:2",
        json!({"sim.firebreak.dev/error-rate": "0.10"}),
    )
    .await;
    let rolled_back = wait_for_rollout(&api, "shop", "rollback", Duration::from_secs(120), |r| {
        phase(r) == Some(Phase::RolledBack)
    })
    .await;
    let incident = incident_of(&env.client, &ns.name, &rolled_back).await;
    let spec = &incident.spec;
    assert_eq!(
        (spec.trigger.as_str(), spec.triage),
        ("AnalysisFailed", Triage::Change)
    );
    assert_eq!(spec.rollout, "shop");

    // Location: the numbers agree with the simulator's configured rates.
    let errors = spec
        .location
        .iter()
        .find(|l| l.metric == "http-errors")
        .expect("http-errors in location");
    assert_eq!(errors.verdict.as_str(), "Fail");
    assert!(errors.canary_exposure > 100.0, "{errors:?}");
    assert!(
        close_to(errors.canary_events, errors.canary_exposure, 0.10, 4.0),
        "canary errors {errors:?} vs 10%"
    );
    assert!(
        close_to(errors.baseline_events, errors.baseline_exposure, 0.02, 4.0),
        "baseline errors {errors:?} vs 2%"
    );
    // Blast radius: requests and excess failures consistent with those rates.
    let blast = &spec.blast_radius;
    assert_eq!(
        blast.canary_requests,
        Some(errors.canary_exposure.round() as u64)
    );
    let excess = blast.excess_failed_requests.unwrap() as f64;
    let expected = 0.08 * errors.canary_exposure;
    assert!(
        (excess - expected).abs() <= 4.0 * (errors.canary_exposure * 0.1).sqrt() + 2.0,
        "excess {excess} vs {expected}"
    );
    assert_eq!(blast.max_weight, 50);
    assert!(blast.pods >= 1);
    let share = blast.traffic_share.unwrap();
    assert!((0.3..0.7).contains(&share), "traffic share {share}");
    // System change, anchor, timeline.
    let image = spec
        .change
        .fields
        .iter()
        .find(|f| f.path == "containers[app].image")
        .expect("image diff");
    assert_eq!(
        (image.stable.as_deref(), image.canary.as_deref()),
        (Some("shop:1"), Some("shop:2"))
    );
    assert!(spec.anchor.canary_started_at.is_some() && spec.anchor.detected_at.is_some());
    assert!(spec.time_to_detect_seconds.is_some() && spec.time_to_mitigate_seconds.is_some());
    let reasons: Vec<&str> = spec.timeline.iter().map(|e| e.reason.as_str()).collect();
    assert!(
        reasons.contains(&"CanaryStarted") && reasons.contains(&"AnalysisFailed"),
        "{reasons:?}"
    );

    // Mitigation: the kill switch first, then the canary scaled down.
    let actions: Vec<&str> = spec.mitigation.iter().map(|m| m.action.as_str()).collect();
    assert_eq!(
        actions,
        ["KillSwitchFlipped", "CanaryScaledDown"],
        "{:?}",
        spec.mitigation
    );
    assert!(spec.mitigation[0].time <= spec.mitigation[1].time);
    let flags = config_maps.get("flags").await.unwrap();
    assert_eq!(flags.data.as_ref().unwrap()["new-checkout"], "false");
    assert_eq!(
        flags.annotations()["firebreak.dev/previous-value.new-checkout"],
        "true"
    );
    let flipped: u64 = flags.resource_version().unwrap().parse().unwrap();
    let canary_rs = format!("shop-{}", spec.revision);
    let scaled_down = eventually(
        "the canary's scale-down in the watch",
        Duration::from_secs(10),
        || {
            let seen = seen.clone();
            let canary_rs = canary_rs.clone();
            async move {
                let seen = seen.lock().unwrap();
                let grew = seen
                    .iter()
                    .position(|(n, r, _)| *n == canary_rs && *r > 0)?;
                seen[grew..]
                    .iter()
                    .find(|(n, r, _)| *n == canary_rs && *r == 0)
                    .map(|(_, _, v)| *v)
            }
        },
    )
    .await;
    watch.abort();
    assert!(
        flipped < scaled_down,
        "ConfigMap flipped at revision {flipped}, canary scaled down at {scaled_down}"
    );

    // The second-wave check: the stable went back to its level after the rollback.
    let incidents: Api<Incident> = Api::namespaced(env.client.clone(), &ns.name);
    let name = incident.name_any();
    let wave = eventually(
        "the second-wave check to end",
        Duration::from_secs(60),
        || {
            let incidents = incidents.clone();
            let name = name.clone();
            async move {
                let wave = incidents.get(&name).await.ok()?.status?.second_wave?;
                (wave.state.as_str() != "Watching").then_some(wave)
            }
        },
    )
    .await;
    assert_eq!(wave.state.as_str(), "Recovered", "{wave:?}");
    assert!(wave.message.contains("stable error rate"), "{wave:?}");

    // `firebreak restore-flag` puts it back on purpose.
    crate::support::firebreak(&["restore-flag", "shop", "-n", &ns.name]).await;
    let flags = config_maps.get("flags").await.unwrap();
    assert_eq!(flags.data.as_ref().unwrap()["new-checkout"], "true");

    // The postmortem renders from the record.
    let postmortem =
        crate::support::firebreak(&["postmortem", &incident.name_any(), "-n", &ns.name]).await;
    assert!(
        postmortem.contains("shop:2") && postmortem.contains("http-errors"),
        "{postmortem}"
    );
}

#[tokio::test]
async fn a_common_mode_failure_holds_and_is_triaged_common_mode() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("incident-common-mode").await;
    let _fleet = Fleet::start(&ns.name, &[]).await.scraped_by(&env, &ns.name);
    let steps = json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]);
    // Both versions fail 30% of requests, far above the 10% ceiling: a shared dependency, not the change.
    let mut body = analysed_rollout("feed", &env.prometheus_url, steps, 0.30);
    body["spec"]["analysis"]["metrics"][0]["errorRate"]["maxRate"] = json!(0.10);
    create_rollout(&api, body).await;
    wait_for_rollout(&api, "feed", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    roll_out(
        &api,
        "feed",
        "feed:2",
        json!({"sim.firebreak.dev/error-rate": "0.30"}),
    )
    .await;
    let held = wait_for_rollout(
        &api,
        "feed",
        "a common-mode hold",
        Duration::from_secs(120),
        |r| r.status.as_ref().is_some_and(|s| s.incident.is_some()),
    )
    .await;
    let incident = incident_of(&env.client, &ns.name, &held).await;
    assert_eq!(incident.spec.triage, Triage::CommonMode);
    assert_eq!(incident.spec.trigger.as_str(), "CommonModeHold");
    assert!(incident.spec.mitigation.iter().any(|m| m.action == "Held"));
    // Held, not rolled back, and not promoted either.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = api.get("feed").await.unwrap().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Paused), "{:?}", status.message);
    assert!(status.canary_revision.is_some() && status.rolled_back_revision.is_none());
}

#[tokio::test]
async fn notifications_reach_their_receivers_and_a_failing_one_does_not_delay_the_rollback() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("incident-notify").await;
    let _fleet = Fleet::start(&ns.name, &[]).await.scraped_by(&env, &ns.name);
    let slack = Receiver::start(200).await;
    let broken = Receiver::start(500).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns.name);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "hooks"},
        "stringData": {"slack": slack.url, "broken": broken.url}
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    let mut body = analysed_rollout("cart", &env.prometheus_url, steps, 0.02);
    body["spec"]["notifications"] = json!([
        {"name": "oncall", "webhook": {"format": "slack", "urlFrom": {"secretKeyRef": {"name": "hooks", "key": "slack"}}}},
        {"name": "audit", "webhook": {"format": "json", "urlFrom": {"secretKeyRef": {"name": "hooks", "key": "broken"}}}}
    ]);
    create_rollout(&api, body).await;
    wait_for_rollout(&api, "cart", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    roll_out(
        &api,
        "cart",
        "cart:2",
        json!({"sim.firebreak.dev/error-rate": "0.10"}),
    )
    .await;
    let canary_up = wait_for_rollout(
        &api,
        "cart",
        "canary pods available",
        Duration::from_secs(60),
        |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.canary_available_replicas > 0)
        },
    )
    .await;
    let _ = canary_up;
    let started = Instant::now();
    wait_for_rollout(&api, "cart", "rollback", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::RolledBack)
    })
    .await;
    let rolled_back_after = started.elapsed();

    // The Slack receiver gets the rollback, worded impact / what was done / what happens next.
    let text = eventually("a Slack rollback message", Duration::from_secs(30), || {
        let received = slack.received.clone();
        async move {
            let received = received.lock().unwrap();
            received.iter().find_map(|(_, v)| {
                let text = v["text"].as_str()?;
                text.contains("rolled back").then(|| text.to_string())
            })
        }
    })
    .await;
    assert!(
        text.contains("Impact")
            && text.contains("What was done")
            && text.contains("What happens next"),
        "{text}"
    );
    // The JSON receiver failing with 500 was retried…
    let attempts = eventually(
        "retries to the failing receiver",
        Duration::from_secs(30),
        || {
            let received = broken.received.clone();
            async move {
                let received = received.lock().unwrap();
                let rollbacks: Vec<&Value> = received
                    .iter()
                    .map(|(_, v)| v)
                    .filter(|v| v["event"] == "RolledBack")
                    .collect();
                (rollbacks.len() >= 2).then_some(rollbacks.len())
            }
        },
    )
    .await;
    assert!(attempts >= 2);
    // …and did not hold the rollback up: it happened within two analysis intervals plus the
    // scrape window of the canary's pods serving.
    assert!(
        rolled_back_after < Duration::from_secs(30),
        "rollback took {rolled_back_after:?}"
    );
    let failed = json!(
        broken
            .received
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(_, v)| v["event"] == "RolledBack")
            .map(|(_, v)| v.clone())
    );
    assert_eq!(
        failed["incident"]["spec"]["trigger"], "AnalysisFailed",
        "{failed}"
    );
}
