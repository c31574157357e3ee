//! Web console page loads with 1,000 people and 100,000 attendance rows in the store (issue 12
//! target: each page <= 300 ms), 10,000 journal rows (door, camera, audit) and five thumbnails on
//! one person's page. Seeds a real SQLite store (one bulk transaction), logs in once,
//! then loads each page 15 times through the real router and prints the median and max.
//!
//! Run: `cargo bench --bench web`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, header};
use facegate::act::store::Store;
use facegate::config::Config;
use facegate::web::live::LiveFeed;
use facegate::web::{WebState, router};
use http_body_util::BodyExt;
use tower::ServiceExt;

const PEOPLE: i64 = 1_000;
const EVENTS: i64 = 100_000;

fn seed(path: &std::path::Path) {
    let mut store = Store::open(path).unwrap();
    store.add_admin("bench", &facegate::web::auth::hash_password("bench password").unwrap()).unwrap();
    drop(store);
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..PEOPLE {
        tx.execute(
            "INSERT INTO people (name, created, updated) VALUES (?1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            [format!("Person {i:04}")],
        )
        .unwrap();
    }
    // 100,000 granted passes over the 30 days before now: ~3 per person per day.
    let now = jiff::Timestamp::now().as_millisecond();
    let span = 30 * 86_400_000i64;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO events (at_ms, at, camera, door, person_id, person_name, kind, similarity, margin, votes, vote_window) \
                 VALUES (?1, '', 'entrance', 'front', ?2, ?3, ?4, 0.8, 0.3, 3, 5)",
            )
            .unwrap();
        for i in 0..EVENTS {
            let person = i % PEOPLE + 1;
            let at = now - span + (i * 7_919 % span);
            let kind = if i % 10 == 0 { "unknown" } else { "granted" };
            insert.execute(rusqlite::params![at, person, format!("Person {:04}", person - 1), kind]).unwrap();
        }
    }
    // The node journal (door pulses, camera changes, audit): one row per ten decisions.
    {
        let mut insert =
            tx.prepare("INSERT INTO journal (at_ms, kind, subject, detail) VALUES (?1, ?2, ?3, ?4)").unwrap();
        for i in 0..EVENTS / 10 {
            let at = now - span + (i * 79_193 % span);
            let (kind, subject, detail) = match i % 3 {
                0 => ("pulse", "front", "relay pulsed 3000 ms by face"),
                1 => ("audit", "office", "rename via web: ok"),
                _ => ("camera_online", "entrance", "online at 15.0 fps"),
            };
            insert.execute(rusqlite::params![at, kind, subject, detail]).unwrap();
        }
    }
    // Person 500 has 5 templates with face thumbnails (the person page shows them).
    let thumb = facegate::vision::thumbnail::face_thumbnail(&image::RgbImage::from_pixel(
        112,
        112,
        image::Rgb([128, 110, 100]),
    ))
    .unwrap();
    for i in 0..5 {
        tx.execute(
            "INSERT INTO templates (person_id, embedding, dim, model_id, source_sha256, created, thumbnail) \
             VALUES (500, zeroblob(2048), 512, 'bench', ?1, '2026-01-01T00:00:00Z', ?2)",
            rusqlite::params![format!("sha{i}"), thumb],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let started = Instant::now();
    seed(&path);
    println!("seeded {PEOPLE} people and {EVENTS} events in {:.1} s", started.elapsed().as_secs_f64());
    let mut config = Config::default();
    config.store.path = path.clone();
    config.web.enabled = true;
    config.web.tls = false;
    config.web.bind = "127.0.0.1:0".into();
    let reload = facegate::api::Reload { source: None, control: Default::default() };
    let api = facegate::api::NodeApi::new(
        config.clone(),
        Store::open(&path).unwrap(),
        HashMap::new(),
        reload,
        Default::default(),
    );
    let state =
        Arc::new(WebState::new(&config, Store::open(&path).unwrap(), api, LiveFeed::start(0, 5.0), None).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let login = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("name=bench&password=bench%20password"))
            .unwrap();
        let r = router(Arc::clone(&state)).oneshot(login).await.unwrap();
        let cookie = r.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
        let today = jiff::Zoned::now().date();
        let month_ago = today.checked_sub(jiff::Span::new().days(29)).unwrap();
        let pages = [
            "/".to_string(),
            "/people".to_string(),
            "/people?q=Person%2009".to_string(),
            "/people/500".to_string(),
            "/attendance".to_string(),
            format!("/attendance?from={month_ago}&to={today}"),
            format!("/attendance.csv?from={month_ago}&to={today}"),
            "/events".to_string(),
            "/events?kind=unknown".to_string(),
            "/events?kind=pulse".to_string(),
            "/events?person=Person%200499".to_string(),
            format!("/events?from={month_ago}&to={today}"),
            "/people/500/templates/1/thumb.jpg".to_string(),
            "/health".to_string(),
            "/api/decisions".to_string(),
        ];
        println!("{:<44} {:>10} {:>10} {:>10}", "page", "median ms", "max ms", "bytes");
        for page in &pages {
            let mut times = Vec::new();
            let mut bytes = 0;
            for _ in 0..15 {
                let req = Request::get(page.as_str()).header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
                let t = Instant::now();
                let r = router(Arc::clone(&state)).oneshot(req).await.unwrap();
                assert!(r.status().is_success(), "{page}: {}", r.status());
                bytes = r.into_body().collect().await.unwrap().to_bytes().len();
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            println!("{page:<44} {:>10.1} {:>10.1} {bytes:>10}", times[times.len() / 2], times[times.len() - 1]);
        }
    });
}
