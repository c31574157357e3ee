//! The vision stage: newest frame of any camera -> detect -> track -> embed the faces that still
//! need it -> identify -> vote. Decisions go on to the act stage over a bounded channel.
//!
//! It owns the ONNX Runtime sessions and the in-memory gallery, which it reloads when the store
//! says people changed (enrolled from the CLI or over MQTT while the service runs). It also says
//! when faces appear and leave each camera, and, only where `mqtt.snapshots` is on, cuts the JPEG
//! snapshots (a face crop per decision, a whole frame on request).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::Heartbeat;
use super::stats::ServiceStats;
use crate::act::door::Door;
use crate::act::store::Store;
use crate::analytics::AnalyzeConfig;
use crate::capture::config::CameraTuning;
use crate::capture::{Frame, FrameHub};
use crate::decide::Decider;
use crate::decide::voter::{Decision, Outcome};
use crate::engine::Engine;
use crate::gallery::auto_update::AutoUpdateConfig;
use crate::gallery::matcher::{Identification, MatchPolicy, Matcher};
use crate::vision::attributes::FaceAttributes;
use crate::vision::bbox::BBox;
use crate::vision::mtcnn::Detection;

/// A decision and the camera (index in the configured list) whose frame completed it.
#[derive(Debug, Clone)]
pub struct CameraDecision {
    pub camera: usize,
    pub decision: Decision,
    /// JPEG crop of the face, only when snapshots are enabled.
    pub snapshot: Option<Vec<u8>>,
    /// The face of an `unknown` decision for the console's inbox, only when `[web] unknown_inbox`.
    pub unknown: Option<crate::act::store::UnknownEvidence>,
    /// The face's estimated age, gender and expression (`[analyze]`): estimated once, on the
    /// deciding frame, only for the decisions [`AnalyzeConfig::estimates`] allows (boxed: most
    /// decisions have none, and the channel's messages stay small).
    pub attributes: Option<Box<FaceAttributes>>,
}

/// What the vision stage hands to the act stage, in the order it happened.
#[derive(Debug, Clone)]
pub enum VisionOutput {
    Decision(CameraDecision),
    /// The number of faces followed on a camera changed (0 = nobody in front of it any more).
    Presence {
        camera: usize,
        faces: u32,
    },
    /// A template was learnt (`[matching] auto_update`): the act stage records it as an event,
    /// so who the door learns from is on the record, not only in a log line.
    TemplateLearnt {
        camera: usize,
        person_id: i64,
        learnt: usize,
        cap: usize,
    },
    /// A whole frame asked for with the `snapshot` command.
    Snapshot {
        camera: usize,
        request_id: String,
        jpeg: Vec<u8>,
    },
}

/// Snapshot requests waiting for the next frame of their camera. Shared with the MQTT command
/// handler, which adds to it; the vision stage serves and removes them.
#[derive(Debug, Default)]
pub struct SnapshotRequests(Mutex<Vec<SnapshotRequest>>);

#[derive(Debug, Clone)]
struct SnapshotRequest {
    camera: usize,
    id: String,
    asked: Instant,
}

/// A request not served by then (camera offline) is dropped with a warning.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(10);

impl SnapshotRequests {
    pub fn request(&self, camera: usize, id: &str) {
        if let Ok(mut pending) = self.0.lock() {
            pending.push(SnapshotRequest { camera, id: id.to_string(), asked: Instant::now() });
        }
    }

    /// Takes the requests for `camera`, dropping those that waited too long.
    fn take_for(&self, camera: usize) -> Vec<String> {
        let Ok(mut pending) = self.0.lock() else { return Vec::new() };
        pending.retain(|r| {
            let fresh = r.asked.elapsed() < SNAPSHOT_WAIT;
            if !fresh {
                log::warn!("snapshot {}: no frame from camera {} within {SNAPSHOT_WAIT:?}; dropped", r.id, r.camera);
            }
            fresh
        });
        let (mine, rest) = pending.drain(..).partition(|r| r.camera == camera);
        *pending = rest;
        mine.into_iter().map(|r| r.id).collect()
    }
}

/// JPEG quality of snapshots: small enough for MQTT, sharp enough to recognise a face.
const SNAPSHOT_QUALITY: u8 = 85;

/// Encodes an image as JPEG for a snapshot.
pub fn encode_jpeg(image: &image::RgbImage) -> Result<Vec<u8>> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, SNAPSHOT_QUALITY).encode_image(image)?;
    Ok(jpeg)
}

