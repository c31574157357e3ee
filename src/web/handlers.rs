//! HTTP handlers: each parses and validates its input, checks the session (and the CSRF token on
//! every POST), calls the console or reads the store, and renders a page.
// Early returns carry the finished HTTP response as the error; boxing it would buy nothing here.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, FromRequestParts, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::Deserialize;

use super::auth::{self, Auth, Session};
use super::console::{Console, web_actor};
use super::live::LiveFeed;
use super::pages;
use crate::act::store::{EventFilter, Store};
use crate::api::{Actor, ApiError, ErrorKind, NodeApi};
use crate::capture::FrameHub;
use crate::config::Config;

/// Everything the handlers share.
pub struct WebState {
    pub config: Config,
    pub store: Mutex<Store>,
    pub console: Mutex<Console>,
    pub auth: Auth,
    pub live: Arc<LiveFeed>,
    pub hub: Option<Arc<FrameHub>>,
    pub tz: jiff::tz::TimeZone,
    /// Mark the session cookie `Secure` (served over TLS).
    pub secure: bool,
    /// Bulk enrolment jobs (zip uploads).
    pub bulk: super::bulk::Jobs,
    /// The last `doctor` run from the health page.
    pub doctor: super::events::Doctor,
}

impl WebState {
    pub fn new(
        config: &Config,
        store: Store,
        api: NodeApi,
        live: Arc<LiveFeed>,
        hub: Option<Arc<FrameHub>>,
    ) -> anyhow::Result<WebState> {
        Ok(WebState {
            config: config.clone(),
            store: Mutex::new(store),
            console: Mutex::new(Console::new(config.clone(), api)),
            auth: Auth::new(Duration::from_secs(u64::from(config.web.session_minutes) * 60)),
            live,
            hub,
            tz: config.service.time_zone()?,
            secure: config.web.tls,
            bulk: Default::default(),
            doctor: Default::default(),
        })
    }

