//! `fleet-sim`: the fleet simulator (development and tests). Parses the command line and hands
//! over to [`fleet_sim::run`], or for `fleet-sim load` to [`fleet_sim::load::run`].

use std::process::ExitCode;

use clap::Parser;
use kube::Client;

/// Makes a kwok cluster look like a real fleet: serves per-pod request counters for Prometheus
/// and simulates crashing containers.
///
/// By default each pod's traffic is invented (Poisson requests per its annotations). With
/// --serve-pods the simulator instead listens on every pod's IP (port --pod-port) and answers real
/// HTTP requests as the pod's annotations say — 500 at its error rate, else 200, after its
/// latency, with headers x-served-by and x-pod-template-hash — counting them into the same
/// /metrics series; a crashed container refuses connections. The pod IPs must be local: run it in
/// the network namespace where the pod CIDR is routed to the loopback device.
///
/// `fleet-sim load` sends real requests at a constant rate and reports requests per second per
/// revision; it needs no cluster.
#[derive(Debug, Parser)]
#[command(name = "fleet-sim", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    config: fleet_sim::FleetConfig,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Open-loop HTTP load at a constant rate, reporting requests per second per revision.
    ///
    /// Starts --rps GET requests per second for --duration, on schedule whatever the responses do
    /// (at most --max-in-flight at once; requests due beyond that are skipped and counted). Every
    /// --report-every a line shows the responses per second of each revision (by the response
    /// header x-pod-template-hash, else x-served-by, else "unknown") and the errors; at the end a
    /// summary gives the requests sent, per revision the 2xx/5xx/other responses and share,
    /// connection errors, timeouts, and the p50 and p99 latency. --json prints each line as a JSON
    /// object ("kind": "report" or "summary").
    Load(fleet_sim::load::LoadConfig),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    firebreak::cli::run_main(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Load(config)) => {
            fleet_sim::load::run(&config, &mut std::io::stdout()).await?;
            Ok(())
        }
        None => {
            let client = Client::try_default().await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach a Kubernetes cluster ({e}); set KUBECONFIG or run inside a \
                     cluster"
                )
            })?;
            fleet_sim::run(client, cli.config).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_and_the_load_generator_share_one_command_line() {
        let cli = Cli::try_parse_from(["fleet-sim", "--serve-pods", "--pod-port", "9000"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.config.serve_pods);
        assert_eq!(cli.config.pod_port, 9000);

        let cli = Cli::try_parse_from(["fleet-sim", "--serve-pods"]).unwrap();
        assert_eq!(cli.config.pod_port, 8080);
        assert!(
            Cli::try_parse_from(["fleet-sim", "--pod-port", "9000"]).is_err(),
            "--pod-port without --serve-pods"
        );

        let cli = Cli::try_parse_from([
            "fleet-sim",
            "load",
            "--url",
            "http://127.0.0.1:8000/",
            "--rps",
            "100",
        ])
        .unwrap();
        let Some(Command::Load(load)) = cli.command else {
            panic!("not the load command")
        };
        assert_eq!(load.rps, 100.0);
        assert!(
            Cli::try_parse_from(["fleet-sim", "--serve-pods", "load", "--url", "http://x/"])
                .is_err(),
            "simulator flags do not mix with load"
        );
    }
}
