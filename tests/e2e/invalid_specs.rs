//! Every bad spec is refused: what the CRD schema and its CEL rules can catch is rejected by the
//! API server with a message naming the field and the fix; what only the controller can catch
//! makes the Rollout Degraded before any ReplicaSet exists, and holds a later revision back.

use std::time::Duration;

use firebreak::api::{Phase, ROLLOUT_LABEL, Rollout};
use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use crate::support::{RolloutTest, create_rollout, phase, rollout_body, wait_for_rollout};

/// What must happen to a Rollout with an invalid spec.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// The API server refuses to store it; its message contains both strings: the field and the
    /// fix.
    Rejected(&'static str, &'static str),
    /// It is stored, the controller marks it Degraded with a message containing this, and no
    /// ReplicaSet is ever created for it.
    Degraded(&'static str),
}

/// One invalid spec class.
struct Row {
    /// What is wrong, for the failure report.
    what: &'static str,
    /// Turns the valid body into the invalid one.
    mutate: fn(&mut Value),
    expect: Outcome,
}

/// A valid Rollout named `name`, with every block the rows break: steps with a timed pause,
/// analysis, bake, max duration, windows and notifications.
fn valid_body(name: &str) -> Value {
    let mut body = rollout_body(
        name,
        2,
        "registry.example/web:1",
        json!([{"setWeight": 50}, {"pause": {"duration": "30s"}}]),
    );
    let spec = &mut body["spec"];
    spec["strategy"]["canary"]["maxDuration"] = json!("1h");
    spec["analysis"] = json!({
        "interval": "30s",
        "metrics": [
            {"name": "errors", "errorRate": {"prometheus": {
                "address": "http://127.0.0.1:1",
                "errors": r#"sum(increase(e{namespace="{{namespace}}",h="{{revision}}"}[{{interval}}]))"#,
                "total": r#"sum(increase(t{namespace="{{namespace}}",h="{{revision}}"}[{{interval}}]))"#}}},
            {"name": "crashes", "crashRate": {}}
        ]
    });
    spec["bake"] = json!({"duration": "10m"});
    spec["windows"] = json!({
        "timeZone": "Europe/Berlin",
        "allow": [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "start": "00:00", "end": "24:00"}],
        "deny": [{"from": "2020-12-20T00:00:00", "to": "2021-01-04"}]
    });
    spec["notifications"] = json!([
        {"name": "oncall", "webhook": {"format": "slack", "urlFrom": {"secretKeyRef": {"name": "hooks", "key": "slack"}}}}
    ]);
    body
}

fn routing(body: &mut Value, routing: Value) {
    body["spec"]["strategy"]["canary"]["trafficRouting"] = routing;
}
fn pause(body: &mut Value, duration: &str) {
    body["spec"]["strategy"]["canary"]["steps"][1]["pause"]["duration"] = json!(duration);
}
fn interval(body: &mut Value, duration: &str) {
    body["spec"]["analysis"]["interval"] = json!(duration);
}
fn bake(body: &mut Value, duration: &str) {
    body["spec"]["bake"]["duration"] = json!(duration);
}
fn max_duration(body: &mut Value, duration: &str) {
    body["spec"]["strategy"]["canary"]["maxDuration"] = json!(duration);
}

/// The message of every duration that is zero, empty or absurd.
const DURATION_FIX: &str = "must be a duration from 1s to 8760h";
/// Larger than `u64::MAX` nanoseconds, let alone a year.
const HUGE: &str = "18446744073709551615s";

fn rows() -> Vec<Row> {
    use Outcome::{Degraded, Rejected};
    const PAUSE: &str = "spec.strategy.canary.steps[1].pause.duration";
    const INTERVAL: &str = "spec.analysis.interval";
    const BAKE: &str = "spec.bake.duration";
    const MAX_DURATION: &str = "spec.strategy.canary.maxDuration";
    vec![
        Row {
            what: "zero pause",
            mutate: |b| pause(b, "0s"),
            expect: Rejected(PAUSE, DURATION_FIX),
        },
        Row {
            what: "empty pause",
            mutate: |b| pause(b, ""),
            expect: Rejected(PAUSE, DURATION_FIX),
        },
        Row {
            what: "huge pause",
            mutate: |b| pause(b, HUGE),
            expect: Rejected(PAUSE, DURATION_FIX),
        },
        Row {
            what: "pause over a year",
            mutate: |b| pause(b, "8761h"),
            expect: Rejected(PAUSE, DURATION_FIX),
        },
        Row {
            what: "zero interval",
            mutate: |b| interval(b, "0s"),
            expect: Rejected(INTERVAL, DURATION_FIX),
        },
        Row {
            what: "empty interval",
            mutate: |b| interval(b, ""),
            expect: Rejected(INTERVAL, DURATION_FIX),
        },
        Row {
            what: "huge interval",
            mutate: |b| interval(b, HUGE),
            expect: Rejected(INTERVAL, DURATION_FIX),
        },
        Row {
            what: "interval under 5s",
            mutate: |b| interval(b, "3s"),
            expect: Rejected(INTERVAL, "must be at least 5s"),
        },
        Row {
            what: "zero bake",
            mutate: |b| bake(b, "0s"),
            expect: Rejected(BAKE, DURATION_FIX),
        },
        Row {
            what: "empty bake",
            mutate: |b| bake(b, ""),
            expect: Rejected(BAKE, DURATION_FIX),
        },
        Row {
            what: "huge bake",
            mutate: |b| bake(b, HUGE),
            expect: Rejected(BAKE, DURATION_FIX),
        },
        Row {
            what: "zero maxDuration",
            mutate: |b| max_duration(b, "0s"),
            expect: Rejected(MAX_DURATION, DURATION_FIX),
        },
        Row {
            what: "empty maxDuration",
            mutate: |b| max_duration(b, ""),
            expect: Rejected(MAX_DURATION, DURATION_FIX),
        },
        Row {
            what: "huge maxDuration",
            mutate: |b| max_duration(b, HUGE),
            expect: Rejected(MAX_DURATION, DURATION_FIX),
        },
        Row {
            what: "step with both setWeight and pause",
            mutate: |b| {
                b["spec"]["strategy"]["canary"]["steps"][0]["pause"] = json!({"duration": "1m"});
            },
            expect: Rejected(
                "spec.strategy.canary.steps[0]",
                "each step sets exactly one of setWeight, pause, setCanaryScale or setHeaderRoute",
            ),
        },
        Row {
            what: "name of 64 characters",
            mutate: |b| b["metadata"]["name"] = json!("n".repeat(64)),
            expect: Rejected(
                "metadata.name must be at most 63 characters",
                "choose a shorter name",
            ),
        },
        Row {
            what: "unknown PromQL template variable",
            mutate: |b| {
                b["spec"]["analysis"]["metrics"][0]["errorRate"]["prometheus"]["errors"] =
                    json!(r#"sum(increase(e{h="{{revison}}"}[{{interval}}]))"#);
            },
            expect: Rejected(
                "spec.analysis.metrics[0].errorRate.prometheus.errors",
                "unknown template variable {{revison}}; the variables are {{revision}}",
            ),
        },
        Row {
            what: "duplicate metric names",
            mutate: |b| b["spec"]["analysis"]["metrics"][1]["name"] = json!("errors"),
            expect: Rejected(
                "spec.analysis.metrics",
                "two metrics have the same name; give each metric its own name",
            ),
        },
        Row {
            what: "duplicate notification names",
            mutate: |b| {
                let first = b["spec"]["notifications"][0].clone();
                b["spec"]["notifications"]
                    .as_array_mut()
                    .unwrap()
                    .push(first);
            },
            expect: Rejected(
                "spec.notifications",
                "two notifications have the same name; give each notification its own name",
            ),
        },
        Row {
            what: "unknown webhook format",
            mutate: |b| b["spec"]["notifications"][0]["webhook"]["format"] = json!("teams"),
            expect: Rejected(
                "spec.notifications[0].webhook.format",
                r#"supported values: "slack", "json""#,
            ),
        },
        Row {
            what: "misspelt window day",
            mutate: |b| b["spec"]["windows"]["allow"][0]["days"][2] = json!("Wednesday"),
            expect: Rejected("spec.windows.allow[0].days[2]", r#""Mon", "Tue", "Wed""#),
        },
        Row {
            what: "window without days",
            mutate: |b| b["spec"]["windows"]["allow"][0]["days"] = json!([]),
            expect: Rejected("spec.windows.allow[0].days", "at least 1 items"),
        },
        Row {
            what: "window start equal to end",
            mutate: |b| b["spec"]["windows"]["allow"][0]["end"] = json!("00:00"),
            expect: Rejected(
                "spec.windows.allow[0].end",
                "for a whole day write start 00:00 and end 24:00",
            ),
        },
        Row {
            what: "window start not HH:MM",
            mutate: |b| b["spec"]["windows"]["allow"][0]["start"] = json!("9am"),
            expect: Rejected("spec.windows.allow[0].start", "should match"),
        },
        Row {
            what: "freeze from that does not parse",
            mutate: |b| b["spec"]["windows"]["deny"][0]["from"] = json!("next monday"),
            expect: Rejected(
                "spec.windows.deny[0].from",
                "must be a local date-time such as 2026-12-20T00:00:00",
            ),
        },
        Row {
            what: "freeze to with an offset",
            mutate: |b| b["spec"]["windows"]["deny"][0]["to"] = json!("2021-01-04T00:00:00Z"),
            expect: Rejected("spec.windows.deny[0].to", "without offset or zone"),
        },
        Row {
            what: "freeze to before from",
            mutate: |b| b["spec"]["windows"]["deny"][0]["to"] = json!("2020-12-19T23:59"),
            expect: Rejected("spec.windows.deny[0].to", "to must be after from"),
        },
        Row {
            what: "freeze to equal to from, written differently",
            mutate: |b| b["spec"]["windows"]["deny"][0]["to"] = json!("2020-12-20"),
            expect: Rejected("spec.windows.deny[0].to", "to must be after from"),
        },
        Row {
            what: "time zone that is not a zone name",
            mutate: |b| b["spec"]["windows"]["timeZone"] = json!("Europe Berlin"),
            expect: Rejected(
                "spec.windows.timeZone",
                "must be an IANA time zone name such as Europe/Berlin",
            ),
        },
        // Traffic routing.
        Row {
            what: "a router without services",
            mutate: |b| {
                routing(
                    b,
                    json!({"gatewayAPI": {"httpRoutes": [{"name": "r", "rule": "main"}]}}),
                )
            },
            expect: Rejected(
                "spec.strategy.canary.trafficRouting.services",
                "Required value",
            ),
        },
        Row {
            what: "trafficRouting without a router",
            mutate: |b| routing(b, json!({"services": {"stable": "s", "canary": "c"}})),
            expect: Rejected(
                "spec.strategy.canary.trafficRouting",
                "set trafficRouting.gatewayAPI",
            ),
        },
        Row {
            what: "both route modes at once",
            mutate: |b| {
                routing(
                    b,
                    json!({"services": {"stable": "s", "canary": "c"}, "gatewayAPI": {
                    "httpRoute": {"spec": {"rules": [{"backendRefs": [{"name": "s", "port": 80}]}]}},
                    "httpRoutes": [{"name": "r", "rule": "main"}]}}),
                );
            },
            expect: Rejected(
                "spec.strategy.canary.trafficRouting.gatewayAPI",
                "set exactly one of httpRoute",
            ),
        },
        Row {
            what: "a baseline without a baseline Service",
            mutate: |b| {
                routing(
                    b,
                    json!({"services": {"stable": "s", "canary": "c"}, "gatewayAPI": {"httpRoutes": [{"name": "r", "rule": "main"}]}}),
                );
                b["spec"]["strategy"]["canary"]["baseline"] = json!(true);
            },
            expect: Rejected(
                "spec.strategy.canary",
                "needs trafficRouting.services.baseline",
            ),
        },
        Row {
            what: "setCanaryScale without a router",
            mutate: |b| {
                b["spec"]["strategy"]["canary"]["steps"][0] =
                    json!({"setCanaryScale": {"replicas": 1}})
            },
            expect: Rejected("spec.strategy.canary", "need a traffic router"),
        },
        Row {
            what: "a step with two kinds",
            mutate: |b| {
                b["spec"]["strategy"]["canary"]["steps"][0] =
                    json!({"setWeight": 5, "setHeaderRoute": {"name": "t", "match": []}})
            },
            expect: Rejected(
                "spec.strategy.canary.steps[0]",
                "exactly one of setWeight, pause, setCanaryScale or setHeaderRoute",
            ),
        },
        Row {
            what: "a canary scale over 100%",
            mutate: |b| {
                routing(
                    b,
                    json!({"services": {"stable": "s", "canary": "c"}, "gatewayAPI": {"httpRoutes": [{"name": "r", "rule": "main"}]}}),
                );
                b["spec"]["strategy"]["canary"]["steps"][0] =
                    json!({"setCanaryScale": {"weight": 150}});
            },
            expect: Rejected(
                "spec.strategy.canary.steps[0].setCanaryScale.weight",
                "less than or equal to 100",
            ),
        },
        Row {
            what: "a managed route whose rules do not name the stable Service",
            mutate: |b| {
                routing(
                    b,
                    json!({"services": {"stable": "s", "canary": "c"}, "gatewayAPI": {
                    "httpRoute": {"spec": {"rules": [{"backendRefs": [{"name": "other", "port": 80}]}]}}}}),
                );
            },
            expect: Degraded(
                "spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute.spec.rules: no rule has a backendRef naming the stable Service s",
            ),
        },
        // What only the controller can catch.
        Row {
            what: "unknown time zone",
            mutate: |b| b["spec"]["windows"]["timeZone"] = json!("Mars/Olympus_Mons"),
            expect: Degraded(
                r#"spec.windows.timeZone "Mars/Olympus_Mons" is not an IANA time zone"#,
            ),
        },
        Row {
            what: "freeze date not in the calendar",
            mutate: |b| {
                b["spec"]["windows"]["deny"][0] = json!({"from": "2021-02-30", "to": "2021-03-04"});
            },
            expect: Degraded(
                r#"spec.windows.deny[0].from "2021-02-30" is not a local civil date-time"#,
            ),
        },
    ]
}

/// The Rollout's ReplicaSets (by the label the controller puts on them), by name.
async fn replica_sets(api: &Api<ReplicaSet>, rollout: &str) -> Vec<String> {
    let mut names: Vec<String> = api
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}={rollout}")))
        .await
        .expect("listing ReplicaSets")
        .items
        .iter()
        .map(|rs| rs.name_any())
        .collect();
    names.sort();
    names
}

/// Runs one row; `Err` says how the outcome differed.
async fn check(
    index: usize,
    row: &Row,
    dynamic: &Api<DynamicObject>,
    rollouts: &Api<Rollout>,
    replica_sets_api: &Api<ReplicaSet>,
) -> Result<(), String> {
    let mut body = valid_body(&format!("bad-{index}"));
    (row.mutate)(&mut body);
    let name = body["metadata"]["name"].as_str().unwrap().to_string();
    let object: DynamicObject = serde_json::from_value(body).expect("a Rollout object");
    let created = dynamic.create(&PostParams::default(), &object).await;
    match (row.expect, created) {
        (Outcome::Rejected(field, fix), Err(kube::Error::Api(status))) => {
            eprintln!("{}: {}", row.what, status.message);
            if status.code == 422 && status.message.contains(field) && status.message.contains(fix)
            {
                Ok(())
            } else {
                Err(format!(
                    "rejected ({}), but the message does not contain {field:?} and {fix:?}: {}",
                    status.code, status.message
                ))
            }
        }
        (Outcome::Rejected(..), Err(e)) => Err(format!("failed with a non-API error: {e}")),
        (Outcome::Rejected(..), Ok(_)) => Err("accepted by the API server".into()),
        (Outcome::Degraded(_), Err(e)) => Err(format!("rejected by the API server: {e}")),
        (Outcome::Degraded(expected), Ok(_)) => {
            let degraded = tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    let rollout = rollouts.get(&name).await.expect("reading Rollout");
                    if phase(&rollout) == Some(Phase::Degraded) {
                        return rollout;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
            .await
            .map_err(|_| "not Degraded within 60 s".to_string())?;
            let message = degraded
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            eprintln!("{}: Degraded: {message}", row.what);
            if !message.contains(expected) {
                return Err(format!(
                    "Degraded, but status.message does not contain {expected:?}: {message:?}"
                ));
            }
            // Give a controller that would act after reporting the time to do so.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let owned = replica_sets(replica_sets_api, &name).await;
            if owned.is_empty() {
                Ok(())
            } else {
                Err(format!("Degraded, but ReplicaSets exist: {owned:?}"))
            }
        }
    }
}

#[tokio::test]
async fn every_invalid_spec_is_rejected_or_degraded_before_any_replica_set() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("invalid-specs").await;
    let dynamic: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &ns.name,
        &ApiResource::erase::<Rollout>(&()),
    );
    let replica_sets_api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns.name);

    // The body every row breaks is valid: it is stored and becomes Healthy.
    create_rollout(&api, valid_body("valid")).await;
    wait_for_rollout(
        &api,
        "valid",
        "the valid body Healthy",
        Duration::from_secs(60),
        |r| phase(r) == Some(Phase::Healthy),
    )
    .await;

    let rows = rows();
    let outcomes = futures::future::join_all(
        rows.iter()
            .enumerate()
            .map(|(i, row)| check(i, row, &dynamic, &api, &replica_sets_api)),
    )
    .await;
    let failures: Vec<String> = rows
        .iter()
        .zip(outcomes)
        .filter_map(|(row, outcome)| outcome.err().map(|e| format!("{}: {e}", row.what)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} invalid specs were not refused as expected:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn an_invalid_windows_block_holds_back_the_next_revision() {
    let RolloutTest {
        env,
        ns,
        controller: _controller,
        api,
    } = RolloutTest::start("invalid-windows-revision").await;
    let replica_sets_api: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &ns.name);
    create_rollout(
        &api,
        rollout_body(
            "web",
            2,
            "registry.example/web:1",
            json!([{"setWeight": 50}, {"pause": {"duration": "5s"}}]),
        ),
    )
    .await;
    let healthy = wait_for_rollout(&api, "web", "v1 Healthy", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Healthy)
    })
    .await;
    let stable = healthy.status.unwrap().stable_revision;
    let before = replica_sets(&replica_sets_api, "web").await;
    assert_eq!(before.len(), 1, "{before:?}");

    // One change: a new image and a windows block only the controller can find invalid.
    let patch = json!({"spec": {
        "windows": {"timeZone": "Mars/Olympus_Mons"},
        "template": {"spec": {"containers": [{"name": "app", "image": "registry.example/web:2"}]}}
    }});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("the API server stores it: only the controller knows the zone does not exist");
    let degraded = wait_for_rollout(&api, "web", "Degraded", Duration::from_secs(60), |r| {
        phase(r) == Some(Phase::Degraded)
    })
    .await;
    let status = degraded.status.unwrap();
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("spec.windows.timeZone")),
        "{:?}",
        status.message
    );

    // Longer than the step's pause: a canary let through would have its ReplicaSet by now.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = replica_sets(&replica_sets_api, "web").await;
    assert_eq!(after, before, "a ReplicaSet appeared for the new revision");
    let status = api.get("web").await.unwrap().status.unwrap();
    assert_eq!(status.phase, Some(Phase::Degraded));
    assert_eq!(status.canary_revision, None);
    assert_eq!(status.stable_revision, stable);
}
