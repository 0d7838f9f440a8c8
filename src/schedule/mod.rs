//! When a rollout may start or advance: deployment windows and freezes.
//!
//! [`windows`] compiles `spec.windows` (or the cluster default) into a [`WindowPolicy`] and
//! answers, for an injected `now`, whether the policy is open and when that changes. Everything
//! here is pure: no clock, no I/O, no client.

pub mod windows;

pub use windows::{
    SEARCH_HORIZON_DAYS, WindowError, WindowPolicy, WindowState, compile, merge_default,
};
