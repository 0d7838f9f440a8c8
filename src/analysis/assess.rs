//! One look of canary analysis, as a pure function: the previous analysis status, the spec, the
//! window's observations and the clock in; the new status and a [`Gate`] for the rollout out.

use std::time::Duration;

use firebreak_judge::{
    Ceiling, Counts, DEFAULT_MIN_INTERVALS, Evidence, InconclusiveReason, MetricKind, Policy,
    Verdict, decide, group, judge, metric_alpha,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::{Analysis, AnalysisOutcome, AnalysisStatus, MetricStatus, MetricVerdict};

use super::provider::{CrashWindow, Measurement, ProviderError};

/// Default `analysis.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default `analysis.confidence`.
pub const DEFAULT_CONFIDENCE: f64 = 0.99;
/// Default `errorRate.maxRatio`.
pub const DEFAULT_ERROR_MAX_RATIO: f64 = 1.5;
/// Default `crashRate.maxRatio`.
pub const DEFAULT_CRASH_MAX_RATIO: f64 = 2.0;
/// First retry delay after a failed look; doubles per consecutive failure, up to the interval.
pub const RETRY_BASE: Duration = Duration::from_secs(2);

/// What the analysis allows the rollout to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Every metric passes: the rollout may advance past a pause and be promoted.
    Pass,
    /// A metric fails: roll back now. The message names the metric and carries the numbers.
    Fail(String),
    /// Not enough evidence yet, or a common-mode problem: hold (never promote).
    Inconclusive(String),
    /// No data could be had: hold, retry with back-off.
    Unavailable(String),
    /// An absolute ceiling broke in both arms alike: probably not this change. Hold (never
    /// promote, never roll back) and record a `common-mode` incident.
    CommonMode(String),
}

impl Gate {
    /// The outcome kept in status.
    pub fn outcome(&self) -> AnalysisOutcome {
        match self {
            Gate::Pass => AnalysisOutcome::Pass,
            Gate::Fail(_) => AnalysisOutcome::Fail,
            Gate::Inconclusive(_) => AnalysisOutcome::Inconclusive,
            Gate::Unavailable(_) => AnalysisOutcome::Unavailable,
            Gate::CommonMode(_) => AnalysisOutcome::CommonMode,
        }
    }

    /// The sentence explaining the outcome.
    pub fn message(&self) -> &str {
        match self {
            Gate::Pass => "all metrics pass",
            Gate::Fail(m) | Gate::Inconclusive(m) | Gate::Unavailable(m) | Gate::CommonMode(m) => m,
        }
    }
}

/// What was measured in one window, per metric (in `spec.analysis.metrics` order).
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// Error-rate counts from Prometheus.
    Errors(Counts),
    /// Crash counts from pod status.
    Crashes(CrashWindow),
    /// The provider failed; the message says why and how to fix it.
    Unavailable(String),
}

/// When the next look is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Start the clock: the first window begins now, nothing is measured yet.
    Start,
    /// Measure the window since the last look, of this many seconds.
    Look(u64),
    /// Not yet: look again after this long.
    Wait(Duration),
}

/// The analysis interval of `spec` (validated by the controller; falls back to the default).
pub fn interval(spec: &Analysis) -> Duration {
    spec.interval
        .as_ref()
        .and_then(|d| d.to_duration().ok())
        .unwrap_or(DEFAULT_INTERVAL)
        .max(Duration::from_secs(1))
}

/// Decides whether to look now at the canary `revision`. After failed looks the next try comes
/// sooner than the interval: 2 s, 4 s, 8 s … (never later than the interval).
pub fn schedule(
    previous: Option<&AnalysisStatus>,
    spec: &Analysis,
    revision: &str,
    now: Timestamp,
) -> Schedule {
    let Some(previous) = previous.filter(|p| p.revision == revision) else {
        return Schedule::Start;
    };
    let Some(last) = &previous.last_look_at else {
        return Schedule::Start;
    };
    let every = interval(spec);
    let wait = if previous.consecutive_failures > 0 {
        let backoff = RETRY_BASE
            .saturating_mul(1u32 << previous.consecutive_failures.min(16).saturating_sub(1));
        backoff.min(every)
    } else {
        every
    };
    let elapsed = now.duration_since(last.0);
    let elapsed = Duration::try_from(elapsed).unwrap_or_default();
    if elapsed >= wait {
        Schedule::Look(elapsed.as_secs().max(1))
    } else {
        Schedule::Wait(wait - elapsed)
    }
}

