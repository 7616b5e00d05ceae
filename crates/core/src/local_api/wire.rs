//! The transport: reading and writing bounded lines, and the hello that opens a session. What the lines say
//! after the hello is `ops::wire`'s.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

pub(super) use crate::ops::wire::Line;
use crate::ops::wire::{self as ops_wire, ApiError, ErrorKind, PROTOCOL_VERSION};
use crate::secret::SecretString;

/// What a server says once it accepted the secret: who is answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The holder's program name (`tokenkeep-app`, `tokenkeep-daemon`).
    pub program: String,
    /// The profile it serves.
    pub profile: String,
    /// Its process id.
    pub pid: u32,
}

// IMPORTANT: room for the answers that carry tokens (a few kilobytes at most), allocated up front: a `Vec` that
// grows copies its bytes and frees the old buffer without zeroizing it.
const SECRET_LINE_CAPACITY: usize = 64 * 1024;

crate::ops::wire::plain_reply!(Welcome);

// ---------------------------------------------------------------------------------------------------------------
// Bounded line I/O
// ---------------------------------------------------------------------------------------------------------------

/// Why no line was read.
#[derive(Debug)]
pub(super) enum LineError {
    /// More than the limit without a newline.
    TooLong,
    /// Nothing complete arrived in time.
    Timeout,
    /// The peer closed in the middle of a line, or the socket failed.
    Io(std::io::Error),
}

/// Reads one line of at most `max` bytes (newline excluded) within `limit`; `None` at a clean end of input.
pub(super) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
    limit: Duration,
) -> Result<Option<Line>, LineError> {
    let mut line = Zeroizing::new(Vec::with_capacity(max.min(SECRET_LINE_CAPACITY) + 1));
    let mut bounded = (&mut *reader).take(max as u64 + 1);
    match tokio::time::timeout(limit, bounded.read_until(b'\n', &mut line)).await {
        Err(_) => Err(LineError::Timeout),
        Ok(Err(error)) => Err(LineError::Io(error)),
        Ok(Ok(0)) => Ok(None),
        Ok(Ok(_)) if line.last() == Some(&b'\n') => {
            line.pop();
            Ok(Some(line))
        }
        Ok(Ok(_)) if line.len() > max => Err(LineError::TooLong),
        Ok(Ok(_)) => Err(LineError::Io(std::io::ErrorKind::UnexpectedEof.into())),
    }
}

/// Writes `line` and a newline within `limit`.
pub(super) async fn write_line<W: AsyncWrite + Unpin>(
    writer: &mut W,
    line: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    let write = async {
        writer.write_all(line).await?;
        writer.write_all(b"\n").await?;
        writer.flush().await
    };
    tokio::time::timeout(limit, write)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

// ---------------------------------------------------------------------------------------------------------------
// Hello
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct HelloOut<'a> {
    v: u32,
    secret: &'a str,
}

#[derive(Deserialize)]
struct HelloIn {
    v: u32,
    #[serde(default)]
    secret: String,
}

/// The client's first line.
pub(super) fn hello(secret: &SecretString) -> Line {
    ops_wire::encode(&HelloOut {
        v: PROTOCOL_VERSION,
        secret: secret.dangerously_expose(),
    })
}

/// Whether `line` is a hello with our secret (compared in constant time), then of our version.
pub(super) fn check_hello(line: &[u8], secret: &SecretString) -> Result<(), ApiError> {
    let refused = || {
        ApiError::new(
            ErrorKind::Unauthorized,
            "refused: the CLI secret is missing or wrong (it changes every time the app or daemon starts); run the \
             command again",
        )
    };
    let hello: HelloIn = serde_json::from_slice(line).map_err(|_| refused())?;
    let presented = Zeroizing::new(hello.secret);
    let equal: bool = presented
        .as_bytes()
        .ct_eq(secret.dangerously_expose().as_bytes())
        .into();
    if !equal {
        return Err(refused());
    }
    // IMPORTANT: the version only after the secret: a peer that did not prove itself learns nothing, not even
    // which protocol this server speaks.
    ops_wire::check_version(hello.v)
}
