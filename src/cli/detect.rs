//! `facegate detect`: boxes, scores and landmarks for each image.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::draw::draw_detections;
use crate::capture::image_file::load_rgb;
use crate::config::Config;
use crate::vision::models::Manifest;
use crate::vision::mtcnn::Detection;
use crate::vision::pipeline::load_detector;
use crate::vision::runtime::Runtime;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image files (JPEG, PNG, BMP, GIF, TIFF, WebP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON (one object per image) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write a copy of the image with boxes and landmarks drawn. With several images, `-N` is
    /// added before the extension.
    #[arg(long, value_name = "OUT.png")]
    pub draw: Option<PathBuf>,
}

#[derive(Serialize)]
struct ImageResult {
    image: String,
    width: u32,
    height: u32,
    faces: Vec<Detection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Output path for image `index` of `count`.
fn numbered(path: &std::path::Path, index: usize, count: usize) -> PathBuf {
    if count == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "detect".into());
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "png".into());
    path.with_file_name(format!("{stem}-{}.{ext}", index + 1))
}

pub fn run(config: &Config, args: DetectArgs) -> Result<i32> {
    // Detection needs neither the embedder nor a gallery: load only MTCNN.
    let runtime = Runtime::load(config.runtime.clone())?;
    let manifest = Manifest::load(&config.models_dir())?;
    let mut detector = load_detector(&runtime, &manifest, config.models.variant)?;
    let mut failures = 0;
    for (index, path) in args.images.iter().enumerate() {
        let shown = path.display().to_string();
        let outcome = load_rgb(path).map_err(anyhow::Error::from).and_then(|image| {
            let (faces, _) = detector.detect(&image, &config.detector)?;
            Ok((image, faces))
        });
        let result = match outcome {
            Ok((image, faces)) => {
                if let Some(out) = &args.draw {
                    let target = numbered(out, index, args.images.len());
                    draw_detections(&image, &faces)
                        .save(&target)
                        .with_context(|| format!("cannot write {}", target.display()))?;
                }
                ImageResult { image: shown, width: image.width(), height: image.height(), faces, error: None }
            }
            Err(e) => {
                failures += 1;
                ImageResult { image: shown, width: 0, height: 0, faces: Vec::new(), error: Some(format!("{e:#}")) }
            }
        };
        print_result(&result, args.json)?;
    }
    Ok(if failures > 0 { 1 } else { 0 })
}

fn print_result(r: &ImageResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    if let Some(error) = &r.error {
        eprintln!("{}: error: {error}", r.image);
        return Ok(());
    }
    println!("{} ({}x{}): {} face(s)", r.image, r.width, r.height, r.faces.len());
    for (i, f) in r.faces.iter().enumerate() {
        let b = &f.bbox;
        let marks: Vec<String> = f.landmarks.iter().map(|[x, y]| format!("({x:.0},{y:.0})")).collect();
        println!(
            "  face {}: box ({:.0},{:.0})-({:.0},{:.0}) score {:.3} landmarks {}",
            i + 1,
            b.x1,
            b.y1,
            b.x2,
            b.y2,
            b.score,
            marks.join(" ")
        );
    }
    Ok(())
}