/// Seconds of the window of metric `name` ending `now`: since its last folded-in window (or
/// since analysis started), at least 1.
pub fn window_seconds(status: &AnalysisStatus, name: &str, now: Timestamp) -> u64 {
    let since = status
        .metrics
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.observed_until.as_ref())
        .or(status.last_look_at.as_ref());
    since.map_or(1, |t| now.duration_since(t.0).as_secs().max(1) as u64)
}

/// The result of one look.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// The new analysis status.
    pub status: AnalysisStatus,
    /// What the rollout may do.
    pub gate: Gate,
}

fn metric_kind(metric: &crate::api::Metric) -> (MetricKind, f64, Option<Ceiling>) {
    match (&metric.error_rate, &metric.crash_rate) {
        (Some(e), _) => (
            MetricKind::ErrorRate,
            e.max_ratio.unwrap_or(DEFAULT_ERROR_MAX_RATIO),
            e.max_rate
                .filter(|r| *r > 0.0 && *r < 1.0)
                .map(|max_rate| Ceiling::ErrorRate { max_rate }),
        ),
        (None, crash) => {
            let crash = crash.clone();
            (
                MetricKind::CrashRate,
                crash
                    .as_ref()
                    .and_then(|c| c.max_ratio)
                    .unwrap_or(DEFAULT_CRASH_MAX_RATIO),
                crash
                    .and_then(|c| c.max_restarts_per_pod)
                    .map(|n| Ceiling::RestartsPerPod {
                        max_restarts: n.max(0) as u32,
                    }),
            )
        }
    }
}

/// Canary requests with no error in either arm after which an error-rate metric counts as
/// passing.
pub const QUIET_PASS_REQUESTS: f64 = 1000.0;

/// No event in either arm is nothing to compare, but not nothing to know. Zero errors over
/// [`QUIET_PASS_REQUESTS`] canary requests bounds the canary's error rate below 0.3% (the rule of
/// three, 95%). No crash in either arm is the healthy state of a crash metric, which would
/// otherwise never pass: it passes after [`DEFAULT_MIN_INTERVALS`] windows in which both
/// arms had running pods. Absolute ceilings still apply to both.
fn quiet_enough(evidence: &Evidence) -> bool {
    if evidence.canary_events() > 0 || evidence.baseline_events() > 0 {
        return false;
    }
    match evidence.kind() {
        MetricKind::ErrorRate => evidence.canary_exposure() >= QUIET_PASS_REQUESTS,
        MetricKind::CrashRate => {
            evidence.canary_exposure() > 0.0
                && evidence.baseline_exposure() > 0.0
                && evidence.intervals() >= DEFAULT_MIN_INTERVALS
        }
    }
}

/// Why a quiet metric passes ([`quiet_enough`]), in a sentence with the numbers.
fn quiet_summary(evidence: &Evidence) -> String {
    match evidence.kind() {
        MetricKind::ErrorRate => format!(
            "pass: no errors in either arm over {} canary requests, so the canary's error rate is below 0.3% (rule of three, 95%)",
            group(evidence.canary_exposure().round() as u64)
        ),
        MetricKind::CrashRate => format!(
            "pass: no crashes in either arm over {} analysis windows with pods running",
            evidence.intervals()
        ),
    }
}

/// When the planned decision look of an analysis starting at `start` is due, for a plan that
/// ends `plan` after it (the sum of the steps' pause durations, or the bake's duration; `None`
/// when some pause waits for `promote`). `None` also when the plan is shorter than
/// [`DEFAULT_MIN_INTERVALS`] analysis intervals: a decision on so little data would
/// only take α away from the continuous test.
pub fn decision_at(spec: &Analysis, start: Timestamp, plan: Option<Duration>) -> Option<Timestamp> {
    let plan = plan?;
    if plan < interval(spec).saturating_mul(DEFAULT_MIN_INTERVALS) {
        return None;
    }
    let plan = k8s_openapi::jiff::SignedDuration::try_from(plan).ok()?;
    start.checked_add(plan).ok()
}

