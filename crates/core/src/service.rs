//! The operations both front-ends offer, each one function: the CLI and the app call these and only present the
//! result. Everything here works on resolved inputs (paths, an open vault, platform services) and returns plain
//! data; no function prints, reads the environment or knows about JSON for a UI.

use std::time::Duration;

use url::Url;

use crate::browser::BrowserOpener;
use crate::clock::Clock;
use crate::connect::{self, ConnectError, ConnectObserver, ConnectRequest, Connected};
use crate::http::{HttpClient, SharedHttp};
use crate::oauth::ClientCredentials;
use crate::profile::ProfilePaths;
use crate::provider::catalog::{self, Catalog, CatalogError, ResolvedProvider};
use crate::provider::config::{ConfigError, ProfileConfig};
use crate::provider::discovery::{self, DiscoveryError};
use crate::provider::{ClientAuth, ProviderError, ProviderId};
use crate::secret::{KeyId, SecretString};
use crate::store::{ConnectionId, ConnectionMeta, RecordError, StoreError, TokenKind, Vault};

/// Why an operation failed. Each message says what happened and what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The profile's configuration could not be read or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The provider catalog could not be built.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A provider is unknown or its definition is invalid.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// OpenID discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The vault failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The provider cannot be connected yet.
    #[error("{0}")]
    NotReady(String),
    /// A confidential client has no secret stored.
    #[error(
        "{provider} authenticates with a client secret and none is stored: run `tokenkeep providers add {id} \
         --client-id ID --client-secret-stdin` (or enter it in the app)"
    )]
    MissingClientSecret {
        /// Display name.
        provider: String,
        /// Provider id.
        id: ProviderId,
    },
    /// The request contradicts itself.
    #[error("{0}")]
    Invalid(String),
}

/// What `providers add` should do.
#[derive(Debug)]
pub struct AddProvider {
    /// The provider id: a built-in one (configure it) or a new custom one (then `issuer` is required).
    pub id: ProviderId,
    /// Issuer to discover a custom OpenID provider from (or, for `demo`, the local test peer's issuer).
    pub issuer: Option<Url>,
    /// Name to show for a custom provider (default: the issuer's host).
    pub display_name: Option<String>,
    /// The OAuth client id registered with the platform.
    pub client_id: Option<String>,
    /// The client secret, sealed in the vault (never written to config.toml).
    pub client_secret: Option<SecretString>,
    /// Client authentication method (default: the provider's, or `none` for discovered ones).
    pub auth: Option<ClientAuth>,
    /// Scopes to ask for instead of the defaults.
    pub scopes: Option<Vec<String>>,
}

/// What `providers add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedProvider {
    /// The provider as it now resolves.
    pub provider: ResolvedProvider,
    /// Whether a new custom provider was created (as opposed to settings changed).
    pub created: bool,
    /// Whether a client secret was stored.
    pub secret_stored: bool,
}

/// Loads the profile's provider catalog (built-ins, the demo when configured, custom providers).
pub fn catalog(paths: &ProfilePaths) -> Result<Catalog, ServiceError> {
    Ok(Catalog::load(paths)?)
}

