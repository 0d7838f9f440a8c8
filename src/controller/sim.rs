//! Test fixtures for the decision: a Rollout builder and a tiny in-memory "cluster" that applies
//! plans the way the API server and the ReplicaSet controller would, so decision tests read as
//! sentences: `Rollout::test().with_steps(..)` then `cluster.set_image("web:2").settle()`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::ObjectMeta;
use serde_json::json;

use crate::api::{
    CanaryStrategy, Pause, REQUEST_ANNOTATION_PREFIX, Rollout, RolloutSpec, Step, Strategy,
};

use super::decide::{Observed, Plan, decide};
use super::revisions::{Arm, Revision, template_hash};
use super::validate::validate;

/// A setWeight step.
pub fn weight(w: i32) -> Step {
    Step {
        set_weight: Some(w),
        ..Step::default()
    }
}

/// A pause step; `None` waits for promote.
pub fn pause(duration: Option<&str>) -> Step {
    Step {
        pause: Some(Pause {
            duration: duration.map(Into::into),
        }),
        ..Step::default()
    }
}

fn template(image: &str) -> PodTemplateSpec {
    serde_json::from_value(json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": image}]}
    }))
    .expect("valid template")
}

/// Builders for test Rollouts.
pub trait TestRollout: Sized {
    /// A Rollout `web` in namespace `test`: 10 replicas of `web:1`, steps 10% → pause → 50% → pause 30s.
    fn test() -> Self;
    /// Sets the canary steps.
    fn with_steps(self, steps: Vec<Step>) -> Self;
    /// Sets `spec.strategy.canary.baseline`.
    fn with_baseline(self) -> Self;
    /// Sets `spec.revisionHistoryLimit`.
    fn with_history_limit(self, limit: i32) -> Self;
    /// Routes with a managed HTTPRoute over Services `web-stable` and `web-canary` (and
    /// `web-baseline`).
    fn with_router(self) -> Self;
    /// Adds an error-rate analysis with `analysis.onInconclusive` = `on_inconclusive`.
    fn with_analysis(self, on_inconclusive: crate::api::OnInconclusive) -> Self;
}

impl TestRollout for Rollout {
    fn test() -> Self {
        let spec = RolloutSpec {
            replicas: 10,
            selector: serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap(),
            template: template("web:1"),
            revision_history_limit: None,
            progress_deadline_seconds: None,
            paused: false,
            strategy: Strategy {
                canary: CanaryStrategy {
                    baseline: false,
                    steps: vec![weight(10), pause(None), weight(50), pause(Some("30s"))],
                    max_duration: None,
                    traffic_routing: None,
                    abort_scale_down_delay_seconds: None,
                },
            },
            analysis: None,
            bake: None,
            windows: None,
            kill_switch: None,
            notifications: vec![],
        };
        let mut rollout = Rollout::new("web", spec);
        rollout.metadata = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("test".into()),
            uid: Some("uid-web".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        };
        rollout
    }

    fn with_steps(mut self, steps: Vec<Step>) -> Self {
        self.spec.strategy.canary.steps = steps;
        self
    }

    fn with_baseline(mut self) -> Self {
        self.spec.strategy.canary.baseline = true;
        self
    }

    fn with_analysis(mut self, on_inconclusive: crate::api::OnInconclusive) -> Self {
        self.spec.analysis = Some(
            serde_json::from_value(json!({
                "interval": "30s",
                "onInconclusive": on_inconclusive,
                "metrics": [{"name": "http-errors", "errorRate": {"prometheus": {
                    "address": "http://prometheus:9090", "errors": "e", "total": "t"}}}]
            }))
            .unwrap(),
        );
        self
    }

    fn with_router(mut self) -> Self {
        self.spec.strategy.canary.traffic_routing = Some(
            serde_json::from_value(json!({
                "services": {"stable": "web-stable", "canary": "web-canary", "baseline": "web-baseline"},
                "gatewayAPI": {"httpRoute": {"spec": {
                    "parentRefs": [{"name": "gw"}],
                    "rules": [{"name": "main", "backendRefs": [{"name": "web-stable", "port": 8080}]}]
                }}}
            }))
            .expect("valid trafficRouting"),
        );
        self
    }

