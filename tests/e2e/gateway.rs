//! Traffic routing through a real Gateway API implementation (Traefik) carrying real HTTP
//! requests to the fleet simulator, which serves on each pod's IP inside the test environment's
//! private network namespace. Every share measured here is what the gateway really did.

use std::time::Duration;

use firebreak::api::{Incident, Phase, Rollout};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use serde_json::{Value, json};

use crate::support::{
    BackgroundLoad, Fleet, Gateway, RolloutTest, create_rollout, eventually, firebreak, load,
    phase, roll_out, rollout_body, settled, wait_for_rollout,
};

fn http_routes(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    );
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The host name the routes of a test's namespace answer to.
fn host(namespace: &str) -> String {
    format!("{namespace}.test")
}

/// A Rollout of `replicas` pods serving on port 8080, routed by `routing` (`null`: no router)
/// with `steps`.
fn routed(name: &str, replicas: i32, steps: Value, routing: Value) -> Value {
    let mut body = rollout_body(name, replicas, &format!("{name}:1"), steps);
    let spec = &mut body["spec"];
    spec["progressDeadlineSeconds"] = json!(120);
    spec["template"]["spec"]["containers"][0]["ports"] =
        json!([{"name": "http", "containerPort": 8080}]);
    if !routing.is_null() {
        spec["strategy"]["canary"]["trafficRouting"] = routing;
    }
    body
}

/// Routing through a managed HTTPRoute attached to `gateway` for the namespace's host name.
fn managed(name: &str, namespace: &str, parent: Value) -> Value {
    json!({
        "services": {"stable": format!("{name}-stable"), "canary": format!("{name}-canary")},
        "gatewayAPI": {"httpRoute": {"spec": {
            "parentRefs": [parent],
            "hostnames": [host(namespace)],
            "rules": [{"name": "main", "backendRefs": [{"name": format!("{name}-stable"), "port": 8080}]}]
        }}}
    })
}

fn status_of(r: &Rollout) -> firebreak::api::RolloutStatus {
    r.status.clone().unwrap_or_default()
}

/// Waits until the Rollout is at step `index` with its routing verified by the gateway.
async fn at_verified_step(api: &Api<Rollout>, name: &str, index: i32) -> Rollout {
    wait_for_rollout(
        api,
        name,
        &format!("step {index} verified at the gateway"),
        Duration::from_secs(90),
        |r| {
            let s = status_of(r);
            s.current_step_index == Some(index) && s.traffic.as_ref().is_some_and(|t| t.verified)
        },
    )
    .await
}

/// Waits until the first revision is stable and healthy (routes all to stable, verified).
async fn healthy(api: &Api<Rollout>, name: &str) -> Rollout {
    wait_for_rollout(
        api,
        name,
        "the first revision healthy",
        Duration::from_secs(90),
        |r| phase(r) == Some(Phase::Healthy),
    )
    .await
}

