//! The Prometheus metric provider: evaluates an `errorRate` metric's `errors` and `total` query
//! templates for the canary arm and the baseline arm over one analysis window.
//!
//! [`PrometheusPool`] keeps one HTTP client per Prometheus address for the controller's lifetime
//! (connections are reused from look to look) and bounds the queries in flight to each address
//! with a semaphore of [`MAX_IN_FLIGHT`] permits, so many Rollouts judged at once queue in the
//! controller instead of piling onto one Prometheus.
//!
//! Every answer is classified before it counts: only one finite, non-negative number is a count.
//! Anything else (NaN, ±Inf, a negative number, no series, several series, a range vector or a
//! string, an HTTP or timeout failure, a Prometheus error) is a [`QueryError`] naming the query
//! and the fix, which the look records as `Unavailable`: it holds the rollout, never passes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::try_join;
use tokio::sync::Semaphore;

use crate::api::PrometheusQueries;

use super::provider::{Arms, Look, Measurement, MetricProvider, ProviderError};
use super::template::{Variables, render};
use firebreak_judge::Counts;

/// How long one query may take, in seconds of wall time: waiting for a permit, and then the HTTP
/// request with its answer (each bounded separately). Prometheus is asked to give up on
/// evaluating the query a little earlier, so a slow query comes back with its own explanation.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Queries in flight to one Prometheus address at once; more wait for a permit (at most
/// [`QUERY_TIMEOUT`]). A look asks four queries per `errorRate` metric (errors and total, for
/// each arm), so 8 lets two metrics or Rollouts measure at once without waiting.
pub const MAX_IN_FLIGHT: usize = 8;

/// Longest piece of an unexpected HTTP body quoted in an error, in characters.
const BODY_EXCERPT: usize = 200;

/// One pooled client and its permits.
#[derive(Clone)]
struct Endpoint {
    client: prometheus_http_query::Client,
    permits: Arc<Semaphore>,
}

/// The Prometheus provider: one HTTP client per Prometheus address, reused by every look for
/// the controller's lifetime, with at most `max_in_flight` queries in flight per address.
///
/// All addresses share one `reqwest` connection pool; an entry per distinct address of the
/// Rollouts' specs is created on first use and kept (a handful in practice).
pub struct PrometheusPool {
    http: reqwest::Client,
    timeout: Duration,
    max_in_flight: usize,
    endpoints: Mutex<HashMap<String, Endpoint>>,
}

