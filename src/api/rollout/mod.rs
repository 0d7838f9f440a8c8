//! The `Rollout` custom resource (`firebreak.dev/v1alpha1`, short name `frb`).
//!
//! The names here are Firebreak's public contract (DESIGN.md, "The API contract"). Validation that
//! the API server can do is in the schema (ranges, patterns) and in CEL rules; what it cannot do is
//! checked by [`crate::controller::validate`] and reported in status.
//!
//! This file holds the spec: the resource, its strategy and steps, the bake and the kill switch.
//! The spec's larger parts and the status are in the submodules, all re-exported here:
//! `analysis` (canary analysis and its PromQL templates), `windows` (deployment windows and
//! freezes), `notification` (receivers), `status` (the observed state) and `reason`
//! (rollback triggers and timeline reasons).

mod analysis;
mod notification;
mod reason;
mod status;
mod traffic;
mod windows;

pub use analysis::*;
pub use notification::*;
pub use reason::*;
pub use status::*;
pub use traffic::*;
pub use windows::*;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ROLLOUT_LABEL;
use super::duration::DurationString;

/// Desired state of a Rollout: a Deployment-like pod template plus how to move it to production.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[kube(
    group = "firebreak.dev",
    version = "v1alpha1",
    kind = "Rollout",
    namespaced,
    status = "RolloutStatus",
    shortname = "frb",
    category = "all",
    derive = "PartialEq",
    doc = "A Rollout replaces a Deployment: it moves each new pod template through canary steps, judges it against the stable version, and promotes or rolls it back.",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.replicas","labelSelectorPath":".status.selector"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Step","type":"integer","jsonPath":".status.currentStepIndex"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".status.canaryWeight"}"#,
    printcolumn = r#"{"name":"Stable","type":"string","jsonPath":".status.stableRevision"}"#,
    printcolumn = r#"{"name":"Canary","type":"string","jsonPath":".status.canaryRevision"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new(format!("size(self.metadata.name) <= {MAX_ROLLOUT_NAME_LENGTH}")).message(Message::Message(format!(
        "metadata.name must be at most {MAX_ROLLOUT_NAME_LENGTH} characters, because it is the value of the {ROLLOUT_LABEL} label on the Rollout's ReplicaSets and pods; choose a shorter name"
    )))
)]
#[x_kube(validation = Rule::new(
    "has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0 && has(self.template.metadata) && has(self.template.metadata.labels) && self.selector.matchLabels.all(k, k in self.template.metadata.labels && self.template.metadata.labels[k] == self.selector.matchLabels[k])"
).message("spec.selector.matchLabels must be non-empty and every label in it must appear with the same value in spec.template.metadata.labels"))]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Number of pods the Rollout runs at steady state. Default 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,

    /// Label selector of the Rollout's pods. Must match `template.metadata.labels`.
    pub selector: LabelSelector,

    /// The pod template, exactly as in a Deployment. A change starts a new rollout.
    pub template: PodTemplateSpec,

    /// How many old ReplicaSets (scaled to zero) are kept for fast rollback. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub revision_history_limit: Option<i32>,

    /// Seconds a canary (or the stable version) may take to make progress before the rollout is
    /// rolled back (canary) or marked Degraded (stable). Default 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: Option<i32>,

    /// Hold the rollout at its current step. Scaling and rollback still happen.
    #[serde(default)]
    pub paused: bool,

    /// How a new revision is moved to production.
    pub strategy: Strategy,

    /// Canary analysis: which metrics judge the canary against its baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,

    /// After promotion, keep judging the new revision against a slice of the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<Bake>,

    /// When a rollout may start or advance. Rollback is always allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Windows>,

    /// A feature flag flipped to its safe value before traffic moves back on rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_switch: Option<KillSwitch>,

    /// Who is told when a rollout starts, is promoted or is rolled back. Names are unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new(UNIQUE_NAMES_RULE).message("two notifications have the same name; give each notification its own name"))]
    pub notifications: Vec<Notification>,
}

/// Longest Rollout name: it is a label value (`firebreak.dev/rollout`), and label values have at
/// most 63 characters. A longer name could never select its ReplicaSets.
pub const MAX_ROLLOUT_NAME_LENGTH: usize = 63;

