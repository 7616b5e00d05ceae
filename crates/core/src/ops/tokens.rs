//! Using and changing a connection's tokens — always through the refresh engine, whoever asks: a valid access
//! token, a refresh now, and a disconnect that revokes at the provider.

use serde::{Deserialize, Serialize};

use super::connections::find_connection;
use super::wire::{self, ApiError, Line, Reply, plain_reply};
use super::{LocalOps, Op, OpError};
use crate::refresh::{DisconnectReport, IfRevocationFails, RefreshOutcome};
use crate::secret::SecretString;
use crate::store::{ConnectionId, ConnectionMeta, ConnectionStatus};

/// A valid access token, refreshed first when it is about to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// An id or `provider:account`.
    pub connection: String,
}

/// Refresh now, even when the token is still fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refresh {
    /// An id or `provider:account`.
    pub connection: String,
}

/// Refresh every connection that can be refreshed now — all but those that need the person (sign in again, look
/// at a failure) and disconnected ones whose revocation is pending — through the engine, which keeps to its own
/// limit of concurrent requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshAll {}

/// What [`RefreshAll`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshAllReport {
    /// Connections that got new tokens.
    pub refreshed: usize,
    /// Connections whose token was still fresh (refreshed a moment ago by someone else).
    pub fresh: usize,
    /// Connections left alone: they need the person, or only wait to be revoked.
    pub skipped: usize,
    /// Connections whose refresh failed, with why (no token data).
    pub failed: Vec<FailedRefresh>,
}

/// One connection [`RefreshAll`] could not refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRefresh {
    /// The connection.
    pub id: ConnectionId,
    /// What happened and what to do, in words.
    pub message: String,
}

/// Revoke the connection's tokens at the provider and delete everything stored for it; when the provider cannot
/// be reached, keep trying in the background or delete now, as `if_revocation_fails` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// An id or `provider:account`.
    pub connection: String,
    /// What to do when the revocation fails (absent: keep trying).
    #[serde(default)]
    pub if_revocation_fails: IfRevocationFails,
}

/// What [`Token`] returns. Not `Serialize`; `Debug` is redacted.
#[derive(Debug)]
pub struct AccessToken(pub SecretString);

/// What [`Refresh`] did, and the connection as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshReport {
    /// The connection.
    pub id: ConnectionId,
    /// Its metadata after the refresh (new expiry, status).
    pub meta: ConnectionMeta,
    /// Whether new tokens were sealed (`false`: the token was still fresh, e.g. refreshed just before).
    pub refreshed: bool,
    /// Whether the provider rotated the refresh token.
    pub rotated: bool,
}

plain_reply!(RefreshReport, RefreshAllReport, DisconnectReport);

impl Op for Token {
    type Output = AccessToken;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        let connection = self.connection.clone();
        let id = local
            .blocking(move |vault| find_connection(vault, &self.connection))
            .await?;
        let (access, dpop) = local.engine().usable_token(id).await?;
        if let Some(key) = dpop {
            return Err(OpError::Invalid(bound_refusal(&connection, &key)));
        }
        Ok(AccessToken(access))
    }
}

/// Why a bound token is not handed out: a copy of it is useless without a proof from the key, and the key stays
/// in the vault. `tokenkeep api` signs a proof for each request instead.
pub(crate) fn bound_refusal(connection: &str, key: &crate::dpop::DpopKey) -> String {
    format!(
        "{connection}'s tokens are bound to a key that never leaves Tokenkeep (DPoP, {}, thumbprint {}): a copy \
         of its access token would be refused without a proof from that key. Use `tokenkeep api {connection} \
         PATH`, which signs a proof for each request",
        crate::dpop::ALG,
        key.thumbprint()
    )
}

impl Op for Refresh {
    type Output = RefreshReport;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        let id = local
            .blocking(move |vault| find_connection(vault, &self.connection))
            .await?;
        let outcome = local.engine().refresh_now(id).await?;
        let meta = local.blocking(move |vault| Ok(vault.get_meta(id)?)).await?;
        let (refreshed, rotated) = match outcome {
            RefreshOutcome::Refreshed { rotated, .. } => (true, rotated),
            RefreshOutcome::StillFresh { .. } => (false, false),
        };
        Ok(RefreshReport {
            id,
            meta,
            refreshed,
            rotated,
        })
    }
}

impl Op for RefreshAll {
    type Output = RefreshAllReport;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        let entries = local.blocking(|vault| Ok(vault.list()?)).await?;
        let mut report = RefreshAllReport::default();
        let mut ids = Vec::new();
        for (id, meta) in entries {
            match meta {
                Ok(meta) if !meta.status.needs_user() && meta.status != ConnectionStatus::RevocationPending => {
                    ids.push(id);
                }
                // Needs the person, only waits to be revoked, or a damaged record (`verify` reports it).
                _ => report.skipped += 1,
            }
        }
        let outcomes = local.engine().refresh_each(&ids).await;
        for (id, outcome) in ids.into_iter().zip(outcomes) {
            match outcome {
                Ok(RefreshOutcome::Refreshed { .. }) => report.refreshed += 1,
                Ok(RefreshOutcome::StillFresh { .. }) => report.fresh += 1,
                Err(error) => report.failed.push(FailedRefresh {
                    id,
                    message: error.to_string(),
                }),
            }
        }
        tracing::info!(
            refreshed = report.refreshed,
            fresh = report.fresh,
            skipped = report.skipped,
            failed = report.failed.len(),
            "refreshed every connection, as asked"
        );
        Ok(report)
    }
}

impl Op for Disconnect {
    type Output = DisconnectReport;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        let id = local
            .blocking(move |vault| find_connection(vault, &self.connection))
            .await?;
        Ok(local.engine().disconnect(id, self.if_revocation_fails).await?)
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

impl Reply for AccessToken {
    fn encode(&self) -> Line {
        wire::ok(&TokenOut {
            token: self.0.dangerously_expose(),
        })
    }

    fn decode(line: &[u8]) -> Result<Self, ApiError> {
        wire::parse_ok::<TokenIn>(line).map(|t| Self(SecretString::new(t.token)))
    }
}
