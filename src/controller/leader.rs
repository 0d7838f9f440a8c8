//! Leader election with a `coordination.k8s.io` Lease (through the `kube-lease-manager` crate):
//! only the leader reconciles and writes; a standby takes over within the lease duration when the
//! leader dies; losing the lease stops the controller's work at once.

use std::future::Future;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{info, warn};

/// Where the Lease lives and who this process is.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease, e.g. `firebreak-controller`.
    pub lease: String,
    /// This process's identity in the Lease (its pod name in a cluster).
    pub identity: String,
    /// Seconds a leader holds the Lease without renewing it; a standby takes over after it.
    pub duration_seconds: u64,
}

/// Runs `work` only while this process holds the Lease. When the lease is lost, `work` is dropped
/// (cancelled at its next await point, so no further writes happen) and the process waits to lead
/// again. Returns when `work` returns (e.g. on SIGTERM), releasing the Lease.
pub async fn run_as_leader<F, Fut>(
    client: Client,
    election: LeaderElection,
    telemetry: super::Telemetry,
    mut work: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let duration = election.duration_seconds.max(2);
    let manager = LeaseManagerBuilder::new(client, &election.lease)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .with_field_manager("firebreak-leader-election")
        .build()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot set up leader election with Lease {}/{}: {e}; check the controller may get/create/patch leases.coordination.k8s.io there",
                election.namespace,
                election.lease
            )
        })?;
    let (mut leading, task) = manager.watch().await;
    // A standby is ready (it serves probes and can take over): readiness must not wait for
    // leadership, or rolling updates and the PodDisruptionBudget would stall.
    telemetry.health.set_ready(true);
    loop {
        info!(lease = %election.lease, identity = %election.identity, "waiting to become the leader");
        while !*leading.borrow_and_update() {
            if leading.changed().await.is_err() {
                anyhow::bail!("leader election stopped unexpectedly");
            }
        }
        info!(lease = %election.lease, identity = %election.identity, "became the leader");
        telemetry.metrics.set_leader(true);
        let finished = tokio::select! {
            result = work() => Some(result),
            () = lost(&mut leading) => None,
        };
        match finished {
            Some(result) => {
                telemetry.metrics.set_leader(false);
                drop(leading);
                if let Ok(Err(e)) = task.await {
                    warn!(error = %e, "releasing the Lease failed");
                }
                return result;
            }
            None => {
                warn!(lease = %election.lease, "lost the Lease: stopped reconciling");
                telemetry.metrics.set_leader(false);
                telemetry.metrics.forget_rollouts();
            }
        }
    }
}

async fn lost(leading: &mut watch::Receiver<bool>) {
    loop {
        if leading.changed().await.is_err() || !*leading.borrow_and_update() {
            return;
        }
    }
}
