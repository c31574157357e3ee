//! The one place that talks to ONNX Runtime: finding and loading the shared library, building
//! sessions with the configured options, and running a single-input model.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`), so a missing or wrong library is a
//! user-fixable condition, not a link error. We always hand `ort` a checked path: without one
//! `ort` panics on first use.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ndarray::{ArrayD, ArrayView4};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

/// The ONNX Runtime release facegate is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";
/// File name of the library inside the release (and the set-up step's cache).
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// How sessions are built; comes from the `[runtime]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeOptions {
    /// Explicit path of `libonnxruntime.so`; tried before any other place.
    pub library: Option<PathBuf>,
    /// Threads ONNX Runtime may use inside one operator.
    pub intra_threads: usize,
    /// Graph optimisation level: "disable", "basic", "extended" or "all".
    pub optimization: OptimizationLevel,
    /// Busy-wait between operators. Faster on an idle machine, burns a core on a busy one.
    pub spinning: bool,
    /// ONNX Runtime's CPU memory arena: faster with several faces per frame, more memory.
    pub arena: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            library: None,
            intra_threads: 1,
            optimization: OptimizationLevel::All,
            spinning: false,
            arena: false,
        }
    }
}

/// Serialisable mirror of ONNX Runtime's graph optimisation levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizationLevel {
    Disable,
    Basic,
    Extended,
    All,
}

impl From<OptimizationLevel> for GraphOptimizationLevel {
    fn from(level: OptimizationLevel) -> Self {
        match level {
            OptimizationLevel::Disable => GraphOptimizationLevel::Disable,
            OptimizationLevel::Basic => GraphOptimizationLevel::Level1,
            OptimizationLevel::Extended => GraphOptimizationLevel::Level2,
            OptimizationLevel::All => GraphOptimizationLevel::Level3,
        }
    }
}

/// A loaded ONNX Runtime environment from which sessions are made.
pub struct Runtime {
    environment: ort::environment::Environment,
    options: RuntimeOptions,
    library: PathBuf,
}

/// Where facegate looks for the library, in order (config, `ORT_DYLIB_PATH`, beside the binary,
/// `../lib/facegate/` from the binary (the .deb's `/usr/lib/facegate/`), the set-up step's cache,
/// then the system's library path by bare name).
pub fn library_candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = configured {
        candidates.push(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        candidates.push(dir.join(ORT_LIBRARY_FILE));
        candidates.push(dir.join("libonnxruntime.so"));
        candidates.push(dir.join("../lib").join(ORT_LIBRARY_FILE));
        candidates.push(dir.join("../lib/facegate").join(ORT_LIBRARY_FILE));
    }
    candidates.push(
        crate::paths::project_root().join(".cache/onnxruntime").join(std::env::consts::ARCH).join(ORT_LIBRARY_FILE),
    );
    candidates.push(PathBuf::from(ORT_LIBRARY_FILE));
    candidates.push(PathBuf::from("libonnxruntime.so.1"));
    candidates.push(PathBuf::from("libonnxruntime.so"));
    candidates
}

fn is_bare_name(path: &Path) -> bool {
    path.components().count() == 1
}

/// ONNX Runtime allows one environment per process, so the first one loaded is kept and shared
/// (a config reload builds a new engine in the same process).
static LOADED: std::sync::Mutex<Option<(PathBuf, ort::environment::Environment)>> = std::sync::Mutex::new(None);

impl Runtime {
    /// Finds and loads ONNX Runtime (once per process). Errors say where we looked and how to get
    /// the library.
    pub fn load(options: RuntimeOptions) -> Result<Runtime> {
        if options.intra_threads == 0 {
            bail!("runtime.intra_threads must be at least 1 (got 0)");
        }
        let mut loaded = LOADED.lock().map_err(|_| anyhow!("ONNX Runtime loading panicked earlier in this process"))?;
        if let Some((library, environment)) = loaded.as_ref() {
            if options.library.as_deref().is_some_and(|wanted| wanted != library) {
                log::warn!(
                    "runtime.library changed, but ONNX Runtime from {} is already loaded in this process; \
                     restart facegate to load another library",
                    library.display()
                );
            }
            return Ok(Runtime { environment: environment.clone(), options, library: library.clone() });
        }
        let mut tried = Vec::new();
        for candidate in library_candidates(options.library.as_deref()) {
            // A path that does not exist is skipped quietly; a bare name goes to the system loader.
            if !is_bare_name(&candidate) && !candidate.exists() {
                if options.library.as_deref() == Some(candidate.as_path()) {
                    bail!(
                        "runtime.library is set to {} but that file does not exist; fix the path or remove the key \
                         (run scripts/fetch-onnxruntime.sh to download ONNX Runtime {ORT_VERSION})",
                        candidate.display()
                    );
                }
                tried.push(format!("{} (not found)", candidate.display()));
                continue;
            }
            match ort::init_from(&candidate) {
                Ok(builder) => {
                    let environment = builder.with_name("facegate").build().map_err(|e| {
                        anyhow!("ONNX Runtime loaded from {} but failed to start: {e}", candidate.display())
                    })?;
                    log::debug!("ONNX Runtime loaded from {}", candidate.display());
                    *loaded = Some((candidate.clone(), environment.clone()));
                    return Ok(Runtime { environment, options, library: candidate });
                }
                Err(e) => tried.push(format!("{} ({e})", candidate.display())),
            }
        }
        bail!(
            "could not load ONNX Runtime {ORT_VERSION}. Tried:\n  {}\nFix: run `scripts/fetch-onnxruntime.sh` in the \
             facegate source tree (it downloads the onnxruntime=={ORT_VERSION} wheel from PyPI and extracts \
             {ORT_LIBRARY_FILE}), then set `library` in the [runtime] config section or ORT_DYLIB_PATH to that file, \
             or put it next to the facegate binary.",
            tried.join("\n  ")
        )
    }

