//! `facegate bench`: per-stage and whole-pipeline medians on a 640x480 frame with one face and one
//! with a group, for each model variant and thread count, identify against synthetic galleries,
//! and peak memory. Medians, not means: one slow outlier should not move the figure.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use image::RgbImage;
use serde::Serialize;

use crate::capture::image_file::load_rgb;
use crate::config::Config;
use crate::gallery::Person;
use crate::gallery::matcher::{MatchPolicy, Matcher};
use crate::sysinfo::{median, peak_rss_bytes};
use crate::vision::embed::l2_normalised;
use crate::vision::models::{Manifest, Variant};
use crate::vision::mtcnn::StageTimes;
use crate::vision::pipeline::{FacePipeline, PipelineOptions};
use crate::vision::runtime::Runtime;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Photo with one face (fitted into a 640x480 frame). Default: a bundled fixture.
    #[arg(long, value_name = "IMG")]
    pub face: Option<PathBuf>,
    /// Photo with several faces (fitted into 640x480). Default: a bundled fixture.
    #[arg(long, value_name = "IMG")]
    pub group: Option<PathBuf>,
    /// Timed runs per measurement (after 3 warm-up runs).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Thread counts to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2])]
    pub thread_counts: Vec<usize>,
    /// Model variants to compare, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = super::parse_variant, default_values = ["fp32", "int8"])]
    pub variants: Vec<Variant>,
    /// Smallest face the detector looks for during the benchmark, in pixels.
    #[arg(long, default_value_t = 40.0)]
    pub detect_min_face: f32,
    /// Synthetic gallery sizes for the identify benchmark, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1_000, 10_000, 100_000])]
    pub gallery_sizes: Vec<usize>,
    /// Also run tools/reference/pipeline.py with this Python (e.g. `.cache/venv/bin/python`) on
    /// the same frames, alternating with facegate for `--rounds` rounds (fp32, 1 thread), and
    /// print both side by side with the ratio. Skips the variant/thread table.
    #[arg(long, value_name = "PYTHON")]
    pub reference: Option<PathBuf>,
    /// Rounds of facegate-then-reference for `--reference`.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Replay this MJPEG clip through whole-frame detection and through region reuse
    /// (`[detector.roi]`), and print the time and the faces region reuse missed (repeatable).
    /// Skips the variant/thread table.
    #[arg(long, value_name = "CLIP")]
    pub roi_clip: Vec<PathBuf>,
    /// Override `[runtime] arena` for this run (compare peak RSS in separate runs).
    #[arg(long, value_name = "BOOL")]
    pub arena: Option<bool>,
    /// Override `[runtime] memory_pattern` for this run.
    #[arg(long, value_name = "BOOL")]
    pub memory_pattern: Option<bool>,
    /// Override `[runtime] embed_threads` (the embedder's own thread count) for this run.
    #[arg(long, value_name = "N")]
    pub embed_threads: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct PipelineFigures {
    frame: String,
    variant: String,
    threads: usize,
    faces: usize,
    pnet_ms: f64,
    rnet_ms: f64,
    onet_ms: f64,
    align_ms: f64,
    embed_ms: f64,
    match_10k_ms: f64,
    total_ms: f64,
    /// Model calls per frame (P-Net levels + R-Net batches + O-Net batches + embedder batches).
    model_calls: u32,
    /// Candidates per stage: pyramid levels, R-Net rows, O-Net rows, faces embedded.
    pnet_levels: u32,
    rnet_rows: u32,
    onet_rows: u32,
    embed_rows: u32,
}

#[derive(Debug, Serialize)]
struct IdentifyFigures {
    templates: usize,
    median_ms: f64,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    iterations: usize,
    detect_min_face: f32,
    pipeline: Vec<PipelineFigures>,
    identify: Vec<IdentifyFigures>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    side_by_side: Vec<super::bench_compare::SideBySide>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roi: Vec<super::bench_compare::RoiFigures>,
    arena: bool,
    memory_pattern: bool,
    peak_rss_mib_models_loaded: f64,
    peak_rss_mib_end: f64,
    /// Median ms to score one face of the one-face frame with every liveness model (crop + run).
    liveness_ms_per_face: Option<f64>,
    /// Median ms per face for age, gender and expression (crops + the three models): the
    /// one-face frame, and the group frame's faces in one batch divided by their number.
    attributes_ms_per_face: Option<f64>,
    attributes_ms_per_face_group: Option<f64>,
}

