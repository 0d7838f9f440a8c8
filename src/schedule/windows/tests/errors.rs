//! Invalid windows, named with their fix; and the choice between own and cluster-default windows.

use super::*;

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