    /// The library actually loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Changes the thread count for sessions built from now on (benchmarks compare counts).
    pub fn set_intra_threads(&mut self, threads: usize) {
        self.options.intra_threads = threads.max(1);
    }

    /// The ONNX Runtime version string reported by the loaded library.
    pub fn version(&self) -> String {
        let info = ort::info();
        info.split(',')
            .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
            .map(str::to_string)
            .unwrap_or_else(|| ORT_VERSION.to_string())
    }

    /// Builds a session from model bytes (already checksum-verified by the caller).
    pub fn session(&self, name: &str, model: &[u8]) -> Result<Session> {
        let map = |e: ort::Error<_>| anyhow!("{name}: could not configure the ONNX Runtime session: {e}");
        let builder = Session::builder(&self.environment).map_err(|e| anyhow!("{name}: {e}"))?;
        let mut builder = builder
            .with_intra_threads(self.options.intra_threads)
            .map_err(map)?
            .with_inter_threads(1)
            .map_err(map)?
            .with_optimization_level(self.options.optimization.into())
            .map_err(map)?
            .with_intra_op_spinning(self.options.spinning)
            .map_err(map)?
            // Input shapes change with every pyramid level and batch, so the memory-pattern cache
            // only holds memory. The arena is a trade: ~20% faster on multi-face frames, ~40 MB
            // more peak RSS (README, "Measured figures").
            .with_memory_pattern(false)
            .map_err(map)?
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(self.options.arena).build()])
            .map_err(map)?;
        builder.commit_from_memory(model).map_err(|e| {
            anyhow!("{name}: ONNX Runtime rejected the model ({e}); regenerate it with tools/models/regenerate.sh")
        })
    }
}

/// A session with one float input, whose named outputs are copied out after each run.
pub struct SingleInputModel {
    name: String,
    session: Session,
    input: String,
    outputs: Vec<String>,
}

impl SingleInputModel {
    /// Wraps a session, checking that the expected input and outputs exist.
    pub fn new(name: &str, session: Session, input: &str, outputs: &[&str]) -> Result<SingleInputModel> {
        let inputs: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        if !inputs.contains(&input) {
            bail!(
                "{name}: model has inputs {inputs:?}, the manifest says `{input}`; the model file and manifest disagree"
            );
        }
        let available: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        for output in outputs {
            if !available.contains(output) {
                bail!("{name}: model has outputs {available:?}, the manifest says `{output}`");
            }
        }
        Ok(SingleInputModel {
            name: name.to_string(),
            session,
            input: input.to_string(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Runs the model on one 4-D tensor and returns the outputs in the order given to [`new`](Self::new).
    pub fn run(&mut self, input: ArrayView4<'_, f32>) -> Result<Vec<ArrayD<f32>>> {
        let tensor = TensorRef::from_array_view(input).map_err(|e| anyhow!("{}: bad input tensor: {e}", self.name))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| anyhow!("{}: inference failed: {e}", self.name))?;
        self.outputs
            .iter()
            .map(|name| {
                let value = outputs.get(name).with_context(|| format!("{}: output `{name}` missing", self.name))?;
                let array = value
                    .try_extract_array::<f32>()
                    .map_err(|e| anyhow!("{}: output `{name}` is not float32: {e}", self.name))?;
                Ok(array.to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packaged_library_location_is_searched_after_explicit_choices() {
        let configured = Path::new("/opt/ort/libonnxruntime.so");
        let candidates = library_candidates(Some(configured));
        assert_eq!(candidates[0], configured, "the config's runtime.library must be tried first");
        let exe_dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
        let packaged = exe_dir.join("../lib/facegate").join(ORT_LIBRARY_FILE);
        let at = candidates.iter().position(|c| *c == packaged).expect("../lib/facegate is searched");
        let bare = candidates.iter().position(|c| is_bare_name(c)).unwrap();
        assert!(at < bare, "the packaged library must win over whatever the system loader finds");
    }
}
