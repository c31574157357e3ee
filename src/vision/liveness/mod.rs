//! Passive presentation-attack detection ("liveness"): is the face in front of the camera a live
//! person, or a printed photo or a screen held up to it?
//!
//! Each model in the manifest with role `liveness` gets its own crop of the frame around the
//! MTCNN box ([`crop`]) and returns a "real" probability (with `mirror`, the lower of the crop's
//! and its mirror image's); the face's score is the mean over the models. A score
//! below the threshold means "spoof suspected". Scores are per frame; voting over a track's
//! frames is the decider's job.

pub mod crop;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use ndarray::Array4;
use serde::{Deserialize, Serialize};

use super::bbox::BBox;
use super::models::{Manifest, ModelEntry, Role, Variant};
use super::runtime::{Runtime, SingleInputModel};
use crop::CropSpec;

/// `[liveness]` in the config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LivenessConfig {
    /// `off` or `passive`; unset means `passive` when a door is configured, else `off`.
    pub mode: Option<LivenessMode>,
    /// Fused "real" score a face needs to pass (0-1); default: the manifest's threshold.
    pub threshold: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LivenessMode {
    /// No check: a photo of an enrolled person is treated like the person.
    Off,
    /// Every face being decided is scored from the camera image alone.
    Passive,
}

impl LivenessConfig {
    pub fn validate(&self) -> Result<()> {
        if let Some(t) = self.threshold
            && !(0.0..=1.0).contains(&t)
        {
            bail!("liveness.threshold must be a score between 0 and 1 (got {t})");
        }
        Ok(())
    }

    /// The mode in force: the configured one, else `passive` where a door is configured.
    pub fn effective_mode(&self, has_doors: bool) -> LivenessMode {
        self.mode.unwrap_or(if has_doors { LivenessMode::Passive } else { LivenessMode::Off })
    }
}

/// One liveness model with the crop it needs.
struct Model {
    id: String,
    net: SingleInputModel,
    crop: CropSpec,
    real_class: usize,
}

/// The loaded liveness models and the threshold on their fused score.
pub struct Liveness {
    models: Vec<Model>,
    threshold: f32,
    entries: Vec<ModelEntry>,
}

/// The face's fused score and whether it passes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LivenessScore {
    /// Mean over the models of each model's "real" probability (0-1).
    pub score: f32,
    pub live: bool,
}

/// Why the liveness check cannot start: the message names the fix.
fn missing(manifest: &Manifest) -> String {
    format!(
        "liveness is on (`[liveness] mode = \"passive\"`, the default where a door is configured) but the model \
         manifest in {} lists no liveness model; restore the models folder from the facegate release (or run \
         tools/models/regenerate.sh), or set `[liveness] mode = \"off\"` to run without presentation-attack checks",
        manifest.dir.display()
    )
}

impl Liveness {
    /// Loads every fp32 `liveness` model of the manifest, verifying each file's SHA-256.
    pub fn load(runtime: &Runtime, manifest: &Manifest, threshold: Option<f32>) -> Result<Liveness> {
        let entries: Vec<ModelEntry> = manifest
            .models
            .iter()
            .filter(|m| m.role == Role::Liveness && m.variant == Variant::Fp32)
            .cloned()
            .collect();
        if entries.is_empty() {
            bail!(missing(manifest));
        }
        let mut models = Vec::new();
        for entry in &entries {
            let crop = entry
                .crop
                .with_context(|| format!("manifest entry {} has no `crop`; restore models/manifest.toml", entry.id))?;
            crop.validate()?;
            let bytes = manifest
                .read_verified(entry)
                .context("the liveness check cannot start; or set `[liveness] mode = \"off\"` to run without it")?;
            let session = runtime.session(&entry.id, &bytes)?;
            let net = SingleInputModel::new(&entry.id, session, &entry.input.name, &entry.output_names())?;
            models.push(Model { id: entry.id.clone(), net, crop, real_class: entry.real_class.unwrap_or(1) });
        }
        let threshold = match threshold.or(entries[0].default_threshold) {
            Some(t) if (0.0..=1.0).contains(&t) => t,
            _ => {
                bail!("manifest entry {} has no valid `default_threshold`; restore models/manifest.toml", entries[0].id)
            }
        };
        Ok(Liveness { models, threshold, entries })
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The manifest entries of the loaded models.
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// Scores each face box in one frame. A degenerate box gets score 0 (never a pass).
    pub fn score(&mut self, image: &RgbImage, boxes: &[BBox]) -> Result<Vec<LivenessScore>> {
        let mut sums = vec![0.0f32; boxes.len()];
        if boxes.is_empty() {
            return Ok(Vec::new());
        }
        let n = boxes.len();
        for model in &mut self.models {
            let side = model.crop.size as usize;
            // Views: the crops, then (with `mirror`) the same crops mirrored, in one batch.
            let views = if model.crop.mirror { 2 } else { 1 };
            let mut tensor = Array4::<f32>::zeros((n * views, 3, side, side));
            let mut ok = vec![true; n];
            for (i, bbox) in boxes.iter().enumerate() {
                let mut slot = tensor.index_axis_mut(ndarray::Axis(0), i);
                let out = slot.as_slice_mut().context("liveness input tensor is not contiguous")?;
                ok[i] = crop::crop_chw(image, bbox, &model.crop, out).is_some();
            }
            if views == 2 {
                let (plain, mut mirrored) = tensor.view_mut().split_at(ndarray::Axis(0), n);
                for (src, mut dst) in plain.outer_iter().zip(mirrored.outer_iter_mut()) {
                    let (Some(src), Some(dst)) = (src.as_slice(), dst.as_slice_mut()) else {
                        bail!("liveness input tensor is not contiguous");
                    };
                    crop::mirror_chw(src, side, dst);
                }
            }
            let output = model.net.run(tensor.view())?.remove(0);
            let shape = output.shape().to_vec();
            if shape.len() != 2 || shape[0] != n * views || shape[1] <= model.real_class {
                bail!("liveness model {} returned shape {shape:?}; restore the models folder", model.id);
            }
            for (i, sum) in sums.iter_mut().enumerate() {
                if ok[i] {
                    let real = (0..views).map(|v| output[[v * n + i, model.real_class]]).fold(f32::INFINITY, f32::min);
                    *sum += real;
                }
            }
        }
        let count = self.models.len() as f32;
        Ok(sums
            .into_iter()
            .map(|s| {
                let score = if s.is_finite() { s / count } else { 0.0 };
                LivenessScore { score, live: score >= self.threshold }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_defaults_to_passive_only_where_a_door_is() {
        let c = LivenessConfig::default();
        assert_eq!(c.effective_mode(true), LivenessMode::Passive);
        assert_eq!(c.effective_mode(false), LivenessMode::Off);
        let off = LivenessConfig { mode: Some(LivenessMode::Off), threshold: None };
        assert_eq!(off.effective_mode(true), LivenessMode::Off);
        assert!(LivenessConfig { mode: None, threshold: Some(1.5) }.validate().is_err());
    }

    #[test]
    fn a_manifest_without_liveness_models_is_an_error_that_names_the_fix() {
        let m = Manifest { dir: "/nowhere".into(), models: Vec::new() };
        let msg = missing(&m);
        assert!(msg.contains("mode = \"off\"") && msg.contains("regenerate.sh"), "{msg}");
    }
}
