//! The HTTP endpoints, served on a free local port.

use std::net::SocketAddr;
use std::time::Duration;

use futures::channel::oneshot;

use super::*;

fn client() -> reqwest::Client {
    // No proxy: a proxy from the environment must not stand between the test and 127.0.0.1.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client")
}

async fn get(address: SocketAddr, path: &str) -> (u16, Option<String>, String) {
    let response = client()
        .get(format!("http://{address}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await.expect("a body");
    (status, content_type, body)
}

#[tokio::test]
async fn serves_metrics_liveness_and_readiness_until_shutdown() {
    let metrics = Metrics::new();
    let health = Health::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let address = serve(
        "127.0.0.1:0".parse().unwrap(),
        metrics.clone(),
        health.clone(),
        async move {
            let _ = stopped.await;
        },
    )
    .await
    .expect("serving on a free port");
    assert_ne!(address.port(), 0, "the bound port is returned");

    metrics.record_error("KubeApi");
    let (status, content_type, body) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
    assert!(
        body.lines()
            .any(|l| l == r#"firebreak_errors_total{kind="KubeApi"} 1"#),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    assert_eq!(
        get(address, "/healthz").await,
        (200, plain_text(), "ok".into())
    );

    let (status, _, body) = get(address, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, "not ready"));
    health.set_ready(true);
    let (status, _, body) = get(address, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready"));
    health.set_ready(false);
    assert_eq!(get(address, "/readyz").await.0, 503);

    assert_eq!(get(address, "/nothing-here").await.0, 404);

    stop.send(()).unwrap();
    let refused = async {
        loop {
            match client()
                .get(format!("http://{address}/healthz"))
                .send()
                .await
            {
                Err(e) if e.is_connect() => break,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("the server stops listening after shutdown");
}

/// The content type axum gives a plain string body.
fn plain_text() -> Option<String> {
    Some("text/plain; charset=utf-8".into())
}

#[tokio::test]
async fn an_address_in_use_is_named_with_the_flag_that_changes_it() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = taken.local_addr().unwrap();
    let error = serve(
        address,
        Metrics::new(),
        Health::new(),
        std::future::pending(),
    )
    .await
    .expect_err("the address is taken");
    let message = error.to_string();
    assert!(message.contains(&address.to_string()), "{message}");
    assert!(message.contains("--metrics-address"), "{message}");
}
