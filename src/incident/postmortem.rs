//! Postmortem drafts: `firebreak postmortem <incident>` renders an [`Incident`] as Markdown.
//!
//! The draft holds every fact the record has — summary, impact (blast radius), timeline,
//! detection, mitigation and the pod-template change — and leaves the parts only people can
//! write (root cause, action items, the impact on users) as `> TODO(owner): …` prompts. The
//! structure follows the usual blameless postmortem (Google SRE book, "Postmortem Culture").
//!
//! The output is a pure function of the record: no clock, no cluster, so the same Incident always
//! renders the same bytes (the golden test below relies on it).

use std::fmt::Write;

pub(crate) use firebreak_judge::group;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Incident, IncidentSpec, IncidentStatus, SecondWaveState, Triage, Trigger};

/// Renders `incident` as a Markdown postmortem draft, ending with a newline.
///
/// Sections: title (rollout, revision, date), a blameless note, Summary, Impact, Timeline,
/// Detection, Mitigation, System change, Root cause and Action items. Absent facts (an optional
/// field of the record) are left out rather than shown as zero; times are UTC.
pub fn render(incident: &Incident) -> String {
    let spec = &incident.spec;
    let empty = IncidentStatus::default();
    let status = incident.status.as_ref().unwrap_or(&empty);
    let namespace = incident.metadata.namespace.as_deref();
    let name = incident.metadata.name.as_deref().unwrap_or("(unnamed)");
    let rollout = match namespace {
        Some(ns) => format!("{ns}/{}", spec.rollout),
        None => spec.rollout.clone(),
    };
    let date = spec
        .anchor
        .detected_at
        .as_ref()
        .or(incident.metadata.creation_timestamp.as_ref())
        .or(spec.timeline.first().map(|e| &e.time))
        .map_or_else(
            || "date unknown".to_string(),
            |t| t.0.strftime("%Y-%m-%d").to_string(),
        );

    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Postmortem (draft): {rollout}, revision {}, {date}\n",
        or_unknown(&spec.revision)
    );
    let incident_ref = match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    let _ = writeln!(
        out,
        "_Drafted by Firebreak from Incident {}. The facts come from the record; the parts marked \
         TODO are for people to write._\n",
        code(&incident_ref)
    );
    out.push_str(
        "_This postmortem is blameless: it describes what happened, what the system and the \
         people in it did, and why that made sense with what was known at the time. It does not \
         ask who is at fault._\n\n",
    );

    summary(&mut out, spec, &rollout);
    impact(&mut out, spec);
    timeline(&mut out, spec);
    detection(&mut out, spec);
    mitigation(&mut out, spec, status);
    system_change(&mut out, spec);
    root_cause(&mut out, spec);
    action_items(&mut out);
    out
}

