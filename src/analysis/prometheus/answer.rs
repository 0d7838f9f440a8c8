//! Reading Prometheus' answers: what counts as one usable number, and the closed set of reasons
//! ([`QueryError`]) an answer is not one, each naming the query and the fix.

use std::collections::HashMap;

use prometheus_http_query::response::Data;
use serde::Deserialize;

use super::BODY_EXCERPT;

/// Why one Prometheus query gave no count. A closed set: every answer that is not one finite,
/// non-negative number is one of these. Each message names the query and says how to fix it;
/// the variant's [`metric_label`](QueryError::metric_label) is the Event reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The address is not a usable URL.
    #[error(
        "spec.analysis.metrics[].errorRate.prometheus.address {address:?} is not a URL ({message}), so `{query}` was not sent; write it as http://HOST:PORT"
    )]
    InvalidAddress {
        /// The configured address.
        address: String,
        /// The query that could not be sent.
        query: String,
        /// What is wrong with the address.
        message: String,
    },
    /// The HTTP request failed before an answer: connection refused, DNS, TLS, reset.
    #[error(
        "Prometheus at {address} could not be reached for `{query}`: {message}; check the address and that Prometheus runs and is reachable from the controller"
    )]
    Unreachable {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// The transport error, with its causes.
        message: String,
    },
    /// No answer within the timeout.
    #[error(
        "Prometheus at {address} did not answer `{query}` within {seconds}s; check that it is healthy, or make the query cheaper (e.g. with a recording rule)"
    )]
    Timeout {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// The timeout, in seconds.
        seconds: f64,
    },
    /// Every permit for this address stayed taken for the whole timeout: earlier queries are
    /// still waiting for Prometheus.
    #[error(
        "`{query}` waited {seconds}s for one of the {limit} query slots of Prometheus at {address}; earlier queries are still unanswered, so check Prometheus' health and load"
    )]
    Saturated {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// Permits per address ([`MAX_IN_FLIGHT`](super::MAX_IN_FLIGHT)).
        limit: usize,
        /// How long it waited, in seconds.
        seconds: f64,
    },
    /// An HTTP error status without a Prometheus error in the body (a proxy, a login page, a
    /// wrong path).
    #[error(
        "Prometheus at {address} answered `{query}` with HTTP {status} and no Prometheus error (body: {body:?}); check that the address points at the Prometheus API and not at a proxy or login page"
    )]
    Http {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the body, at most 200 characters.
        body: String,
    },
    /// Prometheus refused the query with an error response (`"status": "error"`).
    #[error(
        "Prometheus at {address} refused `{query}`: {error_type}: {message}; bad_data is a PromQL mistake in the query, timeout and execution are Prometheus' own limits"
    )]
    Rejected {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// Prometheus' `errorType`: `bad_data`, `execution`, `timeout`, `canceled`, …
        error_type: String,
        /// Prometheus' `error` message.
        message: String,
    },
    /// A successful HTTP answer that is not a Prometheus API response.
    #[error(
        "Prometheus at {address} answered `{query}` with something that is not a Prometheus API response ({message}); check that the address points at Prometheus"
    )]
    Malformed {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// What could not be read.
        message: String,
    },
    /// The result is a range vector (matrix) or a string, not an instant value.
    #[error(
        "`{query}` returned a {result_type}, not one number; a count query must give an instant vector, e.g. sum(increase(http_requests_total{{...}}[30s]))"
    )]
    NotInstant {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// Prometheus' `resultType`: `matrix` or `string`.
        result_type: String,
    },
    /// An empty vector: no series matched.
    #[error(
        "`{query}` returned no data: no series matched, so this arm has no data yet or the query's labels are wrong (check pod_template_hash and namespace in Prometheus); for an errors query that may legitimately match nothing, append `or vector(0)`"
    )]
    NoData {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
    },
    /// Several series where one number was expected.
    #[error(
        "`{query}` returned {series} series ({labels}) where one number was expected; aggregate it with sum(...)"
    )]
    SeveralSeries {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// Number of series returned.
        series: usize,
        /// The label sets of the first few, e.g. `{a="1"}, {a="2"}`.
        labels: String,
    },
    /// NaN: typically 0/0, or `scalar()` of no data.
    #[error(
        "`{query}` returned NaN, not a count; this comes from a division by zero or scalar() of no data: count with sum(increase(...)) instead of dividing"
    )]
    NotANumber {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
    },
    /// +Inf or -Inf: typically a division by zero.
    #[error(
        "`{query}` returned {}, not a count; this comes from a division by zero: count with sum(increase(...)) instead of dividing",
        infinity(.value)
    )]
    Infinite {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// The value, `f64::INFINITY` or `f64::NEG_INFINITY`.
        value: f64,
    },
    /// A negative number, which no count is.
    #[error(
        "`{query}` returned {value}, a negative count; counts only grow: use increase() of a counter, not delta() or deriv() or a gauge"
    )]
    Negative {
        /// The address asked.
        address: String,
        /// The rendered query.
        query: String,
        /// The value.
        value: f64,
    },
}

