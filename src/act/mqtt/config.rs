//! The `[mqtt]` section of the config file: broker, identity, TLS, discovery, commands and the
//! publisher's flow control. Secrets (password, HMAC secret) never appear in `Debug` output.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// MQTT settings. Everything is optional; MQTT is off until `enabled = true`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Connect to a broker at all.
    pub enabled: bool,
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883 plain, usually 8883 with TLS).
    pub port: u16,
    /// MQTT client id; default `facegate-<node>`.
    pub client_id: Option<String>,
    /// Node id used in topics (`<prefix>/<node>/...`); default: the host name, else `facegate`.
    pub node: Option<String>,
    /// First topic level.
    pub prefix: String,
    /// Keep-alive interval in seconds; the broker declares the node offline (Last Will) after 1.5x.
    pub keep_alive_s: u64,
    pub username: Option<String>,
    /// Never logged.
    pub password: Option<String>,
    /// TLS to the broker (needs the `mqtt-tls` cargo feature).
    pub tls: Option<MqttTls>,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    pub discovery_prefix: String,
    /// Publish a JPEG crop of the face with each decision (off: privacy).
    pub snapshots: bool,
    /// Largest command payload accepted, in bytes (enroll carries base64 JPEGs).
    pub max_payload_bytes: usize,
    /// Who may send `open_door`: `off`, `signed` (a key with scope `door`, like every other
    /// command) or `broker_acl` (also unsigned, from whoever the broker's ACL lets publish on
    /// `cmd/open_door`: Home Assistant's button or lock). Old configs: `false` is `off`, `true`
    /// is `signed`, `true` with `remote_open_require_hmac = false` is `broker_acl`.
    pub remote_open: RemoteOpen,
    /// Old key, read only to map `remote_open = true` (see above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_open_require_hmac: Option<bool>,
    /// Old shared secret: refused with the way to per-client keys (`facegate keys add`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<String>,
    /// How far a signed command's timestamp may be from this node's clock, in seconds.
    pub max_clock_skew_s: u64,
    /// Outbox events read per batch and the most QoS 1 publishes awaiting PUBACK at once.
    pub outbox_batch: usize,
    /// First wait before reconnecting, in milliseconds; doubles up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

/// `mqtt.remote_open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemoteOpen {
    #[default]
    Off,
    Signed,
    BrokerAcl,
    /// `true` in an old config: `signed`, or `broker_acl` with `remote_open_require_hmac = false`.
    LegacyOn,
}

impl Serialize for RemoteOpen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            RemoteOpen::LegacyOn => s.serialize_bool(true),
            other => s.serialize_str(other.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for RemoteOpen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<RemoteOpen, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(false) => Ok(RemoteOpen::Off),
            Raw::Bool(true) => Ok(RemoteOpen::LegacyOn),
            Raw::Text(t) => match t.as_str() {
                "off" => Ok(RemoteOpen::Off),
                "signed" => Ok(RemoteOpen::Signed),
                "broker_acl" => Ok(RemoteOpen::BrokerAcl),
                other => Err(serde::de::Error::custom(format!(
                    "mqtt.remote_open = \"{other}\" is unknown: use \"off\", \"signed\" or \"broker_acl\""
                ))),
            },
        }
    }
}

impl RemoteOpen {
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteOpen::Off => "off",
            RemoteOpen::Signed | RemoteOpen::LegacyOn => "signed",
            RemoteOpen::BrokerAcl => "broker_acl",
        }
    }
}

/// TLS files (PEM).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MqttTls {
    /// CA certificate(s) that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// Client certificate for brokers that require one (with `client_key`).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            host: "localhost".into(),
            port: 1883,
            client_id: None,
            node: None,
            prefix: "facegate".into(),
            keep_alive_s: 30,
            username: None,
            password: None,
            tls: None,
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            snapshots: false,
            max_payload_bytes: 4 * 1024 * 1024,
            remote_open: RemoteOpen::Off,
            remote_open_require_hmac: None,
            hmac_secret: None,
            max_clock_skew_s: 30,
            outbox_batch: 64,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
        }
    }
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("MqttConfig")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("node", &self.node)
            .field("prefix", &self.prefix)
            .field("keep_alive_s", &self.keep_alive_s)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("tls", &self.tls)
            .field("discovery", &self.discovery)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("snapshots", &self.snapshots)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("remote_open", &self.remote_open)
            .field("remote_open_require_hmac", &self.remote_open_require_hmac)
            .field("hmac_secret", &redact(&self.hmac_secret))
            .field("max_clock_skew_s", &self.max_clock_skew_s)
            .field("outbox_batch", &self.outbox_batch)
            .field("reconnect_min_ms", &self.reconnect_min_ms)
            .field("reconnect_max_ms", &self.reconnect_max_ms)
            .finish()
    }
}

