//! The pod annotations that tell the simulator how a pod behaves, and their parsing.
//!
//! Pods get their annotations from their template, so a Rollout's (or Deployment's) pod template
//! annotations decide how every pod of a revision behaves: `error-rate: "0.2"` on the template of
//! a bad revision makes its canary pods fail one request in five.
//!
//! A value that does not parse is reported (the caller warns once per pod) and the default is used
//! in its place: a typo in an annotation never stops the simulator.

use std::collections::BTreeMap;
use std::time::Duration;

/// Total request rate of the pod's group, in requests/second (a non-negative number). The group's
/// pods share it equally, as a Service would. When pods of a group disagree, the newest pod wins.
pub const REQUESTS_PER_SECOND: &str = "sim.firebreak.dev/requests-per-second";
/// Share of the pod's requests that fail with a 500, a fraction 0–1 (default 0).
pub const ERROR_RATE: &str = "sim.firebreak.dev/error-rate";
/// Mean request latency in milliseconds (default 20); latencies are exponentially distributed.
pub const LATENCY_MS: &str = "sim.firebreak.dev/latency-ms";
/// Mean time between crashes of the pod's container while it runs, in seconds (`"30"`, or with a
/// unit: `"500ms"`, `"30s"`, `"5m"`, `"1h"`); the intervals are exponentially distributed.
pub const CRASH_EVERY: &str = "sim.firebreak.dev/crash-every";
/// How the container dies when it crashes: `Error` (exit code 1, the default) or `OOMKilled`
/// (exit code 137).
pub const CRASH_REASON: &str = "sim.firebreak.dev/crash-reason";

/// Default mean latency, in seconds (20 ms).
pub const DEFAULT_LATENCY_SECONDS: f64 = 0.020;

/// Longest accepted duration (about 31 years), so that time arithmetic cannot overflow.
const MAX_DURATION_SECONDS: f64 = 1e9;

/// How a simulated container dies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CrashReason {
    /// The process exited with code 1 (kubelet reason `Error`).
    #[default]
    Error,
    /// The kernel killed the process for exceeding its memory limit (exit code 137).
    OomKilled,
}

impl CrashReason {
    /// The `reason` a kubelet writes in `lastState.terminated`.
    pub fn reason(self) -> &'static str {
        match self {
            CrashReason::Error => "Error",
            CrashReason::OomKilled => "OOMKilled",
        }
    }

    /// The exit code a kubelet reports: 1, or 128 + SIGKILL (9) for an OOM kill.
    pub fn exit_code(self) -> i32 {
        match self {
            CrashReason::Error => 1,
            CrashReason::OomKilled => 137,
        }
    }
}

/// A pod's simulated behaviour, read from its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct PodBehaviour {
    /// The group's total request rate in requests/second, if this pod states one.
    pub requests_per_second: Option<f64>,
    /// Share of requests that fail, a fraction 0–1.
    pub error_rate: f64,
    /// Mean latency, in seconds.
    pub mean_latency_seconds: f64,
    /// Mean time between crashes while running; `None`: the container never crashes.
    pub crash_every: Option<Duration>,
    /// How the container dies.
    pub crash_reason: CrashReason,
}

impl Default for PodBehaviour {
    fn default() -> Self {
        PodBehaviour {
            requests_per_second: None,
            error_rate: 0.0,
            mean_latency_seconds: DEFAULT_LATENCY_SECONDS,
            crash_every: None,
            crash_reason: CrashReason::Error,
        }
    }
}

/// An annotation whose value was ignored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}={value:?} is not {expected}; using the default")]
pub struct InvalidAnnotation {
    /// The annotation's key.
    pub key: &'static str,
    /// The rejected value.
    pub value: String,
    /// What a valid value looks like.
    pub expected: &'static str,
}

/// Reads a pod's behaviour from its annotations. Invalid values are returned alongside and replaced
/// by their default; unknown annotations are ignored.
pub fn parse(annotations: &BTreeMap<String, String>) -> (PodBehaviour, Vec<InvalidAnnotation>) {
    let mut invalid = Vec::new();
    let defaults = PodBehaviour::default();
    let behaviour = PodBehaviour {
        requests_per_second: read(
            annotations,
            REQUESTS_PER_SECOND,
            "a non-negative number of requests/second",
            |v| number_in(v, 0.0, f64::MAX),
            &mut invalid,
        ),
        error_rate: read(
            annotations,
            ERROR_RATE,
            "a fraction between 0 and 1",
            |v| number_in(v, 0.0, 1.0),
            &mut invalid,
        )
        .unwrap_or(defaults.error_rate),
        mean_latency_seconds: read(
            annotations,
            LATENCY_MS,
            "a non-negative number of milliseconds",
            |v| number_in(v, 0.0, MAX_DURATION_SECONDS).map(|ms| ms / 1e3),
            &mut invalid,
        )
        .unwrap_or(defaults.mean_latency_seconds),
        crash_every: read(
            annotations,
            CRASH_EVERY,
            "a positive duration in seconds (30, 30s, 500ms, 5m)",
            |v| parse_duration(v).ok().filter(|d| !d.is_zero()),
            &mut invalid,
        ),
        crash_reason: read(
            annotations,
            CRASH_REASON,
            "Error or OOMKilled",
            |v| match v.trim() {
                "Error" => Some(CrashReason::Error),
                "OOMKilled" => Some(CrashReason::OomKilled),
                _ => None,
            },
            &mut invalid,
        )
        .unwrap_or(defaults.crash_reason),
    };
    (behaviour, invalid)
}

