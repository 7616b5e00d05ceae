//! The shapes the webview receives, exactly as docs/IPC.md writes them (camelCase, Unix seconds, ids as 32 hex
//! digits), and the conversions from core's types.
//!
//! **Invariant:** no DTO carries token or key bytes. The one exception is [`Revealed`], returned only by the
//! `reveal` command; it keeps the token in a [`SecretString`] (zeroized, redacted `Debug`) until serialization.

use serde::{Deserialize, Serialize, Serializer};
use tokenkeep_core::connect;
use tokenkeep_core::ops::{self, JwtParts, TokenInspection};
use tokenkeep_core::provider::ClientAuth;
use tokenkeep_core::provider::catalog::{Catalog, Origin, Readiness, ResolvedProvider};
use tokenkeep_core::provider::{ProviderId, RedirectMode};
use tokenkeep_core::refresh::{DisconnectReport, Revocation};
use tokenkeep_core::secret::SecretString;
use tokenkeep_core::store::{ConnectionId, ConnectionMeta, ConnectionStatus, PendingRevocation, TokenKind};

use crate::error::CommandError;

/// What the window shows about the running app.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppInfo {
    pub(crate) name: &'static str,
    pub(crate) version: &'static str,
    pub(crate) profile: String,
    pub(crate) data_dir: String,
    pub(crate) headless: bool,
    /// The redirect URI to register for an OpenID provider added by its issuer (any port).
    pub(crate) custom_redirect_uri: String,
}

/// Whether the vault is open, and if not, why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VaultStatus {
    pub(crate) ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_id: Option<String>,
    pub(crate) headless: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<CommandError>,
    /// Whether Retry can help: not when headless and `TOKENKEEP_MASTER_KEY` is the problem (it is read at start).
    pub(crate) retryable: bool,
    /// The app watches the keyring and opens the vault by itself when it starts or is unlocked.
    pub(crate) watching: bool,
    /// A store exists in this profile (or did: its marker remains). `false` on a first run: nothing to lose yet.
    pub(crate) store_exists: bool,
    /// The vault's keyring key was created (or rotated) and the person has not been told what losing it means.
    pub(crate) key_notice: bool,
}

/// What `restore_backup` did: the vault as it now stands, and what the restore brought back.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Restored {
    pub(crate) status: VaultStatus,
    /// Connections the backup held.
    pub(crate) connections: usize,
    /// Of those, how many are marked "check needed" (their refresh token may have rotated since).
    pub(crate) check_needed: usize,
    /// When the backup was taken (Unix seconds).
    pub(crate) taken_at: u64,
    /// Where the store it replaced was moved (nothing is deleted).
    pub(crate) set_aside: Option<String>,
}

impl Restored {
    pub(crate) fn new(status: VaultStatus, report: &tokenkeep_core::store::RestoreReport) -> Self {
        Self {
            status,
            connections: report.connections,
            check_needed: report.check_needed,
            taken_at: report.taken_at,
            set_aside: report.set_aside.as_ref().map(|p| p.display().to_string()),
        }
    }
}

/// Client authentication as the UI names it (`none | basic | post`), in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Auth {
    None,
    Basic,
    Post,
    #[serde(rename = "basic-id")]
    BasicId,
}

impl From<Auth> for ClientAuth {
    fn from(auth: Auth) -> Self {
        match auth {
            Auth::None => Self::None,
            Auth::Basic => Self::ClientSecretBasic,
            Auth::Post => Self::ClientSecretPost,
            Auth::BasicId => Self::ClientIdBasic,
        }
    }
}

impl From<ClientAuth> for Auth {
    fn from(auth: ClientAuth) -> Self {
        match auth {
            ClientAuth::None => Self::None,
            ClientAuth::ClientSecretBasic => Self::Basic,
            ClientAuth::ClientSecretPost => Self::Post,
            ClientAuth::ClientIdBasic => Self::BasicId,
        }
    }
}

/// A provider the user can connect to, or must set up first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Provider {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) origin: &'static str,
    pub(crate) ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) needs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) setup_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    pub(crate) auth: Auth,
    pub(crate) needs_secret: bool,
    pub(crate) has_secret: bool,
    pub(crate) scopes: Vec<String>,
    /// `loopback` (the browser comes back to Tokenkeep) or `paste` (to a registered https page, whose address the
    /// person pastes).
    pub(crate) redirect: &'static str,
    /// For `paste`: the https page configured as the redirect, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) paste_page: Option<String>,
    /// A platform of many servers, before a server is named: set up by adding a server (`add_server`).
    pub(crate) template: bool,
    /// The platform whose mark the window shows; absent for a custom provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<String>,
    /// Runs on the AT Protocol's development client (works without registration; short sessions).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) development_client: bool,
}

