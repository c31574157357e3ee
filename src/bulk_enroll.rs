//! Bulk enrolment: many people at once from a zip (the web console) or a folder (the CLI's
//! `facegate enroll --from DIR`), one sub-folder per person named after them, photos inside.
//! Both read into the same [`Batch`] and run through [`run`], which hands each person's photos
//! to the caller's enrolment (the console's goes through the service API; the CLI's through the
//! shared enrolment rules), so every photo gets the same checks and its own message.
//!
//! The archive is hostile input: its size, its entry count, each entry's and the total
//! decompressed size are capped before anything is decompressed (declared sizes) and while it
//! is (actual bytes); a path that leaves the archive (`..`, absolute) refuses the whole archive;
//! entries that are not photos are reported and skipped. Pixels are capped later by the one
//! image decoder every enrolment uses.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::enroll::PhotoResult;

/// The caps on one batch.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The archive itself (the web's upload cap is applied before this).
    pub max_archive_bytes: u64,
    /// Entries in the archive (folders included) or photos in the folder.
    pub max_entries: usize,
    /// One photo, decompressed.
    pub max_photo_bytes: u64,
    /// All photos together, decompressed.
    pub max_total_bytes: u64,
    pub max_people: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_archive_bytes: 64 << 20,
            max_entries: 5_000,
            max_photo_bytes: 16 << 20,
            max_total_bytes: 1 << 30,
            max_people: 2_000,
        }
    }
}

/// Where a photo's bytes are.
#[derive(Debug, Clone)]
enum Location {
    #[cfg(feature = "web")]
    Zip(usize),
    File(PathBuf),
}

#[derive(Debug, Clone)]
struct Photo {
    label: String,
    at: Location,
}

/// The people of an archive or folder, read lazily (one person's photos at a time).
pub struct Batch {
    people: Vec<(String, Vec<Photo>)>,
    /// Entries not enrolled, with why (not a photo, too big, outside a person's folder...).
    pub skipped: Vec<String>,
    #[cfg(feature = "web")]
    zip: Option<zip::ZipArchive<std::io::Cursor<Vec<u8>>>>,
    max_photo_bytes: u64,
}

/// A photo's file name says it is one (the decoder checks the content).
fn is_photo(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".jpg") || lower.ends_with(".jpeg") || lower.ends_with(".png")
}

/// Metadata that archivers add (macOS `__MACOSX/`, `._x`, `.DS_Store`): skipped without a word.
fn is_noise(components: &[String]) -> bool {
    components.iter().any(|c| c == "__MACOSX" || c.starts_with('.'))
}

impl Batch {
    /// Everyone with a photo, in order: (name, number of photos).
    pub fn people(&self) -> Vec<(&str, usize)> {
        self.people.iter().map(|(n, p)| (n.as_str(), p.len())).collect()
    }

    pub fn photo_count(&self) -> usize {
        self.people.iter().map(|(_, p)| p.len()).sum()
    }

    /// From `(name, photo paths)` lists (the demo's fixtures).
    pub fn from_paths(people: &[(String, Vec<PathBuf>)], limits: &Limits) -> Batch {
        let people = people
            .iter()
            .map(|(name, paths)| {
                let photos = paths
                    .iter()
                    .map(|p| Photo { label: p.display().to_string(), at: Location::File(p.clone()) })
                    .collect();
                (name.clone(), photos)
            })
            .collect();
        Batch {
            people,
            skipped: Vec::new(),
            #[cfg(feature = "web")]
            zip: None,
            max_photo_bytes: limits.max_photo_bytes,
        }
    }

