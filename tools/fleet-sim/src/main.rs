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
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = Client::try_default().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a Kubernetes cluster ({e}); set KUBECONFIG or run inside a cluster"
        )
    })?;
    fleet_sim::run(client, cli.config).await
}

/// Logs to stderr (stdout carries the bound address), filtered by `FIREBREAK_LOG` (default
/// `info`), as JSON when `FIREBREAK_LOG_FORMAT=json`: the same settings as `firebreak`'s.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("FIREBREAK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FIREBREAK_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
