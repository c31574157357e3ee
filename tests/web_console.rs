//! HTTP-level tests of every console route against the real store and the real face models:
//! anonymous requests are refused, POSTs without the CSRF token are refused and change nothing,
//! bad uploads are refused with a message, and the attendance CSV is the CLI's.
#![cfg(feature = "web")]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use facegate::act::door::Door;
use facegate::act::store::{EventKind, Store};
use facegate::config::Config;
use facegate::decide::clock::MonotonicClock;
use facegate::web::live::LiveFeed;
use facegate::web::{WebState, router};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct Console {
    _dir: tempfile::TempDir,
    config: Config,
    state: Arc<WebState>,
}

const PASSWORD: &str = "correct horse battery";

fn console() -> Console {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[store]\npath = \"{}\"\n[web]\nenabled = true\nbind = \"127.0.0.1:0\"\ntls = false\nmax_upload_mb = 2\n\
         [[door]]\nname = \"front\"\nrelay = {{ driver = \"dry_run\" }}\npulse_ms = 50\n\
         [[camera]]\nname = \"entrance\"\ndoor = \"front\"\nsource = {{ kind = \"replay\", path = \"{}\" }}\n",
        dir.path().join("f.db").display(),
        common::fixture("clips/walkup.mjpeg").display()
    );
    let config = Config::parse(&text).unwrap();
    let mut store = Store::open_config(&config.store).unwrap();
    store.add_admin("office", &facegate::web::auth::hash_password(PASSWORD).unwrap()).unwrap();
    let mut doors = HashMap::new();
    let door = Door::open(&config.doors[0], Arc::new(MonotonicClock::default())).unwrap();
    doors.insert("front".to_string(), Arc::new(door));
    let live = LiveFeed::start(1, 5.0);
    let reload = facegate::api::Reload { source: None, control: Default::default() };
    // No per-actor rate limits: these tests enrol several times a second on purpose (the
    // limits themselves are tested on the API, tests/command_auth.rs).
    let api = facegate::api::NodeApi::new(
        config.clone(),
        Store::open_config(&config.store).unwrap(),
        doors,
        reload,
        Default::default(),
    )
    .with_limits(facegate::api::RateLimits::new(&[]));
    let state = Arc::new(WebState::new(&config, store, api, live, None).unwrap());
    Console { _dir: dir, config, state }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Console {
    fn store(&self) -> Store {
        Store::open_config(&self.config.store).unwrap()
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let response = router(Arc::clone(&self.state)).oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let streaming =
            headers.get(header::CONTENT_TYPE).is_some_and(|v| v.to_str().unwrap().starts_with("multipart/x-mixed"));
        let body = if streaming {
            String::new()
        } else {
            String::from_utf8_lossy(&response.into_body().collect().await.unwrap().to_bytes()).into_owned()
        };
        Reply { status, headers, body }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut b = Request::get(path);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post_form(&self, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Reply {
        let body: String = form.iter().map(|(k, v)| format!("{k}={}", url_encode(v))).collect::<Vec<_>>().join("&");
        let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    async fn post_multipart(
        &self,
        path: &str,
        cookie: &str,
        fields: &[(&str, &str)],
        files: &[(&str, Vec<u8>)],
    ) -> Reply {
        self.post_files(path, cookie, fields, "photos", files).await
    }

    async fn post_files(
        &self,
        path: &str,
        cookie: &str,
        fields: &[(&str, &str)],
        field: &str,
        files: &[(&str, Vec<u8>)],
    ) -> Reply {
        let boundary = "XyZboundary";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").into_bytes(),
            );
        }
        for (name, bytes) in files {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .into_bytes(),
            );
            body.extend(bytes);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").into_bytes());
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .header(header::COOKIE, cookie)
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    async fn get_bytes(&self, path: &str, cookie: &str) -> (StatusCode, Vec<u8>) {
        let req = Request::get(path).header(header::COOKIE, cookie).body(Body::empty()).unwrap();
        let response = router(Arc::clone(&self.state)).oneshot(req).await.unwrap();
        (response.status(), response.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    /// Logs in; returns the cookie and the session's CSRF token.
    async fn login(&self) -> (String, String) {
        let r = self.post_form("/login", None, &[("name", "office"), ("password", PASSWORD)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let set = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
        let cookie = set.split(';').next().unwrap().to_string();
        let page = self.get("/people", Some(&cookie)).await;
        let csrf = page.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        (cookie, csrf)
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

const GET_ROUTES: &[&str] = &[
    "/",
    "/people",
    "/people/1",
    "/attendance",
    "/attendance.csv",
    "/events",
    "/health",
    "/live/entrance",
    "/api/live/entrance",
    "/api/decisions",
    "/people/1/templates/1/thumb.jpg",
    "/people/bulk/abc",
    "/api/bulk/abc",
    "/statistics",
];

#[test]
fn every_route_needs_a_login() {
    let c = console();
    rt().block_on(async {
        for path in GET_ROUTES {
            let r = c.get(path, None).await;
            assert!(r.status == StatusCode::SEE_OTHER || r.status == StatusCode::UNAUTHORIZED, "{path}: {}", r.status);
        }
        let r = c.get("/people", Some("facegate_session=forged")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        for path in [
            "/people",
            "/people/1/edit",
            "/enroll",
            "/doors/front/test",
            "/logout",
            "/people/1/templates/1/delete",
            "/people/bulk",
            "/health/doctor",
        ] {
            let r = c.post_form(path, None, &[("name", "Eve"), ("action", "remove")]).await;
            assert!(r.status == StatusCode::SEE_OTHER || r.status == StatusCode::UNAUTHORIZED, "{path}: {}", r.status);
        }
        assert!(c.store().people().unwrap().is_empty(), "an anonymous POST changed nothing");
        let r = c.get("/login", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers.get("content-security-policy").is_some());
    });
}

#[test]
fn logins_are_checked_and_rate_limited() {
    let c = console();
    rt().block_on(async {
        let r = c.post_form("/login", None, &[("name", "office"), ("password", "wrong password!")]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("wrong name or password"));
        assert!(r.headers.get(header::SET_COOKIE).is_none());
        let r = c.post_form("/login", None, &[("name", "nobody"), ("password", PASSWORD)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        for _ in 0..9 {
            c.post_form("/login", None, &[("name", "office"), ("password", "wrong password!")]).await;
        }
        let r = c.post_form("/login", None, &[("name", "office"), ("password", PASSWORD)]).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits after many failures");
        assert!(r.body.contains("wait"), "{}", r.body);
    });
}

#[test]
fn posts_without_the_csrf_token_change_nothing() {
    let c = console();
    rt().block_on(async {
        let (cookie, csrf) = c.login().await;
        let r = c.post_form("/people", Some(&cookie), &[("csrf", &csrf), ("name", "Ann")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let ann = c.store().find_person("Ann").unwrap().unwrap();
        let edit = format!("/people/{}/edit", ann.id);
        for (path, form) in [
            ("/people", vec![("name", "Bob")]),
            (edit.as_str(), vec![("action", "rename"), ("value", "Zed")]),
            (edit.as_str(), vec![("action", "remove")]),
            (edit.as_str(), vec![("action", "forget")]),
            ("/doors/front/test", vec![]),
            ("/health/doctor", vec![]),
            ("/logout", vec![]),
        ] {
            for token in ["", "0000"] {
                let mut f = form.clone();
                f.push(("csrf", token));
                let r = c.post_form(path, Some(&cookie), &f).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{path} without a valid token: {}", r.body);
            }
        }
        let r = c.post_multipart("/enroll", &cookie, &[("name", "Cy")], &[("a.jpg", vec![1, 2, 3])]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let people = c.store().people().unwrap();
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].name, "Ann");
        assert_eq!(c.get("/people", Some(&cookie)).await.status, StatusCode::OK, "still logged in");
    });
}

#[test]
fn people_are_edited_through_the_console() {
    let c = console();
    rt().block_on(async {
        let (cookie, csrf) = c.login().await;
        let r = c.post_form("/people", Some(&cookie), &[("csrf", &csrf), ("name", "Ann"), ("role", "visitor")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let id = c.store().find_person("Ann").unwrap().unwrap().id;
        let edit = format!("/people/{id}/edit");
        let ok = |r: &Reply| assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        ok(&c.post_form(&edit, Some(&cookie), &[("csrf", &csrf), ("action", "rename"), ("value", "Anna")]).await);
        ok(&c.post_form(&edit, Some(&cookie), &[("csrf", &csrf), ("action", "role"), ("value", "employee")]).await);
        ok(&c
            .post_form(
                &edit,
                Some(&cookie),
                &[("csrf", &csrf), ("action", "schedule"), ("value", "mon-fri 07:00-19:00")],
            )
            .await);
        ok(&c.post_form(&edit, Some(&cookie), &[("csrf", &csrf), ("action", "doors"), ("value", "front")]).await);
        let p = c.store().find_person("Anna").unwrap().unwrap();
        assert_eq!(
            (p.role.as_str(), p.schedule.to_string(), p.doors.to_string()),
            ("employee", "mon-fri 07:00-19:00".into(), "front".into())
        );
        for (action, value, says) in [
            ("role", "king", "role"),
            ("schedule", "someday", "schedule"),
            ("doors", "garage", "garage"),
            ("rename", "#5", "id"),
            ("explode", "", "unknown action"),
        ] {
            let r = c.post_form(&edit, Some(&cookie), &[("csrf", &csrf), ("action", action), ("value", value)]).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{action}={value}");
            assert!(r.body.to_lowercase().contains(says), "{action}: {}", r.body);
        }
        assert_eq!(c.store().find_person("Anna").unwrap().unwrap(), p, "refused edits changed nothing");
        let page = c.get(&format!("/people/{id}"), Some(&cookie)).await;
        assert!(page.status == StatusCode::OK && page.body.contains("Anna"));
        let list = c.get("/people?q=ann", Some(&cookie)).await;
        assert!(list.body.contains("Anna"));
        assert!(!c.get("/people?q=zzz", Some(&cookie)).await.body.contains("Anna"));
        assert_eq!(c.get("/people/999", Some(&cookie)).await.status, StatusCode::NOT_FOUND);
        assert_eq!(c.get("/people/abc", Some(&cookie)).await.status, StatusCode::NOT_FOUND);
        // The audit trail: every change left an event for MQTT.
        use facegate::act::Outbox;
        let audits = c.store().pending(0, 100).unwrap().into_iter().filter(|e| e.event.topic == "audit").count();
        assert!(audits >= 5, "{audits} audit events");
        let r = c.post_form(&edit, Some(&cookie), &[("csrf", &csrf), ("action", "forget")]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(c.store().people().unwrap().is_empty());
    });
}

#[test]
fn uploads_are_checked_per_photo() {
    let c = console();
    rt().block_on(async {
        let (cookie, csrf) = c.login().await;
        let read = |p: &str| std::fs::read(common::fixture(p)).unwrap();
        let r = c
            .post_multipart(
                "/enroll",
                &cookie,
                &[("csrf", &csrf), ("name", "Grace")],
                &[("junk.jpg", b"not an image".to_vec())],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("junk.jpg") && r.body.contains("JPEG"), "{}", r.body);
        let r = c
            .post_multipart(
                "/enroll",
                &cookie,
                &[("csrf", &csrf), ("name", "Grace")],
                &[("cat.jpg", read("noface/cat.jpg"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("cat.jpg: no face found"), "{}", r.body);
        let r = c
            .post_multipart(
                "/enroll",
                &cookie,
                &[("csrf", &csrf), ("name", "Grace")],
                &[("group.jpg", read("group/01.jpg"))],
            )
            .await;
        assert!(r.body.contains("group.jpg: 3 faces found") && r.body.contains("only the person"), "{}", r.body);
        assert!(c.store().people().unwrap().is_empty(), "refused uploads enrolled nobody");
        let big = vec![0u8; 3 * 1024 * 1024];
        let r = c.post_multipart("/enroll", &cookie, &[("csrf", &csrf), ("name", "Grace")], &[("big.jpg", big)]).await;
        assert!(r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::PAYLOAD_TOO_LARGE, "{}", r.status);
        assert!(c.store().people().unwrap().is_empty());
        let r = c
            .post_multipart(
                "/enroll",
                &cookie,
                &[("csrf", &csrf), ("name", "Grace")],
                &[("01.jpg", read("faces/hopper/01.jpg")), ("cat.jpg", read("noface/cat.jpg"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("enrolled") && r.body.contains("no face found"), "one result per photo: {}", r.body);
        let grace = c.store().find_person("Grace").unwrap().unwrap();
        assert_eq!(grace.templates, 1);
        let templates = c.store().template_infos("Grace").unwrap();
        assert!(templates[0].has_thumbnail, "web enrolment stores the face thumbnail");
        let thumb = format!("/people/{}/templates/{}/thumb.jpg", grace.id, templates[0].id);
        assert!(c.get(&thumb, None).await.status == StatusCode::SEE_OTHER, "the thumbnail needs a login");
        let r = c.get_bytes(&thumb, &cookie).await;
        assert_eq!(r.0, StatusCode::OK);
        assert_eq!(&r.1[..2], &[0xFF, 0xD8], "a JPEG");
        let face = image::load_from_memory(&r.1).unwrap();
        assert!(face.width() <= 112 && face.height() <= 112);
        let page = c.get(&format!("/people/{}", grace.id), Some(&cookie)).await;
        assert!(page.body.contains(&thumb), "the person page shows the thumbnail");
        let missing = format!("/people/{}/templates/999999/thumb.jpg", grace.id);
        assert_eq!(c.get(&missing, Some(&cookie)).await.status, StatusCode::NOT_FOUND);

        let del = format!("/people/{}/templates/{}/delete", grace.id, templates[0].id);
        assert_eq!(c.post_form(&del, Some(&cookie), &[("csrf", "")]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(c.store().find_person("Grace").unwrap().unwrap().templates, 1);
        let r = c.post_form(&del, Some(&cookie), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "the only template is kept: {}", r.body);
        assert!(r.body.contains("only template") && r.body.contains("enrol a better photo first"), "{}", r.body);
        assert_eq!(c.store().find_person("Grace").unwrap().unwrap().templates, 1, "refused: nothing changed");

        // A photo the quality check refuses is enrolled only with "keep anyway".
        let add = format!("/people/{}/enroll", grace.id);
        let poor = [("cameraman.jpg", read("strangers/cameraman.jpg"))];
        let r = c.post_multipart(&add, &cookie, &[("csrf", &csrf)], &poor).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(
            r.body.contains("cameraman.jpg") && r.body.contains("keep photos the quality check refuses"),
            "{}",
            r.body
        );
        assert_eq!(c.store().find_person("Grace").unwrap().unwrap().templates, 1);
        let r = c.post_multipart(&add, &cookie, &[("csrf", &csrf), ("force", "1")], &poor).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(c.store().find_person("Grace").unwrap().unwrap().templates, 2);

        assert_eq!(c.post_form(&del, Some(&cookie), &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
        assert_eq!(c.store().find_person("Grace").unwrap().unwrap().templates, 1);
        let r = c.post_form(&del, Some(&cookie), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "deleted already: {}", r.body);
        use facegate::act::Outbox;
        let audits: Vec<String> = c
            .store()
            .pending(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.event.topic == "audit")
            .map(|e| String::from_utf8_lossy(&e.event.payload).into_owned())
            .filter(|p| p.contains("delete_template"))
            .collect();
        assert_eq!(audits.len(), 3, "every delete, refused or done, is audited: {audits:?}");
    });
}

use common::granted_event as granted;

#[test]
fn attendance_csv_is_the_clis_and_pages_render() {
    let c = console();
    let mut store = c.store();
    let ann = store.add_person("Ann", Default::default(), &Default::default()).unwrap();
    for at in ["2026-03-02T08:01:00Z", "2026-03-02T17:30:00Z", "2026-03-03T09:00:00Z"] {
        store.record_event(&granted(at, ann, "Ann"), &[]).unwrap();
    }
    let mut unknown = granted("2026-03-02T10:00:00Z", ann, "Ann");
    (unknown.kind, unknown.person_id, unknown.person_name) = (EventKind::Unknown, None, None);
    store.record_event(&unknown, &[]).unwrap();
    rt().block_on(async {
        let (cookie, csrf) = c.login().await;
        let r = c.get("/attendance.csv?from=2026-03-01&to=2026-03-05", Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK);
        let db = c.config.store.path.to_str().unwrap();
        let cli = common::facegate(&["--db", db, "attendance", "--csv", "--from", "2026-03-01", "--to", "2026-03-05"]);
        assert!(cli.status.success(), "{}", common::stderr(&cli));
        assert_eq!(r.body, common::stdout(&cli), "the console's CSV is the CLI's");
        assert_eq!(r.body.lines().count(), 3);
        let page = c.get("/attendance?from=2026-03-01&to=2026-03-05", Some(&cookie)).await;
        assert!(page.status == StatusCode::OK && page.body.contains("<svg") && page.body.contains("Ann"));
        for bad in [
            "/attendance?from=yesterday",
            "/attendance?from=2026-03-05&to=2026-03-01",
            "/attendance?from=2020-01-01&to=2026-01-01",
        ] {
            assert_eq!(c.get(bad, Some(&cookie)).await.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let ev = c.get("/events?kind=unknown", Some(&cookie)).await;
        assert!(
            ev.status == StatusCode::OK
                && ev.body.contains("class=\"unknown\"")
                && !ev.body.contains("class=\"granted\""),
            "{}",
            ev.body
        );
        assert_eq!(c.get("/events?kind=maybe", Some(&cookie)).await.status, StatusCode::BAD_REQUEST);
        let d = c.get("/api/decisions", Some(&cookie)).await;
        let rows: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 4);
        let h = c.get("/health", Some(&cookie)).await;
        assert!(h.status == StatusCode::OK && h.body.contains("Test door front"));
        let t = c.post_form("/doors/front/test", Some(&cookie), &[("csrf", &csrf)]).await;
        assert!(t.status == StatusCode::OK && t.body.contains("pulsed for 50 ms"), "{}", t.body);
        let t = c.post_form("/doors/side/test", Some(&cookie), &[("csrf", &csrf)]).await;
        assert_eq!(t.status, StatusCode::BAD_REQUEST);
        let live = c.get("/", Some(&cookie)).await;
        assert!(live.body.contains("/live/entrance"));
        let mjpeg = c.get("/live/entrance", Some(&cookie)).await;
        assert_eq!(mjpeg.headers.get(header::CONTENT_TYPE).unwrap(), "multipart/x-mixed-replace; boundary=frame");
        assert_eq!(c.get("/live/nope", Some(&cookie)).await.status, StatusCode::NOT_FOUND);
        let boxes = c.get("/api/live/entrance", Some(&cookie)).await;
        assert!(boxes.body.contains("\"boxes\""));
        let out = c.post_form("/logout", Some(&cookie), &[("csrf", &csrf)]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert_eq!(c.get("/people", Some(&cookie)).await.status, StatusCode::SEE_OTHER, "logged out");
    });
}

fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        for (name, data) in entries {
            let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
    }
    out.into_inner()
}

/// Polls a bulk job's status until it has finished (bounded: the job is a few photos).
async fn finished_job(c: &Console, cookie: &str, location: &str) -> serde_json::Value {
    let id = location.rsplit('/').next().unwrap();
    for _ in 0..600 {
        let r = c.get(&format!("/api/bulk/{id}"), Some(cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        if v["finished"].as_bool().unwrap() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("bulk job {id} did not finish within a minute");
}

#[test]
fn bulk_enrolment_from_a_zip_is_bounded_and_reported_per_photo() {
    let c = console();
    rt().block_on(async {
        let (cookie, csrf) = c.login().await;
        let read = |p: &str| std::fs::read(common::fixture(p)).unwrap();
        let post = |fields: Vec<(&'static str, String)>, zip: Vec<u8>| {
            let cookie = cookie.clone();
            let c = &c;
            async move {
                let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                c.post_files("/people/bulk", &cookie, &fields, "zip", &[("staff.zip", zip)]).await
            }
        };
        let good = zip_of(&[
            ("staff/hopper/01.jpg", read("faces/hopper/01.jpg")),
            ("staff/hopper/cat.jpg", read("noface/cat.jpg")),
            ("staff/hopper/readme.txt", b"not a photo".to_vec()),
            ("staff/astronaut/01.jpg", read("faces/astronaut/01.jpg")),
        ]);
        let r = post(vec![("csrf", String::new())], good.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
        let refused: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04 this is no zip".to_vec(), "not a readable zip"),
            (
                zip_of(&[("Ann/1.jpg", read("faces/hopper/01.jpg")), ("../../evil/x.jpg", vec![1])]),
                "outside the archive",
            ),
            (zip_of(&[("Ann/notes.txt", b"x".to_vec())]), "no photos found"),
        ];
        for (zip, says) in refused {
            let r = post(vec![("csrf", csrf.clone())], zip).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{says}: {}", r.body);
            assert!(r.body.contains(says), "{says}: {}", r.body);
        }
        // Over the upload cap (2 MiB in this config): refused before anything is read.
        let noise: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let r = post(vec![("csrf", csrf.clone())], zip_of(&[("Ann/big.jpg", noise)])).await;
        assert!(r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::PAYLOAD_TOO_LARGE, "{}", r.status);
        assert!(c.store().people().unwrap().is_empty(), "refused archives enrolled nobody");

        let r = post(vec![("csrf", csrf.clone())], good.clone()).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let location = r.headers[header::LOCATION].to_str().unwrap().to_string();
        let page = c.get(&location, Some(&cookie)).await;
        assert!(page.status == StatusCode::OK && page.body.contains("bulk-bar"), "{}", page.body);
        let job = finished_job(&c, &cookie, &location).await;
        assert_eq!((job["people_enrolled"].as_u64(), job["photos_enrolled"].as_u64()), (Some(2), Some(2)), "{job}");
        let lines = job["lines"].to_string();
        assert!(lines.contains("readme.txt") && lines.contains("not a photo"), "{lines}");
        assert!(lines.contains("cat.jpg: no face found"), "{lines}");
        let store = c.store();
        assert_eq!(store.find_person("hopper").unwrap().unwrap().templates, 1);
        assert_eq!(store.find_person("astronaut").unwrap().unwrap().templates, 1);
        assert!(store.template_infos("hopper").unwrap()[0].has_thumbnail, "bulk enrolment keeps thumbnails");

        // Existing people are only added to when asked.
        let more = zip_of(&[("hopper/02.jpg", read("faces/hopper/02.jpg"))]);
        let r = post(vec![("csrf", csrf.clone())], more.clone()).await;
        let job = finished_job(&c, &cookie, r.headers[header::LOCATION].to_str().unwrap()).await;
        assert!(job["lines"].to_string().contains("already enrolled"), "{job}");
        assert_eq!(c.store().find_person("hopper").unwrap().unwrap().templates, 1);
        let r = post(vec![("csrf", csrf.clone()), ("append", "1".into())], more).await;
        let job = finished_job(&c, &cookie, r.headers[header::LOCATION].to_str().unwrap()).await;
        assert_eq!(job["photos_enrolled"].as_u64(), Some(1), "{job}");
        assert_eq!(c.store().find_person("hopper").unwrap().unwrap().templates, 2);

        use facegate::act::Outbox;
        let audits = c
            .store()
            .pending(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.event.topic == "audit" && String::from_utf8_lossy(&e.event.payload).contains("\"enroll\""))
            .count();
        // hopper, astronaut, hopper again with append (the refused "already enrolled" one never
        // reached the API: it was refused before any photo was looked at).
        assert_eq!(audits, 3, "every person's enrolment goes through the API, which audits it");
        assert_eq!(c.get("/api/bulk/nope", Some(&cookie)).await.status, StatusCode::NOT_FOUND);
        assert_eq!(c.get("/people/bulk/nope", Some(&cookie)).await.status, StatusCode::NOT_FOUND);
    });
}

#[test]
fn the_event_log_shows_door_camera_and_audit_events_filtered() {
    use facegate::act::events::{AuditInfo, CameraState, DoorKind, EventBuilder};
    let c = console();
    let mut store = c.store();
    let b = EventBuilder::new("n1");
    let at: jiff::Timestamp = "2026-03-02T09:00:00Z".parse().unwrap();
    let offline = CameraState {
        camera: "entrance".into(),
        location: "hall".into(),
        online: false,
        reason: Some("no frame for 5 s".into()),
        fps: None,
    };
    let audit =
        AuditInfo { actor: "office".into(), via: "web".into(), command: "rename".into(), ok: true, error: None };
    store
        .enqueue(&[
            b.door("front", &DoorKind::Pulse { ms: 50, by: "remote".into() }, at),
            b.door("front", &DoorKind::Forced, at),
            b.door("front", &DoorKind::HeldOpen { seconds: 40.0 }, at),
            b.camera_state(&offline, at),
            b.audit(&audit, at),
        ])
        .unwrap();
    let mut denied = granted("2026-03-02T09:01:00Z", 1, "Ann");
    (denied.kind, denied.reason) = (EventKind::Denied, Some("outside schedule".into()));
    store.record_event(&denied, &[]).unwrap();
    rt().block_on(async {
        let (cookie, csrf) = c.login().await;
        let all = c.get("/events", Some(&cookie)).await;
        assert_eq!(all.status, StatusCode::OK);
        for text in [
            "relay pulsed 50 ms",
            "forced",
            "held open 40 s",
            "no frame for 5 s",
            "rename via web: ok",
            "outside schedule",
        ] {
            assert!(all.body.contains(text), "{text} missing: {}", all.body);
        }
        let pulses = c.get("/events?kind=pulse", Some(&cookie)).await;
        assert!(pulses.body.contains("relay pulsed") && !pulses.body.contains("outside schedule"), "{}", pulses.body);
        let ann = c.get("/events?person=ann", Some(&cookie)).await;
        assert!(ann.body.contains("outside schedule") && !ann.body.contains("relay pulsed"), "{}", ann.body);
        let cam = c.get("/events?kind=camera_offline&camera=entrance", Some(&cookie)).await;
        assert!(cam.body.contains("no frame for 5 s") && !cam.body.contains("rename"), "{}", cam.body);
        let day = c.get("/events?from=2026-03-02&to=2026-03-02", Some(&cookie)).await;
        assert!(day.body.contains("relay pulsed") && day.body.contains("outside schedule"));
        let later = c.get("/events?from=2026-03-03", Some(&cookie)).await;
        assert!(!later.body.contains("relay pulsed") && !later.body.contains("outside schedule"));
        for bad in ["/events?from=monday", "/events?from=2026-03-05&to=2026-03-01", "/events?kind=party"] {
            let r = c.get(bad, Some(&cookie)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }

        // The doctor checks run from the health page, on demand, behind the CSRF token.
        let h = c.get("/health", Some(&cookie)).await;
        assert!(h.body.contains("Not run yet") && h.body.contains("Test door front"), "{}", h.body);
        assert_eq!(c.post_form("/health/doctor", Some(&cookie), &[("csrf", "")]).await.status, StatusCode::FORBIDDEN);
        let r = c.post_form("/health/doctor", Some(&cookie), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let h = c.get("/health", Some(&cookie)).await;
        for text in ["Run at", "onnxruntime", "models", "integrity check", "door front"] {
            assert!(h.body.contains(text), "{text} missing from the checks: {}", h.body);
        }
    });
}

/// An unknown face of `photo` as the act stage would store it (real embedding of the node's model).
fn unknown_face(engine: &mut facegate::engine::Engine, photo: &str) -> facegate::act::store::UnknownEvidence {
    let bytes = std::fs::read(common::fixture(photo)).unwrap();
    let image = facegate::capture::image_file::decode_rgb(&bytes, photo).unwrap();
    let (mut faces, _) = engine.pipeline.analyse(&image).unwrap();
    assert_eq!(faces.len(), 1, "{photo}");
    facegate::act::store::UnknownEvidence {
        thumbnail: facegate::vision::thumbnail::face_thumbnail(&image).unwrap(),
        embedding: faces.remove(0).embedding,
        model: engine.template_model(),
        threshold: engine.policy.threshold,
        quality: 0.8,
    }
}

#[test]
fn unknown_faces_are_labelled_and_dismissed_through_the_console() {
    let c = console();
    let mut engine = facegate::engine::Engine::open(&c.config).unwrap();
    let at = jiff::Timestamp::now();
    let add = |photo: &str, engine: &mut facegate::engine::Engine| {
        c.store().add_unknown_face(at, "entrance", &unknown_face(engine, photo), 100).unwrap()
    };
    let hopper = add("faces/hopper/01.jpg", &mut engine);
    let astronaut = add("faces/astronaut/01.jpg", &mut engine);
    assert_ne!(hopper.group, astronaut.group, "two strangers, two groups");
    let hopper2 = add("faces/hopper/02.jpg", &mut engine);
    assert_eq!(hopper2.group, hopper.group, "the same stranger's second visit joins the first");
    rt().block_on(async {
        // Anonymous: nothing shown, nothing changed.
        for path in ["/unknown", &format!("/unknown/face/{}", hopper.id)] {
            assert_eq!(c.get(path, None).await.status, StatusCode::SEE_OTHER, "{path}");
        }
        for action in ["label", "new", "dismiss"] {
            let r = c.post_form(&format!("/unknown/{}/{action}", hopper.group), None, &[("name", "Eve")]).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}");
        }
        let (cookie, csrf) = c.login().await;
        let page = c.get("/unknown", Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("2 group(s), 3 face(s)"), "{}", page.body);
        assert!(page.body.contains(&format!("/unknown/face/{}", hopper2.id)) && page.body.contains("entrance"));
        let thumb = c.get(&format!("/unknown/face/{}", hopper.id), Some(&cookie)).await;
        assert_eq!(thumb.status, StatusCode::OK);
        assert_eq!(thumb.headers.get(header::CONTENT_TYPE).unwrap(), "image/jpeg");
        assert_eq!(c.get("/unknown/face/x", Some(&cookie)).await.status, StatusCode::NOT_FOUND);
        assert_eq!(c.get("/unknown/face/999999", Some(&cookie)).await.status, StatusCode::NOT_FOUND);

        // Refused requests change nothing: no token, bad ids, bad input, a lookalike.
        let label = format!("/unknown/{}/label", hopper.group);
        let new = format!("/unknown/{}/new", hopper.group);
        for path in [&label, &new, &format!("/unknown/{}/dismiss", hopper.group)] {
            for token in ["", "0000"] {
                let r = c.post_form(path, Some(&cookie), &[("csrf", token), ("name", "Grace")]).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            }
        }
        for path in ["/unknown/abc/label", "/unknown/0/dismiss", "/unknown/-3/new"] {
            let r = c.post_form(path, Some(&cookie), &[("csrf", &csrf), ("name", "Grace")]).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            assert!(r.body.contains("not an unknown-face group"), "{}", r.body);
        }
        let r = c.post_form("/unknown/999999/dismiss", Some(&cookie), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("no unknown-face group #999999"), "{}", r.body);
        let r = c.post_form(&label, Some(&cookie), &[("csrf", &csrf), ("name", "Nobody")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("no person `Nobody`"), "{}", r.body);
        let r = c.post_form(&new, Some(&cookie), &[("csrf", &csrf), ("name", "Grace"), ("role", "king")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("role"), "{}", r.body);
        let r = c.post_form(&new, Some(&cookie), &[("csrf", &csrf), ("name", " ")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(c.store().people().unwrap().is_empty());
        assert_eq!(c.store().unknown_count().unwrap(), 3, "refused requests erased nothing");

        // Label as a new person: both visits become templates, the group leaves the inbox.
        let r = c.post_form(&new, Some(&cookie), &[("csrf", &csrf), ("name", "Grace"), ("role", "visitor")]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let grace = c.store().find_person("Grace").unwrap().unwrap();
        assert_eq!((grace.role.as_str(), grace.templates), ("visitor", 2));
        assert_eq!(r.headers.get(header::LOCATION).unwrap(), &format!("/people/{}", grace.id));
        assert_eq!(c.store().unknown_count().unwrap(), 1);
        let r = c.post_form(&label, Some(&cookie), &[("csrf", &csrf), ("name", "Grace")]).await;
        assert!(r.body.contains("no unknown-face group"), "labelled groups are gone: {}", r.body);

        // A new visit of hers: not enrolled under another name (it looks like Grace), but added to her.
        let again = add("faces/hopper/02.jpg", &mut engine);
        let r = c
            .post_form(&format!("/unknown/{}/new", again.group), Some(&cookie), &[("csrf", &csrf), ("name", "Decoy")])
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("matches `Grace`"), "{}", r.body);
        assert!(c.store().find_person("Decoy").unwrap().is_none());
        let r = c
            .post_form(&format!("/unknown/{}/label", again.group), Some(&cookie), &[("csrf", &csrf), ("name", "grace")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        // The same photo's thumbnail is the same template source: nothing new, but the face leaves.
        assert_eq!(c.store().find_person("Grace").unwrap().unwrap().templates, 2);
        assert_eq!(c.store().unknown_count().unwrap(), 1);

        // Dismiss erases the other stranger.
        let r = c.post_form(&format!("/unknown/{}/dismiss", astronaut.group), Some(&cookie), &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(c.store().unknown_count().unwrap(), 0);

        // Forgetting Grace erases the inbox faces that match her, and says how many.
        add("faces/hopper/01.jpg", &mut engine);
        add("faces/astronaut/02.jpg", &mut engine);
        let edit = format!("/people/{}/edit", grace.id);
        let r = c.post_form(&edit, Some(&cookie), &[("csrf", &csrf), ("action", "forget")]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("1 unknown face(s)"), "{}", r.body);
        assert_eq!(c.store().unknown_count().unwrap(), 1, "the other stranger stays");

        use facegate::act::Outbox;
        let audits: Vec<String> = c
            .store()
            .pending(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.event.topic == "audit")
            .map(|e| String::from_utf8_lossy(&e.event.payload).into_owned())
            .collect();
        for command in ["label_unknown", "dismiss_unknown"] {
            assert!(audits.iter().any(|a| a.contains(command) && a.contains("office")), "{command}: {audits:?}");
        }
    });
}

#[test]
fn the_statistics_page_shows_the_hourly_counts_through_the_api() {
    use facegate::analytics::{Tally, hour_of};
    let c = console();
    let mut store = c.store();
    let tz = jiff::tz::TimeZone::UTC;
    let report = |h: &facegate::analytics::HourCounts| facegate::act::OutboxEvent {
        event_id: format!("{}-{}", h.camera, h.faces),
        topic: "camera/entrance/attributes".into(),
        payload: b"{}".to_vec(),
        retain: true,
    };
    let now = jiff::Timestamp::now();
    let young = Tally { age: "18_29", gender: "woman", emotion: "happy" };
    let old = Tally { age: "65_plus", gender: "man", emotion: "surprise" };
    store.count_attributes("entrance", hour_of(now, &tz), &young, report).unwrap();
    store.count_attributes("entrance", hour_of(now, &tz), &young, report).unwrap();
    let last_month = now.checked_sub(jiff::SignedDuration::from_hours(24 * 40)).unwrap();
    store.count_attributes("entrance", hour_of(last_month, &tz), &old, report).unwrap();
    rt().block_on(async {
        let (cookie, _) = c.login().await;
        let page = c.get("/statistics", Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("2 face(s) in 1 camera-hour(s)"), "{}", page.body);
        assert!(page.body.contains("18-29: 2") && page.body.contains("woman: 2") && page.body.contains("happy: 2"));
        assert!(page.body.contains("65-plus: 0") && page.body.contains("(so far)"), "the hour runs");
        assert!(page.body.contains("statistics are off"), "this console's config has [analyze] off: {}", page.body);
        let month = c.get("/statistics?hours=744&camera=entrance", Some(&cookie)).await;
        assert!(month.body.contains("2 face(s) in 1 camera-hour(s)"), "40 days ago is outside 31 days");
        for bad in ["/statistics?hours=soon", "/statistics?hours=0", "/statistics?hours=100000"] {
            assert_eq!(c.get(bad, Some(&cookie)).await.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let garage = c.get("/statistics?camera=garage", Some(&cookie)).await;
        assert!(garage.status.is_client_error() && garage.body.contains("entrance"), "{}", garage.body);
    });
    // Read through the API, so audited with the administrator's name.
    let audits: Vec<serde_json::Value> = {
        use facegate::act::Outbox;
        let mut s = c.store();
        s.pending(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|p| p.event.topic == "audit")
            .map(|p| serde_json::from_slice(&p.event.payload).unwrap())
            .collect()
    };
    assert!(audits.iter().any(|a| a["command"] == "attribute_stats" && a["actor"] == "office"), "{audits:?}");
}
