//! `facegate eval`: accuracy and speed on a folder in the faces-dev format.
//!
//! Reads `manifest.csv` (`path,identity,kind,faces,...`) and `pairs.csv` (`path_a,path_b,same`),
//! embeds every image once, and reports per top-level folder: verification figures, detection
//! recall on group photos (by face count: the data has counts, not boxes), false faces on
//! no-face photos, and per-stage timing. `--require` turns figures into pass/fail floors for CI.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::capture::image_file::load_rgb;
use crate::config::Config;
use crate::engine::Engine;
use crate::eval::{OpenSetProbe, OpenSetReport, ScoredPair, VerificationReport, open_set_report, verification_report};
use crate::gallery::Person;
use crate::gallery::matcher::Matcher;
use crate::sysinfo::median;
use crate::vision::align::square_crop;
use crate::vision::bbox::BBox;
use crate::vision::embed::{Embedding, cosine};
use crate::vision::pipeline::Timings;
use crate::vision::quality::{Quality, QualityLimits, enrollment_problems};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Folder with manifest.csv and pairs.csv (e.g. ../shared/eval/faces-dev).
    #[arg(long, value_name = "DIR", required_unless_present = "spoof", conflicts_with = "spoof")]
    pub data: Option<PathBuf>,
    /// Evaluate presentation-attack detection instead, on a folder in the spoof-dev format
    /// (manifest.csv with path,label,kind,...; label `live` or `spoof`).
    #[arg(long, value_name = "DIR")]
    pub spoof: Option<PathBuf>,
    /// With --spoof: draw the DET curve (APCER against BPCER) into this PNG.
    #[arg(long, value_name = "OUT.png", requires = "spoof")]
    pub det: Option<PathBuf>,
    /// Draw the ROC curves (one per subset) into this PNG.
    #[arg(long, value_name = "OUT.png")]
    pub roc: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// A figure that must hold, e.g. `identity.accuracy>=0.985` or `noface.false_faces<=0`;
    /// the command exits 1 when any fails. Repeatable.
    #[arg(long, value_name = "EXPR")]
    pub require: Vec<String>,
    /// Border added around `identity_chips/` images before detection, as a fraction of their size.
    #[arg(long, default_value_t = 0.5)]
    pub chip_padding: f32,
}

#[derive(Debug, Deserialize)]
struct ManifestRow {
    path: String,
    identity: String,
    kind: String,
    faces: u32,
}

#[derive(Debug, Deserialize)]
struct PairRow {
    path_a: String,
    path_b: String,
    same: u8,
}

/// How an image's embedding was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Detected,
    /// Tight chip with no detectable face: aligned on O-Net's landmarks in the whole chip.
    WholeChip,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectionCounts {
    pub images: usize,
    pub expected_faces: u32,
    pub detected_faces: u32,
    /// Sum over images of min(detected, expected) / expected faces.
    pub recall: f64,
    /// Images where more faces were found than counted by eye.
    pub images_with_extra_faces: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageMedians {
    pub pnet_ms: f64,
    pub rnet_ms: f64,
    pub onet_ms: f64,
    pub align_ms: f64,
    pub embed_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub data: String,
    pub variant: String,
    pub crop: String,
    pub enhance: crate::vision::enhance::Enhance,
    pub flip: bool,
    pub min_face: f32,
    pub verification: BTreeMap<String, VerificationReport>,
    /// Chips with no face found even after padding: aligned on the landmarks O-Net finds in the
    /// whole chip (the plain chip when even that fails).
    pub whole_chip_fallbacks: usize,
    pub group: DetectionCounts,
    pub noface: DetectionCounts,
    pub timing: StageMedians,
    pub unreadable_images: Vec<String>,
    /// Open-set 1:N protocol (see [`open_set_probes`]).
    pub open_set: OpenSetReport,
    /// Per subset: faces the enrolment quality check would refuse.
    pub quality: BTreeMap<String, QualitySummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QualitySummary {
    pub faces: usize,
    pub median_score: f64,
    pub median_sharpness: f64,
    pub median_brightness: f64,
    /// Fraction of faces `enroll` would refuse without `--force`.
    pub enroll_refused: f64,
}

pub(super) fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}: malformed", path.display(), i + 2)))
        .collect()
}