/// The face box grown by a quarter on each side (hair, chin, context), clipped to the frame.
pub fn face_crop(image: &image::RgbImage, bbox: &BBox) -> image::RgbImage {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let grow = 0.25 * bbox.width().max(bbox.height());
    let x1 = (bbox.x1 - grow).clamp(0.0, w - 1.0) as u32;
    let y1 = (bbox.y1 - grow).clamp(0.0, h - 1.0) as u32;
    let x2 = (bbox.x2 + grow).clamp(x1 as f32 + 1.0, w) as u32;
    let y2 = (bbox.y2 + grow).clamp(y1 as f32 + 1.0, h) as u32;
    image::imageops::crop_imm(image, x1, y1, x2 - x1, y2 - y1).to_image()
}

/// Everything the stage owns; runs on its own thread until `stop` is set.
pub struct VisionStage {
    pub engine: Engine,
    pub store: Store,
    pub decider: Decider,
    pub camera_names: Vec<String>,
    pub hub: Arc<FrameHub>,
    pub doors: Vec<Arc<Door>>,
    pub out: SyncSender<VisionOutput>,
    pub stats: Arc<ServiceStats>,
    pub heartbeat: Heartbeat,
    pub refresh_every: Duration,
    /// Cut JPEG snapshots (`mqtt.snapshots`; off by default for privacy).
    pub snapshots: bool,
    pub snapshot_requests: Arc<SnapshotRequests>,
    /// The web console's live view (`[web]` on): offered each frame, cheap when nobody watches.
    pub live: Option<Arc<crate::web::live::LiveFeed>>,
    /// Per-camera overrides (`[[camera]]` min_face, threshold, min_quality), by camera index.
    pub tuning: Vec<CameraTuning>,
    /// `detector.min_face` for cameras without their own.
    pub default_min_face: f32,
    /// `[matching] auto_update`: learn templates from confident recognitions (None = off).
    pub auto_update: Option<AutoUpdateConfig>,
    /// `[web] unknown_inbox`: hand the faces of unknown decisions to the act stage to keep.
    pub unknown_inbox: bool,
    /// This worker's share of the cameras (`service.vision_workers`).
    pub share: WorkerShare,
    /// `[analyze]`: which decided faces get an attribute estimate.
    pub analyze: AnalyzeConfig,
}

/// Worker `index` of `count` takes the cameras whose index is `index` modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerShare {
    pub index: usize,
    pub count: usize,
}

impl WorkerShare {
    pub const ALL: WorkerShare = WorkerShare { index: 0, count: 1 };

    pub fn owns(&self, camera: usize) -> bool {
        camera % self.count.max(1) == self.index
    }
}

