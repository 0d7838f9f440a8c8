//! The metric providers against the real Prometheus and API server of the test environment:
//! every kind of answer that is not one count, as real Prometheus produces it, is classified
//! and named; counts come out per arm; crash counts come from the arms' running pods.

use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::Duration;

use firebreak::analysis::assess::Observation;
use firebreak::analysis::crashes::PodCrashes;
use firebreak::analysis::prometheus::{PrometheusPool, QueryError};
use firebreak::analysis::provider::{Arms, Look, Measurement, MetricProvider, ProviderError};
use firebreak::analysis::template::Variables;
use firebreak::api::{
    CrashRate, ErrorRate, Metric, POD_TEMPLATE_HASH_LABEL, PrometheusQueries, ROLLOUT_LABEL,
};
use firebreak_judge::Counts;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

use crate::support::{TestEnv, eventually};

fn arms<'a>(namespace: &'a str, rollout: &'a str) -> Arms<'a> {
    let arm = |revision, arm| Variables {
        revision,
        arm,
        namespace,
        rollout,
        interval: "30s",
    };
    Arms {
        canary: arm("new", "canary"),
        baseline: arm("old", "baseline"),
    }
}

fn error_rate(address: &str, errors: &str, total: &str) -> Metric {
    Metric {
        name: "http-errors".into(),
        error_rate: Some(ErrorRate {
            prometheus: PrometheusQueries {
                address: address.into(),
                errors: errors.into(),
                total: total.into(),
            },
            max_ratio: None,
            max_rate: None,
        }),
        crash_rate: None,
    }
}

