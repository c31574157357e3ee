//! TEMPORARY: stands in for `crate::vision::attributes::Attributes` (helper `attr`'s estimator)
//! until its branch is merged, with exactly its API, so the run integration builds meanwhile.
//! It never estimates: loading it fails, so `[analyze] enabled = true` cannot start on it.
//! Deleted by the merge of the estimator.

use anyhow::{Result, bail};
use image::RgbImage;

use crate::vision::attributes::FaceAttributes;
use crate::vision::models::Manifest;
use crate::vision::mtcnn::Detection;
use crate::vision::runtime::Runtime;

pub struct Attributes;

impl Attributes {
    pub fn load(_runtime: &Runtime, _manifest: &Manifest) -> Result<Attributes> {
        bail!("this build has no attribute estimator yet")
    }

    pub fn analyze(&mut self, _image: &RgbImage, _faces: &[Detection]) -> Result<Vec<FaceAttributes>> {
        bail!("this build has no attribute estimator yet")
    }
}
