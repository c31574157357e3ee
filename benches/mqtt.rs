//! MQTT publishing benchmark (issue 4 targets: 1,000 events/s sustained without growing memory,
//! and a drain of 10,000 events queued during an outage in < 30 s). Prints medians of 3 runs.
//!
//! Run: `cargo bench --bench mqtt`. Two outboxes:
//! - in memory (the publisher alone), against the shared test broker (in-process rumqttd, or
//!   `FACEGATE_TEST_BROKER=mosquitto|host:port`);
//! - the real SQLite `Store` (as the service runs it: decisions recorded on one connection,
//!   published from another), against a broker in its own process (rumqttd run by this binary
//!   re-executed, or mosquitto with `FACEGATE_TEST_BROKER=mosquitto`), so the RSS printed is the
//!   node's alone. The drain follows a real outage: the broker is killed, 10,000 events are
//!   queued, the broker is started again and the clock runs until the outbox is empty.

#[path = "../tests/common/mqtt.rs"]
#[allow(dead_code)]
mod common;
use common::{BrokerProcess, NoCommands, decision, no_keys_anywhere, recorded};

use std::time::{Duration, Instant};

use facegate::act::Outbox;
use facegate::act::events::EventBuilder;
use facegate::act::mqtt::{DiscoveryInfo, MemoryOutbox, MqttConfig, MqttService};
use facegate::act::store::Store;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn start(outbox: Box<dyn Outbox>, (host, port): (String, u16), run: &str) -> MqttService {
    let config = MqttConfig {
        enabled: true,
        host,
        port,
        node: Some("bench".into()),
        client_id: Some(format!("facegate-bench-{run}-{}", std::process::id())),
        prefix: "bench".into(),
        discovery: false,
        reconnect_min_ms: 50,
        reconnect_max_ms: 200,
        ..MqttConfig::default()
    };
    MqttService::start(&config, outbox, no_keys_anywhere(), Box::new(NoCommands), DiscoveryInfo::default())
        .expect("start")
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Sleeps until `i` events are due at `per_s` events/s since `t`.
fn pace(t: Instant, i: u64, per_s: u64) {
    let due = Duration::from_micros(1_000_000 * i / per_s);
    if let Some(wait) = due.checked_sub(t.elapsed()) {
        std::thread::sleep(wait);
    }
}

/// The publisher alone: an in-memory outbox.
fn memory_outbox(b: &EventBuilder) {
    let (mut rates, mut drains, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..3 {
        // Sustained: decisions produced at 2,000/s for 5 s while the node publishes.
        let outbox = MemoryOutbox::default();
        let svc = start(Box::new(outbox.clone()), common::broker(), &format!("m{run}"));
        wait("connected", || svc.stats().connected);
        let before = rss_kib();
        let n = 10_000u64;
        let t = Instant::now();
        for i in 0..n {
            outbox.push(b.decision(&decision(i as u32), jiff::Timestamp::now()));
            pace(t, i + 1, 2000);
        }
        wait("all acknowledged", || svc.stats().acked >= n);
        rates.push(n as f64 / t.elapsed().as_secs_f64());
        rss.push((before, rss_kib()));
        svc.stop();

        // Drain: 10,000 events queued before the node starts.
        let outbox = MemoryOutbox::default();
        for i in 0..10_000 {
            outbox.push(b.decision(&decision(i), jiff::Timestamp::now()));
        }
        let t = Instant::now();
        let svc = start(Box::new(outbox.clone()), common::broker(), &format!("md{run}"));
        wait("drained", || svc.stats().acked >= 10_000);
        drains.push(t.elapsed().as_secs_f64());
        svc.stop();
    }
    println!(
        "memory outbox: publish rate (offered 2000/s, 10000 events): median {:.0} events/s acknowledged",
        median(rates)
    );
    for (i, (a, z)) in rss.iter().enumerate() {
        println!("  run {i}: RSS before {a} KiB, after {z} KiB");
    }
    println!("memory outbox: drain of 10000 queued events: median {:.2} s (target < 30 s)", median(drains));
}

/// The real SQLite store as the outbox, against a broker in its own process.
fn store_outbox(b: &EventBuilder) {
    const RATE: u64 = 1000;
    const SECONDS: u64 = 20;
    let (mut rates, mut drains, mut record_ms, mut record_event_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..3 {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("bench.db");
        let mut store = Store::open(&db).expect("store");
        let mut broker = BrokerProcess::start();
        let svc = start(Box::new(Store::open(&db).expect("store")), broker.addr(), &format!("s{run}"));
        wait("connected", || svc.stats().connected);

        // What one decision costs the act stage: record_event (row + decision + last_seen, fsynced).
        let mut latencies = Vec::new();
        for i in 0..200 {
            let (row, out) = recorded(b, i, 7);
            let r = Instant::now();
            store.record_event(&row, &out).expect("record");
            latencies.push(r.elapsed().as_secs_f64() * 1e3);
        }
        record_event_ms.push(median(latencies));
        wait("the decisions are delivered", || store.waiting().map(|w| w == 0).unwrap_or(false));
        let acked_start = svc.stats().acked;

        // Sustained: 1,000 decision events/s written durably to the store (synchronous=FULL), in
        // transactions of 10 every 10 ms: one fsync per event (record_event) costs 1-4 ms on this
        // disk, so a single writer cannot offer 1,000 fsynced transactions/s (see docs/mqtt.md).
        let n = RATE * SECONDS;
        let rss_start = rss_kib();
        let (mut rss_mid, mut most_waiting, mut slowest) = (0, 0, Duration::ZERO);
        let mut spent = Duration::ZERO;
        let t = Instant::now();
        for tick in 0..n / 10 {
            let events: Vec<_> =
                (0..10).map(|i| b.decision(&decision((tick * 10 + i) as u32), jiff::Timestamp::now())).collect();
            let r = Instant::now();
            store.enqueue(&events).expect("enqueue");
            spent += r.elapsed();
            slowest = slowest.max(r.elapsed());
            if tick == n / 20 {
                rss_mid = rss_kib();
            }
            if tick % 100 == 99 {
                most_waiting = most_waiting.max(store.waiting().expect("count"));
            }
            pace(t, (tick + 1) * 10, RATE);
        }
        let produced = t.elapsed();
        wait("all acknowledged", || svc.stats().acked >= acked_start + n);
        let rate = n as f64 / t.elapsed().as_secs_f64();
        rates.push(rate);
        record_ms.push(spent.as_secs_f64() * 1e3 / (n / 10) as f64);
        println!(
            "  store run {run}: {n} decision events offered at {RATE}/s in {:.1} s, {rate:.0} events/s acknowledged; \
             write of 10 mean {:.2} ms, slowest {:.1} ms; most waiting {most_waiting}; \
             RSS start {rss_start} KiB, half-way {rss_mid} KiB, end {} KiB",
            produced.as_secs_f64(),
            spent.as_secs_f64() * 1e3 / (n / 10) as f64,
            slowest.as_secs_f64() * 1e3,
            rss_kib()
        );

        // Drain after a real outage: the broker is killed, 10,000 events queue up, the broker
        // comes back on the same port; time from its return until the outbox is empty.
        broker.stop();
        wait("the node notices", || !svc.stats().connected);
        let acked_before = svc.stats().acked;
        for chunk in 0..100 {
            let events: Vec<_> =
                (0..100).map(|i| b.decision(&decision(chunk * 100 + i), jiff::Timestamp::now())).collect();
            store.enqueue(&events).expect("enqueue");
        }
        assert_eq!(store.waiting().expect("count"), 10_000);
        broker.restart();
        let t = Instant::now();
        wait("drained", || store.waiting().map(|w| w == 0).unwrap_or(false));
        let drain = t.elapsed().as_secs_f64();
        drains.push(drain);
        println!(
            "  store run {run}: drain of 10000 queued events after the broker restart {drain:.2} s ({} acked)",
            svc.stats().acked - acked_before
        );
        svc.stop();
    }
    println!(
        "store outbox: sustained (offered {RATE}/s for {SECONDS} s): median {:.0} events/s acknowledged, \
         durable write of 10 events: median of means {:.2} ms",
        median(rates),
        median(record_ms)
    );
    println!(
        "store outbox: record_event (1 decision row + 2 outbox events, fsynced): median {:.2} ms",
        median(record_event_ms)
    );
    println!(
        "store outbox: drain of 10000 queued events after an outage: median {:.2} s (target < 30 s)",
        median(drains)
    );
}

fn main() {
    // Re-executed by BrokerProcess: be the broker.
    common::serve_broker_if_child();
    let b = EventBuilder::new("bench");
    let only_store = std::env::args().any(|a| a == "store");
    if !only_store {
        memory_outbox(&b);
    }
    store_outbox(&b);
}
