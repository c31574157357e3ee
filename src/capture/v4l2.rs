//! Local cameras through V4L2 (the `v4l` crate): negotiate size, rate and pixel format, stream
//! through memory-mapped buffers, and convert each buffer to RGB in place of a copy. Reads
//! time out after a second so shutdown stays prompt, and a camera that stops delivering is
//! reopened.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use v4l::buffer::{Flags, Type};
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, FourCC, Fraction};

use super::config::{PixelFormat, V4l2Config};
use super::pixfmt;
use super::source::{FrameSource, Next, SourceContext};

/// How long one read waits for the driver (bounds shutdown latency).
const POLL: Duration = Duration::from_secs(1);
/// A camera with no frame for this long is treated as gone and reopened.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Buffers the driver fills while we convert.
const BUFFERS: u32 = 4;

/// The format the camera agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub width: u32,
    pub height: u32,
    /// Bytes per line of the (first) plane.
    pub stride: usize,
    pub format: PixelFormat,
}

/// A [`FrameSource`] reading a V4L2 capture device.
pub struct V4l2Source {
    config: V4l2Config,
    stream: Option<Stream<'static>>,
    negotiated: Option<Negotiated>,
    last_frame: Duration,
}

impl V4l2Source {
    pub fn new(config: V4l2Config) -> V4l2Source {
        V4l2Source { config, stream: None, negotiated: None, last_frame: Duration::ZERO }
    }

    /// The format in use since the last successful open.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }
}

/// The formats a device offers, for error messages ("MJPG (Motion-JPEG), YUYV (YUYV 4:2:2)").
fn offered(device: &Device) -> String {
    match device.enum_formats() {
        Ok(formats) if !formats.is_empty() => {
            formats.iter().map(|f| format!("{} ({})", f.fourcc, f.description)).collect::<Vec<_>>().join(", ")
        }
        _ => "none it would list".into(),
    }
}

/// Opens the device and sets format and frame rate; returns the stream and what was agreed.
fn open_device(config: &V4l2Config) -> Result<(Stream<'static>, Negotiated)> {
    let path = config.device.display();
    let device = Device::with_path(&config.device).with_context(|| {
        format!("cannot open V4L2 device {path}; check source.device, that the camera is plugged in and that facegate may use it (group `video`)")
    })?;
    let caps = device.query_caps().with_context(|| format!("{path} is not a V4L2 device"))?;
    if !caps.capabilities.contains(v4l::capability::Flags::VIDEO_CAPTURE) {
        bail!("{path} ({}) cannot capture video; pick another /dev/video* (try `v4l2-ctl --list-devices`)", caps.card);
    }
    let mut wanted = device.format().with_context(|| format!("cannot read the format of {path}"))?;
    wanted.width = config.width;
    wanted.height = config.height;
    wanted.fourcc = FourCC::new(&config.format.fourcc());
    let got = device.set_format(&wanted).with_context(|| format!("{path} refused format {}", config.format))?;
    if got.fourcc != wanted.fourcc {
        bail!("{path} does not offer {} (source.format); it offers: {}", config.format, offered(&device));
    }
    if (got.width, got.height) != (config.width, config.height) {
        log::warn!(
            "{path}: asked for {}x{}, the camera gives {}x{} (source.width/height)",
            config.width,
            config.height,
            got.width,
            got.height
        );
    }
    // Frame interval as a fraction of seconds: 1/fps, kept exact for rates like 7.5 or 29.97.
    let interval = Fraction::new(1000, (config.fps * 1000.0).round().max(1.0) as u32);
    let params = v4l::video::capture::Parameters::new(interval);
    if let Err(e) = device.set_params(&params) {
        log::warn!("{path}: cannot set {} fps ({e}); using the camera's rate", config.fps);
    }
    let mut stream = Stream::with_buffers(&device, Type::VideoCapture, BUFFERS)
        .with_context(|| format!("cannot map capture buffers of {path} (is another program using the camera?)"))?;
    stream.set_timeout(POLL);
    let negotiated =
        Negotiated { width: got.width, height: got.height, stride: got.stride as usize, format: config.format };
    Ok((stream, negotiated))
}

/// Converts one filled buffer to RGB.
pub fn convert(buffer: &[u8], n: &Negotiated) -> Result<image::RgbImage> {
    match n.format {
        PixelFormat::Mjpeg => pixfmt::mjpeg_to_rgb(buffer),
        PixelFormat::Yuyv => pixfmt::yuyv_to_rgb(buffer, n.width, n.height, n.stride.max(n.width as usize * 2)),
        PixelFormat::Nv12 => pixfmt::nv12_to_rgb(buffer, n.width, n.height, n.stride.max(n.width as usize)),
        PixelFormat::Grey => pixfmt::grey_to_rgb(buffer, n.width, n.height, n.stride.max(n.width as usize)),
    }
}

impl FrameSource for V4l2Source {
    fn name(&self) -> String {
        format!(
            "v4l2 {} {}x{} {}",
            self.config.device.display(),
            self.config.width,
            self.config.height,
            self.config.format
        )
    }

    fn open(&mut self, ctx: &SourceContext) -> Result<()> {
        self.stream = None;
        let (stream, negotiated) = open_device(&self.config)?;
        self.stream = Some(stream);
        self.negotiated = Some(negotiated);
        self.last_frame = ctx.now();
        Ok(())
    }

    fn next_frame(&mut self, ctx: &SourceContext) -> Result<Next> {
        let (Some(stream), Some(negotiated)) = (self.stream.as_mut(), self.negotiated.as_ref()) else {
            bail!("V4L2 device read before it was opened");
        };
        let (buffer, meta) = match CaptureStream::next(stream) {
            Ok(filled) => filled,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                let silent = ctx.now().saturating_sub(self.last_frame);
                if silent >= STALL_TIMEOUT {
                    bail!("{}: no frame for {} s", self.config.device.display(), silent.as_secs());
                }
                return Ok(Next::Idle);
            }
            Err(e) => bail!("{}: read failed ({e}); the camera may have been unplugged", self.config.device.display()),
        };
        let captured = ctx.now();
        self.last_frame = captured;
        if meta.flags.contains(Flags::ERROR) {
            return Ok(Next::Corrupt("the driver marked the buffer as corrupted".into()));
        }
        let used = (meta.bytesused as usize).min(buffer.len());
        Ok(match convert(&buffer[..used], negotiated) {
            Ok(image) => Next::Frame { image, captured },
            Err(e) => Next::Corrupt(format!("{e:#}")),
        })
    }
}
