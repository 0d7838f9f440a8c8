//! Freezes: bounds, precedence over windows, merging, and the search horizon.

use super::*;

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
