//! Canary analysis: metric providers behind the [`provider::MetricProvider`] trait (Prometheus
//! for error rates, pod status for crashes), the judge that turns their counts into decisions,
//! and the pure look that combines them.

pub mod assess;
pub mod crashes;
pub mod exact;
pub mod judge;
pub mod prometheus;
pub mod provider;
pub mod template;
