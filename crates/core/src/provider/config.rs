//! The profile's `config.toml`: custom providers, per-provider settings and the demo issuer — never a secret.
//!
//! ```toml
//! [demo]
//! issuer = "http://127.0.0.1:4567"
//!
//! [providers.youtube]                  # settings for any provider, built-in or custom
//! client_id = "1234-abc.apps.googleusercontent.com"
//! client_auth = "client_secret_post"   # optional: overrides the definition's method
//! scopes = ["openid", "email"]         # optional: replaces the definition's default scopes
//!
//! [[custom_provider]]                  # a full provider definition (see `ProviderSpec`)
//! id = "my-idp"
//! # …
//! ```
//!
//! **Invariant:** no secret is ever written here. Client secrets are sealed in the vault; a key that looks like one
//! (`client_secret`, `refresh_token`, …) makes [`ProfileConfig::load`] fail instead of silently keeping it.
//!
//! The file is validated as a whole when loaded and again before it is saved. [`ProfileConfig::save`] replaces it
//! atomically (a private temporary file in the same directory, fsync, rename) and refuses to replace a file it
//! cannot parse, so a hand edit with a typo is never lost.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use super::builtin::{self, DEMO_ID};
use super::{ClientAuth, ProviderError, ProviderId, ProviderSpec, is_loopback_host};

/// Errors reading, validating or writing the profile's configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read, or written, or renamed into place.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "replace").
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("{}:{line}:{column}: {message} (fix the file by hand; Tokenkeep will not overwrite it until it parses)", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error (0 when the parser gave no position).
        line: usize,
        /// 1-based column of the error (0 when the parser gave no position).
        column: usize,
        /// What is wrong, from the parser.
        message: String,
    },
    /// The file holds something that looks like a secret. Its value is never shown.
    #[error(
        "{} contains `{key}`: secrets do not belong in config.toml. Delete that line and store the secret through \
         Tokenkeep, which seals it in the vault",
        path.display()
    )]
    SecretInFile {
        /// The file.
        path: PathBuf,
        /// Dotted path of the offending key (`providers.youtube.client_secret`).
        key: String,
    },
    /// The file parses but its content cannot work (a duplicate id, an invalid provider definition, …).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The file on disk does not parse, so saving over it would lose the user's edits.
    #[error("not saving over {}: it cannot be read back ({reason}); fix or move it first", path.display())]
    WontOverwrite {
        /// The file.
        path: PathBuf,
        /// Why the existing file was rejected.
        reason: String,
    },
    /// A custom provider would take an id that is already used.
    #[error("{}", id_taken_message(id, *builtin))]
    IdTaken {
        /// The id asked for.
        id: ProviderId,
        /// Whether a built-in provider has it (else another custom provider).
        builtin: bool,
    },
    /// No provider with that id is known, or a custom provider's definition is invalid.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A setting has a value that cannot work.
    #[error("provider {provider}: {message}")]
    InvalidSetting {
        /// The provider the setting is for.
        provider: ProviderId,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn id_taken_message(id: &ProviderId, builtin: bool) -> String {
    if builtin {
        format!("{id:?} is a built-in provider: give the custom provider another id (for example \"{id}-custom\")")
    } else {
        format!("a custom provider named {id:?} already exists: remove it first, or choose another id")
    }
}

/// The demo provider's settings: where the local test peer runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    /// The peer's issuer, `http://127.0.0.1:PORT` (loopback only).
    pub issuer: Url,
}

/// What [`ProfileConfig::put_custom_provider`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Imported {
    /// A new provider.
    Added,
    /// The custom provider of the same id was replaced.
    Replaced,
    /// The definition overrides the built-in provider of the same id.
    OverridesBuiltIn,
}

/// A person's settings for one provider, applied over its definition by the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// The client id registered with the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// How the client authenticates at the token endpoint, when it differs from the definition's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// Scopes to request instead of the definition's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The https page registered with the platform, for platforms whose redirect is pasted back
    /// (`redirect = "paste"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<Url>,
}

