//! Incident response: the `Incident` record built on every automatic rollback, abort or
//! common-mode hold, the notifications about it, and the postmortem draft rendered from it.

pub mod notify;
pub mod postmortem;
pub mod record;
