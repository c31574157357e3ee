//! `facegate admin add|passwd|remove|list`: the web console's administrator accounts. The first
//! account can only be made here (there is no default password). The password is read from
//! standard input: typed without echo on a terminal, or piped (`echo ... | facegate admin add`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::act::store::Store;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Adds an administrator; the password (at least 10 characters) is read from standard input.
    Add { name: String },
    /// Changes an administrator's password (read from standard input).
    Passwd { name: String },
    /// Removes an administrator.
    Remove { name: String },
    /// Lists the administrators.
    List,
}

pub fn run(config: &Config, args: AdminArgs) -> Result<i32> {
    let mut store = Store::open_config(&config.store)?;
    match args.command {
        AdminCommand::Add { name } => {
            let hash = new_password_hash()?;
            store.add_admin(&name, &hash)?;
            println!("administrator {} added; log in at {}", name.trim(), config.web.public_url());
        }
        AdminCommand::Passwd { name } => {
            if store.admin_hash(&name)?.is_none() {
                bail!("no administrator `{}`; `facegate admin list` shows them", name.trim());
            }
            let hash = new_password_hash()?;
            store.set_admin_hash(&name, &hash)?;
            println!(
                "password of {} changed (a running console keeps other sessions until they expire or it restarts)",
                name.trim()
            );
        }
        AdminCommand::Remove { name } => {
            if !store.remove_admin(&name)? {
                bail!("no administrator `{}`; `facegate admin list` shows them", name.trim());
            }
            println!("administrator {} removed", name.trim());
        }
        AdminCommand::List => {
            for a in store.admins()? {
                println!("{}  (since {})", a.name, a.created);
            }
        }
    }
    Ok(0)
}

#[cfg(feature = "web")]
fn new_password_hash() -> Result<String> {
    let password = read_password()?;
    crate::web::auth::hash_password(&password)
}

#[cfg(not(feature = "web"))]
fn new_password_hash() -> Result<String> {
    bail!("this facegate was built without the `web` feature, so it has no console to log in to")
}

/// One line from standard input; on a terminal, typed twice without echo.
#[cfg_attr(not(feature = "web"), allow(dead_code))]
fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty").arg(if on { "echo" } else { "-echo" }).status();
    };
    let ask = |prompt: &str| -> Result<String> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        echo(false);
        let mut line = String::new();
        let read = stdin.lock().read_line(&mut line);
        echo(true);
        eprintln!();
        read?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    let first = ask("new password (at least 10 characters): ")?;
    let second = ask("again: ")?;
    if first != second {
        bail!("the two passwords differ; nothing changed");
    }
    Ok(first)
}
