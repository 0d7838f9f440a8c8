//! The benchmark's smoke test and the peers' rules on hand-made streams.

use super::judges::{ArgoStyle, Final, FlaggerStyle, Judge, JudgeKind, NaiveZ, Oracle, Settings};
use super::run::{Cell, Outcome, Results, grid, judge_stream, run};
use super::sim::{BLOCKS, Block, Look, Nuisance, Regression, Scenario, Stream, Traffic, Weights};
use super::stats::wilson;

fn hand_made(blocks: Vec<Block>, missing_10s: Vec<bool>) -> Stream {
    let n = blocks.len();
    Stream::new(
        0,
        Weights::Fixed(50),
        blocks,
        vec![0.01; n],
        Vec::new(),
        [missing_10s, Vec::new()],
    )
}

fn block(canary: (u64, u64), baseline: (u64, u64)) -> Block {
    Block {
        canary_exposure: canary.0,
        canary_events: canary.1,
        baseline_exposure: baseline.0,
        baseline_events: baseline.1,
    }
}

/// Feeds `judge` the 10-second looks of `stream`: the index of the look that rolled back, or
/// the decision at the end.
fn drive(judge: &mut dyn Judge, stream: &Stream) -> Result<usize, Final> {
    for look in stream.looks(10) {
        if judge.look(&look, stream) {
            return Ok(look.index);
        }
    }
    Err(judge.finish(stream))
}

#[test]
fn argo_counts_failed_measurements_against_the_failure_limit() {
    // 10 canary requests per window; windows 2, 5, 7 and 9 have one error (10% > 5%).
    let blocks: Vec<Block> = (0..12)
        .map(|i| {
            let errors = u64::from([2, 5, 7, 9].contains(&i));
            block((10, errors), (90, 0))
        })
        .collect();
    let stream = hand_made(blocks, vec![]);
    assert_eq!(drive(&mut ArgoStyle::new(0.05, 0, false), &stream), Ok(2));
    // failureLimit 3: the 4th failed measurement aborts.
    assert_eq!(drive(&mut ArgoStyle::new(0.05, 3, false), &stream), Ok(9));
    // A 15% threshold is never crossed: promoted when the steps end.
    assert_eq!(
        drive(&mut ArgoStyle::new(0.15, 0, false), &stream),
        Err(Final::Promote)
    );
}

#[test]
fn argo_nan_and_empty_results_follow_the_documented_conditions() {
    // No canary requests at all: every window is 0/0 = NaN.
    let stream = hand_made(vec![block((0, 0), (100, 1)); 8], vec![]);
    // With `isNaN(result[0]) || ...` NaN succeeds.
    assert_eq!(
        drive(&mut ArgoStyle::new(0.05, 3, false), &stream),
        Err(Final::Promote)
    );
    // With the plain condition NaN fails: the 4th NaN window aborts.
    assert_eq!(drive(&mut ArgoStyle::new(0.05, 3, true), &stream), Ok(3));
    // Empty results are errors: 5 in a row (> consecutiveErrorLimit 4) abort, 4 do not.
    let healthy = vec![block((10, 0), (90, 0)); 8];
    let five = hand_made(
        healthy.clone(),
        vec![false, true, true, true, true, true, false, false],
    );
    assert_eq!(drive(&mut ArgoStyle::new(0.05, 0, false), &five), Ok(5));
    let four = hand_made(
        healthy,
        vec![true, true, true, true, false, true, true, false],
    );
    assert_eq!(
        drive(&mut ArgoStyle::new(0.05, 0, false), &four),
        Err(Final::Promote)
    );
}

#[test]
fn flagger_counts_no_data_as_failed_checks_and_rolls_back_on_the_next_tick() {
    // No canary traffic: every check fails ("no values found"). With threshold 10 the 10th
    // failed check is look 9, and the rollback comes at the start of look 10.
    let quiet = hand_made(vec![block((0, 0), (100, 0)); 20], vec![]);
    let mut flagger = FlaggerStyle::new(0.05, FlaggerStyle::threshold_for(10));
    assert_eq!(drive(&mut flagger, &quiet), Ok(10));
    // Three errors among the 10 requests of block 0 stay in the 1-minute window, diluted by
    // 10 clean requests per block: 3/10, 3/20, … 3/50 exceed 5% (five failed checks), 3/60
    // does not. Five failures are under the threshold of 10.
    let mut blocks = vec![block((10, 0), (90, 0)); 20];
    blocks[0] = block((10, 3), (90, 0));
    let stream = hand_made(blocks.clone(), vec![]);
    assert_eq!(
        drive(&mut FlaggerStyle::new(0.05, 10), &stream),
        Err(Final::Promote)
    );
    // With threshold 5 (1-minute looks' default) the same failures roll back, at the start of
    // the look after the 5th.
    assert_eq!(drive(&mut FlaggerStyle::new(0.05, 5), &stream), Ok(5));
    assert_eq!(FlaggerStyle::threshold_for(60), 5);
}

