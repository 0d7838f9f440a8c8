//! Counting the controller's own requests to the Kubernetes API, by Kubernetes verb and resource,
//! into `firebreak_kube_requests_total` ([`Metrics::record_kube_request`]).
//!
//! The count is taken in a tower layer outside kube's whole stack, so it sees each call the code
//! makes once: a request kube retries internally counts once, and a watch counts once when it is
//! opened (every re-watch of a watcher counts again), however long it then streams.

use axum::http::{Method, Request, Uri};
use kube::client::{Body, ClientBuilder};
use tower::util::MapRequestLayer;

use super::Metrics;

/// The `resource` label of a request that names no resource: discovery (`/api`, `/apis/GROUP`),
/// `/version`, `/openapi/…` and the like.
pub const NON_RESOURCE: &str = "nonresource";

/// A kube client built from `config` (as `Client::try_from(config)` builds it) whose every request
/// is counted in `metrics` under `firebreak_kube_requests_total{verb,resource}`.
///
/// Errors as `Client::try_from` does (a TLS or auth setting it cannot use).
pub fn counted_client(config: kube::Config, metrics: &Metrics) -> kube::Result<kube::Client> {
    let metrics = metrics.clone();
    let count = MapRequestLayer::new(move |request: Request<Body>| {
        let (verb, resource) = classify(request.method(), request.uri());
        metrics.record_kube_request(verb, &resource);
        request
    });
    Ok(ClientBuilder::try_from(config)?.with_layer(&count).build())
}

/// The Kubernetes verb and resource of an API request, as the API server's own request info
/// (`k8s.io/apiserver/pkg/endpoints/request.RequestInfoFactory`) derives them:
///
/// - the path is `/api/VERSION/…` (core group) or `/apis/GROUP/VERSION/…`, then
///   `[namespaces/NAMESPACE/]RESOURCE[/NAME[/SUBRESOURCE]]`; the resource label is `RESOURCE`, or
///   `RESOURCE/SUBRESOURCE` as RBAC writes it (`rollouts/status`); a path that names no resource
///   is [`NON_RESOURCE`];
/// - `GET` is `watch` with a `watch` query parameter other than `false`/`0`, else `get` when the
///   path names an object and `list` when it does not; `POST` is `create`, `PUT` `update`,
///   `PATCH` `patch`, `DELETE` `delete` (one object) or `deletecollection`; any other method is
///   its lowercase name only for `head`/`options`, else `other`.
pub fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let after_version: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] | ["apis", _, _version, rest @ ..] => rest,
        _ => &[],
    };
    // `namespaces/NS/status` and `namespaces/NS/finalize` are subresources of the Namespace;
    // any other third segment is a namespaced resource.
    let object_path: &[&str] = match after_version {
        ["namespaces", _, next, ..] if !matches!(*next, "status" | "finalize") => {
            &after_version[2..]
        }
        other => other,
    };
    let (resource, named) = match object_path {
        [] => (NON_RESOURCE.to_string(), false),
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, subresource, ..] => (format!("{resource}/{subresource}"), true),
    };
    let watch = uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            key == "watch" && !matches!(value.to_ascii_lowercase().as_str(), "false" | "0")
        })
    });
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        Method::HEAD => "head",
        Method::OPTIONS => "options",
        _ => "other",
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classified(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().expect("a valid URI"))
    }

    #[test]
    fn every_request_the_controller_makes_is_named_by_verb_and_resource() {
        let rollouts = "/apis/firebreak.dev/v1alpha1/namespaces/shop/rollouts";
        for (method, uri, verb, resource) in [
            // The watches of the Controller and its reflector: opened, then re-opened.
            (
                Method::GET,
                "/apis/firebreak.dev/v1alpha1/rollouts?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=42",
                "watch",
                "rollouts",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/replicasets?&watch=true&labelSelector=firebreak.dev%2Frollout",
                "watch",
                "replicasets",
            ),
            // The initial list of a watcher, and a reconcile's list of a Rollout's ReplicaSets.
            (
                Method::GET,
                "/apis/firebreak.dev/v1alpha1/rollouts?&limit=500",
                "list",
                "rollouts",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/replicasets?&labelSelector=firebreak.dev%2Frollout%3Dcheckout",
                "list",
                "replicasets",
            ),
            // `watch=false` is a list.
            (
                Method::GET,
                &format!("{rollouts}?watch=false"),
                "list",
                "rollouts",
            ),
            // A reconcile's fresh read, status write and ReplicaSet apply.
            (
                Method::GET,
                &format!("{rollouts}/checkout"),
                "get",
                "rollouts",
            ),
            (
                Method::PATCH,
                &format!("{rollouts}/checkout/status?&fieldManager=firebreak&force=true"),
                "patch",
                "rollouts/status",
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/shop/replicasets/checkout-5d9f?&fieldManager=firebreak",
                "patch",
                "replicasets",
            ),
            (
                Method::DELETE,
                "/apis/apps/v1/namespaces/shop/replicasets/checkout-5d9f",
                "delete",
                "replicasets",
            ),
            (
                Method::DELETE,
                "/apis/apps/v1/namespaces/shop/replicasets",
                "deletecollection",
                "replicasets",
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/shop/events?",
                "create",
                "events",
            ),
            (
                Method::POST,
                "/apis/firebreak.dev/v1alpha1/namespaces/shop/incidents?",
                "create",
                "incidents",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/firebreak/leases/firebreak-controller",
                "update",
                "leases",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/pods?&labelSelector=app",
                "list",
                "pods",
            ),
            // Namespaces: a cluster-scoped resource whose path looks like a namespaced one.
            (Method::GET, "/api/v1/namespaces/shop", "get", "namespaces"),
            (Method::GET, "/api/v1/namespaces", "list", "namespaces"),
            (
                Method::PUT,
                "/api/v1/namespaces/shop/finalize",
                "update",
                "namespaces/finalize",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/shop/status",
                "get",
                "namespaces/status",
            ),
            // Requests that name no resource.
            (
                Method::GET,
                "/apis/firebreak.dev/v1alpha1",
                "list",
                NON_RESOURCE,
            ),
            (Method::GET, "/version", "list", NON_RESOURCE),
        ] {
            assert_eq!(
                classified(method.clone(), uri),
                (verb, resource.to_string()),
                "{method} {uri}"
            );
        }
    }

    #[tokio::test]
    async fn a_counted_client_counts_what_it_sends() {
        let metrics = Metrics::new();
        // Nothing listens on port 9 (discard) of loopback: the request fails, but it was sent.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a valid URL"));
        let client = counted_client(config, &metrics).expect("a client for a plain-HTTP URL");
        let rollouts: kube::Api<crate::api::Rollout> = kube::Api::namespaced(client, "shop");
        let _ = rollouts.get("checkout").await;
        assert!(
            metrics
                .encode()
                .lines()
                .any(|l| l == r#"firebreak_kube_requests_total{verb="get",resource="rollouts"} 1"#),
            "{}",
            metrics.encode()
        );
    }
}
