//! Command-line interface: argument parsing and one module per command.

mod admin;
mod analyze;
mod bench;
mod bench_compare;
mod demo;
mod detect;
pub(crate) mod doctor;
mod door;
pub(crate) mod draw;
mod eval;
mod eval_spoof;
mod keys;
mod liveness;
pub(crate) mod people;
mod plot;
mod remote;
mod run;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::vision::align::CropMethod;
use crate::vision::models::Variant;

/// facegate: face-recognition door and attendance appliance.
///
/// Detects faces with MTCNN, aligns them on five landmarks and embeds them with MobileFaceNet
/// on ONNX Runtime. These commands work on image files; see README.md for set-up.
#[derive(Debug, Parser)]
#[command(name = "facegate", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands. They override the config file.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file (TOML). Without it, built-in defaults are used.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder holding models/manifest.toml and the model files.
    #[arg(long, global = true, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// Model precision: fp32 or int8.
    #[arg(long, global = true, value_parser = parse_variant)]
    pub variant: Option<Variant>,
    /// ONNX Runtime intra-op threads.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    /// Path of libonnxruntime.so (overrides the config and ORT_DYLIB_PATH).
    #[arg(long, global = true, value_name = "FILE")]
    pub onnxruntime: Option<PathBuf>,
    /// How faces are cut out for the embedder: aligned (default) or square.
    #[arg(long, global = true)]
    pub crop: Option<CropMethod>,
    /// Smallest face to look for, in pixels.
    #[arg(long, global = true, value_name = "PX")]
    pub min_face: Option<f32>,
    /// Cosine-similarity threshold for a match (default: the model's, from the manifest).
    #[arg(long, global = true)]
    pub threshold: Option<f32>,
    /// The SQLite database of people, templates and attendance (default: [store] path, facegate.db).
    #[arg(long, global = true, value_name = "FILE", env = "FACEGATE_DB")]
    pub db: Option<PathBuf>,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    match s {
        "fp32" => Ok(Variant::Fp32),
        "int8" => Ok(Variant::Int8),
        other => Err(format!("unknown model variant `{other}`: use fp32 or int8")),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find faces in images: boxes, scores and the five landmarks.
    Detect(detect::DetectArgs),
    /// Say whether two photos show the same person, with the similarity and the threshold used.
    Verify(people::VerifyArgs),
    /// Enroll a person from photos (each must show exactly one face), or everyone in DIR/NAME/ folders.
    Enroll(people::EnrollArgs),
    /// Identify every face in images against the enrolled people.
    Identify(people::IdentifyArgs),
    /// Score every face in images for presentation attacks (print, screen): score and verdict.
    Liveness(liveness::LivenessArgs),
    /// Measure accuracy and speed on a folder in the faces-dev format (manifest.csv, pairs.csv).
    Eval(eval::EvalArgs),
    /// Benchmark every stage and the whole pipeline; prints medians and peak memory.
    Bench(bench::BenchArgs),
    /// Run the built-in demo: enroll people from bundled photos and identify faces in others.
    Demo(demo::DemoArgs),
    /// List, add, remove, rename people and set their role or schedule.
    People(store::PeopleArgs),
    /// First in / last out per person per day (local time zone).
    Attendance(store::AttendanceArgs),
    /// Erase a person: templates, events and undelivered MQTT events (the right to erasure).
    Forget(store::ForgetArgs),
    /// Crash-test helper: writes store rows in a loop, printing each once durable.
    #[command(hide = true)]
    StoreTorture(store::TortureArgs),
    /// Door relays: `door test` pulses a configured relay once to check the wiring.
    Door(door::DoorArgs),
    /// Run the appliance: watch the cameras, decide, open doors, record attendance, publish
    /// events. Without --config it runs the built-in demo (board/demo.toml).
    Run(run::RunArgs),
    /// Web console administrators: `admin add NAME` (password from standard input), passwd, remove, list.
    Admin(admin::AdminArgs),
    /// Client keys that sign commands: `keys add NAME --scope door,manage` prints the secret once.
    Keys(keys::KeysArgs),
    /// Sign and send a command to a node over MQTT, wait for the reply and print it.
    Cmd(remote::CmdArgs),
    /// MQTT helpers: `mqtt acl` prints a mosquitto ACL and password-file snippet for this node.
    Mqtt(remote::MqttArgs),
    /// Check that this node is ready: config, ONNX Runtime, models, database, cameras, relays,
    /// broker, clock. One line per check with a fix; exit code 0 only when all pass.
    Doctor(doctor::DoctorArgs),
    /// Estimate age, gender and expression of every face in images (like DeepFace's analyze).
    /// Opt-in lobby statistics: never used to decide access.
    Analyze(analyze::AnalyzeArgs),
}

impl GlobalArgs {
    /// The config file (or defaults) with command-line overrides applied and validated.
    pub fn config(&self) -> Result<Config> {
        self.config_or(None)
    }

    /// Like [`GlobalArgs::config`], with `fallback` as the config file when none was given.
    pub fn config_or(&self, fallback: Option<&std::path::Path>) -> Result<Config> {
        let mut config = match (&self.config, fallback) {
            (Some(path), _) => Config::load(path)?,
            (None, Some(path)) => Config::load(path)?,
            (None, None) => Config::default(),
        };
        if let Some(dir) = &self.models {
            config.models.dir = Some(dir.clone());
        }
        if let Some(variant) = self.variant {
            config.models.variant = variant;
        }
        if let Some(threads) = self.threads {
            config.runtime.intra_threads = threads;
        }
        if let Some(lib) = &self.onnxruntime {
            config.runtime.library = Some(lib.clone());
        }
        if let Some(crop) = self.crop {
            config.matching.crop = crop;
        }
        if let Some(min_face) = self.min_face {
            config.detector.min_face = min_face;
        }
        if let Some(threshold) = self.threshold {
            config.matching.threshold = Some(threshold);
        }
        if let Some(db) = &self.db {
            config.store.path = db.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs the parsed command. Returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    // `run` without --config is the built-in demo; every other command defaults to built-ins.
    let demo = crate::paths::project_root().join("board/demo.toml");
    let config = match cli.command {
        Command::Run(_) => cli.global.config_or(Some(&demo))?,
        _ => cli.global.config()?,
    };
    match cli.command {
        Command::Run(args) => {
            // A reload re-reads the same file with the same command-line overrides.
            let global = cli.global.clone();
            let reload: crate::service::ConfigSource = Arc::new(move || global.config_or(Some(&demo)));
            run::run(&config, args, reload)
        }
        Command::Doctor(args) => doctor::run(&config, args),
        Command::Detect(args) => detect::run(&config, args),
        Command::Verify(args) => people::verify(&config, args),
        Command::Enroll(args) => people::enroll(&config, args),
        Command::Identify(args) => people::identify(&config, args),
        Command::Eval(args) => eval::run(&config, args),
        Command::Liveness(args) => liveness::run(&config, args),
        Command::Bench(args) => bench::run(&config, args),
        Command::Demo(args) => demo::run(&config, args),
        Command::People(args) => store::people(&config, args),
        Command::Attendance(args) => store::attendance(&config, args),
        Command::Forget(args) => store::forget(&config, args),
        Command::StoreTorture(args) => store::torture(&config, args),
        Command::Door(args) => door::run(&config, args),
        Command::Admin(args) => admin::run(&config, args),
        Command::Keys(args) => keys::run(&config, args),
        Command::Cmd(args) => remote::cmd(&config, args),
        Command::Mqtt(args) => remote::mqtt(&config, args),
        Command::Analyze(args) => analyze::run(&config, args),
    }
}
