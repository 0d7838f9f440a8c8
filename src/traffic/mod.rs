//! Traffic routing: how a canary weight becomes a share of requests.
//!
//! Each Rollout gets a [`Router`] chosen from its spec (after Argo Rollouts'
//! `TrafficRoutingReconciler`): set the weights and the header route, verify that the gateway
//! has taken them, and observe what the routes carry now.
//!
//! - Without `trafficRouting` the weight is replica-weighted: one Service spreads requests over
//!   all ready pods, so the canary's share of pods is its share of traffic. The controller
//!   realises that by sizing the ReplicaSets ([`crate::controller::decide::canary_replicas`]).
//! - With `trafficRouting.gatewayAPI` the weights are written to Gateway API routes
//!   ([`gateway::GatewayRouter`]), edited by the pure functions of [`rules`], and the `stable`,
//!   `canary` and `baseline` Services select each revision's pods ([`services`]).

pub mod gateway;
pub mod rules;
pub mod services;

use std::future::Future;

use crate::api::{HeaderMatch, Rollout, TrafficWeights};

/// A header route (a `setHeaderRoute` step with conditions): requests whose headers all match
/// go to the canary, whatever the weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderRoute {
    /// The step's name for it.
    pub name: String,
    /// The header conditions (at least one).
    pub matches: Vec<HeaderMatch>,
}

/// What a router found on the routes it manages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficObservation {
    /// The weights and header route (by name) every route carries, or `None` when a route is
    /// missing, unreadable, or the routes disagree.
    pub carried: Option<(TrafficWeights, Option<String>)>,
    /// Whether every parent Gateway of every route has accepted it (`Accepted=True`,
    /// `ResolvedRefs=True` for its current generation); otherwise a sentence naming the route,
    /// the parent and the condition.
    pub accepted: Result<(), String>,
    /// The field manager that last changed a route's rules, when it is not Firebreak (someone
    /// changed the weights: a GitOps sync, `kubectl apply`).
    pub changed_by: Option<String>,
}

impl TrafficObservation {
    /// Whether the routes carry `weights` and `header` and the gateway accepted them.
    pub fn verifies(&self, weights: TrafficWeights, header: Option<&str>) -> bool {
        self.accepted.is_ok()
            && self
                .carried
                .as_ref()
                .is_some_and(|(w, h)| *w == weights && h.as_deref() == header)
    }

    /// Why the routes do not verify `weights` and `header`, for status and the timeline.
    pub fn why_not(&self, weights: TrafficWeights, header: Option<&str>) -> String {
        match (&self.carried, &self.accepted) {
            (None, Err(why)) => why.clone(),
            (None, Ok(())) => "the routes do not carry the weights yet".into(),
            (Some((w, h)), _) if *w != weights || h.as_deref() != header => {
                let changed = self
                    .changed_by
                    .as_ref()
                    .map(|m| format!(" (last changed by {m})"))
                    .unwrap_or_default();
                format!("the routes carry {w} where {weights} is wanted{changed}")
            }
            (Some(_), Err(why)) => why.clone(),
            (Some(_), Ok(())) => "verified".into(),
        }
    }
}

/// A router failure: its message names the routed object and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("traffic router {router}: {message}")]
pub struct RouterError {
    /// Router name, e.g. `gatewayAPI`.
    pub router: &'static str,
    /// What failed.
    pub message: String,
}

/// Moves traffic between the stable, the canary and the baseline.
pub trait TrafficRouter: Send + Sync {
    /// Short name for status, Events and metrics.
    fn name(&self) -> &'static str;

    /// Writes `weights` (percent, summing to 100) and the header route (`None`: none) to every
    /// route, all or nothing: if one write fails, the routes already written are put back.
    fn set_weight(
        &self,
        weights: TrafficWeights,
        header: Option<&HeaderRoute>,
    ) -> impl Future<Output = Result<(), RouterError>> + Send;

    /// Reads what the routes carry and whether the gateway accepted it.
    fn verify(&self) -> impl Future<Output = Result<TrafficObservation, RouterError>> + Send;
}

/// The router of one Rollout.
pub enum Router<'a> {
    /// No router: traffic follows pods.
    Replicas,
    /// Gateway API routes.
    GatewayApi(gateway::GatewayRouter<'a>),
}

impl<'a> Router<'a> {
    /// The router `rollout`'s spec asks for.
    pub fn for_rollout(client: &kube::Client, rollout: &'a Rollout) -> Router<'a> {
        match rollout
            .spec
            .strategy
            .canary
            .traffic_routing
            .as_ref()
            .and_then(|r| r.gateway_api.as_ref().map(|g| (r, g)))
        {
            Some((routing, gateway)) => Router::GatewayApi(gateway::GatewayRouter::new(
                client, rollout, routing, gateway,
            )),
            None => Router::Replicas,
        }
    }
}
