//! The observed state of a Rollout (`status`): phase, revisions, the timeline, and the analysis,
//! bake and window state a restarted controller resumes from.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Reason;
use crate::api::PendingNotification;

/// The lifecycle phase of a Rollout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Phase {
    /// Pods are being created or a canary is moving through its steps.
    #[default]
    Progressing,
    /// Held: a pause step, `spec.paused`, or `firebreak pause`.
    Paused,
    /// The stable revision is the desired one and all its pods are available.
    Healthy,
    /// Something is wrong that Firebreak cannot fix by itself (see `message`).
    Degraded,
    /// The canary was aborted or failed; the stable revision serves all traffic.
    RolledBack,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Observed state of a Rollout; everything needed to resume after a controller restart.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// What is happening, for people, with the numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Index into `spec.strategy.canary.steps` of the step being executed (absent without a canary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i32>,
    /// When the current step started (pause durations count from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,
    /// Since when the rollout has been waiting for pods to become available (progress deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<Time>,
    /// Percent (0–100) of traffic the canary is set to receive.
    #[serde(default)]
    pub canary_weight: i32,
    /// pod-template-hash of the stable revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    /// pod-template-hash of the canary revision, while a canary runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<String>,
    /// When the current canary started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_started_at: Option<Time>,
    /// pod-template-hash of a revision that was rolled back: it is not rolled out again until the
    /// template changes or `firebreak retry` is run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_revision: Option<String>,
    /// Why the last rollback happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_reason: Option<String>,
    /// Pods of all revisions (the scale subresource's replica count).
    #[serde(default)]
    pub replicas: i32,
    /// Ready pods of all revisions.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Available pods of all revisions.
    #[serde(default)]
    pub available_replicas: i32,
    /// Pods of the desired (`spec.template`) revision.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Available pods of the stable revision.
    #[serde(default)]
    pub stable_available_replicas: i32,
    /// Available pods of the canary revision.
    #[serde(default)]
    pub canary_available_replicas: i32,
    /// Label selector of the pods, as a string (for the scale subresource and HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The bake watch after the last promotion, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<BakeStatus>,
    /// The deployment window as last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowStatus>,
    /// Name of the newest Incident of this Rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Canary analysis of the current canary: accumulated evidence per metric and the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
    /// User requests (annotation nonces) already acted on, so each acts exactly once.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub acknowledged_requests: std::collections::BTreeMap<String, String>,
    /// The newest events of the rollout, oldest first, at most [`TIMELINE_LIMIT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
    /// `Ready`, `Progressing`, `Paused`, and kstatus's `Reconciling` and `Stalled` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Notifications decided and not yet delivered (the outbox; see [`PendingNotification`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_notifications: Vec<PendingNotification>,
    /// The traffic router's state (only with `spec.strategy.canary.trafficRouting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficStatus>,
}

/// What the traffic router should carry and whether the gateway has taken it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficStatus {
    /// The weights the routes are to carry now, in percent (they sum to 100).
    pub weights: TrafficWeights,
    /// The header route in force (the `setHeaderRoute` step's name), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_route: Option<String>,
    /// Whether every route carries `weights` (and the header route) and every parent Gateway
    /// has accepted it: `Accepted=True` and `ResolvedRefs=True` for the route's generation.
    #[serde(default)]
    pub verified: bool,
    /// When the routing in force was first seen verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Time>,
    /// Since when the routing has not been verified (written, not yet accepted; or changed by
    /// someone else). A pause step does not count this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified_since: Option<Time>,
    /// Why the routing is not verified: the route, the parent and the condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The share of requests, in percent, each arm receives. They sum to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// The stable revision's share.
    pub stable: i32,
    /// The canary's share.
    pub canary: i32,
    /// The baseline's share (0 without a baseline).
    #[serde(default)]
    pub baseline: i32,
}

impl Default for TrafficWeights {
    fn default() -> Self {
        TrafficWeights::all_stable()
    }
}

impl TrafficWeights {
    /// Everything to the stable revision.
    pub const fn all_stable() -> TrafficWeights {
        TrafficWeights {
            stable: 100,
            canary: 0,
            baseline: 0,
        }
    }

    /// The weights for a canary at `canary` percent (clamped to 0–100); with a `baseline`, the
    /// baseline gets as much as the canary while both fit (`min(canary, 100 - canary)`), and the
    /// stable the rest.
    pub fn for_canary(canary: i32, baseline: bool) -> TrafficWeights {
        let canary = canary.clamp(0, 100);
        let baseline = if baseline {
            canary.min(100 - canary)
        } else {
            0
        };
        TrafficWeights {
            stable: 100 - canary - baseline,
            canary,
            baseline,
        }
    }
}

impl std::fmt::Display for TrafficWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stable {}%, canary {}%", self.stable, self.canary)?;
        if self.baseline > 0 {
            write!(f, ", baseline {}%", self.baseline)?;
        }
        Ok(())
    }
}

/// Most timeline entries kept in status; older ones are dropped first.
pub const TIMELINE_LIMIT: usize = 50;

