//! The built-in provider catalog and the user's custom providers.
//!
//! The built-in definitions come from [`super::builtin`]. `demo.toml` is a template: its `{issuer}` placeholders
//! are filled from the profile's `[demo] issuer` (see [`demo_spec`]).
//!
//! [`Catalog`] is the resolved view that everything else reads: built-ins, the demo provider when an issuer is
//! configured, and custom providers, each with the person's settings applied and a [`Readiness`] that says whether
//! it can be connected or what is missing. Like ripgrep's `HiArgs`, it is built once from the configuration and
//! only the resolved form travels further.
//!
//! **Invariant:** every [`ResolvedProvider`] holds a spec that passed [`ProviderSpec::validate`] *after* the
//! person's settings were applied.

use url::Url;

use super::builtin::{self, DEMO_ID, ISSUER_PLACEHOLDER, Setup};
use super::config::{self, ConfigError, ProfileConfig, ProviderSettings};
use super::{IdentitySource, ProviderError, ProviderId, ProviderSpec, RedirectMode};
use crate::profile::ProfilePaths;

/// Errors building the catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The profile's configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A provider's settings make its definition invalid (for example scopes that drop `openid`).
    #[error("provider {provider}: {message} (change it in Tokenkeep, or under [providers.{provider}] in config.toml)")]
    InvalidSettings {
        /// The provider.
        provider: ProviderId,
        /// What is wrong.
        message: String,
    },
    /// The configured demo issuer cannot be used.
    #[error("the demo provider cannot use issuer {issuer}: {message}")]
    DemoIssuer {
        /// The configured issuer.
        issuer: String,
        /// What is wrong.
        message: String,
    },
}

/// Where a resolved provider's definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Compiled into Tokenkeep.
    BuiltIn,
    /// The local demo provider, from the template and the configured issuer.
    Demo,
    /// Added by the person (`[[custom_provider]]` in config.toml).
    Custom,
}

/// Whether a provider can be connected now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// Everything the definition needs is there. (A client secret, when [`ResolvedProvider::needs_client_secret`],
    /// lives in the vault and is checked by whoever holds the vault.)
    Ready,
    /// No client id yet; `message` says what to register, where, and with which redirect URI.
    NeedsClientId {
        /// A sentence for people.
        message: String,
    },
    /// The platform redirects only to an https page, and none is set; `message` says what to do.
    NeedsRedirectUri {
        /// A sentence for people.
        message: String,
    },
    /// A template of a platform that runs on many servers (Mastodon): the person names their server, and
    /// Tokenkeep registers there (`providers add ID --instance URL`), which adds that server as a provider.
    NeedsInstance {
        /// A sentence for people.
        message: String,
    },
}

impl Readiness {
    /// What is missing, in words; `None` when ready.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Ready => None,
            Self::NeedsClientId { message } | Self::NeedsRedirectUri { message } | Self::NeedsInstance { message } => {
                Some(message)
            }
        }
    }
}

/// A provider with the person's settings applied: what the OAuth flow and the UI read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedProvider {
    spec: ProviderSpec,
    origin: Origin,
    setup: Option<Setup>,
    readiness: Readiness,
}

impl ResolvedProvider {
    fn new(spec: ProviderSpec, origin: Origin, setup: Option<Setup>) -> Self {
        let readiness = match &spec.client_id {
            _ if spec.is_template() => Readiness::NeedsInstance {
                message: format!(
                    "{name} runs on many servers: add yours (`tokenkeep providers add {id} --instance \
                     https://your.server`, or in the window), and Tokenkeep registers itself there — no developer \
                     account needed",
                    name = spec.display_name,
                    id = spec.id
                ),
            },
            None => Readiness::NeedsClientId {
                message: needs_client_id_message(&spec, setup.as_ref()),
            },
            Some(_) if spec.redirect == RedirectMode::Paste && spec.redirect_uri.is_none() => {
                Readiness::NeedsRedirectUri {
                    message: format!(
                        "{name} sends the browser back only to an https page registered with it: register an https \
                         address you control as the app's redirect URI, then give it to Tokenkeep \
                         (`tokenkeep providers add {id} --redirect-uri https://…`). After you approve, you copy \
                         the address the browser lands on into Tokenkeep.",
                        name = spec.display_name,
                        id = spec.id
                    ),
                }
            }
            Some(_) => Readiness::Ready,
        };
        Self {
            spec,
            origin,
            setup,
            readiness,
        }
    }

