//! Kayenta-style judging: Spinnaker's canary stage with Kayenta's default judge,
//! `NetflixACAJudge`, on one metric.
//!
//! Sources: Kayenta `judge/NetflixACAJudge.scala` (NaN strategy `remove` by default, an
//! `IQRDetector(factor = 3.0, reduceSensitivity = true)` outlier filter, `MannWhitneyClassifier(
//! tolerance = 0.25, confLevel = 0.98)`), `classifiers/metric/MannWhitneyClassifier.scala`,
//! `scorers/WeightedSumScorer.scala`, `kayenta-mannwhitney/MannWhitney.scala`, and Spinnaker's
//! orca `MonitorKayentaCanaryTask` / `AggregateCanaryResultsTask` and canary stage docs.
//!
//! Our reading, for one error-rate (or restart-rate) metric with `direction: increase`:
//! - every 30 minutes (`canaryAnalysisIntervalMins`, "at least 30 minutes" in Spinnaker's
//!   help) Kayenta judges the 1-minute series of both arms since the canary started (the
//!   stage's default growing window); a minute without requests is NaN and removed;
//! - after the outlier filter, no data in an arm is `NODATA`; identical data, or a single
//!   distinct value overall, passes; otherwise the metric is `High` when the Mann–Whitney 98%
//!   interval for the shift (canary − baseline) lies above `0.25 × |estimate|` (the "tolerance")
//!   and the mean ratio canary/baseline is at least `effectSize.allowedIncrease` = 1 (a zero
//!   baseline mean counts as ratio 1); an interval that cannot be computed is `Error`;
//! - the score is the share of metrics that pass: 100 or 0 for one metric; `NODATA` for 50% or
//!   more of the metrics scores 0; an `Error` metric is left out of the score (100);
//! - orca fails the stage as soon as one interval's score is at or below `marginal` (75) — a
//!   rollback at that interval — and at the end requires the last score to reach `pass` (95)
//!   to promote.
//!
//! Kayenta reads its series from Prometheus at judgment time with retries, so the benchmark's
//! missing looks do not affect it. The brief's "a CI entirely above 0 and a ratio above 1.25"
//! is a paraphrase; the rule above is the code's.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::judge::{Final, Judge};
use super::sim::{BLOCK_SECONDS, Look, Stream};
use super::stats::{kayenta_interval, remove_outliers};

/// How often Kayenta judges, seconds: 30 minutes.
pub const KAYENTA_INTERVAL: u32 = 1800;
/// Mann–Whitney confidence level in `NetflixACAJudge`.
pub const KAYENTA_CONFIDENCE: f64 = 0.98;
/// `MannWhitneyClassifier`'s tolerance: the interval must clear this fraction of the estimate.
pub const KAYENTA_TOLERANCE: f64 = 0.25;
/// Default `effectSize.allowedIncrease`.
pub const KAYENTA_ALLOWED_INCREASE: f64 = 1.0;
/// Default marginal score: a score at or below it fails the stage.
pub const KAYENTA_MARGINAL: f64 = 75.0;

/// Kayenta's classification of one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classification {
    /// No significant difference.
    Pass,
    /// The canary is higher.
    High,
    /// No data in an arm.
    Nodata,
    /// The test failed to run.
    Error,
}

impl Classification {
    /// The score of a canary config with this one metric (0–100).
    pub fn score(&self) -> f64 {
        match self {
            Classification::Pass | Classification::Error => 100.0,
            Classification::High | Classification::Nodata => 0.0,
        }
    }
}

/// Classifies canary values against baseline values (NaN already removed), as
/// `NetflixACAJudge` with `direction: increase`: outlier filter, no-data and identity checks,
/// Gaussian jitter when each arm is constant (Kayenta's `addGaussianNoise`, standard deviation
/// `1e-5 ×` the value), then the Mann–Whitney rule described in the module docs.
pub fn classify(canary: &[f64], baseline: &[f64], rng: &mut ChaCha8Rng) -> Classification {
    let mut experiment = remove_outliers(canary);
    let mut control = remove_outliers(baseline);
    if experiment.is_empty() || control.is_empty() {
        return Classification::Nodata;
    }
    let sorted = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s
    };
    if sorted(&experiment) == sorted(&control) {
        return Classification::Pass;
    }
    let distinct = |v: &[f64]| {
        let s = sorted(v);
        s.windows(2).filter(|w| w[0] != w[1]).count() + 1
    };
    let all: Vec<f64> = experiment.iter().chain(&control).copied().collect();
    if distinct(&all) == 1 {
        return Classification::Pass;
    }
    if distinct(&experiment) == 1 && distinct(&control) == 1 {
        for values in [&mut experiment, &mut control] {
            let scale = values[0] * 1e-5;
            if let Ok(noise) = Normal::new(0.0, scale.abs()) {
                for v in values.iter_mut() {
                    *v += noise.sample(rng);
                }
            }
        }
    }
    let Some(interval) = kayenta_interval(&experiment, &control, KAYENTA_CONFIDENCE) else {
        return Classification::Error;
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let deviation = if mean(&control) == 0.0 {
        1.0
    } else {
        mean(&experiment) / mean(&control)
    };
    let critical = KAYENTA_TOLERANCE * interval.estimate.abs();
    if interval.lower > critical && deviation >= KAYENTA_ALLOWED_INCREASE {
        Classification::High
    } else {
        Classification::Pass
    }
}

