//! Notifications to the `spec.notifications` webhooks of a Rollout.
//!
//! Sent when a rollout starts, is promoted, is rolled back or held, and when the second-wave
//! check ends. A rollback message is worded for the person paged at night: **Impact** (the blast
//! radius), **What was done** (the mitigation, with times) and **What happens next**.
//!
//! The pure part ([`message_for`], [`slack_payload`], [`json_payload`]) builds the text and the
//! payloads; [`deliver`] POSTs one payload with retries; [`spawn`] does the whole job for every
//! receiver in a detached task, so a slow or failing receiver never delays the controller. Each
//! outcome becomes a Kubernetes Event on the Rollout and, for an incident, a
//! [`NotificationResult`] in the Incident's `status.notifications`.
//!
//! Webhook URLs are secrets (a Slack incoming-webhook URL is its own credential): they are never
//! logged nor put into an error message, an Event or a status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::postmortem::{duration_text, group};
use crate::api::{
    Incident, IncidentSpec, Notification, NotificationResult, Reason, Rollout, SecondWaveState,
    WebhookFormat,
};

/// Attempts [`spawn`] makes per receiver before giving up (the first try included).
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Delay before the first retry; each further retry waits twice as long as the one before
/// (1 s, 2 s, 4 s, 8 s with the defaults: about 15 s of waiting in all).
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_secs(1);
/// Longest wait between two attempts, whatever the base delay and attempt number.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// Time one attempt may take, from connecting to the end of the answer's body.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Field manager of the notification results written into an Incident's status.
pub const FIELD_MANAGER: &str = "firebreak-notifier";
/// Most results kept in an Incident's `status.notifications`; the oldest are dropped first.
pub const NOTIFICATION_HISTORY_LIMIT: usize = 50;
/// Tries to write one result into an Incident's status when others write at the same time.
const STATUS_CONFLICT_RETRIES: u32 = 5;
/// Most characters of a receiver's answer body quoted in an error.
const BODY_QUOTE_CHARS: usize = 200;

pub use crate::api::NotificationEvent;

impl NotificationEvent {
    fn emoji(self) -> &'static str {
        match self {
            NotificationEvent::Started => ":rocket:",
            NotificationEvent::Promoted => ":white_check_mark:",
            NotificationEvent::RolledBack => ":rotating_light:",
            NotificationEvent::Held => ":double_vertical_bar:",
            NotificationEvent::SecondWaveEnded => ":mag:",
        }
    }
}

impl NotificationEvent {
    /// The notification a timeline transition calls for, if any. Every automatic rollback and
    /// abort ([`crate::api::Trigger::rolls_back`]) notifies `RolledBack` and a common-mode hold `Held`; the
    /// match lists every reason, so a new one must say here whether it notifies.
    pub fn for_reason(reason: Reason) -> Option<NotificationEvent> {
        match reason {
            Reason::CanaryStarted => Some(NotificationEvent::Started),
            Reason::Promoted => Some(NotificationEvent::Promoted),
            Reason::AnalysisFailed
            | Reason::Aborted
            | Reason::ProgressDeadlineExceeded
            | Reason::AnalysisInconclusive
            | Reason::MaxDurationExceeded
            | Reason::BakeFailed
            | Reason::CommonModeHold => reason.trigger().map(|trigger| {
                if trigger.rolls_back() {
                    NotificationEvent::RolledBack
                } else {
                    NotificationEvent::Held
                }
            }),
            Reason::Deployed
            | Reason::Retried
            | Reason::CanarySuperseded
            | Reason::FastRollback
            | Reason::StepCompleted
            | Reason::PromotedFull
            | Reason::BakeStarted
            | Reason::BakeSuperseded
            | Reason::BakeCompleted
            | Reason::AnalysisUnavailable
            | Reason::AnalysisRecovered => None,
        }
    }
}

/// A notification's content, independent of the receiver's format.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// What it is about.
    pub event: NotificationEvent,
    /// The Rollout's namespace.
    pub namespace: String,
    /// The Rollout's name.
    pub rollout: String,
    /// pod-template-hash of the revision concerned, when known.
    pub revision: Option<String>,
    /// Plain text, one part per line: a headline, then `Label: text` lines (`Why`, `Impact`,
    /// `What was done`, `What happens next`) for a rollback or hold. Commands are in backticks.
    pub text: String,
}

/// Labels of the parts of a message, in the order they appear.
const LABELS: [&str; 5] = [
    "Why",
    "Impact",
    "What was done",
    "What happens next",
    "Second wave",
];