    /// The provider's id.
    pub fn id(&self) -> &ProviderId {
        &self.spec.id
    }

    /// The validated definition, with the person's client id, authentication method and scopes applied.
    pub fn spec(&self) -> &ProviderSpec {
        &self.spec
    }

    /// Where the definition comes from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// How to register with the platform (built-in providers only).
    pub fn setup(&self) -> Option<&Setup> {
        self.setup.as_ref()
    }

    /// Whether the provider can be connected now, or what is missing.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Shorthand for `readiness() == Ready`.
    pub fn is_ready(&self) -> bool {
        self.readiness == Readiness::Ready
    }

    /// Whether the client is the AT Protocol's development client (`http://localhost?…`): it works without any
    /// registration, and its sessions are short.
    pub fn uses_development_client(&self) -> bool {
        self.spec.atproto.is_some() && self.client_id().is_some_and(|id| id.starts_with("http://localhost"))
    }

    /// The client id, when one is configured.
    pub fn client_id(&self) -> Option<&str> {
        self.spec.client_id.as_deref()
    }

    /// The redirect URI to register with the platform: what a built-in's setup names (sometimes `:*` for "any
    /// port"), otherwise the address the loopback listener will use.
    pub fn redirect_uri_to_register(&self) -> String {
        match &self.setup {
            Some(setup) => setup.redirect_uri.clone(),
            None => format!(
                "http://{}{}{}",
                self.spec.loopback_host,
                self.spec.redirect_port.map(|p| format!(":{p}")).unwrap_or_default(),
                self.spec.redirect_path
            ),
        }
    }

    /// Whether connecting needs a client secret from the vault (the authentication method is not `none`).
    pub fn needs_client_secret(&self) -> bool {
        self.spec.client_auth.needs_secret()
    }
}

fn needs_client_id_message(spec: &ProviderSpec, setup: Option<&Setup>) -> String {
    let name = &spec.display_name;
    match setup {
        Some(setup) if spec.redirect == RedirectMode::Paste => format!(
            "{name} needs a client id: register {} at {}, with an https address you control as its redirect URI, then \
             enter its client id{} and that address in Tokenkeep (after you approve a sign-in, you paste the address \
             the browser lands on)",
            setup.register,
            setup.console_url,
            if spec.client_auth.needs_secret() {
                ", secret"
            } else {
                ""
            },
        ),
        Some(setup) => format!(
            "{name} needs a client id: register {} at {} with the redirect URI {}, then enter its client id{} in \
             Tokenkeep",
            setup.register,
            setup.console_url,
            setup.redirect_uri,
            if spec.client_auth.needs_secret() {
                " and secret"
            } else {
                ""
            },
        ),
        None if spec.redirect == RedirectMode::Paste => format!(
            "{name} needs a client id: register Tokenkeep with the provider, with an https page you control as its \
             redirect URI, then enter its client id{} and that page in Tokenkeep (after you approve a sign-in, you \
             paste the address the browser lands on)",
            if spec.client_auth.needs_secret() {
                ", secret"
            } else {
                ""
            },
        ),
        None => format!(
            "{name} needs a client id: register Tokenkeep with the provider (redirect URI http://{}{}{}), then \
             enter its client id{} in Tokenkeep",
            spec.loopback_host,
            spec.redirect_port.map(|port| format!(":{port}")).unwrap_or_default(),
            spec.redirect_path,
            if spec.client_auth.needs_secret() {
                " and secret"
            } else {
                ""
            },
        ),
    }
}

