//! The CLI's way in while another process holds the store: a local socket served by that process, and its client.
//! The operations themselves, their requests and replies, are `ops`'s; this module carries them.
//!
//! sled admits one process per store. While the desktop app (or `tokenkeep daemon`) runs it holds the store, so
//! it serves the read, token and refresh commands of the `tokenkeep` CLI over a Unix domain socket in the
//! profile's directory:
//!
//! ```text
//! <profile dir>/          0700
//!   cli.sock              0600  the socket (server.rs)
//!   cli.secret            0600  base64 of 32 random bytes, new for every server start
//! ```
//!
//! A connection is served only when the peer runs as our effective uid (`SO_PEERCRED`) **and** its first line
//! presents the session secret (compared in constant time); otherwise it gets one error line, or nothing at all
//! for a foreign uid, and is closed. The secret makes a leftover or swapped socket file harmless and ties the
//! client to this very server start; the uid check keeps other users out even if a mode is ever wrong.
//!
//! **Invariant:** the CLI gets the same values whichever way it asks. The server answers every request by running
//! it on the holder's [`LocalOps`](crate::ops::LocalOps) — the very implementation the CLI runs when it holds the
//! store itself — and the [`Client`] implements [`Operations`](crate::ops::Operations) by sending the request and
//! decoding the reply into the operation's own output type.
//!
//! **Invariant:** the replies that carry tokens ([`Shown`](crate::ops::Shown) with revealed values, the
//! [`AccessToken`](crate::ops::AccessToken)) are not `Serialize`; `ops::wire` writes their bytes into a zeroized
//! line buffer and nowhere else.
//!
//! # Protocol (version [`PROTOCOL_VERSION`])
//!
//! JSON lines from the client, the hello at most [`MAX_REQUEST_LINE`] bytes and each later one at most
//! [`MAX_SESSION_LINE`]. Every line carries `"v": 2`.
//!
//! ```text
//! → {"v":2,"secret":"<contents of cli.secret>"}
//! ← {"v":2,"ok":{"program":"tokenkeep-app","profile":"prod","pid":1234}}      or one error line, then close
//! → {"v":2,"op":"list"}                                                       one request per line …
//! ← {"v":2,"ok":[…]}  |  {"v":2,"error":{"kind":"not_found","message":"…"}}   … one answer per request
//! ```
//!
//! Ops: those of [`Request`](crate::ops::Request) — `list`, `show` (`connection`, `reveal`), `verify`,
//! `export_envelopes`, `token`, `refresh`, `disconnect` (each with `connection`: an id or `provider:account`).
//! Anything else is answered with kind `unsupported` and the session stays open; a line that is not JSON, too
//! long, or of another version ends the session after its error line.

mod client;
mod server;
mod wire;

#[cfg(test)]
mod tests;

pub use self::client::{Client, ClientError};
pub use self::server::{Handler, LocalServer, serve};
pub use self::wire::Welcome;
pub use crate::ops::wire::{ApiError, ErrorKind, PROTOCOL_VERSION};

/// The socket's file name in the profile directory.
pub const SOCKET_FILE: &str = "cli.sock";
/// The session secret's file name in the profile directory.
pub const SECRET_FILE: &str = "cli.secret";
/// The longest first line (the hello) a server reads: it is a few hundred bytes, and the limit stops a runaway
/// or hostile client before it has shown the secret.
pub const MAX_REQUEST_LINE: usize = 16 * 1024;
/// The longest request line after the hello: most are a few hundred bytes, but an `api` call carries its body
/// (at most [`crate::ops::api::MAX_API_BODY`], in base64).
pub const MAX_SESSION_LINE: usize = crate::ops::api::MAX_API_BODY / 3 * 4 + 64 * 1024;