/// Starts the analysis of canary `revision`: empty evidence, the first window begins `now`.
/// `decision_at` is the planned decision look ([`decision_at`]), if the plan has one.
pub fn start(
    spec: &Analysis,
    revision: &str,
    now: Timestamp,
    decision_at: Option<Timestamp>,
) -> Result<AnalysisStatus, String> {
    let mut metrics = Vec::with_capacity(spec.metrics.len());
    for metric in &spec.metrics {
        let (kind, max_ratio, _) = metric_kind(metric);
        let evidence = Evidence::new(kind, max_ratio)
            .map_err(|e| format!("spec.analysis.metrics[{}]: {e}", metric.name))?;
        metrics.push(MetricStatus {
            name: metric.name.clone(),
            verdict: MetricVerdict::Inconclusive,
            summary: "no data yet".into(),
            observed_until: Some(Time(now)),
            planned_decision: None,
            evidence,
        });
    }
    Ok(AnalysisStatus {
        revision: revision.to_string(),
        last_look_at: Some(Time(now)),
        looks: 0,
        outcome: Some(AnalysisOutcome::Inconclusive),
        message: Some("analysis started; first look after one interval".into()),
        metrics,
        decision_at: decision_at.map(Time),
        ..AnalysisStatus::default()
    })
}