    fn with_history_limit(mut self, limit: i32) -> Self {
        self.spec.revision_history_limit = Some(limit);
        self
    }
}

/// An in-memory cluster: the Rollout, its ReplicaSets, and the clock.
pub struct Cluster {
    /// The Rollout, with the status of the last plan applied.
    pub rollout: Rollout,
    /// ReplicaSets by hash (revision and baseline arms).
    pub revisions: Vec<Revision>,
    /// The clock.
    pub now: Timestamp,
    /// Hashes whose pods never become available (unschedulable, crash on start…).
    pub broken: Vec<String>,
    /// Every plan applied, oldest first.
    pub plans: Vec<Plan>,
    /// What canary analysis reports to the next decisions (None: no analysis).
    pub analysis: Option<super::analysis::AnalysisInput>,
    /// The deployment window (None: no windows).
    pub window: Option<super::decide::WindowGate>,
    /// Pods of a scaled-down ReplicaSet keep running until the next [`Cluster::pods_start`]
    /// (graceful shutdown), instead of vanishing at once.
    pub slow_shutdown: bool,
    nonce: u64,
    /// The Incident the next decision sees (the second-wave check).
    pub incident: Option<crate::api::Incident>,
    /// The second-wave measurement the next decision sees.
    pub second_wave: Option<Result<firebreak_judge::Counts, String>>,
    /// What the routes carry, as the next decision observes it (a routed Rollout).
    pub traffic: Option<Result<crate::traffic::TrafficObservation, String>>,
    /// The gateway: after each plan the routes carry its weights, and the gateway accepts them
    /// when this is `Ok`, or reports the error.
    pub gateway: Result<(), String>,
}

impl Cluster {
    /// A cluster holding `rollout`, at a fixed time.
    pub fn new(rollout: Rollout) -> Cluster {
        Cluster {
            rollout,
            revisions: Vec::new(),
            now: "2026-11-21T10:00:00Z".parse().unwrap(),
            broken: Vec::new(),
            plans: Vec::new(),
            analysis: None,
            window: None,
            slow_shutdown: false,
            nonce: 0,
            incident: None,
            second_wave: None,
            traffic: None,
            gateway: Ok(()),
        }
    }

    /// Runs one decision and applies its plan; pods are *not* made available.
    pub fn decide(&mut self) -> Plan {
        let spec = validate(&self.rollout.spec).expect("test spec is valid");
        let plan = decide(&Observed {
            rollout: &self.rollout,
            spec: &spec,
            revisions: &self.revisions,
            now: self.now,
            analysis: self.analysis.as_ref(),
            window: self.window.clone(),
            incident: self.incident.as_ref(),
            second_wave: self.second_wave.as_ref(),
            traffic: self.traffic.as_ref(),
        });
        // The router writes the planned routing; the gateway accepts it, or not.
        if let Some(traffic) = &plan.status.traffic {
            self.traffic = Some(Ok(crate::traffic::TrafficObservation {
                carried: Some((traffic.weights, traffic.header_route.clone())),
                accepted: self.gateway.clone(),
                changed_by: None,
            }));
        }
        // As the shell does: the second-wave state goes to the Incident's status.
        if let (Some(wave), Some(incident)) = (&plan.second_wave, self.incident.as_mut()) {
            incident
                .status
                .get_or_insert_with(Default::default)
                .second_wave = Some(wave.clone());
        }
        for desired in &plan.replica_sets {
            match self
                .revisions
                .iter_mut()
                .find(|r| r.hash == desired.hash && r.arm == desired.arm)
            {
                Some(r) => {
                    r.desired = desired.replicas;
                    r.number = desired.number;
                    r.promoted_at = desired.promoted_at.clone();
                    // Scaling down removes pods at once, or (slow shutdown) they terminate
                    // until the next `pods_start`.
                    if self.slow_shutdown {
                        r.terminating += (r.current - desired.replicas).max(0);
                    }
                    r.current = r.current.min(desired.replicas);
                    r.ready = r.ready.min(desired.replicas);
                    r.available = r.available.min(desired.replicas);
                }
                None => self.revisions.push(Revision {
                    name: desired.name.clone(),
                    hash: desired.hash.clone(),
                    number: desired.number,
                    desired: desired.replicas,
                    current: 0,
                    ready: 0,
                    terminating: 0,
                    available: 0,
                    promoted_at: desired.promoted_at.clone(),
                    arm: desired.arm,
                    template: desired.template.clone(),
                }),
            }
        }
        self.revisions.retain(|r| !plan.delete.contains(&r.name));
        self.rollout.status = Some(plan.status.clone());
        self.plans.push(plan.clone());
        plan
    }

