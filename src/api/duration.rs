//! Durations as users write them in a Rollout: `30s`, `5m`, `1h`, `1h30m`.

use std::borrow::Cow;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A duration of whole hours, minutes and seconds, in that order, each optional but at least one
/// present: `30s`, `5m`, `1h`, `1h30m`, `2h15m10s`.
///
/// The CRD schema enforces the shape with a pattern, so a malformed value is rejected by the API
/// server; [`DurationString::to_duration`] still checks, for objects stored before the schema did.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DurationString(pub String);

/// The pattern of [`DurationString`], as used in the CRD schema.
pub const DURATION_PATTERN: &str = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$";

/// A duration string that is not of the form `1h30m10s`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a duration: write whole hours, minutes and seconds such as 30s, 5m, 1h or 1h30m"
)]
pub struct InvalidDuration {
    /// The rejected text.
    pub value: String,
}

impl DurationString {
    /// Parses the duration. Errors on anything that does not match [`DURATION_PATTERN`] or is
    /// empty, or that overflows.
    pub fn to_duration(&self) -> Result<Duration, InvalidDuration> {
        let invalid = || InvalidDuration {
            value: self.0.clone(),
        };
        let mut rest = self.0.as_str();
        if rest.is_empty() {
            return Err(invalid());
        }
        let mut seconds: u64 = 0;
        for (unit, factor) in [('h', 3600u64), ('m', 60), ('s', 1)] {
            if let Some(end) = rest.find(unit) {
                let digits = &rest[..end];
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                let n: u64 = digits.parse().map_err(|_| invalid())?;
                seconds = n
                    .checked_mul(factor)
                    .and_then(|s| s.checked_add(seconds))
                    .ok_or_else(invalid)?;
                rest = &rest[end + 1..];
            }
        }
        if !rest.is_empty() {
            return Err(invalid());
        }
        Ok(Duration::from_secs(seconds))
    }
}

impl From<&str> for DurationString {
    fn from(s: &str) -> Self {
        DurationString(s.to_string())
    }
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
            "description": "A duration such as 30s, 5m, 1h or 1h30m."
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

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("5m"), Ok(300));
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("2h15m10s"), Ok(8110));
        assert_eq!(secs("0s"), Ok(0));
    }

    #[test]
    fn rejects_malformed_durations_with_a_hint() {
        for bad in ["", "5", "m", "1.5h", "30m1h", "1d", "-5s", "5 m", "5mm"] {
            let err = secs(bad).expect_err(bad);
            assert!(err.to_string().contains("1h30m"), "{err}");
        }
        assert!(secs("99999999999999999999h").is_err());
    }
}
