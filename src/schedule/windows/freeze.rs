//! Freezes (`spec.windows.deny`): parsing and checking their local civil `from` and `to`, and how
//! they read in a reason.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::api::DenyWindow;

use super::calendar::{Span, resolve};
use super::error::WindowError;

/// One freeze: its civil bounds (for the reason) and their instants.
#[derive(Clone, Debug)]
pub(super) struct Freeze {
    pub(super) from_local: DateTime,
    pub(super) to_local: DateTime,
    pub(super) span: Span,
}

pub(super) fn compile_freeze(
    zone: &TimeZone,
    index: usize,
    freeze: &DenyWindow,
) -> Result<Freeze, WindowError> {
    let DenyWindow { from, to } = freeze;
    let parse = |field: &'static str, value: &String| {
        let invalid = |detail: String| WindowError::DateTime {
            window: index,
            field,
            value: value.clone(),
            detail,
        };
        let local = parse_civil(value).map_err(invalid)?;
        let instant = resolve(zone, local)
            .ok_or_else(|| invalid("it is outside the supported range of dates".to_string()))?;
        Ok((local, instant))
    };
    let (from_local, from_instant) = parse("from", from)?;
    let (to_local, to_instant) = parse("to", to)?;
    if to_local <= from_local {
        return Err(WindowError::EmptyFreeze {
            window: index,
            from: from.clone(),
            to: to.clone(),
        });
    }
    Ok(Freeze {
        from_local,
        to_local,
        span: (from_instant, to_instant),
    })
}

/// A civil date-time without offset or zone: `2026-12-20T00:00:00`, `2026-12-20T00:00` or a bare
/// date (midnight). jiff's civil parser skips a trailing offset or `[zone]`; here they are
/// errors, since the freeze is read in `spec.windows.timeZone` and an offset would be ignored.
pub(super) fn parse_civil(text: &str) -> Result<DateTime, String> {
    let time = text
        .find(['T', 't', ' '])
        .map_or("", |separator| &text[separator + 1..]);
    if text.contains(['Z', 'z', '[', '+', '\u{2212}']) || time.contains('-') {
        return Err(
            "leave out the offset or zone; it is read in spec.windows.timeZone".to_string(),
        );
    }
    text.parse::<DateTime>().map_err(|error| error.to_string())
}

/// `2026-12-20T00:00`, with seconds only when they are not zero.
pub(super) fn civil_text(local: DateTime) -> String {
    if local.second() == 0 && local.subsec_nanosecond() == 0 {
        local.strftime("%Y-%m-%dT%H:%M").to_string()
    } else {
        local.to_string()
    }
}
