//! Face attributes for lobby statistics (`facegate analyze`, `[analyze]` in `run`): estimated
//! age, gender and expression per face. Opt-in personal data: nothing here ever takes part in
//! deciding who gets in.
//!
//! The manifest's attribute models (see models/README.md) each give one or more heads (`age`,
//! `gender`, `emotion`): facegate ships HSE FaceRes (role `age_gender`: an age softmax over 1-100
//! years and a gender sigmoid, from one network) and the face_classification expression model.
//! Each model gets the crop [`crop::AttributeCrop`] describes, cut from the MTCNN box; all faces
//! of a frame go through each model in one batch. Faces narrower than [`MIN_FACE_PX`] are
//! estimated from an up-sampled crop: callers should treat them as too small ([`too_small`]).

pub mod crop;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use ndarray::Array4;
use serde::Serialize;

use super::models::{Manifest, ModelEntry, Role, Variant};
use super::mtcnn::Detection;
use super::runtime::{Runtime, SingleInputModel};
use crop::{AttributeCrop, Channels, InputContract};

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
/// about 75 px, so the 64x64 expression model sees it at about its own resolution; narrower
/// faces are up-sampled blur and their estimates are not worth reporting.
pub const MIN_FACE_PX: f32 = 40.0;

/// Whether a detection is narrower than [`MIN_FACE_PX`].
pub fn too_small(face: &Detection) -> bool {
    let width = face.bbox.width();
    width.is_nan() || width < MIN_FACE_PX
}

/// What one output of a loaded attribute model estimates, with the decoding its manifest entry
/// gives.
enum Head {
    /// Softmax over ages (or age bands): each class's age in years.
    Age(Vec<f32>),
    /// Gender, as a softmax over two classes or as one sigmoid (the probability of class 1); the
    /// index of "woman".
    Gender(usize),
    /// Softmax over [`EMOTIONS`].
    Emotion,
}

impl Head {
    fn role(&self) -> Role {
        match self {
            Head::Age(_) => Role::Age,
            Head::Gender(_) => Role::Gender,
            Head::Emotion => Role::Emotion,
        }
    }
}

struct Model {
    id: String,
    net: SingleInputModel,
    crop: AttributeCrop,
    input: InputContract,
    /// One per output, in the order `net` returns them.
    heads: Vec<Head>,
}

/// The heads facegate reports; each must come from exactly one loaded model.
const HEADS: [Role; 3] = [Role::Age, Role::Gender, Role::Emotion];