/// Builds the message about `event` for `rollout`; `incident` is the record of a rollback or
/// hold (and of the second wave). Without an incident a rollback message says what the Rollout's
/// status says; nothing is invented.
pub fn message_for(
    event: NotificationEvent,
    rollout: &Rollout,
    incident: Option<&Incident>,
) -> Message {
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let status = rollout.status.clone().unwrap_or_default();
    let target = if namespace.is_empty() {
        name.clone()
    } else {
        format!("{namespace}/{name}")
    };
    let ns_flag = if namespace.is_empty() {
        String::new()
    } else {
        format!(" -n {namespace}")
    };
    let spec = incident.map(|i| &i.spec);
    let revision = match event {
        NotificationEvent::Started | NotificationEvent::Promoted => status
            .canary_revision
            .clone()
            .or_else(|| status.stable_revision.clone()),
        NotificationEvent::RolledBack
        | NotificationEvent::Held
        | NotificationEvent::SecondWaveEnded => spec
            .map(|s| s.revision.clone())
            .filter(|r| !r.is_empty())
            .or_else(|| status.rolled_back_revision.clone())
            .or_else(|| status.canary_revision.clone()),
    };
    let rev = revision.as_deref().unwrap_or("(unknown)");

    let text = match event {
        NotificationEvent::Started => {
            let stable = status
                .stable_revision
                .as_deref()
                .filter(|s| Some(*s) != revision.as_deref())
                .map(|s| format!(" next to stable {s}"))
                .unwrap_or_default();
            format!(
                "Firebreak started rolling out {target}: revision {rev} is the canary{stable} ({} steps).",
                rollout.spec.strategy.canary.steps.len()
            )
        }
        NotificationEvent::Promoted => {
            format!("Firebreak promoted {target}: revision {rev} is now the stable revision.")
        }
        NotificationEvent::RolledBack => {
            let mut lines = vec![match spec {
                Some(s) => format!(
                    "Firebreak rolled back {target} revision {rev} {}.",
                    s.trigger.words()
                ),
                None => format!("Firebreak rolled back {target} revision {rev}."),
            }];
            let why = spec
                .map(|s| s.summary.trim().to_string())
                .filter(|s| !s.is_empty())
                .or_else(|| status.rollback_reason.clone());
            if let Some(why) = why {
                lines.push(format!("Why: {}", sentence(&why)));
            }
            lines.push(format!(
                "Impact: {}",
                spec.map_or_else(
                    || format!(
                        "not measured (no incident record); see `firebreak status {name}{ns_flag}`."
                    ),
                    impact_text
                )
            ));
            lines.push(format!(
                "What was done: {}",
                spec.map_or_else(
                    || "the canary was rolled back and the stable revision serves all traffic."
                        .to_string(),
                    |s| done_text(s, "the canary was rolled back")
                )
            ));
            let mut next = format!(
                "revision {rev} will not be rolled out again until spec.template changes or `firebreak retry {name}{ns_flag}`."
            );
            if spec.is_some_and(|s| s.mitigation.iter().any(|m| m.action == "KillSwitchFlipped")) {
                next.push_str(&format!(
                    " The kill switch stays at its safe value until `firebreak restore-flag {name}{ns_flag}`."
                ));
            }
            next.push_str(&second_wave_next(incident, spec));
            if let Some(i) = incident {
                next.push_str(&format!(
                    " Postmortem draft: `firebreak postmortem {}{ns_flag}`.",
                    i.name_any()
                ));
            }
            lines.push(format!("What happens next: {next}"));
            lines.join("\n")
        }
        NotificationEvent::Held => {
            let mut lines = vec![format!(
                "Firebreak is holding {target} canary {rev} instead of rolling it back: the baseline is as bad as the canary, so this change is probably not the cause."
            )];
            let why = spec
                .map(|s| s.summary.trim().to_string())
                .filter(|s| !s.is_empty())
                .or_else(|| status.message.clone());
            if let Some(why) = why {
                lines.push(format!("Why: {}", sentence(&why)));
            }
            if let Some(s) = spec {
                lines.push(format!("Impact: {}", impact_text(s)));
                lines.push(format!(
                    "What was done: {}",
                    done_text(s, "the canary was held at its current step")
                ));
            } else {
                lines.push("What was done: the canary was held at its current step.".into());
            }
            let mut next = format!(
                "the canary keeps its current weight and is not promoted while both arms are bad. Look at what they share (a dependency, the cluster, the incoming traffic). `firebreak abort {name}{ns_flag}` rolls it back anyway."
            );
            if let Some(i) = incident {
                next.push_str(&format!(
                    " Incident record: `firebreak postmortem {}{ns_flag}`.",
                    i.name_any()
                ));
            }
            lines.push(format!("What happens next: {next}"));
            lines.join("\n")
        }
        NotificationEvent::SecondWaveEnded => {
            let wave = incident
                .and_then(|i| i.status.as_ref())
                .and_then(|s| s.second_wave.as_ref());
            let stable = spec
                .map(|s| s.stable_revision.as_str())
                .filter(|s| !s.is_empty())
                .or(status.stable_revision.as_deref())
                .unwrap_or("(unknown)");
            let mut text = match wave.map(|w| w.state) {
                Some(SecondWaveState::Recovered) => format!(
                    "Second-wave check for {target} ended: stable revision {stable} recovered after revision {rev} was rolled back."
                ),
                Some(SecondWaveState::NotRecovered) => format!(
                    "Second-wave check for {target} ended: stable revision {stable} did NOT return to its pre-rollout level after revision {rev} was rolled back, so the problem is probably not (only) this change. Keep investigating."
                ),
                Some(state @ (SecondWaveState::Watching | SecondWaveState::Unknown)) => format!(
                    "Second-wave check for {target} after rolling back revision {rev}: {state}."
                ),
                None => format!(
                    "Second-wave check for {target} after rolling back revision {rev} ended; no result was recorded."
                ),
            };
            if let Some(w) = wave.filter(|w| !w.message.trim().is_empty()) {
                text.push_str(&format!("\nSecond wave: {}", one_line(&w.message)));
            }
            text
        }
    };
    Message {
        event,
        namespace,
        rollout: name,
        revision,
        text,
    }
}

