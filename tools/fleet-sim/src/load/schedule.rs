//! When each request of an open-loop run starts: at a constant rate from the start, whatever the
//! responses do. Pure: the caller passes the time elapsed since the start.

use std::ops::Range;
use std::time::Duration;

/// A constant-rate schedule: request `i` (from 0) starts `i / rps` seconds after the start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    rps: f64,
    total: u64,
}

impl Schedule {
    /// `rps × duration` requests (rounded, at least one) at `rps` requests/second. `rps` must be a
    /// positive finite number (the flag's parser ensures it).
    pub fn new(rps: f64, duration: Duration) -> Self {
        let total = (rps * duration.as_secs_f64()).round();
        Schedule {
            rps,
            // A float to integer `as` saturates; NaN becomes 0, then 1.
            total: (total as u64).max(1),
        }
    }

    /// How many requests the run sends (or skips).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When request `i` is due, after the start.
    pub fn due_at(&self, i: u64) -> Duration {
        Duration::try_from_secs_f64(i as f64 / self.rps).unwrap_or(Duration::MAX)
    }

    /// The requests from `next` on that are due `elapsed` after the start: all of them at once
    /// when the caller fell behind, as an open-loop generator must (a late start does not move
    /// the later ones).
    pub fn due(&self, next: u64, elapsed: Duration) -> Range<u64> {
        let mut end = next;
        while end < self.total && self.due_at(end) <= elapsed {
            end += 1;
        }
        next..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn requests_are_evenly_spaced_from_the_start() {
        let schedule = Schedule::new(100.0, Duration::from_secs(30));
        assert_eq!(schedule.total(), 3000);
        assert_eq!(schedule.due_at(0), Duration::ZERO);
        assert_eq!(schedule.due_at(1), ms(10));
        assert_eq!(schedule.due_at(2999), ms(29_990));
        assert_eq!(
            Schedule::new(0.5, Duration::from_secs(10)).due_at(3),
            ms(6000)
        );
    }

    #[test]
    fn due_requests_are_those_whose_time_has_come() {
        let schedule = Schedule::new(100.0, Duration::from_secs(1));
        assert_eq!(schedule.due(0, Duration::ZERO), 0..1);
        assert_eq!(schedule.due(1, ms(5)), 1..1);
        assert_eq!(schedule.due(1, ms(10)), 1..2);
        // Stalled for 50 ms: the five missed starts are due at once, the schedule unmoved.
        assert_eq!(schedule.due(2, ms(65)), 2..7);
        assert_eq!(schedule.due(7, ms(70)), 7..8);
        // Never past the end.
        assert_eq!(schedule.due(95, Duration::from_secs(60)), 95..100);
        assert_eq!(schedule.due(100, Duration::from_secs(60)), 100..100);
    }

    #[test]
    fn every_request_is_due_exactly_at_its_time() {
        // No request is late or early through rounding: each is due at its own time and not a
        // nanosecond before.
        for rps in [3.0, 7.0, 100.0, 333.3, 1000.0] {
            let schedule = Schedule::new(rps, Duration::from_secs(2));
            for i in 1..schedule.total() {
                let at = schedule.due_at(i);
                assert_eq!(schedule.due(i, at), i..i + 1, "rps {rps}, request {i}");
                assert_eq!(
                    schedule.due(i, at - Duration::from_nanos(1)),
                    i..i,
                    "rps {rps}, request {i}"
                );
            }
        }
    }

    #[test]
    fn a_run_has_rate_times_duration_requests_at_least_one() {
        assert_eq!(Schedule::new(500.0, Duration::from_secs(2)).total(), 1000);
        assert_eq!(Schedule::new(200.0, Duration::from_millis(100)).total(), 20);
        assert_eq!(Schedule::new(2.5, Duration::from_secs(1)).total(), 3);
        assert_eq!(Schedule::new(0.1, Duration::from_secs(1)).total(), 1);
    }
}
