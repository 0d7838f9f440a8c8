//! `fleet-sim load`: an open-loop, constant-rate HTTP load generator that reports requests per
//! second per revision — what a demo shows live, and what tests measure a traffic split with.
//!
//! **Open loop.** Request `i` starts `i / rps` seconds after the start whatever earlier responses
//! do ([`Schedule`]), so a slow revision cannot slow the load down and hide its own slowness (the
//! "coordinated omission" of closed-loop generators). Concurrency is bounded by
//! [`LoadConfig::max_in_flight`]: a request due while that many are in flight is skipped and
//! counted, not queued.
//!
//! **Revisions.** A response's revision is its [`POD_TEMPLATE_HASH_HEADER`], else its
//! [`SERVED_BY_HEADER`], else [`UNKNOWN_REVISION`] ([`revision_of`]); the pods that `fleet-sim
//! --serve-pods` serves set both.
//!
//! **Output** (stdout). Every [`LoadConfig::report_every`] a line with the requests sent per
//! second, the responses per second of each revision and the errors of the interval; at the end a
//! summary: requests sent and skipped, per revision the 2xx, 5xx and other responses, connection
//! errors, timeouts, and the p50 and p99 latency. With [`LoadConfig::json`] each line is one JSON
//! object, `"kind": "report"` or `"kind": "summary"` ([`report_json`], [`summary_json`]).
//!
//! The pure parts are the schedule ([`schedule`]), the tally ([`tally`]) and the rendering here;
//! [`run`] drives them with a clock and an HTTP client.

pub mod schedule;
pub mod tally;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};

pub use self::schedule::Schedule;
pub use self::tally::{Failure, Outcome, RevisionCounts, Tally, UNKNOWN_REVISION, revision_of};
use crate::serve::{POD_TEMPLATE_HASH_HEADER, SERVED_BY_HEADER};

/// Settings of a load run: the flags of `fleet-sim load`.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadConfig {
    /// URL to send GET requests to (http:// only).
    #[arg(long)]
    pub url: reqwest::Url,

    /// Host header to send, to pick a Gateway route by hostname while --url names an address.
    #[arg(long, value_parser = parse_header_value)]
    pub host: Option<HeaderValue>,

    /// Extra request header, `name: value`; repeat for more.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,

    /// Requests to start per second, in requests/second (a positive number).
    #[arg(long, value_parser = parse_positive_rate)]
    pub rps: f64,

    /// How long to send requests (`30s`, `2m`, or seconds); rps × duration requests are sent.
    #[arg(long, default_value = "30s", value_parser = crate::parse_positive_duration)]
    pub duration: Duration,

    /// How often to print a report line (`1s`, `500ms`, or seconds).
    #[arg(long, default_value = "1s", value_parser = crate::parse_positive_duration)]
    pub report_every: Duration,

    /// Print the reports and the summary as JSON, one object per line.
    #[arg(long)]
    pub json: bool,

    /// Most requests in flight at once; a request due while this many are in flight is skipped
    /// and counted.
    #[arg(long, default_value = "1000", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Longest wait for a complete response, connecting included (`10s`, or seconds); a request
    /// that takes longer counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = crate::parse_positive_duration)]
    pub timeout: Duration,
}

fn parse_positive_rate(value: &str) -> Result<f64, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("{value:?} is not a positive number of requests/second"))
}

fn parse_header_value(value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value.trim())
        .map_err(|e| format!("{value:?} is not a valid header value: {e}"))
}

