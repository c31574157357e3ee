//! The doctor's broker check: a real MQTT CONNECT with the service's own settings (address,
//! credentials, TLS), so a wrong password shows up at installation time and not as a silent
//! reconnect loop in the journal. The probe uses its own client id (`<client id>-doctor`): a
//! broker drops an older connection with the same id, and the running node must stay connected.

use std::io::ErrorKind;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, Incoming, Outgoing, StateError};

use crate::act::mqtt::MqttConfig;

/// How one CONNECT attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// CONNACK 0.
    Accepted,
    /// The broker answered CONNACK with a refusal code.
    Refused(ConnectReturnCode),
    /// Nothing accepts TCP connections there (or the name does not resolve).
    Unreachable(String),
    /// TCP worked, but the broker closed the connection without a CONNACK.
    Closed(String),
    /// No CONNACK within the time limit.
    Timeout,
    /// The TLS handshake failed.
    #[cfg_attr(not(feature = "mqtt-tls"), allow(dead_code))]
    Tls(String),
    /// Anything else rumqttc reported.
    Other(String),
}

/// The client id the probe uses: the service's with `-doctor` appended.
pub fn probe_client_id(mqtt: &MqttConfig) -> String {
    format!("{}-doctor", mqtt.client_id())
}

/// Connects once with the configured settings and the probe's client id, waits at most
/// `timeout` for the CONNACK and disconnects cleanly.
pub fn probe(mqtt: &MqttConfig, timeout: Duration) -> Result<Outcome> {
    let mut options = mqtt.connect_options(probe_client_id(mqtt))?;
    options.set_clean_session(true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the network runtime: {e}"))?;
    Ok(runtime.block_on(async move {
        let (client, mut eventloop) = AsyncClient::new(options, 4);
        eventloop.network_options.set_connection_timeout(timeout.as_secs().max(1));
        let outcome = match tokio::time::timeout(timeout, eventloop.poll()).await {
            Err(_) => return Outcome::Timeout,
            Ok(Ok(Event::Incoming(Incoming::ConnAck(ack)))) if ack.code == ConnectReturnCode::Success => {
                Outcome::Accepted
            }
            Ok(Ok(event)) => Outcome::Other(format!("expected a CONNACK, got {event:?}")),
            Ok(Err(e)) => classify(e),
        };
        if outcome == Outcome::Accepted {
            // Say goodbye so the broker logs a clean disconnect; bounded like the rest.
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Ok(event) = eventloop.poll().await {
                    if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
        outcome
    }))
}

fn classify(error: ConnectionError) -> Outcome {
    match error {
        ConnectionError::ConnectionRefused(code) => Outcome::Refused(code),
        ConnectionError::NetworkTimeout => Outcome::Timeout,
        #[cfg(feature = "mqtt-tls")]
        ConnectionError::Tls(e) => Outcome::Tls(e.to_string()),
        ConnectionError::Io(e) | ConnectionError::MqttState(StateError::Io(e)) => classify_io(&e),
        // What rumqttc reports when the socket closes while it waits for the CONNACK.
        ConnectionError::MqttState(StateError::ConnectionAborted) => Outcome::Closed("closed by the broker".into()),
        other => Outcome::Other(other.to_string()),
    }
}

fn classify_io(e: &std::io::Error) -> Outcome {
    match e.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable
        | ErrorKind::NotFound => Outcome::Unreachable(e.to_string()),
        ErrorKind::TimedOut => Outcome::Timeout,
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
            Outcome::Closed(e.to_string())
        }
        // Name resolution failures come back as plain `Other` I/O errors.
        _ if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            Outcome::Unreachable(e.to_string())
        }
        _ => Outcome::Other(e.to_string()),
    }
}

/// Runs the probe and turns its outcome into the doctor's line: the detail when the broker
/// accepted us, otherwise an error naming the config key to change.
pub fn check(mqtt: &MqttConfig, timeout: Duration) -> Result<String> {
    let outcome = probe(mqtt, timeout)?;
    describe(mqtt, &outcome, timeout)
}

/// What is weak about this broker set-up even when it works (doctor prints `warn`, not `ok`).
pub fn warnings(mqtt: &MqttConfig) -> Vec<String> {
    let mut w = Vec::new();
    if mqtt.tls.is_none() {
        w.push(
            "plain TCP: anyone on the network can read events and capture commands; set [mqtt.tls] ca_file \
             (port 8883) on a broker with TLS"
                .to_string(),
        );
    }
    if mqtt.username.is_none() {
        w.push(
            "no mqtt.username: the broker takes anonymous clients; set allow_anonymous false, a password file and \
             an ACL (`facegate mqtt acl` prints them)"
                .to_string(),
        );
    }
    w
}

