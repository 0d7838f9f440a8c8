//! The controller's metrics, all under the `firebreak_` prefix, in one prometheus-client registry.
//!
//! Label cardinality is bounded: `namespace` by the namespaces that hold Rollouts (a namespace's
//! series go when its last Rollout does), `phase` by [`crate::api::Phase`], and every free-form
//! label by a [`LabelCap`]: the first [`METRIC_LABEL_LIMIT`] distinct analysis metric names (they
//! come from users' specs) and the first [`CODE_LABEL_LIMIT`] distinct outcomes, error kinds and
//! rollback triggers (they come from the code, so the cap only guards against a caller passing a
//! message instead of a kind) keep their own series; later values are counted under
//! [`OTHER`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`Metrics::encode`]'s output: OpenMetrics text, which Prometheus
/// negotiates and parses.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How many distinct analysis metric names get their own `metric` label value; the names of
/// later ones are replaced by [`OTHER`].
pub const METRIC_LABEL_LIMIT: usize = 200;

/// How many distinct values each code-supplied label (`outcome`, `kind`, `trigger`) may take
/// before further values are replaced by [`OTHER`].
pub const CODE_LABEL_LIMIT: usize = 64;

/// The label value that stands for every value beyond a label's cap. A metric that is itself
/// named `other` shares its series.
pub const OTHER: &str = "other";