/// Every provider the profile knows, resolved. Built once from the configuration; cheap to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    providers: Vec<ResolvedProvider>,
}

impl Catalog {
    /// Loads the profile's `config.toml` and resolves the catalog.
    pub fn load(paths: &ProfilePaths) -> Result<Self, CatalogError> {
        Self::from_config(&ProfileConfig::load(&paths.config_file())?)
    }

    /// Resolves the catalog: built-ins in catalog order, then the demo provider (only when an issuer is
    /// configured), then custom providers in the order they were added.
    ///
    /// A custom provider whose id a newer Tokenkeep also uses for a built-in **replaces** that built-in (with a
    /// warning in the log): its tokens were obtained with the custom definition and are stored under that id.
    pub fn from_config(config: &ProfileConfig) -> Result<Self, CatalogError> {
        let custom_ids: Vec<&ProviderId> = config.custom_providers().iter().map(|spec| &spec.id).collect();
        let mut providers = Vec::new();
        for (spec, setup) in builtin::entries() {
            if custom_ids.contains(&&spec.id) {
                tracing::warn!(provider = %spec.id, "a custom provider replaces the built-in provider of the same id");
                continue;
            }
            providers.push(resolve(spec.clone(), Origin::BuiltIn, setup.clone(), config)?);
        }
        let demo_id = ProviderId::parse(DEMO_ID).expect("the demo id is a valid provider id");
        if let Some(issuer) = config.demo_issuer()
            && !custom_ids.contains(&&demo_id)
        {
            providers.push(resolve(demo_spec(issuer)?, Origin::Demo, None, config)?);
        }
        for spec in config.custom_providers() {
            providers.push(resolve(spec.clone(), Origin::Custom, None, config)?);
        }
        for (id, _) in config.all_settings() {
            if !providers.iter().any(|p| p.id() == id) {
                tracing::warn!(provider = %id, "config.toml has settings for a provider that does not exist; ignored");
            }
        }
        Ok(Self { providers })
    }

    /// The provider named `id`.
    pub fn get(&self, id: &ProviderId) -> Option<&ResolvedProvider> {
        self.providers.iter().find(|p| p.id() == id)
    }

    /// The provider named `id`, or an error that tells the person how to list or add providers.
    pub fn require(&self, id: &ProviderId) -> Result<&ResolvedProvider, ProviderError> {
        self.get(id).ok_or_else(|| ProviderError::Unknown(id.to_string()))
    }

    /// All providers, in display order.
    pub fn list(&self) -> impl ExactSizeIterator<Item = &ResolvedProvider> {
        self.providers.iter()
    }
}

/// Applies the person's settings to `spec` and re-validates it.
fn resolve(
    mut spec: ProviderSpec,
    origin: Origin,
    setup: Option<Setup>,
    config: &ProfileConfig,
) -> Result<ResolvedProvider, CatalogError> {
    if let Some(settings) = config.settings(&spec.id) {
        apply_settings(&mut spec, settings).map_err(|message| CatalogError::InvalidSettings {
            provider: spec.id.clone(),
            message,
        })?;
    }
    Ok(ResolvedProvider::new(spec, origin, setup))
}

fn apply_settings(spec: &mut ProviderSpec, settings: &ProviderSettings) -> Result<(), String> {
    if let Some(client_id) = &settings.client_id {
        config::check_client_id(client_id)?;
        spec.client_id = Some(client_id.clone());
    }
    if let Some(auth) = settings.client_auth {
        spec.client_auth = auth;
    }
    if let Some(scopes) = &settings.scopes {
        check_scopes_for(spec, scopes)?;
        spec.scopes = scopes.clone();
    }
    if let Some(uri) = &settings.redirect_uri {
        spec.redirect_uri = Some(uri.clone());
    }
    spec.validate().map_err(|e| e.to_string())
}