impl Provider {
    /// `has_secret`: whether the vault holds a client secret for it (only the vault knows).
    pub(crate) fn new(provider: &ResolvedProvider, has_secret: bool) -> Self {
        let spec = provider.spec();
        let needs_secret = provider.needs_client_secret();
        let needs = match provider.readiness() {
            Readiness::Ready if needs_secret && !has_secret => Some(format!(
                "{} authenticates with a client secret and none is stored: enter it in the provider's settings",
                spec.display_name
            )),
            Readiness::Ready => None,
            Readiness::NeedsClientId { message }
            | Readiness::NeedsRedirectUri { message }
            | Readiness::NeedsInstance { message } => Some(message.clone()),
            _ => Some(format!("{} cannot be connected yet", spec.display_name)),
        };
        Self {
            id: spec.id.to_string(),
            name: spec.display_name.clone(),
            origin: match provider.origin() {
                Origin::BuiltIn => "builtin",
                Origin::Demo => "demo",
                // `Custom`, and any origin a later core adds: defined by the person, not shipped.
                _ => "custom",
            },
            ready: needs.is_none(),
            needs,
            setup_url: provider.setup().map(|s| s.console_url.to_string()),
            redirect_uri: Some(provider.redirect_uri_to_register()),
            client_id: provider.client_id().map(str::to_owned),
            auth: spec.client_auth.into(),
            needs_secret,
            has_secret,
            scopes: spec.scopes.clone(),
            redirect: match spec.redirect {
                RedirectMode::Paste => "paste",
                _ => "loopback",
            },
            paste_page: spec.redirect_uri.as_ref().map(ToString::to_string),
            template: spec.is_template(),
            platform: spec.platform.clone(),
            development_client: provider.uses_development_client(),
        }
    }
}

/// A connection as listed: readable, or damaged (then only its id and what is wrong).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Connection {
    // Boxed: the readable view is much larger than the damaged one.
    Readable(Box<ConnectionView>),
    Damaged { id: String, damaged: String },
}

/// A readable connection.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectionView {
    pub(crate) id: String,
    pub(crate) provider: String,
    pub(crate) provider_name: String,
    pub(crate) account: String,
    pub(crate) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_refresh_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
    /// While `retrying`: when the engine tries again (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retry_at: Option<u64>,
    pub(crate) scopes: Vec<String>,
    /// While `revocation_pending`: how the revocation is going.
    #[serde(skip_serializing_if = "Option::is_none")]
    // Boxed: rare, and it would make every listed connection larger.
    pub(crate) revocation: Option<Box<RevocationView>>,
    /// The platform whose mark the window shows (`youtube`, `x`, …); absent for a custom provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<String>,
    /// The tag of the account's stored picture (`account_picture` returns it); absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) picture: Option<String>,
}

/// A revocation the engine keeps trying after a disconnect (Unix seconds).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevocationView {
    pub(crate) since: u64,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: u64,
    pub(crate) give_up_at: u64,
    /// Where to revoke by hand, if the platform has such a page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) manage_url: Option<String>,
}

impl RevocationView {
    fn new(pending: PendingRevocation, manage_url: Option<String>) -> Self {
        Self {
            since: pending.since,
            attempts: pending.attempts,
            next_attempt_at: pending.next_attempt_at,
            give_up_at: pending.give_up_at,
            manage_url,
        }
    }
}

fn manage_url(catalog: &Catalog, provider: &ProviderId) -> Option<String> {
    catalog
        .get(provider)
        .and_then(|p| p.spec().manage_access_url.as_ref())
        .map(|u| u.to_string())
}

/// The platform a configured provider belongs to, for its mark.
fn platform(catalog: &Catalog, provider: &ProviderId) -> Option<String> {
    catalog.get(provider).and_then(|p| p.spec().platform.clone())
}

/// The name people know a provider by; the id when the provider is no longer configured.
pub(crate) fn provider_name(catalog: &Catalog, provider: &ProviderId) -> String {
    catalog
        .get(provider)
        .map_or_else(|| provider.to_string(), |p| p.spec().display_name.clone())
}

