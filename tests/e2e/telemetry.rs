//! The controller's own metrics and health endpoints, scraped by the test Prometheus.

use std::time::Duration;

use firebreak::api::{Phase, Rollout};
use kube::Api;
use serde_json::json;

use crate::support::{
    ControllerProcess, TestEnv, create_rollout, eventually, firebreak, install_crds, phase,
    query_value, rollout_body, set_image, wait_for_rollout,
};

#[tokio::test]
async fn prometheus_scrapes_the_controller_and_sees_the_rollback_histogram() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let ns = env.namespace("telemetry").await;
    let _controller =
        ControllerProcess::start_with(&ns.name, &["--metrics-address", "127.0.0.1:0"]);
    let log = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("../e2e-logs/{}.controller.log", ns.name));
    let address = eventually(
        "the controller to log its metrics address",
        Duration::from_secs(30),
        || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).ok()?;
                let line = text.lines().find(|l| l.contains("serving /metrics"))?;
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                    .map(str::to_string)
            }
        },
    )
    .await;
    for (path, body) in [("healthz", "ok"), ("readyz", "ready")] {
        let answer = reqwest::get(format!("http://{address}/{path}"))
            .await
            .unwrap();
        assert!(answer.status().is_success(), "/{path}: {}", answer.status());
        assert_eq!(answer.text().await.unwrap(), body);
    }
    let _target = env.scrape_target(
        &format!("controller-{}", ns.name),
        &address,
        &[("controller", &ns.name)],
    );

    let api: Api<Rollout> = Api::namespaced(env.client.clone(), &ns.name);
    create_rollout(
        &api,
        rollout_body("web", 2, "web:1", json!([{"setWeight": 50}, {"pause": {}}])),
    )
    .await;
    wait_for_rollout(&api, "web", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    set_image(&api, "web", "web:2").await;
    wait_for_rollout(&api, "web", "the pause", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Paused)
    })
    .await;
    firebreak(&["abort", "web", "-n", &ns.name]).await;
    wait_for_rollout(&api, "web", "rollback", Duration::from_secs(30), |r| {
        phase(r) == Some(Phase::RolledBack)
    })
    .await;

    let prometheus = env.prometheus();
    let query = format!(
        "firebreak_rollback_seconds_count{{controller=\"{}\",trigger=\"Aborted\"}}",
        ns.name
    );
    let rollbacks = eventually(
        "Prometheus to have the rollback histogram",
        Duration::from_secs(60),
        || {
            let prometheus = prometheus.clone();
            let query = query.clone();
            async move {
                let value = query_value(&prometheus, &query).await?;
                (value >= 1.0).then_some(value)
            }
        },
    )
    .await;
    assert_eq!(rollbacks, 1.0);
    let phases = prometheus
        .query(format!(
            "firebreak_rollouts{{controller=\"{}\",phase=\"RolledBack\"}}",
            ns.name
        ))
        .get()
        .await
        .unwrap();
    assert_eq!(
        phases
            .data()
            .as_vector()
            .unwrap()
            .first()
            .map(|s| s.sample().value()),
        Some(1.0)
    );
}
