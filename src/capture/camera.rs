//! One long-lived thread per camera: open the source, publish its frames to the hub, and after
//! any failure report it, wait (exponential backoff) and open it again, until told to stop.
//! A source error never leaves its thread, and a panic inside a source is caught and treated
//! like any other failure, so one bad camera cannot take the process down.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};

use super::Frame;
use super::backoff::Backoff;
use super::config::{CameraConfig, SourceConfig};
use super::hub::{CameraState, FrameHub};
use super::replay::ReplaySource;
use super::source::{FrameSource, Next, Shutdown, SourceContext};
use crate::decide::clock::Clock;

/// This many undecodable frames in a row means the stream itself is broken: reopen it.
pub const CORRUPT_STORM: u32 = 30;

/// The running camera threads. [`stop`](Self::stop) (or dropping it) stops and joins them.
pub struct Cameras {
    shutdown: Arc<Shutdown>,
    threads: Vec<JoinHandle<()>>,
}

impl Cameras {
    /// Asks every camera thread to stop and waits for them (each checks between frames and
    /// during waits, so this takes at most about a second).
    pub fn stop(&mut self) {
        self.shutdown.trigger();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::error!("a camera thread panicked while stopping");
            }
        }
    }

    /// How many camera threads are running.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }
}

impl Drop for Cameras {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds the source for one configured camera. Fails only when this build cannot read that
/// kind of camera at all (a missing cargo feature); everything else is retried at run time.
pub fn make_source(config: &CameraConfig) -> Result<Box<dyn FrameSource>> {
    Ok(match &config.source {
        SourceConfig::Replay(replay) => Box::new(ReplaySource::new(replay.clone())),
        #[cfg(feature = "v4l2")]
        SourceConfig::V4l2(v4l2) => Box::new(super::v4l2::V4l2Source::new(v4l2.clone())),
        #[cfg(not(feature = "v4l2"))]
        SourceConfig::V4l2(_) => bail!("this build has no V4L2 support; rebuild with --features v4l2"),
        #[cfg(feature = "rtsp")]
        SourceConfig::Rtsp(rtsp) => Box::new(super::rtsp::RtspSource::new(rtsp.clone())),
        #[cfg(not(feature = "rtsp"))]
        SourceConfig::Rtsp(_) => bail!("this build has no RTSP support; rebuild with --features rtsp"),
    })
}

/// Starts one thread per configured camera, publishing to `hub` (whose slot `i` is
/// `configs[i]`). Errors only if a camera kind is unsupported by this build or a thread cannot
/// be started; cameras that cannot be reached yet are retried in the background.
pub fn spawn_cameras(configs: &[CameraConfig], clock: Arc<dyn Clock>, hub: Arc<FrameHub>) -> Result<Cameras> {
    if hub.cameras() != configs.len() {
        bail!("the frame hub has {} camera slots but {} cameras are configured", hub.cameras(), configs.len());
    }
    let sources = configs
        .iter()
        .enumerate()
        .map(|(i, c)| make_source(c).with_context(|| format!("camera[{i}] \"{}\"", c.name)))
        .collect::<Result<Vec<_>>>()?;
    let ctx = SourceContext::new(clock);
    let mut cameras = Cameras { shutdown: ctx.shutdown.clone(), threads: Vec::new() };
    for (index, (source, config)) in sources.into_iter().zip(configs).enumerate() {
        cameras.threads.push(spawn_source(index, &config.name, source, ctx.clone(), hub.clone())?);
    }
    Ok(cameras)
}

/// Starts the supervising thread for one source feeding hub slot `index`.
pub fn spawn_source(
    index: usize,
    name: &str,
    source: Box<dyn FrameSource>,
    ctx: SourceContext,
    hub: Arc<FrameHub>,
) -> Result<JoinHandle<()>> {
    let label = name.to_string();
    std::thread::Builder::new()
        .name(format!("camera-{name}"))
        .spawn(move || supervise(index, &label, source, &ctx, &hub, Backoff::default()))
        .with_context(|| format!("cannot start the thread for camera \"{name}\""))
}

/// Why one streaming session ended.
enum Outcome {
    Stopped,
    Ended,
    Failed(anyhow::Error),
}

/// The per-camera loop: open, stream, and after a failure back off and reopen.
fn supervise(
    index: usize,
    name: &str,
    mut source: Box<dyn FrameSource>,
    ctx: &SourceContext,
    hub: &FrameHub,
    mut backoff: Backoff,
) {
    let mut seq = 0u64;
    let mut attempt = 0u64;
    while !ctx.stopping() {
        if attempt > 0 {
            hub.count_reconnect(index);
        }
        attempt += 1;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            stream_once(index, name, source.as_mut(), ctx, hub, &mut backoff, &mut seq)
        }))
        .unwrap_or_else(|panic| Outcome::Failed(anyhow::anyhow!("the source panicked: {}", panic_text(&panic))));
        match outcome {
            Outcome::Stopped => break,
            Outcome::Ended => {
                log::info!("camera {name}: end of {} after {seq} frames", source.name());
                hub.set_state(index, CameraState::Ended);
                return;
            }
            Outcome::Failed(error) => {
                let delay = backoff.next_delay();
                let error = format!("{error:#}");
                log::warn!("camera {name} ({}): {error}; retrying in {:.1} s", source.name(), delay.as_secs_f64());
                hub.set_state(index, CameraState::Reconnecting { error });
                if !ctx.shutdown.sleep(delay) {
                    break;
                }
            }
        }
    }
    log::debug!("camera {name}: stopped");
}

