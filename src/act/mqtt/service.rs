//! The MQTT runtime: a network thread drives rumqttc's event loop (reconnecting forever with
//! backoff), a publisher thread moves outbox events to the broker in order at QoS 1 and acks
//! each one in the outbox only on its PUBACK, and a command thread runs remote commands.
//!
//! Every connection is a fresh clean session: whatever was not acknowledged is simply read
//! again from the outbox and resent (same event id), so a broker outage or a crash loses
//! nothing and keeps the order.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rumqttc::{AsyncClient, Event, Incoming, LastWill, MqttOptions, Outgoing, QoS};

use super::commands::{CommandRules, Commands, Reply};
use super::discovery::{self, DiscoveryInfo};
use super::session_watch::SessionWatch;
use super::{MqttConfig, Topics};
use crate::act::Outbox;

/// Reads the people who get a presence entity (the service reads them from the store).
pub type PeopleSource = Box<dyn FnMut() -> Result<Vec<discovery::PersonInfo>> + Send>;

/// How often a [`PeopleSource`] is read.
pub const PEOPLE_EVERY: Duration = Duration::from_secs(10);

/// What the service has done so far (for the status line and the heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttStats {
    pub connected: bool,
    /// Successful connections (the first one included).
    pub connects: u64,
    /// Outbox events handed to the broker (resends included).
    pub published: u64,
    /// Outbox events acknowledged by the broker and removed from the outbox.
    pub acked: u64,
    /// Outbox events waiting (as of the last check, about once a second).
    pub waiting: u64,
    /// Commands refused by the checks (bad JSON, arguments, size, signature, replay...).
    pub rejected_commands: u64,
    /// Commands that passed the checks but failed in the handler.
    pub failed_commands: u64,
    /// Why the last connection attempt failed or the connection was lost, with the fix where
    /// one is known (e.g. a TLS certificate problem); `None` once connected.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    connected: AtomicBool,
    connects: AtomicU64,
    published: AtomicU64,
    acked: AtomicU64,
    waiting: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// From the network thread to the publisher.
enum Net {
    /// A new session's client (not yet connected).
    Session(AsyncClient),
    Event(Event),
    /// The connection failed or closed; the session is gone.
    Down(String),
}