/// The decider with each camera's own `min_identify_px`.
pub fn decider_for(config: &crate::decide::DecideConfig, cameras: &[crate::capture::CameraConfig]) -> Result<Decider> {
    let mut decider = Decider::new(config.clone())?;
    for camera in cameras {
        if let Some(px) = camera.tuning.min_identify_px {
            decider.set_min_identify_px(&camera.name, px);
        }
    }
    Ok(decider)
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
        let mut faces_on: Vec<u32> = vec![0; self.camera_names.len()];
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
            let share = self.share;
            let Some(frame) = self.hub.next_of(|c| share.owns(c), Duration::from_millis(200)) else { continue };
            let started = Instant::now();
            let mut outputs = self.requested_snapshots(&frame);
            match self.process(&frame, &gallery.matcher, &mut faces_on) {
                Ok(more) => outputs.extend(more),
                Err(e) => {
                    ServiceStats::add(&self.stats.vision_errors, 1);
                    log::warn!("vision: frame {} of {} skipped: {e:#}", frame.seq, self.camera_name(frame.camera));
                }
            }
            ServiceStats::add(&self.stats.frames, 1);
            self.stats.record_inference(started.elapsed());
            for output in outputs {
                // Blocks when the act stage is behind: the queue is bounded, frames are dropped
                // upstream by the hub instead of piling up here.
                if self.out.send(output).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Whole-frame snapshots asked for over MQTT for this frame's camera.
    fn requested_snapshots(&self, frame: &Frame) -> Vec<VisionOutput> {
        let ids = self.snapshot_requests.take_for(frame.camera);
        if ids.is_empty() {
            return Vec::new();
        }
        match encode_jpeg(&frame.image) {
            Ok(jpeg) => ids
                .into_iter()
                .map(|request_id| VisionOutput::Snapshot { camera: frame.camera, request_id, jpeg: jpeg.clone() })
                .collect(),
            Err(e) => {
                log::warn!("snapshot of {}: cannot encode the frame: {e}", self.camera_name(frame.camera));
                Vec::new()
            }
        }
    }

    fn camera_name(&self, camera: usize) -> &str {
        self.camera_names.get(camera).map(String::as_str).unwrap_or("?")
    }

    /// Stores a learnt template (`[matching] auto_update`); the gallery picks it up on its next
    /// refresh, and the act stage records the event. Failures are logged: learning is an extra,
    /// never a reason to drop a decision.
    fn learn(
        &mut self,
        index: usize,
        camera: &str,
        person: &str,
        embedding: &[f32],
        cap: usize,
    ) -> Option<VisionOutput> {
        use crate::act::store::LearntTemplate;
        match self.store.add_learnt_template(person, &self.engine.template_model(), embedding, cap) {
            Ok(LearntTemplate::Added { learnt }) => {
                log::info!("template_learnt: {person} on {camera}: learnt template {learnt} of at most {cap}");
                match self.store.find_person(person) {
                    Ok(Some(p)) => Some(VisionOutput::TemplateLearnt { camera: index, person_id: p.id, learnt, cap }),
                    Ok(None) => None,
                    Err(e) => {
                        log::warn!("{camera}: learnt a template of {person} but cannot look them up: {e:#}");
                        None
                    }
                }
            }
            Ok(other) => {
                log::debug!("{camera}: not learning a template of {person}: {other:?}");
                None
            }
            Err(e) => {
                log::warn!("{camera}: could not store a learnt template of {person}: {e:#}");
                None
            }
        }
    }

    /// What the inbox keeps of an unknown face: the aligned crop as a thumbnail and the
    /// embedding the matcher was given. A failure only costs the inbox entry.
    fn unknown_evidence(
        &self,
        camera: &str,
        crop: &image::RgbImage,
        embedding: crate::vision::embed::Embedding,
        threshold: f32,
        quality: f32,
    ) -> Option<crate::act::store::UnknownEvidence> {
        match crate::vision::thumbnail::face_thumbnail(crop) {
            Ok(thumbnail) => Some(crate::act::store::UnknownEvidence {
                thumbnail,
                embedding,
                model: self.engine.template_model(),
                threshold,
                quality,
            }),
            Err(e) => {
                log::warn!("{camera}: unknown face not kept for the inbox: {e:#}");
                None
            }
        }
    }

    /// The attribute estimate of a decided face (`[analyze]`): only for the decisions the config
    /// allows (strangers; identified people only with `per_person`; never a suspected spoof,
    /// which is not the face of whoever stands there), and only for faces at least
    /// [`crate::vision::attributes::MIN_FACE_PX`] wide. It runs after the decision is made and a
    /// failure only costs the estimate: it never changes who gets in.
    fn estimate(
        &mut self,
        camera: &str,
        outcome: &Outcome,
        image: &image::RgbImage,
        face: &Detection,
    ) -> Option<FaceAttributes> {
        let identified = match outcome {
            Outcome::Unknown => false,
            Outcome::Recognised { .. } => true,
            Outcome::SpoofSuspected { .. } => return None,
        };
        if !self.analyze.estimates(identified) {
            return None;
        }
        // Too few pixels for the models to say anything (they would still answer): no estimate,
        // so no count built on noise.
        if crate::vision::attributes::too_small(face) {
            log::debug!("{camera}: face {:.0} px wide, too small for an attribute estimate", face.bbox.width());
            return None;
        }
        let estimator = self.engine.attributes.as_mut()?;
        let started = Instant::now();
        match estimator.analyze(image, std::slice::from_ref(face)) {
            Ok(mut found) if !found.is_empty() => {
                log::debug!("{camera}: attributes estimated in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
                Some(found.swap_remove(0))
            }
            Ok(_) => None,
            Err(e) => {
                log::warn!("{camera}: no age/gender/expression estimate for this face (the decision stands): {e:#}");
                None
            }
        }
    }

    /// Detects, tracks and identifies one frame. `faces_on` is the number of faces last reported
    /// per camera; a change is reported as presence.
    fn process(&mut self, frame: &Frame, matcher: &Matcher, faces_on: &mut [u32]) -> Result<Vec<VisionOutput>> {
        let camera = self.camera_names.get(frame.camera).cloned().unwrap_or_default();
        let tuning = self.tuning.get(frame.camera).copied().unwrap_or_default();
        self.engine.pipeline.detector_params_mut().min_face = tuning.min_face.unwrap_or(self.default_min_face);
        let policy =
            MatchPolicy { threshold: tuning.threshold.unwrap_or(self.engine.policy.threshold), ..self.engine.policy };
        let min_quality = tuning.min_quality.unwrap_or(self.decider.config().min_quality);
        let (detections, _) = self.engine.detect_frame(frame.camera, &frame.image)?;
        ServiceStats::add(&self.stats.faces, detections.len() as u64);
        let boxes: Vec<BBox> = detections.iter().map(|d| d.bbox).collect();
        let tracked = self.decider.track(&camera, frame.captured, &boxes);
        if let Some(live) = &self.live {
            let tracks: Vec<_> = tracked.iter().map(|t| t.track).collect();
            live.offer(frame.camera, &frame.image, &boxes, &tracks);
        }
        let mut outputs = Vec::new();
        // Tracks outlive a missed detection or two, so presence does not flicker.
        let faces = self.decider.active_tracks_on(&camera) as u32;
        if let Some(last) = faces_on.get_mut(frame.camera)
            && *last != faces
        {
            *last = faces;
            outputs.push(VisionOutput::Presence { camera: frame.camera, faces });
        }
        let wanted: Vec<usize> = (0..tracked.len()).filter(|&i| tracked[i].needs_identification).collect();
        if wanted.is_empty() {
            return Ok(outputs);
        }
        // Faces below the quality floor stay tracked but are not embedded or voted on.
        let (mut crops, mut kept) = (Vec::new(), Vec::new());
        for &i in &wanted {
            let (crop, quality) = self.engine.pipeline.crop_with_quality(&frame.image, &detections[i]);
            if quality.score >= min_quality {
                crops.push(crop);
                kept.push((i, quality.score));
            }
        }
        let embeddings = self.engine.pipeline.embed_crops(&crops)?;
        ServiceStats::add(&self.stats.embeddings, embeddings.len() as u64);
        // Liveness only for the faces being decided (those the quality floor kept), voted over
        // the same window as identity.
        if let Some(liveness) = self.engine.liveness.as_mut() {
            let kept_boxes: Vec<BBox> = kept.iter().map(|&(i, _)| boxes[i]).collect();
            for (&(i, _), s) in kept.iter().zip(liveness.score(&frame.image, &kept_boxes)?) {
                self.decider.observe_liveness(&camera, tracked[i].track, s.score);
            }
        }
        for (k, (&(i, quality), embedding)) in kept.iter().zip(embeddings).enumerate() {
            let fused = self.decider.fuse(&camera, tracked[i].track, embedding, quality);
            let identification = matcher.identify(&fused, &policy);
            log::debug!("{camera}: track {} {:?}", tracked[i].track, identification);
            let Some(decision) =
                self.decider.vote(&camera, frame.captured, tracked[i].track, boxes[i], &identification)
            else {
                continue;
            };
            let recognised = matches!(decision.outcome, Outcome::Recognised { .. });
            if let Some(live) = &self.live {
                let verdict = (recognised && self.engine.liveness.is_some()).then(|| "live".to_string());
                live.decided(frame.camera, &decision, verdict);
            }
            // Never learn from a track refused as a spoof: a photo must not become a template.
            if let (true, Some(rules), Identification::Match { person, similarity, margin }) =
                (recognised, self.auto_update, &identification)
                && rules.should_learn(policy.threshold, policy.margin, *similarity, *margin, quality)
            {
                outputs.extend(self.learn(frame.camera, &camera, person, &fused, rules.max_per_person));
            }
            let snapshot = self
                .snapshots
                .then(|| encode_jpeg(&face_crop(&frame.image, &boxes[i])))
                .and_then(|r| r.map_err(|e| log::warn!("{camera}: cannot encode the face snapshot: {e}")).ok());
            let unknown = (self.unknown_inbox && decision.outcome == Outcome::Unknown)
                .then(|| self.unknown_evidence(&camera, &crops[k], fused, policy.threshold, quality))
                .flatten();
            let attributes = self.estimate(&camera, &decision.outcome, &frame.image, &detections[i]).map(Box::new);
            outputs.push(VisionOutput::Decision(CameraDecision {
                camera: frame.camera,
                decision,
                snapshot,
                unknown,
                attributes,
            }));
        }
        Ok(outputs)
    }
}
