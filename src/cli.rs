//! The `firebreak` command line: the controller, the CRDs, and the user actions on a Rollout.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::api::{Incident, PAUSED_ANNOTATION, REQUEST_ANNOTATION_PREFIX, Rollout};

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
        /// A YAML file shaped like `spec.windows`: the deployment windows of Rollouts that have
        /// none of their own (default: none, rollouts may run at any time).
        #[arg(long, env = "FIREBREAK_DEFAULT_WINDOWS")]
        default_windows: Option<std::path::PathBuf>,
        /// Run several replicas: only the holder of a coordination.k8s.io Lease reconciles.
        #[arg(long, env = "FIREBREAK_LEADER_ELECTION")]
        leader_election: bool,
        /// Name of the Lease.
        #[arg(long, default_value = "firebreak-controller")]
        lease_name: String,
        /// Namespace of the Lease (default: $POD_NAMESPACE, else --namespace, else `default`).
        #[arg(long, env = "POD_NAMESPACE")]
        lease_namespace: Option<String>,
        /// Seconds a leader holds the Lease without renewing it; a standby takes over after it.
        #[arg(long, default_value_t = 15)]
        lease_duration_seconds: u64,
        /// Serve /metrics, /healthz and /readyz here (e.g. 0.0.0.0:8080; port 0 picks one, logged
        /// at start). Absent: not served.
        #[arg(long, env = "FIREBREAK_METRICS_ADDRESS")]
        metrics_address: Option<std::net::SocketAddr>,
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
    /// Put the rollout's kill switch back to the value it had before Firebreak flipped it.
    RestoreFlag(Target),
    /// Print a Markdown postmortem draft of an Incident (`firebreak incidents` lists them).
    Postmortem {
        /// Name of the Incident.
        incident: String,
        /// Namespace (default: the kubeconfig context's).
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// List Incidents, newest first.
    Incidents {
        /// Namespace (default: the kubeconfig context's).
        #[arg(short, long, conflicts_with = "all_namespaces")]
        namespace: Option<String>,
        /// List the Incidents of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
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
    run_main(run(cli))
}

/// Sets up logging to stderr (filtered by `FIREBREAK_LOG`, default `info`; JSON when
/// `FIREBREAK_LOG_FORMAT=json`), then runs `work` on a multi-threaded Tokio runtime. Returns exit
/// code 0, or 1 after printing the error (with its causes) to stderr. Shared by `firebreak` and
/// the development tools, so they log and fail alike.
pub fn run_main(work: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
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
    match runtime.block_on(work) {
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
    use std::io::IsTerminal;
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Crd => {
            print!("{}", crate::api::crds_yaml());
            Ok(())
        }
        Command::Controller {
            namespace,
            default_windows,
            leader_election,
            lease_name,
            lease_namespace,
            lease_duration_seconds,
            metrics_address,
        } => {
            let telemetry = crate::controller::Telemetry::default();
            let (_stop_serving, stopped) = futures::channel::oneshot::channel::<()>();
            if let Some(address) = metrics_address {
                crate::telemetry::serve(
                    address,
                    telemetry.metrics.clone(),
                    telemetry.health.clone(),
                    async move {
                        let _ = stopped.await;
                    },
                )
                .await?;
            }
            let windows = match default_windows {
                Some(path) => crate::controller::windows::WindowDefaults::load(&path)?,
                None => crate::controller::windows::WindowDefaults::none(),
            };
            // Counted: `firebreak_kube_requests_total` shows what the controller costs the API.
            let client = crate::telemetry::counted_client(config().await?, &telemetry.metrics)
                .map_err(unreachable)?;
            if !leader_election {
                telemetry.metrics.set_leader(true);
                return crate::controller::run(client, namespace, windows, telemetry).await;
            }
            let election = crate::controller::leader::LeaderElection {
                namespace: lease_namespace
                    .or_else(|| namespace.clone())
                    .unwrap_or_else(|| "default".into()),
                lease: lease_name,
                identity: std::env::var("POD_NAME")
                    .unwrap_or_else(|_| format!("firebreak-{}", std::process::id())),
                duration_seconds: lease_duration_seconds,
            };
            crate::controller::leader::run_as_leader(
                client.clone(),
                election,
                telemetry.clone(),
                || {
                    crate::controller::run(
                        client.clone(),
                        namespace.clone(),
                        windows.clone(),
                        telemetry.clone(),
                    )
                },
            )
            .await
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
        Command::RestoreFlag(target) => {
            let (api, name) = rollout_api(&target).await?;
            let rollout = api.get(&name).await?;
            let Some(kill_switch) = &rollout.spec.kill_switch else {
                anyhow::bail!("rollout {name} has no spec.killSwitch");
            };
            let namespace = rollout.metadata.namespace.clone().unwrap_or_default();
            for line in
                crate::controller::mitigate::restore(&client().await?, &namespace, kill_switch)
                    .await?
            {
                println!("{line}");
            }
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
        Command::Postmortem {
            incident,
            namespace,
        } => {
            let client = client().await?;
            let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
            let api: Api<Incident> = Api::namespaced(client, &namespace);
            let record = api
                .get_opt(&incident)
                .await
                .map_err(|e| anyhow::anyhow!("cannot read Incident {namespace}/{incident}: {e}"))?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "Incident {namespace}/{incident} not found; list them with `firebreak incidents -n {namespace}`"
                    )
                })?;
            print!("{}", crate::incident::postmortem::render(&record));
            Ok(())
        }
        Command::Incidents {
            namespace,
            all_namespaces,
        } => {
            let client = client().await?;
            let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
            let api: Api<Incident> = if all_namespaces {
                Api::all(client)
            } else {
                Api::namespaced(client, &namespace)
            };
            let list = api.list(&Default::default()).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot list Incidents ({e}); is the CRD installed? Install it with `firebreak crd | kubectl apply --server-side -f -`"
                )
            })?;
            if list.items.is_empty() {
                if all_namespaces {
                    println!("No incidents.");
                } else {
                    println!("No incidents in namespace {namespace}.");
                }
            } else {
                let now = k8s_openapi::jiff::Timestamp::now();
                print!("{}", incidents_table(list.items, all_namespaces, now));
            }
            Ok(())
        }
    }
}

