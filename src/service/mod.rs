//! `facegate run`: the long-running appliance. Wires the stages together with bounded channels
//! and owns their lifetime:
//!
//! ```text
//! camera threads --(newest frame only: FrameHub)--> vision thread --(bounded channel)--> act thread
//!                                                    detect/track/embed/vote               store -> door
//! ```
//!
//! The main thread handles SIGTERM/SIGINT, feeds systemd's watchdog only while every stage shows
//! progress, logs a status line, and on shutdown stops the cameras, lets the act stage drain and
//! releases every relay (they also release themselves when dropped, on panic or on a stall).

pub mod act_stage;
pub mod config;
pub mod stats;
pub mod systemd;
pub mod vision_stage;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::act::door::Door;
use crate::act::store::Store;
use crate::capture::{FrameHub, spawn_cameras};
use crate::config::Config;
use crate::decide::clock::{Clock, MonotonicClock};
use crate::engine::Engine;
use act_stage::ActStage;
use stats::{Percentiles, ServiceStats};
use systemd::Systemd;
use vision_stage::VisionStage;

/// The last time a stage showed progress, on the service clock (milliseconds).
#[derive(Clone)]
pub struct Heartbeat {
    clock: Arc<dyn Clock>,
    last_ms: Arc<AtomicU64>,
}

impl Heartbeat {
    pub fn new(clock: Arc<dyn Clock>) -> Heartbeat {
        let last_ms = Arc::new(AtomicU64::new(clock.now().as_millis() as u64));
        Heartbeat { clock, last_ms }
    }

    pub fn beat(&self) {
        self.last_ms.store(self.clock.now().as_millis() as u64, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn silence(&self) -> Duration {
        self.clock.now().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Re-reads the site configuration (the config file with the command line's overrides).
pub type ConfigSource = Arc<dyn Fn() -> Result<Config> + Send + Sync>;

/// Options of one run that are not site configuration.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Stop after this long (benchmarks, tests).
    pub duration: Option<Duration>,
    /// Where SIGHUP and the `reload_config` command read the new config from; without it the
    /// node cannot reload and says so.
    pub reload: Option<ConfigSource>,
}

/// What a run did, printed at the end (added up over config reloads).
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub seconds: f64,
    pub cameras: Vec<(String, crate::capture::CameraStats)>,
    pub frames: u64,
    pub faces: u64,
    pub embeddings: u64,
    pub granted: u64,
    pub denied: u64,
    pub unknown: u64,
    pub alerts: u64,
    pub pulses: u64,
    pub reloads: u64,
    pub inference_ms: Percentiles,
    pub latency_ms: Percentiles,
}

/// A stage is considered stalled after this long without progress.
const STALL: Duration = Duration::from_secs(10);

/// Time the MQTT reply to `reload_config` gets to leave before the pipeline restarts.
const RELOAD_GRACE: Duration = Duration::from_millis(500);

/// Flags set from outside the pipeline: signal handlers and MQTT commands.
#[derive(Clone, Default)]
pub struct Control {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Control {
    /// Asks the running pipeline to re-read its config and restart with it.
    pub fn request_reload(&self) {
        self.reload.store(true, Ordering::SeqCst);
    }
}

/// Why one pipeline run ended (an `Err` from [`run_pipeline`] means it never started).
enum Ended {
    Stopped,
    Reload(Box<Config>),
    /// A stage failed while running: the process exits with this error (systemd restarts it).
    Failed(anyhow::Error),
}

/// Runs the appliance until SIGTERM/SIGINT, the end of every camera (when configured) or
/// `options.duration`. SIGHUP (`systemctl reload facegate`) and the `reload_config` command
/// re-read the config and restart the pipeline with it; an invalid new config is refused and
/// the node keeps running on the old one.
pub fn run(config: &Config, options: RunOptions) -> Result<RunSummary> {
    let control = Control::default();
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&control.stop)).context("cannot install the signal handler")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&control.reload))
        .context("cannot install the SIGHUP handler")?;
    crate::act::door::install_panic_release();
    let systemd = Systemd::from_env();
    let started = Instant::now();
    let mut config = config.clone();
    let mut total = RunSummary::default();
    // The config in force before the last reload: where to go back if the new one cannot start
    // (a door whose GPIO chip is missing, say). A failure later on ends the process as usual.
    let mut previous: Option<Config> = None;
    loop {
        let remaining = options.duration.map(|d| d.saturating_sub(started.elapsed()));
        let (summary, ended) = match run_pipeline(&config, remaining, &options, &control, &systemd) {
            Ok(result) => result,
            Err(e) => match previous.take() {
                Some(old) => {
                    log::error!("the reloaded config could not start, going back to the previous one: {e:#}");
                    total.reloads -= 1;
                    config = old;
                    continue;
                }
                None => return Err(e),
            },
        };
        total.add(summary);
        match ended {
            Ended::Stopped => {
                total.seconds = started.elapsed().as_secs_f64();
                return Ok(total);
            }
            Ended::Failed(e) => return Err(e),
            Ended::Reload(new) => {
                total.reloads += 1;
                previous = Some(std::mem::replace(&mut config, *new));
                log::info!("config reloaded; restarting the pipeline");
            }
        }
    }
}

