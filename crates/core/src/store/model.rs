//! What the vault stores: connections, their metadata and their tokens.
//!
//! **Invariant:** [`TokenSet`] is not `Serialize` and never will be. The metadata types are plain data and
//! serializable (the CLI socket carries them), but their *sealed* form is [`MetaPayload`], private to [`super`] and
//! versioned on its own, so the wire and the disk never share a format by accident. What the webview sees is a
//! DTO in the adapter.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::provider::ProviderId;
use crate::secret::SecretString;

/// Length in bytes of a [`ConnectionId`].
pub const CONNECTION_ID_LEN: usize = 16;

/// A connection's record id: 16 random bytes, shown as 32 hex digits. Never derived from the account name, so it
/// reveals nothing about whose tokens a record holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ConnectionId([u8; CONNECTION_ID_LEN]);

impl ConnectionId {
    /// A fresh random id from the operating system's CSPRNG.
    pub(crate) fn generate() -> Result<Self, getrandom::Error> {
        let mut id = [0u8; CONNECTION_ID_LEN];
        getrandom::fill(&mut id)?;
        Ok(Self(id))
    }

    /// Wraps raw id bytes.
    pub const fn from_bytes(bytes: [u8; CONNECTION_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The id from a record key, if it has the right length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The raw id bytes (the record key in the `connections` tree).
    pub const fn as_bytes(&self) -> &[u8; CONNECTION_ID_LEN] {
        &self.0
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionId({})", self.to_hex())
    }
}

/// A connection id that is not 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection id: expected 32 hex digits, as printed by Tokenkeep")]
pub struct InvalidConnectionId;

impl From<ConnectionId> for String {
    fn from(id: ConnectionId) -> Self {
        id.to_hex()
    }
}

impl TryFrom<String> for ConnectionId {
    type Error = InvalidConnectionId;

    fn try_from(hex: String) -> Result<Self, Self::Error> {
        hex.parse()
    }
}

impl FromStr for ConnectionId {
    type Err = InvalidConnectionId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut id = [0u8; CONNECTION_ID_LEN];
        hex::decode_to_slice(s, &mut id).map_err(|_| InvalidConnectionId)?;
        Ok(Self(id))
    }
}

/// Where a connection stands. New states may be added. Serialized under its stable name ([`Self::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectionStatus {
    /// Tokens are valid.
    Connected,
    /// A refresh is under way.
    Refreshing,
    /// A refresh failed transiently and will be retried.
    Retrying,
    /// The provider rejected the refresh token: the user must sign in again.
    NeedsReconnect,
    /// A refresh was cut short (the app quit or crashed); its outcome is unknown.
    Interrupted,
    /// A failure that needs attention; see [`ConnectionMeta::last_error`].
    Error,
    /// Restored from a backup: the refresh token may have been replaced at the provider since. The next refresh
    /// (at once, when the engine runs) tells: connected again, or `interrupted` when the platform refuses it.
    CheckNeeded,
    /// Disconnected by the user, but the provider could not be reached to revoke the tokens: the connection is
    /// no longer used, and only what revoking needs is kept until the engine succeeds or gives up (see
    /// [`ConnectionMeta::revocation`]).
    RevocationPending,
}

impl ConnectionStatus {
    /// Every status, in declaration order.
    pub const ALL: [Self; 8] = [
        Self::Connected,
        Self::Refreshing,
        Self::Retrying,
        Self::NeedsReconnect,
        Self::Interrupted,
        Self::Error,
        Self::CheckNeeded,
        Self::RevocationPending,
    ];

    /// The stable name stored in records (`connected`, `needs_reconnect`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Refreshing => "refreshing",
            Self::Retrying => "retrying",
            Self::NeedsReconnect => "needs_reconnect",
            Self::Interrupted => "interrupted",
            Self::Error => "error",
            Self::CheckNeeded => "check_needed",
            Self::RevocationPending => "revocation_pending",
        }
    }

    /// Whether the person must act (sign in again, or look at a failure): the engine does not refresh such a
    /// connection, and front-ends count it among those that need the user.
    pub const fn needs_user(self) -> bool {
        matches!(self, Self::NeedsReconnect | Self::Interrupted | Self::Error)
    }

    /// The status with stable name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything about a connection except its tokens. Sealed as one record (field `meta`) because the account name