fn parse_header(value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, header_value) = value
        .split_once(':')
        .ok_or_else(|| format!("{value:?} is not a header: write `name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| format!("{:?} is not a valid header name: {e}", name.trim()))?;
    Ok((name, parse_header_value(header_value)?))
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The rate requests were started at, in requests/second.
    pub target_rps: f64,
    /// From the first request to the last response.
    pub elapsed: Duration,
    /// The counts of the whole run.
    pub tally: Tally,
}

/// Sends `config.rps × config.duration` GET requests to `config.url` at a constant rate, writes
/// the reports and the summary to `out` as they come, and returns the summary. It returns once
/// every request sent has ended (each within `config.timeout`).
///
/// Errors when the URL is not http://, the HTTP client cannot be built, or `out` cannot be
/// written. Failed requests are counted, not errors.
pub async fn run(config: &LoadConfig, out: &mut (dyn Write + Send)) -> anyhow::Result<Summary> {
    if config.url.scheme() != "http" {
        anyhow::bail!(
            "--url {}: only http:// URLs are supported, not {}://",
            config.url,
            config.url.scheme()
        );
    }
    let client = reqwest::Client::builder()
        // The load goes where --url says, never through a proxy from the environment.
        .no_proxy()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .pool_max_idle_per_host(config.max_in_flight as usize)
        .tcp_nodelay(true)
        .build()
        .context("cannot build the HTTP client")?;
    let mut headers = HeaderMap::new();
    for (name, value) in &config.headers {
        headers.append(name.clone(), value.clone());
    }
    if let Some(host) = &config.host {
        headers.insert(HOST, host.clone());
    }
    let request = Arc::new((config.url.clone(), headers));

    let schedule = Schedule::new(config.rps, config.duration);
    let slots = Arc::new(Semaphore::new(config.max_in_flight as usize));
    let (results, mut finished) = mpsc::unbounded_channel();
    let mut total = Tally::default();
    let mut interval = Tally::default();
    let mut next = 0;
    let mut in_flight = 0u64;

    let start = Instant::now();
    let mut reports = tokio::time::interval_at(start + config.report_every, config.report_every);
    reports.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_report = start;
    loop {
        let due = schedule.due(next, start.elapsed());
        next = due.end;
        for _ in due {
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                total.skipped();
                interval.skipped();
                continue;
            };
            total.sent();
            interval.sent();
            in_flight += 1;
            let (client, request, results) =
                (client.clone(), Arc::clone(&request), results.clone());
            tokio::spawn(async move {
                let outcome = send(&client, &request.0, &request.1).await;
                drop(slot);
                // The receiver outlives every request: `run` waits for them all.
                let _ = results.send(outcome);
            });
        }
        if next == schedule.total() && in_flight == 0 {
            break;
        }
        let wake = (next < schedule.total()).then(|| start + schedule.due_at(next));
        tokio::select! {
            // Reports first: under a steady stream of responses they would starve otherwise.
            biased;
            _ = reports.tick() => {
                let now = Instant::now();
                let line = render_report(config.json, now - start, now - last_report, &interval);
                writeln!(out, "{line}")?;
                out.flush()?;
                interval = Tally::default();
                last_report = now;
            }
            Some(outcome) = finished.recv() => {
                in_flight -= 1;
                total.record(&outcome);
                interval.record(&outcome);
            }
            () = sleep_until(wake), if wake.is_some() => {}
        }
    }
    let now = Instant::now();
    if interval != Tally::default() {
        let line = render_report(config.json, now - start, now - last_report, &interval);
        writeln!(out, "{line}")?;
    }
    let summary = Summary {
        target_rps: config.rps,
        elapsed: now - start,
        tally: total,
    };
    let text = if config.json {
        summary_json(&summary).to_string()
    } else {
        summary_text(&summary)
    };
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(summary)
}

async fn sleep_until(wake: Option<Instant>) {
    if let Some(wake) = wake {
        tokio::time::sleep_until(wake).await;
    }
}

/// Sends one request and waits for its whole response.
async fn send(client: &reqwest::Client, url: &reqwest::Url, headers: &HeaderMap) -> Outcome {
    let started = Instant::now();
    let response = match client
        .get(url.clone())
        .headers(headers.clone())
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => return Outcome::NoResponse(failure(&e)),
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let revision = revision_of(
        header(POD_TEMPLATE_HASH_HEADER).as_deref(),
        header(SERVED_BY_HEADER).as_deref(),
    );
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(_) => Outcome::Response {
            revision,
            status,
            latency: started.elapsed(),
        },
        Err(e) => Outcome::NoResponse(failure(&e)),
    }
}

fn failure(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Connection
    }
}

fn render_report(json: bool, at: Duration, interval: Duration, tally: &Tally) -> String {
    if json {
        report_json(at, interval, tally).to_string()
    } else {
        report_text(at, interval, tally)
    }
}

/// `count` per `seconds`, 0 for an empty interval.
fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// One report line: `at` after the start, over the last `interval`; rates in requests/second.
///
/// ```text
///     3.0s  sent 100.0/s | 5d8f9c 90.0/s  7b6c4d 10.0/s | 5xx 1  other 0  conn 0  timeout 0  skipped 0
/// ```
pub fn report_text(at: Duration, interval: Duration, tally: &Tally) -> String {
    let seconds = interval.as_secs_f64();
    let revisions: Vec<String> = tally
        .revisions
        .iter()
        .map(|(revision, counts)| {
            format!(
                "{revision} {:.1}/s",
                per_second(counts.responses(), seconds)
            )
        })
        .collect();
    let revisions = if revisions.is_empty() {
        "no responses".to_string()
    } else {
        revisions.join("  ")
    };
    let (server_errors, other) = tally
        .revisions
        .values()
        .fold((0, 0), |(s, o), c| (s + c.server_errors, o + c.other));
    format!(
        "{:>7.1}s  sent {:.1}/s | {revisions} | 5xx {server_errors}  other {other}  conn {}  \
         timeout {}  skipped {}",
        at.as_secs_f64(),
        per_second(tally.sent, seconds),
        tally.connection_errors,
        tally.timeouts,
        tally.skipped,
    )
}

