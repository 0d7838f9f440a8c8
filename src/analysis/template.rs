//! PromQL query templates: `{{revision}}`, `{{arm}}`, `{{namespace}}`, `{{rollout}}` and
//! `{{interval}}` are replaced by values escaped for a PromQL string literal, so a name can never
//! change a query's meaning.

/// The values substituted into a query template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variables<'a> {
    /// pod-template-hash of the arm being measured.
    pub revision: &'a str,
    /// `canary` or `baseline`.
    pub arm: &'a str,
    /// The Rollout's namespace.
    pub namespace: &'a str,
    /// The Rollout's name.
    pub rollout: &'a str,
    /// The window, as a PromQL duration such as `30s`.
    pub interval: &'a str,
}

/// Escapes `value` for use inside a double- or single-quoted PromQL string literal: backslash,
/// both quotes and line breaks are escaped (PromQL strings follow Go's escaping rules).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces the template variables in `template`. Unknown `{{…}}` are left as they are (and
/// will make the query fail with Prometheus' own parse error, which names them).
pub fn render(template: &str, vars: &Variables<'_>) -> String {
    // `{{interval}}` is a duration, which PromQL does not quote; only digits and unit letters
    // ever reach it (the controller formats it), so escaping keeps it intact.
    [
        ("{{revision}}", vars.revision),
        ("{{arm}}", vars.arm),
        ("{{namespace}}", vars.namespace),
        ("{{rollout}}", vars.rollout),
        ("{{interval}}", vars.interval),
    ]
    .iter()
    .fold(template.to_string(), |query, (name, value)| {
        query.replace(name, &escape(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(namespace: &'a str) -> Variables<'a> {
        Variables {
            revision: "abc123",
            arm: "canary",
            namespace,
            rollout: "web",
            interval: "30s",
        }
    }

    #[test]
    fn substitutes_every_variable() {
        let q = render(
            r#"sum(increase(x{namespace="{{namespace}}",rollout="{{rollout}}",h="{{revision}}",arm="{{arm}}"}[{{interval}}]))"#,
            &vars("shop"),
        );
        assert_eq!(
            q,
            r#"sum(increase(x{namespace="shop",rollout="web",h="abc123",arm="canary"}[30s]))"#
        );
    }

    #[test]
    fn a_value_cannot_break_out_of_its_string() {
        let q = render(
            r#"x{namespace="{{namespace}}"}"#,
            &vars(r#"a"} or vector(1) or x{a=""#),
        );
        assert_eq!(q, r#"x{namespace="a\"} or vector(1) or x{a=\""}"#);
        assert_eq!(escape("a\\b\n'"), "a\\\\b\\n\\'");
    }
}