impl RunSummary {
    /// Adds a later pipeline run (after a reload) to this one.
    fn add(&mut self, later: RunSummary) {
        self.cameras = later.cameras;
        for (sum, n) in [
            (&mut self.frames, later.frames),
            (&mut self.faces, later.faces),
            (&mut self.embeddings, later.embeddings),
            (&mut self.granted, later.granted),
            (&mut self.denied, later.denied),
            (&mut self.unknown, later.unknown),
            (&mut self.alerts, later.alerts),
            (&mut self.pulses, later.pulses),
        ] {
            *sum += n;
        }
        // Percentiles cannot be merged; the latest run's are the ones that describe the config
        // in force.
        if later.inference_ms.count > 0 {
            self.inference_ms = later.inference_ms;
        }
        if later.latency_ms.count > 0 {
            self.latency_ms = later.latency_ms;
        }
    }
}

/// Reads the new config for a reload; `None` (logged) when it is missing or invalid, or when
/// its models cannot be loaded (e.g. a model file whose SHA-256 no longer matches): the running
/// pipeline, whose models are already in memory, is kept instead of being stopped for a
/// config that could never start.
fn reloaded_config(options: &RunOptions) -> Option<Config> {
    let Some(source) = &options.reload else {
        log::error!("reload asked for, but this node was started without a config file to re-read; ignored");
        return None;
    };
    match source().and_then(|config| {
        Engine::open(&config).context("its models cannot be loaded")?;
        Ok(config)
    }) {
        Ok(config) => Some(config),
        Err(e) => {
            log::error!("reload refused, the node keeps its current config: {e:#}");
            None
        }
    }
}

