//! Seeded event streams: requests and errors, or pods and restarts, for one canary and its
//! baseline over the benchmark's 4-hour horizon.
//!
//! A stream is a sequence of 10-second blocks (the finest look cadence), each with the events
//! and the exposure of both arms. Error streams: requests arrive as Poisson processes (rate
//! `traffic(t) · weight(t)` for the canary, `traffic(t) · (1 − weight(t))` for the baseline) and
//! each request fails independently (a Binomial count per block). Crash streams: each pod runs a
//! container that crashes after an exponential running time and then waits out the kubelet's
//! CrashLoopBackOff before it restarts; exposure is pod-seconds and events are restarts.
//!
//! Everything random comes from `ChaCha8Rng` seeded by [`stream_seed`]: the same seed, scenario
//! and run give the same stream on every machine, whatever the thread count, and every judge is
//! handed the very same stream (common random numbers).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Exp, Poisson};

/// The horizon of a canary, in seconds: 4 hours.
pub const HORIZON_SECONDS: u32 = 4 * 3600;
/// The length of one block, in seconds: the finest look cadence.
pub const BLOCK_SECONDS: u32 = 10;
/// Blocks in the horizon: 1,440.
pub const BLOCKS: usize = (HORIZON_SECONDS / BLOCK_SECONDS) as usize;
/// Start of the common-mode burst, seconds after the canary starts (minute 60).
pub const BURST_START: u32 = 3600;
/// End of the common-mode burst (minute 70): ten minutes.
pub const BURST_END: u32 = 4200;
/// Factor on both arms' error probability during the burst (capped at 1).
pub const BURST_FACTOR: f64 = 20.0;
/// Share of looks whose query returns no data with the missing-scrapes nuisance.
pub const MISSING_SHARE: f64 = 0.05;
/// Pods of the workload in crash streams: the canary gets `round(20 · weight)` of them (at
/// least 1), the stable ReplicaSet, which serves as baseline, the rest.
pub const CRASH_PODS: u32 = 20;
/// Seconds a crash-looping canary container runs before it crashes again.
pub const CRASH_LOOP_UPTIME: f64 = 5.0;
/// The kubelet's first restart back-off, seconds (doubling per consecutive crash).
pub const BACKOFF_BASE: f64 = 10.0;
/// The kubelet's longest restart back-off, seconds.
pub const BACKOFF_MAX: f64 = 300.0;
/// Running time after which the kubelet forgets the back-off: `2 × BACKOFF_MAX` (10 minutes).
pub const BACKOFF_RESET: f64 = 2.0 * BACKOFF_MAX;

/// Request rate over time, in requests per second (both arms together).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Traffic {
    /// A constant rate.
    Constant(f64),
    /// Evening into night: `1 + 99 · (1 + cos(π t / H)) / 2` req/s, from 100 at the start to 1
    /// at the horizon `H` (a half cosine, so the rate falls fastest mid-canary).
    Diurnal,
}

impl Traffic {
    /// Requests per second at `t` seconds after the canary started.
    pub fn rate(&self, t: f64) -> f64 {
        match *self {
            Traffic::Constant(r) => r.max(0.0),
            Traffic::Diurnal => {
                let phase = std::f64::consts::PI * t / f64::from(HORIZON_SECONDS);
                1.0 + 99.0 * (1.0 + phase.cos()) / 2.0
            }
        }
    }

    /// Short label: `1`, `10`, `100` (req/s) or `diurnal`.
    pub fn label(&self) -> String {
        match *self {
            Traffic::Constant(r) => format!("{r}"),
            Traffic::Diurnal => "diurnal".into(),
        }
    }
}

/// The canary's share of traffic (or of pods) over time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Weights {
    /// A constant weight, in percent (0–100).
    Fixed(u32),
    /// 5% for the first third of the horizon, 20% for the second, 50% for the last.
    Stepped,
}

impl Weights {
    /// Number of weight phases: 1, or 3 when stepped.
    pub fn phases(&self) -> usize {
        match self {
            Weights::Fixed(_) => 1,
            Weights::Stepped => 3,
        }
    }

    /// The phase (0-based) of block `block`.
    pub fn phase(&self, block: usize) -> usize {
        match self {
            Weights::Fixed(_) => 0,
            Weights::Stepped => (block * 3 / BLOCKS).min(2),
        }
    }