    /// A folder with one sub-folder of photos per person. Other files are reported and skipped.
    pub fn from_dir(dir: &Path, limits: &Limits) -> Result<Batch> {
        let listing = |d: &Path| -> Result<Vec<PathBuf>> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(d)
                .with_context(|| format!("cannot list {}; give a folder with one sub-folder per person", d.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            v.sort();
            Ok(v)
        };
        let mut people = Vec::new();
        let mut skipped = Vec::new();
        let mut entries = 0usize;
        for folder in listing(dir)? {
            let name = folder.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            if !folder.is_dir() {
                skipped.push(format!("{}: not in a person's folder (put photos in DIR/NAME/)", folder.display()));
                continue;
            }
            let mut photos = Vec::new();
            for file in listing(&folder)? {
                entries += 1;
                if entries > limits.max_entries {
                    bail!("{} holds more than {} files: enroll it in parts", dir.display(), limits.max_entries);
                }
                let label = file.display().to_string();
                let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if file_name.starts_with('.') {
                    continue;
                }
                if file.is_dir() || !is_photo(&file_name) {
                    skipped.push(format!("{label}: not a photo (JPEG or PNG), skipped"));
                    continue;
                }
                photos.push(Photo { label, at: Location::File(file) });
            }
            if !photos.is_empty() {
                people.push((name, photos));
            }
        }
        if people.len() > limits.max_people {
            bail!("{} people in {}; at most {} at a time", people.len(), dir.display(), limits.max_people);
        }
        Ok(Batch {
            people,
            skipped,
            #[cfg(feature = "web")]
            zip: None,
            max_photo_bytes: limits.max_photo_bytes,
        })
    }

    /// A zip archive (stored or deflated entries) of `NAME/photo.jpg`, optionally all inside one
    /// top folder. Refused whole (nothing enrolled) when over a cap or when a path leaves it.
    #[cfg(feature = "web")]
    pub fn from_zip(bytes: Vec<u8>, limits: &Limits) -> Result<Batch> {
        if bytes.len() as u64 > limits.max_archive_bytes {
            bail!(
                "the zip is {} MiB; at most {} MiB at a time: split it",
                bytes.len() >> 20,
                limits.max_archive_bytes >> 20
            );
        }
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .context("this is not a readable zip file: make it with your system's \"compress\" or `zip -r`")?;
        if zip.len() > limits.max_entries {
            bail!("the zip holds {} entries; at most {} at a time: split it", zip.len(), limits.max_entries);
        }
        let mut entries: Vec<(usize, Vec<String>)> = Vec::new();
        let mut skipped = Vec::new();
        let mut declared = 0u64;
        for i in 0..zip.len() {
            let file = zip.by_index_raw(i).with_context(|| format!("zip entry {} is damaged", i + 1))?;
            let raw_name: String = match file.name() {
                Ok(n) => n.chars().filter(|c| !c.is_control()).take(200).collect(),
                Err(e) => bail!("zip entry {} has an unreadable name ({e}): refused, nothing enrolled", i + 1),
            };
            // Nothing is written to disk, but an archive made to escape a folder is hostile: refuse it.
            let absolute = raw_name.starts_with('/') || raw_name.starts_with('\\') || raw_name.get(1..2) == Some(":");
            let enclosed = file.enclosed_name().filter(|_| !absolute);
            let Some(path) = enclosed else {
                bail!(
                    "zip entry `{raw_name}` points outside the archive (`..` or an absolute path): refused, nothing enrolled"
                );
            };
            if file.is_dir() {
                continue;
            }
            let components: Vec<String> =
                path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if is_noise(&components) {
                continue;
            }
            if file.encrypted() {
                skipped.push(format!("{raw_name}: encrypted, skipped (zip it without a password)"));
                continue;
            }
            if !is_photo(&raw_name) {
                skipped.push(format!("{raw_name}: not a photo (JPEG or PNG), skipped"));
                continue;
            }
            if file.size() > limits.max_photo_bytes {
                skipped.push(format!(
                    "{raw_name}: {} MiB unpacked; a photo may have at most {} MiB, skipped",
                    file.size() >> 20,
                    limits.max_photo_bytes >> 20
                ));
                continue;
            }
            declared += file.size();
            if declared > limits.max_total_bytes {
                bail!(
                    "the zip unpacks to more than {} MiB of photos: split it (nothing enrolled)",
                    limits.max_total_bytes >> 20
                );
            }
            entries.push((i, components));
        }
        // One top folder around everything (`staff/Ann/1.jpg`) is dropped.
        let top = entries.first().and_then(|(_, c)| (c.len() == 3).then(|| c[0].clone()));
        let wrapped = top.as_ref().is_some_and(|t| entries.iter().all(|(_, c)| c.len() == 3 && &c[0] == t));
        let mut people: Vec<(String, Vec<Photo>)> = Vec::new();
        for (index, mut components) in entries {
            if wrapped {
                components.remove(0);
            }
            let label = components.join("/");
            if components.len() != 2 {
                skipped.push(format!("{label}: not in a person's folder (put photos in NAME/photo.jpg), skipped"));
                continue;
            }
            let photo = Photo { label, at: Location::Zip(index) };
            match people.iter_mut().find(|(n, _)| *n == components[0]) {
                Some((_, photos)) => photos.push(photo),
                None => people.push((components[0].clone(), vec![photo])),
            }
        }
        if people.len() > limits.max_people {
            bail!("the zip holds {} people; at most {} at a time: split it", people.len(), limits.max_people);
        }
        Ok(Batch { people, skipped, zip: Some(zip), max_photo_bytes: limits.max_photo_bytes })
    }

    /// The bytes of one photo, read with the per-photo cap.
    fn read(&mut self, photo: &Photo) -> std::result::Result<Vec<u8>, String> {
        use std::io::Read;
        let cap = self.max_photo_bytes;
        let mut out = Vec::new();
        let read = match &photo.at {
            Location::File(path) => std::fs::File::open(path)
                .map_err(|e| format!("cannot read it ({e})"))
                .and_then(|f| f.take(cap + 1).read_to_end(&mut out).map_err(|e| format!("cannot read it ({e})"))),
            #[cfg(feature = "web")]
            Location::Zip(index) => match self.zip.as_mut() {
                Some(zip) => zip
                    .by_index(*index)
                    .map_err(|e| format!("cannot unpack it ({e}); only stored or deflated entries are read"))
                    .and_then(|f| f.take(cap + 1).read_to_end(&mut out).map_err(|e| format!("cannot unpack it ({e})"))),
                None => Err("internal: no archive".to_string()),
            },
        };
        read?;
        if out.len() as u64 > cap {
            return Err(format!("larger than {} MiB unpacked, skipped", cap >> 20));
        }
        Ok(out)
    }
}

/// One line of a batch's outcome: a photo's, or a person's when `photo` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub person: String,
    pub photo: Option<String>,
    pub ok: bool,
    pub message: String,
}

