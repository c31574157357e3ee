//! `facegate people`, `attendance`, `forget` (and the hidden `store-torture` used by the crash
//! test): the commands that work on the SQLite store without the face models.

use std::io::Write;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use jiff::ToSpan;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::act::store::{AccessEvent, DayAttendance, EventKind, NewTemplate, Store};
use crate::act::{Outbox, OutboxEvent};
use crate::api::{Actor, ApiResult, NodeApi, RateLimits, Reload};
use crate::config::Config;
use crate::decide::policy::{Doors, Role, Schedule};
use crate::gallery::TemplateModel;

#[derive(Debug, Args)]
pub struct PeopleArgs {
    #[command(subcommand)]
    pub command: PeopleCommand,
}

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Everyone enrolled: id, name, role, schedule, templates.
    List {
        /// Print JSON (one array).
        #[arg(long)]
        json: bool,
    },
    /// Adds a person without photos (enroll adds photos).
    Add {
        name: String,
        /// employee, visitor or watchlist.
        #[arg(long, default_value = "employee")]
        role: Role,
        /// Weekly windows, e.g. "mon-fri 07:00-19:00, sat 08:00-12:00", or "always".
        #[arg(long, default_value = "always")]
        schedule: Schedule,
    },
    /// Removes a person and their templates (their past events stay; see `forget`).
    Remove { who: String },
    /// Renames a person (WHO is a name or #id).
    Rename { who: String, new_name: String },
    /// Sets a person's role: employee, visitor or watchlist.
    SetRole { who: String, role: Role },
    /// Sets a person's weekly schedule, e.g. "mon-fri 07:00-19:00" or "always".
    SetSchedule { who: String, schedule: Schedule },
    /// Sets the doors a person may open: "all" (the default) or names, e.g. "front,garage".
    SetDoors { who: String, doors: Doors },
}

/// The node's API for a CLI command: the same checks and audit events as MQTT and the web
/// console, with the local operator ([`Actor::cli`]) as the actor. It opens no door and cannot
/// reload or snapshot (those need the running service). No rate limits: they keep remote
/// clients from flooding a node, and the local operator (who can write the database anyway)
/// enrolls a whole folder in a row with `enroll --from`.
pub(crate) fn cli_api(config: &Config) -> Result<NodeApi> {
    let store = Store::open_config(&config.store)?;
    let reload = Reload { source: None, control: Default::default() };
    let api = NodeApi::new(config.clone(), store, std::collections::HashMap::new(), reload, Default::default());
    Ok(api.with_limits(RateLimits::new(&[])))
}

/// Runs one change through the API as the local operator; a refusal or failure is the error.
fn by_cli(config: &Config, call: impl FnOnce(&mut NodeApi, &Actor) -> ApiResult) -> Result<serde_json::Value> {
    let mut api = cli_api(config)?;
    Ok(call(&mut api, &Actor::cli())?)
}

pub fn people(config: &Config, args: PeopleArgs) -> Result<i32> {
    let store = Store::open_config(&config.store)?;
    match args.command {
        PeopleCommand::List { json } => {
            let people = store.people()?;
            if json {
                println!("{}", serde_json::to_string(&people)?);
            } else if people.is_empty() {
                println!("nobody is enrolled in {}", store.path().display());
            } else {
                println!("{:>5}  {:<24} {:<10} {:>9}  {:<16} schedule", "id", "name", "role", "templates", "doors");
                for p in people {
                    println!(
                        "{:>5}  {:<24} {:<10} {:>9}  {:<16} {}",
                        format!("#{}", p.id),
                        p.name,
                        p.role.as_str(),
                        p.templates,
                        p.doors.to_string(),
                        p.schedule
                    );
                }
            }
        }
        PeopleCommand::Add { name, role, schedule } => {
            let added = by_cli(config, |api, cli| api.add_person(cli, &name, role, schedule.clone()))?;
            println!("added #{} {} ({role}, {schedule})", added["added"], name.trim());
        }
        PeopleCommand::Remove { who } => {
            by_cli(config, |api, cli| api.remove(cli, &who))?;
            println!("removed {who} and their templates (past events kept; `facegate forget` erases them)");
        }
        PeopleCommand::Rename { who, new_name } => {
            by_cli(config, |api, cli| api.rename(cli, &who, &new_name))?;
            println!("renamed {who} to {}", new_name.trim());
        }
        PeopleCommand::SetRole { who, role } => {
            by_cli(config, |api, cli| api.set_role(cli, &who, role))?;
            println!("{who} is now {role}");
        }
        PeopleCommand::SetSchedule { who, schedule } => {
            let shown = schedule.to_string();
            by_cli(config, |api, cli| api.set_schedule(cli, &who, schedule))?;
            println!("{who} may pass: {shown}");
        }
        PeopleCommand::SetDoors { who, doors } => {
            if let Doors::Only(names) = &doors
                && config.doors.is_empty()
            {
                for name in names {
                    log::warn!(
                        "no [[door]] in this config to check `{name}` against (a typo, or a door of another node?)"
                    );
                }
            }
            let shown = doors.to_string();
            by_cli(config, |api, cli| api.set_doors(cli, &who, doors))?;
            println!("{who} may open: {shown}");
        }
    }
    Ok(0)
}

#[derive(Debug, Args)]
pub struct AttendanceArgs {
    /// First day (YYYY-MM-DD, in `[service] timezone`, else the system's); default: 6 days before --to.
    #[arg(long, value_name = "DATE")]
    pub from: Option<Date>,
    /// Last day (YYYY-MM-DD, included); default: today.
    #[arg(long, value_name = "DATE")]
    pub to: Option<Date>,
    /// Print CSV: date,person,first_in,last_out,passes (local times).
    #[arg(long)]
    pub csv: bool,
}

