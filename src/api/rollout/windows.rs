//! Deployment windows and freezes in the spec (`spec.windows`): their shapes, patterns and CEL
//! rules. Compiling them into a policy is [`crate::schedule::windows`].

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The shape of an IANA time zone name (`Europe/Berlin`, `America/Argentina/Buenos_Aires`,
/// `Etc/GMT+5`, `UTC`); whether the zone exists is checked by the controller.
pub const TIME_ZONE_PATTERN: &str = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$";

/// Deployment windows and freezes. The schema checks the shapes; whether the time zone exists
/// and whether each date exists in the calendar is checked by the controller
/// ([`crate::schedule::windows::compile`]), which marks the Rollout Degraded otherwise.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Windows {
    /// IANA time zone of the windows, e.g. `Europe/Berlin`. Default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIME_ZONE_PATTERN))]
    #[x_kube(validation = Rule::new(format!("self.matches('{TIME_ZONE_PATTERN}')")).message("must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC"))]
    pub time_zone: Option<String>,
    /// Weekly windows in which rollouts may start and advance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub allow: Vec<AllowWindow>,
    /// Date ranges in which rollouts may not start or advance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub deny: Vec<DenyWindow>,
}

/// The days of `spec.windows.allow[].days`, Monday first.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The schema of `days`: one to seven of [`WEEKDAYS`].
fn weekdays_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 7,
        "items": {"type": "string", "enum": WEEKDAYS},
    })
}

/// A weekly window, e.g. Mon–Thu 09:00–16:00.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new("self.start != self.end").message("start and end are equal, which is ambiguous: for a whole day write start 00:00 and end 24:00, otherwise make them differ").field_path(".end"))]
#[serde(rename_all = "camelCase")]
pub struct AllowWindow {
    /// Days of the week: `Mon`, `Tue`, `Wed`, `Thu`, `Fri`, `Sat`, `Sun`.
    // Strings rather than an enum, on purpose: the schema lists the days, and an object stored
    // before it did is still read by the controller, which then names the misspelt day and its
    // position (`WindowError::Day`) instead of failing to read the whole Rollout.
    #[schemars(schema_with = "weekdays_schema")]
    pub days: Vec<String>,
    /// Local start time, `HH:MM`.
    #[schemars(length(max = 5), regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// Local end time, `HH:MM`; before `start` means the window crosses midnight.
    #[schemars(length(max = 5), regex(pattern = r"^([01][0-9]|2[0-4]):[0-5][0-9]$"))]
    pub end: String,
}

/// A local civil date-time as the schema admits it in `spec.windows.deny`: `2026-12-20T00:00:00`,
/// `2026-12-20T00:00` or `2026-12-20` (midnight). Whether the date exists (`2026-02-30`) is
/// checked by the controller.
pub const CIVIL_DATE_TIME_PATTERN: &str = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?$";

/// The CEL rule of a freeze bound: [`CIVIL_DATE_TIME_PATTERN`], with [`CIVIL_MESSAGE`].
fn civil_rule() -> String {
    format!("self.matches('{CIVIL_DATE_TIME_PATTERN}')")
}

/// What a freeze bound must look like.
const CIVIL_MESSAGE: &str = "must be a local date-time such as 2026-12-20T00:00:00, 2026-12-20T00:00 or 2026-12-20 (midnight), without offset or zone: it is read in spec.windows.timeZone";

/// A CEL expression that writes the civil date-time `self.<field>` in its longest form, so that
/// two of them compare as strings in time order.
fn full_civil_cel(field: &str) -> String {
    format!(
        "(size(self.{field}) == 10 ? self.{field} + 'T00:00:00' : size(self.{field}) == 16 ? self.{field} + ':00' : self.{field})"
    )
}

/// The CEL rule of a freeze: `to` after `from` (checked once both have the right shape).
fn freeze_order_rule() -> String {
    format!(
        "!self.from.matches('{p}') || !self.to.matches('{p}') || {from} < {to}",
        p = CIVIL_DATE_TIME_PATTERN,
        from = full_civil_cel("from"),
        to = full_civil_cel("to"),
    )
}

/// A freeze, in local civil time, e.g. `2026-12-20T00:00:00`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Deserialize, Serialize)]
#[x_kube(validation = Rule::new(freeze_order_rule()).message("to must be after from: a freeze covers from (inclusive) to to (exclusive) in spec.windows.timeZone").field_path(".to"))]
#[serde(rename_all = "camelCase")]
pub struct DenyWindow {
    /// Start (inclusive), local civil date-time: `2026-12-20T00:00:00`, `2026-12-20T00:00` or
    /// `2026-12-20`.
    #[schemars(length(max = 32), regex(pattern = CIVIL_DATE_TIME_PATTERN))]
    #[x_kube(validation = Rule::new(civil_rule()).message(CIVIL_MESSAGE))]
    pub from: String,
    /// End (exclusive), local civil date-time, after `from`.
    #[schemars(length(max = 32), regex(pattern = CIVIL_DATE_TIME_PATTERN))]
    #[x_kube(validation = Rule::new(civil_rule()).message(CIVIL_MESSAGE))]
    pub to: String,
}
