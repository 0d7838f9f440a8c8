//! The Prometheus metric provider: evaluates an `errorRate` metric's `errors` and `total` query
//! templates for the canary arm and the baseline arm over one analysis window.

use std::time::Duration;

use firebreak_judge::Counts;
use futures::try_join;

use crate::api::PrometheusQueries;

use super::template::{Variables, render};

/// How long one query may take before the look counts as failed.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a look at Prometheus gave no usable number. The variant name is the Event reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The address is not a usable URL.
    #[error(
        "spec.analysis.metrics[].errorRate.prometheus.address {address:?} is not a URL: {message}"
    )]
    InvalidAddress {
        /// The configured address.
        address: String,
        /// What is wrong with it.
        message: String,
    },
    /// Prometheus could not be reached or refused the query.
    #[error("Prometheus at {address} failed on `{query}`: {message}")]
    Query {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// The error.
        message: String,
    },
    /// The query returned no series (no data for this arm yet, or a wrong query).
    #[error("`{query}` returned no data; check that the query matches the pods' series")]
    NoData {
        /// The rendered query.
        query: String,
    },
    /// The query returned something that is not a finite, non-negative number.
    #[error("`{query}` returned {value}, not a count")]
    NotACount {
        /// The rendered query.
        query: String,
        /// The value returned.
        value: f64,
    },
    /// The query returned more than one series: it must aggregate (e.g. `sum(...)`).
    #[error("`{query}` returned {series} series; wrap it in sum(...) so it returns one number")]
    NotAggregated {
        /// The rendered query.
        query: String,
        /// Number of series returned.
        series: usize,
    },
}

impl ProviderError {
    /// A short, stable label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ProviderError::InvalidAddress { .. } => "InvalidAddress",
            ProviderError::Query { .. } => "QueryFailed",
            ProviderError::NoData { .. } => "NoData",
            ProviderError::NotACount { .. } => "NotACount",
            ProviderError::NotAggregated { .. } => "NotAggregated",
        }
    }
}

/// The two arms' template variables for one window.
#[derive(Clone, Debug)]
pub struct Arms<'a> {
    /// Variables of the canary arm.
    pub canary: Variables<'a>,
    /// Variables of the baseline arm.
    pub baseline: Variables<'a>,
}

/// Evaluates the four queries (errors and total, for each arm) at `at` (Unix seconds) and returns
/// the window's counts: errors rounded to whole requests and never above the total.
pub async fn error_counts(
    queries: &PrometheusQueries,
    arms: &Arms<'_>,
    at: i64,
) -> Result<Counts, ProviderError> {
    let address = queries.address.trim_end_matches('/');
    let http = reqwest::Client::builder()
        .timeout(QUERY_TIMEOUT)
        .build()
        .map_err(|e| ProviderError::Query {
            address: address.to_string(),
            query: String::new(),
            message: e.to_string(),
        })?;
    let client = prometheus_http_query::Client::from(http, address).map_err(|e| {
        ProviderError::InvalidAddress {
            address: address.to_string(),
            message: e.to_string(),
        }
    })?;
    let one = |template: &str, vars: &Variables<'_>| {
        let query = render(template, vars);
        let client = client.clone();
        async move { scalar(&client, address, query, at).await }
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

async fn scalar(
    client: &prometheus_http_query::Client,
    address: &str,
    query: String,
    at: i64,
) -> Result<f64, ProviderError> {
    let response = client
        .query(&query)
        .at(at)
        .get()
        .await
        .map_err(|e| ProviderError::Query {
            address: address.to_string(),
            query: query.clone(),
            message: e.to_string(),
        })?;
    let value = if let Some(vector) = response.data().as_vector() {
        match vector.as_slice() {
            [] => return Err(ProviderError::NoData { query }),
            [one] => one.sample().value(),
            many => {
                return Err(ProviderError::NotAggregated {
                    query,
                    series: many.len(),
                });
            }
        }
    } else if let Some(scalar) = response.data().as_scalar() {
        scalar.value()
    } else {
        return Err(ProviderError::NotAggregated { query, series: 0 });
    };
    if !value.is_finite() || value < 0.0 {
        return Err(ProviderError::NotACount { query, value });
    }
    Ok(value)
}