    /// The canary weight (a fraction, 0–1) of block `block`.
    pub fn fraction(&self, block: usize) -> f64 {
        match *self {
            Weights::Fixed(p) => f64::from(p.min(100)) / 100.0,
            Weights::Stepped => [0.05, 0.20, 0.50][self.phase(block)],
        }
    }

    /// Short label: `5%`, `20%`, `5-20-50%`.
    pub fn label(&self) -> String {
        match *self {
            Weights::Fixed(p) => format!("{p}%"),
            Weights::Stepped => "5-20-50%".into(),
        }
    }
}

/// How much worse the canary is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Regression {
    /// The canary's event rate is `R` times the baseline's (1 = unchanged).
    Ratio(f64),
    /// A hard failure: 50% of the canary's requests fail, or its container crash-loops
    /// ([`CRASH_LOOP_UPTIME`]).
    Hard,
}

impl Regression {
    /// The ratio `R`, or `+∞` for a hard failure.
    pub fn ratio(&self) -> f64 {
        match *self {
            Regression::Ratio(r) => r,
            Regression::Hard => f64::INFINITY,
        }
    }

    /// Short label: `R=1.2` or `hard`.
    pub fn label(&self) -> String {
        match *self {
            Regression::Ratio(r) => format!("R={r}"),
            Regression::Hard => "hard".into(),
        }
    }
}

/// Something in the stream that is not the canary's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nuisance {
    /// None.
    None,
    /// Both arms' error probability × [`BURST_FACTOR`] from [`BURST_START`] to [`BURST_END`]
    /// (a shared dependency failing).
    Burst,
    /// [`MISSING_SHARE`] of looks get no data (a failed query or scrape), independently. The
    /// counters keep counting, so a later query over a longer window still sees those events.
    MissingScrapes,
}

impl Nuisance {
    /// Short label: `none`, `burst`, `missing`.
    pub fn label(&self) -> &'static str {
        match self {
            Nuisance::None => "none",
            Nuisance::Burst => "burst",
            Nuisance::MissingScrapes => "missing",
        }
    }
}

/// What a stream is made of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scenario {
    /// Requests and errors.
    Errors {
        /// Request rate over time.
        traffic: Traffic,
        /// The baseline's error probability per request (a fraction: 0.001 = 0.1%).
        baseline: f64,
        /// The canary's regression.
        regression: Regression,
        /// Canary weight over time.
        weights: Weights,
        /// Nuisance.
        nuisance: Nuisance,
    },
    /// Pods and restarts.
    Crashes {
        /// Baseline crashes per running pod-hour.
        baseline_per_hour: f64,
        /// The canary's regression.
        regression: Regression,
        /// Canary share of the [`CRASH_PODS`] pods over time.
        weights: Weights,
    },
}

impl Scenario {
    /// A stable, human-readable key: it names the scenario in reports and seeds its streams.
    pub fn key(&self) -> String {
        match *self {
            Scenario::Errors {
                traffic,
                baseline,
                regression,
                weights,
                nuisance,
            } => format!(
                "errors traffic={} baseline={} {} weights={} nuisance={}",
                traffic.label(),
                baseline,
                regression.label(),
                weights.label(),
                nuisance.label()
            ),
            Scenario::Crashes {
                baseline_per_hour,
                regression,
                weights,
            } => format!(
                "crashes baseline={baseline_per_hour}/h {} weights={}",
                regression.label(),
                weights.label()
            ),
        }
    }

    /// The canary weights.
    pub fn weights(&self) -> Weights {
        match *self {
            Scenario::Errors { weights, .. } | Scenario::Crashes { weights, .. } => weights,
        }
    }

    /// The regression.
    pub fn regression(&self) -> Regression {
        match *self {
            Scenario::Errors { regression, .. } | Scenario::Crashes { regression, .. } => {
                regression
            }
        }
    }

    /// The nuisance (crash streams have none).
    pub fn nuisance(&self) -> Nuisance {
        match *self {
            Scenario::Errors { nuisance, .. } => nuisance,
            Scenario::Crashes { .. } => Nuisance::None,
        }
    }

    /// The baseline's configured event rate per unit of exposure: the error probability per
    /// request, or crashes per pod-second. The peers' fixed thresholds are multiples of it.
    pub fn baseline_rate(&self) -> f64 {
        match *self {
            Scenario::Errors { baseline, .. } => baseline,
            Scenario::Crashes {
                baseline_per_hour, ..
            } => baseline_per_hour / 3600.0,
        }
    }

