//! Camera configuration: the `[[camera]]` tables of the config file, validated with errors that
//! name the key, and credentials that never show up in logs or `Debug` output.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// One `[[camera]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "CameraToml")]
pub struct CameraConfig {
    /// Unique short name, used in logs, stats and events.
    pub name: String,
    /// Human label of where the camera looks ("Lobby", "Back door"), used for "last seen".
    /// Defaults to `name`.
    pub location: String,
    /// The door this camera opens; `None` means the camera only watches.
    pub door: Option<String>,
    pub source: SourceConfig,
    /// This camera's own face-size, quality and threshold settings (a dim back door and a
    /// bright lobby differ); unset keys use the global ones.
    pub tuning: CameraTuning,
}

/// Per-camera overrides, given as keys of the `[[camera]]` table. Plain numbers here; the
/// vision stage applies them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraTuning {
    /// Overrides `detector.min_face` (pixels).
    pub min_face: Option<f32>,
    /// Overrides `decide.min_identify_px` (pixels).
    pub min_identify_px: Option<f32>,
    /// Overrides `matching.threshold` (cosine similarity).
    pub threshold: Option<f32>,
    /// Overrides `decide.min_quality` (0..1).
    pub min_quality: Option<f32>,
}

/// The file form of [`CameraConfig`], where `location` may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraToml {
    name: String,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    door: Option<String>,
    source: SourceConfig,
    #[serde(default)]
    min_face: Option<f32>,
    #[serde(default)]
    min_identify_px: Option<f32>,
    #[serde(default)]
    threshold: Option<f32>,
    #[serde(default)]
    min_quality: Option<f32>,
}

impl From<CameraToml> for CameraConfig {
    fn from(t: CameraToml) -> Self {
        let location = t.location.unwrap_or_else(|| t.name.clone());
        let tuning = CameraTuning {
            min_face: t.min_face,
            min_identify_px: t.min_identify_px,
            threshold: t.threshold,
            min_quality: t.min_quality,
        };
        CameraConfig { name: t.name, location, door: t.door, source: t.source, tuning }
    }
}

/// Where a camera's frames come from; `kind` picks the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceConfig {
    Replay(ReplayConfig),
    V4l2(V4l2Config),
    Rtsp(RtspConfig),
}

/// Plays a folder of images, an MJPEG file or an H.264 Annex-B file at a fixed rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// A folder of images (played in file-name order), an MJPEG file (concatenated JPEGs) or an
    /// H.264 Annex-B elementary stream (`.h264`).
    pub path: PathBuf,
    #[serde(default = "default_fps")]
    pub fps: f64,
    /// Start again at the first frame after the last one instead of ending.
    #[serde(default)]
    pub looping: bool,
}

/// A local V4L2 camera (USB, CSI through a V4L2 driver).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V4l2Config {
    #[serde(default = "default_device")]
    pub device: PathBuf,
    #[serde(default = "default_width")]
    pub width: u32,
    #[serde(default = "default_height")]
    pub height: u32,
    #[serde(default = "default_fps")]
    pub fps: f64,
    #[serde(default)]
    pub format: PixelFormat,
}

/// Pixel formats facegate asks a V4L2 camera for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Motion JPEG: small over USB, decoded on the CPU.
    #[default]
    Mjpeg,
    /// Packed 4:2:2 YUV (YUYV): no decoding, but twice the bytes of RGB's two thirds.
    Yuyv,
    /// Planar 4:2:0 YUV with interleaved chroma (common on CSI cameras and ISPs).
    Nv12,
    /// 8-bit luminance only (infrared cameras).
    Grey,
}

impl PixelFormat {
    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Mjpeg => *b"MJPG",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Nv12 => *b"NV12",
            PixelFormat::Grey => *b"GREY",
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PixelFormat::Mjpeg => "mjpeg",
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Nv12 => "nv12",
            PixelFormat::Grey => "grey",
        })
    }
}

/// An RTSP IP camera (H.264).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtspConfig {
    /// `rtsp://host[:port]/path`. Credentials may be written into it (`rtsp://user:pass@host/`),
    /// but `username`/`password` keep them out of the URL.
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub transport: RtspTransport,
}

/// How RTP packets travel: interleaved in the RTSP TCP connection (works through NAT and
/// firewalls, the default) or as UDP datagrams (less latency on a clean LAN).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    #[default]
    Tcp,
    Udp,
}

impl fmt::Debug for RtspConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RtspConfig")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("transport", &self.transport)
            .finish()
    }
}

impl RtspConfig {
    /// Splits the configured URL and credentials: the URL without any `user:pass@`, and the
    /// username/password from the keys, else from the URL.
    pub fn credentials(&self) -> (String, Option<(String, String)>) {
        let (bare, from_url) = split_userinfo(&self.url);
        let creds = match (&self.username, &self.password) {
            (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
            (None, _) => from_url,
        };
        (bare, creds)
    }
}

fn default_fps() -> f64 {
    10.0
}
fn default_device() -> PathBuf {
    PathBuf::from("/dev/video0")
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}

/// A URL with any `user:password@` replaced by `<redacted>@`, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_string() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_string(),
    }
}

