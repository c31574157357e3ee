//! Shared by the MQTT tests and the benchmark: sample events, a test subscriber, and real
//! brokers.
//!
//! `FACEGATE_TEST_BROKER` picks the broker: unset, an in-process rumqttd (and rumqttd in a child
//! process where a broker must really stop); `mosquitto`, Debian's mosquitto as a child process
//! for everything; `host:port`, that running broker for the tests that need no restart.
//!
//! A broker that must be stopped and started again runs as its own process ([`BrokerProcess`]):
//! mosquitto, or this very test (or bench) binary re-executed in broker mode, which serves
//! rumqttd until it is killed (see [`serve_broker_if_child`]). Each includer uses only part of
//! it: include it with `#[allow(dead_code)]`.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use facegate::access::{Actor, Keyring};
use facegate::act::OutboxEvent;
use facegate::act::events::{DecisionInfo, DecisionKind, EventBuilder, LastSeen, PersonRef};
use facegate::act::store::{AccessEvent, EventKind};
use facegate::api::{Api, ApiError, ApiResult, ErrorKind, Request};
use rumqttc::{Client, Event, Incoming, MqttOptions, QoS};

#[path = "listen.rs"]
pub mod listen;

/// Set in a re-executed test binary that is to serve rumqttd on this port.
const CHILD_PORT_ENV: &str = "FACEGATE_BROKER_CHILD_PORT";
/// The ignored test each test binary using [`BrokerProcess`] defines to call
/// [`serve_broker_if_child`] (a harness-less bench calls it first thing in `main`).
pub const CHILD_TEST: &str = "broker_child";

/// The shared broker's address: `FACEGATE_TEST_BROKER` (mosquitto or host:port), else an
/// in-process rumqttd on a free port.
pub fn broker() -> (String, u16) {
    static ADDR: OnceLock<(String, u16)> = OnceLock::new();
    ADDR.get_or_init(|| match std::env::var("FACEGATE_TEST_BROKER").ok().as_deref() {
        Some("mosquitto") => {
            // Spawned from a thread that lives as long as the process: the child dies with it
            // (PDEATHSIG fires when the spawning thread ends).
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let broker = BrokerProcess::start();
                let _ = tx.send(broker.port);
                loop {
                    std::thread::park();
                }
            });
            ("127.0.0.1".into(), rx.recv().expect("mosquitto did not start"))
        }
        Some(addr) => {
            let (h, p) = addr.rsplit_once(':').expect("FACEGATE_TEST_BROKER must be mosquitto or host:port");
            (h.to_string(), p.parse().expect("FACEGATE_TEST_BROKER port must be a number"))
        }
        None => ("127.0.0.1".into(), listen::start_rumqttd(rumqttd_config(0))),
    })
    .clone()
}

