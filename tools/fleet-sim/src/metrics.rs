//! The simulated fleet's request metrics, in the shape an HTTP server instrumented with the usual
//! Prometheus conventions would expose them, one series per pod.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`FleetMetrics::encode`]'s output (OpenMetrics text, which Prometheus
/// negotiates and parses).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency bucket upper bounds in seconds: Prometheus' client defaults.
const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels that name one pod's series; `pod_template_hash` is the pod's `pod-template-hash`
/// label (empty when it has none), which tells revisions apart.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct PodLabels {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's `pod-template-hash` label.
    pub pod_template_hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    namespace: String,
    pod: String,
    pod_template_hash: String,
    code: &'static str,
}

impl RequestLabels {
    fn new(pod: &PodLabels, code: &'static str) -> Self {
        RequestLabels {
            namespace: pod.namespace.clone(),
            pod: pod.pod.clone(),
            pod_template_hash: pod.pod_template_hash.clone(),
            code,
        }
    }
}

/// `http_requests_total{namespace,pod,pod_template_hash,code}` (code `"200"` or `"500"`) and
/// `http_request_duration_seconds{namespace,pod,pod_template_hash}` (a histogram, seconds).
pub struct FleetMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<PodLabels, Histogram, fn() -> Histogram>,
}

impl Default for FleetMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl FleetMetrics {
    /// An empty set of metrics, registered for encoding.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Family<PodLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "http_requests",
            "HTTP requests served by the pod, by status code",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Latency of the HTTP requests served by the pod",
            Unit::Seconds,
            durations.clone(),
        );
        FleetMetrics {
            registry,
            requests,
            durations,
        }
    }

    /// Creates a pod's series at zero, so that Prometheus sees its counters before their first
    /// increment (a counter that appears at 5 loses those 5 requests to `rate()`).
    pub fn track(&self, pod: &PodLabels) {
        for code in ["200", "500"] {
            drop(self.requests.get_or_create(&RequestLabels::new(pod, code)));
        }
        drop(self.durations.get_or_create(pod));
    }

    /// Records `requests` requests served by `pod`, `errors` of them failed, with the given
    /// latencies in seconds (one per request).
    pub fn record(
        &self,
        pod: &PodLabels,
        requests: u64,
        errors: u64,
        latencies: impl IntoIterator<Item = f64>,
    ) {
        let errors = errors.min(requests);
        self.requests
            .get_or_create(&RequestLabels::new(pod, "200"))
            .inc_by(requests - errors);
        self.requests
            .get_or_create(&RequestLabels::new(pod, "500"))
            .inc_by(errors);
        let histogram = self.durations.get_or_create(pod);
        for latency in latencies {
            histogram.observe(latency);
        }
    }

    /// Removes a pod's series.
    pub fn forget(&self, pod: &PodLabels) {
        for code in ["200", "500"] {
            self.requests.remove(&RequestLabels::new(pod, code));
        }
        self.durations.remove(pod);
    }

    /// The metrics in OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> PodLabels {
        PodLabels {
            namespace: "ns".into(),
            pod: name.into(),
            pod_template_hash: "abc".into(),
        }
    }

    #[test]
    fn counters_and_histogram_are_exposed_per_pod() {
        let metrics = FleetMetrics::new();
        metrics.track(&pod("a"));
        metrics.record(&pod("a"), 10, 2, [0.001, 0.02, 3.0]);
        let text = metrics.encode().unwrap();
        for line in [
            "# TYPE http_requests counter",
            r#"http_requests_total{namespace="ns",pod="a",pod_template_hash="abc",code="200"} 8"#,
            r#"http_requests_total{namespace="ns",pod="a",pod_template_hash="abc",code="500"} 2"#,
            "# TYPE http_request_duration_seconds histogram",
            "# UNIT http_request_duration_seconds seconds",
            r#"http_request_duration_seconds_count{namespace="ns",pod="a",pod_template_hash="abc"} 3"#,
            r#"http_request_duration_seconds_bucket{le="0.005",namespace="ns",pod="a",pod_template_hash="abc"} 1"#,
            r#"http_request_duration_seconds_bucket{le="5.0",namespace="ns",pod="a",pod_template_hash="abc"} 3"#,
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }

    #[test]
    fn tracked_pods_start_at_zero_and_forgotten_pods_disappear() {
        let metrics = FleetMetrics::new();
        metrics.track(&pod("a"));
        metrics.track(&pod("b"));
        let text = metrics.encode().unwrap();
        assert!(text.contains(
            r#"http_requests_total{namespace="ns",pod="b",pod_template_hash="abc",code="500"} 0"#
        ));
        metrics.forget(&pod("b"));
        let text = metrics.encode().unwrap();
        assert!(!text.contains(r#"pod="b""#), "{text}");
        assert!(text.contains(r#"pod="a""#));
    }
}
