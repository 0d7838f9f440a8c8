//! The `Rollout` custom resource (`firebreak.dev/v1alpha1`, short name `frb`).
//!
//! The names here are Firebreak's public contract (DESIGN.md, "The API contract"). Validation that
//! the API server can do is in the schema (ranges, patterns) and in CEL rules; what it cannot do is
//! checked by [`crate::controller::validate`] and reported in status.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ROLLOUT_LABEL;
use super::duration::{DURATION_PATTERN, DurationString};

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

/// A canary strategy: a list of steps, and whether to run a dedicated baseline.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// Also run a fresh baseline ReplicaSet (the stable template) at the canary's size and judge
    /// the canary against it instead of against the long-running stable pods.
    #[serde(default)]
    pub baseline: bool,

    /// The steps, in order. Finishing the last step promotes the canary.
    #[schemars(length(min = 1, max = 64))]
    pub steps: Vec<Step>,

    /// Longest a canary may take from its start to promotion, e.g. `2h`; past it the canary is
    /// rolled back. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<DurationString>,
}

/// One canary step: exactly one of `setWeight` or `pause`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new("has(self.setWeight) != has(self.pause)").message("each step sets exactly one of setWeight or pause, e.g. `- setWeight: 10` or `- pause: {duration: 5m}`"))]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Percent (0–100) of traffic for the canary. Without a traffic router, the share of pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,

    /// Wait: for `duration`, or (without one) until `firebreak promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<Pause>,
}

/// A pause step.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pause {
    /// How long to wait, e.g. `30s`, `5m`, `1h30m`. Absent: wait for `promote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationString>,
}

/// What happens when analysis has been inconclusive past its deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum OnInconclusive {
    /// Keep holding the rollout at its step (never promote) until the data arrives.
    #[default]
    Hold,
    /// Roll back.
    Rollback,
}

/// The shortest `analysis.interval`: 5 seconds. Each look measures the window since the last
/// one, and Prometheus only has new samples once per scrape interval: a window shorter than about
/// two scrapes often holds no sample for an arm, so looks flip between data and no data (the test
/// environment scrapes every 2 s; production Prometheus usually every 15–60 s, where the interval
/// should be a minute or more).
pub const MIN_ANALYSIS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The CEL rule of `analysis.interval`: at least [`MIN_ANALYSIS_INTERVAL`] (the shape and the
/// general bounds are the duration's own rule).
fn min_interval_rule() -> String {
    format!(
        "size(self) == 0 || !self.matches('{DURATION_PATTERN}') || duration(self) >= duration('{}s')",
        MIN_ANALYSIS_INTERVAL.as_secs()
    )
}

/// Canary analysis settings.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// How often the judge looks, e.g. `30s`; at least 5s, since a window shorter than about two
    /// Prometheus scrape intervals often has no data and the looks flap. Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(min_interval_rule()).message(Message::Message(format!(
        "must be at least {}s: a look measures the window since the last one, and a window shorter than about two Prometheus scrape intervals often has no data",
        MIN_ANALYSIS_INTERVAL.as_secs()
    ))))]
    pub interval: Option<DurationString>,

    /// 1 − the probability of a false rollback over the whole rollout, in (0, 1). Default 0.99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.5, max = 0.999999))]
    pub confidence: Option<f64>,

    /// What to do when data is still missing after the deadline. Default `Hold`.
    #[serde(default)]
    pub on_inconclusive: OnInconclusive,

    /// The metrics that judge the canary. Names are unique.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(validation = Rule::new(UNIQUE_NAMES_RULE).message("two metrics have the same name; give each metric its own name (it names the metric in status and incidents)"))]
    pub metrics: Vec<Metric>,
}

/// One analysis metric: exactly one of `errorRate` or `crashRate`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new("has(self.errorRate) != has(self.crashRate)").message("each metric sets exactly one of errorRate or crashRate"))]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// A name for people and for the incident record, e.g. `http-errors`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,

    /// Error rate from Prometheus: errors / requests, canary vs baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<ErrorRate>,

    /// Crash rate from pod status: restarts per pod-hour, canary vs baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_rate: Option<CrashRate>,
}

