//! What the responses of a load run say: counts per revision and status class, requests that got
//! no response, and latency percentiles. Pure.

use std::collections::BTreeMap;
use std::time::Duration;

/// The revision named when a response carries neither [`POD_TEMPLATE_HASH_HEADER`] nor
/// [`SERVED_BY_HEADER`] (a Gateway's own error page, say).
///
/// [`POD_TEMPLATE_HASH_HEADER`]: crate::serve::POD_TEMPLATE_HASH_HEADER
/// [`SERVED_BY_HEADER`]: crate::serve::SERVED_BY_HEADER
pub const UNKNOWN_REVISION: &str = "unknown";

/// The revision a response came from: its `x-pod-template-hash` header, else its `x-served-by`
/// header (a pod without the label), else [`UNKNOWN_REVISION`]. Empty values count as absent.
pub fn revision_of(pod_template_hash: Option<&str>, served_by: Option<&str>) -> String {
    pod_template_hash
        .filter(|h| !h.is_empty())
        .or(served_by.filter(|s| !s.is_empty()))
        .unwrap_or(UNKNOWN_REVISION)
        .to_string()
}

/// Why a request got no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The connection failed: refused, reset, closed mid-response.
    Connection,
    /// No complete response within the timeout.
    Timeout,
}

/// How one sent request ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A complete response.
    Response {
        /// The revision that answered ([`revision_of`]).
        revision: String,
        /// The HTTP status code.
        status: u16,
        /// From the start of the request to the end of the response body.
        latency: Duration,
    },
    /// No response.
    NoResponse(Failure),
}

/// The class of an HTTP status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx.
    Ok,
    /// 5xx.
    ServerError,
    /// Anything else (1xx, 3xx, 4xx).
    Other,
}

impl StatusClass {
    /// The class of `status`.
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => StatusClass::Ok,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Other,
        }
    }
}

/// The responses of one revision, by status class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevisionCounts {
    /// 2xx responses.
    pub ok: u64,
    /// 5xx responses.
    pub server_errors: u64,
    /// Other responses (1xx, 3xx, 4xx).
    pub other: u64,
}

impl RevisionCounts {
    /// All responses of the revision.
    pub fn responses(&self) -> u64 {
        self.ok + self.server_errors + self.other
    }
}

/// Counts over a stretch of a run (one report interval, or all of it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Requests started.
    pub sent: u64,
    /// Requests due while the most allowed were in flight, hence not sent.
    pub skipped: u64,
    /// Responses per revision, ordered by revision.
    pub revisions: BTreeMap<String, RevisionCounts>,
    /// Requests whose connection failed.
    pub connection_errors: u64,
    /// Requests without a response within the timeout.
    pub timeouts: u64,
    /// The latency of every response, in the order they arrived.
    latencies: Vec<Duration>,
}

impl Tally {
    /// Counts a request started.
    pub fn sent(&mut self) {
        self.sent += 1;
    }

    /// Counts a request skipped.
    pub fn skipped(&mut self) {
        self.skipped += 1;
    }

    /// Counts how a request ended.
    pub fn record(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Response {
                revision,
                status,
                latency,
            } => {
                let counts = self.revisions.entry(revision.clone()).or_default();
                match StatusClass::of(*status) {
                    StatusClass::Ok => counts.ok += 1,
                    StatusClass::ServerError => counts.server_errors += 1,
                    StatusClass::Other => counts.other += 1,
                }
                self.latencies.push(*latency);
            }
            Outcome::NoResponse(Failure::Connection) => self.connection_errors += 1,
            Outcome::NoResponse(Failure::Timeout) => self.timeouts += 1,
        }
    }

    /// All responses, of every revision and status.
    pub fn responses(&self) -> u64 {
        self.revisions.values().map(RevisionCounts::responses).sum()
    }

    /// Requests that ended: responses, connection errors and timeouts.
    pub fn completed(&self) -> u64 {
        self.responses() + self.connection_errors + self.timeouts
    }

    /// The `q`-quantile (0–1) of the response latencies by the nearest-rank method (the smallest
    /// latency at least `q` of them do not exceed); `None` without responses.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        nearest_rank(&sorted, q)
    }
}