/// One start-to-stop of the pipeline on one config.
fn run_pipeline(
    config: &Config,
    duration: Option<Duration>,
    options: &RunOptions,
    control: &Control,
    systemd: &Systemd,
) -> Result<(RunSummary, Ended)> {
    config.validate()?;
    if config.cameras.is_empty() {
        bail!("no camera configured: add a [[camera]] section to the config (see board/*.toml for examples)");
    }
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::default());
    let tz = config.service.time_zone()?;

    let mut engine = Engine::open(config)?;
    let mut store = Store::open_config(&config.store)?;
    // Refuse to start on a database this user cannot write: it would run, look healthy and
    // never open the door (every decision must be recorded first).
    store.check_writable()?;
    if let Some(dir) = &config.service.enroll_dir
        && store.people()?.is_empty()
    {
        enroll_first_start(&mut engine, &mut store, dir)?;
    }
    let mut doors = HashMap::new();
    for door_config in &config.doors {
        let door =
            Door::open(door_config, Arc::clone(&clock)).with_context(|| format!("door `{}`", door_config.name))?;
        doors.insert(door_config.name.clone(), Arc::new(door));
    }
    for camera in &config.cameras {
        if let Some(door) = &camera.door
            && !doors.contains_key(door)
        {
            bail!("camera `{}` opens door `{door}`, but no [[door]] has that name", camera.name);
        }
    }

    let stats = Arc::new(ServiceStats::default());
    let hub = Arc::new(FrameHub::for_cameras(&config.cameras));
    let mut cameras = spawn_cameras(&config.cameras, Arc::clone(&clock), Arc::clone(&hub))?;
    let (decision_tx, decision_rx) = std::sync::mpsc::sync_channel(config.service.decision_queue);
    // One engine (models) per vision worker; the first is the one that enrolled above.
    let workers = config.service.vision_workers.clamp(1, config.cameras.len());
    let mut engines = vec![engine];
    for _ in 1..workers {
        engines.push(Engine::open(config)?);
    }
    if workers > 1 {
        log::info!("vision: {workers} workers, each with its own models, cameras split between them");
    }
    let vision_beats: Vec<Heartbeat> = (0..workers).map(|_| Heartbeat::new(Arc::clone(&clock))).collect();
    let act_beat = Heartbeat::new(Arc::clone(&clock));

    let snapshot_requests = Arc::new(vision_stage::SnapshotRequests::default());
    let live = config.web.enabled.then(|| crate::web::live::LiveFeed::start(config.cameras.len(), config.web.live_fps));
    let liveness_threshold = engines[0].liveness.as_ref().map(|l| l.threshold());
    match liveness_threshold {
        Some(t) => log::info!("liveness: passive check on, threshold {t:.3}"),
        None => log::warn!("liveness: off; a photo or a screen of an enrolled person is treated like the person"),
    }
    if config.analyze.enabled {
        log::info!(
            "analyze: age, gender and expression estimated once per decided face of {}{}{}",
            if config.analyze.per_person { "everyone" } else { "strangers (unknown decisions)" },
            if config.analyze.unknown_events { ", added to their decision events" } else { "" },
            if config.analyze.hourly { ", counted per camera per hour" } else { "" },
        );
    } else {
        log::info!("analyze: off ([analyze] enabled = false): no age, gender or expression is estimated");
    }
    let mut visions = Vec::new();
    for (index, engine) in engines.into_iter().enumerate() {
        visions.push(VisionStage {
            engine,
            store: Store::open_config(&config.store)?,
            decider: vision_stage::decider_for(&config.decide, &config.cameras)?.with_liveness(liveness_threshold),
            tuning: config.cameras.iter().map(|c| c.tuning).collect(),
            default_min_face: config.detector.min_face,
            auto_update: config.matching.auto_update.then_some(config.matching.auto_update_rules),
            camera_names: config.cameras.iter().map(|c| c.name.clone()).collect(),
            hub: Arc::clone(&hub),
            doors: doors.values().cloned().collect(),
            out: decision_tx.clone(),
            stats: Arc::clone(&stats),
            heartbeat: vision_beats[index].clone(),
            refresh_every: Duration::from_secs_f64(config.service.gallery_refresh_s),
            snapshots: config.mqtt.snapshots,
            snapshot_requests: Arc::clone(&snapshot_requests),
            live: live.clone(),
            unknown_inbox: config.web.unknown_inbox,
            share: vision_stage::WorkerShare { index, count: workers },
            analyze: config.analyze.clone(),
        });
    }
    drop(decision_tx);
    let node = config.mqtt.node();
    let door_events = doors.values().map(|d| d.events()).collect();
    let mqtt = if config.mqtt.enabled {
        let info = discovery_info(config, &node, &store)?;
        let api = crate::api::NodeApi::new(
            config.clone(),
            Store::open_config(&config.store)?,
            doors.clone(),
            crate::api::Reload { source: options.reload.clone(), control: control.clone() },
            Arc::clone(&snapshot_requests),
        );
        let keyring =
            crate::access::Keyring::new(Store::open_config(&config.store)?, &node, config.mqtt.max_clock_skew_s);
        let outbox = Box::new(Store::open_config(&config.store)?);
        let people_store = Store::open_config(&config.store)?;
        let watchlist = config.mqtt.presence_watchlist;
        let people: crate::act::mqtt::PeopleSource = Box::new(move || presence_people(&people_store, watchlist));
        Some(crate::act::mqtt::MqttService::start_with_people(
            &config.mqtt,
            outbox,
            keyring,
            Box::new(api),
            info,
            Some(people),
        )?)
    } else {
        log::info!("MQTT is off ([mqtt] enabled = false): events stay in the outbox until it is enabled");
        None
    };
    let act = ActStage {
        direct: mqtt.as_ref().map(|m| m.direct()),
        events: crate::act::events::EventBuilder::new(&node),
        door_events,
        hub: Arc::clone(&hub),
        heartbeat_every: Duration::from_secs(config.service.status_interval_s),
        model: config.models.variant.to_string(),
        store,
        cameras: config.cameras.clone(),
        doors: doors.clone(),
        clock: Arc::clone(&clock),
        tz,
        stats: Arc::clone(&stats),
        heartbeat: act_beat.clone(),
        inbox: crate::act::inbox::Inbox::new(&config.web),
        analyze: act_stage::AttributeCounts::new(&config.analyze),
    };
    let web = start_web(
        config,
        &doors,
        live,
        &hub,
        || crate::api::Reload { source: options.reload.clone(), control: control.clone() },
        &snapshot_requests,
    )?;
    let vision_stop = Arc::new(AtomicBool::new(false));
    let mut vision_threads = Vec::new();
    for (index, vision) in visions.into_iter().enumerate() {
        let name = if index == 0 { "vision".to_string() } else { format!("vision-{index}") };
        let vision_stop = Arc::clone(&vision_stop);
        vision_threads.push(spawn(&name, move || vision.run(vision_stop))?);
    }
    let act_thread = spawn("act", move || act.run(decision_rx))?;

    let started = Instant::now();
    let names: Vec<String> = config.cameras.iter().map(|c| c.name.clone()).collect();
    let status = format!("watching {} camera(s), {} door(s)", names.len(), doors.len());
    log::info!("facegate running: {status}");
    systemd.ready(&status);
    let mut last_status = Instant::now();
    let mut last_watchdog = Instant::now();
    let mut failure = None;
    let mut ended = Ended::Stopped;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if control.stop.load(Ordering::SeqCst) {
            log::info!("stopping (signal received)");
            break;
        }
        if control.reload.swap(false, Ordering::SeqCst) {
            log::info!("reloading the config");
            if let Some(new) = reloaded_config(options) {
                systemd.reloading();
                std::thread::sleep(RELOAD_GRACE);
                ended = Ended::Reload(Box::new(new));
                break;
            }
        }
        if duration.is_some_and(|d| started.elapsed() >= d) {
            log::info!("stopping (run duration reached)");
            break;
        }
        if vision_threads.iter().any(JoinHandle::is_finished) || act_thread.is_finished() {
            failure = Some("a stage ended unexpectedly".to_string());
            break;
        }
        if config.service.stop_when_cameras_end && hub.all_ended() {
            // Give the last frame time to be decided before stopping.
            std::thread::sleep(Duration::from_millis(1000));
            log::info!("stopping (every camera reached its end)");
            break;
        }
        // Every worker must beat: one stalled worker leaves its cameras unwatched.
        let vision_silence = vision_beats.iter().map(Heartbeat::silence).max().unwrap_or_default();
        let healthy = vision_silence < STALL && act_beat.silence() < STALL;
        if let Some(every) = systemd.watchdog_interval()
            && healthy
            && last_watchdog.elapsed() >= every
        {
            systemd.watchdog();
            last_watchdog = Instant::now();
        }
        if !healthy {
            log::error!(
                "a stage stalled (vision silent {:.1} s, act silent {:.1} s); the watchdog is no longer fed",
                vision_silence.as_secs_f64(),
                act_beat.silence().as_secs_f64()
            );
        }
        let interval = config.service.status_interval_s;
        if interval > 0 && last_status.elapsed() >= Duration::from_secs(interval) {
            last_status = Instant::now();
            let line = status_line(&stats, &names, &hub.stats(), started.elapsed());
            log::info!("status: {line}");
            systemd.status(&line);
        }
    }
    if matches!(ended, Ended::Stopped) {
        systemd.stopping();
    }
    let camera_stats = hub.stats();
    cameras.stop();
    vision_stop.store(true, Ordering::SeqCst);
    // Join every worker before looking at the results (the first error is reported).
    let joined: Vec<Result<()>> = vision_threads.into_iter().map(|t| join(t, "vision")).collect();
    let vision_result = joined.into_iter().collect::<Result<Vec<()>>>().map(drop);
    let act_result = join(act_thread, "act");
    crate::act::door::release_all();
    if let Some(mqtt) = mqtt {
        mqtt.stop();
    }
    stop_web(web);
    let failure = match (vision_result, act_result, failure) {
        (Err(e), _, _) | (_, Err(e), _) => Some(e),
        (_, _, Some(failure)) => Some(anyhow::anyhow!("{failure}; see the log above")),
        _ => None,
    };
    if let Some(e) = failure {
        ended = Ended::Failed(e);
    }
    let summary = RunSummary {
        seconds: started.elapsed().as_secs_f64(),
        cameras: names.into_iter().zip(camera_stats).collect(),
        frames: ServiceStats::get(&stats.frames),
        faces: ServiceStats::get(&stats.faces),
        embeddings: ServiceStats::get(&stats.embeddings),
        granted: ServiceStats::get(&stats.granted),
        denied: ServiceStats::get(&stats.denied),
        unknown: ServiceStats::get(&stats.unknown),
        alerts: ServiceStats::get(&stats.alerts),
        pulses: ServiceStats::get(&stats.pulses),
        reloads: 0,
        inference_ms: stats.inference(),
        latency_ms: stats.latency(),
    };
    Ok((summary, ended))
}

