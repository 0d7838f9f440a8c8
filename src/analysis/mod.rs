//! Canary analysis: metric providers behind the [`provider::MetricProvider`] trait (Prometheus
//! for error rates, pod status for crashes), and the pure look that hands their counts to the
//! judge (`firebreak_judge`, `crates/judge`) and combines its verdicts.

pub mod assess;
pub mod crashes;
pub mod prometheus;
pub mod provider;
pub mod template;