    /// Generates the stream of run `run` under `seed`.
    pub fn generate(&self, seed: u64, run: u64) -> Stream {
        let seed = stream_seed(seed, &self.key(), run);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (blocks, baseline_rate, pods) = match *self {
            Scenario::Errors {
                traffic,
                baseline,
                regression,
                weights,
                nuisance,
            } => {
                let (blocks, rates) =
                    error_blocks(&mut rng, traffic, baseline, regression, weights, nuisance);
                (blocks, rates, Vec::new())
            }
            Scenario::Crashes {
                baseline_per_hour,
                regression,
                weights,
            } => {
                let pods = crash_pods(&mut rng, baseline_per_hour, regression, weights);
                let blocks = crash_blocks(&pods);
                let rate = baseline_per_hour / 3600.0;
                (blocks, vec![rate; BLOCKS], pods)
            }
        };
        // Missing looks come from their own generator, so they do not shift the events.
        let mut missing_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6d69_7373_696e_6721);
        let mut missing = |looks: usize| -> Vec<bool> {
            let mut flags: Vec<bool> = (0..looks)
                .map(|_| {
                    self.nuisance() == Nuisance::MissingScrapes
                        && missing_rng.random::<f64>() < MISSING_SHARE
                })
                .collect();
            // The promotion decision retries until it gets data: the last look always has it.
            if let Some(last) = flags.last_mut() {
                *last = false;
            }
            flags
        };
        let missing_10s = missing(BLOCKS);
        let missing_60s = missing(BLOCKS / 6);
        Stream::new(
            seed,
            self.weights(),
            blocks,
            baseline_rate,
            pods,
            [missing_10s, missing_60s],
        )
    }
}

/// Events and exposure of both arms in one block (or a sum of blocks). Exposure is requests or
/// pod-seconds; events are failed requests or container restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Block {
    /// Canary exposure.
    pub canary_exposure: u64,
    /// Canary events.
    pub canary_events: u64,
    /// Baseline exposure.
    pub baseline_exposure: u64,
    /// Baseline events.
    pub baseline_events: u64,
}

impl Block {
    /// The sum of two blocks.
    pub fn plus(&self, other: &Block) -> Block {
        Block {
            canary_exposure: self.canary_exposure + other.canary_exposure,
            canary_events: self.canary_events + other.canary_events,
            baseline_exposure: self.baseline_exposure + other.baseline_exposure,
            baseline_events: self.baseline_events + other.baseline_events,
        }
    }

    /// `self − other`, saturating at 0 (for prefix sums, where `other` is an earlier prefix).
    fn minus(&self, other: &Block) -> Block {
        Block {
            canary_exposure: self.canary_exposure.saturating_sub(other.canary_exposure),
            canary_events: self.canary_events.saturating_sub(other.canary_events),
            baseline_exposure: self
                .baseline_exposure
                .saturating_sub(other.baseline_exposure),
            baseline_events: self.baseline_events.saturating_sub(other.baseline_events),
        }
    }
}

/// One pod of a crash stream: when it existed and what its container did.
#[derive(Clone, Debug, PartialEq)]
pub struct PodHistory {
    /// Pod name, `canary-N` or `stable-N`.
    pub name: String,
    /// A canary pod (else a stable pod, the baseline).
    pub canary: bool,
    /// Seconds when the pod appeared.
    pub from: u32,
    /// Seconds when it went away (the horizon if it stayed).
    pub until: u32,
    /// Times (seconds) of the container's restarts, ascending: `restartCount` at `t` is the
    /// number of them at or before `t`.
    pub restarts: Vec<f64>,
    /// `[crash, restart)` intervals in which the container waits in CrashLoopBackOff.
    pub backoffs: Vec<(f64, f64)>,
}

impl PodHistory {
    /// The pod exists at `t` seconds.
    /// A pod that stays to the end exists at the horizon itself; one scaled down at a phase
    /// boundary no longer exists at that boundary.
    pub fn exists_at(&self, t: u32) -> bool {
        self.from <= t && (t < self.until || self.until == HORIZON_SECONDS)
    }

    /// `restartCount` at `t` seconds.
    pub fn restarts_at(&self, t: f64) -> u32 {
        self.restarts.partition_point(|r| *r <= t) as u32
    }

