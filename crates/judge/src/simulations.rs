//! Seeded simulations: many looks, stepped weights, Bernoulli requests. The false-alarm
//! guarantees of the e-process, the confidence sequence, the ceiling test and the planned
//! decision, and their power, checked on rollouts simulated with fixed seeds.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ceiling::ln_ceiling_e;
use crate::eprocess::{ANCHOR, ln_e_above, ln_e_below};
use crate::evidence::Counts;
use crate::fixtures::{counts, errors};
use crate::policy::{AlphaSplit, Policy, metric_alpha};
use crate::verdict::{Verdict, decide, judge};

/// Debug builds run fewer replications; the seeds are fixed, so every run is the same.
const NULL_RUNS: usize = if cfg!(debug_assertions) { 600 } else { 4_000 };
const POWER_RUNS: usize = if cfg!(debug_assertions) { 200 } else { 2_000 };

/// Binomial(n, p) by geometric jumps between successes: exact, O(n·p) work.
fn binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    if p > 0.5 {
        return n - binomial(rng, n, 1.0 - p);
    }
    let ln_q = (-p).ln_1p();
    let (mut successes, mut position) = (0u64, 0u64);
    loop {
        let u: f64 = rng.random();
        let failures_before = ((1.0 - u).ln() / ln_q).floor();
        if failures_before + 1.0 > (n - position) as f64 {
            return successes;
        }
        position += failures_before as u64 + 1;
        successes += 1;
    }
}

/// Poisson(mean) by counting uniform products (Knuth), split for large means.
fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean > 30.0 {
        return poisson(rng, mean / 2.0) + poisson(rng, mean / 2.0);
    }
    let limit = (-mean).exp();
    let (mut k, mut product) = (0u64, rng.random::<f64>());
    while product > limit {
        k += 1;
        product *= rng.random::<f64>();
    }
    k
}

#[derive(Clone, Copy)]
enum Errors {
    /// Each request fails independently (what real services look like).
    Bernoulli,
    /// Poisson counts: the model the conditional test is exact for.
    Poisson,
}

/// A rollout of 240 looks of 30 s (2 hours): canary weight 5% → 20% → 50% in thirds,
/// the stable ReplicaSet as baseline, traffic and error rate swinging together through a
/// day-like cycle, errors at `ratio` times the baseline's rate in the canary.
#[derive(Clone, Copy)]
struct Rollout {
    requests_per_second: f64,
    baseline_error_rate: f64,
    ratio: f64,
    max_ratio: f64,
    errors: Errors,
}

const LOOKS: usize = 240;

#[derive(Default)]
struct Outcome {
    failed_at: Option<usize>,
    passed_at: Option<usize>,
}

impl Rollout {
    fn weight(t: usize) -> f64 {
        match t * 3 / LOOKS {
            0 => 0.05,
            1 => 0.20,
            _ => 0.50,
        }
    }

    /// The counts of the [`LOOKS`] looks of one run.
    fn looks(&self, seed: u64) -> Vec<Counts> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let phase = rng.random::<f64>() * std::f64::consts::TAU;
        (0..LOOKS)
            .map(|t| {
                let cycle = (phase + t as f64 * std::f64::consts::TAU / 80.0).sin();
                let requests = (self.requests_per_second * 30.0 * (1.0 + 0.8 * cycle)).round();
                let rate = self.baseline_error_rate * (1.0 + 0.5 * cycle);
                let n = (requests * Self::weight(t)).round();
                let m = requests - n;
                let (x, y) = match self.errors {
                    Errors::Bernoulli => (
                        binomial(&mut rng, n as u64, (rate * self.ratio).min(1.0)),
                        binomial(&mut rng, m as u64, rate),
                    ),
                    Errors::Poisson => (
                        poisson(&mut rng, n * rate * self.ratio),
                        poisson(&mut rng, m * rate),
                    ),
                };
                counts(x, y, n, m)
            })
            .collect()
    }

    /// Runs one rollout through the public API with a planned decision at the last look:
    /// [`judge`] at every look, [`decide`] at the last. Whether it failed, and whether the
    /// failure came from the planned test.
    fn run_planned(&self, seed: u64, alpha: f64) -> (bool, bool) {
        let policy = Policy::new(alpha, None).unwrap().with_planned_decision();
        let mut e = errors(self.max_ratio);
        for (t, c) in self.looks(seed).iter().enumerate() {
            e.observe(c).unwrap();
            let verdict = if t + 1 == LOOKS {
                decide(&e, &policy).unwrap()
            } else {
                judge(&e, &policy).unwrap()
            };
            match verdict {
                Verdict::Fail { .. } => return (true, false),
                Verdict::PlannedFail { .. } => return (true, true),
                _ => {}
            }
        }
        (false, false)
    }

    /// Runs one rollout; checks the failure test (and the pass test, when `watch_pass`) at
    /// every look; stops at the first failure when `stop_on_fail`.
    fn run(&self, seed: u64, alpha: f64, watch_pass: bool, stop_on_fail: bool) -> Outcome {
        let mut e = errors(self.max_ratio);
        let threshold = -alpha.ln();
        let mut outcome = Outcome::default();
        for (t, c) in self.looks(seed).iter().enumerate() {
            e.observe(c).unwrap();
            let l = e.log_likelihood();
            if outcome.failed_at.is_none() && ln_e_above(l, ANCHOR) >= threshold {
                outcome.failed_at = Some(t);
                if stop_on_fail {
                    // The public API says the same thing at this look.
                    let policy = Policy::new(alpha, None).unwrap();
                    assert!(matches!(judge(&e, &policy).unwrap(), Verdict::Fail { .. }));
                    return outcome;
                }
            }
            if watch_pass && outcome.passed_at.is_none() && ln_e_below(l, ANCHOR) >= threshold {
                outcome.passed_at = Some(t);
            }
        }
        outcome
    }
}

