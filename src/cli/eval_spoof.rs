//! `facegate eval --spoof DIR`: presentation-attack detection figures on a folder in the
//! spoof-dev format (`manifest.csv`: `path,label,kind,...,note`; label `live` or `spoof`).
//!
//! Figures follow ISO/IEC 30107-3: APCER = attacks accepted as live / attacks, BPCER = live faces
//! rejected / live faces, ACER = their mean. Each image is judged by its largest face; an image
//! where no face is found is counted apart (`no_face`), never as a pass or a rejection. Rows whose
//! note says `tight_crop` are also reported apart (`crops`), since a crop leaves a model that wants
//! context around the face little to see.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::eval::{Requirement, check, read_csv};
use super::liveness::LivenessTools;
use crate::capture::image_file::load_rgb;
use crate::config::Config;
use crate::sysinfo::median;

#[derive(Debug, Deserialize)]
struct Row {
    path: String,
    label: String,
    kind: String,
    #[serde(default)]
    note: String,
}

/// One judged image: its score (largest face) and whether it is an attack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub score: f32,
    pub attack: bool,
}

/// APCER / BPCER / ACER of a set of scored images at one threshold (a score >= it passes).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rates {
    pub attacks: usize,
    pub live: usize,
    pub apcer: f64,
    pub bpcer: f64,
    pub acer: f64,
}

pub fn rates(scored: &[Scored], threshold: f32) -> Rates {
    let attacks = scored.iter().filter(|s| s.attack).count();
    let live = scored.len() - attacks;
    let accepted = scored.iter().filter(|s| s.attack && s.score >= threshold).count();
    let rejected = scored.iter().filter(|s| !s.attack && s.score < threshold).count();
    let frac = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let (apcer, bpcer) = (frac(accepted, attacks), frac(rejected, live));
    Rates { attacks, live, apcer, bpcer, acer: (apcer + bpcer) / 2.0 }
}

/// APCER at the highest threshold whose BPCER stays at or below `bpcer_target`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApcerAtBpcer {
    pub bpcer_target: f64,
    pub threshold: f32,
    pub apcer: f64,
    pub bpcer: f64,
}

pub fn apcer_at_bpcer(scored: &[Scored], bpcer_target: f64) -> Option<ApcerAtBpcer> {
    let mut live: Vec<f32> = scored.iter().filter(|s| !s.attack).map(|s| s.score).collect();
    if live.is_empty() {
        return None;
    }
    live.sort_by(f32::total_cmp);
    // Rejecting the k lowest live scores: threshold = the (k+1)-th lowest live score.
    let k = ((bpcer_target * live.len() as f64) + 1e-9).floor() as usize;
    let threshold = live[k.min(live.len() - 1)];
    let r = rates(scored, threshold);
    Some(ApcerAtBpcer { bpcer_target, threshold, apcer: r.apcer, bpcer: r.bpcer })
}

