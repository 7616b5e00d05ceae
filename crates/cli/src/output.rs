//! What the commands print with `--json`, as `Serialize` structs (the field order is the output's: alphabetical,
//! as the first releases printed it, and pinned by the cases in `tests/cmd/`), and how output that holds a token
//! reaches stdout.
//!
//! **Invariant:** a revealed token value goes from its `SecretString` into a [`SecretBuf`] — zeroized, and
//! zeroizing every buffer it outgrows — and from there straight to stdout. No `String`, no `serde_json::Value`,
//! no formatting buffer of the standard library ever holds it.

use std::io::Write as _;

use serde::Serialize;
use tokenkeep_core::ops::{ConnectionEntry, ExportedEnvelope, Inspection, Problem, Shown};
use tokenkeep_core::provider::catalog::{Origin, ResolvedProvider};
use tokenkeep_core::store::ConnectionStatus;
use zeroize::Zeroizing;

use crate::render;

/// A growing byte buffer for output that holds secrets: zeroized on drop, and when it must grow, the old
/// allocation is zeroized instead of being freed with the bytes in it (as `Vec` would).
#[derive(Default)]
pub(crate) struct SecretBuf(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SecretBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBuf(<redacted>)")
    }
}

impl SecretBuf {
    /// A buffer with room for `capacity` bytes before it first grows.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// Writes the buffer to stdout in one piece and flushes. The output ends with a newline, so the standard
    /// library's line buffer passes it through instead of keeping a copy.
    pub(crate) fn print(&self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(&self.0)?;
        out.flush()
    }
}

impl std::io::Write for SecretBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let needed = self.0.len() + data.len();
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(self.0.capacity() * 2).max(256)));
            bigger.extend_from_slice(&self.0);
            // The old allocation is zeroized when `bigger`'s previous value — now the old one — drops.
            std::mem::swap(&mut self.0, &mut bigger);
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes to stdout (through [`outln!`]). On EPIPE — the reader has gone, as `head` does once it has its lines —
/// the command ends at once with status 0 and nothing on stderr, as Unix tools do; on any other error (a full
/// disk behind a redirect) it ends with the reason and status 1. Never a panic.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(args) {
        stdout_failed(&error);
    }
}

/// Ends the process after a failed write to stdout (see [`write_stdout`]).
pub(crate) fn stdout_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("tokenkeep: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// Whether `error` is, at its root, a write to a closed pipe (then the command ends quietly).
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints `value` as pretty JSON and a newline.
pub(crate) fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut buf = SecretBuf::with_capacity(4096);
    serde_json::to_writer_pretty(&mut buf, value)?;
    buf.write_all(b"\n")?;
    buf.print()?;
    Ok(())
}

// ---- providers list --json --------------------------------------------------------------------------------------

#[derive(Serialize)]
pub(crate) struct ProviderJson<'a> {
    auth: &'static str,
    client_id: Option<&'a str>,
    id: &'a str,
    issuer: Option<&'a str>,
    name: &'a str,
    needs: Option<&'a str>,
    origin: &'static str,
    ready: bool,
    redirect_uri: Option<String>,
    register_at: Option<String>,
    scopes: &'a [String],
}

/// How `providers list` names where a provider comes from.
pub(crate) fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::BuiltIn => "built-in",
        Origin::Demo => "demo",
        Origin::Custom => "custom",
        _ => "other",
    }
}

impl<'a> From<&'a ResolvedProvider> for ProviderJson<'a> {
    fn from(p: &'a ResolvedProvider) -> Self {
        let spec = p.spec();
        let (register_at, redirect_uri) = crate::commands::registration(p);
        Self {
            auth: spec.client_auth.short_name(),
            client_id: p.client_id(),
            id: spec.id.as_str(),
            issuer: spec.issuer.as_deref(),
            name: &spec.display_name,
            needs: p.readiness().message(),
            origin: origin_name(p.origin()),
            ready: p.is_ready(),
            redirect_uri,
            register_at,
            scopes: &spec.scopes,
        }
    }
}

// ---- list --json -------------------------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum ListJson<'a> {
    Readable {
        account: &'a str,
        expires_at: Option<String>,
        id: String,
        provider: &'a str,
        scopes: &'a [String],
        status: ConnectionStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        revocation: Option<RevocationJson>,
    },
    Damaged {
        error: &'a str,
        id: String,
        status: &'static str,
    },
}

/// A pending revocation in `list --json`.
#[derive(Serialize)]
pub(crate) struct RevocationJson {
    attempts: u32,
    disconnected_at: String,
    gives_up_at: String,
    next_attempt_at: String,
}

impl<'a> From<&'a ConnectionEntry> for ListJson<'a> {
    fn from(entry: &'a ConnectionEntry) -> Self {
        match &entry.meta {
            Ok(m) => Self::Readable {
                account: &m.account,
                expires_at: m.expires_at.map(render::rfc3339),
                id: entry.id.to_hex(),
                provider: m.provider.as_str(),
                scopes: &m.scopes,
                status: m.status,
                revocation: m.revocation.map(|r| RevocationJson {
                    attempts: r.attempts,
                    disconnected_at: render::rfc3339(r.since),
                    gives_up_at: render::rfc3339(r.give_up_at),
                    next_attempt_at: render::rfc3339(r.next_attempt_at),
                }),
            },
            Err(problem) => Self::Damaged {
                error: problem,
                id: entry.id.to_hex(),
                status: "damaged",
            },
        }
    }
}

