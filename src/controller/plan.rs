//! The types of a decision: what it is given ([`Observed`]) and what it returns ([`Plan`]),
//! shared by the pure decision and the shell that observes and carries out plans.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::{Incident, PendingNotification, Reason, Rollout, RolloutStatus, SecondWave};
use crate::incident::record::IncidentPlan;
use firebreak_judge::Counts;

use super::analysis::AnalysisInput;
use super::revisions::{DesiredReplicaSet, Revision};
use super::validate::ValidSpec;

/// Everything the decision needs.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The Rollout, freshly read.
    pub rollout: &'a Rollout,
    /// Its validated spec.
    pub spec: &'a ValidSpec,
    /// Its ReplicaSets (owned by it).
    pub revisions: &'a [Revision],
    /// The current time.
    pub now: Timestamp,
    /// Canary analysis, when configured and a canary runs.
    pub analysis: Option<&'a AnalysisInput>,
    /// The deployment window (None: no windows apply).
    pub window: Option<WindowGate>,
    /// The Incident named in `status.incident`, when the cache has it (the second-wave check).
    pub incident: Option<&'a Incident>,
    /// The stable's errors and requests over a second-wave watch that has ended
    /// ([`super::second_wave::Step::Measure`]), or why they could not be measured.
    pub second_wave: Option<&'a Result<Counts, String>>,
    /// What the traffic router found on the routes: with `trafficRouting` only; an error is a
    /// sentence naming the route.
    pub traffic: Option<&'a Result<crate::traffic::TrafficObservation, String>>,
}

/// The deployment window as the decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowGate {
    /// Rollouts may start and advance.
    pub open: bool,
    /// Why, for people.
    pub message: String,
    /// When it opens next (if closed).
    pub opens_at: Option<Timestamp>,
    /// When it closes next (if open).
    pub closes_at: Option<Timestamp>,
}

/// What should change.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// ReplicaSets to create or update, in the order to apply them.
    pub replica_sets: Vec<DesiredReplicaSet>,
    /// Names of ReplicaSets to delete (beyond `revisionHistoryLimit`, or finished baselines).
    pub delete: Vec<String>,
    /// The new status (written only if it differs from the observed one).
    pub status: RolloutStatus,
    /// Transitions that happened in this decision: each becomes a timeline entry (already in
    /// `status.timeline`) and a Kubernetes Event.
    pub transitions: Vec<Transition>,
    /// When to look again even if nothing changes (a pause ending, a deadline).
    pub requeue_after: Duration,
    /// An Incident to record (a rollback or a common-mode hold happened in this decision).
    pub incident: Option<IncidentPlan>,
    /// Mitigation comes first: scale the canary down before anything grows (a rollback).
    pub mitigating: bool,
    /// Set the kill switch to its safe value before anything else (any rollback).
    pub flip_kill_switch: bool,
    /// The second-wave state to record in the status of the Incident `status.incident`.
    pub second_wave: Option<SecondWave>,
    /// Notifications given up because the outbox overflowed, to record as failed.
    pub given_up: Vec<PendingNotification>,
    /// The header route the routes should carry (its name is in `status.traffic.headerRoute`).
    pub header_route: Option<super::validate::HeaderRoute>,
}

/// One transition, to be published as an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// What happened (the Event reason and the timeline entry's).
    pub reason: Reason,
    /// Sentence with the details.
    pub message: String,
    /// Warning (something went wrong) or Normal.
    pub warning: bool,
}