#[tokio::test]
async fn weights_of_1_5_and_50_percent_are_the_share_of_real_requests_at_the_gateway() {
    let RolloutTest {
        env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-weights").await;
    let gateway = Gateway::from_env();
    let _fleet = Fleet::start(&ns.name, &["--serve-pods"]).await;
    let steps = json!([
        {"setWeight": 1}, {"pause": {}},
        {"setWeight": 5}, {"pause": {}},
        {"setWeight": 50}, {"pause": {}}
    ]);
    create_rollout(
        &api,
        routed(
            "web",
            4,
            steps,
            managed("web", &ns.name, gateway.parent_ref()),
        ),
    )
    .await;
    let deployed = healthy(&api, "web").await;
    let stable = status_of(&deployed).stable_revision.unwrap();
    // Services were created from the pod template's port, selecting the stable revision.
    let services: Api<Service> = Api::namespaced(env.client.clone(), &ns.name);
    let selector = services
        .get("web-stable")
        .await
        .unwrap()
        .spec
        .unwrap()
        .selector
        .unwrap();
    assert_eq!(selector.get("pod-template-hash"), Some(&stable));

    roll_out(&api, "web", "web:2", json!({})).await;
    for (index, weight) in [(1, 1.0), (3, 5.0), (5, 50.0)] {
        let rollout = at_verified_step(&api, "web", index).await;
        let status = status_of(&rollout);
        let canary = status.canary_revision.clone().unwrap();
        assert_eq!(
            status.traffic.as_ref().unwrap().weights.canary as f64,
            weight
        );
        // Traefik reports a route's status before its data plane applies it (at most its
        // throttle, 100 ms here, later; longer on a busy machine): measure from a second on.
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Still four stable pods: the weight does not come from pod counts.
        let served = load(&gateway, &host(&ns.name), &[], 250, 4).await;
        assert_eq!(served.failed, 0, "{served:?}");
        assert!(served.responses >= 950, "{served:?}");
        let share = served.percent(&canary);
        eprintln!(
            "measured: setWeight {weight}% -> canary {share:.2}% of {} requests (stable {:.2}%)",
            served.responses,
            served.percent(&stable)
        );
        assert!(
            (share - weight).abs() <= 1.0,
            "canary got {share:.2}% at weight {weight}%: {served:?}"
        );
        assert_eq!(
            served.of(&canary) + served.of(&stable),
            served.responses,
            "{served:?}"
        );
        firebreak(&["promote", "web", "-n", &ns.name]).await;
        // From the promote (which starts the next setWeight step) to the status saying the
        // gateway carries the new weights, polled every 50 ms.
        if let Some(next) = [(1, 5), (3, 50)]
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, w)| *w)
        {
            let asked = std::time::Instant::now();
            loop {
                let r = api.get("web").await.unwrap();
                let t = status_of(&r).traffic.unwrap_or_default();
                if t.verified && t.weights.canary == next {
                    break;
                }
                assert!(
                    asked.elapsed() < Duration::from_secs(30),
                    "{next}% never verified"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            eprintln!(
                "measured: promote -> setWeight {next}% verified at the gateway in {} ms",
                asked.elapsed().as_millis()
            );
        }
    }
    let promoted = healthy(&api, "web").await;
    let new_stable = status_of(&promoted).stable_revision.unwrap();
    assert_ne!(new_stable, stable);
    let served = load(&gateway, &host(&ns.name), &[], 250, 2).await;
    assert_eq!(
        served.of(&new_stable),
        served.responses,
        "after promotion: {served:?}"
    );
}

#[tokio::test]
async fn a_step_waits_while_the_gateway_has_not_accepted_the_route_then_rolls_back() {
    let RolloutTest {
        env: _env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-unaccepted").await;
    let gateway = Gateway::from_env();
    let mut body = routed(
        "web",
        2,
        json!([{"setWeight": 10}, {"pause": {}}]),
        managed(
            "web",
            &ns.name,
            json!({"name": "no-such-gateway", "namespace": gateway.namespace}),
        ),
    );
    body["spec"]["progressDeadlineSeconds"] = json!(20);
    create_rollout(&api, body).await;
    let waiting = wait_for_rollout(
        &api,
        "web",
        "a message naming the route's parent",
        Duration::from_secs(60),
        |r| {
            status_of(r)
                .message
                .is_some_and(|m| m.contains("no-such-gateway"))
        },
    )
    .await;
    assert_ne!(
        phase(&waiting),
        Some(Phase::Healthy),
        "not healthy while no gateway serves the route"
    );
    roll_out(&api, "web", "web:2", json!({})).await;
    let held = wait_for_rollout(
        &api,
        "web",
        "the step held for the gateway",
        Duration::from_secs(30),
        |r| {
            let s = status_of(r);
            s.canary_revision.is_some()
                && s.message.as_deref().is_some_and(|m| {
                    m.contains("the gateway has not taken") && m.contains("no-such-gateway")
                })
        },
    )
    .await;
    let message = status_of(&held).message.unwrap();
    assert!(
        message.contains("HTTPRoute web") && message.contains("no-such-gateway"),
        "{message}"
    );
    assert_eq!(status_of(&held).current_step_index, Some(0));
    let rolled_back = wait_for_rollout(
        &api,
        "web",
        "a rollback at the progress deadline",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::RolledBack),
    )
    .await;
    let reason = status_of(&rolled_back).rollback_reason.unwrap_or_default();
    assert!(
        reason.contains("progress deadline") && reason.contains("gateway"),
        "{reason}"
    );
}

/// An HTTPRoute the user owns: rule `rule` sends everything to `service`.
fn user_route(
    name: &str,
    namespace: &str,
    gateway: &Gateway,
    rule: &str,
    service: &str,
    path: &str,
) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [gateway.parent_ref()],
            "hostnames": [host(namespace)],
            "rules": [{"name": rule, "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                       "backendRefs": [{"name": service, "port": 8080}]}]
        }
    })
}

