//! Keeping connections alive: refreshing tokens before they expire, classifying failures, and disconnecting.
//!
//! [`RefreshEngine`] is the only way in: every front-end, the CLI socket and the timer change a connection through
//! it. Inside, the `Refresher` performs one refresh (or disconnect) at a time per connection, so on-demand tokens,
//! "Refresh now", the CLI and the timer share one single-flight per connection; and every change it makes is an
//! [`EngineEvent`], which the engine's own plan follows, so no caller can leave the plan stale (a refresh asked for
//! elsewhere re-plans the connection instead of being repeated at its old due time).
//!
//! The durability rules, in order:
//! 1. Before a refresh request is sent, the in-flight marker is on disk (synced; `Vault::begin_refresh`), and
//!    the connection reads as `refreshing` until its next write ends it. A process that dies mid-refresh leaves
//!    it behind; the next engine start retries such a connection once, and if the provider then says
//!    `invalid_grant` the status becomes `interrupted` — "reconnect needed" with that reason — never a silent
//!    later failure.
//! 2. New tokens (a rotated refresh token above all) are sealed and flushed in one transaction before the refresh
//!    counts as done and before anything can use them. When the provider sends no new refresh token, the old one
//!    is kept.
//! 3. A disconnect wins over a refresh in flight: the refresh result is discarded (and its new tokens revoked), so
//!    tokens never come back.

mod engine;
mod plan;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};
use url::Url;

use serde::{Deserialize, Serialize};

pub use self::engine::{EngineParts, EngineStats, PauseError, RefreshEngine};
pub use self::plan::RefreshPolicy;
use crate::clock::Clock;
use crate::credentials::{self, CredentialsError};
use crate::http::HttpClient;
use crate::oauth::{self, ClientCredentials, RefreshFailure, TokenHint, human_duration};
use crate::provider::TokenRole;
use crate::provider::catalog::{Catalog, ResolvedProvider};
use crate::provider::{ProviderId, RefreshStyle};
use crate::secret::SecretString;
use crate::store::{ConnectionId, ConnectionMeta, ConnectionStatus, PendingRevocation, StoreError, TokenSet, Vault};

/// Capacity of the event channel; a subscriber that falls further behind misses events (and should re-list).
const EVENT_CAPACITY: usize = 1024;

/// How long before a session's absolute end the person is told, unless the provider says otherwise.
// IMPORTANT: a week, so that someone who opens Tokenkeep once a week still sees it in time.
const DEFAULT_SESSION_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// A refreshed token with less life than this is "due again at once" (see `Refresher::hold_if_due_at_once`).
const MIN_USABLE_LIFETIME: Duration = Duration::from_secs(2);

/// After this many such refreshes in a row, the person is told.
const HELD_ATTENTION: u32 = 3;

/// What happened to a connection, for the window, desktop notifications and the CLI daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// `Status` is the event nearly every message is; boxing it would allocate for each one to shrink the rare others.
#[allow(clippy::large_enum_variant)]
pub enum EngineEvent {
    /// A connection's status or expiry changed.
    Status(StatusChange),
    /// A connection needs the user (reconnect, or fix the client): sent once per incident.
    Attention {
        /// The connection.
        id: ConnectionId,
        /// Provider id.
        provider: ProviderId,
        /// Account name.
        account: String,
        /// What happened and what to do, in words.
        message: String,
    },
    /// A connection was disconnected and deleted.
    Removed(ConnectionId),
    /// The providers changed (added, set up, removed — here or by another process editing the profile's
    /// configuration): names, readiness and marks may read differently now.
    ProvidersChanged,
    /// Automatic refreshing was paused until `until` (Unix seconds), or resumed (`None`): by the person, or
    /// because the pause ran out. Refreshes the person or a script asks for still run while paused.
    Paused {
        /// When automatic refreshing resumes by itself; `None`: it runs again now.
        until: Option<u64>,
    },
}

/// A connection's new state: its whole metadata as just written (no token data), so that whoever listens — the
/// window, the daemon's log, the engine's own plan — needs no second read of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The connection.
    pub id: ConnectionId,
    /// Its metadata as stored now.
    pub meta: ConnectionMeta,
}

/// Why a refresh, token request or disconnect did not succeed. Never contains token bytes.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// No such connection (it may have been disconnected).
    #[error("no connection {0}: it may have been disconnected (see `tokenkeep list`)")]
    NotFound(ConnectionId),
    /// The user must sign in again.
    #[error("{account} at {provider} needs to be reconnected: {reason}")]
    NeedsReconnect {
        /// Provider id.
        provider: ProviderId,
        /// Account name.
        account: String,
        /// Why.
        reason: String,
    },
    /// A transient failure; the engine retries by itself.
    #[error("refreshing {account} at {provider} failed ({reason}); it will be retried in {}", human_duration(*retry_in))]
    Retrying {
        /// Provider id.
        provider: ProviderId,
        /// Account name.
        account: String,
        /// The failure class.
        reason: String,
        /// When the next attempt is due.
        retry_in: Duration,
    },
    /// The provider or the configuration needs the user's attention.
    #[error("refreshing {account} at {provider} failed: {reason}")]
    Failed {
        /// Provider id.
        provider: ProviderId,
        /// Account name.
        account: String,
        /// What is wrong.
        reason: String,
    },
    /// The person disconnected the account; Tokenkeep only keeps trying to revoke its tokens.
    #[error("{account} at {provider} was disconnected: Tokenkeep no longer uses it and is only revoking its access")]
    Disconnected {
        /// Provider id.
        provider: ProviderId,
        /// Account name.
        account: String,
    },
    /// The vault failed (shared, so one refresh's outcome can answer several waiters).
    #[error(transparent)]
    Store(Arc<StoreError>),
}

impl From<StoreError> for RefreshError {
    fn from(error: StoreError) -> Self {
        match error {
            // A connection deleted under a refresh (a disconnect won the race) is simply gone.
            StoreError::NotFound(id) => Self::NotFound(id),
            other => Self::Store(Arc::new(other)),
        }
    }
}

/// A disconnected account is not used any more: no refresh, no token.
fn refuse_disconnected(meta: &ConnectionMeta) -> Result<(), RefreshError> {
    if meta.status == ConnectionStatus::RevocationPending {
        return Err(RefreshError::Disconnected {
            provider: meta.provider.clone(),
            account: meta.account.clone(),
        });
    }
    Ok(())
}

