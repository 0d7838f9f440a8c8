//! Revisions: ReplicaSets of a Rollout, identified by their pod-template-hash.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::{
    ARM_LABEL, POD_TEMPLATE_HASH_LABEL, PROMOTED_ANNOTATION, REVISION_ANNOTATION, ROLLOUT_LABEL,
    Rollout,
};

/// The characters Kubernetes uses for generated name suffixes (no vowels, no look-alikes), as in
/// apimachinery's `rand.SafeEncodeString`.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The pod-template-hash of `rollout`'s revision running `template`: FNV-1a (64 bit) over the
/// Rollout's name and the template's canonical JSON (object keys sorted), written as 10
/// characters of `SAFE_ALPHABET` (Kubernetes' own alphabet for generated names).
///
/// The Rollout's name is part of it so that two Rollouts of one namespace with the same template
/// get different revisions: analysis selects an arm's pods by `pod_template_hash`, and a shared
/// hash would make each judge the other's requests too. (A Deployment reaches the same end with a
/// collision count.) Kubernetes hashes a Go-specific dump of the template, which cannot be
/// reproduced outside Go; the value only has to be stable for the same Rollout and template and
/// differ otherwise, which this is.
pub fn template_hash(rollout: &str, template: &PodTemplateSpec) -> String {
    // serde_json's Map is a BTreeMap (no `preserve_order` feature), so keys are sorted.
    let canonical =
        serde_json::to_vec(&serde_json::to_value(template).unwrap_or_default()).unwrap_or_default();
    let mut input = Vec::with_capacity(rollout.len() + 1 + canonical.len());
    input.extend_from_slice(rollout.as_bytes());
    // A NUL cannot occur in a Kubernetes name, so name and template never run into each other.
    input.push(0);
    input.extend_from_slice(&canonical);
    encode_hash(fnv1a(&input))
}

/// The pod-template-hash of the baseline ReplicaSet that runs the stable revision `stable_hash`
/// next to a canary: different from the stable's own, so its pods are counted apart.
pub fn baseline_hash(stable_hash: &str) -> String {
    encode_hash(fnv1a(format!("{stable_hash}/baseline").as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn encode_hash(mut value: u64) -> String {
    let base = SAFE_ALPHABET.len() as u64;
    (0..10)
        .map(|_| {
            let c = SAFE_ALPHABET[(value % base) as usize] as char;
            value /= base;
            c
        })
        .collect()
}

/// What a ReplicaSet is to its Rollout right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// Runs the revision that serves production (or used to, or may become).
    Revision,
    /// A baseline: the stable template under its own hash, sized like the canary.
    Baseline,
}

/// A Rollout's ReplicaSet, summarised for the decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Revision {
    /// ReplicaSet name.
    pub name: String,
    /// Its pod-template-hash.
    pub hash: String,
    /// Revision number (1, 2, …); 0 if the annotation is missing.
    pub number: u64,
    /// `spec.replicas`.
    pub desired: i32,
    /// `status.replicas`: pods that exist.
    pub current: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
    /// `status.terminatingReplicas`: pods shutting down, still serving their last requests.
    pub terminating: i32,
    /// `status.availableReplicas`, never counted above `desired`.
    pub available: i32,
    /// When it was promoted to stable, if it ever was.
    pub promoted_at: Option<String>,
    /// Revision or baseline.
    pub arm: Arm,
    /// The pod template it runs (labels included).
    pub template: PodTemplateSpec,
}

impl Revision {
    /// Summarises a ReplicaSet; `None` if it has no pod-template-hash label (not ours to manage).
    pub fn from_replica_set(rs: &ReplicaSet) -> Option<Revision> {
        let labels = rs.labels();
        let hash = labels.get(POD_TEMPLATE_HASH_LABEL)?.clone();
        let spec = rs.spec.as_ref()?;
        let status = rs.status.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let arm = if labels.get(ARM_LABEL).map(String::as_str) == Some("baseline") {
            Arm::Baseline
        } else {
            Arm::Revision
        };
        Some(Revision {
            name: rs.name_any(),
            hash,
            number: rs
                .annotations()
                .get(REVISION_ANNOTATION)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            desired,
            current: status.replicas,
            ready: status.ready_replicas.unwrap_or(0),
            terminating: status.terminating_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0).min(desired),
            promoted_at: rs.annotations().get(PROMOTED_ANNOTATION).cloned(),
            arm,
            template: spec.template.clone().unwrap_or_default(),
        })
    }
}