/// A running MQTT client. Dropping it without [`MqttService::stop`] leaves the threads running
/// until the process ends.
pub struct MqttService {
    counters: Arc<Counters>,
    /// Events published without the outbox (see [`MqttService::direct`]).
    direct: SyncSender<crate::act::OutboxEvent>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl MqttService {
    /// Starts the threads and returns at once; connecting happens in the background, forever.
    pub fn start(
        config: &MqttConfig,
        outbox: Box<dyn Outbox>,
        keyring: crate::access::Keyring,
        api: Box<dyn crate::api::Api>,
        info: DiscoveryInfo,
    ) -> Result<MqttService> {
        MqttService::start_with_people(config, outbox, keyring, api, info, None)
    }

    /// [`MqttService::start`], re-reading the people with a presence entity every
    /// [`PEOPLE_EVERY`] through `people`, so someone enrolled or removed while the node runs
    /// gets (or loses) their Home Assistant entity without a reload.
    pub fn start_with_people(
        config: &MqttConfig,
        outbox: Box<dyn Outbox>,
        keyring: crate::access::Keyring,
        api: Box<dyn crate::api::Api>,
        info: DiscoveryInfo,
        people: Option<PeopleSource>,
    ) -> Result<MqttService> {
        config.validate()?;
        let topics = Topics::new(&config.prefix, &config.node());
        let options = mqtt_options(config, &topics)?;
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopping = Arc::new(AtomicBool::new(false));
        let (net_tx, net_rx) = mpsc::channel();
        let (cmd_tx, cmd_rx) = mpsc::sync_channel::<(String, Vec<u8>, bool)>(32);
        let (reply_tx, reply_rx) = mpsc::channel();
        let (direct_tx, direct_rx) = mpsc::sync_channel(16);

        let backoff = (Duration::from_millis(config.reconnect_min_ms), Duration::from_millis(config.reconnect_max_ms));
        let cap = config.outbox_batch * 2 + 64;
        let network = std::thread::Builder::new()
            .name("mqtt-net".into())
            .spawn(move || network_thread(options, cap, backoff, net_tx, stop_rx))
            .context("cannot start the MQTT network thread")?;

        let rules = CommandRules::from_config(config);
        let c = counters.clone();
        let commands = std::thread::Builder::new()
            .name("mqtt-cmd".into())
            .spawn(move || command_thread(Commands::new(rules, keyring, api), cmd_rx, reply_tx, c))
            .context("cannot start the MQTT command thread")?;

        let publisher = Publisher {
            topics,
            batch: config.outbox_batch,
            discovery: if config.discovery {
                discovery::configs(&Topics::new(&config.prefix, &config.node()), &config.discovery_prefix, &info)
            } else {
                Vec::new()
            },
            discovery_prefix: config.discovery_prefix.clone(),
            people: if config.discovery { people } else { None },
            info,
            ha_status: format!("{}/status", config.discovery_prefix),
            client_id: config.client_id(),
            sessions: SessionWatch::default(),
            outbox,
            counters: counters.clone(),
            client: None,
            connected: false,
            fifo: VecDeque::new(),
            inflight: HashMap::new(),
            unacked: 0,
            cursor: i64::MIN,
            cmd_tx,
            acked: Vec::new(),
        };
        let s = stopping.clone();
        let publisher = std::thread::Builder::new()
            .name("mqtt-pub".into())
            .spawn(move || publisher.run(net_rx, reply_rx, direct_rx, s))
            .context("cannot start the MQTT publisher thread")?;
        Ok(MqttService { counters, direct: direct_tx, stop_tx, stopping, threads: vec![publisher, network, commands] })
    }

    /// A way around the outbox for what must go out while the store fails (heartbeats that
    /// report `store_errors` during a full disk): published at once if connected, else dropped.
    pub fn direct(&self) -> SyncSender<crate::act::OutboxEvent> {
        self.direct.clone()
    }

    pub fn stats(&self) -> MqttStats {
        let c = &self.counters;
        MqttStats {
            connected: c.connected.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            acked: c.acked.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            rejected_commands: c.rejected.load(Ordering::Relaxed),
            failed_commands: c.failed.load(Ordering::Relaxed),
            last_error: c.last_error.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }

    /// Publishes `offline`, disconnects cleanly and joins the threads. Unacknowledged events stay
    /// in the outbox for the next start.
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // The publisher says goodbye, then the network thread gets a moment to send it.
        if !self.threads.is_empty() {
            let _ = self.threads.remove(0).join();
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.stop_tx.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn mqtt_options(config: &MqttConfig, topics: &Topics) -> Result<MqttOptions> {
    let mut o = config.connect_options(config.client_id())?;
    o.set_clean_session(true);
    o.set_last_will(LastWill::new(topics.status(), "offline", QoS::AtLeastOnce, true));
    // Larger commands than the cap are answered with an error; far larger ones the client
    // refuses at the packet level (the connection drops and comes back).
    let incoming = config.max_payload_bytes.saturating_mul(2).max(1 << 20);
    o.set_max_packet_size(incoming, 256 * 1024 * 1024);
    o.set_inflight(config.outbox_batch.clamp(1, u16::MAX as usize) as u16 + 16);
    Ok(o)
}

/// Drives the event loop; one fresh client and event loop per connection attempt.
fn network_thread(
    options: MqttOptions,
    cap: usize,
    (min, max): (Duration, Duration),
    tx: Sender<Net>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            log::error!("mqtt: cannot start the network runtime: {e}; MQTT is off");
            return;
        }
    };
    runtime.block_on(async move {
        let mut delay = min;
        loop {
            let (client, mut eventloop) = AsyncClient::new(options.clone(), cap);
            if tx.send(Net::Session(client)).is_err() {
                return;
            }
            loop {
                tokio::select! {
                    ev = eventloop.poll() => match ev {
                        Ok(ev) => {
                            if matches!(ev, Event::Incoming(Incoming::ConnAck(_))) {
                                delay = min;
                            }
                            if tx.send(Net::Event(ev)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Net::Down(explain(&e)));
                            break;
                        }
                    },
                    _ = stop.changed() => return,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => return,
            }
            delay = (delay * 2).min(max);
        }
    });
}

/// A connection error as a user can act on it: TLS failures (ours, or an alert from the broker
/// such as `CertificateRequired`) and refusals name the settings to check.
fn explain(e: &rumqttc::ConnectionError) -> String {
    #[cfg(feature = "mqtt-tls")]
    let tls = matches!(e, rumqttc::ConnectionError::Tls(_));
    #[cfg(not(feature = "mqtt-tls"))]
    let tls = false;
    let text = e.to_string();
    if tls || text.contains("fatal alert") {
        format!(
            "{text} (check that mqtt.tls.ca_file holds the CA that signed the broker's certificate, that \
             mqtt.host is a name or address in that certificate, and mqtt.tls.client_cert/client_key if \
             the broker requires a client certificate)"
        )
    } else if let rumqttc::ConnectionError::ConnectionRefused(code) = e {
        format!("{text} (the broker refused the connection: check mqtt.username/password and client id; {code:?})")
    } else {
        text
    }
}

fn command_thread(
    mut commands: Commands,
    rx: Receiver<(String, Vec<u8>, bool)>,
    tx: Sender<Reply>,
    counters: Arc<Counters>,
) {
    for (name, payload, retained) in rx {
        let reply = commands.handle(&name, &payload, retained, jiff::Timestamp::now());
        if reply.rejected {
            counters.rejected.fetch_add(1, Ordering::Relaxed);
        } else if !reply.ok {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        if tx.send(reply).is_err() {
            return;
        }
    }
}

struct Publisher {
    topics: Topics,
    batch: usize,
    /// The discovery configs this node publishes (empty with `mqtt.discovery = false`, so every
    /// config left on the broker from earlier is cleared).
    discovery: Vec<(String, Vec<u8>)>,
    discovery_prefix: String,
    people: Option<PeopleSource>,
    info: DiscoveryInfo,
    ha_status: String,
    client_id: String,
    sessions: SessionWatch,
    outbox: Box<dyn Outbox>,
    counters: Arc<Counters>,
    client: Option<AsyncClient>,
    connected: bool,
    /// Our publishes in the order handed to the client: `Some(seq)` for outbox events. rumqttc
    /// reports each one's packet id (`Outgoing::Publish`) in that same order.
    fifo: VecDeque<Option<i64>>,
    /// Packet id -> outbox seq, for publishes awaiting PUBACK.
    inflight: HashMap<u16, i64>,
    /// Outbox events sent in this session and not yet acknowledged.
    unacked: usize,
    /// Highest seq sent in this session.
    cursor: i64,
    cmd_tx: SyncSender<(String, Vec<u8>, bool)>,
    /// Seqs acknowledged by the broker, removed from the outbox together by [`Publisher::flush_acks`].
    acked: Vec<i64>,
}

impl Publisher {
    fn run(
        mut self,
        net: Receiver<Net>,
        replies: Receiver<Reply>,
        direct: Receiver<crate::act::OutboxEvent>,
        stopping: Arc<AtomicBool>,
    ) {
        let mut last_count = Instant::now() - Duration::from_secs(10);
        let mut last_people = Instant::now();
        loop {
            if stopping.load(Ordering::SeqCst) {
                self.goodbye();
                return;
            }
            let wait = if self.connected && self.unacked < self.batch { 20 } else { 100 };
            match net.recv_timeout(Duration::from_millis(wait)) {
                Ok(m) => self.on_net(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(m) = net.try_recv() {
                self.on_net(m);
            }
            // Before top_up: after a reconnect, acknowledged events must not be read again.
            self.flush_acks();
            while let Ok(reply) = replies.try_recv() {
                let topic = self.topics.reply(&reply.request_id);
                self.send(topic, reply.payload, false, None);
            }
            while let Ok(event) = direct.try_recv() {
                if self.connected {
                    let topic = self.topics.full(&event.topic);
                    self.send(topic, event.payload, event.retain, None);
                }
            }
            if self.connected {
                self.top_up();
            }
            if self.connected && last_people.elapsed() >= PEOPLE_EVERY {
                last_people = Instant::now();
                self.refresh_people();
            }
            if last_count.elapsed() >= Duration::from_secs(1) {
                last_count = Instant::now();
                match self.outbox.waiting() {
                    Ok(n) => self.counters.waiting.store(n, Ordering::Relaxed),
                    Err(e) => log::warn!("mqtt: cannot count the outbox: {e:#}"),
                }
            }
        }
    }

    /// Removes every event acknowledged since the last call from the outbox, in one write: one
    /// write per PUBACK waited for the decision writer's fsync each time and capped publishing at
    /// a few hundred events/s while decisions were being recorded.
    fn flush_acks(&mut self) {
        if self.acked.is_empty() {
            return;
        }
        match self.outbox.ack_all(&self.acked) {
            Ok(()) => {
                self.counters.acked.fetch_add(self.acked.len() as u64, Ordering::Relaxed);
            }
            // They stay in the outbox and go out again later with the same ids.
            Err(e) => {
                log::warn!("mqtt: cannot remove {} acknowledged event(s) from the outbox: {e:#}", self.acked.len())
            }
        }
        self.acked.clear();
    }

    fn goodbye(&mut self) {
        self.flush_acks();
        if let (Some(client), true) = (&self.client, self.connected) {
            let _ = client.try_publish(self.topics.status(), QoS::AtLeastOnce, true, "offline");
            let _ = client.try_disconnect();
        }
    }

    /// Hands one publish to the client and remembers what it was.
    fn send(&mut self, topic: String, payload: Vec<u8>, retain: bool, seq: Option<i64>) -> bool {
        let Some(client) = &self.client else { return false };
        match client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => {
                self.fifo.push_back(seq);
                true
            }
            Err(e) => {
                log::debug!("mqtt: client queue full or closed: {e}");
                false
            }
        }
    }

    /// Sends outbox events after the cursor until the window is full.
    fn top_up(&mut self) {
        while self.unacked < self.batch {
            let events = match self.outbox.pending(self.cursor, self.batch - self.unacked) {
                Ok(e) => e,
                Err(e) => {
                    log::warn!("mqtt: cannot read the outbox: {e:#}");
                    return;
                }
            };
            if events.is_empty() {
                return;
            }
            for p in events {
                let topic = self.topics.full(&p.event.topic);
                if !self.send(topic, p.event.payload, p.event.retain, Some(p.seq)) {
                    return;
                }
                self.cursor = p.seq;
                self.unacked += 1;
                self.counters.published.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_net(&mut self, m: Net) {
        match m {
            Net::Session(client) => self.client = Some(client),
            Net::Down(mut why) => {
                if let Some(warning) = self.sessions.closed(Instant::now(), &self.client_id) {
                    log::warn!("mqtt: {warning}");
                    why = format!("{why}; {warning}");
                }
                if self.connected {
                    log::warn!("mqtt: connection lost: {why}; reconnecting");
                } else {
                    log::warn!("mqtt: cannot connect: {why}; retrying");
                }
                self.connected = false;
                self.counters.connected.store(false, Ordering::Relaxed);
                if let Ok(mut last) = self.counters.last_error.lock() {
                    *last = Some(why);
                }
                self.client = None;
                self.fifo.clear();
                self.inflight.clear();
                self.unacked = 0;
                self.cursor = i64::MIN;
            }
            Net::Event(Event::Incoming(Incoming::ConnAck(_))) => self.on_connect(),
            Net::Event(Event::Outgoing(Outgoing::Publish(pkid))) => match self.fifo.pop_front() {
                Some(Some(seq)) => {
                    self.inflight.insert(pkid, seq);
                }
                Some(None) => {}
                None => log::debug!("mqtt: publish {pkid} not ours"),
            },
            Net::Event(Event::Incoming(Incoming::PubAck(ack))) => {
                if let Some(seq) = self.inflight.remove(&ack.pkid) {
                    self.unacked = self.unacked.saturating_sub(1);
                    self.acked.push(seq);
                }
            }
            Net::Event(Event::Incoming(Incoming::Publish(p))) => {
                self.on_message(&p.topic, p.payload.to_vec(), p.retain)
            }
            Net::Event(_) => {}
        }
    }

    fn on_connect(&mut self) {
        log::info!("mqtt: connected; publishing as {}", self.topics.full(""));
        self.connected = true;
        self.counters.connected.store(true, Ordering::Relaxed);
        if let Ok(mut last) = self.counters.last_error.lock() {
            *last = None;
        }
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.sessions.connected(Instant::now());
        if let Some(client) = &self.client {
            let _ = client.try_subscribe(self.topics.cmd_filter(), QoS::AtLeastOnce);
            if !self.discovery.is_empty() {
                let _ = client.try_subscribe(self.ha_status.clone(), QoS::AtLeastOnce);
            }
            // The broker hands back every retained config of this node: what this node no longer
            // publishes (a removed door, a camera, the old button) is cleared in on_message.
            let filter = discovery::config_filter(&self.discovery_prefix, &self.topics.node);
            let _ = client.try_subscribe(filter, QoS::AtLeastOnce);
        }
        self.send(self.topics.status(), b"online".to_vec(), true, None);
        self.publish_discovery();
    }

    /// Publishes the configs of people enrolled since the last look and clears those of people
    /// removed.
    fn refresh_people(&mut self) {
        let Some(source) = self.people.as_mut() else { return };
        let people = match source() {
            Ok(p) => p,
            Err(e) => {
                log::warn!("mqtt: cannot read the people for Home Assistant: {e:#}");
                return;
            }
        };
        if people == self.info.people {
            return;
        }
        log::info!(
            "mqtt: {} people for Home Assistant (was {}); updating discovery",
            people.len(),
            self.info.people.len()
        );
        self.info.people = people;
        let new = discovery::configs(&self.topics, &self.discovery_prefix, &self.info);
        let gone: Vec<String> =
            self.discovery.iter().filter(|(t, _)| !new.iter().any(|(n, _)| n == t)).map(|(t, _)| t.clone()).collect();
        for topic in gone {
            self.send(topic, Vec::new(), true, None);
        }
        self.discovery = new;
        self.publish_discovery();
    }

    fn publish_discovery(&mut self) {
        for (topic, payload) in self.discovery.clone() {
            self.send(topic, payload, true, None);
        }
    }

    fn on_message(&mut self, topic: &str, payload: Vec<u8>, retain: bool) {
        if topic == self.ha_status {
            if payload == b"online" {
                log::info!("mqtt: Home Assistant came online; publishing discovery again");
                self.publish_discovery();
            }
            return;
        }
        if discovery::is_config_topic(&self.discovery_prefix, &self.topics.node, topic) {
            if discovery::is_stale(&self.discovery, &self.topics.node, topic, &payload) {
                log::info!("mqtt: removing Home Assistant entity {topic}: this node no longer has it");
                self.send(topic.to_string(), Vec::new(), true, None);
            }
            return;
        }
        let Some(name) = self.topics.command_name(topic) else { return };
        match self.cmd_tx.try_send((name.to_string(), payload, retain)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                log::warn!("mqtt: command {name} dropped: too many commands waiting");
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => log::warn!("mqtt: command thread is gone; {name} ignored"),
        }
    }
}

/// A test and benchmark outbox in memory (the service uses the SQLite store).
#[derive(Clone, Default)]
pub struct MemoryOutbox {
    inner: Arc<Mutex<(i64, std::collections::BTreeMap<i64, crate::act::OutboxEvent>)>>,
}

impl MemoryOutbox {
    pub fn push(&self, event: crate::act::OutboxEvent) {
        if let Ok(mut g) = self.inner.lock() {
            g.0 += 1;
            let seq = g.0;
            g.1.insert(seq, event);
        }
    }
}

impl Outbox for MemoryOutbox {
    fn pending(&mut self, after: i64, limit: usize) -> Result<Vec<crate::act::PendingEvent>> {
        let g = self.inner.lock().map_err(|_| anyhow::anyhow!("outbox lock poisoned"))?;
        Ok(g.1
            .range(after.saturating_add(1)..)
            .take(limit)
            .map(|(seq, event)| crate::act::PendingEvent { seq: *seq, event: event.clone() })
            .collect())
    }

    fn ack(&mut self, seq: i64) -> Result<()> {
        let mut g = self.inner.lock().map_err(|_| anyhow::anyhow!("outbox lock poisoned"))?;
        g.1.remove(&seq);
        Ok(())
    }

    fn waiting(&mut self) -> Result<u64> {
        let g = self.inner.lock().map_err(|_| anyhow::anyhow!("outbox lock poisoned"))?;
        Ok(g.1.len() as u64)
    }
}