fn summary(out: &mut String, spec: &IncidentSpec, rollout: &str) {
    out.push_str("## Summary\n\n");
    let (did, why) = trigger_words(spec.trigger);
    let when = spec
        .anchor
        .detected_at
        .as_ref()
        .map(|t| format!("At {}, ", utc(t)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "{when}Firebreak {did} revision {} of rollout {} {why} (trigger {}).",
        code(or_unknown(&spec.revision)),
        code(rollout),
        code(spec.trigger.as_str())
    );
    let sentence = spec.summary.trim();
    if !sentence.is_empty() {
        let _ = write!(out, " The evidence: {}", sentence_case_end(sentence));
    }
    if !spec.trigger.rolls_back() {
        out.push_str(" The canary was held at its step instead of being rolled back.");
    } else if !spec.stable_revision.is_empty() {
        let _ = write!(
            out,
            " The stable revision {} took back all traffic.",
            code(&spec.stable_revision)
        );
    }
    let _ = writeln!(
        out,
        " Triage: **{}** — {}\n",
        spec.triage,
        triage_words(spec.triage)
    );
}

fn impact(out: &mut String, spec: &IncidentSpec) {
    let blast = &spec.blast_radius;
    out.push_str("## Impact\n\n");
    let _ = writeln!(
        out,
        "- Highest canary weight: {}% of traffic",
        blast.max_weight
    );
    let _ = writeln!(
        out,
        "- Time the canary served traffic: {} (from its start to the end of mitigation)",
        duration_text(blast.served_seconds)
    );
    if let Some(share) = blast.traffic_share {
        let _ = writeln!(
            out,
            "- Measured share of requests the canary served while analysed: {}",
            percent(share)
        );
    }
    if let Some(requests) = blast.canary_requests {
        let _ = writeln!(
            out,
            "- Requests the canary served while analysed: {}",
            group(requests)
        );
    }
    if let Some(failed) = blast.canary_failed_requests {
        let share = blast
            .canary_requests
            .filter(|r| *r > 0)
            .map(|r| format!(" ({} of its requests)", percent(failed as f64 / r as f64)))
            .unwrap_or_default();
        let _ = writeln!(out, "- Failed canary requests: {}{share}", group(failed));
    }
    if let Some(excess) = blast.excess_failed_requests {
        let _ = writeln!(
            out,
            "- Failed requests attributable to the canary: ~{} (its failures minus what the \
             baseline's error rate predicts for as many requests)",
            group(excess)
        );
    }
    let _ = writeln!(out, "- Canary pods at the decision: {}", blast.pods);
    if let Some(restarts) = blast.restarts {
        let _ = writeln!(out, "- Highest restart count of one canary pod: {restarts}");
    }
    out.push_str(
        "\n> TODO(owner): What did users notice? Add customer-facing effects, support tickets, \
         error-budget spent, and any impact outside the numbers above (downstream services, \
         data written by the canary).\n\n",
    );
}

fn timeline(out: &mut String, spec: &IncidentSpec) {
    out.push_str("## Timeline\n\n");
    if spec.timeline.is_empty() {
        out.push_str("_No timeline entries were recorded._\n\n");
        return;
    }
    out.push_str("| Time (UTC) | Event | Revision | What happened |\n");
    out.push_str("|---|---|---|---|\n");
    for entry in &spec.timeline {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            table_time(&entry.time),
            cell(entry.reason.as_str()),
            entry
                .revision
                .as_deref()
                .map_or_else(|| "–".to_string(), |r| cell(&code(r))),
            cell(&entry.message)
        );
    }
    out.push('\n');
}

fn detection(out: &mut String, spec: &IncidentSpec) {
    let anchor = &spec.anchor;
    out.push_str("## Detection\n\n");
    if let Some(t) = &anchor.canary_started_at {
        let _ = writeln!(out, "- Canary started: {}", utc(t));
    }
    if let Some(t) = &anchor.evidence_turned_at {
        let _ = writeln!(
            out,
            "- Evidence first turned against the canary: {}",
            utc(t)
        );
    }
    if let Some(t) = &anchor.detected_at {
        let _ = writeln!(out, "- Firebreak decided: {}", utc(t));
    }
    if let Some(seconds) = spec.time_to_detect_seconds {
        let from = if anchor.evidence_turned_at.is_some() {
            "from the evidence turning against the canary to the decision"
        } else {
            "from the canary's start to the decision"
        };
        let _ = writeln!(
            out,
            "- **Time to detect: {}** ({from})",
            duration_text(seconds)
        );
    }
    out.push('\n');
    if spec.location.is_empty() {
        let _ = writeln!(
            out,
            "No metric evidence was recorded: the decision did not come from canary analysis \
             (trigger {}).\n",
            code(spec.trigger.as_str())
        );
        return;
    }
    out.push_str("What signal:\n\n");
    out.push_str(
        "| Metric | Verdict | Canary (events / exposure) | Baseline (events / exposure) |\n",
    );
    out.push_str("|---|---|---|---|\n");
    for metric in &spec.location {
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {} / {} |",
            cell(&code(&metric.metric)),
            cell(metric.verdict.as_str()),
            group(metric.canary_events),
            exposure_text(metric.canary_exposure),
            group(metric.baseline_events),
            exposure_text(metric.baseline_exposure)
        );
    }
    out.push_str(
        "\nEvents are failed requests (error rate) or restarts (crash rate); exposure is requests \
         or pod-seconds.\n\n",
    );
    for metric in &spec.location {
        let _ = writeln!(
            out,
            "- {} ({}): {}",
            code(&metric.metric),
            metric.verdict,
            one_line(&metric.summary)
        );
    }
    out.push('\n');
}

