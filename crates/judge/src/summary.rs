//! Verdicts in words for people: one sentence carrying the numbers (rates of both arms, the
//! ratio bound and its confidence, the limit, the exposure), rounded so that it never claims
//! more than the test earned.

use std::fmt;

use crate::ceiling::Breach;
use crate::confidence::Estimate;
use crate::evidence::Evidence;
use crate::kind::{Arm, MetricKind};
use crate::verdict::{InconclusiveReason, Verdict};

impl fmt::Display for InconclusiveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InconclusiveReason::NoEvents => f.write_str("no events in either arm to compare yet"),
            InconclusiveReason::TooLittleEvidence {
                events,
                min_events,
                intervals,
                min_intervals,
            } => write!(
                f,
                "a pass needs {} events and {} intervals, have {} and {}",
                group(min_events),
                min_intervals,
                group(events),
                intervals
            ),
            InconclusiveReason::Undecided => {
                f.write_str("the confidence bounds still straddle the limit")
            }
        }
    }
}

impl Verdict {
    /// One sentence for people, carrying the numbers: rates of both arms, the ratio bound and
    /// confidence, the limit, and the exposure, e.g. "canary error rate 4.1% vs baseline 0.90%
    /// (ratio 4.6, ≥ 2.3 with 99.55% confidence, limit 1.5×; e-value 412 ≥ 223) over 12,480
    /// canary requests". Bounds are rounded outwards and confidences down, so the sentence
    /// never claims more than the test earned. `evidence` must be the record the verdict was
    /// computed from.
    pub fn summary(&self, evidence: &Evidence) -> String {
        let kind = evidence.kind;
        let rates = format!(
            "canary {} vs baseline {}",
            rate_text(kind, evidence.canary_events, evidence.canary_exposure),
            rate_value(kind, evidence.baseline_events, evidence.baseline_exposure)
        );
        let over = format!(
            "over {}",
            exposure_text(kind, evidence.canary_exposure, Arm::Canary)
        );
        let limit = format!("limit {}×", plain(evidence.max_ratio));
        let confidence = |alpha: f64| confidence_text(alpha);
        match self {
            Verdict::Pass { ratio } => format!(
                "{rates} (ratio {}≤ {} with {} confidence, {limit}) {over}",
                point_text(ratio),
                sig(ratio.upper, 2, Round::Up),
                confidence(ratio.alpha)
            ),
            Verdict::Fail {
                ratio,
                e_value,
                threshold,
            } => format!(
                "{rates} (ratio {}≥ {} with {} confidence, {limit}; e-value {} ≥ {}) {over}",
                point_text(ratio),
                sig(ratio.lower, 2, Round::Down),
                confidence(ratio.alpha),
                sig(*e_value, 3, Round::Down),
                sig(*threshold, 3, Round::Up)
            ),
            Verdict::PlannedFail { ratio, test } => format!(
                "{rates} (ratio {}{limit}) {over}; planned decision: {} canary {} where {} \
                 are expected at the limit, P(as many or more) = {} ≤ {}",
                point_text(ratio),
                group(test.canary_events),
                kind.events_word(),
                sig(test.expected, 3, Round::Nearest),
                sig(test.upper, 2, Round::Up),
                sig(test.alpha, 2, Round::Down)
            ),
            Verdict::PlannedPass { ratio, test } => format!(
                "{rates} (ratio {}{limit}) {over}; planned decision: {} canary {} where {} \
                 are expected at the limit, P(as few or fewer) = {} ≤ {}",
                point_text(ratio),
                group(test.canary_events),
                kind.events_word(),
                sig(test.expected, 3, Round::Nearest),
                sig(test.lower, 2, Round::Up),
                sig(test.alpha, 2, Round::Down)
            ),
            Verdict::Inconclusive { ratio, reason } => match reason {
                InconclusiveReason::NoEvents => format!(
                    "no {} in either arm over {} and {}: inconclusive, nothing to compare yet",
                    kind.events_word(),
                    exposure_text(kind, evidence.canary_exposure, Arm::Canary),
                    exposure_text(kind, evidence.baseline_exposure, Arm::Baseline)
                ),
                _ => format!(
                    "{rates} (ratio {}between {} and {} with {} confidence, {limit}) {over}: \
                     inconclusive, {reason}",
                    point_text(ratio),
                    sig(ratio.lower, 2, Round::Down),
                    sig(ratio.upper, 2, Round::Up),
                    confidence(2.0 * ratio.alpha)
                ),
            },
            Verdict::CeilingBreached {
                breach,
                ratio,
                ratio_fails,
            } => {
                let triage = if self.is_common_mode() {
                    "common-mode".to_string()
                } else if *ratio_fails {
                    format!(
                        "change; the canary is also worse than the baseline, ratio ≥ {}",
                        sig(ratio.lower.max(evidence.max_ratio), 2, Round::Down)
                    )
                } else {
                    "change".to_string()
                };
                match *breach {
                    Breach::ErrorRate {
                        max_rate,
                        canary,
                        baseline,
                        common_mode,
                        ..
                    } => format!(
                        "canary error rate {} (≥ {} with {} confidence) breaks the {} ceiling \
                         {over}; baseline {}{} ({triage})",
                        percent(canary.rate, Round::Nearest),
                        percent(canary.lower, Round::Down),
                        confidence(canary.alpha),
                        percent(max_rate, Round::Nearest),
                        percent(baseline.rate, Round::Nearest),
                        if common_mode {
                            format!(
                                " (≥ {}) breaks it too",
                                percent(baseline.lower, Round::Down)
                            )
                        } else {
                            " does not".to_string()
                        }
                    ),
                    Breach::RestartsPerPod {
                        max_restarts,
                        canary,
                        baseline,
                        common_mode,
                    } => format!(
                        "a canary pod restarted {canary} times, above the ceiling of \
                         {max_restarts} per pod; baseline pods at most {baseline}{} ({triage})",
                        if common_mode { ", above it too" } else { "" }
                    ),
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Round {
    Nearest,
    Down,
    Up,
}

/// `x` with `digits` significant digits (more for large numbers, never in exponent form below
/// 10^15), rounded as asked so that shown bounds are never tighter than the true ones.
pub(crate) fn sig(x: f64, digits: i32, round: Round) -> String {
    if x.is_nan() {
        return "n/a".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "∞" } else { "-∞" }.to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    if x.abs() >= 1e15 {
        return format!("{x:.1e}");
    }
    let magnitude = x.abs().log10().floor() as i32;
    let rounded = |decimals: i32| {
        let scale = 10f64.powi(decimals);
        let scaled = x * scale;
        // A hair of slack so that 2.3 stored as 2.2999999… still floors to 2.3.
        let r = match round {
            Round::Nearest => scaled.round(),
            Round::Down => (scaled * (1.0 + 1e-12)).floor(),
            Round::Up => (scaled * (1.0 - 1e-12)).ceil(),
        };
        r / scale
    };
    let mut decimals = (digits - 1 - magnitude).clamp(0, 17);
    let mut value = rounded(decimals);
    // 0.997 rounds to 1.00: one digit too many once the rounding carried into a new magnitude.
    if decimals > 0 && value.abs() >= 10f64.powi(magnitude + 1) {
        decimals -= 1;
        value = rounded(decimals);
    }
    format!("{value:.prec$}", prec = decimals as usize)
}

/// A setting as the user wrote it, to 4 significant digits without trailing zeros: 1.5 → "1.5".
fn plain(x: f64) -> String {
    let text = sig(x, 4, Round::Nearest);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A fraction as a percentage with two significant digits: 0.041 → "4.1%".
pub(crate) fn percent(fraction: f64, round: Round) -> String {
    format!("{}%", sig(fraction * 100.0, 2, round))
}

/// "99.5%" for alpha 0.0045: two significant digits of α, rounded down so the confidence shown
/// is never more than was earned; trailing zeros dropped ("99%").
fn confidence_text(alpha: f64) -> String {
    let alpha_percent = (alpha * 100.0).clamp(1e-12, 100.0);
    let decimals = (1 - alpha_percent.log10().floor() as i32).clamp(0, 12);
    let scale = 10f64.powi(decimals);
    let value = ((100.0 - alpha_percent) * scale * (1.0 + 1e-12)).floor() / scale;
    let text = format!("{value:.prec$}", prec = decimals as usize);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}%")
}

/// An integer with thousands separators: 12480 → "12,480".
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rate_value(kind: MetricKind, events: u64, exposure: f64) -> String {
    if exposure <= 0.0 {
        return "n/a".to_string();
    }
    match kind {
        MetricKind::ErrorRate => percent(events as f64 / exposure, Round::Nearest),
        MetricKind::CrashRate => sig(events as f64 / (exposure / 3600.0), 2, Round::Nearest),
    }
}

fn rate_text(kind: MetricKind, events: u64, exposure: f64) -> String {
    match kind {
        MetricKind::ErrorRate => format!("error rate {}", rate_value(kind, events, exposure)),
        MetricKind::CrashRate => format!(
            "{} restarts per pod-hour",
            rate_value(kind, events, exposure)
        ),
    }
}

fn exposure_text(kind: MetricKind, exposure: f64, arm: Arm) -> String {
    match kind {
        MetricKind::ErrorRate if exposure < 1e15 => {
            format!("{} {arm} requests", group(exposure.round() as u64))
        }
        MetricKind::ErrorRate => format!("{exposure:.2e} {arm} requests"),
        MetricKind::CrashRate => {
            format!(
                "{} {arm} pod-hours",
                sig(exposure / 3600.0, 2, Round::Nearest)
            )
        }
    }
}

fn point_text(ratio: &Estimate) -> String {
    match ratio.point {
        Some(p) => format!("{}, ", sig(p, 2, Round::Nearest)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::counts;
    use crate::policy::Policy;
    use crate::verdict::judge;

    use super::*;

    #[test]
    fn crash_rates_read_per_pod_hour() {
        // Canary: 2 pods for an hour, 12 restarts; baseline 10 pods, 6 restarts.
        let mut e = Evidence::new(MetricKind::CrashRate, 2.0).unwrap();
        for _ in 0..12 {
            e.observe(&counts(1, 0, 600.0, 3_000.0)).unwrap();
        }
        for _ in 0..6 {
            e.observe(&counts(0, 1, 1.0, 3_000.0)).unwrap();
        }
        let verdict = judge(&e, &Policy::new(0.005, None).unwrap()).unwrap();
        let text = verdict.summary(&e);
        assert!(
            text.starts_with("canary 6.0 restarts per pod-hour vs baseline 0.40 (ratio "),
            "{text}"
        );
        assert!(text.ends_with("over 2.0 canary pod-hours"), "{text}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group(12_480), "12,480");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000_000), "1,000,000");
        assert_eq!(confidence_text(0.0045), "99.55%");
        assert_eq!(confidence_text(0.01), "99%");
        assert_eq!(confidence_text(0.0005), "99.95%");
        assert_eq!(sig(2.349, 2, Round::Down), "2.3");
        assert_eq!(sig(2.301, 2, Round::Up), "2.4");
        assert_eq!(sig(412.7, 3, Round::Down), "412");
        assert_eq!(sig(f64::INFINITY, 2, Round::Up), "∞");
        assert_eq!(percent(0.041, Round::Nearest), "4.1%");
        assert_eq!(percent(0.009, Round::Nearest), "0.90%");
        assert_eq!(percent(0.00997, Round::Nearest), "1.0%");
        assert_eq!(sig(9.96, 2, Round::Up), "10");
    }
}