/// and subject are personal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionMeta {
    /// The provider (`youtube`, `demo`, …). It names the token tree (`tokens/<provider>`), so it cannot change
    /// once stored.
    pub provider: ProviderId,
    /// The account as the user recognises it (e-mail, login).
    pub account: String,
    /// The provider's stable subject identifier (`sub`), if known.
    pub subject: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When the access token expires, in Unix seconds.
    pub expires_at: Option<u64>,
    /// Where the connection stands.
    pub status: ConnectionStatus,
    /// When the connection was stored (Unix seconds). Set by the vault.
    pub created_at: u64,
    /// When the connection last changed (Unix seconds). Set by the vault on every write.
    pub updated_at: u64,
    /// When the tokens were last refreshed (Unix seconds).
    pub last_refresh_at: Option<u64>,
    /// The last failure, in words for the user. Must never contain token bytes.
    pub last_error: Option<String>,
    /// When the session ends for good (the refresh token's absolute end), if the platform said: only a new
    /// sign-in extends it (Unix seconds).
    #[serde(default)]
    pub session_ends_at: Option<u64>,
    /// While `Retrying`: when the engine tries again (Unix seconds), so a window can count down to it.
    #[serde(default)]
    pub retry_at: Option<u64>,
    /// While `RevocationPending`: how the revocation is going.
    #[serde(default)]
    pub revocation: Option<PendingRevocation>,
    /// The fingerprint ([`crate::picture::AccountPicture::tag`]) of the account's picture, when one is stored
    /// (see [`super::Vault::set_picture`]).
    #[serde(default)]
    pub picture: Option<String>,
    /// Where the account's data is, when that is the account's own server rather than the platform's API (the AT
    /// Protocol: the PDS its DID document names). `tokenkeep api` sends the connection's token there.
    #[serde(default)]
    pub resource: Option<String>,
}

/// A revocation the engine keeps trying after a disconnect that could not reach the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRevocation {
    /// When the person disconnected (Unix seconds).
    pub since: u64,
    /// Attempts so far (the one at disconnect included).
    pub attempts: u32,
    /// When the engine tries again (Unix seconds).
    pub next_attempt_at: u64,
    /// When the engine stops trying, deletes what it kept and tells the person to revoke by hand (Unix seconds).
    pub give_up_at: u64,
}

impl ConnectionMeta {
    /// A freshly connected account with no scopes, expiry or history; timestamps are set by the vault.
    pub fn new(provider: ProviderId, account: impl Into<String>) -> Self {
        Self {
            provider,
            account: account.into(),
            subject: None,
            scopes: Vec::new(),
            expires_at: None,
            status: ConnectionStatus::Connected,
            created_at: 0,
            updated_at: 0,
            last_refresh_at: None,
            last_error: None,
            session_ends_at: None,
            retry_at: None,
            revocation: None,
            picture: None,
            resource: None,
        }
    }

    /// When the engine tries again: only while `Retrying` (a time left from an earlier failure means nothing).
    pub fn planned_retry(&self) -> Option<u64> {
        self.retry_at.filter(|_| self.status == ConnectionStatus::Retrying)
    }