/// Median attribute cost per face on `frame`'s faces, all in one call (None when the manifest
/// has no attribute models or the frame no face).
fn bench_attributes(
    runtime: &Runtime,
    manifest: &Manifest,
    config: &Config,
    frame: &RgbImage,
    iterations: usize,
) -> Result<Option<f64>> {
    let Ok(mut attributes) = crate::vision::attributes::Attributes::load(runtime, manifest) else { return Ok(None) };
    let mut detector = crate::vision::pipeline::load_detector(runtime, manifest, config.models.variant)?;
    let (faces, _) = detector.detect(frame, &config.detector)?;
    if faces.is_empty() {
        return Ok(None);
    }
    let mut samples = Vec::new();
    for i in 0..iterations + 3 {
        let (r, ms) = time_ms(|| attributes.analyze(frame, &faces));
        r?;
        if i >= 3 {
            samples.push(ms / faces.len() as f64);
        }
    }
    Ok(Some(median(&samples)))
}

/// Median liveness cost per face on `frame` (None when the manifest has no liveness model).
fn bench_liveness(
    runtime: &Runtime,
    manifest: &Manifest,
    config: &Config,
    frame: &RgbImage,
    iterations: usize,
) -> Result<Option<f64>> {
    let Ok(mut liveness) = crate::vision::liveness::Liveness::load(runtime, manifest, None) else { return Ok(None) };
    let mut detector = crate::vision::pipeline::load_detector(runtime, manifest, config.models.variant)?;
    let (detections, _) = detector.detect(frame, &config.detector)?;
    let boxes: Vec<_> = detections.iter().map(|d| d.bbox).take(1).collect();
    if boxes.is_empty() {
        return Ok(None);
    }
    let mut samples = Vec::new();
    for i in 0..iterations + 3 {
        let (r, ms) = time_ms(|| liveness.score(frame, &boxes));
        r?;
        if i >= 3 {
            samples.push(ms);
        }
    }
    Ok(Some(median(&samples)))
}

/// Fits an image into a black 640x480 frame, keeping its aspect ratio.
pub fn fit_frame(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let ratio = (640.0 / w as f32).min(480.0 / h as f32);
    let (nw, nh) = (((w as f32 * ratio) as u32).max(1), ((h as f32 * ratio) as u32).max(1));
    let resized = image::imageops::resize(image, nw, nh, image::imageops::FilterType::Triangle);
    let mut frame = RgbImage::new(640, 480);
    image::imageops::replace(&mut frame, &resized, ((640 - nw) / 2) as i64, ((480 - nh) / 2) as i64);
    frame
}

/// Deterministic pseudo-random unit vectors (SplitMix64) standing in for enrolled templates.
fn synthetic_people(count: usize, dim: usize) -> Vec<Person> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..count)
        .map(|i| Person {
            name: format!("synthetic-{i}"),
            templates: vec![l2_normalised(&(0..dim).map(|_| next()).collect::<Vec<_>>())],
        })
        .collect()
}

fn time_ms<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64() * 1e3)
}

/// Per-stage samples of one frame: P-Net, R-Net, O-Net, align, embed, match, total (ms).
pub(super) type StageSamples = [Vec<f64>; 7];

/// Times the whole pipeline on one frame `iterations` times after 3 warm-ups; returns the samples,
/// the faces found and the detector's calls and candidates (the same every run).
pub(super) fn bench_frame(
    pipeline: &mut FacePipeline,
    frame: &RgbImage,
    matcher: &Matcher,
    policy: &MatchPolicy,
    iterations: usize,
) -> Result<(StageSamples, usize, StageTimes)> {
    let mut samples: StageSamples = Default::default();
    let mut faces = 0;
    let mut counts = StageTimes::default();
    for i in 0..iterations + 3 {
        let start = Instant::now();
        let (detections, stages) = pipeline.detect(frame)?;
        let (crops, align_ms) = time_ms(|| detections.iter().map(|d| pipeline.crop(frame, d)).collect::<Vec<_>>());
        let (embeddings, embed_ms) = time_ms(|| pipeline.embed_crops(&crops));
        let embeddings = embeddings?;
        let (_, match_ms) = time_ms(|| embeddings.iter().map(|e| matcher.identify(e, policy)).collect::<Vec<_>>());
        let total = start.elapsed().as_secs_f64() * 1e3;
        faces = detections.len();
        counts = stages;
        if i >= 3 {
            for (k, v) in [stages.pnet_ms, stages.rnet_ms, stages.onet_ms, align_ms, embed_ms, match_ms, total]
                .into_iter()
                .enumerate()
            {
                samples[k].push(v);
            }
        }
    }
    Ok((samples, faces, counts))
}

