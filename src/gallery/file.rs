//! A gallery kept in one JSON file, written atomically (temp file, fsync, rename) so a crash
//! leaves either the old or the new gallery, never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{GalleryStore, Person, TemplateModel};
use crate::vision::embed::Embedding;

const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GalleryFileData {
    format_version: u32,
    model: TemplateModel,
    people: Vec<Person>,
}

/// A JSON-file gallery bound to the embedder that made its templates.
#[derive(Debug)]
pub struct FileGallery {
    path: PathBuf,
    data: GalleryFileData,
}

impl FileGallery {
    /// Opens `path`, or starts an empty gallery there if it does not exist yet.
    /// Refuses a gallery made by a different embedder.
    pub fn open(path: &Path, model: TemplateModel) -> Result<FileGallery> {
        let data = match std::fs::read(path) {
            Ok(bytes) => {
                let data: GalleryFileData = serde_json::from_slice(&bytes).with_context(|| {
                    format!(
                        "gallery {} is not a facegate gallery file (or is damaged); move it away and enroll again",
                        path.display()
                    )
                })?;
                if data.format_version != FORMAT_VERSION {
                    bail!(
                        "gallery {} has format version {}, this facegate reads {FORMAT_VERSION}",
                        path.display(),
                        data.format_version
                    );
                }
                if data.model != model {
                    bail!(
                        "gallery {} holds templates of model {} ({}-D) but facegate is using {} ({}-D); enroll again into a new \
                         gallery, or select the model the gallery was made with",
                        path.display(),
                        data.model.id,
                        data.model.dim,
                        model.id,
                        model.dim
                    );
                }
                data
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                GalleryFileData { format_version: FORMAT_VERSION, model, people: Vec::new() }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read gallery {}", path.display()));
            }
        };
        Ok(FileGallery { path: path.to_path_buf(), data })
    }

    fn save(&self) -> Result<()> {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&self.data)?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            // Make the rename itself durable.
            std::fs::File::open(dir)?.sync_all()
        };
        write().with_context(|| format!("cannot write gallery {}", self.path.display()))
    }
}

impl GalleryStore for FileGallery {
    fn people(&self) -> Result<Vec<Person>> {
        Ok(self.data.people.clone())
    }

    fn enroll(&mut self, name: &str, templates: Vec<Embedding>) -> Result<()> {
        let name = name.trim();
        if name.is_empty() {
            bail!("a person's name cannot be empty");
        }
        match self.data.people.iter_mut().find(|p| p.name == name) {
            Some(person) => person.templates.extend(templates),
            None => self.data.people.push(Person { name: name.to_string(), templates }),
        }
        self.save()
    }

    fn remove(&mut self, name: &str) -> Result<bool> {
        let before = self.data.people.len();
        self.data.people.retain(|p| p.name != name);
        let removed = self.data.people.len() != before;
        if removed {
            self.save()?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> TemplateModel {
        TemplateModel { id: "m".into(), dim: 2 }
    }

    #[test]
    fn enroll_persists_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.json");
        let mut g = FileGallery::open(&path, model()).unwrap();
        g.enroll("ann", vec![vec![1.0, 0.0]]).unwrap();
        g.enroll("ann", vec![vec![0.0, 1.0]]).unwrap();
        let g = FileGallery::open(&path, model()).unwrap();
        assert_eq!(g.people().unwrap()[0].templates.len(), 2);
    }

    #[test]
    fn refuses_other_model_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.json");
        FileGallery::open(&path, model()).unwrap().enroll("ann", vec![vec![1.0, 0.0]]).unwrap();
        let other = TemplateModel { id: "other".into(), dim: 2 };
        assert!(FileGallery::open(&path, other).unwrap_err().to_string().contains("enroll again"));
        std::fs::write(&path, b"{not json").unwrap();
        assert!(FileGallery::open(&path, model()).is_err());
    }

    #[test]
    fn remove_reports_whether_person_existed() {
        let dir = tempfile::tempdir().unwrap();
        let mut g = FileGallery::open(&dir.path().join("g.json"), model()).unwrap();
        g.enroll("ann", vec![vec![1.0, 0.0]]).unwrap();
        assert!(g.remove("ann").unwrap());
        assert!(!g.remove("ann").unwrap());
        assert!(g.enroll("  ", vec![]).is_err());
    }
}