fn mitigation(out: &mut String, spec: &IncidentSpec, status: &IncidentStatus) {
    out.push_str("## Mitigation\n\n");
    if spec.mitigation.is_empty() {
        out.push_str("_No mitigation actions were recorded._\n\n");
    } else {
        out.push_str("| Time (UTC) | Action | Detail |\n");
        out.push_str("|---|---|---|\n");
        for action in &spec.mitigation {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                table_time(&action.time),
                cell(&action.action),
                cell(&action.detail)
            );
        }
        out.push('\n');
    }
    if let Some(seconds) = spec.time_to_mitigate_seconds {
        let _ = writeln!(
            out,
            "- **Time to mitigate: {}** (from the decision to the canary having no pods left to \
             serve)",
            duration_text(seconds)
        );
    }
    match &status.second_wave {
        Some(wave) => {
            let until = wave.until.as_ref().map(utc);
            let message = one_line(&wave.message);
            let text = match (wave.state, until) {
                (SecondWaveState::Watching, Some(until)) => {
                    format!("still being watched until {until}: {message}")
                }
                (SecondWaveState::Watching, None) => format!("still being watched: {message}"),
                (SecondWaveState::Recovered, _) => {
                    format!("the stable revision recovered after mitigation: {message}")
                }
                (SecondWaveState::NotRecovered, _) => format!(
                    "the stable revision did **not** return to its pre-rollout level after \
                     mitigation, so the problem is probably not (only) this change: {message}"
                ),
                (SecondWaveState::Unknown, _) => {
                    format!("could not be measured: {message}")
                }
            };
            let _ = writeln!(out, "- **Second wave:** {text}");
        }
        None => out.push_str("- **Second wave:** not recorded.\n"),
    }
    if !status.notifications.is_empty() {
        out.push_str("- **Notifications:**\n");
        for n in &status.notifications {
            let attempts = match n.attempts {
                1 => "1 attempt".to_string(),
                a => format!("{a} attempts"),
            };
            let at = n
                .time
                .as_ref()
                .map(|t| format!(", {}", utc(t)))
                .unwrap_or_default();
            let outcome = if n.delivered {
                format!("delivered after {attempts}{at}")
            } else {
                format!(
                    "**not delivered** ({attempts}{at}): {}",
                    one_line(n.error.as_deref().unwrap_or("no error recorded"))
                )
            };
            let _ = writeln!(out, "  - {} ({}): {outcome}", code(&n.name), n.event);
        }
    }
    out.push_str(
        "\n> TODO(owner): Did anyone act by hand (paged, checked dashboards, changed flags, \
         rolled back other services)? Add it to the timeline with times.\n\n",
    );
}

fn system_change(out: &mut String, spec: &IncidentSpec) {
    out.push_str("## System change\n\n");
    if spec.change.fields.is_empty() {
        out.push_str("No pod-template difference was recorded.\n\n");
    } else {
        let _ = writeln!(
            out,
            "The pod template, stable {} → canary {} (Secret values are never shown):\n",
            code(or_unknown(&spec.stable_revision)),
            code(or_unknown(&spec.revision))
        );
        out.push_str("| Field | Stable | Canary |\n");
        out.push_str("|---|---|---|\n");
        for field in &spec.change.fields {
            let value = |v: &Option<String>| match v {
                Some(v) => cell(&code(v)),
                None => "_(not set)_".to_string(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&code(&field.path)),
                value(&field.stable),
                value(&field.canary)
            );
        }
        out.push('\n');
    }
    out.push_str(
        "> TODO(owner): Link the pull request, commit or release behind this change, and list \
         changes outside the pod template in the same period (feature flags, configuration, \
         dependencies, infrastructure).\n\n",
    );
}

