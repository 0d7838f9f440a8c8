//! The decision: a pure function from what was observed (the Rollout, its ReplicaSets, the clock)
//! to a [`Plan`] of what the ReplicaSets and the status should become.
//!
//! Nothing here talks to Kubernetes or reads the clock, so every transition is unit-tested. The
//! plan is idempotent: deciding again on the state a plan produced yields the same plan, which is
//! what lets a controller killed at any instant resume correctly.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use crate::analysis::judge::Counts;
use crate::api::{
    Incident, PAUSED_ANNOTATION, PendingNotification, Phase, REQUEST_ANNOTATION_PREFIX, Reason,
    Rollout, RolloutStatus, SecondWave, SecondWaveState, TIMELINE_LIMIT, TimelineEntry, Trigger,
};

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

/// Default `spec.progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);
/// Default `spec.revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: usize = 3;
/// Failed analysis looks in a row before the timeline and Events say data is missing.
pub const UNAVAILABLE_AFTER_LOOKS: u32 = 2;
/// Longest time between two looks at a Rollout even when nothing happens.
pub const RESYNC: Duration = Duration::from_secs(300);

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
    /// ([`second_wave::Step::Measure`]), or why they could not be measured.
    pub second_wave: Option<&'a Result<Counts, String>>,
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
        let fully_available = available >= replicas;
        for r in self
            .revisions
            .iter()
            .filter(|r| r.arm == Arm::Revision && r.hash != stable)
        {
            // Never scale anything up; scale down only once the stable can carry the load.
            let keep = if fully_available { 0 } else { r.desired };
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
        let since = self.status.waiting_since.get_or_insert(Time(self.now)).0;
        let waited = self.now.duration_since(since);
        let deadline =
            SignedDuration::try_from(self.spec.progress_deadline).unwrap_or(SignedDuration::MAX);
        self.status.phase = Some(Phase::Progressing);
        self.status.message = Some(format!("waiting for pods: {what}"));
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

    fn canary(&mut self, stable: &str, target: &str, requests: &Requests) {
        if self.status.canary_revision.as_deref() != Some(target)
            && let Some(why) = self.window_closed()
        {
            // Not even a first canary pod outside the window; the stable keeps serving.
            self.clear_canary();
            self.bake_or_steady(stable);
            self.status.phase = Some(Phase::Paused);
            self.status.message = Some(format!("revision {target} waits to start: {why}"));
            return;
        }
        if self.status.canary_revision.as_deref() != Some(target) {
            if let Some(bake) = self.status.bake.take() {
                self.record(
                    Reason::BakeSuperseded,
                    format!(
                        "bake of {} ended early: new revision {target} starts",
                        bake.revision
                    ),
                    Some(&bake.revision),
                    false,
                );
            }
            if let Some(old) = self.status.canary_revision.clone() {
                self.record(
                    Reason::CanarySuperseded,
                    format!("canary {old} superseded by new revision {target}"),
                    Some(&old),
                    false,
                );
            }
            self.status.rolled_back_revision = None;
            self.status.rollback_reason = None;
            self.status.canary_revision = Some(target.to_string());
            self.status.current_step_index = Some(0);
            self.status.step_started_at = Some(Time(self.now));
            self.status.canary_started_at = Some(Time(self.now));
            self.status.waiting_since = None;
            self.status.canary_weight = 0;
            self.status.analysis = None;
            self.renumber = Some(target.to_string());
            self.record(
                Reason::CanaryStarted,
                format!("new revision {target} started as canary next to stable {stable}"),
                Some(target),
                false,
            );
        }

        if requests.abort {
            return self.abort("aborted by user (`firebreak abort`)", Trigger::Aborted);
        }
        if let Some(Gate::Fail(why)) = self.take_analysis(target) {
            return self.abort(&format!("analysis failed: {why}"), Trigger::AnalysisFailed);
        }
        if let (Some(max), Some(started)) = (
            self.spec.max_duration,
            self.status.canary_started_at.clone(),
        ) {
            let ran = self.now.duration_since(started.0);
            let limit = SignedDuration::try_from(max).unwrap_or(SignedDuration::MAX);
            if ran >= limit {
                let reason = format!(
                    "the canary ran {}s, longer than spec.strategy.canary.maxDuration ({}s)",
                    ran.as_secs(),
                    max.as_secs()
                );
                return self.abort(&reason, Trigger::MaxDurationExceeded);
            }
            self.requeue_in((limit - ran).unsigned_abs());
        }
        if requests.promote_full {
            self.status.current_step_index = Some(self.spec.steps.len() as i32);
            self.status.step_started_at = Some(Time(self.now));
            self.record(
                Reason::PromotedFull,
                format!("full promotion requested: canary {target} skips its remaining steps"),
                Some(target),
                false,
            );
        }

        let replicas = self.replicas();
        let mut promote_requested = requests.promote;
        let paused = self.paused();
        // Walk the steps as far as they can go now; each iteration either advances or stops.
        for _ in 0..=self.spec.steps.len() {
            let index = self.status.current_step_index.unwrap_or(0).max(0) as usize;
            let weight = self.weight_at(index);
            self.status.canary_weight = weight;

            if index >= self.spec.steps.len() {
                // All steps done: grow the canary to full size, then promote it.
                self.status.canary_weight = 100;
                self.desired.insert(target.to_string(), replicas);
                self.keep_stable_for(stable, target, replicas, 100);
                let available = self.available(target);
                if available >= replicas {
                    return self.promote(stable, target);
                }
                self.wait_for_pods(
                    &format!("promoting canary {target}: {available}/{replicas} pods available"),
                    true,
                );
                return;
            }

            let canary_pods = canary_replicas(replicas, weight);
            // A canary that already has more pods (a revision coming back after a revert) shrinks
            // only as far as the stable's available pods can carry the load.
            let carrying = self
                .revision(target)
                .map_or(0, |r| r.desired)
                .min((replicas - self.available(stable)).max(0));
            self.desired
                .insert(target.to_string(), canary_pods.max(carrying));
            self.keep_stable_for(stable, target, canary_pods, weight);
            if self.spec.baseline && canary_pods > 0 {
                self.baseline = Some((baseline_hash(stable), stable.to_string(), canary_pods));
            }

            match self.spec.steps[index] {
                StepKind::SetWeight(w) => {
                    let available = self.available(target);
                    let baseline_ready = self.baseline.as_ref().is_none_or(|(hash, _, want)| {
                        self.revisions
                            .iter()
                            .find(|r| r.arm == Arm::Baseline && &r.hash == hash)
                            .is_some_and(|r| r.available >= *want)
                    });
                    if available < canary_pods || !baseline_ready {
                        let what = format!(
                            "step {}/{} setWeight {w}: canary {target} has {available}/{canary_pods} pods available",
                            index + 1,
                            self.spec.steps.len()
                        );
                        self.wait_for_pods(&what, true);
                        return;
                    }
                    self.status.waiting_since = None;
                    if let Some(why) = paused {
                        return self.hold(index, why);
                    }
                    if let Some(why) = self.window_closed() {
                        return self.hold(index, &why);
                    }
                    if index + 1 == self.spec.steps.len() && !self.analysis_allows(index) {
                        return;
                    }
                    self.advance(
                        index,
                        format!("canary {target} at weight {w}% with {available} pods"),
                    );
                }
                StepKind::Pause(duration) => {
                    self.status.waiting_since = None;
                    if let Some(why) = paused {
                        return self.hold(index, why);
                    }
                    if promote_requested {
                        promote_requested = false;
                        self.advance(index, "pause ended by `firebreak promote`".into());
                        continue;
                    }
                    match duration {
                        None => {
                            self.status.phase = Some(Phase::Paused);
                            self.status.message = Some(format!(
                                "step {}/{}: paused at weight {weight}% until `firebreak promote`",
                                index + 1,
                                self.spec.steps.len()
                            ));
                            return;
                        }
                        Some(duration) => {
                            let started =
                                self.status.step_started_at.get_or_insert(Time(self.now)).0;
                            let elapsed = self.now.duration_since(started);
                            let total =
                                SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX);
                            if elapsed >= total {
                                if let Some(why) = self.window_closed() {
                                    return self.hold(index, &why);
                                }
                                if !self.analysis_allows(index) {
                                    return;
                                }
                                self.advance(
                                    index,
                                    format!("pause of {}s ended", duration.as_secs()),
                                );
                                continue;
                            }
                            let left = (total - elapsed).unsigned_abs();
                            self.requeue_in(left);
                            self.status.phase = Some(Phase::Paused);
                            self.status.message = Some(format!(
                                "step {}/{}: paused at weight {weight}%, {}s left",
                                index + 1,
                                self.spec.steps.len(),
                                left.as_secs()
                            ));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Takes in the analysis of `revision` (the canary, or the baked revision): records it in
    /// status, publishes transitions of its outcome, and returns its gate (None: no analysis).
    fn take_analysis(&mut self, target: &str) -> Option<Gate> {
        let input = self.analysis.filter(|a| a.status.revision == target)?;
        let previous = self.status.analysis.as_ref();
        let before = previous.and_then(|a| a.outcome);
        let failures_before = previous.map_or(0, |a| a.consecutive_failures);
        let held_since = previous.and_then(|a| a.held_since.clone());
        self.status.analysis = Some(input.status.clone());
        if let Some(a) = self.status.analysis.as_mut() {
            a.held_since = held_since;
        }
        self.requeue_in(input.next_look);
        // One missing look is not an event (a scrape that landed late): data is reported missing
        // from the second failed look in a row, and back once a look succeeds after that.
        let missing = input.status.consecutive_failures >= UNAVAILABLE_AFTER_LOOKS;
        let was_missing = failures_before >= UNAVAILABLE_AFTER_LOOKS;
        match &input.gate {
            Gate::Unavailable(why) if missing && !was_missing => {
                self.record(
                    Reason::AnalysisUnavailable,
                    format!(
                        "analysis has had no data for {} looks, holding: {why}",
                        input.status.consecutive_failures
                    ),
                    Some(target),
                    true,
                );
            }
            Gate::CommonMode(why) if before != Some(crate::api::AnalysisOutcome::CommonMode) => {
                let why = why.clone();
                self.record(
                    Reason::CommonModeHold,
                    format!("holding canary {target}: {why}"),
                    Some(target),
                    true,
                );
                self.plan_incident(target, Trigger::CommonModeHold, &why);
            }
            Gate::Pass | Gate::Inconclusive(_) | Gate::Fail(_) if was_missing => {
                self.record(
                    Reason::AnalysisRecovered,
                    "analysis has data again".into(),
                    Some(target),
                    false,
                );
            }
            _ => {}
        }
        Some(input.gate.clone())
    }

    /// The deployment window is closed: returns why (and looks again when it opens).
    fn window_closed(&mut self) -> Option<String> {
        let window = self.window.as_ref().filter(|w| !w.open)?.clone();
        if let Some(opens) = window.opens_at {
            let wait = opens.duration_since(self.now);
            self.requeue_in(wait.unsigned_abs());
        }
        let when = window.opens_at.map_or_else(
            || "no opening ahead".to_string(),
            |t| format!("opens at {t}"),
        );
        Some(format!(
            "deployment window closed: {} ({when})",
            window.message
        ))
    }

    /// The stable runs; during a bake the previous revision keeps a slice and the judge keeps
    /// comparing them until the bake ends or the new revision fails.
    fn bake_or_steady(&mut self, stable: &str) {
        let Some(bake) = self.status.bake.clone() else {
            return self.steady(stable);
        };
        if bake.revision != stable {
            self.status.bake = None;
            return self.steady(stable);
        }
        if let Some(Gate::Fail(why)) = self.take_analysis(stable) {
            return self.bake_rollback(&bake.revision, &bake.previous, &why);
        }
        if self.now >= bake.until.0 {
            self.status.bake = None;
            self.record(
                Reason::BakeCompleted,
                format!(
                    "revision {stable} baked without trouble; previous revision {} scaled down",
                    bake.previous
                ),
                Some(stable),
                false,
            );
            return self.steady(stable);
        }
        self.steady_keeping(stable, Some(&bake.previous));
        let left = bake.until.0.duration_since(self.now).unsigned_abs();
        self.requeue_in(left);
        if self.status.phase == Some(Phase::Healthy) {
            let message = self.status.message.clone().unwrap_or_default();
            self.status.message = Some(format!(
                "{message}; baking against one pod of {} for {}s more",
                bake.previous,
                left.as_secs()
            ));
        }
    }

    /// Keeps at least one pod of the previous revision during a bake.
    fn keep_bake_slice(&mut self, previous: &str) {
        if self.revision(previous).is_some() {
            let keep = self.desired.get(previous).copied().unwrap_or(0).max(1);
            self.desired.insert(previous.to_string(), keep);
        }
    }

    /// The baked revision failed: the previous revision becomes stable again (scaled up first;
    /// the bad one drains once it can carry the load), with an Incident.
    fn bake_rollback(&mut self, bad: &str, previous: &str, why: &str) {
        let reason = format!("analysis failed during bake: {why}");
        let bake = self.status.bake.take();
        // The previous revision is the stable one again before the Incident is planned, so the
        // record names it as the stable that took the traffic back, diffs it against the bad
        // revision, and the second-wave check watches it.
        self.status.stable_revision = Some(previous.to_string());
        self.status.canary_started_at = bake.as_ref().map(|b| b.started_at.clone());
        self.status.canary_weight = 100;
        self.plan_incident(bad, Trigger::BakeFailed, &reason);
        let pods = self.revision(bad).map_or(0, |r| r.desired);
        if let Some(incident) = self.incident.as_mut() {
            incident.pods = pods;
        }
        self.status.canary_started_at = None;
        self.status.canary_weight = 0;
        self.flip_kill_switch = true;
        self.status.rolled_back_revision = Some(bad.to_string());
        self.status.rollback_reason = Some(reason.clone());
        self.renumber = Some(previous.to_string());
        self.record(
            Reason::BakeFailed,
            format!("revision {bad} rolled back to {previous} during bake: {reason}"),
            Some(bad),
            true,
        );
        self.steady(previous);
        self.status.phase = Some(Phase::RolledBack);
        self.status.message = Some(format!(
            "revision {bad} was rolled back during bake ({reason}); revision {previous} is stable again. Change spec.template or run `firebreak retry` to roll it out again"
        ));
    }

    /// The weight in force at step `index`: the last `setWeight` at or before it.
    fn weight_at(&self, index: usize) -> i32 {
        self.spec.steps[..(index + 1).min(self.spec.steps.len())]
            .iter()
            .rev()
            .find_map(|s| match s {
                StepKind::SetWeight(w) => Some(*w),
                StepKind::Pause(_) => None,
            })
            .unwrap_or(0)
    }

    /// Sizes the stable next to a canary of `canary_pods`: it shrinks to its share only once the
    /// canary's pods are available, so capacity never drops below `spec.replicas`.
    fn keep_stable_for(&mut self, stable: &str, target: &str, canary_pods: i32, weight: i32) {
        let replicas = self.replicas();
        let share = stable_replicas(replicas, canary_pods, weight);
        let canary_available = self.available(target).min(canary_pods);
        // Keep stable + available canary pods >= replicas: shrink only as canary pods arrive.
        let want = (replicas - canary_available)
            .max(share)
            .min(replicas.max(share));
        self.desired.insert(stable.to_string(), want);
        // Older revisions (a superseded canary, a previous stable) drain once the stable and the
        // canary can carry the load without them.
        let carried = self.available(stable) + canary_available >= replicas;
        for r in self
            .revisions
            .iter()
            .filter(|r| r.arm == Arm::Revision && r.hash != stable && r.hash != target)
        {
            self.desired
                .insert(r.hash.clone(), if carried { 0 } else { r.desired });
        }
    }

    /// Whether analysis lets the rollout advance past step `index`. If not, the rollout holds
    /// there (phase Paused, message with the reason); past the progress deadline,
    /// `analysis.onInconclusive: Rollback` rolls the canary back.
    fn analysis_allows(&mut self, index: usize) -> bool {
        if self.rollout.spec.analysis.is_none() {
            return true;
        }
        let canary = self.status.canary_revision.clone();
        let gate = match self
            .analysis
            .filter(|a| Some(&a.status.revision) == canary.as_ref())
        {
            Some(input) => input.gate.clone(),
            None => Gate::Inconclusive("analysis has not looked at the canary yet".into()),
        };
        let now = self.now;
        let step_started = self.status.step_started_at.clone().map_or(now, |t| t.0);
        let since = match self.status.analysis.as_mut() {
            Some(status) if gate == Gate::Pass => {
                status.held_since = None;
                return true;
            }
            Some(status) => status.held_since.get_or_insert(Time(now)).0,
            None => step_started,
        };
        let held = now.duration_since(since);
        let deadline =
            SignedDuration::try_from(self.spec.progress_deadline).unwrap_or(SignedDuration::MAX);
        let on_inconclusive = self
            .rollout
            .spec
            .analysis
            .as_ref()
            .map(|a| a.on_inconclusive)
            .unwrap_or_default();
        let why = format!(
            "analysis {}: {}",
            gate.outcome().as_str().to_lowercase(),
            gate.message()
        );
        // A common-mode problem is not this change's fault: it holds, whatever onInconclusive says.
        let common_mode = matches!(gate, Gate::CommonMode(_));
        if held >= deadline && on_inconclusive == OnInconclusive::Rollback && !common_mode {
            self.abort(
                &format!(
                    "{why} for {}s (analysis.onInconclusive: Rollback)",
                    held.as_secs()
                ),
                Trigger::AnalysisInconclusive,
            );
            return false;
        }
        if held < deadline {
            self.requeue_in((deadline - held).unsigned_abs());
        }
        self.status.phase = Some(Phase::Paused);
        self.status.message = Some(format!(
            "holding at step {}/{} (weight {}%) until analysis passes: {why}",
            index + 1,
            self.spec.steps.len(),
            self.status.canary_weight
        ));
        false
    }

    fn hold(&mut self, index: usize, why: &str) {
        self.status.phase = Some(Phase::Paused);
        self.status.message = Some(format!(
            "holding at step {}/{} (weight {}%): {why}",
            index + 1,
            self.spec.steps.len(),
            self.status.canary_weight
        ));
    }

    fn advance(&mut self, index: usize, message: String) {
        let next = index + 1;
        self.status.current_step_index = Some(next as i32);
        self.status.step_started_at = Some(Time(self.now));
        let target = self.status.canary_revision.clone();
        self.record(
            Reason::StepCompleted,
            format!("step {next}/{} completed: {message}", self.spec.steps.len()),
            target.as_deref(),
            false,
        );
    }

    fn promote(&mut self, old_stable: &str, target: &str) {
        self.status.stable_revision = Some(target.to_string());
        self.clear_canary();
        self.baseline = None;
        self.promote_now = Some(target.to_string());
        self.record(
            Reason::Promoted,
            format!("canary {target} promoted to stable; previous stable {old_stable} scaled down"),
            Some(target),
            false,
        );
        let bake_slice = self.spec.bake.map(|_| old_stable);
        self.steady_keeping(target, bake_slice);
        if let Some(duration) = self.spec.bake {
            let until = self
                .now
                .checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::ZERO));
            let until = until.unwrap_or(self.now);
            self.status.bake = Some(crate::api::BakeStatus {
                revision: target.to_string(),
                previous: old_stable.to_string(),
                started_at: Time(self.now),
                until: Time(until),
            });
            self.record(
                Reason::BakeStarted,
                format!(
                    "baking {target} for {}s against one pod of {old_stable}",
                    duration.as_secs()
                ),
                Some(target),
                false,
            );
            self.requeue_in(duration);
        }
    }

    /// Rolls the canary back: weight 0, canary (and baseline) to zero pods, stable to full size,
    /// and the revision is remembered so it is not rolled out again.
    fn abort(&mut self, reason: &str, trigger: Trigger) {
        let target = self.status.canary_revision.clone().unwrap_or_default();
        let stable = self.status.stable_revision.clone().unwrap_or_default();
        self.plan_incident(&target, trigger, reason);
        self.mitigating = true;
        self.baseline = None;
        self.clear_canary();
        self.status.rolled_back_revision = Some(target.clone());
        self.status.rollback_reason = Some(reason.to_string());
        self.status.waiting_since = None;
        self.desired.clear();
        self.desired.insert(stable.clone(), self.replicas());
        for r in self
            .revisions
            .iter()
            .filter(|r| r.arm == Arm::Revision && r.hash != stable)
        {
            self.desired.insert(r.hash.clone(), 0);
        }
        self.record(
            trigger.reason(),
            format!(
                "canary {target} rolled back: {reason}; stable {stable} restored to {} replicas",
                self.replicas()
            ),
            Some(&target),
            true,
        );
        self.status.phase = Some(Phase::RolledBack);
        self.status.message = Some(format!(
            "revision {target} was rolled back ({reason}); stable revision {stable} serves all traffic. Change spec.template or run `firebreak retry` to roll it out again"
        ));
    }

    /// Prepares the Incident for the current canary (its name goes into status at once).
    fn plan_incident(&mut self, revision: &str, trigger: Trigger, summary: &str) {
        let revision = revision.to_string();
        let name = incident_name(
            &self.rollout.name_any(),
            &revision,
            self.status.canary_started_at.as_ref(),
        );
        self.status.incident = Some(name.clone());
        self.incident = Some(IncidentPlan {
            name,
            trigger,
            summary: summary.to_string(),
            triage: trigger.triage(),
            pods: self.revision(&revision).map_or(0, |r| r.desired),
            revision,
            stable_revision: self.status.stable_revision.clone().unwrap_or_default(),
            canary_started_at: self.status.canary_started_at.clone(),
            max_weight: self.status.canary_weight,
            analysis: self.status.analysis.clone(),
            timeline: Vec::new(),
        });
    }

    /// The second-wave check's next step (see [`second_wave::step`]): the state to record in
    /// the Incident, and a transition when the check ends (once: a decision retried after a
    /// crash finds the end already in the timeline and only records it again in the Incident).
    fn second_wave(
        &mut self,
        incident: Option<&Incident>,
        measured: Option<&Result<Counts, String>>,
    ) -> Option<SecondWave> {
        match second_wave::step(self.rollout, incident, self.now) {
            second_wave::Step::Idle => None,
            second_wave::Step::Start { until } => {
                let incident = incident?;
                let length = second_wave::window(self.rollout);
                self.requeue_in(length);
                Some(second_wave::watching(incident, until, length))
            }
            second_wave::Step::Wait(wait) => {
                self.requeue_in(wait);
                None
            }
            second_wave::Step::Measure { until, window } => {
                let incident = incident?;
                let wave = second_wave::conclude(self.rollout, incident, until, window, measured);
                let since = incident
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
                let recorded = self.status.timeline.iter().any(|e| {
                    e.time.0 >= since
                        && matches!(
                            e.reason,
                            Reason::SecondWaveRecovered
                                | Reason::SecondWaveNotRecovered
                                | Reason::SecondWaveUnknown
                        )
                });
                if let Some(reason) = Reason::for_second_wave(wave.state)
                    && !recorded
                {
                    self.record(
                        reason,
                        format!("second-wave check: {}", wave.message),
                        Some(&incident.spec.stable_revision),
                        wave.state == SecondWaveState::NotRecovered,
                    );
                }
                Some(wave)
            }
        }
    }

    /// The notifications this decision's transitions call for, added to the outbox in status.
    fn plan_notifications(&mut self) -> Vec<PendingNotification> {
        let incident = self
            .incident
            .as_ref()
            .map(|i| i.name.clone())
            .or_else(|| self.status.incident.clone());
        let revision = self
            .status
            .canary_revision
            .clone()
            .or_else(|| self.status.rolled_back_revision.clone())
            .or_else(|| self.status.stable_revision.clone());
        let fresh = outbox::plan(
            self.rollout,
            &self.transitions,
            revision.as_deref(),
            incident.as_deref(),
            self.now,
        );
        let given_up = outbox::enqueue(&mut self.status.pending_notifications, fresh);
        if let Some(wait) = outbox::next_due(&self.status.pending_notifications, self.now) {
            self.requeue_in(wait);
        }
        given_up
    }

    fn finish(mut self, second_wave: Option<SecondWave>) -> Plan {
        let given_up = self.plan_notifications();
        let rollout_name = self.rollout.name_any();
        let max_number = self.revisions.iter().map(|r| r.number).max().unwrap_or(0);
        let now_text = self.now.to_string();
        let target = template_hash(&self.rollout.name_any(), &self.spec.template);
        let mut replica_sets = Vec::new();
        let mut next_number = max_number;

        for (hash, replicas) in &self.desired {
            let existing = self.revision(hash);
            let number = match existing {
                Some(r)
                    if self.renumber.as_deref() != Some(hash.as_str())
                        || r.number == max_number =>
                {
                    r.number
                }
                _ => {
                    next_number += 1;
                    next_number
                }
            };
            let template = match existing {
                // The spec's template is the truth for its own revision.
                _ if *hash == target => self.spec.template.clone(),
                Some(r) => r.template.clone(),
                None => continue,
            };
            let promoted_at = existing.and_then(|r| r.promoted_at.clone()).or_else(|| {
                (self.promote_now.as_deref() == Some(hash.as_str())).then(|| now_text.clone())
            });
            replica_sets.push(DesiredReplicaSet {
                name: existing
                    .map_or_else(|| replica_set_name(&rollout_name, hash), |r| r.name.clone()),
                hash: hash.clone(),
                number,
                replicas: *replicas,
                template,
                promoted_at,
                arm: Arm::Revision,
            });
        }

        let mut delete = Vec::new();
        if let Some((hash, source, replicas)) = &self.baseline {
            let existing = self
                .revisions
                .iter()
                .find(|r| r.arm == Arm::Baseline && &r.hash == hash);
            if let Some(source) = self.revision(source) {
                let mut template = source.template.clone();
                if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                    labels.remove(crate::api::POD_TEMPLATE_HASH_LABEL);
                }
                replica_sets.push(DesiredReplicaSet {
                    name: existing
                        .map_or_else(|| replica_set_name(&rollout_name, hash), |r| r.name.clone()),
                    hash: hash.clone(),
                    number: source.number,
                    replicas: *replicas,
                    template,
                    promoted_at: None,
                    arm: Arm::Baseline,
                });
            }
        }
        for r in self.revisions.iter().filter(|r| r.arm == Arm::Baseline) {
            if self
                .baseline
                .as_ref()
                .is_none_or(|(hash, _, _)| *hash != r.hash)
            {
                delete.push(r.name.clone());
            }
        }

        // Growth first so capacity never drops; in a rollback, shrinking the canary comes first.
        let current = |hash: &str| {
            self.revisions
                .iter()
                .find(|r| r.hash == hash)
                .map_or(0, |r| r.desired)
        };
        replica_sets.sort_by_key(|d| {
            let shrinking = d.replicas < current(&d.hash);
            if self.mitigating {
                !shrinking
            } else {
                shrinking
            }
        });

        // History: keep the newest `revisionHistoryLimit` idle revisions, delete older ones.
        let live: Vec<&str> = [
            self.status.stable_revision.as_deref(),
            self.status.canary_revision.as_deref(),
            Some(target.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut idle: Vec<&Revision> = self
            .revisions
            .iter()
            .filter(|r| {
                r.arm == Arm::Revision && !live.contains(&r.hash.as_str()) && r.current == 0
            })
            .filter(|r| self.desired.get(&r.hash).copied().unwrap_or(0) == 0)
            .collect();
        idle.sort_by_key(|r| std::cmp::Reverse(r.number));
        for r in idle.into_iter().skip(self.spec.revision_history_limit) {
            delete.push(r.name.clone());
            replica_sets.retain(|d| d.hash != r.hash);
        }

        self.fill_counts(&target);
        self.status.observed_generation = self.rollout.metadata.generation;
        let paused = self.status.phase == Some(Phase::Paused);
        conditions::set(
            &mut self.status,
            self.rollout.metadata.generation,
            self.now,
            paused,
        );

        if let Some(incident) = self.incident.as_mut() {
            incident.timeline = self.status.timeline.clone();
        }
        Plan {
            replica_sets,
            delete,
            status: self.status,
            transitions: self.transitions,
            requeue_after: self.requeue,
            incident: self.incident,
            flip_kill_switch: self.flip_kill_switch || self.mitigating,
            mitigating: self.mitigating,
            second_wave,
            given_up,
        }
    }

    fn fill_counts(&mut self, target: &str) {
        let revisions = self.revisions.iter().filter(|r| r.arm == Arm::Revision);
        self.status.replicas = revisions.clone().map(|r| r.current).sum();
        self.status.ready_replicas = revisions.clone().map(|r| r.ready).sum();
        self.status.available_replicas = revisions.clone().map(|r| r.available).sum();
        self.status.updated_replicas = self.revision(target).map_or(0, |r| r.current);
        self.status.stable_available_replicas = self
            .status
            .stable_revision
            .as_deref()
            .map_or(0, |s| self.available(s));
        self.status.canary_available_replicas = self
            .status
            .canary_revision
            .as_deref()
            .map_or(0, |c| self.available(c));
        self.status.selector = Some(self.spec.selector_string.clone());
    }
}