/// An error-rate metric.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRate {
    /// Where the counts come from.
    pub prometheus: PrometheusQueries,
    /// Largest tolerated canary/baseline error-rate ratio, ≥ 1. Default 1.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 1000.0))]
    pub max_ratio: Option<f64>,
    /// Absolute ceiling on the canary's error fraction (0–1), whatever the baseline does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_rate: Option<f64>,
}

/// The variables of a PromQL template, each written `{{name}}`: the arm's pod-template-hash,
/// `canary` or `baseline`, the Rollout's namespace and name, and the look's window (e.g. `30s`).
/// Any other `{{…}}` in a query is refused.
pub const TEMPLATE_VARIABLES: [&str; 5] = ["revision", "arm", "namespace", "rollout", "interval"];

/// The `{{…}}` tokens of a query, as the CEL rule finds them with the RE2 expression
/// `[{][{][^}]*[}][}]` (leftmost first, not overlapping).
pub fn template_tokens(query: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut from = 0;
    while let Some(open) = query[from..].find("{{").map(|i| from + i) {
        let body = open + 2;
        match query[body..].find('}').map(|i| body + i) {
            Some(close) if query[close..].starts_with("}}") => {
                tokens.push(&query[open..close + 2]);
                from = close + 2;
            }
            // No token starts here; one may start at the next brace (`{{{arm}}`).
            _ => from = open + 1,
        }
    }
    tokens
}

/// The CEL list of the known `{{…}}` tokens: `['{{revision}}', …]`.
fn known_tokens_cel() -> String {
    let tokens: Vec<String> = TEMPLATE_VARIABLES
        .iter()
        .map(|v| format!("'{{{{{v}}}}}'"))
        .collect();
    format!("[{}]", tokens.join(", "))
}

/// The known variables for messages: `{{revision}}, {{arm}}, …`.
pub fn known_variables_text() -> String {
    TEMPLATE_VARIABLES
        .iter()
        .map(|v| format!("{{{{{v}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The CEL rule of a query template: every `{{…}}` is a known variable.
fn template_rule() -> String {
    format!(
        "self.findAll('[{{][{{][^}}]*[}}][}}]').all(v, v in {})",
        known_tokens_cel()
    )
}

/// The message expression of [`template_rule`]: names the first unknown variable.
fn template_message() -> String {
    format!(
        "'unknown template variable ' + self.findAll('[{{][{{][^}}]*[}}][}}]').filter(v, !(v in {known}))[0] + '; the variables are {text}'",
        known = known_tokens_cel(),
        text = known_variables_text(),
    )
}

/// PromQL templates for an error-rate metric. Variables: `{{revision}}`, `{{arm}}`,
/// `{{namespace}}`, `{{rollout}}`, `{{interval}}` ([`TEMPLATE_VARIABLES`]); any other `{{…}}`
/// is refused.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusQueries {
    /// Prometheus base URL, e.g. `http://prometheus.monitoring:9090`.
    #[schemars(length(min = 1, max = 2048))]
    pub address: String,
    /// Query for the number of failed requests of one arm over `{{interval}}`.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new(template_rule()).message(Message::Expression(template_message())))]
    pub errors: String,
    /// Query for the number of all requests of one arm over `{{interval}}`.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new(template_rule()).message(Message::Expression(template_message())))]
    pub total: String,
}

/// A crash-rate metric, measured from pod status.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrashRate {
    /// Largest tolerated canary/baseline restarts-per-pod-hour ratio, ≥ 1. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 1000.0))]
    pub max_ratio: Option<f64>,
    /// Restarts of any one canary pod that roll back at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_restarts_per_pod: Option<i32>,
}

/// The bake watch after promotion.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bake {
    /// How long to keep judging after promotion, e.g. `1h`.
    pub duration: DurationString,
}

