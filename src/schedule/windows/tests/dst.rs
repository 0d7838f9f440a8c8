//! Daylight saving time: windows and freezes whose local times fall in a gap or a fold.

use super::*;

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