    /// The ReplicaSet controller and kubelet: every pod wanted exists and, unless its revision is
    /// broken, is available.
    pub fn pods_start(&mut self) {
        for r in &mut self.revisions {
            r.current = r.desired;
            r.terminating = 0;
            if !self.broken.contains(&r.hash) {
                r.ready = r.desired;
                r.available = r.desired;
            }
        }
    }

    /// Decides and starts pods until nothing changes any more (at most 50 rounds); returns self.
    pub fn settle(&mut self) -> &mut Self {
        for _ in 0..50 {
            let before = (self.rollout.status.clone(), self.revisions.clone());
            self.decide();
            self.pods_start();
            if (self.rollout.status.clone(), self.revisions.clone()) == before {
                break;
            }
        }
        self
    }

    /// Changes the image in the template (a new revision).
    pub fn set_image(&mut self, image: &str) -> &mut Self {
        self.rollout.spec.template = template(image);
        self.rollout.metadata.generation = Some(self.rollout.metadata.generation.unwrap_or(1) + 1);
        self
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, seconds: i64) -> &mut Self {
        self.now = self
            .now
            .checked_add(SignedDuration::from_secs(seconds))
            .unwrap();
        self
    }

    /// A user request (`promote`, `promote-full`, `abort`, `retry`) with a fresh nonce.
    pub fn request(&mut self, verb: &str) -> &mut Self {
        self.nonce += 1;
        self.rollout
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                format!("{REQUEST_ANNOTATION_PREFIX}{verb}"),
                format!("n{}", self.nonce),
            );
        self
    }

    /// Makes canary analysis report `gate` about the current canary (or, without one, the baked
    /// stable revision) from now on.
    pub fn analysis_says(&mut self, gate: crate::analysis::assess::Gate) -> &mut Self {
        let status = self.status();
        let revision = status
            .canary_revision
            .or_else(|| status.bake.map(|b| b.revision))
            .unwrap_or_default();
        self.analysis = Some(super::analysis::AnalysisInput {
            status: crate::api::AnalysisStatus {
                revision,
                outcome: Some(gate.outcome()),
                message: Some(gate.message().into()),
                // An outage, not one late scrape.
                consecutive_failures: if matches!(
                    gate,
                    crate::analysis::assess::Gate::Unavailable(_)
                ) {
                    super::decide::UNAVAILABLE_AFTER_LOOKS
                } else {
                    0
                },
                ..Default::default()
            },
            gate,
            next_look: std::time::Duration::from_secs(30),
        });
        self
    }

    /// Hash of the template with `image`, for the Rollout `web` of [`TestRollout::test`].
    pub fn hash_of(image: &str) -> String {
        template_hash("web", &template(image))
    }

    /// Desired replicas of the revision running `image` (0 if it has no ReplicaSet).
    pub fn pods(&self, image: &str) -> i32 {
        let hash = Self::hash_of(image);
        self.revisions
            .iter()
            .find(|r| r.arm == Arm::Revision && r.hash == hash)
            .map_or(0, |r| r.desired)
    }

    /// Desired replicas of the baseline ReplicaSet (0 if none).
    pub fn baseline_pods(&self) -> i32 {
        self.revisions
            .iter()
            .filter(|r| r.arm == Arm::Baseline)
            .map(|r| r.desired)
            .sum()
    }

    /// The status of the last plan.
    pub fn status(&self) -> crate::api::RolloutStatus {
        self.rollout.status.clone().unwrap_or_default()
    }

    /// Reasons of the timeline, oldest first.
    pub fn timeline(&self) -> Vec<String> {
        self.status()
            .timeline
            .iter()
            .map(|e| e.reason.to_string())
            .collect()
    }
}
