//! `facegate verify`, `enroll` and `identify`: the face-recognition commands on image files.
//! Enrolled people live in the SQLite store (`--db`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::act::store::{NewTemplate, Store};
use crate::bulk_enroll::{Batch, Limits, Report};
use crate::config::Config;
use crate::engine::Engine;
use crate::gallery::matcher::{Identification, Matcher};
use crate::vision::bbox::BBox;
use crate::vision::embed::cosine;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// First photo (its largest face is used).
    pub image_a: PathBuf,
    /// Second photo (its largest face is used).
    pub image_b: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The person's name (enrolling the same name again adds photos to them).
    #[arg(long, requires = "images", conflicts_with = "from")]
    pub name: Option<String>,
    /// Photos of the person, each showing exactly one face. One is enough; more help.
    pub images: Vec<PathBuf>,
    /// A folder with one sub-folder of photos per person (the folder name is the person's name).
    #[arg(long, value_name = "DIR", conflicts_with = "images")]
    pub from: Option<PathBuf>,
    /// Enrol photos the quality check refuses (too small, blurred, dark, turned away) anyway.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Photos to identify every face in.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON (one object per image).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct VerifyResult {
    same_person: bool,
    similarity: f32,
    threshold: f32,
    faces_in_a: usize,
    faces_in_b: usize,
}

pub fn verify(config: &Config, args: VerifyArgs) -> Result<i32> {
    let mut engine = Engine::open(config)?;
    let (a, faces_in_a) = engine.largest_face(&args.image_a)?;
    let (b, faces_in_b) = engine.largest_face(&args.image_b)?;
    let similarity = cosine(&a.embedding, &b.embedding);
    let threshold = engine.policy.threshold;
    let result = VerifyResult { same_person: similarity >= threshold, similarity, threshold, faces_in_a, faces_in_b };
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        for (path, n) in [(&args.image_a, faces_in_a), (&args.image_b, faces_in_b)] {
            if n > 1 {
                eprintln!("note: {} shows {n} faces; the largest was used", path.display());
            }
        }
        let verdict = if result.same_person { "same person" } else { "different people" };
        println!("{verdict}: similarity {similarity:.3} (threshold {threshold:.3})");
    }
    Ok(0)
}

pub fn enroll(config: &Config, args: EnrollArgs) -> Result<i32> {
    match (args.name, args.from) {
        (Some(name), None) => enroll_one(config, &name, &args.images, args.force),
        (None, Some(dir)) => enroll_folder(config, &dir, args.force),
        _ => bail!("say whom to enroll: `facegate enroll --name NAME PHOTO...` or `facegate enroll --from DIR`"),
    }
}

/// Stores one person's checked photos: returns how many became new templates.
pub(crate) type StorePerson<'a> = dyn FnMut(&Engine, &str, Vec<Vec<u8>>, &[NewTemplate]) -> Result<usize> + 'a;

/// The CLI's way to store a person: through the node's API as the local operator (the same
/// rules and audit event as MQTT and the web console), adding to them when they exist.
fn through_api(config: &Config, force: bool) -> Result<Box<StorePerson<'static>>> {
    let mut api = super::store::cli_api(config)?;
    let lookup = Store::open_config(&config.store)?;
    let cli = crate::api::Actor::cli();
    Ok(Box::new(move |_: &Engine, name: &str, images: Vec<Vec<u8>>, _: &[NewTemplate]| -> Result<usize> {
        let append = lookup.find_person(name.trim())?.is_some();
        let request = crate::api::EnrollRequest { name: name.to_string(), role: None, images, append, force };
        let done = api.enroll(&cli, request)?;
        Ok(done["templates_added"].as_u64().unwrap_or(0) as usize)
    }))
}

fn enroll_one(config: &Config, name: &str, images: &[PathBuf], force: bool) -> Result<i32> {
    let mut engine = Engine::open(config)?;
    // Check every photo before storing anything, so a bad photo never leaves a half-enrolled
    // person (nor a database); the API checks them again as it stores them.
    let mut photos = Vec::new();
    for path in images {
        photos.push((
            path.display().to_string(),
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        ));
    }
    let templates = crate::enroll::templates_from_photos(&mut engine, &photos, force)?;
    crate::act::store::check_person_name(name)?;
    let mut store_person = through_api(config, force)?;
    let added = store_person(&engine, name, photos.into_iter().map(|(_, b)| b).collect(), &templates)?;
    let skipped = templates.len().saturating_sub(added);
    let note = if skipped > 0 { format!(" ({skipped} already enrolled)") } else { String::new() };
    println!("enrolled {} with {added} photo(s){note} into {}", name.trim(), config.store.path.display());
    Ok(0)
}

/// `enroll --from DIR`: each sub-folder is a person. A bad photo (or a file that is not a
/// photo) is reported and skipped; the person is enrolled from their good photos. Exit code 1
/// if any photo or person failed. The same batch code as the console's zip upload.
fn enroll_folder(config: &Config, dir: &Path, force: bool) -> Result<i32> {
    let mut batch = Batch::from_dir(dir, &Limits::default())?;
    if batch.photo_count() == 0 {
        bail!(
            "no photos (jpg, jpeg, png) found in the sub-folders of {}: put each person's photos in DIR/NAME/",
            dir.display()
        );
    }
    let mut engine = Engine::open(config)?;
    let mut store_person = through_api(config, force)?;
    let people = batch.people().len();
    let (enrolled, failures) = enroll_batch(&mut engine, &mut batch, force, &mut *store_person)?;
    println!("enrolled {enrolled} of {people} people into {}; {failures} problem(s)", config.store.path.display());
    Ok(if failures > 0 { 1 } else { 0 })
}