    /// Makes every text that came from a provider safe to store and show ([`crate::text::clean`]): the account,
    /// the subject, the scopes and the last error. The vault applies it to everything it writes and reads, so no
    /// escape sequence or bidirectional override reaches a terminal, the window or a notification — whatever the
    /// provider sent, and whatever an older version stored. A retry time is kept only while retrying.
    pub fn sanitize(&mut self) {
        use crate::text::{MAX_ERROR_CHARS, MAX_NAME_CHARS, clean, is_clean};
        self.retry_at = self.planned_retry();
        if self.status != ConnectionStatus::RevocationPending {
            self.revocation = None;
        }
        if self
            .picture
            .as_ref()
            .is_some_and(|tag| tag.len() != 16 || !tag.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            self.picture = None;
        }
        if !is_clean(&self.account) || self.account.chars().count() > MAX_NAME_CHARS {
            let account = clean(&self.account, MAX_NAME_CHARS);
            self.account = if account.is_empty() {
                "(unnamed account)".to_owned()
            } else {
                account
            };
        }
        if let Some(subject) = &self.subject
            && (!is_clean(subject) || subject.chars().count() > 255)
        {
            self.subject = Some(clean(subject, 255)).filter(|s| !s.is_empty());
        }
        if self.scopes.iter().any(|s| !is_clean(s) || s.chars().count() > 200) {
            self.scopes = self
                .scopes
                .iter()
                .map(|s| clean(s, 200))
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(error) = &self.last_error
            && (!is_clean(error) || error.chars().count() > MAX_ERROR_CHARS)
        {
            self.last_error = Some(clean(error, MAX_ERROR_CHARS)).filter(|e| !e.is_empty());
        }
    }
}

/// Which token of a connection. Serialized under its field name ([`Self::field`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenKind {
    /// The access token.
    #[serde(rename = "access_token")]
    Access,
    /// The refresh token.
    #[serde(rename = "refresh_token")]
    Refresh,
    /// The OpenID Connect ID token.
    #[serde(rename = "id_token")]
    Id,
}

impl TokenKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Access, Self::Refresh, Self::Id];

    /// The field name under which the token is stored and to which its envelope is bound.
    pub const fn field(self) -> &'static str {
        match self {
            Self::Access => "access_token",
            Self::Refresh => "refresh_token",
            Self::Id => "id_token",
        }
    }

    /// The kind stored under field name `field`.
    pub fn from_field(field: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.field() == field)
    }
}

/// A connection's tokens. Not `Clone` or `Serialize`; `Debug` is redacted by [`SecretString`].
#[derive(Debug)]
pub struct TokenSet {
    /// The access token.
    pub access: SecretString,
    /// The refresh token, if the provider issued one.
    pub refresh: Option<SecretString>,
    /// The ID token, if the provider issued one.
    pub id_token: Option<SecretString>,
    /// The key the tokens are bound to (DPoP, RFC 9449), for platforms that bind them: sealed beside the tokens
    /// (field [`FIELD_DPOP_KEY`]), made at connect, kept as long as the connection.
    pub dpop_key: Option<crate::dpop::DpopKey>,
}

/// The field name of a connection's sealed DPoP private key (32 bytes), in its token tree.
pub const FIELD_DPOP_KEY: &str = "dpop_key";

/// Whether `field` names a record of a connection's token tree: one of the [`TokenKind`]s, or the DPoP key.
pub(crate) fn is_token_field(field: &str) -> bool {
    TokenKind::from_field(field).is_some() || field == FIELD_DPOP_KEY
}

impl TokenSet {
    /// The token of `kind`, if present.
    pub fn get(&self, kind: TokenKind) -> Option<&SecretString> {
        match kind {
            TokenKind::Access => Some(&self.access),
            TokenKind::Refresh => self.refresh.as_ref(),
            TokenKind::Id => self.id_token.as_ref(),
        }
    }
}

/// The sealed form of [`ConnectionMeta`] (JSON inside the envelope). Private so the public types stay
/// non-serializable; `v` lets a later version change the payload.
#[derive(Serialize, Deserialize)]
pub(super) struct MetaPayload {
    pub(super) v: u32,
    pub(super) provider: String,
    pub(super) account: String,
    pub(super) subject: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) expires_at: Option<u64>,
    pub(super) status: String,
    pub(super) created_at: u64,
    pub(super) updated_at: u64,
    pub(super) last_refresh_at: Option<u64>,
    pub(super) last_error: Option<String>,
    /// Added later within version 1: absent in older records, ignored by older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) session_ends_at: Option<u64>,
    /// The token fields stored for the connection (`access_token`, `refresh_token`, …), so that a token record
    /// that disappears or is renamed reads as damage, not as "never issued". Added later within version 1:
    /// absent in older records (then nothing is checked), ignored by older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) tokens: Option<Vec<String>>,
    /// When a retrying refresh is tried again. Added later within version 1 (absent: none planned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) retry_at: Option<u64>,
    /// A revocation still to be done (status `revocation_pending`). Added later within version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) revocation: Option<PendingRevocation>,
    /// The fingerprint of the stored picture. Added later within version 1 (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) picture: Option<String>,
    /// The account's own resource server (an atproto PDS). Added later within version 1 (absent: the platform's
    /// API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) resource: Option<String>,
}

