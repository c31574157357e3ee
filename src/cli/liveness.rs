//! `facegate liveness`: the presentation-attack score and verdict of every face in images.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::capture::image_file::load_rgb;
use crate::config::Config;
use crate::vision::bbox::BBox;
use crate::vision::liveness::Liveness;
use crate::vision::models::Manifest;
use crate::vision::mtcnn::Mtcnn;
use crate::vision::pipeline::load_detector;
use crate::vision::runtime::Runtime;

#[derive(Debug, Args)]
pub struct LivenessArgs {
    /// Image files (JPEG, PNG, BMP, GIF, TIFF, WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON (one object per image) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct FaceResult {
    bbox: BBox,
    score: f32,
    verdict: &'static str,
}

#[derive(Serialize)]
struct ImageResult {
    image: String,
    threshold: f32,
    faces: Vec<FaceResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// MTCNN plus the liveness models: what `liveness` and `eval --spoof` run.
pub struct LivenessTools {
    pub detector: Mtcnn,
    pub liveness: Liveness,
}

impl LivenessTools {
    /// Loads the detector and the liveness models (whatever `[liveness] mode` says: these
    /// commands exist to measure the check).
    pub fn open(config: &Config) -> Result<LivenessTools> {
        let runtime = Runtime::load(config.runtime.clone())?;
        let manifest = Manifest::load(&config.models_dir())?;
        let detector = load_detector(&runtime, &manifest, config.models.variant)?;
        let liveness = Liveness::load(&runtime, &manifest, config.liveness.threshold)?;
        Ok(LivenessTools { detector, liveness })
    }

    /// Every face of an image with its score.
    pub fn faces(&mut self, image: &image::RgbImage, config: &Config) -> Result<Vec<(BBox, f32)>> {
        let (detections, _) = self.detector.detect(image, &config.detector)?;
        let boxes: Vec<BBox> = detections.iter().map(|d| d.bbox).collect();
        let scores = self.liveness.score(image, &boxes)?;
        Ok(boxes.into_iter().zip(scores).map(|(b, s)| (b, s.score)).collect())
    }
}

pub fn run(config: &Config, args: LivenessArgs) -> Result<i32> {
    let mut tools = LivenessTools::open(config)?;
    let threshold = tools.liveness.threshold();
    let mut failures = 0;
    for path in &args.images {
        let image = path.display().to_string();
        let result = match load_rgb(path).map_err(anyhow::Error::from).and_then(|img| tools.faces(&img, config)) {
            Ok(faces) => ImageResult {
                image,
                threshold,
                faces: faces
                    .into_iter()
                    .map(|(bbox, score)| FaceResult {
                        bbox,
                        score,
                        verdict: if score >= threshold { "live" } else { "spoof_suspected" },
                    })
                    .collect(),
                error: None,
            },
            Err(e) => {
                failures += 1;
                ImageResult { image, threshold, faces: Vec::new(), error: Some(format!("{e:#}")) }
            }
        };
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else if let Some(error) = &result.error {
            eprintln!("{}: error: {error}", result.image);
        } else {
            println!("{}: {} face(s), threshold {:.3}", result.image, result.faces.len(), threshold);
            for (i, f) in result.faces.iter().enumerate() {
                let b = &f.bbox;
                println!(
                    "  face {}: box ({:.0},{:.0})-({:.0},{:.0}) liveness {:.3}: {}",
                    i + 1,
                    b.x1,
                    b.y1,
                    b.x2,
                    b.y2,
                    f.score,
                    f.verdict
                );
            }
        }
    }
    Ok(if failures > 0 { 1 } else { 0 })
}