/// `(bpcer, apcer)` at every distinct score: the DET curve.
pub fn det_curve(scored: &[Scored]) -> Vec<(f64, f64)> {
    let mut thresholds: Vec<f32> = scored.iter().map(|s| s.score).collect();
    thresholds.push(f32::INFINITY);
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    thresholds
        .into_iter()
        .map(|t| {
            let r = rates(scored, t);
            (r.bpcer, r.apcer)
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct KindReport {
    images: usize,
    no_face: usize,
    /// Attack kinds: attacks accepted as live; `live`: live faces rejected.
    error_rate: f64,
}

#[derive(Debug, Serialize)]
struct SpoofReport {
    data: String,
    threshold: f32,
    apcer: f64,
    bpcer: f64,
    acer: f64,
    attacks: usize,
    live: usize,
    no_face: usize,
    unreadable: usize,
    per_kind: BTreeMap<String, KindReport>,
    full_frames: Rates,
    crops: Rates,
    full_frames_apcer_at_bpcer: Vec<ApcerAtBpcer>,
    apcer_at_bpcer: Vec<ApcerAtBpcer>,
    liveness_ms_median: f64,
}

pub fn run(config: &Config, root: &Path, json: bool, det: Option<&Path>, requirements: &[Requirement]) -> Result<i32> {
    let mut tools = LivenessTools::open(config)?;
    let threshold = tools.liveness.threshold();
    let rows: Vec<Row> = read_csv(&root.join("manifest.csv"))?;
    let mut per_kind: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let (mut all, mut full, mut crops) = (Vec::new(), Vec::new(), Vec::new());
    let (mut no_face, mut unreadable, mut times) = (0, 0, Vec::new());
    for row in &rows {
        let attack = match row.label.as_str() {
            "live" => false,
            "spoof" => true,
            other => anyhow::bail!(
                "{}: row {}: label `{other}` is neither `live` nor `spoof`; fix the manifest",
                root.join("manifest.csv").display(),
                row.path
            ),
        };
        let entry = per_kind.entry(row.kind.clone()).or_default();
        entry.0 += 1;
        let image = match load_rgb(&root.join(&row.path)) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("skipped: {e}");
                unreadable += 1;
                continue;
            }
        };
        let t = std::time::Instant::now();
        let faces = tools.faces(&image, config).with_context(|| row.path.clone())?;
        let Some(&(_, score)) =
            faces.iter().max_by(|a, b| (a.0.width() * a.0.height()).total_cmp(&(b.0.width() * b.0.height())))
        else {
            no_face += 1;
            entry.1 += 1;
            continue;
        };
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if (score >= threshold) == attack {
            entry.2 += 1;
        }
        let s = Scored { score, attack };
        all.push(s);
        if row.note.contains("tight_crop") {
            crops.push(s)
        } else {
            full.push(s)
        }
        log::debug!("{} {} {score:.4}", row.path, row.kind);
    }
    let overall = rates(&all, threshold);
    let report = SpoofReport {
        data: root.display().to_string(),
        threshold,
        apcer: overall.apcer,
        bpcer: overall.bpcer,
        acer: overall.acer,
        attacks: overall.attacks,
        live: overall.live,
        no_face,
        unreadable,
        per_kind: per_kind
            .into_iter()
            .map(|(k, (images, nf, errors))| {
                let judged = images - nf;
                let error_rate = if judged == 0 { 0.0 } else { errors as f64 / judged as f64 };
                (k, KindReport { images, no_face: nf, error_rate })
            })
            .collect(),
        full_frames: rates(&full, threshold),
        crops: rates(&crops, threshold),
        full_frames_apcer_at_bpcer: [0.01, 0.05].iter().filter_map(|&b| apcer_at_bpcer(&full, b)).collect(),
        apcer_at_bpcer: [0.01, 0.05].iter().filter_map(|&b| apcer_at_bpcer(&all, b)).collect(),
        liveness_ms_median: median(&times),
    };
    if let Some(path) = det {
        super::plot::draw_det(path, &[("all".into(), det_curve(&all)), ("full frames".into(), det_curve(&full))])?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if check(requirements, &flatten(&report))? > 0 { 1 } else { 0 })
}

fn flatten(r: &SpoofReport) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    out.insert("apcer".into(), r.apcer);
    out.insert("bpcer".into(), r.bpcer);
    out.insert("acer".into(), r.acer);
    out.insert("no_face".into(), r.no_face as f64);
    out.insert("unreadable".into(), r.unreadable as f64);
    for (name, rates) in [("full_frames", &r.full_frames), ("crops", &r.crops)] {
        out.insert(format!("{name}.apcer"), rates.apcer);
        out.insert(format!("{name}.bpcer"), rates.bpcer);
        out.insert(format!("{name}.acer"), rates.acer);
    }
    for (kind, k) in &r.per_kind {
        out.insert(format!("{kind}.error_rate"), k.error_rate);
        out.insert(format!("{kind}.no_face"), k.no_face as f64);
    }
    for (prefix, list) in [("full_frames.", &r.full_frames_apcer_at_bpcer), ("", &r.apcer_at_bpcer)] {
        for a in list {
            out.insert(format!("{prefix}apcer_at_bpcer_{}pct", (a.bpcer_target * 100.0).round()), a.apcer);
        }
    }
    out
}

