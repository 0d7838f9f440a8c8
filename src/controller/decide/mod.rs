//! The decision: a pure function from what was observed (the Rollout, its ReplicaSets, the clock)
//! to a [`Plan`] of what the ReplicaSets and the status should become.
//!
//! Nothing here talks to Kubernetes or reads the clock, so every transition is unit-tested. The
//! plan is idempotent: deciding again on the state a plan produced yields the same plan, which is
//! what lets a controller killed at any instant resume correctly.
//!
//! - this module: the decision's frame, requests, the first deploy and the steady state;
//! - `canary`: the steps, analysis gates, promotion and abort;
//! - `bake`: the watch after a promotion and its rollback;
//! - `finish`: the second-wave check, the notifications, and the ReplicaSets the plan ends with.

mod bake;
mod canary;
mod finish;
mod traffic;

pub use super::plan::{Observed, Plan, Transition, WindowGate};

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::api::{
    Incident, PAUSED_ANNOTATION, PendingNotification, Phase, REQUEST_ANNOTATION_PREFIX, Reason,
    Rollout, RolloutStatus, SecondWave, SecondWaveState, TIMELINE_LIMIT, TimelineEntry, Trigger,
};
use firebreak_judge::Counts;

use super::analysis::AnalysisInput;
use super::conditions;
use super::outbox;
use super::revisions::{
    Arm, DesiredReplicaSet, Revision, baseline_hash, replica_set_name, template_hash,
};
use super::second_wave;
use super::validate::{StepKind, ValidSpec};
use crate::analysis::assess::Gate;
use crate::api::OnInconclusive;
use crate::incident::record::{IncidentPlan, incident_name};

/// Failed analysis looks in a row before the timeline and Events say data is missing.
pub const UNAVAILABLE_AFTER_LOOKS: u32 = 2;
/// Longest time between two looks at a Rollout even when nothing happens.
pub const RESYNC: Duration = Duration::from_secs(300);

/// One-off user requests found in the Rollout's annotations and not yet acknowledged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Requests {
    promote: bool,
    promote_full: bool,
    abort: bool,
    retry: bool,
}

/// The canary replica count for `weight` percent of `replicas`: rounded up, at least one pod
/// for a non-zero weight, at most `replicas`.
pub fn canary_replicas(replicas: i32, weight: i32) -> i32 {
    if replicas <= 0 || weight <= 0 {
        return 0;
    }
    let weight = weight.min(100) as i64;
    let pods = (replicas as i64 * weight + 99) / 100;
    pods.clamp(1, replicas as i64) as i32
}

/// With a router, the percentage of requests the previous revision's slice (one pod) receives
/// during a bake: one pod's share of `replicas + 1`, rounded up, at least 1.
pub fn bake_slice_percent(replicas: i32) -> i32 {
    let pods = i64::from(replicas.max(0)) + 1;
    ((100 + pods - 1) / pods).clamp(1, 50) as i32
}

/// The stable replica count next to `canary` canary pods at `weight` percent: the rest of
/// `replicas`, but at least one pod while the weight is below 100 so the stable keeps serving.
pub fn stable_replicas(replicas: i32, canary: i32, weight: i32) -> i32 {
    let rest = (replicas - canary).max(0);
    if weight < 100 && replicas > 0 {
        rest.max(1)
    } else {
        rest
    }
}

/// Appends `entry` to a bounded timeline. A condition ([`Reason::is_condition`]: data missing,
/// data back) that repeats one of the last two entries (same reason and revision) is folded into
/// it with a `count`, so a flapping condition takes two entries however long it flaps. Past [`TIMELINE_LIMIT`] the oldest
/// entry that is not an anchor ([`Reason::is_anchor`]) is dropped, and an anchor only when
/// nothing else is left.
pub fn push_timeline(timeline: &mut Vec<TimelineEntry>, entry: TimelineEntry) {
    if entry.reason.is_condition() {
        let recent = timeline.len().saturating_sub(2);
        if let Some(same) = timeline[recent..]
            .iter_mut()
            .rev()
            .find(|e| e.reason == entry.reason && e.revision == entry.revision)
        {
            same.count = Some(same.count.unwrap_or(1).saturating_add(1));
            same.last_time = Some(entry.time);
            same.message = entry.message;
            return;
        }
    }
    timeline.push(entry);
    while timeline.len() > TIMELINE_LIMIT {
        let drop = timeline
            .iter()
            .position(|e| !e.reason.is_anchor())
            .unwrap_or(0);
        timeline.remove(drop);
    }
}