/// The shape of an IANA time zone name (`Europe/Berlin`, `America/Argentina/Buenos_Aires`,
/// `Etc/GMT+5`, `UTC`); whether the zone exists is checked by the controller.
pub const TIME_ZONE_PATTERN: &str = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$";

/// Deployment windows and freezes. The schema checks the shapes; whether the time zone exists
/// and whether each date exists in the calendar is checked by the controller
/// ([`crate::schedule::windows::compile`]), which marks the Rollout Degraded otherwise.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Windows {
    /// IANA time zone of the windows, e.g. `Europe/Berlin`. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIME_ZONE_PATTERN))]
    #[x_kube(validation = Rule::new(format!("self.matches('{TIME_ZONE_PATTERN}')")).message("must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC"))]
    pub time_zone: Option<String>,
    /// Weekly windows in which rollouts may start and advance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub allow: Vec<AllowWindow>,
    /// Date ranges in which rollouts may not start or advance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub deny: Vec<DenyWindow>,
}

/// The days of `spec.windows.allow[].days`, Monday first.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The schema of `days`: one to seven of [`WEEKDAYS`].
fn weekdays_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 7,
        "items": {"type": "string", "enum": WEEKDAYS},
    })
}

/// A weekly window, e.g. Mon–Thu 09:00–16:00.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new("self.start != self.end").message("start and end are equal, which is ambiguous: for a whole day write start 00:00 and end 24:00, otherwise make them differ").field_path(".end"))]
#[serde(rename_all = "camelCase")]
pub struct AllowWindow {
    /// Days of the week: `Mon`, `Tue`, `Wed`, `Thu`, `Fri`, `Sat`, `Sun`.
    // Strings rather than an enum, on purpose: the schema lists the days, and an object stored
    // before it did is still read by the controller, which then names the misspelt day and its
    // position (`WindowError::Day`) instead of failing to read the whole Rollout.
    #[schemars(schema_with = "weekdays_schema")]
    pub days: Vec<String>,
    /// Local start time, `HH:MM`.
    #[schemars(length(max = 5), regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// Local end time, `HH:MM`; before `start` means the window crosses midnight.
    #[schemars(length(max = 5), regex(pattern = r"^([01][0-9]|2[0-4]):[0-5][0-9]$"))]
    pub end: String,
}

/// A local civil date-time as the schema admits it in `spec.windows.deny`: `2026-12-20T00:00:00`,
/// `2026-12-20T00:00` or `2026-12-20` (midnight). Whether the date exists (`2026-02-30`) is
/// checked by the controller.
pub const CIVIL_DATE_TIME_PATTERN: &str = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?$";

/// The CEL rule of a freeze bound: [`CIVIL_DATE_TIME_PATTERN`], with [`CIVIL_MESSAGE`].
fn civil_rule() -> String {
    format!("self.matches('{CIVIL_DATE_TIME_PATTERN}')")
}

/// What a freeze bound must look like.
const CIVIL_MESSAGE: &str = "must be a local date-time such as 2026-12-20T00:00:00, 2026-12-20T00:00 or 2026-12-20 (midnight), without offset or zone: it is read in spec.windows.timeZone";

/// A CEL expression that writes the civil date-time `self.<field>` in its longest form, so that
/// two of them compare as strings in time order.
fn full_civil_cel(field: &str) -> String {
    format!(
        "(size(self.{field}) == 10 ? self.{field} + 'T00:00:00' : size(self.{field}) == 16 ? self.{field} + ':00' : self.{field})"
    )
}

/// The CEL rule of a freeze: `to` after `from` (checked once both have the right shape).
fn freeze_order_rule() -> String {
    format!(
        "!self.from.matches('{p}') || !self.to.matches('{p}') || {from} < {to}",
        p = CIVIL_DATE_TIME_PATTERN,
        from = full_civil_cel("from"),
        to = full_civil_cel("to"),
    )
}