/// `+Inf` or `-Inf`, as Prometheus writes them.
fn infinity(value: &f64) -> &'static str {
    if value.is_sign_negative() {
        "-Inf"
    } else {
        "+Inf"
    }
}

impl QueryError {
    /// A short, stable label for metrics and Event reasons.
    pub fn metric_label(&self) -> &'static str {
        match self {
            QueryError::InvalidAddress { .. } => "InvalidAddress",
            QueryError::Unreachable { .. } => "Unreachable",
            QueryError::Timeout { .. } => "Timeout",
            QueryError::Saturated { .. } => "Saturated",
            QueryError::Http { .. } => "HttpError",
            QueryError::Rejected { .. } => "QueryRejected",
            QueryError::Malformed { .. } => "Malformed",
            QueryError::NotInstant { .. } => "NotInstant",
            QueryError::NoData { .. } => "NoData",
            QueryError::SeveralSeries { .. } => "SeveralSeries",
            QueryError::NotANumber { .. } => "NaN",
            QueryError::Infinite { .. } => "Infinite",
            QueryError::Negative { .. } => "Negative",
        }
    }

    /// The rendered query that failed.
    pub fn query(&self) -> &str {
        match self {
            QueryError::InvalidAddress { query, .. }
            | QueryError::Unreachable { query, .. }
            | QueryError::Timeout { query, .. }
            | QueryError::Saturated { query, .. }
            | QueryError::Http { query, .. }
            | QueryError::Rejected { query, .. }
            | QueryError::Malformed { query, .. }
            | QueryError::NotInstant { query, .. }
            | QueryError::NoData { query, .. }
            | QueryError::SeveralSeries { query, .. }
            | QueryError::NotANumber { query, .. }
            | QueryError::Infinite { query, .. }
            | QueryError::Negative { query, .. } => query,
        }
    }

    /// The Prometheus address asked.
    pub fn address(&self) -> &str {
        match self {
            QueryError::InvalidAddress { address, .. }
            | QueryError::Unreachable { address, .. }
            | QueryError::Timeout { address, .. }
            | QueryError::Saturated { address, .. }
            | QueryError::Http { address, .. }
            | QueryError::Rejected { address, .. }
            | QueryError::Malformed { address, .. }
            | QueryError::NotInstant { address, .. }
            | QueryError::NoData { address, .. }
            | QueryError::SeveralSeries { address, .. }
            | QueryError::NotANumber { address, .. }
            | QueryError::Infinite { address, .. }
            | QueryError::Negative { address, .. } => address,
        }
    }
}