async fn apply_as(routes: &Api<DynamicObject>, manager: &str, route: &Value) {
    let name = route["metadata"]["name"].as_str().unwrap();
    routes
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(route),
        )
        .await
        .unwrap_or_else(|e| panic!("applying HTTPRoute {name}: {e}"));
}

fn backends(route: &DynamicObject, rule: &str) -> Value {
    route.data["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == rule)
        .map(|r| r["backendRefs"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn two_existing_routes_move_all_or_nothing_and_a_failure_is_a_condition_and_an_event() {
    let RolloutTest {
        env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-two-routes").await;
    let gateway = Gateway::from_env();
    let routes = http_routes(&env.client, &ns.name);
    let first = user_route("first", &ns.name, &gateway, "main", "web-stable", "/a");
    // The second route's rule is named `other`, not `main` as the Rollout says.
    let second = user_route("second", &ns.name, &gateway, "other", "web-stable", "/b");
    apply_as(&routes, "user", &first).await;
    apply_as(&routes, "user", &second).await;
    let routing = json!({
        "services": {"stable": "web-stable", "canary": "web-canary"},
        "gatewayAPI": {"httpRoutes": [{"name": "first", "rule": "main"}, {"name": "second", "rule": "main"}]}
    });
    create_rollout(
        &api,
        routed("web", 2, json!([{"setWeight": 20}, {"pause": {}}]), routing),
    )
    .await;
    let degraded = wait_for_rollout(
        &api,
        "web",
        "Degraded: the router failed",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::Degraded),
    )
    .await;
    let status = status_of(&degraded);
    let message = status.message.unwrap();
    assert!(
        message.contains("HTTPRoute second") && message.contains("\"main\""),
        "{message}"
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "RouterFailed")
    );
    // All or nothing: the first route was put back exactly. (Each retry writes it and puts it
    // back again, so a read may land in between: wait for the put-back state.)
    let original =
        json!([{"group": "", "kind": "Service", "name": "web-stable", "port": 8080, "weight": 1}]);
    eventually("the first route put back", Duration::from_secs(10), || {
        let routes = routes.clone();
        let original = original.clone();
        async move {
            let stored = routes.get("first").await.ok()?;
            (backends(&stored, "main") == original).then_some(())
        }
    })
    .await;
    // And the failure is an Event, not only a log line.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &ns.name);
    eventually("a RouterFailed Event", Duration::from_secs(30), || {
        let events = events.clone();
        async move {
            let list = events.list(&Default::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("RouterFailed"))
        }
    })
    .await;

    // Fixing the second route lets both move together.
    let fixed = user_route("second", &ns.name, &gateway, "main", "web-stable", "/b");
    apply_as(&routes, "user", &fixed).await;
    healthy(&api, "web").await;
    roll_out(&api, "web", "web:2", json!({})).await;
    at_verified_step(&api, "web", 1).await;
    for name in ["first", "second"] {
        let stored = routes.get(name).await.unwrap();
        let weights: Vec<(String, i64)> = backends(&stored, "main")
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["name"].as_str().unwrap().to_string(),
                    b["weight"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            weights,
            [
                ("web-stable".to_string(), 80),
                ("web-canary".to_string(), 20)
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_header_route_reaches_only_requests_with_the_header() {
    let RolloutTest {
        env: _env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-header").await;
    let gateway = Gateway::from_env();
    let _fleet = Fleet::start(&ns.name, &["--serve-pods"]).await;
    let steps = json!([
        {"setHeaderRoute": {"name": "testers", "match": [{"headerName": "x-canary", "value": "1"}]}},
        {"pause": {}}
    ]);
    create_rollout(
        &api,
        routed(
            "web",
            2,
            steps,
            managed("web", &ns.name, gateway.parent_ref()),
        ),
    )
    .await;
    healthy(&api, "web").await;
    roll_out(&api, "web", "web:2", json!({})).await;
    let rollout = at_verified_step(&api, "web", 1).await;
    let status = status_of(&rollout);
    assert_eq!(
        status.traffic.as_ref().unwrap().header_route.as_deref(),
        Some("testers")
    );
    let (canary, stable) = (
        status.canary_revision.unwrap(),
        status.stable_revision.unwrap(),
    );
    settled(&gateway, &host(&ns.name), &["x-canary: 1"], &canary).await;
    let with = load(&gateway, &host(&ns.name), &["x-canary: 1"], 100, 2).await;
    assert!(
        with.responses >= 190 && with.of(&canary) == with.responses,
        "with the header: {with:?}"
    );
    let without = load(&gateway, &host(&ns.name), &["x-canary: 2"], 100, 2).await;
    assert!(
        without.responses >= 190 && without.of(&stable) == without.responses,
        "without it: {without:?}"
    );
}

#[tokio::test]
async fn a_rollback_moves_traffic_to_stable_before_the_canary_shrinks() {
    let RolloutTest {
        env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-rollback").await;
    let gateway = Gateway::from_env();
    let _fleet = Fleet::start(&ns.name, &["--serve-pods"])
        .await
        .scraped_by(&env, &ns.name);
    let mut body = routed(
        "web",
        4,
        json!([{"setWeight": 25}, {"pause": {}}]),
        managed("web", &ns.name, gateway.parent_ref()),
    );
    body["spec"]["strategy"]["canary"]["abortScaleDownDelaySeconds"] = json!(5);
    // Judged on the real requests the gateway sends: the simulator counts what it answers.
    body["spec"]["analysis"] = json!({
        "interval": "5s",
        "confidence": 0.99,
        "metrics": [{"name": "http-errors", "errorRate": {
            "prometheus": {"address": env.prometheus_url, "errors": crate::analysis::ERRORS, "total": crate::analysis::TOTAL},
            "maxRatio": 2.0
        }}]
    });
    body["spec"]["killSwitch"] =
        json!({"configMap": {"name": "flags", "key": "new-checkout", "value": "off"}});
    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), &ns.name);
    configmaps
        .create(
            &Default::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "flags"}, "data": {"new-checkout": "on"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    create_rollout(&api, body).await;
    healthy(&api, "web").await;
    let background = BackgroundLoad::start(&gateway, &host(&ns.name), 200, 120).await;
    // The new version fails half its requests.
    roll_out(
        &api,
        "web",
        "web:2",
        json!({"sim.firebreak.dev/error-rate": "0.5"}),
    )
    .await;
    let at_step = at_verified_step(&api, "web", 1).await;
    let (canary, stable) = {
        let s = status_of(&at_step);
        (s.canary_revision.unwrap(), s.stable_revision.unwrap())
    };
    // The failing look decides the rollback: watch for it closely, to time it from the outside.
    let started = std::time::Instant::now();
    let (rolled_back, decided) = loop {
        let r = api.get("web").await.unwrap();
        if phase(&r) == Some(Phase::RolledBack) {
            break (r, k8s_openapi::jiff::Timestamp::now());
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "never rolled back: {:?}",
            status_of(&r).message
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = status_of(&rolled_back).rollback_reason.unwrap_or_default();
    assert!(reason.contains("analysis failed"), "{reason}");
    let incidents: Api<Incident> = Api::namespaced(env.client.clone(), &ns.name);
    let name = status_of(&rolled_back).incident.unwrap();
    let incident = eventually(
        "the Incident with its mitigation",
        Duration::from_secs(30),
        || {
            let incidents = incidents.clone();
            let name = name.clone();
            async move {
                let i = incidents.get_opt(&name).await.ok()??;
                i.spec
                    .mitigation
                    .iter()
                    .any(|m| m.action == "CanaryScaledDown")
                    .then_some(i)
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
    let position = |a: &str| {
        actions
            .iter()
            .position(|x| *x == a)
            .unwrap_or_else(|| panic!("no {a} in {actions:?}"))
    };
    assert!(
        position("TrafficToStable") < position("CanaryScaledDown"),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .take(position("TrafficToStable"))
            .any(|a| a.starts_with("KillSwitch") || a.contains("Flag")),
        "the kill switch comes first: {actions:?}"
    );
    let times: Vec<_> = incident.spec.mitigation.iter().map(|m| m.time.0).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times in order: {times:?}"
    );
    eprintln!(
        "measured: {}",
        incident.spec.mitigation[position("TrafficToStable")].detail
    );
    // The status (read above as soon as it said RolledBack) is written after the act phase, so
    // after the gateway confirmed all traffic on stable; allow one report for its data plane.
    let traffic_at = decided;
    // At the gateway: from the rollback on, every request reached stable.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reports = background.reports.lock().unwrap().clone();
    let after: Vec<_> = reports.iter().filter(|(t, _)| *t > traffic_at).collect();
    assert!(
        after.len() >= 4,
        "reports after the switch: {}",
        after.len()
    );
    for (_, report) in after.iter().skip(2) {
        assert_eq!(
            BackgroundLoad::responses_of(report, &canary),
            0,
            "canary still served after the switch: {report}"
        );
        assert!(
            BackgroundLoad::responses_of(report, &stable) > 0,
            "{report}"
        );
    }
    let before: u64 = reports
        .iter()
        .filter(|(t, _)| *t < traffic_at)
        .map(|(_, r)| BackgroundLoad::responses_of(r, &canary))
        .sum();
    assert!(before > 0, "the canary served before the rollback");
}

#[tokio::test]
async fn a_gitops_reapply_of_an_existing_route_is_undone_and_named_while_a_managed_route_has_nothing_to_undo()
 {
    let RolloutTest {
        env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-gitops").await;
    let gateway = Gateway::from_env();
    let routes = http_routes(&env.client, &ns.name);
    let route = user_route("shop", &ns.name, &gateway, "main", "web-stable", "/");
    apply_as(&routes, "argocd-controller", &route).await;
    let routing = json!({
        "services": {"stable": "web-stable", "canary": "web-canary"},
        "gatewayAPI": {"httpRoutes": [{"name": "shop", "rule": "main"}]}
    });
    create_rollout(
        &api,
        routed("web", 2, json!([{"setWeight": 30}, {"pause": {}}]), routing),
    )
    .await;
    healthy(&api, "web").await;
    roll_out(&api, "web", "web:2", json!({})).await;
    at_verified_step(&api, "web", 1).await;
    // A sync puts Git's version back: all traffic to stable.
    apply_as(&routes, "argocd-controller", &route).await;
    let restored = eventually("the weights put back", Duration::from_secs(30), || {
        let routes = routes.clone();
        async move {
            let stored = routes.get("shop").await.ok()?;
            let canary = backends(&stored, "main")
                .as_array()?
                .iter()
                .find(|b| b["name"] == "web-canary")?["weight"]
                .as_i64()?;
            (canary == 30).then_some(stored)
        }
    })
    .await;
    assert!(
        backends(&restored, "main")
            .to_string()
            .contains("web-stable")
    );
    let rollout = api.get("web").await.unwrap();
    let entry = status_of(&rollout)
        .timeline
        .into_iter()
        .find(|e| e.reason.as_str() == "TrafficChanged")
        .expect("a TrafficChanged entry");
    assert!(
        entry.message.contains("argocd-controller"),
        "{}",
        entry.message
    );

    // Managed mode: the Rollout is all GitOps owns; applying it again changes nothing.
    let managed_api: Api<Rollout> = api.clone();
    let ns2 = env.namespace("gateway-gitops-managed").await;
    let _c2 = crate::support::ControllerProcess::start(&ns2.name);
    let api2: Api<Rollout> = Api::namespaced(env.client.clone(), &ns2.name);
    let body = routed(
        "web",
        2,
        json!([{"setWeight": 30}, {"pause": {}}]),
        managed("web", &ns2.name, gateway.parent_ref()),
    );
    api2.patch(
        "web",
        &PatchParams::apply("argocd-controller"),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
    healthy(&api2, "web").await;
    let mut next = body.clone();
    next["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    api2.patch(
        "web",
        &PatchParams::apply("argocd-controller"),
        &Patch::Apply(&next),
    )
    .await
    .unwrap();
    at_verified_step(&api2, "web", 1).await;
    let route2 = http_routes(&env.client, &ns2.name);
    let before = route2.get("web").await.unwrap();
    api2.patch(
        "web",
        &PatchParams::apply("argocd-controller"),
        &Patch::Apply(&next),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = route2.get("web").await.unwrap();
    assert_eq!(
        before.metadata.generation, after.metadata.generation,
        "the sync changed nothing"
    );
    assert_eq!(backends(&after, "main"), backends(&before, "main"));
    let rollout = api2.get("web").await.unwrap();
    assert!(
        !status_of(&rollout)
            .timeline
            .iter()
            .any(|e| e.reason.as_str() == "TrafficChanged")
    );
    drop(managed_api);
}

#[tokio::test]
async fn without_a_router_traffic_through_the_gateway_follows_the_pods() {
    let RolloutTest {
        env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-replicas").await;
    let gateway = Gateway::from_env();
    let _fleet = Fleet::start(&ns.name, &["--serve-pods"]).await;
    // The user's one Service over all of the Rollout's pods, and the user's route to it.
    let services: Api<Service> = Api::namespaced(env.client.clone(), &ns.name);
    services
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 8080}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let routes = http_routes(&env.client, &ns.name);
    apply_as(
        &routes,
        "user",
        &user_route("web", &ns.name, &gateway, "main", "web", "/"),
    )
    .await;
    let body = routed(
        "web",
        4,
        json!([{"setWeight": 25}, {"pause": {}}]),
        json!(null),
    );
    create_rollout(&api, body).await;
    healthy(&api, "web").await;
    roll_out(&api, "web", "web:2", json!({})).await;
    let rollout = wait_for_rollout(
        &api,
        "web",
        "the 25% step done",
        Duration::from_secs(60),
        |r| {
            status_of(r).current_step_index == Some(1)
                && status_of(r).canary_available_replicas == 1
        },
    )
    .await;
    let status = status_of(&rollout);
    assert!(status.traffic.is_none(), "no router, no traffic status");
    let canary = status.canary_revision.unwrap();
    // One canary pod of four: the Service spreads requests over pods, so a quarter of them.
    eventually(
        "three stable pods and one canary pod",
        Duration::from_secs(30),
        || {
            let api = api.clone();
            async move {
                let s = status_of(&api.get("web").await.ok()?);
                (s.stable_available_replicas == 3).then_some(())
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served = load(&gateway, &host(&ns.name), &[], 250, 4).await;
    let share = served.percent(&canary);
    eprintln!(
        "measured: replica-weighted 25% (1 of 4 pods) -> canary {share:.2}% of {} requests",
        served.responses
    );
    assert!((share - 25.0).abs() <= 2.0, "{served:?}");
}

#[tokio::test]
async fn during_a_routed_bake_the_previous_revision_serves_its_slice_then_nothing() {
    let RolloutTest {
        env: _env,
        ns,
        controller: _c,
        api,
    } = RolloutTest::start("gateway-bake").await;
    let gateway = Gateway::from_env();
    let _fleet = Fleet::start(&ns.name, &["--serve-pods"]).await;
    let mut body = routed(
        "web",
        4,
        json!([{"setWeight": 50}]),
        managed("web", &ns.name, gateway.parent_ref()),
    );
    body["spec"]["bake"] = json!({"duration": "20s"});
    create_rollout(&api, body).await;
    let first = status_of(&healthy(&api, "web").await)
        .stable_revision
        .unwrap();
    roll_out(&api, "web", "web:2", json!({})).await;
    let baking = wait_for_rollout(
        &api,
        "web",
        "a verified bake",
        Duration::from_secs(60),
        |r| {
            let s = status_of(r);
            s.bake.is_some()
                && s.traffic
                    .as_ref()
                    .is_some_and(|t| t.verified && t.weights.canary == 20)
        },
    )
    .await;
    let second = status_of(&baking).stable_revision.unwrap();
    assert_ne!(first, second);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served = load(&gateway, &host(&ns.name), &[], 250, 2).await;
    let slice = served.percent(&first);
    eprintln!(
        "measured: bake slice of 1 pod next to 4 -> previous revision {slice:.2}% of {} requests",
        served.responses
    );
    assert!((slice - 20.0).abs() <= 2.0, "{served:?}");
    wait_for_rollout(
        &api,
        "web",
        "the bake completed",
        Duration::from_secs(60),
        |r| {
            status_of(r).bake.is_none()
                && status_of(r)
                    .traffic
                    .as_ref()
                    .is_some_and(|t| t.verified && t.weights.canary == 0)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served = load(&gateway, &host(&ns.name), &[], 250, 2).await;
    assert_eq!(
        served.of(&second),
        served.responses,
        "after the bake: {served:?}"
    );
}