/// Adds a custom OpenID provider by discovery, or configures a built-in one (client id, method, scopes, secret).
/// `vault` is called only when a secret must be stored: it opens the vault (the CLI), or lends one that is already
/// open (`|| Ok(&vault)`: the app, which holds the store's lock for its whole life).
pub async fn add_provider<V: std::borrow::Borrow<Vault>>(
    paths: &ProfilePaths,
    http: &dyn HttpClient,
    vault: impl FnOnce() -> Result<V, StoreError>,
    request: AddProvider,
) -> Result<AddedProvider, ServiceError> {
    let config_path = paths.config_file();
    let mut config = ProfileConfig::load(&config_path)?;
    let id = request.id.clone();
    let is_demo = id.as_str() == catalog::DEMO_ID;
    let builtin = catalog::is_builtin(&id);
    let existing_custom = config.custom_providers().iter().any(|s| s.id == id);
    let mut created = false;
    match (&request.issuer, builtin) {
        (Some(issuer), true) if is_demo => {
            created = config.demo_issuer().is_none();
            config.set_demo_issuer(Some(issuer.clone()))?;
        }
        (Some(_), true) => {
            return Err(ServiceError::Invalid(format!(
                "{id} is a built-in provider: its endpoints are known, so --issuer is not needed (use another name \
                 to add a custom provider)"
            )));
        }
        (Some(issuer), false) => {
            if existing_custom {
                config.remove_custom_provider(&id)?;
            }
            let spec =
                discovery::discover(http, issuer, id.clone(), request.display_name.clone(), request.auth).await?;
            config.add_custom_provider(spec)?;
            created = !existing_custom;
        }
        (None, true) if is_demo && config.demo_issuer().is_none() => {
            return Err(ServiceError::Invalid(
                "demo is the local test provider: give the address of the test server with --issuer \
                 http://127.0.0.1:PORT (`cargo xtask run` starts one and does this for you)"
                    .into(),
            ));
        }
        (None, false) if !existing_custom => {
            return Err(ServiceError::Invalid(format!(
                "{id} is not a known provider: give --issuer URL to add it as a custom OpenID provider"
            )));
        }
        (None, _) => {}
    }
    if let Some(client_id) = &request.client_id {
        if client_id.trim().is_empty() {
            return Err(ServiceError::Invalid("the client id is empty".into()));
        }
        config.set_client(&id, client_id.trim(), request.auth)?;
    } else if request.auth.is_some() && !created {
        return Err(ServiceError::Invalid(
            "--auth needs --client-id (the method belongs to a client)".into(),
        ));
    }
    if let Some(scopes) = request.scopes.clone() {
        config.set_scopes(&id, Some(scopes))?;
    }
    // Validate the whole result before saving anything: a setting that breaks the catalog is refused here.
    let resolved = Catalog::from_config(&config)?.require(&id)?.clone();
    if resolved.needs_client_secret() && request.client_secret.is_none() && request.client_id.is_some() {
        tracing::info!(provider = %id, "the client authenticates with a secret; none was given with this change");
    }
    let mut secret_stored = false;
    if let Some(secret) = &request.client_secret {
        if !resolved.needs_client_secret() {
            return Err(ServiceError::Invalid(format!(
                "{} uses no client authentication (auth none), so a client secret would never be sent: add \
                 --auth basic or --auth post, or leave the secret out",
                resolved.spec().display_name
            )));
        }
        std::borrow::Borrow::<Vault>::borrow(&vault()?).set_client_secret(id.as_str(), secret)?;
        secret_stored = true;
    }
    config.save(&config_path)?;
    tracing::info!(provider = %id, created, secret_stored, "provider settings saved");
    Ok(AddedProvider {
        provider: resolved,
        created,
        secret_stored,
    })
}

/// The OAuth client for `provider`: its configured id and, for confidential clients, the secret from the vault.
pub fn client_credentials(vault: &Vault, provider: &ResolvedProvider) -> Result<ClientCredentials, ServiceError> {
    let spec = provider.spec();
    let client_id = match (provider.readiness(), provider.client_id()) {
        (catalog::Readiness::Ready, Some(id)) => id.to_owned(),
        (catalog::Readiness::NeedsClientId { message }, _) => return Err(ServiceError::NotReady(message.clone())),
        _ => {
            return Err(ServiceError::NotReady(format!(
                "{} has no client id configured",
                spec.display_name
            )));
        }
    };
    let client_secret = if provider.needs_client_secret() {
        Some(
            vault
                .client_secret(spec.id.as_str())?
                .ok_or_else(|| ServiceError::MissingClientSecret {
                    provider: spec.display_name.clone(),
                    id: spec.id.clone(),
                })?,
        )
    } else {
        None
    };
    Ok(ClientCredentials {
        client_id,
        client_secret,
    })
}

/// Options of [`connect_account`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Scopes instead of the provider's configured ones.
    pub scopes: Option<Vec<String>>,
    /// How long to wait for the browser.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            scopes: None,
            timeout: crate::oauth::DEFAULT_TIMEOUT,
        }
    }
}