/// What a token check with the platform said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validated {
    /// The token is still accepted.
    Accepted,
    /// The platform no longer accepts it (or it expired).
    Refused,
    /// No verdict (offline, no such check).
    Unknown,
}

/// The result of a refresh request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// New tokens are sealed; `rotated` when the provider issued a new refresh token.
    Refreshed {
        /// When the new access token expires.
        expires_at: Option<u64>,
        /// Whether the refresh token was rotated.
        rotated: bool,
    },
    /// Nothing to do: the access token is still fresh (another caller may just have refreshed it).
    StillFresh {
        /// When the access token expires.
        expires_at: Option<u64>,
    },
}

/// Why a refresh is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The timer: the token is (nearly) due.
    Timer,
    /// Someone needs a valid access token now.
    OnDemand,
    /// The user asked ("Refresh now"): refresh even if the token is fresh.
    User,
    /// Start-up found this connection's in-flight marker: its last refresh was cut short.
    Resume,
    /// The platform requires its tokens to be checked regularly (Twitch's `/validate`).
    Validate,
    /// A revocation left pending by a disconnect is due again.
    Revoke,
}

/// What a disconnect does when the provider cannot be reached to revoke the tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IfRevocationFails {
    /// The connection leaves the list; only what revoking needs is kept, sealed, and the engine keeps trying with
    /// backoff until it succeeds or gives up (then the person is told where to revoke by hand). For an account
    /// already pending, this tries again now.
    #[default]
    KeepTrying,
    /// Delete every record now; the report names where to revoke by hand. An account already pending is deleted
    /// without another attempt.
    DeleteNow,
}

/// What became of the platform-side grant on disconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Revocation {
    /// The provider confirmed the revocation (RFC 7009).
    Revoked,
    /// The provider has no revocation endpoint: access may remain until the user revokes it there.
    NotSupported {
        /// Where to revoke by hand.
        manage_url: Option<Url>,
    },
    /// Revocation failed (offline, provider error): access may remain until the user revokes it there.
    Failed {
        /// What failed.
        reason: String,
        /// Where to revoke by hand.
        manage_url: Option<Url>,
    },
    /// There was nothing to revoke (the tokens could not be read, or the provider is no longer configured).
    Skipped {
        /// Why.
        reason: String,
    },
    /// Deleted at the person's request while a revocation was pending, without another attempt.
    NotTried {
        /// Where to revoke by hand.
        manage_url: Option<Url>,
    },
}

/// The result of a disconnect: the records are gone, or — when the revocation failed and the person chose to
/// keep trying — only what revoking needs is left, and `pending` says when the engine tries again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectReport {
    /// Provider id.
    pub provider: ProviderId,
    /// Account name.
    pub account: String,
    /// What happened at the provider.
    pub revocation: Revocation,
    /// Set when the revocation is still to be done: the account is kept as `revocation_pending`.
    #[serde(default)]
    pub pending: Option<PendingRevocation>,
}

/// Refreshes and disconnects connections; one operation at a time per connection. Private to this crate: callers
/// go through [`RefreshEngine`], whose plan follows every change made here.
#[derive(Debug)]
pub(crate) struct Refresher {
    vault: Arc<Vault>,
    catalog: RwLock<Arc<Catalog>>,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    flights: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
    limit: Semaphore,
    /// Bounds the refreshes whose request has left but whose result is not yet durable: what one crash can cost.
    exposed: Semaphore,
    events: broadcast::Sender<EngineEvent>,
    memory: Mutex<Memory>,
}

/// What the refresher remembers between refreshes (lost on restart, by design: the disk has the status).
#[derive(Debug, Default)]
struct Memory {
    /// Consecutive transient failures and when the next attempt is due (Unix ms).
    retries: HashMap<ConnectionId, (u32, u64)>,
    /// Connections being disconnected: a refresh that completes now must not bring tokens back.
    gone: HashSet<ConnectionId>,
    /// Connections without a refresh token (their expiry is the end).
    no_refresh_token: HashSet<ConnectionId>,
    /// Connections whose refresh was cut short by a crash and not yet completed: an `invalid_grant` on any of
    /// their retries means "interrupted", even after transient failures in between.
    resumed: HashSet<ConnectionId>,
    /// When each connection's token was last checked with its platform (Unix ms), for platforms that require it.
    validated: HashMap<ConnectionId, u64>,
    /// Connections told that their session ends soon (once per process and session end).
    session_warned: HashMap<ConnectionId, u64>,
    /// Connections whose refreshes keep yielding tokens that are due again at once (a provider answering
    /// `expires_in: 0`): how many in a row, and until when (Unix ms) the engine leaves them alone.
    held: HashMap<ConnectionId, (u32, u64)>,
    /// Connections told that they cannot be refreshed while their access token runs out (once per outage: until
    /// a refresh succeeds again).
    outage_told: HashSet<ConnectionId>,
    /// Connections whose access token an API refused even just after a refresh (`tokenkeep api`): told once per
    /// incident, until a refresh succeeds again.
    refused_told: HashSet<ConnectionId>,
}