/// Wilson score interval at 95% for `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    let (k, n, z) = (k as f64, n as f64, 1.96);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (centre - half, centre + half)
}

/// Asserts `k` false decisions in `runs` are consistent with a rate ≤ `alpha`: at most
/// `alpha·runs + 3·sqrt(runs·alpha·(1−alpha))` (a one-sided 3σ binomial margin).
fn assert_rate_at_most(what: &str, k: usize, runs: usize, alpha: f64) {
    let (lo, hi) = wilson(k, runs);
    let limit = alpha * runs as f64 + 3.0 * (runs as f64 * alpha * (1.0 - alpha)).sqrt();
    println!(
        "{what}: {k}/{runs} = {:.4} (95% Wilson [{lo:.4}, {hi:.4}]), alpha {alpha}",
        k as f64 / runs as f64
    );
    assert!(
        k as f64 <= limit,
        "{what}: {k} of {runs} runs = {:.4}, 95% interval [{lo:.4}, {hi:.4}], \
         exceeds alpha {alpha} by more than 3 binomial sd",
        k as f64 / runs as f64
    );
}

fn null_rates(rollout: Rollout, alpha: f64, seed: u64) -> (usize, usize) {
    let (mut fails, mut passes) = (0, 0);
    for run in 0..NULL_RUNS {
        let outcome = rollout.run(seed + run as u64, alpha, true, false);
        fails += usize::from(outcome.failed_at.is_some());
        passes += usize::from(outcome.passed_at.is_some());
    }
    (fails, passes)
}

#[test]
fn an_unchanged_canary_is_rarely_rolled_back_however_often_we_look() {
    let alpha = 0.05;
    let rollout = Rollout {
        requests_per_second: 20.0,
        baseline_error_rate: 0.01,
        ratio: 1.0,
        max_ratio: 1.5,
        errors: Errors::Bernoulli,
    };
    let (fails, passes) = null_rates(rollout, alpha, 1_000);
    assert_rate_at_most("false rollback at R = 1", fails, NULL_RUNS, alpha);
    println!("passes at R = 1: {passes}/{NULL_RUNS}");
    assert!(passes as f64 >= 0.5 * NULL_RUNS as f64, "{passes}");
}

#[test]
fn a_canary_exactly_at_the_margin_is_neither_rolled_back_nor_promoted_too_often() {
    let alpha = 0.05;
    for (errors, model, seed) in [
        (Errors::Bernoulli, "Bernoulli requests", 2_000_000),
        (Errors::Poisson, "Poisson counts", 3_000_000),
    ] {
        let rollout = Rollout {
            requests_per_second: 20.0,
            baseline_error_rate: 0.01,
            ratio: 1.5,
            max_ratio: 1.5,
            errors,
        };
        let (fails, passes) = null_rates(rollout, alpha, seed);
        let what = |decision: &str| format!("{decision} at R = maxRatio, {model}");
        assert_rate_at_most(&what("false rollback"), fails, NULL_RUNS, alpha);
        assert_rate_at_most(&what("wrong promotion"), passes, NULL_RUNS, alpha);
    }
}