struct Decider<'a> {
    rollout: &'a Rollout,
    spec: &'a ValidSpec,
    revisions: &'a [Revision],
    now: Timestamp,
    analysis: Option<&'a AnalysisInput>,
    window: Option<WindowGate>,
    /// What the traffic router found on the routes (with a router).
    traffic: Option<&'a Result<crate::traffic::TrafficObservation, String>>,
    /// The header route wanted now (with a router).
    header_route: Option<super::validate::HeaderRoute>,
    flip_kill_switch: bool,
    status: RolloutStatus,
    transitions: Vec<Transition>,
    /// Desired replicas per hash (revision arm), filled in as the decision goes.
    desired: BTreeMap<String, i32>,
    /// Desired baseline: (hash, template source hash, replicas).
    baseline: Option<(String, String, i32)>,
    /// Revisions to (re)number as newest, with their promotion time.
    renumber: Option<String>,
    promote_now: Option<String>,
    requeue: Duration,
    incident: Option<IncidentPlan>,
    /// Apply scale-downs before scale-ups (a rollback: speed first).
    mitigating: bool,
}

/// Decides what to do. See the module documentation.
pub fn decide(observed: &Observed<'_>) -> Plan {
    let mut d = Decider {
        rollout: observed.rollout,
        spec: observed.spec,
        revisions: observed.revisions,
        now: observed.now,
        analysis: observed.analysis,
        window: observed.window.clone(),
        traffic: observed.traffic,
        header_route: None,
        flip_kill_switch: false,
        status: observed.rollout.status.clone().unwrap_or_default(),
        transitions: Vec::new(),
        desired: BTreeMap::new(),
        baseline: None,
        renumber: None,
        promote_now: None,
        requeue: RESYNC,
        incident: None,
        mitigating: false,
    };
    d.run();
    let wave = d.second_wave(observed.incident, observed.second_wave);
    d.finish(wave)
}

impl<'a> Decider<'a> {
    fn replicas(&self) -> i32 {
        self.spec.replicas
    }