fn print_report(r: &SpoofReport) {
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    println!("facegate eval --spoof on {} (liveness threshold {:.3})", r.data, r.threshold);
    println!(
        "  all images:  APCER {} ({} attacks), BPCER {} ({} live), ACER {}",
        pct(r.apcer),
        r.attacks,
        pct(r.bpcer),
        r.live,
        pct(r.acer)
    );
    for (name, x) in [("full frames", &r.full_frames), ("tight crops", &r.crops)] {
        println!(
            "  {name}: APCER {} ({} attacks), BPCER {} ({} live), ACER {}",
            pct(x.apcer),
            x.attacks,
            pct(x.bpcer),
            x.live,
            pct(x.acer)
        );
    }
    for (kind, k) in &r.per_kind {
        let what = if kind == "live" { "BPCER" } else { "APCER" };
        println!("  kind {kind}: {} images, {what} {}, no face {}", k.images, pct(k.error_rate), k.no_face);
    }
    for (name, list) in [("full frames", &r.full_frames_apcer_at_bpcer), ("all", &r.apcer_at_bpcer)] {
        for a in list {
            println!(
                "  {name}: APCER {} at BPCER <= {} (threshold {:.3}, BPCER {})",
                pct(a.apcer),
                pct(a.bpcer_target),
                a.threshold,
                pct(a.bpcer)
            );
        }
    }
    println!("  no face found: {} images (not counted above); unreadable: {}", r.no_face, r.unreadable);
    println!("  liveness (detect + score) median {:.1} ms per image", r.liveness_ms_median);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f32, attack: bool) -> Scored {
        Scored { score, attack }
    }

    #[test]
    fn rates_count_accepted_attacks_and_rejected_live_faces() {
        let data = [s(0.9, false), s(0.4, false), s(0.8, true), s(0.1, true), s(0.2, true), s(0.3, true)];
        let r = rates(&data, 0.5);
        assert_eq!((r.attacks, r.live), (4, 2));
        assert_eq!((r.apcer, r.bpcer), (0.25, 0.5));
        assert!((r.acer - 0.375).abs() < 1e-12);
    }

    #[test]
    fn apcer_at_bpcer_picks_the_strictest_threshold_within_the_target() {
        let mut data: Vec<Scored> = (0..20).map(|i| s(0.5 + i as f32 * 0.02, false)).collect();
        data.extend([s(0.49, true), s(0.51, true), s(0.6, true), s(0.95, true)]);
        // BPCER 5% of 20 live faces: one may be rejected, threshold = the second-lowest live score.
        let a = apcer_at_bpcer(&data, 0.05).unwrap();
        assert!((a.threshold - 0.52).abs() < 1e-6 && a.bpcer == 0.05, "{a:?}");
        assert_eq!(a.apcer, 0.5);
        // BPCER 1%: none may be rejected.
        let a = apcer_at_bpcer(&data, 0.01).unwrap();
        assert_eq!((a.bpcer, a.apcer), (0.0, 0.75));
        assert!(apcer_at_bpcer(&[s(0.1, true)], 0.05).is_none());
    }

    #[test]
    fn det_curve_runs_from_all_accepted_to_none() {
        let curve = det_curve(&[s(0.2, true), s(0.8, false)]);
        assert_eq!(curve.first(), Some(&(0.0, 1.0)));
        assert_eq!(curve.last(), Some(&(1.0, 0.0)));
    }
}