#[test]
fn the_error_ceiling_is_rarely_crossed_by_a_canary_at_the_ceiling() {
    // 200 canary requests per look at exactly 5% errors, 240 looks.
    let alpha = 0.05;
    let threshold = -f64::ln(alpha);
    let lambda0 = (0.05f64 / 0.95).ln();
    let mut breaches = 0;
    for run in 0..NULL_RUNS {
        let mut rng = ChaCha8Rng::seed_from_u64(4_000_000 + run as u64);
        let (mut x, mut n) = (0u64, 0.0);
        for _ in 0..LOOKS {
            x += binomial(&mut rng, 200, 0.05);
            n += 200.0;
            if ln_ceiling_e(x, n, lambda0) >= threshold {
                breaches += 1;
                break;
            }
        }
    }
    assert_rate_at_most(
        "false ceiling breach at p = maxRate",
        breaches,
        NULL_RUNS,
        alpha,
    );
}

fn detection(rollout: Rollout, alpha: f64, seed: u64) -> (usize, Vec<usize>) {
    let mut times = Vec::new();
    for run in 0..POWER_RUNS {
        if let Some(t) = rollout.run(seed + run as u64, alpha, false, true).failed_at {
            times.push(t);
        }
    }
    times.sort_unstable();
    (times.len(), times)
}

#[test]
fn real_regressions_are_caught() {
    // Production settings: confidence 0.99 over two metrics, 90% of a metric's α to the ratio.
    let alpha = AlphaSplit::new(metric_alpha(0.99, 2).unwrap(), true).ratio;
    for (ratio, max_ratio, rps, seed) in
        [(2.0, 1.5, 50.0, 5_000_000u64), (5.0, 1.2, 20.0, 6_000_000)]
    {
        let rollout = Rollout {
            requests_per_second: rps,
            baseline_error_rate: 0.01,
            ratio,
            max_ratio,
            errors: Errors::Bernoulli,
        };
        let (detected, times) = detection(rollout, alpha, seed);
        let (lo, hi) = wilson(detected, POWER_RUNS);
        let median = times
            .get(times.len() / 2)
            .map_or(f64::NAN, |&t| (t + 1) as f64 / 2.0);
        let p90 = times
            .get(times.len() * 9 / 10)
            .map_or(f64::NAN, |&t| (t + 1) as f64 / 2.0);
        println!(
            "R = {ratio} vs maxRatio {max_ratio} at {rps} req/s: detected {detected}/{POWER_RUNS} \
             (95% [{lo:.3}, {hi:.3}]), median {median} min, p90 {p90} min"
        );
        assert!(
            detected as f64 >= 0.9 * POWER_RUNS as f64,
            "R = {ratio} vs {max_ratio}: detected in {detected} of {POWER_RUNS} runs \
             (95% interval [{lo:.3}, {hi:.3}]), below 90%"
        );
    }
}

#[test]
fn the_planned_decision_keeps_false_rollbacks_at_the_margin_within_alpha() {
    // The union of the e-process at every look and the exact test at the last one.
    let alpha = 0.05;
    for (errors, model, seed) in [
        (Errors::Bernoulli, "Bernoulli requests", 7_000_000),
        (Errors::Poisson, "Poisson counts", 8_000_000),
    ] {
        let rollout = Rollout {
            requests_per_second: 20.0,
            baseline_error_rate: 0.01,
            ratio: 1.5,
            max_ratio: 1.5,
            errors,
        };
        let fails = (0..NULL_RUNS)
            .filter(|&run| rollout.run_planned(seed + run as u64, alpha).0)
            .count();
        let what = format!("false rollback at R = maxRatio with a planned decision, {model}");
        assert_rate_at_most(&what, fails, NULL_RUNS, alpha);
    }
}

#[test]
fn the_planned_decision_catches_what_the_e_process_alone_misses() {
    // A 2× regression against maxRatio 1.5 at 2 req/s: little information in 2 hours.
    let alpha = 0.01;
    let rollout = Rollout {
        requests_per_second: 2.0,
        baseline_error_rate: 0.01,
        ratio: 2.0,
        max_ratio: 1.5,
        errors: Errors::Bernoulli,
    };
    let (alone, _) = detection(rollout, alpha, 9_000_000);
    let (mut planned, mut by_planned_test) = (0, 0);
    for run in 0..POWER_RUNS {
        let (failed, planned_test) = rollout.run_planned(9_000_000 + run as u64, alpha);
        planned += usize::from(failed);
        by_planned_test += usize::from(planned_test);
    }
    println!(
        "detected: e-process alone {alone}/{POWER_RUNS}, with the planned decision \
         {planned}/{POWER_RUNS} ({by_planned_test} by the planned test)"
    );
    // Same streams: more detections, and a tenth of the runs more at least.
    assert!(
        planned >= alone + POWER_RUNS / 10,
        "planned {planned}, alone {alone} of {POWER_RUNS}"
    );
}