/// Reads the TLS files into rumqttc's transport; errors name the key of the unreadable file.
#[cfg(feature = "mqtt-tls")]
fn set_tls(o: &mut rumqttc::MqttOptions, tls: &MqttTls) -> Result<()> {
    use anyhow::Context;
    let read = |key: &str, p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("mqtt.tls.{key}: cannot read {}", p.display()))
    };
    let ca = read("ca_file", &tls.ca_file)?;
    let client_auth = match (&tls.client_cert, &tls.client_key) {
        (Some(c), Some(k)) => Some((read("client_cert", c)?, read("client_key", k)?)),
        _ => None,
    };
    // One crypto provider (ring) for the process; an error means one was installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    o.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
        ca,
        alpn: None,
        client_auth,
    }));
    Ok(())
}

#[cfg(not(feature = "mqtt-tls"))]
fn set_tls(_: &mut rumqttc::MqttOptions, _: &MqttTls) -> Result<()> {
    bail!("mqtt.tls is set but this build has no TLS: rebuild with `cargo build --features mqtt-tls`")
}

/// A topic level we generate from config: no wildcards, no separators, not empty.
fn check_level(key: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains(['/', '+', '#', '\0']) {
        bail!("mqtt.{key} must be a non-empty topic level without '/', '+', '#' (got `{value}`)");
    }
    Ok(())
}

