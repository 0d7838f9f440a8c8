//! The controller's own metrics and health endpoints.
//!
//! - [`Metrics`]: rollouts by phase, reconcile durations, analysis decisions, time to roll back,
//!   errors and leader status, in one prometheus-client registry;
//! - [`Health`]: readiness (the controller's watches have synced); liveness is the process
//!   answering at all;
//! - [`serve`]: `GET /metrics`, `/healthz` and `/readyz` on one address, in the background;
//! - [`counted_client`]: a kube client that counts its own requests into [`Metrics`].

mod metrics;
mod requests;

pub use metrics::{CODE_LABEL_LIMIT, CONTENT_TYPE, METRIC_LABEL_LIMIT, Metrics, OTHER};
pub use requests::{NON_RESOURCE, classify, counted_client};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use tracing::{info, warn};

/// The controller's readiness, shared between the controller (which sets it) and the HTTP server
/// (which reports it on `/readyz`). Cloning is cheap (one `Arc`). Starts not ready.
#[derive(Clone, Debug, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    /// Not ready yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets readiness: `true` once the controller runs and its watches have synced, `false` when
    /// it stops (shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
struct Endpoints {
    metrics: Metrics,
    health: Health,
}

/// Serves, in a background task until `shutdown` completes:
/// - `GET /metrics`: [`Metrics::encode`] as [`CONTENT_TYPE`];
/// - `GET /healthz`: 200 `ok` whenever the process answers (liveness);
/// - `GET /readyz`: 200 `ready` after [`Health::set_ready`]`(true)`, else 503 `not ready`.
///
/// `listen` may have port 0 (a free port is picked). Returns the bound address once the socket
/// listens, so a probe made after this returns is answered. On shutdown the server stops
/// accepting and finishes the requests in flight.
///
/// Errors when `listen` cannot be bound (in use, not a local address, no permission); the message
/// names the address and the `--metrics-address` flag that changes it.
pub async fn serve(
    listen: SocketAddr,
    metrics: Metrics,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot serve /metrics, /healthz and /readyz on {listen}: {e}; choose another address with --metrics-address"
        )
    })?;
    let address = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(get_metrics))
        .route("/healthz", axum::routing::get(get_healthz))
        .route("/readyz", axum::routing::get(get_readyz))
        .with_state(Endpoints { metrics, health });
    tokio::spawn(async move {
        match axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            Ok(()) => info!(%address, "metrics and health server stopped"),
            Err(e) => warn!(%address, error = %e, "metrics and health server failed"),
        }
    });
    info!(%address, "serving /metrics, /healthz and /readyz");
    Ok(address)
}

async fn get_metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        endpoints.metrics.encode(),
    )
}

async fn get_healthz() -> &'static str {
    "ok"
}

async fn get_readyz(State(endpoints): State<Endpoints>) -> (StatusCode, &'static str) {
    if endpoints.health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

#[cfg(test)]
mod tests;
