//! The traffic router's part of a decision: which weights and header route the routes should
//! carry, and whether the gateway has taken them (a step counts only once it has).

use super::*;
use crate::api::{TrafficStatus, TrafficWeights};
use crate::controller::validate::{CanaryScale, HeaderRoute};

/// How soon to look again while the gateway has not taken the routing.
pub const GATEWAY_POLL: Duration = Duration::from_secs(1);

impl<'a> Decider<'a> {
    /// Whether the Rollout routes traffic with a router (exact weights).
    pub(super) fn routed(&self) -> bool {
        self.spec.traffic_routing.is_some()
    }

    /// The header route in force at step `index`: the last `setHeaderRoute` at or before it.
    pub(super) fn header_at(&self, index: usize) -> Option<&'a HeaderRoute> {
        let steps: &'a [StepKind] = &self.spec.steps;
        steps[..(index + 1).min(steps.len())]
            .iter()
            .rev()
            .find_map(|s| match s {
                StepKind::SetHeaderRoute(route) => Some(route.as_ref()),
                _ => None,
            })
            .flatten()
    }

    /// The canary's pod count at step `index` for traffic `weight`: with a router, the last
    /// `setCanaryScale` at or before it (by default the weight's share of the replicas, at least
    /// one pod); without one, the weight's share of the replicas.
    pub(super) fn canary_pods_at(&self, index: usize, weight: i32) -> i32 {
        let replicas = self.replicas();
        if !self.routed() {
            return canary_replicas(replicas, weight);
        }
        let scale = self.spec.steps[..(index + 1).min(self.spec.steps.len())]
            .iter()
            .rev()
            .find_map(|s| match s {
                StepKind::SetCanaryScale(scale) => Some(*scale),
                _ => None,
            })
            .unwrap_or_default();
        match scale {
            // At least one pod, also at weight 0 (a header route, a test before any weight).
            CanaryScale::MatchTrafficWeight => canary_replicas(replicas, weight.max(1)),
            CanaryScale::Replicas(n) => n.clamp(0, replicas.max(0)),
            CanaryScale::Weight(w) => canary_replicas(replicas, w),
        }
    }

    /// Sets the routing wanted now and returns whether the gateway carries it. Records in
    /// `status.traffic` when it was verified, or why not; the time it spends unverified after
    /// having been verified (someone changed the weights) is added to the step's start, so a
    /// pause does not count it. Without a router: always true.
    pub(super) fn route(&mut self, weights: TrafficWeights, header: Option<&HeaderRoute>) -> bool {
        if !self.routed() {
            return true;
        }
        self.header_route = header.cloned();
        let header = header.map(|h| h.name.clone());
        let now = self.now;
        let observed = self.traffic;
        let status = self
            .status
            .traffic
            .get_or_insert_with(TrafficStatus::default);
        let changed = status.weights != weights || status.header_route != header;
        if changed {
            status.weights = weights;
            status.header_route = header.clone();
            status.verified = false;
            status.verified_at = None;
            status.unverified_since = Some(Time(now));
        }
        let verified = match observed {
            Some(Ok(o)) => o.verifies(weights, header.as_deref()),
            Some(Err(_)) | None => false,
        };
        if verified {
            if !status.verified {
                status.verified = true;
                status.verified_at = Some(Time(now));
                status.message = None;
                if let Some(since) = status.unverified_since.take()
                    && !changed
                    && let Some(started) = self.status.step_started_at.as_mut()
                    && let Ok(shifted) = started.0.checked_add(now.duration_since(since.0))
                {
                    started.0 = shifted;
                }
                let status = self.status.traffic.as_mut().expect("set above");
                status.unverified_since = None;
            }
            return true;
        }
        let why = match observed {
            Some(Ok(o)) => o.why_not(weights, header.as_deref()),
            Some(Err(e)) => e.clone(),
            None => "the routes have not been read yet".into(),
        };
        // Verified before, same routing wanted, and the routes now carry something else:
        // someone changed them (a gateway that stops accepting is not a change of weights).
        let carries_other = matches!(observed, Some(Ok(o)) if o.carried.as_ref().is_some_and(|(w, h)| *w != weights || *h != header));
        let drifted = status.verified && !changed && carries_other;
        let changed_by = observed
            .and_then(|o| o.as_ref().ok())
            .and_then(|o| o.changed_by.clone());
        status.verified = false;
        status.message = Some(why.clone());
        status.unverified_since.get_or_insert(Time(now));
        if drifted {
            let who = changed_by.map_or_else(
                || "someone else".to_string(),
                |m| format!("field manager {m}"),
            );
            self.record(
                Reason::TrafficChanged,
                format!("{who} changed the routes: {why}; putting back {weights} (the time at wrong weights does not count for the step)"),
                self.status.canary_revision.clone().as_deref(),
                true,
            );
        }
        self.requeue_in(GATEWAY_POLL);
        false
    }

    /// Waits at step `index` until the gateway takes the routing; past the progress deadline the
    /// canary is rolled back.
    pub(super) fn wait_for_gateway(&mut self, index: usize) {
        let why = self
            .status
            .traffic
            .as_ref()
            .and_then(|t| t.message.clone())
            .unwrap_or_else(|| "not verified yet".into());
        let what = format!(
            "step {}/{}: the gateway has not taken {}: {why}",
            index + 1,
            self.spec.steps.len(),
            self.status
                .traffic
                .as_ref()
                .map(|t| t.weights)
                .unwrap_or_default()
        );
        self.wait(&what, "waiting for the gateway", true);
    }

    /// Whether the rolled-back revision `hash` keeps its pods for now: with a router, until
    /// `abortScaleDownDelaySeconds` after all traffic was verified on stable (asks to look again
    /// then).
    pub(super) fn keeps_rolled_back(&mut self, hash: &str) -> bool {
        if !self.routed() || self.status.rolled_back_revision.as_deref() != Some(hash) {
            return false;
        }
        let Some(verified_at) = self
            .status
            .traffic
            .as_ref()
            .filter(|t| t.verified && t.weights == TrafficWeights::all_stable())
            .and_then(|t| t.verified_at.clone())
        else {
            return true;
        };
        let delay = SignedDuration::try_from(self.spec.abort_scale_down_delay)
            .unwrap_or(SignedDuration::ZERO);
        let waited = self.now.duration_since(verified_at.0);
        if waited >= delay {
            return false;
        }
        self.requeue_in((delay - waited).unsigned_abs());
        true
    }
}
