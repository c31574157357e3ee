//! RTSP IP cameras: retina (async RTSP/RTP) on a small single-threaded tokio runtime owned by
//! the camera's thread, H.264 decoded by OpenH264. Every wait is bounded and watches the stop
//! flag, so a dead camera or a shutdown never hangs the thread. Credentials go to retina
//! separately from the URL and never into messages.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use retina::client::{Credentials, Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};

use super::config::{RtspConfig, RtspTransport, redact_url};
use super::h264::H264Decoder;
use super::source::{FrameSource, Next, SourceContext};

/// Longest wait for the camera to answer DESCRIBE/SETUP/PLAY.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A playing stream with no video frame for this long is treated as dead and reopened.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one `next_frame` call waits before returning `Idle` (bounds shutdown latency).
const POLL: Duration = Duration::from_millis(200);

/// A [`FrameSource`] reading H.264 video from an RTSP camera.
pub struct RtspSource {
    config: RtspConfig,
    runtime: Option<tokio::runtime::Runtime>,
    stream: Option<Pin<Box<Demuxed>>>,
    decoder: Option<H264Decoder>,
    /// Clock time of the last video frame (or of the connection).
    last_video: Duration,
    /// Frames before the first key frame cannot be decoded; they are skipped quietly.
    seen_key_frame: bool,
}

impl RtspSource {
    pub fn new(config: RtspConfig) -> RtspSource {
        RtspSource {
            config,
            runtime: None,
            stream: None,
            decoder: None,
            last_video: Duration::ZERO,
            seen_key_frame: false,
        }
    }

    fn runtime(&mut self) -> Result<&tokio::runtime::Runtime> {
        if self.runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime for RTSP")?;
            self.runtime = Some(runtime);
        }
        self.runtime.as_ref().ok_or_else(|| anyhow!("RTSP runtime missing"))
    }
}

/// Runs `fut` to completion unless `limit` passes (`Some(Err)`) or shutdown is asked (`None`);
/// either way the future is dropped, which cancels it.
fn run_bounded<F: Future>(
    runtime: &tokio::runtime::Runtime,
    ctx: &SourceContext,
    limit: Duration,
    fut: F,
) -> Option<std::result::Result<F::Output, tokio::time::error::Elapsed>> {
    runtime.block_on(async {
        let stop = async {
            while !ctx.stopping() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            out = tokio::time::timeout(limit, fut) => Some(out),
            () = stop => None,
        }
    })
}

/// DESCRIBE, SETUP of the first video stream (refusing codecs other than H.264) and PLAY.
async fn connect(config: &RtspConfig) -> Result<Demuxed> {
    let (bare, creds) = config.credentials();
    let shown = redact_url(&config.url);
    let url = url::Url::parse(&bare).map_err(|e| anyhow!("the camera URL {shown} is not valid: {e}"))?;
    let options = SessionOptions::default()
        .creds(creds.map(|(username, password)| Credentials { username, password }))
        .user_agent(format!("facegate/{}", env!("CARGO_PKG_VERSION")));
    let mut session = Session::describe(url, options).await.map_err(|e| explain(&e.to_string(), &shown))?;
    let streams = session.streams();
    let Some(index) = streams.iter().position(|s| s.media() == "video") else {
        bail!(
            "{shown} offers no video stream (only: {})",
            streams.iter().map(|s| s.media()).collect::<Vec<_>>().join(", ")
        );
    };
    let codec = streams[index].encoding_name().to_ascii_lowercase();
    if codec != "h264" {
        let name = match codec.as_str() {
            "h265" => "H.265 (HEVC)".to_string(),
            "jpeg" => "Motion JPEG over RTP".to_string(),
            other => other.to_string(),
        };
        bail!(
            "{shown} sends {name} video, but facegate decodes only H.264; set the camera's stream to H.264 in its settings"
        );
    }
    let transport = match config.transport {
        RtspTransport::Tcp => Transport::Tcp(Default::default()),
        RtspTransport::Udp => Transport::Udp(Default::default()),
    };
    session
        .setup(index, SetupOptions::default().transport(transport).frame_format(FrameFormat::SIMPLE))
        .await
        .map_err(|e| explain(&e.to_string(), &shown))?;
    let playing = session.play(PlayOptions::default()).await.map_err(|e| explain(&e.to_string(), &shown))?;
    playing.demuxed().map_err(|e| explain(&e.to_string(), &shown))
}

/// Turns a retina error into a message with a hint, for the cases a user can fix.
fn explain(error: &str, shown_url: &str) -> anyhow::Error {
    let hint = if error.contains("401") {
        "; the camera refused the login: check source.username and source.password"
    } else if error.contains("404") {
        "; the camera has no stream at this path: check the path part of source.url"
    } else if error.to_ascii_lowercase().contains("connection refused") {
        "; nothing listens there: check the host and port of source.url and that the camera is on"
    } else {
        ""
    };
    anyhow!("RTSP {shown_url}: {error}{hint}")
}

impl FrameSource for RtspSource {
    fn name(&self) -> String {
        let transport = match self.config.transport {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        };
        format!("rtsp {} over {transport}", redact_url(&self.config.url))
    }

    fn open(&mut self, ctx: &SourceContext) -> Result<()> {
        self.stream = None;
        self.decoder = Some(H264Decoder::new()?);
        self.seen_key_frame = false;
        let config = self.config.clone();
        let shown = redact_url(&config.url);
        let runtime = self.runtime()?;
        let demuxed = match run_bounded(runtime, ctx, CONNECT_TIMEOUT, connect(&config)) {
            None => bail!("stopped while connecting"),
            Some(Err(_)) => bail!("RTSP {shown}: no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            Some(Ok(result)) => result?,
        };
        self.stream = Some(Box::pin(demuxed));
        self.last_video = ctx.now();
        Ok(())
    }

    fn next_frame(&mut self, ctx: &SourceContext) -> Result<Next> {
        let shown = redact_url(&self.config.url);
        let (Some(runtime), Some(stream)) = (self.runtime.as_ref(), self.stream.as_mut()) else {
            bail!("RTSP stream read before it was opened");
        };
        let item = match run_bounded(runtime, ctx, POLL, stream.next()) {
            None => return Ok(Next::Idle),
            Some(Err(_)) => {
                let silent = ctx.now().saturating_sub(self.last_video);
                if silent >= STALL_TIMEOUT {
                    bail!("RTSP {shown}: no video for {} s", silent.as_secs());
                }
                return Ok(Next::Idle);
            }
            Some(Ok(None)) => bail!("RTSP {shown}: the camera ended the stream"),
            Some(Ok(Some(Err(e)))) => return Err(explain(&e.to_string(), &shown)),
            Some(Ok(Some(Ok(item)))) => item,
        };
        let CodecItem::VideoFrame(frame) = item else { return Ok(Next::Idle) };
        let captured = ctx.now();
        self.last_video = captured;
        if !self.seen_key_frame {
            if !frame.is_random_access_point() {
                return Ok(Next::Idle);
            }
            self.seen_key_frame = true;
        }
        let Some(decoder) = self.decoder.as_mut() else { bail!("H.264 decoder missing") };
        Ok(match decoder.decode(frame.data()) {
            Ok(Some(image)) => Next::Frame { image, captured },
            Ok(None) => Next::Idle,
            Err(e) => Next::Corrupt(format!("{e:#}")),
        })
    }
}