/// Lists each sub-folder of `dir` (a person) with their photos.
pub(crate) fn people_in(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}; give a folder with one sub-folder per person", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut people = Vec::new();
    for folder in folders {
        let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        people.push((name, super::demo::images_in(&folder)?));
    }
    Ok(people)
}

/// Checks people's photos with a progress bar and hands each person's good ones to
/// `store_person`; returns (people enrolled, problems).
pub(crate) fn enroll_people(
    engine: &mut Engine,
    people: &[(String, Vec<PathBuf>)],
    _total: usize,
    force: bool,
    store_person: &mut StorePerson<'_>,
) -> Result<(usize, usize)> {
    enroll_batch(engine, &mut Batch::from_paths(people, &Limits::default()), force, store_person)
}

/// Runs a batch through the shared photo check, hands each person's good photos to
/// `store_person` (create or add), and prints each problem above a progress bar.
fn enroll_batch(
    engine: &mut Engine,
    batch: &mut Batch,
    force: bool,
    store_person: &mut StorePerson<'_>,
) -> Result<(usize, usize)> {
    let bar = ProgressBar::new(batch.photo_count() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} photos, {msg} [{elapsed}, eta {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut enrol = |name: &str, photos: &[(String, Vec<u8>)]| -> Result<Vec<crate::enroll::PhotoResult>> {
        let (templates, results) = crate::enroll::check_photos(engine, photos, force);
        if !templates.is_empty() {
            let good = photos.iter().zip(&results).filter(|(_, r)| r.outcome.is_ok());
            let images = good.map(|((_, bytes), _)| bytes.clone()).collect();
            let added = store_person(engine, name, images, &templates)?;
            bar.println(format!("{name}: {added} new photo(s) of {}", photos.len()));
        }
        Ok(results)
    };
    let mut printed = 0;
    let mut progress = |r: &Report| {
        bar.set_position(r.photos_done as u64);
        if let Some(c) = &r.current {
            bar.set_message(c.clone());
        }
        for line in r.lines.iter().skip(printed).filter(|l| !l.ok) {
            let who = if line.person.is_empty() { String::new() } else { format!("{}: ", line.person) };
            bar.println(format!("{who}skipped: {}", line.message));
        }
        printed = r.lines.len();
    };
    let report = crate::bulk_enroll::run(batch, &mut enrol, &mut progress);
    bar.finish_and_clear();
    Ok((report.people_enrolled, report.problems))
}

#[derive(Serialize)]
struct IdentifiedFace {
    bbox: BBox,
    #[serde(flatten)]
    identification: Identification,
}

#[derive(Serialize)]
struct IdentifyResult {
    image: String,
    faces: Vec<IdentifiedFace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn identify(config: &Config, args: IdentifyArgs) -> Result<i32> {
    let mut engine = Engine::open(config)?;
    let model = engine.template_model();
    if !config.store.path.exists() {
        bail!(
            "database {} does not exist; enroll someone first (facegate enroll --name NAME PHOTO) or pass --db",
            config.store.path.display()
        );
    }
    let store = Store::open_config(&config.store)?;
    let people = store.gallery(&model)?;
    if people.is_empty() {
        log::warn!("nobody is enrolled in {}: every face will be unknown", store.path().display());
    }
    let matcher = Matcher::new(model.dim, &people);
    let mut failures = 0;
    for path in &args.images {
        let shown = path.display().to_string();
        let result = match engine.analyse_file(path) {
            Ok((_, faces, _)) => IdentifyResult {
                image: shown,
                faces: faces
                    .iter()
                    .map(|f| IdentifiedFace {
                        bbox: f.detection.bbox,
                        identification: matcher.identify(&f.embedding, &engine.policy),
                    })
                    .collect(),
                error: None,
            },
            Err(e) => {
                failures += 1;
                IdentifyResult { image: shown, faces: Vec::new(), error: Some(format!("{e:#}")) }
            }
        };
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            print_identify(&result);
        }
    }
    log::debug!("peak RSS {} MiB", crate::sysinfo::peak_rss_bytes().unwrap_or(0) / (1024 * 1024));
    Ok(if failures > 0 { 1 } else { 0 })
}

fn print_identify(r: &IdentifyResult) {
    if let Some(error) = &r.error {
        eprintln!("{}: error: {error}", r.image);
        return;
    }
    println!("{}: {} face(s)", r.image, r.faces.len());
    for f in &r.faces {
        let b = &f.bbox;
        let place = format!("({:.0},{:.0})-({:.0},{:.0})", b.x1, b.y1, b.x2, b.y2);
        match &f.identification {
            Identification::Match { person, similarity, margin } => {
                println!("  {place}: {person} (similarity {similarity:.3}, margin {margin:.3})")
            }
            Identification::Unknown { nearest, similarity, reason, .. } => println!(
                "  {place}: unknown ({reason:?}; nearest {} at {similarity:.3})",
                nearest.as_deref().unwrap_or("nobody")
            ),
        }
    }
}
