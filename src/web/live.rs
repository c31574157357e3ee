//! The live view's feed: the vision stage offers each frame with its boxes through
//! [`LiveFeed::offer`], which returns at once unless someone watches that camera and the capped
//! rate allows a frame; then the frame is copied and handed to an encoder thread (drawing and
//! JPEG encoding never run on the decision path). Viewers read the newest JPEG from a watch
//! channel: the number of receivers is the number of viewers.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::decide::tracker::TrackId;
use crate::decide::voter::{Decision, Outcome};
use crate::vision::bbox::BBox;

/// A face box with what is known of it so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    /// The name, "unknown", or "…" while the vote is open.
    pub label: String,
    pub similarity: Option<f32>,
    /// The liveness verdict when the decision carries one.
    pub liveness: Option<String>,
    /// "granted" colour for a recognised face, "unknown", or "pending".
    pub state: &'static str,
}

/// One encoded frame with the boxes drawn into it (also sent as JSON for the labels).
#[derive(Debug, Clone, Serialize)]
pub struct LiveFrame {
    #[serde(skip)]
    pub jpeg: Arc<Vec<u8>>,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<LiveBox>,
}

struct Job {
    camera: usize,
    image: RgbImage,
    boxes: Vec<LiveBox>,
}

/// A decided track's name (or "unknown"), similarity and liveness verdict.
type Label = (String, Option<f32>, Option<String>);

struct Camera {
    frames: watch::Sender<Option<Arc<LiveFrame>>>,
    last_offer: Mutex<Option<Instant>>,
    /// Labels of decided tracks, so later frames of the same face keep their name.
    labels: Mutex<HashMap<TrackId, Label>>,
    /// Someone wants the next raw frame (enrolment from the door camera).
    grabs: Mutex<Vec<oneshot::Sender<RgbImage>>>,
}

pub struct LiveFeed {
    cameras: Vec<Camera>,
    every: Duration,
    jobs: SyncSender<Job>,
}

/// Labels kept per camera at most (old tracks are forgotten first).
const MAX_LABELS: usize = 256;

impl LiveFeed {
    /// A feed for `cameras` cameras at most `fps` frames per second each, with its encoder thread
    /// (which ends when the feed is dropped).
    pub fn start(cameras: usize, fps: f32) -> Arc<LiveFeed> {
        let (jobs, rx) = std::sync::mpsc::sync_channel(2);
        let feed = Arc::new(LiveFeed {
            cameras: (0..cameras)
                .map(|_| Camera {
                    frames: watch::channel(None).0,
                    last_offer: Mutex::new(None),
                    labels: Mutex::new(HashMap::new()),
                    grabs: Mutex::new(Vec::new()),
                })
                .collect(),
            every: Duration::from_secs_f32(1.0 / fps.clamp(0.1, 30.0)),
            jobs,
        });
        let weak = Arc::downgrade(&feed);
        let spawned = std::thread::Builder::new().name("web-live".into()).spawn(move || encode_loop(rx, weak));
        if let Err(e) = spawned {
            log::error!("web: cannot start the live view encoder ({e}); the live view stays blank");
        }
        feed
    }

    pub fn cameras(&self) -> usize {
        self.cameras.len()
    }