/// Folds one window's observations into the evidence and judges every metric.
///
/// `observations` must have one entry per metric of `spec`, in order. A failed observation keeps
/// the metric's evidence as it was and makes the look `Unavailable` unless another metric fails.
pub fn assess(
    previous: &AnalysisStatus,
    spec: &Analysis,
    observations: &[Observation],
    now: Timestamp,
) -> Assessment {
    let mut status = previous.clone();
    status.last_look_at = Some(Time(now));
    status.looks += 1;
    let confidence = spec.confidence.unwrap_or(DEFAULT_CONFIDENCE);
    let alpha = metric_alpha(confidence, spec.metrics.len().max(1))
        .unwrap_or(0.01 / spec.metrics.len().max(1) as f64);

    let mut fails = Vec::new();
    let mut holds = Vec::new();
    let mut common = Vec::new();
    let mut unavailable = Vec::new();
    let mut adverse = false;
    let mut metrics = Vec::with_capacity(spec.metrics.len());
    for (i, metric) in spec.metrics.iter().enumerate() {
        let (kind, max_ratio, ceiling) = metric_kind(metric);
        // Evidence from the previous look, unless the metric's kind or margin changed.
        let before = previous.metrics.iter().find(|m| m.name == metric.name);
        let observed_until = before.and_then(|m| m.observed_until.clone());
        let kept =
            before.filter(|m| m.evidence.kind() == kind && m.evidence.max_ratio() == max_ratio);
        let mut evidence = kept
            .map(|m| m.evidence.clone())
            .or_else(|| Evidence::new(kind, max_ratio).ok());
        let planned_decision = kept.and_then(|m| m.planned_decision);
        // The planned look is the first successful look at or after `decision_at`.
        let decision_due =
            planned_decision.is_none() && status.decision_at.as_ref().is_some_and(|at| now >= at.0);
        let Some(evidence) = evidence.as_mut() else {
            fails.push(format!(
                "metric {}: maxRatio {max_ratio} is not a positive number",
                metric.name
            ));
            continue;
        };
        let observed = match observations.get(i) {
            Some(Observation::Errors(counts)) => {
                evidence.observe(counts).map_err(|e| e.to_string())
            }
            Some(Observation::Crashes(window)) => {
                status.pod_restarts = window.pod_restarts.clone();
                evidence
                    .observe(&window.counts)
                    .and_then(|()| {
                        evidence.record_restarts(
                            window.canary_max_restarts,
                            window.baseline_max_restarts,
                        )
                    })
                    .map_err(|e| e.to_string())
            }
            Some(Observation::Unavailable(why)) => Err(why.clone()),
            None => Err("no observation".into()),
        };
        if let Err(why) = observed {
            unavailable.push(format!("metric {}: {why}", metric.name));
            metrics.push(MetricStatus {
                name: metric.name.clone(),
                verdict: MetricVerdict::Unavailable,
                summary: why,
                observed_until,
                planned_decision,
                evidence: evidence.clone(),
            });
            continue;
        }
        adverse |= evidence.adverse_since_interval().is_some();
        let policy = Policy::new(alpha, ceiling).map(|p| {
            if status.decision_at.is_some() {
                p.with_planned_decision()
            } else {
                p
            }
        });
        let verdict = policy.map_err(|e| e.to_string()).and_then(|p| {
            if decision_due {
                decide(evidence, &p)
            } else {
                judge(evidence, &p)
            }
            .map_err(|e| e.to_string())
        });
        // A pass at the planned decision stands while the continuous test is undecided.
        let still_passed = planned_decision == Some(MetricVerdict::Pass)
            && matches!(verdict, Ok(Verdict::Inconclusive { .. }));
        let (word, summary) = match &verdict {
            Ok(v) => {
                let summary = v.summary(evidence);
                let word = match v {
                    Verdict::Pass { .. } | Verdict::PlannedPass { .. } => MetricVerdict::Pass,
                    Verdict::Inconclusive { .. } if still_passed => MetricVerdict::Pass,
                    Verdict::Fail { .. } | Verdict::PlannedFail { .. } => {
                        fails.push(format!("metric {}: {summary}", metric.name));
                        MetricVerdict::Fail
                    }
                    Verdict::CeilingBreached { .. } if v.is_common_mode() => {
                        common.push(format!(
                            "metric {}: {summary}; the baseline is as bad, so this change is probably not the cause: holding instead of rolling back",
                            metric.name
                        ));
                        MetricVerdict::CeilingBreached
                    }
                    Verdict::CeilingBreached { .. } => {
                        fails.push(format!("metric {}: {summary}", metric.name));
                        MetricVerdict::CeilingBreached
                    }
                    Verdict::Inconclusive {
                        reason: InconclusiveReason::NoEvents,
                        ..
                    } if quiet_enough(evidence) => MetricVerdict::Pass,
                    Verdict::Inconclusive { .. } => {
                        holds.push(format!("metric {}: {summary}", metric.name));
                        MetricVerdict::Inconclusive
                    }
                };
                (word, summary)
            }
            Err(e) => {
                fails.push(format!("metric {}: {e}", metric.name));
                (MetricVerdict::Fail, e.clone())
            }
        };
        let quiet_pass = word == MetricVerdict::Pass
            && !still_passed
            && matches!(
                verdict,
                Ok(Verdict::Inconclusive {
                    reason: InconclusiveReason::NoEvents,
                    ..
                })
            );
        let summary = if still_passed {
            format!("passed the planned decision; since then {summary}")
        } else if quiet_pass {
            quiet_summary(evidence)
        } else {
            summary
        };
        let planned_decision = if decision_due {
            Some(match word {
                MetricVerdict::Pass | MetricVerdict::Fail => word,
                MetricVerdict::Inconclusive
                | MetricVerdict::CeilingBreached
                | MetricVerdict::Unavailable => MetricVerdict::Inconclusive,
            })
        } else {
            planned_decision
        };
        metrics.push(MetricStatus {
            name: metric.name.clone(),
            verdict: word,
            summary,
            observed_until: Some(Time(now)),
            planned_decision,
            evidence: evidence.clone(),
        });
    }
    status.metrics = metrics;
    if adverse {
        status.adverse_since.get_or_insert(Time(now));
    } else if fails.is_empty() {
        status.adverse_since = None;
    }

    let gate = if !fails.is_empty() {
        Gate::Fail(fails.join("; "))
    } else if !common.is_empty() {
        Gate::CommonMode(common.join("; "))
    } else if !unavailable.is_empty() {
        Gate::Unavailable(unavailable.join("; "))
    } else if !holds.is_empty() {
        Gate::Inconclusive(holds.join("; "))
    } else {
        Gate::Pass
    };
    status.consecutive_failures = if matches!(gate, Gate::Unavailable(_)) {
        previous.consecutive_failures + 1
    } else {
        0
    };
    status.outcome = Some(gate.outcome());
    status.message = Some(gate.message().to_string());
    Assessment { status, gate }
}

