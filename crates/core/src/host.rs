//! Holding a profile's store for a long-running process — the desktop app or `tokenkeep daemon`: the one
//! start-up sequence (open the vault → the engine → its timer → the CLI socket) and the one shutdown (socket
//! first, then the engine, letting refreshes in flight finish).

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::http::SharedHttp;
use crate::local_api::{Handler, LocalServer};
use crate::ops::{LocalOps, OpError};
use crate::profile::ProfilePaths;

/// A profile's store, held by this process, with its engine and (once started) its timer and CLI socket.
#[derive(Debug)]
pub struct Host {
    ops: Arc<LocalOps>,
    program: &'static str,
    socket: Mutex<Option<LocalServer>>,
    config_watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// How often the profile's configuration is looked at for changes another process made (`tokenkeep providers
/// add` while the app runs): one `stat` every two seconds.
pub const CONFIG_POLL: Duration = Duration::from_secs(2);

impl Host {
    /// Opens the vault of `paths`' profile as `program` on a blocking thread (the keyring may take a while, or
    /// ask to be unlocked). Nothing runs yet: subscribe to the engine's events, then [`start`](Self::start).
    ///
    /// # Errors
    /// See [`LocalOps::open`].
    pub async fn open(paths: &ProfilePaths, program: &'static str, http: SharedHttp) -> Result<Self, OpError> {
        let opening = paths.clone();
        let ops = tokio::task::spawn_blocking(move || LocalOps::open(&opening, program, http))
            .await
            .map_err(|error| {
                tracing::error!(%error, "opening the vault panicked");
                OpError::Internal(
                    "opening the vault failed unexpectedly; this is a bug in Tokenkeep — the log file has the details"
                        .into(),
                )
            })??;
        Ok(Self {
            ops: Arc::new(ops),
            program,
            socket: Mutex::new(None),
            config_watch: Mutex::new(None),
        })
    }

    /// The operations on the held store (what the window's commands and the socket's requests run).
    pub fn ops(&self) -> &Arc<LocalOps> {
        &self.ops
    }

    /// Starts the refresh timer and then serves the CLI socket in the profile directory. The socket is a
    /// convenience: when it cannot be opened, the error is returned for the caller to report, and everything else
    /// runs on (the CLI then says the store is in use).
    ///
    /// # Errors
    /// Why the socket could not be opened (e.g. another process answers on it).
    pub async fn start(&self) -> io::Result<()> {
        self.ops.engine().start();
        let watch = tokio::spawn(watch_config(self.ops.clone()));
        if let Some(old) = self
            .config_watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(watch)
        {
            old.abort();
        }
        let handler = Handler::new(self.ops.clone(), self.ops.paths().profile(), self.program);
        let server = LocalServer::start(self.ops.paths(), handler).await?;
        *self.socket.lock().unwrap_or_else(PoisonError::into_inner) = Some(server);
        Ok(())
    }

    /// Stops serving the socket (removing `cli.sock` and `cli.secret`), so that no request starts on a store
    /// that is closing, then stops the engine, letting refreshes in flight finish for at most `limit` (their
    /// in-flight markers make the next start retry what was cut short). Idempotent.
    pub async fn stop(&self, limit: Duration) {
        let socket = self.socket.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(socket) = socket {
            socket.close();
        }
        if let Some(watch) = self.config_watch.lock().unwrap_or_else(PoisonError::into_inner).take() {
            watch.abort();
        }
        self.ops.engine().stop(limit).await;
    }
}

/// What identifies a version of the configuration file without reading it: absent, or its size and times.
fn config_stamp(path: &std::path::Path) -> Option<(u64, std::time::SystemTime, Option<std::time::SystemTime>)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?, meta.created().ok()))
}

/// Reloads the providers whenever the profile's `config.toml` changes under this process (the engine then tells
/// its listeners, `EngineEvent::ProvidersChanged`). A configuration that does not load is logged once per
/// version of the file, and the providers in force stay: a half-written file never takes providers away.
async fn watch_config(ops: Arc<LocalOps>) {
    let path = ops.paths().config_file();
    let mut seen = config_stamp(&path);
    let mut tick = tokio::time::interval(CONFIG_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = config_stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match ops.reload_providers() {
            Ok(_) => tracing::info!("the profile's configuration changed; providers reloaded"),
            Err(error) => tracing::warn!(
                %error,
                "the profile's configuration changed but does not load; the providers in force stay"
            ),
        }
    }
}
