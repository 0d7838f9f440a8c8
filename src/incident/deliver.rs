//! Delivering notifications: the webhook URL from its Secret, one POST with the idempotency key,
//! and the outcomes in the Incident's status. Which notifications to send, when to retry and when
//! to give up is decided by the controller's outbox (`controller::outbox`); this module only
//! does the I/O.
//!
//! Webhook URLs are secrets (a Slack incoming-webhook URL is its own credential): they are never
//! logged nor put into an error message, an Event or a status.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tracing::warn;

use super::message::{Message, json_payload, slack_payload, truncate};
use crate::api::{Incident, Notification, NotificationResult, WebhookFormat};

/// The header that carries a notification's idempotency key
/// ([`crate::api::PendingNotification::id`]): the same for every attempt, across restarts.
pub const DELIVERY_HEADER: &str = "X-Firebreak-Delivery";
/// Time one attempt may take, from connecting to the end of the answer's body.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most results kept in an Incident's `status.notifications`; the oldest are dropped first.
pub const NOTIFICATION_HISTORY_LIMIT: usize = 50;
/// Tries to write results into an Incident's status when others write at the same time.
const STATUS_CONFLICT_RETRIES: u32 = 5;
/// Most characters of a receiver's answer body quoted in an error.
const BODY_QUOTE_CHARS: usize = 200;

/// The payload of `message` in the receiver's `format`; JSON payloads also carry the
/// idempotency key as `delivery` (Slack's format has no place for it: it is in the header).
pub fn payload(
    format: WebhookFormat,
    message: &Message,
    incident: Option<&Incident>,
    delivery: &str,
) -> Value {
    match format {
        WebhookFormat::Slack => slack_payload(message),
        WebhookFormat::Json => {
            let mut value = json_payload(message, incident);
            value["delivery"] = json!(delivery);
            value
        }
    }
}

/// The webhook URL of `notification` from its Secret in `namespace`. Errors name the Secret and
/// key and say how to fix it, but never quote the value.
pub async fn webhook_url(
    client: &kube::Client,
    namespace: &str,
    notification: &Notification,
) -> Result<String, String> {
    let key_ref = &notification.webhook.url_from.secret_key_ref;
    let (secret, key) = (&key_ref.name, &key_ref.key);
    let create = format!(
        "kubectl create secret generic {secret} -n {namespace} --from-literal={key}=<webhook URL>"
    );
    let found = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(secret)
        .await;
    let secret_obj = match found {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(format!(
                "Secret {namespace}/{secret} not found; create it with `{create}`"
            ));
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Err(format!(
                "not allowed to read Secret {namespace}/{secret}: give Firebreak's ServiceAccount `get` on secrets in namespace {namespace}"
            ));
        }
        Err(e) => return Err(format!("cannot read Secret {namespace}/{secret}: {e}")),
    };
    let data = secret_obj.data.unwrap_or_default();
    let Some(value) = data.get(key) else {
        let keys = data.keys().cloned().collect::<Vec<_>>();
        return Err(format!(
            "Secret {namespace}/{secret} has no key {key:?} (its keys: {}); add it with `kubectl patch secret {secret} -n {namespace} --type merge -p '{{\"stringData\":{{\"{key}\":\"<webhook URL>\"}}}}'`",
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        ));
    };
    let url = std::str::from_utf8(&value.0)
        .map(str::trim)
        .map_err(|_| format!("Secret {namespace}/{secret} key {key:?} is not UTF-8 text"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "Secret {namespace}/{secret} key {key:?} does not hold an http:// or https:// URL"
        ));
    }
    Ok(url.to_string())
}

/// POSTs `payload` as JSON (`content-type: application/json`) to `url` once, with the idempotency
/// key `delivery` in the [`DELIVERY_HEADER`] header. The attempt may take [`ATTEMPT_TIMEOUT`].
///
/// # Errors
///
/// A non-2xx answer (`HTTP 500 Internal Server Error (body: "…")`), no answer in time, a
/// connection error, a payload that does not encode. Errors never contain the URL, which is a
/// secret for most webhooks.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    payload: &Value,
    delivery: &str,
) -> Result<(), String> {
    let body = serde_json::to_vec(payload).map_err(|e| format!("cannot encode payload: {e}"))?;
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, delivery)
        .timeout(ATTEMPT_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let answer = match response.bytes().await {
        Ok(bytes) if !bytes.is_empty() => format!(
            " (body: {:?})",
            truncate(String::from_utf8_lossy(&bytes).trim(), BODY_QUOTE_CHARS)
        ),
        _ => String::new(),
    };
    Err(format!("HTTP {status}{answer}"))
}

/// A transport error with its causes, without the URL.
fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs());
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Appends `results` to the Incident `namespace/name`'s `status.notifications` (read, append,
/// merge patch guarded by the resourceVersion), retrying on conflict; a missing Incident or
/// other error is logged.
pub async fn record_results(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    results: &[NotificationResult],
) {
    if results.is_empty() {
        return;
    }
    let api = Api::<Incident>::namespaced(client.clone(), namespace);
    let params = PatchParams {
        field_manager: Some(crate::api::FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    for _ in 0..STATUS_CONFLICT_RETRIES {
        let current = match api.get_opt(name).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                warn!(incident = %name, %namespace, "notification result not recorded: Incident not found");
                return;
            }
            Err(e) => {
                warn!(incident = %name, %namespace, error = %e, "notification result not recorded");
                return;
            }
        };
        let patch = json!({
            "metadata": {"resourceVersion": current.resource_version()},
            "status": {"notifications": appended(&current, results)},
        });
        match api.patch_status(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => return,
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                warn!(incident = %name, %namespace, "notification result not recorded: Incident not found");
                return;
            }
            Err(e) => {
                warn!(incident = %name, %namespace, error = %e, "notification result not recorded");
                return;
            }
        }
    }
    warn!(
        incident = %name,
        %namespace,
        "notification result not recorded: the Incident kept changing (conflicts)"
    );
}

