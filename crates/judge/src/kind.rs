//! What a piece of evidence is about: the kind of metric ([`MetricKind`]), which fixes what
//! events and exposure mean, and the two arms of the comparison ([`Arm`]).

use std::fmt;

#[cfg(feature = "schemars")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which kind of metric the evidence is about: it fixes what events and exposure mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(JsonSchema))]
pub enum MetricKind {
    /// Events are failed requests, exposure is requests (`errorRate`).
    ErrorRate,
    /// Events are container restarts, exposure is pod-seconds (`crashRate`).
    CrashRate,
}

impl MetricKind {
    /// The key of this kind in `analysis.metrics[]`, for error messages.
    pub(crate) fn field(self) -> &'static str {
        match self {
            MetricKind::ErrorRate => "errorRate",
            MetricKind::CrashRate => "crashRate",
        }
    }

    pub(crate) fn events_word(self) -> &'static str {
        match self {
            MetricKind::ErrorRate => "errors",
            MetricKind::CrashRate => "restarts",
        }
    }
}

/// One arm of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The new version.
    Canary,
    /// The version it is compared against (a fresh baseline ReplicaSet, or the stable one).
    Baseline,
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arm::Canary => "canary",
            Arm::Baseline => "baseline",
        })
    }
}
