//! Canary analysis on the real control plane, a real Prometheus and the fleet simulator: a
//! healthy canary is promoted, a bad one is rolled back by itself, missing data holds the rollout,
//! and a restarted controller keeps its evidence.

use std::time::{Duration, Instant};

use firebreak::api::{Phase, Rollout};
use serde_json::{Value, json};

use crate::support::{
    Fleet, OwnPrometheus, RolloutTest, create_rollout, firebreak, phase, roll_out, wait_for_rollout,
};

pub(crate) const ERRORS: &str = r#"sum(increase(http_requests_total{namespace="{{namespace}}",pod_template_hash="{{revision}}",code=~"5.."}[{{interval}}]))"#;
pub(crate) const TOTAL: &str = r#"sum(increase(http_requests_total{namespace="{{namespace}}",pod_template_hash="{{revision}}"}[{{interval}}]))"#;

/// A Rollout of 4 pods at 200 requests/second whose template carries the simulator's
/// annotations, judged every 5 s (the shortest interval allowed) on its error rate (and crashes).
pub(crate) fn rollout(name: &str, prometheus: &str, steps: Value, error_rate: f64) -> Value {
    json!({
        "apiVersion": "firebreak.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": name}},
            "progressDeadlineSeconds": 120,
            "template": {
                "metadata": {
                    "labels": {"app": name},
                    "annotations": {
                        "sim.firebreak.dev/requests-per-second": "400",
                        "sim.firebreak.dev/error-rate": error_rate.to_string()
                    }
                },
                "spec": {"containers": [{"name": "app", "image": format!("{name}:1")}]}
            },
            "strategy": {"canary": {"steps": steps}},
            "analysis": {
                "interval": "5s",
                "confidence": 0.99,
                "metrics": [
                    {"name": "http-errors", "errorRate": {
                        "prometheus": {"address": prometheus, "errors": ERRORS, "total": TOTAL},
                        "maxRatio": 2.0
                    }},
                    {"name": "crashes", "crashRate": {"maxRatio": 2.0, "maxRestartsPerPod": 2}}
                ]
            }
        }
    })
}