impl Refresher {
    /// A refresher over `vault`, resolving clients through `catalog`.
    pub(crate) fn new(
        vault: Arc<Vault>,
        catalog: Catalog,
        http: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
        policy: RefreshPolicy,
    ) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Self {
            vault,
            catalog: RwLock::new(Arc::new(catalog)),
            http,
            clock,
            limit: Semaphore::new(policy.max_concurrent.max(1)),
            exposed: Semaphore::new(policy.max_exposed()),
            policy,
            flights: Mutex::default(),
            events,
            memory: Mutex::default(),
        }
    }

    /// Receives every [`EngineEvent`] from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }

    /// The vault.
    pub(crate) fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// The timing rules.
    pub(crate) fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// Replaces the provider catalog (after the user changed providers); says so to the listeners when it differs.
    pub(crate) fn set_catalog(&self, catalog: Catalog) {
        let changed = {
            let mut current = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
            let changed = **current != catalog;
            *current = Arc::new(catalog);
            changed
        };
        if changed {
            self.emit(EngineEvent::ProvidersChanged);
        }
    }

    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Runs a store write, which waits for the disk (see `store::durable`), without stalling the async worker it
    /// is called on: on a multi-threaded runtime the worker hands its other tasks to another thread meanwhile
    /// (`block_in_place`), so refreshes waiting for their HTTP answers keep moving. On a current-thread runtime
    /// (tests) it runs in place. For the rarer writes only: the hot path (the in-flight marker, a refresh's
    /// result, a retry's status) uses the vault's `*_async` writes, which hold no thread while they wait.
    fn store_write<T>(&self, write: impl FnOnce(&Vault) -> T) -> T {
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi {
            tokio::task::block_in_place(|| write(&self.vault))
        } else {
            write(&self.vault)
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn flight(&self, id: ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        flights.retain(|_, f| Arc::strong_count(f) > 1); // drop idle entries
        flights.entry(id).or_default().clone()
    }

    fn now_ms(&self) -> u64 {
        self.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn emit(&self, event: EngineEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }

    fn publish(&self, id: ConnectionId, meta: &ConnectionMeta) {
        self.emit(EngineEvent::Status(StatusChange { id, meta: meta.clone() }));
    }

    /// An API refused `id`'s access token although it had just been refreshed: the person is told, once per
    /// incident (a refresh that succeeds ends it). The connection's status stays: its tokens may be fine for
    /// other calls (a scope the API wants and the grant lacks reads the same).
    pub(crate) fn token_refused(&self, id: ConnectionId, host: &str) -> Result<(), RefreshError> {
        let meta = self.meta(id)?;
        if !self.memory().refused_told.insert(id) {
            return Ok(());
        }
        tracing::warn!(provider = %meta.provider, connection = %id, host, "the API refused a freshly refreshed token");
        self.emit(EngineEvent::Attention {
            id,
            provider: meta.provider,
            account: meta.account,
            message: format!(
                "{host} refused its access token even right after a refresh: the grant may lack a scope that call \
                 needs, or the platform revoked access. Reconnect it if this goes on."
            ),
        });
        Ok(())
    }

    /// Tells every listener (and so the engine's plan) about `id` as it is stored now: after a change made
    /// outside the refresher, such as a connect or reconnect.
    pub(crate) fn announce(&self, id: ConnectionId) -> Result<ConnectionMeta, RefreshError> {
        let meta = self.meta(id)?;
        self.publish(id, &meta);
        Ok(meta)
    }

    /// When the engine should next look at this connection (Unix ms) and why, or `None` when nothing is to be
    /// done until the user acts: the refresh (its start at random within the jitter window), or — when earlier —
    /// a check the platform requires, or the warning before the session's absolute end.
    pub(crate) fn next_due(&self, id: ConnectionId, meta: &ConnectionMeta) -> Option<(u64, Trigger)> {
        if meta.status == ConnectionStatus::RevocationPending {
            return meta
                .revocation
                .map(|r| (r.next_attempt_at.saturating_mul(1000), Trigger::Revoke));
        }
        let refresh = self.due_at_ms(id, meta).map(|at| (at, Trigger::Timer));
        if !matches!(meta.status, ConnectionStatus::Connected | ConnectionStatus::Retrying) {
            return refresh;
        }
        let catalog = self.catalog();
        let spec = catalog.get(&meta.provider).map(|p| p.spec());
        let memory = self.memory();
        let validate = spec.and_then(|s| s.validation.as_ref()).map(|v| {
            let last = memory.validated.get(&id).copied().unwrap_or(0);
            (
                last.saturating_add(v.interval_secs.saturating_mul(1000)),
                Trigger::Validate,
            )
        });
        let warn = match (meta.session_ends_at, spec) {
            (Some(end), Some(spec)) if memory.session_warned.get(&id) != Some(&end) => {
                let before = spec.session_warning_secs.unwrap_or(DEFAULT_SESSION_WARNING.as_secs());
                Some((end.saturating_sub(before).saturating_mul(1000), Trigger::Timer))
            }
            _ => None,
        };
        [refresh, validate, warn]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }

    /// When the connection's token should be refreshed (Unix ms). See [`Self::next_due`].
    pub(crate) fn due_at_ms(&self, id: ConnectionId, meta: &ConnectionMeta) -> Option<u64> {
        self.due_at_ms_with(id, meta, plan::unit_random())
    }

    /// The earliest time the connection can be due, whatever the jitter: before it, a timer refresh is early.
    fn earliest_due_ms(&self, id: ConnectionId, meta: &ConnectionMeta) -> Option<u64> {
        self.due_at_ms_with(id, meta, 1.0)
    }

    fn due_at_ms_with(&self, id: ConnectionId, meta: &ConnectionMeta, unit_random: f64) -> Option<u64> {
        match meta.status {
            status if status.needs_user() || status == ConnectionStatus::RevocationPending => return None,
            // The in-flight marker of a refresh that never finished, or a retry the previous process had planned;
            // or a connection restored from a backup, whose refresh token may be out of date.
            ConnectionStatus::Refreshing | ConnectionStatus::CheckNeeded => return Some(0),
            _ => {}
        }
        let memory = self.memory();
        if let Some((_, at)) = memory.retries.get(&id) {
            return Some(*at);
        }
        if meta.status == ConnectionStatus::Retrying {
            return Some(0);
        }
        let expires_ms = meta.expires_at?.saturating_mul(1000);
        if memory.no_refresh_token.contains(&id) {
            return Some(expires_ms);
        }
        drop(memory);
        let lifetime = meta
            .last_refresh_at
            .map(|at| Duration::from_secs(meta.expires_at.unwrap_or(at).saturating_sub(at)));
        let catalog = self.catalog();
        let spec = catalog.get(&meta.provider).map(|p| p.spec());
        let provider_margin = spec.and_then(|s| s.refresh_margin_secs).map(Duration::from_secs);
        let margin = self.policy.margin(provider_margin, lifetime);
        let due = self.policy.due_at_ms(expires_ms, margin, unit_random);
        // Platforms that refresh with the access token do so only once it is old enough (Instagram: 24 hours).
        let old_enough = match (spec.map(|s| &s.refresh), meta.last_refresh_at) {
            (Some(RefreshStyle::AccessToken { min_age_secs, .. }), Some(at)) => at.saturating_add(*min_age_secs),
            _ => 0,
        };
        let held = self.memory().held.get(&id).map_or(0, |(_, until)| *until);
        Some(due.max(old_enough.saturating_mul(1000)).max(held))
    }

    /// A valid access token for `id`, refreshing first when it expires within the on-demand margin.
    pub(crate) async fn access_token(&self, id: ConnectionId) -> Result<SecretString, RefreshError> {
        Ok(self.usable_token(id).await?.0)
    }

    /// [`Self::access_token`] with the key it is bound to, when it is (DPoP): a request with it needs a proof.
    pub(crate) async fn usable_token(
        &self,
        id: ConnectionId,
    ) -> Result<(SecretString, Option<crate::dpop::DpopKey>), RefreshError> {
        let meta = self.meta(id)?;
        refuse_disconnected(&meta)?;
        if let ConnectionStatus::NeedsReconnect | ConnectionStatus::Interrupted = meta.status {
            return Err(RefreshError::NeedsReconnect {
                provider: meta.provider,
                account: meta.account,
                reason: meta.last_error.unwrap_or_else(|| "the provider revoked access".into()),
            });
        }
        if self.expires_within(&meta, self.policy.on_demand_margin) {
            self.refresh(id, Trigger::OnDemand).await?;
        }
        let tokens = self.vault.tokens(id)?;
        Ok((tokens.access, tokens.dpop_key))
    }

    fn expires_within(&self, meta: &ConnectionMeta, window: Duration) -> bool {
        meta.expires_at
            .is_some_and(|at| at.saturating_mul(1000) <= self.now_ms() + window.as_millis() as u64)
    }

    fn meta(&self, id: ConnectionId) -> Result<ConnectionMeta, RefreshError> {
        self.vault.get_meta(id).map_err(|e| match e {
            StoreError::NotFound(id) => RefreshError::NotFound(id),
            other => other.into(),
        })
    }

    /// Refreshes `id` now (waiting for a refresh of it already in flight, then deciding again).
    pub(crate) async fn refresh(&self, id: ConnectionId, trigger: Trigger) -> Result<RefreshOutcome, RefreshError> {
        let flight = self.flight(id);
        let _flight = flight.lock().await;
        let meta = self.meta(id)?;
        refuse_disconnected(&meta)?;
        let previous = meta.status;
        {
            let mut memory = self.memory();
            if memory.gone.contains(&id) {
                return Err(RefreshError::NotFound(id));
            }
            if trigger == Trigger::Resume {
                memory.resumed.insert(id);
            }
            // On-demand callers respect the backoff (and a provider's Retry-After) and do not hammer a provider
            // that refused for a reason the user must fix; "Refresh now" and the timer decide for themselves.
            if trigger == Trigger::OnDemand {
                if let Some((_, at)) = memory.retries.get(&id)
                    && *at > self.now_ms()
                {
                    return Err(RefreshError::Retrying {
                        retry_in: Duration::from_millis(*at - self.now_ms()),
                        reason: meta
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "an earlier refresh failed".into()),
                        provider: meta.provider,
                        account: meta.account,
                    });
                }
                if previous == ConnectionStatus::Error && self.expires_within(&meta, Duration::ZERO) {
                    return Err(RefreshError::Failed {
                        reason: meta
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "the last refresh failed".into()),
                        provider: meta.provider,
                        account: meta.account,
                    });
                }
            }
        }
        // Single-flight: whoever waited behind a refresh that just succeeded finds the token fresh.
        let fresh = !self.expires_within(&meta, self.policy.on_demand_margin.max(Duration::from_secs(1)));
        if fresh && matches!(trigger, Trigger::OnDemand) && meta.status == ConnectionStatus::Connected {
            return Ok(RefreshOutcome::StillFresh {
                expires_at: meta.expires_at,
            });
        }
        // Held back after tokens that were due at once: a script asking in a loop does not hammer the platform
        // either (the token just issued is handed out). "Refresh now" is the person's choice and still asks.
        if matches!(trigger, Trigger::OnDemand | Trigger::Timer)
            && meta.status == ConnectionStatus::Connected
            && self.is_held(id)
        {
            tracing::debug!(connection = %id, "held back: not asking the provider again yet");
            return Ok(RefreshOutcome::StillFresh {
                expires_at: meta.expires_at,
            });
        }
        self.warn_if_session_ends_soon(id, &meta);
        if trigger == Trigger::Validate {
            match self.validate(id, &meta).await {
                // Still accepted: nothing else to do until the next check or the refresh.
                Validated::Accepted | Validated::Unknown => {
                    return Ok(RefreshOutcome::StillFresh {
                        expires_at: meta.expires_at,
                    });
                }
                // No longer accepted: a refresh decides (a new token, or a reconnect when the grant is gone).
                Validated::Refused => {}
            }
        }
        // The timer comes at a time planned earlier. If the connection was refreshed since (a "Refresh now", a
        // token asked for through the CLI), it is not due yet: a second request would only burn a rotation.
        if trigger == Trigger::Timer
            && meta.status == ConnectionStatus::Connected
            && !self.memory().retries.contains_key(&id)
            && self.earliest_due_ms(id, &meta).is_some_and(|at| at > self.now_ms())
        {
            tracing::debug!(connection = %id, "not due any more; the timer's plan was older than the last refresh");
            return Ok(RefreshOutcome::StillFresh {
                expires_at: meta.expires_at,
            });
        }
        let tokens = self.vault.tokens(id)?;
        let catalog = self.catalog();
        let style = catalog.get(&meta.provider).map(|p| p.spec().refresh.clone());
        let grant = match &style {
            Some(RefreshStyle::AccessToken { .. }) => Some(oauth::Grant::AccessToken(&tokens.access)),
            Some(RefreshStyle::None) => None,
            Some(RefreshStyle::RefreshToken) | None => tokens.refresh.as_ref().map(oauth::Grant::RefreshToken),
        };
        let Some(grant) = grant else {
            self.memory().no_refresh_token.insert(id);
            // Only an expired token ends such a connection; "Refresh now" on a valid one changes nothing (the
            // platform cannot refresh it; the person learns when it expires).
            if self.expires_within(&meta, Duration::ZERO) {
                let reason = "the access token expired and this provider issued no refresh token: sign in again";
                return Err(self.needs_user(id, meta, previous, ConnectionStatus::NeedsReconnect, reason.into()));
            }
            return Ok(RefreshOutcome::StillFresh {
                expires_at: meta.expires_at,
            });
        };
        // A token the platform refreshes only once it is old enough: asking earlier would be refused.
        if let (Some(RefreshStyle::AccessToken { min_age_secs, .. }), Some(at)) = (&style, meta.last_refresh_at)
            && at.saturating_add(*min_age_secs).saturating_mul(1000) > self.now_ms()
        {
            tracing::debug!(connection = %id, "too young to refresh at this platform; it stays as it is");
            return Ok(RefreshOutcome::StillFresh {
                expires_at: meta.expires_at,
            });
        }
        let provider = match catalog.require(&meta.provider) {
            Ok(provider) => provider.clone(),
            Err(_) => {
                let reason = format!(
                    "the provider {:?} is no longer configured in this profile",
                    meta.provider
                );
                return Err(self.needs_user(id, meta, previous, ConnectionStatus::Error, reason));
            }
        };
        let credentials = match credentials::client_credentials(&self.vault, &provider) {
            Ok(credentials) => credentials,
            Err(CredentialsError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(self.needs_user(id, meta, previous, ConnectionStatus::Error, e.to_string())),
        };

        // The in-flight marker (rule 1): on disk before the request leaves.
        self.vault.begin_refresh_async(id).await?;
        let mut meta = meta;
        meta.status = ConnectionStatus::Refreshing;
        self.publish(id, &meta);
        tracing::debug!(provider = %meta.provider, connection = %id, ?trigger, "refreshing");
        // The limit is on requests at the provider, not on the store's work around them: the in-flight marker
        // and the result are committed outside it, so those commits (which wait for the disk) overlap other
        // connections' requests instead of holding a slot the provider could be answering.
        // `exposed` is held until the result is durable (or the failure recorded): at most `max_exposed`
        // connections can lose a rotated refresh token to one crash, however the commits and requests overlap.
        let _exposed = self.exposed.acquire().await.map_err(|_| RefreshError::NotFound(id))?;
        let result = {
            let _permit = self.limit.acquire().await.map_err(|_| RefreshError::NotFound(id))?;
            oauth::refresh_tokens(
                provider.spec(),
                &credentials,
                grant,
                tokens.dpop_key.as_ref(),
                &self.http,
                self.clock.now(),
            )
            .await
        };
        // The AT Protocol names the account in every token response: a refresh that comes back for another DID
        // is not this connection's, and is not stored (atproto "OAuth" spec, "Tokens and Session Management").
        let result = result.and_then(|new| match &provider.spec().atproto {
            Some(_) if new.subject.as_deref() != meta.subject.as_deref() => Err(RefreshFailure::Configuration(
                "the server answered the refresh with tokens for another account; they were not stored: connect \
                 this account again"
                    .into(),
            )),
            _ => Ok(new),
        });
        match result {
            Ok(new) => {
                self.store_refreshed(id, meta, tokens, new, &provider, &credentials)
                    .await
            }
            Err(RefreshFailure::Transient { reason, retry_after }) => {
                let attempt = {
                    let mut memory = self.memory();
                    let attempt = memory.retries.get(&id).map_or(0, |(n, _)| *n) + 1;
                    let delay = self.policy.backoff(attempt, retry_after, plan::unit_random());
                    memory
                        .retries
                        .insert(id, (attempt, self.now_ms() + delay.as_millis() as u64));
                    (attempt, delay)
                };
                let (attempt, retry_in) = attempt;
                tracing::warn!(
                    provider = %meta.provider, connection = %id, class = "transient", %reason, attempt,
                    retry_in_ms = retry_in.as_millis() as u64, "refresh failed; will retry"
                );
                // When, not "in how long": a window counts down to it, and the text never goes stale.
                let message = format!("refresh failed ({reason})");
                // Rounded up to a whole second, so a countdown never shows a time before the planned attempt.
                let retry_at = (self.now_ms() + retry_in.as_millis() as u64).div_ceil(1000);
                let meta = self
                    .vault
                    .update_meta_async(id, |m| {
                        m.status = ConnectionStatus::Retrying;
                        m.last_error = Some(message);
                        m.retry_at = Some(retry_at);
                    })
                    .await?;
                self.publish(id, &meta);
                // A failure that outlives the access token is the person's business: scripts using the connection
                // now fail. Said once per outage (many at once become one notification in the window).
                let lapses = meta.expires_at.is_some_and(|at| at <= retry_at);
                if lapses && self.memory().outage_told.insert(id) {
                    let now = self.now_ms() / 1000;
                    let when = if meta.expires_at.is_some_and(|at| at <= now) {
                        "has run out"
                    } else {
                        "runs out before the next try"
                    };
                    self.emit(EngineEvent::Attention {
                        id,
                        provider: meta.provider.clone(),
                        account: meta.account.clone(),
                        message: format!(
                            "Tokenkeep cannot refresh it ({reason}) and its access token {when}: scripts using it \
                             get errors until a refresh succeeds. It keeps trying by itself."
                        ),
                    });
                }
                Err(RefreshError::Retrying {
                    provider: meta.provider,
                    account: meta.account,
                    reason,
                    retry_in,
                })
            }
            Err(failure @ RefreshFailure::GrantRejected { .. }) => {
                let resumed = trigger == Trigger::Resume
                    || previous == ConnectionStatus::CheckNeeded
                    || self.memory().resumed.contains(&id);
                let (status, reason) = if resumed {
                    (
                        ConnectionStatus::Interrupted,
                        format!(
                            "interrupted — reconnect needed: the saved refresh token may be out of date (a refresh \
                             was cut short, or the store was restored from a backup) and {failure}"
                        ),
                    )
                } else {
                    let hint = provider
                        .spec()
                        .invalid_grant_hint
                        .as_ref()
                        .map(|hint| format!(" ({hint})"))
                        .unwrap_or_default();
                    (
                        ConnectionStatus::NeedsReconnect,
                        format!("{failure}: sign in again to reconnect{hint}"),
                    )
                };
                tracing::warn!(provider = %meta.provider, connection = %id, class = failure.class(), "refresh rejected");
                Err(self.needs_user(id, meta, previous, status, reason))
            }
            Err(failure) => {
                tracing::warn!(provider = %meta.provider, connection = %id, class = failure.class(), %failure, "refresh failed");
                Err(self.needs_user(id, meta, previous, ConnectionStatus::Error, failure.to_string()))
            }
        }
    }

    /// Rule 2 and 3: seal and flush the new tokens, unless the connection was disconnected meanwhile.
    async fn store_refreshed(
        &self,
        id: ConnectionId,
        mut meta: ConnectionMeta,
        old: TokenSet,
        new: oauth::Refreshed,
        provider: &ResolvedProvider,
        credentials: &ClientCredentials,
    ) -> Result<RefreshOutcome, RefreshError> {
        let rotated = new.refresh.is_some();
        let TokenSet {
            refresh: old_refresh,
            id_token: old_id_token,
            dpop_key,
            ..
        } = old;
        // The key stays: the new tokens are bound to the same one (it lives as long as the connection).
        let tokens = TokenSet {
            access: new.access,
            refresh: new.refresh.or(old_refresh),
            id_token: new.id_token.or(old_id_token),
            dpop_key,
        };
        meta.status = ConnectionStatus::Connected;
        meta.expires_at = new.expires_at;
        if new.session_ends_at.is_some() {
            meta.session_ends_at = new.session_ends_at;
        }
        if let Some(scopes) = new.scopes {
            meta.scopes = scopes;
        }
        meta.last_refresh_at = Some(self.clock.unix_secs());
        meta.last_error = None;
        let written = if self.memory().gone.contains(&id) {
            Err(StoreError::NotFound(id))
        } else {
            self.vault.replace_tokens_async(id, &tokens, &meta).await
        };
        // A disconnect that began while the request was in flight wins: whatever was just issued is revoked.
        if matches!(written, Err(StoreError::NotFound(_))) || self.memory().gone.contains(&id) {
            tracing::info!(connection = %id, "refresh finished after a disconnect; its tokens are discarded");
            self.revoke_all(provider, credentials, &tokens).await.ok();
            return Err(RefreshError::NotFound(id));
        }
        written?;
        {
            let mut memory = self.memory();
            memory.retries.remove(&id);
            memory.resumed.remove(&id);
            memory.outage_told.remove(&id);
            memory.refused_told.remove(&id);
        }
        tracing::info!(provider = %meta.provider, connection = %id, rotated, "refreshed");
        self.publish(id, &meta);
        self.hold_if_due_at_once(id, &meta);
        Ok(RefreshOutcome::Refreshed {
            expires_at: meta.expires_at,
            rotated,
        })
    }

    /// A provider that answers every refresh with a token that is due again at once (`expires_in: 0`, a clock far
    /// off) would be asked again at once, thousands of times a minute, and the person's client rate-limited or
    /// banned. After such a refresh the connection is held back — the backoff of transient failures, doubling
    /// up to its cap — and after [`HELD_ATTENTION`] in a row the person is told, once. A refresh that yields a
    /// usable token ends the hold.
    fn hold_if_due_at_once(&self, id: ConnectionId, meta: &ConnectionMeta) {
        let now = self.now_ms();
        let due_at_once = meta
            .expires_at
            .is_some_and(|at| at.saturating_mul(1000) <= now.saturating_add(MIN_USABLE_LIFETIME.as_millis() as u64));
        let mut memory = self.memory();
        if !due_at_once {
            memory.held.remove(&id);
            return;
        }
        let count = memory.held.get(&id).map_or(0, |(n, _)| *n) + 1;
        let wait = self.policy.backoff(count, None, plan::unit_random());
        memory
            .held
            .insert(id, (count, now.saturating_add(wait.as_millis() as u64)));
        drop(memory);
        tracing::warn!(
            provider = %meta.provider,
            connection = %id,
            count,
            wait_ms = wait.as_millis() as u64,
            "the provider issued a token that is due again at once; holding this connection back"
        );
        if count == HELD_ATTENTION {
            self.emit(EngineEvent::Attention {
                id,
                provider: meta.provider.clone(),
                account: meta.account.clone(),
                message: format!(
                    "{} keeps issuing tokens that expire at once: Tokenkeep now refreshes this connection at most \
                     every {} so that the platform does not block your app; if it persists, reconnect or check the \
                     platform's status",
                    meta.provider,
                    crate::oauth::human_duration(self.policy.backoff_cap)
                ),
            });
        }
    }

    /// Whether the engine is holding `id` back now (see [`Self::hold_if_due_at_once`]).
    fn is_held(&self, id: ConnectionId) -> bool {
        self.memory()
            .held
            .get(&id)
            .is_some_and(|(_, until)| *until > self.now_ms())
    }

    /// Records a state that needs the user, notifying once per incident.
    /// `previous` is the status before this refresh began (not the in-flight marker): an incident is new only
    /// when the connection was not already waiting for the user.
    fn needs_user(
        &self,
        id: ConnectionId,
        meta: ConnectionMeta,
        previous: ConnectionStatus,
        status: ConnectionStatus,
        reason: String,
    ) -> RefreshError {
        let was_attention = previous.needs_user();
        {
            let mut memory = self.memory();
            memory.retries.remove(&id);
            memory.resumed.remove(&id);
        }
        let updated = self.store_write(|vault| {
            vault.update_meta(id, |m| {
                m.status = status;
                m.last_error = Some(reason.clone());
            })
        });
        match updated {
            Ok(meta) => self.publish(id, &meta),
            Err(error) => return error.into(),
        }
        if !was_attention {
            self.emit(EngineEvent::Attention {
                id,
                provider: meta.provider.clone(),
                account: meta.account.clone(),
                message: reason.clone(),
            });
        }
        match status {
            ConnectionStatus::Error => RefreshError::Failed {
                provider: meta.provider,
                account: meta.account,
                reason,
            },
            _ => RefreshError::NeedsReconnect {
                provider: meta.provider,
                account: meta.account,
                reason,
            },
        }
    }

    /// Revokes the tokens the platform's endpoint takes, in its order. Each is revoked on its own: when one fails
    /// the next is still tried, and every failure is reported.
    async fn revoke_all(
        &self,
        provider: &ResolvedProvider,
        credentials: &ClientCredentials,
        tokens: &TokenSet,
    ) -> Result<(), oauth::RevokeError> {
        let spec = provider.spec();
        let Some(endpoint) = spec.revocation_endpoint.as_ref() else {
            return Ok(());
        };
        let mut failures = Vec::new();
        for role in &spec.revocation.tokens {
            let token = match role {
                TokenRole::Access => Some(&tokens.access),
                TokenRole::Refresh => tokens.refresh.as_ref(),
            };
            let Some(token) = token else { continue };
            let hint = TokenHint::from(*role);
            if let Err(error) = oauth::revoke(
                spec,
                endpoint,
                credentials,
                token,
                hint,
                tokens.dpop_key.as_ref(),
                &*self.http,
            )
            .await
            {
                tracing::warn!(provider = %spec.id, token = ?hint, %error, "revocation failed");
                failures.push(format!("the {} token: {error}", role.name()));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(oauth::RevokeError::new(failures.join("; ")))
        }
    }

    /// Tells the person once, a while before the session's absolute end, that only a new sign-in extends it.
    fn warn_if_session_ends_soon(&self, id: ConnectionId, meta: &ConnectionMeta) {
        let Some(end) = meta.session_ends_at else { return };
        let catalog = self.catalog();
        let Some(provider) = catalog.get(&meta.provider) else {
            return;
        };
        let before = provider
            .spec()
            .session_warning_secs
            .unwrap_or(DEFAULT_SESSION_WARNING.as_secs());
        let now = self.clock.unix_secs();
        if now.saturating_add(before) < end || self.memory().session_warned.get(&id) == Some(&end) {
            return;
        }
        self.memory().session_warned.insert(id, end);
        let when = if end > now {
            format!("in {}", human_duration(Duration::from_secs(end - now)))
        } else {
            "now".to_owned()
        };
        self.emit(EngineEvent::Attention {
            id,
            provider: meta.provider.clone(),
            account: meta.account.clone(),
            message: format!(
                "this connection ends {when} ({}): {} lets a sign-in last only so long, and refreshing does not \
                 extend it — reconnect before then to keep it working",
                crate::clock::rfc3339(end),
                provider.spec().display_name
            ),
        });
    }

    /// Checks the access token with the platform (Twitch's `/validate`), as its rules require.
    async fn validate(&self, id: ConnectionId, meta: &ConnectionMeta) -> Validated {
        let catalog = self.catalog();
        let Some(provider) = catalog.get(&meta.provider) else {
            return Validated::Unknown;
        };
        let Some(validation) = provider.spec().validation.clone() else {
            return Validated::Unknown;
        };
        self.memory().validated.insert(id, self.now_ms());
        // An expired token is not checked: its refresh is due, and that is the check.
        if self.expires_within(meta, Duration::ZERO) {
            return Validated::Refused;
        }
        let tokens = match self.vault.tokens(id) {
            Ok(tokens) => tokens,
            Err(_) => return Validated::Unknown,
        };
        match oauth::validate(provider.spec(), &validation, &tokens.access, &*self.http).await {
            Ok(true) => Validated::Accepted,
            Ok(false) => {
                tracing::warn!(provider = %meta.provider, connection = %id, "the platform no longer accepts the token");
                Validated::Refused
            }
            Err(error) => {
                // Offline or the platform failing: no verdict; the next check comes at the next interval.
                tracing::info!(provider = %meta.provider, connection = %id, %error, "could not validate the token");
                Validated::Unknown
            }
        }
    }

    /// Revokes the connection's tokens at the provider (RFC 7009), then deletes every record of it, atomically
    /// and flushed. A refresh in flight is overruled (rule 3). When the revocation fails (the provider is down,
    /// the machine offline), `if_fails` decides: keep only what revoking needs and try again later, or delete
    /// anyway. Disconnecting an account whose revocation is pending tries again now, or deletes it at once.
    pub(crate) async fn disconnect(
        &self,
        id: ConnectionId,
        if_fails: IfRevocationFails,
    ) -> Result<DisconnectReport, RefreshError> {
        // IMPORTANT: mark the connection gone *before* reading its tokens: a refresh that writes after this read
        // sees the mark and revokes what it got; one that wrote before is revoked here.
        let meta = self.meta(id).or_else(|e| match e {
            // A damaged metadata record must still be deletable.
            RefreshError::Store(e) if matches!(*e, StoreError::Record { .. }) => Ok(ConnectionMeta::new(
                ProviderId::parse("unknown").expect("a valid provider id"),
                "unknown",
            )),
            other => Err(other),
        })?;
        if meta.status == ConnectionStatus::RevocationPending {
            return match if_fails {
                IfRevocationFails::KeepTrying => self.retry_revocation(id).await,
                IfRevocationFails::DeleteNow => {
                    let flight = self.flight(id);
                    let _flight = flight.lock().await;
                    let manage_url = self.manage_url(&meta);
                    self.forget(id, &meta, Revocation::NotTried { manage_url })
                }
            };
        }
        // The mark stays for the life of the process: a refresh may still be in flight after the delete, and ids
        // are random, so a disconnected id never comes back.
        self.memory().gone.insert(id);
        let tokens = self.vault.tokens(id);
        let revocation = self.attempt_revocation(&meta, tokens.as_ref()).await;
        let mut memory = self.memory();
        memory.retries.remove(&id);
        memory.no_refresh_token.remove(&id);
        memory.validated.remove(&id);
        memory.session_warned.remove(&id);
        memory.held.remove(&id);
        memory.outage_told.remove(&id);
        drop(memory);
        match (revocation, tokens, if_fails) {
            (Revocation::Failed { reason, manage_url }, Ok(tokens), IfRevocationFails::KeepTrying) => {
                let pending = self.keep_for_revocation(id, &meta, tokens, &reason)?;
                tracing::info!(provider = %meta.provider, connection = %id, "disconnected; revocation pending");
                Ok(DisconnectReport {
                    provider: meta.provider,
                    account: meta.account,
                    revocation: Revocation::Failed { reason, manage_url },
                    pending: Some(pending),
                })
            }
            (revocation, _, _) => self.forget(id, &meta, revocation),
        }
    }

    /// Tries a pending revocation again (the engine's timer, or the person's "Try now"). Success deletes the
    /// account; a failure plans the next attempt with backoff, until the give-up time: then everything kept is
    /// deleted and the person is told, once, where to revoke by hand.
    pub(crate) async fn retry_revocation(&self, id: ConnectionId) -> Result<DisconnectReport, RefreshError> {
        let flight = self.flight(id);
        let _flight = flight.lock().await;
        let meta = self.meta(id)?;
        let Some(pending) = meta
            .revocation
            .filter(|_| meta.status == ConnectionStatus::RevocationPending)
        else {
            return Err(RefreshError::Failed {
                provider: meta.provider,
                account: meta.account,
                reason: "no revocation is pending for this account".into(),
            });
        };
        self.memory().gone.insert(id);
        let tokens = self.vault.tokens(id);
        let revocation = self.attempt_revocation(&meta, tokens.as_ref()).await;
        let now = self.clock.unix_secs();
        match revocation {
            Revocation::Failed { reason, manage_url } if tokens.is_ok() && now < pending.give_up_at => {
                let attempts = pending.attempts.saturating_add(1);
                let wait = self.policy.revoke_backoff(attempts, plan::unit_random());
                let next = PendingRevocation {
                    attempts,
                    next_attempt_at: now.saturating_add(wait.as_secs().max(1)).min(pending.give_up_at),
                    ..pending
                };
                let meta = self.store_write(|vault| {
                    vault.update_meta(id, |m| {
                        m.revocation = Some(next);
                        m.last_error = Some(reason.clone());
                    })
                })?;
                self.publish(id, &meta);
                tracing::info!(provider = %meta.provider, connection = %id, attempts, "revocation failed again; retrying later");
                Ok(DisconnectReport {
                    provider: meta.provider,
                    account: meta.account,
                    revocation: Revocation::Failed { reason, manage_url },
                    pending: Some(next),
                })
            }
            revocation => {
                let report = self.forget(id, &meta, revocation)?;
                if !matches!(report.revocation, Revocation::Revoked) {
                    self.tell_to_revoke_by_hand(id, &meta, &pending, &report.revocation);
                }
                Ok(report)
            }
        }
    }

    /// One attempt at revoking `meta`'s tokens. Never fails: what went wrong is the outcome.
    async fn attempt_revocation(&self, meta: &ConnectionMeta, tokens: Result<&TokenSet, &StoreError>) -> Revocation {
        let catalog = self.catalog();
        let Some(provider) = catalog.get(&meta.provider).cloned() else {
            return Revocation::Skipped {
                reason: "the provider is no longer configured".into(),
            };
        };
        let tokens = match tokens {
            Ok(tokens) => tokens,
            Err(e) => {
                return Revocation::Skipped {
                    reason: format!("the tokens could not be read ({e})"),
                };
            }
        };
        let manage_url = provider.spec().manage_access_url.clone();
        if provider.spec().revocation_endpoint.is_none() {
            return Revocation::NotSupported { manage_url };
        }
        let outcome = match credentials::client_credentials(&self.vault, &provider) {
            Err(e) => Err(e.to_string()),
            Ok(credentials) => self
                .revoke_all(&provider, &credentials, tokens)
                .await
                .map_err(|e| e.to_string()),
        };
        match outcome {
            Ok(()) => Revocation::Revoked,
            Err(reason) => Revocation::Failed { reason, manage_url },
        }
    }

    /// Turns a disconnected account into a pending revocation: the tokens revoking needs (not the ID token, not
    /// the subject, scopes or expiry), sealed, in one write; the engine plans the next attempt from the event.
    fn keep_for_revocation(
        &self,
        id: ConnectionId,
        meta: &ConnectionMeta,
        tokens: TokenSet,
        reason: &str,
    ) -> Result<PendingRevocation, RefreshError> {
        let now = self.clock.unix_secs();
        let wait = self.policy.revoke_backoff(1, plan::unit_random());
        let pending = PendingRevocation {
            since: now,
            attempts: 1,
            next_attempt_at: now.saturating_add(wait.as_secs().max(1)),
            give_up_at: now.saturating_add(self.policy.revoke_give_up_after.as_secs()),
        };
        let kept = ConnectionMeta {
            subject: None,
            scopes: Vec::new(),
            expires_at: None,
            session_ends_at: None,
            retry_at: None,
            status: ConnectionStatus::RevocationPending,
            last_error: Some(reason.to_owned()),
            revocation: Some(pending),
            ..meta.clone()
        };
        // A bound token is revoked with a proof: its key stays with it.
        let tokens = TokenSet {
            id_token: None,
            ..tokens
        };
        self.store_write(|vault| vault.replace_tokens(id, &tokens, &kept))?;
        self.publish(id, &kept);
        Ok(pending)
    }

    /// Deletes every record of `id` and tells the listeners.
    fn forget(
        &self,
        id: ConnectionId,
        meta: &ConnectionMeta,
        revocation: Revocation,
    ) -> Result<DisconnectReport, RefreshError> {
        self.store_write(|vault| vault.delete_connection(id))?;
        self.emit(EngineEvent::Removed(id));
        tracing::info!(provider = %meta.provider, connection = %id, ?revocation, "disconnected");
        Ok(DisconnectReport {
            provider: meta.provider.clone(),
            account: meta.account.clone(),
            revocation,
            pending: None,
        })
    }

    fn manage_url(&self, meta: &ConnectionMeta) -> Option<Url> {
        self.catalog()
            .get(&meta.provider)
            .and_then(|p| p.spec().manage_access_url.clone())
    }

    /// The final notice of a revocation given up: the person must revoke at the platform.
    fn tell_to_revoke_by_hand(
        &self,
        id: ConnectionId,
        meta: &ConnectionMeta,
        pending: &PendingRevocation,
        revocation: &Revocation,
    ) {
        let catalog = self.catalog();
        let platform = catalog
            .get(&meta.provider)
            .map_or_else(|| meta.provider.to_string(), |p| p.spec().display_name.clone());
        let why = match revocation {
            Revocation::Failed { reason, .. } => format!(
                "{platform} could not be reached for {} ({reason})",
                human_duration(Duration::from_secs(pending.give_up_at.saturating_sub(pending.since)))
            ),
            Revocation::Skipped { reason } => reason.clone(),
            _ => format!("{platform} offers no way for apps to revoke their access"),
        };
        let by_hand = match self.manage_url(meta) {
            Some(url) => format!("revoke Tokenkeep's access by hand at {url}"),
            None => format!("revoke Tokenkeep's access by hand in {platform}'s account settings"),
        };
        tracing::warn!(provider = %meta.provider, connection = %id, "gave up revoking; the person is told to revoke by hand");
        self.emit(EngineEvent::Attention {
            id,
            provider: meta.provider.clone(),
            account: meta.account.clone(),
            message: format!(
                "Tokenkeep stopped trying to revoke its access: {why}. The tokens are deleted from this computer; \
                 {by_hand}"
            ),
        });
    }
}