/// A CEL rule on a list of objects with a `name`: no two share it.
const UNIQUE_NAMES_RULE: &str = "self.all(x, self.exists_one(y, y.name == x.name))";

fn default_replicas() -> i32 {
    1
}

/// The rollout strategy. Only `canary` exists today.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// Canary steps.
    pub canary: CanaryStrategy,
}

/// A canary strategy: a list of steps, whether to run a dedicated baseline, and how traffic
/// reaches the canary.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new("!self.baseline || !has(self.trafficRouting) || has(self.trafficRouting.services.baseline)").message("baseline: true with trafficRouting needs trafficRouting.services.baseline, the Service that selects the baseline's pods"))]
#[x_kube(validation = Rule::new("has(self.trafficRouting) || self.steps.all(s, !has(s.setCanaryScale) && !has(s.setHeaderRoute))").message("setCanaryScale and setHeaderRoute steps need a traffic router: set spec.strategy.canary.trafficRouting, or use setWeight (which sizes the canary by pods without one)"))]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Also run a fresh baseline ReplicaSet (the stable template) at the canary's size and judge
    /// the canary against it instead of against the long-running stable pods.
    #[serde(default)]
    pub baseline: bool,

    /// The steps, in order. Finishing the last step promotes the canary.
    #[schemars(length(min = 1, max = 64))]
    pub steps: Vec<Step>,

    /// A traffic router: the canary's weight becomes an exact share of requests, independent of
    /// pod counts. Absent: traffic follows pods (the canary's share of pods is its weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_routing: Option<TrafficRouting>,

    /// With a router: seconds the canary's pods keep running after a rollback has moved all
    /// traffic to stable (verified at the gateway), so that requests a gateway still sends them
    /// while its data plane catches up are answered. Default 30 (as Argo Rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub abort_scale_down_delay_seconds: Option<i32>,

    /// Longest a canary may take from its start to promotion, e.g. `2h`; past it the canary is
    /// rolled back. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<DurationString>,
}

/// One canary step: exactly one of `setWeight`, `pause`, `setCanaryScale` or `setHeaderRoute`.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new("[has(self.setWeight), has(self.pause), has(self.setCanaryScale), has(self.setHeaderRoute)].exists_one(x, x)").message("each step sets exactly one of setWeight, pause, setCanaryScale or setHeaderRoute, e.g. `- setWeight: 10` or `- pause: {duration: 5m}`"))]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Percent (0–100) of traffic for the canary. With a traffic router the share of requests is
    /// exact; without one it is the share of pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,

    /// Wait: for `duration`, or (without one) until `firebreak promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,

    /// Size the canary (and baseline) independently of the weight. Needs `trafficRouting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_canary_scale: Option<SetCanaryScale>,

    /// Send requests with matching headers to the canary. Needs `trafficRouting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_header_route: Option<SetHeaderRoute>,
}

/// A pause step.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    /// How long to wait, e.g. `30s`, `5m`, `1h30m`. Absent: wait for `promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationString>,
}

/// The bake watch after promotion.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bake {
    /// How long to keep judging after promotion, e.g. `1h`.
    pub duration: DurationString,
}

/// The kill switch: a feature flag set to its safe value on rollback, before traffic moves back.
/// The previous value is recorded and never restored by Firebreak itself
/// (`firebreak restore-flag` does that on purpose).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KillSwitch {
    /// A ConfigMap key to flip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapFlag>,
    /// An OpenFeature `FeatureFlag` (`core.openfeature.dev`) whose flag's default variant to
    /// switch, if that CRD is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_flag: Option<FeatureFlagSwitch>,
}

/// An OpenFeature flag and its safe variant.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureFlagSwitch {
    /// Name of the `FeatureFlag` resource, in the Rollout's namespace.
    pub name: String,
    /// The flag's key in `spec.flagSpec.flags`.
    pub flag: String,
    /// The variant to make the default.
    pub variant: String,
}

/// A ConfigMap key and the value that turns the new behaviour off.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapFlag {
    /// ConfigMap name, in the Rollout's namespace.
    pub name: String,
    /// Key in the ConfigMap's data.
    pub key: String,
    /// The safe value written on rollback.
    pub value: String,
}