/// The blast radius in a sentence: "canary c8fff served up to 20% of traffic for 6m 35s: 1,896
/// requests, 93 failed, ~72 more than the stable would have. 2 canary pods, no restarts."
fn impact_text(spec: &IncidentSpec) -> String {
    let b = &spec.blast_radius;
    let mut text = format!(
        "canary {} served up to {}% of traffic for {}",
        if spec.revision.is_empty() {
            "(unknown)"
        } else {
            &spec.revision
        },
        b.max_weight,
        duration_text(b.served_seconds)
    );
    let mut counts = Vec::new();
    if let Some(requests) = b.canary_requests {
        counts.push(format!("{} requests", group(requests)));
    }
    if let Some(failed) = b.canary_failed_requests {
        counts.push(format!("{} failed", group(failed)));
    }
    if let Some(excess) = b.excess_failed_requests {
        counts.push(format!(
            "~{} more than the stable would have",
            group(excess)
        ));
    }
    if !counts.is_empty() {
        text.push_str(": ");
        text.push_str(&counts.join(", "));
    }
    text.push_str(&format!(
        ". {} canary pod{}",
        b.pods,
        if b.pods == 1 { "" } else { "s" }
    ));
    match b.restarts {
        Some(0) => text.push_str(", no restarts."),
        Some(r) => text.push_str(&format!(", up to {r} restarts per pod.")),
        None => text.push('.'),
    }
    text
}

/// The mitigation with times, then time-to-detect and time-to-mitigate.
fn done_text(spec: &IncidentSpec, fallback: &str) -> String {
    let mut text = if spec.mitigation.is_empty() {
        format!("{fallback}.")
    } else {
        let actions = spec
            .mitigation
            .iter()
            .map(|m| {
                let detail = one_line(&m.detail);
                let detail = if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                };
                format!(
                    "{} UTC {}{detail}",
                    m.time.0.strftime("%H:%M:%S"),
                    action_words(&m.action)
                )
            })
            .collect::<Vec<_>>();
        format!("{}.", actions.join("; "))
    };
    if let Some(ttd) = spec.time_to_detect_seconds {
        let from = if spec.anchor.evidence_turned_at.is_some() {
            "after the evidence turned against the canary"
        } else {
            "after the canary started"
        };
        text.push_str(&format!(" Detected {} {from}", duration_text(ttd)));
        match spec.time_to_mitigate_seconds {
            Some(ttm) => text.push_str(&format!(
                "; mitigated {} after the decision.",
                duration_text(ttm)
            )),
            None => text.push('.'),
        }
    } else if let Some(ttm) = spec.time_to_mitigate_seconds {
        text.push_str(&format!(
            " Mitigated {} after the decision.",
            duration_text(ttm)
        ));
    }
    text
}

/// What the record's mitigation action names mean, for people.
fn action_words(action: &str) -> &str {
    match action {
        "KillSwitchFlipped" => "kill switch flipped",
        "TrafficToStable" => "traffic moved to stable",
        "CanaryScaledDown" => "canary scaled down",
        "StableScaledUp" => "previous revision scaled back up",
        "Held" => "canary held",
        other => other,
    }
}

/// The second-wave sentence of "What happens next".
fn second_wave_next(incident: Option<&Incident>, spec: Option<&IncidentSpec>) -> String {
    let stable = spec
        .map(|s| s.stable_revision.as_str())
        .filter(|s| !s.is_empty())
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    match incident
        .and_then(|i| i.status.as_ref())
        .and_then(|s| s.second_wave.as_ref())
    {
        Some(w) if w.state != SecondWaveState::Watching => format!(
            " The second-wave check has ended: {} ({}).",
            w.state,
            one_line(&w.message)
        ),
        Some(w) => match &w.until {
            Some(until) => format!(
                " Firebreak watches the stable revision{stable} for a second wave until {} UTC and reports whether it recovered.",
                until.0.strftime("%H:%M:%S")
            ),
            None => format!(
                " Firebreak watches the stable revision{stable} for a second wave and reports whether it recovered."
            ),
        },
        None => format!(
            " Firebreak watches the stable revision{stable} for a second wave and reports whether it recovered."
        ),
    }
}

