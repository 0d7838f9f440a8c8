//! The Gateway API router: writes weighted `backendRefs` to HTTPRoutes and GRPCRoutes
//! (`gateway.networking.k8s.io/v1`) and reads back what the gateway accepted.
//!
//! Gateway API declares `spec.rules` and each rule's `backendRefs` atomic lists, so whoever
//! applies `rules` owns all of them; nobody can own "just the weights". Hence two modes:
//!
//! - **Managed route** (`gatewayAPI.httpRoute`): Firebreak creates the HTTPRoute `<rollout>` from
//!   the template, owns it whole (server-side apply, owner reference to the Rollout, so it goes
//!   with the Rollout) and fills the backends of the rules naming the stable Service.
//! - **Existing routes** (`httpRoutes`, `grpcRoutes`): Firebreak reads the route, edits the named
//!   rule and applies `spec.rules` with its own field manager, forcing conflicts, with the read's
//!   `resourceVersion` as a precondition so a concurrent edit is never overwritten unseen.
//!   docs/gitops.md tells GitOps tools to leave those weights alone.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::rules::{self, HeaderRule, RuleSelector};
use super::{HeaderRoute, RouterError, TrafficObservation, TrafficRouter};
use crate::api::{FIELD_MANAGER, GatewayApiRouting, Rollout, TrafficRouting, TrafficWeights};

/// The router's name in status, Events and metrics.
pub const NAME: &str = "gatewayAPI";

/// The Gateway API group and version Firebreak writes.
pub const GROUP_VERSION: &str = "gateway.networking.k8s.io/v1";

/// A route kind Firebreak can route with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// `HTTPRoute`.
    Http,
    /// `GRPCRoute`.
    Grpc,
}

impl RouteKind {
    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }

    /// The API resource (`gateway.networking.k8s.io/v1`, plural name) of the kind.
    pub fn api_resource(self) -> ApiResource {
        let (kind, plural) = match self {
            RouteKind::Http => ("HTTPRoute", "httproutes"),
            RouteKind::Grpc => ("GRPCRoute", "grpcroutes"),
        };
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind),
            plural,
        )
    }
}

/// One route the router writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    /// HTTPRoute or GRPCRoute.
    pub kind: RouteKind,
    /// The route's name, in the Rollout's namespace.
    pub name: String,
    /// The rule to edit (`None`: a managed route, every rule naming the stable Service).
    pub rule: Option<String>,
}

impl RouteTarget {
    fn select(&self) -> RuleSelector<'_> {
        match &self.rule {
            Some(rule) => RuleSelector::Named(rule),
            None => RuleSelector::NamingStable,
        }
    }

    fn label(&self) -> String {
        match &self.rule {
            Some(rule) => format!("{} {} rule {rule}", self.kind.kind(), self.name),
            None => format!("{} {}", self.kind.kind(), self.name),
        }
    }
}

/// The Gateway API router of one Rollout.
pub struct GatewayRouter<'a> {
    client: Client,
    rollout: &'a Rollout,
    namespace: String,
    routing: &'a TrafficRouting,
    gateway: &'a GatewayApiRouting,
}

