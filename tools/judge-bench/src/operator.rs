//! Firebreak's judge, driven through the controller's own code path: an `Analysis` spec with
//! one metric, [`assess::start`] when the canary starts, and one [`assess::assess`] per look
//! with the window's [`Observation`] — `Errors(Counts)` for error streams, `Crashes(...)` built
//! by [`crash_window`] from the pods' restart counts for crash streams, `Unavailable` when the
//! look got no data. The controller's rules apply unchanged: a failed look keeps the evidence,
//! and the next successful look measures the whole window since the last one (as
//! [`assess::window_seconds`] makes the Prometheus query do).
//!
//! `Gate::Fail` rolls back at that look; a `Gate::Pass` at the last look of the horizon
//! promotes; anything else at the horizon (inconclusive, holding) is inconclusive.

use std::time::Duration;

use firebreak::analysis::assess::{self, Gate, Observation};
use firebreak::analysis::crashes::{PodSample, Side, crash_window};
use firebreak::api::{Analysis, AnalysisStatus};
use firebreak::controller::validate::{StepKind, planned_duration};
use firebreak_judge::Counts;
use jiff::Timestamp;
use serde_json::json;

use super::judge::{Final, Judge, Settings};
use super::sim::{BLOCK_SECONDS, HORIZON_SECONDS, Look, Scenario, Stream, Weights};

/// Wall-clock time of the canary's start in the simulation (any fixed instant will do).
const START_SECOND: i64 = 1_800_000_000;

/// The analysis spec the benchmark gives Firebreak for `scenario`: one `errorRate` metric with
/// `maxRatio` (no `maxRate` ceiling) or one `crashRate` metric with its `maxRatio` (no
/// `maxRestartsPerPod` ceiling), `interval` = the look cadence, `confidence` from `settings`.
/// Built from JSON, as a user's manifest would be. `None` if the API types reject it.
pub fn analysis_spec(scenario: &Scenario, cadence: u32, settings: &Settings) -> Option<Analysis> {
    let metric = match scenario {
        Scenario::Errors { .. } => json!({
            "name": "http-errors",
            "errorRate": {
                "prometheus": {"address": "http://prometheus.bench:9090", "errors": "errors", "total": "total"},
                "maxRatio": settings.max_ratio,
            }
        }),
        Scenario::Crashes { .. } => json!({
            "name": "crashes",
            "crashRate": {"maxRatio": settings.crash_max_ratio}
        }),
    };
    serde_json::from_value(json!({
        "interval": format!("{cadence}s"),
        "confidence": settings.confidence,
        "metrics": [metric],
    }))
    .ok()
}

/// The canary steps a user would write for the scenario's weights over the horizon: one
/// `setWeight` and a pause of the whole horizon, or 5% → 20% → 50% with a third of it each.
/// Their planned end is the horizon, where the benchmark decides promotion, so Firebreak's
/// planned decision look ([`assess::decision_at`]) is the last look, as in the controller.
pub fn steps(weights: Weights) -> Vec<StepKind> {
    let pause = |seconds: u32| StepKind::Pause(Some(Duration::from_secs(u64::from(seconds))));
    match weights {
        Weights::Fixed(w) => vec![StepKind::SetWeight(w as i32), pause(HORIZON_SECONDS)],
        Weights::Stepped => [5, 20, 50]
            .into_iter()
            .flat_map(|w| [StepKind::SetWeight(w), pause(HORIZON_SECONDS / 3)])
            .collect(),
    }
}

fn at(seconds: u32) -> Timestamp {
    Timestamp::from_second(START_SECOND + i64::from(seconds)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Firebreak's judge as the controller runs it; see the module docs.
#[derive(Clone, Debug)]
pub struct FirebreakJudge {
    spec: Option<Analysis>,
    status: Option<AnalysisStatus>,
    crashes: bool,
    /// First block of the window the next successful look measures.
    since_block: usize,
    /// Seconds at the start of that window.
    since_seconds: u32,
    last_pass: bool,
}

impl FirebreakJudge {
    /// A judge for one run; the analysis starts at second 0.
    pub fn new(scenario: &Scenario, cadence: u32, settings: &Settings) -> FirebreakJudge {
        let spec = analysis_spec(scenario, cadence, settings);
        let plan = planned_duration(&steps(scenario.weights()));
        let status = spec.as_ref().and_then(|s| {
            let decision_at = assess::decision_at(s, at(0), plan);
            assess::start(s, "canary", at(0), decision_at).ok()
        });
        FirebreakJudge {
            spec,
            status,
            crashes: matches!(scenario, Scenario::Crashes { .. }),
            since_block: 0,
            since_seconds: 0,
            last_pass: false,
        }
    }

    /// The last look's status (for tests).
    pub fn status(&self) -> Option<&AnalysisStatus> {
        self.status.as_ref()
    }

    fn observe(&self, look: &Look, stream: &Stream, status: &AnalysisStatus) -> Observation {
        if look.missing {
            return Observation::Unavailable("the query returned no data".into());
        }
        if self.crashes {
            let t = look.end;
            let samples: Vec<PodSample> = stream
                .pods
                .iter()
                .filter(|p| p.exists_at(t))
                .map(|p| PodSample {
                    name: p.name.clone(),
                    side: if p.canary {
                        Side::Canary
                    } else {
                        Side::Baseline
                    },
                    restarts: p.restarts_at(f64::from(t)) as i32,
                    crash_looping: p.crash_looping_at(f64::from(t)),
                })
                .collect();
            let window = f64::from(look.end.saturating_sub(self.since_seconds));
            return Observation::Crashes(crash_window(&samples, &status.pod_restarts, window));
        }
        let w = stream.sum(self.since_block..look.blocks.end);
        Observation::Errors(Counts {
            canary_events: w.canary_events,
            baseline_events: w.baseline_events,
            canary_exposure: w.canary_exposure as f64,
            baseline_exposure: w.baseline_exposure as f64,
        })
    }
}

impl Judge for FirebreakJudge {
    fn look(&mut self, look: &Look, stream: &Stream) -> bool {
        let (Some(spec), Some(status)) = (&self.spec, &self.status) else {
            return false;
        };
        let observation = self.observe(look, stream, status);
        let measured = !matches!(observation, Observation::Unavailable(_));
        let assessment = assess::assess(status, spec, &[observation], at(look.end));
        if measured {
            self.since_block = look.blocks.end;
            self.since_seconds = look.blocks.end as u32 * BLOCK_SECONDS;
        }
        self.last_pass = matches!(assessment.gate, Gate::Pass);
        let fail = matches!(assessment.gate, Gate::Fail(_));
        self.status = Some(assessment.status);
        fail
    }

    fn finish(&mut self, _: &Stream) -> Final {
        if self.last_pass {
            Final::Promote
        } else {
            Final::Inconclusive
        }
    }
}
