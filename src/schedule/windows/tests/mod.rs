//! Tests of window policies: fixtures that read as the spec (`zone(..).allow(..).deny(..)`),
//! weekly windows here, and the other concerns in their own files.

mod dst;
mod errors;
mod freezes;
mod properties;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZoneDatabase;

use super::*;
use crate::api::{AllowWindow, DenyWindow};

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
    let just_before = local("Europe/Berlin", "2026-03-24T09:00") - SignedDuration::from_nanos(1);
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