/// The URL without `user:pass@`, and the (percent-decoded) user and password if it had them.
fn split_userinfo(url: &str) -> (String, Option<(String, String)>) {
    let Some(scheme_end) = url.find("://") else { return (url.to_string(), None) };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return (url.to_string(), None) };
    let userinfo = &rest[..at];
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let bare = format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]);
    (bare, Some((percent_decode(user), percent_decode(pass))))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_fps(key: &str, fps: f64) -> Result<()> {
    if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) {
        bail!("{key} must be a frame rate above 0 and at most 240 (got {fps})");
    }
    Ok(())
}

impl CameraTuning {
    fn validate(&self, key: &str) -> Result<()> {
        if let Some(v) = self.min_face
            && !(12.0..=2000.0).contains(&v)
        {
            bail!("{key}.min_face must be between 12 and 2000 pixels (got {v})");
        }
        if let Some(v) = self.min_identify_px
            && !(0.0..=4000.0).contains(&v)
        {
            bail!("{key}.min_identify_px must be between 0 and 4000 pixels (got {v})");
        }
        if let Some(v) = self.threshold
            && !(0.0..=1.0).contains(&v)
        {
            bail!("{key}.threshold must be a cosine similarity between 0 and 1 (got {v})");
        }
        if let Some(v) = self.min_quality
            && !(0.0..=1.0).contains(&v)
        {
            bail!("{key}.min_quality must be between 0 and 1 (got {v})");
        }
        Ok(())
    }
}

impl CameraConfig {
    /// Checks one camera's values; `key` is its place in the file, e.g. `camera[1]`.
    pub fn validate(&self, key: &str) -> Result<()> {
        if self.name.trim().is_empty() {
            bail!("{key}.name must not be empty: give each camera a short unique name like \"front-door\"");
        }
        if self.location.trim().is_empty() {
            bail!("{key}.location must not be empty (leave it out to use the camera's name)");
        }
        if let Some(door) = &self.door
            && door.trim().is_empty()
        {
            bail!("{key}.door must name a door, or be left out for a camera that only watches");
        }
        self.tuning.validate(key)?;
        match &self.source {
            SourceConfig::Replay(r) => {
                if r.path.as_os_str().is_empty() {
                    bail!("{key}.source.path must name a folder of images, an MJPEG file or an H.264 file");
                }
                check_fps(&format!("{key}.source.fps"), r.fps)?;
            }
            SourceConfig::V4l2(v) => {
                check_fps(&format!("{key}.source.fps"), v.fps)?;
                for (name, value) in [("width", v.width), ("height", v.height)] {
                    if !(16..=8192).contains(&value) {
                        bail!("{key}.source.{name} must be between 16 and 8192 pixels (got {value})");
                    }
                }
                if matches!(v.format, PixelFormat::Yuyv | PixelFormat::Nv12) && v.width % 2 != 0 {
                    bail!("{key}.source.width must be even for {} (got {})", v.format, v.width);
                }
                if v.format == PixelFormat::Nv12 && v.height % 2 != 0 {
                    bail!("{key}.source.height must be even for nv12 (got {})", v.height);
                }
            }
            SourceConfig::Rtsp(r) => {
                let lower = r.url.to_ascii_lowercase();
                if !lower.starts_with("rtsp://") {
                    bail!(
                        "{key}.source.url must start with rtsp:// (got {}); copy the stream URL from the camera's manual or web page",
                        redact_url(&r.url)
                    );
                }
                if r.password.is_some() && r.username.is_none() {
                    bail!("{key}.source.password is set but {key}.source.username is not; set both");
                }
            }
        }
        Ok(())
    }
}

