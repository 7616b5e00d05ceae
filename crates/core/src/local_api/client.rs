//! The client: what the CLI uses when the store is held by the app or the daemon. It implements
//! [`Operations`]: each operation is sent as its [`Request`] and its reply decoded into the operation's own
//! output, exactly what [`LocalOps`](crate::ops::LocalOps) would have returned.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::UnixStream;
use zeroize::Zeroizing;

use super::wire::{self, Line, LineError, Welcome};
use super::{SECRET_FILE, SOCKET_FILE};
use crate::ops::wire::{ApiError, ErrorKind, Reply};
use crate::ops::{Op, Operations, Request};
use crate::profile::ProfilePaths;
use crate::secret::SecretString;

// IMPORTANT: connecting and the hello are local and immediate when the server is alive; a few seconds only cover
// an app busy starting up.
const HELLO_LIMIT: Duration = Duration::from_secs(5);
// IMPORTANT: `token`, `refresh` and `disconnect` go to the provider (30 s per HTTP request, and a refresh may wait
// for one already in flight), so the answer may take a while.
const ANSWER_LIMIT: Duration = Duration::from_secs(120);
/// The longest answer the client reads: `export --envelopes` of a large store, with room to spare.
const MAX_ANSWER_LINE: usize = 256 * 1024 * 1024;

/// Why the CLI could not use the socket. Each message says what failed; none contains the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing answers at the socket: no file, or a file left by a process that is gone.
    #[error("nothing answers at {} ({error})", path.display())]
    Unreachable {
        /// The socket.
        path: PathBuf,
        /// What connecting said.
        error: io::Error,
    },
    /// The session secret could not be read.
    #[error("cannot read the CLI secret {} ({error})", path.display())]
    Secret {
        /// The secret file.
        path: PathBuf,
        /// What the OS said.
        error: io::Error,
    },
    /// The process on the socket is not ours.
    #[error("the process at {} runs as user {uid}, not as you; it was not used", path.display())]
    ForeignServer {
        /// The socket.
        path: PathBuf,
        /// Its uid.
        uid: u32,
    },
    /// The server refused the session or failed the request; or its answer was not understood.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The connection failed or timed out.
    #[error("the connection to the CLI socket failed ({0})")]
    Io(io::Error),
}

impl ClientError {
    /// Whether this is about reaching or trusting the server rather than the outcome of a request (which
    /// means: the request did not run).
    pub fn is_connection(&self) -> bool {
        match self {
            Self::Api(error) => matches!(error.kind, ErrorKind::Unauthorized | ErrorKind::Protocol),
            _ => true,
        }
    }
}

impl From<LineError> for ClientError {
    fn from(error: LineError) -> Self {
        Self::Io(match error {
            LineError::TooLong => io::Error::new(io::ErrorKind::InvalidData, "the answer is too long"),
            LineError::Timeout => io::Error::new(io::ErrorKind::TimedOut, "no answer in time"),
            LineError::Io(error) => error,
        })
    }
}

/// An authenticated session with the process that holds the store. One request at a time (a second waits).
#[derive(Debug)]
pub struct Client {
    stream: tokio::sync::Mutex<BufReader<UnixStream>>,
    welcome: Welcome,
}

impl Client {
    /// Connects to the socket of `paths`' profile and presents the secret from its `cli.secret`.
    pub async fn connect(paths: &ProfilePaths) -> Result<Self, ClientError> {
        let socket = paths.dir().join(SOCKET_FILE);
        let secret_file = paths.dir().join(SECRET_FILE);
        // Connect before reading the secret: a dead socket says more about what to do than a missing secret.
        let stream = connect(&socket).await?;
        let secret = std::fs::read_to_string(&secret_file)
            .map(|text| SecretString::new(Zeroizing::new(text).trim().to_owned()))
            .map_err(|error| ClientError::Secret {
                path: secret_file,
                error,
            })?;
        Self::handshake(stream, &secret).await
    }

    /// Connects to `socket` and presents `secret` (tests, and callers that keep the secret elsewhere).
    pub async fn connect_with(socket: &Path, secret: &SecretString) -> Result<Self, ClientError> {
        Self::handshake(connect(socket).await?, secret).await
    }

    async fn handshake(stream: UnixStream, secret: &SecretString) -> Result<Self, ClientError> {
        let mut stream = BufReader::new(stream);
        wire::write_line(stream.get_mut(), &wire::hello(secret), HELLO_LIMIT)
            .await
            .map_err(ClientError::Io)?;
        let line = read_answer(&mut stream, HELLO_LIMIT).await?;
        let welcome = Welcome::decode(&line)?;
        Ok(Self {
            stream: tokio::sync::Mutex::new(stream),
            welcome,
        })
    }

    /// Who answered.
    pub fn server(&self) -> &Welcome {
        &self.welcome
    }

    async fn call(&self, request: &Request) -> Result<Line, ClientError> {
        let mut stream = self.stream.lock().await;
        wire::write_line(stream.get_mut(), &request.encode(), HELLO_LIMIT)
            .await
            .map_err(ClientError::Io)?;
        read_answer(&mut stream, ANSWER_LIMIT).await
    }
}

impl Operations for Client {
    type Error = ClientError;

    async fn run<O: Op>(&self, op: O) -> Result<O::Output, ClientError> {
        let line = self.call(&op.into()).await?;
        Ok(O::Output::decode(&line)?)
    }
}

/// Connects to `socket` and checks that the process there runs as our effective uid.
async fn connect(socket: &Path) -> Result<UnixStream, ClientError> {
    let unreachable = |error| ClientError::Unreachable {
        path: socket.to_path_buf(),
        error,
    };
    let stream = tokio::time::timeout(HELLO_LIMIT, UnixStream::connect(socket))
        .await
        .map_err(|_| unreachable(io::ErrorKind::TimedOut.into()))?
        .map_err(unreachable)?;
    let uid = stream.peer_cred().map_err(ClientError::Io)?.uid();
    if uid != rustix::process::geteuid().as_raw() {
        return Err(ClientError::ForeignServer {
            path: socket.to_path_buf(),
            uid,
        });
    }
    Ok(stream)
}

async fn read_answer(stream: &mut BufReader<UnixStream>, limit: Duration) -> Result<Line, ClientError> {
    match wire::read_line(stream, MAX_ANSWER_LINE, limit).await? {
        Some(line) => Ok(line),
        None => Err(ClientError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the server closed the connection without an answer",
        ))),
    }
}
