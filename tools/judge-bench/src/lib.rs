//! The judge benchmark of issue 5: Firebreak's judge against re-implementations of the peers'
//! decision rules (Argo Rollouts, Flagger, Kayenta), a naive repeated test and an oracle, on
//! the same seeded simulated event streams ("Judge benchmark protocol" in DESIGN.md).
//!
//! - [`sim`]: the streams — requests and errors per 10-second block with traffic, weights,
//!   regressions and nuisances, or pods restarting under CrashLoopBackOff; seeded per scenario
//!   and run, so every judge sees the same stream (common random numbers);
//! - [`judge`]: the trait every judge implements; [`judges`]: the peers' rules, the naive test and the oracle, each documented with its
//!   source; [`kayenta`] Kayenta's Mann–Whitney judge; [`operator`] Firebreak's judge driven
//!   through [`firebreak::analysis::assess`], exactly as the controller drives it;
//! - [`stats`]: Wilson intervals, exact binomial tails, the normal distribution, Mann–Whitney;
//! - [`run`]: the grid and the parallel runner; [`report`]: `report.md`, `results.csv` and the
//!   detection plot.
//!
//! The binary is `src/main.rs`; `docs/judge-benchmark.md` has a full run's numbers. A
//! development tool: `cargo run --release -p judge-bench -- --help`.

pub mod judge;
pub mod judges;
pub mod kayenta;
pub mod operator;
pub mod report;
pub mod run;
pub mod sim;
pub mod stats;

#[cfg(test)]
mod tests;