/// `s` on one line, ending with a full stop.
fn sentence(s: &str) -> String {
    let s = one_line(s);
    if s.is_empty() || s.ends_with(['.', '!', '?']) {
        s
    } else {
        format!("{s}.")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A Slack incoming-webhook payload: `{"text": <the whole message>, "blocks": [<one mrkdwn
/// section per line>]}`. The first line is the bold headline; labelled parts (`Impact: …`) get
/// their label in bold on a line of its own. `&`, `<` and `>` are escaped as Slack requires; a
/// section is cut at Slack's 3,000-character limit.
pub fn slack_payload(msg: &Message) -> Value {
    let mut blocks = Vec::new();
    for (i, line) in msg
        .text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        let text = if i == 0 {
            format!("{} *{}*", msg.event.emoji(), slack_escape(line.trim()))
        } else {
            match LABELS
                .iter()
                .find_map(|label| line.strip_prefix(&format!("{label}: ")).map(|r| (label, r)))
            {
                Some((label, rest)) => format!("*{label}*\n{}", slack_escape(rest.trim())),
                None => slack_escape(line.trim()),
            }
        };
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&text, 3000)},
        }));
    }
    json!({
        "text": slack_escape(&msg.text),
        "blocks": blocks,
    })
}

/// Slack's three control characters, escaped
/// (<https://api.slack.com/reference/surfaces/formatting#escaping>).
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The `json` format: `{"event": <reason>, "namespace", "rollout", "revision" (string or null),
/// "text", "incident": {"name", "namespace", "spec", "status"} or null}`, with `spec` and
/// `status` exactly as in the Incident resource (camelCase).
pub fn json_payload(msg: &Message, incident: Option<&Incident>) -> Value {
    let incident = incident.map_or(Value::Null, |i| {
        json!({
            "name": i.metadata.name,
            "namespace": i.metadata.namespace,
            "spec": serde_json::to_value(&i.spec).unwrap_or(Value::Null),
            "status": i
                .status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or(Value::Null),
        })
    });
    json!({
        "event": msg.event.reason(),
        "namespace": msg.namespace,
        "rollout": msg.rollout,
        "revision": msg.revision,
        "text": msg.text,
        "incident": incident,
    })
}

/// The outcome of delivering one payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The receiver answered 2xx.
    pub delivered: bool,
    /// Attempts made (0 when it failed before sending, e.g. a missing Secret).
    pub attempts: u32,
    /// Why it was not delivered (the last attempt's error); never contains the URL.
    pub error: Option<String>,
}

impl Delivery {
    fn failed_before_sending(error: String) -> Self {
        Delivery {
            delivered: false,
            attempts: 0,
            error: Some(error),
        }
    }

    /// The status record of this delivery for receiver `name` about `event`, ended at `time`.
    pub fn into_result(
        self,
        name: &str,
        event: NotificationEvent,
        time: Option<Time>,
    ) -> NotificationResult {
        NotificationResult {
            name: name.to_string(),
            event,
            delivered: self.delivered,
            attempts: self.attempts,
            error: self.error,
            time,
        }
    }
}

/// POSTs `payload` as JSON (`content-type: application/json`) to `url`, at most `attempts` times
/// (at least once): each attempt may take [`ATTEMPT_TIMEOUT`]; a non-2xx answer or a transport
/// error is retried after `base_delay`, then twice as long each time, capped at [`MAX_DELAY`].
///
/// Never fails: the outcome says whether it was delivered, after how many attempts, and the last
/// error (`HTTP 500 Internal Server Error (body: "…")`, `no answer within 5s`, a connection
/// error). Errors never contain the URL, which is a secret for most webhooks.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    payload: &Value,
    attempts: u32,
    base_delay: Duration,
) -> Delivery {
    let body = match serde_json::to_vec(payload) {
        Ok(body) => body,
        Err(e) => return Delivery::failed_before_sending(format!("cannot encode payload: {e}")),
    };
    let attempts = attempts.max(1);
    let mut last_error = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(backoff(base_delay, attempt - 1)).await;
        }
        match post_once(http, url, &body).await {
            Ok(()) => {
                return Delivery {
                    delivered: true,
                    attempts: attempt,
                    error: None,
                };
            }
            Err(e) => last_error = e,
        }
    }
    Delivery {
        delivered: false,
        attempts,
        error: Some(format!(
            "after {attempts} attempt{}: {last_error}",
            if attempts == 1 { "" } else { "s" }
        )),
    }
}

/// The wait before retry number `retry` (1-based): `base × 2^(retry−1)`, at most [`MAX_DELAY`].
fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1u32 << (retry.saturating_sub(1)).min(20);
    base.saturating_mul(factor).min(MAX_DELAY)
}

async fn post_once(http: &reqwest::Client, url: &str, body: &[u8]) -> Result<(), String> {
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(ATTEMPT_TIMEOUT)
        .body(body.to_vec())
        .send()
        .await
        .map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let answer = match response.bytes().await {
        Ok(bytes) if !bytes.is_empty() => format!(
            " (body: {:?})",
            truncate(String::from_utf8_lossy(&bytes).trim(), BODY_QUOTE_CHARS)
        ),
        _ => String::new(),
    };
    Err(format!("HTTP {status}{answer}"))
}

/// A transport error with its causes, without the URL.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs());
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

