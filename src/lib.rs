//! Firebreak: progressive delivery for Kubernetes.
//!
//! A `Rollout` moves a new version through staged canary steps; the judge compares the canary's
//! error and crash rates against a baseline and the controller rolls back as soon as the evidence
//! says the new version is worse. See `DESIGN.md` for the product and the API contract.
//!
//! Layout:
//! - [`api`]: the custom resources (the public contract) and their CRDs;
//! - [`controller`]: observe (from watch caches) → decide (pure: ReplicaSets, status,
//!   notifications, the second-wave check, the next look) → act → record → notify (the outbox);
//! - [`analysis`]: metric providers, and the looks that feed them to the judge (the crate
//!   `firebreak_judge`, in `crates/judge`: pure statistics, no Kubernetes);
//! - [`incident`]: the Incident record, what notifications say and how they are delivered, the
//!   postmortem;
//! - [`schedule`]: deployment windows and freezes;
//! - [`telemetry`]: the controller's metrics (API requests included) and health endpoints;
//! - [`traffic`]: traffic routers behind one trait;
//! - [`cli`] and [`status`]: the command line.

pub mod analysis;
pub mod api;
pub mod cli;
pub mod controller;
pub mod incident;
pub mod schedule;
pub mod status;
pub mod telemetry;
pub mod traffic;
