//! The judge: decides from event counts whether a canary is worse than its baseline.
//!
//! Pure and deterministic: no I/O, no clock, no Kubernetes. The controller feeds it one
//! [`Counts`] per analysis interval through [`Evidence::observe`], stores the [`Evidence`] in the
//! Rollout's status (it round-trips exactly through JSON), and asks [`judge`] for a [`Verdict`].
//!
//! # The model
//!
//! Per metric and per interval `t` we see canary events `x_t` (errors, or restarts), baseline
//! events `y_t`, and the exposures that produced them: canary `n_t` and baseline `m_t` (requests,
//! or pod-seconds for crashes). `ρ_t = n_t / (n_t + m_t)` is the canary's share of exposure and
//! `R` the canary/baseline event-rate ratio. If events in both arms are Poisson with rates
//! `R·λ_t·n_t` and `λ_t·m_t` (the baseline rate `λ_t` may swing however it likes from one
//! interval to the next), then given the interval's total `s_t = x_t + y_t` each event came from
//! the canary independently with probability
//!
//! ```text
//! θ_t(R) = ρ_t R / (ρ_t R + 1 − ρ_t)          so   x_t | s_t ~ Binomial(s_t, θ_t(R))
//! ```
//!
//! and `λ_t` cancels: daily traffic and error swings common to both arms carry no weight.
//! The log-likelihood of interval `t` is `x_t ln θ_t(R) + y_t ln(1 − θ_t(R))`; we add it up on a
//! fixed grid of ratios (see [`GRID_STEPS_PER_DECADE`], [`GRID_HALF_WIDTH`]) anchored at the
//! metric's `maxRatio` `R0`, so the evidence is a vector `ℓ(R_j)`, `R_j = R0 · 10^(j/K)`.
//! This is the conditional (multinomial) construction of Lindon & Malek, "Anytime-Valid
//! Inference for Multinomial Count Data" (NeurIPS 2022), as used for count metrics in Netflix's
//! "Sequential A/B Testing Keeps the World Streaming Netflix" (technology blog, 2024).
//!
//! In log space, with `z = ln R + ln n_t − ln m_t` and `softplus(z) = ln(1 + e^z)`:
//! `ln θ = z − softplus(z)` and `ln(1 − θ) = −softplus(z)`, which is exact and never overflows.
//!
//! For requests the errors are Bernoulli rather than Poisson. The conditional law is then
//! Fisher's noncentral hypergeometric, which differs from the binomial above in two ways of
//! order `p` (the error rate): sampling without replacement makes it less dispersed, which only
//! makes the test more conservative (Hoeffding 1963, Theorem 4: convex functions of a sample
//! drawn without replacement have smaller expectation), and its odds ratio is
//! `R (1 − p)/(1 − R p)` rather than `R`, i.e. at a 1% error rate and `R0 = 1.5` the boundary is
//! effectively 1.508. The simulations in the tests use Bernoulli requests.
//!
//! # The tests built on it
//!
//! - [`eprocess`]: the mixture e-process against `R ≤ R0`, which fails a canary at any look;
//! - [`confidence`]: the anytime-valid confidence sequence for `R`, and the pass;
//! - [`planned`]: the one exact test at a decision look fixed in advance;
//! - [`ceiling`]: absolute limits on the canary, whatever the baseline does;
//! - [`policy`]: how `1 − confidence` is split across metrics and tests;
//! - [`verdict`]: [`judge`] and [`decide`] put them together; [`summary`] words a verdict for
//!   people, with the numbers;
//! - [`evidence`]: the record of one metric's counts; `codec.rs` its stored form (exact decimal
//!   strings, checked when read back);
//! - [`exact`]: exact binomial laws and their convolution;
//! - [`error`]: what can go wrong, in words that name the field and the value.
//!
//! Plain `f64` arithmetic on the inputs and nothing else: no Kubernetes, no async runtime. The
//! feature `schemars` derives the JSON schema of the stored evidence, for a CRD.

pub mod ceiling;
mod codec;
pub mod confidence;
pub mod eprocess;
pub mod error;
pub mod evidence;
pub mod exact;
pub mod kind;
pub mod planned;
pub mod policy;
pub mod summary;
pub mod verdict;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod simulations;

pub use ceiling::{Breach, Ceiling, RateBound};
pub use confidence::Estimate;
pub use eprocess::{GRID_HALF_WIDTH, GRID_LEN, GRID_STEPS_PER_DECADE};
pub use error::JudgeError;
pub use evidence::{Counts, Evidence};
pub use kind::{Arm, MetricKind};
pub use planned::{PlannedTest, Stratum};
pub use policy::{
    AlphaSplit, CEILING_ALPHA_SHARE, DEFAULT_MIN_EVENTS, DEFAULT_MIN_INTERVALS,
    PLANNED_ALPHA_SHARE, Policy, metric_alpha,
};
pub use summary::group;
pub use verdict::{InconclusiveReason, Verdict, decide, judge};
