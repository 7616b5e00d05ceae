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
}

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
        self.ops.engine().stop(limit).await;
    }
}
