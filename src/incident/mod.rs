//! Incident response: the `Incident` record built on every automatic rollback, abort or
//! common-mode hold, what the notifications about it say and how they are delivered, and the
//! postmortem draft rendered from it.

pub mod deliver;
pub mod message;
pub mod postmortem;
pub mod record;
