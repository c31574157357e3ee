//! MQTT publishing benchmark (issue 4 targets): sustained publish rate with memory before and
//! after, and the time to drain 10,000 events queued while the broker was unreachable.
//! Run: `cargo bench --bench mqtt` (uses FACEGATE_TEST_BROKER if set, else in-process rumqttd).
//! Prints medians of 3 runs.

#[path = "../tests/common/mqtt.rs"]
mod common;
use common::decision;

use std::time::{Duration, Instant};

use facegate::act::events::EventBuilder;
use facegate::act::mqtt::commands::CommandHandler;
use facegate::act::mqtt::{DiscoveryInfo, MemoryOutbox, MqttConfig, MqttService};
use facegate::decide::policy::Role;
use serde_json::Value;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn start(outbox: &MemoryOutbox, run: usize) -> MqttService {
    let (host, port) = common::broker();
    let config = MqttConfig {
        enabled: true,
        host,
        port,
        node: Some("bench".into()),
        client_id: Some(format!("facegate-bench-{run}-{}", std::process::id())),
        prefix: "bench".into(),
        discovery: false,
        reconnect_min_ms: 50,
        ..MqttConfig::default()
    };
    let info = DiscoveryInfo::default();
    MqttService::start(&config, Box::new(outbox.clone()), Box::new(NoCommands), info).expect("start")
}

fn wait_acked(svc: &MqttService, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while svc.stats().acked < n {
        assert!(Instant::now() < deadline, "only {} of {n} acknowledged", svc.stats().acked);
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let b = EventBuilder::new("bench");
    let (mut rates, mut drains, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..3 {
        // Sustained: decisions produced at 2,000/s for 5 s while the node publishes.
        let outbox = MemoryOutbox::default();
        let svc = start(&outbox, run * 2);
        while !svc.stats().connected {
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = rss_kib();
        let n = 10_000u32;
        let t = Instant::now();
        for i in 0..n {
            outbox.push(b.decision(&decision(i), jiff::Timestamp::now()));
            let due = Duration::from_micros(500 * u64::from(i + 1));
            if let Some(wait) = due.checked_sub(t.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        wait_acked(&svc, u64::from(n));
        rates.push(f64::from(n) / t.elapsed().as_secs_f64());
        rss.push((before, rss_kib()));
        svc.stop();

        // Drain: 10,000 events queued while no broker was reachable, then the node connects.
        let outbox = MemoryOutbox::default();
        for i in 0..10_000 {
            outbox.push(b.decision(&decision(i), jiff::Timestamp::now()));
        }
        let t = Instant::now();
        let svc = start(&outbox, run * 2 + 1);
        wait_acked(&svc, 10_000);
        drains.push(t.elapsed().as_secs_f64());
        svc.stop();
    }
    println!("mqtt publish rate (offered 2000/s, 10000 events): median {:.0} events/s acknowledged", median(rates));
    for (i, (a, z)) in rss.iter().enumerate() {
        println!("  run {i}: RSS before {a} KiB, after {z} KiB");
    }
    println!("mqtt drain of 10000 queued events: median {:.2} s (target < 30 s)", median(drains));
}
