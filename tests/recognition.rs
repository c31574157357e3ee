//! End-to-end recognition through the real binary and models: enroll, identify, verify, eval,
//! detect --draw, on the public-domain fixtures.

mod common;

use common::{assert_no_panic, facegate, fixture, stderr, stdout};
use serde_json::Value;

fn path(rel: &str) -> String {
    fixture(rel).to_str().unwrap().to_string()
}

fn json_lines(out: &std::process::Output) -> Vec<Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn names(image: &Value) -> Vec<String> {
    image["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| match f["result"].as_str().unwrap() {
            "match" => f["person"].as_str().unwrap().to_string(),
            _ => "unknown".to_string(),
        })
        .collect()
}

fn enroll(db: &str, name: &str, photo: &str, variant: &str) -> std::process::Output {
    let out = facegate(&["--variant", variant, "--db", db, "enroll", "--name", name, &path(photo)]);
    assert_no_panic(&out);
    out
}

#[test]
fn enrolled_people_are_named_and_strangers_are_not() {
    for variant in ["fp32", "int8"] {
        let dir = tempfile::tempdir().unwrap();
        let gallery = dir.path().join("facegate.db");
        let gallery = gallery.to_str().unwrap();
        for (name, photo) in [("astronaut", "faces/astronaut/01.jpg"), ("hopper", "faces/hopper/01.jpg")] {
            let out = enroll(gallery, name, photo, variant);
            assert_eq!(out.status.code(), Some(0), "{variant}: {}", stderr(&out));
        }
        let out = facegate(&[
            "--variant",
            variant,
            "identify",
            "--json",
            "--db",
            gallery,
            &path("faces/astronaut/02.jpg"),
            &path("faces/hopper/02.jpg"),
            &path("strangers/cameraman.jpg"),
            &path("group/01.jpg"),
        ]);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let results = json_lines(&out);
        assert_eq!(names(&results[0]), ["astronaut"], "{variant}");
        assert_eq!(names(&results[1]), ["hopper"], "{variant}");
        // The stranger (and anything else the detector finds in his photo) must stay unknown.
        let stranger = names(&results[2]);
        assert!(!stranger.is_empty() && stranger.iter().all(|n| n == "unknown"), "{variant}: {stranger:?}");
        let mut group = names(&results[3]);
        group.sort();
        group.dedup();
        assert_eq!(group, ["astronaut", "hopper", "unknown"], "{variant}");
        assert_eq!(names(&results[3]).iter().filter(|n| *n != "unknown").count(), 2, "{variant}: each person once");
    }
}

#[test]
fn verify_tells_same_from_different() {
    let same = facegate(&["verify", "--json", &path("faces/hopper/01.jpg"), &path("faces/hopper/02.jpg")]);
    assert_no_panic(&same);
    let same: Value = serde_json::from_str(stdout(&same).trim()).unwrap();
    assert_eq!(same["same_person"], true, "{same}");
    let different = facegate(&["verify", "--json", &path("faces/hopper/01.jpg"), &path("faces/astronaut/01.jpg")]);
    let different: Value = serde_json::from_str(stdout(&different).trim()).unwrap();
    assert_eq!(different["same_person"], false, "{different}");
    assert!(same["similarity"].as_f64().unwrap() > different["similarity"].as_f64().unwrap() + 0.3);
    let threshold = same["threshold"].as_f64().unwrap();
    assert!(different["similarity"].as_f64().unwrap() < threshold);
}

#[test]
fn a_gallery_refuses_templates_from_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = dir.path().join("g.db");
    let gallery = gallery.to_str().unwrap();
    assert_eq!(enroll(gallery, "hopper", "faces/hopper/01.jpg", "fp32").status.code(), Some(0));
    let out = facegate(&["--variant", "int8", "identify", "--db", gallery, &path("faces/hopper/02.jpg")]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("re-enroll"), "{}", stderr(&out));
    let out = enroll(gallery, "astronaut", "faces/astronaut/01.jpg", "int8");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("re-enroll"), "{}", stderr(&out));
}

