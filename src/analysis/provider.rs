//! The metric provider seam: one trait that every source of analysis numbers implements
//! (Prometheus error counts in [`super::prometheus`], crash counts from pod status in
//! [`super::crashes`]; latency and web providers later), and the one way a provider's answer
//! becomes an `Observation` of the pure look in [`super::assess`].
//!
//! A provider is asked for one metric at a time and answers for both arms at once: the judge
//! compares the canary with the baseline over the same window, so a window with only one arm's
//! numbers is no measurement. A provider that cannot measure says why in a [`ProviderError`],
//! which the look records as `Unavailable`: the rollout holds (never promotes, never rolls back)
//! and the look is retried with back-off.

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;

use crate::api::Metric;

use super::prometheus::answer::QueryError;
use super::template::Variables;
use std::collections::BTreeMap;

use firebreak_judge::Counts;

/// The two arms being compared, as the template variables of each (revision = the arm's
/// pod-template-hash, `arm` = `canary` or `baseline`, namespace, rollout, and the window as a
/// PromQL duration such as `30s`).
#[derive(Clone, Debug)]
pub struct Arms<'a> {
    /// Variables of the canary arm.
    pub canary: Variables<'a>,
    /// Variables of the baseline arm.
    pub baseline: Variables<'a>,
}

/// One look at one metric: what to measure, for whom, and over which window.
#[derive(Clone, Copy, Debug)]
pub struct Look<'a> {
    /// The metric as `spec.analysis.metrics[]` declares it; a provider reads its own part
    /// (`errorRate`, `crashRate`, …) and refuses a metric of another kind.
    pub metric: &'a Metric,
    /// The canary and baseline arms.
    pub arms: &'a Arms<'a>,
    /// The end of the window: the look's time.
    pub at: Timestamp,
    /// Length of the window ending at `at`, in seconds (≥ 1). Equal to the arms' `interval`.
    pub window_seconds: u64,
}

/// What a provider measured for one metric over one window, both arms.
#[derive(Clone, Debug, PartialEq)]
pub enum Measurement {
    /// Failed requests (events) among all requests (exposure) per arm.
    Errors(Counts),
    /// Crashing pods (events) and pod-seconds (exposure) per arm, with the restart maxima the
    /// absolute ceiling needs and the restart counts to carry to the next window.
    Crashes(CrashWindow),
}

/// A source of analysis numbers.
///
/// Dyn-compatible (the controller picks a provider per metric at run time), so `measure`
/// returns a boxed future rather than being an `async fn`.
pub trait MetricProvider: Send + Sync {
    /// A short name for logs and messages, e.g. `prometheus` or `pod-status`.
    fn name(&self) -> &'static str;

    /// Measures `look.metric` for both arms over the window of `look.window_seconds` seconds
    /// ending at `look.at`. Errors say which query or call failed and how to fix it; they never
    /// stand for a passing or failing canary.
    fn measure<'a>(&'a self, look: Look<'a>) -> BoxFuture<'a, Result<Measurement, ProviderError>>;
}

/// Why a provider has no numbers for a look. The variant name (or the inner error's
/// [`QueryError::metric_label`]) is the Event reason and the metric label.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// A Prometheus query gave no usable count.
    #[error(transparent)]
    Prometheus(#[from] QueryError),
    /// The metric is not of the kind this provider measures (a controller bug: the provider is
    /// chosen by the metric's kind).
    #[error(
        "metric {metric} has no {wanted} section, so the {provider} provider cannot measure it"
    )]
    WrongProvider {
        /// The metric's name.
        metric: String,
        /// The provider asked.
        provider: &'static str,
        /// The spec section that provider reads, e.g. `errorRate`.
        wanted: &'static str,
    },
}

impl ProviderError {
    /// A short, stable label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ProviderError::Prometheus(e) => e.metric_label(),
            ProviderError::WrongProvider { .. } => "WrongProvider",
        }
    }
}

/// The crash counts of one window.
#[derive(Clone, Debug, PartialEq)]
pub struct CrashWindow {
    /// Crashing pods (events) and pod-seconds (exposure) per arm.
    pub counts: Counts,
    /// Highest restarts of one canary pod since analysis started.
    pub canary_max_restarts: u32,
    /// Highest restarts of one baseline pod since analysis started.
    pub baseline_max_restarts: u32,
    /// Restart counts per pod, `[first seen, now]`, to carry to the next window.
    pub pod_restarts: BTreeMap<String, [i32; 2]>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::assess::Observation;

    #[test]
    fn a_failed_measurement_is_unavailable_with_the_query_named() {
        let error = ProviderError::from(QueryError::NotANumber {
            address: "http://p:9090".into(),
            query: "vector(0)/0".into(),
        });
        let Observation::Unavailable(why) = Observation::from(Err(error)) else {
            panic!("a NaN answer was taken as a measurement");
        };
        assert!(why.contains("`vector(0)/0` returned NaN"), "{why}");
    }
}