/// The people who get a Home Assistant presence entity: everyone enrolled, the watchlist only
/// when `mqtt.presence_watchlist` is on.
fn presence_people(store: &Store, watchlist: bool) -> Result<Vec<crate::act::mqtt::PersonInfo>> {
    Ok(store
        .people()?
        .into_iter()
        .filter(|p| watchlist || p.role != crate::decide::policy::Role::Watchlist)
        .map(|p| crate::act::mqtt::PersonInfo { id: p.id, name: p.name })
        .collect())
}

/// What Home Assistant is told about this node: its doors (with a contact or not, located where
/// the camera that opens them is), cameras, and the people who get a presence entity.
fn discovery_info(config: &Config, node: &str, store: &Store) -> Result<crate::act::mqtt::DiscoveryInfo> {
    use crate::act::mqtt::{CameraInfo, DiscoveryInfo, DoorInfo};
    let people = presence_people(store, config.mqtt.presence_watchlist)?;
    Ok(DiscoveryInfo {
        name: format!("facegate {node}"),
        model: "facegate".into(),
        sw_version: env!("CARGO_PKG_VERSION").into(),
        doors: config
            .doors
            .iter()
            .map(|d| DoorInfo {
                name: d.name.clone(),
                contact: d.contact.is_some(),
                location: config
                    .cameras
                    .iter()
                    .find(|c| c.door.as_deref() == Some(d.name.as_str()))
                    .map(|c| c.location.clone()),
            })
            .collect(),
        cameras: config
            .cameras
            .iter()
            .map(|c| CameraInfo { name: c.name.clone(), location: c.location.clone() })
            .collect(),
        people,
        snapshots: config.mqtt.snapshots,
        attributes: config.analyze.counts_hours(),
        configuration_url: config.mqtt.configuration_url.clone(),
    })
}