/// A freeze, in local civil time, e.g. `2026-12-20T00:00:00`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new(freeze_order_rule()).message("to must be after from: a freeze covers from (inclusive) to to (exclusive) in spec.windows.timeZone").field_path(".to"))]
#[serde(rename_all = "camelCase")]
pub struct DenyWindow {
    /// Start (inclusive), local civil date-time: `2026-12-20T00:00:00`, `2026-12-20T00:00` or
    /// `2026-12-20`.
    #[schemars(length(max = 32), regex(pattern = CIVIL_DATE_TIME_PATTERN))]
    #[x_kube(validation = Rule::new(civil_rule()).message(CIVIL_MESSAGE))]
    pub from: String,
    /// End (exclusive), local civil date-time, after `from`.
    #[schemars(length(max = 32), regex(pattern = CIVIL_DATE_TIME_PATTERN))]
    #[x_kube(validation = Rule::new(civil_rule()).message(CIVIL_MESSAGE))]
    pub to: String,
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

/// A notification receiver.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// A name for status and Events, unique among the Rollout's notifications.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// A webhook receiver.
    pub webhook: Webhook,
}

/// A webhook receiver whose URL is kept in a Secret.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Payload format: `slack` or `json`.
    pub format: WebhookFormat,
    /// Where the URL is read from.
    pub url_from: UrlSource,
}

/// The payload a webhook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// A Slack incoming-webhook message (`{"text": …}`).
    Slack,
    /// Firebreak's own JSON document: the event, the rollout, the revision and the incident.
    Json,
}

/// Source of a webhook URL.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UrlSource {
    /// A key of a Secret in the Rollout's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the Secret's data.
    pub key: String,
}

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

/// Why an automatic rollback (or a hold instead of one) happened: an Incident's trigger, the
/// rollback's timeline entry and Event reason, and the `trigger` label of
/// `firebreak_rollback_seconds`. Every variant but [`Trigger::CommonModeHold`] rolls back, and
/// every one of them notifies (`NotificationEvent::for_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum Trigger {
    /// The judge found the canary worse than the baseline (or past an absolute ceiling).
    AnalysisFailed,
    /// A user ran `firebreak abort`.
    Aborted,
    /// The canary's pods did not become available within `spec.progressDeadlineSeconds`.
    ProgressDeadlineExceeded,
    /// Analysis stayed inconclusive past the deadline with `analysis.onInconclusive: Rollback`.
    AnalysisInconclusive,
    /// The canary ran longer than `spec.strategy.canary.maxDuration`.
    MaxDurationExceeded,
    /// The promoted revision failed its bake (`spec.bake`): the previous revision is stable again.
    BakeFailed,
    /// The baseline is as bad as the canary: held at its step, nothing rolled back.
    CommonModeHold,
}

impl Trigger {
    /// Every trigger, for tests and documentation.
    pub const ALL: [Trigger; 7] = [
        Trigger::AnalysisFailed,
        Trigger::Aborted,
        Trigger::ProgressDeadlineExceeded,
        Trigger::AnalysisInconclusive,
        Trigger::MaxDurationExceeded,
        Trigger::BakeFailed,
        Trigger::CommonModeHold,
    ];

    /// Whether the trigger rolls the revision back (all but a common-mode hold).
    pub fn rolls_back(self) -> bool {
        match self {
            Trigger::AnalysisFailed
            | Trigger::Aborted
            | Trigger::ProgressDeadlineExceeded
            | Trigger::AnalysisInconclusive
            | Trigger::MaxDurationExceeded
            | Trigger::BakeFailed => true,
            Trigger::CommonModeHold => false,
        }
    }

    /// Whose problem the trigger points at, before anyone looked: the canary's measured behaviour
    /// (`change`), the baseline as bad as the canary (`common-mode`), or something outside the
    /// canary's metrics (`external`: a user's abort, a limit on time).
    pub fn triage(self) -> super::Triage {
        use super::Triage;
        match self {
            Trigger::AnalysisFailed | Trigger::ProgressDeadlineExceeded | Trigger::BakeFailed => {
                Triage::Change
            }
            Trigger::Aborted | Trigger::AnalysisInconclusive | Trigger::MaxDurationExceeded => {
                Triage::External
            }
            Trigger::CommonModeHold => Triage::CommonMode,
        }
    }

