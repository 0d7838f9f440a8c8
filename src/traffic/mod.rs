//! Traffic routing: how a canary weight becomes a share of requests.
//!
//! A router sits behind [`TrafficRouter`] (after Argo Rollouts' `TrafficRoutingReconciler`):
//! set a weight, verify it, remove what it manages. Without a router the weight is
//! replica-weighted: a Service spreads requests over all ready pods, so the canary's share of
//! pods is its share of traffic ([`ReplicaWeighted`]); the controller realises that by sizing the
//! ReplicaSets (see [`crate::controller::decide::canary_replicas`]).

use std::future::Future;

/// What a router did with a requested weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightOutcome {
    /// The router now sends `weight` percent of requests to the canary.
    Routed,
    /// The router cannot route by itself: traffic follows the replica counts.
    FollowsReplicas,
}

/// A router failure: its message names the routed object and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("traffic router {router}: {message}")]
pub struct RouterError {
    /// Router name, e.g. `gateway-api`.
    pub router: &'static str,
    /// What failed.
    pub message: String,
}

/// Moves traffic between the stable and the canary revision.
pub trait TrafficRouter: Send + Sync {
    /// Short name for status, Events and metrics.
    fn name(&self) -> &'static str;

    /// Sends `weight` percent (0–100) of traffic to the canary.
    fn set_weight(
        &self,
        weight: u8,
    ) -> impl Future<Output = Result<WeightOutcome, RouterError>> + Send;

    /// Whether the routing in force matches `weight`; `None` when the router cannot tell.
    fn verify_weight(
        &self,
        weight: u8,
    ) -> impl Future<Output = Result<Option<bool>, RouterError>> + Send;

    /// Removes every route the router manages (after promotion or rollback).
    fn remove_managed_routes(&self) -> impl Future<Output = Result<(), RouterError>> + Send;
}

/// No router: traffic follows pods, so there is nothing to route.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplicaWeighted;

impl TrafficRouter for ReplicaWeighted {
    fn name(&self) -> &'static str {
        "replicas"
    }

    async fn set_weight(&self, _weight: u8) -> Result<WeightOutcome, RouterError> {
        Ok(WeightOutcome::FollowsReplicas)
    }

    async fn verify_weight(&self, _weight: u8) -> Result<Option<bool>, RouterError> {
        Ok(None)
    }

    async fn remove_managed_routes(&self) -> Result<(), RouterError> {
        Ok(())
    }
}
