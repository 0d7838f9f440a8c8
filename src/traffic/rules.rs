//! Pure edits and reads of Gateway API route rules (`HTTPRoute` and `GRPCRoute` alike: both have
//! `rules[].name`, `rules[].matches[].headers` and `rules[].backendRefs[]` of the same shape), as
//! JSON, so that every field Firebreak does not know about survives an edit unchanged.
//!
//! - [`fill`]: the weighted `backendRefs` of the rules that share traffic with the canary, and
//!   the header route's rule;
//! - [`carried`]: the weights a rule carries now;
//! - [`accepted`]: whether every parent Gateway has accepted the route's current generation.

use serde_json::{Map, Value, json};

use crate::api::{HeaderMatch, RoutingServices, TrafficWeights};

/// Prefix of the names of the rules Firebreak adds for a header route.
pub const HEADER_RULE_PREFIX: &str = "firebreak-header-";

/// Which rules of a route share their traffic with the canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSelector<'a> {
    /// Every rule with a `backendRef` naming the stable Service (a managed route).
    NamingStable,
    /// The rule with this `name` (an existing route).
    Named(&'a str),
}

/// A route rule edit that cannot be made; the message names the rule and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The rule named in the Rollout is not in the route.
    #[error(
        "has no rule named {0:?}; name the rule (HTTPRouteRule.name) or fix the rule in trafficRouting.gatewayAPI"
    )]
    NoSuchRule(String),
    /// No selected rule has a backendRef naming the stable Service.
    #[error("no rule{} has a backendRef naming the stable Service {stable}; add `backendRefs: [{{name: {stable}, port: ...}}]` to it", rule.as_ref().map(|r| format!(" {r:?}")).unwrap_or_default())]
    NoStableBackend {
        /// The rule looked at (None: all rules).
        rule: Option<String>,
        /// The stable Service's name.
        stable: String,
    },
    /// `spec.rules` is not a list.
    #[error("spec.rules is missing or not a list")]
    NoRules,
}

/// The header route to add: its rules are named `firebreak-header-<name>.<source rule>`.
#[derive(Clone, Copy, Debug)]
pub struct HeaderRule<'a> {
    /// The `setHeaderRoute` step's name.
    pub name: &'a str,
    /// Its header conditions.
    pub matches: &'a [HeaderMatch],
}

/// Returns `rules` (a route's `spec.rules` list) with the selected rules' backends set to
/// `weights` and the header route (if any) added in front of each selected rule; header rules of
/// an earlier step are removed.
///
/// In a selected rule the stable Service's `backendRef` is the prototype: the canary's (and
/// baseline's) `backendRef` is a copy with the Service's name, so ports, filters and other fields
/// carry over. Other `backendRefs` of the rule are left as they are. Weights are written as
/// percentages (a zero weight keeps the backend listed, receiving nothing).
///
/// # Errors
/// [`RuleError`] when the selected rule is missing or names no stable backend.
pub fn fill(
    rules: &Value,
    select: RuleSelector<'_>,
    services: &RoutingServices,
    weights: TrafficWeights,
    header: Option<HeaderRule<'_>>,
) -> Result<Value, RuleError> {
    let rules = rules.as_array().ok_or(RuleError::NoRules)?;
    let mut out = Vec::with_capacity(rules.len() + 1);
    let mut selected = 0;
    for (index, rule) in rules.iter().enumerate() {
        if rule_name(rule).is_some_and(|n| n.starts_with(HEADER_RULE_PREFIX)) {
            continue;
        }
        if !is_selected(rule, select, &services.stable) {
            out.push(rule.clone());
            continue;
        }
        let Some(prototype) = backend(rule, &services.stable).cloned() else {
            if let RuleSelector::Named(name) = select {
                return Err(RuleError::NoStableBackend {
                    rule: Some(name.to_string()),
                    stable: services.stable.clone(),
                });
            }
            out.push(rule.clone());
            continue;
        };
        selected += 1;
        if let Some(header) = header {
            out.push(header_rule(
                rule,
                index,
                &prototype,
                &services.canary,
                header,
            ));
        }
        out.push(weighted(rule, &prototype, services, weights));
    }
    if selected == 0 {
        return Err(match select {
            RuleSelector::Named(name) => RuleError::NoSuchRule(name.to_string()),
            RuleSelector::NamingStable => RuleError::NoStableBackend {
                rule: None,
                stable: services.stable.clone(),
            },
        });
    }
    Ok(Value::Array(out))
}