/// The parsed value of annotation `key`; `None` when it is absent or invalid (then recorded in
/// `invalid`).
fn read<T>(
    annotations: &BTreeMap<String, String>,
    key: &'static str,
    expected: &'static str,
    parse: impl Fn(&str) -> Option<T>,
    invalid: &mut Vec<InvalidAnnotation>,
) -> Option<T> {
    let value = annotations.get(key)?;
    let parsed = parse(value);
    if parsed.is_none() {
        invalid.push(InvalidAnnotation {
            key,
            value: value.clone(),
            expected,
        });
    }
    parsed
}

/// A finite number within `min..=max`.
fn number_in(value: &str, min: f64, max: f64) -> Option<f64> {
    let n: f64 = value.trim().parse().ok()?;
    (n.is_finite() && (min..=max).contains(&n)).then_some(n)
}

/// Parses a duration: a plain number of seconds (`"2"`, `"0.5"`) or a number with one unit
/// (`"200ms"`, `"10s"`, `"1.5m"`, `"1h"`). Used for the annotations and the command-line flags.
///
/// Errors on negative, non-finite or absurdly long (over 10⁹ seconds) values.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let (number, seconds_per_unit) = [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|(unit, factor)| value.strip_suffix(unit).map(|n| (n, *factor)))
        .unwrap_or((value, 1.0));
    let seconds = number
        .parse::<f64>()
        .ok()
        .map(|n| n * seconds_per_unit)
        .filter(|s| s.is_finite() && (0.0..=MAX_DURATION_SECONDS).contains(s))
        .ok_or_else(|| {
            format!("{value:?} is not a duration: write seconds (2, 0.5) or 200ms, 10s, 5m, 1h")
        })?;
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_pod_without_annotations_behaves_by_default() {
        let (behaviour, invalid) = parse(&BTreeMap::new());
        assert_eq!(behaviour, PodBehaviour::default());
        assert_eq!(behaviour.mean_latency_seconds, 0.020);
        assert!(invalid.is_empty());
    }

    #[test]
    fn valid_annotations_are_read_in_their_units() {
        let (behaviour, invalid) = parse(&annotations(&[
            (REQUESTS_PER_SECOND, "100"),
            (ERROR_RATE, " 0.2 "),
            (LATENCY_MS, "150"),
            (CRASH_EVERY, "2"),
            (CRASH_REASON, "OOMKilled"),
            ("unrelated.example.com/x", "y"),
        ]));
        assert!(invalid.is_empty(), "{invalid:?}");
        assert_eq!(
            behaviour,
            PodBehaviour {
                requests_per_second: Some(100.0),
                error_rate: 0.2,
                mean_latency_seconds: 0.150,
                crash_every: Some(Duration::from_secs(2)),
                crash_reason: CrashReason::OomKilled,
            }
        );
        assert_eq!(behaviour.crash_reason.exit_code(), 137);
        assert_eq!(behaviour.crash_reason.reason(), "OOMKilled");
    }

    #[test]
    fn bad_values_fall_back_to_their_defaults_and_are_reported() {
        let bad = [
            (REQUESTS_PER_SECOND, "-5"),
            (ERROR_RATE, "20%"),
            (LATENCY_MS, "NaN"),
            (CRASH_EVERY, "0"),
            (CRASH_REASON, "Segfault"),
        ];
        let (behaviour, invalid) = parse(&annotations(&bad));
        assert_eq!(behaviour, PodBehaviour::default());
        let keys: Vec<&str> = invalid.iter().map(|i| i.key).collect();
        assert_eq!(
            keys,
            [
                REQUESTS_PER_SECOND,
                ERROR_RATE,
                LATENCY_MS,
                CRASH_EVERY,
                CRASH_REASON
            ]
        );
        assert_eq!(
            invalid[1].to_string(),
            "annotation sim.firebreak.dev/error-rate=\"20%\" is not a fraction between 0 and 1; \
             using the default"
        );
    }

    #[test]
    fn error_rates_outside_zero_to_one_are_rejected() {
        for value in ["1.01", "-0.1", "inf", "", "0.2.1"] {
            let (behaviour, invalid) = parse(&annotations(&[(ERROR_RATE, value)]));
            assert_eq!(behaviour.error_rate, 0.0, "{value:?}");
            assert_eq!(invalid.len(), 1, "{value:?}");
        }
        let (behaviour, _) = parse(&annotations(&[(ERROR_RATE, "1")]));
        assert_eq!(behaviour.error_rate, 1.0);
    }

    #[test]
    fn durations_are_seconds_or_carry_a_unit() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "-1s", "1d", "1e300", "ten", "1 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }
}
