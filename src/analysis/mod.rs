//! Canary analysis: metric providers and the judge that turns their counts into decisions.

pub mod judge;