/// Upper bounds of the reconcile duration buckets, in seconds: 1 ms to 10 s.
const RECONCILE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the rollback time buckets, in seconds: 100 ms to 10 minutes. The analysis
/// interval (30 s by default) dominates, so the buckets are dense from 10 s to 5 minutes.
const ROLLBACK_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnalysisLabels {
    metric: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Admits the first `limit` distinct values of one label; later values become [`OTHER`].
#[derive(Debug)]
struct LabelCap {
    limit: usize,
    admitted: Mutex<HashSet<String>>,
}

impl LabelCap {
    fn new(limit: usize) -> Self {
        LabelCap {
            limit,
            admitted: Mutex::new(HashSet::new()),
        }
    }

    /// The label value to use for `value`.
    fn admit(&self, value: &str) -> String {
        let mut admitted = lock(&self.admitted);
        if admitted.contains(value) {
            return value.to_string();
        }
        if admitted.len() < self.limit {
            admitted.insert(value.to_string());
            return value.to_string();
        }
        OTHER.to_string()
    }
}

/// Which phase each Rollout is in, and how many Rollouts each (namespace, phase) holds.
#[derive(Debug, Default)]
struct PhaseBook {
    /// (namespace, rollout) → phase.
    phase_of: HashMap<(String, String), String>,
    /// namespace → phase → number of Rollouts.
    counts: BTreeMap<String, BTreeMap<String, i64>>,
}

struct Inner {
    registry: Registry,
    rollouts: Family<PhaseLabels, Gauge>,
    reconcile: HistogramFamily<OutcomeLabels>,
    analysis: Family<AnalysisLabels, Counter>,
    rollback: HistogramFamily<TriggerLabels>,
    errors: Family<KindLabels, Counter>,
    kube_requests: Family<RequestLabels, Counter>,
    leader: Gauge,
    phases: Mutex<PhaseBook>,
    metric_cap: LabelCap,
    outcome_cap: LabelCap,
    kind_cap: LabelCap,
    trigger_cap: LabelCap,
    resource_cap: LabelCap,
}

/// The controller's own metrics. Cloning is cheap (one `Arc`); every clone records into the same
/// registry, so one can be handed to each reconciler and one to the HTTP server.
///
/// Families (OpenMetrics names):
/// - `firebreak_rollouts{namespace,phase}` gauge: Rollouts per namespace and phase;
/// - `firebreak_reconcile_duration_seconds{outcome}` histogram: one reconciliation, 1 ms–10 s;
/// - `firebreak_analysis_decisions_total{metric,outcome}` counter: per-metric analysis verdicts;
/// - `firebreak_rollback_seconds{trigger}` histogram: evidence turning (or the decision) to the
///   canary scaled down, 0.1 s–600 s;
/// - `firebreak_errors_total{kind}` counter: reconcile errors by kind;
/// - `firebreak_kube_requests_total{verb,resource}` counter: requests this process sent to the
///   Kubernetes API (see [`crate::telemetry::counted_client`]);
/// - `firebreak_leader` gauge: 1 while this replica holds the leader lease, else 0.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every family registered and no series yet (the leader gauge at 0).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("firebreak");
        let rollouts = Family::<PhaseLabels, Gauge>::default();
        let reconcile: HistogramFamily<OutcomeLabels> =
            Family::new_with_constructor(|| Histogram::new(RECONCILE_BUCKETS));
        let analysis = Family::<AnalysisLabels, Counter>::default();
        let rollback: HistogramFamily<TriggerLabels> =
            Family::new_with_constructor(|| Histogram::new(ROLLBACK_BUCKETS));
        let errors = Family::<KindLabels, Counter>::default();
        let kube_requests = Family::<RequestLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register(
            "rollouts",
            "Rollouts by namespace and phase",
            rollouts.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of one reconciliation of a Rollout, by outcome (ok or the error kind)",
            Unit::Seconds,
            reconcile.clone(),
        );
        registry.register(
            "analysis_decisions",
            "Canary analysis verdicts by metric and outcome",
            analysis.clone(),
        );
        registry.register_with_unit(
            "rollback",
            "Time from the evidence first turning against a canary (or the rollback decision) to the canary being scaled down, by trigger",
            Unit::Seconds,
            rollback.clone(),
        );
        registry.register("errors", "Reconcile errors by kind", errors.clone());
        registry.register(
            "kube_requests",
            "Requests sent to the Kubernetes API, by Kubernetes verb and resource (a watch counts once, when it is opened)",
            kube_requests.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease and reconciles, 0 otherwise",
            leader.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                rollouts,
                reconcile,
                analysis,
                rollback,
                errors,
                kube_requests,
                leader,
                phases: Mutex::new(PhaseBook::default()),
                metric_cap: LabelCap::new(METRIC_LABEL_LIMIT),
                outcome_cap: LabelCap::new(CODE_LABEL_LIMIT),
                kind_cap: LabelCap::new(CODE_LABEL_LIMIT),
                trigger_cap: LabelCap::new(CODE_LABEL_LIMIT),
                resource_cap: LabelCap::new(CODE_LABEL_LIMIT),
            }),
        }
    }

    /// Records that Rollout `namespace/rollout` is in `phase` (the `status.phase` word, e.g.
    /// `Progressing`), or is gone (`None`: deleted, or no longer watched). Each Rollout is counted
    /// once, in its latest phase; setting the same phase again changes nothing.
    ///
    /// A (namespace, phase) that empties stays at 0 while the namespace holds other Rollouts, so
    /// graphs drop to zero instead of going stale; a namespace's series are removed with its last
    /// Rollout.
    pub fn set_rollout_phase(&self, namespace: &str, rollout: &str, phase: Option<&str>) {
        let inner = &*self.inner;
        // One lock over the book and the gauges: concurrent reconcilers never leave them apart.
        let mut book = lock(&inner.phases);
        let key = (namespace.to_string(), rollout.to_string());
        let previous = match phase {
            Some(phase) => {
                if book.phase_of.get(&key).map(String::as_str) == Some(phase) {
                    return;
                }
                book.phase_of.insert(key, phase.to_string())
            }
            None => book.phase_of.remove(&key),
        };
        if previous.is_none() && phase.is_none() {
            return;
        }
        let counts = book.counts.entry(namespace.to_string()).or_default();
        if let Some(previous) = &previous {
            *counts.entry(previous.clone()).or_default() -= 1;
        }
        if let Some(phase) = phase {
            *counts.entry(phase.to_string()).or_default() += 1;
        }
        if counts.values().all(|&n| n <= 0) {
            let emptied = book.counts.remove(namespace).unwrap_or_default();
            for phase in emptied.into_keys() {
                inner.rollouts.remove(&PhaseLabels {
                    namespace: namespace.to_string(),
                    phase,
                });
            }
            return;
        }
        for phase in previous.as_deref().into_iter().chain(phase) {
            let n = counts.get(phase).copied().unwrap_or_default();
            inner
                .rollouts
                .get_or_create(&PhaseLabels {
                    namespace: namespace.to_string(),
                    phase: phase.to_string(),
                })
                .set(n);
        }
    }

    /// Forgets every Rollout and removes all `firebreak_rollouts` series. Call it when this
    /// replica stops leading: a standby's counts would go stale and be summed with the leader's.
    pub fn forget_rollouts(&self) {
        let mut book = lock(&self.inner.phases);
        *book = PhaseBook::default();
        self.inner.rollouts.clear();
    }

    /// Records one reconciliation that took `seconds` (wall-clock, from the start of observe to
    /// the end of record) and ended with `outcome`: `ok`, or the error's kind (its
    /// `metric_label()`, e.g. `KubeRead`). Negative values count as 0.
    pub fn observe_reconcile(&self, seconds: f64, outcome: &str) {
        let outcome = self.inner.outcome_cap.admit(outcome);
        self.inner
            .reconcile
            .get_or_create(&OutcomeLabels { outcome })
            .observe(seconds.max(0.0));
    }

    /// Counts one analysis verdict for the spec metric named `metric` (its `name` in
    /// `spec.analysis.metrics`) with `outcome`: `Pass`, `Fail`, `Inconclusive`, `Unavailable`,
    /// `CommonMode` or `CeilingBreached`. Beyond [`METRIC_LABEL_LIMIT`] distinct names, new names
    /// are counted under `metric="other"`.
    pub fn record_analysis(&self, metric: &str, outcome: &str) {
        let metric = self.inner.metric_cap.admit(metric);
        let outcome = self.inner.outcome_cap.admit(outcome);
        self.inner
            .analysis
            .get_or_create(&AnalysisLabels { metric, outcome })
            .inc();
    }

    /// Records one rollback that took `seconds` from the evidence first turning against the
    /// canary (`status.analysis.adverseSince`; the rollback decision when there is no such time,
    /// e.g. a manual abort) to the canary ReplicaSet being scaled down. `trigger` is the
    /// Incident's trigger reason (`AnalysisFailed`, `Aborted`, `ProgressDeadlineExceeded`, …).
    /// Negative values (clock skew) count as 0.
    pub fn observe_rollback(&self, seconds: f64, trigger: &str) {
        let trigger = self.inner.trigger_cap.admit(trigger);
        self.inner
            .rollback
            .get_or_create(&TriggerLabels { trigger })
            .observe(seconds.max(0.0));
    }

    /// Counts one error of `kind` (a short stable label such as the controller error's
    /// `metric_label()`, never a message).
    pub fn record_error(&self, kind: &str) {
        let kind = self.inner.kind_cap.admit(kind);
        self.inner.errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts one request to the Kubernetes API: `verb` is the Kubernetes verb (`get`, `list`,
    /// `watch`, `create`, `patch`, `update`, `delete`, …) and `resource` the resource's plural,
    /// with its subresource as RBAC writes it (`rollouts`, `rollouts/status`). Beyond
    /// [`CODE_LABEL_LIMIT`] distinct resources, new ones are counted under `resource="other"`
    /// (verbs are a fixed set from the code, hence `'static`).
    pub fn record_kube_request(&self, verb: &'static str, resource: &str) {
        let resource = self.inner.resource_cap.admit(resource);
        self.inner
            .kube_requests
            .get_or_create(&RequestLabels {
                verb: verb.to_string(),
                resource,
            })
            .inc();
    }

    /// Sets `firebreak_leader`: 1 when this replica holds the leader lease, 0 when it does not.
    pub fn set_leader(&self, leader: bool) {
        self.inner.leader.set(i64::from(leader));
    }

    /// All families in OpenMetrics text format ([`CONTENT_TYPE`]), ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail, and these metric types never fail to encode.
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("encoding metrics into a String cannot fail");
        text
    }
}

