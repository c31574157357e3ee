//! The model manifest (`models/manifest.toml`) and checksum-verified loading of model files.
//!
//! The manifest is what makes the embedder swappable: it states each model's file, SHA-256,
//! tensor names, input normalisation and, for the embedder, its dimension and match threshold.
//! A model whose bytes do not match the manifest is refused, never half-used.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Which job a model does in the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Pnet,
    Rnet,
    Onet,
    Embedder,
    /// Presentation-attack detection (see `vision::liveness`).
    Liveness,
    /// Age estimate (see `vision::attributes`; opt-in lobby statistics, never access).
    Age,
    /// Gender estimate (see `vision::attributes`).
    Gender,
    /// Facial expression (see `vision::attributes`).
    Emotion,
    /// One network with an age and a gender output (see `vision::attributes`): each output's
    /// `head` says which is which.
    #[serde(rename = "age_gender")]
    AgeGender,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Pnet => "pnet",
            Role::Rnet => "rnet",
            Role::Onet => "onet",
            Role::Embedder => "embedder",
            Role::Liveness => "liveness",
            Role::Age => "age",
            Role::Gender => "gender",
            Role::Emotion => "emotion",
            Role::AgeGender => "age_gender",
        })
    }
}

/// Numeric precision of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    #[default]
    Fp32,
    Int8,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Fp32 => "fp32",
            Variant::Int8 => "int8",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub package: String,
    pub version: String,
    pub file: Option<String>,
    pub licence: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub layout: String,
    pub shape: Vec<i64>,
    pub channel_order: Option<String>,
    pub mean: f32,
    pub scale: f32,
    /// Per-channel means in the tensor's channel order, where a model was trained with them
    /// (VGG-style `BGR` minus the ImageNet means); replaces `mean` for all channels.
    #[serde(default)]
    pub channel_mean: Option<[f32; 3]>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputSpec {
    pub name: String,
    pub meaning: Option<String>,
    /// What this output estimates (`age`, `gender`, `emotion`) in a model with several; a
    /// one-output model's output stands for its role.
    #[serde(default)]
    pub head: Option<Role>,
}

/// One model file as described by the manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub role: Role,
    pub variant: Variant,
    pub file: String,
    pub sha256: String,
    pub source: Source,
    pub input: InputSpec,
    pub outputs: Vec<OutputSpec>,
    /// Embedding dimension (embedder only).
    pub dim: Option<usize>,
    /// Default cosine-similarity threshold for a match (embedder), or the fused "real" score a
    /// face needs (liveness).
    pub default_threshold: Option<f32>,
    /// Lowest threshold a site may configure (embedder only): below it strangers' faces start to
    /// match enrolled people, so a lower `matching.threshold` is refused, not obeyed.
    #[serde(default)]
    pub min_threshold: Option<f32>,
    /// Where a liveness model's input comes from in the frame (liveness only).
    pub crop: Option<super::liveness::crop::CropSpec>,
    /// Output index of the "real face" class (liveness only; default 1).
    pub real_class: Option<usize>,
    /// Where an attribute model's input comes from in the frame (age, gender, emotion).
    #[serde(default)]
    pub attribute_crop: Option<super::attributes::crop::AttributeCrop>,
    /// Age in years each output class of an age model stands for.
    #[serde(default)]
    pub age_bands: Option<Vec<f32>>,
    /// Output index of "woman" (gender model).
    #[serde(default)]
    pub woman_class: Option<usize>,
    /// Output class names in output order (emotion model); must equal `attributes::EMOTIONS`.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

impl ModelEntry {
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(|o| o.name.as_str()).collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
struct ManifestFile {
    #[serde(rename = "model")]
    models: Vec<ModelEntry>,
}

/// The parsed manifest plus the folder it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub dir: PathBuf,
    pub models: Vec<ModelEntry>,
}

pub const MANIFEST_FILE: &str = "manifest.toml";

impl Manifest {
    /// Reads `<dir>/manifest.toml`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the model manifest {}; point `models.dir` in the config (or --models) at facegate's \
                 models folder",
                path.display()
            )
        })?;
        Manifest::parse(dir, &text).with_context(|| format!("model manifest {} is invalid", path.display()))
    }

    pub fn parse(dir: &Path, text: &str) -> Result<Manifest> {
        let file: ManifestFile = toml::from_str(text)?;
        Ok(Manifest { dir: dir.to_path_buf(), models: file.models })
    }

    /// The entry for a role and variant.
    pub fn entry(&self, role: Role, variant: Variant) -> Result<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.role == role && m.variant == variant)
            .with_context(|| format!("the model manifest in {} lists no {variant} {role} model", self.dir.display()))
    }

    /// Reads a model file and checks its SHA-256 against the manifest.
    pub fn read_verified(&self, entry: &ModelEntry) -> Result<Vec<u8>> {
        let path = self.dir.join(&entry.file);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "model {} is missing ({}); restore the models folder from the facegate release or run \
                 tools/models/regenerate.sh",
                entry.id,
                path.display()
            )
        })?;
        let actual = sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            bail!(
                "model {} ({}) is corrupted or not the file the manifest names: SHA-256 is {actual}, expected {}. \
                 Restore it from the facegate release or run tools/models/regenerate.sh",
                entry.id,
                path.display(),
                entry.sha256
            );
        }
        Ok(bytes)
    }
}

/// Lower-case hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[model]]
id = "test-embedder"
role = "embedder"
variant = "fp32"
file = "e.onnx"
sha256 = "0000"
dim = 192
default_threshold = 0.5
source = { package = "npm:x", version = "1", licence = "MIT" }
input = { name = "input", layout = "NCHW", shape = [-1, 3, 112, 112], mean = 127.5, scale = 0.0078125 }
outputs = [ { name = "out" } ]
"#;

    #[test]
    fn parses_entries_and_finds_by_role() {
        let m = Manifest::parse(Path::new("/nowhere"), SAMPLE).unwrap();
        let e = m.entry(Role::Embedder, Variant::Fp32).unwrap();
        assert_eq!(e.dim, Some(192));
        assert!(m.entry(Role::Pnet, Variant::Fp32).is_err());
    }

    #[test]
    fn refuses_bytes_that_do_not_match_checksum() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("e.onnx"), b"not a model").unwrap();
        let m = Manifest::parse(dir.path(), SAMPLE).unwrap();
        let err = m.read_verified(&m.models[0]).unwrap_err().to_string();
        assert!(err.contains("corrupted"), "{err}");
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
