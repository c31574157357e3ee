//! The one place that talks to ONNX Runtime: finding and loading the shared library, building
//! sessions with the configured options, and running a single-input model.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`), so a missing or wrong library is a
//! user-fixable condition, not a link error. We always hand `ort` a checked path: without one
//! `ort` panics on first use.
//!
//! The execution provider (CPU, or CUDA on a Jetson) is chosen once when the library loads: a
//! CUDA request that the library or the machine cannot serve falls back to the CPU with one
//! warning that says why, so a board never fails to start over its accelerator.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use ndarray::{ArrayD, ArrayView4};
use ort::ep::ExecutionProvider as _;
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
    /// ONNX Runtime's CPU memory arena (on by default): faster with several faces per frame, a
    /// little more memory.
    pub arena: bool,
    /// ONNX Runtime's memory-pattern cache (plans allocations per input shape; pays only with
    /// the arena and repeating shapes). Off by default: `facegate bench` measures both.
    pub memory_pattern: bool,
    /// Threads for the embedder only (the heaviest model per face); unset = `intra_threads`.
    /// 2 on a 2-core board puts the second core to work where it pays most.
    pub embed_threads: Option<usize>,
    /// "cpu", "cuda" (prefer CUDA, fall back to the CPU with a warning) or "auto" (CUDA when the
    /// loaded library and the machine have it, else the CPU quietly).
    pub execution_provider: ExecutionProvider,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            library: None,
            intra_threads: 1,
            optimization: OptimizationLevel::All,
            spinning: false,
            // Measured (README, "Measured figures"): +14 MiB peak RSS, and batched embeddings
            // stop paying for fresh pages on every call.
            arena: true,
            memory_pattern: false,
            embed_threads: None,
            execution_provider: ExecutionProvider::Cpu,
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

/// Which execution provider runs the models (`runtime.execution_provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU kernels only.
    #[default]
    Cpu,
    /// CUDA for what it supports (the rest on the CPU); falls back to the CPU with a warning.
    Cuda,
    /// CUDA if available, otherwise the CPU; a CPU-only library is expected, not warned about.
    Auto,
}

impl std::fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::Auto => "auto",
        })
    }
}