/// Locks `mutex`, carrying on after a panic elsewhere: the guarded data is only ever updated in
/// whole steps, so it is consistent even then, and metrics must not take the controller down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series written exactly as `series` (name and labels), if present.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
            rest.split(' ').next()?.parse().ok()
        })
    }

    #[test]
    fn every_family_is_encoded_with_its_labels_after_recording() {
        let metrics = Metrics::new();
        metrics.set_rollout_phase("shop", "checkout", Some("Progressing"));
        metrics.observe_reconcile(0.004, "ok");
        metrics.observe_reconcile(0.3, "KubeRead");
        metrics.record_analysis("error-rate", "Fail");
        metrics.record_analysis("error-rate", "Fail");
        metrics.record_analysis("crash-rate", "Pass");
        metrics.observe_rollback(42.0, "AnalysisFailed");
        metrics.record_error("KubeRead");
        metrics.record_kube_request("get", "rollouts");
        metrics.record_kube_request("patch", "rollouts/status");
        metrics.record_kube_request("patch", "rollouts/status");
        metrics.set_leader(true);
        let text = metrics.encode();
        for line in [
            "# TYPE firebreak_rollouts gauge",
            r#"firebreak_rollouts{namespace="shop",phase="Progressing"} 1"#,
            "# TYPE firebreak_reconcile_duration_seconds histogram",
            "# UNIT firebreak_reconcile_duration_seconds seconds",
            r#"firebreak_reconcile_duration_seconds_count{outcome="ok"} 1"#,
            r#"firebreak_reconcile_duration_seconds_bucket{le="0.001",outcome="ok"} 0"#,
            r#"firebreak_reconcile_duration_seconds_bucket{le="0.005",outcome="ok"} 1"#,
            r#"firebreak_reconcile_duration_seconds_bucket{le="10.0",outcome="KubeRead"} 1"#,
            "# TYPE firebreak_analysis_decisions counter",
            r#"firebreak_analysis_decisions_total{metric="error-rate",outcome="Fail"} 2"#,
            r#"firebreak_analysis_decisions_total{metric="crash-rate",outcome="Pass"} 1"#,
            "# TYPE firebreak_rollback_seconds histogram",
            "# UNIT firebreak_rollback_seconds seconds",
            r#"firebreak_rollback_seconds_sum{trigger="AnalysisFailed"} 42.0"#,
            r#"firebreak_rollback_seconds_bucket{le="30.0",trigger="AnalysisFailed"} 0"#,
            r#"firebreak_rollback_seconds_bucket{le="60.0",trigger="AnalysisFailed"} 1"#,
            r#"firebreak_rollback_seconds_bucket{le="600.0",trigger="AnalysisFailed"} 1"#,
            "# TYPE firebreak_errors counter",
            r#"firebreak_errors_total{kind="KubeRead"} 1"#,
            "# TYPE firebreak_kube_requests counter",
            r#"firebreak_kube_requests_total{verb="get",resource="rollouts"} 1"#,
            r#"firebreak_kube_requests_total{verb="patch",resource="rollouts/status"} 2"#,
            "# TYPE firebreak_leader gauge",
            "firebreak_leader 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        metrics.set_leader(false);
        assert_eq!(value(&metrics.encode(), "firebreak_leader"), Some(0.0));
    }

    #[test]
    fn a_rollout_is_counted_once_and_moves_between_phases() {
        let metrics = Metrics::new();
        let rollouts = |ns: &str, phase: &str| {
            value(
                &metrics.encode(),
                &format!(r#"firebreak_rollouts{{namespace="{ns}",phase="{phase}"}}"#),
            )
        };
        metrics.set_rollout_phase("shop", "checkout", Some("Progressing"));
        metrics.set_rollout_phase("shop", "checkout", Some("Progressing"));
        metrics.set_rollout_phase("shop", "cart", Some("Progressing"));
        // The same name in another namespace is another Rollout.
        metrics.set_rollout_phase("blog", "checkout", Some("Progressing"));
        assert_eq!(rollouts("shop", "Progressing"), Some(2.0));
        assert_eq!(rollouts("blog", "Progressing"), Some(1.0));

        metrics.set_rollout_phase("shop", "checkout", Some("RolledBack"));
        assert_eq!(rollouts("shop", "Progressing"), Some(1.0));
        assert_eq!(rollouts("shop", "RolledBack"), Some(1.0));

        // The emptied phase reads 0 while the namespace has Rollouts ...
        metrics.set_rollout_phase("shop", "cart", None);
        assert_eq!(rollouts("shop", "Progressing"), Some(0.0));
        assert_eq!(rollouts("shop", "RolledBack"), Some(1.0));
        // ... and forgetting an unknown Rollout changes nothing.
        metrics.set_rollout_phase("shop", "cart", None);
        assert_eq!(rollouts("shop", "RolledBack"), Some(1.0));

        // The namespace's series go with its last Rollout; others stay.
        metrics.set_rollout_phase("shop", "checkout", None);
        let text = metrics.encode();
        assert!(!text.contains(r#"namespace="shop""#), "{text}");
        assert_eq!(rollouts("blog", "Progressing"), Some(1.0));

        // And come back when a Rollout does.
        metrics.set_rollout_phase("shop", "checkout", Some("Healthy"));
        assert_eq!(rollouts("shop", "Healthy"), Some(1.0));
        assert_eq!(rollouts("shop", "Progressing"), None);
    }

    #[test]
    fn a_standby_forgets_every_rollout_and_counts_afresh() {
        let metrics = Metrics::new();
        metrics.set_rollout_phase("shop", "checkout", Some("Progressing"));
        metrics.set_rollout_phase("blog", "posts", Some("Healthy"));
        metrics.forget_rollouts();
        assert!(!metrics.encode().contains("firebreak_rollouts{"));
        metrics.set_rollout_phase("shop", "checkout", Some("Progressing"));
        assert_eq!(
            value(
                &metrics.encode(),
                r#"firebreak_rollouts{namespace="shop",phase="Progressing"}"#
            ),
            Some(1.0)
        );
    }

    #[test]
    fn metric_names_beyond_the_cap_are_counted_as_other() {
        let metrics = Metrics::new();
        for i in 0..METRIC_LABEL_LIMIT {
            metrics.record_analysis(&format!("metric-{i}"), "Pass");
        }
        metrics.record_analysis("one-too-many", "Pass");
        metrics.record_analysis("two-too-many", "Pass");
        // A name admitted before the cap was reached keeps its series.
        metrics.record_analysis("metric-0", "Fail");
        let text = metrics.encode();
        let series = |metric: &str, outcome: &str| {
            value(
                &text,
                &format!(
                    r#"firebreak_analysis_decisions_total{{metric="{metric}",outcome="{outcome}"}}"#
                ),
            )
        };
        assert_eq!(series(OTHER, "Pass"), Some(2.0));
        assert_eq!(series("metric-0", "Fail"), Some(1.0));
        assert_eq!(series("metric-199", "Pass"), Some(1.0));
        assert!(!text.contains("too-many"), "{text}");
        let distinct: HashSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("firebreak_analysis_decisions_total{"))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert_eq!(distinct.len(), METRIC_LABEL_LIMIT + 1);
    }

    #[test]
    fn code_labels_are_capped_too() {
        let metrics = Metrics::new();
        for i in 0..=CODE_LABEL_LIMIT {
            metrics.record_error(&format!("Kind{i}"));
        }
        let text = metrics.encode();
        assert_eq!(
            value(&text, r#"firebreak_errors_total{kind="other"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&text, r#"firebreak_errors_total{kind="Kind0"}"#),
            Some(1.0)
        );
    }

    #[test]
    fn negative_durations_count_as_zero() {
        let metrics = Metrics::new();
        metrics.observe_rollback(-3.0, "Aborted");
        let text = metrics.encode();
        assert_eq!(
            value(
                &text,
                r#"firebreak_rollback_seconds_bucket{le="0.1",trigger="Aborted"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"firebreak_rollback_seconds_sum{trigger="Aborted"}"#
            ),
            Some(0.0)
        );
    }
}
