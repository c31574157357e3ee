//! Face embedding: 112x112 RGB crops in, L2-normalised vectors out (MobileFaceNet by default;
//! any model the manifest describes with an NCHW 112x112 input works).

use anyhow::{Result, bail};
use image::RgbImage;
use ndarray::ArrayView4;

use super::align::CROP_SIDE;
use super::mtcnn::Normalisation;
use super::runtime::SingleInputModel;

/// A face embedding, unit length, so cosine similarity is a dot product.
pub type Embedding = Vec<f32>;

pub struct Embedder {
    model: SingleInputModel,
    norm: Normalisation,
    dim: usize,
    /// Input tensor storage reused between calls (no allocation per frame once warm).
    input: Vec<f32>,
}

impl Embedder {
    pub fn new(model: SingleInputModel, norm: Normalisation, dim: usize) -> Embedder {
        Embedder { model, norm, dim, input: Vec::new() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds a batch of 112x112 crops.
    pub fn embed(&mut self, crops: &[RgbImage]) -> Result<Vec<Embedding>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let side = CROP_SIDE as usize;
        let plane = side * side;
        let len = crops.len() * 3 * plane;
        if self.input.len() < len {
            self.input.resize(len, 0.0);
        }
        let (mean, scale) = (self.norm.mean, self.norm.scale);
        for (n, crop) in crops.iter().enumerate() {
            if crop.dimensions() != (CROP_SIDE, CROP_SIDE) {
                bail!("embedder input must be {CROP_SIDE}x{CROP_SIDE}, got {:?}", crop.dimensions());
            }
            // NHWC bytes -> NCHW floats, one channel plane at a time.
            let face = &mut self.input[n * 3 * plane..(n + 1) * 3 * plane];
            for (i, px) in crop.as_raw().chunks_exact(3).enumerate() {
                face[i] = (px[0] as f32 - mean) * scale;
                face[plane + i] = (px[1] as f32 - mean) * scale;
                face[2 * plane + i] = (px[2] as f32 - mean) * scale;
            }
        }
        let tensor = ArrayView4::from_shape((crops.len(), 3, side, side), &self.input[..len])?;
        let output = self.model.run(tensor)?.remove(0);
        let shape = output.shape().to_vec();
        if shape.len() != 2 || shape[0] != crops.len() || shape[1] != self.dim {
            bail!(
                "embedder returned shape {shape:?}, expected [{}, {}]; check `dim` in the model manifest",
                crops.len(),
                self.dim
            );
        }
        let flat = output.as_slice().ok_or_else(|| anyhow::anyhow!("embedder output is not contiguous"))?;
        Ok(flat.chunks(self.dim).map(l2_normalised).collect())
    }
}

/// The vector scaled to unit length (a zero vector stays zero).
pub fn l2_normalised(v: &[f32]) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 { v.iter().map(|x| x / norm).collect() } else { v.to_vec() }
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_vector_has_unit_length_and_zero_stays_zero() {
        let v = l2_normalised(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(l2_normalised(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-6);
    }
}
