//! `facegate demo`: the built-in default job. Enrolls each person in the bundled fixtures from
//! their first photo, then identifies every face in their other photos, in photos of strangers
//! (who must come out unknown) and in the group photos,
//! and prints a summary. Needs no camera, broker or GPIO.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::config::Config;
use crate::engine::Engine;
use crate::gallery::Person;
use crate::gallery::matcher::{Identification, Matcher};
use crate::sysinfo::median;

/// Bench defaults, relative to the fixtures folder.
pub const BENCH_FACE: &str = "faces/astronaut/01.jpg";
pub const BENCH_GROUP: &str = "group/01.jpg";

/// The right answer for a probe photo.
enum Expect {
    Person(String),
    Stranger,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Fixtures folder: faces/<person>/*.jpg (first photo enrolls) and group/*.jpg.
    #[arg(long, value_name = "DIR")]
    pub fixtures: Option<PathBuf>,
}

pub(super) fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    files.sort();
    Ok(files)
}

pub fn run(config: &Config, args: DemoArgs) -> Result<i32> {
    let fixtures = args.fixtures.unwrap_or_else(|| crate::paths::project_root().join("tests/fixtures"));
    let faces_dir = fixtures.join("faces");
    if !faces_dir.is_dir() {
        bail!(
            "demo fixtures not found at {}; run from a facegate checkout or pass --fixtures DIR",
            faces_dir.display()
        );
    }
    let mut engine = Engine::open(config)?;
    println!("facegate demo: ONNX Runtime {} from {}", engine.runtime.version(), engine.runtime.library().display());
    println!(
        "models: {} ({}), match threshold {:.2}",
        engine.template_model().id,
        config.models.variant,
        engine.policy.threshold
    );

    let mut people = Vec::new();
    let mut probes = Vec::new();
    let mut person_dirs: Vec<PathBuf> =
        std::fs::read_dir(&faces_dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    person_dirs.sort();
    for dir in person_dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let photos = images_in(&dir)?;
        let Some((first, rest)) = photos.split_first() else {
            continue;
        };
        match engine.single_face(first) {
            Ok(face) => {
                println!("enrolled {name:<16} from {}", first.display());
                people.push(Person { name: name.clone(), templates: vec![face.embedding] });
                probes.extend(rest.iter().map(|p| (p.clone(), Some(Expect::Person(name.clone())))));
            }
            Err(e) => println!("could not enroll {name}: {e:#}"),
        }
    }
    // Strangers are never enrolled: the right answer for them is "unknown".
    let strangers_dir = fixtures.join("strangers");
    if strangers_dir.is_dir() {
        probes.extend(images_in(&strangers_dir)?.into_iter().map(|p| (p, Some(Expect::Stranger))));
    }
    let group_dir = fixtures.join("group");
    if group_dir.is_dir() {
        probes.extend(images_in(&group_dir)?.into_iter().map(|p| (p, None)));
    }
    let matcher = Matcher::new(engine.template_model().dim, &people);

    let (mut correct, mut wrong, mut totals) = (0, 0, Vec::new());
    for (path, expected) in &probes {
        let t = std::time::Instant::now();
        let (_, faces, _) = match engine.analyse_file(path) {
            Ok(result) => result,
            Err(e) => {
                println!("{}: {e:#}", path.display());
                continue;
            }
        };
        let results: Vec<Identification> =
            faces.iter().map(|f| matcher.identify(&f.embedding, &engine.policy)).collect();
        totals.push(t.elapsed().as_secs_f64() * 1e3);
        let names: Vec<String> = results
            .iter()
            .map(|r| match r {
                Identification::Match { person, similarity, .. } => format!("{person} ({similarity:.2})"),
                Identification::Unknown { similarity, .. } => {
                    format!("unknown (best {similarity:.2})")
                }
            })
            .collect();
        println!("{}: {}", path.display(), if names.is_empty() { "no face".to_string() } else { names.join(", ") });
        let right = match expected {
            Some(Expect::Person(name)) => {
                results.iter().any(|r| matches!(r, Identification::Match { person, .. } if person == name))
            }
            Some(Expect::Stranger) => {
                !results.is_empty() && results.iter().all(|r| matches!(r, Identification::Unknown { .. }))
            }
            None => continue,
        };
        if right { correct += 1 } else { wrong += 1 }
    }
    println!(
        "\nsummary: {} people enrolled; {} photos answered right (enrolled person named, stranger unknown), {} wrong; \
         median {:.1} ms per photo",
        people.len(),
        correct,
        wrong,
        median(&totals)
    );
    Ok(0)
}
