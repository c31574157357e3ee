//! The face pipeline: detect -> crop (aligned or square) -> embed, with per-stage timings.

use std::time::Instant;

use anyhow::{Context, Result};
use image::RgbImage;
use serde::Serialize;

use super::align::{CropMethod, align_face, square_crop};
use super::bbox::{BBox, Overlap, nms};
use super::embed::{Embedder, Embedding};
use super::enhance::{Enhance, enhance, mirrored};
use super::models::{Manifest, ModelEntry, Role, Variant};
use super::mtcnn::{Detection, DetectorParams, Mtcnn, Normalisation, StageTimes};
use super::quality::{Quality, assess};
use super::regions::Window;
use super::runtime::{Runtime, SingleInputModel};

/// A detected face and its embedding.
#[derive(Debug, Clone, Serialize)]
pub struct Face {
    pub detection: Detection,
    #[serde(skip)]
    pub embedding: Embedding,
    /// Measured on the crop the embedder saw.
    pub quality: Quality,
}

/// Milliseconds spent in each stage for one image.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    pub detect: StageTimes,
    pub align_ms: f64,
    pub embed_ms: f64,
}

/// What the pipeline needs to know besides the models.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub variant: Variant,
    pub detector: DetectorParams,
    pub crop: CropMethod,
    /// Photometric clean-up of every crop before embedding.
    pub enhance: Enhance,
    /// Embed each crop and its mirror image and average the two (twice the embedder time).
    pub flip: bool,
}

/// Detector and embedder loaded from the manifest, ready to run.
pub struct FacePipeline {
    detector: Mtcnn,
    embedder: Embedder,
    options: PipelineOptions,
    embedder_entry: ModelEntry,
}

fn load_model(runtime: &Runtime, manifest: &Manifest, entry: &ModelEntry) -> Result<SingleInputModel> {
    load_model_threads(runtime, manifest, entry, runtime.options().intra_threads)
}

fn load_model_threads(
    runtime: &Runtime,
    manifest: &Manifest,
    entry: &ModelEntry,
    threads: usize,
) -> Result<SingleInputModel> {
    let bytes = manifest.read_verified(entry)?;
    let session = runtime.session_with_threads(&entry.id, &bytes, threads)?;
    SingleInputModel::new(&entry.id, session, &entry.input.name, &entry.output_names())
}

/// Loads the three MTCNN networks of a variant, verifying each file's SHA-256.
pub fn load_detector(runtime: &Runtime, manifest: &Manifest, variant: Variant) -> Result<Mtcnn> {
    let pnet = manifest.entry(Role::Pnet, variant)?;
    Ok(Mtcnn::new(
        load_model(runtime, manifest, pnet)?,
        load_model(runtime, manifest, manifest.entry(Role::Rnet, variant)?)?,
        load_model(runtime, manifest, manifest.entry(Role::Onet, variant)?)?,
        Normalisation::from(&pnet.input),
    ))
}

impl FacePipeline {
    /// Loads the four models of `options.variant`, verifying each file's SHA-256.
    pub fn load(runtime: &Runtime, manifest: &Manifest, options: PipelineOptions) -> Result<FacePipeline> {
        options.detector.validate()?;
        let variant = options.variant;
        let detector = load_detector(runtime, manifest, variant)?;
        let entry = manifest.entry(Role::Embedder, variant)?.clone();
        let dim = entry.dim.with_context(|| format!("manifest entry {} has no `dim`", entry.id))?;
        let threads = runtime.options().embed_threads.unwrap_or(runtime.options().intra_threads);
        let model = load_model_threads(runtime, manifest, &entry, threads)?;
        let embedder = Embedder::new(model, Normalisation::from(&entry.input), dim);
        Ok(FacePipeline { detector, embedder, options, embedder_entry: entry })
    }

    pub fn options(&self) -> &PipelineOptions {
        &self.options
    }

    /// The embedder's manifest entry (its id goes with stored templates; its threshold is the default).
    pub fn embedder_entry(&self) -> &ModelEntry {
        &self.embedder_entry
    }

    pub fn detector_params_mut(&mut self) -> &mut DetectorParams {
        &mut self.options.detector
    }

    /// Detects faces only.
    pub fn detect(&mut self, image: &RgbImage) -> Result<(Vec<Detection>, StageTimes)> {
        self.detector.detect(image, &self.options.detector)
    }