    /// The timeline entry and Event reason of the trigger.
    pub fn reason(self) -> Reason {
        match self {
            Trigger::AnalysisFailed => Reason::AnalysisFailed,
            Trigger::Aborted => Reason::Aborted,
            Trigger::ProgressDeadlineExceeded => Reason::ProgressDeadlineExceeded,
            Trigger::AnalysisInconclusive => Reason::AnalysisInconclusive,
            Trigger::MaxDurationExceeded => Reason::MaxDurationExceeded,
            Trigger::BakeFailed => Reason::BakeFailed,
            Trigger::CommonModeHold => Reason::CommonModeHold,
        }
    }

    /// Why it happened, in words that follow "rolled back" or "held": "after canary analysis
    /// failed".
    pub fn words(self) -> &'static str {
        match self {
            Trigger::AnalysisFailed => "after canary analysis failed",
            Trigger::Aborted => "on a user's request (`firebreak abort`)",
            Trigger::ProgressDeadlineExceeded => {
                "because its pods did not become available before the progress deadline"
            }
            Trigger::AnalysisInconclusive => {
                "because canary analysis stayed inconclusive past its deadline"
            }
            Trigger::MaxDurationExceeded => {
                "because the canary ran longer than its maximum duration (spec.strategy.canary.maxDuration)"
            }
            Trigger::BakeFailed => "because canary analysis failed during the bake after promotion",
            Trigger::CommonModeHold => {
                "because the baseline failed as badly as the canary (a common-mode problem)"
            }
        }
    }

    /// The name, as serialized: `AnalysisFailed`, `BakeFailed`, …
    pub fn as_str(self) -> &'static str {
        self.reason().as_str()
    }
}

display_as_str!(Trigger);

/// What happened to a Rollout: the reason of a timeline entry and of the Kubernetes Event
/// Firebreak publishes about it. Serialized as its CamelCase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum Reason {
    /// The first revision (or one whose stable ReplicaSet vanished) deployed straight to stable.
    Deployed,
    /// `firebreak retry`: a rolled-back revision is rolled out again.
    Retried,
    /// A newer template (or a revert) replaced the running canary.
    CanarySuperseded,
    /// The template went back to a previously stable revision: steps skipped.
    FastRollback,
    /// A new revision started as canary.
    CanaryStarted,
    /// A canary step finished.
    StepCompleted,
    /// `firebreak promote --full`: the remaining steps are skipped.
    PromotedFull,
    /// The canary became stable.
    Promoted,
    /// The bake watch started after a promotion.
    BakeStarted,
    /// A new revision ended the bake early.
    BakeSuperseded,
    /// The bake ended without trouble.
    BakeCompleted,
    /// Analysis could not get data for two looks in a row: the rollout holds.
    AnalysisUnavailable,
    /// Analysis has data again.
    AnalysisRecovered,
    /// Rolled back: analysis failed.
    AnalysisFailed,
    /// Rolled back: `firebreak abort`.
    Aborted,
    /// Rolled back: the canary missed the progress deadline.
    ProgressDeadlineExceeded,
    /// Rolled back: analysis inconclusive past the deadline.
    AnalysisInconclusive,
    /// Rolled back: the canary ran past `maxDuration`.
    MaxDurationExceeded,
    /// Rolled back during the bake.
    BakeFailed,
    /// Held, not rolled back: the baseline is as bad as the canary.
    CommonModeHold,
}

