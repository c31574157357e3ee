//! Ports for test brokers without races.
//!
//! Choosing a free port, releasing it and letting a broker bind it later is a race: on a busy
//! machine another process (another test's "free port", or an outgoing connection's ephemeral
//! port) can take it in between, and the test then talks to a stranger or to nothing. Here the
//! broker binds port 0 itself, so the kernel hands it a port that is its own from the first
//! instant, and the test reads that port back from the broker's listening socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Serialises in-process broker starts, so "the listening socket that appeared" is the broker's.
static STARTING: Mutex<()> = Mutex::new(());

/// Listening TCP sockets of process `pid` ("self" or a number): socket inode -> local port.
fn listening_ports(pid: &str) -> HashMap<u64, u16> {
    let mut inodes = Vec::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let target = target.to_string_lossy();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']'))
                && let Ok(inode) = inode.parse::<u64>()
            {
                inodes.push(inode);
            }
        }
    }
    let mut ports = HashMap::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let (Ok(inode), Some(port)) = (f[9].parse::<u64>(), f[1].rsplit(':').next()) else { continue };
            if let (true, Ok(port)) = (inodes.contains(&inode), u16::from_str_radix(port, 16)) {
                ports.insert(inode, port);
            }
        }
    }
    ports
}

/// Starts an in-process rumqttd whose one listener is configured as `127.0.0.1:0` and returns
/// the port the kernel gave it, once it listens. Panics with the reason if it never listens.
pub fn start_rumqttd(config: rumqttd::Config) -> u16 {
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    let before = listening_ports("self");
    let broker = std::thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        if let Err(e) = broker.start() {
            eprintln!("rumqttd stopped: {e}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((_, port)) = listening_ports("self").into_iter().find(|(inode, _)| !before.contains_key(inode)) {
            return port;
        }
        assert!(!broker.is_finished(), "rumqttd exited before it listened (see its log above)");
        assert!(Instant::now() < deadline, "rumqttd did not open its listener within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A loopback port that is bound (so nobody else can take it) but does not listen: connecting
/// to it is refused. Keep the returned socket alive as long as the port must stay closed.
pub fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind 127.0.0.1:0");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}

/// Reserves a loopback port for a broker child process: the socket is bound with SO_REUSEADDR
/// and not listening, which keeps every other process off the port while still letting the
/// broker (which binds with SO_REUSEADDR too, as mosquitto and tokio do) bind and listen on it.
/// Drop it once [`wait_child_listens`] returned.
pub fn reserve_port(port: u16) -> std::io::Result<(tokio::net::TcpSocket, u16)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    let port = socket.local_addr()?.port();
    Ok((socket, port))
}

/// Waits until `child` itself listens on `port` (not merely "something accepts connections
/// there"). Err with the reason when the child exits first (say, it could not bind) or takes
/// longer than a minute.
pub fn wait_child_listens(child: &mut std::process::Child, port: u16) -> Result<(), String> {
    let pid = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if listening_ports(&pid).values().any(|&p| p == port) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the broker exited ({status}) before it listened on port {port}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("the broker did not listen on port {port} within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
