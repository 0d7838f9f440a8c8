//! Properties over generated policies and instants: the next change is exact.

use jiff::SignedDuration;
use proptest::prelude::*;

use super::*;
use crate::schedule::windows::weekly::{DAY_NAMES, minute_text};

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