/// The doctor's wording for each outcome (separate from [`probe`] so each can be tested).
pub fn describe(mqtt: &MqttConfig, outcome: &Outcome, timeout: Duration) -> Result<String> {
    let at = format!("{}:{}", mqtt.host, mqtt.port);
    let who = match &mqtt.username {
        Some(user) => format!("user `{user}`"),
        None => "no user name".to_string(),
    };
    let tls = if mqtt.tls.is_some() { "TLS" } else { "plain TCP" };
    match outcome {
        Outcome::Accepted if mqtt.username.is_none() => Ok(format!(
            "{at} accepted an anonymous CONNECT ({tls}, client id {}): anyone on the network can connect",
            probe_client_id(mqtt)
        )),
        Outcome::Accepted => {
            Ok(format!("{at} accepted CONNECT ({who}, {tls}, client id {}): credentials work", probe_client_id(mqtt)))
        }
        Outcome::Refused(ConnectReturnCode::BadUserNamePassword) => bail!(
            "{at} refused the credentials (CONNACK: bad user name or password, {who}): fix mqtt.username / mqtt.password"
        ),
        Outcome::Refused(ConnectReturnCode::NotAuthorized) => bail!(
            "{at} refused the credentials (CONNACK: not authorised, {who}); mosquitto answers this to a wrong \
             password too: fix mqtt.username / mqtt.password, or allow this user in the broker's config"
        ),
        Outcome::Refused(ConnectReturnCode::BadClientId) => bail!(
            "{at} refused the client id `{}` (CONNACK: identifier rejected): set a shorter mqtt.client_id of letters \
             and digits",
            probe_client_id(mqtt)
        ),
        Outcome::Refused(ConnectReturnCode::ServiceUnavailable) => {
            bail!("{at} answered CONNACK: server unavailable; the broker is running but not accepting clients yet")
        }
        Outcome::Refused(code) => {
            bail!("{at} refused the connection (CONNACK: {code:?}): the broker must speak MQTT 3.1.1 on mqtt.port")
        }
        Outcome::Unreachable(e) => bail!(
            "cannot reach the broker at {at} ({e}): check mqtt.host and mqtt.port, and that the broker is running"
        ),
        Outcome::Closed(e) => bail!(
            "{at} closed the connection without a CONNACK ({e}, {who}): brokers do this to rejected credentials \
             (check mqtt.username / mqtt.password) and to plain MQTT on a TLS port (check mqtt.tls and mqtt.port)"
        ),
        Outcome::Timeout => bail!(
            "no CONNACK from {at} within {} s: check mqtt.host and mqtt.port, a firewall between, and whether the \
             port expects TLS (mqtt.tls)",
            timeout.as_secs_f64()
        ),
        Outcome::Tls(e) => bail!(
            "TLS handshake with {at} failed ({e}): check mqtt.tls.ca_file (the CA that signed the broker's \
             certificate), that mqtt.host matches the certificate's name, and the client certificate if one is needed"
        ),
        Outcome::Other(e) => bail!("connecting to {at} failed: {e}; check the [mqtt] section"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(user: Option<&str>) -> MqttConfig {
        MqttConfig {
            enabled: true,
            host: "127.0.0.1".into(),
            node: Some("door1".into()),
            username: user.map(str::to_string),
            ..MqttConfig::default()
        }
    }

    #[test]
    fn plain_tcp_and_anonymous_brokers_are_warned_about_not_ok() {
        let anonymous = config(None);
        let w = warnings(&anonymous);
        assert!(w.iter().any(|w| w.contains("plain TCP")) && w.iter().any(|w| w.contains("anonymous")), "{w:?}");
        let line = describe(&anonymous, &Outcome::Accepted, Duration::from_secs(1)).unwrap();
        assert!(line.contains("anonymous") && !line.contains("credentials work"), "{line}");
        assert!(!warnings(&config(Some("door"))).iter().any(|w| w.contains("anonymous")));
    }

    #[test]
    fn probe_never_takes_the_service_client_id() {
        let c = config(None);
        assert_eq!(probe_client_id(&c), "facegate-door1-doctor");
        assert_ne!(probe_client_id(&c), c.client_id());
    }

    #[test]
    fn each_refusal_names_the_key_to_fix() {
        let c = config(Some("door"));
        let t = Duration::from_secs(2);
        for (outcome, key) in [
            (Outcome::Refused(ConnectReturnCode::BadUserNamePassword), "mqtt.password"),
            (Outcome::Refused(ConnectReturnCode::NotAuthorized), "mqtt.password"),
            (Outcome::Refused(ConnectReturnCode::BadClientId), "mqtt.client_id"),
            (Outcome::Unreachable("refused".into()), "mqtt.port"),
            (Outcome::Closed("eof".into()), "mqtt.password"),
            (Outcome::Timeout, "mqtt.tls"),
            (Outcome::Tls("bad cert".into()), "mqtt.tls.ca_file"),
        ] {
            let err = describe(&c, &outcome, t).unwrap_err().to_string();
            assert!(err.contains(key), "{outcome:?}: {err}");
            assert!(!err.contains('\n'), "one line each: {err}");
        }
        let ok = describe(&c, &Outcome::Accepted, t).unwrap();
        assert!(ok.contains("user `door`") && ok.contains("-doctor"), "{ok}");
    }
}
