//! `facegate cmd` (sign, send a command, print its reply) and `facegate mqtt acl` (a mosquitto
//! ACL and password-file snippet for this node).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rumqttc::{Client, Event, Incoming, QoS};
use serde_json::{Map, Value};

use crate::access::sign_payload;
use crate::act::mqtt::Topics;
use crate::act::store::Store;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct CmdArgs {
    /// The command: open_door, enroll, remove, rename, set_role, set_schedule, set_doors, forget,
    /// list_people, reload_config or snapshot.
    pub name: String,
    /// Arguments as one JSON object, e.g. '{"person": "Ann", "role": "visitor"}'.
    #[arg(default_value = "{}")]
    pub args: String,
    /// The key to sign with (`facegate keys add`).
    #[arg(long)]
    pub key: String,
    /// File holding the key's secret (hex, as `keys add` printed it). Without it (and without
    /// FACEGATE_KEY_SECRET) the secret is read from the local database.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// The node to command (default: this config's node).
    #[arg(long)]
    pub node: Option<String>,
    /// How long to wait for the reply, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Images for `enroll`: each file is base64-encoded into `images`.
    #[arg(long = "image", value_name = "FILE")]
    pub images: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MqttArgs {
    #[command(subcommand)]
    pub command: MqttCommand,
}

#[derive(Debug, Subcommand)]
pub enum MqttCommand {
    /// Prints a mosquitto ACL and password-file snippet that lets only this node and the named
    /// clients use its topics (and, under remote_open = "broker_acl", decides who may open).
    Acl {
        /// The broker user that may publish cmd/open_door unsigned (e.g. Home Assistant's).
        #[arg(long, default_value = "homeassistant")]
        opener: String,
        /// The broker user of operators who send signed commands (`facegate cmd`).
        #[arg(long, default_value = "facegate-operator")]
        operator: String,
    },
}

fn secret(config: &Config, args: &CmdArgs) -> Result<Vec<u8>> {
    let text = match (&args.secret_file, std::env::var("FACEGATE_KEY_SECRET").ok()) {
        (Some(file), _) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read the secret file {}", file.display()))?
        }
        (None, Some(hex)) => hex,
        (None, None) => {
            let store = Store::open_config(&config.store)?;
            let Some((secret, _)) = store.key_secret(&args.key)? else {
                bail!(
                    "no key `{}` in {}: give --secret-file (the secret `keys add` printed) or make the key there",
                    args.key,
                    store.path().display()
                );
            };
            return Ok(secret);
        }
    };
    hex::decode(text.trim()).context("the key secret must be the hex string `facegate keys add` printed")
}

/// Signs and publishes one command, waits for its reply and prints it. Exit code 0 when the
/// node answered `ok: true`, 1 when it refused or failed, an error when no reply came.
pub fn cmd(config: &Config, args: CmdArgs) -> Result<i32> {
    let mut payload: Map<String, Value> = match serde_json::from_str(&args.args) {
        Ok(Value::Object(m)) => m,
        _ => bail!("the arguments must be one JSON object, e.g. '{{\"person\": \"Ann\"}}'"),
    };
    if !args.images.is_empty() {
        use base64::Engine as _;
        let mut images = Vec::new();
        for path in &args.images {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            images.push(Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)));
        }
        payload.insert("images".into(), Value::Array(images));
    }
    let request_id = payload
        .get("request_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("cli-{}", uuid::Uuid::new_v4().simple()));
    payload.insert("request_id".into(), request_id.clone().into());
    let node = args.node.clone().unwrap_or_else(|| config.mqtt.node());
    let secret = secret(config, &args)?;
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    sign_payload(&node, &args.name, &mut payload, &args.key, &secret, jiff::Timestamp::now().as_second(), &nonce);
    let topics = Topics::new(&config.mqtt.prefix, &node);

    let mut options = config.mqtt.connect_options(format!("facegate-cmd-{nonce}"))?;
    options.set_max_packet_size(config.mqtt.max_payload_bytes.saturating_mul(2).max(1 << 20), 256 << 20);
    let (client, mut connection) = Client::new(options, 16);
    let reply_topic = topics.reply(&request_id);
    client.subscribe(&reply_topic, QoS::AtLeastOnce)?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let body = Value::Object(payload).to_string();
    let mut sent = false;
    while Instant::now() < deadline {
        let event = match connection.recv_timeout(Duration::from_millis(500)) {
            Ok(Ok(event)) => event,
            Ok(Err(e)) => bail!("cannot reach the broker {}:{}: {e}", config.mqtt.host, config.mqtt.port),
            Err(_) => continue,
        };
        match event {
            Event::Incoming(Incoming::SubAck(_)) if !sent => {
                client.publish(topics.full(&format!("cmd/{}", args.name)), QoS::AtLeastOnce, false, body.clone())?;
                sent = true;
            }
            Event::Incoming(Incoming::Publish(p)) if p.topic == reply_topic => {
                let reply: Value = serde_json::from_slice(&p.payload).context("the reply is not JSON")?;
                println!("{}", serde_json::to_string_pretty(&reply)?);
                let _ = client.disconnect();
                return Ok(if reply["ok"] == Value::Bool(true) { 0 } else { 1 });
            }
            _ => {}
        }
    }
    bail!(
        "no reply on {reply_topic} within {} s: is node `{node}` running with MQTT on, and connected to this broker?",
        args.timeout
    )
}