fn top_folder(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// Adds a black border of `fraction` of the size on every side (tight chips need context for MTCNN).
fn pad(image: &RgbImage, fraction: f32) -> RgbImage {
    let (w, h) = image.dimensions();
    let (bx, by) = ((w as f32 * fraction) as u32, (h as f32 * fraction) as u32);
    let mut out = RgbImage::new(w + 2 * bx, h + 2 * by);
    image::imageops::replace(&mut out, image, bx as i64, by as i64);
    out
}

/// Where an image of `size` sits inside its [`pad`]ded copy.
fn chip_box(size: (u32, u32), fraction: f32) -> BBox {
    let (w, h) = size;
    let (bx, by) = ((w as f32 * fraction).floor(), (h as f32 * fraction).floor());
    BBox { x1: bx, y1: by, x2: bx + w as f32, y2: by + h as f32, score: 1.0 }
}

struct Evaluator<'a> {
    engine: &'a mut Engine,
    chip_padding: f32,
    timings: Vec<Timings>,
    totals: Vec<f64>,
    unreadable: Vec<String>,
}

impl Evaluator<'_> {
    /// The embedding of an image's largest face (None when no face can be had).
    fn embed(&mut self, root: &Path, rel: &str) -> Option<(Embedding, Source, Option<Quality>)> {
        let image = match load_rgb(&root.join(rel)) {
            Ok(image) => image,
            Err(e) => {
                log::warn!("{e}");
                self.unreadable.push(rel.to_string());
                return None;
            }
        };
        let chip = top_folder(rel) == "identity_chips";
        let image_size = image.dimensions();
        let input = if chip { pad(&image, self.chip_padding) } else { image };
        let t = std::time::Instant::now();
        let analysed = self.engine.pipeline.analyse(&input);
        self.totals.push(t.elapsed().as_secs_f64() * 1e3);
        let (faces, timings) = match analysed {
            Ok(result) => result,
            Err(e) => {
                log::warn!("{rel}: {e:#}");
                return None;
            }
        };
        self.timings.push(timings);
        let largest = faces.into_iter().max_by(|a, b| {
            let area = |f: &crate::vision::pipeline::Face| f.detection.bbox.width() * f.detection.bbox.height();
            area(a).total_cmp(&area(b))
        });
        match largest {
            Some(face) => Some((face.embedding, Source::Detected, Some(face.quality))),
            None if chip => {
                // The chip itself (inside the border), aligned on the landmarks O-Net finds there,
                // as face_recognition's reference does with dlib's landmarks on the same box.
                let whole = chip_box(image_size, self.chip_padding);
                match self.engine.pipeline.face_in_box(&input, &whole) {
                    Ok(Some(face)) => Some((face.embedding, Source::WholeChip, None)),
                    result => {
                        if let Err(e) = result {
                            log::warn!("{rel}: {e:#}");
                        }
                        let mut crop = square_crop(&input, &whole);
                        self.engine.pipeline.prepare(&mut crop);
                        let embedding = self.engine.pipeline.embed_crops(&[crop]).ok()?.pop()?;
                        Some((embedding, Source::WholeChip, None))
                    }
                }
            }
            None => None,
        }
    }

    fn count_faces(&mut self, root: &Path, rows: &[&ManifestRow]) -> DetectionCounts {
        let mut counts = DetectionCounts {
            images: 0,
            expected_faces: 0,
            detected_faces: 0,
            recall: 0.0,
            images_with_extra_faces: 0,
        };
        let mut found = 0u32;
        for row in rows {
            let image = match load_rgb(&root.join(&row.path)) {
                Ok(image) => image,
                Err(e) => {
                    log::warn!("{e}");
                    self.unreadable.push(row.path.clone());
                    continue;
                }
            };
            let detected = match self.engine.pipeline.detect(&image) {
                Ok((faces, _)) => faces.len() as u32,
                Err(e) => {
                    log::warn!("{}: {e:#}", row.path);
                    0
                }
            };
            counts.images += 1;
            counts.expected_faces += row.faces;
            counts.detected_faces += detected;
            found += detected.min(row.faces);
            if detected > row.faces {
                counts.images_with_extra_faces += 1;
            }
        }
        counts.recall = if counts.expected_faces > 0 { found as f64 / counts.expected_faces as f64 } else { 1.0 };
        counts
    }
}

