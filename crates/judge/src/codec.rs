//! The stored form of [`Evidence`] in a Rollout's status: camelCase fields, every `f64` as the
//! shortest decimal string that parses back to the same bits, and a check of the whole record
//! when it is read back, so that a damaged status is an error rather than a wrong verdict.

#[cfg(feature = "schemars")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::eprocess::GRID_LEN;
use crate::error::JudgeError;
use crate::evidence::Evidence;
use crate::kind::MetricKind;
use crate::planned::{MAX_STRATA, Stratum};

/// The stored form of [`Evidence`] in a Rollout's status.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(JsonSchema))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "schemars", schemars(rename = "AnalysisEvidence"))]
pub(crate) struct EvidenceRepr {
    /// `ErrorRate` (events are failed requests, exposure requests) or `CrashRate` (restarts,
    /// pod-seconds).
    kind: MetricKind,
    /// The metric's maxRatio when this record started: the grid anchor.
    #[serde(with = "decimal")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    max_ratio: f64,
    /// Analysis intervals observed.
    intervals: u32,
    /// Total canary events.
    canary_events: u64,
    /// Total baseline events.
    baseline_events: u64,
    /// Events from intervals where both arms had exposure.
    paired_events: u64,
    /// Total canary exposure (requests or pod-seconds).
    #[serde(with = "decimal")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    canary_exposure: f64,
    /// Total baseline exposure (requests or pod-seconds).
    #[serde(with = "decimal")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    baseline_exposure: f64,
    /// Mantel–Haenszel numerator, sum of canary events times the baseline's exposure share.
    #[serde(with = "decimal")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    ratio_numerator: f64,
    /// Mantel–Haenszel denominator, sum of baseline events times the canary's exposure share.
    #[serde(with = "decimal")]
    #[cfg_attr(feature = "schemars", schemars(with = "String"))]
    ratio_denominator: f64,
    /// Highest restart count of one canary pod.
    #[serde(default)]
    canary_max_restarts_per_pod: u32,
    /// Highest restart count of one baseline pod.
    #[serde(default)]
    baseline_max_restarts_per_pod: u32,
    /// The interval since which the evidence has leaned against the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    adverse_since_interval: Option<u32>,
    /// Cumulative log-likelihood at ratios maxRatio·10^(j/20), j = -60..60 (121 values).
    #[serde(with = "decimal_vec")]
    #[cfg_attr(feature = "schemars", schemars(with = "Vec<String>"))]
    log_likelihood: Vec<f64>,
    /// Canary events from intervals where both arms had exposure.
    #[serde(default)]
    paired_canary_events: u64,
    /// The planned decision's strata: events pooled by the canary's share of events at the limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "schemars", schemars(length(max = 64)))]
    strata: Vec<Stratum>,
}

impl From<Evidence> for EvidenceRepr {
    fn from(e: Evidence) -> EvidenceRepr {
        let Evidence {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        } = e;
        EvidenceRepr {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        }
    }
}

impl TryFrom<EvidenceRepr> for Evidence {
    type Error = JudgeError;

    fn try_from(r: EvidenceRepr) -> Result<Evidence, JudgeError> {
        let EvidenceRepr {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        } = r;
        let corrupt = |what: String| Err(JudgeError::CorruptEvidence(what));
        if !(max_ratio.is_finite() && max_ratio > 0.0) {
            return corrupt(format!("maxRatio {max_ratio} is not a positive number"));
        }
        for (name, value) in [
            ("canaryExposure", canary_exposure),
            ("baselineExposure", baseline_exposure),
            ("ratioNumerator", ratio_numerator),
            ("ratioDenominator", ratio_denominator),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return corrupt(format!(
                    "{name} {value} is not a finite, non-negative number"
                ));
            }
        }
        if log_likelihood.len() != GRID_LEN {
            return corrupt(format!(
                "logLikelihood has {} values, expected {GRID_LEN}",
                log_likelihood.len()
            ));
        }
        if let Some(bad) = log_likelihood.iter().find(|l| !l.is_finite()) {
            return corrupt(format!("logLikelihood holds {bad}"));
        }
        if u128::from(paired_events) > u128::from(canary_events) + u128::from(baseline_events) {
            return corrupt(format!(
                "pairedEvents {paired_events} exceeds canaryEvents + baselineEvents"
            ));
        }
        if paired_canary_events > paired_events {
            return corrupt(format!(
                "pairedCanaryEvents {paired_canary_events} exceeds pairedEvents {paired_events}"
            ));
        }
        if strata.len() > MAX_STRATA || !strata.windows(2).all(|w| w[0].key < w[1].key) {
            return corrupt(format!(
                "strata must be at most {MAX_STRATA}, sorted by key without repeats"
            ));
        }
        if let Some(bad) = strata.iter().find(|s| {
            !(s.expected.is_finite() && s.expected >= 0.0 && s.expected <= s.events as f64)
        }) {
            return corrupt(format!(
                "a stratum expects {} of its {} events",
                bad.expected, bad.events
            ));
        }
        Ok(Evidence {
            kind,
            max_ratio,
            intervals,
            canary_events,
            baseline_events,
            paired_events,
            canary_exposure,
            baseline_exposure,
            ratio_numerator,
            ratio_denominator,
            canary_max_restarts_per_pod,
            baseline_max_restarts_per_pod,
            adverse_since_interval,
            log_likelihood,
            paired_canary_events,
            strata,
        })
    }
}