/// Connects an account of `provider` through the system browser and seals its tokens.
#[allow(clippy::too_many_arguments)] // the platform services are passed explicitly, on purpose
pub async fn connect_account(
    catalog: &Catalog,
    vault: &Vault,
    http: &SharedHttp,
    browser: &dyn BrowserOpener,
    clock: &dyn Clock,
    provider: &ProviderId,
    options: ConnectOptions,
    observer: &mut dyn ConnectObserver,
) -> Result<Connected, ServiceError> {
    let provider = catalog.require(provider)?;
    let credentials = client_credentials(vault, provider)?;
    let request = ConnectRequest {
        spec: provider.spec(),
        credentials,
        scopes: options.scopes,
        timeout: options.timeout,
    };
    Ok(connect::connect(vault, http, browser, clock, request, observer).await?)
}

/// One connection as listed: its metadata, or why its record cannot be read.
#[derive(Debug, Clone)]
pub struct ConnectionEntry {
    /// The connection id.
    pub id: ConnectionId,
    /// The metadata, or the record's problem.
    pub meta: Result<ConnectionMeta, RecordError>,
}

/// Every connection, ordered by provider then account (damaged records last, by id). Offline: no network.
pub fn list_connections(vault: &Vault) -> Result<Vec<ConnectionEntry>, ServiceError> {
    let mut entries: Vec<ConnectionEntry> = vault
        .list()?
        .into_iter()
        .map(|(id, meta)| ConnectionEntry { id, meta })
        .collect();
    entries.sort_by(|a, b| match (&a.meta, &b.meta) {
        (Ok(x), Ok(y)) => {
            (&x.provider, x.account.to_lowercase(), a.id).cmp(&(&y.provider, y.account.to_lowercase(), b.id))
        }
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.id.cmp(&b.id),
    });
    Ok(entries)
}

/// Finds a connection by its id (32 hex digits) or as `provider:account` (the account compared without case).
pub fn find_connection(vault: &Vault, query: &str) -> Result<ConnectionId, ServiceError> {
    if let Ok(id) = query.parse::<ConnectionId>() {
        return match vault.get_meta(id) {
            Ok(_) | Err(StoreError::Record { .. }) => Ok(id),
            Err(e) => Err(e.into()),
        };
    }
    let Some((provider, account)) = query.split_once(':') else {
        return Err(ServiceError::Invalid(format!(
            "{query:?} is neither a connection id (32 hex digits) nor provider:account; see `tokenkeep list`"
        )));
    };
    let matches: Vec<ConnectionId> = vault
        .list()?
        .into_iter()
        .filter_map(|(id, meta)| {
            let meta = meta.ok()?;
            (meta.provider == provider && meta.account.eq_ignore_ascii_case(account)).then_some(id)
        })
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => Err(ServiceError::Invalid(format!(
            "no connection {query:?}; see `tokenkeep list`"
        ))),
        _ => Err(ServiceError::Invalid(format!(
            "{query:?} matches {} connections; use the connection id from `tokenkeep list`",
            matches.len()
        ))),
    }
}

/// A refresher over `vault` with the profile's providers and the default timing rules.
pub fn refresher(
    paths: &ProfilePaths,
    vault: std::sync::Arc<Vault>,
    http: SharedHttp,
    clock: std::sync::Arc<dyn Clock>,
) -> Result<std::sync::Arc<crate::refresh::Refresher>, ServiceError> {
    let catalog = catalog(paths)?;
    Ok(std::sync::Arc::new(crate::refresh::Refresher::new(
        vault,
        catalog,
        http,
        clock,
        crate::refresh::RefreshPolicy::default(),
    )))
}

/// One token of a connection as [`inspect`] describes it: never its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInspection {
    /// Which token.
    pub kind: TokenKind,
    /// Its length in bytes, or `None` when the connection has no token of this kind.
    pub length: Option<usize>,
    /// Its header and claims, when it is a JWT. The signature is neither checked nor returned.
    pub jwt: Option<JwtParts>,
}

impl TokenInspection {
    /// Whether the connection has a token of this kind.
    pub fn is_present(&self) -> bool {
        self.length.is_some()
    }
}

