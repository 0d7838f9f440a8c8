//! Gateway API types (`gateway.networking.k8s.io/v1`), generated from the upstream CRDs by
//! `scripts/generate-gateway-types.sh` (kopium) and committed. The `gateway-api` crate would be
//! the library to use, but its releases build on other kube and k8s-openapi versions than ours.
//!
//! Only `HTTPRouteSpec` is typed: it is the template of a managed route
//! (`trafficRouting.gatewayAPI.httpRoute.spec`), so the Rollout's schema validates it as the
//! upstream CRD would. Routes Firebreak edits are handled as JSON ([`crate::traffic::rules`]),
//! so fields of newer Gateway API versions survive an edit.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod httproute;
