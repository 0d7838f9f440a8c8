//! What can go wrong in one reconciliation, one variant per kind of failure. Each kind has a
//! stable name ([`ErrorKind`]): the `kind` label of `firebreak_reconcile_errors_total`, the
//! `outcome` label of the reconcile histogram, and the reason of the Warning Event that reports it.

use std::time::Duration;

/// The kinds of [`Error`], as a closed set with stable names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading from the API server failed.
    KubeRead,
    /// Writing an object failed (not a refusal, not a conflict).
    KubeWrite,
    /// A write lost a race: the object changed since it was read.
    Conflict,
    /// The API server refused an object as invalid (HTTP 400 or 422).
    Refused,
    /// The namespace is being deleted.
    NamespaceTerminating,
    /// A Prometheus server could not answer.
    Prometheus,
    /// The Rollout's spec is invalid.
    InvalidSpec,
    /// The traffic router could not set a weight.
    Router,
    /// A notification could not be recorded or delivered.
    Notification,
}

impl ErrorKind {
    /// The stable name: metric label and Event reason.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::KubeRead => "KubeRead",
            ErrorKind::KubeWrite => "KubeWrite",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Refused => "ObjectRefused",
            ErrorKind::NamespaceTerminating => "NamespaceTerminating",
            ErrorKind::Prometheus => "PrometheusUnavailable",
            ErrorKind::InvalidSpec => "InvalidSpec",
            ErrorKind::Router => "RouterFailed",
            ErrorKind::Notification => "NotificationFailed",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of one reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading from the API server failed (retried after [`Error::retry_after`]).
    #[error("reading {what} failed: {source}")]
    KubeRead {
        /// What was read, e.g. `namespace shop`.
        what: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// Writing `object` failed for a reason other than a refusal or a conflict.
    #[error("writing {object} failed: {source}")]
    KubeWrite {
        /// The object, e.g. `ReplicaSet shop/checkout-bcd5f8x2k9`.
        object: String,
        /// The underlying error.
        #[source]
        source: kube::Error,
    },
    /// `object` changed since the controller read it (HTTP 409): decided on a stale copy, so
    /// nothing was written; retried at once with the newer copy.
    #[error("{object} changed since it was read; deciding again on the newer copy")]
    Conflict {
        /// The object.
        object: String,
    },
    /// The API server refused an object the rollout needs as invalid (HTTP 400 or 422), e.g. a
    /// pod-template annotation over the size limit. Reported in the Rollout's status and as an
    /// Event; retried slowly, since only a change of the spec can fix it.
    #[error("the API server refused {object}: {message}")]
    Refused {
        /// The object, e.g. `ReplicaSet checkout-bcd5f8x2k9`.
        object: String,
        /// The API server's message, which names the field.
        message: String,
    },
    /// The namespace is being deleted: nothing new is created in it.
    #[error("namespace {namespace} is being deleted; nothing new is created in it")]
    NamespaceTerminating {
        /// The namespace.
        namespace: String,
    },
    /// The Prometheus server at `address` could not answer a query.
    #[error("Prometheus at {address}: {message}")]
    Prometheus {
        /// The server's address, e.g. `http://prometheus.monitoring:9090`.
        address: String,
        /// What went wrong, naming the query.
        message: String,
    },
    /// The Rollout's spec is invalid; recorded as `Degraded` in its status. `message` names the
    /// field and the fix.
    #[error("invalid spec: {message}")]
    InvalidSpec {
        /// The validation message.
        message: String,
    },
    /// The traffic router `router` could not set the canary's weight.
    #[error("traffic router {router}: {message}")]
    Router {
        /// The router's name.
        router: String,
        /// What went wrong.
        message: String,
    },
    /// A notification to `receiver` could not be recorded or delivered.
    #[error("notification to {receiver}: {message}")]
    Notification {
        /// The receiver's name in `spec.notifications`.
        receiver: String,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// The kind: a stable name for metrics and Event reasons.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::KubeRead { .. } => ErrorKind::KubeRead,
            Error::KubeWrite { .. } => ErrorKind::KubeWrite,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Refused { .. } => ErrorKind::Refused,
            Error::NamespaceTerminating { .. } => ErrorKind::NamespaceTerminating,
            Error::Prometheus { .. } => ErrorKind::Prometheus,
            Error::InvalidSpec { .. } => ErrorKind::InvalidSpec,
            Error::Router { .. } => ErrorKind::Router,
            Error::Notification { .. } => ErrorKind::Notification,
        }
    }

    /// A short, stable label for metrics and Event reasons ([`ErrorKind::as_str`]).
    pub fn metric_label(&self) -> &'static str {
        self.kind().as_str()
    }

    /// How long to wait before trying again: at once for a conflict (a newer copy is in the
    /// cache), seconds for a failed call, minutes for what only a change (of the spec, or the
    /// namespace's end) settles.
    pub fn retry_after(&self) -> Duration {
        match self {
            Error::Conflict { .. } => Duration::from_secs(1),
            Error::KubeRead { .. }
            | Error::KubeWrite { .. }
            | Error::Prometheus { .. }
            | Error::Router { .. }
            | Error::Notification { .. } => Duration::from_secs(5),
            Error::Refused { .. }
            | Error::NamespaceTerminating { .. }
            | Error::InvalidSpec { .. } => Duration::from_secs(300),
        }
    }
}

/// Classifies a failed write of `object` in `namespace`: a refusal of the object itself
/// ([`Error::Refused`]), a namespace being deleted ([`Error::NamespaceTerminating`]), a lost race
/// ([`Error::Conflict`]), or any other failure ([`Error::KubeWrite`]).
pub fn write_err(object: String, namespace: &str) -> impl FnOnce(kube::Error) -> Error {
    let namespace = namespace.to_string();
    move |source| match &source {
        kube::Error::Api(e) if e.code == 403 && e.message.contains("being terminated") => {
            Error::NamespaceTerminating { namespace }
        }
        kube::Error::Api(e) if e.code == 409 => Error::Conflict { object },
        kube::Error::Api(e) if e.code == 400 || e.code == 422 => Error::Refused {
            object,
            message: e.message.clone(),
        },
        _ => Error::KubeWrite { object, source },
    }
}

/// A failed read of `what`.
pub fn read_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::KubeRead { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn a_failed_write_is_classified_by_the_servers_answer() {
        let classify =
            |code, message| write_err("ReplicaSet shop/a".into(), "shop")(api_error(code, message));
        assert_eq!(
            classify(409, "the object has been modified").kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            classify(422, "metadata.annotations: Too long").kind(),
            ErrorKind::Refused
        );
        assert_eq!(classify(400, "bad").kind(), ErrorKind::Refused);
        assert_eq!(
            classify(
                403,
                "unable to create new content in namespace shop because it is being terminated"
            )
            .kind(),
            ErrorKind::NamespaceTerminating
        );
        assert_eq!(classify(403, "forbidden").kind(), ErrorKind::KubeWrite);
        assert_eq!(classify(500, "etcd").kind(), ErrorKind::KubeWrite);
    }

    #[test]
    fn a_conflict_is_retried_at_once_and_a_refusal_slowly() {
        let conflict = Error::Conflict {
            object: "Rollout shop/a".into(),
        };
        let refused = Error::Refused {
            object: "x".into(),
            message: "y".into(),
        };
        assert!(conflict.retry_after() < refused.retry_after());
        assert_eq!(refused.metric_label(), "ObjectRefused");
    }
}
