//! The comparative parts of `facegate bench`: facegate against the Python reference
//! (`tools/reference/pipeline.py`) back to back on the very same frames, and region reuse
//! against whole-frame scans on a replayed clip (time and the faces it missed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use serde::Serialize;

use super::bench::StageSamples;
use crate::capture::mjpeg::{Chunk, MjpegSplitter};
use crate::capture::pixfmt::mjpeg_to_rgb;
use crate::sysinfo::median;
use crate::vision::bbox::BBox;
use crate::vision::mtcnn::{DetectorParams, StageTimes};
use crate::vision::pipeline::FacePipeline;
use crate::vision::regions::{Plan, RegionPlanner};

/// How the side-by-side runs.
pub struct Rounds {
    pub rounds: usize,
    pub iterations: usize,
    pub min_face: f32,
}

/// One implementation's medians on one frame (medians over rounds of each round's median).
#[derive(Debug, Clone, Serialize)]
pub struct ImplFigures {
    pub pnet_ms: f64,
    pub rnet_ms: f64,
    pub onet_ms: f64,
    pub align_ms: f64,
    pub embed_ms: f64,
    pub total_ms: f64,
    /// Faces found.
    pub faces: usize,
    /// Calls / rows per model: P-Net, R-Net, O-Net, embedder.
    pub calls: [u32; 4],
    pub rows: [u32; 4],
    /// Total of each round (ms), in order.
    pub rounds_total_ms: Vec<f64>,
}

/// facegate and the reference on one frame.
#[derive(Debug, Clone, Serialize)]
pub struct SideBySide {
    pub frame: String,
    pub facegate: ImplFigures,
    pub reference: ImplFigures,
    /// facegate / reference per round, and their median: the headline figure.
    pub ratio_rounds: Vec<f64>,
    pub ratio: f64,
    /// The reference's time inside `session.run()` (all four models), median over rounds.
    pub reference_onnxruntime_ms: f64,
    /// Median over rounds of (reference time inside ONNX Runtime / reference total): the ratio
    /// facegate would reach if it spent nothing outside ONNX Runtime and, making the same model
    /// calls on the same rows, the same time inside it. The ratio cannot go below it.
    pub ratio_floor: f64,
}

