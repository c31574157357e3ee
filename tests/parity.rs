//! The Rust MTCNN must find the same faces as an independent implementation of the same
//! networks (reference outputs in tests/data/parity, made by tools/reference/make_parity.py):
//! every reference face matched by a box with IoU > 0.95 and all five landmarks within 2 px.

mod common;

use facegate::capture::image_file::load_rgb;
use facegate::vision::bbox::BBox;
use serde::Deserialize;

#[derive(Deserialize)]
struct Params {
    min_face: f32,
    factor: f32,
    thresholds: [f32; 3],
    max_side: Option<u32>,
}

#[derive(Deserialize)]
struct RefFace {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
}

#[derive(Deserialize)]
struct Reference {
    image: String,
    params: Params,
    faces: Vec<RefFace>,
}

#[test]
fn rust_detector_matches_reference_boxes_and_landmarks() {
    let dir = common::repo().join("tests/data/parity");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/data/parity exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "need reference outputs for at least two images, found {}", files.len());
    let mut engine = common::engine();
    let mut total_faces = 0;
    for file in files {
        let reference: Reference = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let image_path = dir.join(&reference.image);
        let image_path = if image_path.exists() { image_path } else { common::repo().join(&reference.image) };
        let image = load_rgb(&image_path).unwrap_or_else(|e| panic!("{e}"));
        let params = engine.pipeline.detector_params_mut();
        params.min_face = reference.params.min_face;
        params.factor = reference.params.factor;
        params.thresholds = reference.params.thresholds;
        params.max_side = reference.params.max_side.unwrap_or(100_000);
        let (ours, _) = engine.pipeline.detect(&image).unwrap();
        assert_eq!(ours.len(), reference.faces.len(), "{}: face count differs", file.display());
        for r in &reference.faces {
            let rb = BBox { x1: r.bbox[0], y1: r.bbox[1], x2: r.bbox[2], y2: r.bbox[3], score: r.score };
            let best = ours.iter().max_by(|a, b| a.bbox.iou(&rb).total_cmp(&b.bbox.iou(&rb))).unwrap();
            let iou = best.bbox.iou(&rb);
            assert!(iou > 0.95, "{}: best IoU {iou:.3} for reference box {:?}", file.display(), r.bbox);
            for (k, (o, want)) in best.landmarks.iter().zip(&r.landmarks).enumerate() {
                let d = ((o[0] - want[0]).powi(2) + (o[1] - want[1]).powi(2)).sqrt();
                assert!(d <= 2.0, "{}: landmark {k} off by {d:.2} px ({o:?} vs {want:?})", file.display());
            }
            assert!((best.bbox.score - r.score).abs() < 0.05, "score {} vs {}", best.bbox.score, r.score);
            total_faces += 1;
        }
    }
    assert!(total_faces >= 3, "parity data should hold several faces, has {total_faces}");
}
