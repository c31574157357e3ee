//! Who may pass: a person's role, their weekly time windows and the doors they may open, and the
//! rule ([`evaluate_at_door`]) that turns them into an access decision at the site's local time.
//!
//! Roles, schedules and door lists are stored as text in the database (`employee`,
//! `mon-fri 07:00-19:00`, `front,garage`), so each parses from and prints to the same form.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
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

    /// Whether a local wall-clock time falls in a window.
    pub fn allows_at(&self, local: DateTime) -> bool {
        let weekday = local.weekday().to_monday_zero_offset() as u8;
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        self.allows(weekday, minute)
    }
}

/// What the door does for a recognised (or unknown) face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "access")]
pub enum Access {
    /// Open the door.
    Granted,
    /// Keep the door shut; the reason goes into the attendance record.
    Denied { reason: DenyReason },
    /// Keep the door shut and raise an alert: a watchlist match.
    Alert,
}

/// Why a door stayed shut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// A known person outside all of their weekly windows.
    OutsideSchedule,
    /// The face matched nobody in the gallery (set by the decision loop, never by [`evaluate`]).
    UnknownFace,
    /// A known person at a door that is not on their list.
    DoorNotAllowed,
}

/// The doors a person may open: every door (the default), or only the named ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Doors {
    #[default]
    All,
    Only(std::collections::BTreeSet<String>),
}

impl Doors {
    /// Whether `door` is on the list (a camera without a door opens nothing, so any person is
    /// "allowed" there: the decision is recorded, no relay moves).
    pub fn allows(&self, door: Option<&str>) -> bool {
        match (self, door) {
            (Doors::All, _) | (_, None) => true,
            (Doors::Only(names), Some(door)) => names.contains(door),
        }
    }
}

impl FromStr for Doors {
    type Err = anyhow::Error;

    /// `all`, or door names separated by commas (`front,garage`).
    fn from_str(s: &str) -> Result<Doors> {
        if s.trim().eq_ignore_ascii_case("all") {
            return Ok(Doors::All);
        }
        let names: std::collections::BTreeSet<String> =
            s.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
        if names.is_empty() {
            bail!("no door named: write `all` or door names separated by commas, e.g. `front,garage`");
        }
        Ok(Doors::Only(names))
    }
}

impl fmt::Display for Doors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doors::All => f.write_str("all"),
            Doors::Only(names) => f.write_str(&names.iter().map(String::as_str).collect::<Vec<_>>().join(",")),
        }
    }
}

impl Access {
    pub fn is_granted(self) -> bool {
        self == Access::Granted
    }
}

/// The access rule: employees and visitors pass inside their schedule and are denied outside it;
/// a watchlist match never opens the door and raises an alert, whatever the schedule says.
///
/// `local` is the site's wall-clock time (see [`site_local_time`]), so windows follow the
/// site's time zone and daylight-saving changes.
pub fn evaluate(role: Role, schedule: &Schedule, local: DateTime) -> Access {
    match role {
        Role::Watchlist => Access::Alert,
        Role::Employee | Role::Visitor if schedule.allows_at(local) => Access::Granted,
        Role::Employee | Role::Visitor => Access::Denied { reason: DenyReason::OutsideSchedule },
    }
}

/// [`evaluate`] at a door (`None`: a watch-only camera): a person whose door list does not name
/// it is denied there, whatever their schedule; a watchlist match is an alert at any door.
pub fn evaluate_at_door(role: Role, schedule: &Schedule, doors: &Doors, door: Option<&str>, local: DateTime) -> Access {
    match evaluate(role, schedule, local) {
        Access::Granted if !doors.allows(door) => Access::Denied { reason: DenyReason::DoorNotAllowed },
        access => access,
    }
}

/// The wall-clock time at the site for an instant: what schedules are written in.
pub fn site_local_time(at: Timestamp, site: &TimeZone) -> DateTime {
    site.to_datetime(at)
}

