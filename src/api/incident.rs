//! The `Incident` custom resource (`firebreak.dev/v1alpha1`): the record Firebreak leaves on every
//! automatic rollback, abort or common-mode hold, answering the on-call engineer's first questions
//! (DESIGN.md, "Incident"): blast radius, location, anchor time, system change, temporary
//! mitigation, triage and timeline.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rollout::TimelineEntry;

/// The record of one incident. Written once when it happens; `status` follows up (second wave,
/// notifications).
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "firebreak.dev",
    version = "v1alpha1",
    kind = "Incident",
    namespaced,
    status = "IncidentStatus",
    shortname = "fbinc",
    derive = "PartialEq",
    doc = "What Firebreak did about a bad canary, and what it knows: blast radius, location, anchor time, system change, mitigation, triage and timeline.",
    printcolumn = r#"{"name":"Rollout","type":"string","jsonPath":".spec.rollout"}"#,
    printcolumn = r#"{"name":"Revision","type":"string","jsonPath":".spec.revision"}"#,
    printcolumn = r#"{"name":"Triage","type":"string","jsonPath":".spec.triage"}"#,
    printcolumn = r#"{"name":"Trigger","type":"string","jsonPath":".spec.trigger"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct IncidentSpec {
    /// Name of the Rollout.
    pub rollout: String,
    /// pod-template-hash of the canary revision concerned.
    pub revision: String,
    /// pod-template-hash of the stable revision that kept (or took back) the traffic.
    pub stable_revision: String,
    /// What triggered it.
    pub trigger: super::rollout::Trigger,
    /// One sentence with the numbers, e.g. the judge's verdict.
    pub summary: String,
    /// Whose problem it probably is.
    pub triage: Triage,
    /// Who was affected and how much.
    pub blast_radius: BlastRadius,
    /// Which metric(s) broke, with both arms' numbers.
    #[serde(default)]
    pub location: Vec<MetricEvidence>,
    /// When it started and when it was seen.
    pub anchor: Anchor,
    /// What changed from stable to canary.
    pub change: SystemChange,
    /// What was done, in order, with times.
    #[serde(default)]
    pub mitigation: Vec<MitigationAction>,
    /// Seconds from the evidence first turning against the canary (or, without analysis, from
    /// the canary's start) to the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_detect_seconds: Option<i64>,
    /// Seconds from the decision to the canary having no pods left to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_mitigate_seconds: Option<i64>,
    /// The rollout's timeline up to the incident, blameless and factual.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
}

/// Whose problem it probably is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Triage {
    /// The canary is worse than the baseline: this change.
    Change,
    /// The baseline is as bad as the canary: probably not this change (held, not rolled back).
    CommonMode,
    /// Rolled back for a reason outside the canary's measured behaviour (a user's abort, pods
    /// that never became ready).
    External,
}

impl std::fmt::Display for Triage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Triage::Change => "change",
            Triage::CommonMode => "common-mode",
            Triage::External => "external",
        })
    }
}

/// Who was affected, and how much.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlastRadius {
    /// Highest canary weight reached, percent 0–100.
    pub max_weight: i32,
    /// Seconds the canary served traffic (from its start to the end of mitigation).
    pub served_seconds: i64,
    /// Measured share of requests the canary served while analysed, 0–1 (absent without
    /// error-rate analysis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_share: Option<f64>,
    /// Requests the canary served while analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_requests: Option<u64>,
    /// Failed requests the canary served while analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_failed_requests: Option<u64>,
    /// Failed requests attributable to the canary: its failures minus what the baseline's error
    /// rate predicts for as many requests (never below 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excess_failed_requests: Option<u64>,
    /// Canary pods at the time of the decision.
    pub pods: i32,
    /// Highest restart count of one canary pod (absent without crash analysis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
}

/// One metric's evidence at the time of the incident.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricEvidence {
    /// `spec.analysis.metrics[].name`.
    pub metric: String,
    /// The judge's verdict at the decision.
    pub verdict: super::rollout::MetricVerdict,
    /// The verdict in a sentence with the numbers.
    pub summary: String,
    /// Canary events (failed requests or crashing pods) and exposure (requests or pod-seconds).
    pub canary_events: u64,
    /// Canary exposure.
    pub canary_exposure: f64,
    /// Baseline events.
    pub baseline_events: u64,
    /// Baseline exposure.
    pub baseline_exposure: f64,
}

/// When it started and when it was seen.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    /// When the canary started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_started_at: Option<Time>,
    /// When the evidence first turned against the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_turned_at: Option<Time>,
    /// When Firebreak decided.
    pub detected_at: Option<Time>,
}

/// The pod-template change from stable to canary.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemChange {
    /// Each changed field, stable value → canary value. Secret values are never shown.
    #[serde(default)]
    pub fields: Vec<FieldChange>,
}

