//! `fleet-sim`: the fleet simulator (development and tests). Parses the command line and hands
//! over to [`fleet_sim::run`].

use std::process::ExitCode;

use clap::Parser;
use kube::Client;

/// Makes a kwok cluster look like a real fleet: serves per-pod request counters for Prometheus
/// and simulates crashing containers.
#[derive(Debug, Parser)]
#[command(name = "fleet-sim", version)]
struct Cli {
    #[command(flatten)]
    config: fleet_sim::FleetConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    firebreak::cli::run_main(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = Client::try_default().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a Kubernetes cluster ({e}); set KUBECONFIG or run inside a cluster"
        )
    })?;
    fleet_sim::run(client, cli.config).await
}
