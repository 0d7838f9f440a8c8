//! The `firebreak` command line: the controller, the CRDs, and the user actions on a Rollout.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::api::{PAUSED_ANNOTATION, REQUEST_ANNOTATION_PREFIX, Rollout};

/// Progressive delivery for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "firebreak", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML (apply with `kubectl apply --server-side -f -`).
    Crd,
    /// Run the operator.
    Controller {
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "FIREBREAK_NAMESPACE")]
        namespace: Option<String>,
    },
    /// Show a rollout's state at a glance.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print a line at every change until the rollout settles (Healthy, RolledBack or
        /// Degraded), then the full status.
        #[arg(long, short)]
        watch: bool,
        /// With --watch: give up after this many seconds (exit code 1).
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Finish the current step (a pause) now; with --full, skip all remaining steps.
    Promote {
        #[command(flatten)]
        target: Target,
        /// Skip every remaining step and promote the canary.
        #[arg(long)]
        full: bool,
    },
    /// Roll the canary back now; the revision is not rolled out again until `retry`.
    Abort(Target),
    /// Roll out again a revision that was rolled back.
    Retry(Target),
    /// Hold the rollout at its current step.
    Pause(Target),
    /// Continue a rollout held by `pause`.
    Resume(Target),
    /// Run the fleet simulator (development and tests): serves per-pod request counters for
    /// Prometheus and simulates crashing containers.
    SimulateFleet(crate::fleet::FleetConfig),
}

#[derive(Debug, clap::Args)]
struct Target {
    /// Name of the Rollout.
    rollout: String,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long)]
    namespace: Option<String>,
}

/// Parses the process arguments and runs the chosen command; returns the process exit code.
pub fn main() -> ExitCode {
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

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("FIREBREAK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FIREBREAK_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Crd => {
            print!("{}", crate::api::crds_yaml());
            Ok(())
        }
        Command::Controller { namespace } => {
            crate::controller::run(client().await?, namespace).await
        }
        Command::Status {
            target,
            watch,
            timeout,
        } => {
            let (api, name) = rollout_api(&target).await?;
            if watch {
                watch_status(&api, &name, std::time::Duration::from_secs(timeout)).await?;
            }
            let rollout = api.get(&name).await?;
            print!("{}", crate::status::render(&rollout));
            Ok(())
        }
        Command::Promote { target, full } => {
            request(&target, if full { "promote-full" } else { "promote" }).await
        }
        Command::Abort(target) => request(&target, "abort").await,
        Command::Retry(target) => request(&target, "retry").await,
        Command::Pause(target) => {
            let (api, name) = rollout_api(&target).await?;
            let patch = json!({"metadata": {"annotations": {PAUSED_ANNOTATION: "true"}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            println!("rollout {name}: pause requested; `firebreak resume {name}` continues it");
            Ok(())
        }
        Command::Resume(target) => {
            let (api, name) = rollout_api(&target).await?;
            let patch = json!({"metadata": {"annotations": {PAUSED_ANNOTATION: null}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            println!("rollout {name}: resumed");
            Ok(())
        }
        Command::SimulateFleet(config) => crate::fleet::run(client().await?, config).await,
    }
}

async fn client() -> anyhow::Result<Client> {
    Client::try_default().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a Kubernetes cluster ({e}); set KUBECONFIG or run inside a cluster"
        )
    })
}

async fn rollout_api(target: &Target) -> anyhow::Result<(Api<Rollout>, String)> {
    let client = client().await?;
    let namespace = target
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    Ok((Api::namespaced(client, &namespace), target.rollout.clone()))
}

/// Asks the controller for a one-off action through a request annotation whose value is a fresh
/// nonce; the controller acts once and acknowledges it in status.
async fn request(target: &Target, verb: &str) -> anyhow::Result<()> {
    let (api, name) = rollout_api(target).await?;
    let nonce = k8s_openapi::jiff::Timestamp::now().to_string();
    let key = format!("{REQUEST_ANNOTATION_PREFIX}{verb}");
    let patch = json!({"metadata": {"annotations": {key: nonce}}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| anyhow::anyhow!("cannot request {verb} on rollout {name}: {e}"))?;
    println!("rollout {name}: {verb} requested");
    Ok(())
}

/// Prints a line whenever the rollout's state changes, until it settles or `timeout` passes.
async fn watch_status(
    api: &Api<Rollout>,
    name: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let rollout = api.get(name).await?;
        let now = k8s_openapi::jiff::Timestamp::now();
        let line = crate::status::line(&rollout, now);
        // Compare without the clock so only real changes print.
        if line[8..] != last {
            println!("{line}");
            last = line[8..].to_string();
        }
        if crate::status::settled(&rollout) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "rollout {name} did not settle within {}s",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