/// One report as JSON: `{"kind": "report", "at_seconds", "interval_seconds", "sent", "skipped",
/// "connection_errors", "timeouts", "sent_rps", "revisions": {revision: {"rps", "ok",
/// "server_errors", "other"}}}`; rates in requests/second, `server_errors` are 5xx.
pub fn report_json(at: Duration, interval: Duration, tally: &Tally) -> Value {
    let seconds = interval.as_secs_f64();
    let revisions = revisions_json(tally, "rps", |counts| {
        per_second(counts.responses(), seconds)
    });
    json!({
        "kind": "report",
        "at_seconds": at.as_secs_f64(),
        "interval_seconds": seconds,
        "sent": tally.sent,
        "sent_rps": per_second(tally.sent, seconds),
        "skipped": tally.skipped,
        "connection_errors": tally.connection_errors,
        "timeouts": tally.timeouts,
        "revisions": revisions,
    })
}

/// Per revision `{"ok", "server_errors", "other", extra}`, where `extra` is `value` of its counts.
fn revisions_json(
    tally: &Tally,
    extra: &str,
    value: impl Fn(&RevisionCounts) -> f64,
) -> serde_json::Map<String, Value> {
    tally
        .revisions
        .iter()
        .map(|(revision, counts)| {
            let mut fields = json!({
                "ok": counts.ok,
                "server_errors": counts.server_errors,
                "other": counts.other,
            });
            fields[extra] = json!(value(counts));
            (revision.clone(), fields)
        })
        .collect()
}

/// A revision's share of all responses, a fraction 0–1.
fn share(counts: &RevisionCounts, tally: &Tally) -> f64 {
    let responses = tally.responses();
    if responses == 0 {
        0.0
    } else {
        counts.responses() as f64 / responses as f64
    }
}

/// The summary as text: a headline, a table of revisions, and the latency percentiles.
///
/// ```text
/// sent 3000 requests in 30.0s (target 100/s); skipped 0, connection errors 0, timeouts 0
/// revision          ok       5xx     other   share
/// 5d8f9c          2695         5         0   90.0%
/// 7b6c4d           300         0         0   10.0%
/// latency p50 21.0 ms, p99 96.5 ms over 3000 responses
/// ```
pub fn summary_text(summary: &Summary) -> String {
    let tally = &summary.tally;
    let mut lines = vec![format!(
        "sent {} requests in {:.1}s (target {}/s); skipped {}, connection errors {}, timeouts {}",
        tally.sent,
        summary.elapsed.as_secs_f64(),
        summary.target_rps,
        tally.skipped,
        tally.connection_errors,
        tally.timeouts,
    )];
    let width = tally
        .revisions
        .keys()
        .map(String::len)
        .chain(["revision".len()])
        .max()
        .unwrap_or_default();
    lines.push(format!(
        "{:<width$}  {:>8}  {:>8}  {:>8}  {:>6}",
        "revision", "ok", "5xx", "other", "share"
    ));
    for (revision, counts) in &tally.revisions {
        lines.push(format!(
            "{revision:<width$}  {:>8}  {:>8}  {:>8}  {:>5.1}%",
            counts.ok,
            counts.server_errors,
            counts.other,
            100.0 * share(counts, tally),
        ));
    }
    match (tally.percentile(0.5), tally.percentile(0.99)) {
        (Some(p50), Some(p99)) => lines.push(format!(
            "latency p50 {:.1} ms, p99 {:.1} ms over {} responses",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            tally.responses(),
        )),
        _ => lines.push("latency: no responses".to_string()),
    }
    lines.join("\n")
}