/// Opens the source once and streams until failure, end or shutdown.
fn stream_once(
    index: usize,
    name: &str,
    source: &mut dyn FrameSource,
    ctx: &SourceContext,
    hub: &FrameHub,
    backoff: &mut Backoff,
    seq: &mut u64,
) -> Outcome {
    if let Err(error) = source.open(ctx) {
        return Outcome::Failed(error);
    }
    let mut corrupt_in_a_row = 0u32;
    let mut announced = false;
    loop {
        if ctx.stopping() {
            return Outcome::Stopped;
        }
        match source.next_frame(ctx) {
            Ok(Next::Frame { image, captured }) => {
                if !announced {
                    log::info!("camera {name}: streaming {}x{} from {}", image.width(), image.height(), source.name());
                    announced = true;
                }
                corrupt_in_a_row = 0;
                backoff.reset();
                hub.publish(Frame { camera: index, seq: *seq, captured, image });
                *seq += 1;
            }
            Ok(Next::Corrupt(why)) => {
                hub.count_corrupt(index);
                corrupt_in_a_row += 1;
                log::debug!("camera {name}: skipped a corrupt frame: {why}");
                if corrupt_in_a_row >= CORRUPT_STORM {
                    return Outcome::Failed(anyhow::anyhow!(
                        "{CORRUPT_STORM} frames in a row could not be decoded (last: {why})"
                    ));
                }
            }
            Ok(Next::Idle) => {}
            Ok(Next::End) => return Outcome::Ended,
            Err(error) => return Outcome::Failed(error),
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::decide::clock::MonotonicClock;

    /// A scripted source: each open pops the next script; an empty script means "open fails".
    struct Scripted {
        opens: Arc<Mutex<VecDeque<Vec<Step>>>>,
        current: VecDeque<Step>,
    }

    #[derive(Clone)]
    enum Step {
        Frame,
        Corrupt,
        Fail,
        Panic,
        End,
    }

    impl FrameSource for Scripted {
        fn name(&self) -> String {
            "scripted".into()
        }
        fn open(&mut self, _: &SourceContext) -> Result<()> {
            match self.opens.lock().unwrap().pop_front() {
                Some(script) => {
                    self.current = script.into();
                    Ok(())
                }
                None => bail!("connection refused"),
            }
        }
        fn next_frame(&mut self, ctx: &SourceContext) -> Result<Next> {
            Ok(match self.current.pop_front() {
                Some(Step::Frame) => Next::Frame { image: image::RgbImage::new(4, 3), captured: ctx.now() },
                Some(Step::Corrupt) => Next::Corrupt("bad huffman code".into()),
                Some(Step::Fail) => bail!("stream reset"),
                Some(Step::Panic) => panic!("decoder blew up"),
                Some(Step::End) => Next::End,
                None => {
                    std::thread::sleep(Duration::from_millis(2));
                    Next::Idle
                }
            })
        }
    }

    fn run(scripts: Vec<Vec<Step>>) -> (Arc<FrameHub>, Arc<Shutdown>, JoinHandle<()>) {
        let hub = Arc::new(FrameHub::new(["cam"]));
        let source = Scripted { opens: Arc::new(Mutex::new(scripts.into())), current: VecDeque::new() };
        let ctx = SourceContext::new(Arc::new(MonotonicClock::default()));
        let shutdown = ctx.shutdown.clone();
        let hub2 = hub.clone();
        let fast = Backoff::new(Duration::from_millis(1), Duration::from_millis(4));
        let thread = std::thread::spawn(move || supervise(0, "cam", Box::new(source), &ctx, &hub2, fast));
        (hub, shutdown, thread)
    }

    fn wait_for(hub: &FrameHub, what: impl Fn(&super::super::CameraStats) -> bool) {
        let start = Instant::now();
        while !what(&hub.stats()[0]) {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out; stats {:?}", hub.stats());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn failures_and_panics_reconnect_and_corrupt_frames_are_counted() {
        use Step::*;
        let (hub, shutdown, thread) = run(vec![vec![Frame, Corrupt, Frame, Fail], vec![Panic], vec![Frame, End]]);
        wait_for(&hub, |s| s.state == CameraState::Ended);
        let s = &hub.stats()[0];
        assert_eq!((s.frames, s.corrupt, s.reconnects), (3, 1, 2), "{s:?}");
        shutdown.trigger();
        thread.join().unwrap();
    }

    #[test]
    fn a_storm_of_corrupt_frames_reopens_the_source() {
        let mut script = vec![Step::Corrupt; CORRUPT_STORM as usize];
        script.push(Step::Frame);
        let (hub, shutdown, thread) = run(vec![script, vec![Step::Frame]]);
        wait_for(&hub, |s| s.frames == 1);
        let s = &hub.stats()[0];
        assert_eq!((s.corrupt, s.reconnects), (CORRUPT_STORM as u64, 1), "{s:?}");
        shutdown.trigger();
        thread.join().unwrap();
    }

    #[test]
    fn open_errors_show_as_reconnecting_and_stop_is_prompt() {
        let (hub, shutdown, thread) = run(vec![]);
        wait_for(&hub, |s| s.reconnects >= 3);
        assert_eq!(hub.stats()[0].state, CameraState::Reconnecting { error: "connection refused".into() });
        let start = Instant::now();
        shutdown.trigger();
        thread.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn spawn_checks_the_hub_matches_the_config() {
        let hub = Arc::new(FrameHub::new(["a", "b"]));
        let err = spawn_cameras(&[], Arc::new(MonotonicClock::default()), hub).err().map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("2 camera slots but 0 cameras"));
    }
}
