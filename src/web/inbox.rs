//! The "Unknown faces" page: the inbox's groups (the same stranger's visits together) with their
//! thumbnails, times and cameras, and per group: label as an existing person, label as a new
//! person, or dismiss. Reads come from the store; every change goes through the service API
//! (`label_unknown`, `dismiss_unknown`) with the administrator as the actor.
// Early returns carry the finished HTTP response as the error, as in `handlers`.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::auth::Session;
use super::handlers::{Admin, WebState, bad_request, error_page, internal, refused};
use super::pages::{csrf, layout, local_time};
use crate::act::store::{PersonRecord, UnknownGroup};
use crate::decide::policy::Role;

/// Groups shown on the page, and thumbnails per group (the newest): bounds the page's size.
const MAX_GROUPS: usize = 100;
const MAX_THUMBS: usize = 12;

type St = State<Arc<WebState>>;

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/unknown", get(inbox_page))
        .route("/unknown/face/:id", get(thumbnail))
        .route("/unknown/:group/label", post(label_existing))
        .route("/unknown/:group/new", post(label_new))
        .route("/unknown/:group/dismiss", post(dismiss))
}

async fn inbox_page(State(state): St, admin: Admin) -> Response {
    let store = state.store();
    let (groups, people) = match (store.unknown_groups(), store.people()) {
        (Ok(g), Ok(p)) => (g, p),
        (Err(e), _) | (_, Err(e)) => return internal(Some(&admin), e),
    };
    drop(store);
    page(&admin.session, &state, &groups, &people).into_response()
}

/// A face's thumbnail JPEG (only for a logged-in administrator; never cached).
async fn thumbnail(State(state): St, admin: Admin, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(Some(&admin), StatusCode::NOT_FOUND, "no such unknown face");
    };
    match state.store().unknown_thumbnail(id) {
        Ok(Some(jpeg)) => ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response(),
        Ok(None) => {
            error_page(Some(&admin), StatusCode::NOT_FOUND, "no such unknown face (labelled, dismissed or expired)")
        }
        Err(e) => internal(Some(&admin), e),
    }
}

#[derive(Deserialize)]
struct LabelForm {
    #[serde(default)]
    csrf: String,
    /// The existing person's name (or #id), or the new person's name.
    #[serde(default)]
    name: String,
    /// Only for a new person.
    #[serde(default)]
    role: String,
}

async fn label_existing(
    State(state): St,
    admin: Admin,
    Path(group): Path<String>,
    Form(form): Form<LabelForm>,
) -> Response {
    label(state, admin, group, form, false).await
}

async fn label_new(State(state): St, admin: Admin, Path(group): Path<String>, Form(form): Form<LabelForm>) -> Response {
    label(state, admin, group, form, true).await
}

/// The group number of the URL, or a 404 page naming the problem.
fn group_id(admin: &Admin, text: &str) -> Result<i64, Response> {
    match text.parse::<i64>() {
        Ok(g) if g > 0 => Ok(g),
        _ => Err(error_page(
            Some(admin),
            StatusCode::NOT_FOUND,
            &format!(
                "`{}` is not an unknown-face group: open the group from the Unknown faces page",
                text.chars().take(40).collect::<String>()
            ),
        )),
    }
}

