//! The crash state machine of one simulated container: up until a crash, then waiting out the
//! kubelet's restart back-off, then up again.
//!
//! Pure: time comes in as `now`, and the random time to the next crash comes from a `draw`
//! function, so tests pin both. The simulator applies a [`Step`] to the pod's status and only then
//! [`records`](CrashTracker::record) it, so a failed patch is retried on the next tick.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// The kubelet's restart back-off: `base`, doubled after each consecutive crash, at most `max`;
/// forgotten once the container has run for `2 × max` without crashing.
///
/// Source: kubelet `pkg/kubelet/kubelet.go` (`backOffPeriod` 10 s, `MaxContainerBackOff` 300 s)
/// and the Pod lifecycle documentation ("Once a container has executed for 10 minutes without any
/// problems, the kubelet resets the restart backoff timer").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The first back-off.
    pub base: Duration,
    /// The longest back-off.
    pub max: Duration,
}

impl BackoffPolicy {
    /// The kubelet's defaults: 10 s doubling up to 300 s.
    pub const KUBELET: BackoffPolicy = BackoffPolicy {
        base: Duration::from_secs(10),
        max: Duration::from_secs(300),
    };

    /// The back-off after a crash preceded by `consecutive` crashes without a reset:
    /// `base × 2^consecutive`, capped at `max`.
    pub fn backoff(&self, consecutive: u32) -> Duration {
        2u32.checked_pow(consecutive)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |d| d.min(self.max))
    }

    /// How long a container must run without crashing for its back-off to start over.
    pub fn reset_after(&self) -> Duration {
        self.max.saturating_mul(2)
    }
}

/// What the simulator sees of a pod at one tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The pod is in phase Running and not being deleted.
    pub running: bool,
    /// Mean time between crashes while the container runs (annotation); `None`: it never crashes.
    pub crash_every: Option<Duration>,
    /// The container's `restartCount` in the pod's status.
    pub restart_count: u32,
    /// When the container waits in CrashLoopBackOff (as an earlier run of the simulator may have
    /// left it): when it last terminated, if known.
    pub crash_looping: Option<Option<Timestamp>>,
}

/// What to do to the pod's status now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The container dies and waits `backoff` before the restart.
    Crash {
        /// The back-off before the restart.
        backoff: Duration,
    },
    /// The back-off is over: the container runs again.
    Restart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Running; `next_crash` is the mean interval it was drawn with and the time it fires.
    Up {
        next_crash: Option<(Duration, Timestamp)>,
    },
    /// Waiting in CrashLoopBackOff until `restart_at`.
    Down { restart_at: Timestamp },
}

/// The crash simulation of one pod's container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashTracker {
    phase: Phase,
    /// When the container last (re)started, as far as the simulator knows.
    up_since: Timestamp,
    /// Crashes since the back-off was last reset.
    consecutive: u32,
}

