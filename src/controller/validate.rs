//! Checks of a Rollout's spec that the CRD schema and its CEL rules cannot express, turning the
//! spec into the plain values the decision works with.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::api::{
    Analysis, InvalidDuration, MIN_ANALYSIS_INTERVAL, Notification, RolloutSpec,
    TEMPLATE_VARIABLES, TrafficRouting, known_variables_text, template_tokens,
};
use crate::schedule::windows::{WindowError, compile};

/// Default `spec.progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);
/// Default `spec.revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: usize = 3;

/// A canary step, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Canary weight in percent, 0–100.
    SetWeight(i32),
    /// Wait for the duration, or (None) until `promote`.
    Pause(Option<Duration>),
    /// Size the canary (and baseline) independently of the weight (needs a router).
    SetCanaryScale(CanaryScale),
    /// Send requests with matching headers to the canary (needs a router); `None` removes it.
    SetHeaderRoute(Option<HeaderRoute>),
}

/// How many canary pods run at a step with a traffic router.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CanaryScale {
    /// The canary's share of `spec.replicas` equals its traffic weight (at least one pod).
    #[default]
    MatchTrafficWeight,
    /// Exactly this many pods.
    Replicas(i32),
    /// This percentage of `spec.replicas`, rounded up.
    Weight(i32),
}

pub use crate::traffic::HeaderRoute;

/// How long the canary steps take when nothing holds them: the sum of the pauses' durations.
/// `None` when a pause waits for `promote` (the plan has no fixed end). The analysis's planned
/// decision look is this long after the canary starts ([`crate::analysis::assess::decision_at`]).
pub fn planned_duration(steps: &[StepKind]) -> Option<Duration> {
    steps
        .iter()
        .try_fold(Duration::ZERO, |total, step| match step {
            StepKind::SetWeight(_) | StepKind::SetCanaryScale(_) | StepKind::SetHeaderRoute(_) => {
                Some(total)
            }
            StepKind::Pause(pause) => pause.map(|d| total.saturating_add(d)),
        })
}

/// Longest Rollout name: the name is the value of the `firebreak.dev/rollout` label, and label
/// values are at most 63 characters.
pub const MAX_NAME_LENGTH: usize = 63;