/// The loaded attribute models, together giving age, gender and expression.
pub struct Attributes {
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

/// The heads an attribute model's outputs stand for, in output order: each output's `head`, or
/// the entry's role for a one-output model. Empty for models that are not attribute models.
fn head_roles(entry: &ModelEntry) -> Vec<Role> {
    if !matches!(entry.role, Role::Age | Role::Gender | Role::Emotion | Role::AgeGender) {
        return Vec::new();
    }
    match entry.outputs.as_slice() {
        [one] if one.head.is_none() => vec![entry.role],
        outputs => outputs.iter().filter_map(|o| o.head).collect(),
    }
}

/// Whether a manifest entry is a face-attribute model (only loaded where `[analyze]` is on).
pub fn is_attribute_model(entry: &ModelEntry) -> bool {
    !head_roles(entry).is_empty()
}

/// The tensor contract of an NHWC attribute model's input from its manifest entry.
fn input_contract(entry: &ModelEntry) -> Result<InputContract> {
    let fix = "restore models/manifest.toml from the release";
    let input = &entry.input;
    let channels = match input.channel_order.as_deref() {
        Some("GRAY") => Channels::Gray,
        Some("RGB") => Channels::Rgb,
        Some("BGR") => Channels::Bgr,
        other => bail!("manifest entry {}: channel_order {other:?} is not GRAY, RGB or BGR; {fix}", entry.id),
    };
    let &[_, height, width, depth] = input.shape.as_slice() else {
        bail!("manifest entry {}: input shape {:?} is not [N, H, W, C]; {fix}", entry.id, input.shape);
    };
    let size_ok = |v: i64| (1..=512).contains(&v);
    if input.layout != "NHWC" || !size_ok(height) || !size_ok(width) || depth != channels.count() as i64 {
        bail!(
            "manifest entry {}: input {:?} {:?} is not an NHWC image tensor; {fix}",
            entry.id,
            input.layout,
            input.shape
        );
    }
    let mean = input.channel_mean.unwrap_or([input.mean; 3]);
    if !(mean.iter().all(|m| m.is_finite()) && input.scale.is_finite() && input.scale != 0.0) {
        bail!("manifest entry {}: input mean/scale are not usable numbers; {fix}", entry.id);
    }
    Ok(InputContract { width: width as usize, height: height as usize, channels, mean, scale: input.scale })
}

fn head(entry: &ModelEntry, role: Role) -> Result<Head> {
    let fix = "restore models/manifest.toml from the release";
    Ok(match role {
        Role::Age => {
            let ages = entry.age_bands.clone().unwrap_or_default();
            if ages.len() < 2 || ages.iter().any(|a| !(0.0..=150.0).contains(a)) {
                bail!("manifest entry {} has no valid `age_bands`; {fix}", entry.id);
            }
            Head::Age(ages)
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
        other => bail!("manifest entry {}: an output stands for {other}, not age, gender or emotion; {fix}", entry.id),
    })
}

/// HSE FaceRes's decoding (`age_gender_identity/facial_analysis.py` of HSE_FaceRec_tf): the ages
/// of the two most likely classes, weighted by their probabilities renormalised to sum to 1. The
/// spread is the probability-weighted standard deviation of all classes' ages around that
/// estimate: how unsure the model is, in years.
fn decode_age(probs: &[f32], ages: &[f32]) -> (f32, f32) {
    let mut order: Vec<usize> = (0..ages.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let top: &[usize] = &order[..2.min(order.len())];
    let weight: f32 = top.iter().map(|&i| probs[i]).sum();
    let age = if weight > 0.0 { top.iter().map(|&i| probs[i] * ages[i]).sum::<f32>() / weight } else { ages[order[0]] };
    let total: f32 = probs.iter().sum();
    let var = probs.iter().zip(ages).map(|(p, a)| p * (a - age).powi(2)).sum::<f32>() / total.max(f32::EPSILON);
    (age, var.sqrt())
}

/// Probability of "woman" from a gender output row: two softmax classes, or one sigmoid that is
/// the probability of class 1.
fn woman_probability(row: &[f32], woman: usize) -> f32 {
    match row {
        [p1] => {
            let p1 = p1.clamp(0.0, 1.0);
            if woman == 1 { p1 } else { 1.0 - p1 }
        }
        _ => row[woman] / (row[0] + row[1]).max(f32::EPSILON),
    }
}

impl Attributes {
    /// Loads and SHA-256-verifies the fp32 attribute models of the manifest that together give
    /// age, gender and expression, each from exactly one model; the error names the fix.
    pub fn load(runtime: &Runtime, manifest: &Manifest) -> Result<Attributes> {
        let attribute_models =
            manifest.models.iter().filter(|m| m.variant == Variant::Fp32 && !head_roles(m).is_empty());
        let named_once = |m: &ModelEntry| {
            let roles = head_roles(m);
            roles.len() == m.outputs.len() && roles.iter().enumerate().all(|(i, r)| !roles[..i].contains(r))
        };
        if let Some(entry) = attribute_models.clone().find(|m| !named_once(m)) {
            bail!(
                "manifest entry {} has several outputs, not each with its own `head` (age, gender or emotion); \
                 restore models/manifest.toml from the release",
                entry.id
            );
        }
        let mut models: Vec<Model> = Vec::new();
        let mut entries = Vec::new();
        for role in HEADS {
            if models.iter().any(|m| m.heads.iter().any(|h| h.role() == role)) {
                continue;
            }
            let entry = attribute_models
                .clone()
                .find(|m| head_roles(m).contains(&role))
                .with_context(|| missing(manifest, role))?;
            let roles = head_roles(entry);
            if let Some(twice) = roles.iter().find(|r| models.iter().any(|m| m.heads.iter().any(|h| h.role() == **r))) {
                bail!(
                    "manifest entry {} gives a {twice} estimate another attribute model already gives; keep one {twice} \
                     model in models/manifest.toml",
                    entry.id
                );
            }
            let crop = entry.attribute_crop.with_context(|| {
                format!("manifest entry {} has no `attribute_crop`; restore models/manifest.toml", entry.id)
            })?;
            crop.validate()?;
            let input = input_contract(entry)?;
            let heads = roles.iter().map(|&r| head(entry, r)).collect::<Result<Vec<_>>>()?;
            let bytes = manifest.read_verified(entry).context("face attributes cannot start")?;
            let session = runtime.session(&entry.id, &bytes)?;
            let net = SingleInputModel::new(&entry.id, session, &entry.input.name, &entry.output_names())?;
            models.push(Model { id: entry.id.clone(), net, crop, input, heads });
            entries.push(entry.clone());
        }
        Ok(Attributes { models, entries })
    }

    /// The manifest entries of the loaded models.
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
        // Face patches by crop spec: the models usually share one.
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
            let mut tensor = Array4::<f32>::zeros((n, input.height, input.width, input.channels.count()));
            for (i, patch) in patches[index].1.iter().enumerate() {
                let mut slot = tensor.index_axis_mut(ndarray::Axis(0), i);
                let slot = slot.as_slice_mut().context("attribute input tensor is not contiguous")?;
                crop::model_input(patch, &model.crop, &input, slot);
            }
            let outputs = model.net.run(tensor.view())?;
            for (output, head) in outputs.iter().zip(&model.heads) {
                let classes = match head {
                    Head::Age(ages) => vec![ages.len()],
                    Head::Gender(_) => vec![1, 2],
                    Head::Emotion => vec![EMOTIONS.len()],
                };
                let shape = output.shape();
                if !(shape.len() == 2 && shape[0] == n && classes.contains(&shape[1])) {
                    bail!(
                        "attribute model {} returned shape {shape:?} for its {} output, expected [{n}, {}]; restore the \
                         models folder",
                        model.id,
                        head.role(),
                        classes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" or ")
                    );
                }
                for (i, face) in out.iter_mut().enumerate() {
                    let row: Vec<f32> = (0..shape[1]).map(|c| output[[i, c]]).collect();
                    match head {
                        Head::Age(ages) => {
                            let (age, spread) = decode_age(&row, ages);
                            face.age = age;
                            face.age_spread = Some(spread);
                        }
                        Head::Gender(woman) => face.woman = woman_probability(&row, *woman),
                        Head::Emotion => {
                            let total: f32 = row.iter().sum::<f32>().max(f32::EPSILON);
                            for (e, p) in face.emotion.iter_mut().zip(&row) {
                                *e = p / total;
                            }
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
    fn age_is_the_top_two_ages_weighted_like_faceres_with_a_spread() {
        let ages: Vec<f32> = (1..=100).map(|a| a as f32).collect();
        // All on age 35: that age, no spread.
        let mut probs = vec![0.0; 100];
        probs[34] = 1.0;
        assert_eq!(decode_age(&probs, &ages), (35.0, 0.0));
        // 0.3 on 30, 0.1 on 40, 0.6 spread thin: only the top two count, renormalised.
        let mut probs = vec![0.6 / 98.0; 100];
        probs[29] = 0.3;
        probs[39] = 0.1;
        let (age, spread) = decode_age(&probs, &ages);
        assert!((age - 32.5).abs() < 1e-3, "{age}");
        assert!(spread > 15.0, "a flat distribution is a wide spread: {spread}");
        // A tie: the weighted mean of the two.
        let (age, _) = decode_age(&[0.0, 0.5, 0.5], &[10.0, 20.0, 30.0]);
        assert!((age - 25.0).abs() < 1e-4, "{age}");
    }

    #[test]
    fn woman_probability_reads_a_sigmoid_or_a_softmax() {
        // FaceRes: one sigmoid, the probability of "man" (class 1), so woman is class 0.
        assert!((woman_probability(&[0.2], 0) - 0.8).abs() < 1e-6);
        assert!((woman_probability(&[0.2], 1) - 0.2).abs() < 1e-6);
        // Out-of-range sigmoids are clamped, never a probability above 1.
        assert_eq!(woman_probability(&[1.5], 0), 0.0);
        // Two classes: renormalised softmax.
        assert!((woman_probability(&[0.6, 0.2], 0) - 0.75).abs() < 1e-6);
    }

    fn entry(role: &str, outputs: &str) -> ModelEntry {
        let text = format!(
            r#"[[model]]
id = "m"
role = "{role}"
variant = "fp32"
file = "m.onnx"
sha256 = "00"
source = {{ package = "npm:x", version = "1", licence = "MIT" }}
input = {{ name = "in", layout = "NHWC", shape = [-1, 224, 224, 3], channel_order = "BGR", mean = 0.0, scale = 1.0, channel_mean = [103.939, 116.779, 123.68] }}
outputs = {outputs}
woman_class = 0
age_bands = [1.0, 2.0, 3.0]
"#
        );
        Manifest::parse(std::path::Path::new("/nowhere"), &text).unwrap().models.remove(0)
    }

    #[test]
    fn an_age_gender_model_gives_the_heads_its_outputs_name() {
        let e = entry("age_gender", r#"[ { name = "g", head = "gender" }, { name = "a", head = "age" } ]"#);
        assert_eq!(head_roles(&e), [Role::Gender, Role::Age]);
        assert!(matches!(head(&e, Role::Gender), Ok(Head::Gender(0))));
        assert!(matches!(head(&e, Role::Age), Ok(Head::Age(a)) if a == [1.0, 2.0, 3.0]));
        let input = input_contract(&e).unwrap();
        assert_eq!((input.channels, input.mean, input.width), (Channels::Bgr, [103.939, 116.779, 123.68], 224));
        // A one-output model stands for its role; other roles give no heads.
        assert_eq!(head_roles(&entry("emotion", r#"[ { name = "e" } ]"#)), [Role::Emotion]);
        assert!(head_roles(&entry("embedder", r#"[ { name = "e" } ]"#)).is_empty());
        // Several outputs without `head`: not all accounted for, which load refuses.
        let unnamed = entry("age_gender", r#"[ { name = "g" }, { name = "a", head = "age" } ]"#);
        assert_eq!(head_roles(&unnamed), [Role::Age]);
        // An output that claims a non-attribute role is refused with the fix.
        let err = head(&e, Role::Embedder).err().unwrap().to_string();
        assert!(err.contains("restore models/manifest.toml"), "{err}");
    }

    #[test]
    fn a_manifest_without_attribute_models_is_an_error_that_names_the_fix() {
        let m = Manifest { dir: "/nowhere".into(), models: Vec::new() };
        let msg = missing(&m, Role::Age);
        assert!(msg.contains("regenerate.sh") && msg.contains("age model"), "{msg}");
    }
}