    fn revision(&self, hash: &str) -> Option<&'a Revision> {
        self.revisions
            .iter()
            .find(|r| r.arm == Arm::Revision && r.hash == hash)
    }

    fn available(&self, hash: &str) -> i32 {
        self.revision(hash).map_or(0, |r| r.available)
    }

    fn record(&mut self, reason: Reason, message: String, revision: Option<&str>, warning: bool) {
        push_timeline(
            &mut self.status.timeline,
            TimelineEntry {
                time: Time(self.now),
                reason,
                message: message.clone(),
                revision: revision.map(str::to_string),
                count: None,
                last_time: None,
            },
        );
        self.transitions.push(Transition {
            reason,
            message,
            warning,
        });
    }

    fn requeue_in(&mut self, after: Duration) {
        self.requeue = self.requeue.min(after.max(Duration::from_secs(1)));
    }

    /// Reads the request annotations and acknowledges them in status.
    fn take_requests(&mut self) -> Requests {
        let mut requests = Requests::default();
        for (key, nonce) in self.rollout.annotations() {
            let Some(verb) = key.strip_prefix(REQUEST_ANNOTATION_PREFIX) else {
                continue;
            };
            if self.status.acknowledged_requests.get(verb) == Some(nonce) {
                continue;
            }
            let known = match verb {
                "promote" => {
                    requests.promote = true;
                    true
                }
                "promote-full" => {
                    requests.promote_full = true;
                    true
                }
                "abort" => {
                    requests.abort = true;
                    true
                }
                "retry" => {
                    requests.retry = true;
                    true
                }
                _ => false,
            };
            if known {
                self.status
                    .acknowledged_requests
                    .insert(verb.to_string(), nonce.clone());
            }
        }
        requests
    }

    fn paused(&self) -> Option<&'static str> {
        if self.spec.paused {
            Some("spec.paused is true")
        } else if self
            .rollout
            .annotations()
            .get(PAUSED_ANNOTATION)
            .map(String::as_str)
            == Some("true")
        {
            Some("paused by `firebreak pause`; run `firebreak resume` to continue")
        } else {
            None
        }
    }

    fn run(&mut self) {
        if !self.routed() {
            // A router removed from the spec: traffic follows pods again, nothing to report.
            self.status.traffic = None;
        }
        self.status.window = self.window.as_ref().map(|w| crate::api::WindowStatus {
            open: w.open,
            message: w.message.clone(),
            opens_at: w.opens_at.map(Time),
            closes_at: w.closes_at.map(Time),
        });
        let target = template_hash(&self.rollout.name_any(), &self.spec.template);
        let requests = self.take_requests();
        let stable_known = self
            .status
            .stable_revision
            .clone()
            .filter(|s| *s == target || self.revision(s).is_some());

        // First deploy (or the stable ReplicaSet vanished): the spec's template goes straight to stable.
        let Some(stable) = stable_known else {
            self.status.stable_revision = Some(target.clone());
            self.clear_canary();
            self.promote_now = Some(target.clone());
            self.record(
                Reason::Deployed,
                format!(
                    "revision {target} deployed as stable with {} replicas",
                    self.replicas()
                ),
                Some(&target),
                false,
            );
            return self.steady(&target);
        };

        if requests.retry && self.status.rolled_back_revision.as_deref() == Some(target.as_str()) {
            self.status.rolled_back_revision = None;
            self.status.rollback_reason = None;
            self.record(
                Reason::Retried,
                format!(
                    "retry requested: revision {target} is rolled out again from the first step"
                ),
                Some(&target),
                false,
            );
        }

        if target == stable {
            if let Some(canary) = self.status.canary_revision.clone() {
                self.record(
                    Reason::CanarySuperseded,
                    format!("spec.template is back to stable revision {stable}: canary {canary} scaled down"),
                    Some(&canary),
                    false,
                );
                self.clear_canary();
            }
            return self.bake_or_steady(&stable);
        }

        if self.status.rolled_back_revision.as_deref() == Some(target.as_str()) {
            self.clear_canary();
            self.steady(&stable);
            self.status.phase = Some(Phase::RolledBack);
            self.status.message = Some(format!(
                "revision {target} was rolled back ({}); stable revision {stable} serves all traffic. Change spec.template or run `firebreak retry` to roll it out again",
                self.status
                    .rollback_reason
                    .as_deref()
                    .unwrap_or("reason not recorded")
            ));
            return;
        }

        // Back to a revision that was stable before: skip the steps (fast rollback).
        let is_current_canary = self.status.canary_revision.as_deref() == Some(target.as_str());
        if !is_current_canary
            && self
                .revision(&target)
                .is_some_and(|r| r.promoted_at.is_some())
        {
            if let Some(canary) = self.status.canary_revision.clone() {
                self.record(
                    Reason::CanarySuperseded,
                    format!("canary {canary} superseded by previously stable revision {target}"),
                    Some(&canary),
                    false,
                );
            }
            self.clear_canary();
            self.status.stable_revision = Some(target.clone());
            self.renumber = Some(target.clone());
            self.status.waiting_since = None;
            self.record(
                Reason::FastRollback,
                format!("spec.template matches previously stable revision {target}: steps skipped, it becomes stable at once"),
                Some(&target),
                false,
            );
            return self.steady(&target);
        }

        self.canary(&stable, &target, &requests);
    }

    fn clear_canary(&mut self) {
        self.status.canary_revision = None;
        self.status.current_step_index = None;
        self.status.step_started_at = None;
        self.status.canary_started_at = None;
        self.status.canary_weight = 0;
    }

    /// No canary: the stable revision runs at full size; others drain once it is available.
    /// Healthy only once their pods are gone, so that `kubectl wait` or a GitOps sync waiting
    /// for `Ready` moves on when the old version no longer serves.
    fn steady(&mut self, stable: &str) {
        self.steady_keeping(stable, None);
    }

    /// [`Decider::steady`], keeping one pod of `bake_slice` (the previous revision during a
    /// bake): that pod does not hold back `Healthy`.
    fn steady_keeping(&mut self, stable: &str, bake_slice: Option<&str>) {
        let replicas = self.replicas();
        self.desired.insert(stable.to_string(), replicas);
        let available = self.available(stable);
        // With a router, older revisions drain only once the gateway sends everything to the
        // stable Service (which selects `stable`); during a bake the canary Service selects the
        // previous revision's slice and gets its share of requests, as one pod of `replicas + 1`
        // would without a router, so that the judge has both arms to compare.
        let weights = match bake_slice {
            Some(_) => crate::api::TrafficWeights {
                stable: 100 - bake_slice_percent(replicas),
                canary: bake_slice_percent(replicas),
                baseline: 0,
            },
            None => crate::api::TrafficWeights::all_stable(),
        };
        let routed = self.route(weights, None);
        let fully_available = available >= replicas && routed;
        for r in self
            .revisions
            .iter()
            .filter(|r| r.arm == Arm::Revision && r.hash != stable)
        {
            // Never scale anything up; scale down only once the stable can carry the load (and,
            // for a canary rolled back behind a router, its scale-down delay has passed).
            let keep = if fully_available && !self.keeps_rolled_back(&r.hash) {
                0
            } else {
                r.desired
            };
            self.desired.insert(r.hash.clone(), keep);
        }
        if let Some(previous) = bake_slice {
            self.keep_bake_slice(previous);
        }
        // Pods of other revisions that still run (or are shutting down) beyond the bake's slice.
        let old_pods: i32 = self
            .revisions
            .iter()
            .filter(|r| r.arm == Arm::Revision && r.hash != stable)
            .map(|r| {
                let pods = r.current + r.terminating;
                if Some(r.hash.as_str()) == bake_slice {
                    (pods - 1).max(0)
                } else {
                    pods
                }
            })
            .sum();
        if fully_available && old_pods > 0 {
            self.status.waiting_since = None;
            self.status.phase = Some(Phase::Progressing);
            self.status.message = Some(format!(
                "stable revision {stable}: {available}/{replicas} pods available; waiting for {old_pods} pods of older revisions to terminate"
            ));
            self.requeue_in(Duration::from_secs(5));
        } else if fully_available {
            self.status.waiting_since = None;
            self.status.phase = Some(Phase::Healthy);
            self.status.message = Some(format!(
                "stable revision {stable}: {available}/{replicas} pods available"
            ));
        } else if available >= replicas {
            let why = self
                .status
                .traffic
                .as_ref()
                .and_then(|t| t.message.clone())
                .unwrap_or_default();
            self.status.phase = Some(Phase::Progressing);
            self.status.message = Some(format!(
                "waiting for the gateway to send all requests to stable revision {stable}: {why}"
            ));
        } else {
            self.wait_for_pods(
                &format!("stable revision {stable}: {available}/{replicas} pods available"),
                false,
            );
        }
    }

    /// Marks the rollout as waiting for pods and applies the progress deadline. `canary`: the
    /// deadline rolls the canary back; otherwise the rollout is Degraded.
    fn wait_for_pods(&mut self, what: &str, canary: bool) -> bool {
        self.wait(what, "waiting for pods", canary)
    }

    /// Marks the rollout as waiting (`prefix: what` in the message) and applies the progress
    /// deadline, as [`Decider::wait_for_pods`].
    fn wait(&mut self, what: &str, prefix: &str, canary: bool) -> bool {
        let since = self.status.waiting_since.get_or_insert(Time(self.now)).0;
        let waited = self.now.duration_since(since);
        let deadline =
            SignedDuration::try_from(self.spec.progress_deadline).unwrap_or(SignedDuration::MAX);
        self.status.phase = Some(Phase::Progressing);
        self.status.message = Some(format!("{prefix}: {what}"));
        if self.paused().is_some() {
            return false;
        }
        if waited >= deadline {
            let reason = format!(
                "progress deadline exceeded: {what} after {}s (spec.progressDeadlineSeconds = {})",
                waited.as_secs(),
                self.spec.progress_deadline.as_secs()
            );
            if canary {
                self.abort(&reason, Trigger::ProgressDeadlineExceeded);
                return true;
            }
            self.status.phase = Some(Phase::Degraded);
            self.status.message = Some(reason);
        } else {
            let left = (deadline - waited).unsigned_abs();
            self.requeue_in(left);
        }
        false
    }
}