impl<'a> GatewayRouter<'a> {
    /// The router of `rollout`, whose spec holds `routing` with `gateway`.
    pub fn new(
        client: &Client,
        rollout: &'a Rollout,
        routing: &'a TrafficRouting,
        gateway: &'a GatewayApiRouting,
    ) -> GatewayRouter<'a> {
        GatewayRouter {
            client: client.clone(),
            rollout,
            namespace: rollout.namespace().unwrap_or_default(),
            routing,
            gateway,
        }
    }

    /// The routes this router writes, in the order it writes them.
    pub fn targets(&self) -> Vec<RouteTarget> {
        if self.gateway.http_route.is_some() {
            return vec![RouteTarget {
                kind: RouteKind::Http,
                name: self.rollout.name_any(),
                rule: None,
            }];
        }
        let http = self
            .gateway
            .http_routes
            .iter()
            .map(|r| (RouteKind::Http, r));
        let grpc = self
            .gateway
            .grpc_routes
            .iter()
            .map(|r| (RouteKind::Grpc, r));
        http.chain(grpc)
            .map(|(kind, r)| RouteTarget {
                kind,
                name: r.name.clone(),
                rule: Some(r.rule.clone()),
            })
            .collect()
    }

    fn api(&self, kind: RouteKind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &kind.api_resource())
    }

    fn error(&self, target: &RouteTarget, message: impl std::fmt::Display) -> RouterError {
        RouterError {
            router: NAME,
            message: format!(
                "{} (namespace {}): {message}",
                target.label(),
                self.namespace
            ),
        }
    }

    async fn read(&self, target: &RouteTarget) -> Result<Option<Value>, RouterError> {
        let route = self
            .api(target.kind)
            .get_opt(&target.name)
            .await
            .map_err(|e| self.error(target, format!("cannot read it: {e}")))?;
        route
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| self.error(target, e))
    }

    /// The object to apply for `target` with `rules`: for a managed route the whole route; for
    /// an existing one only `spec.rules`, with `resource_version` as a precondition.
    fn applied(&self, target: &RouteTarget, rules: Value, resource_version: Option<&str>) -> Value {
        let mut object = json!({
            "apiVersion": GROUP_VERSION,
            "kind": target.kind.kind(),
            "metadata": {"name": target.name, "namespace": self.namespace},
            "spec": {"rules": rules},
        });
        if let Some(managed) = &self.gateway.http_route
            && target.rule.is_none()
        {
            let mut spec = serde_json::to_value(&managed.spec).unwrap_or_else(|_| json!({}));
            spec["rules"] = object["spec"]["rules"].take();
            object["spec"] = spec;
            object["metadata"]["labels"] =
                json!({crate::api::ROLLOUT_LABEL: self.rollout.name_any()});
            if let Some(owner) = self.rollout.controller_owner_ref(&()) {
                object["metadata"]["ownerReferences"] = json!([owner]);
            }
        }
        if let Some(version) = resource_version {
            object["metadata"]["resourceVersion"] = json!(version);
        }
        object
    }

    /// The rules `target` should have for `weights` and `header`, given the route as read.
    fn rules_for(
        &self,
        target: &RouteTarget,
        current: Option<&Value>,
        weights: TrafficWeights,
        header: Option<&HeaderRoute>,
    ) -> Result<Value, RouterError> {
        let source = match (&self.gateway.http_route, &target.rule) {
            (Some(managed), None) => serde_json::to_value(&managed.spec.rules)
                .map_err(|e| self.error(target, e))?,
            _ => current
                .and_then(|r| r.pointer("/spec/rules"))
                .cloned()
                .ok_or_else(|| self.error(target, "the route does not exist; create it, or name an existing route in trafficRouting.gatewayAPI"))?,
        };
        let header = header.map(|h| HeaderRule {
            name: &h.name,
            matches: &h.matches,
        });
        rules::fill(
            &source,
            target.select(),
            &self.routing.services,
            weights,
            header,
        )
        .map_err(|e| self.error(target, e))
    }

    async fn apply(&self, target: &RouteTarget, object: &Value) -> Result<(), RouterError> {
        self.api(target.kind)
            .patch(
                &target.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map(drop)
            .map_err(|e| self.error(target, format!("cannot write it: {e}")))
    }
}

impl GatewayRouter<'_> {
    /// Writes `target` for `weights` and `header`; returns its rules before the write (`None`:
    /// nothing to write). An existing route is written with the read's `resourceVersion` as a
    /// precondition; a conflict (the gateway wrote the route's status, or someone its spec) reads
    /// it again, at most three times.
    async fn write_one(
        &self,
        target: &RouteTarget,
        weights: TrafficWeights,
        header: Option<&HeaderRoute>,
    ) -> Result<Option<Option<Value>>, RouterError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.read(target).await?;
            let rules = self.rules_for(target, current.as_ref(), weights, header)?;
            let unchanged = current
                .as_ref()
                .and_then(|c| c.pointer("/spec/rules"))
                .is_some_and(|r| contains(r, &rules))
                && (target.rule.is_some() || managed_spec_unchanged(self, current.as_ref()));
            if unchanged {
                return Ok(None);
            }
            let version = current
                .as_ref()
                .filter(|_| target.rule.is_some())
                .and_then(|c| c.pointer("/metadata/resourceVersion"))
                .and_then(Value::as_str);
            match self
                .api(target.kind)
                .patch(
                    &target.name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&self.applied(target, rules, version)),
                )
                .await
            {
                Ok(_) => {
                    return Ok(Some(
                        current.and_then(|c| c.pointer("/spec/rules").cloned()),
                    ));
                }
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < 3 => continue,
                Err(e) => return Err(self.error(target, format!("cannot write it: {e}"))),
            }
        }
    }
}