/// A provider's answer as the pure look takes it: a failure becomes `Unavailable` with the
/// error's sentence, which holds the rollout.
impl From<Result<Measurement, ProviderError>> for Observation {
    fn from(result: Result<Measurement, ProviderError>) -> Observation {
        match result {
            Ok(Measurement::Errors(counts)) => Observation::Errors(counts),
            Ok(Measurement::Crashes(window)) => Observation::Crashes(window),
            Err(e) => Observation::Unavailable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ErrorRate, Metric, OnInconclusive, PrometheusQueries};

    fn spec() -> Analysis {
        Analysis {
            interval: Some("30s".into()),
            confidence: Some(0.99),
            on_inconclusive: OnInconclusive::Hold,
            metrics: vec![Metric {
                name: "http-errors".into(),
                error_rate: Some(ErrorRate {
                    prometheus: PrometheusQueries {
                        address: "http://p:9090".into(),
                        errors: "e".into(),
                        total: "t".into(),
                    },
                    max_ratio: Some(1.5),
                    max_rate: None,
                }),
                crash_rate: None,
            }],
        }
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn errors(canary: u64, baseline: u64, requests: f64) -> Observation {
        Observation::Errors(Counts {
            canary_events: canary,
            baseline_events: baseline,
            canary_exposure: requests,
            baseline_exposure: requests * 9.0,
        })
    }

    #[test]
    fn schedule_starts_then_waits_an_interval_and_backs_off_after_failures() {
        let spec = spec();
        assert_eq!(schedule(None, &spec, "abc", t(0)), Schedule::Start);
        let mut status = start(&spec, "abc", t(0), None).unwrap();
        assert_eq!(
            schedule(Some(&status), &spec, "abc", t(10)),
            Schedule::Wait(Duration::from_secs(20))
        );
        assert_eq!(
            schedule(Some(&status), &spec, "abc", t(31)),
            Schedule::Look(31)
        );
        assert_eq!(
            schedule(Some(&status), &spec, "other", t(31)),
            Schedule::Start,
            "a new canary starts afresh"
        );
        status.consecutive_failures = 3;
        assert_eq!(
            schedule(Some(&status), &spec, "abc", t(5)),
            Schedule::Wait(Duration::from_secs(3))
        );
    }

    #[test]
    fn a_bad_canary_fails_with_the_numbers_and_a_good_one_passes() {
        let spec = spec();
        let mut bad = start(&spec, "abc", t(0), None).unwrap();
        let mut good = bad.clone();
        let mut gate = Gate::Pass;
        for i in 1..=20 {
            // Canary 5% errors vs baseline 1%, 1,000 canary requests a window.
            let a = assess(&bad, &spec, &[errors(50, 90, 1000.0)], t(30 * i));
            bad = a.status;
            gate = a.gate;
            if matches!(gate, Gate::Fail(_)) {
                break;
            }
        }
        let Gate::Fail(why) = gate.clone() else {
            panic!("a 5x canary was not failed: {gate:?}")
        };
        assert!(
            why.contains("http-errors") && why.contains("canary"),
            "{why}"
        );
        assert!(bad.adverse_since.is_some());

        for i in 1..=60 {
            let a = assess(&good, &spec, &[errors(10, 90, 1000.0)], t(30 * i));
            good = a.status;
            gate = a.gate;
        }
        assert_eq!(gate, Gate::Pass, "{:?}", good.message);
    }

    #[test]
    fn a_quiet_metric_passes_and_says_why_in_the_same_words() {
        let spec = spec();
        let mut status = start(&spec, "abc", t(0), None).unwrap();
        for i in 1..=3 {
            status = assess(&status, &spec, &[errors(0, 0, 500.0)], t(30 * i)).status;
        }
        let metric = &status.metrics[0];
        assert_eq!(metric.verdict, MetricVerdict::Pass);
        assert!(
            metric
                .summary
                .starts_with("pass: no errors in either arm over 1,500")
                && !metric.summary.contains("inconclusive"),
            "{}",
            metric.summary
        );
    }

    #[test]
    fn missing_data_is_unavailable_and_keeps_the_evidence() {
        let spec = spec();
        let status = start(&spec, "abc", t(0), None).unwrap();
        let a = assess(&status, &spec, &[errors(1, 9, 100.0)], t(30));
        let b = assess(
            &a.status,
            &spec,
            &[Observation::Unavailable("Prometheus down".into())],
            t(60),
        );
        assert_eq!(
            b.gate,
            Gate::Unavailable("metric http-errors: Prometheus down".into())
        );
        assert_eq!(b.status.consecutive_failures, 1);
        assert_eq!(b.status.metrics[0].evidence, a.status.metrics[0].evidence);
    }

    fn window(canary: u64, baseline: u64) -> Observation {
        Observation::Errors(Counts {
            canary_events: canary,
            baseline_events: baseline,
            canary_exposure: 1000.0,
            baseline_exposure: 4000.0,
        })
    }

    #[test]
    fn the_decision_look_is_the_plans_end_when_it_has_a_fixed_one() {
        let spec = spec();
        let minutes = |m: u64| Some(Duration::from_secs(60 * m));
        assert_eq!(decision_at(&spec, t(0), minutes(10)), Some(t(600)));
        assert_eq!(
            decision_at(&spec, t(0), None),
            None,
            "a pause waits for promote"
        );
        // Less than three 30 s intervals: no planned decision.
        assert_eq!(
            decision_at(&spec, t(0), Some(Duration::from_secs(89))),
            None
        );
        assert_eq!(
            decision_at(&spec, t(0), Some(Duration::from_secs(90))),
            Some(t(90))
        );
    }

    #[test]
    fn the_planned_decision_happens_once_and_a_pass_stands() {
        let spec = spec();
        let mut status = start(&spec, "abc", t(0), Some(t(120))).unwrap();
        assert_eq!(status.decision_at, Some(Time(t(120))));
        // 3 canary errors in 1,000 requests against 20 in 4,000 (ratio 0.6): too few for the
        // continuous test to pass, enough for the exact test at the planned look.
        for i in 1..=3 {
            let a = assess(&status, &spec, &[window(3, 20)], t(30 * i));
            status = a.status;
            assert!(matches!(a.gate, Gate::Inconclusive(_)), "{:?}", a.gate);
            assert_eq!(status.metrics[0].planned_decision, None);
        }
        // A failed look at the planned time moves the decision to the next successful look.
        let a = assess(
            &status,
            &spec,
            &[Observation::Unavailable("Prometheus down".into())],
            t(120),
        );
        assert_eq!(a.status.metrics[0].planned_decision, None);
        let a = assess(&a.status, &spec, &[window(3, 20)], t(125));
        assert_eq!(a.gate, Gate::Pass, "{:?}", a.status.message);
        assert_eq!(
            a.status.metrics[0]
                .planned_decision
                .map(MetricVerdict::as_str),
            Some("Pass")
        );
        assert!(
            a.status.metrics[0].summary.contains("planned decision"),
            "{}",
            a.status.metrics[0].summary
        );
        // Later looks keep the pass while the continuous test is undecided.
        let b = assess(&a.status, &spec, &[window(3, 20)], t(155));
        assert_eq!(b.gate, Gate::Pass);
        assert!(
            b.status.metrics[0]
                .summary
                .starts_with("passed the planned decision; since then"),
            "{}",
            b.status.metrics[0].summary
        );
        // ... but not a failure: a canary turning bad is still rolled back.
        let mut c = b.status;
        let mut gate = Gate::Pass;
        for i in 0..20 {
            let a = assess(&c, &spec, &[window(60, 20)], t(185 + 30 * i));
            c = a.status;
            gate = a.gate;
            if matches!(gate, Gate::Fail(_)) {
                break;
            }
        }
        assert!(matches!(gate, Gate::Fail(_)), "{gate:?}");
        assert_eq!(c.metrics[0].planned_decision, Some(MetricVerdict::Pass));
    }
}
