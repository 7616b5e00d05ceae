//! The line format: reading and writing bounded lines, and the JSON of every line. The only place payloads become
//! JSON, and the only place a token value is serialized — into a zeroized buffer that is written to the socket
//! and dropped.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use zeroize::Zeroizing;

use super::{ApiError, ErrorKind, PROTOCOL_VERSION, Request, RevealedToken, ShowData, Shown};
use crate::secret::SecretString;

/// One line without its `\n`. Zeroized on drop: hello lines carry the session secret, answers may carry tokens.
pub(super) type Line = Zeroizing<Vec<u8>>;

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

fn encode<T: Serialize>(value: &T) -> Line {
    let mut line = Zeroizing::new(Vec::with_capacity(SECRET_LINE_CAPACITY));
    // Serializing these types into memory cannot fail: plain structs with string keys.
    serde_json::to_writer(&mut *line, value).expect("the local API's lines serialize");
    line
}

fn protocol(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Protocol, message)
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
    encode(&HelloOut {
        v: PROTOCOL_VERSION,
        secret: secret.dangerously_expose(),
    })
}

/// Whether `line` is a hello of our version with our secret (compared in constant time).
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
    check_version(hello.v)?;
    let equal: bool = presented
        .as_bytes()
        .ct_eq(secret.dangerously_expose().as_bytes())
        .into();
    if equal { Ok(()) } else { Err(refused()) }
}

fn check_version(v: u32) -> Result<(), ApiError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(protocol(format!(
            "this Tokenkeep speaks CLI protocol version {PROTOCOL_VERSION}, the other side {v}: use the tokenkeep \
             command of the same version as the app"
        )))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct RequestLine {
    v: u32,
    op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    reveal: bool,
}

impl Request {
    /// The op's name on the wire (also what the server logs).
    pub fn op(&self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Show { .. } => "show",
            Self::Verify => "verify",
            Self::ExportEnvelopes => "export_envelopes",
            Self::Token { .. } => "token",
            Self::Refresh { .. } => "refresh",
            Self::Disconnect { .. } => "disconnect",
        }
    }
}

/// A request line.
pub(super) fn request(request: &Request) -> Line {
    let (connection, reveal) = match request {
        Request::List | Request::Verify | Request::ExportEnvelopes => (None, false),
        Request::Show { connection, reveal } => (Some(connection.clone()), *reveal),
        Request::Token { connection } | Request::Refresh { connection } | Request::Disconnect { connection } => {
            (Some(connection.clone()), false)
        }
    };
    encode(&RequestLine {
        v: PROTOCOL_VERSION,
        op: request.op().to_owned(),
        connection,
        reveal,
    })
}

/// Parses a request line. Errors of kind [`ErrorKind::Protocol`] end the session; the others do not.
pub(super) fn parse_request(line: &[u8]) -> Result<Request, ApiError> {
    let raw: RequestLine = serde_json::from_slice(line).map_err(|e| protocol(format!("not a request line: {e}")))?;
    check_version(raw.v)?;
    let connection = || {
        raw.connection.clone().ok_or_else(|| {
            ApiError::new(
                ErrorKind::Invalid,
                format!("{} needs a connection (an id or provider:account)", raw.op),
            )
        })
    };
    Ok(match raw.op.as_str() {
        "list" => Request::List,
        "show" => Request::Show {
            connection: connection()?,
            reveal: raw.reveal,
        },
        "verify" => Request::Verify,
        "export_envelopes" => Request::ExportEnvelopes,
        "token" => Request::Token {
            connection: connection()?,
        },
        "refresh" => Request::Refresh {
            connection: connection()?,
        },
        "disconnect" => Request::Disconnect {
            connection: connection()?,
        },
        other => {
            return Err(ApiError::new(
                ErrorKind::Unsupported,
                format!(
                    "{other:?} is not served over the CLI socket: list, show, verify, export, token, refresh and \
                     disconnect are; do the rest in the app window, or close the app first"
                ),
            ));
        }
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct OkOut<'a, T> {
    v: u32,
    ok: &'a T,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    v: u32,
    error: &'a ApiError,
}

#[derive(Deserialize)]
struct AnswerIn<T> {
    v: u32,
    ok: Option<T>,
    error: Option<ApiError>,
}

/// A successful answer carrying `value`.
pub(super) fn ok<T: Serialize>(value: &T) -> Line {
    encode(&OkOut {
        v: PROTOCOL_VERSION,
        ok: value,
    })
}

/// A failed answer.
pub(super) fn error(error: &ApiError) -> Line {
    encode(&ErrorOut {
        v: PROTOCOL_VERSION,
        error,
    })
}

/// The payload of an answer line, or the server's error.
pub(super) fn parse_answer<T: DeserializeOwned>(line: &[u8]) -> Result<T, ApiError> {
    let answer: AnswerIn<T> =
        serde_json::from_slice(line).map_err(|e| protocol(format!("the answer was not understood: {e}")))?;
    check_version(answer.v)?;
    match (answer.ok, answer.error) {
        (_, Some(error)) => Err(error),
        (Some(value), None) => Ok(value),
        (None, None) => Err(protocol("the answer has neither a result nor an error")),
    }
}

#[derive(Serialize)]
struct TokenOut<'a> {
    token: &'a str,
}

#[derive(Deserialize)]
struct TokenIn {
    token: String,
}

/// The answer to `token`.
pub(super) fn token(token: &SecretString) -> Line {
    ok(&TokenOut {
        token: token.dangerously_expose(),
    })
}

/// Reads the answer to `token`.
pub(super) fn parse_token(line: &[u8]) -> Result<SecretString, ApiError> {
    parse_answer::<TokenIn>(line).map(|t| SecretString::new(t.token))
}

#[derive(Serialize)]
struct ShownOut<'a> {
    show: &'a ShowData,
    revealed: Vec<RevealedOut<'a>>,
}

#[derive(Serialize)]
struct RevealedOut<'a> {
    kind: &'a str,
    value: &'a str,
}

#[derive(Deserialize)]
struct ShownIn {
    show: ShowData,
    revealed: Vec<RevealedIn>,
}

#[derive(Deserialize)]
struct RevealedIn {
    kind: String,
    value: String,
}

/// The answer to `show`.
pub(super) fn shown(shown: &Shown) -> Line {
    ok(&ShownOut {
        show: &shown.data,
        revealed: shown
            .revealed
            .iter()
            .map(|r| RevealedOut {
                kind: &r.kind,
                value: r.value.dangerously_expose(),
            })
            .collect(),
    })
}

/// Reads the answer to `show`.
pub(super) fn parse_shown(line: &[u8]) -> Result<Shown, ApiError> {
    let shown: ShownIn = parse_answer(line)?;
    Ok(Shown {
        data: shown.show,
        revealed: shown
            .revealed
            .into_iter()
            .map(|r| RevealedToken {
                kind: r.kind,
                value: SecretString::new(r.value),
            })
            .collect(),
    })
}