impl ConnectionView {
    pub(crate) fn new(id: ConnectionId, meta: &ConnectionMeta, catalog: &Catalog) -> Self {
        Self {
            id: id.to_hex(),
            provider: meta.provider.to_string(),
            provider_name: provider_name(catalog, &meta.provider),
            account: meta.account.clone(),
            status: status(meta.status),
            expires_at: meta.expires_at,
            last_refresh_at: meta.last_refresh_at,
            last_error: meta.last_error.clone(),
            retry_at: meta.planned_retry(),
            scopes: meta.scopes.clone(),
            revocation: meta
                .revocation
                .map(|r| Box::new(RevocationView::new(r, manage_url(catalog, &meta.provider)))),
            platform: platform(catalog, &meta.provider),
            picture: meta.picture.clone(),
        }
    }
}

impl Connection {
    pub(crate) fn new(id: ConnectionId, meta: &Result<ConnectionMeta, String>, catalog: &Catalog) -> Self {
        match meta {
            Ok(meta) => Self::Readable(Box::new(ConnectionView::new(id, meta, catalog))),
            Err(error) => Self::Damaged {
                id: id.to_hex(),
                damaged: format!(
                    "this connection's record {error}; the rest of the vault is unaffected — disconnect it and \
                     connect the account again"
                ),
            },
        }
    }
}

fn status(status: ConnectionStatus) -> &'static str {
    // The stored names are the IPC names (`connected`, `needs_reconnect`, …), by design.
    status.as_str()
}

/// The result of `remove_provider`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RemovedProvider {
    pub(crate) id: String,
    /// How many accounts were disconnected first.
    pub(crate) disconnected: usize,
    /// A built-in provider whose setup was forgotten: still listed, needing setup.
    pub(crate) setup_forgotten: bool,
}

/// An account's stored picture, ready for an `<img>`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountPicture {
    /// The tag the connection's `picture` names, so the window can cache by it.
    pub(crate) tag: String,
    /// `data:image/png;base64,…`: the bytes were sniffed when fetched, so the type is what they are.
    pub(crate) data_url: String,
}

impl From<ops::StoredPicture> for AccountPicture {
    fn from(picture: ops::StoredPicture) -> Self {
        use base64::Engine as _;
        Self {
            data_url: format!(
                "data:{};base64,{}",
                picture.media_type,
                base64::engine::general_purpose::STANDARD.encode(&picture.bytes)
            ),
            tag: picture.tag,
        }
    }
}

/// The result of `connect`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connected {
    pub(crate) id: String,
    pub(crate) account: String,
    pub(crate) replaced: bool,
}

impl From<&connect::Connected> for Connected {
    fn from(c: &connect::Connected) -> Self {
        Self {
            id: c.id.to_hex(),
            account: c.account.clone(),
            replaced: c.replaced,
        }
    }
}

/// The result of `disconnect`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Disconnected {
    pub(crate) account: String,
    pub(crate) provider: String,
    pub(crate) revocation: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) manage_url: Option<String>,
    /// Set when the revocation failed and the engine keeps trying: the account stays, `revocation_pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<RevocationView>,
}

impl From<DisconnectReport> for Disconnected {
    fn from(report: DisconnectReport) -> Self {
        let url = |u: Option<url::Url>| u.map(String::from);
        let (revocation, detail, manage_url) = match report.revocation {
            Revocation::NotTried { manage_url } => ("not_tried", None, url(manage_url)),
            Revocation::Revoked => ("revoked", None, None),
            Revocation::NotSupported { manage_url } => ("not_supported", None, url(manage_url)),
            Revocation::Failed { reason, manage_url } => ("failed", Some(reason), url(manage_url)),
            Revocation::Skipped { reason } => ("skipped", Some(reason), None),
            // A kind of outcome a later core adds: say the least reassuring thing, access may remain.
            _ => ("failed", None, None),
        };
        Self {
            account: report.account,
            provider: report.provider.to_string(),
            pending: report.pending.map(|p| RevocationView::new(p, manage_url.clone())),
            revocation,
            detail,
            manage_url,
        }
    }
}

