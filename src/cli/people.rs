//! `facegate verify`, `enroll` and `identify`: the face-recognition commands on image files.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::config::Config;
use crate::engine::Engine;
use crate::gallery::GalleryStore;
use crate::gallery::file::FileGallery;
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
pub struct GalleryArgs {
    /// Gallery file (JSON); created by the first enroll.
    #[arg(long, value_name = "FILE", default_value = "gallery.json", env = "FACEGATE_GALLERY")]
    pub gallery: PathBuf,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The person's name (enrolling the same name again adds photos to them).
    #[arg(long)]
    pub name: String,
    /// Photos of the person, each showing exactly one face. One is enough; more help.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub gallery: GalleryArgs,
}

#[derive(Debug, Args)]
pub struct IdentifyArgs {
    /// Photos to identify every face in.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub gallery: GalleryArgs,
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
    let mut engine = Engine::open(config)?;
    let mut gallery = FileGallery::open(&args.gallery.gallery, engine.template_model())?;
    // Check every photo before storing anything, so a bad photo never leaves a half-enrolled person.
    let mut templates = Vec::new();
    let mut problems = Vec::new();
    for path in &args.images {
        match engine.single_face(path) {
            Ok(face) => templates.push(face.embedding),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!("nothing was enrolled:\n  {}", problems.join("\n  "));
    }
    let count = templates.len();
    gallery.enroll(&args.name, templates)?;
    println!("enrolled {} with {count} photo(s) into {}", args.name.trim(), args.gallery.gallery.display());
    Ok(0)
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
    if !args.gallery.gallery.exists() {
        bail!(
            "gallery {} does not exist; enroll someone first (facegate enroll --name NAME PHOTO)",
            args.gallery.gallery.display()
        );
    }
    let gallery = FileGallery::open(&args.gallery.gallery, model.clone())?;
    let matcher = Matcher::new(model.dim, &gallery.people()?);
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