/// Notifies every `spec.notifications` receiver of `rollout` about `event`, in detached tasks:
/// returns at once, so the caller (the controller, perhaps in the middle of a rollback) is
/// never delayed by a slow or failing receiver.
///
/// For each receiver: read the URL from the Secret `urlFrom.secretKeyRef` in the Rollout's
/// namespace, build the payload for `webhook.format` (`slack` or `json`), [`deliver`] it with
/// [`DEFAULT_ATTEMPTS`] and [`DEFAULT_BASE_DELAY`]. A missing Secret or key, an unreadable URL
/// or an unknown format is a failed delivery with 0 attempts and a message saying how to fix
/// it. Each outcome is published as an Event on the Rollout (`NotificationSent`, Normal, or
/// `NotificationFailed`, Warning) and, when `incident` is given, appended to its
/// `status.notifications` (a JSON merge patch on the status subresource with field manager
/// [`FIELD_MANAGER`], guarded by the resourceVersion and retried on conflict; a missing
/// Incident is logged).
///
/// Must be called inside a Tokio runtime; outside one it logs a warning and does nothing.
pub fn spawn(
    client: kube::Client,
    rollout: &Rollout,
    event: NotificationEvent,
    incident: Option<Incident>,
) {
    if rollout.spec.notifications.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        warn!(
            rollout = %rollout.name_any(),
            event = event.reason(),
            "notifications not sent: no Tokio runtime"
        );
        return;
    };
    let message = message_for(event, rollout, incident.as_ref());
    let reference = rollout.object_ref(&());
    let incident = Arc::new(incident);
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", describe(e)));
    for notification in rollout.spec.notifications.clone() {
        let job = Job {
            client: client.clone(),
            http: http.clone(),
            message: message.clone(),
            reference: reference.clone(),
            incident: incident.clone(),
            notification,
        };
        runtime.spawn(job.run());
    }
}

/// One receiver's notification, owned by its task.
struct Job {
    client: kube::Client,
    http: Result<reqwest::Client, String>,
    message: Message,
    reference: k8s_openapi::api::core::v1::ObjectReference,
    incident: Arc<Option<Incident>>,
    notification: Notification,
}

impl Job {
    async fn run(self) {
        let name = &self.notification.name;
        let event = self.message.event;
        let delivery = self.send().await;
        let time = Some(Time(Timestamp::now()));
        if delivery.delivered {
            info!(
                rollout = %self.message.rollout,
                namespace = %self.message.namespace,
                receiver = %name,
                event = event.reason(),
                attempts = delivery.attempts,
                "notification delivered"
            );
        } else {
            warn!(
                rollout = %self.message.rollout,
                namespace = %self.message.namespace,
                receiver = %name,
                event = event.reason(),
                attempts = delivery.attempts,
                error = delivery.error.as_deref().unwrap_or_default(),
                "notification failed"
            );
        }
        self.publish_event(&delivery).await;
        if let Some(incident) = self.incident.as_ref() {
            let result = delivery.into_result(name, event, time);
            record_result(&self.client, incident, result).await;
        }
    }

    async fn send(&self) -> Delivery {
        let webhook = &self.notification.webhook;
        let payload = match webhook.format {
            WebhookFormat::Slack => slack_payload(&self.message),
            WebhookFormat::Json => json_payload(&self.message, self.incident.as_ref().as_ref()),
        };
        let http = match &self.http {
            Ok(http) => http,
            Err(e) => return Delivery::failed_before_sending(e.clone()),
        };
        let url = match self.read_url().await {
            Ok(url) => url,
            Err(e) => return Delivery::failed_before_sending(e),
        };
        deliver(http, &url, &payload, DEFAULT_ATTEMPTS, DEFAULT_BASE_DELAY).await
    }

