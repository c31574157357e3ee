//! Who may pass: a person's role and their weekly time windows.
//!
//! Roles and schedules are stored as text in the database (`employee`, `mon-fri 07:00-19:00`),
//! so both parse from and print to the same form.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// What a person is to the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Opens the door inside their schedule.
    #[default]
    Employee,
    /// Opens the door inside their schedule (usually a short one).
    Visitor,
    /// Never opens the door; a match raises an alert.
    Watchlist,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Employee, Role::Visitor, Role::Watchlist];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Employee => "employee",
            Role::Visitor => "visitor",
            Role::Watchlist => "watchlist",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| anyhow::anyhow!("unknown role `{s}`: use employee, visitor or watchlist"))
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One weekly window: a set of weekdays and a time span on each, in minutes after local midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Bit 0 = Monday ... bit 6 = Sunday.
    pub days: u8,
    pub start_min: u16,
    /// Exclusive; may be 1440 (`24:00`).
    pub end_min: u16,
}

/// Weekly time windows; empty means "at any time".
///
/// Text form: `always`, or comma-separated windows like `mon-fri 07:00-19:00, sat 08:00-12:00`
/// (days as ranges or single days joined by `+`, e.g. `mon+wed 09:00-17:00`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    pub windows: Vec<Window>,
}

impl Schedule {
    /// Whether `weekday` (0 = Monday) at `minute` after local midnight falls in a window.
    pub fn allows(&self, weekday: u8, minute: u16) -> bool {
        self.windows.is_empty()
            || self.windows.iter().any(|w| w.days & (1 << weekday) != 0 && minute >= w.start_min && minute < w.end_min)
    }
}

fn parse_day(s: &str) -> Result<u8> {
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .map(|i| i as u8)
        .ok_or_else(|| anyhow::anyhow!("unknown day `{s}`: use mon, tue, wed, thu, fri, sat or sun"))
}

fn parse_days(s: &str) -> Result<u8> {
    let mut mask = 0u8;
    for part in s.split('+') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_day(a)?, parse_day(b)?);
                if a > b {
                    bail!("day range `{part}` runs backwards: write it Monday-first, e.g. mon-fri");
                }
                for d in a..=b {
                    mask |= 1 << d;
                }
            }
            None => mask |= 1 << parse_day(part)?,
        }
    }
    Ok(mask)
}

fn parse_time(s: &str) -> Result<u16> {
    let (h, m) = s.split_once(':').ok_or_else(|| anyhow::anyhow!("time `{s}` must be HH:MM"))?;
    let (h, m): (u16, u16) = (h.parse()?, m.parse()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        bail!("time `{s}` is not a time of day (00:00 to 24:00)");
    }
    Ok(h * 60 + m)
}

impl FromStr for Schedule {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Schedule> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("always") {
            return Ok(Schedule::default());
        }
        let mut windows = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            let parse = || -> Result<Window> {
                let (days, span) = item
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| anyhow::anyhow!("expected `DAYS HH:MM-HH:MM`"))?;
                let (start, end) =
                    span.trim().split_once('-').ok_or_else(|| anyhow::anyhow!("expected a span HH:MM-HH:MM"))?;
                let (start_min, end_min) = (parse_time(start)?, parse_time(end)?);
                if start_min >= end_min {
                    bail!(
                        "the window ends before it starts (a night shift is two windows: 22:00-24:00 and 00:00-06:00)"
                    );
                }
                Ok(Window { days: parse_days(days)?, start_min, end_min })
            };
            windows.push(parse().map_err(|e| {
                anyhow::anyhow!("schedule window `{item}`: {e:#} (example: `mon-fri 07:00-19:00, sat 08:00-12:00`)")
            })?);
        }
        Ok(Schedule { windows })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.windows.is_empty() {
            return f.write_str("always");
        }
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let days: Vec<&str> = (0..7).filter(|d| w.days & (1 << d) != 0).map(|d| DAYS[d]).collect();
            write!(
                f,
                "{} {:02}:{:02}-{:02}:{:02}",
                days.join("+"),
                w.start_min / 60,
                w.start_min % 60,
                w.end_min / 60,
                w.end_min % 60
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_roles_are_named() {
        for role in Role::ALL {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        }
        let err = "boss".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("boss") && err.contains("employee"), "{err}");
    }

    #[test]
    fn schedules_parse_check_and_round_trip() {
        let s: Schedule = "mon-fri 07:00-19:00, sat 08:00-12:00".parse().unwrap();
        assert!(s.allows(0, 7 * 60));
        assert!(!s.allows(0, 19 * 60), "end is exclusive");
        assert!(s.allows(5, 9 * 60));
        assert!(!s.allows(6, 9 * 60), "no Sunday window");
        let again: Schedule = s.to_string().parse().unwrap();
        assert_eq!(again, s);
        assert!(Schedule::default().allows(6, 3 * 60), "empty schedule = always");
        assert_eq!("always".parse::<Schedule>().unwrap(), Schedule::default());
        let mixed: Schedule = "mon+wed 09:00-24:00".parse().unwrap();
        assert!(mixed.allows(2, 23 * 60 + 59) && !mixed.allows(1, 10 * 60));
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (bad, needle) in [
            ("fri-mon 07:00-09:00", "backwards"),
            ("mon 19:00-07:00", "night shift"),
            ("mon 25:00-26:00", "25:00"),
            ("funday 07:00-09:00", "funday"),
            ("mon", "DAYS"),
        ] {
            let err = format!("{:#}", bad.parse::<Schedule>().unwrap_err());
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
