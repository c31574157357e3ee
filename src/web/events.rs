//! The event log and the health page. The log merges the decisions (`events`: who, why, with
//! what similarity) with the node journal (door pulses, contact, forced and held-open doors,
//! cameras online/offline, audit events), filtered by kind, person, camera and date. The health
//! page shows each camera's state and frame rate, the outbox, the `facegate doctor` checks (the
//! same code, run on demand: some probe the broker and take seconds) and the door test.
// Early returns carry the finished HTTP response as the error, as in `handlers`.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::Session;
use super::handlers::{Admin, WebState};
use super::pages::{layout, local_time};
use crate::act::store::{AccessEvent, EventFilter, EventKind, JOURNAL_KINDS, JournalEntry, JournalFilter};
use crate::capture::CameraStats;
use crate::cli::doctor::{Check, Level};
use crate::config::Config;

/// Rows shown per source (decisions, journal): the newest; narrow the filter for older ones.
const ROWS: usize = 200;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/events", get(events_page))
        .route("/health", get(health_page))
        .route("/health/doctor", post(run_doctor))
}

/// The last `doctor` run of this console (none until someone asks).
#[derive(Default)]
pub struct Doctor {
    last: Mutex<Option<(Timestamp, Vec<Check>)>>,
}

#[derive(Deserialize, Default)]
pub struct EventQuery {
    pub kind: Option<String>,
    pub camera: Option<String>,
    pub person: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A checked filter: decisions and/or journal rows, by kind, person, camera and local dates.
struct Filter {
    decisions: Option<EventFilter>,
    journal: Option<JournalFilter>,
}

fn text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(|s| s.chars().take(100).collect())
}

fn date(s: &Option<String>, tz: &TimeZone) -> Result<Option<Timestamp>, String> {
    let Some(t) = text(s) else { return Ok(None) };
    let d: Date = t.parse().map_err(|_| format!("`{}` is not a date: use YYYY-MM-DD", t.escape_default()))?;
    d.to_zoned(tz.clone()).map(|z| Some(z.timestamp())).map_err(|e| format!("{d}: {e}"))
}

fn filter(q: &EventQuery, tz: &TimeZone) -> Result<Filter, String> {
    let from = date(&q.from, tz)?;
    // `to` is inclusive: up to the start of the next day.
    let to = match date(&q.to, tz)? {
        Some(t) => Some(t.checked_add(jiff::SignedDuration::from_hours(24)).map_err(|e| e.to_string())?),
        None => None,
    };
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err("the first day is after the last: swap them".into());
    }
    let (camera, person) = (text(&q.camera), text(&q.person));
    let decision = EventFilter { kind: None, camera: camera.clone(), person: person.clone(), from, to };
    // A person filter leaves only decisions: journal rows name no one.
    let journal = person.is_none().then(|| JournalFilter { kind: None, subject: camera.clone(), from, to });
    Ok(match text(&q.kind).as_deref() {
        None => Filter { decisions: Some(decision), journal },
        Some("decisions") => Filter { decisions: Some(decision), journal: None },
        Some(k) if JOURNAL_KINDS.contains(&k) => {
            // Door rows are about doors, not cameras: a camera filter keeps only camera rows.
            let door_kind = !k.starts_with("camera_") && k != "audit";
            let journal = journal.filter(|_| !(door_kind && camera.is_some()));
            Filter { decisions: None, journal: journal.map(|j| JournalFilter { kind: Some(k.to_string()), ..j }) }
        }
        Some(k) => {
            let kind: EventKind = k.parse().map_err(|_| {
                format!(
                    "unknown event kind `{}`: use decisions, granted, denied, unknown, alert or {}",
                    k.escape_default(),
                    JOURNAL_KINDS.join(", ")
                )
            })?;
            Filter { decisions: Some(EventFilter { kind: Some(kind), ..decision }), journal: None }
        }
    })
}

/// One row of the log, from either source.
enum Row {
    Decision(AccessEvent),
    Journal(JournalEntry),
}

impl Row {
    fn at(&self) -> Timestamp {
        match self {
            Row::Decision(e) => e.at,
            Row::Journal(j) => j.at,
        }
    }
}

async fn events_page(State(state): State<Arc<WebState>>, admin: Admin, Query(q): Query<EventQuery>) -> Response {
    let f = match filter(&q, &state.tz) {
        Ok(f) => f,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, super::pages::message(Some(&admin.session), "Problem", &e))
                .into_response();
        }
    };
    let mut rows = Vec::new();
    {
        let store = state.store();
        if let Some(d) = &f.decisions {
            match store.recent_events(d, ROWS) {
                Ok(events) => rows.extend(events.into_iter().map(|(_, e)| Row::Decision(e))),
                Err(e) => return internal(&admin, e),
            }
        }
        if let Some(j) = &f.journal {
            match store.journal(j, ROWS) {
                Ok(entries) => rows.extend(entries.into_iter().map(Row::Journal)),
                Err(e) => return internal(&admin, e),
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.at()));
    events(&admin.session, &q, &rows, &state.tz, &state.config).into_response()
}

fn internal(admin: &Admin, e: anyhow::Error) -> Response {
    log::error!("web: {e:#}");
    (StatusCode::INTERNAL_SERVER_ERROR, super::pages::message(Some(&admin.session), "Problem", &format!("{e:#}")))
        .into_response()
}