    /// The container waits in CrashLoopBackOff at `t` seconds.
    pub fn crash_looping_at(&self, t: f64) -> bool {
        let i = self.backoffs.partition_point(|(start, _)| *start <= t);
        i > 0 && self.backoffs[i - 1].1 > t
    }
}

/// One seeded stream: what every judge of one run sees.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// The seed the stream was generated from (judges with a random step derive theirs from it).
    pub seed: u64,
    /// Canary weights (phases are strata for the oracle).
    pub weights: Weights,
    /// [`BLOCKS`] blocks of [`BLOCK_SECONDS`].
    pub blocks: Vec<Block>,
    /// `prefix[i]` = sum of `blocks[..i]`.
    prefix: Vec<Block>,
    /// The baseline's true event probability per unit of exposure, per block (for the excess
    /// failures of the blast radius).
    pub baseline_rate: Vec<f64>,
    /// Pods (crash streams only).
    pub pods: Vec<PodHistory>,
    missing_10s: Vec<bool>,
    missing_60s: Vec<bool>,
}

impl Stream {
    /// A stream from its parts (hand-made streams in tests; [`Scenario::generate`] otherwise).
    /// `baseline_rate` has one entry per block (missing entries count as 0); `missing` holds
    /// the no-data flags of the looks at a 10-second and at a 1-minute cadence (missing entries
    /// count as data).
    pub fn new(
        seed: u64,
        weights: Weights,
        blocks: Vec<Block>,
        baseline_rate: Vec<f64>,
        pods: Vec<PodHistory>,
        missing: [Vec<bool>; 2],
    ) -> Stream {
        let mut prefix = Vec::with_capacity(blocks.len() + 1);
        let mut total = Block::default();
        prefix.push(total);
        for b in &blocks {
            total = total.plus(b);
            prefix.push(total);
        }
        let [missing_10s, missing_60s] = missing;
        Stream {
            seed,
            weights,
            blocks,
            prefix,
            baseline_rate,
            pods,
            missing_10s,
            missing_60s,
        }
    }

    /// The sum of blocks `range` (clamped to the stream).
    pub fn sum(&self, range: std::ops::Range<usize>) -> Block {
        let end = range.end.min(self.blocks.len());
        let start = range.start.min(end);
        self.prefix[end].minus(&self.prefix[start])
    }

    /// The looks of a judge that looks every `cadence` seconds (a multiple of
    /// [`BLOCK_SECONDS`] that divides the horizon; others are rounded to one): each covers
    /// the blocks since the previous look. Missing-data flags are shared by every judge with
    /// that cadence.
    pub fn looks(&self, cadence: u32) -> Vec<Look> {
        let per = (cadence / BLOCK_SECONDS).max(1) as usize;
        let count = self.blocks.len() / per;
        let flags = match per {
            1 => Some(&self.missing_10s),
            6 => Some(&self.missing_60s),
            _ => None,
        };
        (0..count)
            .map(|i| Look {
                index: i,
                end: ((i + 1) * per) as u32 * BLOCK_SECONDS,
                blocks: i * per..(i + 1) * per,
                missing: flags.and_then(|f| f.get(i)).copied().unwrap_or(false),
            })
            .collect()
    }

    /// Canary exposure and excess events served in the first `seconds` of the canary: the
    /// blast radius of a rollback at `seconds`. Excess events are the canary's events minus its
    /// exposure times the baseline's true rate (errors or restarts the change caused).
    pub fn blast_radius(&self, seconds: u32) -> (f64, f64) {
        let end = (seconds.div_ceil(BLOCK_SECONDS) as usize).min(self.blocks.len());
        let mut excess = 0.0;
        for (b, rate) in self.blocks[..end].iter().zip(&self.baseline_rate) {
            excess += b.canary_events as f64 - b.canary_exposure as f64 * rate;
        }
        (self.sum(0..end).canary_exposure as f64, excess)
    }
}

/// One look of a judge: the window of blocks since its previous look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Look {
    /// 0-based index.
    pub index: usize,
    /// Seconds since the canary started at the end of the window (the look's time).
    pub end: u32,
    /// Blocks of the window.
    pub blocks: std::ops::Range<usize>,
    /// The query returned no data this time.
    pub missing: bool,
}

