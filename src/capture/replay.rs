//! File replay: a folder of images, an MJPEG file or an H.264 Annex-B file played at a fixed
//! frame rate against the clock, looping if asked. The demo's camera and the tests' workhorse;
//! it behaves like a camera (pacing, corrupt frames skipped and counted, end of stream).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use image::RgbImage;

use super::config::ReplayConfig;
use super::mjpeg::{Chunk, MjpegSplitter};
use super::source::{FrameSource, Next, SourceContext};
use super::{image_file, pixfmt};

/// File name endings played from a folder.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "gif", "tif", "tiff", "webp"];

/// Hands out due times `period` apart; after falling behind by more than a period it restarts
/// from now instead of bursting to catch up (a camera does not deliver the frames it missed).
#[derive(Debug, Clone)]
pub struct Pacer {
    period: Duration,
    next: Option<Duration>,
}

impl Pacer {
    pub fn new(fps: f64) -> Pacer {
        Pacer { period: Duration::from_secs_f64(1.0 / fps), next: None }
    }

    /// When the next frame is due, given the time now.
    pub fn next_due(&mut self, now: Duration) -> Duration {
        let mut due = self.next.unwrap_or(now);
        if now > due + self.period {
            due = now;
        }
        self.next = Some(due + self.period);
        due
    }
}

/// One decoded item of a replay: a picture, or why it could not be decoded.
type Item = std::result::Result<RgbImage, String>;

/// The content of a replay file or folder, read frame by frame.
enum Reader {
    Folder {
        files: Vec<PathBuf>,
        next: usize,
    },
    Mjpeg {
        data: Vec<u8>,
        chunks: Vec<std::result::Result<Range<usize>, &'static str>>,
        next: usize,
    },
    #[cfg(feature = "rtsp")]
    H264 {
        data: Vec<u8>,
        nals: Vec<Range<usize>>,
        next: usize,
        decoder: super::h264::H264Decoder,
        /// Pictures the decoder still held at the end of the file (it delays output for
        /// reordering), handed out after the last NAL unit.
        tail: std::collections::VecDeque<Item>,
    },
}

impl Reader {
    /// Reads and checks the file or folder at `path`.
    fn open(path: &Path) -> Result<Reader> {
        let shown = path.display();
        let meta = std::fs::metadata(path).with_context(|| {
            format!("cannot open replay {shown}; check source.path (a folder of images, an MJPEG or an H.264 file)")
        })?;
        if meta.is_dir() {
            return Reader::folder(path);
        }
        let data = std::fs::read(path).with_context(|| format!("cannot read replay file {shown}"))?;
        let convert = "convert it with ffmpeg, e.g. `ffmpeg -i IN -c:v mjpeg -q:v 3 -f mjpeg OUT.mjpeg` \
                       or `ffmpeg -i IN -c:v libx264 -bsf:v h264_mp4toannexb -f h264 OUT.h264`";
        match data.as_slice() {
            [] => bail!("replay file {shown} is empty"),
            [0xFF, 0xD8, ..] => Ok(Reader::mjpeg(data)),
            [0, 0, 1, ..] | [0, 0, 0, 1, ..] => Reader::annexb(data, path),
            [_, _, _, _, b'f', b't', b'y', b'p', ..] => {
                bail!("replay file {shown} is an MP4/MOV container, which facegate does not unpack; {convert}")
            }
            [0x1A, 0x45, 0xDF, 0xA3, ..] => {
                bail!("replay file {shown} is a Matroska/WebM container, which facegate does not unpack; {convert}")
            }
            _ => bail!("replay file {shown} is neither MJPEG (concatenated JPEGs) nor H.264 Annex B; {convert}"),
        }
    }

