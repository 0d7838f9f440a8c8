//! Notification receivers in the spec (`spec.notifications`): webhooks and where their URLs are
//! kept.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A notification receiver.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// A name for status and Events, unique among the Rollout's notifications.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// A webhook receiver.
    pub webhook: Webhook,
}

/// A webhook receiver whose URL is kept in a Secret.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Payload format: `slack` or `json`.
    pub format: WebhookFormat,
    /// Where the URL is read from.
    pub url_from: UrlSource,
}

/// The payload a webhook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// A Slack incoming-webhook message (`{"text": …}`).
    Slack,
    /// Firebreak's own JSON document: the event, the rollout, the revision and the incident.
    Json,
}

/// Source of a webhook URL.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UrlSource {
    /// A key of a Secret in the Rollout's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the Secret's data.
    pub key: String,
}
