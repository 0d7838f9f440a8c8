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
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::Store;

use crate::api::{POD_TEMPLATE_HASH_LABEL, ROLLOUT_LABEL};

use super::provider::{CrashWindow, Look, Measurement, MetricProvider, ProviderError};

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

/// The sample of `pod` when it is a running pod, not being deleted, of the `canary` or the
/// `baseline` revision (pod-template-hash); `None` for any other pod.
pub fn pod_sample(pod: &Pod, canary: &str, baseline: &str) -> Option<PodSample> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let hash = pod.labels().get(POD_TEMPLATE_HASH_LABEL)?;
    let side = if hash == canary {
        Side::Canary
    } else if hash == baseline {
        Side::Baseline
    } else {
        return None;
    };
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    let restarts = statuses.iter().map(|c| c.restart_count).sum();
    let crash_looping = statuses.iter().any(|c| {
        c.state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref())
            == Some("CrashLoopBackOff")
    });
    Some(PodSample {
        name: pod.name_any(),
        side,
        restarts,
        crash_looping,
    })
}

/// The crash provider: lists the Rollout's pods (label `firebreak.dev/rollout`) in the arms'
/// namespace and counts one window with [`crash_window`].
///
/// Built for one look: it carries the per-pod restart counts the previous look left in
/// `status.analysis.podRestarts`.
pub struct PodCrashes<'a> {
    pods: &'a Store<Pod>,
    previous: &'a BTreeMap<String, [i32; 2]>,
}

impl<'a> PodCrashes<'a> {
    /// A provider reading the controller's pod cache `pods`, continuing from `previous` (pod
    /// name → `[restarts when first seen, restarts at the last look]`).
    pub fn new(pods: &'a Store<Pod>, previous: &'a BTreeMap<String, [i32; 2]>) -> PodCrashes<'a> {
        PodCrashes { pods, previous }
    }

    /// The running pods of both arms, from the cache.
    fn samples(&self, look: &Look<'_>) -> Vec<PodSample> {
        let canary = &look.arms.canary;
        self.pods
            .state()
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(canary.namespace))
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ROLLOUT_LABEL))
                    .map(String::as_str)
                    == Some(canary.rollout)
            })
            .filter_map(|p| pod_sample(p, canary.revision, look.arms.baseline.revision))
            .collect()
    }
}

impl MetricProvider for PodCrashes<'_> {
    fn name(&self) -> &'static str {
        "pod-status"
    }

    /// Measures a `crashRate` metric: crashing pods and pod-seconds per arm over the window.
    fn measure<'a>(&'a self, look: Look<'a>) -> BoxFuture<'a, Result<Measurement, ProviderError>> {
        Box::pin(async move {
            if look.metric.crash_rate.is_none() {
                return Err(ProviderError::WrongProvider {
                    metric: look.metric.name.clone(),
                    provider: self.name(),
                    wanted: "crashRate",
                });
            }
            let samples = self.samples(&look);
            Ok(Measurement::Crashes(crash_window(
                &samples,
                self.previous,
                look.window_seconds as f64,
            )))
        })
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

    #[test]
    fn only_running_pods_of_the_two_arms_are_sampled() {
        let pod = |hash: &str, phase: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("web-{hash}"), "labels": {POD_TEMPLATE_HASH_LABEL: hash}},
                "status": {"phase": phase, "containerStatuses": [
                    {"name": "app", "image": "web", "imageID": "", "ready": false, "restartCount": 2,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                    {"name": "sidecar", "image": "s", "imageID": "", "ready": true, "restartCount": 1}
                ]}
            }))
            .unwrap()
        };
        assert_eq!(
            pod_sample(&pod("new", "Running"), "new", "old"),
            Some(PodSample {
                name: "web-new".into(),
                side: Side::Canary,
                restarts: 3,
                crash_looping: true,
            })
        );
        assert_eq!(
            pod_sample(&pod("old", "Running"), "new", "old").map(|s| s.side),
            Some(Side::Baseline)
        );
        assert_eq!(pod_sample(&pod("other", "Running"), "new", "old"), None);
        assert_eq!(pod_sample(&pod("new", "Pending"), "new", "old"), None);
    }
}
