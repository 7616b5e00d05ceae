//! The CLI's way in while another process holds the store: a local socket served by that process, the
//! operations both sides share, and the plain data they return.
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
//! **Invariant:** the CLI renders the same data whichever way it got it. The operations ([`list`], [`show`],
//! [`verify`], [`export_envelopes`], [`token`], [`refresh`], [`disconnect`]) turn core results into the plain
//! payload types below; the CLI calls them directly when it holds the store and the server calls them for it
//! otherwise, and the wire format (`wire.rs`) only carries those payloads.
//!
//! **Invariant:** the payload types that carry tokens ([`Shown`] with revealed values, the access token of
//! [`token`]) are not `Serialize`; `wire.rs` writes the token bytes into a zeroized line buffer and nowhere else.
//!
//! # Protocol (version [`PROTOCOL_VERSION`])
//!
//! JSON lines, each at most [`MAX_REQUEST_LINE`] bytes from the client. Every line carries `"v": 1`.
//!
//! ```text
//! → {"v":1,"secret":"<contents of cli.secret>"}
//! ← {"v":1,"ok":{"program":"tokenkeep-app","profile":"prod","pid":1234}}      or one error line, then close
//! → {"v":1,"op":"list"}                                                       one request per line …
//! ← {"v":1,"ok":[…]}  |  {"v":1,"error":{"kind":"not_found","message":"…"}}   … one answer per request
//! ```
//!
//! Ops: `list`, `show` (`connection`, `reveal`), `verify`, `export_envelopes`, `token`, `refresh`, `disconnect`
//! (each with `connection`: an id or `provider:account`). Anything else is answered with kind `unsupported` and
//! the session stays open; a line that is not JSON, too long, or of another version ends the session after its
//! error line.

mod client;
mod server;
mod wire;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use self::client::{Client, ClientError};
pub use self::server::{Handler, LocalServer, serve};
pub use self::wire::Welcome;

use crate::refresh::{RefreshError, RefreshOutcome, Refresher, Revocation, Trigger};
use crate::secret::{KeyId, SecretString};
use crate::service::{self, ConnectionEntry, ExportedEnvelope, Inspection, ServiceError};
use crate::store::{ConnectionMeta, RecordProblem, StoreError, Vault};

/// The protocol version every line carries; a server answers other versions with one error line.
pub const PROTOCOL_VERSION: u32 = 1;
/// The socket's file name in the profile directory.
pub const SOCKET_FILE: &str = "cli.sock";
/// The session secret's file name in the profile directory.
pub const SECRET_FILE: &str = "cli.secret";
/// The longest line a server reads (requests are a few hundred bytes; the limit stops a runaway client).
pub const MAX_REQUEST_LINE: usize = 16 * 1024;

/// One command the CLI asks the store's holder to run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Every connection ([`list`]).
    List,
    /// One connection in detail, with its token values when `reveal` ([`show`]).
    Show {
        /// An id or `provider:account`.
        connection: String,
        /// Also return the stored token values.
        reveal: bool,
    },
    /// Open every record ([`verify`]).
    Verify,
    /// Every sealed record with its AAD ([`export_envelopes`]).
    ExportEnvelopes,
    /// A valid access token, refreshed first when due ([`token`]).
    Token {
        /// An id or `provider:account`.
        connection: String,
    },
    /// Refresh now ([`refresh`]).
    Refresh {
        /// An id or `provider:account`.
        connection: String,
    },
    /// Revoke and delete ([`disconnect`]).
    Disconnect {
        /// An id or `provider:account`.
        connection: String,
    },
}

// ---------------------------------------------------------------------------------------------------------------
// Payloads: plain data, rendered by the CLI
// ---------------------------------------------------------------------------------------------------------------

/// A connection's metadata as the CLI shows it: a plain copy of [`ConnectionMeta`] (times in Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Provider id.
    pub provider: String,
    /// Account name.
    pub account: String,
    /// The provider's subject (`sub`).
    pub subject: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When the access token expires.
    pub expires_at: Option<u64>,
    /// [`crate::store::ConnectionStatus::as_str`], e.g. `needs_reconnect`.
    pub status: String,
    /// When the connection was stored.
    pub created_at: u64,
    /// When it last changed.
    pub updated_at: u64,
    /// When it was last refreshed.
    pub last_refresh_at: Option<u64>,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

impl From<&ConnectionMeta> for ConnectionInfo {
    fn from(m: &ConnectionMeta) -> Self {
        Self {
            provider: m.provider.clone(),
            account: m.account.clone(),
            subject: m.subject.clone(),
            scopes: m.scopes.clone(),
            expires_at: m.expires_at,
            status: m.status.as_str().to_owned(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_refresh_at: m.last_refresh_at,
            last_error: m.last_error.clone(),
        }
    }
}

/// One line of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRow {
    /// The connection id (hex).
    pub id: String,
    /// Its metadata, or why its record cannot be read.
    pub meta: Result<ConnectionInfo, String>,
}