impl ProviderSettings {
    fn is_empty(&self) -> bool {
        self.client_id.is_none() && self.client_auth.is_none() && self.scopes.is_none() && self.redirect_uri.is_none()
    }
}

/// The profile's configuration, as stored in `config.toml`. Validated on load and before save.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    demo: Option<DemoSettings>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    providers: BTreeMap<ProviderId, ProviderSettings>,
    #[serde(default, rename = "custom_provider", skip_serializing_if = "Vec::is_empty")]
    custom_providers: Vec<ProviderSpec>,
}

/// Keys that must never appear in the file, whatever the table.
const SECRET_KEYS: &[&str] = &[
    "client_secret",
    "secret",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
];

/// Written at the top of every saved file.
const HEADER: &str =
    "# Tokenkeep profile configuration: providers and their settings. Secrets are never stored here.\n\n";

impl ProfileConfig {
    /// Reads and validates `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Self::parse(path, &text)
    }

    /// Parses and validates `text`; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error| {
            let (line, column) = e.span().map_or((0, 0), |span| line_column(text, span.start));
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        };
        // Look for secrets before the typed parse: `deny_unknown_fields` would reject the key too, but the
        // dedicated error tells the person what to do instead, and never echoes the value.
        let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
        if let Some(key) = find_secret_key(&table, "") {
            return Err(ConfigError::SecretInFile {
                path: path.to_owned(),
                key,
            });
        }
        let config: Self = toml::from_str(text).map_err(parse_error)?;
        config.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// Validates, then replaces `path` atomically with a file readable by the user only (0600 on Unix).
    ///
    /// Refuses to replace an existing file that does not load, so a hand edit is never silently lost.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        if path.exists() {
            Self::load(path).map_err(|e| ConfigError::WontOverwrite {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        }
        let body = toml::to_string(self).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: format!("cannot serialize: {e}"),
        })?;
        let text = format!("{HEADER}{body}");
        // What is written must load back: a file that the next start refuses would lock the person out of every
        // provider (a secret-looking value in an imported definition, for one, is refused here, not on the next read).
        Self::parse(path, &text)?;
        write_atomically(path, text.as_bytes())
    }

    /// The custom providers, in the order they were added.
    pub fn custom_providers(&self) -> &[ProviderSpec] {
        &self.custom_providers
    }

    /// The settings for `provider`, if any.
    pub fn settings(&self, provider: &ProviderId) -> Option<&ProviderSettings> {
        self.providers.get(provider)
    }

    /// All per-provider settings.
    pub fn all_settings(&self) -> impl Iterator<Item = (&ProviderId, &ProviderSettings)> {
        self.providers.iter()
    }

    /// The demo peer's issuer, if configured.
    pub fn demo_issuer(&self) -> Option<&Url> {
        self.demo.as_ref().map(|d| &d.issuer)
    }

    /// Sets (or with `None` forgets) the demo peer's issuer. It must be an `http(s)` loopback URL.
    pub fn set_demo_issuer(&mut self, issuer: Option<Url>) -> Result<(), ConfigError> {
        if let Some(issuer) = &issuer {
            check_demo_issuer(issuer).map_err(|message| ConfigError::InvalidSetting {
                provider: demo_id(),
                message,
            })?;
        }
        self.demo = issuer.map(|issuer| DemoSettings { issuer });
        Ok(())
    }

    /// Adds a custom provider (for example one from [`discover`](super::discovery::discover)).
    ///
    /// Refuses an invalid definition and an id used by a built-in or another custom provider.
    pub fn add_custom_provider(&mut self, spec: ProviderSpec) -> Result<(), ConfigError> {
        if builtin::is_builtin(&spec.id) {
            return Err(ConfigError::IdTaken {
                id: spec.id,
                builtin: true,
            });
        }
        if self.custom(&spec.id).is_some() {
            return Err(ConfigError::IdTaken {
                id: spec.id,
                builtin: false,
            });
        }
        spec.validate()?;
        self.custom_providers.push(spec);
        Ok(())
    }

    /// Adds `spec` as a custom provider, or replaces the custom provider of the same id (`providers import`).
    /// An id of a built-in provider is allowed: the imported definition then overrides the built-in one (its
    /// settings stay).
    pub fn put_custom_provider(&mut self, spec: ProviderSpec) -> Result<Imported, ConfigError> {
        if spec.id.as_str() == DEMO_ID {
            return Err(ConfigError::IdTaken {
                id: spec.id,
                builtin: true,
            });
        }
        spec.validate()?;
        let overrides = builtin::is_builtin(&spec.id);
        let imported = match self.custom_providers.iter_mut().find(|s| s.id == spec.id) {
            Some(existing) => {
                *existing = spec;
                Imported::Replaced
            }
            None => {
                self.custom_providers.push(spec);
                if overrides {
                    Imported::OverridesBuiltIn
                } else {
                    Imported::Added
                }
            }
        };
        Ok(imported)
    }

    /// The custom definition named `id`, if any (an imported one may override a built-in).
    pub fn custom_provider(&self, id: &ProviderId) -> Option<&ProviderSpec> {
        self.custom(id)
    }

    /// Removes a custom provider and its settings, and returns its definition.
    pub fn remove_custom_provider(&mut self, id: &ProviderId) -> Result<ProviderSpec, ConfigError> {
        let Some(index) = self.custom_providers.iter().position(|spec| &spec.id == id) else {
            if builtin::is_builtin(id) {
                return Err(ConfigError::InvalidSetting {
                    provider: id.clone(),
                    message: "built-in providers cannot be removed (leave its client id unset to keep it unused)"
                        .to_owned(),
                });
            }
            return Err(ProviderError::Unknown(id.to_string()).into());
        };
        // An imported override of a built-in: the built-in comes back, and the person's settings stay with it.
        if !builtin::is_builtin(id) {
            self.providers.remove(id);
        }
        Ok(self.custom_providers.remove(index))
    }

    /// Adds `hosts` to the hosts a custom provider's access tokens are for (its `api_hosts`; the ones it had by
    /// default — its issuer's, its userinfo endpoint's — stay). A built-in provider's hosts are part of its
    /// definition and are refused here.
    pub fn add_api_hosts(&mut self, provider: &ProviderId, hosts: &[String]) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::InvalidSetting {
            provider: provider.clone(),
            message,
        };
        let Some(spec) = self.custom_providers.iter_mut().find(|spec| &spec.id == provider) else {
            return Err(invalid(
                "its API hosts are part of its built-in definition: to change them, `providers export` it, edit \
                 api_hosts and `providers import` the file"
                    .to_owned(),
            ));
        };
        let mut updated = spec.clone();
        updated.api_hosts = spec.allowed_api_hosts();
        for host in hosts {
            let host = host.trim().to_ascii_lowercase();
            if !updated.api_hosts.contains(&host) {
                updated.api_hosts.push(host);
            }
        }
        updated.validate().map_err(|e| invalid(e.to_string()))?;
        *spec = updated;
        Ok(())
    }

    /// Sets the client id registered for `provider`, and the authentication method when `auth` is given
    /// (`None` keeps what the definition says).
    pub fn set_client(
        &mut self,
        provider: &ProviderId,
        client_id: &str,
        auth: Option<ClientAuth>,
    ) -> Result<(), ConfigError> {
        self.ensure_known(provider)?;
        let client_id = client_id.trim();
        check_client_id(client_id).map_err(|message| ConfigError::InvalidSetting {
            provider: provider.clone(),
            message,
        })?;
        let settings = self.providers.entry(provider.clone()).or_default();
        settings.client_id = Some(client_id.to_owned());
        if auth.is_some() {
            settings.client_auth = auth;
        }
        Ok(())
    }

    /// Forgets the client id and authentication method set for `provider` (its scope override stays).
    pub fn clear_client(&mut self, provider: &ProviderId) {
        if let Some(settings) = self.providers.get_mut(provider) {
            settings.client_id = None;
            settings.client_auth = None;
            if settings.is_empty() {
                self.providers.remove(provider);
            }
        }
    }

    /// Replaces the scopes requested from `provider`, or with `None` returns to the definition's defaults.
    ///
    /// Only the form of each scope is checked here; the catalog checks them against the provider (separator,
    /// `openid` for providers whose identity comes from the id_token).
    pub fn set_scopes(&mut self, provider: &ProviderId, scopes: Option<Vec<String>>) -> Result<(), ConfigError> {
        self.ensure_known(provider)?;
        if let Some(scopes) = &scopes {
            check_scopes(scopes).map_err(|message| ConfigError::InvalidSetting {
                provider: provider.clone(),
                message,
            })?;
        }
        let settings = self.providers.entry(provider.clone()).or_default();
        settings.scopes = scopes;
        if settings.is_empty() {
            self.providers.remove(provider);
        }
        Ok(())
    }

    /// Sets the https page registered with `provider` as its redirect (for pasted redirects).
    pub fn set_redirect_uri(&mut self, provider: &ProviderId, uri: Url) -> Result<(), ConfigError> {
        self.ensure_known(provider)?;
        if uri.scheme() != "https" || uri.host_str().is_none() {
            return Err(ConfigError::InvalidSetting {
                provider: provider.clone(),
                message: format!("the redirect URI {uri} must be an https address"),
            });
        }
        self.providers.entry(provider.clone()).or_default().redirect_uri = Some(uri);
        Ok(())
    }

    fn custom(&self, id: &ProviderId) -> Option<&ProviderSpec> {
        self.custom_providers.iter().find(|spec| &spec.id == id)
    }

    fn ensure_known(&self, provider: &ProviderId) -> Result<(), ConfigError> {
        if builtin::is_builtin(provider) || self.custom(provider).is_some() {
            Ok(())
        } else {
            Err(ProviderError::Unknown(provider.to_string()).into())
        }
    }

    /// Everything the types cannot say. The message names the offending entry and how to fix it.
    fn validate(&self) -> Result<(), String> {
        if let Some(demo) = &self.demo {
            check_demo_issuer(&demo.issuer).map_err(|e| format!("[demo] issuer: {e}"))?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for spec in &self.custom_providers {
            if !seen.insert(&spec.id) {
                return Err(format!(
                    "two [[custom_provider]] entries are named {:?}: rename or delete one",
                    spec.id.as_str()
                ));
            }
            spec.validate()
                .map_err(|e| format!("[[custom_provider]] {}: {e}", spec.id))?;
        }
        for (id, settings) in &self.providers {
            let context = |e: String| format!("[providers.{id}]: {e}");
            if let Some(client_id) = &settings.client_id {
                check_client_id(client_id).map_err(context)?;
            }
            if let Some(scopes) = &settings.scopes {
                check_scopes(scopes).map_err(context)?;
            }
        }
        Ok(())
    }
}

