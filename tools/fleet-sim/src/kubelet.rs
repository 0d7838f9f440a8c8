//! What a kubelet writes in a pod's status when a container crashes and when it is restarted.
//!
//! Pure: each function takes the pod as last seen and `now`, and returns a JSON merge patch for the
//! `pods/status` subresource. `containerStatuses` is an atomic list (no merge key), so the patch
//! carries the whole list, and the pod's `resourceVersion` as a precondition: if the pod changed
//! since it was read, the API server answers 409 Conflict and nothing is lost by a blind overwrite.

use std::time::Duration;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::annotations::CrashReason;

/// The waiting reason of a container in restart back-off.
pub const CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";

/// Why a pod's status cannot be patched (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// The pod has no containers in its spec.
    #[error("pod {pod} has no containers")]
    NoContainers {
        /// `namespace/name`.
        pod: String,
    },
    /// The container has no status yet (kwok has not started it).
    #[error("pod {pod} has no status for container {container} yet")]
    NoContainerStatus {
        /// `namespace/name`.
        pod: String,
        /// The container's name.
        container: String,
    },
}

/// The container a crash kills: the pod's first container (the main one, by convention).
pub fn crashing_container(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .containers
        .first()
        .map(|c| c.name.as_str())
}

/// The status of the crashing container, if the pod has one.
pub fn crashing_container_status(pod: &Pod) -> Option<&ContainerStatus> {
    let name = crashing_container(pod)?;
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == name)
}

fn pod_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Applies `change` to the crashing container's status and sets the pod's Ready and
/// ContainersReady conditions from the readiness of all containers; returns the merge patch.
fn patch_container(
    pod: &Pod,
    now: Timestamp,
    change: impl FnOnce(&mut ContainerStatus),
) -> Result<serde_json::Value, StatusError> {
    let container =
        crashing_container(pod).ok_or_else(|| StatusError::NoContainers { pod: pod_name(pod) })?;
    let status = pod.status.clone().unwrap_or_default();
    let mut statuses = status.container_statuses.unwrap_or_default();
    let target = statuses
        .iter_mut()
        .find(|s| s.name == container)
        .ok_or_else(|| StatusError::NoContainerStatus {
            pod: pod_name(pod),
            container: container.to_string(),
        })?;
    change(target);

    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let mut conditions = status.conditions.unwrap_or_default();
    for type_ in ["ContainersReady", "Ready"] {
        let (value, reason, message) = if unready.is_empty() {
            ("True", None, None)
        } else {
            (
                "False",
                Some("ContainersNotReady".to_string()),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        };
        let condition = match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(condition) => condition,
            None => {
                conditions.push(PodCondition {
                    type_: type_.to_string(),
                    ..PodCondition::default()
                });
                let last = conditions.len() - 1;
                &mut conditions[last]
            }
        };
        // As the kubelet does, the transition time moves only when the status changes.
        if condition.status != value {
            condition.last_transition_time = Some(Time(now));
        }
        condition.status = value.to_string();
        condition.reason = reason;
        condition.message = message;
    }

    Ok(json!({
        "metadata": {"resourceVersion": pod.metadata.resource_version},
        "status": {"containerStatuses": statuses, "conditions": conditions},
    }))
}

/// The patch for a crash at `now`: the container terminated (exit code 1 `Error`, or 137
/// `OOMKilled`), its `restartCount` one higher, waiting in CrashLoopBackOff for `backoff`, and the
/// pod not Ready.
pub fn crash_patch(
    pod: &Pod,
    reason: CrashReason,
    backoff: Duration,
    now: Timestamp,
) -> Result<serde_json::Value, StatusError> {
    let pod_ref = format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    );
    let pod_started = pod.status.as_ref().and_then(|s| s.start_time.clone());
    patch_container(pod, now, |status| {
        let started_at = status
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.clone())
            .or(pod_started)
            .unwrap_or(Time(now));
        status.restart_count = status.restart_count.saturating_add(1);
        status.last_state = Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: reason.exit_code(),
                reason: Some(reason.reason().to_string()),
                started_at: Some(started_at),
                finished_at: Some(Time(now)),
                container_id: status.container_id.clone(),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        });
        // The kubelet's message, from `pkg/kubelet/kuberuntime/kuberuntime_manager.go`.
        status.state = Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(CRASH_LOOP_BACK_OFF.to_string()),
                message: Some(format!(
                    "back-off {} restarting failed container={} pod={pod_ref}",
                    go_duration(backoff),
                    status.name
                )),
            }),
            ..ContainerState::default()
        });
        status.ready = false;
        status.started = Some(false);
    })
}

/// The patch for the restart at `now` after a back-off: the container running since `now` and
/// ready, and the pod Ready again if all its containers are.
pub fn restart_patch(pod: &Pod, now: Timestamp) -> Result<serde_json::Value, StatusError> {
    patch_container(pod, now, |status| {
        status.state = Some(ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(now)),
            }),
            ..ContainerState::default()
        });
        status.ready = true;
        status.started = Some(true);
    })
}