impl From<&ConnectionEntry> for ConnectionRow {
    fn from(e: &ConnectionEntry) -> Self {
        Self {
            id: e.id.to_hex(),
            meta: e.meta.as_ref().map(ConnectionInfo::from).map_err(ToString::to_string),
        }
    }
}

/// `show`: everything about a connection except its token bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShowData {
    /// The connection id (hex).
    pub id: String,
    /// Its metadata.
    pub meta: ConnectionInfo,
    /// The store's key id (hex).
    pub key_id: String,
    /// One entry per token kind, in [`crate::store::TokenKind::ALL`] order.
    pub tokens: Vec<TokenInfo>,
}

/// One token of a connection as `show` describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// [`crate::store::TokenKind::field`]: `access_token`, `refresh_token` or `id_token`.
    pub kind: String,
    /// Its length in bytes; `None` when not stored.
    pub length: Option<usize>,
    /// Its decoded JWT header and claims, when it is a JWT (no signature).
    pub jwt: Option<JwtInfo>,
}

/// A JWT's header and claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtInfo {
    /// The JOSE header.
    pub header: serde_json::Map<String, serde_json::Value>,
    /// The claims.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl From<&Inspection> for ShowData {
    fn from(i: &Inspection) -> Self {
        Self {
            id: i.id.to_hex(),
            meta: ConnectionInfo::from(&i.meta),
            key_id: i.key_id.to_hex(),
            tokens: i
                .tokens
                .iter()
                .map(|t| TokenInfo {
                    kind: t.kind.field().to_owned(),
                    length: t.length,
                    jwt: t.jwt.as_ref().map(|j| JwtInfo {
                        header: j.header.clone(),
                        claims: j.claims.clone(),
                    }),
                })
                .collect(),
        }
    }
}

/// A stored token value the user asked to see (`show --reveal`). Not `Serialize`; `Debug` is redacted.
#[derive(Debug)]
pub struct RevealedToken {
    /// [`crate::store::TokenKind::field`].
    pub kind: String,
    /// The value.
    pub value: SecretString,
}

/// What `show` returns: the description, and the token values when they were asked for.
#[derive(Debug)]
pub struct Shown {
    /// The description (no token bytes).
    pub data: ShowData,
    /// The values of the stored tokens, when revealed; empty otherwise.
    pub revealed: Vec<RevealedToken>,
}

/// `verify`: how many records were checked, and the damaged ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyData {
    /// Sealed records checked.
    pub records: usize,
    /// The store's key id (hex).
    pub key_id: String,
    /// The damaged records.
    pub problems: Vec<ProblemRow>,
}

/// One damaged record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemRow {
    /// The tree.
    pub tree: String,
    /// The record id.
    pub record: String,
    /// The field.
    pub field: String,
    /// What is wrong, in words.
    pub problem: String,
}

impl From<&RecordProblem> for ProblemRow {
    fn from(p: &RecordProblem) -> Self {
        Self {
            tree: p.tree.clone(),
            record: p.record.clone(),
            field: p.field.clone(),
            problem: p.error.to_string(),
        }
    }
}

/// One sealed record of `export --envelopes` (no plaintext; bytes in standard base64, ids in hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRow {
    /// The profile.
    pub profile: String,
    /// The tree.
    pub tree: String,
    /// The record id (hex).
    pub record_id: String,
    /// The field.
    pub field: String,
    /// The key id of the envelope's header (hex), when readable.
    pub key_id: Option<String>,
    /// The AAD (base64), when the header is readable.
    pub aad: Option<String>,
    /// The envelope as stored (base64).
    pub envelope: String,
}

impl From<&ExportedEnvelope> for ExportRow {
    fn from(e: &ExportedEnvelope) -> Self {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        Self {
            profile: e.profile.clone(),
            tree: e.tree.clone(),
            record_id: hex::encode(e.record_id),
            field: e.field.clone(),
            key_id: e.key_id.map(|k: KeyId| k.to_hex()),
            aad: e.aad.as_deref().map(b64),
            envelope: b64(&e.envelope),
        }
    }
}

/// `refresh`: which account, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshData {
    /// Provider id.
    pub provider: String,
    /// Account name.
    pub account: String,
    /// When the access token now expires.
    pub expires_at: Option<u64>,
    /// Whether new tokens were sealed (`false`: the token was still fresh).
    pub refreshed: bool,
    /// Whether the provider rotated the refresh token.
    pub rotated: bool,
}

/// `disconnect`: which account, and what became of the grant at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectData {
    /// Provider id.
    pub provider: String,
    /// Account name.
    pub account: String,
    /// What happened at the provider.
    pub revocation: RevocationInfo,
}

