//! Getting pixels into facegate: still image files, and long-lived camera sources (file replay,
//! V4L2, RTSP) that each run on their own thread, reconnect with backoff after any failure and
//! hand only their newest frame on through a shared [`FrameHub`].
//!
//! Data flows one way: a [`FrameSource`] produces RGB frames, the supervisor in [`camera`]
//! stamps and publishes them to the hub, and the consumer (vision) takes the newest frame of
//! the camera that has waited longest. A slow consumer drops stale frames (counted) instead of
//! building up latency.

pub mod backoff;
pub mod camera;
pub mod config;
#[cfg(feature = "rtsp")]
pub mod h264;
pub mod hub;
pub mod image_file;
pub mod mjpeg;
pub mod pixfmt;
pub mod replay;
#[cfg(feature = "rtsp")]
pub mod rtsp;
pub mod source;
#[cfg(feature = "v4l2")]
pub mod v4l2;

use std::time::Duration;

pub use camera::{Cameras, spawn_cameras};
pub use config::{CameraConfig, PixelFormat, ReplayConfig, RtspConfig, RtspTransport, SourceConfig, V4l2Config};
pub use hub::{CameraState, CameraStats, FrameHub};
pub use source::{FrameSource, Next, SourceContext};

/// One decoded camera frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Index of the camera in the configured camera list.
    pub camera: usize,
    /// Sequence number of this frame from its camera, counting from 0 (gaps mean dropped frames).
    pub seq: u64,
    /// `clock.now()` when the frame was captured or received, before decoding.
    pub captured: Duration,
    pub image: image::RgbImage,
}