pub fn run(config: &Config, args: BenchArgs) -> Result<i32> {
    let fixtures = crate::paths::project_root().join("tests/fixtures");
    let face_path = args.face.clone().unwrap_or_else(|| fixtures.join(super::demo::BENCH_FACE));
    let group_path = args.group.clone().unwrap_or_else(|| fixtures.join(super::demo::BENCH_GROUP));
    let frames = [
        ("one face", fit_frame(&load_rgb(&face_path).with_context(|| "bench --face")?)),
        ("group", fit_frame(&load_rgb(&group_path).with_context(|| "bench --group")?)),
    ];
    let mut runtime = Runtime::load(config.runtime.clone())?;
    let (arena, memory_pattern) =
        (args.arena.unwrap_or(config.runtime.arena), args.memory_pattern.unwrap_or(config.runtime.memory_pattern));
    runtime.set_allocators(arena, memory_pattern);
    if args.embed_threads.is_some() {
        runtime.set_embed_threads(args.embed_threads);
    }
    let manifest = Manifest::load(&config.models_dir())?;
    let dim = manifest.entry(crate::vision::models::Role::Embedder, Variant::Fp32)?.dim.unwrap_or(192);
    let gallery_10k = Matcher::new(dim, &synthetic_people(10_000, dim));
    let policy = crate::engine::match_policy(
        &config.matching,
        manifest.entry(crate::vision::models::Role::Embedder, Variant::Fp32)?,
    )?;
    let mut pipeline_figures = Vec::new();
    let mut rss_models = 0.0;
    let mut side_by_side = Vec::new();
    let mut roi = Vec::new();
    let table = args.reference.is_none() && args.roi_clip.is_empty();
    if let Some(python) = &args.reference {
        runtime.set_intra_threads(1);
        let mut detector = config.detector.clone();
        detector.min_face = args.detect_min_face;
        let options = PipelineOptions {
            variant: Variant::Fp32,
            detector,
            crop: config.matching.crop,
            enhance: config.matching.enhance,
            flip: config.matching.flip,
        };
        let mut pipeline = FacePipeline::load(&runtime, &manifest, options)?;
        side_by_side = super::bench_compare::side_by_side(
            &mut pipeline,
            &frames,
            python,
            &super::bench_compare::Rounds {
                rounds: args.rounds.max(1),
                iterations: args.iterations.max(1),
                min_face: args.detect_min_face,
            },
            |pipeline, frame| bench_frame(pipeline, frame, &gallery_10k, &policy, args.iterations.max(1)),
        )?;
        rss_models = peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);
    }
    if !args.roi_clip.is_empty() {
        runtime.set_intra_threads(1);
        let options = PipelineOptions {
            variant: config.models.variant,
            detector: config.detector.clone(),
            crop: config.matching.crop,
            enhance: config.matching.enhance,
            flip: config.matching.flip,
        };
        let mut pipeline = FacePipeline::load(&runtime, &manifest, options)?;
        for clip in &args.roi_clip {
            roi.push(super::bench_compare::roi_replay(&mut pipeline, clip, &config.detector)?);
        }
        if rss_models == 0.0 {
            rss_models = peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);
        }
    }
    let variants = if table { args.variants.clone() } else { Vec::new() };
    for &variant in &variants {
        for &threads in &args.thread_counts {
            runtime.set_intra_threads(threads);
            let mut detector = config.detector.clone();
            detector.min_face = args.detect_min_face;
            let options = PipelineOptions {
                variant,
                detector,
                crop: config.matching.crop,
                enhance: config.matching.enhance,
                flip: config.matching.flip,
            };
            let mut pipeline = FacePipeline::load(&runtime, &manifest, options)?;
            for (name, frame) in &frames {
                let (s, faces, c) = bench_frame(&mut pipeline, frame, &gallery_10k, &policy, args.iterations.max(1))?;
                pipeline_figures.push(PipelineFigures {
                    frame: name.to_string(),
                    variant: variant.to_string(),
                    threads,
                    faces,
                    pnet_ms: median(&s[0]),
                    rnet_ms: median(&s[1]),
                    onet_ms: median(&s[2]),
                    align_ms: median(&s[3]),
                    embed_ms: median(&s[4]),
                    match_10k_ms: median(&s[5]),
                    total_ms: median(&s[6]),
                    model_calls: c.pnet_calls + c.rnet_calls + c.onet_calls + u32::from(faces > 0),
                    pnet_levels: c.pnet_calls,
                    rnet_rows: c.rnet_rows,
                    onet_rows: c.onet_rows,
                    embed_rows: faces as u32,
                });
            }
            if rss_models == 0.0 {
                rss_models = peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0);
            }
        }
    }
    drop(gallery_10k);
    runtime.set_intra_threads(config.runtime.intra_threads);
    let liveness_ms_per_face = bench_liveness(&runtime, &manifest, config, &frames[0].1, args.iterations.max(1))?;
    let attributes_ms_per_face = bench_attributes(&runtime, &manifest, config, &frames[0].1, args.iterations.max(1))?;
    let attributes_ms_per_face_group =
        bench_attributes(&runtime, &manifest, config, &frames[1].1, args.iterations.max(1))?;
    let probe = synthetic_people(1, dim).remove(0).templates.remove(0);
    let mut identify = Vec::new();
    let sizes = if table { args.gallery_sizes.clone() } else { Vec::new() };
    for &size in &sizes {
        let matcher = Matcher::new(dim, &synthetic_people(size, dim));
        let samples: Vec<f64> =
            (0..args.iterations.max(5)).map(|_| time_ms(|| matcher.identify(&probe, &policy)).1).collect();
        identify.push(IdentifyFigures { templates: size, median_ms: median(&samples) });
    }
    let report = BenchReport {
        iterations: args.iterations,
        detect_min_face: args.detect_min_face,
        pipeline: pipeline_figures,
        identify,
        side_by_side,
        roi,
        arena,
        memory_pattern,
        peak_rss_mib_models_loaded: rss_models,
        peak_rss_mib_end: peak_rss_bytes().unwrap_or(0) as f64 / (1024.0 * 1024.0),
        liveness_ms_per_face,
        attributes_ms_per_face,
        attributes_ms_per_face_group,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(0)
}

