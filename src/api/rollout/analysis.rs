//! Canary analysis in the spec (`spec.analysis`): the metrics that judge a canary, and the PromQL
//! templates and variables of an error-rate metric with the CEL rules that check them.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::UNIQUE_NAMES_RULE;
use crate::api::duration::{DURATION_PATTERN, DurationString};

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