/// The seed of one stream: SplitMix64 over the user's seed, an FNV-1a hash of the scenario key
/// and the run number, so streams are independent across scenarios and runs and identical for
/// every judge and cadence of one scenario and run.
pub fn stream_seed(seed: u64, key: &str, run: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix(splitmix(seed ^ hash) ^ run)
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean).map_or(0, |p| {
        let x: f64 = p.sample(rng);
        x as u64
    })
}

fn binomial(rng: &mut ChaCha8Rng, n: u64, p: f64) -> u64 {
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    Binomial::new(n, p.min(1.0)).map_or(0, |b| b.sample(rng))
}

/// Error probability of each arm in block `block`: `(canary, baseline)`.
pub fn error_probabilities(
    baseline: f64,
    regression: Regression,
    nuisance: Nuisance,
    block: usize,
) -> (f64, f64) {
    let canary = match regression {
        Regression::Ratio(r) => (baseline * r).min(1.0),
        Regression::Hard => 0.5,
    };
    let t = block as u32 * BLOCK_SECONDS;
    if nuisance == Nuisance::Burst && (BURST_START..BURST_END).contains(&t) {
        (
            (canary * BURST_FACTOR).min(1.0),
            (baseline * BURST_FACTOR).min(1.0),
        )
    } else {
        (canary, baseline)
    }
}

fn error_blocks(
    rng: &mut ChaCha8Rng,
    traffic: Traffic,
    baseline: f64,
    regression: Regression,
    weights: Weights,
    nuisance: Nuisance,
) -> (Vec<Block>, Vec<f64>) {
    let mut blocks = Vec::with_capacity(BLOCKS);
    let mut rates = Vec::with_capacity(BLOCKS);
    let seconds = f64::from(BLOCK_SECONDS);
    for b in 0..BLOCKS {
        let middle = (b as f64 + 0.5) * seconds;
        let requests = traffic.rate(middle) * seconds;
        let w = weights.fraction(b);
        let canary_exposure = poisson(rng, requests * w);
        let baseline_exposure = poisson(rng, requests * (1.0 - w));
        let (pc, pb) = error_probabilities(baseline, regression, nuisance, b);
        blocks.push(Block {
            canary_exposure,
            canary_events: binomial(rng, canary_exposure, pc),
            baseline_exposure,
            baseline_events: binomial(rng, baseline_exposure, pb),
        });
        rates.push(pb);
    }
    (blocks, rates)
}

/// Canary pods in weight phase `phase`.
fn canary_pods(weights: Weights, phase: usize) -> u32 {
    let block = phase * BLOCKS / weights.phases();
    ((f64::from(CRASH_PODS) * weights.fraction(block)).round() as u32).clamp(1, CRASH_PODS - 1)
}

/// Simulates one container from `from` to `until` seconds: crashes after an exponential
/// running time of mean `3600 / per_hour` s (or [`CRASH_LOOP_UPTIME`] when crash-looping),
/// then the kubelet's back-off `10 s × 2^k` (at most 300 s; `k` consecutive crashes, reset
/// after 10 minutes of running), then a restart. Source: kubelet `backOffPeriod`,
/// `MaxContainerBackOff` and the Pod lifecycle documentation.
fn container(
    rng: &mut ChaCha8Rng,
    from: f64,
    until: f64,
    per_hour: f64,
    crash_loop: bool,
) -> (Vec<f64>, Vec<(f64, f64)>) {
    let (mut restarts, mut backoffs) = (Vec::new(), Vec::new());
    let uptime = Exp::new(per_hour.max(1e-12) / 3600.0).ok();
    let (mut t, mut consecutive) = (from, 0i32);
    loop {
        let run = if crash_loop {
            CRASH_LOOP_UPTIME
        } else {
            match &uptime {
                Some(e) => e.sample(rng),
                None => f64::INFINITY,
            }
        };
        if run >= BACKOFF_RESET {
            consecutive = 0;
        }
        let crash = t + run;
        if crash >= until {
            break;
        }
        let backoff = (BACKOFF_BASE * 2f64.powi(consecutive.min(16))).min(BACKOFF_MAX);
        consecutive += 1;
        let restart = crash + backoff;
        backoffs.push((crash, restart.min(until)));
        if restart >= until {
            break;
        }
        restarts.push(restart);
        t = restart;
    }
    (restarts, backoffs)
}