/// The mosquitto snippet (see `docs/mqtt.md`, "Broker access control").
pub fn acl_snippet(config: &Config, opener: &str, operator: &str) -> String {
    let m = &config.mqtt;
    let base = format!("{}/{}", m.prefix, m.node());
    let node_user = m.username.clone().unwrap_or_else(|| "facegate".into());
    let open_note = match m.remote_open() {
        crate::act::mqtt::RemoteOpen::BrokerAcl => format!(
            "# mqtt.remote_open = \"broker_acl\": whoever logs in as `{opener}` can open the door without a key.\n\
             # This ACL is then the door's only lock: keep that user's password as safe as a key."
        ),
        crate::act::mqtt::RemoteOpen::Off => {
            "# mqtt.remote_open = \"off\": open_door is refused whoever sends it.".into()
        }
        _ => "# mqtt.remote_open = \"signed\": open_door needs a key with scope `door`, like every command.".into(),
    };
    format!(
        "# /etc/mosquitto/conf.d/facegate.conf\n\
         allow_anonymous false\n\
         password_file /etc/mosquitto/passwd\n\
         acl_file /etc/mosquitto/facegate.acl\n\
         # Prefer TLS: listener 8883 with cafile/certfile/keyfile, and [mqtt.tls] ca_file on the node.\n\
         \n\
         # Users (each asks for a password):\n\
         #   mosquitto_passwd -c /etc/mosquitto/passwd {node_user}\n\
         #   mosquitto_passwd /etc/mosquitto/passwd {opener}\n\
         #   mosquitto_passwd /etc/mosquitto/passwd {operator}\n\
         # and on the node: [mqtt] username = \"{node_user}\", password = \"...\"\n\
         \n\
         # /etc/mosquitto/facegate.acl\n\
         {open_note}\n\
         # Every other command is signed per client (`facegate keys add`), so the operator user only\n\
         # gets to deliver them; the ACL keeps everyone else off the node's topics.\n\
         user {node_user}\n\
         topic readwrite {base}/#\n\
         topic write {disc}/#\n\
         topic read {disc}/status\n\
         \n\
         user {opener}\n\
         topic write {base}/cmd/open_door\n\
         topic read {base}/#\n\
         topic read {disc}/#\n\
         \n\
         user {operator}\n\
         topic write {base}/cmd/#\n\
         topic read {base}/#\n",
        disc = m.discovery_prefix,
    )
}

pub fn mqtt(config: &Config, args: MqttArgs) -> Result<i32> {
    match args.command {
        MqttCommand::Acl { opener, operator } => print!("{}", acl_snippet(config, &opener, &operator)),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_gives_open_door_to_one_user_and_says_what_broker_acl_trusts() {
        let mut config = Config::default();
        config.mqtt.node = Some("door1".into());
        config.mqtt.remote_open = crate::act::mqtt::RemoteOpen::BrokerAcl;
        let acl = acl_snippet(&config, "homeassistant", "ops");
        assert!(acl.contains("allow_anonymous false"), "{acl}");
        assert!(acl.contains("user homeassistant\ntopic write facegate/door1/cmd/open_door\n"), "{acl}");
        assert!(acl.contains("can open the door without a key"), "{acl}");
    }
}