#[test]
fn the_naive_test_waits_for_expected_counts_of_five_then_tests_at_every_look() {
    // Equal exposure, R0 = 1: θ0 = 1/2. One event per window, all in the canary.
    let blocks = vec![block((100, 1), (100, 0)); 30];
    let stream = hand_made(blocks, vec![]);
    // After k looks: x = s = k, z = (k − k/2)/sqrt(k/4) = sqrt(k). Testing starts at s θ0 ≥ 5,
    // i.e. k = 10, where z = 3.16 > 2.33.
    assert_eq!(drive(&mut NaiveZ::new(1.0, 0.01), &stream), Ok(9));
    // Balanced events never fire, and it promotes.
    let balanced = hand_made(vec![block((100, 1), (100, 1)); 30], vec![]);
    assert_eq!(
        drive(&mut NaiveZ::new(1.0, 0.01), &balanced),
        Err(Final::Promote)
    );
}

#[test]
fn the_oracle_is_an_exact_binomial_test() {
    // Equal exposure, R0 = 1.2: θ0 = 0.6 / 1.1 = 6/11.
    let theta: f64 = 6.0 / 11.0;
    // 20 events, all canary: P(X ≥ 20) = θ0^20.
    let mut blocks = vec![block((100, 0), (100, 0)); 10];
    blocks[3] = block((100, 20), (100, 0));
    let stream = hand_made(blocks, vec![]);
    let oracle = Oracle::new(1.2, 0.01);
    let (upper, lower) = oracle.tails(&stream);
    assert!((upper - theta.powi(20)).abs() < 1e-15, "{upper}");
    assert!((lower - 1.0).abs() < 1e-12);
    assert_eq!(
        drive(&mut Oracle::new(1.2, 0.01), &stream),
        Err(Final::Rollback)
    );
    // 10 of 20: inconclusive. 0 of 40: P(X ≤ 0) = (5/11)^40, a promotion.
    let mut even = vec![block((100, 0), (100, 0)); 10];
    even[0] = block((100, 10), (100, 10));
    assert_eq!(
        drive(&mut Oracle::new(1.2, 0.01), &hand_made(even, vec![])),
        Err(Final::Inconclusive)
    );
    let mut clean = vec![block((100, 0), (100, 0)); 10];
    clean[0] = block((100, 0), (100, 40));
    assert_eq!(
        drive(&mut Oracle::new(1.2, 0.01), &hand_made(clean, vec![])),
        Err(Final::Promote)
    );
}

#[test]
fn kayenta_judges_only_every_half_hour() {
    let scenario = Scenario::Errors {
        traffic: Traffic::Constant(10.0),
        baseline: 0.01,
        regression: Regression::Hard,
        weights: Weights::Fixed(20),
        nuisance: Nuisance::None,
    };
    let stream = scenario.generate(1, 0);
    // A 50%-error canary is caught at the first judgment, 30 minutes in, at either cadence.
    for cadence in [10, 60] {
        let outcome = judge_stream(
            JudgeKind::Kayenta,
            &scenario,
            cadence,
            &Settings::default(),
            &stream,
        );
        assert_eq!(outcome, Outcome::Rollback(1800));
    }
}

#[test]
fn firebreak_is_driven_through_assess_and_catches_a_hard_failure_fast() {
    let scenario = Scenario::Errors {
        traffic: Traffic::Constant(10.0),
        baseline: 0.01,
        regression: Regression::Hard,
        weights: Weights::Fixed(20),
        nuisance: Nuisance::MissingScrapes,
    };
    let stream = scenario.generate(3, 0);
    let outcome = judge_stream(
        JudgeKind::Firebreak,
        &scenario,
        60,
        &Settings::default(),
        &stream,
    );
    assert!(
        matches!(outcome, Outcome::Rollback(t) if t <= 300),
        "{outcome:?}"
    );
    // The same judge on a quiet look sequence with missing data keeps the evidence.
    let mut judge = super::operator::FirebreakJudge::new(&scenario, 60, &Settings::default());
    let looks: Vec<Look> = stream.looks(60);
    let missing = looks.iter().find(|l| l.missing).cloned();
    if let Some(look) = missing {
        judge.look(&look, &stream);
        let status = judge.status().expect("analysis started");
        assert_eq!(
            status.outcome,
            Some(firebreak::api::AnalysisOutcome::Unavailable)
        );
    }
}

