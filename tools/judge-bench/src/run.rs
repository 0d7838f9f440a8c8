//! The grid of cells and the runner: every run of every scenario generates one stream and
//! feeds it to every judge at every cadence of the grid, in parallel over runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::judges::{Final, JudgeKind, Settings};
use super::sim::{HORIZON_SECONDS, Nuisance, Regression, Scenario, Stream, Traffic, Weights};

/// One cell of the grid: a scenario looked at every `cadence` seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// What the streams are made of.
    pub scenario: Scenario,
    /// Seconds between looks (10 or 60).
    pub cadence: u32,
}

/// The protocol grid ("Judge benchmark protocol" in DESIGN.md).
///
/// Error streams: traffic 1, 10, 100 req/s and diurnal; baseline error 0.1% and 1%;
/// R = 1, 1.2, 1.5, 2, 5 and hard failure; weights 5%, 20% and stepped; nuisances none, burst
/// and missing scrapes; looks every 10 s and 60 s — 864 cells. Crash streams (a smaller grid):
/// baseline 0.1 and 1 crash per pod-hour; R = 1, 2, 5 and crash loop; weights 5%, 20% and
/// stepped; looks every 10 s and 60 s — 48 cells.
pub fn full_grid() -> Vec<Cell> {
    grid(
        &[
            Traffic::Constant(1.0),
            Traffic::Constant(10.0),
            Traffic::Constant(100.0),
            Traffic::Diurnal,
        ],
        &[0.001, 0.01],
        &[
            Regression::Ratio(1.0),
            Regression::Ratio(1.2),
            Regression::Ratio(1.5),
            Regression::Ratio(2.0),
            Regression::Ratio(5.0),
            Regression::Hard,
        ],
        &[Weights::Fixed(5), Weights::Fixed(20), Weights::Stepped],
        &[Nuisance::None, Nuisance::Burst, Nuisance::MissingScrapes],
        &[0.1, 1.0],
        &[
            Regression::Ratio(1.0),
            Regression::Ratio(2.0),
            Regression::Ratio(5.0),
            Regression::Hard,
        ],
    )
}

/// A small grid for smoke tests: 1 and 10 req/s at 1% baseline errors, R = 1, 2 and 5,
/// weight 20%, no nuisance; one crash scenario pair. Includes the plotted cell.
pub fn quick_grid() -> Vec<Cell> {
    grid(
        &[Traffic::Constant(1.0), Traffic::Constant(10.0)],
        &[0.01],
        &[
            Regression::Ratio(1.0),
            Regression::Ratio(2.0),
            Regression::Ratio(5.0),
        ],
        &[Weights::Fixed(20)],
        &[Nuisance::None],
        &[1.0],
        &[Regression::Ratio(1.0), Regression::Hard],
    )
}

/// The cross product of the given dimensions, both cadences (10 s, 60 s).
#[allow(clippy::too_many_arguments)]
pub fn grid(
    traffic: &[Traffic],
    baselines: &[f64],
    regressions: &[Regression],
    weights: &[Weights],
    nuisances: &[Nuisance],
    crash_baselines: &[f64],
    crash_regressions: &[Regression],
) -> Vec<Cell> {
    let mut scenarios = Vec::new();
    for &n in nuisances {
        for &t in traffic {
            for &b in baselines {
                for &w in weights {
                    for &r in regressions {
                        scenarios.push(Scenario::Errors {
                            traffic: t,
                            baseline: b,
                            regression: r,
                            weights: w,
                            nuisance: n,
                        });
                    }
                }
            }
        }
    }
    for &b in crash_baselines {
        for &w in weights {
            for &r in crash_regressions {
                scenarios.push(Scenario::Crashes {
                    baseline_per_hour: b,
                    regression: r,
                    weights: w,
                });
            }
        }
    }
    scenarios
        .into_iter()
        .flat_map(|scenario| [10, 60].map(|cadence| Cell { scenario, cadence }))
        .collect()
}

/// What one judge did over the runs of one cell.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Runs.
    pub runs: u64,
    /// Runs rolled back (at a look, or at the horizon).
    pub rollbacks: u64,
    /// Runs promoted at the horizon.
    pub promotions: u64,
    /// Runs neither rolled back nor promoted.
    pub inconclusive: u64,
    /// Seconds from canary start to each rollback (unsorted).
    pub rollback_seconds: Vec<u32>,
    /// Sum over runs of canary exposure (requests, or pod-seconds) served before the rollback,
    /// or over the whole horizon without one.
    pub exposure: f64,
    /// Sum over runs of the canary's excess events in the same span (added in run order, so
    /// the sum does not depend on the thread count).
    pub excess: f64,
    /// `(run, excess)` of runs not yet added to `excess`.
    pending_excess: Vec<(u64, f64)>,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.runs += other.runs;
        self.rollbacks += other.rollbacks;
        self.promotions += other.promotions;
        self.inconclusive += other.inconclusive;
        self.rollback_seconds.extend(&other.rollback_seconds);
        self.exposure += other.exposure;
        self.excess += other.excess;
        self.pending_excess.extend(&other.pending_excess);
    }

    /// Adds the pending excess in run order.
    fn settle(&mut self) {
        self.pending_excess.sort_by_key(|(run, _)| *run);
        for (_, excess) in self.pending_excess.drain(..) {
            self.excess += excess;
        }
    }

    /// `(median, p90)` seconds to rollback among rolled-back runs (nearest rank), if any.
    pub fn detection_quantiles(&self) -> Option<(u32, u32)> {
        let mut t = self.rollback_seconds.clone();
        if t.is_empty() {
            return None;
        }
        t.sort_unstable();
        let rank = |q: f64| t[((q * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1];
        Some((rank(0.5), rank(0.9)))
    }

    /// Share of runs rolled back by `seconds`.
    pub fn detected_by(&self, seconds: u32) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        self.rollback_seconds
            .iter()
            .filter(|&&t| t <= seconds)
            .count() as f64
            / self.runs as f64
    }
}