/// `firebreak incidents`: one aligned row per Incident, newest first (by detection time, else
/// creation time). TIME-TO-DETECT is how long the evidence (or the canary) had been bad when
/// Firebreak decided; AGE is how long ago it decided, as kubectl shows ages (`45s`, `12m`, `3h`,
/// `4d`).
fn incidents_table(
    mut incidents: Vec<Incident>,
    all_namespaces: bool,
    now: k8s_openapi::jiff::Timestamp,
) -> String {
    use kube::ResourceExt;
    let when = |i: &Incident| {
        i.spec
            .anchor
            .detected_at
            .clone()
            .or_else(|| i.metadata.creation_timestamp.clone())
            .map(|t| t.0)
    };
    incidents.sort_by(|a, b| {
        when(b)
            .cmp(&when(a))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let mut rows = vec![vec![
        "NAME".to_string(),
        "ROLLOUT".into(),
        "REVISION".into(),
        "TRIAGE".into(),
        "TRIGGER".into(),
        "TIME-TO-DETECT".into(),
        "AGE".into(),
    ]];
    if all_namespaces {
        rows[0].insert(0, "NAMESPACE".into());
    }
    let short = |s: i64| match s.max(0) {
        s @ 0..120 => format!("{s}s"),
        s @ 120..7_200 => format!("{}m", s / 60),
        s @ 7_200..172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    };
    for incident in &incidents {
        let age = when(incident).map_or_else(
            || "-".to_string(),
            |t| short(now.duration_since(t).as_secs()),
        );
        let time_to_detect = incident
            .spec
            .time_to_detect_seconds
            .map_or_else(|| "-".to_string(), short);
        let mut row = vec![
            incident.name_any(),
            incident.spec.rollout.clone(),
            incident.spec.revision.clone(),
            incident.spec.triage.to_string(),
            incident.spec.trigger.to_string(),
            time_to_detect,
            age,
        ];
        if all_namespaces {
            row.insert(0, incident.namespace().unwrap_or_default());
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("   ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

async fn client() -> anyhow::Result<Client> {
    Client::try_from(config().await?).map_err(unreachable)
}

async fn config() -> anyhow::Result<kube::Config> {
    kube::Config::infer().await.map_err(unreachable)
}

fn unreachable(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot reach a Kubernetes cluster ({e}); set KUBECONFIG or run inside a cluster"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(namespace: &str, name: &str, detected: &str) -> Incident {
        serde_json::from_value(json!({
            "apiVersion": "firebreak.dev/v1alpha1",
            "kind": "Incident",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "rollout": "checkout", "revision": "c8fff4b7d9", "stableRevision": "6d5b9c7f48",
                "trigger": "AnalysisFailed", "summary": "", "triage": "change",
                "blastRadius": {"maxWeight": 20, "servedSeconds": 395, "pods": 2},
                "anchor": {"detectedAt": detected}, "change": {},
            },
        }))
        .expect("an Incident")
    }

    #[test]
    fn incidents_are_listed_newest_first_with_their_age() {
        let now = "2025-03-08T05:04:40Z".parse().unwrap();
        let table = incidents_table(
            vec![
                incident("shop", "older", "2025-03-06T03:00:00Z"),
                incident("web", "newest", "2025-03-08T05:04:00Z"),
                incident("shop", "middle", "2025-03-08T03:04:40Z"),
            ],
            true,
            now,
        );
        let names: Vec<_> = table
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap_or_default())
            .collect();
        assert_eq!(names, ["NAME", "newest", "middle", "older"], "{table}");
        assert!(table.lines().nth(1).unwrap().ends_with("40s"), "{table}");
        assert!(table.lines().nth(2).unwrap().ends_with("2h"), "{table}");
        assert!(table.lines().nth(3).unwrap().ends_with("2d"), "{table}");
        assert!(table.starts_with("NAMESPACE   NAME"), "{table}");
        // The age is not mistaken for a time-to-detect: both have their own column.
        let header = table.lines().next().unwrap();
        assert!(
            header.contains("TIME-TO-DETECT") && header.trim_end().ends_with("AGE"),
            "{header}"
        );
    }
}
