//! Durations as users write them in a Rollout: `30s`, `5m`, `1h`, `1h30m`.

use std::borrow::Cow;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A duration of whole hours, minutes and seconds, in that order, each optional but at least one
/// present: `30s`, `5m`, `1h`, `1h30m`, `2h15m10s`; from `MIN_DURATION` (1 s) to
/// `MAX_DURATION` (8760 h, one year).
///
/// The CRD schema enforces the shape with a pattern and the bounds with a CEL rule, so a
/// malformed, zero or absurd value is rejected by the API server; [`DurationString::to_duration`]
/// still checks all three, for objects stored before the schema did.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DurationString(pub String);

/// The pattern of [`DurationString`], as used in the CRD schema. The digit counts are bounded (at
/// most 4 for hours, 6 for minutes, 8 for seconds) so that every matching value fits Go's
/// `time.Duration`, which the API server's CEL `duration()` parses into; `MAX_DURATION` is
/// then checked by the CEL rule.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,4}h)?([0-9]{1,6}m)?([0-9]{1,8}s)?$";

/// Most digits of each unit in [`DURATION_PATTERN`]: hours, minutes, seconds.
const MAX_DIGITS: [usize; 3] = [4, 6, 8];

/// The shortest duration: 1 second. A zero pause, bake, interval or deadline is a mistake: a
/// step that should not wait is removed instead, and a manual wait is `pause: {}`.
pub const MIN_DURATION: Duration = Duration::from_secs(1);

/// The longest duration: 8760 hours (365 days). Nothing in a rollout waits a year; a longer
/// value is a typo (`18446744073709551615s`), and would otherwise overflow the timestamps
/// computed from it. A wait with no end is `pause: {}`, which waits for `firebreak promote`.
pub const MAX_DURATION: Duration = Duration::from_secs(8760 * 3600);

/// [`MAX_DURATION`] as written in a Rollout and in the CEL rule.
pub const MAX_DURATION_TEXT: &str = "8760h";

/// A duration string that cannot be used. The message says what is wrong and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} {problem}")]
pub struct InvalidDuration {
    /// The rejected text.
    pub value: String,
    /// What is wrong with it.
    pub problem: DurationProblem,
}

/// Why a [`DurationString`] was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationProblem {
    /// Not of the form `1h30m10s` (or too many digits in a unit).
    #[error(
        "is not a duration: write whole hours, minutes and seconds in that order, such as 30s, 5m, \
         1h or 1h30m"
    )]
    Malformed,
    /// Zero, e.g. `0s`.
    #[error(
        "is zero: write at least 1s (a step that should not wait is removed; `pause: {{}}` waits \
         for promote)"
    )]
    Zero,
    /// Longer than [`MAX_DURATION`].
    #[error(
        "is longer than {MAX_DURATION_TEXT} (one year): write a shorter duration such as 1h30m"
    )]
    TooLong,
}

impl DurationString {
    /// Parses the duration.
    ///
    /// # Errors
    ///
    /// `Malformed` for anything that does not match [`DURATION_PATTERN`] (or is
    /// empty), `Zero` below `MIN_DURATION`, `TooLong`
    /// above `MAX_DURATION`.
    pub fn to_duration(&self) -> Result<Duration, InvalidDuration> {
        let invalid = |problem| InvalidDuration {
            value: self.0.clone(),
            problem,
        };
        let mut rest = self.0.as_str();
        if rest.is_empty() {
            return Err(invalid(DurationProblem::Malformed));
        }
        let mut seconds: u64 = 0;
        for ((unit, factor), max_digits) in [('h', 3600u64), ('m', 60), ('s', 1)]
            .into_iter()
            .zip(MAX_DIGITS)
        {
            if let Some(end) = rest.find(unit) {
                let digits = &rest[..end];
                if digits.is_empty()
                    || digits.len() > max_digits
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid(DurationProblem::Malformed));
                }
                // At most 8 digits: no overflow below.
                let n: u64 = digits
                    .parse()
                    .map_err(|_| invalid(DurationProblem::Malformed))?;
                seconds += n * factor;
                rest = &rest[end + 1..];
            }
        }
        if !rest.is_empty() {
            return Err(invalid(DurationProblem::Malformed));
        }
        let duration = Duration::from_secs(seconds);
        if duration < MIN_DURATION {
            return Err(invalid(DurationProblem::Zero));
        }
        if duration > MAX_DURATION {
            return Err(invalid(DurationProblem::TooLong));
        }
        Ok(duration)
    }
}