fn demo_id() -> ProviderId {
    ProviderId::parse(DEMO_ID).expect("the demo id is a valid provider id")
}

/// The demo peer runs on this machine: anything else would send the demo's public client somewhere real.
pub(super) fn check_demo_issuer(issuer: &Url) -> Result<(), String> {
    let loopback = issuer.host_str().is_some_and(is_loopback_host);
    if !matches!(issuer.scheme(), "http" | "https") || !loopback {
        return Err(format!(
            "{issuer} is not a loopback address: the demo peer runs at http://127.0.0.1:PORT"
        ));
    }
    if issuer.query().is_some() || issuer.fragment().is_some() || !issuer.username().is_empty() {
        return Err(format!(
            "{issuer} must be a plain issuer URL, without user, query or fragment"
        ));
    }
    Ok(())
}

/// Client ids are opaque, but never empty and never contain whitespace or control characters.
pub(super) fn check_client_id(client_id: &str) -> Result<(), String> {
    if client_id.is_empty() {
        return Err("the client id is empty: copy it from the platform's developer console".to_owned());
    }
    if client_id.len() > 512 || client_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "the client id has spaces or control characters: copy it again from the developer console".to_owned(),
        );
    }
    Ok(())
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, and at least one of them.
pub(crate) fn check_scopes(scopes: &[String]) -> Result<(), String> {
    if scopes.is_empty() {
        return Err(
            "the scope list is empty: list at least one scope, or remove the override to use the defaults".to_owned(),
        );
    }
    for scope in scopes {
        let valid = !scope.is_empty() && scope.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
        if !valid {
            return Err(format!(
                "{scope:?} is not a valid scope (RFC 6749 §3.3: printable ASCII without spaces, '\"' or '\\')"
            ));
        }
    }
    Ok(())
}

