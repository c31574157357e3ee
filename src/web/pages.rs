//! The console's HTML (maud, compiled into the binary), its stylesheet and its small script.
//! Plain pages that work on a phone; nothing is fetched from outside the node.

use axum::response::Html;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, html};

use super::auth::Session;
use super::console::PhotoResult;
use crate::act::store::{DayAttendance, PersonRecord, TemplateInfo};
use crate::config::Config;

pub const CSS: &str = r#"
*{box-sizing:border-box}body{margin:0;font:15px/1.4 system-ui,sans-serif;color:#1d232a;background:#f3f5f7}
header{background:#1d2b3a;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:.3em 1em;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header b{margin-right:1em}header form{margin-left:auto}
main{padding:1em;max-width:1100px;margin:auto}h1{font-size:1.3em}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:.35em .5em;border-bottom:1px solid #dde;text-align:left;vertical-align:top}
.card{background:#fff;border-radius:6px;padding:1em;margin:0 0 1em;box-shadow:0 1px 2px #0002}
input,select,button{font:inherit;padding:.35em .5em;margin:.15em 0}button{cursor:pointer}
.danger{background:#b3261e;color:#fff;border:0;border-radius:4px}.ok{color:#0a7a32}.bad{color:#b3261e}
.live{display:flex;flex-wrap:wrap;gap:1em}.cam{position:relative;flex:1 1 480px;max-width:100%}
.cam img{width:100%;display:block;background:#000;min-height:120px}.cam canvas{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none}
.side{flex:1 1 260px}.granted{color:#0a7a32}.denied,.alert,.unknown{color:#b3261e}
form.inline{display:inline}.row{display:flex;flex-wrap:wrap;gap:.5em;align-items:end}
.bar{fill:#3b7dd8}svg text{font-size:10px;fill:#444}
.faces{display:flex;flex-wrap:wrap;gap:.3em}.faces img{width:72px;height:72px;border-radius:4px;background:#ccc}
.thumbs{display:flex;flex-wrap:wrap;gap:.6em}.thumb{margin:0;width:124px;text-align:center;font-size:.85em}
.thumb img,.nothumb{width:112px;height:112px;display:block;margin:auto;border-radius:4px;background:#dde3ea}
.nothumb{display:flex;align-items:center;justify-content:center;color:#667;font-size:.8em}
label.check{display:flex;gap:.3em;align-items:center}
progress{width:100%;height:1.2em}
.scroll{overflow-x:auto}td.warn{color:#8a5a00}tr.journal td{color:#44505c}
.pulse,.open,.closed,.camera_online{color:#0a5a8a}.forced,.held_open,.stalled,.camera_offline{color:#b3261e}.audit{color:#5b3a8a}
@media (max-width:640px){
body{font-size:14px}main{padding:.5em}h1{font-size:1.15em;margin:.3em 0 .5em}h2{font-size:1.05em}
header{padding:.4em .6em;gap:.1em .9em}header a{padding:.35em 0;font-size:1.05em}header form{margin-left:0;flex-basis:100%;display:flex;gap:.5em;align-items:center;justify-content:space-between}
.card{padding:.7em;border-radius:4px}
.row{flex-direction:column;align-items:stretch}.row label,.row input,.row select,.row button{width:100%}
label.check{flex-direction:row}label.check input{width:auto}
table{display:block;overflow-x:auto;font-size:.88em}td,th{padding:.3em .35em}
.cam{flex-basis:100%}.side{flex-basis:100%}
.thumbs{justify-content:space-between}.thumb{width:31%}.thumb img,.nothumb{width:100%;height:auto;aspect-ratio:1}
button{min-height:2.2em}
}
"#;

pub const JS: &str = r#"
function drawBoxes(cam){var c=document.getElementById('ov-'+cam);if(!c)return;
fetch('/api/live/'+encodeURIComponent(cam)).then(r=>r.json()).then(function(f){
if(!f.width){return}c.width=f.width;c.height=f.height;var g=c.getContext('2d');g.clearRect(0,0,f.width,f.height);
g.font=Math.max(14,f.width/40)+'px sans-serif';g.lineWidth=3;
f.boxes.forEach(function(b){var col=b.state=='known'?'#00c83c':(b.state=='unknown'?'#e62828':'#f0b400');
var t=b.label+(b.similarity!=null?' '+b.similarity.toFixed(2):'')+(b.liveness?' · '+b.liveness:'');
g.fillStyle=col;var w=g.measureText(t).width+8,h=parseInt(g.font)+6;g.fillRect(b.x1,Math.max(0,b.y1-h),w,h);
g.fillStyle='#fff';g.fillText(t,b.x1+4,Math.max(h-6,b.y1-6));});}).catch(function(){});}
function decisions(){var t=document.getElementById('decisions');if(!t)return;
fetch('/api/decisions').then(r=>r.json()).then(function(rows){t.innerHTML='';rows.forEach(function(d){
var tr=document.createElement('tr');[d.at,d.camera,d.kind,d.person||'unknown',d.similarity!=null?d.similarity.toFixed(2):'',d.reason||''].forEach(function(v,i){
var td=document.createElement('td');td.textContent=v;if(i==2)td.className=d.kind;tr.appendChild(td)});t.appendChild(tr)})}).catch(function(){});}
function bulk(){var b=document.getElementById('bulk');fetch('/api/bulk/'+b.dataset.job).then(r=>r.json()).then(function(r){
document.getElementById('bulk-summary').textContent=r.photos_done+' of '+r.photos_total+' photos, '+r.people_enrolled+' of '+r.people_total+' people enrolled, '+r.problems+' problem(s)'+(r.finished?' — finished':(r.current?' — now: '+r.current:''));
var bar=document.getElementById('bulk-bar');bar.max=Math.max(1,r.photos_total);bar.value=r.photos_done;
var t=document.getElementById('bulk-lines');t.innerHTML='';r.lines.forEach(function(l){var tr=document.createElement('tr');
[l.person,l.photo||'',l.message].forEach(function(v,i){var td=document.createElement('td');td.textContent=v;if(i==2)td.className=l.ok?'ok':'bad';tr.appendChild(td)});t.appendChild(tr)});
if(!r.finished)setTimeout(bulk,1000);}).catch(function(){setTimeout(bulk,3000)});}
document.addEventListener('DOMContentLoaded',function(){var cams=[].map.call(document.querySelectorAll('[data-cam]'),e=>e.dataset.cam);
if(cams.length){setInterval(function(){cams.forEach(drawBoxes)},300);}
if(document.getElementById('decisions')){decisions();setInterval(decisions,2000);}
if(document.getElementById('bulk')){bulk();}
document.querySelectorAll('form[data-confirm]').forEach(function(f){f.addEventListener('submit',function(e){if(!confirm(f.dataset.confirm))e.preventDefault()})});});
"#;

pub fn local_time(tz: &TimeZone, t: jiff::Timestamp) -> String {
    t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

pub(super) fn layout(session: Option<&Session>, title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · facegate" }
                    link rel="stylesheet" href="/static/app.css";
                    script src="/static/app.js" {}
                }
                body {
                    header {
                        b { "facegate" }
                        @if let Some(s) = session {
                            a href="/" { "Live" } a href="/people" { "People" } a href="/unknown" { "Unknown faces" } a href="/attendance" { "Attendance" }
                            a href="/events" { "Events" } a href="/statistics" { "Statistics" } a href="/health" { "Health" }
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                span { (s.admin) " " } button { "Log out" }
                            }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
}

/// An enrolment message as the console says it (the CLI's flag becomes the form's checkbox).
pub fn web_wording(message: &str) -> String {
    message.replace(
        "(`facegate enroll --force`, or `\"force\": true` in an MQTT enroll, enrols such a photo anyway)",
        "(tick \"keep photos the quality check refuses\" to enrol it anyway)",
    )
}

/// The "keep anyway" choice: enrol photos the quality check refuses (small, blurred, dark...).
pub fn force_box() -> Markup {
    html! { label.check { input type="checkbox" name="force" value="1"; " keep photos the quality check refuses" } }
}

pub(super) fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

pub fn login(error: Option<&str>) -> Html<String> {
    layout(
        None,
        "Log in",
        html! {
            div.card {
                @if let Some(e) = error { p.bad { (e) } }
                form method="post" action="/login" {
                    p { label { "Administrator" br; input name="name" autocomplete="username" required autofocus; } }
                    p { label { "Password" br; input name="password" type="password" autocomplete="current-password" required; } }
                    button { "Log in" }
                }
                p { small { "Accounts are made on the node: " code { "facegate admin add NAME" } } }
            }
        },
    )
}

pub fn message(session: Option<&Session>, title: &str, text: &str) -> Html<String> {
    layout(session, title, html! { div.card { p { (text) } p { a href="javascript:history.back()" { "Back" } } } })
}

pub fn live(s: &Session, config: &Config) -> Html<String> {
    layout(
        Some(s),
        "Live",
        html! {
            div.live {
                @for c in &config.cameras {
                    div.cam data-cam=(c.name) {
                        img src={ "/live/" (c.name) } alt={ "camera " (c.name) };
                        canvas id={ "ov-" (c.name) } {}
                        p { b { (c.name) } " " (c.location) }
                    }
                }
                div.side {
                    h2 { "Latest decisions" }
                    table { thead { tr { th{"time"} th{"camera"} th{"kind"} th{"person"} th{"sim."} th{"reason"} } } tbody id="decisions" {} }
                }
            }
        },
    )
}

pub fn people(s: &Session, people: &[PersonRecord], q: &str, config: &Config) -> Html<String> {
    let _ = config;
    layout(
        Some(s),
        "People",
        html! {
            div.card {
                form method="get" action="/people" class="row" {
                    input name="q" value=(q) placeholder="search by name";
                    button { "Search" }
                }
            }
            div.card {
                h2 { "Enroll a new person from photos" }
                form method="post" action="/enroll" enctype="multipart/form-data" class="row" {
                    (csrf(s))
                    label { "Name" br; input name="name" required; }
                    label { "Photos (one face each)" br; input type="file" name="photos" accept="image/jpeg,image/png" multiple required; }
                    (force_box())
                    button { "Enroll" }
                }
                h2 { "Enroll many people from a zip" }
                form method="post" action="/people/bulk" enctype="multipart/form-data" class="row" {
                    (csrf(s))
                    label { "Zip with one folder per person (the folder name is the name)" br; input type="file" name="zip" accept=".zip,application/zip" required; }
                    label.check { input type="checkbox" name="append" value="1"; " add photos to people who already exist" }
                    (force_box())
                    button { "Enroll all" }
                }
                h2 { "Add without photos" }
                form method="post" action="/people" class="row" {
                    (csrf(s))
                    label { "Name" br; input name="name" required; }
                    label { "Role" br; select name="role" { option{"employee"} option{"visitor"} option{"watchlist"} } }
                    label { "Schedule" br; input name="schedule" value="always"; }
                    button { "Add" }
                }
            }
            table {
                thead { tr { th{"#"} th{"name"} th{"role"} th{"templates"} th{"doors"} th{"schedule"} } }
                tbody {
                    @for p in people {
                        tr {
                            td { (p.id) } td { a href={ "/people/" (p.id) } { (p.name) } } td { (p.role.as_str()) }
                            td { (p.templates) } td { (p.doors.to_string()) } td { (p.schedule.to_string()) }
                        }
                    }
                }
            }
            p { (people.len()) " shown" }
        },
    )
}

pub fn person(
    s: &Session,
    p: &PersonRecord,
    templates: &[TemplateInfo],
    config: &Config,
    note: Option<&str>,
) -> Html<String> {
    let edit = |action: &str, label: &str, value: String| {
        html! {
            form method="post" action={ "/people/" (p.id) "/edit" } class="row" {
                (csrf(s)) input type="hidden" name="action" value=(action);
                label { (label) br; input name="value" value=(value) required; }
                button { "Save" }
            }
        }
    };
    layout(
        Some(s),
        &p.name,
        html! {
            @if let Some(n) = note { p.ok { (n) } }
            div.card {
                (edit("rename", "Name", p.name.clone()))
                form method="post" action={ "/people/" (p.id) "/edit" } class="row" {
                    (csrf(s)) input type="hidden" name="action" value="role";
                    label { "Role" br; select name="value" {
                        @for r in ["employee", "visitor", "watchlist"] { option selected[p.role.as_str() == r] { (r) } }
                    } }
                    button { "Save" }
                }
                (edit("schedule", "Schedule (e.g. mon-fri 07:00-19:00)", p.schedule.to_string()))
                (edit("doors", "Doors (all, or names separated by commas)", p.doors.to_string()))
            }
            div.card {
                h2 { "Templates (" (templates.len()) ")" }
                div.thumbs {
                    @for t in templates {
                        figure.thumb {
                            @if t.has_thumbnail {
                                img src={ "/people/" (p.id) "/templates/" (t.id) "/thumb.jpg" } alt={ "face of template #" (t.id) } width="112" height="112";
                            } @else {
                                div.nothumb title="enrolled before thumbnails were kept, or learnt at the door" { "no picture" }
                            }
                            figcaption {
                                "#" (t.id) " " small { (t.created.get(..10).unwrap_or(&t.created)) }
                                @if t.source_sha256.starts_with("auto:") { " " small { "learnt" } }
                                br;
                                form.inline method="post" action={ "/people/" (p.id) "/templates/" (t.id) "/delete" } data-confirm="Delete this template?" {
                                    (csrf(s)) button { "Delete" }
                                }
                            }
                        }
                    }
                }
                @if templates.len() == 1 { p { small { "The only template cannot be deleted (they would no longer be recognised): add a better photo first." } } }
                h2 { "Add photos" }
                form method="post" action={ "/people/" (p.id) "/enroll" } enctype="multipart/form-data" class="row" {
                    (csrf(s))
                    input type="file" name="photos" accept="image/jpeg,image/png" multiple required;
                    (force_box())
                    button { "Upload" }
                }
                @if !config.cameras.is_empty() {
                    h2 { "Take the face in front of a camera now" }
                    form method="post" action={ "/people/" (p.id) "/capture" } class="row" {
                        (csrf(s))
                        select name="camera" { @for c in &config.cameras { option { (c.name) } } }
                        button { "Capture" }
                    }
                }
            }
            div.card {
                form.inline method="post" action={ "/people/" (p.id) "/edit" } data-confirm="Remove this person and their templates?" {
                    (csrf(s)) input type="hidden" name="action" value="remove"; button.danger { "Remove" }
                }
                " "
                form.inline method="post" action={ "/people/" (p.id) "/edit" } data-confirm="Erase this person, their templates and every event that names them? This cannot be undone." {
                    (csrf(s)) input type="hidden" name="action" value="forget"; button.danger { "Forget (erase everything)" }
                }
            }
        },
    )
}

pub fn enroll_result(s: &Session, who: &str, id: Option<i64>, results: &[PhotoResult]) -> Html<String> {
    layout(
        Some(s),
        &format!("Enrolment of {who}"),
        html! {
            table { tbody {
                @for r in results {
                    tr { td { (r.name) } @match &r.outcome {
                        Ok(()) => td.ok { "enrolled" },
                        Err(e) => td.bad { (web_wording(e)) },
                    } }
                }
            } }
            @if results.iter().any(|r| r.outcome.as_ref().is_err_and(|e| e.contains("--force"))) {
                p { small { "A photo the quality check refused can still be kept: upload it again with "
                    b { "keep photos the quality check refuses" } " ticked (it may match less well at the door)." } }
            }
            p { @if let Some(id) = id { a href={ "/people/" (id) } { "Open " (who) } } @else { a href="/people" { "Back to people" } } }
        },
    )
}

/// Presence per day: how many people came, as an inline SVG bar chart.
fn presence_chart(from: Date, to: Date, days: &[DayAttendance]) -> Markup {
    let mut counts = Vec::new();
    let mut d = from;
    while d <= to && counts.len() < 400 {
        counts.push((d, days.iter().filter(|a| a.date == d).count()));
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => break,
        }
    }
    let max = counts.iter().map(|c| c.1).max().unwrap_or(0).max(1);
    let (w, h) = (720.0, 160.0);
    let bw = w / counts.len().max(1) as f64;
    html! {
        svg viewBox={ "0 0 " (w) " " (h + 20.0) } width="100%" role="img" aria-label="people present per day" {
            @for (i, (day, n)) in counts.iter().enumerate() {
                @let bh = h * (*n as f64) / (max as f64);
                rect.bar x=(i as f64 * bw + 1.0) y=(h - bh) width=((bw - 2.0).max(1.0)) height=(bh) { title { (day) ": " (n) } }
                @if counts.len() <= 31 {
                    text x=(i as f64 * bw + 2.0) y=(h + 14.0) { (day.strftime("%d")) }
                }
            }
        }
    }
}

pub fn attendance(s: &Session, from: Date, to: Date, days: &[DayAttendance], tz: &TimeZone) -> Html<String> {
    let t = |ts: jiff::Timestamp| ts.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string();
    layout(
        Some(s),
        "Attendance",
        html! {
            div.card {
                form method="get" action="/attendance" class="row" {
                    label { "From" br; input type="date" name="from" value=(from); }
                    label { "To" br; input type="date" name="to" value=(to); }
                    button { "Show" }
                    a href={ "/attendance.csv?from=" (from) "&to=" (to) } { "Download CSV" }
                }
                (presence_chart(from, to, days))
            }
            table {
                thead { tr { th{"date"} th{"person"} th{"first in"} th{"last out"} th{"passes"} } }
                tbody { @for d in days { tr { td{(d.date)} td{(d.person)} td{(t(d.first_in))} td{(t(d.last_out))} td{(d.passes)} } } }
            }
            p { (days.len()) " person-day(s)" }
        },
    )
}