/// A duration as Go's `time.Duration.String` prints it (the kubelet's messages do): `10s`,
/// `2m40s`, `5m0s`, `500ms`.
pub fn go_duration(d: Duration) -> String {
    let millis = d.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let (seconds, fraction) = (d.as_secs(), d.subsec_millis());
    let s = if fraction == 0 {
        format!("{}s", seconds % 60)
    } else {
        let decimals = format!("{fraction:03}");
        format!("{}.{}s", seconds % 60, decimals.trim_end_matches('0'))
    };
    match (seconds / 3600, seconds / 60 % 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod as kwok leaves it: Running, ready, one container started at second 100.
    fn kwok_pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": "shop-abc", "namespace": "ns", "uid": "u-1", "resourceVersion": "42"
            },
            "spec": {"containers": [{"name": "app", "image": "shop:1"}]},
            "status": {
                "phase": "Running",
                "startTime": "2025-01-01T00:01:40Z",
                "conditions": [
                    {"type": "Initialized", "status": "True",
                     "lastTransitionTime": "2025-01-01T00:01:40Z"},
                    {"type": "Ready", "status": "True",
                     "lastTransitionTime": "2025-01-01T00:01:40Z"},
                    {"type": "ContainersReady", "status": "True",
                     "lastTransitionTime": "2025-01-01T00:01:40Z"}
                ],
                "containerStatuses": [{
                    "name": "app", "image": "shop:1", "imageID": "", "ready": true,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2025-01-01T00:01:40Z"}}
                }]
            }
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        "2025-01-01T00:05:00Z".parse().unwrap()
    }

    /// The pod after the merge patch (both lists are replaced whole).
    fn patched(pod: &Pod, patch: &serde_json::Value) -> Pod {
        let mut value = serde_json::to_value(pod).unwrap();
        let status = value["status"].as_object_mut().unwrap();
        for (k, v) in patch["status"].as_object().unwrap() {
            status.insert(k.clone(), v.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    fn condition<'a>(pod: &'a Pod, type_: &str) -> &'a PodCondition {
        pod.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    #[test]
    fn a_crash_reads_like_the_kubelet_wrote_it() {
        let pod = kwok_pod();
        let patch = crash_patch(&pod, CrashReason::Error, Duration::from_secs(10), now()).unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        let pod = patched(&pod, &patch);
        let status = crashing_container_status(&pod).unwrap();
        assert_eq!(status.restart_count, 1);
        assert!(!status.ready);
        let terminated = status
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(terminated.exit_code, 1);
        assert_eq!(terminated.reason.as_deref(), Some("Error"));
        assert_eq!(
            terminated.started_at,
            Some(Time("2025-01-01T00:01:40Z".parse().unwrap()))
        );
        assert_eq!(terminated.finished_at, Some(Time(now())));
        let waiting = status.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(
            waiting.message.as_deref(),
            Some("back-off 10s restarting failed container=app pod=shop-abc_ns(u-1)")
        );
        for type_ in ["Ready", "ContainersReady"] {
            let c = condition(&pod, type_);
            assert_eq!(c.status, "False");
            assert_eq!(c.reason.as_deref(), Some("ContainersNotReady"));
            assert_eq!(c.last_transition_time, Some(Time(now())));
        }
        assert_eq!(condition(&pod, "Initialized").status, "True");
    }

    #[test]
    fn an_oom_kill_exits_137() {
        let pod = kwok_pod();
        let patch =
            crash_patch(&pod, CrashReason::OomKilled, Duration::from_secs(20), now()).unwrap();
        let pod = patched(&pod, &patch);
        let status = crashing_container_status(&pod).unwrap();
        let terminated = status
            .last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(terminated.exit_code, 137);
        assert_eq!(terminated.reason.as_deref(), Some("OOMKilled"));
    }

    #[test]
    fn a_restart_runs_the_container_again_and_keeps_the_last_state() {
        let crashed = patched(
            &kwok_pod(),
            &crash_patch(
                &kwok_pod(),
                CrashReason::Error,
                Duration::from_secs(10),
                now(),
            )
            .unwrap(),
        );
        let later: Timestamp = "2025-01-01T00:05:10Z".parse().unwrap();
        let pod = patched(&crashed, &restart_patch(&crashed, later).unwrap());
        let status = crashing_container_status(&pod).unwrap();
        assert!(status.ready);
        assert_eq!(status.restart_count, 1);
        assert_eq!(
            status
                .state
                .as_ref()
                .unwrap()
                .running
                .as_ref()
                .unwrap()
                .started_at,
            Some(Time(later))
        );
        assert!(status.state.as_ref().unwrap().waiting.is_none());
        assert_eq!(
            status
                .last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .finished_at,
            Some(Time(now()))
        );
        for type_ in ["Ready", "ContainersReady"] {
            let c = condition(&pod, type_);
            assert_eq!(c.status, "True");
            assert_eq!(c.reason, None);
            assert_eq!(c.last_transition_time, Some(Time(later)));
        }

        // A second crash counts on from the pod's restartCount.
        let again = patched(
            &pod,
            &crash_patch(&pod, CrashReason::Error, Duration::from_secs(20), later).unwrap(),
        );
        assert_eq!(crashing_container_status(&again).unwrap().restart_count, 2);
    }

    #[test]
    fn a_pod_without_container_status_is_reported_not_patched() {
        let mut pod = kwok_pod();
        pod.status = None;
        assert_eq!(
            crash_patch(&pod, CrashReason::Error, Duration::from_secs(10), now()),
            Err(StatusError::NoContainerStatus {
                pod: "ns/shop-abc".into(),
                container: "app".into()
            })
        );
        pod.spec = None;
        assert!(matches!(
            restart_patch(&pod, now()),
            Err(StatusError::NoContainers { .. })
        ));
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        let cases = [
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(160), "2m40s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
        ];
        for (d, text) in cases {
            assert_eq!(go_duration(d), text);
        }
    }
}
