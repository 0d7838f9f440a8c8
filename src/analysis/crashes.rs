//! Crash counts from pod status: container restarts per arm, normalised by pod-time.
//!
//! **How restarts are counted.** A container that crashes in a loop restarts again and again
//! for one cause; counting every restart as an independent event would let one bad pod look like
//! overwhelming evidence (and one flaky baseline pod hide a broken canary). So the ratio test
//! counts *crashing pods per window*: each pod contributes at most one event per analysis window
//! (one if its `restartCount` went up in it; a pod merely waiting in `CrashLoopBackOff` does not
//! count again), and exposure is pod-seconds. A crash loop is caught instead by the absolute ceiling
//! `crashRate.maxRestartsPerPod`, which compares the highest restart count of any one canary pod
//! (since analysis started) with the limit.

use std::collections::BTreeMap;

use firebreak_judge::Counts;

/// Which side of the comparison a pod is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A canary pod.
    Canary,
    /// A baseline pod (the baseline ReplicaSet, or the stable pods without one).
    Baseline,
}

/// What the crash count needs from one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSample {
    /// Pod name.
    pub name: String,
    /// Its side.
    pub side: Side,
    /// Sum of its containers' `restartCount`.
    pub restarts: i32,
    /// A container is waiting in `CrashLoopBackOff` (or was last terminated by `OOMKilled` or
    /// an error exit) right now.
    pub crash_looping: bool,
}

/// The crash counts of one window.
#[derive(Clone, Debug, PartialEq)]
pub struct CrashWindow {
    /// Crashing pods (events) and pod-seconds (exposure) per arm.
    pub counts: Counts,
    /// Highest restarts of one canary pod since analysis started.
    pub canary_max_restarts: u32,
    /// Highest restarts of one baseline pod since analysis started.
    pub baseline_max_restarts: u32,
    /// Restart counts per pod, `[first seen, now]`, to carry to the next window.
    pub pod_restarts: BTreeMap<String, [i32; 2]>,
}

/// Counts one window of `window_seconds` from `pods`, given the per-pod restart counts
/// `previous` carried from the last window. Canary pods are new, so all their restarts count;
/// baseline pods count restarts from when analysis first saw them.
pub fn crash_window(
    pods: &[PodSample],
    previous: &BTreeMap<String, [i32; 2]>,
    window_seconds: f64,
) -> CrashWindow {
    let mut counts = Counts::default();
    let mut canary_max = 0u32;
    let mut baseline_max = 0u32;
    let mut pod_restarts = BTreeMap::new();
    let window = if window_seconds.is_finite() {
        window_seconds.max(0.0)
    } else {
        0.0
    };
    for pod in pods {
        let restarts = pod.restarts.max(0);
        let [first, last] = previous.get(&pod.name).copied().unwrap_or(match pod.side {
            Side::Canary => [0, 0],
            Side::Baseline => [restarts, restarts],
        });
        // A restart counts once, in the window where restartCount rises: a pod waiting out its
        // CrashLoopBackOff through several windows has not crashed again in each of them.
        let crashed = restarts > last;
        let since_start = (restarts - first).max(0) as u32;
        match pod.side {
            Side::Canary => {
                counts.canary_events += u64::from(crashed);
                counts.canary_exposure += window;
                canary_max = canary_max.max(since_start);
            }
            Side::Baseline => {
                counts.baseline_events += u64::from(crashed);
                counts.baseline_exposure += window;
                baseline_max = baseline_max.max(since_start);
            }
        }
        pod_restarts.insert(pod.name.clone(), [first, restarts]);
    }
    CrashWindow {
        counts,
        canary_max_restarts: canary_max,
        baseline_max_restarts: baseline_max,
        pod_restarts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, side: Side, restarts: i32, crash_looping: bool) -> PodSample {
        PodSample {
            name: name.into(),
            side,
            restarts,
            crash_looping,
        }
    }

    #[test]
    fn a_pod_counts_at_most_once_per_window() {
        let pods = [
            pod("c1", Side::Canary, 7, true),
            pod("c2", Side::Canary, 0, false),
            pod("b1", Side::Baseline, 3, false),
        ];
        let w = crash_window(&pods, &BTreeMap::new(), 30.0);
        assert_eq!(
            w.counts.canary_events, 1,
            "seven restarts of one pod are one crashing pod"
        );
        assert_eq!(w.counts.canary_exposure, 60.0);
        assert_eq!(w.canary_max_restarts, 7);
        // Baseline restarts from before analysis started do not count.
        assert_eq!((w.counts.baseline_events, w.baseline_max_restarts), (0, 0));

        let pods = [
            pod("c1", Side::Canary, 7, false),
            pod("c2", Side::Canary, 1, false),
            pod("b1", Side::Baseline, 4, false),
        ];
        let w = crash_window(&pods, &w.pod_restarts, 30.0);
        assert_eq!((w.counts.canary_events, w.counts.baseline_events), (1, 1));
        assert_eq!((w.canary_max_restarts, w.baseline_max_restarts), (7, 1));
    }
}