/// A spec that passed validation, in the decision's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    /// Pods at steady state, ≥ 0.
    pub replicas: i32,
    /// The pod template.
    pub template: PodTemplateSpec,
    /// The canary steps, at least one.
    pub steps: Vec<StepKind>,
    /// Run a dedicated baseline ReplicaSet.
    pub baseline: bool,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.progressDeadlineSeconds`.
    pub progress_deadline: Duration,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: usize,
    /// The selector as a label-selector string, e.g. `app=checkout`.
    pub selector_string: String,
    /// `spec.bake.duration`.
    pub bake: Option<Duration>,
    /// `spec.strategy.canary.maxDuration`.
    pub max_duration: Option<Duration>,
    /// `spec.strategy.canary.trafficRouting`: with a router, weights are exact and the stable
    /// keeps its full size during a canary.
    pub traffic_routing: Option<TrafficRouting>,
    /// `spec.strategy.canary.abortScaleDownDelaySeconds` (default 30 s): with a router, how long
    /// a rolled-back canary keeps its pods after all traffic is verified on stable.
    pub abort_scale_down_delay: Duration,
}

/// Default `spec.strategy.canary.abortScaleDownDelaySeconds`.
pub const DEFAULT_ABORT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);

/// A spec the controller cannot act on. The message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// A duration field does not parse.
    #[error("{field}: {source}")]
    Duration {
        /// Path of the field, e.g. `spec.strategy.canary.steps[1].pause.duration`.
        field: String,
        /// What was wrong.
        source: InvalidDuration,
    },
    /// `spec.windows` does not compile (the error names the field).
    #[error(transparent)]
    Windows(#[from] WindowError),
    /// Any other invalid field.
    #[error("{field}: {message}")]
    Field {
        /// Path of the field.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl SpecError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError::Field {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Validates `spec`: everything the CRD schema and its CEL rules check (again, for objects
/// stored before a rule existed), and what they cannot check — that `spec.windows.timeZone`
/// exists and that the freezes' dates exist. The first problem found is returned.
///
/// The controller calls it before it lists or changes any ReplicaSet, so an invalid spec never
/// lets a revision through: not the first one, and not a later one.
pub fn validate(spec: &RolloutSpec) -> Result<ValidSpec, SpecError> {
    if spec.replicas < 0 {
        return Err(SpecError::field(
            "spec.replicas",
            format!("must be 0 or more, got {}", spec.replicas),
        ));
    }
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    if match_labels.is_empty() {
        return Err(SpecError::field(
            "spec.selector.matchLabels",
            "must name at least one label of spec.template.metadata.labels",
        ));
    }
    for (key, value) in &match_labels {
        if template_labels.get(key) != Some(value) {
            return Err(SpecError::field(
                "spec.selector.matchLabels",
                format!(
                    "{key}={value} is not among spec.template.metadata.labels; add it there or remove it from the selector"
                ),
            ));
        }
    }
    if spec
        .selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(SpecError::field(
            "spec.selector.matchExpressions",
            "is not supported; select pods with spec.selector.matchLabels",
        ));
    }

    let canary = &spec.strategy.canary;
    if canary.steps.is_empty() {
        return Err(SpecError::field(
            "spec.strategy.canary.steps",
            "needs at least one step, e.g. `- setWeight: 20` then `- pause: {duration: 5m}`",
        ));
    }
    let mut steps = Vec::with_capacity(canary.steps.len());
    for (i, step) in canary.steps.iter().enumerate() {
        let field = format!("spec.strategy.canary.steps[{i}]");
        let kind = match (
            step.set_weight,
            &step.pause,
            &step.set_canary_scale,
            &step.set_header_route,
        ) {
            (Some(w), None, None, None) if (0..=100).contains(&w) => StepKind::SetWeight(w),
            (Some(w), None, None, None) => {
                return Err(SpecError::field(
                    format!("{field}.setWeight"),
                    format!("must be a percentage 0-100, got {w}"),
                ));
            }
            (None, Some(pause), None, None) => StepKind::Pause(match &pause.duration {
                None => None,
                Some(d) => Some(d.to_duration().map_err(|source| SpecError::Duration {
                    field: format!("{field}.pause.duration"),
                    source,
                })?),
            }),
            (None, None, Some(scale), None) => {
                StepKind::SetCanaryScale(canary_scale(&field, scale, spec.replicas)?)
            }
            (None, None, None, Some(route)) => {
                StepKind::SetHeaderRoute((!route.matches.is_empty()).then(|| HeaderRoute {
                    name: route.name.clone(),
                    matches: route.matches.clone(),
                }))
            }
            _ => {
                return Err(SpecError::field(
                    field,
                    "set exactly one of setWeight, pause, setCanaryScale or setHeaderRoute",
                ));
            }
        };
        let needs_router = matches!(
            kind,
            StepKind::SetCanaryScale(_) | StepKind::SetHeaderRoute(_)
        );
        if needs_router && canary.traffic_routing.is_none() {
            return Err(SpecError::field(
                field,
                "setCanaryScale and setHeaderRoute need a traffic router: set spec.strategy.canary.trafficRouting, or use setWeight",
            ));
        }
        steps.push(kind);
    }

    let progress_deadline = match spec.progress_deadline_seconds {
        None => DEFAULT_PROGRESS_DEADLINE,
        Some(s) if s > 0 => Duration::from_secs(s as u64),
        Some(s) => {
            return Err(SpecError::field(
                "spec.progressDeadlineSeconds",
                format!("must be at least 1, got {s}"),
            ));
        }
    };
    let revision_history_limit = match spec.revision_history_limit {
        None => DEFAULT_REVISION_HISTORY_LIMIT,
        Some(n) if n >= 0 => n as usize,
        Some(n) => {
            return Err(SpecError::field(
                "spec.revisionHistoryLimit",
                format!("must be 0 or more, got {n}"),
            ));
        }
    };
    if let Some(analysis) = &spec.analysis {
        validate_analysis(analysis)?;
    }
    let bake = match &spec.bake {
        Some(bake) => Some(
            bake.duration
                .to_duration()
                .map_err(|source| SpecError::Duration {
                    field: "spec.bake.duration".into(),
                    source,
                })?,
        ),
        None => None,
    };
    let max_duration = match &canary.max_duration {
        Some(d) => Some(d.to_duration().map_err(|source| SpecError::Duration {
            field: "spec.strategy.canary.maxDuration".into(),
            source,
        })?),
        None => None,
    };

    if let Some(windows) = &spec.windows {
        compile(windows)?;
    }
    if let Some(routing) = &canary.traffic_routing {
        validate_routing(routing, canary.baseline)?;
    }
    unique_names(
        "spec.notifications",
        spec.notifications
            .iter()
            .map(|n: &Notification| n.name.as_str()),
    )?;

    let selector_string = match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(ValidSpec {
        replicas: spec.replicas,
        template: spec.template.clone(),
        steps,
        baseline: canary.baseline,
        paused: spec.paused,
        progress_deadline,
        revision_history_limit,
        selector_string,
        bake,
        max_duration,
        traffic_routing: canary.traffic_routing.clone(),
        abort_scale_down_delay: match canary.abort_scale_down_delay_seconds {
            None => DEFAULT_ABORT_SCALE_DOWN_DELAY,
            Some(s) if (0..=3600).contains(&s) => Duration::from_secs(s as u64),
            Some(s) => {
                return Err(SpecError::field(
                    "spec.strategy.canary.abortScaleDownDelaySeconds",
                    format!("must be 0 to 3600 seconds, got {s}"),
                ));
            }
        },
    })
}

/// Parses a `setCanaryScale` step at `field`.
fn canary_scale(
    field: &str,
    scale: &crate::api::SetCanaryScale,
    replicas: i32,
) -> Result<CanaryScale, SpecError> {
    let field = format!("{field}.setCanaryScale");
    match (scale.replicas, scale.weight, scale.match_traffic_weight) {
        (Some(n), None, None | Some(false)) if (0..=replicas.max(0)).contains(&n) => {
            Ok(CanaryScale::Replicas(n))
        }
        (Some(n), None, None | Some(false)) => Err(SpecError::field(
            format!("{field}.replicas"),
            format!("must be 0 to spec.replicas ({replicas}), got {n}"),
        )),
        (None, Some(w), None | Some(false)) if (0..=100).contains(&w) => Ok(CanaryScale::Weight(w)),
        (None, Some(w), None | Some(false)) => Err(SpecError::field(
            format!("{field}.weight"),
            format!("must be a percentage 0-100, got {w}"),
        )),
        (None, None, Some(true)) => Ok(CanaryScale::MatchTrafficWeight),
        _ => Err(SpecError::field(
            field,
            "set exactly one of replicas, weight or matchTrafficWeight: true",
        )),
    }
}

/// Checks `spec.strategy.canary.trafficRouting` again (the CRD's CEL rules check the same for
/// new objects): a router, one route mode, a baseline Service for a baseline, distinct Services,
/// and, for a managed route, a rule that names the stable Service.
fn validate_routing(routing: &TrafficRouting, baseline: bool) -> Result<(), SpecError> {
    let field = "spec.strategy.canary.trafficRouting";
    let services = &routing.services;
    if baseline && services.baseline.is_none() {
        return Err(SpecError::field(
            format!("{field}.services.baseline"),
            "baseline: true needs a baseline Service; name one here",
        ));
    }
    let mut names = vec![&services.stable, &services.canary];
    names.extend(services.baseline.as_ref());
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(SpecError::field(
                format!("{field}.services"),
                format!("Service {name} is named twice; each arm needs a Service of its own"),
            ));
        }
    }
    let Some(gateway) = &routing.gateway_api else {
        return Err(SpecError::field(
            field,
            "needs a router: set gatewayAPI (httpRoute, or httpRoutes/grpcRoutes)",
        ));
    };
    let existing = gateway.http_routes.len() + gateway.grpc_routes.len();
    match (&gateway.http_route, existing) {
        (Some(_), 0) | (None, 1..) => {}
        (Some(_), _) | (None, 0) => {
            return Err(SpecError::field(
                format!("{field}.gatewayAPI"),
                "set exactly one of httpRoute (a route Firebreak creates and owns) or httpRoutes/grpcRoutes (existing routes, by name and rule)",
            ));
        }
    }
    if let Some(managed) = &gateway.http_route {
        let names_stable = managed.spec.rules.iter().flatten().any(|rule| {
            rule.backend_refs
                .iter()
                .flatten()
                .any(|b| b.name == services.stable)
        });
        if !names_stable {
            return Err(SpecError::field(
                format!("{field}.gatewayAPI.httpRoute.spec.rules"),
                format!(
                    "no rule has a backendRef naming the stable Service {}; name it in each rule whose traffic the canary should share",
                    services.stable
                ),
            ));
        }
    }
    Ok(())
}

/// Checks `spec.analysis`: the interval, one kind per metric, unique metric names, and only
/// known `{{variables}}` in the PromQL templates.
fn validate_analysis(analysis: &Analysis) -> Result<(), SpecError> {
    if let Some(interval) = &analysis.interval {
        let field = "spec.analysis.interval";
        let duration = interval
            .to_duration()
            .map_err(|source| SpecError::Duration {
                field: field.into(),
                source,
            })?;
        if duration < MIN_ANALYSIS_INTERVAL {
            return Err(SpecError::field(
                field,
                format!(
                    "{:?} is shorter than {}s: a look measures the window since the last one, and a window shorter than about two Prometheus scrape intervals often has no data; write {}s or more",
                    interval.0,
                    MIN_ANALYSIS_INTERVAL.as_secs(),
                    MIN_ANALYSIS_INTERVAL.as_secs()
                ),
            ));
        }
    }
    if analysis.metrics.is_empty() {
        return Err(SpecError::field(
            "spec.analysis.metrics",
            "needs at least one metric, e.g. `- name: crashes` with `crashRate: {}`",
        ));
    }
    for (i, metric) in analysis.metrics.iter().enumerate() {
        let field = format!("spec.analysis.metrics[{i}]");
        let prometheus = match (&metric.error_rate, &metric.crash_rate) {
            (Some(error_rate), None) => Some(&error_rate.prometheus),
            (None, Some(_)) => None,
            (Some(_), Some(_)) | (None, None) => {
                return Err(SpecError::field(
                    field,
                    "set exactly one of errorRate or crashRate",
                ));
            }
        };
        if let Some(prometheus) = prometheus {
            for (name, query) in [("errors", &prometheus.errors), ("total", &prometheus.total)] {
                if let Some(unknown) = template_tokens(query)
                    .into_iter()
                    .find(|token| !TEMPLATE_VARIABLES.contains(&&token[2..token.len() - 2]))
                {
                    return Err(SpecError::field(
                        format!("{field}.errorRate.prometheus.{name}"),
                        format!(
                            "unknown template variable {unknown}; the variables are {}",
                            known_variables_text()
                        ),
                    ));
                }
            }
        }
    }
    unique_names(
        "spec.analysis.metrics",
        analysis.metrics.iter().map(|m| m.name.as_str()),
    )
}

/// Checks that no two entries of the list `field` share a name.
fn unique_names<'a>(
    field: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), SpecError> {
    let mut seen = std::collections::BTreeMap::new();
    for (i, name) in names.into_iter().enumerate() {
        if let Some(first) = seen.insert(name, i) {
            return Err(SpecError::field(
                format!("{field}[{i}].name"),
                format!(
                    "{name:?} is already the name of {field}[{first}]; give each entry its own name"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::api::Rollout;
    use crate::controller::sim::TestRollout;

    /// RFC 7386 merge patch, enough for the fixtures below.
    fn merge(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(target), Value::Object(patch)) => {
                for (key, value) in patch {
                    if value.is_null() {
                        target.remove(key);
                    } else {
                        merge(target.entry(key).or_insert(Value::Null), value);
                    }
                }
            }
            (target, patch) => *target = patch.clone(),
        }
    }

    /// A valid spec with an analysis, windows and a notification, changed by the merge `patch`
    /// (on the spec).
    fn spec_with(patch: Value) -> RolloutSpec {
        let mut spec = serde_json::to_value(Rollout::test().spec).unwrap();
        merge(
            &mut spec,
            &json!({
                "analysis": {"interval": "30s", "metrics": [
                    {"name": "http-errors", "errorRate": {"prometheus": {
                        "address": "http://prometheus:9090",
                        "errors": r#"sum(increase(e{namespace="{{namespace}}",h="{{revision}}",arm="{{arm}}",r="{{rollout}}"}[{{interval}}]))"#,
                        "total": r#"sum(increase(t{h="{{revision}}"}[{{interval}}]))"#}}},
                    {"name": "crashes", "crashRate": {}}
                ]},
                "bake": {"duration": "10m"},
                "windows": {
                    "timeZone": "Europe/Berlin",
                    "allow": [{"days": ["Mon", "Tue"], "start": "09:00", "end": "16:00"}],
                    "deny": [{"from": "2026-12-20T00:00:00", "to": "2027-01-04"}]
                },
                "notifications": [
                    {"name": "oncall", "webhook": {"format": "slack", "urlFrom": {"secretKeyRef": {"name": "h", "key": "u"}}}},
                    {"name": "audit", "webhook": {"format": "json", "urlFrom": {"secretKeyRef": {"name": "h", "key": "a"}}}}
                ]
            }),
        );
        merge(&mut spec, &patch);
        serde_json::from_value(spec).expect("the fixture deserializes")
    }

    /// The message of the error `patch` causes; panics if the spec is valid.
    fn refused(patch: Value) -> String {
        match validate(&spec_with(patch.clone())) {
            Ok(_) => panic!("{patch} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_names(message: &str, field: &str, fix: &str) {
        assert!(
            message.starts_with(field) && message.contains(fix),
            "{message:?} should name {field} and say {fix:?}"
        );
    }

    #[test]
    fn the_fixture_is_valid() {
        let spec = validate(&spec_with(json!({}))).expect("valid");
        assert_eq!(spec.bake, Some(Duration::from_secs(600)));
    }

    #[test]
    fn zero_empty_and_absurd_durations_are_refused_in_every_duration_field() {
        /// Sets one duration field to the given text.
        type SetDuration = fn(&str) -> Value;
        let fields: [(&str, SetDuration); 4] = [
            (
                "spec.strategy.canary.steps[1].pause.duration",
                |d| json!({"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": d}}]}}}),
            ),
            (
                "spec.analysis.interval",
                |d| json!({"analysis": {"interval": d}}),
            ),
            ("spec.bake.duration", |d| json!({"bake": {"duration": d}})),
            (
                "spec.strategy.canary.maxDuration",
                |d| json!({"strategy": {"canary": {"maxDuration": d}}}),
            ),
        ];
        for (field, patch) in fields {
            assert_names(&refused(patch("0s")), field, "at least 1s");
            assert_names(&refused(patch("")), field, "1h30m");
            assert_names(
                &refused(patch("18446744073709551615s")),
                field,
                "in that order",
            );
            assert_names(&refused(patch("8761h")), field, "longer than 8760h");
        }
    }

    #[test]
    fn an_analysis_interval_under_five_seconds_is_refused() {
        let message = refused(json!({"analysis": {"interval": "3s"}}));
        assert_names(&message, "spec.analysis.interval", "write 5s or more");
        assert!(message.contains("scrape"), "{message}");
        assert!(validate(&spec_with(json!({"analysis": {"interval": "5s"}}))).is_ok());
    }

    #[test]
    fn a_step_with_both_set_weight_and_pause_is_refused() {
        let message = refused(
            json!({"strategy": {"canary": {"steps": [{"setWeight": 10, "pause": {"duration": "1m"}}]}}}),
        );
        assert_names(
            &message,
            "spec.strategy.canary.steps[0]",
            "exactly one of setWeight, pause, setCanaryScale or setHeaderRoute",
        );
    }

    #[test]
    fn unknown_template_variables_are_refused_naming_the_query() {
        let message = refused(
            json!({"analysis": {"metrics": [{"name": "e", "errorRate": {"prometheus": {
            "address": "http://p:9090",
            "errors": "sum(x{h=\"{{revision}}\"})",
            "total": "sum(y{h=\"{{revison}}\"})"}}}]}}),
        );
        assert_names(
            &message,
            "spec.analysis.metrics[0].errorRate.prometheus.total",
            "unknown template variable {{revison}}; the variables are {{revision}}, {{arm}}",
        );
        let message = refused(
            json!({"analysis": {"metrics": [{"name": "e", "errorRate": {"prometheus": {
            "address": "http://p:9090", "errors": "x{n=\"{{ namespace }}\"}", "total": "t"}}}]}}),
        );
        assert_names(
            &message,
            "spec.analysis.metrics[0].errorRate.prometheus.errors",
            "{{ namespace }}",
        );
    }

    #[test]
    fn template_tokens_are_found_as_the_cel_rule_finds_them() {
        use crate::api::template_tokens;
        assert_eq!(
            template_tokens("a{{revision}}b{{x}}{{}}c"),
            ["{{revision}}", "{{x}}", "{{}}"]
        );
        assert_eq!(template_tokens("{{{arm}}"), ["{{{arm}}"]);
        assert_eq!(
            template_tokens("x{a=\"b\"}[5m] {{unclosed"),
            Vec::<&str>::new()
        );
        assert_eq!(template_tokens("{{a}b}}{{arm}}"), ["{{arm}}"]);
    }

    /// The variables validation admits are exactly those the renderer substitutes.
    #[test]
    fn every_known_variable_is_substituted() {
        use crate::analysis::template::{Variables, render};
        let vars = Variables {
            revision: "r",
            arm: "canary",
            namespace: "n",
            rollout: "w",
            interval: "30s",
        };
        for variable in TEMPLATE_VARIABLES {
            let query = format!("{{{{{variable}}}}}");
            assert!(template_tokens(&query).len() == 1);
            assert!(!render(&query, &vars).contains('{'), "{variable}");
        }
    }

    #[test]
    fn duplicate_metric_names_are_refused() {
        let message = refused(json!({"analysis": {"metrics": [
            {"name": "crashes", "crashRate": {}},
            {"name": "crashes", "crashRate": {"maxRatio": 3.0}}
        ]}}));
        assert_names(
            &message,
            "spec.analysis.metrics[1].name",
            "\"crashes\" is already the name of spec.analysis.metrics[0]",
        );
    }

    #[test]
    fn a_metric_of_two_kinds_is_refused() {
        let message = refused(json!({"analysis": {"metrics": [
            {"name": "both", "crashRate": {}, "errorRate": {"prometheus": {"address": "a", "errors": "e", "total": "t"}}}
        ]}}));
        assert_names(
            &message,
            "spec.analysis.metrics[0]",
            "exactly one of errorRate or crashRate",
        );
    }

    #[test]
    fn duplicate_notification_names_are_refused() {
        let hook =
            json!({"format": "json", "urlFrom": {"secretKeyRef": {"name": "h", "key": "u"}}});
        let message = refused(json!({"notifications": [
            {"name": "oncall", "webhook": hook}, {"name": "audit", "webhook": hook}, {"name": "oncall", "webhook": hook}
        ]}));
        assert_names(
            &message,
            "spec.notifications[2].name",
            "give each entry its own name",
        );
    }

    #[test]
    fn invalid_windows_are_refused_naming_the_field() {
        let cases = [
            (
                json!({"windows": {"timeZone": "Mars/Olympus_Mons"}}),
                "spec.windows.timeZone",
                "not an IANA time zone",
            ),
            (
                json!({"windows": {"allow": [{"days": ["Monday"], "start": "09:00", "end": "16:00"}]}}),
                "spec.windows.allow[0].days[0]",
                "Mon, Tue",
            ),
            (
                json!({"windows": {"allow": [{"days": [], "start": "09:00", "end": "16:00"}]}}),
                "spec.windows.allow[0].days",
                "list at least one day",
            ),
            (
                json!({"windows": {"allow": [{"days": ["Mon"], "start": "09:00", "end": "09:00"}]}}),
                "spec.windows.allow[0]",
                "start 00:00 and end 24:00",
            ),
            (
                json!({"windows": {"deny": [{"from": "next monday", "to": "2027-01-04"}]}}),
                "spec.windows.deny[0].from",
                "2026-12-20T00:00:00",
            ),
            (
                json!({"windows": {"deny": [{"from": "2026-02-30", "to": "2026-03-04"}]}}),
                "spec.windows.deny[0].from",
                "2026-12-20T00:00:00",
            ),
            (
                json!({"windows": {"deny": [{"from": "2027-01-04", "to": "2027-01-04T00:00"}]}}),
                "spec.windows.deny[0].to",
                "is not after from",
            ),
        ];
        for (patch, field, fix) in cases {
            assert_names(&refused(patch), field, fix);
        }
    }

    #[test]
    fn the_planned_duration_is_the_sum_of_the_pauses_unless_one_waits_for_promote() {
        let minutes = |m: u64| StepKind::Pause(Some(Duration::from_secs(60 * m)));
        let steps = [
            StepKind::SetWeight(10),
            minutes(5),
            StepKind::SetWeight(50),
            minutes(30),
        ];
        assert_eq!(planned_duration(&steps), Some(Duration::from_secs(35 * 60)));
        assert_eq!(
            planned_duration(&[StepKind::SetWeight(10)]),
            Some(Duration::ZERO)
        );
        let manual = [StepKind::SetWeight(10), minutes(5), StepKind::Pause(None)];
        assert_eq!(planned_duration(&manual), None);
    }
}