    /// The webhook URL from its Secret; errors name the Secret and key and say how to fix it,
    /// but never quote the value.
    async fn read_url(&self) -> Result<String, String> {
        let namespace = &self.message.namespace;
        let key_ref = &self.notification.webhook.url_from.secret_key_ref;
        let (secret, key) = (&key_ref.name, &key_ref.key);
        let create = format!(
            "kubectl create secret generic {secret} -n {namespace} --from-literal={key}=<webhook URL>"
        );
        let found = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(secret)
            .await;
        let secret_obj = match found {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Err(format!(
                    "Secret {namespace}/{secret} not found; create it with `{create}`"
                ));
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                return Err(format!(
                    "not allowed to read Secret {namespace}/{secret}: give Firebreak's ServiceAccount `get` on secrets in namespace {namespace}"
                ));
            }
            Err(e) => return Err(format!("cannot read Secret {namespace}/{secret}: {e}")),
        };
        let data = secret_obj.data.unwrap_or_default();
        let Some(value) = data.get(key) else {
            let keys = data.keys().cloned().collect::<Vec<_>>();
            return Err(format!(
                "Secret {namespace}/{secret} has no key {key:?} (its keys: {}); add it with `kubectl patch secret {secret} -n {namespace} --type merge -p '{{\"stringData\":{{\"{key}\":\"<webhook URL>\"}}}}'`",
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                }
            ));
        };
        let url = std::str::from_utf8(&value.0)
            .map(str::trim)
            .map_err(|_| format!("Secret {namespace}/{secret} key {key:?} is not UTF-8 text"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "Secret {namespace}/{secret} key {key:?} does not hold an http:// or https:// URL"
            ));
        }
        Ok(url.to_string())
    }

    async fn publish_event(&self, delivery: &Delivery) {
        let name = &self.notification.name;
        let reason = self.message.event.reason();
        let (type_, event_reason, note) = if delivery.delivered {
            (
                EventType::Normal,
                "NotificationSent",
                format!(
                    "{name}: {reason} notification delivered after {} attempt{}",
                    delivery.attempts,
                    if delivery.attempts == 1 { "" } else { "s" }
                ),
            )
        } else {
            (
                EventType::Warning,
                "NotificationFailed",
                format!(
                    "{name}: {reason} notification not delivered: {}",
                    delivery.error.as_deref().unwrap_or("unknown error")
                ),
            )
        };
        let recorder = Recorder::new(
            self.client.clone(),
            Reporter {
                controller: "firebreak".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        let event = Event {
            type_,
            reason: event_reason.into(),
            note: Some(truncate(&note, 900)),
            action: "Notify".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &self.reference).await {
            warn!(error = %e, receiver = %name, "could not publish the notification Event");
        }
    }
}

/// Appends `result` to the Incident's `status.notifications` (read, append, merge patch guarded
/// by the resourceVersion), retrying on conflict; a missing Incident or other error is logged.
async fn record_result(client: &kube::Client, incident: &Incident, result: NotificationResult) {
    let (Some(name), Some(namespace)) = (
        incident.metadata.name.as_deref(),
        incident.metadata.namespace.as_deref(),
    ) else {
        warn!("notification result not recorded: the Incident has no name or namespace");
        return;
    };
    let api = Api::<Incident>::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    for _ in 0..STATUS_CONFLICT_RETRIES {
        let current = match api.get_opt(name).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                warn!(incident = %name, %namespace, "notification result not recorded: Incident not found");
                return;
            }
            Err(e) => {
                warn!(incident = %name, %namespace, error = %e, "notification result not recorded");
                return;
            }
        };
        let patch = json!({
            "metadata": {"resourceVersion": current.resource_version()},
            "status": {"notifications": appended(&current, result.clone())},
        });
        match api.patch_status(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => return,
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                warn!(incident = %name, %namespace, "notification result not recorded: Incident not found");
                return;
            }
            Err(e) => {
                warn!(incident = %name, %namespace, error = %e, "notification result not recorded");
                return;
            }
        }
    }
    warn!(
        incident = %name,
        %namespace,
        "notification result not recorded: the Incident kept changing (conflicts)"
    );
}