fn rumqttd_config(port: u16) -> rumqttd::Config {
    toml::from_str(&format!(
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
    .expect("rumqttd config")
}

/// In a binary re-executed by [`BrokerProcess`]: serves rumqttd on the given port until killed,
/// and never returns. Anywhere else: returns at once.
pub fn serve_broker_if_child() {
    let Ok(port) = std::env::var(CHILD_PORT_ENV) else { return };
    let port: u16 = port.parse().expect("broker child port");
    let mut broker = rumqttd::Broker::new(rumqttd_config(port));
    if let Err(e) = broker.start() {
        eprintln!("rumqttd on port {port} stopped: {e}");
    }
    std::process::exit(1);
}

/// A broker in its own process on a fixed loopback port, so a test can really kill it and start
/// it again on the same port (nothing of its state survives: `persistence false`). While the
/// broker is down the port stays reserved (see [`listen::reserve_port`]), so nothing else takes it.
pub struct BrokerProcess {
    pub port: u16,
    child: Option<Child>,
    reservation: Option<tokio::net::TcpSocket>,
    dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// mosquitto with `FACEGATE_TEST_BROKER=mosquitto`, else rumqttd in a re-executed copy of
    /// this binary; returns once it accepts connections.
    pub fn start() -> BrokerProcess {
        let (reservation, port) = listen::reserve_port(0).expect("reserve a loopback port");
        let mut b =
            BrokerProcess { port, child: None, reservation: Some(reservation), dir: tempfile::tempdir().unwrap() };
        b.restart();
        b
    }

    pub fn addr(&self) -> (String, u16) {
        ("127.0.0.1".into(), self.port)
    }

    fn mosquitto() -> bool {
        std::env::var("FACEGATE_TEST_BROKER").is_ok_and(|b| b == "mosquitto")
    }

    /// Kills the broker (SIGKILL) and waits until it is gone: every connection drops at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.reservation = listen::reserve_port(self.port).ok().map(|(socket, _)| socket);
        }
    }

    /// Starts the broker (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker before starting it again");
        let log = self.dir.path().join("broker.log");
        let mut cmd = if Self::mosquitto() {
            let conf = self.dir.path().join("mosquitto.conf");
            let mut text = format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n",
                self.port
            );
            // As root mosquitto would switch to its own user, which clears the death signal.
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } == 0 {
                text.push_str("user root\n");
            }
            std::fs::write(&conf, text).unwrap();
            let mut c = Command::new("mosquitto");
            c.arg("-c").arg(conf);
            c
        } else {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args(["--exact", CHILD_TEST, "--ignored", "--nocapture"]).env(CHILD_PORT_ENV, self.port.to_string());
            c
        };
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        // The broker dies with the thread that started it, even if this test process is killed.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start the broker {cmd:?}: {e}"));
        let listening = listen::wait_child_listens(&mut child, self.port);
        self.reservation = None;
        self.child = Some(child);
        if let Err(e) = listening {
            panic!("{e}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A message as a subscriber saw it: topic, payload, retain flag.
pub type Message = (String, Vec<u8>, bool);

/// A test client subscribed to some filters. It reconnects after a broker restart and subscribes
/// again (clean session); [`Subscriber::wait_ready`] says when it is subscribed on the current
/// connection.
pub struct Subscriber {
    pub client: Client,
    pub rx: Receiver<Message>,
    ready: Receiver<()>,
}

impl Subscriber {
    pub fn new((host, port): (String, u16), filters: &[String]) -> Subscriber {
        let mut o = MqttOptions::new(format!("watcher{}", uuid::Uuid::new_v4().simple()), host, port);
        o.set_max_packet_size(16 << 20, 16 << 20);
        o.set_keep_alive(Duration::from_secs(30));
        let (client, mut connection) = Client::new(o, 1000);
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let (c, filters) = (client.clone(), filters.to_vec());
        std::thread::spawn(move || {
            let mut acks = 0;
            for ev in connection.iter() {
                match ev {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        acks = 0;
                        for f in &filters {
                            let _ = c.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        acks += 1;
                        if acks == filters.len() {
                            let _ = ready_tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec(), p.retain)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        let s = Subscriber { client, rx, ready };
        s.wait_ready();
        s
    }

    /// Waits until the subscriber is subscribed on a (new) connection.
    pub fn wait_ready(&self) {
        self.ready.recv_timeout(Duration::from_secs(20)).expect("subscriber did not get its SUBACKs");
    }
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
        liveness: None,
    }
}

/// Decision `i` as the service records it: the attendance row, and its outbox events (the
/// decision, and the retained `person/<person>/last_seen`), for `Store::record_event`.
pub fn recorded(b: &EventBuilder, i: u32, person: i64) -> (AccessEvent, Vec<OutboxEvent>) {
    let at = jiff::Timestamp::now();
    let mut info = decision(i);
    let who = PersonRef { id: person, name: format!("P{person}"), role: "employee".into() };
    info.person = Some(who.clone());
    let seen = LastSeen { person: who, camera: "front".into(), location: "Lobby".into(), similarity: 0.8 };
    let row = AccessEvent {
        at,
        camera: "front".into(),
        door: Some("main".into()),
        person_id: Some(person),
        person_name: Some(format!("P{person}")),
        kind: EventKind::Granted,
        reason: None,
        similarity: Some(0.8),
        margin: Some(0.2),
        votes: i,
        window: 5,
        bbox: None,
        liveness: None,
    };
    (row, vec![b.decision(&info, at), b.last_seen(&seen, at)])
}

/// Refuses every command: for tests and the benchmark that send none.
pub struct NoCommands;

impl Api for NoCommands {
    fn execute(&mut self, _: &Actor, _: Request) -> ApiResult {
        Err(ApiError { kind: ErrorKind::Failed, message: "benchmark".into() })
    }
}

/// A keyring without keys on `db` (every signed command is refused: unknown key).
pub fn no_keys(db: &std::path::Path) -> Keyring {
    Keyring::new(facegate::act::store::Store::open(db).unwrap(), "door1", 30)
}

/// [`no_keys`] on a database of its own in the temp folder (for a node with a memory outbox).
pub fn no_keys_anywhere() -> Keyring {
    no_keys(&std::env::temp_dir().join(format!("facegate-keys-{}.db", uuid::Uuid::new_v4().simple())))
}

/// A `facegate run` child of a test: killed when the guard drops (the test ended or panicked), and
/// its log shown when a panic is why. Take `.0` to stop it yourself.
pub struct NodeGuard(pub Option<Child>, pub std::path::PathBuf);

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("node log:\n{}", std::fs::read_to_string(&self.1).unwrap_or_default());
        }
    }
}
