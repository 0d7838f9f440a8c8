//! Time-zone and calendar arithmetic: a local civil time in a zone as one exact instant (the DST
//! rules in the parent module's docs), and sorted, merged spans of instants.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// A half-open interval of instants, `[start, end)`.
pub(super) type Span = (Timestamp, Timestamp);

/// The instant of a local civil time in `zone` (see the parent module's docs): the only one, the earlier
/// of two (fall back), or the first after the gap (spring forward). `None` only at the ends of
/// jiff's range.
pub(super) fn resolve(zone: &TimeZone, local: DateTime) -> Option<Timestamp> {
    let ambiguous = zone.to_ambiguous_timestamp(local);
    match ambiguous.offset() {
        AmbiguousOffset::Gap { .. } => {
            // `earlier` reads the local time with the offset after the gap, which lands before
            // the transition; the next transition from there is the end of the gap.
            let before_gap = ambiguous.earlier().ok()?;
            zone.following(before_gap)
                .next()
                .map(|transition| transition.timestamp())
                .or_else(|| ambiguous.later().ok())
        }
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
            ambiguous.earlier().ok()
        }
    }
}

/// Sorts spans and merges those that overlap or touch; drops empty ones.
pub(super) fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|&(start, end)| start < end);
    spans.sort();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `spans` minus `holes`, both sorted and merged.
pub(super) fn subtract(spans: &[Span], holes: &[Span]) -> Vec<Span> {
    let mut out = Vec::with_capacity(spans.len());
    for &(mut start, end) in spans {
        for &(hole_start, hole_end) in holes {
            if hole_end <= start {
                continue;
            }
            if hole_start >= end {
                break;
            }
            if hole_start > start {
                out.push((start, hole_start));
            }
            start = start.max(hole_end);
            if start >= end {
                break;
            }
        }
        if start < end {
            out.push((start, end));
        }
    }
    out
}