/// One changed field of the pod template.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// Where, e.g. `containers[app].image` or `containers[app].env[LOG_LEVEL]`.
    pub path: String,
    /// The stable value (absent: the field is new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<String>,
    /// The canary value (absent: the field was removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
}

/// One thing Firebreak did, with its time.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MitigationAction {
    /// When it was done.
    pub time: Time,
    /// `KillSwitchFlipped`, `TrafficToStable`, `StableScaledUp` (a failed bake's previous revision
    /// grown back), `CanaryScaledDown`, `Held`.
    pub action: String,
    /// Details, e.g. `ConfigMap flags key new-checkout: "true" → "false"`.
    pub detail: String,
}

/// What happened after the record was written.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncidentStatus {
    /// The second-wave check: did the stable recover after mitigation?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_wave: Option<SecondWave>,
    /// Notifications sent about this incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationResult>,
}

/// The second-wave check.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecondWave {
    /// Where the check is.
    pub state: SecondWaveState,
    /// When the watch ends (or ended).
    pub until: Option<Time>,
    /// What was measured, with the numbers.
    pub message: String,
}

/// The state of the second-wave check of the stable revision after a rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SecondWaveState {
    /// The watch runs until `until`.
    Watching,
    /// The stable's error rate shows no lasting rise after the rollback.
    Recovered,
    /// The stable's error rate stayed above its level during the canary: probably not (only)
    /// this change.
    NotRecovered,
    /// Could not be measured (no error-rate analysis, or Prometheus failed).
    Unknown,
}

impl SecondWaveState {
    /// The name, as serialized (and, prefixed with `SecondWave`, the Event reason).
    pub fn as_str(self) -> &'static str {
        match self {
            SecondWaveState::Watching => "Watching",
            SecondWaveState::Recovered => "Recovered",
            SecondWaveState::NotRecovered => "NotRecovered",
            SecondWaveState::Unknown => "Unknown",
        }
    }
}

display_as_str!(SecondWaveState);

/// What a notification is about. Serialized as its reason: the JSON payload's `event`, the
/// Incident's `status.notifications[].event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum NotificationEvent {
    /// A new revision started as canary.
    #[serde(rename = "RolloutStarted")]
    Started,
    /// The canary was promoted to stable.
    #[serde(rename = "RolloutPromoted")]
    Promoted,
    /// The canary was rolled back (automatically or by `firebreak abort`).
    RolledBack,
    /// The canary was held instead of rolled back (common-mode: the baseline is as bad).
    #[serde(rename = "RolloutHeld")]
    Held,
    /// The second-wave check after a rollback ended (recovered or not).
    SecondWaveEnded,
}

impl NotificationEvent {
    /// The CamelCase reason, used as the JSON payload's `event` and in Events and status:
    /// `RolloutStarted`, `RolloutPromoted`, `RolledBack`, `RolloutHeld`, `SecondWaveEnded`.
    pub fn reason(self) -> &'static str {
        match self {
            NotificationEvent::Started => "RolloutStarted",
            NotificationEvent::Promoted => "RolloutPromoted",
            NotificationEvent::RolledBack => "RolledBack",
            NotificationEvent::Held => "RolloutHeld",
            NotificationEvent::SecondWaveEnded => "SecondWaveEnded",
        }
    }

    /// The same as [`NotificationEvent::reason`].
    pub fn as_str(self) -> &'static str {
        self.reason()
    }
}

display_as_str!(NotificationEvent);

/// The outcome of one notification.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationResult {
    /// `spec.notifications[].name`.
    pub name: String,
    /// What it was about, e.g. `RolledBack`.
    pub event: NotificationEvent,
    /// Delivered (a 2xx answer).
    pub delivered: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the last attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// A notification decided but not yet delivered: the controller's outbox, kept in the Rollout's
/// `status.pendingNotifications` so that it survives a crash. It is written there before the
/// first attempt and removed once the receiver answered 2xx (or the attempts ran out; the outcome
/// is then in the Incident's `status.notifications` and an Event).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingNotification {
    /// The idempotency key, sent as the `X-Firebreak-Delivery` header (and `delivery` in JSON
    /// payloads): the same for every attempt of this notification, across restarts, so a
    /// receiver can drop a repeat. Shape: `<rollout uid>.<decision time, Unix ms>.<event>.<n>`.
    pub id: String,
    /// `spec.notifications[].name` of the receiver.
    pub receiver: String,
    /// What it is about.
    pub event: NotificationEvent,
    /// The revision (pod-template-hash) concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The Incident it is about (for `RolledBack`, `RolloutHeld`, `SecondWaveEnded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// When it was decided.
    pub decided_at: Time,
    /// Attempts made so far.
    #[serde(default)]
    pub attempts: u32,
    /// Not before this time (back-off after a failed attempt); absent: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Time>,
    /// The last attempt's error (never the URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
