//! The Helm chart: it lints, renders, and its manifests pass the API server's validation; and
//! the controller does its whole job with the chart's ServiceAccount and RBAC, not as admin.

use std::process::Stdio;
use std::time::Duration;

use firebreak::api::{Incident, Phase, Rollout};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::analysis::rollout as analysed_rollout;
use crate::support::{
    ControllerProcess, Fleet, TestEnv, create_rollout, install_crds, phase, roll_out,
    wait_for_rollout,
};

fn tool(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set; run the tests with scripts/test.sh"))
}

fn chart() -> String {
    format!("{}/charts/firebreak", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `program args`, feeding `stdin`; panics with its output on failure; returns stdout.
async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn render(namespace: &str, extra: &[&str]) -> String {
    let chart = chart();
    let mut args = vec![
        "template",
        "fb",
        &chart,
        "-n",
        namespace,
        "--kube-version",
        "1.35.4",
    ];
    args.extend_from_slice(extra);
    run(&tool("FIREBREAK_HELM"), &args, None).await
}

#[tokio::test]
async fn the_chart_lints_renders_and_passes_server_side_validation() {
    let env = TestEnv::new().await;
    let ns = env.namespace("chart-dry-run").await;
    let lint = run(
        &tool("FIREBREAK_HELM"),
        &["lint", &chart(), "--kube-version", "1.35.4"],
        None,
    )
    .await;
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
    let kubectl = tool("FIREBREAK_KUBECTL");
    let namespaced = format!("watchNamespace={}", ns.name);
    for values in [
        vec![],
        vec![
            "--set",
            &namespaced,
            "--set-json",
            r#"defaultWindows={"timeZone":"UTC","deny":[{"from":"2026-12-20T00:00:00","to":"2027-01-04T00:00:00"}]}"#,
        ],
    ] {
        let mut extra = vec!["--include-crds"];
        extra.extend(values.iter().copied());
        let manifests = render(&ns.name, &extra).await;
        for kind in [
            "Deployment",
            "ServiceAccount",
            "CustomResourceDefinition",
            "PodDisruptionBudget",
            "Service",
        ] {
            assert!(
                manifests.contains(&format!("kind: {kind}")),
                "no {kind} rendered"
            );
        }
        let applied = run(
            &kubectl,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--dry-run=server",
                "-n",
                &ns.name,
                "-f",
                "-",
            ],
            Some(&manifests),
        )
        .await;
        assert!(
            applied.contains("deployment.apps/fb-firebreak")
                && applied.contains("(server dry run)"),
            "{applied}"
        );
    }
    let monitor = render(&ns.name, &["--set", "metrics.serviceMonitor.enabled=true"]).await;
    assert!(monitor.contains("kind: ServiceMonitor"));
}

#[tokio::test]
async fn rollouts_work_under_the_charts_service_account_not_as_admin() {
    let env = TestEnv::new().await;
    install_crds(&env.client).await;
    let ns = env.namespace("chart-rbac").await;
    let kubectl = tool("FIREBREAK_KUBECTL");
    // The chart's ServiceAccount and RBAC in namespaced mode (Roles, plus reading that one
    // namespace), without its Deployment: the controller runs here as a process.
    let manifests = render(&ns.name, &["--set", &format!("watchNamespace={}", ns.name)]).await;
    let kinds = [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    ];
    let rbac: Vec<&str> = manifests
        .split("\n---")
        .filter(|doc| {
            doc.lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .is_some_and(|kind| kinds.contains(&kind.trim()))
        })
        .collect();
    assert_eq!(
        rbac.len(),
        7,
        "ServiceAccount, 2 Roles, 2 RoleBindings, the namespace's ClusterRole and binding"
    );
    run(
        &kubectl,
        &["apply", "-n", &ns.name, "-f", "-"],
        Some(&rbac.join("\n---\n")),
    )
    .await;
    let token = run(
        &kubectl,
        &[
            "create",
            "token",
            "fb-firebreak",
            "-n",
            &ns.name,
            "--duration",
            "1h",
        ],
        None,
    )
    .await;

    // A kubeconfig with the admin's server and CA but the ServiceAccount's token.
    let mut limited = serde_json::to_value(
        kube::config::Kubeconfig::read_from(std::env::var("KUBECONFIG").unwrap()).unwrap(),
    )
    .unwrap();
    limited["users"] = json!([{"name": "firebreak", "user": {"token": token.trim()}}]);
    for context in limited["contexts"].as_array_mut().unwrap() {
        context["context"]["user"] = json!("firebreak");
    }
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}.kubeconfig", ns.name));
    std::fs::write(&path, serde_yaml::to_string(&limited).unwrap()).unwrap();

    let _fleet = Fleet::start(&ns.name, &[]).await.scraped_by(&env, &ns.name);
    let _controller = ControllerProcess::start_with_env(
        &ns.name,
        &[
            "--leader-election",
            "--lease-namespace",
            &ns.name,
            "--lease-name",
            "firebreak-controller",
        ],
        &[("KUBECONFIG", path.to_str().unwrap())],
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns.name);
    let flags: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "flags"}, "data": {"f": "on"}}))
            .unwrap();
    config_maps
        .create(&PostParams::default(), &flags)
        .await
        .unwrap();
    let api: Api<Rollout> = Api::namespaced(env.client.clone(), &ns.name);
    let steps = json!([{"setWeight": 50}, {"pause": {"duration": "2s"}}]);
    let mut body = analysed_rollout("shop", &env.prometheus_url, steps, 0.02);
    body["spec"]["killSwitch"] =
        json!({"configMap": {"name": "flags", "key": "f", "value": "off"}});
    body["spec"]["notifications"] = json!([{"name": "hook", "webhook": {"format": "json", "urlFrom": {"secretKeyRef": {"name": "missing", "key": "url"}}}}]);
    create_rollout(&api, body).await;
    wait_for_rollout(&api, "shop", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;

    // A healthy canary is promoted, a bad one rolled back with its Incident and kill switch.
    roll_out(
        &api,
        "shop",
        "shop:2",
        json!({"sim.firebreak.dev/error-rate": "0.02"}),
    )
    .await;
    wait_for_rollout(&api, "shop", "v2 promoted", Duration::from_secs(240), |r| {
        phase(r) == Some(Phase::Healthy)
            && r.status.as_ref().is_some_and(|s| {
                s.timeline
                    .iter()
                    .any(|e| e.reason == firebreak::api::Reason::Promoted)
            })
    })
    .await;
    roll_out(
        &api,
        "shop",
        "shop:3",
        json!({"sim.firebreak.dev/error-rate": "0.2"}),
    )
    .await;
    let rolled_back = wait_for_rollout(
        &api,
        "shop",
        "v3 rolled back",
        Duration::from_secs(120),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let incidents: Api<Incident> = Api::namespaced(env.client.clone(), &ns.name);
    let incident = incidents
        .get(rolled_back.status.unwrap().incident.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        incident.spec.mitigation[0].action, "KillSwitchFlipped",
        "{:?}",
        incident.spec.mitigation
    );
    assert_eq!(
        config_maps.get("flags").await.unwrap().data.unwrap()["f"],
        "off"
    );

    // Nothing the controller did was refused.
    let log = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("../e2e-logs/{}.controller.log", ns.name)),
    )
    .unwrap();
    run(
        &kubectl,
        &[
            "delete",
            "clusterrolebinding,clusterrole",
            "fb-firebreak-namespace",
            "--ignore-not-found",
        ],
        None,
    )
    .await;
    assert!(
        !log.contains("forbidden"),
        "the chart's RBAC is missing a permission:\n{log}"
    );
}