/// Scope checks that depend on the provider: the separator must not occur inside a scope, and a provider whose
/// identity comes from the id_token must keep `openid`.
fn check_scopes_for(spec: &ProviderSpec, scopes: &[String]) -> Result<(), String> {
    config::check_scopes(scopes)?;
    if let Some(scope) = scopes.iter().find(|s| s.contains(spec.scope_separator.as_str())) {
        return Err(format!(
            "the scope {scope:?} contains this provider's separator {:?}",
            spec.scope_separator
        ));
    }
    if matches!(spec.identity, IdentitySource::IdToken { .. }) && !scopes.iter().any(|s| s == "openid") {
        return Err("this provider reads the account from the id_token, so its scopes must include \"openid\"".into());
    }
    Ok(())
}

/// The demo provider's definition for the peer at `issuer` (`http://127.0.0.1:PORT`, loopback only).
pub fn demo_spec(issuer: &Url) -> Result<ProviderSpec, CatalogError> {
    let error = |message: String| CatalogError::DemoIssuer {
        issuer: issuer.to_string(),
        message,
    };
    config::check_demo_issuer(issuer).map_err(error)?;
    // `Url` writes an empty path as "/"; the issuer identifier has no trailing slash.
    let issuer_text = issuer.as_str().trim_end_matches('/');
    // Loopback URLs from `Url` never contain these, but the text lands inside TOML strings: make sure.
    if issuer_text.contains(['"', '\\']) || issuer_text.chars().any(char::is_control) {
        return Err(error(
            "it contains characters that cannot appear in an issuer".to_owned(),
        ));
    }
    let text = builtin::DEMO_TEMPLATE.text.replace(ISSUER_PLACEHOLDER, issuer_text);
    let (spec, _) = builtin::parse(builtin::DEMO_TEMPLATE.file, &text).map_err(|e| error(e.to_string()))?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::super::builtin::{BUILTINS, builtin, builtin_setup, is_builtin};
    use super::*;
    use crate::provider::ClientAuth;

    fn id(s: &str) -> ProviderId {
        ProviderId::parse(s).unwrap()
    }

    fn demo_issuer() -> Url {
        Url::parse("http://127.0.0.1:4567").unwrap()
    }

    #[test]
    fn every_builtin_parses_and_its_id_matches_its_file() {
        let specs = builtin();
        assert_eq!(specs.len(), BUILTINS.len());
        for (spec, builtin) in specs.iter().zip(BUILTINS) {
            assert_eq!(spec.id.as_str(), builtin.file);
        }
        let mut ids: Vec<String> = specs.iter().map(|s| s.id.to_string()).collect();
        ids.push(demo_spec(&demo_issuer()).unwrap().id.to_string());
        assert!(ids.iter().all(|id| is_builtin(&ProviderId::parse(id).unwrap())));
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "ids are unique: {ids:?}");
    }

    #[test]
    fn every_builtin_says_how_to_set_it_up_and_is_consistent_with_it() {
        for spec in builtin() {
            if spec.is_template() {
                // Nothing to register by hand: Tokenkeep registers itself at the person's server.
                assert!(builtin_setup(&spec.id).is_none(), "{}", spec.id);
                assert!(spec.client_id.is_none(), "{}", spec.id);
                continue;
            }
            let setup = builtin_setup(&spec.id).unwrap_or_else(|| panic!("{} has no [setup]", spec.id));
            assert_eq!(setup.console_url.scheme(), "https", "{}", spec.id);
            // A pasted redirect: the person registers an https page of their own.
            if spec.redirect == RedirectMode::Paste {
                assert!(
                    setup.redirect_uri.starts_with("https://"),
                    "{}: {}",
                    spec.id,
                    setup.redirect_uri
                );
                assert!(spec.redirect_uri.is_none(), "{}: the page is the person's own", spec.id);
                continue;
            }
            // The URI to register names the host and path the flow will use.
            let expected = format!("http://{}", spec.loopback_host);
            assert!(
                setup.redirect_uri.starts_with(&expected),
                "{}: {}",
                spec.id,
                setup.redirect_uri
            );
            assert!(
                setup.redirect_uri.ends_with(&spec.redirect_path),
                "{}: {}",
                spec.id,
                setup.redirect_uri
            );
            // Platforms ship no client id, except the atproto development client, which is no registration at all.
            match (&spec.atproto, &spec.client_id) {
                (Some(_), Some(id)) => assert!(id.starts_with("http://localhost?"), "{}: {id}", spec.id),
                (_, id) => assert!(id.is_none(), "{}: platforms ship no client id", spec.id),
            }
            assert!(!spec.demo, "{}", spec.id);
            config::check_scopes(&spec.scopes).unwrap_or_else(|e| panic!("{}: {e}", spec.id));
            check_scopes_for(spec, &spec.scopes).unwrap_or_else(|e| panic!("{}: {e}", spec.id));
        }
    }

    #[test]
    fn platform_quirks_are_in_the_data() {
        let get = |name: &str| builtin().iter().find(|s| s.id.as_str() == name).unwrap();
        let youtube = get("youtube");
        assert_eq!(youtube.authorize_params["access_type"], "offline");
        assert_eq!(youtube.client_auth, ClientAuth::ClientSecretPost);
        assert!(youtube.is_openid());
        let tiktok = get("tiktok");
        assert_eq!(tiktok.param_names.client_id, "client_key");
        assert_eq!(tiktok.scope_separator, ",");
        assert!(
            matches!(&tiktok.identity, IdentitySource::Userinfo { subject_claim, .. } if subject_claim == "data.user.open_id")
        );
        assert_eq!(get("reddit").authorize_params["duration"], "permanent");
        assert_eq!(get("x").client_auth, ClientAuth::None);
        assert!(get("twitch").authorize_params["claims"].contains("preferred_username"));
        let mastodon = get("mastodon");
        assert!(mastodon.is_template());
        assert_eq!(
            mastodon.token_endpoint.as_str(),
            "https://instance.invalid/oauth/token",
            "a template never reaches a network"
        );
        let catalog = Catalog::from_config(&ProfileConfig::default()).unwrap();
        let Readiness::NeedsInstance { message } = catalog.get(&id("mastodon")).unwrap().readiness() else {
            panic!("a template is not connectable")
        };
        assert!(message.contains("--instance"), "{message}");
    }

    #[test]
    fn demo_endpoints_follow_the_issuer() {
        let spec = demo_spec(&demo_issuer()).unwrap();
        assert_eq!(
            spec.issuer.as_deref(),
            Some("http://127.0.0.1:4567"),
            "no trailing slash"
        );
        assert_eq!(spec.authorization_endpoint.as_str(), "http://127.0.0.1:4567/auth");
        assert_eq!(spec.token_endpoint.as_str(), "http://127.0.0.1:4567/token");
        assert_eq!(
            spec.revocation_endpoint.unwrap().as_str(),
            "http://127.0.0.1:4567/token/revocation"
        );
        assert_eq!(spec.client_id.as_deref(), Some("tokenkeep-public"));
        assert_eq!(spec.client_auth, ClientAuth::None);
        assert!(spec.demo);
        let err = demo_spec(&Url::parse("https://idp.example.com").unwrap()).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn fresh_profile_lists_builtins_needing_setup_and_no_demo() {
        let catalog = Catalog::from_config(&ProfileConfig::default()).unwrap();
        assert_eq!(catalog.list().len(), BUILTINS.len());
        assert!(catalog.get(&id("demo")).is_none(), "no issuer, no demo");
        let youtube = catalog.get(&id("youtube")).unwrap();
        assert!(!youtube.is_ready());
        let Readiness::NeedsClientId { message } = youtube.readiness() else {
            panic!("{youtube:?}")
        };
        assert!(
            message.contains("https://console.cloud.google.com/apis/credentials"),
            "{message}"
        );
        assert!(message.contains("Desktop app"), "{message}");
        assert!(message.contains("client id and secret"), "{message}");
        let err = catalog.require(&id("nope")).unwrap_err();
        assert!(err.to_string().contains("tokenkeep providers list"), "{err}");
    }

    #[test]
    fn settings_are_applied_and_make_a_provider_ready() {
        let mut config = ProfileConfig::default();
        config
            .set_client(&id("x"), "x-client", Some(ClientAuth::ClientSecretBasic))
            .unwrap();
        config
            .set_scopes(&id("x"), Some(vec!["users.read".into(), "offline.access".into()]))
            .unwrap();
        config.set_demo_issuer(Some(demo_issuer())).unwrap();
        let catalog = Catalog::from_config(&config).unwrap();
        let x = catalog.get(&id("x")).unwrap();
        assert!(x.is_ready());
        assert_eq!(x.client_id(), Some("x-client"));
        assert!(x.needs_client_secret());
        assert_eq!(x.spec().scopes, ["users.read", "offline.access"]);
        let demo = catalog.get(&id("demo")).unwrap();
        assert_eq!(demo.origin(), Origin::Demo);
        assert!(demo.is_ready() && !demo.needs_client_secret());
        assert_eq!(catalog.list().last().unwrap().id(), &id("demo"));
    }

    #[test]
    fn scope_overrides_that_cannot_work_are_refused() {
        let mut config = ProfileConfig::default();
        config.set_scopes(&id("linkedin"), Some(vec!["email".into()])).unwrap();
        let err = Catalog::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("must include \"openid\""), "{err}");

        let mut config = ProfileConfig::default();
        config
            .set_scopes(&id("tiktok"), Some(vec!["user.info.basic,video.list".into()]))
            .unwrap();
        let err = Catalog::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("separator"), "{err}");
    }

    #[test]
    fn a_custom_provider_replaces_a_builtin_that_later_took_its_id() {
        // Written by hand (or before a newer Tokenkeep added a built-in "twitch"): the tokens stored under
        // "twitch" were obtained with this definition, so it must keep working.
        let text = r#"
            [[custom_provider]]
            id = "twitch"
            display_name = "My Twitch proxy"
            authorization_endpoint = "https://proxy.example.com/authorize"
            token_endpoint = "https://proxy.example.com/token"
            identity = { source = "id_token" }
        "#;
        let config = ProfileConfig::parse(std::path::Path::new("config.toml"), text).unwrap();
        let catalog = Catalog::from_config(&config).unwrap();
        let twitch: Vec<_> = catalog.list().filter(|p| p.id() == &id("twitch")).collect();
        assert_eq!(twitch.len(), 1);
        assert_eq!(twitch[0].origin(), Origin::Custom);
        assert_eq!(twitch[0].spec().display_name, "My Twitch proxy");
    }

    #[test]
    fn custom_providers_are_listed_after_builtins() {
        let mut config = ProfileConfig::default();
        let spec = ProviderSpec::from_toml(
            "my-idp",
            r#"
            id = "my-idp"
            display_name = "My IdP"
            authorization_endpoint = "https://idp.example.com/authorize"
            token_endpoint = "https://idp.example.com/token"
            identity = { source = "id_token" }
            "#,
        )
        .unwrap();
        config.add_custom_provider(spec).unwrap();
        let catalog = Catalog::from_config(&config).unwrap();
        let custom = catalog.list().last().unwrap();
        assert_eq!((custom.id(), custom.origin()), (&id("my-idp"), Origin::Custom));
        assert!(custom.setup().is_none());
        let Readiness::NeedsClientId { message } = custom.readiness() else {
            panic!("{custom:?}")
        };
        assert!(message.contains("http://127.0.0.1/callback"), "{message}");
    }
}