fn spawn(name: &str, body: impl FnOnce() -> Result<()> + Send + 'static) -> Result<JoinHandle<Result<()>>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let result = body();
            if let Err(e) = &result {
                log::error!("{}: {e:#}", std::thread::current().name().unwrap_or("stage"));
            }
            result
        })
        .with_context(|| format!("cannot start the {name} thread"))
}

fn join(handle: JoinHandle<Result<()>>, name: &str) -> Result<()> {
    match handle.join() {
        Ok(result) => result.with_context(|| format!("the {name} stage failed")),
        Err(_) => bail!("the {name} stage panicked (relays were released); this is a bug, please report the log"),
    }
}

fn status_line(
    stats: &ServiceStats,
    names: &[String],
    cameras: &[crate::capture::CameraStats],
    uptime: Duration,
) -> String {
    let per_camera: Vec<String> = names
        .iter()
        .zip(cameras)
        .map(|(name, s)| format!("{name} {:.1} fps ({} dropped, {:?})", s.fps, s.stale_drops, s.state))
        .collect();
    let inference = stats.inference();
    format!(
        "up {:.0} s; {}; {} frames, {} decisions ({} granted); inference p50 {:.0} ms",
        uptime.as_secs_f64(),
        per_camera.join(", "),
        ServiceStats::get(&stats.frames),
        stats.decisions(),
        ServiceStats::get(&stats.granted),
        inference.p50
    )
}

