//! The `[web]` section: where the console listens, its TLS, and what it may keep.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Serve the console from `facegate run`.
    pub enabled: bool,
    /// Address and port, e.g. "0.0.0.0:8443" (all interfaces) or "127.0.0.1:8080".
    pub bind: String,
    /// HTTPS with rustls. Without `cert`/`key` a self-signed certificate is made on first start
    /// and kept beside the database.
    pub tls: bool,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Allow plain HTTP on an address other than loopback (passwords would cross the network
    /// in clear text: only behind a TLS-terminating proxy).
    pub allow_plain_http: bool,
    /// The console's address as people reach it (Home Assistant's `configuration_url`);
    /// default: derived from `bind`.
    pub url: Option<String>,
    /// Most frames per second the live view sends per camera.
    pub live_fps: f32,
    /// Largest request body (an upload of photos), in megabytes.
    pub max_upload_mb: u32,
    /// How long a login lasts without activity.
    pub session_minutes: u32,
    /// Keep the faces of `unknown` decisions for the console's "Unknown faces" page. Off by
    /// default: these are faces of people who did not consent.
    pub unknown_inbox: bool,
    /// Inbox faces older than this are erased (at start and periodically), whether or not the
    /// inbox is still on.
    pub unknown_retention_days: u32,
    /// Most inbox faces kept; the oldest are dropped beyond it.
    pub unknown_max_faces: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: false,
            bind: "127.0.0.1:8443".into(),
            tls: true,
            cert: None,
            key: None,
            allow_plain_http: false,
            url: None,
            live_fps: 5.0,
            max_upload_mb: 16,
            session_minutes: 480,
            unknown_inbox: false,
            unknown_retention_days: 7,
            unknown_max_faces: 2000,
        }
    }
}

impl WebConfig {
    pub fn addr(&self) -> Result<SocketAddr> {
        self.bind.parse().map_err(|_| {
            anyhow::anyhow!("web.bind must be an address and port, e.g. \"0.0.0.0:8443\" (got `{}`)", self.bind)
        })
    }

    pub fn validate(&self) -> Result<()> {
        let addr = self.addr()?;
        if !self.tls && !addr.ip().is_loopback() && !self.allow_plain_http {
            bail!(
                "web.tls = false on {addr} would send passwords in clear text over the network: keep web.tls = true, \
                 bind to 127.0.0.1, or set web.allow_plain_http = true behind a TLS proxy"
            );
        }
        if self.cert.is_some() != self.key.is_some() {
            bail!("web.cert and web.key go together: give both files, or neither for a self-signed certificate");
        }
        if !(self.live_fps > 0.0 && self.live_fps <= 15.0) {
            bail!("web.live_fps must be between 0 and 15 (got {})", self.live_fps);
        }
        if self.max_upload_mb == 0 || self.max_upload_mb > 512 {
            bail!("web.max_upload_mb must be between 1 and 512 (got {})", self.max_upload_mb);
        }
        if self.session_minutes == 0 || self.session_minutes > 7 * 24 * 60 {
            bail!("web.session_minutes must be between 1 and 10080 (got {})", self.session_minutes);
        }
        if !(1..=365).contains(&self.unknown_retention_days) {
            bail!("web.unknown_retention_days must be between 1 and 365 days (got {})", self.unknown_retention_days);
        }
        if !(1..=100_000).contains(&self.unknown_max_faces) {
            bail!("web.unknown_max_faces must be between 1 and 100000 faces (got {})", self.unknown_max_faces);
        }
        Ok(())
    }

    /// The address people open (for the start-up line and Home Assistant).
    pub fn public_url(&self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let scheme = if self.tls { "https" } else { "http" };
        match self.addr() {
            Ok(a) if a.ip().is_unspecified() => format!("{scheme}://{}:{}", hostname(), a.port()),
            Ok(a) => format!("{scheme}://{a}"),
            Err(_) => format!("{scheme}://{}", self.bind),
        }
    }

    /// Whether the live view, a certificate and so on should be made at all.
    pub fn serves(&self) -> bool {
        self.enabled
    }
}

fn hostname() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    if host.is_empty() { "localhost".into() } else { host.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback_or_when_allowed() {
        let mut c = WebConfig { tls: false, bind: "0.0.0.0:8080".into(), ..WebConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("allow_plain_http"));
        c.allow_plain_http = true;
        c.validate().unwrap();
        let c = WebConfig { tls: false, bind: "127.0.0.1:8080".into(), ..WebConfig::default() };
        c.validate().unwrap();
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        let c = WebConfig { bind: "nonsense".into(), ..WebConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("web.bind"));
        let c = WebConfig { cert: Some("c.pem".into()), ..WebConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("web.key"));
    }

    #[test]
    fn the_unknown_inbox_is_off_by_default_and_bounded() {
        let c = WebConfig::default();
        assert!(!c.unknown_inbox);
        assert_eq!(c.unknown_retention_days, 7);
        for days in [0, 366] {
            let c = WebConfig { unknown_retention_days: days, ..WebConfig::default() };
            assert!(c.validate().unwrap_err().to_string().contains("web.unknown_retention_days"), "{days}");
        }
        let c = WebConfig { unknown_max_faces: 0, ..WebConfig::default() };
        assert!(c.validate().unwrap_err().to_string().contains("web.unknown_max_faces"));
    }
}