fn find_secret_key(table: &toml::Table, prefix: &str) -> Option<String> {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        // A placeholder (`access_token = "{access_token}"` in a platform's token call) names what Tokenkeep fills
        // in from the vault at request time: a template, not a secret.
        let placeholder = value.as_str().is_some_and(|v| super::PLACEHOLDERS.contains(&v));
        if SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) && !placeholder {
            return Some(path);
        }
        let found = match value {
            toml::Value::Table(inner) => find_secret_key(inner, &path),
            toml::Value::Array(items) => items.iter().find_map(|item| match item {
                toml::Value::Table(inner) => find_secret_key(inner, &path),
                _ => None,
            }),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Writes `bytes` to a new private file next to `path`, flushes it to disk, renames it over `path`, and flushes
/// the directory, so a crash leaves either the old file or the new one — never a mix, never a partial file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + use<> {
        let path = path.to_owned();
        move |source| ConfigError::Io { action, path, source }
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        crate::profile::create_private_dir(&dir).map_err(|e| ConfigError::Io {
            action: "create",
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    let file_name = path
        .file_name()
        .map_or_else(|| "config.toml".into(), |n| n.to_string_lossy().into_owned());
    let suffix = getrandom::u64().unwrap_or_else(|_| u64::from(std::process::id()));
    let temp = dir.join(format!(".{file_name}.{suffix:016x}.tmp"));

    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp).map_err(io("create", &temp))?;
        file.write_all(bytes).map_err(io("write", &temp))?;
        file.sync_all().map_err(io("write", &temp))?;
        drop(file);
        std::fs::rename(&temp, path).map_err(io("replace", path))?;
        // IMPORTANT: the rename is durable only once the directory entry is on disk too.
        #[cfg(unix)]
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io("flush", &dir))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::IdentitySource;

    fn id(s: &str) -> ProviderId {
        ProviderId::parse(s).unwrap()
    }

    fn custom(name: &str) -> ProviderSpec {
        ProviderSpec::from_toml(
            name,
            &format!(
                r#"
                id = "{name}"
                display_name = "My IdP"
                issuer = "https://idp.example.com"
                authorization_endpoint = "https://idp.example.com/authorize"
                token_endpoint = "https://idp.example.com/token"
                scopes = ["openid", "email"]
                identity = {{ source = "id_token" }}
                "#
            ),
        )
        .unwrap()
    }

    #[test]
    fn api_hosts_add_to_a_custom_providers_defaults_and_stay_out_of_built_ins() {
        let mut config = sample();
        let provider = id("my-idp");
        let before = config.custom(&provider).unwrap().allowed_api_hosts();
        assert_eq!(before, ["idp.example.com"]);
        config
            .add_api_hosts(&provider, &["API.Example.com".into(), "idp.example.com".into()])
            .unwrap();
        assert_eq!(
            config.custom(&provider).unwrap().allowed_api_hosts(),
            ["idp.example.com", "api.example.com"]
        );
        // It survives a save and a load (the hosts are part of the stored definition).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        config.save(&path).unwrap();
        let loaded = ProfileConfig::load(&path).unwrap();
        assert_eq!(
            loaded.custom(&provider).unwrap().allowed_api_hosts(),
            ["idp.example.com", "api.example.com"]
        );
        let error = config.add_api_hosts(&provider, &["not a host".into()]).unwrap_err();
        assert!(error.to_string().contains("api_hosts"), "{error}");
        let error = config
            .add_api_hosts(&id("youtube"), &["x.example.com".into()])
            .unwrap_err();
        assert!(error.to_string().contains("providers export"), "{error}");
    }

    fn sample() -> ProfileConfig {
        let mut config = ProfileConfig::default();
        config.add_custom_provider(custom("my-idp")).unwrap();
        config
            .set_client(&id("youtube"), " 123-abc.apps.googleusercontent.com ", None)
            .unwrap();
        config
            .set_client(&id("my-idp"), "tokenkeep", Some(ClientAuth::ClientSecretBasic))
            .unwrap();
        config
            .set_scopes(&id("youtube"), Some(vec!["openid".into(), "email".into()]))
            .unwrap();
        config
            .set_demo_issuer(Some(Url::parse("http://127.0.0.1:4567").unwrap()))
            .unwrap();
        config
    }

    #[test]
    fn missing_file_is_an_empty_config() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ProfileConfig::load(&dir.path().join("config.toml")).unwrap(),
            ProfileConfig::default()
        );
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let config = sample();
        config.save(&path).unwrap();
        let loaded = ProfileConfig::load(&path).unwrap();
        assert_eq!(loaded, config);
        let youtube = loaded.settings(&id("youtube")).unwrap();
        assert_eq!(
            youtube.client_id.as_deref(),
            Some("123-abc.apps.googleusercontent.com"),
            "trimmed"
        );
        assert_eq!(
            loaded.settings(&id("my-idp")).unwrap().client_auth,
            Some(ClientAuth::ClientSecretBasic)
        );
        assert_eq!(loaded.demo_issuer().unwrap().port(), Some(4567));
        assert!(matches!(
            loaded.custom_providers()[0].identity,
            IdentitySource::IdToken { .. }
        ));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# Tokenkeep profile configuration"), "{text}");
    }

    #[test]
    fn save_leaves_no_temporary_files_and_replaces_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        sample().save(&path).unwrap();
        ProfileConfig::default().save(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.toml"]);
        assert_eq!(ProfileConfig::load(&path).unwrap(), ProfileConfig::default());
    }

    #[test]
    fn save_creates_a_missing_profile_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev").join("config.toml");
        sample().save(&path).unwrap();
        assert_eq!(ProfileConfig::load(&path).unwrap(), sample());
    }

    #[cfg(unix)]
    #[test]
    fn saved_file_is_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        sample().save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn bad_toml_is_reported_with_file_and_line_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let broken = "[demo]\nissuer = \"http://127.0.0.1:1\"\n\n[providers.youtube]\nclient_id = \n";
        std::fs::write(&path, broken).unwrap();
        let err = ProfileConfig::load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 5, .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&format!("{}:5:", path.display())), "{message}");

        let err = sample().save(&path).unwrap_err();
        assert!(matches!(err, ConfigError::WontOverwrite { .. }), "{err:?}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            broken,
            "the hand-edited file is untouched"
        );
    }

    #[test]
    fn typos_are_named() {
        let err = ProfileConfig::parse(Path::new("c.toml"), "[providers.youtube]\nclinet_id = \"x\"\n").unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{err:?}");
        assert!(err.to_string().contains("clinet_id"), "{err}");
    }

    #[test]
    fn secrets_in_the_file_are_refused_without_echoing_them() {
        let text = "[providers.youtube]\nclient_id = \"abc\"\nclient_secret = \"GOCSPX-hunter2\"\n";
        let err = ProfileConfig::parse(Path::new("c.toml"), text).unwrap_err();
        assert!(matches!(&err, ConfigError::SecretInFile { key, .. } if key == "providers.youtube.client_secret"));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let nested = "[[custom_provider]]\nid = \"a\"\nrefresh_token = \"rt-hunter2\"\n";
        let err = ProfileConfig::parse(Path::new("c.toml"), nested).unwrap_err();
        assert!(matches!(err, ConfigError::SecretInFile { .. }), "{err:?}");
    }

    #[test]
    fn placeholders_in_token_calls_are_templates_not_secrets() {
        let mut spec = custom("ig-like");
        spec.long_lived = Some(
            toml::from_str(
                "url = \"https://graph.example/access_token\"\nmethod = \"GET\"\n\
                 params = { grant_type = \"ig_exchange_token\", client_secret = \"{client_secret}\", \
                 access_token = \"{access_token}\" }",
            )
            .unwrap(),
        );
        let mut config = ProfileConfig::default();
        config.add_custom_provider(spec.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        config.save(&path).unwrap();
        assert_eq!(ProfileConfig::load(&path).unwrap().custom_providers(), &[spec.clone()]);

        // A literal value under a secret's name is a secret: refused before anything is written.
        let mut leaky = spec;
        leaky.id = ProviderId::parse("leaky").unwrap();
        if let Some(call) = leaky.long_lived.as_mut() {
            call.params.insert("client_secret".into(), "hunter2-literal".into());
        }
        let before = std::fs::read(&path).unwrap();
        config.add_custom_provider(leaky).unwrap();
        let err = config.save(&path).unwrap_err();
        assert!(matches!(err, ConfigError::SecretInFile { .. }), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    }

    #[test]
    fn clashing_custom_ids_are_refused() {
        let mut config = sample();
        let err = config.add_custom_provider(custom("youtube")).unwrap_err();
        assert!(matches!(err, ConfigError::IdTaken { builtin: true, .. }), "{err:?}");
        assert!(err.to_string().contains("youtube-custom"), "{err}");
        let err = config.add_custom_provider(custom("demo")).unwrap_err();
        assert!(matches!(err, ConfigError::IdTaken { builtin: true, .. }), "{err:?}");
        let err = config.add_custom_provider(custom("my-idp")).unwrap_err();
        assert!(matches!(err, ConfigError::IdTaken { builtin: false, .. }), "{err:?}");
        assert_eq!(config.custom_providers().len(), 1);
    }

    #[test]
    fn duplicate_custom_ids_in_a_hand_edited_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        sample().save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text.find("[[custom_provider]]").unwrap();
        std::fs::write(&path, format!("{text}\n{}", &text[start..])).unwrap();
        let err = ProfileConfig::load(&path).unwrap_err();
        assert!(err.to_string().contains("two [[custom_provider]] entries"), "{err}");
    }

    #[test]
    fn removing_a_custom_provider_drops_its_settings() {
        let mut config = sample();
        let removed = config.remove_custom_provider(&id("my-idp")).unwrap();
        assert_eq!(removed.id, id("my-idp"));
        assert!(config.settings(&id("my-idp")).is_none());
        assert!(matches!(
            config.remove_custom_provider(&id("my-idp")),
            Err(ConfigError::Provider(ProviderError::Unknown(_)))
        ));
        assert!(matches!(
            config.remove_custom_provider(&id("youtube")),
            Err(ConfigError::InvalidSetting { .. })
        ));
    }

    #[test]
    fn settings_are_checked() {
        let mut config = ProfileConfig::default();
        assert!(matches!(
            config.set_client(&id("nope"), "abc", None),
            Err(ConfigError::Provider(ProviderError::Unknown(_)))
        ));
        assert!(config.set_client(&id("youtube"), "  ", None).is_err());
        assert!(config.set_client(&id("youtube"), "a b", None).is_err());
        assert!(config.set_scopes(&id("youtube"), Some(vec![])).is_err());
        assert!(config.set_scopes(&id("youtube"), Some(vec!["a b".into()])).is_err());
        assert!(
            config
                .set_demo_issuer(Some(Url::parse("https://example.com").unwrap()))
                .is_err()
        );
        assert_eq!(config, ProfileConfig::default(), "a refused setting changes nothing");

        config.set_client(&id("youtube"), "abc", None).unwrap();
        config.clear_client(&id("youtube"));
        assert!(config.settings(&id("youtube")).is_none(), "empty settings are dropped");
    }
}