#[tokio::test]
async fn real_prometheus_answers_that_are_not_one_count_are_classified_by_query() {
    let env = TestEnv::new().await;
    let pool = PrometheusPool::new().unwrap();
    let at = Timestamp::now().as_second();
    let several = r#"label_replace(vector(1), "a", "1", "", "") or label_replace(vector(2), "a", "2", "", "")"#;
    let cases: [(&str, &str, &str); 10] = [
        ("0/0", "NaN", "returned NaN"),
        ("vector(0) / 0", "NaN", "returned NaN"),
        ("1/0", "Infinite", "returned +Inf"),
        ("-1/0", "Infinite", "returned -Inf"),
        ("vector(-1)", "Negative", "returned -1, a negative count"),
        ("absent_metric_xyz", "NoData", "returned no data"),
        (
            several,
            "SeveralSeries",
            r#"returned 2 series ({a="1"}, {a="2"})"#,
        ),
        ("vector(1)[10s:1s]", "NotInstant", "returned a matrix"),
        (r#""text""#, "NotInstant", "returned a string"),
        ("sum(", "QueryRejected", "refused `sum(`: bad_data"),
    ];
    for (query, label, words) in cases {
        let error = match pool.value(&env.prometheus_url, query, at).await {
            Ok(value) => panic!("`{query}` was taken as the count {value}"),
            Err(e) => e,
        };
        let message = error.to_string();
        assert_eq!(error.metric_label(), label, "`{query}`: {message}");
        assert!(message.contains(words), "`{query}`: {message}");
        assert!(message.contains(&format!("`{query}`")), "{message}");
        assert_eq!(error.query(), query);
    }
    // ... and one number is a count, from a vector or a scalar.
    assert_eq!(
        pool.value(&env.prometheus_url, "sum(vector(7))", at).await,
        Ok(7.0)
    );
    assert_eq!(pool.value(&env.prometheus_url, "2 * 3", at).await, Ok(6.0));
}

#[tokio::test]
async fn an_error_rate_metric_is_measured_per_arm_and_a_nan_is_unavailable() {
    let env = TestEnv::new().await;
    let pool = PrometheusPool::new().unwrap();
    let arms = arms("shop", "web");
    // 5 errors for the canary and 1 for the baseline: the query keeps the series of its arm.
    let errors = r#"sum((label_replace(vector(5), "arm", "canary", "", "") or label_replace(vector(1), "arm", "baseline", "", "")) and on(arm) label_replace(vector(0), "arm", "{{arm}}", "", ""))"#;
    let metric = error_rate(&env.prometheus_url, errors, "sum(vector(100))");
    let look = Look {
        metric: &metric,
        arms: &arms,
        at: Timestamp::now(),
        window_seconds: 30,
    };
    assert_eq!(
        pool.measure(look).await,
        Ok(Measurement::Errors(Counts {
            canary_events: 5,
            baseline_events: 1,
            canary_exposure: 100.0,
            baseline_exposure: 100.0,
        }))
    );

    let nan = error_rate(&env.prometheus_url, "vector(0) / 0", "sum(vector(100))");
    let observation = Observation::from(
        pool.measure(Look {
            metric: &nan,
            ..look
        })
        .await,
    );
    let Observation::Unavailable(why) = observation else {
        panic!("a NaN answer was measured: {observation:?}");
    };
    assert!(why.contains("`vector(0) / 0` returned NaN"), "{why}");

    let crashes = Metric {
        name: "crashes".into(),
        error_rate: None,
        crash_rate: Some(CrashRate {
            max_ratio: None,
            max_restarts_per_pod: None,
        }),
    };
    let wrong = pool.measure(Look {
        metric: &crashes,
        ..look
    });
    assert!(
        matches!(wrong.await, Err(ProviderError::WrongProvider { .. })),
        "the Prometheus provider measured a crash metric"
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_unavailable_naming_the_query() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let pool = PrometheusPool::new().unwrap();
    let error = pool.value(&closed, "sum(up)", 0).await.unwrap_err();
    assert!(matches!(error, QueryError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("could not be reached for `sum(up)`") && message.contains("refused"),
        "{message}"
    );
}

#[tokio::test]
async fn crash_counts_come_from_the_running_pods_of_both_arms() {
    let env = TestEnv::new().await;
    let ns = env.namespace("provider-crashes").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns.name);
    for (name, hash, rollout) in [
        ("web-new-1", "new", "web"),
        ("web-new-2", "new", "web"),
        ("web-old-1", "old", "web"),
        ("web-older-1", "older", "web"),
        ("other-new-1", "new", "other"),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {ROLLOUT_LABEL: rollout, POD_TEMPLATE_HASH_LABEL: hash}},
            "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    eventually("5 Running pods", Duration::from_secs(90), || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .then_some(())
                .filter(|()| list.items.len() == 5)
        }
    })
    .await;

    let arms = arms(&ns.name, "web");
    let metric = Metric {
        name: "crashes".into(),
        error_rate: None,
        crash_rate: Some(CrashRate {
            max_ratio: None,
            max_restarts_per_pod: Some(3),
        }),
    };
    let previous = BTreeMap::new();
    // The controller's pod cache: a reflector over the labelled pods of the namespace.
    let (store, writer) = kube::runtime::reflector::store();
    let labelled = kube::runtime::watcher::Config::default().labels(firebreak::api::ROLLOUT_LABEL);
    let reflector = tokio::spawn(
        kube::runtime::WatchStreamExt::reflect(
            kube::runtime::watcher(pods.clone(), labelled),
            writer,
        )
        .for_each(|_| futures::future::ready(())),
    );
    store.wait_until_ready().await.expect("the pod cache lists");
    let provider = PodCrashes::new(&store, &previous);
    let look = Look {
        metric: &metric,
        arms: &arms,
        at: Timestamp::now(),
        window_seconds: 30,
    };
    let Ok(Measurement::Crashes(window)) = provider.measure(look).await else {
        panic!("no crash window");
    };
    // Two canary pods and one baseline pod of rollout web, 30 s each; no crashes.
    assert_eq!(
        window.counts,
        Counts {
            canary_events: 0,
            baseline_events: 0,
            canary_exposure: 60.0,
            baseline_exposure: 30.0,
        }
    );
    assert_eq!(
        window.pod_restarts.keys().collect::<Vec<_>>(),
        ["web-new-1", "web-new-2", "web-old-1"]
    );
    reflector.abort();
}
