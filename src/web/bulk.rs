//! Bulk enrolment from a zip upload: the archive is checked and listed while the request waits
//! (a refused one changes nothing and says why), then enrolled person by person on a worker
//! thread through the console (the service API, with the administrator as actor), while the
//! page polls the job's progress. One job at a time: the face models are the bottleneck.
// Early returns carry the finished HTTP response as the error, as in `handlers`.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use super::handlers::{Admin, WebState};
use crate::bulk_enroll::{Batch, Limits, Report};

/// Finished jobs kept for their pages.
const KEPT: usize = 8;

/// The bulk jobs of this console: the running one and the last few finished.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<VecDeque<(String, Arc<Mutex<Report>>)>>,
}

impl Jobs {
    fn get(&self, id: &str) -> Option<Report> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.iter().find(|(i, _)| i == id).map(|(_, r)| r.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Registers a new job, unless one is still running.
    fn start(&self) -> Result<(String, Arc<Mutex<Report>>), String> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.iter().any(|(_, r)| !r.lock().unwrap_or_else(|p| p.into_inner()).finished) {
            return Err("a bulk enrolment is still running: wait until it has finished (see its page)".into());
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let report = Arc::new(Mutex::new(Report::default()));
        jobs.push_back((id.clone(), Arc::clone(&report)));
        while jobs.len() > KEPT {
            jobs.pop_front();
        }
        Ok((id, report))
    }
}

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/people/bulk", post(upload))
        .route("/people/bulk/:job", get(job_page))
        .route("/api/bulk/:job", get(job_status))
}

fn problem(admin: &Admin, status: StatusCode, message: &str) -> Response {
    (status, super::pages::message(Some(&admin.session), "Bulk enrolment", message)).into_response()
}

/// The form: the CSRF token, the zip and the two choices.
struct Upload {
    csrf: String,
    zip: Option<Vec<u8>>,
    append: bool,
    force: bool,
}

async fn read(mut multipart: Multipart) -> Result<Upload, String> {
    let mut up = Upload { csrf: String::new(), zip: None, append: false, force: false };
    let mut fields = 0;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| format!("the upload is damaged or too large ({e}); send a smaller zip or split it"))?
    {
        fields += 1;
        if fields > 10 {
            return Err("too many form fields".into());
        }
        match field.name().unwrap_or_default() {
            "zip" => {
                let bytes = field.bytes().await.map_err(|e| format!("the upload is damaged or too large ({e})"))?;
                if !bytes.is_empty() {
                    up.zip = Some(bytes.to_vec());
                }
            }
            name => {
                let name = name.to_string();
                let text = field.text().await.map_err(|e| format!("the upload is damaged ({e})"))?;
                match name.as_str() {
                    "csrf" => up.csrf = text.chars().take(200).collect(),
                    "append" => up.append = text == "1",
                    "force" => up.force = text == "1",
                    _ => {}
                }
            }
        }
    }
    Ok(up)
}