/// The decoded header and claims of a JWT (RFC 7519): what a person may read in a token without being able to
/// reuse it, since the signature is left out.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtParts {
    /// The JOSE header (`alg`, `kid`, `typ`, …).
    pub header: serde_json::Map<String, serde_json::Value>,
    /// The claims (`iss`, `sub`, `exp`, …).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// Everything known about a connection except its token bytes. Offline: reads the vault only.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The connection.
    pub id: ConnectionId,
    /// Its metadata.
    pub meta: ConnectionMeta,
    /// The id of the master key the store is sealed with.
    pub key_id: KeyId,
    /// One entry per [`TokenKind`], in [`TokenKind::ALL`] order, present or not.
    pub tokens: Vec<TokenInspection>,
}

/// Describes connection `id` for a person: its metadata, which tokens it holds and how long they are, and the
/// header and claims of those that are JWTs. No token byte leaves this function; nothing goes to the network.
pub fn inspect(vault: &Vault, id: ConnectionId) -> Result<Inspection, ServiceError> {
    let meta = vault.get_meta(id)?;
    let tokens = vault.tokens(id)?;
    let tokens = TokenKind::ALL
        .into_iter()
        .map(|kind| {
            let token = tokens.get(kind);
            TokenInspection {
                kind,
                length: token.map(SecretString::len),
                jwt: token.and_then(|t| decode_jwt(t.dangerously_expose())),
            }
        })
        .collect();
    Ok(Inspection {
        id,
        meta,
        key_id: vault.key_id(),
        tokens,
    })
}

/// The token of `kind` of connection `id`, for a person who asked to see it (the app's "Reveal"). Offline: the
/// stored value, even when it has expired. The caller decides whom to show it to and logs that it did.
pub fn reveal(vault: &Vault, id: ConnectionId, kind: TokenKind) -> Result<SecretString, ServiceError> {
    let tokens = vault.tokens(id)?;
    let token = match kind {
        TokenKind::Access => Some(tokens.access),
        TokenKind::Refresh => tokens.refresh,
        TokenKind::Id => tokens.id_token,
    };
    token.ok_or_else(|| {
        ServiceError::Invalid(format!(
            "this connection has no {}: the provider did not issue one",
            kind.field().replace('_', " ")
        ))
    })
}

/// The header and claims of `token` if it is a JWS in compact form: three dot-separated base64url segments whose
/// first two decode to JSON objects. Anything else (opaque tokens, JWEs with five segments) is `None`. The
/// signature segment is only checked to be base64url (it may be empty, as in an unsecured JWT).
fn decode_jwt(token: &str) -> Option<JwtParts> {
    use base64::Engine as _;

    fn object(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        // IMPORTANT: base64url without padding per RFC 7515 §2, but tolerate trailing `=` that some issuers add.
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment.trim_end_matches('='))
            .ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    }

    let mut segments = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return None;
    };
    let base64url = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=');
    if !signature.bytes().all(base64url) {
        return None;
    }
    Some(JwtParts {
        header: object(header)?,
        claims: object(claims)?,
    })
}

#[cfg(test)]
mod inspect_tests {
    use std::sync::Arc;

    use base64::Engine as _;