fn write_frames(frames: &[(&str, RgbImage)]) -> Result<(PathBuf, Vec<PathBuf>)> {
    let dir = std::env::temp_dir().join(format!("facegate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut paths = Vec::new();
    for (i, (_, frame)) in frames.iter().enumerate() {
        let path = dir.join(format!("frame{i}.png"));
        frame.save(&path).with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok((dir, paths))
}

fn run_reference(python: &Path, paths: &[PathBuf], rounds: &Rounds) -> Result<Vec<serde_json::Value>> {
    let script = crate::paths::project_root().join("tools/reference/pipeline.py");
    let output = Command::new(python)
        .arg(&script)
        .args(["bench", "--json", "--threads", "1"])
        .args(["--runs", &rounds.iterations.to_string(), "--min-face", &rounds.min_face.to_string()])
        .args(paths)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (bench --reference wants a Python with onnxruntime==1.31.1, numpy and \
                 opencv-python-headless; see tools/reference/make_parity.py)",
                python.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "the reference {} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("the reference printed something other than its JSON report")?;
    let frames = report["frames"].as_array().cloned().unwrap_or_default();
    if frames.len() != paths.len() {
        bail!("the reference reported {} frames, expected {}", frames.len(), paths.len());
    }
    Ok(frames)
}

fn stage(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn med(rounds: &[[f64; 6]], k: usize) -> f64 {
    median(&rounds.iter().map(|r| r[k]).collect::<Vec<_>>())
}

fn figures(rounds: &[[f64; 6]], faces: usize, calls: [u32; 4], rows: [u32; 4]) -> ImplFigures {
    ImplFigures {
        pnet_ms: med(rounds, 0),
        rnet_ms: med(rounds, 1),
        onet_ms: med(rounds, 2),
        align_ms: med(rounds, 3),
        embed_ms: med(rounds, 4),
        total_ms: med(rounds, 5),
        faces,
        calls,
        rows,
        rounds_total_ms: rounds.iter().map(|r| r[5]).collect(),
    }
}

/// Runs facegate and then the reference on every frame, `rounds.rounds` times in turn, so both
/// see the same machine load; `bench` times facegate's pipeline on one frame.
pub fn side_by_side(
    pipeline: &mut FacePipeline,
    frames: &[(&str, RgbImage)],
    python: &Path,
    rounds: &Rounds,
    mut bench: impl FnMut(&mut FacePipeline, &RgbImage) -> Result<(StageSamples, usize, StageTimes)>,
) -> Result<Vec<SideBySide>> {
    let (dir, paths) = write_frames(frames)?;
    let n = frames.len();
    let mut ours: Vec<Vec<[f64; 6]>> = vec![Vec::new(); n];
    let mut theirs: Vec<Vec<[f64; 6]>> = vec![Vec::new(); n];
    let mut our_counts = vec![(0, StageTimes::default()); n];
    let mut their_counts = vec![(0usize, [0u32; 4], [0u32; 4]); n];
    let mut their_onnxruntime: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut round = || -> Result<()> {
        for (i, (_, frame)) in frames.iter().enumerate() {
            let (s, faces, c) = bench(pipeline, frame)?;
            // Total without the identify step, which the reference does not do.
            let total: Vec<f64> = (0..s[6].len()).map(|k| s[6][k] - s[5][k]).collect();
            ours[i].push([median(&s[0]), median(&s[1]), median(&s[2]), median(&s[3]), median(&s[4]), median(&total)]);
            our_counts[i] = (faces, c);
        }
        for (i, r) in run_reference(python, &paths, rounds)?.iter().enumerate() {
            theirs[i].push([
                stage(r, "pnet_ms"),
                stage(r, "rnet_ms"),
                stage(r, "onet_ms"),
                stage(r, "align_ms"),
                stage(r, "embed_ms"),
                stage(r, "total_ms"),
            ]);
            their_onnxruntime[i].push(stage(r, "ort_detect_ms") + stage(r, "ort_embed_ms"));
            let count = |m: &str, k: &str| r["counts"][m][k].as_u64().unwrap_or(0) as u32;
            let models = ["pnet", "rnet", "onet", "embed"];
            their_counts[i] = (
                r["faces"].as_u64().unwrap_or(0) as usize,
                models.map(|m| count(m, "calls")),
                models.map(|m| count(m, "rows")),
            );
        }
        Ok(())
    };
    let result = (0..rounds.rounds).try_for_each(|_| round());
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    Ok((0..n)
        .map(|i| {
            let (faces, c) = our_counts[i];
            let embed_calls = u32::from(faces > 0);
            let facegate = figures(
                &ours[i],
                faces,
                [c.pnet_calls, c.rnet_calls, c.onet_calls, embed_calls],
                [c.pnet_calls, c.rnet_rows, c.onet_rows, faces as u32],
            );
            let (tf, tc, tr) = their_counts[i];
            let reference = figures(&theirs[i], tf, tc, tr);
            let ratio_rounds: Vec<f64> =
                ours[i].iter().zip(&theirs[i]).map(|(a, b)| if b[5] > 0.0 { a[5] / b[5] } else { f64::NAN }).collect();
            let floor_rounds: Vec<f64> = their_onnxruntime[i]
                .iter()
                .zip(&theirs[i])
                .map(|(inside, b)| if b[5] > 0.0 { inside / b[5] } else { f64::NAN })
                .collect();
            SideBySide {
                frame: frames[i].0.to_string(),
                ratio: median(&ratio_rounds),
                ratio_rounds,
                reference_onnxruntime_ms: median(&their_onnxruntime[i]),
                ratio_floor: median(&floor_rounds),
                facegate,
                reference,
            }
        })
        .collect())
}

pub fn print_side_by_side(rows: &[SideBySide]) {
    if rows.is_empty() {
        return;
    }
    println!("side by side (fp32, 1 thread; facegate then tools/reference/pipeline.py, alternating per round):");
    println!(
        "{:<9} {:<9} {:>5} | {:>8} {:>7} {:>7} {:>6} {:>7} | {:>8} | {:>15} {:>15}",
        "frame",
        "impl",
        "faces",
        "pyr+PNet",
        "R-Net",
        "O-Net",
        "align",
        "embed",
        "total",
        "calls P/R/O/E",
        "rows P/R/O/E"
    );
    for r in rows {
        for (name, f) in [("facegate", &r.facegate), ("reference", &r.reference)] {
            println!(
                "{:<9} {:<9} {:>5} | {:>8.2} {:>7.2} {:>7.2} {:>6.2} {:>7.2} | {:>8.2} | {:>15} {:>15}",
                r.frame,
                name,
                f.faces,
                f.pnet_ms,
                f.rnet_ms,
                f.onet_ms,
                f.align_ms,
                f.embed_ms,
                f.total_ms,
                f.calls.map(|c| c.to_string()).join("/"),
                f.rows.map(|c| c.to_string()).join("/"),
            );
        }
        let per_round: Vec<String> = r.ratio_rounds.iter().map(|x| format!("{x:.2}")).collect();
        println!("{:<9} ratio facegate/reference {:.2}x (rounds: {})", r.frame, r.ratio, per_round.join(", "));
        println!(
            "{:<9} reference inside onnxruntime {:.2} ms of {:.2} ms: same model calls, so facegate's floor is {:.2}x",
            r.frame, r.reference_onnxruntime_ms, r.reference.total_ms, r.ratio_floor
        );
    }
    println!("(total = detect + align + embed, no identify; medians over rounds of each round's median)");
}

/// Region reuse against whole-frame scans on one clip.
#[derive(Debug, Clone, Serialize)]
pub struct RoiFigures {
    pub clip: String,
    pub frames: usize,
    /// Median detection time per frame, whole-frame scans vs region reuse (ms).
    pub full_ms: f64,
    pub roi_ms: f64,
    /// Model calls and R-Net candidates per frame (medians), whole vs region reuse.
    pub full_calls: f64,
    pub roi_calls: f64,
    pub full_rnet_rows: f64,
    pub roi_rnet_rows: f64,
    /// Frames region reuse scanned whole.
    pub roi_full_scans: usize,
    /// Faces (summed over frames) found by whole-frame scans; of those, missed with region reuse.
    pub face_frames: usize,
    pub missed: usize,
    /// Faces region reuse found that whole scans did not.
    pub extra: usize,
    /// The longest run of consecutive frames with a miss (how much later a face is found).
    pub longest_miss_run: usize,
}

/// The clip's JPEG frames, still compressed (decoded one at a time, so a long clip does not
/// inflate the peak RSS the benchmark reports).
fn load_clip(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data = std::fs::read(path).with_context(|| {
        format!(
            "cannot read {}; make the moving-group clip with `cargo run --release --example make_group_clip`",
            path.display()
        )
    })?;
    let mut frames = Vec::new();
    for chunk in MjpegSplitter::new(&data) {
        if let Chunk::Frame(jpeg) = chunk {
            frames.push(jpeg.to_vec());
        }
        if frames.len() >= 5_000 {
            bail!("{}: more than 5,000 frames; use a shorter clip", path.display());
        }
    }
    if frames.is_empty() {
        bail!("{}: no JPEG frames found (expected MJPEG: JPEG images back to back)", path.display());
    }
    Ok(frames)
}

/// Replays a clip twice: every frame scanned whole, then planned by [`RegionPlanner`].
pub fn roi_replay(pipeline: &mut FacePipeline, clip: &Path, params: &DetectorParams) -> Result<RoiFigures> {
    let frames = load_clip(clip)?;
    let mut roi_params = params.roi.clone();
    roi_params.enabled = true;
    let mut full: Vec<Vec<BBox>> = Vec::new();
    let (mut full_ms, mut full_calls, mut full_rows) = (Vec::new(), Vec::new(), Vec::new());
    // A warm-up so the first timed frame does not pay for first-run allocations.
    pipeline.detect(&mjpeg_to_rgb(&frames[0])?)?;
    for jpeg in &frames {
        let frame = &mjpeg_to_rgb(jpeg)?;
        let t = Instant::now();
        let (found, st) = pipeline.detect(frame)?;
        full_ms.push(t.elapsed().as_secs_f64() * 1e3);
        full_calls.push(f64::from(st.pnet_calls + st.rnet_calls + st.onet_calls));
        full_rows.push(f64::from(st.rnet_rows));
        full.push(found.iter().map(|d| d.bbox).collect());
    }
    let mut planner = RegionPlanner::new(roi_params);
    let (mut roi_ms, mut roi_calls, mut roi_rows) = (Vec::new(), Vec::new(), Vec::new());
    let (mut scans, mut missed, mut extra, mut run, mut longest, mut face_frames) = (0, 0, 0, 0, 0, 0);
    for (jpeg, expected) in frames.iter().zip(&full) {
        let frame = &mjpeg_to_rgb(jpeg)?;
        let t = Instant::now();
        let plan = planner.plan(0, frame, params.min_face);
        let (found, st) = match &plan {
            Plan::Full => pipeline.detect(frame)?,
            Plan::Windows(w) => pipeline.detect_windows(frame, w)?,
        };
        let boxes: Vec<BBox> = found.iter().map(|d| d.bbox).collect();
        planner.observe(0, &plan, &boxes);
        roi_ms.push(t.elapsed().as_secs_f64() * 1e3);
        roi_calls.push(f64::from(st.pnet_calls + st.rnet_calls + st.onet_calls));
        roi_rows.push(f64::from(st.rnet_rows));
        scans += usize::from(plan == Plan::Full);
        face_frames += expected.len();
        let miss = expected.iter().filter(|e| !boxes.iter().any(|b| b.iou(e) >= 0.5)).count();
        extra += boxes.iter().filter(|b| !expected.iter().any(|e| e.iou(b) >= 0.5)).count();
        missed += miss;
        run = if miss > 0 { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    Ok(RoiFigures {
        clip: clip.display().to_string(),
        frames: frames.len(),
        full_ms: median(&full_ms),
        roi_ms: median(&roi_ms),
        full_calls: median(&full_calls),
        roi_calls: median(&roi_calls),
        full_rnet_rows: median(&full_rows),
        roi_rnet_rows: median(&roi_rows),
        roi_full_scans: scans,
        face_frames,
        missed,
        extra,
        longest_miss_run: longest,
    })
}

pub fn print_roi(rows: &[RoiFigures]) {
    for r in rows {
        println!(
            "region reuse on {} ({} frames, 1 thread): detect median {:.2} ms whole-frame vs {:.2} ms with reuse \
             ({} whole scans); model calls {:.0} vs {:.0}, R-Net candidates {:.0} vs {:.0} per frame (medians); \
             faces: {} face-frames found by whole scans, {} missed with reuse (longest run {} frames), {} extra",
            r.clip,
            r.frames,
            r.full_ms,
            r.roi_ms,
            r.roi_full_scans,
            r.full_calls,
            r.roi_calls,
            r.full_rnet_rows,
            r.roi_rnet_rows,
            r.face_frames,
            r.missed,
            r.longest_miss_run,
            r.extra
        );
    }
}
