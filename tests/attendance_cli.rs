//! `facegate attendance` counts days in the site's zone (`[service] timezone`), the zone the web
//! console and the schedules use, not the machine's: a pass at 20:00 UTC is the next morning in
//! Tokyo, so the CLI and the console must put it on the same (next) day.

mod common;

use facegate::act::store::{AccessEvent, Store};

fn granted(at: &str, id: i64) -> AccessEvent {
    common::granted_event(at, id, "Ann")
}

#[test]
fn cli_attendance_uses_the_configured_time_zone_for_the_day_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("att.db");
    let mut store = Store::open(&db).unwrap();
    let ann = store.add_person("Ann", Default::default(), &Default::default()).unwrap();
    // 2026-03-02 20:00 UTC = 2026-03-03 05:00 in Tokyo (UTC+9, no daylight saving).
    store.record_event(&granted("2026-03-02T20:00:00Z", ann), &[]).unwrap();
    drop(store);
    let config = dir.path().join("facegate.toml");
    std::fs::write(&config, format!("[service]\ntimezone = \"Asia/Tokyo\"\n[store]\npath = {:?}\n", db)).unwrap();
    // The machine's zone is UTC here, so a CLI reading the system zone would say 2026-03-02 20:00.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .env("TZ", "UTC")
        .arg("--config")
        .arg(&config)
        .args(["attendance", "--csv", "--from", "2026-03-01", "--to", "2026-03-05"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        common::stdout(&out),
        "date,person,first_in,last_out,passes\n2026-03-03,Ann,05:00:00,05:00:00,1\n",
        "the pass belongs to the Tokyo morning of 2026-03-03"
    );
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .env("TZ", "UTC")
        .arg("--config")
        .arg(&config)
        .args(["attendance", "--from", "2026-03-01", "--to", "2026-03-05"])
        .output()
        .unwrap();
    assert!(common::stdout(&table).contains("(Asia/Tokyo)"), "{}", common::stdout(&table));
}
