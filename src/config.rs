//! facegate's configuration: one TOML file, every key optional, validated at start with errors
//! that name the key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::decide::DecideConfig;
use crate::vision::align::CropMethod;
use crate::vision::models::Variant;
use crate::vision::mtcnn::DetectorParams;
use crate::vision::runtime::RuntimeOptions;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub runtime: RuntimeOptions,
    pub models: ModelsConfig,
    pub detector: DetectorParams,
    pub matching: MatchingConfig,
    pub decide: DecideConfig,
    /// `[liveness]`: presentation-attack checks (see `vision::liveness`).
    pub liveness: crate::vision::liveness::LivenessConfig,
    pub store: crate::act::store::StoreConfig,
    /// The `[[camera]]` tables, in order (a camera's index in frames and stats).
    #[serde(rename = "camera")]
    pub cameras: Vec<crate::capture::CameraConfig>,
    /// Door relays, one `[[door]]` table each.
    #[serde(rename = "door")]
    pub doors: Vec<crate::act::door::DoorConfig>,
    pub mqtt: crate::act::mqtt::MqttConfig,
    pub service: crate::service::config::ServiceConfig,
    pub web: crate::web::WebConfig,
    /// `[analyze]`: age, gender and expression estimates in `run` (see `analytics`); off by default.
    pub analyze: crate::analytics::AnalyzeConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Folder holding `manifest.toml` and the model files (default: found automatically).
    pub dir: Option<PathBuf>,
    /// "fp32" or "int8".
    pub variant: Variant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchingConfig {
    /// Cosine similarity needed for a match; default: the embedder's threshold in the manifest.
    pub threshold: Option<f32>,
    /// Lead the best person needs over the runner-up.
    pub margin: f32,
    /// "aligned" (five-point alignment) or "square" (plain box crop).
    pub crop: CropMethod,
    /// Clean-up of each face crop before embedding (`[matching.enhance]` exposure, greyscale).
    pub enhance: crate::vision::enhance::Enhance,
    /// Average each face's embedding with its mirror image's.
    pub flip: bool,
    /// Learn extra templates from confident, high-quality recognitions (off by default).
    pub auto_update: bool,
    /// When a recognition is confident and new enough to learn (`[matching.auto_update_rules]`).
    pub auto_update_rules: crate::gallery::auto_update::AutoUpdateConfig,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig {
            threshold: None,
            margin: 0.05,
            crop: CropMethod::Aligned,
            enhance: Default::default(),
            flip: false,
            auto_update: false,
            auto_update_rules: Default::default(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}; check the path given to --config", path.display()))?;
        let mut config = Config::parse(&text).with_context(|| format!("config file {} is invalid", path.display()))?;
        config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        self.detector.validate()?;
        self.decide.validate()?;
        self.liveness.validate()?;
        self.store.validate()?;
        crate::capture::config::validate_cameras(&self.cameras)?;
        self.mqtt.validate()?;
        self.service.validate()?;
        self.web.validate()?;
        if let Some(t) = self.matching.threshold
            && !(-1.0..=1.0).contains(&t)
        {
            bail!("matching.threshold must be a cosine similarity between -1 and 1 (got {t})");
        }
        self.matching.auto_update_rules.validate()?;
        if !(0.0..=1.0).contains(&self.matching.margin) {
            bail!("matching.margin must be between 0 and 1 (got {})", self.matching.margin);
        }
        if self.runtime.intra_threads == 0 || self.runtime.intra_threads > 64 {
            bail!("runtime.intra_threads must be between 1 and 64 (got {})", self.runtime.intra_threads);
        }
        crate::act::door::validate_doors(&self.doors)?;
        self.analyze.validate()?;
        Ok(())
    }

    /// Makes relative paths in the file relative to the file's folder, not to wherever the
    /// service happens to be started from.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = self.models.dir.as_mut() {
            fix(p)
        }
        if let Some(p) = self.runtime.library.as_mut() {
            fix(p)
        }
        if let Some(p) = self.service.enroll_dir.as_mut() {
            fix(p)
        }
        fix(&mut self.store.path);
        for camera in &mut self.cameras {
            if let crate::capture::SourceConfig::Replay(replay) = &mut camera.source {
                fix(&mut replay.path);
            }
        }
        for p in [self.web.cert.as_mut(), self.web.key.as_mut()].into_iter().flatten() {
            fix(p);
        }
        if let Some(tls) = self.mqtt.tls.as_mut() {
            fix(&mut tls.ca_file);
            for p in [tls.client_cert.as_mut(), tls.client_key.as_mut()].into_iter().flatten() {
                fix(p);
            }
        }
    }

    pub fn models_dir(&self) -> PathBuf {
        self.models.dir.clone().unwrap_or_else(crate::paths::default_models_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_and_bad_values_are_named() {
        let err = format!("{:#}", Config::parse("[detector]\nmin_fase = 30\n").unwrap_err());
        assert!(err.contains("min_fase"), "{err}");
        let err = format!("{:#}", Config::parse("[matching]\nthreshold = 3.0\n").unwrap_err());
        assert!(err.contains("matching.threshold"), "{err}");
        let err = format!("{:#}", Config::parse("[models]\nvariant = \"fp16\"\n").unwrap_err());
        assert!(err.contains("fp16") || err.contains("variant"), "{err}");
    }

    #[test]
    fn values_are_read() {
        let c = Config::parse(
            "[runtime]\nintra_threads = 2\n[models]\nvariant = \"int8\"\n[matching]\ncrop = \"square\"\n",
        )
        .unwrap();
        assert_eq!(c.runtime.intra_threads, 2);
        assert_eq!(c.models.variant, Variant::Int8);
        assert_eq!(c.matching.crop, CropMethod::Square);
    }

    #[test]
    fn execution_provider_is_read_and_a_wrong_one_names_the_key() {
        use crate::vision::runtime::ExecutionProvider;
        assert_eq!(Config::default().runtime.execution_provider, ExecutionProvider::Cpu);
        for (text, want) in
            [("cpu", ExecutionProvider::Cpu), ("cuda", ExecutionProvider::Cuda), ("auto", ExecutionProvider::Auto)]
        {
            let c = Config::parse(&format!("[runtime]\nexecution_provider = \"{text}\"\n")).unwrap();
            assert_eq!(c.runtime.execution_provider, want);
        }
        let err = format!("{:#}", Config::parse("[runtime]\nexecution_provider = \"gpu\"\n").unwrap_err());
        assert!(err.contains("execution_provider") && err.contains("cuda"), "{err}");
    }
}
