//! The providers a profile can connect to: its catalog, and adding or configuring one (`providers add`).
//!
//! These work on the profile's `config.toml` and need the vault only to seal a client secret, so the CLI can
//! list and configure providers while the app holds the store.

use url::Url;

use super::OpError;
use crate::http::HttpClient;
use crate::profile::ProfilePaths;
use crate::provider::catalog::{Catalog, ResolvedProvider};
use crate::provider::config::ProfileConfig;
use crate::provider::{ClientAuth, DpopUse, Par, ProviderId, builtin, discovery, instance};
use crate::refresh::IfRevocationFails;
use crate::secret::SecretString;
use crate::store::{StoreError, Vault};

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
    /// The https page registered with the platform, for platforms whose redirect is pasted back.
    pub redirect_uri: Option<Url>,
    /// For a platform of many servers (`id` names its template, `mastodon`): the person's server, where Tokenkeep
    /// registers itself; the server becomes a provider of its own.
    pub instance: Option<String>,
    /// For a custom provider: more hosts its access tokens are for (`tokenkeep api` sends them there too), on
    /// top of its issuer's and userinfo endpoint's.
    pub api_hosts: Vec<String>,
    /// For a discovered provider: never push authorization requests (RFC 9126), even when the server takes them.
    pub no_par: bool,
    /// For a discovered provider: keep bearer tokens, even when the server offers to bind them to a key (DPoP),
    /// so that `tokenkeep token` and `exec` can hand them out.
    pub no_dpop: bool,
    /// An AT Protocol account (a handle or DID) or server whose authorization server is not Bluesky's: the new
    /// provider `id` is that server, on the `bluesky` definition (see [`crate::provider::atproto`]).
    pub atproto: Option<String>,
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
pub fn catalog(paths: &ProfilePaths) -> Result<Catalog, OpError> {
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
) -> Result<AddedProvider, OpError> {
    if let Some(server) = request.instance.clone() {
        return add_instance(paths, http, vault, request, &server).await;
    }
    let config_path = paths.config_file();
    let mut config = ProfileConfig::load(&config_path)?;
    let id = request.id.clone();
    if Catalog::from_config(&config)?
        .get(&id)
        .is_some_and(|p| p.spec().is_template())
    {
        return Err(OpError::Invalid(format!(
            "{id} runs on many servers: name yours with --instance (for example `tokenkeep providers add {id} \
             --instance mastodon.social`); Tokenkeep registers itself there"
        )));
    }
    let is_demo = id.as_str() == builtin::DEMO_ID;
    let builtin = builtin::is_builtin(&id);
    let existing_custom = config.custom_providers().iter().any(|s| s.id == id);
    let mut created = false;
    match (&request.issuer, builtin) {
        (Some(issuer), true) if is_demo => {
            created = config.demo_issuer().is_none();
            config.set_demo_issuer(Some(issuer.clone()))?;
        }
        (Some(_), true) => {
            return Err(OpError::Invalid(format!(
                "{id} is a built-in provider: its endpoints are known, so --issuer is not needed (use another name \
                 to add a custom provider)"
            )));
        }
        (Some(issuer), false) => {
            if existing_custom {
                config.remove_custom_provider(&id)?;
            }
            let mut spec =
                discovery::discover(http, issuer, id.clone(), request.display_name.clone(), request.auth).await?;
            if request.no_par {
                if spec.par == Par::Required {
                    return Err(OpError::Invalid(format!(
                        "{issuer} requires pushed authorization requests (RFC 9126): --no-par cannot turn them off"
                    )));
                }
                spec.par = Par::Off;
            }
            if request.no_dpop {
                spec.dpop = DpopUse::Off;
            }
            config.add_custom_provider(spec)?;
            created = !existing_custom;
        }
        (None, true) if is_demo && config.demo_issuer().is_none() => {
            return Err(OpError::Invalid(
                "demo is the local test provider: give the address of the test server with --issuer \
                 http://127.0.0.1:PORT (`cargo xtask run` starts one and does this for you)"
                    .into(),
            ));
        }
        (None, false) if !existing_custom && request.atproto.is_none() => {
            return Err(OpError::Invalid(format!(
                "{id} is not a known provider: give --issuer URL to add it as a custom OpenID provider"
            )));
        }
        (None, _) => {}
    }
    if let Some(typed) = &request.atproto {
        if builtin || request.issuer.is_some() {
            return Err(OpError::Invalid(
                "--atproto adds a server of its own: give it a new name, and no --issuer".into(),
            ));
        }
        if existing_custom {
            config.remove_custom_provider(&id)?;
        }
        // The `bluesky` definition as this profile has it (an imported override included).
        let template = Catalog::from_config(&config)?
            .list()
            .map(|p| p.spec().clone())
            .find(|spec| spec.atproto.is_some() && spec.instance.is_none())
            .ok_or_else(|| OpError::Internal("no AT Protocol definition is built in".into()))?;
        config.add_custom_provider(
            atproto_provider(http, &template, &id, request.display_name.as_deref(), typed).await?,
        )?;
        created = !existing_custom;
    }
    if (request.no_par || request.no_dpop) && (request.issuer.is_none() || builtin) {
        return Err(OpError::Invalid(
            "--no-par and --no-dpop apply to a custom provider discovered from its --issuer".into(),
        ));
    }
    if !request.api_hosts.is_empty() {
        config.add_api_hosts(&id, &request.api_hosts)?;
    }
    if let Some(client_id) = &request.client_id {
        if client_id.trim().is_empty() {
            return Err(OpError::Invalid("the client id is empty".into()));
        }
        config.set_client(&id, client_id.trim(), request.auth)?;
    } else if request.auth.is_some() && !created {
        return Err(OpError::Invalid(
            "--auth needs --client-id (the method belongs to a client)".into(),
        ));
    }
    if let Some(scopes) = request.scopes.clone() {
        config.set_scopes(&id, Some(scopes))?;
    }
    if let Some(uri) = request.redirect_uri.clone() {
        config.set_redirect_uri(&id, uri)?;
    }
    // Validate the whole result before saving anything: a setting that breaks the catalog is refused here.
    let resolved = Catalog::from_config(&config)?.require(&id)?.clone();
    if resolved.needs_client_secret() && request.client_secret.is_none() && request.client_id.is_some() {
        tracing::info!(provider = %id, "the client authenticates with a secret; none was given with this change");
    }
    let mut secret_stored = false;
    if let Some(secret) = &request.client_secret {
        if !resolved.needs_client_secret() {
            return Err(OpError::Invalid(format!(
                "{} uses no client authentication (auth none), so a client secret would never be sent: add \
                 --auth basic or --auth post, or leave the secret out",
                resolved.spec().display_name
            )));
        }
        std::borrow::Borrow::<Vault>::borrow(&vault()?).set_client_secret(&id, secret)?;
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

/// `providers add TEMPLATE --instance SERVER`: registers Tokenkeep at the server (see [`instance::register`]) and
/// adds the server as a provider of its own, its client id in config.toml and its secret in the vault. Nothing is
/// kept unless the registration succeeded; a server already added is refused (registering again would strand the
/// connections made with the first client).
async fn add_instance<V: std::borrow::Borrow<Vault>>(
    paths: &ProfilePaths,
    http: &dyn HttpClient,
    vault: impl FnOnce() -> Result<V, StoreError>,
    request: AddProvider,
    server: &str,
) -> Result<AddedProvider, OpError> {
    if request.client_id.is_some()
        || request.client_secret.is_some()
        || request.auth.is_some()
        || request.issuer.is_some()
        || request.redirect_uri.is_some()
        || request.display_name.is_some()
        || !request.api_hosts.is_empty()
    {
        return Err(OpError::Invalid(
            "--instance registers Tokenkeep at the server, which issues the client itself: leave out --client-id, \
             --client-secret-stdin, --auth, --issuer, --redirect-uri, --display-name and --api-host"
                .into(),
        ));
    }
    let config_path = paths.config_file();
    let mut config = ProfileConfig::load(&config_path)?;
    let catalog = Catalog::from_config(&config)?;
    let template = catalog.require(&request.id)?;
    if !template.spec().is_template() {
        return Err(OpError::Invalid(format!(
            "{} has one server: --instance is for platforms that run on many (mastodon)",
            template.spec().display_name
        )));
    }
    let server = instance::server_origin(server)?;
    let id = instance::provider_id(&server)?;
    if let Some(existing) = catalog.get(&id) {
        return Err(OpError::Invalid(format!(
            "{server} is already added, as {} (provider {id}): connect with `tokenkeep connect {id}`; to register \
             Tokenkeep there again, remove it first (`tokenkeep providers remove {id}`)",
            existing.spec().display_name
        )));
    }
    if let Some(scopes) = &request.scopes {
        crate::provider::config::check_scopes(scopes).map_err(OpError::Invalid)?;
    }
    let registration = instance::register(http, template.spec(), &server, id.clone(), request.scopes).await?;
    config.add_custom_provider(registration.spec)?;
    config.set_client(&id, &registration.client_id, None)?;
    let resolved = Catalog::from_config(&config)?.require(&id)?.clone();
    // The secret first: a saved provider without it could not sign in, a sealed secret without a provider is inert
    // (and replaced if the server is added again).
    std::borrow::Borrow::<Vault>::borrow(&vault()?).set_client_secret(&id, &registration.client_secret)?;
    config.save(&config_path)?;
    tracing::info!(provider = %id, "server added");
    Ok(AddedProvider {
        provider: resolved,
        created: true,
        secret_stored: true,
    })
}

/// What `providers import` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedProvider {
    /// The provider as it now resolves.
    pub provider: ResolvedProvider,
    /// Added, replaced, or overriding a built-in.
    pub how: crate::provider::config::Imported,
}

/// Adds or replaces a provider from a definition in the catalog's own TOML format (`name` names the file in
/// messages). The whole profile is validated with it before anything is written: a definition that does not
/// parse, uses plain http off loopback, or breaks the catalog leaves `config.toml` exactly as it was.
pub fn import_provider(paths: &ProfilePaths, name: &str, text: &str) -> Result<ImportedProvider, OpError> {
    let (spec, _setup) = builtin::parse_definition(name, text)?;
    let id = spec.id.clone();
    let config_path = paths.config_file();
    let mut config = ProfileConfig::load(&config_path)?;
    let how = config.put_custom_provider(spec)?;
    let provider = Catalog::from_config(&config)?.require(&id)?.clone();
    config.save(&config_path)?;
    tracing::info!(provider = %id, ?how, "provider imported");
    Ok(ImportedProvider { provider, how })
}

/// A provider's definition in the catalog's TOML format: a built-in's file as shipped (comments and `[setup]`
/// included), a custom provider's definition as stored, the demo's as resolved.
pub fn export_provider(paths: &ProfilePaths, id: &ProviderId) -> Result<String, OpError> {
    let config = ProfileConfig::load(&paths.config_file())?;
    if let Some(custom) = config.custom_provider(id) {
        return Ok(custom.to_toml()?);
    }
    if let Some(text) = builtin::source(id) {
        return Ok(text.to_owned());
    }
    let catalog = Catalog::from_config(&config)?;
    Ok(catalog.require(id)?.spec().to_toml()?)
}

/// A provider for the AT Protocol authorization server of `typed` (a handle, a DID or a server): the `bluesky`
/// definition on that server's endpoints, from its checked metadata, named `id`.
async fn atproto_provider(
    http: &dyn crate::http::HttpClient,
    template: &crate::provider::ProviderSpec,
    id: &ProviderId,
    display_name: Option<&str>,
    typed: &str,
) -> Result<crate::provider::ProviderSpec, OpError> {
    use crate::provider::atproto;
    let plc = &template.atproto.as_ref().expect("found by it").plc_directory;
    let hint = atproto::AccountHint::parse(typed).map_err(|e| OpError::Invalid(e.to_string()))?;
    let (_, server) = atproto::resolve(http, &hint, plc)
        .await
        .map_err(|e| OpError::Invalid(e.to_string()))?;
    let found = atproto::authorization_server(http, &server)
        .await
        .map_err(|e| OpError::Invalid(e.to_string()))?;
    let host = found.issuer.host_str().unwrap_or_default().to_owned();
    let mut spec = template.clone();
    spec.id = id.clone();
    spec.display_name = display_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(|| format!("{} ({host})", template.display_name), str::to_owned);
    spec.issuer = Some(found.issuer.as_str().trim_end_matches('/').to_owned());
    spec.authorization_endpoint = found.authorization_endpoint;
    spec.token_endpoint = found.token_endpoint;
    spec.pushed_authorization_request_endpoint = Some(found.pushed_authorization_request_endpoint);
    spec.revocation_endpoint = found.revocation_endpoint;
    spec.manage_access_url = None;
    spec.api_base = Some(found.issuer.clone());
    spec.api_hosts = vec![host];
    spec.validate()?;
    Ok(spec)
}

/// The client-metadata document a person or team hosts at `client_id` (an https URL) to use their own atproto
/// client instead of the development one (atproto "OAuth" spec, "Client ID Metadata Document"): a native, public
/// client with DPoP-bound tokens and the loopback redirect, asking for the provider's scopes. Pretty JSON.
pub fn client_metadata(paths: &ProfilePaths, id: &ProviderId, client_id: &Url) -> Result<String, OpError> {
    let catalog = catalog(paths)?;
    let spec = catalog.require(id)?.spec();
    if spec.atproto.is_none() {
        return Err(OpError::Invalid(format!(
            "{} is not on the AT Protocol: its clients are registered with the platform, not described by a document",
            spec.display_name
        )));
    }
    if client_id.scheme() != "https" || client_id.host_str().is_none() || client_id.fragment().is_some() {
        return Err(OpError::Invalid(
            "the client id is the https address the document will be served at (https://example.com/client-metadata.json)".into(),
        ));
    }
    let redirect = format!("http://{}{}", spec.loopback_host, spec.redirect_path);
    let document = serde_json::json!({
        "client_id": client_id.as_str(),
        "client_name": "Tokenkeep",
        "client_uri": client_id.origin().ascii_serialization(),
        "application_type": "native",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": [redirect],
        "scope": spec.scopes.join(" "),
        "token_endpoint_auth_method": "none",
        "dpop_bound_access_tokens": true,
    });
    Ok(serde_json::to_string_pretty(&document).expect("plain data serializes"))
}

/// Removes a custom provider (an imported override of a built-in gives the built-in back), or forgets a built-in
/// one's setup (its client id and method, and its sealed client secret: it needs setting up again; the built-in
/// definition stays). Refused while connections use it, unless `with_connections`: then each is disconnected first
/// (revoked at the provider, deleted), through the engine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoveProvider {
    /// The provider.
    pub id: ProviderId,
    /// Disconnect its connections first instead of refusing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_connections: bool,
}

