//! Integration tests against the real local control plane, Prometheus and Gateway (Traefik).
//!
//! Run through `scripts/test.sh` (the README's test command), which starts the environment;
//! see `support` for how a test reaches it.

mod analysis;
mod chart;
mod fleet;
mod gateway;
mod incident;
mod invalid_specs;
mod kstatus;
mod leader;
mod lifecycle;
mod outbox;
mod providers;
mod rollout;
mod schedule;
mod smoke;
mod support;
mod telemetry;
mod triggers;