    fn folder(path: &Path) -> Result<Reader> {
        let entries =
            std::fs::read_dir(path).with_context(|| format!("cannot list replay folder {}", path.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        if files.is_empty() {
            bail!("replay folder {} holds no images ({})", path.display(), IMAGE_EXTENSIONS.join(", "));
        }
        files.sort();
        Ok(Reader::Folder { files, next: 0 })
    }

    fn mjpeg(data: Vec<u8>) -> Reader {
        let base = data.as_ptr() as usize;
        let offset = |s: &[u8]| s.as_ptr() as usize - base;
        let chunks = MjpegSplitter::new(&data)
            .map(|chunk| match chunk {
                Chunk::Frame(f) => Ok(offset(f)..offset(f) + f.len()),
                Chunk::Corrupt(_, why) => Err(why),
            })
            .collect();
        Reader::Mjpeg { data, chunks, next: 0 }
    }

    #[cfg(feature = "rtsp")]
    fn annexb(data: Vec<u8>, path: &Path) -> Result<Reader> {
        use super::h264::{AnnexBCodec, H264Decoder, sniff_annexb};
        match sniff_annexb(&data) {
            AnnexBCodec::H264 => {}
            AnnexBCodec::H265 => bail!(
                "replay file {} is H.265 (HEVC), which facegate cannot decode; re-encode it to H.264 \
                 (`ffmpeg -i IN -c:v libx264 -f h264 OUT.h264`) or MJPEG",
                path.display()
            ),
            AnnexBCodec::Unknown => {
                bail!("replay file {} is an Annex-B stream of an unknown codec; facegate plays H.264", path.display())
            }
        }
        let base = data.as_ptr() as usize;
        let nals = openh264::nal_units(&data)
            .map(|n| n.as_ptr() as usize - base..n.as_ptr() as usize - base + n.len())
            .collect();
        Ok(Reader::H264 { data, nals, next: 0, decoder: H264Decoder::new()?, tail: Default::default() })
    }

    #[cfg(not(feature = "rtsp"))]
    fn annexb(_data: Vec<u8>, path: &Path) -> Result<Reader> {
        bail!(
            "replay file {} is H.264, but this build has no H.264 decoder; rebuild with --features rtsp",
            path.display()
        )
    }

    /// Back to the first frame (for looping).
    fn rewind(&mut self) -> Result<()> {
        match self {
            Reader::Folder { next, .. } | Reader::Mjpeg { next, .. } => *next = 0,
            #[cfg(feature = "rtsp")]
            Reader::H264 { next, decoder, tail, .. } => {
                *next = 0;
                tail.clear();
                // Reference frames of the end must not bleed into the start.
                *decoder = super::h264::H264Decoder::new()?;
            }
        }
        Ok(())
    }

    /// The next picture, `None` at the end.
    fn next_item(&mut self) -> Option<Item> {
        match self {
            Reader::Folder { files, next } => {
                let file = files.get(*next)?;
                *next += 1;
                Some(image_file::load_rgb(file).map_err(|e| e.to_string()))
            }
            Reader::Mjpeg { data, chunks, next } => {
                let chunk = chunks.get(*next)?;
                *next += 1;
                Some(match chunk {
                    Ok(range) => pixfmt::mjpeg_to_rgb(&data[range.clone()]).map_err(|e| format!("{e:#}")),
                    Err(why) => Err(why.to_string()),
                })
            }
            #[cfg(feature = "rtsp")]
            Reader::H264 { data, nals, next, decoder, tail } => {
                // Feed NAL units until one completes a picture; parameter sets produce none.
                while let Some(range) = nals.get(*next) {
                    *next += 1;
                    match decoder.decode(&data[range.clone()]) {
                        Ok(Some(picture)) => return Some(Ok(picture)),
                        Ok(None) => {}
                        Err(e) => return Some(Err(format!("{e:#}"))),
                    }
                }
                if *next == nals.len() {
                    // Past the last NAL unit once: collect what the decoder still holds.
                    *next += 1;
                    match decoder.flush() {
                        Ok(pictures) => tail.extend(pictures.into_iter().map(Ok)),
                        Err(e) => tail.push_back(Err(format!("{e:#}"))),
                    }
                }
                tail.pop_front()
            }
        }
    }
}

/// A [`FrameSource`] playing a file or folder.
pub struct ReplaySource {
    config: ReplayConfig,
    reader: Option<Reader>,
    pacer: Pacer,
    /// Pictures handed out since the last rewind, to tell an unplayable file from an empty pass.
    played_this_pass: u64,
}

impl ReplaySource {
    pub fn new(config: ReplayConfig) -> ReplaySource {
        let pacer = Pacer::new(config.fps);
        ReplaySource { config, reader: None, pacer, played_this_pass: 0 }
    }
}

impl FrameSource for ReplaySource {
    fn name(&self) -> String {
        format!("replay {}", self.config.path.display())
    }

    fn open(&mut self, _ctx: &SourceContext) -> Result<()> {
        self.reader = None;
        self.reader = Some(Reader::open(&self.config.path)?);
        self.pacer = Pacer::new(self.config.fps);
        self.played_this_pass = 0;
        Ok(())
    }

    fn next_frame(&mut self, ctx: &SourceContext) -> Result<Next> {
        let Some(reader) = self.reader.as_mut() else { bail!("replay read before it was opened") };
        let due = self.pacer.next_due(ctx.now());
        if !ctx.wait_until(due) {
            return Ok(Next::Idle);
        }
        let captured = ctx.now();
        let item = match reader.next_item() {
            Some(item) => item,
            None if !self.config.looping => return Ok(Next::End),
            None => {
                if self.played_this_pass == 0 {
                    bail!("replay {} has no playable frame", self.config.path.display());
                }
                reader.rewind()?;
                self.played_this_pass = 0;
                match reader.next_item() {
                    Some(item) => item,
                    None => bail!("replay {} is empty after rewinding", self.config.path.display()),
                }
            }
        };
        Ok(match item {
            Ok(image) => {
                self.played_this_pass += 1;
                Next::Frame { image, captured }
            }
            Err(why) => Next::Corrupt(why),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::capture::hub::{CameraState, FrameHub};
    use crate::capture::mjpeg::tests::jpeg;
    use crate::capture::{CameraConfig, SourceConfig, spawn_cameras};
    use crate::decide::clock::{Clock, MonotonicClock, SimulatedClock};

    fn camera(path: &Path, fps: f64, looping: bool) -> CameraConfig {
        CameraConfig {
            name: "replay".into(),
            location: "test".into(),
            door: None,
            tuning: Default::default(),
            source: SourceConfig::Replay(ReplayConfig { path: path.to_path_buf(), fps, looping }),
        }
    }

    fn start(cam: CameraConfig, clock: Arc<dyn Clock>) -> (Arc<FrameHub>, crate::capture::Cameras) {
        let cams = [cam];
        let hub = Arc::new(FrameHub::for_cameras(&cams));
        let running = spawn_cameras(&cams, clock, hub.clone()).unwrap();
        (hub, running)
    }

    fn drain(hub: &FrameHub) -> Vec<crate::capture::Frame> {
        let mut frames = Vec::new();
        while let Some(f) = hub.next(Duration::from_secs(10)) {
            frames.push(f);
        }
        frames
    }

    #[test]
    fn pacer_spaces_frames_and_does_not_burst_after_a_stall() {
        let ms = Duration::from_millis;
        let mut p = Pacer::new(10.0);
        assert_eq!(p.next_due(ms(5)), ms(5));
        assert_eq!(p.next_due(ms(6)), ms(105));
        assert_eq!(p.next_due(ms(150)), ms(205), "a little late: keep the schedule");
        assert_eq!(p.next_due(ms(900)), ms(900), "far behind: restart from now");
        assert_eq!(p.next_due(ms(901)), ms(1000));
    }

    #[test]
    fn folder_replay_follows_a_simulated_clock_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        for (i, shade) in [30u8, 120, 220].iter().enumerate() {
            image::RgbImage::from_pixel(8, 6, image::Rgb([*shade, 0, 0]))
                .save(dir.path().join(format!("{i:02}.png")))
                .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        let clock = SimulatedClock::default();
        let (hub, _cams) = start(camera(dir.path(), 10.0, false), Arc::new(clock.clone()));
        let first = hub.next(Duration::from_secs(10)).unwrap();
        assert_eq!((first.seq, first.captured, first.image.get_pixel(0, 0).0[0]), (0, Duration::ZERO, 30));
        assert_eq!(hub.next(Duration::from_millis(150)), None, "the next frame waits for the clock");
        clock.advance(Duration::from_millis(100));
        let second = hub.next(Duration::from_secs(10)).unwrap();
        assert_eq!(
            (second.seq, second.captured, second.image.get_pixel(0, 0).0[0]),
            (1, Duration::from_millis(100), 120)
        );
        clock.advance(Duration::from_millis(100));
        assert_eq!(hub.next(Duration::from_secs(10)).map(|f| f.seq), Some(2));
        clock.advance(Duration::from_millis(100));
        assert_eq!(hub.next(Duration::from_secs(10)), None);
        assert!(hub.all_ended());
        assert_eq!(hub.stats()[0].state, CameraState::Ended);
    }

    #[test]
    fn mjpeg_replay_skips_and_counts_corrupt_frames_and_loops_on_a_real_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mjpeg");
        let (a, b) = (jpeg(20), jpeg(230));
        std::fs::write(&path, [&a[..], &b[..b.len() / 2], &b, b"junk", &a].concat()).unwrap();
        let start_time = Instant::now();
        let (hub, _cams) = start(camera(&path, 50.0, false), Arc::new(MonotonicClock::default()));
        let frames = drain(&hub);
        let elapsed = start_time.elapsed();
        let stats = &hub.stats()[0];
        assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!((stats.frames, stats.corrupt, stats.stale_drops), (3, 2, 0), "{stats:?}");
        assert!(elapsed >= Duration::from_millis(80), "5 items at 50 fps take 80 ms or more, took {elapsed:?}");
        let gaps: Vec<_> = frames.windows(2).map(|w| w[1].captured - w[0].captured).collect();
        assert!(gaps.iter().all(|g| *g >= Duration::from_millis(35)), "{gaps:?}");

        let (hub, mut cams) = start(camera(&path, 200.0, true), Arc::new(MonotonicClock::default()));
        let mut seen = 0;
        while seen < 8 {
            assert!(hub.next(Duration::from_secs(10)).is_some(), "a looping replay keeps going");
            seen += 1;
        }
        cams.stop();
        assert!(hub.stats()[0].corrupt >= 4, "{:?}", hub.stats());
        assert!(!hub.all_ended());
    }

    #[test]
    fn unplayable_paths_retry_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let mp4 = dir.path().join("clip.mp4");
        std::fs::write(&mp4, b"\0\0\0\x18ftypmp42rest").unwrap();
        let cases = [
            (dir.path().join("missing.mjpeg"), "cannot open replay"),
            (mp4, "MP4/MOV container"),
            (dir.path().to_path_buf(), "holds no images"),
        ];
        for (path, expected) in cases {
            let (hub, mut cams) = start(camera(&path, 10.0, false), Arc::new(MonotonicClock::default()));
            let begin = Instant::now();
            loop {
                if let CameraState::Reconnecting { error } = &hub.stats()[0].state {
                    assert!(error.contains(expected), "{error}");
                    break;
                }
                assert!(begin.elapsed() < Duration::from_secs(10), "{:?}", hub.stats());
                std::thread::sleep(Duration::from_millis(5));
            }
            cams.stop();
        }
    }

    #[cfg(feature = "rtsp")]
    #[test]
    fn h264_file_replay_decodes_every_frame_at_its_size() {
        use openh264::encoder::Encoder;
        use openh264::formats::{RgbSliceU8, YUVBuffer};
        let mut encoder = Encoder::new().unwrap();
        let mut stream = Vec::new();
        for shade in [40u8, 120, 200, 90, 160] {
            let rgb = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([shade, (x * 4) as u8, (y * 5) as u8]));
            let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(rgb.as_raw(), (64, 48)));
            encoder.encode(&yuv).unwrap().write_vec(&mut stream);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.h264");
        std::fs::write(&path, &stream).unwrap();
        let (hub, _cams) = start(camera(&path, 100.0, false), Arc::new(MonotonicClock::default()));
        let frames = drain(&hub);
        assert_eq!(frames.len(), 5, "every frame, the decoder's last ones too; stats {:?}", hub.stats());
        assert!(frames.iter().all(|f| f.image.dimensions() == (64, 48)));
        let red: Vec<u8> = frames.iter().map(|f| f.image.get_pixel(2, 2).0[0]).collect();
        assert!(red[0] < 80 && red[1] > 90, "frames follow the clip's shades: {red:?}");
        assert_eq!(hub.stats()[0].state, CameraState::Ended);
    }

    #[cfg(feature = "rtsp")]
    #[test]
    fn h265_files_are_refused_by_name() {
        let err = Reader::open_test(&[0, 0, 0, 1, 0x40, 0x01, 0x0c, 0x01, 0xff]).err().unwrap_or_default();
        assert!(err.contains("H.265 (HEVC)"), "{err}");
    }

    impl Reader {
        fn open_test(bytes: &[u8]) -> std::result::Result<Reader, String> {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let path = dir.path().join("clip.bin");
            std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
            Reader::open(&path).map_err(|e| format!("{e:#}"))
        }
    }
}
