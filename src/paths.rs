//! Where facegate finds its files when the config does not say.

use std::path::{Path, PathBuf};

/// The source tree facegate was built from (used to find `models/` and the set-up step's cache
/// when running from a checkout).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The models folder: `FACEGATE_MODELS`, then `models/` beside the binary or one level up
/// (installed layouts), then `/usr/share/facegate/models`, then the source tree's `models/`.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FACEGATE_MODELS").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    let mut candidates = Vec::new();
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf)) {
        candidates.push(exe_dir.join("models"));
        candidates.push(exe_dir.join("../share/facegate/models"));
    }
    candidates.push(PathBuf::from("/usr/share/facegate/models"));
    candidates
        .into_iter()
        .find(|dir| dir.join(crate::vision::models::MANIFEST_FILE).is_file())
        .unwrap_or_else(|| project_root().join("models"))
}