/// A ReplicaSet as the decision wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredReplicaSet {
    /// ReplicaSet name: `<rollout>-<hash>`.
    pub name: String,
    /// Its pod-template-hash.
    pub hash: String,
    /// Revision number.
    pub number: u64,
    /// `spec.replicas`.
    pub replicas: i32,
    /// Pod template, without the labels Firebreak adds (they are added by [`build_replica_set`]).
    pub template: PodTemplateSpec,
    /// Promotion time (RFC 3339) once it has been stable.
    pub promoted_at: Option<String>,
    /// Revision or baseline.
    pub arm: Arm,
}

/// Name of the ReplicaSet of `rollout` with `hash`.
pub fn replica_set_name(rollout: &str, hash: &str) -> String {
    // ReplicaSet names may be 253 characters but pod names derived from them should leave room
    // for the 6-character suffix within 63 for readability in tools; Deployments do the same.
    let prefix: String = rollout.chars().take(52).collect();
    format!("{prefix}-{hash}")
}

/// Builds the full ReplicaSet object for server-side apply: labels, owner reference, selector.
pub fn build_replica_set(rollout: &Rollout, desired: &DesiredReplicaSet) -> ReplicaSet {
    let rollout_name = rollout.name_any();
    let mut selector_labels: BTreeMap<String, String> = rollout
        .spec
        .selector
        .match_labels
        .clone()
        .unwrap_or_default();
    selector_labels.insert(POD_TEMPLATE_HASH_LABEL.into(), desired.hash.clone());

    let mut template = desired.template.clone();
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let pod_labels = meta.labels.get_or_insert_with(BTreeMap::new);
    pod_labels.insert(POD_TEMPLATE_HASH_LABEL.into(), desired.hash.clone());
    pod_labels.insert(ROLLOUT_LABEL.into(), rollout_name.clone());
    let mut rs_labels = pod_labels.clone();
    if desired.arm == Arm::Baseline {
        pod_labels.insert(ARM_LABEL.into(), "baseline".into());
        rs_labels.insert(ARM_LABEL.into(), "baseline".into());
    } else {
        pod_labels.remove(ARM_LABEL);
        rs_labels.remove(ARM_LABEL);
    }

    let mut annotations =
        BTreeMap::from([(REVISION_ANNOTATION.to_string(), desired.number.to_string())]);
    if let Some(at) = &desired.promoted_at {
        annotations.insert(PROMOTED_ANNOTATION.into(), at.clone());
    }

    let owner = OwnerReference {
        api_version: Rollout::api_version(&()).into_owned(),
        kind: Rollout::kind(&()).into_owned(),
        name: rollout_name,
        uid: rollout.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };

    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: rollout.namespace(),
            labels: Some(rs_labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(desired.replicas),
            min_ready_seconds: None,
            selector: LabelSelector {
                match_labels: Some(selector_labels),
                match_expressions: None,
            },
            template: Some(template),
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]}
        }))
        .unwrap()
    }

    #[test]
    fn hash_is_stable_and_distinguishes_templates() {
        let a = template_hash("web", &template("web:1"));
        assert_eq!(a, template_hash("web", &template("web:1")));
        assert_ne!(a, template_hash("web", &template("web:2")));
        assert_eq!(a.len(), 10);
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_ne!(baseline_hash(&a), a);
    }

    #[test]
    fn two_rollouts_with_one_template_get_different_revisions() {
        let web = template("web:1");
        assert_ne!(
            template_hash("checkout", &web),
            template_hash("checkout-eu", &web)
        );
        assert_ne!(template_hash("a", &web), template_hash("", &web));
    }
}
