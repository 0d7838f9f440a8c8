use serde_json::json;

use super::*;
use crate::api::HeaderMatchType;

fn services(baseline: bool) -> RoutingServices {
    RoutingServices {
        stable: "web-stable".into(),
        canary: "web-canary".into(),
        baseline: baseline.then(|| "web-baseline".into()),
    }
}

fn rules() -> Value {
    json!([
        {"name": "main", "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"name": "web-stable", "port": 8080}]},
        {"name": "other", "backendRefs": [{"name": "elsewhere", "port": 80}]}
    ])
}

fn weights(canary: i32) -> TrafficWeights {
    TrafficWeights::for_canary(canary, false)
}

#[test]
fn weighted_backends_copy_the_stable_backend() {
    let out = fill(
        &rules(),
        RuleSelector::NamingStable,
        &services(false),
        weights(5),
        None,
    )
    .unwrap();
    assert_eq!(
        out[0]["backendRefs"],
        json!([
            {"name": "web-stable", "port": 8080, "weight": 95},
            {"name": "web-canary", "port": 8080, "weight": 5}
        ])
    );
    assert_eq!(
        out[1],
        rules()[1],
        "a rule that does not name the stable is untouched"
    );
    assert_eq!(out[0]["matches"], rules()[0]["matches"]);
}

#[test]
fn filling_again_changes_nothing_and_reads_back() {
    let s = services(true);
    let w = TrafficWeights::for_canary(20, true);
    let once = fill(&rules(), RuleSelector::Named("main"), &s, w, None).unwrap();
    let twice = fill(&once, RuleSelector::Named("main"), &s, w, None).unwrap();
    assert_eq!(once, twice);
    assert_eq!(
        carried(&once, RuleSelector::Named("main"), &s),
        Some((w, None))
    );
    assert_eq!(
        w,
        TrafficWeights {
            stable: 60,
            canary: 20,
            baseline: 20
        }
    );
}

#[test]
fn other_backends_of_the_rule_are_kept() {
    let mut r = rules();
    r[0]["backendRefs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "mirror", "port": 9000, "weight": 0}));
    let out = fill(
        &r,
        RuleSelector::Named("main"),
        &services(false),
        weights(50),
        None,
    )
    .unwrap();
    let names: Vec<_> = out[0]["backendRefs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mirror", "web-stable", "web-canary"]);
}

#[test]
fn a_missing_rule_or_stable_backend_is_named() {
    let s = services(false);
    assert_eq!(
        fill(&rules(), RuleSelector::Named("nope"), &s, weights(1), None),
        Err(RuleError::NoSuchRule("nope".into()))
    );
    let err = fill(&rules(), RuleSelector::Named("other"), &s, weights(1), None).unwrap_err();
    assert!(
        err.to_string().contains("\"other\"") && err.to_string().contains("web-stable"),
        "{err}"
    );
    let none = json!([{"name": "x", "backendRefs": [{"name": "a", "port": 1}]}]);
    assert!(matches!(
        fill(&none, RuleSelector::NamingStable, &s, weights(1), None),
        Err(RuleError::NoStableBackend { rule: None, .. })
    ));
    assert_eq!(
        fill(&json!({}), RuleSelector::NamingStable, &s, weights(1), None),
        Err(RuleError::NoRules)
    );
}

#[test]
fn a_header_route_goes_first_and_only_to_the_canary() {
    let matches = [HeaderMatch {
        header_name: "x-canary".into(),
        value: "1".into(),
        match_type: HeaderMatchType::Exact,
    }];
    let header = HeaderRule {
        name: "testers",
        matches: &matches,
    };
    let s = services(false);
    let out = fill(
        &rules(),
        RuleSelector::Named("main"),
        &s,
        weights(0),
        Some(header),
    )
    .unwrap();
    assert_eq!(out.as_array().unwrap().len(), 3);
    assert_eq!(
        out[0],
        json!({
            "name": "firebreak-header-testers.main",
            "matches": [{"path": {"type": "PathPrefix", "value": "/"},
                         "headers": [{"type": "Exact", "name": "x-canary", "value": "1"}]}],
            "backendRefs": [{"name": "web-canary", "port": 8080}]
        })
    );
    assert_eq!(
        carried(&out, RuleSelector::Named("main"), &s),
        Some((weights(0), Some("testers".into())))
    );
    // The next step without a header route removes it.
    let removed = fill(&out, RuleSelector::Named("main"), &s, weights(10), None).unwrap();
    assert_eq!(removed.as_array().unwrap().len(), 2);
    assert_eq!(
        carried(&removed, RuleSelector::Named("main"), &s),
        Some((weights(10), None))
    );
}

#[test]
fn disagreeing_rules_carry_nothing_definite() {
    let two = json!([
        {"backendRefs": [{"name": "web-stable", "weight": 90}, {"name": "web-canary", "weight": 10}]},
        {"backendRefs": [{"name": "web-stable", "weight": 50}, {"name": "web-canary", "weight": 50}]}
    ]);
    assert_eq!(
        carried(&two, RuleSelector::NamingStable, &services(false)),
        None
    );
    // A backend without a weight counts 1 (Gateway API's default); a missing one counts 0.
    let plain = json!([{"name": "main", "backendRefs": [{"name": "web-stable"}]}]);
    assert_eq!(
        carried(&plain, RuleSelector::Named("main"), &services(false)),
        Some((
            TrafficWeights {
                stable: 1,
                canary: 0,
                baseline: 0
            },
            None
        ))
    );
}

fn route(generation: i64, conditions: Value) -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "shop", "generation": generation},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}]},
        "status": {"parents": [{
            "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw", "namespace": "infra"},
            "controllerName": "example.com/gateway",
            "conditions": conditions
        }]}
    })
}

fn condition(kind: &str, status: &str, generation: i64) -> Value {
    json!({"type": kind, "status": status, "reason": kind, "message": "m", "observedGeneration": generation})
}

#[test]
fn a_route_is_accepted_only_when_every_parent_took_this_generation() {
    let good = route(
        3,
        json!([
            condition("Accepted", "True", 3),
            condition("ResolvedRefs", "True", 3)
        ]),
    );
    assert_eq!(accepted(&good), Ok(()));

    let stale = route(
        4,
        json!([
            condition("Accepted", "True", 3),
            condition("ResolvedRefs", "True", 3)
        ]),
    );
    let err = accepted(&stale).unwrap_err();
    assert!(
        err.contains("infra/gw") && err.contains("generation 4"),
        "{err}"
    );

    let refused = route(
        3,
        json!([
            condition("Accepted", "True", 3),
            condition("ResolvedRefs", "False", 3)
        ]),
    );
    let err = accepted(&refused).unwrap_err();
    assert!(err.contains("ResolvedRefs=False"), "{err}");

    let missing = route(3, json!([condition("Accepted", "True", 3)]));
    assert!(accepted(&missing).unwrap_err().contains("no ResolvedRefs"));

    let mut unknown_parent = good.clone();
    unknown_parent["spec"]["parentRefs"] = json!([{"name": "other"}]);
    assert!(
        accepted(&unknown_parent)
            .unwrap_err()
            .contains("shop/other has not reported")
    );

    let mut orphan = good;
    orphan["spec"]["parentRefs"] = json!([]);
    assert!(
        accepted(&orphan)
            .unwrap_err()
            .contains("no spec.parentRefs")
    );
}