/// The Kayenta-style judge; see the module docs.
#[derive(Clone, Debug)]
pub struct KayentaStyle {
    rng: Option<ChaCha8Rng>,
}

impl KayentaStyle {
    /// A judge whose jitter is seeded from the stream it judges.
    pub fn new() -> KayentaStyle {
        KayentaStyle { rng: None }
    }

    /// 1-minute rates (events per unit of exposure, NaN without exposure) of the canary and the
    /// baseline over the first `seconds`.
    pub fn minute_rates(stream: &Stream, seconds: u32) -> (Vec<f64>, Vec<f64>) {
        let per = (60 / BLOCK_SECONDS) as usize;
        let minutes = (seconds / 60) as usize;
        let rate = |e: u64, n: u64| {
            if n == 0 {
                f64::NAN
            } else {
                e as f64 / n as f64
            }
        };
        (0..minutes)
            .map(|k| {
                let b = stream.sum(k * per..(k + 1) * per);
                (
                    rate(b.canary_events, b.canary_exposure),
                    rate(b.baseline_events, b.baseline_exposure),
                )
            })
            .unzip()
    }
}

impl Default for KayentaStyle {
    fn default() -> Self {
        KayentaStyle::new()
    }
}

impl Judge for KayentaStyle {
    fn look(&mut self, look: &Look, stream: &Stream) -> bool {
        if !look.end.is_multiple_of(KAYENTA_INTERVAL) {
            return false;
        }
        let (canary, baseline) = Self::minute_rates(stream, look.end);
        let keep = |v: Vec<f64>| v.into_iter().filter(|x| !x.is_nan()).collect::<Vec<_>>();
        let rng = self
            .rng
            .get_or_insert_with(|| ChaCha8Rng::seed_from_u64(stream.seed ^ 0x006b_6179_656e_7461));
        let classification = classify(&keep(canary), &keep(baseline), rng);
        classification.score() <= KAYENTA_MARGINAL
    }

    fn finish(&mut self, _: &Stream) -> Final {
        // The last interval ends at the horizon and was judged by `look`: it scored 100.
        Final::Promote
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0)
    }

    #[test]
    fn a_clearly_higher_canary_is_high() {
        let baseline: Vec<f64> = (0..60).map(|i| 0.01 + 0.001 * f64::from(i % 7)).collect();
        let canary: Vec<f64> = baseline.iter().map(|v| v * 3.0).collect();
        assert_eq!(
            classify(&canary, &baseline, &mut rng()),
            Classification::High
        );
        assert_eq!(
            classify(&baseline, &baseline, &mut rng()),
            Classification::Pass
        );
        // A lower canary passes: direction is increase.
        let lower: Vec<f64> = baseline.iter().map(|v| v / 3.0).collect();
        assert_eq!(
            classify(&lower, &baseline, &mut rng()),
            Classification::Pass
        );
    }

    #[test]
    fn sparse_errors_vanish_in_the_outlier_filter() {
        // Four hours of minutes; the canary failed 1 request in 4 in two of them, the
        // baseline never. Above the 99th percentile, the two nonzero minutes are outliers and
        // what is left is all zero: it passes.
        let mut canary = vec![0.0; 240];
        canary[10] = 0.25;
        canary[40] = 0.25;
        assert_eq!(remove_outliers(&canary), vec![0.0; 238]);
        let baseline = vec![0.0; 240];
        assert_eq!(
            classify(&canary, &baseline, &mut rng()),
            Classification::Pass
        );
    }

    #[test]
    fn no_data_scores_zero() {
        assert_eq!(classify(&[], &[0.1], &mut rng()), Classification::Nodata);
        assert_eq!(Classification::Nodata.score(), 0.0);
        assert_eq!(Classification::Error.score(), 100.0);
    }

    #[test]
    fn constant_arms_are_jittered_and_compared() {
        let canary = vec![0.5; 30];
        let baseline = vec![0.1; 30];
        assert_eq!(
            classify(&canary, &baseline, &mut rng()),
            Classification::High
        );
    }
}