/// Checks every camera and that names are unique.
pub fn validate_cameras(cameras: &[CameraConfig]) -> Result<()> {
    for (i, camera) in cameras.iter().enumerate() {
        camera.validate(&format!("camera[{i}]"))?;
        if let Some(first) = cameras[..i].iter().position(|c| c.name == camera.name) {
            bail!(
                "camera[{i}].name \"{}\" is already used by camera[{first}]; camera names must be unique",
                camera.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct File {
        camera: Vec<CameraConfig>,
    }

    fn parse(text: &str) -> Result<Vec<CameraConfig>> {
        let file: File = toml::from_str(text)?;
        validate_cameras(&file.camera)?;
        Ok(file.camera)
    }

    #[test]
    fn per_camera_tuning_parses_and_is_validated() {
        let cams = parse(
            r#"
            [[camera]]
            name = "back"
            source = { kind = "replay", path = "clips/demo.mjpeg" }
            min_face = 40
            min_identify_px = 90
            threshold = 0.55
            min_quality = 0.4
            [[camera]]
            name = "lobby"
            source = { kind = "replay", path = "clips/demo.mjpeg" }
            "#,
        )
        .unwrap();
        assert_eq!(
            cams[0].tuning,
            CameraTuning {
                min_face: Some(40.0),
                min_identify_px: Some(90.0),
                threshold: Some(0.55),
                min_quality: Some(0.4)
            }
        );
        assert_eq!(cams[1].tuning, CameraTuning::default());
        let err = format!(
            "{:#}",
            parse("[[camera]]\nname = \"a\"\nsource = { kind = \"replay\", path = \"x\" }\nthreshold = 1.5\n")
                .unwrap_err()
        );
        assert!(err.contains("camera[0].threshold"), "{err}");
    }

    #[test]
    fn all_three_kinds_parse_with_defaults() {
        let cams = parse(
            r#"
            [[camera]]
            name = "demo"
            source = { kind = "replay", path = "clips/demo.mjpeg" }
            [[camera]]
            name = "usb"
            location = "Front door"
            door = "front"
            [camera.source]
            kind = "v4l2"
            format = "yuyv"
            [[camera]]
            name = "ip"
            source = { kind = "rtsp", url = "rtsp://10.0.0.5/stream1", username = "admin", password = "s3cret", transport = "udp" }
            "#,
        )
        .unwrap();
        assert_eq!(cams[0].location, "demo");
        assert_eq!(cams[0].door, None);
        assert_eq!(
            cams[0].source,
            SourceConfig::Replay(ReplayConfig { path: "clips/demo.mjpeg".into(), fps: 10.0, looping: false })
        );
        assert_eq!(cams[1].location, "Front door");
        assert_eq!(cams[1].door.as_deref(), Some("front"));
        let SourceConfig::V4l2(v) = &cams[1].source else { panic!("not v4l2") };
        assert_eq!(
            (v.device.to_str(), v.width, v.height, v.format),
            (Some("/dev/video0"), 640, 480, PixelFormat::Yuyv)
        );
        let SourceConfig::Rtsp(r) = &cams[2].source else { panic!("not rtsp") };
        assert_eq!(r.transport, RtspTransport::Udp);
        assert_eq!(r.credentials(), ("rtsp://10.0.0.5/stream1".into(), Some(("admin".into(), "s3cret".into()))));
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        let e = err(r#"
            [[camera]]
            name = "a"
            source = { kind = "replay", path = "x" }
            [[camera]]
            name = "b"
            source = { kind = "replay", path = "x", fps = 0 }
            "#);
        assert!(e.contains("camera[1].source.fps must be"), "{e}");
        let e = err(r#"
            [[camera]]
            name = "a"
            source = { kind = "replay", path = "x" }
            [[camera]]
            name = "a"
            source = { kind = "replay", path = "y" }
            "#);
        assert!(e.contains("camera[1].name \"a\" is already used by camera[0]"), "{e}");
        let e = err(r#"
            [[camera]]
            name = "a"
            source = { kind = "v4l2", width = 99999 }
            "#);
        assert!(e.contains("camera[0].source.width must be between"), "{e}");
        let e = err(r#"
            [[camera]]
            name = "a"
            source = { kind = "rtsp", url = "http://cam/" }
            "#);
        assert!(e.contains("camera[0].source.url must start with rtsp://"), "{e}");
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected() {
        let e = format!(
            "{:#}",
            parse("[[camera]]\nname = \"a\"\nsource = { kind = \"replay\", path = \"x\", fsp = 3 }\n").unwrap_err()
        );
        assert!(e.contains("fsp"), "{e}");
        let e = format!(
            "{:#}",
            parse("[[camera]]\nname = \"a\"\nplace = \"x\"\nsource = { kind = \"replay\", path = \"x\" }\n")
                .unwrap_err()
        );
        assert!(e.contains("place"), "{e}");
        let e = format!("{:#}", parse("[[camera]]\nname = \"a\"\nsource = { kind = \"webcam\" }\n").unwrap_err());
        assert!(e.contains("webcam"), "{e}");
        let e = format!(
            "{:#}",
            parse("[[camera]]\nname = \"a\"\nsource = { kind = \"v4l2\", format = \"h264\" }\n").unwrap_err()
        );
        assert!(e.contains("h264"), "{e}");
    }

    #[test]
    fn credentials_never_appear_in_debug_output() {
        let cams = parse(
            r#"
            [[camera]]
            name = "ip"
            source = { kind = "rtsp", url = "rtsp://admin:hunter2@10.0.0.5:554/s", username = "operator", password = "pa55word" }
            "#,
        )
        .unwrap();
        let shown = format!("{cams:?} {:#?}", cams[0]);
        for secret in ["hunter2", "pa55word", "operator", "admin"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("rtsp://<redacted>@10.0.0.5:554/s"), "{shown}");
    }

    #[test]
    fn url_redaction_and_credential_split() {
        assert_eq!(redact_url("rtsp://u:p@host:554/a@b"), "rtsp://<redacted>@host:554/a@b");
        assert_eq!(redact_url("rtsp://host/a@b"), "rtsp://host/a@b");
        assert_eq!(redact_url("not a url"), "not a url");
        let r = RtspConfig {
            url: "rtsp://ad%40min:p%3Ass@cam/x".into(),
            username: None,
            password: None,
            transport: RtspTransport::Tcp,
        };
        assert_eq!(r.credentials(), ("rtsp://cam/x".into(), Some(("ad@min".into(), "p:ss".into()))));
    }
}
