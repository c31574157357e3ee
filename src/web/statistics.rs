//! The "Statistics" page (`[analyze]`): faces counted per camera per local hour by age band,
//! gender and dominant expression, with the totals of the period shown. Read through the
//! service API (`attribute_stats`, audited) with the administrator as the actor.
// Early returns carry the finished HTTP response as the error, as in `handlers`.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use super::auth::Session;
use super::handlers::{Admin, WebState, bad_request, internal, refused};
use super::pages::{layout, local_time};
use crate::analytics::{AGE_BANDS, GENDERS, HourCounts};
use crate::vision::attributes::EMOTIONS;

/// The periods offered, in hours.
const PERIODS: [(u32, &str); 4] =
    [(24, "last 24 hours"), (24 * 7, "last 7 days"), (24 * 31, "last 31 days"), (1, "this hour")];

pub fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/statistics", get(statistics_page))
}

#[derive(Deserialize, Default)]
struct StatsQuery {
    camera: Option<String>,
    hours: Option<String>,
}

async fn statistics_page(State(state): State<Arc<WebState>>, admin: Admin, Query(q): Query<StatsQuery>) -> Response {
    let hours = match q.hours.as_deref().filter(|h| !h.is_empty()) {
        None => 24,
        Some(h) => match h.parse::<u32>() {
            Ok(h) => h,
            Err(_) => return bad_request(&admin, format!("hours must be a whole number of hours (got `{h}`)")),
        },
    };
    let camera = q.camera.filter(|c| !c.is_empty());
    let actor = admin.actor();
    let st = Arc::clone(&state);
    let wanted = camera.clone();
    let result =
        tokio::task::spawn_blocking(move || st.console().api().attribute_stats(&actor, wanted.as_deref(), hours)).await;
    let value = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return refused(&admin, anyhow::Error::new(e)),
        Err(e) => return internal(Some(&admin), anyhow::anyhow!("the statistics request failed: {e}")),
    };
    let rows: Vec<HourCounts> = match serde_json::from_value(value["hours"].clone()) {
        Ok(rows) => rows,
        Err(e) => return internal(Some(&admin), anyhow::anyhow!("the statistics could not be read: {e}")),
    };
    page(&admin.session, &state, &value, &rows, camera.as_deref(), hours).into_response()
}

/// The sum of several hours, per dimension.
fn totals(rows: &[HourCounts]) -> (u64, [BTreeMap<String, u64>; 3]) {
    let mut sum: [BTreeMap<String, u64>; 3] = Default::default();
    for h in rows {
        for (i, map) in [&h.age, &h.gender, &h.emotion].into_iter().enumerate() {
            for (k, v) in map {
                *sum[i].entry(k.clone()).or_default() += v;
            }
        }
    }
    (rows.iter().map(|h| h.faces).sum(), sum)
}

fn page(
    s: &Session,
    state: &WebState,
    value: &serde_json::Value,
    rows: &[HourCounts],
    camera: Option<&str>,
    hours: u32,
) -> Html<String> {
    let a = &state.config.analyze;
    let (faces, [age, gender, emotion]) = totals(rows);
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    let counted =
        if value["counted"] == "all" { "every decided face" } else { "strangers' faces (unknown decisions) only" };
    layout(
        Some(s),
        "Statistics",
        html! {
            div.card {
                @if a.counts_hours() {
                    p { "Estimated age, gender and expression of " b { (counted) } ", counted per camera per hour, once per "
                        "decided face. Estimates, not facts: see the model card before drawing conclusions. Kept "
                        (a.keep_days) " days (" code { "analyze.keep_days" } ")." }
                } @else {
                    p { "The statistics are off (" code { "[analyze] enabled = true" } " and " code { "hourly = true" }
                        " turn them on): nothing new is counted. Hours counted before are shown until they expire." }
                }
                form method="get" action="/statistics" class="row" {
                    label { "Camera" br; select name="camera" {
                        option value="" { "all" }
                        @for c in &state.config.cameras { option selected[camera == Some(c.name.as_str())] { (c.name) } }
                    } }
                    label { "Period" br; select name="hours" {
                        @for (h, label) in PERIODS { option value=(h) selected[h == hours] { (label) } }
                    } }
                    button { "Show" }
                }
            }
            div.card id="totals" {
                h2 { (faces) " face(s) in " (rows.len()) " camera-hour(s)" }
                div.scroll { table { tbody {
                    tr { th { "age" } @for (band, _, _) in AGE_BANDS { td { (band.replace('_', "-")) ": " (get(&age, band)) } } }
                    tr { th { "gender" } @for g in GENDERS { td { (g) ": " (get(&gender, g)) } } }
                    tr { th { "expression" } @for e in EMOTIONS { td { (e) ": " (get(&emotion, e)) } } }
                } } }
            }
            div.scroll { table.hours {
                thead { tr {
                    th { "hour" } th { "camera" } th { "faces" }
                    @for (band, _, _) in AGE_BANDS { th { (band.replace('_', "-")) } }
                    @for g in GENDERS { th { (g) } }
                    @for e in EMOTIONS { th { (e) } }
                } }
                tbody { @for h in rows {
                    tr.complete[h.complete] {
                        td { (local_time(&state.tz, h.start)) @if !h.complete { " (so far)" } }
                        td { (h.camera) } td { (h.faces) }
                        @for (band, _, _) in AGE_BANDS { td { (get(&h.age, band)) } }
                        @for g in GENDERS { td { (get(&h.gender, g)) } }
                        @for e in EMOTIONS { td { (get(&h.emotion, e)) } }
                    }
                } }
            } }
        },
    )
}
