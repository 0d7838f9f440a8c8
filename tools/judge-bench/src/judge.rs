//! What every judge of the benchmark is: the [`Judge`] trait it implements, the [`Final`]
//! decision at the horizon, and the [`Settings`] the statistical judges share.

use super::sim::{Look, Scenario, Stream};

/// The benchmark's settings shared by the statistical judges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// `errorRate.maxRatio` (a ratio ≥ 1) for Firebreak, the oracle and the naive test.
    pub max_ratio: f64,
    /// `crashRate.maxRatio` for crash streams.
    pub crash_max_ratio: f64,
    /// `analysis.confidence` (0–1): `α = 1 − confidence` for Firebreak, the oracle and the
    /// naive test.
    pub confidence: f64,
}

impl Settings {
    /// `1 − confidence`.
    pub fn alpha(&self) -> f64 {
        1.0 - self.confidence
    }

    /// The margin for `scenario`'s kind of stream.
    pub fn margin(&self, scenario: &Scenario) -> f64 {
        match scenario {
            Scenario::Errors { .. } => self.max_ratio,
            Scenario::Crashes { .. } => self.crash_max_ratio,
        }
    }
}

impl Default for Settings {
    /// `maxRatio` 1.2 (so the protocol's R = 1 and R = 1.2 are both "no regression" and
    /// R ≥ 1.5 a regression to detect), `crashRate.maxRatio` 2 (Firebreak's default),
    /// confidence 0.99.
    fn default() -> Self {
        Settings {
            max_ratio: 1.2,
            crash_max_ratio: 2.0,
            confidence: 0.99,
        }
    }
}

/// What a judge decides at the horizon when it has not rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Final {
    /// Promote the canary.
    Promote,
    /// Neither: hold the rollout for a person.
    Inconclusive,
    /// Roll back at the horizon.
    Rollback,
}

/// A judge: fed the looks of one stream in order.
pub trait Judge {
    /// One look; `true` rolls back now (the run ends).
    fn look(&mut self, look: &Look, stream: &Stream) -> bool;
    /// The decision at the horizon, if no look rolled back.
    fn finish(&mut self, stream: &Stream) -> Final;
}