/// Where a batch is, and what happened so far (what the console's progress page shows).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub people_total: usize,
    pub photos_total: usize,
    pub photos_done: usize,
    pub people_enrolled: usize,
    pub photos_enrolled: usize,
    pub problems: usize,
    /// The person being enrolled now.
    pub current: Option<String>,
    pub finished: bool,
    pub lines: Vec<Line>,
}

/// How one person is enrolled from their readable photos: a result per photo, or an error for
/// the person (name taken, looks like someone else...).
pub type Enrol<'a> = dyn FnMut(&str, &[(String, Vec<u8>)]) -> Result<Vec<PhotoResult>> + 'a;

/// Enrolls everyone in `batch`, one person at a time, calling `progress` after each.
pub fn run(batch: &mut Batch, enrol: &mut Enrol<'_>, progress: &mut dyn FnMut(&Report)) -> Report {
    let mut report =
        Report { people_total: batch.people.len(), photos_total: batch.photo_count(), ..Report::default() };
    for skipped in &batch.skipped {
        report.problems += 1;
        report.lines.push(Line { person: String::new(), photo: None, ok: false, message: skipped.clone() });
    }
    progress(&report);
    let people = std::mem::take(&mut batch.people);
    for (name, photos) in &people {
        report.current = Some(name.clone());
        progress(&report);
        let mut readable = Vec::new();
        for photo in photos {
            match batch.read(photo) {
                Ok(bytes) => readable.push((photo.label.clone(), bytes)),
                Err(message) => {
                    report.problems += 1;
                    let line = Line { person: name.clone(), photo: Some(photo.label.clone()), ok: false, message };
                    report.lines.push(line);
                }
            }
        }
        if !readable.is_empty() {
            match enrol(name, &readable) {
                Ok(results) => {
                    let good = results.iter().filter(|r| r.outcome.is_ok()).count();
                    for r in results {
                        let (ok, message) = match r.outcome {
                            Ok(()) => (true, "enrolled".to_string()),
                            Err(e) => (false, e),
                        };
                        report.problems += usize::from(!ok);
                        report.lines.push(Line { person: name.clone(), photo: Some(r.name), ok, message });
                    }
                    if good > 0 {
                        report.people_enrolled += 1;
                        report.photos_enrolled += good;
                    }
                }
                Err(e) => {
                    report.problems += 1;
                    let message = format!("not enrolled: {e:#}");
                    report.lines.push(Line { person: name.clone(), photo: None, ok: false, message });
                }
            }
        }
        report.photos_done += photos.len();
        progress(&report);
    }
    batch.people = people;
    report.current = None;
    report.finished = true;
    progress(&report);
    report
}

