//! What a notification says: the text of a rollout's start, promotion, rollback, hold or
//! second-wave end, and the payloads for each webhook format. Pure.
//!
//! A rollback message is worded for the person paged at night: **Impact** (the blast radius),
//! **What was done** (the mitigation, with times) and **What happens next**.

use kube::ResourceExt;
use serde_json::{Value, json};

use super::postmortem::{duration_text, group};
use crate::api::{Incident, IncidentSpec, Reason, Rollout, SecondWaveState};

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
            Reason::SecondWaveRecovered
            | Reason::SecondWaveNotRecovered
            | Reason::SecondWaveUnknown => Some(NotificationEvent::SecondWaveEnded),
            Reason::Deployed
            | Reason::TrafficChanged
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

/// `s` cut to at most `max` bytes (on a character boundary), with `…` when cut: Event notes
/// (1 kB), Slack sections (3,000 characters) and quoted answers have limits.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
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
}
