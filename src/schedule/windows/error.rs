//! What makes a `spec.windows` invalid: [`WindowError`], one variant per kind of mistake, each
//! message naming the field and its fix.

/// The day names as listed in error messages.
const DAY_LIST: &str = "Mon, Tue, Wed, Thu, Fri, Sat, Sun";

/// A `spec.windows` that cannot be compiled. The message names the field and the fix; the variant
/// name is meant as the Event reason, [`WindowError::metric_label`] as the metric label.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `timeZone` is not in the IANA time zone database.
    #[error("spec.windows.timeZone {value:?} is not an IANA time zone (e.g. Europe/Berlin)")]
    TimeZone {
        /// The rejected name.
        value: String,
    },
    /// An allowed window lists no days.
    #[error("spec.windows.allow[{window}].days is empty; list at least one day ({DAY_LIST})")]
    NoDays {
        /// Index of the window in `allow`.
        window: usize,
    },
    /// A day is not one of `Mon` … `Sun`.
    #[error("spec.windows.allow[{window}].days[{index}] {value:?} is not a day ({DAY_LIST})")]
    Day {
        /// Index of the window in `allow`.
        window: usize,
        /// Index of the day in `days`.
        index: usize,
        /// The rejected text.
        value: String,
    },
    /// `start` or `end` is not `HH:MM` in range.
    #[error(
        "spec.windows.allow[{window}].{field} {value:?} is not a time of day HH:MM from 00:00 \
         to {latest} (e.g. 09:00)",
        latest = if *.field == "end" { "24:00" } else { "23:59" }
    )]
    TimeOfDay {
        /// Index of the window in `allow`.
        window: usize,
        /// `start` or `end`.
        field: &'static str,
        /// The rejected text.
        value: String,
    },
    /// `start` equals `end`, which could mean an empty window or a whole day.
    #[error(
        "spec.windows.allow[{window}] starts and ends at {value}, which is ambiguous; for a whole \
         day write start 00:00 and end 24:00, otherwise make start and end differ"
    )]
    StartEqualsEnd {
        /// Index of the window in `allow`.
        window: usize,
        /// The shared `HH:MM`.
        value: String,
    },
    /// A freeze's `from` or `to` is not a local civil date-time.
    #[error(
        "spec.windows.deny[{window}].{field} {value:?} is not a local civil date-time such as \
         2026-12-20T00:00:00: {detail}"
    )]
    DateTime {
        /// Index of the freeze in `deny`.
        window: usize,
        /// `from` or `to`.
        field: &'static str,
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A freeze whose `to` is not after its `from`.
    #[error(
        "spec.windows.deny[{window}].to {to:?} is not after from {from:?}; a freeze ends \
         (exclusive) after it starts (inclusive)"
    )]
    EmptyFreeze {
        /// Index of the freeze in `deny`.
        window: usize,
        /// `from` as written.
        from: String,
        /// `to` as written.
        to: String,
    },
}

impl WindowError {
    /// A short, stable, snake_case label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WindowError::TimeZone { .. } => "invalid_time_zone",
            WindowError::NoDays { .. } => "no_days",
            WindowError::Day { .. } => "invalid_day",
            WindowError::TimeOfDay { .. } => "invalid_time_of_day",
            WindowError::StartEqualsEnd { .. } => "start_equals_end",
            WindowError::DateTime { .. } => "invalid_date_time",
            WindowError::EmptyFreeze { .. } => "empty_freeze",
        }
    }
}