/// The smoke run: a tiny grid, a few runs, every judge, both cadences.
fn smoke(runs: u64, threads: usize) -> Results {
    let cells = grid(
        &[Traffic::Constant(1.0)],
        &[0.01],
        &[Regression::Ratio(1.0)],
        &[Weights::Fixed(20)],
        &[Nuisance::None],
        &[1.0],
        &[Regression::Hard],
    );
    run(&cells, runs, 11, Settings::default(), threads, &|_, _| {})
}

#[test]
fn the_same_stream_reaches_every_judge_and_cadence_whatever_the_threads() {
    let one = smoke(6, 1);
    let two = smoke(6, 2);
    assert_eq!(
        one.tallies, two.tallies,
        "results depend on the thread count"
    );
    // The 10 s and 60 s cells of a scenario share their streams: the judges that ignore the
    // cadence (the oracle, Kayenta) must come out identical, run for run.
    for pair in one.cells.chunks(2) {
        assert_eq!(pair[0].scenario, pair[1].scenario);
    }
    for c in (0..one.cells.len()).step_by(2) {
        for judge in [JudgeKind::Oracle, JudgeKind::Kayenta] {
            assert_eq!(one.tally(c, judge), one.tally(c + 1, judge), "{judge:?}");
        }
    }
    // Every judge saw every run.
    for row in &one.tallies {
        for t in row {
            assert_eq!(t.runs, 6);
            assert_eq!(t.rollbacks + t.promotions + t.inconclusive, 6);
        }
    }
}

#[test]
fn the_oracle_holds_its_level_on_healthy_canaries() {
    // 10 req/s, 1% errors, R = 1 and R = maxRatio: at most α = 1% false rollbacks, checked
    // with a one-sided 3-sigma binomial margin.
    let settings = Settings::default();
    let runs = 300u64;
    for ratio in [1.0, settings.max_ratio] {
        let scenario = Scenario::Errors {
            traffic: Traffic::Constant(10.0),
            baseline: 0.01,
            regression: Regression::Ratio(ratio),
            weights: Weights::Stepped,
            nuisance: Nuisance::None,
        };
        let rollbacks = (0..runs)
            .filter(|&r| {
                let stream = scenario.generate(21, r);
                matches!(
                    judge_stream(JudgeKind::Oracle, &scenario, 60, &settings, &stream),
                    Outcome::Rollback(_)
                )
            })
            .count() as f64;
        let alpha = settings.alpha();
        let limit = alpha * runs as f64 + 3.0 * (runs as f64 * alpha * (1.0 - alpha)).sqrt();
        assert!(
            rollbacks <= limit,
            "oracle at R = {ratio}: {rollbacks} rollbacks in {runs} runs, limit {limit:.1}"
        );
    }
}

#[test]
fn a_fixed_threshold_rolls_back_a_healthy_canary_at_night_and_firebreak_does_not() {
    // 1 req/s, 1% baseline errors, canary at 20%, unchanged (R = 1), looks every minute.
    let cell = Cell {
        scenario: Scenario::Errors {
            traffic: Traffic::Constant(1.0),
            baseline: 0.01,
            regression: Regression::Ratio(1.0),
            weights: Weights::Fixed(20),
            nuisance: Nuisance::None,
        },
        cadence: 60,
    };
    let runs = 30;
    let results = run(&[cell], runs, 5, Settings::default(), 2, &|_, _| {});
    let rate = |judge| {
        let t = results.tally(0, judge);
        t.rollbacks as f64 / t.runs as f64
    };
    let (argo, firebreak) = (rate(JudgeKind::ArgoF0), rate(JudgeKind::Firebreak));
    let (lo, _) = wilson(results.tally(0, JudgeKind::ArgoF0).rollbacks, runs);
    assert!(lo > 0.5, "argo-f0 rolled back {argo} of healthy canaries");
    assert!(firebreak <= 0.1, "firebreak rolled back {firebreak}");
    assert!(argo - firebreak > 0.5);
    // The quick grid has the plotted cell.
    let quick = super::run::quick_grid();
    assert!(quick.iter().any(|c| c.cadence == 60));
    assert_eq!(BLOCKS, 1440);
}