#[cfg(all(test, feature = "web"))]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut out);
            for (name, data) in entries {
                let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
                w.start_file(*name, o).unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap();
        }
        out.into_inner()
    }

    /// An enrolment that accepts photos starting with `J` and refuses others.
    fn fake(name: &str, photos: &[(String, Vec<u8>)]) -> Result<Vec<PhotoResult>> {
        if name == "Taken" {
            bail!("`Taken` is already enrolled");
        }
        Ok(photos
            .iter()
            .map(|(label, b)| PhotoResult {
                name: label.clone(),
                outcome: if b.first() == Some(&b'J') { Ok(()) } else { Err(format!("{label}: no face found")) },
            })
            .collect())
    }

    #[test]
    fn a_zip_is_read_per_person_with_bad_entries_reported() {
        let z = zip_of(&[
            ("staff/Ann/1.jpg", b"J1"),
            ("staff/Ann/2.JPG", b"bad"),
            ("staff/Bob/1.png", b"J2"),
            ("staff/Bob/notes.txt", b"hello"),
            ("staff/Taken/1.jpg", b"J3"),
            ("staff/__MACOSX/._1.jpg", b"x"),
        ]);
        let mut batch = Batch::from_zip(z, &Limits::default()).unwrap();
        assert_eq!(batch.people(), vec![("Ann", 2), ("Bob", 1), ("Taken", 1)], "the one top folder is dropped");
        let mut seen = Vec::new();
        let report = run(&mut batch, &mut fake, &mut |r| seen.push(r.photos_done));
        assert!(report.finished);
        assert_eq!((report.people_enrolled, report.photos_enrolled, report.problems), (2, 2, 3), "{report:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]) && seen.last() == Some(&4), "progress only grows: {seen:?}");
        let text: Vec<String> = report.lines.iter().map(|l| l.message.clone()).collect();
        assert!(text.iter().any(|m| m.contains("notes.txt") && m.contains("not a photo")), "{text:?}");
        assert!(text.iter().any(|m| m.contains("2.JPG: no face")), "{text:?}");
        assert!(text.iter().any(|m| m.contains("not enrolled") && m.contains("already enrolled")), "{text:?}");
    }

    #[test]
    fn traversal_and_caps_refuse_the_archive() {
        let evil = zip_of(&[("Ann/1.jpg", b"J"), ("../../etc/cron.d/x.jpg", b"J")]);
        let err = Batch::from_zip(evil, &Limits::default()).err().unwrap().to_string();
        assert!(err.contains("outside the archive") && err.contains("nothing enrolled"), "{err}");
        let abs = zip_of(&[("/etc/x.jpg", b"J")]);
        assert!(Batch::from_zip(abs, &Limits::default()).is_err());

        let many: Vec<(String, &[u8])> = (0..11).map(|i| (format!("P{i}/1.jpg"), b"J" as &[u8])).collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        let few = Limits { max_entries: 10, ..Limits::default() };
        let err = Batch::from_zip(zip_of(&many), &few).err().unwrap().to_string();
        assert!(err.contains("11 entries") && err.contains("split"), "{err}");

        let small = Limits { max_archive_bytes: 100, ..Limits::default() };
        let err = Batch::from_zip(zip_of(&many), &small).err().unwrap().to_string();
        assert!(err.contains("MiB"), "{err}");

        // A bomb: highly compressible, far bigger unpacked than packed.
        let bomb = vec![b'J'; 3 << 20];
        let z = zip_of(&[("Ann/big.jpg", &bomb), ("Ann/ok.jpg", b"J")]);
        assert!(z.len() < 100 << 10, "compressed to {} bytes", z.len());
        let tight = Limits { max_photo_bytes: 1 << 20, ..Limits::default() };
        let mut batch = Batch::from_zip(z.clone(), &tight).unwrap();
        let report = run(&mut batch, &mut fake, &mut |_| {});
        assert_eq!(report.photos_enrolled, 1);
        assert!(report.lines.iter().any(|l| l.message.contains("big.jpg") && l.message.contains("MiB")), "{report:?}");
        let total = Limits { max_total_bytes: 1 << 20, ..Limits::default() };
        assert!(Batch::from_zip(z, &total).err().unwrap().to_string().contains("more than 1 MiB"));

        assert!(Batch::from_zip(b"PK not a zip".to_vec(), &Limits::default()).is_err());
    }

    #[test]
    fn a_folder_reads_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("Ann")).unwrap();
        std::fs::write(dir.path().join("Ann/1.jpg"), b"J").unwrap();
        std::fs::write(dir.path().join("Ann/cv.pdf"), b"%PDF").unwrap();
        std::fs::write(dir.path().join("loose.jpg"), b"J").unwrap();
        let mut batch = Batch::from_dir(dir.path(), &Limits::default()).unwrap();
        assert_eq!(batch.people(), vec![("Ann", 1)]);
        let report = run(&mut batch, &mut fake, &mut |_| {});
        assert_eq!((report.people_enrolled, report.problems), (1, 2), "{report:?}");
    }
}
