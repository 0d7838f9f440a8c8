//! Traffic routing (`spec.strategy.canary.trafficRouting`) and the steps only a router can carry
//! out (`setCanaryScale`, `setHeaderRoute`).
//!
//! With a router the canary's share of requests is exact, whatever the pod counts: the router
//! writes weighted `backendRefs` to Gateway API routes and the controller points three Services'
//! selectors (`stable`, `canary`, `baseline`) at each revision's `pod-template-hash`. Without
//! one, traffic follows pods (one Service over all of them).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::gateway_api::httproute::HttpRouteSpec;

/// Where a router sends traffic, and which router. (That a managed route's rules name
/// `services.stable` is checked by the controller: the upstream `HTTPRouteSpec` schema has no
/// list bounds, so a CEL rule over its rules would exceed the API server's cost budget.)
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new("has(self.gatewayAPI)").message("trafficRouting needs a router: set trafficRouting.gatewayAPI (httpRoute, or httpRoutes/grpcRoutes)"))]
#[serde(rename_all = "camelCase")]
pub struct TrafficRouting {
    /// The Services the routes point at. Firebreak sets each one's selector to its revision's
    /// `pod-template-hash` (and creates a missing one from the pod template's container ports).
    pub services: RoutingServices,

    /// Route through Gateway API (`gateway.networking.k8s.io/v1`) routes.
    #[serde(
        default,
        rename = "gatewayAPI",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_api: Option<GatewayApiRouting>,
}

/// The Services of each arm, in the Rollout's namespace.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutingServices {
    /// The Service of the stable revision: it receives `100 - canary - baseline` percent.
    #[schemars(length(min = 1, max = 63))]
    pub stable: String,
    /// The Service of the canary revision: it receives the step's weight.
    #[schemars(length(min = 1, max = 63))]
    pub canary: String,
    /// The Service of the baseline (`spec.strategy.canary.baseline: true`): it receives the same
    /// weight as the canary while that is at most 50%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub baseline: Option<String>,
}

/// Gateway API routing: either a route Firebreak creates and owns (`httpRoute`), or existing
/// routes owned by someone else, whose named rules Firebreak writes (`httpRoutes`, `grpcRoutes`).
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new(
    "has(self.httpRoute) != ((has(self.httpRoutes) && size(self.httpRoutes) > 0) || (has(self.grpcRoutes) && size(self.grpcRoutes) > 0))"
).message("gatewayAPI: set exactly one of httpRoute (a route Firebreak creates and owns) or httpRoutes/grpcRoutes (existing routes, by name and rule)"))]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiRouting {
    /// A managed route: Firebreak creates an HTTPRoute named after the Rollout from this
    /// template, owns all of it (with an owner reference to the Rollout) and fills the weighted
    /// `backendRefs` of every rule that names `services.stable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<ManagedHttpRoute>,

    /// Existing HTTPRoutes in the Rollout's namespace: Firebreak writes only the `backendRefs`
    /// of the named rule (server-side apply with its own field manager). See docs/gitops.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub http_routes: Vec<RouteRuleRef>,

    /// Existing GRPCRoutes, as `httpRoutes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub grpc_routes: Vec<RouteRuleRef>,
}

/// The template of a managed HTTPRoute.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedHttpRoute {
    /// The route's spec, exactly the upstream `HTTPRouteSpec` (`gateway.networking.k8s.io/v1`).
    pub spec: HttpRouteSpec,
}

/// An existing route and the rule in it whose backends the canary shares.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteRuleRef {
    /// The route's name, in the Rollout's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The rule's `name` (Gateway API `HTTPRouteRule.name`); the rule must name
    /// `services.stable` among its `backendRefs`.
    #[schemars(length(min = 1, max = 253))]
    pub rule: String,
}

/// `setCanaryScale`: how many canary (and baseline) pods run, independent of the weight.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new(
    "[has(self.replicas), has(self.weight), has(self.matchTrafficWeight) && self.matchTrafficWeight].exists_one(x, x)"
).message("setCanaryScale sets exactly one of replicas, weight or matchTrafficWeight: true"))]
#[serde(rename_all = "camelCase")]
pub struct SetCanaryScale {
    /// An exact number of pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// A percentage (0–100) of `spec.replicas`, rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub weight: Option<i32>,
    /// Follow the traffic weight again (the default before any `setCanaryScale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_traffic_weight: Option<bool>,
}

/// `setHeaderRoute`: requests matching every `match` go to the canary, whatever the weight. An
/// empty `match` removes the header route.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// The route's name (in status and Events; the rule Firebreak adds is named after it).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Header conditions, all of which must hold.
    #[serde(default, rename = "match")]
    #[schemars(length(max = 8))]
    pub matches: Vec<HeaderMatch>,
}

/// One header condition of a header route.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// The header's name, case-insensitive, e.g. `x-canary`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
    )]
    pub header_name: String,
    /// The value to match.
    #[schemars(length(min = 1, max = 4096))]
    pub value: String,
    /// How `value` matches: `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub match_type: HeaderMatchType,
}

/// How a header value matches (Gateway API `HeaderMatchType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum HeaderMatchType {
    /// The value equals `value`.
    #[default]
    Exact,
    /// The value matches the regular expression `value` (the gateway's dialect).
    RegularExpression,
}

impl HeaderMatchType {
    /// The Gateway API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderMatchType::Exact => "Exact",
            HeaderMatchType::RegularExpression => "RegularExpression",
        }
    }
}