/// The summary as JSON: `{"kind": "summary", "target_rps", "elapsed_seconds", "sent", "skipped",
/// "connection_errors", "timeouts", "responses", "revisions": {revision: {"ok", "server_errors",
/// "other", "share"}}, "latency_seconds": {"p50", "p99"}}`; `share` is a fraction 0–1 of all
/// responses, `server_errors` are 5xx, the latencies are `null` without responses.
pub fn summary_json(summary: &Summary) -> Value {
    let tally = &summary.tally;
    let revisions = revisions_json(tally, "share", |counts| share(counts, tally));
    let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    json!({
        "kind": "summary",
        "target_rps": summary.target_rps,
        "elapsed_seconds": summary.elapsed.as_secs_f64(),
        "sent": tally.sent,
        "skipped": tally.skipped,
        "connection_errors": tally.connection_errors,
        "timeouts": tally.timeouts,
        "responses": tally.responses(),
        "revisions": revisions,
        "latency_seconds": {
            "p50": seconds(tally.percentile(0.5)),
            "p99": seconds(tally.percentile(0.99)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadConfig,
    }

    fn parse(args: &[&str]) -> Result<LoadConfig, clap::Error> {
        Cli::try_parse_from(["load"].iter().chain(args)).map(|cli| cli.load)
    }

    #[test]
    fn flags_parse_with_defaults_and_reject_nonsense() {
        let config = parse(&["--url", "http://127.0.0.1:8000/", "--rps", "50"]).unwrap();
        assert_eq!(config.rps, 50.0);
        assert_eq!(config.duration, Duration::from_secs(30));
        assert_eq!(config.report_every, Duration::from_secs(1));
        assert_eq!(config.max_in_flight, 1000);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert!(!config.json);
        assert!(config.host.is_none());

        let config = parse(&[
            "--url",
            "http://127.0.0.1:8000/checkout",
            "--host",
            "shop.example",
            "--header",
            "x-canary: always",
            "--header",
            "Authorization:Bearer t",
            "--rps",
            "200",
            "--duration",
            "2m",
            "--report-every",
            "500ms",
            "--json",
        ])
        .unwrap();
        assert_eq!(config.host.unwrap(), "shop.example");
        assert_eq!(config.headers.len(), 2);
        assert_eq!(config.headers[0].0, "x-canary");
        assert_eq!(config.headers[0].1, "always");
        assert_eq!(config.headers[1].0, "authorization");
        assert_eq!(config.headers[1].1, "Bearer t");
        assert_eq!(config.duration, Duration::from_secs(120));
        assert_eq!(config.report_every, Duration::from_millis(500));
        assert!(config.json);

        let url = ["--url", "http://127.0.0.1:8000/"];
        for bad in [
            &["--rps", "0"][..],
            &["--rps", "-5"],
            &["--rps", "NaN"],
            &["--rps", "10", "--duration", "0s"],
            &["--rps", "10", "--header", "no-colon"],
            &["--rps", "10", "--header", "bad name: v"],
            &["--rps", "10", "--max-in-flight", "0"],
        ] {
            let args: Vec<&str> = url.iter().chain(bad).copied().collect();
            assert!(parse(&args).is_err(), "{bad:?} accepted");
        }
        assert!(parse(&["--rps", "10"]).is_err(), "--url is required");
        assert!(parse(&["--url", "not a url", "--rps", "10"]).is_err());
    }

    #[tokio::test]
    async fn only_http_urls_are_loaded() {
        let config = parse(&["--url", "https://127.0.0.1:1/", "--rps", "1"]).unwrap();
        let error = run(&config, &mut Vec::new()).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "--url https://127.0.0.1:1/: only http:// URLs are supported, not https://"
        );
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// 100 requests in an interval: 90 from the stable revision (5 failing), 8 from the canary,
    /// one 404 from a Gateway, one refused; one skipped.
    fn interval() -> Tally {
        let mut tally = Tally::default();
        for i in 0..100 {
            tally.sent();
            let outcome = match i {
                0..5 => Outcome::Response {
                    revision: "stable".into(),
                    status: 500,
                    latency: ms(30),
                },
                5..90 => Outcome::Response {
                    revision: "stable".into(),
                    status: 200,
                    latency: ms(10),
                },
                90..98 => Outcome::Response {
                    revision: "canary".into(),
                    status: 200,
                    latency: ms(20),
                },
                98 => Outcome::Response {
                    revision: UNKNOWN_REVISION.into(),
                    status: 404,
                    latency: ms(1),
                },
                _ => Outcome::NoResponse(Failure::Connection),
            };
            tally.record(&outcome);
        }
        tally.skipped();
        tally
    }

    #[test]
    fn a_report_shows_rates_per_revision_and_the_errors() {
        let line = report_text(Duration::from_secs(3), Duration::from_secs(2), &interval());
        assert_eq!(
            line,
            "    3.0s  sent 50.0/s | canary 4.0/s  stable 45.0/s  unknown 0.5/s | 5xx 5  other 1  \
             conn 1  timeout 0  skipped 1"
        );
        let empty = report_text(
            Duration::from_secs(1),
            Duration::from_secs(1),
            &Tally::default(),
        );
        assert!(empty.contains("| no responses |"), "{empty}");

        let json = report_json(Duration::from_secs(3), Duration::from_secs(2), &interval());
        assert_eq!(json["kind"], "report");
        assert_eq!(json["sent"], 100);
        assert_eq!(json["sent_rps"], 50.0);
        assert_eq!(json["skipped"], 1);
        assert_eq!(json["connection_errors"], 1);
        assert_eq!(json["revisions"]["stable"]["rps"], 45.0);
        assert_eq!(json["revisions"]["stable"]["server_errors"], 5);
        assert_eq!(json["revisions"]["canary"]["ok"], 8);
        assert_eq!(json["revisions"]["unknown"]["other"], 1);
    }

    #[test]
    fn the_summary_gives_counts_shares_and_percentiles() {
        let summary = Summary {
            target_rps: 50.0,
            elapsed: Duration::from_millis(2010),
            tally: interval(),
        };
        let text = summary_text(&summary);
        let expected = [
            "sent 100 requests in 2.0s (target 50/s); skipped 1, connection errors 1, timeouts 0",
            "revision        ok       5xx     other   share",
            "canary           8         0         0    8.1%",
            "stable          85         5         0   90.9%",
            "unknown          0         0         1    1.0%",
            "latency p50 10.0 ms, p99 30.0 ms over 99 responses",
        ];
        assert_eq!(text, expected.join("\n"));

        let json = summary_json(&summary);
        assert_eq!(json["kind"], "summary");
        assert_eq!(json["sent"], 100);
        assert_eq!(json["responses"], 99);
        assert_eq!(json["revisions"]["stable"]["ok"], 85);
        assert_eq!(json["revisions"]["stable"]["server_errors"], 5);
        let share = json["revisions"]["canary"]["share"].as_f64().unwrap();
        assert!((share - 8.0 / 99.0).abs() < 1e-12, "{share}");
        assert_eq!(json["latency_seconds"]["p50"], 0.010);
        assert_eq!(json["latency_seconds"]["p99"], 0.030);

        let nothing = Summary {
            target_rps: 1.0,
            elapsed: Duration::ZERO,
            tally: Tally::default(),
        };
        assert!(summary_text(&nothing).ends_with("latency: no responses"));
        assert_eq!(
            summary_json(&nothing)["latency_seconds"]["p50"],
            Value::Null
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_address_counts_connection_errors_and_still_reports() {
        // Bind a loopback port, then close it: nothing listens there.
        let address = {
            let listener = std::net::TcpListener::bind("127.0.5.20:0").unwrap();
            listener.local_addr().unwrap()
        };
        let config = parse(&[
            "--url",
            &format!("http://{address}/"),
            "--rps",
            "100",
            "--duration",
            "300ms",
            "--report-every",
            "100ms",
            "--json",
        ])
        .unwrap();
        let mut out = Vec::new();
        let summary = run(&config, &mut out).await.unwrap();
        assert_eq!(summary.tally.sent, 30);
        assert_eq!(summary.tally.connection_errors, 30);
        assert_eq!(summary.tally.responses(), 0);
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= 3, "{lines:?}");
        assert!(
            lines[..lines.len() - 1]
                .iter()
                .all(|l| l["kind"] == "report")
        );
        let reported: u64 = lines[..lines.len() - 1]
            .iter()
            .map(|l| l["connection_errors"].as_u64().unwrap())
            .sum();
        assert_eq!(reported, 30, "every failure is in some report");
        assert_eq!(lines.last().unwrap()["kind"], "summary");
        assert_eq!(lines.last().unwrap()["connection_errors"], 30);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_responses_do_not_slow_the_schedule_and_the_limit_skips() {
        // A server that accepts and never answers: every request stays in flight.
        let listener = tokio::net::TcpListener::bind("127.0.5.21:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream);
            }
        });
        let config = parse(&[
            "--url",
            &format!("http://{address}/"),
            "--rps",
            "100",
            "--duration",
            "500ms",
            "--max-in-flight",
            "10",
            "--timeout",
            "1s",
        ])
        .unwrap();
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let summary = run(&config, &mut out).await.unwrap();
        // 50 due; 10 sent before the limit, the other 40 skipped on schedule rather than waited
        // for; the 10 time out after 1 s.
        assert_eq!(summary.tally.sent, 10, "{summary:?}");
        assert_eq!(summary.tally.skipped, 40);
        assert_eq!(summary.tally.timeouts, 10);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("sent 10 requests") && text.contains("skipped 40"),
            "{text}"
        );
    }
}