impl From<&str> for DurationString {
    fn from(s: &str) -> Self {
        DurationString(s.to_string())
    }
}

/// The CEL rule of every duration field: the shape, then the bounds. The shape is checked first
/// so that `duration()` never sees a string it cannot parse (CEL's `&&` absorbs the error of the
/// right side when the left side is false).
pub fn duration_rule() -> String {
    format!(
        "size(self) > 0 && self.matches('{DURATION_PATTERN}') && duration(self) >= duration('{}s') \
         && duration(self) <= duration('{MAX_DURATION_TEXT}')",
        MIN_DURATION.as_secs()
    )
}

/// The message of [`duration_rule`]: what to write instead.
pub fn duration_rule_message() -> String {
    format!(
        "must be a duration from {}s to {MAX_DURATION_TEXT} in whole hours, minutes and seconds, \
         such as 30s, 5m or 1h30m",
        MIN_DURATION.as_secs()
    )
}

impl JsonSchema for DurationString {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 2,
            "maxLength": 32,
            "pattern": DURATION_PATTERN,
            "description": "A duration such as 30s, 5m, 1h or 1h30m, from 1s to 8760h.",
            "x-kubernetes-validations": [{
                "rule": duration_rule(),
                "message": duration_rule_message(),
            }],
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Result<u64, InvalidDuration> {
        DurationString::from(s).to_duration().map(|d| d.as_secs())
    }

    fn problem(s: &str) -> DurationProblem {
        secs(s).expect_err(s).problem
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("5m"), Ok(300));
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("2h15m10s"), Ok(8110));
        assert_eq!(secs("1s"), Ok(1));
        assert_eq!(secs("8760h"), Ok(8760 * 3600));
        assert_eq!(secs("525600m"), Ok(8760 * 3600));
    }

    #[test]
    fn rejects_malformed_durations_with_a_hint() {
        for bad in [
            "", "5", "m", "1.5h", "30m1h", "1d", "-5s", "5 m", "5mm", "12345h", "1234567m",
        ] {
            let err = secs(bad).expect_err(bad);
            assert_eq!(err.problem, DurationProblem::Malformed, "{bad}");
            assert!(err.to_string().contains("1h30m"), "{err}");
        }
        assert_eq!(problem("99999999999999999999h"), DurationProblem::Malformed);
        assert_eq!(problem("18446744073709551615s"), DurationProblem::Malformed);
    }

    #[test]
    fn zero_is_refused_not_replaced() {
        for zero in ["0s", "0m", "0h", "0h0m0s"] {
            let err = secs(zero).expect_err(zero);
            assert_eq!(err.problem, DurationProblem::Zero);
            assert!(err.to_string().contains("at least 1s"), "{err}");
        }
    }

    #[test]
    fn more_than_a_year_is_refused() {
        for long in ["8761h", "8760h1s", "9999h", "99999999s", "999999m"] {
            let err = secs(long).expect_err(long);
            assert_eq!(err.problem, DurationProblem::TooLong);
            assert!(err.to_string().contains("8760h"), "{err}");
        }
    }

    /// The pattern, the parser and the bounds agree: every value the pattern admits parses, and
    /// the largest one of each unit stays far below Go's `time.Duration` limit (2562047h), so the
    /// API server's `duration()` never overflows.
    #[test]
    fn the_pattern_bounds_what_cel_must_parse() {
        let longest = DurationString::from("9999h999999m99999999s");
        assert_eq!(
            longest.to_duration().unwrap_err().problem,
            DurationProblem::TooLong
        );
        let seconds = 9999 * 3600 + 999_999 * 60 + 99_999_999u64;
        assert!(seconds < 2_562_047 * 3600);
        assert!(duration_rule().contains(DURATION_PATTERN));
        assert!(duration_rule().contains(MAX_DURATION_TEXT));
        assert_eq!(MAX_DURATION.as_secs(), 8760 * 3600);
    }
}