/// What [`RemoveProvider`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemovedProvider {
    /// The provider.
    pub id: ProviderId,
    /// The connections disconnected first.
    pub disconnected: Vec<crate::refresh::DisconnectReport>,
    /// A built-in provider whose setup was forgotten (it is still listed, needing setup), rather than removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub setup_forgotten: bool,
}

super::wire::plain_reply!(RemovedProvider);

impl super::Op for RemoveProvider {
    type Output = RemovedProvider;

    async fn run(self, local: &super::LocalOps) -> Result<Self::Output, OpError> {
        let config_path = local.paths().config_file();
        let mut config = ProfileConfig::load(&config_path)?;
        let forget_setup = config.custom_provider(&self.id).is_none() && builtin::is_builtin(&self.id);
        if forget_setup {
            let has_secret = local.has_client_secret(&self.id)?;
            if config.settings(&self.id).is_none_or(|s| s.client_id.is_none()) && !has_secret {
                return Err(OpError::Invalid(format!(
                    "{} is a built-in provider that is not set up: there is nothing to remove",
                    self.id
                )));
            }
        } else if config.custom_provider(&self.id).is_none() {
            // The refusal the config gives (unknown), before anything is disconnected.
            config.remove_custom_provider(&self.id)?;
        }
        let id = self.id.clone();
        let using: Vec<crate::store::ConnectionId> = local
            .blocking(move |vault| {
                Ok(vault
                    .list()?
                    .into_iter()
                    .filter_map(|(cid, meta)| meta.ok().filter(|m| m.provider == id).map(|_| cid))
                    .collect())
            })
            .await?;
        if !using.is_empty() && !self.with_connections {
            return Err(OpError::Invalid(format!(
                "{} connection(s) use {}: disconnect them first, or remove it with --with-connections (each is then \
                 revoked at the provider and deleted)",
                using.len(),
                self.id
            )));
        }
        let mut disconnected = Vec::new();
        for cid in using {
            // The provider's client goes with it, so a revocation that fails now could never be retried.
            disconnected.push(local.engine().disconnect(cid, IfRevocationFails::DeleteNow).await?);
        }
        let mut config = ProfileConfig::load(&config_path)?;
        if forget_setup {
            config.clear_client(&self.id);
        } else {
            config.remove_custom_provider(&self.id)?;
        }
        config.save(&config_path)?;
        // A custom provider's secret goes too: a provider of the same id added later is another registration.
        let id = self.id.clone();
        local
            .blocking(move |vault| Ok(vault.delete_client_secret(&id)?))
            .await?;
        local.reload_providers()?;
        tracing::info!(provider = %self.id, disconnected = disconnected.len(), forget_setup, "provider removed");
        Ok(RemovedProvider {
            id: self.id,
            disconnected,
            setup_forgotten: forget_setup,
        })
    }
}