/// The Incident's notification results with `result` appended, at most
/// [`NOTIFICATION_HISTORY_LIMIT`], oldest dropped first.
fn appended(incident: &Incident, result: NotificationResult) -> Vec<NotificationResult> {
    let mut list = incident
        .status
        .as_ref()
        .map(|s| s.notifications.clone())
        .unwrap_or_default();
    list.push(result);
    let excess = list.len().saturating_sub(NOTIFICATION_HISTORY_LIMIT);
    list.drain(..excess);
    list
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;

    fn incident() -> Incident {
        serde_yaml::from_str(include_str!("../../tests/golden/incident.yaml"))
            .expect("tests/golden/incident.yaml is an Incident")
    }

    fn rollout() -> Rollout {
        serde_yaml::from_str(
            r#"
apiVersion: firebreak.dev/v1alpha1
kind: Rollout
metadata: {name: checkout, namespace: shop}
spec:
  replicas: 10
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec: {containers: [{name: checkout, image: "registry.example.com/shop/checkout:1.42.0"}]}
  strategy:
    canary:
      steps: [{setWeight: 5}, {pause: {duration: 5m}}, {setWeight: 20}, {pause: {duration: 10m}}]
  notifications:
    - name: oncall
      webhook: {format: slack, urlFrom: {secretKeyRef: {name: oncall-hook, key: url}}}
status:
  phase: RolledBack
  stableRevision: 6d5b9c7f48
  rolledBackRevision: c8fff4b7d9
  rollbackReason: "analysis failed: http-errors"
"#,
        )
        .expect("a Rollout")
    }

    /// The fixture's second wave is still being watched, as it is when the rollback is sent.
    fn incident_at_rollback() -> Incident {
        let mut i = incident();
        let status = i.status.get_or_insert_default();
        status.notifications.clear();
        if let Some(w) = status.second_wave.as_mut() {
            w.state = SecondWaveState::Watching;
            w.message = "watching stable 6d5b9c7f48 for 10m".into();
        }
        i
    }

    #[test]
    fn a_rollback_message_tells_impact_what_was_done_and_what_happens_next_with_the_numbers() {
        let msg = message_for(
            NotificationEvent::RolledBack,
            &rollout(),
            Some(&incident_at_rollback()),
        );
        assert_eq!(msg.revision.as_deref(), Some("c8fff4b7d9"));
        assert_eq!(
            (msg.namespace.as_str(), msg.rollout.as_str()),
            ("shop", "checkout")
        );
        let text = &msg.text;
        for needle in [
            "Impact: canary c8fff4b7d9 served up to 20% of traffic for 6m 35s: 1,896 requests, 93 failed, ~72 more than the stable would have.",
            "What was done: 03:04:40 UTC kill switch flipped",
            "03:04:45 UTC canary scaled down",
            "Detected 38s after the evidence turned against the canary; mitigated 5s after the decision.",
            "What happens next: revision c8fff4b7d9 will not be rolled out again until spec.template changes or `firebreak retry checkout -n shop`.",
            "second wave until 03:14:45 UTC",
            "`firebreak postmortem checkout-c8fff4b7d9-1741402690 -n shop`",
            "Why: http-errors: canary error rate 4.9%",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }

    #[test]
    fn a_rollback_without_an_incident_invents_no_numbers() {
        let msg = message_for(NotificationEvent::RolledBack, &rollout(), None);
        assert!(msg.text.contains("Impact: not measured"), "{}", msg.text);
        assert!(msg.text.contains("What happens next"));
        assert!(msg.text.contains("Why: analysis failed: http-errors"));
        assert!(!msg.text.contains("requests"));
    }

    #[test]
    fn a_hold_says_the_change_is_probably_not_the_cause() {
        let mut i = incident_at_rollback();
        i.spec.trigger = crate::api::Trigger::CommonModeHold;
        let msg = message_for(NotificationEvent::Held, &rollout(), Some(&i));
        assert!(msg.text.contains("instead of rolling it back"));
        assert!(msg.text.contains("Impact: "));
        assert!(msg.text.contains("What was done: "));
        assert!(msg.text.contains("`firebreak abort checkout -n shop`"));
    }

    #[test]
    fn start_and_promotion_are_one_line() {
        let mut r = rollout();
        let status = r.status.get_or_insert_default();
        status.canary_revision = Some("c8fff4b7d9".into());
        let started = message_for(NotificationEvent::Started, &r, None);
        assert_eq!(
            started.text,
            "Firebreak started rolling out shop/checkout: revision c8fff4b7d9 is the canary next to stable 6d5b9c7f48 (4 steps)."
        );
        let promoted = message_for(NotificationEvent::Promoted, &r, None);
        assert_eq!(promoted.text.lines().count(), 1);
        assert!(
            promoted
                .text
                .contains("c8fff4b7d9 is now the stable revision")
        );
    }

    #[test]
    fn the_second_wave_message_says_whether_the_stable_recovered() {
        let msg = message_for(
            NotificationEvent::SecondWaveEnded,
            &rollout(),
            Some(&incident()),
        );
        assert!(
            msg.text.contains("stable revision 6d5b9c7f48 recovered"),
            "{}",
            msg.text
        );
        let mut i = incident();
        i.status
            .as_mut()
            .unwrap()
            .second_wave
            .as_mut()
            .unwrap()
            .state = SecondWaveState::NotRecovered;
        let msg = message_for(NotificationEvent::SecondWaveEnded, &rollout(), Some(&i));
        assert!(
            msg.text.contains("probably not (only) this change"),
            "{}",
            msg.text
        );
    }

    #[test]
    fn the_slack_payload_has_a_fallback_text_and_one_mrkdwn_section_per_part() {
        let msg = message_for(
            NotificationEvent::RolledBack,
            &rollout(),
            Some(&incident_at_rollback()),
        );
        let payload = slack_payload(&msg);
        let text = payload["text"].as_str().expect("text");
        assert!(text.contains("Impact: canary c8fff4b7d9"));
        let blocks = payload["blocks"].as_array().expect("blocks");
        assert_eq!(
            blocks.len(),
            5,
            "headline, why, impact, done, next: {payload:#}"
        );
        assert!(
            blocks
                .iter()
                .all(|b| b["type"] == "section" && b["text"]["type"] == "mrkdwn")
        );
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with(":rotating_light: *Firebreak rolled back shop/checkout")
        );
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("*Impact*\ncanary c8fff4b7d9")
        );
        assert!(
            blocks[3]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("*What was done*\n")
        );
        assert!(
            blocks[4]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("*What happens next*\n")
        );
        // Slack's control characters are escaped, so a value cannot become a link or mention.
        let odd = Message {
            text: "a <!channel> & b".into(),
            ..msg
        };
        assert_eq!(slack_payload(&odd)["text"], "a &lt;!channel&gt; &amp; b");
    }

    #[test]
    fn the_json_payload_carries_the_event_and_the_incident() {
        let i = incident();
        let msg = message_for(NotificationEvent::RolledBack, &rollout(), Some(&i));
        let payload = json_payload(&msg, Some(&i));
        assert_eq!(payload["event"], "RolledBack");
        assert_eq!(payload["namespace"], "shop");
        assert_eq!(payload["rollout"], "checkout");
        assert_eq!(payload["revision"], "c8fff4b7d9");
        assert_eq!(payload["text"], msg.text.as_str());
        assert_eq!(
            payload["incident"]["name"],
            "checkout-c8fff4b7d9-1741402690"
        );
        assert_eq!(
            payload["incident"]["spec"]["blastRadius"]["excessFailedRequests"],
            72
        );
        assert_eq!(
            payload["incident"]["status"]["secondWave"]["state"],
            "Recovered"
        );
        let started = message_for(NotificationEvent::Started, &rollout(), None);
        let payload = json_payload(&started, None);
        assert_eq!(payload["event"], "RolloutStarted");
        assert!(payload["incident"].is_null());
    }

    #[test]
    fn event_reasons_are_the_contract() {
        use NotificationEvent::*;
        let reasons: Vec<_> = [Started, Promoted, RolledBack, Held, SecondWaveEnded]
            .into_iter()
            .map(NotificationEvent::reason)
            .collect();
        assert_eq!(
            reasons,
            [
                "RolloutStarted",
                "RolloutPromoted",
                "RolledBack",
                "RolloutHeld",
                "SecondWaveEnded"
            ]
        );
    }

    #[test]
    fn back_off_doubles_and_is_capped() {
        let base = Duration::from_secs(1);
        let waits: Vec<_> = (1..=4).map(|r| backoff(base, r).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(backoff(base, 30), MAX_DELAY);
    }

    #[test]
    fn results_are_appended_and_bounded() {
        let mut i = incident();
        let r = NotificationResult {
            name: "oncall".into(),
            event: NotificationEvent::SecondWaveEnded,
            delivered: true,
            attempts: 1,
            error: None,
            time: None,
        };
        let list = appended(&i, r.clone());
        assert_eq!(list.len(), 3);
        assert_eq!(list[2], r);
        let old = NotificationResult {
            name: "old".into(),
            ..r.clone()
        };
        i.status.as_mut().unwrap().notifications = vec![old; 60];
        let list = appended(&i, r.clone());
        assert_eq!(list.len(), NOTIFICATION_HISTORY_LIMIT);
        assert_eq!(list.last(), Some(&r));
    }

    /// A receiver on 127.0.0.1 that answers the statuses in `answers` in turn (the last one
    /// forever after), counting requests and keeping the last body. Returns its URL.
    async fn receiver(
        answers: Vec<u16>,
    ) -> (
        String,
        Arc<AtomicU32>,
        Arc<std::sync::Mutex<Option<(String, Vec<u8>)>>>,
    ) {
        let hits = Arc::new(AtomicU32::new(0));
        let last = Arc::new(std::sync::Mutex::new(None));
        let (h, l) = (hits.clone(), last.clone());
        let app = Router::new().route(
            "/hook",
            post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (hits, last, answers) = (h.clone(), l.clone(), answers.clone());
                    async move {
                        let n = hits.fetch_add(1, Ordering::SeqCst) as usize;
                        let content_type = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        *last.lock().unwrap() = Some((content_type, body.to_vec()));
                        let code = answers[n.min(answers.len() - 1)];
                        (StatusCode::from_u16(code).unwrap(), "receiver says no")
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits, last)
    }

    #[tokio::test]
    async fn a_receiver_answering_200_gets_the_json_at_the_first_attempt() {
        let (url, hits, last) = receiver(vec![200]).await;
        let payload = json!({"text": "hello"});
        let d = deliver(
            &reqwest::Client::new(),
            &url,
            &payload,
            5,
            Duration::from_millis(1),
        )
        .await;
        assert_eq!(
            d,
            Delivery {
                delivered: true,
                attempts: 1,
                error: None
            }
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let (content_type, body) = last.lock().unwrap().clone().unwrap();
        assert_eq!(content_type, "application/json");
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), payload);
    }

    #[tokio::test]
    async fn two_500s_then_200_is_delivered_at_the_third_attempt() {
        let (url, hits, _) = receiver(vec![500, 500, 200]).await;
        let d = deliver(
            &reqwest::Client::new(),
            &url,
            &json!({}),
            5,
            Duration::from_millis(1),
        )
        .await;
        assert!(d.delivered, "{d:?}");
        assert_eq!(d.attempts, 3);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_receiver_always_answering_500_is_given_up_on_with_the_status_in_the_error() {
        let (url, hits, _) = receiver(vec![500]).await;
        let d = deliver(
            &reqwest::Client::new(),
            &url,
            &json!({}),
            4,
            Duration::from_millis(1),
        )
        .await;
        assert!(!d.delivered);
        assert_eq!(d.attempts, 4);
        assert_eq!(hits.load(Ordering::SeqCst), 4);
        let error = d.error.unwrap();
        assert!(error.contains("after 4 attempts"), "{error}");
        assert!(error.contains("HTTP 500 Internal Server Error"), "{error}");
        assert!(error.contains("receiver says no"), "{error}");
        assert!(!error.contains(&url), "the URL is a secret: {error}");
    }

    #[tokio::test]
    async fn an_unreachable_receiver_fails_without_naming_the_url() {
        // Bind and drop a listener: nothing listens on that port any more.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/secret-token", listener.local_addr().unwrap());
        drop(listener);
        let d = deliver(
            &reqwest::Client::new(),
            &url,
            &json!({}),
            2,
            Duration::from_millis(1),
        )
        .await;
        assert!(!d.delivered);
        assert_eq!(d.attempts, 2);
        let error = d.error.unwrap();
        assert!(!error.contains("secret-token"), "{error}");
    }

    #[tokio::test]
    async fn zero_attempts_still_tries_once() {
        let (url, hits, _) = receiver(vec![200]).await;
        let d = deliver(&reqwest::Client::new(), &url, &json!({}), 0, Duration::ZERO).await;
        assert!(d.delivered);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}