async fn upload(State(state): State<Arc<WebState>>, admin: Admin, multipart: Multipart) -> Response {
    let up = match read(multipart).await {
        Ok(u) => u,
        Err(e) => return problem(&admin, StatusCode::BAD_REQUEST, &e),
    };
    if let Err(r) = admin.check_csrf(&up.csrf) {
        return r;
    }
    let Some(zip) = up.zip else {
        return problem(&admin, StatusCode::BAD_REQUEST, "choose a zip file with one folder of photos per person");
    };
    let limits = Limits { max_archive_bytes: u64::from(state.config.web.max_upload_mb) << 20, ..Limits::default() };
    let batch = match tokio::task::spawn_blocking(move || Batch::from_zip(zip, &limits)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return problem(&admin, StatusCode::BAD_REQUEST, &format!("{e:#}")),
        Err(e) => return problem(&admin, StatusCode::INTERNAL_SERVER_ERROR, &format!("could not read the zip: {e}")),
    };
    if batch.photo_count() == 0 {
        let mut text = "no photos found: put each person's JPEG or PNG photos in a folder named after them".to_string();
        if !batch.skipped.is_empty() {
            text.push_str(&format!(" ({})", batch.skipped.join("; ")));
        }
        return problem(&admin, StatusCode::BAD_REQUEST, &text);
    }
    let (id, report) = match state.bulk.start() {
        Ok(job) => job,
        Err(e) => return problem(&admin, StatusCode::CONFLICT, &e),
    };
    let actor = admin.actor();
    let (append, force) = (up.append, up.force);
    let worker = Arc::clone(&state);
    let spawned = std::thread::Builder::new().name("bulk-enroll".into()).spawn(move || {
        let mut batch = batch;
        let state = worker;
        // The API allows one enrolment per administrator every few seconds; the job keeps to
        // that pace rather than going around it (the door and other admins come first).
        let pace = crate::api::RateLimits::default().every.get("enroll").copied().unwrap_or_default();
        let mut last: Option<std::time::Instant> = None;
        let mut enrol = |name: &str, photos: &[(String, Vec<u8>)]| {
            let name = crate::act::store::check_person_name(name)?;
            if let Some(wait) = last.map(|t| pace.saturating_sub(t.elapsed())).filter(|w| !w.is_zero()) {
                std::thread::sleep(wait + std::time::Duration::from_millis(50));
            }

            let existing = state.store().find_person(name)?.is_some();
            if existing && !append {
                anyhow::bail!(
                    "`{name}` is already enrolled: tick \"add photos to people who already exist\" to add these photos to them"
                );
            }
            let mut results = state.console().enroll_photos(&actor, name, existing, force, photos);
            // The administrator enrolled someone else just before: wait as the API says, once.
            let limited = results.as_ref().err().and_then(|e| e.downcast_ref::<crate::api::ApiError>()).and_then(|e| {
                match e.kind {
                    crate::api::ErrorKind::RateLimited { retry_after_s } => Some(retry_after_s.min(60)),
                    _ => None,
                }
            });
            if let Some(wait) = limited {
                std::thread::sleep(std::time::Duration::from_millis(wait * 1000 + 100));
                results = state.console().enroll_photos(&actor, name, existing, force, photos);
            }
            last = Some(std::time::Instant::now());
            let mut results = results?;
            for r in &mut results {
                if let Err(e) = &mut r.outcome {
                    *e = super::pages::web_wording(e);
                }
            }
            Ok(results)
        };
        let mut publish = |r: &Report| *report.lock().unwrap_or_else(|p| p.into_inner()) = r.clone();
        let done = crate::bulk_enroll::run(&mut batch, &mut enrol, &mut publish);
        log::info!(
            "bulk enrolment by {}: {} people, {} photos enrolled, {} problem(s)",
            actor.name,
            done.people_enrolled,
            done.photos_enrolled,
            done.problems
        );
    });
    if let Err(e) = spawned {
        return problem(&admin, StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot start the enrolment: {e}"));
    }
    Redirect::to(&format!("/people/bulk/{id}")).into_response()
}

async fn job_status(State(state): State<Arc<WebState>>, _admin: Admin, Path(job): Path<String>) -> Response {
    match state.bulk.get(&job) {
        Some(report) => axum::Json(report).into_response(),
        None => (StatusCode::NOT_FOUND, "no such bulk enrolment (finished long ago?)").into_response(),
    }
}

async fn job_page(State(state): State<Arc<WebState>>, admin: Admin, Path(job): Path<String>) -> Response {
    match state.bulk.get(&job) {
        Some(report) => page(&admin, &job, &report).into_response(),
        None => problem(&admin, StatusCode::NOT_FOUND, "no such bulk enrolment (finished long ago?)"),
    }
}

/// The progress page; the script refreshes the bar and the lines from `/api/bulk/<job>`.
fn page(admin: &Admin, job: &str, r: &Report) -> Html<String> {
    super::pages::layout(
        Some(&admin.session),
        "Bulk enrolment",
        html! {
            div.card id="bulk" data-job=(job) {
                p id="bulk-summary" {
                    (r.photos_done) " of " (r.photos_total) " photos, " (r.people_enrolled) " of " (r.people_total)
                    " people enrolled, " (r.problems) " problem(s)"
                    @if r.finished { " — finished" } @else if let Some(c) = &r.current { " — now: " (c) }
                }
                progress id="bulk-bar" max=(r.photos_total.max(1)) value=(r.photos_done) {}
            }
            table { thead { tr { th{"person"} th{"photo"} th{"result"} } } tbody id="bulk-lines" {
                @for l in &r.lines { tr {
                    td { (l.person) } td { (l.photo.as_deref().unwrap_or("")) }
                    @if l.ok { td.ok { (l.message) } } @else { td.bad { (super::pages::web_wording(&l.message)) } }
                } }
            } }
            p { a href="/people" { "Back to people" } }
        },
    )
}