fn events(s: &Session, q: &EventQuery, rows: &[Row], tz: &TimeZone, config: &Config) -> Html<String> {
    let val = |o: &Option<String>| o.clone().unwrap_or_default();
    let kinds: Vec<&str> =
        ["decisions", "granted", "denied", "unknown", "alert"].into_iter().chain(JOURNAL_KINDS).collect();
    layout(
        Some(s),
        "Events",
        html! {
            div.card {
                form method="get" action="/events" class="row" {
                    label { "Kind" br; select name="kind" {
                        option value="" { "any" }
                        @for k in &kinds { option selected[q.kind.as_deref() == Some(*k)] { (k) } }
                    } }
                    label { "Camera" br; select name="camera" {
                        option value="" { "any" }
                        @for c in &config.cameras { option selected[q.camera.as_deref() == Some(c.name.as_str())] { (c.name) } }
                    } }
                    label { "Person" br; input name="person" value=(val(&q.person)) size="12"; }
                    label { "From" br; input name="from" type="date" value=(val(&q.from)); }
                    label { "To" br; input name="to" type="date" value=(val(&q.to)); }
                    button { "Filter" }
                }
            }
            div.scroll { table.log {
                thead { tr { th{"time"} th{"kind"} th{"where"} th{"person"} th{"details"} } }
                tbody { @for r in rows { (row(r, tz)) } }
            } }
            p { small { (rows.len()) " shown (at most " (ROWS) " decisions and " (ROWS) " other events, newest first; narrow the filter for older ones)" } }
        },
    )
}

fn row(r: &Row, tz: &TimeZone) -> Markup {
    match r {
        Row::Decision(e) => html! { tr {
            td { (local_time(tz, e.at)) } td class=(e.kind.as_str()) { (e.kind.as_str()) }
            td { (e.camera) @if let Some(d) = &e.door { " → " (d) } }
            td { (e.person_name.as_deref().unwrap_or("unknown")) }
            td {
                @if let Some(v) = e.similarity { "similarity " (format!("{v:.2}")) " · " }
                "votes " (e.votes) "/" (e.window)
                @if let Some(reason) = &e.reason { " · " b { (reason) } }
            }
        } },
        Row::Journal(j) => html! { tr.journal {
            td { (local_time(tz, j.at)) } td class=(j.kind) { (j.kind) } td { (j.subject) } td {} td { (j.detail) }
        } },
    }
}

// ---------- health ----------

async fn health_page(State(state): State<Arc<WebState>>, admin: Admin) -> Response {
    let cameras = state.hub.as_ref().map(|h| h.stats()).unwrap_or_default();
    let (waiting, dropped) = {
        use crate::act::Outbox;
        let mut store = state.store();
        (store.waiting().ok(), store.outbox_dropped().ok())
    };
    let last = state.doctor.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
    health(&admin.session, &state.config, &cameras, waiting, dropped, last.as_ref(), &state.tz).into_response()
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Runs every `facegate doctor` check that makes sense inside the running node, then shows them.
async fn run_doctor(State(state): State<Arc<WebState>>, admin: Admin, Form(form): Form<CsrfForm>) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let config = state.config.clone();
    let args = crate::cli::doctor::DoctorArgs { camera_timeout: 10.0, mqtt_timeout: 5.0 };
    match tokio::task::spawn_blocking(move || crate::cli::doctor::checks(&config, &args, true)).await {
        Ok(checks) => {
            log::info!("web: {} ran the doctor checks", admin.session.admin);
            *state.doctor.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Timestamp::now(), checks));
            Redirect::to("/health").into_response()
        }
        Err(e) => internal(&admin, anyhow::anyhow!("the checks stopped: {e}")),
    }
}

fn health(
    s: &Session,
    config: &Config,
    cameras: &[CameraStats],
    waiting: Option<u64>,
    dropped: Option<u64>,
    doctor: Option<&(Timestamp, Vec<Check>)>,
    tz: &TimeZone,
) -> Html<String> {
    let opt = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    layout(
        Some(s),
        "Health",
        html! {
            div.card { h2 { "Cameras" } div.scroll { table {
                thead { tr { th{"camera"} th{"state"} th{"fps"} th{"frames"} th{"dropped"} th{"corrupt"} th{"reconnects"} } }
                tbody { @for c in cameras { tr {
                    td{(c.name)} td{(format!("{:?}", c.state))} td{(format!("{:.1}", c.fps))} td{(c.frames)} td{(c.stale_drops)} td{(c.corrupt)} td{(c.reconnects)}
                } } }
            } } }
            div.card { h2 { "Outbox" } p { (opt(waiting)) " event(s) waiting for the broker, " (opt(dropped)) " dropped ever" } }
            div.card { h2 { "Checks (facegate doctor)" }
                @match doctor {
                    Some((at, checks)) => {
                        p { "Run at " (local_time(tz, *at)) ": "
                            @if crate::cli::doctor::ready(checks) { b.ok { "node ready" } } @else { b.bad { "node NOT ready: fix the FAIL lines" } } }
                        table { tbody { @for c in checks { tr { td { (c.name) } @match c.level {
                            Level::Ok => td.ok { "ok: " (c.detail) },
                            Level::Warn => td.warn { "warn: " (c.detail) },
                            Level::Fail => td.bad { "FAIL: " (c.detail) },
                            Level::Skip => td { "skip: " (c.detail) },
                        } } } } }
                    },
                    None => p { "Not run yet in this session of the node." },
                }
                form method="post" action="/health/doctor" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    button { "Run the checks" } " " small { "(models, database, clock, liveness, broker: a few seconds)" }
                }
            }
            div.card { h2 { "Doors" }
                @for d in &config.doors {
                    form.inline method="post" action={ "/doors/" (d.name) "/test" } data-confirm={ "Pulse the relay of door " (d.name) " now?" } {
                        input type="hidden" name="csrf" value=(s.csrf); button { "Test door " (d.name) }
                    }
                    " "
                }
                @if config.doors.is_empty() { p { "no door configured" } }
            }
        },
    )
}