/// [`Revocation`] as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevocationInfo {
    /// The provider confirmed it.
    Revoked,
    /// The provider has no revocation endpoint.
    NotSupported {
        /// Where to revoke by hand.
        manage_url: Option<String>,
    },
    /// Revocation failed.
    Failed {
        /// What failed.
        reason: String,
        /// Where to revoke by hand.
        manage_url: Option<String>,
    },
    /// Nothing was revoked.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl From<&Revocation> for RevocationInfo {
    fn from(r: &Revocation) -> Self {
        match r {
            Revocation::Revoked => Self::Revoked,
            Revocation::NotSupported { manage_url } => Self::NotSupported {
                manage_url: manage_url.as_ref().map(ToString::to_string),
            },
            Revocation::Failed { reason, manage_url } => Self::Failed {
                reason: reason.clone(),
                manage_url: manage_url.as_ref().map(ToString::to_string),
            },
            Revocation::Skipped { reason } => Self::Skipped { reason: reason.clone() },
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/// Why an operation failed where it ran. The CLI maps it to its own words and exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Finding or reading the connection, or the vault, failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The refresh, token request or disconnect failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
}

impl From<StoreError> for OpError {
    fn from(error: StoreError) -> Self {
        Self::Service(error.into())
    }
}

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

/// A failure as the socket carries it: a kind and one message for people (core's, with its causes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened and what to do next; never token bytes.
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<&OpError> for ApiError {
    fn from(error: &OpError) -> Self {
        let kind = match error {
            OpError::Service(ServiceError::Invalid(_)) => ErrorKind::Invalid,
            OpError::Service(ServiceError::Store(StoreError::NotFound(_)))
            | OpError::Refresh(RefreshError::NotFound(_)) => ErrorKind::NotFound,
            OpError::Refresh(RefreshError::NeedsReconnect { .. }) => ErrorKind::NeedsReconnect,
            OpError::Refresh(RefreshError::Retrying { .. }) => ErrorKind::Retrying,
            _ => ErrorKind::Failed,
        };
        // The message and its causes joined by ": ", exactly as the CLI prints a local error (anyhow's `{:#}`),
        // so the two paths also fail with the same words.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(kind, message)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The operations, shared by the CLI (holding the store) and the server (for a CLI that does not)
// ---------------------------------------------------------------------------------------------------------------

/// Every connection, ordered as [`service::list_connections`] orders them. Offline.
pub fn list(vault: &Vault) -> Result<Vec<ConnectionRow>, OpError> {
    Ok(service::list_connections(vault)?
        .iter()
        .map(ConnectionRow::from)
        .collect())
}

/// The connection named by `query`, described; with `reveal`, also the values of its stored tokens. Offline.
pub fn show(vault: &Vault, query: &str, reveal: bool) -> Result<Shown, OpError> {
    let id = service::find_connection(vault, query)?;
    let inspection = service::inspect(vault, id)?;
    let revealed = if reveal {
        inspection
            .tokens
            .iter()
            .filter(|t| t.is_present())
            .map(|t| {
                Ok(RevealedToken {
                    kind: t.kind.field().to_owned(),
                    value: service::reveal(vault, id, t.kind)?,
                })
            })
            .collect::<Result<_, OpError>>()?
    } else {
        Vec::new()
    };
    Ok(Shown {
        data: ShowData::from(&inspection),
        revealed,
    })
}

/// Opens every record; reports the damaged ones (their presence is data, not an error). Offline.
pub fn verify(vault: &Vault) -> Result<VerifyData, OpError> {
    let records = vault.raw_records()?.len();
    let problems = vault.verify()?;
    Ok(VerifyData {
        records,
        key_id: vault.key_id().to_hex(),
        problems: problems.iter().map(ProblemRow::from).collect(),
    })
}

/// Every sealed record with its AAD (profile `profile`). Offline; decrypts nothing.
pub fn export_envelopes(vault: &Vault, profile: &str) -> Result<Vec<ExportRow>, OpError> {
    Ok(service::export_envelopes(vault, profile)?
        .iter()
        .map(ExportRow::from)
        .collect())
}

/// A valid access token of the connection named by `query`, refreshed first when it is about to expire.
pub async fn token(refresher: &Refresher, query: &str) -> Result<SecretString, OpError> {
    let id = service::find_connection(refresher.vault(), query)?;
    Ok(refresher.access_token(id).await?)
}

/// Refreshes the connection named by `query` now (even when its token is still fresh).
pub async fn refresh(refresher: &Refresher, query: &str) -> Result<RefreshData, OpError> {
    let id = service::find_connection(refresher.vault(), query)?;
    let outcome = refresher.refresh(id, Trigger::User).await?;
    let meta = refresher.vault().get_meta(id)?;
    let (expires_at, refreshed, rotated) = match outcome {
        RefreshOutcome::Refreshed { expires_at, rotated } => (expires_at, true, rotated),
        RefreshOutcome::StillFresh { expires_at } => (expires_at, false, false),
    };
    Ok(RefreshData {
        provider: meta.provider,
        account: meta.account,
        expires_at,
        refreshed,
        rotated,
    })
}

/// Revokes the tokens of the connection named by `query` at the provider and deletes everything stored for it.
pub async fn disconnect(refresher: &Refresher, query: &str) -> Result<DisconnectData, OpError> {
    let id = service::find_connection(refresher.vault(), query)?;
    let report = refresher.disconnect(id).await?;
    Ok(DisconnectData {
        provider: report.provider,
        account: report.account,
        revocation: RevocationInfo::from(&report.revocation),
    })
}