fn crash_pods(
    rng: &mut ChaCha8Rng,
    baseline_per_hour: f64,
    regression: Regression,
    weights: Weights,
) -> Vec<PodHistory> {
    let horizon = HORIZON_SECONDS;
    let phases = weights.phases();
    let phase_start = |p: usize| (p * BLOCKS / phases) as u32 * BLOCK_SECONDS;
    let mut pods = Vec::new();
    // Canary pods: pod i appears in the first phase that needs it and stays.
    let most = (0..phases)
        .map(|p| canary_pods(weights, p))
        .max()
        .unwrap_or(1);
    for i in 0..most {
        let Some(first) = (0..phases).find(|&p| canary_pods(weights, p) > i) else {
            continue;
        };
        let from = phase_start(first);
        let (per_hour, crash_loop) = match regression {
            Regression::Ratio(r) => (baseline_per_hour * r, false),
            Regression::Hard => (baseline_per_hour, true),
        };
        let (restarts, backoffs) = container(
            rng,
            f64::from(from),
            f64::from(horizon),
            per_hour,
            crash_loop,
        );
        pods.push(PodHistory {
            name: format!("canary-{i}"),
            canary: true,
            from,
            until: horizon,
            restarts,
            backoffs,
        });
    }
    // Stable pods: pod i goes away at the first phase that no longer needs it.
    for i in 0..CRASH_PODS - 1 {
        if i >= CRASH_PODS - canary_pods(weights, 0) {
            continue;
        }
        let until = (0..phases)
            .find(|&p| CRASH_PODS - canary_pods(weights, p) <= i)
            .map_or(horizon, phase_start);
        let (restarts, backoffs) = container(rng, 0.0, f64::from(until), baseline_per_hour, false);
        pods.push(PodHistory {
            name: format!("stable-{i}"),
            canary: false,
            from: 0,
            until,
            restarts,
            backoffs,
        });
    }
    pods
}