/// The weights the selected rules carry for the three Services (a missing backend counts 0, a
/// backend without `weight` counts 1, as Gateway API defines), and the header route's name if a
/// header rule is present. `None` when the selected rules disagree or none is found.
pub fn carried(
    rules: &Value,
    select: RuleSelector<'_>,
    services: &RoutingServices,
) -> Option<(TrafficWeights, Option<String>)> {
    let rules = rules.as_array()?;
    let header = rules.iter().find_map(|r| {
        rule_name(r)
            .and_then(|n| n.strip_prefix(HEADER_RULE_PREFIX))
            .map(|n| header_route_name(n).to_string())
    });
    let mut found: Option<TrafficWeights> = None;
    for rule in rules.iter().filter(|r| {
        !rule_name(r).is_some_and(|n| n.starts_with(HEADER_RULE_PREFIX))
            && is_selected(r, select, &services.stable)
    }) {
        let weight = |name: Option<&String>| -> i32 {
            name.and_then(|n| backend(rule, n)).map_or(0, |b| {
                b.get("weight").and_then(Value::as_i64).unwrap_or(1) as i32
            })
        };
        let here = TrafficWeights {
            stable: weight(Some(&services.stable)),
            canary: weight(Some(&services.canary)),
            baseline: weight(services.baseline.as_ref()),
        };
        match found {
            Some(previous) if previous != here => return None,
            _ => found = Some(here),
        }
    }
    found.map(|w| (w, header))
}

/// Whether every parent of `route` (its `spec.parentRefs`) reports `Accepted=True` and
/// `ResolvedRefs=True` for the route's current `metadata.generation`.
///
/// # Errors
/// A sentence naming the parent and the condition that is missing, false or stale.
pub fn accepted(route: &Value) -> Result<(), String> {
    let generation = route
        .pointer("/metadata/generation")
        .and_then(Value::as_i64);
    let namespace = route
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parents = route
        .pointer("/spec/parentRefs")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "has no spec.parentRefs, so no Gateway serves it".to_string())?;
    let statuses = route
        .pointer("/status/parents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for parent in parents {
        let key = parent_key(parent, namespace);
        let label = format!("parent {}/{}", key.1, key.2);
        let Some(status) = statuses.iter().find(|s| {
            s.get("parentRef")
                .is_some_and(|p| parent_key(p, namespace) == key)
        }) else {
            return Err(format!("{label} has not reported on the route yet"));
        };
        for wanted in ["Accepted", "ResolvedRefs"] {
            let condition = status
                .get("conditions")
                .and_then(Value::as_array)
                .and_then(|c| {
                    c.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some(wanted))
                });
            let Some(condition) = condition else {
                return Err(format!("{label} reports no {wanted} condition"));
            };
            let observed = condition.get("observedGeneration").and_then(Value::as_i64);
            if generation.is_some() && observed.is_some() && observed < generation {
                return Err(format!(
                    "{label} has not yet seen generation {} ({wanted} is for generation {})",
                    generation.unwrap_or_default(),
                    observed.unwrap_or_default()
                ));
            }
            if condition.get("status").and_then(Value::as_str) != Some("True") {
                return Err(format!(
                    "{label}: {wanted}={} ({}: {})",
                    condition
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("Unknown"),
                    condition
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason"),
                    condition
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ));
            }
        }
    }
    Ok(())
}

/// A parentRef's identity: (group/kind, namespace, name, sectionName, port).
fn parent_key(parent: &Value, route_namespace: &str) -> (String, String, String, String, i64) {
    let text = |key: &str| parent.get(key).and_then(Value::as_str);
    (
        format!(
            "{}/{}",
            text("group").unwrap_or("gateway.networking.k8s.io"),
            text("kind").unwrap_or("Gateway")
        ),
        text("namespace").unwrap_or(route_namespace).to_string(),
        text("name").unwrap_or_default().to_string(),
        text("sectionName").unwrap_or_default().to_string(),
        parent.get("port").and_then(Value::as_i64).unwrap_or(0),
    )
}