/// The site's time zone by IANA name (`Europe/Berlin`), or the system's when `name` is `None`.
pub fn site_time_zone(name: Option<&str>) -> Result<TimeZone> {
    match name {
        None => Ok(TimeZone::system()),
        Some(name) => TimeZone::get(name).with_context(|| {
            format!(
                "unknown time zone `{name}`: use an IANA name such as Europe/Berlin \
                 (list: `timedatectl list-timezones`; install the tzdata package if the list is empty)"
            )
        }),
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

/// The days of a window as people write them: runs of three or more days as a range
/// (`mon-fri`), others joined with `+` (`mon+wed`, `sat+sun`).
fn days_text(mask: u8) -> String {
    let mut parts = Vec::new();
    let mut d = 0;
    while d < 7 {
        if mask & (1 << d) == 0 {
            d += 1;
            continue;
        }
        let start = d;
        while d + 1 < 7 && mask & (1 << (d + 1)) != 0 {
            d += 1;
        }
        match d - start {
            0 => parts.push(DAYS[start].to_string()),
            1 => parts.extend([DAYS[start].to_string(), DAYS[d].to_string()]),
            _ => parts.push(format!("{}-{}", DAYS[start], DAYS[d])),
        }
        d += 1;
    }
    parts.join("+")
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
            write!(
                f,
                "{} {:02}:{:02}-{:02}:{:02}",
                days_text(w.days),
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
        assert_eq!(s.to_string(), "mon-fri 07:00-19:00, sat 08:00-12:00", "printed as it is written");
        let again: Schedule = s.to_string().parse().unwrap();
        assert_eq!(again, s);
        let odd: Schedule = "mon+tue+wed+fri+sat 08:00-09:00, sun 10:00-11:00".parse().unwrap();
        assert_eq!(odd.to_string(), "mon-wed+fri+sat 08:00-09:00, sun 10:00-11:00");
        assert_eq!(odd.to_string().parse::<Schedule>().unwrap(), odd);
        assert!(Schedule::default().allows(6, 3 * 60), "empty schedule = always");
        assert_eq!("always".parse::<Schedule>().unwrap(), Schedule::default());
        let mixed: Schedule = "mon+wed 09:00-24:00".parse().unwrap();
        assert!(mixed.allows(2, 23 * 60 + 59) && !mixed.allows(1, 10 * 60));
    }

    #[test]
    fn door_lists_parse_round_trip_and_restrict_only_their_doors() {
        let only: Doors = " garage , front ".parse().unwrap();
        assert_eq!(only.to_string(), "front,garage");
        assert_eq!(only.to_string().parse::<Doors>().unwrap(), only);
        assert_eq!("ALL".parse::<Doors>().unwrap(), Doors::All);
        assert!(" , ".parse::<Doors>().unwrap_err().to_string().contains("front,garage"));
        let noon = at("2026-11-23T12:00");
        let always = Schedule::default();
        let employee = |door| evaluate_at_door(Role::Employee, &always, &only, door, noon);
        assert_eq!(employee(Some("front")), Access::Granted);
        assert_eq!(employee(Some("lab")), Access::Denied { reason: DenyReason::DoorNotAllowed });
        assert_eq!(employee(None), Access::Granted, "a watch-only camera records, opens nothing");
        assert_eq!(evaluate_at_door(Role::Employee, &always, &Doors::All, Some("lab"), noon), Access::Granted);
        let office: Schedule = "mon-fri 07:00-19:00".parse().unwrap();
        let late = evaluate_at_door(Role::Employee, &office, &only, Some("front"), at("2026-11-23T20:00"));
        assert_eq!(late, Access::Denied { reason: DenyReason::OutsideSchedule });
        let watch = evaluate_at_door(Role::Watchlist, &always, &only, Some("lab"), noon);
        assert_eq!(watch, Access::Alert, "a watchlist match alerts at every door");
    }

    fn at(text: &str) -> DateTime {
        text.parse().unwrap()
    }

    #[test]
    fn employees_and_visitors_pass_inside_their_window_only() {
        let office: Schedule = "mon-fri 07:00-19:00".parse().unwrap();
        // 2026-11-23 is a Monday.
        for role in [Role::Employee, Role::Visitor] {
            assert_eq!(evaluate(role, &office, at("2026-11-23T07:00")), Access::Granted);
            assert_eq!(evaluate(role, &office, at("2026-11-23T18:59")), Access::Granted);
            let denied = Access::Denied { reason: DenyReason::OutsideSchedule };
            assert_eq!(evaluate(role, &office, at("2026-11-23T19:00")), denied, "end is exclusive");
            assert_eq!(evaluate(role, &office, at("2026-11-23T06:59")), denied);
            assert_eq!(evaluate(role, &office, at("2026-11-28T10:00")), denied, "Saturday");
            assert_eq!(evaluate(role, &Schedule::default(), at("2026-11-29T03:00")), Access::Granted, "always");
        }
    }

    #[test]
    fn watchlist_never_opens_and_raises_an_alert() {
        for schedule in [Schedule::default(), "mon-sun 00:00-24:00".parse().unwrap()] {
            let access = evaluate(Role::Watchlist, &schedule, at("2026-11-23T12:00"));
            assert_eq!(access, Access::Alert);
            assert!(!access.is_granted());
        }
    }

    #[test]
    fn access_serialises_in_snake_case() {
        let denied = Access::Denied { reason: DenyReason::OutsideSchedule };
        assert_eq!(serde_json::to_string(&denied).unwrap(), r#"{"access":"denied","reason":"outside_schedule"}"#);
        assert_eq!(serde_json::to_string(&Access::Alert).unwrap(), r#"{"access":"alert"}"#);
        let back: Access = serde_json::from_str(r#"{"access":"denied","reason":"unknown_face"}"#).unwrap();
        assert_eq!(back, Access::Denied { reason: DenyReason::UnknownFace });
    }

    /// On 2026-03-29 Berlin jumps from 02:00 CET to 03:00 CEST: 01:30 UTC is 03:30 local, not 02:30.
    fn check_spring_forward(tz: &TimeZone) {
        let early: Schedule = "sun 03:00-04:00".parse().unwrap();
        let before: Timestamp = "2026-03-29T00:30:00Z".parse().unwrap();
        let after: Timestamp = "2026-03-29T01:30:00Z".parse().unwrap();
        assert_eq!(site_local_time(before, tz), at("2026-03-29T01:30"));
        assert_eq!(site_local_time(after, tz), at("2026-03-29T03:30"));
        assert!(!evaluate(Role::Employee, &early, site_local_time(before, tz)).is_granted());
        assert!(evaluate(Role::Employee, &early, site_local_time(after, tz)).is_granted());
        // In autumn (2026-10-25) 02:30 local happens twice; both instants fall in a 02:00-03:00 window.
        let night: Schedule = "sun 02:00-03:00".parse().unwrap();
        for utc in ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"] {
            let local = site_local_time(utc.parse().unwrap(), tz);
            assert_eq!(local, at("2026-10-25T02:30"), "{utc}");
            assert!(evaluate(Role::Employee, &night, local).is_granted());
        }
    }

    #[test]
    fn schedules_follow_daylight_saving_with_a_posix_rule() {
        // Needs no time-zone database, so it runs everywhere.
        check_spring_forward(&TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap());
    }

    #[test]
    fn schedules_follow_daylight_saving_in_europe_berlin_from_the_tz_database() {
        // CI installs tzdata (.ci/deps-door.txt); without it the error must say what to install.
        let berlin = site_time_zone(Some("Europe/Berlin")).unwrap_or_else(|e| panic!("{e:#}"));
        check_spring_forward(&berlin);
        let err = format!("{:#}", site_time_zone(Some("Mars/Olympus")).unwrap_err());
        assert!(err.contains("Mars/Olympus") && err.contains("tzdata"), "{err}");
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