/// The envelope of every Prometheus API response.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Classifies one HTTP answer of Prometheus' instant-query endpoint (`/api/v1/query`): HTTP
/// `status` and the raw `body`, from the Prometheus at `address` asked `query`. Returns the one
/// finite, non-negative number it holds, or why there is none.
pub fn read_answer(
    address: &str,
    query: &str,
    status: u16,
    body: &[u8],
) -> Result<f64, QueryError> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) if (200..300).contains(&status) => {
            return Err(QueryError::Malformed {
                address: address.into(),
                query: query.into(),
                message: format!("not JSON: {e}"),
            });
        }
        Err(_) => {
            return Err(QueryError::Http {
                address: address.into(),
                query: query.into(),
                status,
                body: excerpt(body),
            });
        }
    };
    match envelope.status.as_str() {
        "success" => {}
        "error" => {
            return Err(QueryError::Rejected {
                address: address.into(),
                query: query.into(),
                error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
                message: envelope.error.unwrap_or_default(),
            });
        }
        other => {
            return Err(QueryError::Malformed {
                address: address.into(),
                query: query.into(),
                message: format!("status {other:?}"),
            });
        }
    }
    let data = envelope.data.unwrap_or_default();
    // prometheus-http-query's `Data` knows vector, matrix and scalar; a string result is the one
    // other result type Prometheus has.
    if let Some(result_type @ "string") = data.get("resultType").and_then(|t| t.as_str()) {
        return Err(QueryError::NotInstant {
            address: address.into(),
            query: query.into(),
            result_type: result_type.into(),
        });
    }
    let data: Data = serde_json::from_value(data).map_err(|e| QueryError::Malformed {
        address: address.into(),
        query: query.into(),
        message: format!("unreadable data: {e}"),
    })?;
    value_of(address, query, &data)
}

/// The count in an instant-query result: the value of a one-series vector or of a scalar, if
/// it is finite and non-negative.
pub fn value_of(address: &str, query: &str, data: &Data) -> Result<f64, QueryError> {
    let value = match data {
        Data::Vector(vector) => match vector.as_slice() {
            [] => {
                return Err(QueryError::NoData {
                    address: address.into(),
                    query: query.into(),
                });
            }
            [one] => one.sample().value(),
            many => {
                return Err(QueryError::SeveralSeries {
                    address: address.into(),
                    query: query.into(),
                    series: many.len(),
                    labels: label_sets(many.iter().map(|s| s.metric())),
                });
            }
        },
        // A scalar is one number too (`scalar(...)`, or arithmetic on literals).
        Data::Scalar(sample) => sample.value(),
        Data::Matrix(_) => {
            return Err(QueryError::NotInstant {
                address: address.into(),
                query: query.into(),
                result_type: "matrix (range vector)".into(),
            });
        }
    };
    count(address, query, value)
}

/// `value` if it is a count: finite and not negative.
fn count(address: &str, query: &str, value: f64) -> Result<f64, QueryError> {
    if value.is_nan() {
        Err(QueryError::NotANumber {
            address: address.into(),
            query: query.into(),
        })
    } else if value.is_infinite() {
        Err(QueryError::Infinite {
            address: address.into(),
            query: query.into(),
            value,
        })
    } else if value < 0.0 {
        Err(QueryError::Negative {
            address: address.into(),
            query: query.into(),
            value,
        })
    } else {
        Ok(value)
    }
}

/// The first three label sets, `{a="1", b="2"}, …`, labels sorted by name.
fn label_sets<'a>(sets: impl Iterator<Item = &'a HashMap<String, String>>) -> String {
    let mut shown: Vec<String> = sets
        .take(4)
        .map(|labels| {
            let mut pairs: Vec<_> = labels.iter().collect();
            pairs.sort();
            let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{{{}}}", pairs.join(", "))
        })
        .collect();
    if shown.len() > 3 {
        shown.truncate(3);
        shown.push("…".into());
    }
    shown.join(", ")
}

/// The start of an unexpected body, for an error message.
pub(super) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(BODY_EXCERPT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// An error and its causes, `outer: inner: innermost` (reqwest's own message names only the
/// URL; the cause says "connection refused").
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
