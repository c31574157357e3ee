//! `facegate analyze`: estimated age, gender and expression of every face in images, shaped like
//! DeepFace's `analyze` (`age`, `dominant_gender`, `gender` in percent, `dominant_emotion`,
//! `emotion` in percent, `region`). Lobby statistics only: nothing here decides who gets in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::capture::image_file::load_rgb;
use crate::config::Config;
use crate::vision::attributes::{Attributes, EMOTIONS, FaceAttributes, MIN_FACE_PX, too_small};
use crate::vision::models::Manifest;
use crate::vision::mtcnn::{Detection, Mtcnn};
use crate::vision::pipeline::load_detector;
use crate::vision::runtime::Runtime;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Image files (JPEG, PNG, BMP, GIF, TIFF, WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON (one object per image) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// DeepFace's `region`: the face box in pixels, with the eyes.
#[derive(Debug, Serialize)]
struct Region {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
    left_eye: [i64; 2],
    right_eye: [i64; 2],
}

impl Region {
    fn of(face: &Detection) -> Region {
        let b = &face.bbox;
        let point = |p: [f32; 2]| [p[0].round() as i64, p[1].round() as i64];
        Region {
            x: b.x1.round() as i64,
            y: b.y1.round() as i64,
            w: b.width().round() as i64,
            h: b.height().round() as i64,
            left_eye: point(face.landmarks[0]),
            right_eye: point(face.landmarks[1]),
        }
    }
}

#[derive(Debug, Serialize)]
struct FaceResult {
    /// Years.
    age: f32,
    /// Spread of the age model around `age`, in years.
    #[serde(skip_serializing_if = "Option::is_none")]
    age_spread: Option<f32>,
    dominant_gender: &'static str,
    /// `Woman` and `Man` in percent, as DeepFace.
    gender: BTreeMap<&'static str, f32>,
    dominant_emotion: &'static str,
    /// The seven expressions in percent, as DeepFace.
    emotion: BTreeMap<&'static str, f32>,
    region: Region,
    /// MTCNN's face score (0-1).
    face_confidence: f32,
}

/// A face found but not analysed, with why.
#[derive(Debug, Serialize)]
struct Skipped {
    region: Region,
    reason: String,
}

#[derive(Debug, Serialize)]
struct ImageResult {
    image: String,
    faces: Vec<FaceResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<Skipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn percent(p: f32) -> f32 {
    (p * 10_000.0).round() / 100.0
}

fn face_result(face: &Detection, a: &FaceAttributes) -> FaceResult {
    FaceResult {
        age: (a.age * 10.0).round() / 10.0,
        age_spread: a.age_spread.map(|s| (s * 10.0).round() / 10.0),
        dominant_gender: a.dominant_gender(),
        gender: BTreeMap::from([("Woman", percent(a.woman)), ("Man", percent(1.0 - a.woman))]),
        dominant_emotion: a.dominant_emotion(),
        emotion: EMOTIONS.iter().zip(a.emotion).map(|(&name, p)| (name, percent(p))).collect(),
        region: Region::of(face),
        face_confidence: face.bbox.score,
    }
}

/// What one image gives: analysed faces, faces too small to analyse, or an error for the image.
fn analyze_image(
    detector: &mut Mtcnn,
    attributes: &mut Attributes,
    config: &Config,
    path: &std::path::Path,
) -> Result<(Vec<FaceResult>, Vec<Skipped>)> {
    let image = load_rgb(path)?;
    let (faces, _) = detector.detect(&image, &config.detector)?;
    if faces.is_empty() {
        anyhow::bail!(
            "no face found (the detector looked for faces of at least {} px); use a photo where a face is at least \
             {MIN_FACE_PX} px wide",
            config.detector.min_face
        );
    }
    let (small, usable): (Vec<Detection>, Vec<Detection>) = faces.into_iter().partition(too_small);
    let skipped: Vec<Skipped> = small
        .iter()
        .map(|face| Skipped {
            region: Region::of(face),
            reason: format!(
                "face is {:.0} px wide; age, gender and expression need at least {MIN_FACE_PX} px: use a closer or \
                 higher-resolution photo",
                face.bbox.width()
            ),
        })
        .collect();
    let estimates = attributes.analyze(&image, &usable)?;
    Ok((usable.iter().zip(&estimates).map(|(f, a)| face_result(f, a)).collect(), skipped))
}

pub fn run(config: &Config, args: AnalyzeArgs) -> Result<i32> {
    let runtime = Runtime::load(config.runtime.clone())?;
    let manifest = Manifest::load(&config.models_dir())?;
    let mut detector = load_detector(&runtime, &manifest, config.models.variant)?;
    let mut attributes = Attributes::load(&runtime, &manifest)?;
    let mut failures = 0;
    for path in &args.images {
        let image = path.display().to_string();
        let result = match analyze_image(&mut detector, &mut attributes, config, path) {
            Ok((faces, skipped)) => {
                let error = faces.is_empty().then(|| {
                    format!("no face large enough to analyse ({} too small: {})", skipped.len(), skipped[0].reason)
                });
                ImageResult { image, faces, skipped, error }
            }
            Err(e) => ImageResult { image, faces: Vec::new(), skipped: Vec::new(), error: Some(format!("{e:#}")) },
        };
        failures += usize::from(result.error.is_some());
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            print_text(&result);
        }
    }
    Ok(if failures > 0 { 1 } else { 0 })
}

fn print_text(r: &ImageResult) {
    if let Some(error) = &r.error {
        eprintln!("{}: error: {error}", r.image);
        return;
    }
    println!("{}: {} face(s) (estimates for statistics, never for access)", r.image, r.faces.len());
    for (i, f) in r.faces.iter().enumerate() {
        let spread = f.age_spread.map(|s| format!(" ± {s:.0}")).unwrap_or_default();
        let emotions: Vec<String> = f.emotion.iter().map(|(name, p)| format!("{name} {p:.0}%")).collect();
        println!(
            "  face {} at ({},{}) {}x{}: age {:.0}{spread}, {} {:.0}%, {} ({})",
            i + 1,
            f.region.x,
            f.region.y,
            f.region.w,
            f.region.h,
            f.age,
            f.dominant_gender,
            f.gender[f.dominant_gender],
            f.dominant_emotion,
            emotions.join(", ")
        );
    }
    for s in &r.skipped {
        println!("  face at ({},{}) {}x{}: skipped: {}", s.region.x, s.region.y, s.region.w, s.region.h, s.reason);
    }
}
