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
use crate::secret::SecretString;
use crate::store::{ConnectionId, ConnectionMeta, RecordError, StoreError, Vault};

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
/// `vault` is opened only when a secret must be stored.
pub async fn add_provider(
    paths: &ProfilePaths,
    http: &dyn HttpClient,
    vault: impl FnOnce() -> Result<Vault, StoreError>,
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
        (Some(issuer), true) if is_demo => config.set_demo_issuer(Some(issuer.clone()))?,
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
        vault()?.set_client_secret(id.as_str(), secret)?;
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
