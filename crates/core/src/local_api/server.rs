//! The server: `cli.sock` next to a fresh `cli.secret`, sessions that prove who they are before anything is
//! answered, and the handler that runs each request on the holder's operations — the same [`LocalOps`], engine
//! included, that the holder's own window or timer uses.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use zeroize::Zeroizing;

use super::wire::{self, Line, LineError, Welcome};
use super::{MAX_REQUEST_LINE, MAX_SESSION_LINE, SECRET_FILE, SOCKET_FILE};
use crate::ops::wire::{self as ops_wire, ApiError, ErrorKind, Reply as _};
use crate::ops::{LocalOps, Request};
use crate::profile::{Profile, ProfilePaths};
use crate::secret::SecretString;

/// Log target of the server's events.
const LOG: &str = "tokenkeep_core::local_api";

// IMPORTANT: a client sends its secret right after connecting; one that says nothing for two seconds is not ours
// (or is stuck) and must not hold a session slot.
const HELLO_LIMIT: Duration = Duration::from_secs(2);
// IMPORTANT: the CLI sends its request right after the hello and closes after the answer; ten seconds of
// silence between requests only happens with a client that hung, so the session is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(10);
/// How long an answer may take to be written (the client reads it at once; a stuck client loses its session).
const WRITE_LIMIT: Duration = Duration::from_secs(10);
// IMPORTANT: each session is a task and a buffer; a bound keeps a runaway script of our own user from exhausting
// the app. Real use is one CLI at a time. At the bound, an idle session makes room for the new connection (the
// one that has said least, longest); only when every session is running a request is the new one refused.
const MAX_SESSIONS: usize = 16;

/// Where a session stands, for choosing which to close when the server is full.
const WAITING_FOR_HELLO: u8 = 0;
const IDLE: u8 = 1;
const BUSY: u8 = 2;
/// How long `LocalServer::start` waits for an answer on an existing socket before it calls the socket stale.
const STALE_PROBE_LIMIT: Duration = Duration::from_secs(1);

/// Runs the CLI's requests on the store's holder: its operations (and through them its vault and engine).
#[derive(Debug)]
pub struct Handler {
    ops: Arc<LocalOps>,
    welcome: Welcome,
}

impl Handler {
    /// A handler for `program` (e.g. [`crate::store::PROGRAM_APP`]) serving `profile` with `ops`.
    pub fn new(ops: Arc<LocalOps>, profile: &Profile, program: &str) -> Self {
        Self {
            ops,
            welcome: Welcome {
                program: program.to_owned(),
                profile: profile.as_str().to_owned(),
                pid: std::process::id(),
            },
        }
    }

    /// The answer line to `request`.
    async fn answer(&self, request: Request) -> Line {
        tracing::info!(target: LOG, op = request.name(), "CLI request over the local socket");
        request.answer(&self.ops).await
    }
}