fn rule_name(rule: &Value) -> Option<&str> {
    rule.get("name").and_then(Value::as_str)
}

fn is_selected(rule: &Value, select: RuleSelector<'_>, stable: &str) -> bool {
    match select {
        RuleSelector::NamingStable => backend(rule, stable).is_some(),
        RuleSelector::Named(name) => rule_name(rule) == Some(name),
    }
}

/// The rule's `backendRef` to the Service `name` (core group, kind Service).
fn backend<'r>(rule: &'r Value, name: &str) -> Option<&'r Value> {
    rule.get("backendRefs")?.as_array()?.iter().find(|b| {
        b.get("name").and_then(Value::as_str) == Some(name)
            && b.get("kind").and_then(Value::as_str).unwrap_or("Service") == "Service"
            && b.get("group")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
    })
}

fn with_name_weight(prototype: &Value, name: &str, weight: i32) -> Value {
    let mut b = prototype.as_object().cloned().unwrap_or_default();
    b.insert("name".into(), json!(name));
    b.insert("weight".into(), json!(weight));
    Value::Object(b)
}

/// The rule with its backends for the three Services replaced by weighted ones.
fn weighted(
    rule: &Value,
    prototype: &Value,
    services: &RoutingServices,
    weights: TrafficWeights,
) -> Value {
    let ours = |b: &Value| {
        let name = b.get("name").and_then(Value::as_str);
        name == Some(&services.stable)
            || name == Some(&services.canary)
            || name.is_some() && name == services.baseline.as_deref()
    };
    let mut backends: Vec<Value> = rule
        .get("backendRefs")
        .and_then(Value::as_array)
        .map(|b| b.iter().filter(|b| !ours(b)).cloned().collect())
        .unwrap_or_default();
    backends.push(with_name_weight(
        prototype,
        &services.stable,
        weights.stable,
    ));
    backends.push(with_name_weight(
        prototype,
        &services.canary,
        weights.canary,
    ));
    if let Some(baseline) = &services.baseline {
        backends.push(with_name_weight(prototype, baseline, weights.baseline));
    }
    let mut rule = rule.as_object().cloned().unwrap_or_default();
    rule.insert("backendRefs".into(), Value::Array(backends));
    Value::Object(rule)
}

/// A copy of `rule` whose matches also require the headers, sending everything to the canary.
fn header_rule(
    rule: &Value,
    index: usize,
    prototype: &Value,
    canary: &str,
    header: HeaderRule<'_>,
) -> Value {
    let headers: Vec<Value> = header
        .matches
        .iter()
        .map(|m| json!({"type": m.match_type.as_str(), "name": m.header_name, "value": m.value}))
        .collect();
    let matches: Vec<Value> = match rule.get("matches").and_then(Value::as_array) {
        Some(matches) if !matches.is_empty() => matches
            .iter()
            .map(|m| {
                let mut m = m.as_object().cloned().unwrap_or_default();
                let mut all: Vec<Value> = m
                    .get("headers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                all.extend(headers.iter().cloned());
                m.insert("headers".into(), Value::Array(all));
                Value::Object(m)
            })
            .collect(),
        _ => vec![json!({"headers": headers})],
    };
    let mut out = Map::new();
    let suffix = rule_name(rule).map_or_else(|| index.to_string(), str::to_string);
    out.insert(
        "name".into(),
        json!(format!("{HEADER_RULE_PREFIX}{}.{suffix}", header.name)),
    );
    out.insert("matches".into(), Value::Array(matches));
    if let Some(filters) = rule.get("filters") {
        out.insert("filters".into(), filters.clone());
    }
    let mut only = prototype.as_object().cloned().unwrap_or_default();
    only.insert("name".into(), json!(canary));
    only.remove("weight");
    out.insert("backendRefs".into(), json!([Value::Object(only)]));
    Value::Object(out)
}

/// The header route's name from a header rule's name suffix `<name>.<rule>` (header route names
/// are DNS labels, without dots; [`fill`] appends the source rule's name or index).
fn header_route_name(suffix: &str) -> &str {
    suffix.split_once('.').map_or(suffix, |(name, _)| name)
}

#[cfg(test)]
mod tests;