/// One timestamped fact in a rollout's history. Repeats of the same fact in a row (analysis data
/// going missing and coming back every few looks) are folded into one entry with a `count`, so
/// they never push the anchors (`CanaryStarted`, `Promoted`, a rollback) out of the timeline.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// When it happened (the first time, for a folded entry).
    pub time: Time,
    /// What happened (also the Event reason).
    pub reason: Reason,
    /// A sentence with the details (of the latest occurrence, for a folded entry).
    pub message: String,
    /// The revision (pod-template-hash) concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// How many times it happened in a row, when more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// When it last happened, when more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<Time>,
}

/// The state of canary analysis, kept in status so a restarted controller continues where it was.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStatus {
    /// pod-template-hash of the canary this evidence is about.
    pub revision: String,
    /// When the judge last looked (or tried to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_look_at: Option<Time>,
    /// Looks so far.
    #[serde(default)]
    pub looks: u32,
    /// Overall outcome of the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<AnalysisOutcome>,
    /// Why, in a sentence with the numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Consecutive looks that could not get data (Prometheus unreachable, query error, no data).
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Since when the rollout has been held at a step because analysis did not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<Time>,
    /// When the evidence first turned against the canary (the incident's anchor time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adverse_since: Option<Time>,
    /// The planned decision look: the first look at or after this time also judges all the
    /// evidence with one exact test (the end of the steps' pauses, or of the bake, fixed when
    /// the analysis started). Absent when the plan has no fixed end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_at: Option<Time>,
    /// Per metric, in `spec.analysis.metrics` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricStatus>,
    /// Container restarts per pod when first seen and when last seen (`[first, last]`), for
    /// counting restarts per interval.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pod_restarts: std::collections::BTreeMap<String, [i32; 2]>,
}

/// The overall outcome of an analysis look, as kept in `status.analysis.outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum AnalysisOutcome {
    /// Every metric passes: the rollout may advance.
    Pass,
    /// A metric failed: roll back.
    Fail,
    /// Not enough evidence yet: hold at the step.
    Inconclusive,
    /// No data could be had: hold, look again with back-off.
    Unavailable,
    /// A ceiling broke in the canary and the baseline alike: hold, do not roll back.
    CommonMode,
}

impl AnalysisOutcome {
    /// The name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisOutcome::Pass => "Pass",
            AnalysisOutcome::Fail => "Fail",
            AnalysisOutcome::Inconclusive => "Inconclusive",
            AnalysisOutcome::Unavailable => "Unavailable",
            AnalysisOutcome::CommonMode => "CommonMode",
        }
    }
}

display_as_str!(AnalysisOutcome);

/// One metric's verdict at a look (and, `Pass`/`Fail`/`Inconclusive`, at the planned decision).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum MetricVerdict {
    /// The canary is no worse than the margin allows (or quiet enough to rule a regression out).
    Pass,
    /// The canary is worse than the margin allows, beyond doubt.
    Fail,
    /// Not enough evidence either way yet.
    #[default]
    Inconclusive,
    /// An absolute ceiling (`maxRate`, `maxRestartsPerPod`) broke.
    CeilingBreached,
    /// No data for this metric at this look.
    Unavailable,
}

impl MetricVerdict {
    /// The name, as serialized and as the `outcome` label of
    /// `firebreak_analysis_decisions_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricVerdict::Pass => "Pass",
            MetricVerdict::Fail => "Fail",
            MetricVerdict::Inconclusive => "Inconclusive",
            MetricVerdict::CeilingBreached => "CeilingBreached",
            MetricVerdict::Unavailable => "Unavailable",
        }
    }

    /// Whether this verdict is against the canary.
    pub fn is_adverse(self) -> bool {
        match self {
            MetricVerdict::Fail | MetricVerdict::CeilingBreached => true,
            MetricVerdict::Pass | MetricVerdict::Inconclusive | MetricVerdict::Unavailable => false,
        }
    }
}

display_as_str!(MetricVerdict);

/// Accumulated evidence and the last verdict of one metric.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// `spec.analysis.metrics[].name`.
    pub name: String,
    /// The verdict of the last look.
    pub verdict: MetricVerdict,
    /// End of the last window whose counts were folded in; the next window starts here, so a
    /// look that fails loses no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_until: Option<Time>,
    /// The verdict as a sentence with the numbers.
    pub summary: String,
    /// The planned decision look's outcome for this metric, once it has happened: `Pass`,
    /// `Fail` or `Inconclusive`. A `Pass` stands for the rest of the analysis unless the
    /// continuous test fails later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_decision: Option<MetricVerdict>,
    /// The judge's accumulated evidence (exact; see `firebreak_judge::Evidence`).
    pub evidence: firebreak_judge::Evidence,
}

/// A running bake watch: the promoted revision judged against a slice of the previous one.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BakeStatus {
    /// pod-template-hash of the promoted revision being baked.
    pub revision: String,
    /// pod-template-hash of the previous stable revision, kept at one pod as the baseline.
    pub previous: String,
    /// When the bake started (the promotion).
    pub started_at: Time,
    /// When it ends.
    pub until: Time,
}

/// The deployment window's state for this Rollout.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowStatus {
    /// Whether rollouts may start and advance now.
    pub open: bool,
    /// Why, for people.
    pub message: String,
    /// When it opens next, if closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<Time>,
    /// When it closes next, if open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<Time>,
}