fn root_cause(out: &mut String, spec: &IncidentSpec) {
    out.push_str("## Root cause\n\n");
    let signal = spec
        .location
        .iter()
        .filter(|m| m.verdict.is_adverse())
        .map(|m| code(&m.metric))
        .collect::<Vec<_>>();
    let start = if signal.is_empty() {
        "the timeline and the system change above".to_string()
    } else {
        format!(
            "the signal ({}) and the system change above",
            signal.join(", ")
        )
    };
    let _ = writeln!(
        out,
        "> TODO(owner): Why did revision {} misbehave? Start from {start}. Keep asking why \
         until you reach conditions the team can change; describe systems and decisions, not \
         people.",
        code(or_unknown(&spec.revision))
    );
    match spec.triage {
        Triage::CommonMode => out.push_str(
            ">\n> Triage says common-mode: the baseline was as bad as the canary, so look first \
             at what both share (a dependency, the cluster, the incoming traffic) rather than \
             at this change.\n",
        ),
        Triage::External => out.push_str(
            ">\n> Triage says external: the decision did not come from the canary's measured \
             behaviour; say what prompted it (an abort, pods that never became ready).\n",
        ),
        Triage::Change => {}
    }
    out.push('\n');
}

fn action_items(out: &mut String) {
    out.push_str("## Action items\n\n");
    out.push_str(
        "> TODO(owner): List follow-ups that make this kind of incident less likely, detected \
         sooner or smaller (tests, alerts, analysis thresholds, kill-switch coverage, smaller \
         first steps). Give each one an owner and a due date.\n\n",
    );
    out.push_str("| Action item | Kind | Owner | Due |\n");
    out.push_str("|---|---|---|---|\n");
    out.push_str("| TODO | prevent / detect / mitigate | TODO | TODO |\n");
}

/// What Firebreak did and why, for a trigger: (`"rolled back"`, `"after canary analysis
/// failed"`).
fn trigger_words(trigger: Trigger) -> (&'static str, &'static str) {
    let did = if trigger.rolls_back() {
        "rolled back"
    } else {
        "held"
    };
    (did, trigger.words())
}

fn triage_words(triage: Triage) -> &'static str {
    match triage {
        Triage::Change => {
            "the canary was worse than the baseline running the stable version, so this change \
             is the likely cause."
        }
        Triage::CommonMode => {
            "the baseline was as bad as the canary, so this change is probably not the cause."
        }
        Triage::External => "the decision did not come from the canary's measured behaviour.",
    }
}

/// A number of seconds for people: `38s`, `6m 35s`, `2h 5m`, `3d 4h`. Negative values (clocks
/// that disagree) keep their sign.
pub(crate) fn duration_text(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (d, h, m, s) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    };
    format!("{sign}{text}")
}

/// A ratio 0–1 as a percentage with one decimal (two below 0.1%): `0.1973` → `19.7%`.
pub(crate) fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".to_string();
    }
    let p = ratio * 100.0;
    if p == 0.0 {
        "0%".to_string()
    } else if p.abs() < 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Exposure (requests or pod-seconds) as a whole number with separators when it is one or is
/// large, else with one decimal.
fn exposure_text(x: f64) -> String {
    if !x.is_finite() || x < 0.0 {
        return format!("{x}");
    }
    if x >= 100.0 || x.fract() == 0.0 {
        // Saturating cast: exposures above u64::MAX are not meaningful anyway.
        group(x.round() as u64)
    } else {
        format!("{x:.1}")
    }
}

