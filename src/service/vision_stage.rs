//! The vision stage: newest frame of any camera -> detect -> track -> embed the faces that still
//! need it -> identify -> vote. Decisions go on to the act stage over a bounded channel.
//!
//! It owns the ONNX Runtime sessions and the in-memory gallery, which it reloads when the store
//! says people changed (enrolled from the CLI or over MQTT while the service runs).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Heartbeat;
use super::stats::ServiceStats;
use crate::act::door::Door;
use crate::act::store::Store;
use crate::capture::{Frame, FrameHub};
use crate::decide::Decider;
use crate::decide::voter::Decision;
use crate::engine::Engine;
use crate::gallery::matcher::Matcher;
use crate::vision::bbox::BBox;

/// A decision and the camera (index in the configured list) whose frame completed it.
#[derive(Debug, Clone)]
pub struct CameraDecision {
    pub camera: usize,
    pub decision: Decision,
}

/// Everything the stage owns; runs on its own thread until `stop` is set.
pub struct VisionStage {
    pub engine: Engine,
    pub store: Store,
    pub decider: Decider,
    pub camera_names: Vec<String>,
    pub hub: Arc<FrameHub>,
    pub doors: Vec<Arc<Door>>,
    pub out: SyncSender<CameraDecision>,
    pub stats: Arc<ServiceStats>,
    pub heartbeat: Heartbeat,
    pub refresh_every: Duration,
}

/// The gallery as loaded, with the store's change counter at load time.
struct Gallery {
    matcher: Matcher,
    people: usize,
    version: u64,
}

impl VisionStage {
    fn load_gallery(&self) -> Result<Gallery> {
        let version = self.store.change_counter()?;
        let model = self.engine.template_model();
        let people = self.store.gallery(&model)?;
        Ok(Gallery { matcher: Matcher::new(model.dim, &people), people: people.len(), version })
    }

    /// Runs until `stop` is set. Errors on one frame are logged and counted, never fatal.
    pub fn run(mut self, stop: Arc<AtomicBool>) -> Result<()> {
        let mut gallery = self.load_gallery()?;
        log::info!("vision: {} people enrolled", gallery.people);
        let mut last_refresh = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            self.heartbeat.beat();
            for door in &self.doors {
                door.heartbeat();
            }
            if last_refresh.elapsed() >= self.refresh_every {
                last_refresh = Instant::now();
                match self.store.change_counter() {
                    Ok(v) if v != gallery.version => match self.load_gallery() {
                        Ok(g) => {
                            log::info!("vision: people changed; {} people enrolled now", g.people);
                            gallery = g;
                        }
                        Err(e) => log::error!("vision: could not reload the gallery (keeping the old one): {e:#}"),
                    },
                    Ok(_) => {}
                    Err(e) => log::warn!("vision: could not check the store for changes: {e:#}"),
                }
            }
            let Some(frame) = self.hub.next(Duration::from_millis(200)) else { continue };
            let started = Instant::now();
            match self.process(&frame, &gallery.matcher) {
                Ok(decisions) => {
                    for decision in decisions {
                        // Blocks when the act stage is behind: the queue is bounded, frames are
                        // dropped upstream by the hub instead of piling up here.
                        if self.out.send(CameraDecision { camera: frame.camera, decision }).is_err() {
                            return Ok(());
                        }
                    }
                }
                Err(e) => {
                    ServiceStats::add(&self.stats.vision_errors, 1);
                    log::warn!("vision: frame {} of {} skipped: {e:#}", frame.seq, self.camera_name(frame.camera));
                }
            }
            ServiceStats::add(&self.stats.frames, 1);
            self.stats.record_inference(started.elapsed());
        }
        Ok(())
    }

    fn camera_name(&self, camera: usize) -> &str {
        self.camera_names.get(camera).map(String::as_str).unwrap_or("?")
    }

    fn process(&mut self, frame: &Frame, matcher: &Matcher) -> Result<Vec<Decision>> {
        let camera = self.camera_names.get(frame.camera).cloned().unwrap_or_default();
        let (detections, _) = self.engine.pipeline.detect(&frame.image)?;
        ServiceStats::add(&self.stats.faces, detections.len() as u64);
        let boxes: Vec<BBox> = detections.iter().map(|d| d.bbox).collect();
        let tracked = self.decider.track(&camera, frame.captured, &boxes);
        let wanted: Vec<usize> = (0..tracked.len()).filter(|&i| tracked[i].needs_identification).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let crops: Vec<_> = wanted.iter().map(|&i| self.engine.pipeline.crop(&frame.image, &detections[i])).collect();
        let embeddings = self.engine.pipeline.embed_crops(&crops)?;
        ServiceStats::add(&self.stats.embeddings, embeddings.len() as u64);
        let mut decisions = Vec::new();
        for (&i, embedding) in wanted.iter().zip(&embeddings) {
            let identification = matcher.identify(embedding, &self.engine.policy);
            log::debug!("{camera}: track {} {:?}", tracked[i].track, identification);
            decisions.extend(self.decider.vote(&camera, frame.captured, tracked[i].track, boxes[i], &identification));
        }
        Ok(decisions)
    }
}