#[test]
fn enroll_from_folder_people_commands_and_forget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("f.db");
    let db = db.to_str().unwrap();
    let people = dir.path().join("people");
    for (person, photo) in [("astronaut", "faces/astronaut/01.jpg"), ("hopper", "faces/hopper/01.jpg")] {
        std::fs::create_dir_all(people.join(person)).unwrap();
        std::fs::copy(fixture(photo), people.join(person).join("01.jpg")).unwrap();
    }
    // A bad photo is reported and skipped, and makes the exit code 1; the others are enrolled.
    std::fs::copy(fixture("noface/cat.jpg"), people.join("hopper/cat.jpg")).unwrap();
    std::fs::create_dir_all(people.join("cat")).unwrap();
    std::fs::copy(fixture("noface/cat.jpg"), people.join("cat/cat.jpg")).unwrap();
    let out = facegate(&["--db", db, "enroll", "--from", people.to_str().unwrap()]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("enrolled 2 of 3 people"), "{}", stdout(&out));
    let list = facegate(&["--db", db, "people", "list", "--json"]);
    let list: Value = serde_json::from_str(stdout(&list).trim()).unwrap();
    let enrolled: Vec<(&str, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["templates"].as_u64().unwrap()))
        .collect();
    assert_eq!(enrolled, [("astronaut", 1), ("hopper", 1)]);

    for args in [
        &["people", "rename", "hopper", "Grace Hopper"][..],
        &["people", "set-role", "astronaut", "visitor"],
        &["people", "set-schedule", "#1", "mon-fri 07:00-19:00"],
        &["people", "add", "Guest", "--role", "visitor"],
    ] {
        let out = facegate(&[&["--db", db][..], args].concat());
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let out = facegate(&["--db", db, "people", "list"]);
    let text = stdout(&out);
    assert!(text.contains("Grace Hopper") && text.contains("visitor") && text.contains("fri 07:00-19:00"), "{text}");
    let out = facegate(&["--db", db, "people", "set-role", "nobody", "visitor"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("people list"), "{}", stderr(&out));

    let out = facegate(&["--db", db, "identify", "--json", &path("faces/hopper/02.jpg")]);
    assert_eq!(names(&json_lines(&out)[0]), ["Grace Hopper"]);
    let out = facegate(&["--db", db, "forget", "grace hopper"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("erased Grace Hopper") && stdout(&out).contains("1 template(s)"), "{}", stdout(&out));
    let out = facegate(&["--db", db, "identify", "--json", &path("faces/hopper/02.jpg")]);
    assert_eq!(names(&json_lines(&out)[0]), ["unknown"]);
    let out = facegate(&["--db", db, "attendance", "--csv", "--from", "2026-01-01", "--to", "2026-01-02"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "date,person,first_in,last_out,passes");

    // Every CLI change went through the node's API: one audit event each (queued for MQTT),
    // naming the local operator, refusals included.
    use facegate::act::Outbox;
    let mut store = facegate::act::store::Store::open(std::path::Path::new(db)).unwrap();
    let audits: Vec<(String, String, bool)> = store
        .pending(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|p| p.event.topic == "audit")
        .map(|p| serde_json::from_slice::<Value>(&p.event.payload).unwrap())
        .inspect(|a| {
            assert_eq!(a["via"], "cli", "{a}");
            assert!(a["actor"].as_str().unwrap().starts_with("cli:"), "{a}");
        })
        .map(|a| (a["command"].as_str().unwrap().to_string(), a["via"].to_string(), a["ok"] == true))
        .collect();
    let done: Vec<(&str, bool)> = audits.iter().map(|(c, _, ok)| (c.as_str(), *ok)).collect();
    assert_eq!(
        done,
        [
            ("enroll", true),
            ("enroll", true),
            ("rename", true),
            ("set_role", true),
            ("set_schedule", true),
            ("add_person", true),
            ("set_role", false),
            ("forget", true)
        ],
        "{audits:?}"
    );
}

/// A tiny data set in the faces-dev format, made from the fixtures.
fn mini_dataset(dir: &std::path::Path) {
    for rel in ["faces/astronaut/01.jpg", "faces/astronaut/02.jpg", "faces/hopper/01.jpg", "faces/hopper/02.jpg"] {
        let dest = dir.join("identity").join(rel.trim_start_matches("faces/"));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(fixture(rel), dest).unwrap();
    }
    std::fs::create_dir_all(dir.join("group")).unwrap();
    std::fs::copy(fixture("group/01.jpg"), dir.join("group/01.jpg")).unwrap();
    std::fs::create_dir_all(dir.join("noface")).unwrap();
    std::fs::copy(fixture("noface/cat.jpg"), dir.join("noface/cat.jpg")).unwrap();
    std::fs::write(
        dir.join("manifest.csv"),
        "path,identity,kind,faces,source_repo,source_path\n\
         identity/astronaut/01.jpg,astronaut,identity,1,,\nidentity/astronaut/02.jpg,astronaut,identity,1,,\n\
         identity/hopper/01.jpg,hopper,identity,1,,\nidentity/hopper/02.jpg,hopper,identity,1,,\n\
         group/01.jpg,,group,3,,\nnoface/cat.jpg,,noface,0,,\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pairs.csv"),
        "path_a,path_b,same\nidentity/astronaut/01.jpg,identity/astronaut/02.jpg,1\n\
         identity/hopper/01.jpg,identity/hopper/02.jpg,1\nidentity/astronaut/01.jpg,identity/hopper/02.jpg,0\n\
         identity/hopper/01.jpg,identity/astronaut/02.jpg,0\n",
    )
    .unwrap();
}

#[test]
fn eval_reports_figures_and_enforces_floors() {
    let dir = tempfile::tempdir().unwrap();
    mini_dataset(dir.path());
    let roc = dir.path().join("roc.png");
    let data = dir.path().to_str().unwrap();
    let out = facegate(&[
        "eval",
        "--data",
        data,
        "--json",
        "--roc",
        roc.to_str().unwrap(),
        "--require",
        "identity.accuracy>=0.99",
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["verification"]["identity"]["pairs"], 4);
    assert_eq!(report["verification"]["identity"]["accuracy"], 1.0);
    assert_eq!(report["verification"]["identity"]["lost_pairs"], 0);
    assert_eq!(report["group"]["expected_faces"], 3);
    assert_eq!(report["group"]["detected_faces"], 3);
    assert_eq!(report["noface"]["detected_faces"], 0);
    assert!(image::open(&roc).is_ok(), "ROC chart is a readable image");
    // Open set: astronaut (first identity) is enrolled from 01, hopper is not.
    let open = &report["open_set"];
    assert_eq!((open["gallery_people"].as_u64(), open["mated_probes"].as_u64()), (Some(1), Some(1)), "{open}");
    assert_eq!(open["non_mated_probes"], 2);
    assert_eq!(open["fnir"], 0.0, "{open}");
    assert_eq!(open["fpir"], 0.0, "{open}");

    let failing = facegate(&["eval", "--data", data, "--require", "identity.accuracy>=1.01"]);
    assert_eq!(failing.status.code(), Some(1), "an unmet floor fails: {}", stderr(&failing));
    assert!(stderr(&failing).contains("REQUIREMENT FAILED"));
    let unknown = facegate(&["eval", "--data", data, "--require", "identity.acuracy>=0.5"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("unknown figure"));
}

#[test]
fn enrollment_refuses_a_dark_photo_saying_why_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    // The same photo with a quarter of its light: the face is found but too dark to enrol.
    let mut photo = image::open(fixture("faces/hopper/01.jpg")).unwrap().to_rgb8();
    for p in photo.pixels_mut() {
        p.0 = p.0.map(|v| v / 4);
    }
    let dark = dir.path().join("dark.png");
    photo.save(&dark).unwrap();
    let dark = dark.to_str().unwrap();
    let out = facegate(&["--db", db, "enroll", "--name", "hopper", dark]);
    assert_no_panic(&out);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stderr(&out).contains("too dark"), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "the message names the way out: {}", stderr(&out));
    let out = facegate(&["--db", db, "enroll", "--force", "--name", "hopper", dark]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("enrolled hopper"), "{}", stdout(&out));
}

#[test]
fn detect_draws_boxes_on_a_copy_of_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let out_png = dir.path().join("drawn.png");
    let out = facegate(&["detect", "--draw", out_png.to_str().unwrap(), &path("group/01.jpg")]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("3 face(s)"), "{}", stdout(&out));
    let drawn = image::open(&out_png).unwrap().to_rgb8();
    let original = image::open(fixture("group/01.jpg")).unwrap().to_rgb8();
    assert_eq!(drawn.dimensions(), original.dimensions());
    let green = drawn.pixels().filter(|p| p.0 == [0, 230, 0]).count();
    assert!(green > 300, "boxes are drawn ({green} box pixels)");
}
