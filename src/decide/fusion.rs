//! Fuses a track's embeddings: the quality-weighted mean of its best frames. One blurred or
//! half-turned frame moves a single-frame match a lot; the mean of the best few frames of the
//! same face is closer to the person's templates than any one of them, and stays far from others.

use std::collections::HashMap;

use super::tracker::TrackId;
use crate::vision::embed::Embedding;
use crate::vision::quality::fuse;

/// The best frames seen per track, by quality.
#[derive(Debug, Default)]
pub struct Fusion {
    keep: usize,
    tracks: HashMap<(String, TrackId), Vec<(Embedding, f32)>>,
}

impl Fusion {
    /// `keep` frames per track are fused (1 = the frame itself, no fusion).
    pub fn new(keep: usize) -> Fusion {
        Fusion { keep: keep.max(1), tracks: HashMap::new() }
    }

    /// Adds one frame's embedding of a track with its quality and returns the fused embedding of
    /// the track's best `keep` frames so far (this frame included when it is among them).
    pub fn add(&mut self, camera: &str, track: TrackId, embedding: Embedding, quality: f32) -> Embedding {
        if self.keep == 1 {
            return embedding;
        }
        let best = self.tracks.entry((camera.to_string(), track)).or_default();
        best.push((embedding.clone(), quality));
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        best.truncate(self.keep);
        let weighted: Vec<(&[f32], f32)> = best.iter().map(|(e, q)| (e.as_slice(), q.max(1e-3))).collect();
        fuse(&weighted).unwrap_or(embedding)
    }

    /// Drops a track that left the picture.
    pub fn forget(&mut self, camera: &str, track: TrackId) {
        self.tracks.remove(&(camera.to_string(), track));
    }

    pub fn tracks(&self) -> usize {
        self.tracks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::embed::{cosine, l2_normalised};

    #[test]
    fn a_poor_frame_moves_the_fused_embedding_less_than_a_good_one() {
        let person = l2_normalised(&[1.0, 0.0, 0.0]);
        let mut f = Fusion::new(3);
        let first = f.add("door", 1, l2_normalised(&[1.0, 0.2, 0.0]), 0.9);
        assert!(cosine(&first, &person) > 0.97);
        // A blurred frame pointing elsewhere, with low quality, barely moves the fused vector.
        let fused = f.add("door", 1, l2_normalised(&[0.0, 0.0, 1.0]), 0.1);
        assert!(cosine(&fused, &person) > 0.9, "{fused:?}");
        // Two more good frames push the poor one out of the best three.
        f.add("door", 1, l2_normalised(&[1.0, -0.2, 0.0]), 0.8);
        let fused = f.add("door", 1, l2_normalised(&[1.0, 0.0, 0.1]), 0.85);
        assert!(cosine(&fused, &person) > 0.99, "{fused:?}");
        // Tracks are separate and forgotten.
        let other = f.add("door", 2, l2_normalised(&[0.0, 1.0, 0.0]), 0.9);
        assert!(cosine(&other, &person) < 0.01);
        f.forget("door", 1);
        f.forget("door", 2);
        assert_eq!(f.tracks(), 0);
    }

    #[test]
    fn keep_one_is_the_frame_itself() {
        let mut f = Fusion::new(1);
        let e = l2_normalised(&[0.3, 0.4, 0.5]);
        assert_eq!(f.add("door", 1, e.clone(), 0.5), e);
        assert_eq!(f.tracks(), 0);
    }
}
