//! Weekly windows (`spec.windows.allow`): parsing and checking `days`, `start` and `end`, the
//! instants a window covers on a given date, and how a window reads in a reason.

use std::fmt::Write as _;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

use crate::api::AllowWindow;

use super::calendar::{Span, resolve};
use super::error::WindowError;

/// Day names as written in `spec.windows.allow[].days`, Monday first.
pub(super) const DAY_NAMES: [&str; 7] = crate::api::WEEKDAYS;

/// Minutes in a civil day; also the value of an `end` of `24:00`.
pub(super) const MINUTES_PER_DAY: u16 = 24 * 60;

/// One weekly window, in minutes after local midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Weekly {
    /// The days it starts on, Monday first.
    days: [bool; 7],
    /// Start minute, 0–1439.
    start: u16,
    /// End minute, 0–1440; at or before `start` (never equal) it is on the next day.
    end: u16,
}

impl Weekly {
    /// The window that starts on `date`, as instants, if it starts that weekday. Empty (start =
    /// end) when both ends fall in the same DST gap. `None` also at the ends of jiff's range.
    pub(super) fn span_on(&self, zone: &TimeZone, date: Date) -> Option<Span> {
        let day = usize::try_from(date.weekday().to_monday_zero_offset()).ok()?;
        if !self.days[day] {
            return None;
        }
        let start = resolve(zone, at_minute(date, self.start))?;
        let end_date = if self.end <= self.start || self.end == MINUTES_PER_DAY {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end = resolve(zone, at_minute(end_date, self.end % MINUTES_PER_DAY))?;
        Some((start, end))
    }

    /// E.g. `Mon–Thu 09:00–16:00` or `Sat, Sun 22:00–02:00`.
    pub(super) fn describe(&self) -> String {
        let mut days = String::new();
        let mut day = 0;
        while day < 7 {
            if !self.days[day] {
                day += 1;
                continue;
            }
            let mut last = day;
            while last + 1 < 7 && self.days[last + 1] {
                last += 1;
            }
            if !days.is_empty() {
                days.push_str(", ");
            }
            if last - day >= 2 {
                let _ = write!(days, "{}–{}", DAY_NAMES[day], DAY_NAMES[last]);
            } else {
                days.push_str(&DAY_NAMES[day..=last].join(", "));
            }
            day = last + 1;
        }
        format!(
            "{days} {}–{}",
            minute_text(self.start),
            minute_text(self.end)
        )
    }
}

pub(super) fn compile_weekly(index: usize, window: &AllowWindow) -> Result<Weekly, WindowError> {
    let AllowWindow { days, start, end } = window;
    if days.is_empty() {
        return Err(WindowError::NoDays { window: index });
    }
    let mut set = [false; 7];
    for (day_index, name) in days.iter().enumerate() {
        let day = DAY_NAMES
            .iter()
            .position(|known| known == name)
            .ok_or_else(|| WindowError::Day {
                window: index,
                index: day_index,
                value: name.clone(),
            })?;
        set[day] = true;
    }
    let time_error = |field: &'static str, value: &String| WindowError::TimeOfDay {
        window: index,
        field,
        value: value.clone(),
    };
    let start_minute = parse_minute(start, false).ok_or_else(|| time_error("start", start))?;
    let end_minute = parse_minute(end, true).ok_or_else(|| time_error("end", end))?;
    if start_minute == end_minute {
        return Err(WindowError::StartEqualsEnd {
            window: index,
            value: start.clone(),
        });
    }
    Ok(Weekly {
        days: set,
        start: start_minute,
        end: end_minute,
    })
}

/// `HH:MM` as minutes after midnight: 00:00–23:59, and `24:00` (1440) when `allow_24`.
pub(super) fn parse_minute(text: &str, allow_24: bool) -> Option<u16> {
    let bytes = text.as_bytes();
    if bytes.len() != 5 || bytes[2] != b':' {
        return None;
    }
    let digit = |i: usize| {
        bytes[i]
            .is_ascii_digit()
            .then(|| u16::from(bytes[i] - b'0'))
    };
    let hour = digit(0)? * 10 + digit(1)?;
    let minute = digit(3)? * 10 + digit(4)?;
    match (hour, minute) {
        (0..=23, 0..=59) => Some(hour * 60 + minute),
        (24, 0) if allow_24 => Some(MINUTES_PER_DAY),
        _ => None,
    }
}

pub(super) fn at_minute(date: Date, minute: u16) -> DateTime {
    // `minute` < 1440, so both parts are in range and `at` cannot panic.
    let hour = i8::try_from(minute / 60).unwrap_or(0);
    let minute = i8::try_from(minute % 60).unwrap_or(0);
    date.at(hour, minute, 0, 0)
}

pub(super) fn minute_text(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}