/// Enrolls every sub-folder of `dir` (folder name = person) into an empty store.
fn enroll_first_start(engine: &mut Engine, store: &mut Store, dir: &Path) -> Result<()> {
    let people = crate::cli::people::people_in(dir)?;
    let total = people.iter().map(|(_, photos)| photos.len()).sum();
    log::info!("first start: enrolling {} people from {}", people.len(), dir.display());
    let mut store_person =
        |engine: &Engine, name: &str, _: Vec<Vec<u8>>, templates: &[crate::act::store::NewTemplate]| {
            let mode = crate::enroll::Mode::NewOrAppend;
            crate::enroll::enroll(store, engine, name, None, templates, mode).map(|done| done.templates_added)
        };
    let (enrolled, problems) = crate::cli::people::enroll_people(engine, &people, total, false, &mut store_person)?;
    log::info!("first start: {enrolled} people enrolled, {problems} problem(s)");
    Ok(())
}

#[cfg(feature = "web")]
type WebServer = crate::web::server::WebServer;
#[cfg(not(feature = "web"))]
type WebServer = ();

/// Starts the web console when `[web] enabled` (and this build has it).
fn start_web(
    config: &Config,
    doors: &HashMap<String, Arc<Door>>,
    live: Option<Arc<crate::web::live::LiveFeed>>,
    hub: &Arc<FrameHub>,
    reload: impl FnOnce() -> crate::api::Reload,
    snapshot_requests: &Arc<vision_stage::SnapshotRequests>,
) -> Result<Option<WebServer>> {
    let Some(live) = live else { return Ok(None) };
    #[cfg(feature = "web")]
    {
        let store = Store::open_config(&config.store)?;
        let api =
            crate::api::NodeApi::new(config.clone(), store, doors.clone(), reload(), Arc::clone(snapshot_requests));
        // The door does not depend on the console: one that cannot start is logged, not fatal.
        match crate::web::server::WebServer::start(config, api, live, Arc::clone(hub)) {
            Ok(server) => {
                // On stderr: stdout carries `run --json`'s summary.
                eprintln!("web console: {}", server.url);
                Ok(Some(server))
            }
            Err(e) => {
                log::error!("web console not started (the door works without it): {e:#}");
                Ok(None)
            }
        }
    }
    #[cfg(not(feature = "web"))]
    {
        let _ = (doors, live, hub, reload, snapshot_requests);
        log::warn!("[web] enabled = true, but this facegate was built without the `web` feature; no console");
        let _ = config;
        Ok(None)
    }
}

#[allow(clippy::unit_arg)]
fn stop_web(web: Option<WebServer>) {
    #[cfg(feature = "web")]
    if let Some(server) = web {
        server.stop();
    }
    #[cfg(not(feature = "web"))]
    let _ = web;
}
