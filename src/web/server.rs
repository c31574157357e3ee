//! Runs the console: binds the listener first (a taken port is an error at start, naming the
//! key), then serves on its own thread with a small tokio runtime until stopped.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::handlers::{WebState, router};
use super::live::LiveFeed;
use crate::act::store::Store;
use crate::capture::FrameHub;
use crate::config::Config;

pub struct WebServer {
    handle: axum_server::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
    pub url: String,
}

impl WebServer {
    pub fn start(
        config: &Config,
        api: crate::api::NodeApi,
        live: Arc<LiveFeed>,
        hub: Arc<FrameHub>,
    ) -> Result<WebServer> {
        let web = &config.web;
        let addr = web.addr()?;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("web console: cannot listen on {addr}; change web.bind or stop what uses it"))?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let tls = if web.tls {
            let (cert, key) = super::tls::files(config)?;
            Some(axum_server::tls_rustls::RustlsConfig::from_config(super::tls::server_config(&cert, &key)?))
        } else {
            None
        };
        let store = Store::open_config(&config.store)?;
        if store.admins()?.is_empty() {
            log::warn!("web console: no administrator yet; make one with `facegate admin add NAME`");
        }
        let state = Arc::new(WebState::new(config, store, api, live, Some(hub))?);
        let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let handle = axum_server::Handle::new();
        let server_handle = handle.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("web")
            .enable_all()
            .build()
            .context("cannot start the web console's runtime")?;
        let thread = std::thread::Builder::new()
            .name("web".into())
            .spawn(move || {
                let served = runtime.block_on(async move {
                    match tls {
                        Some(tls) => axum_server::from_tcp_rustls(listener, tls).handle(server_handle).serve(app).await,
                        None => axum_server::from_tcp(listener).handle(server_handle).serve(app).await,
                    }
                });
                if let Err(e) = served {
                    log::error!("web console stopped: {e}");
                }
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .context("cannot start the web console thread")?;
        // With port 0 (tests) the URL names the port actually bound.
        let url = match &web.url {
            Some(url) => url.clone(),
            None if addr.port() == 0 => format!("{}://{bound}", if web.tls { "https" } else { "http" }),
            None => web.public_url(),
        };
        Ok(WebServer { handle, thread: Some(thread), url })
    }

    pub fn stop(mut self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(1)));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