impl std::fmt::Debug for PrometheusPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusPool")
            .field("timeout", &self.timeout)
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl PrometheusPool {
    /// A pool with [`QUERY_TIMEOUT`] and [`MAX_IN_FLIGHT`]. Fails only when the HTTP client
    /// cannot be built (no TLS backend).
    pub fn new() -> Result<PrometheusPool, reqwest::Error> {
        PrometheusPool::with_limits(QUERY_TIMEOUT, MAX_IN_FLIGHT)
    }

    /// A pool whose queries time out after `timeout` and with at most `max_in_flight` (≥ 1)
    /// queries in flight per address.
    pub fn with_limits(
        timeout: Duration,
        max_in_flight: usize,
    ) -> Result<PrometheusPool, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(PrometheusPool {
            http,
            timeout,
            max_in_flight: max_in_flight.max(1),
            endpoints: Mutex::new(HashMap::new()),
        })
    }

    /// The pooled client of `address` (without a trailing `/`), created on first use.
    fn endpoint(&self, address: &str) -> Result<Endpoint, String> {
        // A poisoned lock only means another look panicked while inserting; the map is intact.
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(endpoint) = endpoints.get(address) {
            return Ok(endpoint.clone());
        }
        let client = prometheus_http_query::Client::from(self.http.clone(), address)
            .map_err(|e| error_chain(&e))?;
        let endpoint = Endpoint {
            client,
            permits: Arc::new(Semaphore::new(self.max_in_flight)),
        };
        endpoints.insert(address.to_string(), endpoint.clone());
        Ok(endpoint)
    }

    /// Evaluates `query` at `at` (Unix seconds) on the Prometheus at `address` and returns its
    /// one finite, non-negative value; anything else is a [`QueryError`] (see
    /// [`read_answer`]).
    pub async fn value(&self, address: &str, query: &str, at: i64) -> Result<f64, QueryError> {
        let address = address.trim_end_matches('/');
        let endpoint = self
            .endpoint(address)
            .map_err(|message| QueryError::InvalidAddress {
                address: address.to_string(),
                query: query.to_string(),
                message,
            })?;
        let seconds = self.timeout.as_secs_f64();
        let Ok(Ok(_permit)) =
            tokio::time::timeout(self.timeout, endpoint.permits.clone().acquire_owned()).await
        else {
            return Err(QueryError::Saturated {
                address: address.to_string(),
                query: query.to_string(),
                limit: self.max_in_flight,
                seconds,
            });
        };
        let transport = |e: &reqwest::Error| {
            if e.is_timeout() {
                QueryError::Timeout {
                    address: address.to_string(),
                    query: query.to_string(),
                    seconds,
                }
            } else {
                QueryError::Unreachable {
                    address: address.to_string(),
                    query: query.to_string(),
                    message: error_chain(e),
                }
            }
        };
        let unreachable = |e: &prometheus_http_query::Error| QueryError::Unreachable {
            address: address.to_string(),
            query: query.to_string(),
            message: error_chain(e),
        };
        // Prometheus stops evaluating a little before the client gives up, and says so.
        let evaluation_ms = (self.timeout.as_millis() * 9 / 10).max(1);
        let response = endpoint
            .client
            .query(query)
            .at(at)
            .timeout(i64::try_from(evaluation_ms).unwrap_or(i64::MAX))
            .get_raw()
            .await
            .map_err(|e| match &e {
                prometheus_http_query::Error::Client(c) => match c.inner() {
                    Some(source) => transport(source),
                    None => unreachable(&e),
                },
                _ => unreachable(&e),
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| transport(&e))?;
        read_answer(address, query, status, &body)
    }

    /// Evaluates the four queries (errors and total, for each arm) at `at` (Unix seconds) and
    /// returns the window's counts: errors rounded to whole requests and never above the total.
    /// The first failing query's error is returned.
    pub async fn error_counts(
        &self,
        queries: &PrometheusQueries,
        arms: &Arms<'_>,
        at: i64,
    ) -> Result<Counts, QueryError> {
        let one = |template: &str, vars: &Variables<'_>| {
            let query = render(template, vars);
            async move { self.value(&queries.address, &query, at).await }
        };
        let (canary_errors, canary_total, baseline_errors, baseline_total) = try_join!(
            one(&queries.errors, &arms.canary),
            one(&queries.total, &arms.canary),
            one(&queries.errors, &arms.baseline),
            one(&queries.total, &arms.baseline),
        )?;
        let canary_total = canary_total.round();
        let baseline_total = baseline_total.round();
        Ok(Counts {
            canary_events: canary_errors.round().min(canary_total) as u64,
            baseline_events: baseline_errors.round().min(baseline_total) as u64,
            canary_exposure: canary_total,
            baseline_exposure: baseline_total,
        })
    }
}

impl MetricProvider for PrometheusPool {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    /// Measures an `errorRate` metric: [`PrometheusPool::error_counts`] at the look's time.
    fn measure<'a>(&'a self, look: Look<'a>) -> BoxFuture<'a, Result<Measurement, ProviderError>> {
        Box::pin(async move {
            let Some(error_rate) = &look.metric.error_rate else {
                return Err(ProviderError::WrongProvider {
                    metric: look.metric.name.clone(),
                    provider: self.name(),
                    wanted: "errorRate",
                });
            };
            let counts = self
                .error_counts(&error_rate.prometheus, look.arms, look.at.as_second())
                .await?;
            Ok(Measurement::Errors(counts))
        })
    }
}

pub mod answer;

use answer::error_chain;
pub use answer::{QueryError, read_answer, value_of};

#[cfg(test)]
mod tests;