/// `{ kind: "access_token" | "refresh_token" | "id_token" }` from the webview.
pub(crate) fn token_kind(name: &str) -> Result<TokenKind, CommandError> {
    TokenKind::from_field(name).ok_or_else(|| {
        CommandError::new(
            crate::error::ErrorCode::Invalid,
            format!("{name:?} is not a token kind: use access_token, refresh_token or id_token"),
        )
    })
}

/// What `inspect` shows: a connection plus what is known about its tokens, never their bytes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Inspection {
    #[serde(flatten)]
    pub(crate) connection: ConnectionView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) subject: Option<String>,
    pub(crate) created_at: u64,
    pub(crate) updated_at: u64,
    pub(crate) key_id: String,
    pub(crate) tokens: Vec<TokenInfo>,
    /// The `tokenkeep api` command line for this connection (none for a provider without an API base).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) api_command: Option<String>,
    /// "bound to a key (DPoP, ES256, thumbprint …)", when the tokens are (the public thumbprint, never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) binding: Option<String>,
}

/// One token in an [`Inspection`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenInfo {
    pub(crate) kind: &'static str,
    pub(crate) present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jwt: Option<Jwt>,
}

/// A JWT's decoded header and claims (no signature).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Jwt {
    pub(crate) header: serde_json::Map<String, serde_json::Value>,
    pub(crate) claims: serde_json::Map<String, serde_json::Value>,
}

impl Inspection {
    pub(crate) fn new(inspection: ops::Inspection, catalog: &Catalog) -> Self {
        let ops::Inspection {
            id,
            meta,
            key_id,
            tokens,
            binding,
        } = inspection;
        let api_command = catalog.get(&meta.provider).and_then(|provider| {
            ops::api::command_line(provider.spec(), &format!("{}:{}", meta.provider, meta.account))
        });
        Self {
            api_command,
            connection: ConnectionView::new(id, &meta, catalog),
            subject: meta.subject,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            key_id: key_id.to_hex(),
            tokens: tokens.into_iter().map(TokenInfo::from).collect(),
            binding: binding.as_ref().map(ops::KeyBinding::describe),
        }
    }
}

impl From<TokenInspection> for TokenInfo {
    fn from(token: TokenInspection) -> Self {
        Self {
            kind: token.kind.field(),
            present: token.is_present(),
            length: token.length,
            jwt: token.jwt.map(|JwtParts { header, claims }| Jwt { header, claims }),
        }
    }
}

/// The result of `reveal`: `{ value }`. The only DTO holding a token; see the module invariant.
#[derive(Debug)]
pub(crate) struct Revealed(pub(crate) SecretString);

impl Serialize for Revealed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("Revealed", 1)?;
        // The user pressed "Reveal" for exactly this value.
        out.serialize_field("value", self.0.dangerously_expose())?;
        out.end()
    }
}

/// The result of `export_key`: `{ keyId, key }`. The only DTO holding key bytes; the person asked, and confirmed.
#[derive(Debug)]
pub(crate) struct ExportedKey(pub(crate) tokenkeep_core::ops::ExportedKey);

impl Serialize for ExportedKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("ExportedKey", 2)?;
        out.serialize_field("keyId", &self.0.key_id().to_hex())?;
        // The person pressed "Show the key" and confirmed.
        out.serialize_field("key", self.0.dangerously_expose())?;
        out.end()
    }
}

/// `connect-progress`: the authorization URL is ready and the browser was asked to open it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectProgress {
    pub(crate) provider: String,
    pub(crate) stage: &'static str,
    pub(crate) url: String,
    /// Whether the browser could be started; when not, the window shows the URL to open by hand.
    pub(crate) opened: bool,
}

/// `connection-removed`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Removed {
    pub(crate) id: String,
}

/// `tray-reconnect`: the person chose an account's Reconnect in the tray menu.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrayReconnect {
    pub(crate) id: String,
}

/// The window's Settings panel: what the person chose, and what this desktop allows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SettingsView {
    pub(crate) start_at_login: bool,
    pub(crate) keep_running: bool,
    pub(crate) notifications: bool,
    pub(crate) clipboard_seconds: u32,
    /// A tray host shows Tokenkeep's icon: without one, closing the window quits (and refreshing stops).
    pub(crate) tray_available: bool,
    /// The autostart entry, as a path to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) autostart_entry: Option<String>,
    /// The clipboard time is fixed by `TOKENKEEP_CLIPBOARD_SECONDS` for this run.
    pub(crate) clipboard_from_env: bool,
}

