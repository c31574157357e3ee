//! Shared by the MQTT tests and the benchmark: a sample decision, and the broker: `FACEGATE_TEST_BROKER=host:port` if set (CI sets it
//! to a mosquitto), else a real rumqttd started in-process on a free loopback port.

use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use facegate::act::events::{DecisionInfo, DecisionKind, PersonRef};

/// The broker's address: FACEGATE_TEST_BROKER, else an in-process rumqttd on a free port.
pub fn broker() -> (String, u16) {
    static ADDR: OnceLock<(String, u16)> = OnceLock::new();
    ADDR.get_or_init(|| {
        if let Ok(addr) = std::env::var("FACEGATE_TEST_BROKER") {
            let (h, p) = addr.rsplit_once(':').expect("FACEGATE_TEST_BROKER must be host:port");
            return (h.to_string(), p.parse().expect("FACEGATE_TEST_BROKER port must be a number"));
        }
        let port = free_port();
        let config: rumqttd::Config = toml::from_str(&format!(
            r#"
            id = 0
            [router]
            max_connections = 1000
            max_outgoing_packet_count = 1000
            max_segment_size = 104857600
            max_segment_count = 10
            [v4.1]
            name = "v4-1"
            listen = "127.0.0.1:{port}"
            next_connection_delay_ms = 1
            [v4.1.connections]
            connection_timeout_ms = 60000
            max_payload_size = 8388608
            max_inflight_count = 500
            dynamic_filters = true
            "#
        ))
        .expect("rumqttd config");
        std::thread::spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                eprintln!("rumqttd stopped: {e}");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "rumqttd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        ("127.0.0.1".into(), port)
    })
    .clone()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A granted decision; `i` goes into `votes` so events differ.
pub fn decision(i: u32) -> DecisionInfo {
    DecisionInfo {
        kind: DecisionKind::Granted,
        camera: "front".into(),
        location: "Lobby".into(),
        door: Some("main".into()),
        person: Some(PersonRef { id: 7, name: "Ada".into(), role: "employee".into() }),
        similarity: Some(0.8),
        margin: Some(0.2),
        votes: i,
        window: 5,
        bbox: [1.0, 2.0, 3.0, 4.0],
        latency_ms: 80.0,
    }
}
