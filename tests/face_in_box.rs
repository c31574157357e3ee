//! O-Net on a box known to hold a face (`FacePipeline::face_in_box`): what `facegate eval` uses for
//! a tight chip the full cascade cannot find, with the real models on the public-domain fixtures.

mod common;

use facegate::capture::image_file::load_rgb;
use facegate::vision::bbox::BBox;
use facegate::vision::embed::cosine;

#[test]
fn landmarks_in_a_known_box_match_the_cascade_and_align_the_same_face() {
    let mut engine = common::engine();
    let image = load_rgb(&common::fixture("faces/astronaut/01.jpg")).unwrap();
    let (faces, _) = engine.pipeline.analyse(&image).unwrap();
    let cascade =
        faces.into_iter().max_by(|a, b| a.detection.bbox.width().total_cmp(&b.detection.bbox.width())).unwrap();
    let b = cascade.detection.bbox;

    // The cascade's own box: the same landmarks within a couple of pixels, the same embedding.
    let again = engine.pipeline.face_in_box(&image, &b).unwrap().expect("a face in its own box");
    let eye = (b.x2 - b.x1) * 0.05;
    for (k, (o, c)) in again.detection.landmarks.iter().zip(&cascade.detection.landmarks).enumerate() {
        let d = ((o[0] - c[0]).powi(2) + (o[1] - c[1]).powi(2)).sqrt();
        assert!(d <= eye.max(2.0), "landmark {k} moved {d:.1} px");
    }
    assert!(cosine(&again.embedding, &cascade.embedding) > 0.95);

    // A loose, off-centre box (a chip cut wider than the face): O-Net still puts the
    // landmarks on the face, so the aligned crop is the same person's.
    let (w, h) = (b.x2 - b.x1, b.y2 - b.y1);
    let loose = BBox { x1: b.x1 - 0.25 * w, y1: b.y1 - 0.1 * h, x2: b.x2 + 0.05 * w, y2: b.y2 + 0.2 * h, score: 1.0 };
    let found = engine.pipeline.face_in_box(&image, &loose).unwrap().expect("a face in a loose box");
    assert!(cosine(&found.embedding, &cascade.embedding) > 0.8, "{}", cosine(&found.embedding, &cascade.embedding));

    // A box with no area has no face.
    let empty = BBox { x1: 10.0, y1: 10.0, x2: 10.0, y2: 10.0, score: 1.0 };
    assert!(engine.pipeline.face_in_box(&image, &empty).unwrap().is_none());
}