/// The outcome of one judge on one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Rolled back at this many seconds.
    Rollback(u32),
    /// Promoted at the horizon.
    Promote,
    /// Neither.
    Inconclusive,
}

/// Runs `judge` over `stream` looked at every `cadence` seconds.
pub fn judge_stream(
    judge: JudgeKind,
    scenario: &Scenario,
    cadence: u32,
    settings: &Settings,
    stream: &Stream,
) -> Outcome {
    let mut j = judge.build(scenario, cadence, settings);
    for look in stream.looks(cadence) {
        if j.look(&look, stream) {
            return Outcome::Rollback(look.end);
        }
    }
    match j.finish(stream) {
        Final::Promote => Outcome::Promote,
        Final::Inconclusive => Outcome::Inconclusive,
        Final::Rollback => Outcome::Rollback(HORIZON_SECONDS),
    }
}

/// Everything a benchmark run produced.
#[derive(Clone, Debug)]
pub struct Results {
    /// Judge settings.
    pub settings: Settings,
    /// Runs per cell.
    pub runs: u64,
    /// The seed.
    pub seed: u64,
    /// The cells.
    pub cells: Vec<Cell>,
    /// `tallies[cell][judge]`, judges in [`JudgeKind::ALL`] order.
    pub tallies: Vec<Vec<Tally>>,
    /// Wall time of the simulation.
    pub wall: Duration,
    /// Worker threads used.
    pub threads: usize,
}

impl Results {
    /// The tally of `judge` in `cell`.
    pub fn tally(&self, cell: usize, judge: JudgeKind) -> &Tally {
        let j = JudgeKind::ALL.iter().position(|k| *k == judge).unwrap_or(0);
        &self.tallies[cell][j]
    }
}

/// Runs `runs` streams of every cell of `cells` through every judge on `threads` threads
/// (at least 1). `progress` is called now and then with (units done, units in all).
pub fn run(
    cells: &[Cell],
    runs: u64,
    seed: u64,
    settings: Settings,
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Results {
    let started = Instant::now();
    // Cells sharing a scenario share its streams.
    let mut scenarios: Vec<(Scenario, Vec<usize>)> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        match scenarios.iter_mut().find(|(s, _)| *s == cell.scenario) {
            Some((_, list)) => list.push(i),
            None => scenarios.push((cell.scenario, vec![i])),
        }
    }
    let units = scenarios.len() * runs as usize;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let judges = JudgeKind::ALL.len();
    let threads = threads.max(1);
    let partials: Vec<Vec<Vec<Tally>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut tallies = vec![vec![Tally::default(); judges]; cells.len()];
                    loop {
                        let unit = next.fetch_add(1, Ordering::Relaxed);
                        if unit >= units {
                            break;
                        }
                        let (scenario, members) = &scenarios[unit / runs as usize];
                        let run = (unit % runs as usize) as u64;
                        let stream = scenario.generate(seed, run);
                        let mut shared: Vec<Option<Outcome>> = vec![None; judges];
                        for &c in members {
                            let cadence = cells[c].cadence;
                            for (j, judge) in JudgeKind::ALL.iter().enumerate() {
                                let outcome = match shared[j] {
                                    Some(o) => o,
                                    None => {
                                        let o = judge_stream(
                                            *judge, scenario, cadence, &settings, &stream,
                                        );
                                        if judge.ignores_cadence() {
                                            shared[j] = Some(o);
                                        }
                                        o
                                    }
                                };
                                let t = &mut tallies[c][j];
                                t.runs += 1;
                                let until = match outcome {
                                    Outcome::Rollback(s) => {
                                        t.rollbacks += 1;
                                        t.rollback_seconds.push(s);
                                        s
                                    }
                                    Outcome::Promote => {
                                        t.promotions += 1;
                                        HORIZON_SECONDS
                                    }
                                    Outcome::Inconclusive => {
                                        t.inconclusive += 1;
                                        HORIZON_SECONDS
                                    }
                                };
                                let (exposure, excess) = stream.blast_radius(until);
                                // Whole numbers: exact in any order.
                                t.exposure += exposure;
                                t.pending_excess.push((run, excess));
                            }
                        }
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if finished.is_multiple_of(500) || finished == units {
                            progress(finished, units);
                        }
                    }
                    tallies
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut tallies = vec![vec![Tally::default(); judges]; cells.len()];
    for partial in &partials {
        for (c, row) in partial.iter().enumerate() {
            for (j, t) in row.iter().enumerate() {
                tallies[c][j].add(t);
            }
        }
    }
    for row in &mut tallies {
        for t in row {
            t.rollback_seconds.sort_unstable();
            t.settle();
        }
    }
    Results {
        settings,
        runs,
        seed,
        cells: cells.to_vec(),
        tallies,
        wall: started.elapsed(),
        threads,
    }
}
