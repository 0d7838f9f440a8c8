//! The `stable`, `canary` and `baseline` Services of a routed Rollout: each selects the Rollout's
//! pods of one revision (its `pod-template-hash`). A missing Service is created from the pod
//! template's container ports and owned by the Rollout; an existing one keeps everything but
//! its selector, of which Firebreak owns only the keys it sets (server-side apply).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};

use super::RouterError;
use crate::api::{FIELD_MANAGER, POD_TEMPLATE_HASH_LABEL, Rollout};

/// One Service and the revision it should select.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTarget {
    /// The Service's name, in the Rollout's namespace.
    pub name: String,
    /// The `pod-template-hash` its selector names.
    pub hash: String,
}

/// The selector a Service of `rollout` needs for revision `hash`: the Rollout's
/// `spec.selector.matchLabels` plus `pod-template-hash`.
pub fn selector(rollout: &Rollout, hash: &str) -> BTreeMap<String, String> {
    let mut selector = rollout
        .spec
        .selector
        .match_labels
        .clone()
        .unwrap_or_default();
    selector.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.into());
    selector
}

/// The ports of a Service created for `rollout`: one per container port of its pod template,
/// same number and protocol, named after the port's name (or `port-N`).
pub fn ports(rollout: &Rollout) -> Vec<Value> {
    let containers = rollout
        .spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| {
            json!({
                "name": p.name.clone().unwrap_or_else(|| format!("port-{}", p.container_port)),
                "port": p.container_port,
                "targetPort": p.container_port,
                "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            })
        })
        .collect()
}

/// Points each Service of `targets` at its revision, creating it when absent. Writes only what
/// differs; returns the names of the Services created.
///
/// # Errors
/// A [`RouterError`] naming the Service, when it cannot be read or written, or when it must be
/// created and the pod template declares no container port.
pub async fn point(
    client: &Client,
    rollout: &Rollout,
    targets: &[ServiceTarget],
) -> Result<Vec<String>, RouterError> {
    let namespace = rollout.namespace().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let error = |name: &str, message: String| RouterError {
        router: super::gateway::NAME,
        message: format!("Service {name} (namespace {namespace}): {message}"),
    };
    let mut created = Vec::new();
    for target in targets {
        let wanted = selector(rollout, &target.hash);
        let current = api
            .get_opt(&target.name)
            .await
            .map_err(|e| error(&target.name, format!("cannot read it: {e}")))?;
        let mut object = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": target.name, "namespace": namespace},
            "spec": {"selector": wanted},
        });
        match &current {
            Some(service) => {
                let selected = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| wanted.iter().all(|(k, v)| s.get(k) == Some(v)));
                if selected {
                    continue;
                }
                // A merge patch of the selector only: an apply of just the selector would drop
                // the ports Firebreak set when it created the Service (fields a field manager
                // no longer applies are removed).
                let patch = json!({"spec": {"selector": wanted}});
                api.patch(
                    &target.name,
                    &PatchParams::apply(FIELD_MANAGER),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| error(&target.name, format!("cannot write it: {e}")))?;
                continue;
            }
            None => {
                let ports = ports(rollout);
                if ports.is_empty() {
                    return Err(error(
                        &target.name,
                        "does not exist, and the pod template declares no containerPort to create it from; create the Service, or add ports to spec.template's containers".into(),
                    ));
                }
                object["spec"]["ports"] = Value::Array(ports);
                object["metadata"]["labels"] =
                    json!({crate::api::ROLLOUT_LABEL: rollout.name_any()});
                if let Some(owner) = rollout.controller_owner_ref(&()) {
                    object["metadata"]["ownerReferences"] = json!([owner]);
                }
                created.push(target.name.clone());
            }
        }
        api.patch(
            &target.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .map_err(|e| error(&target.name, format!("cannot write it: {e}")))?;
    }
    Ok(created)
}