    use super::*;
    use crate::clock::SystemClock;
    use crate::keys::KeySource;
    use crate::profile::Profile;
    use crate::secret::MasterKey;
    use crate::store::{PROGRAM_CLI, TokenSet};

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn jwts_are_decoded_and_everything_else_is_not() {
        let jwt = format!("{}.{}.c2lnbmF0dXJl", b64(r#"{"alg":"RS256"}"#), b64(r#"{"sub":"42"}"#));
        let parts = decode_jwt(&jwt).unwrap();
        assert_eq!(parts.header["alg"], "RS256");
        assert_eq!(parts.claims["sub"], "42");
        // Unsecured JWTs have an empty signature; issuers sometimes pad.
        assert!(decode_jwt(&format!("{}=.{}.", b64(r#"{"alg":"none"}"#), b64("{}"))).is_some());

        let not_jwts = [
            "opaque-access-token".to_owned(),
            format!("{}.{}", b64("{}"), b64("{}")),
            format!("{}.{}.sig.extra.segments", b64("{}"), b64("{}")),
            format!("{}.{}.sig", b64("[1]"), b64("{}")),
            format!("{}.{}.sig", b64("{}"), b64("\"claims\"")),
            format!("{}.not base64!.sig", b64("{}")),
            format!("{}.{}.sig/with+std", b64("{}"), b64("{}")),
        ];
        for token in &not_jwts {
            assert_eq!(decode_jwt(token), None, "{token}");
        }
    }

    #[test]
    fn inspect_describes_tokens_without_their_bytes_and_reveal_returns_them() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ProfilePaths::resolve(Profile::parse("test").unwrap(), Some(dir.path().into())).unwrap();
        let vault = Vault::open(
            &paths,
            KeySource::Headless(MasterKey::generate().unwrap()),
            Arc::new(SystemClock),
            PROGRAM_CLI,
        )
        .unwrap();
        let id_token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"ES256","kid":"k1"}"#),
            b64(r#"{"sub":"s-1"}"#)
        );
        let tokens = TokenSet {
            access: SecretString::new("opaque-access-SECRET".into()),
            refresh: None,
            id_token: Some(SecretString::new(id_token.clone())),
        };
        let id = vault
            .put_connection(ConnectionMeta::new("demo", "alice"), &tokens)
            .unwrap();

        let inspection = inspect(&vault, id).unwrap();
        assert_eq!(inspection.meta.account, "alice");
        assert_eq!(inspection.key_id, vault.key_id());
        let [access, refresh, id_tok] = inspection.tokens.as_slice() else {
            panic!("one entry per kind: {inspection:?}");
        };
        assert_eq!(
            (access.kind, access.length, &access.jwt),
            (TokenKind::Access, Some(20), &None)
        );
        assert!(!refresh.is_present() && refresh.kind == TokenKind::Refresh);
        assert_eq!(id_tok.length, Some(id_token.len()));
        assert_eq!(id_tok.jwt.as_ref().unwrap().header["kid"], "k1");
        assert!(!format!("{inspection:?}").contains("SECRET"));

        assert_eq!(
            reveal(&vault, id, TokenKind::Access).unwrap().dangerously_expose(),
            "opaque-access-SECRET"
        );
        assert!(matches!(
            reveal(&vault, id, TokenKind::Refresh),
            Err(ServiceError::Invalid(_))
        ));
    }
}

/// One sealed record as `tokenkeep export --envelopes` prints it: where it lives, the AAD it is bound to and its
/// envelope exactly as stored — no plaintext. Enough for an independent decoder with the master key
/// (`docs/FORMAT.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedEnvelope {
    /// The profile (part of the AAD).
    pub profile: String,
    /// The tree.
    pub tree: String,
    /// The record id (16 bytes).
    pub record_id: [u8; crate::store::CONNECTION_ID_LEN],
    /// The field.
    pub field: String,
    /// The key id in the envelope's header, when the header is readable.
    pub key_id: Option<crate::secret::KeyId>,
    /// The AAD the envelope is bound to (`None` when its header is unreadable).
    pub aad: Option<Vec<u8>>,
    /// The envelope bytes as stored.
    pub envelope: Vec<u8>,
}

/// Every sealed record with its AAD, for audits and independent decryption. Offline; decrypts nothing.
pub fn export_envelopes(vault: &Vault, profile: &str) -> Result<Vec<ExportedEnvelope>, ServiceError> {
    Ok(vault
        .raw_records()?
        .into_iter()
        .map(|raw| {
            let header = crate::envelope::peek_header(&raw.envelope).ok();
            let aad = header.map(|h| {
                crate::envelope::aad(
                    &crate::envelope::RecordLocation {
                        profile,
                        tree: &raw.tree,
                        record_id: raw.record_id.as_bytes(),
                        field: &raw.field,
                    },
                    &h,
                )
            });
            ExportedEnvelope {
                profile: profile.to_owned(),
                tree: raw.tree,
                record_id: *raw.record_id.as_bytes(),
                field: raw.field,
                key_id: header.map(|h| h.key_id),
                aad,
                envelope: raw.envelope,
            }
        })
        .collect())
}
