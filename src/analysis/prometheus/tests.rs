//! Tests of the Prometheus provider: how answers are classified, and the pool against a local
//! stand-in server.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use super::*;

const ADDRESS: &str = "http://prometheus:9090";

fn answer(body: Value) -> Result<f64, QueryError> {
    read_answer(ADDRESS, "q", 200, body.to_string().as_bytes())
}

fn vector(values: &[&str]) -> Value {
    let result: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"metric": {"pod": format!("p{i}")}, "value": [1.7e9, v]}))
        .collect();
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}

fn scalar(value: &str) -> Value {
    json!({"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, value]}})
}

#[test]
fn one_finite_non_negative_number_is_a_count() {
    assert_eq!(answer(vector(&["12.5"])), Ok(12.5));
    assert_eq!(answer(vector(&["0"])), Ok(0.0));
    assert_eq!(answer(scalar("3")), Ok(3.0), "scalar(...) is one number");
}

#[test]
fn nan_infinities_and_negatives_are_not_counts() {
    for (body, label, words) in [
        (vector(&["NaN"]), "NaN", "`q` returned NaN"),
        (scalar("NaN"), "NaN", "`q` returned NaN"),
        (vector(&["+Inf"]), "Infinite", "`q` returned +Inf"),
        (scalar("-Inf"), "Infinite", "`q` returned -Inf"),
        (
            vector(&["-1"]),
            "Negative",
            "`q` returned -1, a negative count",
        ),
    ] {
        let error = answer(body.clone()).expect_err(&body.to_string());
        assert_eq!(error.metric_label(), label, "{body}");
        let message = error.to_string();
        assert!(message.contains(words), "{message}");
        assert!(message.contains("instead of") || message.contains("use increase()"));
    }
}

#[test]
fn no_series_or_several_series_are_not_one_count() {
    let empty = answer(vector(&[])).unwrap_err();
    assert!(matches!(empty, QueryError::NoData { .. }), "{empty:?}");
    assert!(empty.to_string().contains("or vector(0)"), "{empty}");

    let several = answer(vector(&["1", "2"])).unwrap_err();
    let QueryError::SeveralSeries { series, labels, .. } = &several else {
        panic!("{several:?}");
    };
    assert_eq!((*series, labels.as_str()), (2, r#"{pod="p0"}, {pod="p1"}"#));
    assert!(several.to_string().contains("sum(...)"), "{several}");
    let many = answer(vector(&["1", "2", "3", "4", "5"])).unwrap_err();
    assert!(many.to_string().contains(r#"{pod="p2"}, …"#), "{many}");
}

#[test]
fn range_vectors_and_strings_are_not_instant_values() {
    let matrix = json!({"status": "success", "data": {"resultType": "matrix",
        "result": [{"metric": {}, "values": [[1.7e9, "1"], [1.7e9 + 1.0, "2"]]}]}});
    let string = json!({"status": "success", "data": {"resultType": "string",
        "result": [1.7e9, "text"]}});
    for (body, kind) in [(matrix, "matrix"), (string, "string")] {
        let error = answer(body).unwrap_err();
        assert_eq!(error.metric_label(), "NotInstant");
        assert!(
            error
                .to_string()
                .starts_with(&format!("`q` returned a {kind}")),
            "{error}"
        );
    }
}

#[test]
fn a_prometheus_error_or_a_foreign_answer_is_named_with_the_query() {
    let refused = read_answer(
        ADDRESS,
        "sum(",
        400,
        br#"{"status":"error","errorType":"bad_data","error":"parse error: unclosed left parenthesis"}"#,
    )
    .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "Prometheus at http://prometheus:9090 refused `sum(`: bad_data: parse error: unclosed left parenthesis; \
         bad_data is a PromQL mistake in the query, timeout and execution are Prometheus' own limits"
    );

    let proxy = read_answer(ADDRESS, "q", 502, b"<html>Bad Gateway</html>").unwrap_err();
    assert_eq!(
        proxy,
        QueryError::Http {
            address: ADDRESS.into(),
            query: "q".into(),
            status: 502,
            body: "<html>Bad Gateway</html>".into(),
        }
    );
    let long = "x".repeat(1000);
    let QueryError::Http { body, .. } =
        read_answer(ADDRESS, "q", 503, long.as_bytes()).unwrap_err()
    else {
        panic!("not an HTTP error");
    };
    assert_eq!(body.chars().count(), BODY_EXCERPT + 1);

    for body in [
        &b"<html>login</html>"[..],
        br#"{"status":"success"}"#,
        br#"{"x":1}"#,
    ] {
        let error = read_answer(ADDRESS, "q", 200, body).unwrap_err();
        assert_eq!(error.metric_label(), "Malformed", "{error}");
    }
}

#[test]
fn every_error_names_its_query() {
    let errors = [
        QueryError::InvalidAddress {
            address: "x".into(),
            query: "q1".into(),
            message: "relative URL".into(),
        },
        QueryError::Unreachable {
            address: ADDRESS.into(),
            query: "q1".into(),
            message: "connection refused".into(),
        },
        QueryError::Timeout {
            address: ADDRESS.into(),
            query: "q1".into(),
            seconds: 10.0,
        },
        QueryError::Saturated {
            address: ADDRESS.into(),
            query: "q1".into(),
            limit: 8,
            seconds: 10.0,
        },
    ];
    for error in errors {
        assert_eq!(error.query(), "q1");
        assert!(error.to_string().contains("`q1`"), "{error}");
    }
}

/// A server that accepts connections and never answers; counts the connections.
fn hung_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            // Read the request and hold the connection until the client gives up.
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
            });
        }
    });
    (address, accepted)
}

#[tokio::test]
async fn a_hung_prometheus_is_a_timeout_naming_the_query() {
    let (address, _) = hung_server();
    let pool = PrometheusPool::with_limits(Duration::from_millis(500), 2).unwrap();
    let started = Instant::now();
    let error = pool.value(&address, "up", 0).await.unwrap_err();
    assert!(matches!(error, QueryError::Timeout { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("did not answer `up` within 0.5s")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn queries_to_one_address_wait_for_a_permit_beyond_the_limit() {
    let (address, accepted) = hung_server();
    let pool = PrometheusPool::with_limits(Duration::from_secs(3), 2).unwrap();
    let queries = futures::future::join_all(
        (0..5).map(|i| pool.value(&address, ["a", "b", "c", "d", "e"][i], 0)),
    );
    let watch = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        accepted.load(Ordering::SeqCst)
    };
    let (results, in_flight) = tokio::join!(queries, watch);
    assert_eq!(in_flight, 2, "Prometheus saw more queries than the limit");
    for result in results {
        let error = result.unwrap_err();
        assert!(
            matches!(
                error,
                QueryError::Timeout { .. } | QueryError::Saturated { .. }
            ),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn one_client_per_address_and_a_bad_address_is_named() {
    let pool = PrometheusPool::new().unwrap();
    pool.endpoint("http://a:9090").unwrap();
    pool.endpoint("http://a:9090").unwrap();
    pool.endpoint("http://b:9090").unwrap();
    assert_eq!(pool.endpoints.lock().unwrap().len(), 2);

    let error = pool.value("not a url", "up", 0).await.unwrap_err();
    assert_eq!(error.metric_label(), "InvalidAddress", "{error}");
    assert!(error.to_string().contains("`up` was not sent"), "{error}");
}