fn reasons(r: &Rollout) -> Vec<String> {
    r.status
        .as_ref()
        .map(|s| s.timeline.iter().map(|e| e.reason.to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_healthy_canary_is_promoted_and_a_5x_error_canary_is_rolled_back_by_itself() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("analysis-verdicts").await;
    let _fleet = Fleet::start(&ns.name, &[]).await.scraped_by(&env, &ns.name);
    // A 20 s pause is four 5 s intervals: the plan's end is a planned decision look.
    let steps = json!([{"setWeight": 50}, {"pause": {"duration": "20s"}}]);
    create_rollout(&api, rollout("web", &env.prometheus_url, steps, 0.02)).await;
    wait_for_rollout(&api, "web", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    // v2 has the same 2% error rate: promoted once the judge is sure it is not worse.
    let started = Instant::now();
    roll_out(
        &api,
        "web",
        "web:2",
        json!({"sim.firebreak.dev/error-rate": "0.02"}),
    )
    .await;
    let v2 = wait_for_rollout(&api, "web", "v2 promoted", Duration::from_secs(240), |r| {
        phase(r) == Some(Phase::Healthy) && reasons(r).iter().any(|x| x == "Promoted")
    })
    .await;
    let analysis = v2
        .status
        .as_ref()
        .unwrap()
        .analysis
        .clone()
        .expect("analysis recorded");
    eprintln!(
        "measured: healthy canary promoted after {:.1}s, {} looks",
        started.elapsed().as_secs_f64(),
        analysis.looks
    );
    assert_eq!(
        analysis.outcome.map(|o| o.as_str()),
        Some("Pass"),
        "{analysis:?}"
    );
    assert!(
        analysis
            .metrics
            .iter()
            .all(|m| m.verdict.as_str() == "Pass"),
        "{:?}",
        analysis.metrics
    );
    // The planned decision look was set from the steps when the analysis started.
    let decision_at = analysis
        .decision_at
        .clone()
        .expect("a planned decision look");
    eprintln!("planned decision look at {}", decision_at.0);
    // The canary is gone: status shows what its planned decision said if it came to one, and
    // never a decision still "in" some seconds.
    let shown = firebreak(&["status", "web", "-n", &ns.name]).await;
    let decided = analysis
        .metrics
        .iter()
        .any(|m| m.planned_decision.is_some());
    assert_eq!(shown.contains("planned decision at"), decided, "{shown}");
    assert!(!shown.contains(" (in "), "{shown}");

    // v3 fails 5x as often: rolled back by the judge, with the numbers in the reason.
    roll_out(
        &api,
        "web",
        "web:3",
        json!({"sim.firebreak.dev/error-rate": "0.10"}),
    )
    .await;
    let canary_running = wait_for_rollout(
        &api,
        "web",
        "v3 canary pods available",
        Duration::from_secs(60),
        |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.canary_available_replicas > 0)
        },
    )
    .await;
    let first_errors = Instant::now();
    let v3 = wait_for_rollout(
        &api,
        "web",
        "v3 rolled back",
        Duration::from_secs(120),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let to_rollback = first_errors.elapsed();
    let status = v3.status.unwrap();
    let reason = status.rollback_reason.clone().unwrap();
    eprintln!(
        "measured: 5x error canary rolled back {:.1}s after its pods became available: {reason}",
        to_rollback.as_secs_f64()
    );
    assert!(
        reason.contains("analysis failed") && reason.contains("http-errors"),
        "{reason}"
    );
    assert!(
        reason.contains("ratio"),
        "the reason carries the numbers: {reason}"
    );
    assert_eq!(
        status.rolled_back_revision,
        canary_running.status.unwrap().canary_revision
    );
    assert!(
        status
            .timeline
            .iter()
            .any(|e| e.reason == firebreak::api::Reason::AnalysisFailed)
    );
    // Two 5 s intervals plus Prometheus' scrape and rate windows.
    assert!(
        to_rollback < Duration::from_secs(30),
        "took {to_rollback:?}"
    );
}

#[tokio::test]
async fn a_crash_looping_canary_is_rolled_back() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("analysis-crashes").await;
    let _fleet = Fleet::start(&ns.name, &["--crash-backoff-base", "1s"])
        .await
        .scraped_by(&env, &ns.name);
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    create_rollout(&api, rollout("jobs", &env.prometheus_url, steps, 0.0)).await;
    wait_for_rollout(&api, "jobs", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    roll_out(
        &api,
        "jobs",
        "jobs:2",
        json!({"sim.firebreak.dev/crash-every": "1"}),
    )
    .await;
    let rolled_back = wait_for_rollout(
        &api,
        "jobs",
        "crash-looping canary rolled back",
        Duration::from_secs(120),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let reason = rolled_back.status.unwrap().rollback_reason.unwrap();
    assert!(
        reason.contains("crashes") && reason.contains("restarted"),
        "{reason}"
    );
}

#[tokio::test]
async fn missing_prometheus_holds_the_rollout_until_it_returns() {
    let RolloutTest {
        env: _,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("analysis-no-data").await;
    let fleet = Fleet::start(&ns.name, &[]).await;
    let mut prometheus = OwnPrometheus::start(&ns.name, &[&fleet.address]).await;
    let steps = json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]);
    let mut body = rollout("cart", &prometheus.url, steps, 0.02);
    body["spec"]["analysis"]["metrics"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    create_rollout(&api, body).await;
    wait_for_rollout(&api, "cart", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    prometheus.stop().await;
    roll_out(
        &api,
        "cart",
        "cart:2",
        json!({"sim.firebreak.dev/error-rate": "0.02"}),
    )
    .await;
    // One failed look is not an event (a late scrape); the second in a row is.
    let held = wait_for_rollout(
        &api,
        "cart",
        "analysis Unavailable for two looks",
        Duration::from_secs(60),
        |r| reasons(r).contains(&"AnalysisUnavailable".to_string()),
    )
    .await;
    let analysis = held
        .status
        .as_ref()
        .and_then(|s| s.analysis.clone())
        .unwrap();
    assert_eq!(analysis.outcome.map(|o| o.as_str()), Some("Unavailable"));
    assert!(analysis.consecutive_failures >= 2, "{analysis:?}");
    // The 2 s pause is long over, yet the rollout holds and does not promote.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let still = api.get("cart").await.unwrap();
    let status = still.status.clone().unwrap();
    assert_eq!(status.phase, Some(Phase::Paused), "{:?}", status.message);
    assert!(status.canary_revision.is_some(), "promoted without data");
    assert!(status.message.unwrap().contains("until analysis passes"));

    prometheus.restart().await;
    let done = wait_for_rollout(
        &api,
        "cart",
        "promotion once Prometheus is back",
        Duration::from_secs(240),
        |r| phase(r) == Some(Phase::Healthy),
    )
    .await;
    assert!(
        reasons(&done).contains(&"AnalysisRecovered".to_string()),
        "{:?}",
        reasons(&done)
    );
}

#[tokio::test]
async fn a_controller_restarted_mid_analysis_keeps_its_evidence() {
    let RolloutTest {
        env,
        ns,
        mut controller,
        api,
    } = RolloutTest::start("analysis-restart").await;
    let _fleet = Fleet::start(&ns.name, &[]).await.scraped_by(&env, &ns.name);
    let steps = json!([{"setWeight": 50}, {"pause": {}}]);
    create_rollout(&api, rollout("pay", &env.prometheus_url, steps, 0.02)).await;
    wait_for_rollout(&api, "pay", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    roll_out(
        &api,
        "pay",
        "pay:2",
        json!({"sim.firebreak.dev/error-rate": "0.02"}),
    )
    .await;

    let requests = |r: &Rollout| {
        r.status
            .as_ref()
            .and_then(|s| s.analysis.as_ref())
            .and_then(|a| a.metrics.first())
            .map_or(0.0, |m| m.evidence.canary_exposure())
    };
    let before = wait_for_rollout(
        &api,
        "pay",
        "three looks with traffic",
        Duration::from_secs(90),
        |r| {
            r.status
                .as_ref()
                .and_then(|s| s.analysis.as_ref())
                .is_some_and(|a| a.looks >= 3)
                && requests(r) > 0.0
        },
    )
    .await;
    controller.kill().await;
    let looks = before
        .status
        .as_ref()
        .unwrap()
        .analysis
        .as_ref()
        .unwrap()
        .looks;
    let seen = requests(&before);
    controller.restart();
    let after = wait_for_rollout(
        &api,
        "pay",
        "more looks after the restart",
        Duration::from_secs(60),
        |r| {
            r.status
                .as_ref()
                .and_then(|s| s.analysis.as_ref())
                .is_some_and(|a| a.looks >= looks + 2)
        },
    )
    .await;
    assert!(
        requests(&after) > seen,
        "evidence restarted from zero: {} requests after, {seen} before",
        requests(&after)
    );
}