pub fn attendance(config: &Config, args: AttendanceArgs) -> Result<i32> {
    // The site's zone, as the web console and the schedules use: one day boundary everywhere.
    let tz = config.service.time_zone()?;
    let to = args.to.unwrap_or_else(|| jiff::Timestamp::now().to_zoned(tz.clone()).date());
    let from = match args.from {
        Some(from) => from,
        None => to.checked_sub(6.days())?,
    };
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    let store = Store::open_config(&config.store)?;
    let days = store.attendance(from, to, &tz)?;
    let local = |t: jiff::Timestamp| t.to_zoned(tz.clone()).time().strftime("%H:%M:%S").to_string();
    if args.csv {
        write_attendance_csv(std::io::stdout().lock(), &days, &tz)?;
    } else {
        let zone = tz.iana_name().unwrap_or("local time");
        println!("attendance {from} to {to} ({zone}): {} person-day(s)", days.len());
        println!("{:<10}  {:<24} {:>8}  {:>8}  {:>6}", "date", "person", "first in", "last out", "passes");
        for d in &days {
            println!(
                "{:<10}  {:<24} {:>8}  {:>8}  {:>6}",
                d.date,
                d.person,
                local(d.first_in),
                local(d.last_out),
                d.passes
            );
        }
    }
    Ok(0)
}

/// The attendance CSV (`date,person,first_in,last_out,passes`, local times), as printed by
/// `facegate attendance --csv` and downloaded from the web console.
pub fn write_attendance_csv(out: impl Write, days: &[DayAttendance], tz: &TimeZone) -> Result<()> {
    let local = |t: jiff::Timestamp| t.to_zoned(tz.clone()).time().strftime("%H:%M:%S").to_string();
    let mut out = csv::Writer::from_writer(out);
    out.write_record(["date", "person", "first_in", "last_out", "passes"])?;
    for d in days {
        out.write_record([
            d.date.to_string(),
            d.person.clone(),
            local(d.first_in),
            local(d.last_out),
            d.passes.to_string(),
        ])?;
    }
    out.flush()?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The person (name or #id); also erases events that carry this name after a `remove`.
    pub who: String,
}

pub fn forget(config: &Config, args: ForgetArgs) -> Result<i32> {
    let r = by_cli(config, |api, cli| api.forget(cli, &args.who))?;
    let person = if r["person"] == serde_json::json!(true) { "the person" } else { "no person row (removed earlier)" };
    println!(
        "erased {}: {person}, {} template(s), {} event(s), {} undelivered MQTT event(s), {} unknown face(s) from {}",
        r["name"].as_str().unwrap_or(&args.who),
        r["templates"],
        r["events"],
        r["outbox"],
        r["unknown_faces"],
        config.store.path.display()
    );
    Ok(0)
}

#[derive(Debug, Args)]
pub struct TortureArgs {
    /// Distinguishes the rows of one run from another's.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop after this many writes (default: until killed).
    #[arg(long)]
    pub count: Option<u64>,
}

/// The dimension of the synthetic templates written by `store-torture`.
pub const TORTURE_DIM: usize = 8;

/// Writes events (with outbox rows), templates and acks in a loop, printing each row only after
/// the store call returned: the crash test kills this process and checks every printed row.
/// Lines: `E <event id> <tag> <i>`, `T <person> <sha> <i>`.
pub fn torture(config: &Config, args: TortureArgs) -> Result<i32> {
    let mut store = Store::open_config(&config.store)?;
    let model = TemplateModel { id: "torture".into(), dim: TORTURE_DIM };
    let mut out = std::io::stdout().lock();
    for i in 0..args.count.unwrap_or(u64::MAX) {
        let tag = format!("{}-{i}", args.seed);
        if i.is_multiple_of(8) {
            let person = format!("p{}", i / 8 % 5);
            let t = NewTemplate { embedding: vec![i as f32; TORTURE_DIM], source_sha256: tag.clone(), thumbnail: None };
            store.add_templates(&person, &model, &[t])?;
            writeln!(out, "T {person} {tag} {i}")?;
        } else {
            let event = torture_event(&tag, i);
            let outbox = [OutboxEvent {
                event_id: tag.clone(),
                topic: "event/decision".into(),
                payload: format!("{{\"i\":{i}}}").into_bytes(),
                retain: false,
            }];
            let id = store.record_event(&event, &outbox)?;
            writeln!(out, "E {id} {tag} {i}")?;
        }
        if i.is_multiple_of(13) {
            // Exercise deletes too: ack the oldest queued event, as the MQTT publisher would.
            if let Some(p) = store.pending(0, 1)?.first() {
                store.ack(p.seq)?;
            }
        }
        out.flush()?;
    }
    Ok(0)
}

/// The event `store-torture` writes for `tag`/`i`; the crash test rebuilds it to compare.
pub fn torture_event(tag: &str, i: u64) -> AccessEvent {
    AccessEvent {
        at: jiff::Timestamp::from_millisecond(1_700_000_000_000 + i as i64).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        camera: "torture".into(),
        door: Some("door".into()),
        person_id: None,
        person_name: Some(format!("n{tag}")),
        kind: if i.is_multiple_of(2) { EventKind::Granted } else { EventKind::Unknown },
        reason: Some(format!("r{tag}")),
        similarity: Some(i as f32 / 1000.0),
        margin: Some(0.125),
        votes: (i % 7) as u32,
        window: 7,
        bbox: None,
        liveness: None,
    }
}