    /// Called by the vision stage for every processed frame. Cheap when nobody watches.
    pub fn offer(&self, camera: usize, image: &RgbImage, boxes: &[BBox], tracks: &[TrackId]) {
        let Some(cam) = self.cameras.get(camera) else { return };
        let grabs: Vec<_> = match cam.grabs.lock() {
            Ok(mut g) if !g.is_empty() => g.drain(..).collect(),
            _ => Vec::new(),
        };
        for grab in grabs {
            let _ = grab.send(image.clone());
        }
        if cam.frames.receiver_count() == 0 {
            return;
        }
        {
            let Ok(mut last) = cam.last_offer.lock() else { return };
            if last.is_some_and(|t| t.elapsed() < self.every) {
                return;
            }
            *last = Some(Instant::now());
        }
        let labels = cam.labels.lock().map(|l| l.clone()).unwrap_or_default();
        let boxes = boxes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let known = tracks.get(i).and_then(|t| labels.get(t));
                let (label, similarity, liveness, state) = match known {
                    Some((name, sim, live)) if name == "unknown" => (name.clone(), *sim, live.clone(), "unknown"),
                    Some((name, sim, live)) => (name.clone(), *sim, live.clone(), "known"),
                    None => ("…".to_string(), None, None, "pending"),
                };
                LiveBox { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, label, similarity, liveness, state }
            })
            .collect();
        // A full queue means the encoder is behind: drop this frame rather than wait.
        match self.jobs.try_send(Job { camera, image: image.clone(), boxes }) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Called by the vision stage for each decision: later boxes of that track carry its label.
    pub fn decided(&self, camera: usize, decision: &Decision, liveness: Option<String>) {
        let Some(cam) = self.cameras.get(camera) else { return };
        let Ok(mut labels) = cam.labels.lock() else { return };
        if labels.len() >= MAX_LABELS
            && let Some(oldest) = labels.keys().min().copied()
        {
            labels.remove(&oldest);
        }
        let label = match &decision.outcome {
            Outcome::Recognised { person, similarity, .. } => (person.clone(), Some(*similarity), liveness),
            Outcome::Unknown => ("unknown".to_string(), None, liveness),
            Outcome::SpoofSuspected { person, similarity, liveness: score } => (
                format!("{} (spoof?)", person.as_deref().unwrap_or("unknown")),
                *similarity,
                Some(format!("spoof suspected, liveness {score:.2}")),
            ),
        };
        labels.insert(decision.track, label);
    }

    /// A receiver of this camera's frames; holding it makes the vision stage feed the camera.
    pub fn watch(&self, camera: usize) -> Option<watch::Receiver<Option<Arc<LiveFrame>>>> {
        self.cameras.get(camera).map(|c| c.frames.subscribe())
    }

    /// The next raw frame of a camera (for enrolment from the door camera).
    pub fn grab(&self, camera: usize) -> Option<oneshot::Receiver<RgbImage>> {
        let cam = self.cameras.get(camera)?;
        let (tx, rx) = oneshot::channel();
        cam.grabs.lock().ok()?.push(tx);
        Some(rx)
    }
}

fn encode_loop(rx: Receiver<Job>, feed: std::sync::Weak<LiveFeed>) {
    while let Ok(job) = rx.recv() {
        let Some(feed) = feed.upgrade() else { return };
        let Some(cam) = feed.cameras.get(job.camera) else { continue };
        let mut image = job.image;
        for b in &job.boxes {
            let colour = match b.state {
                "known" => Rgb([0, 200, 60]),
                "unknown" => Rgb([230, 40, 40]),
                _ => Rgb([240, 180, 0]),
            };
            let bbox = BBox { x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, score: 1.0 };
            crate::cli::draw::outline(&mut image, &bbox, colour);
        }
        match crate::service::vision_stage::encode_jpeg(&image) {
            Ok(jpeg) => {
                let frame =
                    LiveFrame { jpeg: Arc::new(jpeg), width: image.width(), height: image.height(), boxes: job.boxes };
                cam.frames.send_replace(Some(Arc::new(frame)));
            }
            Err(e) => log::warn!("web: cannot encode a live frame: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_encoded_only_while_watched() {
        let feed = LiveFeed::start(1, 15.0);
        let image = RgbImage::from_pixel(64, 48, Rgb([9, 9, 9]));
        let b = BBox { x1: 10.0, y1: 10.0, x2: 30.0, y2: 30.0, score: 1.0 };
        feed.offer(0, &image, &[b], &[7]);
        let mut rx = feed.watch(0).unwrap();
        assert!(rx.borrow().is_none(), "nothing was encoded before anyone watched");
        feed.offer(0, &image, &[b], &[7]);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(rx.changed()).unwrap();
        let frame = rx.borrow().clone().unwrap();
        assert_eq!((frame.width, frame.height), (64, 48));
        assert_eq!(frame.boxes[0].state, "pending");
        let decoded = image::load_from_memory(&frame.jpeg).unwrap().to_rgb8();
        let edge = decoded.get_pixel(10, 20);
        assert!(edge[0] > 150 && edge[2] < 100, "the box is drawn into the frame: {edge:?}");
    }
}
