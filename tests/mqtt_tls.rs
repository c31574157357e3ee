//! MQTT over TLS (the `mqtt-tls` feature) against a real TLS broker: Debian's mosquitto, started by
//! `.ci/step-mqtt` with a CA, a server certificate and a client certificate made by `openssl` at
//! run time. It has a plain listener (for the test subscriber), a TLS listener and a TLS listener
//! that requires a client certificate.
//!
//! The tests are ignored by a plain `cargo test`; `.ci/step-mqtt` runs them with `--ignored`, and
//! then a missing broker is a failure, not a skip. Environment:
//! `FACEGATE_TEST_TLS=<dir with ca.pem, other-ca.pem, client.pem, client.key>`,
//! `FACEGATE_TEST_TLS_PORT`, `FACEGATE_TEST_MTLS_PORT`, and `FACEGATE_TEST_BROKER=127.0.0.1:<plain port>`.
#![cfg(feature = "mqtt-tls")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use facegate::act::Outbox;
use facegate::act::events::EventBuilder;
use facegate::act::mqtt::{DiscoveryInfo, MqttConfig, MqttService, MqttTls};
use facegate::act::store::Store;
use serde_json::Value;

#[path = "common/mqtt.rs"]
#[allow(dead_code)]
mod common;
use common::{NoCommands, Subscriber, broker, decision, no_keys};

/// The TLS broker's files and ports, or a panic that says how to get them.
struct TlsBroker {
    dir: PathBuf,
    tls_port: u16,
    mtls_port: u16,
}

impl TlsBroker {
    fn from_env() -> TlsBroker {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run these tests through .ci/step-mqtt"))
        };
        let port = |name: &str| var(name).parse().unwrap_or_else(|_| panic!("{name} must be a port number"));
        TlsBroker {
            dir: PathBuf::from(var("FACEGATE_TEST_TLS")),
            tls_port: port("FACEGATE_TEST_TLS_PORT"),
            mtls_port: port("FACEGATE_TEST_MTLS_PORT"),
        }
    }

    /// A node config for one of the TLS listeners. `localhost` is the name in the server
    /// certificate, so the host name check is exercised too.
    fn config(&self, port: u16, prefix: &str, ca: &str, client_cert: bool) -> MqttConfig {
        let file = |name: &str| self.dir.join(name);
        MqttConfig {
            enabled: true,
            host: "localhost".into(),
            port,
            node: Some("door1".into()),
            client_id: Some(format!("{prefix}-node")),
            prefix: prefix.into(),
            discovery: false,
            reconnect_min_ms: 50,
            reconnect_max_ms: 400,
            tls: Some(MqttTls {
                ca_file: file(ca),
                client_cert: client_cert.then(|| file("client.pem")),
                client_key: client_cert.then(|| file("client.key")),
            }),
            ..MqttConfig::default()
        }
    }
}

fn unique(name: &str) -> String {
    format!("{name}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Starts a node with `config`, queues one decision, and says whether it arrived at the plain
/// listener's subscriber (`Ok`) or why the node could not connect (`Err`, its `last_error`).
fn publish_one(config: &MqttConfig) -> Result<(), String> {
    let sub = Subscriber::new(broker(), &[format!("{}/door1/decision", config.prefix)]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("node.db");
    let mut store = Store::open(&db).unwrap();
    let event = EventBuilder::new("door1").decision(&decision(1), jiff::Timestamp::now());
    store.enqueue(std::slice::from_ref(&event)).unwrap();
    let svc = MqttService::start(
        config,
        Box::new(Store::open(&db).unwrap()),
        no_keys(&db),
        Box::new(NoCommands),
        DiscoveryInfo::default(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcome = loop {
        assert!(Instant::now() < deadline, "neither delivered nor refused: {:?}", svc.stats());
        let stats = svc.stats();
        if let (false, Some(error)) = (stats.connects > 0, stats.last_error) {
            break Err(error);
        }
        if let Ok((_, payload, _)) = sub.rx.recv_timeout(Duration::from_millis(50)) {
            let v: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(v["event_id"].as_str(), Some(event.event_id.as_str()));
            break Ok(());
        }
    };
    match outcome {
        Ok(()) => {
            let deadline = Instant::now() + Duration::from_secs(10);
            while store.waiting().unwrap() > 0 {
                assert!(Instant::now() < deadline, "the delivered event was never acknowledged");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(_) => assert_eq!(store.waiting().unwrap(), 1, "a refused connection loses nothing"),
    }
    svc.stop();
    outcome
}

/// On the listener `port` picks: the node delivers with `good` settings (CA file, client
/// certificate or not), and is refused with `bad` ones; returns that refusal.
fn delivers_then_refused(port: fn(&TlsBroker) -> u16, good: (&str, bool), bad: (&str, bool)) -> String {
    let tls = TlsBroker::from_env();
    publish_one(&tls.config(port(&tls), &unique("tls"), good.0, good.1)).expect("the node delivers with good settings");
    publish_one(&tls.config(port(&tls), &unique("tls"), bad.0, bad.1)).expect_err("the broker must refuse the node")
}

#[test]
#[ignore = "needs the TLS broker of .ci/step-mqtt"]
fn tls_with_the_broker_ca_delivers_and_a_wrong_ca_is_refused_clearly() {
    let error = delivers_then_refused(|t| t.tls_port, ("ca.pem", false), ("other-ca.pem", false));
    assert!(error.contains("UnknownIssuer") || error.contains("invalid peer certificate"), "{error}");
    assert!(error.contains("mqtt.tls.ca_file"), "the error names the setting to fix: {error}");
}

#[test]
#[ignore = "needs the TLS broker of .ci/step-mqtt"]
fn a_broker_that_requires_a_client_certificate_gets_one() {
    let error = delivers_then_refused(|t| t.mtls_port, ("ca.pem", true), ("ca.pem", false));
    assert!(error.contains("mqtt.tls.client_cert"), "the error names the setting to fix: {error}");
}