/// `f64` as the shortest decimal string that parses back to the same bits. `serde_json`'s
/// default number parser is off by one bit for roughly one number in ten, which would make
/// stored evidence drift with every read-modify-write of the status.
pub(crate) mod decimal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn to_text(x: f64) -> String {
        // Rust's `{}` and `{:e}` print the shortest digits that round-trip.
        if x != 0.0 && !(1e-5..1e16).contains(&x.abs()) {
            format!("{x:e}")
        } else {
            format!("{x}")
        }
    }

    pub fn from_text<E: Error>(text: &str) -> Result<f64, E> {
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(E::custom(format!("{text:?} is not a finite number"))),
        }
    }

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_text(*x))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        from_text(&String::deserialize(d)?)
    }
}

/// [`decimal`] for a vector.
mod decimal_vec {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&super::decimal::to_text(*x))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| super::decimal::from_text(t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::fixtures::{counts, history, observed, replay};

    use super::*;

    #[test]
    fn damaged_strata_are_rejected() {
        let e = observed(1.5, 3, 2, 100.0, 3, 100.0);
        let mut value = serde_json::to_value(&e).unwrap();
        value["strata"][0]["expected"] = serde_json::json!("1e9");
        let err = serde_json::from_value::<Evidence>(value).unwrap_err();
        assert!(err.to_string().contains("stratum"), "{err}");
    }

    #[test]
    fn evidence_is_stored_as_exact_decimal_strings() {
        let mut e = observed(1.5, 7, 3, 333.3, 17, 2_999.7);
        e.observe(&counts(0, 1, 0.1, 1.2)).unwrap();
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["maxRatio"], "1.5");
        assert_eq!(json["kind"], "ErrorRate");
        assert_eq!(json["intervals"], 8);
        let l = json["logLikelihood"].as_array().unwrap();
        assert_eq!(l.len(), GRID_LEN);
        assert!(l.iter().all(|v| v.is_string()));
        let back: Evidence = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
        for (a, b) in back.log_likelihood().iter().zip(e.log_likelihood()) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        // A damaged status is an error, not a wrong verdict.
        let mut json = serde_json::to_value(&e).unwrap();
        json["logLikelihood"].as_array_mut().unwrap().pop();
        let err = serde_json::from_value::<Evidence>(json).unwrap_err();
        assert!(
            err.to_string().contains("logLikelihood has 120 values"),
            "{err}"
        );
        let mut json = serde_json::to_value(&e).unwrap();
        json["logLikelihood"][3] = "NaN".into();
        assert!(serde_json::from_value::<Evidence>(json).is_err());
    }

    #[test]
    #[cfg(feature = "schemars")]
    fn the_stored_form_has_a_schema_for_the_crd() {
        let schema = serde_json::to_value(schemars::schema_for!(Evidence)).unwrap();
        let properties = &schema["properties"];
        assert_eq!(properties["maxRatio"]["type"], "string");
        assert_eq!(properties["logLikelihood"]["items"]["type"], "string");
        assert_eq!(properties["canaryEvents"]["type"], "integer");
    }

    proptest! {
        // No regression files: the cases are cheap to regenerate and the tree is shared.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn evidence_round_trips_through_json((max_ratio, past) in history()) {
            let e = replay(max_ratio, &past);
            let text = serde_json::to_string(&e).unwrap();
            let back: Evidence = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(back, e);
        }
    }

    #[test]
    fn extreme_counts_at_a_margin_below_one_store_finite_numbers() {
        // Found by the round-trip property: maxRatio 0.05 and 206 canary failures against none
        // made the pooled failure probability exceed 1 and a stratum's expectation NaN, which
        // the stored status could then not be read back from.
        let e = replay(
            0.05,
            &[crate::Counts {
                canary_events: 206,
                baseline_events: 0,
                canary_exposure: 1162.0,
                baseline_exposure: 1.0,
            }],
        );
        let text = serde_json::to_string(&e).unwrap();
        assert!(!text.contains("NaN"), "{text}");
        let back: Evidence = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn decimal_text_parses_back_to_the_same_bits() {
        for x in [0.1, 1.5, -1234.5678901234567, 1e-300, 6.02e23, 5e-324, -0.0] {
            assert_eq!(
                decimal::to_text(x).parse::<f64>().unwrap().to_bits(),
                x.to_bits()
            );
        }
    }
}
