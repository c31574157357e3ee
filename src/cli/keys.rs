//! `facegate keys add|list|revoke`: the client keys that sign commands (see `crate::access`).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::access::{Scopes, new_secret};
use crate::act::store::Store;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Makes a key and prints its secret once (give it to the client; it is not shown again).
    Add {
        /// The key's name, sent with each command (e.g. `homeassistant`, `ops-laptop`).
        name: String,
        /// What it may do, comma-separated: door (open_door), manage (enroll, remove, rename,
        /// set_role, set_schedule, set_doors, forget, list_people), admin (reload_config, snapshot).
        #[arg(long, value_name = "SCOPES")]
        scope: Scopes,
    },
    /// Lists keys (names, scopes, creation time; never secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Deletes a key: commands signed with it are refused from now on.
    Revoke { name: String },
}

/// Key names: what a client puts in `key`, and what the audit log shows.
fn check_key_name(name: &str) -> Result<&str> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c)) {
        bail!("key name `{}` must be 1 to 64 letters, digits or - _ . : @", name.escape_default());
    }
    if name == crate::access::BROKER_ACL_ACTOR || name.starts_with("cli:") {
        bail!("key name `{name}` is reserved; choose another");
    }
    Ok(name)
}

pub fn run(config: &Config, args: KeysArgs) -> Result<i32> {
    let mut store = Store::open_config(&config.store)?;
    match args.command {
        KeysCommand::Add { name, scope } => {
            let name = check_key_name(&name)?;
            let secret = new_secret()?;
            store.add_key(name, &secret, &scope.to_string())?;
            println!("{}", hex::encode(&secret));
            eprintln!(
                "key `{name}` (scopes {scope}) added to {}. The line above is its secret, shown only now: give it \
                 to the client (e.g. `facegate cmd list_people --key {name} --secret-file FILE`).",
                store.path().display()
            );
        }
        KeysCommand::List { json } => {
            let keys = store.keys()?;
            if json {
                println!("{}", serde_json::to_string(&keys)?);
            } else if keys.is_empty() {
                println!("no keys in {}: `facegate keys add NAME --scope door` makes one", store.path().display());
            } else {
                for k in keys {
                    println!("{:<24} {:<20} created {}", k.name, k.scopes, k.created);
                }
            }
        }
        KeysCommand::Revoke { name } => {
            if !store.revoke_key(&name)? {
                bail!("no key named `{}`; `facegate keys list` shows them", name.escape_default());
            }
            println!("key `{name}` revoked");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_checked() {
        assert!(check_key_name("homeassistant").is_ok());
        assert!(check_key_name("a b").is_err());
        assert!(check_key_name("broker-acl").is_err());
        assert!(check_key_name("cli:root").is_err());
    }
}
