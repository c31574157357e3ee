//! Wiring for the image-file commands: config -> ONNX Runtime -> models -> face pipeline, plus
//! the face-selection rules shared by enroll, verify and identify.

use std::path::Path;

use anyhow::{Result, bail};
use image::RgbImage;

use crate::capture::image_file::load_rgb;
use crate::config::Config;
use crate::gallery::TemplateModel;
use crate::gallery::matcher::MatchPolicy;
use crate::vision::models::Manifest;
use crate::vision::mtcnn::{Detection, StageTimes};
use crate::vision::pipeline::{Face, FacePipeline, PipelineOptions, Timings};
use crate::vision::regions::{Plan, RegionPlanner};
use crate::vision::runtime::Runtime;

/// A loaded face pipeline with its match policy.
pub struct Engine {
    pub runtime: Runtime,
    pub manifest: Manifest,
    pub pipeline: FacePipeline,
    pub policy: MatchPolicy,
    /// Video only: where to look in each camera's next frame (`[detector.roi]`).
    pub regions: RegionPlanner,
}

impl Engine {
    /// Loads ONNX Runtime and the models named by the config.
    pub fn open(config: &Config) -> Result<Engine> {
        config.validate()?;
        let runtime = Runtime::load(config.runtime.clone())?;
        let manifest = Manifest::load(&config.models_dir())?;
        let options = PipelineOptions {
            variant: config.models.variant,
            detector: config.detector.clone(),
            crop: config.matching.crop,
        };
        let pipeline = FacePipeline::load(&runtime, &manifest, options)?;
        let default_threshold = pipeline.embedder_entry().default_threshold.unwrap_or(0.5);
        let policy = MatchPolicy {
            threshold: config.matching.threshold.unwrap_or(default_threshold),
            margin: config.matching.margin,
        };
        let regions = RegionPlanner::new(config.detector.roi.clone());
        Ok(Engine { runtime, manifest, pipeline, policy, regions })
    }

    /// Identifies the embedder, so galleries refuse templates from another model.
    pub fn template_model(&self) -> TemplateModel {
        let entry = self.pipeline.embedder_entry();
        TemplateModel {
            id: format!("{}@{}", entry.id, &entry.sha256[..entry.sha256.len().min(12)]),
            dim: entry.dim.unwrap_or(0),
        }
    }

    /// Detects the faces of one video frame of `camera`, reusing where the last frames found
    /// faces (windows around them) and scanning the whole frame only when the planner says so.
    pub fn detect_frame(&mut self, camera: usize, image: &RgbImage) -> Result<(Vec<Detection>, StageTimes)> {
        let plan = self.regions.plan(camera, image, self.pipeline.options().detector.min_face);
        let found = match &plan {
            Plan::Full => self.pipeline.detect(image)?,
            Plan::Windows(windows) => self.pipeline.detect_windows(image, windows)?,
        };
        let boxes: Vec<_> = found.0.iter().map(|d| d.bbox).collect();
        self.regions.observe(camera, &plan, &boxes);
        Ok(found)
    }

    /// Loads an image file and finds every face in it.
    pub fn analyse_file(&mut self, path: &Path) -> Result<(RgbImage, Vec<Face>, Timings)> {
        let image = load_rgb(path)?;
        let (faces, timings) = self.pipeline.analyse(&image)?;
        Ok((image, faces, timings))
    }

    /// The one face of an enrolment photo: an error when there is none or more than one.
    pub fn single_face(&mut self, path: &Path) -> Result<Face> {
        let (_, mut faces, _) = self.analyse_file(path)?;
        match faces.len() {
            0 => bail!(
                "{}: no face found; use a photo where the face is at least {} px wide, frontal and well lit",
                path.display(),
                self.pipeline.options().detector.min_face
            ),
            1 => Ok(faces.remove(0)),
            n => bail!(
                "{}: {n} faces found; an enrolment photo must show only the person being enrolled (crop it)",
                path.display()
            ),
        }
    }

    /// The largest face in a photo (for verify), with how many faces there were.
    pub fn largest_face(&mut self, path: &Path) -> Result<(Face, usize)> {
        let (_, faces, _) = self.analyse_file(path)?;
        let count = faces.len();
        let face = faces
            .into_iter()
            .max_by(|a, b| area(a).total_cmp(&area(b)))
            .ok_or_else(|| anyhow::anyhow!("{}: no face found", path.display()))?;
        Ok((face, count))
    }
}

fn area(face: &Face) -> f32 {
    face.detection.bbox.width() * face.detection.bbox.height()
}