/// The Incident's notification results with `results` appended, at most
/// [`NOTIFICATION_HISTORY_LIMIT`], oldest dropped first.
fn appended(incident: &Incident, results: &[NotificationResult]) -> Vec<NotificationResult> {
    let mut list = incident
        .status
        .as_ref()
        .map(|s| s.notifications.clone())
        .unwrap_or_default();
    list.extend_from_slice(results);
    let excess = list.len().saturating_sub(NOTIFICATION_HISTORY_LIMIT);
    list.drain(..excess);
    list
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::routing::post as route_post;

    use super::*;
    use crate::api::NotificationEvent;

    fn incident() -> Incident {
        serde_yaml::from_str(include_str!("../../tests/golden/incident.yaml"))
            .expect("tests/golden/incident.yaml is an Incident")
    }

    #[test]
    fn results_are_appended_and_bounded() {
        let mut i = incident();
        let r = NotificationResult {
            name: "oncall".into(),
            event: NotificationEvent::SecondWaveEnded,
            delivered: true,
            attempts: 1,
            error: None,
            time: None,
        };
        let list = appended(&i, std::slice::from_ref(&r));
        assert_eq!(list.len(), 3);
        assert_eq!(list[2], r);
        let old = NotificationResult {
            name: "old".into(),
            ..r.clone()
        };
        i.status.as_mut().unwrap().notifications = vec![old; 60];
        let list = appended(&i, std::slice::from_ref(&r));
        assert_eq!(list.len(), NOTIFICATION_HISTORY_LIMIT);
        assert_eq!(list.last(), Some(&r));
    }

    /// A receiver on 127.0.0.1 that answers the statuses in `answers` in turn (the last one
    /// forever after), counting requests and keeping the last body. Returns its URL.
    async fn receiver(
        answers: Vec<u16>,
    ) -> (
        String,
        Arc<AtomicU32>,
        Arc<std::sync::Mutex<Option<(String, String, Vec<u8>)>>>,
    ) {
        let hits = Arc::new(AtomicU32::new(0));
        let last = Arc::new(std::sync::Mutex::new(None));
        let (h, l) = (hits.clone(), last.clone());
        let app = Router::new().route(
            "/hook",
            route_post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (hits, last, answers) = (h.clone(), l.clone(), answers.clone());
                    async move {
                        let n = hits.fetch_add(1, Ordering::SeqCst) as usize;
                        let content_type = headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        let delivery = headers
                            .get(DELIVERY_HEADER)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string();
                        *last.lock().unwrap() = Some((content_type, delivery, body.to_vec()));
                        let code = answers[n.min(answers.len() - 1)];
                        (StatusCode::from_u16(code).unwrap(), "receiver says no")
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits, last)
    }

    #[tokio::test]
    async fn a_receiver_gets_the_json_and_the_idempotency_key() {
        let (url, hits, last) = receiver(vec![200]).await;
        let payload = json!({"text": "hello"});
        post(
            &reqwest::Client::new(),
            &url,
            &payload,
            "u-1.1700000000000.0",
        )
        .await
        .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let (content_type, delivery, body) = last.lock().unwrap().clone().unwrap();
        assert_eq!(content_type, "application/json");
        assert_eq!(delivery, "u-1.1700000000000.0");
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), payload);
    }

    #[tokio::test]
    async fn a_500_is_an_error_with_the_status_and_the_answer_but_not_the_url() {
        let (url, hits, _) = receiver(vec![500]).await;
        let error = post(&reqwest::Client::new(), &url, &json!({}), "k")
            .await
            .unwrap_err();
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(error.contains("HTTP 500 Internal Server Error"), "{error}");
        assert!(error.contains("receiver says no"), "{error}");
        assert!(!error.contains(&url), "the URL is a secret: {error}");
    }

    #[tokio::test]
    async fn an_unreachable_receiver_fails_without_naming_the_url() {
        // Bind and drop a listener: nothing listens on that port any more.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/secret-token", listener.local_addr().unwrap());
        drop(listener);
        let error = post(&reqwest::Client::new(), &url, &json!({}), "k")
            .await
            .unwrap_err();
        assert!(!error.contains("secret-token"), "{error}");
    }

    #[test]
    fn json_payloads_carry_the_key_and_slack_payloads_do_not() {
        let message = Message {
            event: NotificationEvent::Promoted,
            namespace: "shop".into(),
            rollout: "web".into(),
            revision: Some("abc".into()),
            text: "promoted".into(),
        };
        assert_eq!(
            payload(WebhookFormat::Json, &message, None, "k-1")["delivery"],
            "k-1"
        );
        assert!(
            payload(WebhookFormat::Slack, &message, None, "k-1")
                .get("delivery")
                .is_none()
        );
    }
}