impl MqttConfig {
    /// The node id in topics: `node`, else the host name made topic-safe, else `facegate`.
    pub fn node(&self) -> String {
        if let Some(node) = &self.node {
            return node.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        if host.is_empty() { "facegate".into() } else { host }
    }

    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| format!("facegate-{}", self.node()))
    }

    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_s)
    }

    /// What every connection to the broker shares (the service's and `facegate doctor`'s):
    /// address, client id, keep-alive, credentials and TLS. No Last Will: that is the service's.
    pub(crate) fn connect_options(&self, client_id: String) -> Result<rumqttc::MqttOptions> {
        let mut o = rumqttc::MqttOptions::new(client_id, self.host.clone(), self.port);
        o.set_keep_alive(self.keep_alive());
        if let Some(user) = &self.username {
            o.set_credentials(user.clone(), self.password.clone().unwrap_or_default());
        }
        if let Some(tls) = &self.tls {
            set_tls(&mut o, tls)?;
        }
        Ok(o)
    }

    /// `remote_open` with an old config's `true` resolved.
    pub fn remote_open(&self) -> RemoteOpen {
        match (self.remote_open, self.remote_open_require_hmac) {
            (RemoteOpen::LegacyOn, Some(false)) => RemoteOpen::BrokerAcl,
            (RemoteOpen::LegacyOn, _) => RemoteOpen::Signed,
            (other, _) => other,
        }
    }

    /// Checks every key; the error names the key and the fix.
    pub fn validate(&self) -> Result<()> {
        check_level("prefix", &self.prefix)?;
        check_level("discovery_prefix", &self.discovery_prefix)?;
        if let Some(node) = &self.node {
            check_level("node", node)?;
        }
        if self.enabled && self.host.trim().is_empty() {
            bail!("mqtt.host must name the broker (e.g. host = \"192.168.1.10\")");
        }
        if self.port == 0 {
            bail!("mqtt.port must be between 1 and 65535 (got 0)");
        }
        if let Some(id) = &self.client_id
            && (id.is_empty() || id.len() > 128)
        {
            bail!("mqtt.client_id must be 1 to 128 characters (got {} characters)", id.len());
        }
        if !(5..=65_535).contains(&self.keep_alive_s) {
            bail!("mqtt.keep_alive_s must be between 5 and 65535 seconds (got {})", self.keep_alive_s);
        }
        if self.password.is_some() && self.username.is_none() {
            bail!("mqtt.password is set without mqtt.username: set both or neither");
        }
        if !(1024..=256 * 1024 * 1024).contains(&self.max_payload_bytes) {
            bail!("mqtt.max_payload_bytes must be between 1024 and 268435456 (got {})", self.max_payload_bytes);
        }
        if self.hmac_secret.is_some() {
            bail!(
                "mqtt.hmac_secret is no longer used: every command is now signed with a per-client key. Remove \
                 hmac_secret, run `facegate keys add NAME --scope door` and give the printed secret to the client \
                 (`facegate cmd` signs for you)"
            );
        }
        if self.remote_open_require_hmac.is_some() && self.remote_open != RemoteOpen::LegacyOn {
            bail!(
                "mqtt.remote_open_require_hmac only applies to the old `remote_open = true`: remove it and set \
                 remote_open = \"signed\" or \"broker_acl\""
            );
        }
        if !(1..=86_400).contains(&self.max_clock_skew_s) {
            bail!("mqtt.max_clock_skew_s must be between 1 and 86400 (got {})", self.max_clock_skew_s);
        }
        if !(1..=1000).contains(&self.outbox_batch) {
            bail!("mqtt.outbox_batch must be between 1 and 1000 (got {})", self.outbox_batch);
        }
        if self.reconnect_min_ms < 10 || self.reconnect_min_ms > self.reconnect_max_ms {
            bail!(
                "mqtt.reconnect_min_ms must be at least 10 and not above mqtt.reconnect_max_ms (got {} and {})",
                self.reconnect_min_ms,
                self.reconnect_max_ms
            );
        }
        if self.reconnect_max_ms > 3_600_000 {
            bail!("mqtt.reconnect_max_ms must be at most 3600000 (one hour) (got {})", self.reconnect_max_ms);
        }
        if let Some(tls) = &self.tls {
            if !cfg!(feature = "mqtt-tls") {
                bail!("mqtt.tls is set but this build has no TLS: rebuild with `cargo build --features mqtt-tls`");
            }
            if tls.client_cert.is_some() != tls.client_key.is_some() {
                bail!("mqtt.tls.client_cert and mqtt.tls.client_key must be given together");
            }
            if self.enabled {
                for (key, path) in [("ca_file", Some(&tls.ca_file)), ("client_cert", tls.client_cert.as_ref())]
                    .into_iter()
                    .chain([("client_key", tls.client_key.as_ref())])
                {
                    if let Some(path) = path
                        && !path.is_file()
                    {
                        bail!("mqtt.tls.{key}: cannot find file {}", path.display());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MqttConfig> {
        let c: MqttConfig = toml::from_str(text)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_are_off_and_private() {
        let c = parse("").unwrap();
        assert!(!c.enabled && !c.snapshots && c.remote_open() == RemoteOpen::Off && c.discovery);
        assert_eq!((c.prefix.as_str(), c.discovery_prefix.as_str()), ("facegate", "homeassistant"));
        assert!(!c.node().is_empty() && !c.node().contains('/'));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("prefix = \"a/b\"", "mqtt.prefix"),
            ("node = \"x+\"", "mqtt.node"),
            ("keep_alive_s = 1", "mqtt.keep_alive_s"),
            ("password = \"p\"", "mqtt.password"),
            ("hmac_secret = \"0123456789abcdef-xyz\"", "keys add"),
            ("outbox_batch = 0", "mqtt.outbox_batch"),
            ("reconnect_min_ms = 5000\nreconnect_max_ms = 100", "mqtt.reconnect_min_ms"),
            ("max_payload_bytes = 10", "mqtt.max_payload_bytes"),
        ] {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = format!("{:#}", parse("hots = \"x\"").unwrap_err());
        assert!(err.contains("hots"), "{err}");
    }

    #[test]
    fn tls_needs_the_feature_or_its_files() {
        let err = format!("{:#}", parse("enabled = true\n[tls]\nca_file = \"/nonexistent/ca.pem\"").unwrap_err());
        assert!(err.contains("mqtt.tls"), "{err}");
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let c = parse("username = \"u\"\npassword = \"hunter2-secret\"").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn remote_open_old_and_new_spellings() {
        assert_eq!(parse("remote_open = false").unwrap().remote_open(), RemoteOpen::Off);
        assert_eq!(parse("remote_open = true").unwrap().remote_open(), RemoteOpen::Signed);
        let acl = parse("remote_open = true\nremote_open_require_hmac = false").unwrap();
        assert_eq!(acl.remote_open(), RemoteOpen::BrokerAcl);
        assert_eq!(parse("remote_open = \"broker_acl\"").unwrap().remote_open(), RemoteOpen::BrokerAcl);
        assert_eq!(parse("remote_open = \"signed\"").unwrap().remote_open(), RemoteOpen::Signed);
        let err = format!("{:#}", parse("remote_open = \"yes\"").unwrap_err());
        assert!(err.contains("broker_acl"), "{err}");
        let err = format!("{:#}", parse("remote_open = \"signed\"\nremote_open_require_hmac = false").unwrap_err());
        assert!(err.contains("remote_open_require_hmac"), "{err}");
    }
}