/// A loaded ONNX Runtime environment from which sessions are made.
pub struct Runtime {
    environment: ort::environment::Environment,
    options: RuntimeOptions,
    library: PathBuf,
    /// The provider in use (`Cpu` or `Cuda`) and, after a fallback, why CUDA is not used.
    provider: Mutex<(ExecutionProvider, Option<String>)>,
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
        if options.embed_threads == Some(0) {
            bail!("runtime.embed_threads must be at least 1 (got 0); remove it to use runtime.intra_threads");
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
            return Ok(Runtime::with_environment(environment.clone(), options, library.clone()));
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
                    return Ok(Runtime::with_environment(environment, options, candidate));
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

    /// A runtime on a loaded environment, with the execution provider chosen for `options` (each
    /// runtime chooses again: a config reload may ask for another provider).
    fn with_environment(
        environment: ort::environment::Environment,
        options: RuntimeOptions,
        library: PathBuf,
    ) -> Runtime {
        let provider = choose_provider(&environment, options.execution_provider, &library);
        Runtime { environment, options, library, provider: Mutex::new(provider) }
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

    /// Changes the embedder's thread count for sessions built from now on (`None`: as the others).
    pub fn set_embed_threads(&mut self, threads: Option<usize>) {
        self.options.embed_threads = threads.map(|t| t.max(1));
    }

    /// Changes the allocator settings for sessions built from now on (benchmarks compare them).
    pub fn set_allocators(&mut self, arena: bool, memory_pattern: bool) {
        self.options.arena = arena;
        self.options.memory_pattern = memory_pattern;
    }

    /// The ONNX Runtime version string reported by the loaded library.
    pub fn version(&self) -> String {
        let info = ort::info();
        info.split(',')
            .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
            .map(str::to_string)
            .unwrap_or_else(|| ORT_VERSION.to_string())
    }

    /// The execution provider sessions are built with: `Cpu` or `Cuda`, never `Auto`.
    pub fn execution_provider(&self) -> ExecutionProvider {
        self.provider.lock().map(|p| p.0).unwrap_or(ExecutionProvider::Cpu)
    }

    /// Why the configured provider is not the one in use (after a CUDA fallback), if it is not.
    pub fn fallback_reason(&self) -> Option<String> {
        self.provider.lock().ok().and_then(|p| p.1.clone())
    }

    /// Builds a session from model bytes (already checksum-verified by the caller). A CUDA
    /// session that fails to build (e.g. no GPU at session start) is built again on the CPU, and
    /// every later session goes to the CPU directly.
    pub fn session(&self, name: &str, model: &[u8]) -> Result<Session> {
        self.session_with_threads(name, model, self.options.intra_threads)
    }

    /// [`session`](Self::session) with its own intra-op thread count.
    pub fn session_with_threads(&self, name: &str, model: &[u8], threads: usize) -> Result<Session> {
        let threads = threads.max(1);
        if self.execution_provider() == ExecutionProvider::Cuda {
            match self.build_session(name, model, true, threads) {
                Ok(session) => return Ok(session),
                Err(e) => {
                    let why = format!("building the {name} session with CUDA failed ({e:#})");
                    log::warn!("{}", fallback_message(self.options.execution_provider, &why));
                    if let Ok(mut provider) = self.provider.lock() {
                        *provider = (ExecutionProvider::Cpu, Some(why));
                    }
                }
            }
        }
        self.build_session(name, model, false, threads)
    }

    fn build_session(&self, name: &str, model: &[u8], cuda: bool, threads: usize) -> Result<Session> {
        let map = |e: ort::Error<_>| anyhow!("{name}: could not configure the ONNX Runtime session: {e}");
        let builder = Session::builder(&self.environment).map_err(|e| anyhow!("{name}: {e}"))?;
        let mut builder = builder
            .with_intra_threads(threads)
            .map_err(map)?
            .with_inter_threads(1)
            .map_err(map)?
            .with_optimization_level(self.options.optimization.into())
            .map_err(map)?
            .with_intra_op_spinning(self.options.spinning)
            .map_err(map)?
            // Input shapes change with every pyramid level and batch, so the memory-pattern cache
            // mostly holds memory. The arena is a trade of speed for peak RSS; both are measured
            // in README, "Measured figures".
            .with_memory_pattern(self.options.memory_pattern)
            .map_err(map)?
            .with_execution_providers(providers(cuda, self.options.arena))
            .map_err(map)?;
        builder.commit_from_memory(model).map_err(|e| {
            anyhow!("{name}: ONNX Runtime rejected the model ({e}); regenerate it with tools/models/regenerate.sh")
        })
    }
}

/// The providers a session registers, in order of preference; CUDA must register or the
/// session fails (and is retried on the CPU), so a half-working CUDA is never silently used.
fn providers(cuda: bool, arena: bool) -> Vec<ort::ep::ExecutionProviderDispatch> {
    let cpu = ort::ep::CPU::default().with_arena_allocator(arena).build();
    if cuda { vec![ort::ep::CUDA::default().build().error_on_failure(), cpu] } else { vec![cpu] }
}

/// Resolves the configured provider against the loaded library: returns the provider to use
/// (`Cpu` or `Cuda`) and, when CUDA was asked for but cannot be used, why. Registering CUDA on a
/// throwaway session builder loads ONNX Runtime's CUDA provider library and with it CUDA and
/// cuDNN, so missing GPU libraries show up here rather than at the first session.
fn choose_provider(
    environment: &ort::environment::Environment,
    requested: ExecutionProvider,
    library: &Path,
) -> (ExecutionProvider, Option<String>) {
    if requested == ExecutionProvider::Cpu {
        return (ExecutionProvider::Cpu, None);
    }
    let why = match ort::ep::CUDA::is_available() {
        Err(e) => format!("ONNX Runtime could not list its execution providers ({e})"),
        Ok(false) => format!(
            "the loaded ONNX Runtime ({}) is a CPU-only build without CUDAExecutionProvider; on a Jetson install \
             the GPU build from JetPack and point runtime.library (or ORT_DYLIB_PATH) at its libonnxruntime.so",
            library.display()
        ),
        Ok(true) => {
            let probe = Session::builder(environment)
                .map_err(|e| e.to_string())
                .and_then(|b| b.with_execution_providers(providers(true, false)).map(drop).map_err(|e| e.to_string()));
            match probe {
                Ok(()) => return (ExecutionProvider::Cuda, None),
                Err(e) => format!(
                    "ONNX Runtime has CUDA but it did not start ({e}); check the GPU, the CUDA and cuDNN libraries \
                     JetPack installs, and LD_LIBRARY_PATH"
                ),
            }
        }
    };
    let expected = requested == ExecutionProvider::Auto && why.contains("CPU-only build");
    if expected {
        log::info!("{}", fallback_message(requested, &why));
    } else {
        log::warn!("{}", fallback_message(requested, &why));
    }
    (ExecutionProvider::Cpu, Some(why))
}

fn fallback_message(requested: ExecutionProvider, why: &str) -> String {
    format!("runtime.execution_provider = \"{requested}\" but {why}: running the models on the CPU")
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