/// Version of [`MetaPayload`] this build writes and reads.
pub(super) const META_PAYLOAD_VERSION: u32 = 1;

impl From<&ConnectionMeta> for MetaPayload {
    fn from(m: &ConnectionMeta) -> Self {
        let mut clean = m.clone();
        clean.sanitize();
        let m = &clean;
        Self {
            v: META_PAYLOAD_VERSION,
            provider: m.provider.to_string(),
            account: m.account.clone(),
            subject: m.subject.clone(),
            scopes: m.scopes.clone(),
            expires_at: m.expires_at,
            status: m.status.as_str().to_owned(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_refresh_at: m.last_refresh_at,
            last_error: m.last_error.clone(),
            session_ends_at: m.session_ends_at,
            tokens: None,
            retry_at: m.retry_at,
            revocation: m.revocation,
            picture: m.picture.clone(),
            resource: m.resource.clone(),
        }
    }
}

impl TryFrom<MetaPayload> for ConnectionMeta {
    type Error = ();

    fn try_from(p: MetaPayload) -> Result<Self, ()> {
        if p.v != META_PAYLOAD_VERSION {
            return Err(());
        }
        let mut meta = Self {
            provider: ProviderId::parse(&p.provider).map_err(|_| ())?,
            account: p.account,
            subject: p.subject,
            scopes: p.scopes,
            expires_at: p.expires_at,
            status: ConnectionStatus::from_name(&p.status).ok_or(())?,
            created_at: p.created_at,
            updated_at: p.updated_at,
            last_refresh_at: p.last_refresh_at,
            last_error: p.last_error,
            session_ends_at: p.session_ends_at,
            retry_at: p.retry_at,
            revocation: p.revocation,
            picture: p.picture,
            resource: p.resource,
        };
        meta.sanitize();
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_round_trip_as_hex() {
        let id = ConnectionId::generate().unwrap();
        assert_eq!(id.to_hex().len(), 32);
        assert_eq!(id.to_hex().parse::<ConnectionId>(), Ok(id));
        assert_eq!("xyz".parse::<ConnectionId>(), Err(InvalidConnectionId));
        assert_ne!(ConnectionId::generate().unwrap(), id);
    }

    #[test]
    fn status_names_are_stable_and_round_trip() {
        for s in ConnectionStatus::ALL {
            assert_eq!(ConnectionStatus::from_name(s.as_str()), Some(s));
        }
        assert_eq!(ConnectionStatus::NeedsReconnect.as_str(), "needs_reconnect");
        assert_eq!(ConnectionStatus::from_name("bogus"), None);
    }

    #[test]
    fn provider_ids_are_validated() {
        // A provider id names a tree: the type admits only ids that are safe there.
        for ok in ["google", "github", "my-idp-1"] {
            assert!(ProviderId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Google", "a/b", "a b", "my-idp.example_1", &"x".repeat(65)] {
            assert!(ProviderId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stored_payload_with_an_impossible_provider_is_unreadable() {
        let mut payload = MetaPayload::from(&ConnectionMeta::new(ProviderId::parse("demo").unwrap(), "alice"));
        payload.provider = "Not/A/Provider".into();
        assert!(ConnectionMeta::try_from(payload).is_err());
    }

    #[test]
    fn token_set_debug_is_redacted() {
        let set = TokenSet {
            access: SecretString::new("at-secret-123".into()),
            refresh: Some(SecretString::new("rt-secret-456".into())),
            id_token: None,
            dpop_key: None,
        };
        let shown = format!("{set:?}");
        assert!(
            !shown.contains("secret-123") && !shown.contains("secret-456"),
            "{shown}"
        );
        assert_eq!(
            set.get(TokenKind::Refresh).unwrap().dangerously_expose(),
            "rt-secret-456"
        );
        assert!(set.get(TokenKind::Id).is_none());
    }
}