// ---- show --json ------------------------------------------------------------------------------------------------

#[derive(Serialize)]
pub(crate) struct ShowJson<'a> {
    account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    binding: Option<&'a tokenkeep_core::ops::KeyBinding>,
    created_at: String,
    expires_at: Option<String>,
    id: String,
    key_id: String,
    last_error: Option<&'a str>,
    last_refresh_at: Option<String>,
    provider: &'a str,
    scopes: &'a [String],
    status: ConnectionStatus,
    subject: Option<&'a str>,
    tokens: Vec<TokenJson<'a>>,
    updated_at: String,
}

#[derive(Serialize)]
struct TokenJson<'a> {
    jwt: Option<JwtJson<'a>>,
    kind: &'static str,
    length: Option<usize>,
    present: bool,
    /// Borrowed from the revealed `SecretString`: serialized straight into the [`SecretBuf`].
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

#[derive(Serialize)]
struct JwtJson<'a> {
    claims: &'a serde_json::Map<String, serde_json::Value>,
    header: &'a serde_json::Map<String, serde_json::Value>,
}

impl<'a> From<&'a Shown> for ShowJson<'a> {
    fn from(shown: &'a Shown) -> Self {
        let Inspection {
            id,
            meta,
            key_id,
            tokens,
            binding,
        } = &shown.inspection;
        Self {
            account: &meta.account,
            binding: binding.as_ref(),
            created_at: render::rfc3339(meta.created_at),
            expires_at: meta.expires_at.map(render::rfc3339),
            id: id.to_hex(),
            key_id: key_id.to_hex(),
            last_error: meta.last_error.as_deref(),
            last_refresh_at: meta.last_refresh_at.map(render::rfc3339),
            provider: meta.provider.as_str(),
            scopes: &meta.scopes,
            status: meta.status,
            subject: meta.subject.as_deref(),
            tokens: tokens
                .iter()
                .map(|t| TokenJson {
                    jwt: t.jwt.as_ref().map(|j| JwtJson {
                        claims: &j.claims,
                        header: &j.header,
                    }),
                    kind: t.kind.field(),
                    length: t.length,
                    present: t.is_present(),
                    value: shown.revealed(t.kind).map(|v| v.dangerously_expose()),
                })
                .collect(),
            updated_at: render::rfc3339(meta.updated_at),
        }
    }
}

// ---- verify --json ----------------------------------------------------------------------------------------------

#[derive(Serialize)]
pub(crate) struct VerifyJson<'a> {
    pub(crate) key_id: String,
    pub(crate) ok: bool,
    pub(crate) problems: Vec<ProblemJson<'a>>,
    pub(crate) records: usize,
}

#[derive(Serialize)]
pub(crate) struct ProblemJson<'a> {
    field: &'a str,
    problem: &'a str,
    record: &'a str,
    tree: &'a str,
}

impl<'a> From<&'a Problem> for ProblemJson<'a> {
    fn from(p: &'a Problem) -> Self {
        Self {
            field: &p.field,
            problem: &p.problem,
            record: &p.record,
            tree: &p.tree,
        }
    }
}

// ---- export --envelopes -----------------------------------------------------------------------------------------

/// One line of `export --envelopes` (ids in hex, bytes in standard base64).
#[derive(Serialize)]
pub(crate) struct ExportJson<'a> {
    aad: Option<String>,
    envelope: String,
    field: &'a str,
    key_id: Option<String>,
    profile: &'a str,
    record_id: String,
    tree: &'a str,
}

impl<'a> From<&'a ExportedEnvelope> for ExportJson<'a> {
    fn from(e: &'a ExportedEnvelope) -> Self {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        Self {
            aad: e.aad.as_deref().map(b64),
            envelope: b64(&e.envelope),
            field: &e.field,
            key_id: e.key_id.map(|k| k.to_hex()),
            profile: &e.profile,
            record_id: e.record_id.to_hex(),
            tree: &e.tree,
        }
    }
}

// ---- paths --json -----------------------------------------------------------------------------------------------

#[derive(Serialize)]
pub(crate) struct PathsJson<'a> {
    pub(crate) backups: &'a std::path::Path,
    pub(crate) config: &'a std::path::Path,
    pub(crate) dir: &'a std::path::Path,
    pub(crate) logs: &'a std::path::Path,
    pub(crate) profile: &'a str,
    pub(crate) store: &'a std::path::Path,
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn a_secret_buf_keeps_every_byte_across_growth() {
        let mut buf = SecretBuf::with_capacity(4);
        for chunk in [&b"ab"[..], b"cdef", &[b'x'; 1000]] {
            buf.write_all(chunk).unwrap();
        }
        assert_eq!(buf.0.len(), 1006);
        assert_eq!(&buf.0[..6], b"abcdef");
        assert_eq!(format!("{buf:?}"), "SecretBuf(<redacted>)");
    }
}
