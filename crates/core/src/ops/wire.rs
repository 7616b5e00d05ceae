//! The wire form of requests and replies: JSON lines with a protocol version, and the failure every reply may be
//! instead. The CLI socket (`local_api`) carries these lines; this module knows nothing of sockets.
//!
//! **Invariant:** a reply that carries a token is written into a zeroized [`Line`] preallocated for it, straight
//! from the `SecretString`, and read back into a `SecretString`; no other copy is made.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The protocol version every line carries; a server answers other versions with one error line.
///
/// Version 2: replies carry core's own types (connection metadata with its provider id, reports) instead of the
/// CLI-shaped payloads of version 1.
pub const PROTOCOL_VERSION: u32 = 2;

/// One line without its `\n`. Zeroized on drop: hello lines carry the session secret, replies may carry tokens.
pub type Line = Zeroizing<Vec<u8>>;

// IMPORTANT: room for the replies that carry tokens (a few kilobytes at most), allocated up front: a `Vec` that
// grows copies its bytes and frees the old buffer without zeroizing it.
const SECRET_LINE_CAPACITY: usize = 64 * 1024;

/// What kind of failure an [`ApiError`] is, for callers that act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The secret was missing or wrong; the session is closed.
    Unauthorized,
    /// The line was not understood (not JSON, too long, another version); the session is closed.
    Protocol,
    /// The op is not served over the socket.
    Unsupported,
    /// No such connection.
    NotFound,
    /// The request or its arguments are invalid.
    Invalid,
    /// The account must sign in again.
    NeedsReconnect,
    /// A transient failure; the store's holder retries by itself.
    Retrying,
    /// Any other failure: the message says what and what to do.
    Failed,
    /// A kind this build does not know (from a newer server).
    #[serde(other)]
    Other,
}

/// A failure as the wire carries it: a kind and one message for people (core's, with its causes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened and what to do next; never token bytes.
    pub message: String,
}

impl ApiError {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }
}

/// A value that travels as the reply to a request.
pub trait Reply: Sized {
    /// The reply line carrying `self`.
    fn encode(&self) -> Line;
    /// Reads a reply line: the value, or the server's error.
    ///
    /// # Errors
    /// The server's [`ApiError`], or one of kind [`ErrorKind::Protocol`] when the line is not understood.
    fn decode(line: &[u8]) -> Result<Self, ApiError>;
}

/// Implements [`Reply`] for plain (token-free) data through serde.
macro_rules! plain_reply {
    ($($type:ty),* $(,)?) => {
        $(
            impl $crate::ops::wire::Reply for $type {
                fn encode(&self) -> $crate::ops::wire::Line {
                    $crate::ops::wire::ok(self)
                }
                fn decode(line: &[u8]) -> Result<Self, $crate::ops::wire::ApiError> {
                    $crate::ops::wire::parse_ok(line)
                }
            }
        )*
    };
}
pub(crate) use plain_reply;

/// `value` as JSON in a zeroized line with room for tokens.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Line {
    let mut line = Zeroizing::new(Vec::with_capacity(SECRET_LINE_CAPACITY));
    // Serializing these types into memory cannot fail: plain structs with string keys.
    serde_json::to_writer(&mut *line, value).expect("the wire's lines serialize");
    line
}

#[derive(Serialize)]
struct OkOut<'a, T: ?Sized> {
    v: u32,
    ok: &'a T,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    v: u32,
    error: &'a ApiError,
}

/// A reply line after its version was checked.
#[derive(Deserialize)]
struct AnswerIn<T> {
    ok: Option<T>,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct VersionIn {
    v: u32,
}

/// A successful reply carrying `value`.
pub fn ok<T: Serialize + ?Sized>(value: &T) -> Line {
    encode(&OkOut {
        v: PROTOCOL_VERSION,
        ok: value,
    })
}

/// A failed reply.
pub fn error(error: &ApiError) -> Line {
    encode(&ErrorOut {
        v: PROTOCOL_VERSION,
        error,
    })
}

/// The payload of a reply line, or the server's error.
///
/// # Errors
/// The server's [`ApiError`], or one of kind [`ErrorKind::Protocol`] when the line is not understood.
pub fn parse_ok<T: DeserializeOwned>(line: &[u8]) -> Result<T, ApiError> {
    // The version first, so that a server of another version is named as such rather than misunderstood.
    let version: VersionIn =
        serde_json::from_slice(line).map_err(|e| ApiError::protocol(format!("the answer was not understood: {e}")))?;
    check_version(version.v)?;
    let answer: AnswerIn<T> =
        serde_json::from_slice(line).map_err(|e| ApiError::protocol(format!("the answer was not understood: {e}")))?;
    match (answer.ok, answer.error) {
        (_, Some(error)) => Err(error),
        (Some(value), None) => Ok(value),
        (None, None) => Err(ApiError::protocol("the answer has neither a result nor an error")),
    }
}

/// Whether a line of version `v` can be read by this build.
///
/// # Errors
/// An [`ErrorKind::Protocol`] error that says to use the same version on both sides.
pub fn check_version(v: u32) -> Result<(), ApiError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ApiError::protocol(format!(
            "this Tokenkeep speaks CLI protocol version {PROTOCOL_VERSION}, the other side {v}: use the tokenkeep \
             command of the same version as the app"
        )))
    }
}
