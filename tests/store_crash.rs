//! Kill -9 durability: a child process writes events, outbox rows and templates in a loop and
//! prints each row only after the store call returned; we SIGKILL it at random moments, reopen
//! the database and require that it passes its integrity check and holds every printed row intact.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use facegate::act::Outbox;
use facegate::act::store::Store;
use facegate::cli::store::{TORTURE_DIM, torture_event};
use facegate::gallery::TemplateModel;

const ROUNDS: u64 = 20;

#[test]
fn acknowledged_rows_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut rng = fastrand::Rng::with_seed(0x5eed_f00d);
    let started = Instant::now();
    let (mut events, mut templates) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
            .args(["--db", db.to_str().unwrap(), "store-torture", "--seed", &round.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            // Only complete lines count: a line cut by the kill was never fully acknowledged.
            while stdout.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    lines.push(line.trim_end().to_string());
                }
                line.clear();
            }
            lines
        });
        std::thread::sleep(Duration::from_millis(rng.u64(30..600)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let lines = reader.join().unwrap();

        for line in &lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f[..] {
                ["E", id, tag, i] => {
                    events.push((id.parse::<i64>().unwrap(), tag.to_string(), i.parse::<u64>().unwrap()))
                }
                ["T", person, tag, i] => {
                    templates.push((person.to_string(), tag.to_string(), i.parse::<u64>().unwrap()))
                }
                _ => panic!("unexpected line from the child: {line}"),
            }
        }

        // Reopen after every kill: the next round then also starts from a crashed WAL.
        let mut store = Store::open(&db).unwrap();
        store.integrity_check().unwrap();
        for (id, tag, i) in &events {
            let stored = store.event(*id).unwrap().unwrap_or_else(|| panic!("round {round}: event {id} ({tag}) lost"));
            assert_eq!(stored, torture_event(tag, *i), "round {round}: event {id} damaged");
        }
        let gallery = store.gallery(&TemplateModel { id: "torture".into(), dim: TORTURE_DIM }).unwrap();
        for (person, tag, i) in &templates {
            let p = gallery.iter().find(|p| &p.name == person).unwrap_or_else(|| panic!("{person} lost"));
            assert!(
                p.templates.contains(&vec![*i as f32; TORTURE_DIM]),
                "round {round}: template {tag} of {person} lost"
            );
        }
        // Every outbox row is either still queued or was acknowledged (acks only take the oldest).
        let queued: HashSet<String> =
            store.pending(0, usize::MAX).unwrap().into_iter().map(|p| p.event.event_id).collect();
        let oldest_queued = events.iter().position(|(_, tag, _)| queued.contains(tag)).unwrap_or(events.len());
        for (_, tag, _) in &events[oldest_queued..] {
            assert!(queued.contains(tag), "round {round}: outbox event {tag} lost behind newer ones");
        }
        eprintln!("round {round}: {} lines acknowledged, {} events checked so far", lines.len(), events.len());
    }
    assert!(events.len() > 100, "the child wrote too little to test anything ({} events)", events.len());
    assert!(!templates.is_empty());
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}