/// `refresh-paused`: automatic refreshing paused until `until` (Unix seconds), or resumed (`None`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Paused {
    pub(crate) until: Option<u64>,
}

/// `attention`: a connection needs the user.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attention {
    pub(crate) id: String,
    pub(crate) provider: String,
    pub(crate) account: String,
    pub(crate) message: String,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use base64::Engine as _;
    use tokenkeep_core::clock::SystemClock;
    use tokenkeep_core::http::LazyHttp;
    use tokenkeep_core::keys::KeySource;
    use tokenkeep_core::ops::{LocalOps, Operations as _};
    use tokenkeep_core::profile::{Profile, ProfilePaths};
    use tokenkeep_core::provider::config::ProfileConfig;
    use tokenkeep_core::refresh::StatusChange;
    use tokenkeep_core::secret::MasterKey;
    use tokenkeep_core::store::RecordError;
    use tokenkeep_core::store::{PROGRAM_APP, TokenSet, Vault};

    use super::*;

    const ACCESS: &str = "at-VERY-SECRET-access-0001";
    const REFRESH: &str = "rt-VERY-SECRET-refresh-0002";

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// An ID token whose signature segment is recognisable, so a test can prove it never reaches JSON.
    fn id_token() -> String {
        format!(
            "{}.{}.SIGNATURE-SECRET-0003",
            b64(r#"{"alg":"RS256","kid":"key-1"}"#),
            b64(r#"{"sub":"user-42","email":"alice@example.test"}"#)
        )
    }

    fn tokens() -> TokenSet {
        TokenSet {
            access: SecretString::new(ACCESS.into()),
            refresh: Some(SecretString::new(REFRESH.into())),
            id_token: Some(SecretString::new(id_token())),
            dpop_key: None,
        }
    }

    fn assert_no_token(json: &str) {
        let id_token = id_token();
        let signature = id_token.rsplit('.').next().unwrap();
        for secret in [ACCESS, REFRESH, id_token.as_str(), signature] {
            assert!(!json.contains(secret), "a token leaked into {json}");
        }
    }

    fn catalog() -> Catalog {
        Catalog::from_config(&ProfileConfig::default()).unwrap()
    }

    #[test]
    fn connections_and_inspections_carry_no_token_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ProfilePaths::resolve(Profile::parse("test").unwrap(), Some(dir.path().into())).unwrap();
        let key = KeySource::Headless(MasterKey::generate().unwrap());
        let vault = Vault::open(&paths, key, Arc::new(SystemClock), PROGRAM_APP).unwrap();
        let mut meta = ConnectionMeta::new(ProviderId::parse("youtube").unwrap(), "alice@example.test");
        meta.scopes = vec!["openid".into(), "email".into()];
        meta.expires_at = Some(2_000_000_000);
        meta.subject = Some("user-42".into());
        let id = vault.put_connection(meta, &tokens()).unwrap();
        let catalog = catalog();
        let local = LocalOps::new(paths, Arc::new(vault), Arc::new(LazyHttp::new()), Arc::new(SystemClock)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();

        let listed = runtime.block_on(local.run(ops::List {})).unwrap();
        let json = serde_json::to_string(&Connection::new(listed[0].id, &listed[0].meta, &catalog)).unwrap();
        assert_no_token(&json);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["id"], id.to_hex());
        assert_eq!(value["providerName"], "YouTube");
        assert_eq!(value["status"], "connected");
        assert_eq!(value["expiresAt"], 2_000_000_000);
        assert_eq!(value["scopes"], serde_json::json!(["openid", "email"]));
        assert!(value.get("lastError").is_none(), "absent optionals are omitted: {json}");

        let show = ops::Show {
            connection: id.to_hex(),
            reveal: false,
        };
        let inspection = Inspection::new(runtime.block_on(local.run(show)).unwrap().inspection, &catalog);
        let json = serde_json::to_string(&inspection).unwrap();
        assert_no_token(&json);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        // Flattened: the Connection fields sit beside the inspection's own.
        assert_eq!(value["account"], "alice@example.test");
        assert_eq!(value["subject"], "user-42");
        assert_eq!(value["keyId"], local.vault().key_id().to_hex());
        let tokens = value["tokens"].as_array().unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[0]["kind"], "access_token");
        assert_eq!(tokens[0]["length"], ACCESS.len());
        assert!(tokens[0].get("jwt").is_none(), "an opaque token is not decoded");
        assert_eq!(tokens[1]["kind"], "refresh_token");
        assert_eq!(tokens[2]["jwt"]["header"]["kid"], "key-1");
        assert_eq!(tokens[2]["jwt"]["claims"]["sub"], "user-42");
        assert!(value["createdAt"].as_u64().unwrap() > 0);

        // The one exception, on request only.
        let revealed = Revealed(
            runtime
                .block_on(local.reveal(&id.to_hex(), TokenKind::Refresh))
                .unwrap(),
        );
        assert!(!format!("{revealed:?}").contains(REFRESH));
        assert_eq!(
            serde_json::to_value(&revealed).unwrap(),
            serde_json::json!({ "value": REFRESH })
        );
    }

    #[test]
    fn damaged_records_show_only_id_and_problem() {
        let id = ConnectionId::from_bytes([3; 16]);
        let damage = Err(RecordError::Decrypt.to_string());
        let json = serde_json::to_value(Connection::new(id, &damage, &catalog())).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 2, "{json}");
        assert_eq!(json["id"], id.to_hex());
        assert!(json["damaged"].as_str().unwrap().contains("could not be decrypted"));
    }

    #[test]
    fn status_events_become_connections_with_the_announced_state() {
        let change = StatusChange {
            id: ConnectionId::from_bytes([9; 16]),
            meta: ConnectionMeta {
                status: ConnectionStatus::NeedsReconnect,
                last_refresh_at: Some(1_700_000_000),
                last_error: Some("sign in again".into()),
                ..ConnectionMeta::new(ProviderId::parse("gone-provider").unwrap(), "bob")
            },
        };
        let json = serde_json::to_value(ConnectionView::new(change.id, &change.meta, &catalog())).unwrap();
        assert_eq!(json["status"], "needs_reconnect");
        assert_eq!(
            json["providerName"], "gone-provider",
            "an unknown provider shows its id"
        );
        assert_eq!(json["lastRefreshAt"], 1_700_000_000);
        assert_eq!(json["lastError"], "sign in again");
    }

    #[test]
    fn providers_say_what_they_still_need() {
        let catalog = catalog();
        let youtube = catalog.list().find(|p| p.id().as_str() == "youtube").unwrap();
        let json = serde_json::to_value(Provider::new(youtube, false)).unwrap();
        assert_eq!(json["origin"], "builtin");
        assert_eq!(json["ready"], false);
        assert!(json["needs"].as_str().unwrap().contains("client id"), "{json}");
        assert!(json["setupUrl"].as_str().is_some(), "{json}");
        assert!(json.get("clientId").is_none());
        assert!(matches!(json["auth"].as_str(), Some("none" | "basic" | "post")));
    }

    #[test]
    fn revocation_outcomes_use_the_documented_names() {
        let report = |revocation| DisconnectReport {
            provider: ProviderId::parse("demo").unwrap(),
            account: "alice".into(),
            revocation,
            pending: None,
        };
        let manage = url::Url::parse("https://example.test/permissions").unwrap();
        let failed = Disconnected::from(report(Revocation::Failed {
            reason: "offline".into(),
            manage_url: Some(manage.clone()),
        }));
        assert_eq!(
            (failed.revocation, failed.detail.as_deref()),
            ("failed", Some("offline"))
        );
        assert_eq!(failed.manage_url.as_deref(), Some(manage.as_str()));
        assert_eq!(Disconnected::from(report(Revocation::Revoked)).revocation, "revoked");
        let json = serde_json::to_value(Disconnected::from(report(Revocation::NotSupported {
            manage_url: None,
        })))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "account": "alice", "provider": "demo", "revocation": "not_supported" })
        );
        let kept = Disconnected::from(DisconnectReport {
            pending: Some(PendingRevocation {
                since: 100,
                attempts: 1,
                next_attempt_at: 160,
                give_up_at: 604_900,
            }),
            ..report(Revocation::Failed {
                reason: "offline".into(),
                manage_url: Some(manage.clone()),
            })
        });
        assert_eq!(
            serde_json::to_value(kept).unwrap()["pending"],
            serde_json::json!({
                "since": 100, "attempts": 1, "nextAttemptAt": 160, "giveUpAt": 604_900,
                "manageUrl": manage.as_str()
            })
        );
        assert_eq!(
            Disconnected::from(report(Revocation::NotTried { manage_url: None })).revocation,
            "not_tried"
        );
    }
}