pub fn run(config: &Config, args: EvalArgs) -> Result<i32> {
    let requirements: Vec<Requirement> = args.require.iter().map(|r| Requirement::parse(r)).collect::<Result<_>>()?;
    let root = match (&args.data, &args.spoof) {
        (_, Some(dir)) => return super::eval_spoof::run(config, dir, args.json, args.det.as_deref(), &requirements),
        (Some(dir), None) => dir,
        (None, None) => bail!("give --data DIR (faces-dev format) or --spoof DIR (spoof-dev format)"),
    };
    let mut engine = Engine::open(config)?;
    let manifest: Vec<ManifestRow> = read_csv(&root.join("manifest.csv"))?;
    let pairs: Vec<PairRow> = read_csv(&root.join("pairs.csv"))?;

    let mut needed: Vec<&str> = pairs.iter().flat_map(|p| [p.path_a.as_str(), p.path_b.as_str()]).collect();
    needed.extend(manifest.iter().filter(|r| r.kind == "identity").map(|r| r.path.as_str()));
    needed.sort_unstable();
    needed.dedup();
    let groups: Vec<&ManifestRow> = manifest.iter().filter(|r| r.kind == "group").collect();
    let nofaces: Vec<&ManifestRow> = manifest.iter().filter(|r| r.kind == "noface").collect();

    let progress = indicatif::ProgressBar::new(needed.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    progress.set_message("embedding");
    let mut evaluator = Evaluator {
        engine: &mut engine,
        chip_padding: args.chip_padding,
        timings: Vec::new(),
        totals: Vec::new(),
        unreadable: Vec::new(),
    };
    let mut embeddings: HashMap<&str, (Embedding, Source, Option<Quality>)> = HashMap::new();
    for rel in &needed {
        if let Some(e) = evaluator.embed(root, rel) {
            embeddings.insert(rel, e);
        }
        progress.inc(1);
    }
    progress.set_message("detecting");
    let group = evaluator.count_faces(root, &groups);
    let noface = evaluator.count_faces(root, &nofaces);
    progress.finish_and_clear();

    let threshold = evaluator.engine.policy.threshold;
    let mut by_subset: BTreeMap<String, Vec<ScoredPair>> = BTreeMap::new();
    for p in &pairs {
        let similarity = match (embeddings.get(p.path_a.as_str()), embeddings.get(p.path_b.as_str())) {
            (Some((a, _, _)), Some((b, _, _))) => Some(cosine(a, b)),
            _ => None,
        };
        by_subset
            .entry(top_folder(&p.path_a).to_string())
            .or_default()
            .push(ScoredPair { similarity, same: p.same == 1 });
    }
    let verification: BTreeMap<String, VerificationReport> =
        by_subset.iter().map(|(k, v)| (k.clone(), verification_report(v, threshold))).collect();
    let t = &evaluator.timings;
    let timing = StageMedians {
        pnet_ms: median(&t.iter().map(|x| x.detect.pnet_ms).collect::<Vec<_>>()),
        rnet_ms: median(&t.iter().map(|x| x.detect.rnet_ms).collect::<Vec<_>>()),
        onet_ms: median(&t.iter().map(|x| x.detect.onet_ms).collect::<Vec<_>>()),
        align_ms: median(&t.iter().map(|x| x.align_ms).collect::<Vec<_>>()),
        embed_ms: median(&t.iter().map(|x| x.embed_ms).collect::<Vec<_>>()),
        total_ms: median(&evaluator.totals),
    };
    let (gallery, probes) = open_set_probes(&manifest, &embeddings, evaluator.engine.template_model().dim);
    let policy = evaluator.engine.policy;
    let open_set = open_set_report(&probes, gallery, policy.threshold, policy.margin);
    let quality = quality_summaries(&embeddings);
    let report = EvalReport {
        data: root.display().to_string(),
        variant: config.models.variant.to_string(),
        crop: format!("{:?}", config.matching.crop).to_lowercase(),
        enhance: config.matching.enhance,
        flip: config.matching.flip,
        min_face: config.detector.min_face,
        verification,
        whole_chip_fallbacks: embeddings.values().filter(|(_, s, _)| *s == Source::WholeChip).count(),
        group,
        noface,
        timing,
        unreadable_images: evaluator.unreadable.clone(),
        open_set,
        quality,
    };
    if let Some(out) = &args.roc {
        let curves: Vec<(String, Vec<(f64, f64)>)> =
            report.verification.iter().map(|(k, v)| (k.clone(), v.roc.clone())).collect();
        super::plot::draw_roc(out, &curves)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if check(&requirements, &flatten(&report))? > 0 { 1 } else { 0 })
}

/// Checks `--require` floors against the report's figures; returns how many failed.
pub(super) fn check(requirements: &[Requirement], figures: &BTreeMap<String, f64>) -> Result<usize> {
    let mut failed = 0;
    for r in requirements {
        match figures.get(&r.key) {
            Some(&value) if r.holds(value) => {
                eprintln!("requirement met: {} (value {value:.4})", r.text)
            }
            Some(&value) => {
                failed += 1;
                eprintln!("REQUIREMENT FAILED: {} (value {value:.4})", r.text);
            }
            None => bail!(
                "--require {}: unknown figure `{}`; known: {}",
                r.text,
                r.key,
                figures.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(failed)
}

/// The open-set protocol, deterministic: identities (manifest `identity`, sorted) alternate
/// between enrolled (even positions) and not enrolled; an enrolled identity's gallery template is
/// its first photo by path, and every other photo of every identity is a probe. Returns the
/// number of gallery people and the probes, each searched with the production [`Matcher`].
fn open_set_probes(
    manifest: &[ManifestRow],
    embeddings: &HashMap<&str, (Embedding, Source, Option<Quality>)>,
    dim: usize,
) -> (usize, Vec<OpenSetProbe>) {
    let mut by_identity: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in manifest.iter().filter(|r| r.kind == "identity") {
        by_identity.entry(row.identity.as_str()).or_default().push(row.path.as_str());
    }
    let mut people = Vec::new();
    let mut probe_paths: Vec<(&str, Option<usize>)> = Vec::new();
    for (i, (name, paths)) in by_identity.iter_mut().enumerate() {
        paths.sort_unstable();
        let template = if i % 2 == 0 { embeddings.get(paths[0]).map(|(e, _, _)| e.clone()) } else { None };
        let skip = usize::from(i % 2 == 0);
        // An enrolled identity whose gallery photo had no face is effectively not enrolled.
        let mate = template.as_ref().map(|_| people.len());
        if let Some(t) = template {
            people.push(Person { name: name.to_string(), templates: vec![t] });
        }
        probe_paths.extend(paths.iter().skip(skip).map(|p| (*p, mate)));
    }
    let matcher = Matcher::new(dim, &people);
    let probes = probe_paths
        .into_iter()
        .map(|(path, mate)| {
            let found = embeddings.get(path).and_then(|(e, _, _)| matcher.best_two(e));
            OpenSetProbe {
                mate,
                best: found.map(|((who, sim), _)| (who as usize, sim)),
                second: found.and_then(|(_, second)| second.map(|(_, s)| s)),
            }
        })
        .collect();
    (people.len(), probes)
}

fn quality_summaries(
    embeddings: &HashMap<&str, (Embedding, Source, Option<Quality>)>,
) -> BTreeMap<String, QualitySummary> {
    let limits = QualityLimits::default();
    let mut by_subset: BTreeMap<String, Vec<Quality>> = BTreeMap::new();
    for (path, (_, _, q)) in embeddings {
        if let Some(q) = q {
            by_subset.entry(top_folder(path).to_string()).or_default().push(*q);
        }
    }
    by_subset
        .into_iter()
        .map(|(subset, qs)| {
            let med = |f: &dyn Fn(&Quality) -> f32| median(&qs.iter().map(|q| f(q) as f64).collect::<Vec<_>>());
            let refused = qs.iter().filter(|q| !enrollment_problems(q, &limits).is_empty()).count();
            let summary = QualitySummary {
                faces: qs.len(),
                median_score: med(&|q| q.score),
                median_sharpness: med(&|q| q.sharpness),
                median_brightness: med(&|q| q.brightness),
                enroll_refused: refused as f64 / qs.len().max(1) as f64,
            };
            (subset, summary)
        })
        .collect()
}

/// Every number in the report by dotted name, for `--require`.
fn flatten(report: &EvalReport) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (subset, v) in &report.verification {
        out.insert(format!("{subset}.accuracy"), v.accuracy);
        out.insert(format!("{subset}.best_accuracy"), v.best_accuracy);
        out.insert(format!("{subset}.lost_pairs"), v.lost_pairs as f64);
        out.insert(format!("{subset}.tar"), v.true_accept_rate);
        out.insert(format!("{subset}.far"), v.false_accept_rate);
        for t in &v.tar_at_far {
            out.insert(format!("{subset}.tar_at_far_{}", far_label(t.far_target)), t.tar);
        }
    }
    out.insert("group.recall".into(), report.group.recall);
    out.insert("group.images_with_extra_faces".into(), report.group.images_with_extra_faces as f64);
    out.insert("noface.false_faces".into(), report.noface.detected_faces as f64);
    out.insert("unreadable_images".into(), report.unreadable_images.len() as f64);
    out.insert("open_set.fnir".into(), report.open_set.fnir);
    out.insert("open_set.fpir".into(), report.open_set.fpir);
    out.insert("open_set.lost_probes".into(), report.open_set.lost_probes as f64);
    for f in &report.open_set.fnir_at_fpir {
        out.insert(format!("open_set.fnir_at_fpir_{}", far_label(f.fpir_target)), f.fnir);
    }
    for (subset, q) in &report.quality {
        out.insert(format!("{subset}.enroll_refused"), q.enroll_refused);
    }
    out
}

fn far_label(far: f64) -> String {
    format!("{}", far * 100.0).replace('.', "_") + "pct"
}

pub(super) struct Requirement {
    text: String,
    key: String,
    at_least: bool,
    value: f64,
}

impl Requirement {
    pub(super) fn parse(text: &str) -> Result<Requirement> {
        let (key, at_least, value) = if let Some((k, v)) = text.split_once(">=") {
            (k, true, v)
        } else if let Some((k, v)) = text.split_once("<=") {
            (k, false, v)
        } else {
            bail!("--require `{text}`: write NAME>=VALUE or NAME<=VALUE, e.g. identity.accuracy>=0.985");
        };
        let value = value.trim().parse().with_context(|| format!("--require `{text}`: `{value}` is not a number"))?;
        Ok(Requirement { text: text.to_string(), key: key.trim().to_string(), at_least, value })
    }

    fn holds(&self, value: f64) -> bool {
        if self.at_least { value >= self.value } else { value <= self.value }
    }
}

fn print_report(r: &EvalReport) {
    println!(
        "facegate eval on {} ({} models, {} crops, min face {} px, enhance {:?}, flip {})",
        r.data, r.variant, r.crop, r.min_face, r.enhance, r.flip
    );
    for (subset, v) in &r.verification {
        println!(
            "\n{subset}/: {} pairs ({} same, {} different), {} lost to failed detection",
            v.pairs, v.same_pairs, v.different_pairs, v.lost_pairs
        );
        println!(
            "  at threshold {:.3}: accuracy {:.2}%  TAR {:.2}%  FAR {:.2}%",
            v.threshold,
            v.accuracy * 100.0,
            v.true_accept_rate * 100.0,
            v.false_accept_rate * 100.0
        );
        println!(
            "  best threshold on these pairs {:.3}: accuracy {:.2}% (tuned on this data)",
            v.best_threshold,
            v.best_accuracy * 100.0
        );
        for t in &v.tar_at_far {
            println!(
                "  TAR at FAR {:.1}%: {:.2}% (threshold {:.3}, FAR reached {:.2}%)",
                t.far_target * 100.0,
                t.tar * 100.0,
                t.threshold,
                t.far * 100.0
            );
        }
    }
    if r.whole_chip_fallbacks > 0 {
        println!(
            "\n{} chip(s) had no detectable face and were aligned on landmarks found in the whole chip",
            r.whole_chip_fallbacks
        );
    }
    println!(
        "\ngroup/: {} images, {} faces counted by eye, {} detected, recall {:.1}% (by count), {} image(s) with extra faces",
        r.group.images,
        r.group.expected_faces,
        r.group.detected_faces,
        r.group.recall * 100.0,
        r.group.images_with_extra_faces
    );
    println!("noface/: {} images, {} false face(s)", r.noface.images, r.noface.detected_faces);
    let o = &r.open_set;
    println!(
        "\nopen set (1:N; every other identity enrolled from its first photo): {} people enrolled, {} mated and {} non-mated probes, {} without a face",
        o.gallery_people, o.mated_probes, o.non_mated_probes, o.lost_probes
    );
    println!(
        "  at threshold {:.3}, margin {:.3}: FNIR {:.2}% (wrong person {:.2}%)  FPIR {:.2}%",
        o.threshold,
        o.margin,
        o.fnir * 100.0,
        o.wrong_person * 100.0,
        o.fpir * 100.0
    );
    for f in &o.fnir_at_fpir {
        println!(
            "  FNIR at FPIR {:.1}%: {:.2}% (threshold {:.3}, FPIR reached {:.2}%)",
            f.fpir_target * 100.0,
            f.fnir * 100.0,
            f.threshold,
            f.fpir * 100.0
        );
    }
    for (subset, q) in &r.quality {
        println!(
            "quality {subset}/: {} faces, median score {:.2} (sharpness {:.3}, brightness {:.0}), {:.1}% would be refused for enrolment",
            q.faces,
            q.median_score,
            q.median_sharpness,
            q.median_brightness,
            q.enroll_refused * 100.0
        );
    }
    let t = &r.timing;
    println!(
        "\nmedian per image: P-Net+pyramid {:.1} ms, R-Net {:.1} ms, O-Net {:.1} ms, align {:.2} ms, embed {:.1} ms, total {:.1} ms",
        t.pnet_ms, t.rnet_ms, t.onet_ms, t.align_ms, t.embed_ms, t.total_ms
    );
    if !r.unreadable_images.is_empty() {
        println!("unreadable images: {}", r.unreadable_images.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_parse_and_compare() {
        let r = Requirement::parse("identity.accuracy>=0.98").unwrap();
        assert!(r.holds(0.99) && !r.holds(0.97));
        let r = Requirement::parse("noface.false_faces <= 0").unwrap();
        assert!(r.holds(0.0) && !r.holds(1.0));
        assert!(Requirement::parse("identity.accuracy=0.9").is_err());
        assert!(Requirement::parse("x>=abc").is_err());
    }

    #[test]
    fn far_labels_are_stable_names() {
        assert_eq!(far_label(0.01), "1pct");
        assert_eq!(far_label(0.001), "0_1pct");
    }

    #[test]
    fn padding_adds_a_black_border() {
        let image = RgbImage::from_pixel(10, 20, image::Rgb([200, 200, 200]));
        let out = pad(&image, 0.5);
        assert_eq!(out.dimensions(), (20, 40));
        assert_eq!(out.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(out.get_pixel(10, 20).0, [200, 200, 200]);
        let inside = chip_box((10, 20), 0.5);
        assert_eq!((inside.x1, inside.y1, inside.x2, inside.y2), (5.0, 10.0, 15.0, 30.0));
        assert_eq!(out.get_pixel(inside.x1 as u32, inside.y1 as u32).0, [200, 200, 200]);
        assert_eq!(out.get_pixel(inside.x1 as u32 - 1, inside.y1 as u32).0, [0, 0, 0]);
    }
}