    /// Detects faces inside windows of the frame only (see [`regions`](super::regions)): each
    /// window is cut out and searched with its own smallest face, and the boxes are mapped back
    /// to frame coordinates; duplicates from overlapping windows are merged.
    pub fn detect_windows(&mut self, image: &RgbImage, windows: &[Window]) -> Result<(Vec<Detection>, StageTimes)> {
        let mut all = Vec::new();
        let mut times = StageTimes::default();
        for win in windows {
            let (iw, ih) = image.dimensions();
            if win.w < 12 || win.h < 12 || win.x + win.w > iw || win.y + win.h > ih {
                continue;
            }
            let part = image::imageops::crop_imm(image, win.x, win.y, win.w, win.h).to_image();
            let params = DetectorParams { min_face: win.min_face.max(12.0), ..self.options.detector.clone() };
            let (found, t) = self.detector.detect(&part, &params)?;
            times.add(&t);
            let (dx, dy) = (win.x as f32, win.y as f32);
            all.extend(found.into_iter().map(|d| Detection {
                bbox: BBox { x1: d.bbox.x1 + dx, y1: d.bbox.y1 + dy, x2: d.bbox.x2 + dx, y2: d.bbox.y2 + dy, ..d.bbox },
                landmarks: d.landmarks.map(|[x, y]| [x + dx, y + dy]),
            }));
        }
        if windows.len() > 1 {
            let boxes: Vec<BBox> = all.iter().map(|d| d.bbox).collect();
            all = nms(&boxes, 0.7, Overlap::Min).into_iter().map(|i| all[i].clone()).collect();
        }
        Ok((all, times))
    }

    /// The face in a box the caller knows holds one (see [`Mtcnn::landmarks_in`]): aligned on the
    /// O-Net landmarks found there and embedded. `None` when the box is empty.
    pub fn face_in_box(&mut self, image: &RgbImage, bbox: &BBox) -> Result<Option<Face>> {
        let Some(detection) = self.detector.landmarks_in(image, bbox)? else {
            return Ok(None);
        };
        let (crop, quality) = self.crop_with_quality(image, &detection);
        let embedding = self.embed_crops(&[crop])?.pop();
        Ok(embedding.map(|embedding| Face { detection, embedding, quality }))
    }

    /// Cuts out the 112x112 crop the embedder sees for one detection.
    pub fn crop(&self, image: &RgbImage, detection: &Detection) -> RgbImage {
        self.crop_with_quality(image, detection).0
    }

    /// The crop the embedder sees and the face's quality, measured before the clean-up (a dark
    /// face must still count as dark).
    pub fn crop_with_quality(&self, image: &RgbImage, detection: &Detection) -> (RgbImage, Quality) {
        let mut crop = self.raw_crop(image, detection);
        let quality = assess(detection, &crop);
        enhance(&mut crop, self.options.enhance);
        (crop, quality)
    }

    /// Applies the configured clean-up to a ready-made 112x112 crop.
    pub fn prepare(&self, crop: &mut RgbImage) {
        enhance(crop, self.options.enhance);
    }

    fn raw_crop(&self, image: &RgbImage, detection: &Detection) -> RgbImage {
        match self.options.crop {
            CropMethod::Aligned => {
                align_face(image, &detection.landmarks).unwrap_or_else(|| square_crop(image, &detection.bbox))
            }
            CropMethod::Square => square_crop(image, &detection.bbox),
        }
    }

    /// Embeds ready-made 112x112 crops (e.g. face chips that need no detection).
    pub fn embed_crops(&mut self, crops: &[RgbImage]) -> Result<Vec<Embedding>> {
        if !self.options.flip || crops.is_empty() {
            return self.embedder.embed(crops);
        }
        let mut both: Vec<RgbImage> = crops.to_vec();
        both.extend(crops.iter().map(mirrored));
        let embeddings = self.embedder.embed(&both)?;
        let (plain, flipped) = embeddings.split_at(crops.len());
        Ok(plain
            .iter()
            .zip(flipped)
            .map(|(a, b)| super::embed::l2_normalised(&a.iter().zip(b).map(|(x, y)| x + y).collect::<Vec<_>>()))
            .collect())
    }

    /// Detects every face, crops and embeds them all in one batch.
    pub fn analyse(&mut self, image: &RgbImage) -> Result<(Vec<Face>, Timings)> {
        let (detections, detect) = self.detect(image)?;
        let t = Instant::now();
        let (crops, qualities): (Vec<RgbImage>, Vec<Quality>) =
            detections.iter().map(|d| self.crop_with_quality(image, d)).unzip();
        let align_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let embeddings = self.embed_crops(&crops)?;
        let embed_ms = t.elapsed().as_secs_f64() * 1e3;
        let faces = detections
            .into_iter()
            .zip(qualities)
            .zip(embeddings)
            .map(|((detection, quality), embedding)| Face { detection, embedding, quality })
            .collect();
        Ok((faces, Timings { detect, align_ms, embed_ms }))
    }
}
