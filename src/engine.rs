//! Wiring for the image-file commands: config -> ONNX Runtime -> models -> face pipeline, plus
//! the face-selection rules shared by enroll, verify and identify.

use std::path::Path;

use anyhow::{Context, Result, bail};
use image::RgbImage;

use crate::capture::image_file::load_rgb;
use crate::config::{Config, MatchingConfig};
use crate::gallery::TemplateModel;
use crate::gallery::matcher::MatchPolicy;
use crate::vision::attributes::Attributes;
use crate::vision::liveness::{Liveness, LivenessMode};
use crate::vision::models::{Manifest, ModelEntry};
use crate::vision::mtcnn::{Detection, StageTimes};
use crate::vision::pipeline::{Face, FacePipeline, PipelineOptions, Timings};
use crate::vision::quality::{QualityLimits, enrollment_problems};
use crate::vision::regions::{Plan, RegionPlanner};
use crate::vision::runtime::Runtime;

/// A loaded face pipeline with its match policy.
pub struct Engine {
    pub runtime: Runtime,
    pub manifest: Manifest,
    pub pipeline: FacePipeline,
    pub policy: MatchPolicy,
    /// The presentation-attack models, loaded when `[liveness]` is in force (see
    /// [`LivenessConfig::effective_mode`]); a missing or corrupt model is an error, never a
    /// silent "no check".
    pub liveness: Option<Liveness>,
    /// Video only: where to look in each camera's next frame (`[detector.roi]`).
    pub regions: RegionPlanner,
    /// The age, gender and expression estimator, loaded only with `[analyze] enabled` (a
    /// missing or corrupt model is then a start-up error); `None` otherwise.
    pub attributes: Option<Attributes>,
}

/// The matching rule for this embedder: the configured threshold (default: the manifest's),
/// refused when it is below the embedder's floor, because such a threshold would let strangers
/// match enrolled people. A negative margin is refused by the config's own validation.
pub fn match_policy(matching: &MatchingConfig, embedder: &ModelEntry) -> Result<MatchPolicy> {
    let Some(floor) = embedder.min_threshold else {
        bail!(
            "model manifest entry {} has no min_threshold: facegate cannot tell which matching.threshold is safe; \
             add it to models/manifest.toml (see models/README.md)",
            embedder.id
        );
    };
    let default = embedder.default_threshold.unwrap_or(floor.max(0.5));
    let threshold = matching.threshold.unwrap_or(default);
    if threshold.is_nan() || threshold < floor {
        bail!(
            "matching.threshold = {threshold} is below the floor of the {} embedder ({floor}): at that similarity \
             strangers match enrolled people; remove the key to use the default {default}, or set it to at least {floor}",
            embedder.id
        );
    }
    Ok(MatchPolicy { threshold, margin: matching.margin })
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
            enhance: config.matching.enhance,
            flip: config.matching.flip,
        };
        let pipeline = FacePipeline::load(&runtime, &manifest, options)?;
        let policy = match_policy(&config.matching, pipeline.embedder_entry())?;
        let liveness = match config.liveness.effective_mode(!config.doors.is_empty()) {
            LivenessMode::Passive => Some(Liveness::load(&runtime, &manifest, config.liveness.threshold)?),
            LivenessMode::Off => None,
        };
        let regions = RegionPlanner::new(config.detector.roi.clone());
        let attributes = match config.analyze.enabled {
            true => Some(Attributes::load(&runtime, &manifest).context(
                "[analyze] is enabled but its age, gender and expression models cannot be loaded: restore them \
                 (models/README.md), or set `[analyze] enabled = false` to run without the statistics",
            )?),
            false => None,
        };
        Ok(Engine { runtime, manifest, pipeline, policy, liveness, regions, attributes })
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

    /// The one face of an enrolment photo that is also good enough to enrol (see
    /// [`check_enrollment_quality`]); `force` keeps a poor one anyway.
    pub fn enrollment_face(&mut self, path: &Path, force: bool) -> Result<Face> {
        let face = self.single_face(path)?;
        check_enrollment_quality(&face, &path.display().to_string(), force)?;
        Ok(face)
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

/// Refuses an enrolment photo whose face is too small, blurred, dark, overexposed or turned away,
/// saying which; with `force` the problems are only logged. Every enrolment path calls this.
pub fn check_enrollment_quality(face: &Face, what: &str, force: bool) -> Result<()> {
    let limits = QualityLimits::default();
    let problems = enrollment_problems(&face.quality, &limits);
    if problems.is_empty() {
        return Ok(());
    }
    let text = problems.iter().map(|p| p.message(&face.quality, &limits)).collect::<Vec<_>>().join("; ");
    if force {
        log::warn!("{what}: enrolled anyway (--force): {text}");
        return Ok(());
    }
    bail!(
        "{what}: {text} (`facegate enroll --force`, or `\"force\": true` in an MQTT enroll, enrols such a photo anyway)"
    )
}
