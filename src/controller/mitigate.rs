//! Mitigation side effects beyond ReplicaSets: the kill switch (flipped before traffic moves
//! back, never flipped back by Firebreak itself) and `firebreak restore-flag`.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::api::{KillSwitch, MitigationAction};

use super::FIELD_MANAGER;

/// Annotation prefix recording a flag's value before Firebreak flipped it; the rest of the key
/// is the ConfigMap key (or, on a FeatureFlag, the flag name).
pub const PREVIOUS_VALUE_ANNOTATION: &str = "firebreak.dev/previous-value.";

/// The OpenFeature `FeatureFlag` kind.
pub fn feature_flag_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("core.openfeature.dev", "v1beta1", "FeatureFlag"),
        "featureflags",
    )
}

fn action(name: &str, detail: String) -> MitigationAction {
    MitigationAction {
        time: Time(Timestamp::now()),
        action: name.to_string(),
        detail,
    }
}

/// The annotation that records the value `key` had before Firebreak flipped it.
fn previous_annotation(key: &str) -> String {
    format!("{PREVIOUS_VALUE_ANNOTATION}{key}")
}

/// Annotations to merge when flipping `key`, whose value was `before`: the record of that value,
/// unless one exists already (a repeated flip keeps the original).
fn record_previous(
    annotations: &std::collections::BTreeMap<String, String>,
    key: &str,
    before: Option<&str>,
) -> serde_json::Map<String, serde_json::Value> {
    let annotation = previous_annotation(key);
    let mut record = serde_json::Map::new();
    if !annotations.contains_key(&annotation) {
        record.insert(annotation, json!(before.unwrap_or_default()));
    }
    record
}

/// Sets every flag of `kill_switch` to its safe value, recording the previous value in an
/// annotation (only the first time, so a repeated flip keeps the original). Returns one action
/// per flag; a failure is an action too (`KillSwitchFailed`) and never stops the rollback.
pub async fn flip(
    client: &Client,
    namespace: &str,
    kill_switch: &KillSwitch,
) -> Vec<MitigationAction> {
    let mut actions = Vec::new();
    if let Some(flag) = &kill_switch.config_map {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let result = async {
            let current = api.get(&flag.name).await?;
            let before = current
                .data
                .as_ref()
                .and_then(|d| d.get(&flag.key))
                .cloned();
            let annotations = record_previous(current.annotations(), &flag.key, before.as_deref());
            let patch =
                json!({"metadata": {"annotations": annotations}, "data": {&flag.key: &flag.value}});
            api.patch(
                &flag.name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&patch),
            )
            .await?;
            Ok::<_, kube::Error>(before)
        }
        .await;
        actions.push(match result {
            Ok(before) => action(
                "KillSwitchFlipped",
                format!(
                    "ConfigMap {} key {}: {:?} → {:?}",
                    flag.name,
                    flag.key,
                    before.unwrap_or_default(),
                    flag.value
                ),
            ),
            Err(e) => action(
                "KillSwitchFailed",
                format!("ConfigMap {} key {}: {e}", flag.name, flag.key),
            ),
        });
    }
    if let Some(flag) = &kill_switch.feature_flag {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &feature_flag_resource());
        let result = async {
            let current = api.get(&flag.name).await?;
            let before = current
                .data
                .pointer(&format!(
                    "/spec/flagSpec/flags/{}/defaultVariant",
                    flag.flag
                ))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let annotations = record_previous(current.annotations(), &flag.flag, before.as_deref());
            let patch = json!({
                "metadata": {"annotations": annotations},
                "spec": {"flagSpec": {"flags": {&flag.flag: {"defaultVariant": &flag.variant}}}}
            });
            api.patch(
                &flag.name,
                &PatchParams::apply(FIELD_MANAGER),
                &Patch::Merge(&patch),
            )
            .await?;
            Ok::<_, kube::Error>(before)
        }
        .await;
        actions.push(match result {
            Ok(before) => action(
                "KillSwitchFlipped",
                format!(
                    "FeatureFlag {} flag {}: default variant {:?} → {:?}",
                    flag.name,
                    flag.flag,
                    before.unwrap_or_default(),
                    flag.variant
                ),
            ),
            Err(kube::Error::Api(e)) if e.code == 404 => action(
                "KillSwitchFailed",
                format!(
                    "FeatureFlag {}: not found (is the OpenFeature operator's CRD installed?)",
                    flag.name
                ),
            ),
            Err(e) => action(
                "KillSwitchFailed",
                format!("FeatureFlag {}: {e}", flag.name),
            ),
        });
    }
    actions
}

/// Restores every flag of `kill_switch` to the value recorded before Firebreak flipped it, and
/// removes the record. Returns a sentence per flag. Errors when a flag was never flipped.
pub async fn restore(
    client: &Client,
    namespace: &str,
    kill_switch: &KillSwitch,
) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    if let Some(flag) = &kill_switch.config_map {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let current = api.get(&flag.name).await?;
        let annotation = previous_annotation(&flag.key);
        let Some(previous) = current.annotations().get(&annotation).cloned() else {
            anyhow::bail!(
                "ConfigMap {} has no {annotation} annotation: Firebreak never flipped key {}",
                flag.name,
                flag.key
            );
        };
        let patch = json!({"metadata": {"annotations": {&annotation: null}}, "data": {&flag.key: &previous}});
        api.patch(
            &flag.name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await?;
        done.push(format!(
            "ConfigMap {} key {} restored to {previous:?}",
            flag.name, flag.key
        ));
    }
    if let Some(flag) = &kill_switch.feature_flag {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &feature_flag_resource());
        let current = api.get(&flag.name).await?;
        let annotation = previous_annotation(&flag.flag);
        let Some(previous) = current.annotations().get(&annotation).cloned() else {
            anyhow::bail!(
                "FeatureFlag {} has no {annotation} annotation: Firebreak never flipped flag {}",
                flag.name,
                flag.flag
            );
        };
        let patch = json!({
            "metadata": {"annotations": {&annotation: null}},
            "spec": {"flagSpec": {"flags": {&flag.flag: {"defaultVariant": &previous}}}}
        });
        api.patch(
            &flag.name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await?;
        done.push(format!(
            "FeatureFlag {} flag {} default variant restored to {previous:?}",
            flag.name, flag.flag
        ));
    }
    Ok(done)
}