/// The `q`-quantile of `sorted` (ascending) by nearest rank: element `⌈q·n⌉` counting from 1,
/// the first for `q` = 0. Source: the nearest-rank definition of a percentile (NIST/SEMATECH
/// e-Handbook, and Wikipedia "Percentile").
fn nearest_rank(sorted: &[Duration], q: f64) -> Option<Duration> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
    // `as` saturates; the rank is 1..=n.
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn response(revision: &str, status: u16, latency_ms: u64) -> Outcome {
        Outcome::Response {
            revision: revision.into(),
            status,
            latency: ms(latency_ms),
        }
    }

    #[test]
    fn the_revision_is_the_hash_else_the_pod_else_unknown() {
        assert_eq!(
            revision_of(Some("5d8f9c"), Some("shop-5d8f9c-x1")),
            "5d8f9c"
        );
        assert_eq!(revision_of(None, Some("shop-x1")), "shop-x1");
        assert_eq!(revision_of(Some(""), Some("shop-x1")), "shop-x1");
        assert_eq!(revision_of(None, None), "unknown");
        assert_eq!(revision_of(Some(""), Some("")), "unknown");
    }

    #[test]
    fn status_codes_fall_in_three_classes() {
        assert_eq!(StatusClass::of(200), StatusClass::Ok);
        assert_eq!(StatusClass::of(204), StatusClass::Ok);
        assert_eq!(StatusClass::of(500), StatusClass::ServerError);
        assert_eq!(StatusClass::of(503), StatusClass::ServerError);
        for other in [101, 302, 404, 429, 600] {
            assert_eq!(StatusClass::of(other), StatusClass::Other, "{other}");
        }
    }

    #[test]
    fn responses_are_counted_per_revision_and_failures_apart() {
        let mut tally = Tally::default();
        for _ in 0..5 {
            tally.sent();
        }
        tally.skipped();
        for outcome in [
            response("old", 200, 10),
            response("old", 500, 20),
            response("new", 200, 30),
            response("new", 404, 40),
            Outcome::NoResponse(Failure::Connection),
            Outcome::NoResponse(Failure::Timeout),
        ] {
            tally.record(&outcome);
        }
        assert_eq!(tally.sent, 5);
        assert_eq!(tally.skipped, 1);
        assert_eq!(
            tally.revisions["old"],
            RevisionCounts {
                ok: 1,
                server_errors: 1,
                other: 0
            }
        );
        assert_eq!(
            tally.revisions["new"],
            RevisionCounts {
                ok: 1,
                server_errors: 0,
                other: 1
            }
        );
        assert_eq!(tally.responses(), 4);
        assert_eq!(tally.connection_errors, 1);
        assert_eq!(tally.timeouts, 1);
        assert_eq!(tally.completed(), 6);
        // Failures carry no latency.
        assert_eq!(tally.percentile(1.0), Some(ms(40)));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut tally = Tally::default();
        assert_eq!(tally.percentile(0.5), None);
        // 1..=100 ms, arriving out of order.
        for latency in (1..=100).rev() {
            tally.record(&response("r", 200, latency));
        }
        assert_eq!(tally.percentile(0.5), Some(ms(50)));
        assert_eq!(tally.percentile(0.99), Some(ms(99)));
        assert_eq!(tally.percentile(1.0), Some(ms(100)));
        assert_eq!(tally.percentile(0.0), Some(ms(1)));
        assert_eq!(tally.percentile(0.001), Some(ms(1)));

        let mut one = Tally::default();
        one.record(&response("r", 200, 7));
        assert_eq!(one.percentile(0.5), Some(ms(7)));
        assert_eq!(one.percentile(0.99), Some(ms(7)));
        assert_eq!(one.percentile(f64::NAN), Some(ms(7)));
    }
}