/// `t + d`, saturating at the end of time.
fn after(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

impl CrashTracker {
    /// Brings a pod's tracker up to date with what is observed at `now`: starts tracking a running
    /// pod annotated to crash (or left in CrashLoopBackOff), stops when the pod stops running or
    /// loses the annotation while up, and redraws the next crash when the mean interval changed.
    ///
    /// `draw(mean)` returns the time to the next crash for a mean interval.
    pub fn sync(
        slot: &mut Option<CrashTracker>,
        observed: &Observed,
        policy: &BackoffPolicy,
        now: Timestamp,
        draw: &mut dyn FnMut(Duration) -> Duration,
    ) {
        if !observed.running {
            *slot = None;
            return;
        }
        let schedule = |draw: &mut dyn FnMut(Duration) -> Duration| {
            observed
                .crash_every
                .map(|mean| (mean, after(now, draw(mean))))
        };
        match slot {
            None => {
                // Without memory of earlier crashes, count the pod's restarts as consecutive, as
                // the kubelet would right after a crash loop.
                let consecutive = observed.restart_count;
                if let Some(terminated) = observed.crash_looping {
                    let backoff = policy.backoff(consecutive.saturating_sub(1));
                    let restart_at = terminated.map_or(now, |t| after(t, backoff).max(now));
                    *slot = Some(CrashTracker {
                        phase: Phase::Down { restart_at },
                        up_since: now,
                        consecutive,
                    });
                } else if observed.crash_every.is_some() {
                    *slot = Some(CrashTracker {
                        phase: Phase::Up {
                            next_crash: schedule(draw),
                        },
                        up_since: now,
                        consecutive,
                    });
                }
            }
            Some(tracker) => match tracker.phase {
                Phase::Up { .. } if observed.crash_every.is_none() => *slot = None,
                Phase::Up { next_crash }
                    if next_crash.map(|(mean, _)| mean) != observed.crash_every =>
                {
                    // Exponential intervals are memoryless: redrawing from now is exact.
                    tracker.phase = Phase::Up {
                        next_crash: schedule(draw),
                    };
                }
                Phase::Up { .. } | Phase::Down { .. } => {}
            },
        }
    }

    /// The step that is due at `now`, if any.
    pub fn due(&self, policy: &BackoffPolicy, now: Timestamp) -> Option<Step> {
        match self.phase {
            Phase::Up {
                next_crash: Some((_, at)),
            } if at <= now => Some(Step::Crash {
                backoff: policy.backoff(self.consecutive_at(policy, now)),
            }),
            Phase::Down { restart_at } if restart_at <= now => Some(Step::Restart),
            Phase::Up { .. } | Phase::Down { .. } => None,
        }
    }

    /// Records that `step` was applied to the pod at `now`. After a restart the next crash is drawn
    /// with `crash_every` (`None`: no further crash).
    pub fn record(
        &mut self,
        step: Step,
        policy: &BackoffPolicy,
        now: Timestamp,
        crash_every: Option<Duration>,
        draw: &mut dyn FnMut(Duration) -> Duration,
    ) {
        match step {
            Step::Crash { backoff } => {
                self.consecutive = self.consecutive_at(policy, now).saturating_add(1);
                self.phase = Phase::Down {
                    restart_at: after(now, backoff),
                };
            }
            Step::Restart => {
                self.up_since = now;
                self.phase = Phase::Up {
                    next_crash: crash_every.map(|mean| (mean, after(now, draw(mean)))),
                };
            }
        }
    }

    /// When the container restarts, if it is waiting in back-off.
    pub fn restart_at(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Down { restart_at } => Some(restart_at),
            Phase::Up { .. } => None,
        }
    }

    /// When the next crash fires, if the container is up and will crash.
    pub fn crash_at(&self) -> Option<Timestamp> {
        match self.phase {
            Phase::Up { next_crash } => next_crash.map(|(_, at)| at),
            Phase::Down { .. } => None,
        }
    }

    /// Consecutive crashes so far, or 0 if the container has run long enough to reset the back-off.
    fn consecutive_at(&self, policy: &BackoffPolicy, now: Timestamp) -> u32 {
        if after(self.up_since, policy.reset_after()) <= now {
            0
        } else {
            self.consecutive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seconds` (possibly negative) after a fixed instant.
    fn t(seconds: f64) -> Timestamp {
        Timestamp::from_second(1_700_000_000)
            .unwrap()
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs_f64(seconds))
            .unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// Draws exactly the mean: the crash fires `mean` after the container starts.
    fn mean(mean: Duration) -> Duration {
        mean
    }

    fn running(crash_every: Option<u64>) -> Observed {
        Observed {
            running: true,
            crash_every: crash_every.map(secs),
            restart_count: 0,
            crash_looping: None,
        }
    }

    #[test]
    fn kubelet_backoff_doubles_from_10s_up_to_300s() {
        let backoffs: Vec<u64> = (0..8)
            .map(|n| BackoffPolicy::KUBELET.backoff(n).as_secs())
            .collect();
        assert_eq!(backoffs, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(BackoffPolicy::KUBELET.backoff(u32::MAX), secs(300));
        assert_eq!(BackoffPolicy::KUBELET.reset_after(), secs(600));
        let fast = BackoffPolicy {
            base: secs(1),
            max: secs(300),
        };
        assert_eq!(fast.backoff(0), secs(1));
        assert_eq!(fast.backoff(8), secs(256));
        assert_eq!(fast.backoff(9), secs(300));
    }

    /// Runs a crashing container through `crashes` crash/restart cycles; returns the times of the
    /// crashes and restarts.
    fn cycle(crash_every: u64, crashes: usize) -> Vec<(Step, f64)> {
        let policy = BackoffPolicy::KUBELET;
        let observed = running(Some(crash_every));
        let mut slot = None;
        let mut steps = Vec::new();
        let mut now = t(0.0);
        CrashTracker::sync(&mut slot, &observed, &policy, now, &mut mean);
        while steps.len() < 2 * crashes {
            let tracker = slot.as_mut().expect("tracked");
            if let Some(step) = tracker.due(&policy, now) {
                tracker.record(step, &policy, now, observed.crash_every, &mut mean);
                steps.push((step, now.duration_since(t(0.0)).as_secs_f64()));
            }
            now = after(now, secs(1));
            CrashTracker::sync(&mut slot, &observed, &policy, now, &mut mean);
        }
        steps
    }

    #[test]
    fn a_crashing_container_backs_off_like_the_kubelet() {
        let steps = cycle(5, 8);
        let backoffs: Vec<u64> = steps
            .iter()
            .filter_map(|(step, _)| match step {
                Step::Crash { backoff } => Some(backoff.as_secs()),
                Step::Restart => None,
            })
            .collect();
        assert_eq!(backoffs, [10, 20, 40, 80, 160, 300, 300, 300]);
        // Up 5 s, down 10 s, up 5 s, down 20 s, …
        let times: Vec<f64> = steps.iter().map(|(_, at)| *at).collect();
        assert_eq!(
            &times[..6],
            [5.0, 15.0, 20.0, 40.0, 45.0, 85.0],
            "crash, restart, crash, restart, …"
        );
        assert!(matches!(steps[1].0, Step::Restart));
    }

    #[test]
    fn running_ten_minutes_resets_the_backoff() {
        let steps = cycle(700, 3);
        let backoffs: Vec<u64> = steps
            .iter()
            .filter_map(|(step, _)| match step {
                Step::Crash { backoff } => Some(backoff.as_secs()),
                Step::Restart => None,
            })
            .collect();
        assert_eq!(backoffs, [10, 10, 10]);
    }

    #[test]
    fn the_restart_happens_when_the_backoff_ends_not_before() {
        let policy = BackoffPolicy {
            base: secs(1),
            max: secs(300),
        };
        let observed = running(Some(2));
        let mut slot = None;
        CrashTracker::sync(&mut slot, &observed, &policy, t(0.0), &mut mean);
        let tracker = slot.as_mut().unwrap();
        assert_eq!(tracker.crash_at(), Some(t(2.0)));
        assert_eq!(tracker.due(&policy, t(1.9)), None);
        let crash = tracker.due(&policy, t(2.1)).unwrap();
        assert_eq!(crash, Step::Crash { backoff: secs(1) });
        tracker.record(crash, &policy, t(2.1), observed.crash_every, &mut mean);
        assert_eq!(tracker.restart_at(), Some(t(3.1)));
        assert_eq!(tracker.due(&policy, t(3.0)), None);
        assert_eq!(tracker.due(&policy, t(3.1)), Some(Step::Restart));
        tracker.record(
            Step::Restart,
            &policy,
            t(3.2),
            observed.crash_every,
            &mut mean,
        );
        assert_eq!(tracker.crash_at(), Some(t(5.2)));
        assert_eq!(
            tracker.due(&policy, t(5.2)),
            Some(Step::Crash { backoff: secs(2) })
        );
    }

    #[test]
    fn a_step_not_recorded_stays_due() {
        // The patch failed: the crash is still due on the next tick.
        let policy = BackoffPolicy::KUBELET;
        let mut slot = None;
        CrashTracker::sync(&mut slot, &running(Some(2)), &policy, t(0.0), &mut mean);
        let tracker = slot.unwrap();
        assert!(tracker.due(&policy, t(3.0)).is_some());
        assert!(tracker.due(&policy, t(3.2)).is_some());
    }

    #[test]
    fn pods_without_the_annotation_are_not_tracked() {
        let mut slot = None;
        let policy = BackoffPolicy::KUBELET;
        CrashTracker::sync(&mut slot, &running(None), &policy, t(0.0), &mut mean);
        assert_eq!(slot, None);
        let mut not_running = running(Some(2));
        not_running.running = false;
        CrashTracker::sync(&mut slot, &not_running, &policy, t(0.0), &mut mean);
        assert_eq!(slot, None);
    }

    #[test]
    fn losing_the_annotation_stops_crashes_but_finishes_a_backoff() {
        let policy = BackoffPolicy::KUBELET;
        let mut slot = None;
        CrashTracker::sync(&mut slot, &running(Some(2)), &policy, t(0.0), &mut mean);
        CrashTracker::sync(&mut slot, &running(None), &policy, t(1.0), &mut mean);
        assert_eq!(
            slot, None,
            "an up container without the annotation is left alone"
        );

        CrashTracker::sync(&mut slot, &running(Some(2)), &policy, t(0.0), &mut mean);
        let tracker = slot.as_mut().unwrap();
        let crash = tracker.due(&policy, t(2.0)).unwrap();
        tracker.record(crash, &policy, t(2.0), Some(secs(2)), &mut mean);
        CrashTracker::sync(&mut slot, &running(None), &policy, t(3.0), &mut mean);
        let tracker = slot
            .as_mut()
            .expect("a container in back-off is still restarted");
        assert_eq!(tracker.due(&policy, t(12.0)), Some(Step::Restart));
        tracker.record(Step::Restart, &policy, t(12.0), None, &mut mean);
        assert_eq!(tracker.crash_at(), None);
        CrashTracker::sync(&mut slot, &running(None), &policy, t(13.0), &mut mean);
        assert_eq!(slot, None);
    }

    #[test]
    fn a_changed_interval_redraws_the_next_crash() {
        let policy = BackoffPolicy::KUBELET;
        let mut slot = None;
        CrashTracker::sync(&mut slot, &running(Some(60)), &policy, t(0.0), &mut mean);
        CrashTracker::sync(&mut slot, &running(Some(60)), &policy, t(5.0), &mut mean);
        assert_eq!(slot.as_ref().unwrap().crash_at(), Some(t(60.0)));
        CrashTracker::sync(&mut slot, &running(Some(2)), &policy, t(10.0), &mut mean);
        assert_eq!(slot.as_ref().unwrap().crash_at(), Some(t(12.0)));
    }

    #[test]
    fn a_container_left_in_crash_loop_back_off_is_restarted_and_counting_continues() {
        // An earlier simulator run crashed it three times; the last crash was 5 s ago.
        let policy = BackoffPolicy::KUBELET;
        let observed = Observed {
            running: true,
            crash_every: Some(secs(30)),
            restart_count: 3,
            crash_looping: Some(Some(t(-5.0))),
        };
        let mut slot = None;
        CrashTracker::sync(&mut slot, &observed, &policy, t(0.0), &mut mean);
        let tracker = slot.as_mut().unwrap();
        // The third crash's back-off was 40 s: the restart is due 35 s from now.
        assert_eq!(tracker.restart_at(), Some(t(35.0)));
        tracker.record(
            Step::Restart,
            &policy,
            t(35.0),
            observed.crash_every,
            &mut mean,
        );
        // The next crash backs off 80 s, continuing from restartCount 3.
        assert_eq!(
            tracker.due(&policy, t(65.0)),
            Some(Step::Crash { backoff: secs(80) })
        );

        // Without a termination time, the restart is immediate.
        let mut slot = None;
        let observed = Observed {
            crash_looping: Some(None),
            crash_every: None,
            ..observed
        };
        CrashTracker::sync(&mut slot, &observed, &policy, t(0.0), &mut mean);
        assert_eq!(slot.unwrap().due(&policy, t(0.0)), Some(Step::Restart));
    }

    #[test]
    fn a_pod_that_stops_running_is_forgotten() {
        let policy = BackoffPolicy::KUBELET;
        let mut slot = None;
        CrashTracker::sync(&mut slot, &running(Some(2)), &policy, t(0.0), &mut mean);
        let mut deleting = running(Some(2));
        deleting.running = false;
        CrashTracker::sync(&mut slot, &deleting, &policy, t(1.0), &mut mean);
        assert_eq!(slot, None);
    }
}