async fn label(state: Arc<WebState>, admin: Admin, group: String, form: LabelForm, new: bool) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let group = match group_id(&admin, &group) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let name = form.name.trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return bad_request(&admin, "say who this is: the person's name (at most 200 characters)");
    }
    let role: Option<Role> = if new {
        let text = if form.role.trim().is_empty() { "visitor" } else { form.role.trim() };
        match text.parse() {
            Ok(r) => Some(r),
            Err(e) => return bad_request(&admin, format!("{e}")),
        }
    } else {
        None
    };
    let actor = admin.actor();
    let st = Arc::clone(&state);
    // Loading the face models on the first label takes a moment: off the async workers.
    let result =
        tokio::task::spawn_blocking(move || st.console().api().label_unknown(&actor, group, &name, role)).await;
    match result {
        Ok(Ok(reply)) => match reply.get("id").and_then(|v| v.as_i64()) {
            Some(id) => Redirect::to(&format!("/people/{id}")).into_response(),
            None => Redirect::to("/unknown").into_response(),
        },
        Ok(Err(e)) => refused(&admin, anyhow::Error::new(e)),
        Err(e) => internal(Some(&admin), anyhow::anyhow!("labelling stopped: {e}")),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn dismiss(State(state): St, admin: Admin, Path(group): Path<String>, Form(form): Form<CsrfOnly>) -> Response {
    if let Err(r) = admin.check_csrf(&form.csrf) {
        return r;
    }
    let group = match group_id(&admin, &group) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let result = state.console().api().dismiss_unknown(&admin.actor(), group);
    match result {
        Ok(_) => Redirect::to("/unknown").into_response(),
        Err(e) => refused(&admin, anyhow::Error::new(e)),
    }
}

fn page(s: &Session, state: &WebState, groups: &[UnknownGroup], people: &[PersonRecord]) -> Html<String> {
    let web = &state.config.web;
    let faces: usize = groups.iter().map(|g| g.faces.len()).sum();
    layout(
        Some(s),
        "Unknown faces",
        html! {
            div.card {
                @if web.unknown_inbox {
                    p { "Faces of " b { "unknown" } " decisions, grouped so one stranger's visits appear together. "
                        "Kept " (web.unknown_retention_days) " days (" code { "web.unknown_retention_days" } "), at most "
                        (web.unknown_max_faces) " faces. Label a group as a person (its best faces become templates) or dismiss it." }
                } @else {
                    p { "The inbox is off (" code { "web.unknown_inbox = false" } "): no new faces are kept. "
                        "Faces kept before still expire after " (web.unknown_retention_days) " days." }
                }
                p { (groups.len()) " group(s), " (faces) " face(s)"
                    @if groups.len() > MAX_GROUPS { " (the newest " (MAX_GROUPS) " groups are shown)" } }
            }
            datalist id="people-names" { @for p in people { option value=(p.name) {} } }
            @for g in groups.iter().take(MAX_GROUPS) {
                div.card.group id={ "group-" (g.group) } {
                    h2 { "Stranger #" (g.group) }
                    p {
                        (g.faces.len()) " visit(s)"
                        @if let (Some(first), Some(last)) = (g.oldest(), g.newest()) {
                            ", first " (local_time(&state.tz, first)) ", last " (local_time(&state.tz, last))
                        }
                        ", cameras: " (g.cameras().join(", "))
                    }
                    div.faces {
                        @for f in g.faces.iter().take(MAX_THUMBS) {
                            img src={ "/unknown/face/" (f.id) } alt={ "unknown face on " (f.camera) }
                                title={ (local_time(&state.tz, f.at)) " · " (f.camera) };
                        }
                    }
                    div.row {
                        form.label method="post" action={ "/unknown/" (g.group) "/label" } {
                            (csrf(s))
                            label { "Existing person" br; input name="name" list="people-names" required placeholder="name"; }
                            " " button { "Add to person" }
                        }
                        form.new method="post" action={ "/unknown/" (g.group) "/new" } {
                            (csrf(s))
                            label { "New person" br; input name="name" required placeholder="name"; }
                            " " select name="role" { option value="visitor" { "visitor" } option value="employee" { "employee" } option value="watchlist" { "watchlist" } }
                            " " button { "Enrol" }
                        }
                        form.dismiss method="post" action={ "/unknown/" (g.group) "/dismiss" }
                            data-confirm="Erase these faces?" {
                            (csrf(s))
                            button.danger { "Dismiss" }
                        }
                    }
                }
            }
        },
    )
}