/// Serves CLI sessions on `listener` until the future is dropped (or its task aborted), with sessions that must
/// come from our effective uid and present `secret`. Dropping it ends every session.
pub async fn serve(listener: UnixListener, secret: SecretString, handler: Handler) {
    let our_uid = rustix::process::geteuid().as_raw();
    let (secret, handler) = (Arc::new(secret), Arc::new(handler));
    // IMPORTANT: sessions live in this set, owned by this future: aborting the server aborts them too, so no
    // session outlives the app's shutdown holding the vault.
    let mut sessions = JoinSet::new();
    // Open sessions, oldest first: where each stands, and how to close it.
    let mut open: VecDeque<(Arc<AtomicU8>, AbortHandle)> = VecDeque::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    open.retain(|(_, handle)| !handle.is_finished());
                    if open.len() >= MAX_SESSIONS {
                        let victim = [WAITING_FOR_HELLO, IDLE]
                            .iter()
                            .find_map(|wanted| open.iter().position(|(state, _)| state.load(Ordering::Relaxed) == *wanted));
                        match victim.and_then(|i| open.remove(i)) {
                            Some((_, handle)) => {
                                tracing::info!(target: LOG, "CLI socket full; closing the session idle longest");
                                handle.abort();
                            }
                            None => {
                                tracing::warn!(target: LOG, "every CLI session is running a request; closing a new one");
                                continue;
                            }
                        }
                    }
                    let state = Arc::new(AtomicU8::new(WAITING_FOR_HELLO));
                    let (secret, handler, flag) = (secret.clone(), handler.clone(), state.clone());
                    let handle = sessions.spawn(async move {
                        session(stream, &secret, &handler, our_uid, &flag).await;
                    });
                    open.push_back((state, handle));
                }
                Err(error) => {
                    // IMPORTANT: e.g. out of file descriptors: wait a little instead of spinning on the error.
                    tracing::warn!(target: LOG, %error, "cannot accept a CLI connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// One client: uid, then secret, then requests until it closes. `state` says where it stands (see `serve`).
async fn session(stream: UnixStream, secret: &SecretString, handler: &Handler, our_uid: u32, state: &AtomicU8) {
    match stream.peer_cred() {
        Ok(peer) if peer.uid() == our_uid => {}
        Ok(peer) => {
            // Nothing is written to another user's process, not even an error.
            tracing::warn!(target: LOG, peer_uid = peer.uid(), "refused a CLI connection from another user");
            return;
        }
        Err(error) => {
            tracing::warn!(target: LOG, %error, "cannot tell who connected to the CLI socket; closing");
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);

    let hello = match wire::read_line(&mut reader, MAX_REQUEST_LINE, HELLO_LIMIT).await {
        Ok(Some(line)) => wire::check_hello(&line, secret),
        Ok(None) => return,
        Err(LineError::TooLong) => Err(ApiError::new(ErrorKind::Protocol, "the first line is too long")),
        Err(LineError::Timeout) => Err(ApiError::new(ErrorKind::Protocol, "no hello in time")),
        Err(LineError::Io(_)) => return,
    };
    if let Err(error) = hello {
        tracing::warn!(target: LOG, kind = ?error.kind, "refused a CLI connection without the right secret");
        let _ = wire::write_line(&mut write, &ops_wire::error(&error), WRITE_LIMIT).await;
        return;
    }
    if wire::write_line(&mut write, &handler.welcome.encode(), WRITE_LIMIT)
        .await
        .is_err()
    {
        return;
    }

    loop {
        state.store(IDLE, Ordering::Relaxed);
        let (reply, go_on) = match wire::read_line(&mut reader, MAX_SESSION_LINE, IDLE_LIMIT).await {
            Ok(Some(line)) => match Request::decode(&line) {
                Ok(request) => {
                    state.store(BUSY, Ordering::Relaxed);
                    (handler.answer(request).await, true)
                }
                Err(error) => (ops_wire::error(&error), error.kind != ErrorKind::Protocol),
            },
            Ok(None) | Err(LineError::Timeout | LineError::Io(_)) => return,
            Err(LineError::TooLong) => {
                let error = ApiError::new(
                    ErrorKind::Protocol,
                    format!("request line longer than {MAX_SESSION_LINE} bytes"),
                );
                (ops_wire::error(&error), false)
            }
        };
        if wire::write_line(&mut write, &reply, WRITE_LIMIT).await.is_err() || !go_on {
            return;
        }
    }
}

/// A running CLI server: its socket and secret files and its task. [`LocalServer::close`] (or dropping it) stops
/// serving and removes both files.
#[derive(Debug)]
pub struct LocalServer {
    socket: PathBuf,
    secret_file: PathBuf,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl LocalServer {
    /// Writes a new `cli.secret`, binds `cli.sock` in the profile directory and serves it on the current tokio
    /// runtime. A socket file nobody answers on (left by a crash) is replaced; one that answers is not.
    ///
    /// # Errors
    /// [`io::ErrorKind::AddrInUse`] when another process answers on the socket; any error of writing the secret
    /// or binding (e.g. a path longer than the OS allows for sockets).
    pub async fn start(paths: &ProfilePaths, handler: Handler) -> io::Result<Self> {
        let socket = paths.dir().join(SOCKET_FILE);
        let secret_file = paths.dir().join(SECRET_FILE);
        remove_stale_socket(&socket).await?;
        let secret = write_secret(&secret_file)?;
        let listener = match bind_private(&socket) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = std::fs::remove_file(&secret_file);
                return Err(error);
            }
        };
        let task = tokio::spawn(serve(listener, secret, handler));
        tracing::info!(target: LOG, "CLI socket listening at {}", socket.display());
        Ok(Self {
            socket,
            secret_file,
            task: Mutex::new(Some(task)),
        })
    }

    /// Stops serving but leaves both files behind, as a crash (`kill -9`) would.
    #[cfg(test)]
    pub(super) async fn simulate_crash(&self) {
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// The socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Stops serving (sessions in progress are cut) and removes the socket and the secret. Idempotent.
    pub fn close(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
            // Socket first: a client that still finds the socket then fails on the secret, never the reverse.
            for path in [&self.socket, &self.secret_file] {
                if let Err(error) = std::fs::remove_file(path)
                    && error.kind() != io::ErrorKind::NotFound
                {
                    tracing::warn!(target: LOG, path = %path.display(), %error, "cannot remove a CLI socket file");
                }
            }
            tracing::info!(target: LOG, "CLI socket closed");
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.close();
    }
}

/// Removes `socket` if it exists and nothing answers on it; fails if something does.
async fn remove_stale_socket(socket: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(socket).is_err() {
        return Ok(());
    }
    if let Ok(Ok(_)) = tokio::time::timeout(STALE_PROBE_LIMIT, UnixStream::connect(socket)).await {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another process already serves {}", socket.display()),
        ));
    }
    tracing::info!(target: LOG, socket = %socket.display(), "replacing a stale CLI socket");
    match std::fs::remove_file(socket) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// A new session secret (base64 of 32 random bytes) written to `path` with mode 0600, through a temporary file
/// and a rename so that a reader never sees half of it.
fn write_secret(path: &Path) -> io::Result<SecretString> {
    use base64::Engine as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *bytes).map_err(|e| io::Error::other(format!("no randomness for the CLI secret: {e}")))?;
    let secret = SecretString::new(base64::engine::general_purpose::STANDARD.encode(*bytes));
    // Never logged on purpose; registered so that an accident would be masked too.
    crate::logging::register_secret(secret.dangerously_expose());
    let tmp = path.with_extension("secret.tmp");
    match std::fs::remove_file(&tmp) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    // `create_new`: never write through a file (or symlink) someone else put there.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(secret.dangerously_expose().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(secret)
}

/// Binds `socket` and restricts it to the user (the profile directory, 0700, already keeps others out; the mode
/// makes the socket private on its own too).
fn bind_private(socket: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}