    pub(super) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn console(&self) -> std::sync::MutexGuard<'_, Console> {
        self.console.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type St = State<Arc<WebState>>;

pub const COOKIE: &str = "facegate_session";

/// The console's routes, with the request body capped at `web.max_upload_mb`.
pub fn router(state: Arc<WebState>) -> Router {
    let limit = state.config.web.max_upload_mb as usize * 1024 * 1024;
    Router::new()
        .route("/", get(live_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/static/app.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], pages::CSS) }))
        .route("/static/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], pages::JS) }))
        .route("/live/:camera", get(mjpeg))
        .route("/api/live/:camera", get(live_boxes))
        .route("/api/decisions", get(decisions))
        .route("/people", get(people_page).post(add_person))
        .route("/people/:id", get(person_page))
        .route("/people/:id/edit", post(edit_person))
        .route("/people/:id/enroll", post(enroll_upload))
        .route("/people/:id/capture", post(enroll_camera))
        .route("/people/:id/templates/:template/delete", post(delete_template))
        .route("/people/:id/templates/:template/thumb.jpg", get(template_thumbnail))
        .route("/enroll", post(enroll_new))
        .route("/attendance", get(attendance_page))
        .route("/attendance.csv", get(attendance_csv))
        .route("/doors/:door/test", post(test_door))
        .merge(super::inbox::routes())
        .merge(super::bulk::routes())
        .merge(super::events::routes())
        .merge(super::statistics::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A logged-in administrator; pages without one redirect to the login page, the API says 401.
pub struct Admin {
    pub session: Session,
    token: String,
}

impl Admin {
    pub(super) fn actor(&self) -> Actor {
        web_actor(&self.session.admin)
    }

    /// Refuses a POST whose CSRF token is missing or wrong (nothing is changed).
    pub(super) fn check_csrf(&self, token: &str) -> Result<(), Response> {
        if auth::same_token(token, &self.session.csrf) {
            Ok(())
        } else {
            Err((StatusCode::FORBIDDEN, "the form's security token is missing or stale: reload the page and try again")
                .into_response())
        }
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

#[axum::async_trait]
impl FromRequestParts<Arc<WebState>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<WebState>) -> Result<Self, Self::Rejection> {
        let found = cookie_token(&parts.headers).and_then(|t| state.auth.session(&t).map(|s| (t, s)));
        match found {
            Some((token, session)) => Ok(Admin { session, token }),
            None if parts.uri.path().starts_with("/api/") || parts.uri.path().starts_with("/live/") => {
                Err((StatusCode::UNAUTHORIZED, "log in first").into_response())
            }
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

/// A page with an error message, answered with `status`.
pub(super) fn error_page(admin: Option<&Admin>, status: StatusCode, message: &str) -> Response {
    (status, pages::message(admin.map(|a| &a.session), "Problem", message)).into_response()
}

pub(super) fn bad_request(admin: &Admin, e: impl std::fmt::Display) -> Response {
    error_page(Some(admin), StatusCode::BAD_REQUEST, &e.to_string())
}

/// A refused or failed console call: the API's refusals keep their meaning (403, 429).
pub(super) fn refused(admin: &Admin, e: anyhow::Error) -> Response {
    let status = match e.downcast_ref::<ApiError>().map(|a| a.kind) {
        Some(ErrorKind::Forbidden) => StatusCode::FORBIDDEN,
        Some(ErrorKind::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    error_page(Some(admin), status, &format!("{e:#}"))
}

pub(super) fn internal(admin: Option<&Admin>, e: anyhow::Error) -> Response {
    log::error!("web: {e:#}");
    error_page(admin, StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}"))
}

// ---------- login ----------

async fn login_page(headers: HeaderMap, State(state): St) -> Response {
    if cookie_token(&headers).and_then(|t| state.auth.session(&t)).is_some() {
        return Redirect::to("/").into_response();
    }
    pages::login(None).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(State(state): St, parts: axum::http::request::Parts, Form(form): Form<LoginForm>) -> Response {
    let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let name = form.name.trim().to_string();
    if name.is_empty() || name.len() > 64 || form.password.len() > 1024 {
        return (StatusCode::BAD_REQUEST, pages::login(Some("enter your administrator name and password")))
            .into_response();
    }
    if let Err(message) = state.auth.check_rate(addr, &name) {
        return (StatusCode::TOO_MANY_REQUESTS, pages::login(Some(&message))).into_response();
    }
    let stored = match state.store().admin_hash(&name) {
        Ok(found) => found,
        Err(e) => return internal(None, e),
    };
    let password = form.password;
    let (canonical, hash) = stored.clone().unwrap_or_else(|| (String::new(), auth::dummy_hash().to_string()));
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash)).await.unwrap_or(false);
    if !ok || stored.is_none() {
        state.auth.record_failure(addr, &name);
        log::warn!("web: failed login for `{name}` from {}", addr.map_or("?".into(), |a| a.to_string()));
        return (StatusCode::UNAUTHORIZED, pages::login(Some("wrong name or password"))).into_response();
    }
    let token = state.auth.login(&canonical);
    log::info!("audit: {canonical} (web) logged in");
    let secure = if state.secure { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(state): St, admin: Admin, Form(form): Form<CsrfForm>) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    state.auth.logout(&admin.token);
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("facegate_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

// ---------- live ----------

fn camera_index(state: &WebState, name: &str) -> Option<usize> {
    state.config.cameras.iter().position(|c| c.name == name)
}

async fn live_page(State(state): St, admin: Admin) -> Response {
    pages::live(&admin.session, &state.config).into_response()
}

/// The camera as MJPEG (`multipart/x-mixed-replace`), which every browser plays in an `<img>`.
async fn mjpeg(State(state): St, _admin: Admin, Path(camera): Path<String>) -> Response {
    let Some(index) = camera_index(&state, &camera) else {
        return (StatusCode::NOT_FOUND, "no such camera").into_response();
    };
    let Some(mut rx) = state.live.watch(index) else {
        return (StatusCode::NOT_FOUND, "no such camera").into_response();
    };
    let stream = async_stream(move |tx| async move {
        loop {
            if rx.changed().await.is_err() {
                return;
            }
            let frame = rx.borrow_and_update().clone();
            let Some(frame) = frame else { continue };
            let mut part =
                format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", frame.jpeg.len())
                    .into_bytes();
            part.extend_from_slice(&frame.jpeg);
            part.extend_from_slice(b"\r\n");
            if tx.send(Ok::<_, std::io::Error>(axum::body::Bytes::from(part))).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "multipart/x-mixed-replace; boundary=frame")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A stream fed by a task through a small channel (dropped when the viewer goes away).
fn async_stream<F, Fut>(body: F) -> impl futures_core::Stream<Item = Result<axum::body::Bytes, std::io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(body(tx));
    ReceiverStream(rx)
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// The boxes of the newest live frame with their labels (drawn over the video by the page).
async fn live_boxes(State(state): St, _admin: Admin, Path(camera): Path<String>) -> Response {
    let Some(rx) = camera_index(&state, &camera).and_then(|i| state.live.watch(i)) else {
        return (StatusCode::NOT_FOUND, "no such camera").into_response();
    };
    let frame = rx.borrow().clone();
    let body = match frame {
        Some(f) => serde_json::json!({ "width": f.width, "height": f.height, "boxes": f.boxes }),
        None => serde_json::json!({ "width": 0, "height": 0, "boxes": [] }),
    };
    axum::Json(body).into_response()
}

/// The latest decisions, newest first (polled by the live page).
async fn decisions(State(state): St, _admin: Admin) -> Response {
    match state.store().recent_events(&EventFilter::default(), 20) {
        Ok(events) => {
            let rows: Vec<_> = events
                .into_iter()
                .map(|(id, e)| {
                    serde_json::json!({
                        "id": id, "at": pages::local_time(&state.tz, e.at), "camera": e.camera, "kind": e.kind.as_str(),
                        "person": e.person_name, "similarity": e.similarity, "reason": e.reason,
                        "liveness": e.liveness,
                    })
                })
                .collect();
            axum::Json(rows).into_response()
        }
        Err(e) => internal(None, e),
    }
}

// ---------- people ----------

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn people_page(State(state): St, admin: Admin, Query(search): Query<Search>) -> Response {
    let people = match state.store().people() {
        Ok(p) => p,
        Err(e) => return internal(Some(&admin), e),
    };
    let q = search.q.trim().to_lowercase();
    let shown: Vec<_> = people.into_iter().filter(|p| q.is_empty() || p.name.to_lowercase().contains(&q)).collect();
    pages::people(&admin.session, &shown, &search.q, &state.config).into_response()
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    schedule: String,
}

async fn add_person(State(state): St, admin: Admin, Form(form): Form<AddForm>) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let role = match parse_or_default(&form.role, "employee") {
        Ok(r) => r,
        Err(e) => return bad_request(&admin, e),
    };
    let schedule = match parse_or_default(&form.schedule, "always") {
        Ok(s) => s,
        Err(e) => return bad_request(&admin, e),
    };
    let result = state.console().add_person(&mut state.store(), &admin.actor(), &form.name, role, &schedule);
    match result {
        Ok(id) => Redirect::to(&format!("/people/{id}")).into_response(),
        Err(e) => bad_request(&admin, format!("{e:#}")),
    }
}

fn parse_or_default<T: std::str::FromStr>(text: &str, default: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let text = if text.trim().is_empty() { default } else { text.trim() };
    text.parse().map_err(|e: T::Err| e.to_string())
}

/// The person with this numeric id (the URL's), or a 404 page.
fn person_by_id(state: &WebState, admin: &Admin, id: &str) -> Result<crate::act::store::PersonRecord, Response> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(error_page(Some(admin), StatusCode::NOT_FOUND, "no such person"));
    };
    match state.store().find_person(&format!("#{id}")) {
        Ok(Some(p)) if p.id == id => Ok(p),
        Ok(_) => Err(error_page(Some(admin), StatusCode::NOT_FOUND, "no such person (removed?)")),
        Err(e) => Err(internal(Some(admin), e)),
    }
}

async fn person_page(State(state): St, admin: Admin, Path(id): Path<String>) -> Response {
    let person = match person_by_id(&state, &admin, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let templates = match state.store().template_infos(&format!("#{}", person.id)) {
        Ok(t) => t,
        Err(e) => return internal(Some(&admin), e),
    };
    pages::person(&admin.session, &person, &templates, &state.config, None).into_response()
}

#[derive(Deserialize)]
struct EditForm {
    #[serde(default)]
    csrf: String,
    action: String,
    #[serde(default)]
    value: String,
}

async fn edit_person(State(state): St, admin: Admin, Path(id): Path<String>, Form(form): Form<EditForm>) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let person = match person_by_id(&state, &admin, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let who = format!("#{}", person.id);
    let actor = admin.actor();
    let mut console = state.console();
    let result: anyhow::Result<&str> = match form.action.as_str() {
        "rename" => console.rename(&actor, &who, &form.value).map(|_| "renamed"),
        "role" => form.value.parse().and_then(|r| console.set_role(&actor, &who, r)).map(|_| "role set"),
        "schedule" => form.value.parse().and_then(|s| console.set_schedule(&actor, &who, s)).map(|_| "schedule set"),
        "doors" => form.value.parse().and_then(|d| console.set_doors(&actor, &who, d)).map(|_| "doors set"),
        "remove" => {
            return match console.remove(&actor, &who) {
                Ok(()) => Redirect::to("/people").into_response(),
                Err(e) => refused(&admin, e),
            };
        }
        "forget" => {
            return match console.forget(&actor, &who) {
                Ok(text) => pages::message(Some(&admin.session), "Erased", &text).into_response(),
                Err(e) => refused(&admin, e),
            };
        }
        other => return bad_request(&admin, format!("unknown action `{}`", other.escape_default())),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/people/{}", person.id)).into_response(),
        Err(e) => refused(&admin, e),
    }
}

/// Reads a multipart upload: the CSRF token, the text fields and the photos (at most
/// [`MAX_PHOTOS`]; the body limit caps their total size).
async fn read_upload(mut multipart: Multipart) -> Result<(HashMap<String, String>, Vec<(String, Vec<u8>)>), String> {
    let mut fields = HashMap::new();
    let mut photos = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(format!("the upload is damaged or too large ({e}); send fewer or smaller photos")),
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "photos" {
            let file = field.file_name().unwrap_or("photo").chars().filter(|c| !c.is_control()).take(100).collect();
            let bytes = field.bytes().await.map_err(|e| format!("the upload is damaged or too large ({e})"))?;
            if bytes.is_empty() {
                continue;
            }
            if photos.len() >= MAX_PHOTOS {
                return Err(format!("at most {MAX_PHOTOS} photos per upload"));
            }
            photos.push((file, bytes.to_vec()));
        } else if fields.len() < 8 {
            let text = field.text().await.map_err(|e| format!("the upload is damaged ({e})"))?;
            fields.insert(name, text.chars().take(1000).collect());
        }
    }
    Ok((fields, photos))
}

const MAX_PHOTOS: usize = 20;

async fn enroll_upload(State(state): St, admin: Admin, Path(id): Path<String>, multipart: Multipart) -> Response {
    let person = match person_by_id(&state, &admin, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    enroll(state, admin, multipart, Some(person.name)).await
}

/// Enrolls a new person (name in the form) from photos.
async fn enroll_new(State(state): St, admin: Admin, multipart: Multipart) -> Response {
    enroll(state, admin, multipart, None).await
}

async fn enroll(state: Arc<WebState>, admin: Admin, multipart: Multipart, who: Option<String>) -> Response {
    let existing = who.is_some();
    let (fields, photos) = match read_upload(multipart).await {
        Ok(u) => u,
        Err(e) => return bad_request(&admin, e),
    };
    if let Err(r) = admin.check_csrf(fields.get("csrf").map_or("", String::as_str)) {
        return r;
    }
    let Some(who) = who.or_else(|| fields.get("name").map(|n| n.trim().to_string())) else {
        return bad_request(&admin, "give the person's name");
    };
    if photos.is_empty() {
        return bad_request(&admin, "choose at least one photo (JPEG or PNG) showing the person's face");
    }
    let force = fields.get("force").is_some_and(|v| v == "1");
    let actor = admin.actor();
    let st = Arc::clone(&state);
    let who2 = who.clone();
    let result =
        tokio::task::spawn_blocking(move || st.console().enroll_photos(&actor, &who2, existing, force, &photos)).await;
    let results = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return refused(&admin, e),
        Err(e) => return internal(Some(&admin), anyhow::anyhow!("enrolment failed: {e}")),
    };
    let enrolled = results.iter().any(|r| r.outcome.is_ok());
    let status = if enrolled { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let person = state.store().find_person(&who).ok().flatten();
    (status, pages::enroll_result(&admin.session, &who, person.as_ref().map(|p| p.id), &results)).into_response()
}

#[derive(Deserialize)]
struct CaptureForm {
    #[serde(default)]
    csrf: String,
    camera: String,
}

async fn enroll_camera(
    State(state): St,
    admin: Admin,
    Path(id): Path<String>,
    Form(form): Form<CaptureForm>,
) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let person = match person_by_id(&state, &admin, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(index) = camera_index(&state, &form.camera) else {
        return bad_request(&admin, format!("no camera named `{}`", form.camera.escape_default()));
    };
    let Some(rx) = state.live.grab(index) else { return bad_request(&admin, "no such camera") };
    let frame = match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(f)) => f,
        _ => return bad_request(&admin, format!("no frame from camera {} within 5 s: is it online?", form.camera)),
    };
    let actor = admin.actor();
    let st = Arc::clone(&state);
    let (name, camera) = (person.name.clone(), form.camera.clone());
    let result = tokio::task::spawn_blocking(move || st.console().enroll_frame(&actor, &name, &camera, &frame)).await;
    match result {
        Ok(Ok(())) => Redirect::to(&format!("/people/{}", person.id)).into_response(),
        Ok(Err(e)) => refused(&admin, e),
        Err(e) => internal(Some(&admin), anyhow::anyhow!("enrolment failed: {e}")),
    }
}

async fn delete_template(
    State(state): St,
    admin: Admin,
    Path((id, template)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let person = match person_by_id(&state, &admin, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(template) = template.parse::<i64>() else { return bad_request(&admin, "no such template") };
    let result = state.console().delete_template(&admin.actor(), &format!("#{}", person.id), template);
    match result {
        Ok(()) => Redirect::to(&format!("/people/{}", person.id)).into_response(),
        Err(e) => refused(&admin, e),
    }
}

/// One template's face thumbnail (a 404 for a template without one: the page shows a placeholder).
async fn template_thumbnail(State(state): St, admin: Admin, Path((id, template)): Path<(String, String)>) -> Response {
    let person = match person_by_id(&state, &admin, &id) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(template) = template.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, "no such template").into_response();
    };
    match state.store().template_thumbnail(&format!("#{}", person.id), template) {
        Ok(Some(jpeg)) => {
            ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=3600")], jpeg)
                .into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "this template has no picture").into_response(),
        Err(e) => internal(Some(&admin), e),
    }
}

// ---------- attendance ----------

#[derive(Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// The date range asked for (default: the last 7 days), at most 366 days.
fn range(state: &WebState, r: &Range) -> Result<(Date, Date), String> {
    let parse = |s: &Option<String>| -> Result<Option<Date>, String> {
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => {
                t.parse().map(Some).map_err(|_| format!("`{}` is not a date: use YYYY-MM-DD", t.escape_default()))
            }
        }
    };
    let to = parse(&r.to)?.unwrap_or_else(|| jiff::Timestamp::now().to_zoned(state.tz.clone()).date());
    let from = match parse(&r.from)? {
        Some(f) => f,
        None => to.checked_sub(6.days()).map_err(|e| e.to_string())?,
    };
    if from > to {
        return Err(format!("from {from} is after to {to}"));
    }
    if (to - from).get_days() > 366 || from.until(to).map_err(|e| e.to_string())?.get_days() > 366 {
        return Err("choose at most a year at a time".into());
    }
    Ok((from, to))
}

async fn attendance_page(State(state): St, admin: Admin, Query(r): Query<Range>) -> Response {
    let (from, to) = match range(&state, &r) {
        Ok(r) => r,
        Err(e) => return bad_request(&admin, e),
    };
    match state.store().attendance(from, to, &state.tz) {
        Ok(days) => pages::attendance(&admin.session, from, to, &days, &state.tz).into_response(),
        Err(e) => internal(Some(&admin), e),
    }
}

/// The same CSV as `facegate attendance --csv --from --to`.
async fn attendance_csv(State(state): St, admin: Admin, Query(r): Query<Range>) -> Response {
    let (from, to) = match range(&state, &r) {
        Ok(r) => r,
        Err(e) => return bad_request(&admin, e),
    };
    let days = match state.store().attendance(from, to, &state.tz) {
        Ok(d) => d,
        Err(e) => return internal(Some(&admin), e),
    };
    let mut out = Vec::new();
    if let Err(e) = crate::cli::store::write_attendance_csv(&mut out, &days, &state.tz) {
        return internal(Some(&admin), e);
    }
    let disposition = format!("attachment; filename=\"attendance-{from}-{to}.csv\"");
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

// ---------- doors ----------

async fn test_door(State(state): St, admin: Admin, Path(door): Path<String>, Form(form): Form<CsrfForm>) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let result = state.console().test_door(&admin.actor(), &door);
    match result {
        Ok(ms) => pages::message(Some(&admin.session), "Door test", &format!("door {door}: relay pulsed for {ms} ms"))
            .into_response(),
        Err(e) => refused(&admin, e),
    }
}