impl Reason {
    /// The name, as serialized and as the Event reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Deployed => "Deployed",
            Reason::Retried => "Retried",
            Reason::CanarySuperseded => "CanarySuperseded",
            Reason::FastRollback => "FastRollback",
            Reason::CanaryStarted => "CanaryStarted",
            Reason::StepCompleted => "StepCompleted",
            Reason::PromotedFull => "PromotedFull",
            Reason::Promoted => "Promoted",
            Reason::BakeStarted => "BakeStarted",
            Reason::BakeSuperseded => "BakeSuperseded",
            Reason::BakeCompleted => "BakeCompleted",
            Reason::AnalysisUnavailable => "AnalysisUnavailable",
            Reason::AnalysisRecovered => "AnalysisRecovered",
            Reason::AnalysisFailed => "AnalysisFailed",
            Reason::Aborted => "Aborted",
            Reason::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            Reason::AnalysisInconclusive => "AnalysisInconclusive",
            Reason::MaxDurationExceeded => "MaxDurationExceeded",
            Reason::BakeFailed => "BakeFailed",
            Reason::CommonModeHold => "CommonModeHold",
        }
    }

    /// The trigger, when this reason is an automatic rollback, an abort or a common-mode hold.
    pub fn trigger(self) -> Option<Trigger> {
        match self {
            Reason::AnalysisFailed => Some(Trigger::AnalysisFailed),
            Reason::Aborted => Some(Trigger::Aborted),
            Reason::ProgressDeadlineExceeded => Some(Trigger::ProgressDeadlineExceeded),
            Reason::AnalysisInconclusive => Some(Trigger::AnalysisInconclusive),
            Reason::MaxDurationExceeded => Some(Trigger::MaxDurationExceeded),
            Reason::BakeFailed => Some(Trigger::BakeFailed),
            Reason::CommonModeHold => Some(Trigger::CommonModeHold),
            Reason::Deployed
            | Reason::Retried
            | Reason::CanarySuperseded
            | Reason::FastRollback
            | Reason::CanaryStarted
            | Reason::StepCompleted
            | Reason::PromotedFull
            | Reason::Promoted
            | Reason::BakeStarted
            | Reason::BakeSuperseded
            | Reason::BakeCompleted
            | Reason::AnalysisUnavailable
            | Reason::AnalysisRecovered => None,
        }
    }

    /// A condition that may come and go many times (data missing, data back): repeats are
    /// folded into one timeline entry with a count.
    pub fn is_condition(self) -> bool {
        match self {
            Reason::AnalysisUnavailable | Reason::AnalysisRecovered => true,
            Reason::Deployed
            | Reason::Retried
            | Reason::CanarySuperseded
            | Reason::FastRollback
            | Reason::CanaryStarted
            | Reason::StepCompleted
            | Reason::PromotedFull
            | Reason::Promoted
            | Reason::BakeStarted
            | Reason::BakeSuperseded
            | Reason::BakeCompleted
            | Reason::AnalysisFailed
            | Reason::Aborted
            | Reason::ProgressDeadlineExceeded
            | Reason::AnalysisInconclusive
            | Reason::MaxDurationExceeded
            | Reason::BakeFailed
            | Reason::CommonModeHold => false,
        }
    }

    /// An anchor of the rollout's story: never dropped from a bounded timeline while newer,
    /// lesser entries can go instead.
    pub fn is_anchor(self) -> bool {
        match self {
            Reason::Deployed
            | Reason::CanaryStarted
            | Reason::Promoted
            | Reason::PromotedFull
            | Reason::FastRollback
            | Reason::BakeStarted
            | Reason::BakeCompleted
            | Reason::Retried => true,
            Reason::CanarySuperseded
            | Reason::StepCompleted
            | Reason::BakeSuperseded
            | Reason::AnalysisUnavailable
            | Reason::AnalysisRecovered => false,
            Reason::AnalysisFailed
            | Reason::Aborted
            | Reason::ProgressDeadlineExceeded
            | Reason::AnalysisInconclusive
            | Reason::MaxDurationExceeded
            | Reason::BakeFailed
            | Reason::CommonModeHold => true,
        }
    }
}

display_as_str!(Reason);

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