impl TrafficRouter for GatewayRouter<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn set_weight(
        &self,
        weights: TrafficWeights,
        header: Option<&HeaderRoute>,
    ) -> Result<(), RouterError> {
        // (target, rules before the write) of every route written so far, to put back.
        let mut written: Vec<(RouteTarget, Option<Value>)> = Vec::new();
        for target in self.targets() {
            let result = self.write_one(&target, weights, header).await;
            match result {
                Ok(Some(before)) => written.push((target, before)),
                Ok(None) => {}
                Err(error) => {
                    // All or nothing: put back what this call already changed.
                    for (done, before) in written.iter().rev() {
                        if let Some(rules) = before
                            && let Err(e) = self
                                .apply(done, &self.applied(done, rules.clone(), None))
                                .await
                        {
                            tracing::warn!(route = %done.label(), error = %e, "could not put a route back after another route failed");
                        }
                    }
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    async fn verify(&self) -> Result<TrafficObservation, RouterError> {
        let mut carried: Option<Option<(TrafficWeights, Option<String>)>> = None;
        let mut accepted = Ok(());
        let mut changed_by = None;
        for target in self.targets() {
            let Some(route) = self.read(&target).await? else {
                return Ok(TrafficObservation {
                    carried: None,
                    accepted: Err(format!("{} does not exist yet", target.label())),
                    changed_by: None,
                });
            };
            let here = route
                .pointer("/spec/rules")
                .and_then(|r| rules::carried(r, target.select(), &self.routing.services));
            carried = match carried {
                None => Some(here),
                Some(previous) if previous == here => Some(previous),
                Some(_) => Some(None),
            };
            if accepted.is_ok()
                && let Err(why) = rules::accepted(&route)
            {
                accepted = Err(format!("{}: {why}", target.label()));
            }
            if changed_by.is_none() {
                changed_by = rules_manager(&route).filter(|m| m != FIELD_MANAGER);
            }
        }
        Ok(TrafficObservation {
            carried: carried.flatten(),
            accepted,
            changed_by,
        })
    }
}

/// Whether a managed route's spec, apart from its rules, is the template's (a user edited the
/// template: apply again).
fn managed_spec_unchanged(router: &GatewayRouter<'_>, current: Option<&Value>) -> bool {
    let (Some(managed), Some(current)) = (&router.gateway.http_route, current) else {
        return false;
    };
    let Ok(mut template) = serde_json::to_value(&managed.spec) else {
        return false;
    };
    let mut spec = current.get("spec").cloned().unwrap_or_default();
    for object in [&mut template, &mut spec] {
        if let Some(map) = object.as_object_mut() {
            map.remove("rules");
        }
    }
    // The API server fills defaults (e.g. parentRefs' group and kind): compare what the template
    // sets, field by field.
    contains(&spec, &template)
}

/// Whether `outer` has every field of `inner` with the same value (objects recursively).
fn contains(outer: &Value, inner: &Value) -> bool {
    match (outer, inner) {
        (Value::Object(o), Value::Object(i)) => i
            .iter()
            .all(|(k, v)| o.get(k).is_some_and(|ov| contains(ov, v)) || v.is_null()),
        (Value::Array(o), Value::Array(i)) => {
            o.len() == i.len() && o.iter().zip(i).all(|(a, b)| contains(a, b))
        }
        _ => outer == inner,
    }
}

/// The field manager that last wrote the route's `spec.rules` (its managedFields entry with
/// `f:rules` and the latest time).
fn rules_manager(route: &Value) -> Option<String> {
    route
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .filter(|m| m.pointer("/fieldsV1/f:spec/f:rules").is_some())
        .max_by_key(|m| {
            m.get("time")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .and_then(|m| m.get("manager").and_then(Value::as_str))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_writer_of_the_rules_is_found() {
        let route = json!({"metadata": {"managedFields": [
            {"manager": "firebreak", "operation": "Apply", "time": "2026-12-03T10:00:00Z",
             "fieldsV1": {"f:spec": {"f:rules": {}}}},
            {"manager": "argocd-controller", "operation": "Update", "time": "2026-12-03T10:05:00Z",
             "fieldsV1": {"f:spec": {"f:rules": {}}}},
            {"manager": "kubectl", "operation": "Update", "time": "2026-12-03T11:00:00Z",
             "fieldsV1": {"f:metadata": {"f:labels": {}}}}
        ]}});
        assert_eq!(rules_manager(&route).as_deref(), Some("argocd-controller"));
        assert_eq!(rules_manager(&json!({})), None);
    }

    #[test]
    fn defaults_filled_by_the_server_still_match_the_template() {
        let template = json!({"parentRefs": [{"name": "gw"}], "hostnames": ["a.example"]});
        let stored = json!({"parentRefs": [{"name": "gw", "group": "gateway.networking.k8s.io", "kind": "Gateway"}], "hostnames": ["a.example"]});
        assert!(contains(&stored, &template));
        let edited = json!({"parentRefs": [{"name": "gw"}], "hostnames": ["b.example"]});
        assert!(!contains(&stored, &edited));
    }
}