fn print_report(r: &BenchReport) {
    println!(
        "facegate bench: medians of {} runs, min face {} px, 640x480 frames, arena {}, memory pattern {}",
        r.iterations,
        r.detect_min_face,
        if r.arena { "on" } else { "off" },
        if r.memory_pattern { "on" } else { "off" }
    );
    super::bench_compare::print_side_by_side(&r.side_by_side);
    super::bench_compare::print_roi(&r.roi);
    if !r.pipeline.is_empty() {
        print_table(r);
    }
    for i in &r.identify {
        println!("identify in {:>7} templates: {:.3} ms", i.templates, i.median_ms);
    }
    println!("peak RSS with models loaded and frames run: {:.0} MiB", r.peak_rss_mib_models_loaded);
    println!("peak RSS at the end: {:.0} MiB", r.peak_rss_mib_end);
}

fn print_table(r: &BenchReport) {
    println!(
        "{:<9} {:<5} {:>3} {:>5} | {:>8} {:>7} {:>7} {:>6} {:>7} {:>9} | {:>8} | {:>5} {:>17}",
        "frame",
        "model",
        "thr",
        "faces",
        "pyr+PNet",
        "R-Net",
        "O-Net",
        "align",
        "embed",
        "match10k",
        "total",
        "calls",
        "rows P/R/O/E"
    );
    for p in &r.pipeline {
        println!(
            "{:<9} {:<5} {:>3} {:>5} | {:>8.2} {:>7.2} {:>7.2} {:>6.2} {:>7.2} {:>9.3} | {:>8.2} | {:>5} {:>17}",
            p.frame,
            p.variant,
            p.threads,
            p.faces,
            p.pnet_ms,
            p.rnet_ms,
            p.onet_ms,
            p.align_ms,
            p.embed_ms,
            p.match_10k_ms,
            p.total_ms,
            p.model_calls,
            format!("{}/{}/{}/{}", p.pnet_levels, p.rnet_rows, p.onet_rows, p.embed_rows)
        );
    }
    println!(
        "(all times in ms; total = detect + align + embed + identify in a 10k gallery; calls = ONNX Runtime \
         runs per frame; rows = pyramid levels, R-Net and O-Net candidates, faces embedded)"
    );
    match r.liveness_ms_per_face {
        Some(ms) => println!("liveness (every liveness model and view, crop + run) per face: {ms:.2} ms"),
        None => println!("liveness: no liveness model in the manifest (or no face in the one-face frame)"),
    }
    match (r.attributes_ms_per_face, r.attributes_ms_per_face_group) {
        (Some(one), group) => println!(
            "attributes (age + gender + expression, crops + run) per face: {one:.2} ms alone{}",
            group.map(|g| format!(", {g:.2} ms in the group frame's batch")).unwrap_or_default()
        ),
        _ => println!("attributes: no attribute models in the manifest (or no face in the one-face frame)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_640x480_and_keeps_aspect() {
        let tall = RgbImage::from_pixel(100, 400, image::Rgb([255, 255, 255]));
        let frame = fit_frame(&tall);
        assert_eq!(frame.dimensions(), (640, 480));
        assert_eq!(frame.get_pixel(0, 240).0, [0, 0, 0]);
        assert_eq!(frame.get_pixel(320, 240).0, [255, 255, 255]);
    }

    #[test]
    fn synthetic_people_are_unit_and_distinct() {
        let people = synthetic_people(3, 192);
        let a = &people[0].templates[0];
        assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        assert_ne!(people[0].templates, people[1].templates);
    }
}