/// A time as `2025-03-08 03:04:40 UTC`.
pub(crate) fn utc(t: &Time) -> String {
    t.0.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn table_time(t: &Time) -> String {
    t.0.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn or_unknown(s: &str) -> &str {
    if s.trim().is_empty() { "(unknown)" } else { s }
}

/// `s` on one line, ending with a full stop.
fn sentence_case_end(s: &str) -> String {
    let s = one_line(s);
    if s.ends_with(['.', '!', '?']) {
        s
    } else {
        format!("{s}.")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` as a Markdown code span, fenced with more backticks than it contains in a row.
pub(crate) fn code(s: &str) -> String {
    let s = one_line(s);
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if longest > 0 {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// `s` made safe for a Markdown table cell: on one line, pipes escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Incident {
        serde_yaml::from_str(include_str!("../../tests/golden/incident.yaml"))
            .expect("tests/golden/incident.yaml is an Incident")
    }

    /// The fixture (an `AnalysisFailed` rollback of `shop/checkout`) renders exactly as
    /// `tests/golden/postmortem.md`. After an intended change of the output, rewrite the golden
    /// file with `UPDATE_GOLDEN=1 cargo test --lib postmortem` and review the diff.
    #[test]
    fn postmortem_matches_the_golden_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/postmortem.md");
        let rendered = render(&fixture());
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(path, &rendered).expect("write the golden file");
            return;
        }
        let golden = std::fs::read_to_string(path).unwrap_or_default();
        if rendered != golden {
            let first = rendered
                .lines()
                .zip(golden.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| rendered.lines().count().min(golden.lines().count()));
            panic!(
                "the postmortem differs from tests/golden/postmortem.md from line {}:\n  \
                 rendered: {:?}\n  golden:   {:?}\nIf the change is intended, run \
                 `UPDATE_GOLDEN=1 cargo test --lib postmortem` and review the diff.",
                first + 1,
                rendered.lines().nth(first),
                golden.lines().nth(first)
            );
        }
    }

    #[test]
    fn the_same_incident_always_renders_the_same_bytes() {
        assert_eq!(render(&fixture()), render(&fixture()));
    }

    #[test]
    fn a_bare_record_still_renders_every_section_without_inventing_numbers() {
        let incident = Incident::new(
            "web-abc-1",
            IncidentSpec {
                rollout: "web".into(),
                revision: String::new(),
                stable_revision: String::new(),
                trigger: Trigger::Aborted,
                summary: String::new(),
                triage: Triage::External,
                blast_radius: Default::default(),
                location: vec![],
                anchor: Default::default(),
                change: Default::default(),
                mitigation: vec![],
                time_to_detect_seconds: None,
                time_to_mitigate_seconds: None,
                timeline: vec![],
            },
        );
        let text = render(&incident);
        for heading in [
            "## Summary",
            "## Impact",
            "## Timeline",
            "## Detection",
            "## Mitigation",
            "## System change",
            "## Root cause",
            "## Action items",
        ] {
            assert!(text.contains(heading), "{heading} missing:\n{text}");
        }
        assert!(text.contains("date unknown"));
        assert!(text.contains("revision (unknown)"));
        assert!(!text.contains("Requests the canary served"));
        assert!(!text.contains("Time to detect"));
        assert!(text.contains("No metric evidence was recorded"));
    }

    #[test]
    fn a_common_mode_hold_is_told_as_a_hold_and_points_away_from_the_change() {
        let mut incident = fixture();
        incident.spec.trigger = Trigger::CommonModeHold;
        incident.spec.triage = Triage::CommonMode;
        let text = render(&incident);
        assert!(
            text.contains("Firebreak held revision `c8fff4b7d9`"),
            "{text}"
        );
        assert!(text.contains("held at its step instead of being rolled back"));
        assert!(text.contains("Triage says common-mode"));
    }

    #[test]
    fn odd_text_cannot_break_the_tables() {
        let mut incident = fixture();
        incident.spec.change.fields[0].canary = Some("a|b `c`\nd".into());
        let text = render(&incident);
        assert!(text.contains("| `` a\\|b `c` d `` |"), "{text}");
        assert!(!text.contains("a|b"));
    }

    #[test]
    fn numbers_read_like_a_person_wrote_them() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_896), "1,896");
        assert_eq!(group(12_480_000), "12,480,000");
        assert_eq!(duration_text(38), "38s");
        assert_eq!(duration_text(395), "6m 35s");
        assert_eq!(duration_text(600), "10m");
        assert_eq!(duration_text(7_500), "2h 5m");
        assert_eq!(duration_text(-5), "-5s");
        assert_eq!(percent(0.1973), "19.7%");
        assert_eq!(percent(0.0004), "0.04%");
        assert_eq!(percent(f64::NAN), "n/a");
    }
}