/// Blocks of a crash stream: pod-seconds and restarts per arm.
fn crash_blocks(pods: &[PodHistory]) -> Vec<Block> {
    let mut blocks = vec![Block::default(); BLOCKS];
    for pod in pods {
        let first = (pod.from / BLOCK_SECONDS) as usize;
        let last = (pod.until.div_ceil(BLOCK_SECONDS) as usize).min(BLOCKS);
        for b in blocks.iter_mut().take(last).skip(first) {
            if pod.canary {
                b.canary_exposure += u64::from(BLOCK_SECONDS);
            } else {
                b.baseline_exposure += u64::from(BLOCK_SECONDS);
            }
        }
        for r in &pod.restarts {
            let b = ((*r / f64::from(BLOCK_SECONDS)) as usize).min(BLOCKS - 1);
            if pod.canary {
                blocks[b].canary_events += 1;
            } else {
                blocks[b].baseline_events += 1;
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(traffic: Traffic, regression: Regression, nuisance: Nuisance) -> Scenario {
        Scenario::Errors {
            traffic,
            baseline: 0.01,
            regression,
            weights: Weights::Stepped,
            nuisance,
        }
    }

    #[test]
    fn streams_are_reproducible_and_differ_between_runs() {
        let s = errors(
            Traffic::Constant(10.0),
            Regression::Ratio(1.0),
            Nuisance::None,
        );
        assert_eq!(s.generate(7, 3), s.generate(7, 3));
        assert_ne!(s.generate(7, 3).blocks, s.generate(7, 4).blocks);
        assert_ne!(s.generate(7, 3).blocks, s.generate(8, 3).blocks);
    }

    #[test]
    fn traffic_weights_and_error_rates_come_out_as_configured() {
        let s = errors(
            Traffic::Constant(100.0),
            Regression::Ratio(2.0),
            Nuisance::None,
        );
        let stream = s.generate(1, 0);
        let first = stream.sum(0..BLOCKS / 3);
        let last = stream.sum(2 * BLOCKS / 3..BLOCKS);
        let share =
            |b: Block| b.canary_exposure as f64 / (b.canary_exposure + b.baseline_exposure) as f64;
        assert!((share(first) - 0.05).abs() < 0.005, "{}", share(first));
        assert!((share(last) - 0.5).abs() < 0.01, "{}", share(last));
        let all = stream.sum(0..BLOCKS);
        // 4 h at 100 req/s.
        let requests = (all.canary_exposure + all.baseline_exposure) as f64;
        assert!((requests / 1_440_000.0 - 1.0).abs() < 0.01, "{requests}");
        let rate = |e: u64, n: u64| e as f64 / n as f64;
        assert!((rate(all.baseline_events, all.baseline_exposure) - 0.01).abs() < 0.001);
        assert!((rate(all.canary_events, all.canary_exposure) - 0.02).abs() < 0.002);
    }

    #[test]
    fn the_diurnal_profile_falls_from_100_to_1() {
        assert_eq!(Traffic::Diurnal.rate(0.0), 100.0);
        assert!((Traffic::Diurnal.rate(f64::from(HORIZON_SECONDS)) - 1.0).abs() < 1e-9);
        assert!((Traffic::Diurnal.rate(f64::from(HORIZON_SECONDS) / 2.0) - 50.5).abs() < 1e-9);
    }

    #[test]
    fn looks_partition_the_horizon_and_share_missing_flags() {
        let s = errors(
            Traffic::Constant(10.0),
            Regression::Ratio(1.0),
            Nuisance::MissingScrapes,
        );
        let stream = s.generate(2, 0);
        for cadence in [10, 60] {
            let looks = stream.looks(cadence);
            assert_eq!(looks.len() as u32 * cadence, HORIZON_SECONDS);
            let total = looks.iter().fold(Block::default(), |acc, l| {
                acc.plus(&stream.sum(l.blocks.clone()))
            });
            assert_eq!(total, stream.sum(0..BLOCKS));
            let missing = looks.iter().filter(|l| l.missing).count() as f64 / looks.len() as f64;
            assert!(missing > 0.02 && missing < 0.09, "{missing}");
            assert!(!looks.last().unwrap().missing);
        }
        let quiet = errors(
            Traffic::Constant(10.0),
            Regression::Ratio(1.0),
            Nuisance::None,
        );
        assert!(quiet.generate(2, 0).looks(10).iter().all(|l| !l.missing));
    }

    #[test]
    fn the_burst_multiplies_both_arms_for_ten_minutes() {
        let inside = (BURST_START / BLOCK_SECONDS) as usize;
        let after = (BURST_END / BLOCK_SECONDS) as usize;
        let p = |b| error_probabilities(0.01, Regression::Ratio(2.0), Nuisance::Burst, b);
        assert_eq!(p(inside), (0.4, 0.2));
        assert_eq!(p(after), (0.02, 0.01));
        assert_eq!(p(inside - 1), (0.02, 0.01));
    }

    #[test]
    fn crash_loops_follow_the_kubelet_back_off() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (restarts, backoffs) = container(&mut rng, 0.0, 1000.0, 0.1, true);
        // Up 5 s, back-off 10 s, up 5 s, back-off 20 s, … (doubling, at most 300 s).
        assert_eq!(restarts, vec![15.0, 40.0, 85.0, 170.0, 335.0, 640.0, 945.0]);
        assert_eq!(backoffs[0], (5.0, 15.0));
        assert_eq!(backoffs[5], (340.0, 640.0));
        assert_eq!(backoffs[6], (645.0, 945.0));
        // The last crash waits past the end of the simulation.
        assert_eq!(backoffs[7], (950.0, 1000.0));
        assert_eq!(backoffs.len(), 8);
    }

    #[test]
    fn crash_streams_scale_pods_with_the_weight() {
        let s = Scenario::Crashes {
            baseline_per_hour: 1.0,
            regression: Regression::Ratio(1.0),
            weights: Weights::Stepped,
        };
        let stream = s.generate(3, 0);
        let at = |t: u32, canary: bool| {
            stream
                .pods
                .iter()
                .filter(|p| p.canary == canary && p.exists_at(t))
                .count()
        };
        assert_eq!((at(0, true), at(0, false)), (1, 19));
        assert_eq!((at(5000, true), at(5000, false)), (4, 16));
        assert_eq!((at(14_000, true), at(14_000, false)), (10, 10));
        let all = stream.sum(0..BLOCKS);
        assert_eq!(all.canary_exposure + all.baseline_exposure, 20 * 14_400);
        // About one crash per pod-hour: 80 pod-hours.
        let events = (all.canary_events + all.baseline_events) as f64;
        assert!(events > 50.0 && events < 110.0, "{events}");
    }
}
