//! Providers as data: where a platform's OAuth endpoints are and how its dialect of OAuth 2.0 differs.
//!
//! A [`ProviderSpec`] is parsed from TOML (the built-in catalog in `crates/core/providers/`, or a user's custom
//! provider) and validated once. The OAuth flow reads only the validated spec, so a platform quirk — a renamed
//! parameter, comma-separated scopes, a non-standard token response — is a field here, never a branch in the flow.

pub mod builtin;
pub mod catalog;
pub mod config;
pub mod discovery;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// Errors in a provider definition.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider id is not 1–40 characters of `a-z`, `0-9` and `-`.
    #[error("invalid provider id {0:?}: use 1–40 characters from a-z, 0-9 and '-' (for example \"youtube\")")]
    InvalidId(String),
    /// The TOML could not be parsed.
    #[error("provider definition {name}: {message}")]
    Parse {
        /// Which definition (file or provider id).
        name: String,
        /// What is wrong, from the parser.
        message: String,
    },
    /// An endpoint is not HTTPS (plain HTTP is allowed for loopback addresses only).
    #[error(
        "provider {provider}: the {endpoint} endpoint {url} must use https (http is allowed only on 127.0.0.1/localhost)"
    )]
    InsecureEndpoint {
        /// The provider id.
        provider: String,
        /// Which endpoint.
        endpoint: &'static str,
        /// The offending URL.
        url: String,
    },
    /// A field has a value that cannot work.
    #[error("provider {provider}: {message}")]
    Invalid {
        /// The provider id.
        provider: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// No provider with that id is known.
    #[error("no provider named {0:?}: see `tokenkeep providers list`, or add one with `tokenkeep providers add`")]
    Unknown(String),
}

/// A provider's stable id (`youtube`, `twitch`, `demo`, a custom `my-idp`): the key of its sled tree.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

impl ProviderId {
    /// Validates `id`.
    pub fn parse(id: &str) -> Result<Self, ProviderError> {
        let ok = (1..=40).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !id.starts_with('-');
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(ProviderError::InvalidId(id.to_owned()))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderId {
    type Error = ProviderError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ProviderId> for String {
    fn from(id: ProviderId) -> Self {
        id.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderId({})", self.0)
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A public client: no secret; PKCE protects the code.
    None,
    /// `client_secret_basic`: HTTP Basic with the client id and secret.
    #[serde(alias = "basic")]
    ClientSecretBasic,
    /// `client_secret_post`: id and secret in the form body.
    #[serde(alias = "post")]
    ClientSecretPost,
}

impl ClientAuth {
    /// Whether this method needs a client secret.
    pub fn needs_secret(self) -> bool {
        !matches!(self, Self::None)
    }

    /// The name used in TOML, the CLI (`none|basic|post`) and the UI.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "basic",
            Self::ClientSecretPost => "post",
        }
    }
}

/// Where the account's identity (the name shown for a connection) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum IdentitySource {
    /// The claims of the `id_token` returned with the tokens (OpenID Connect).
    IdToken {
        /// Claims to try, in order, for the display name (e.g. `email`, `preferred_username`, `sub`).
        #[serde(default = "default_account_claims")]
        account_claims: Vec<String>,
    },
    /// A GET to the userinfo endpoint with the new access token.
    Userinfo {
        /// Claims to try, in order; a dotted path reaches into nested objects (`data.username`).
        #[serde(default = "default_account_claims")]
        account_claims: Vec<String>,
        /// Claim holding the stable subject id (`sub`, `id`, `data.id`).
        #[serde(default = "default_subject_claim")]
        subject_claim: String,
    },
}

fn default_account_claims() -> Vec<String> {
    ["email", "preferred_username", "name", "sub"]
        .map(String::from)
        .to_vec()
}

fn default_subject_claim() -> String {
    "sub".to_owned()
}

/// Names of request parameters, for platforms that renamed the standard ones (TikTok's `client_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamNames {
    /// Name of the client id parameter in the authorize request and the token request body.
    pub client_id: String,
}

impl Default for ParamNames {
    fn default() -> Self {
        Self {
            client_id: "client_id".to_owned(),
        }
    }
}

/// A provider definition as written in TOML. See `crates/core/providers/*.toml` for examples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Stable id, also the name of the provider's sled tree.
    pub id: ProviderId,
    /// Name shown to people ("YouTube", "Demo (local)").
    pub display_name: String,
    /// The issuer identifier, for the RFC 9207 `iss` check and `id_token` validation (OpenID providers).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Authorization endpoint (opened in the browser).
    pub authorization_endpoint: Url,
    /// Token endpoint.
    pub token_endpoint: Url,
    /// RFC 7009 revocation endpoint, if the platform has one.
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    /// Userinfo endpoint, if identity comes from it.
    #[serde(default)]
    pub userinfo_endpoint: Option<Url>,
    /// Where a person can revoke Tokenkeep's access by hand (shown when revocation fails).
    #[serde(default)]
    pub manage_access_url: Option<Url>,
    /// Scopes requested by default.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Separator between scopes in requests and responses (`" "` by the standard, `","` for some platforms).
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
    /// How the client authenticates at the token endpoint.
    #[serde(default = "default_client_auth")]
    pub client_auth: ClientAuth,
    /// A client id shipped with the definition (the demo provider); others are configured by the user.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Use PKCE (S256). Only turn off for platforms that reject it.
    #[serde(default = "default_true")]
    pub pkce: bool,
    /// Extra authorize parameters (`access_type = "offline"`, `prompt = "consent"`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Renamed standard parameters.
    #[serde(default)]
    pub param_names: ParamNames,
    /// How to learn the account's identity.
    pub identity: IdentitySource,
    /// The loopback host in the redirect URI the platform expects (`127.0.0.1`, or `localhost` for a few).
    #[serde(default = "default_loopback_host")]
    pub loopback_host: String,
    /// Path of the redirect URI.
    #[serde(default = "default_redirect_path")]
    pub redirect_path: String,
    /// A fixed loopback port, for platforms that match the registered redirect URI exactly, port included
    /// (RFC 8252 §7.3 says they should not, but several do). Unset: an ephemeral port, as RFC 8252 intends.
    #[serde(default)]
    pub redirect_port: Option<u16>,
    /// Refresh this many seconds before the access token expires (default: the engine's).
    #[serde(default)]
    pub refresh_margin_secs: Option<u64>,
    /// Marks definitions that exist only for local testing (the demo provider), so the UI can label them.
    #[serde(default)]
    pub demo: bool,
}

fn default_scope_separator() -> String {
    " ".to_owned()
}
fn default_client_auth() -> ClientAuth {
    ClientAuth::None
}
fn default_true() -> bool {
    true
}
fn default_loopback_host() -> String {
    "127.0.0.1".to_owned()
}
fn default_redirect_path() -> String {
    "/callback".to_owned()
}

/// True for hosts that never leave the machine.
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

impl ProviderSpec {
    /// Parses and validates a TOML definition; `name` is used in error messages.
    pub fn from_toml(name: &str, text: &str) -> Result<Self, ProviderError> {
        let spec: Self = toml::from_str(text).map_err(|e| ProviderError::Parse {
            name: name.to_owned(),
            message: e.to_string(),
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Serializes the definition back to TOML (for the profile's config file).
    pub fn to_toml(&self) -> Result<String, ProviderError> {
        toml::to_string(self).map_err(|e| ProviderError::Parse {
            name: self.id.to_string(),
            message: e.to_string(),
        })
    }

    /// Checks what the type system cannot: secure endpoints, a usable redirect, a sensible separator.
    pub fn validate(&self) -> Result<(), ProviderError> {
        let provider = self.id.to_string();
        let endpoints = [
            ("authorization", Some(&self.authorization_endpoint)),
            ("token", Some(&self.token_endpoint)),
            ("revocation", self.revocation_endpoint.as_ref()),
            ("userinfo", self.userinfo_endpoint.as_ref()),
        ];
        for (endpoint, url) in endpoints {
            let Some(url) = url else { continue };
            let loopback = url.host_str().is_some_and(is_loopback_host);
            let secure = url.scheme() == "https" || (url.scheme() == "http" && loopback);
            if !secure {
                return Err(ProviderError::InsecureEndpoint {
                    provider,
                    endpoint,
                    url: url.to_string(),
                });
            }
        }
        let invalid = |message: &str| ProviderError::Invalid {
            provider: provider.clone(),
            message: message.to_owned(),
        };
        if self.display_name.trim().is_empty() {
            return Err(invalid("display_name is empty"));
        }
        if !matches!(self.loopback_host.as_str(), "127.0.0.1" | "localhost") {
            return Err(invalid(
                "loopback_host must be \"127.0.0.1\" or \"localhost\" (RFC 8252 loopback redirect)",
            ));
        }
        if !self.redirect_path.starts_with('/') || self.redirect_path.contains(['?', '#']) {
            return Err(invalid("redirect_path must be a plain path starting with '/'"));
        }
        if self.redirect_port == Some(0) {
            return Err(invalid(
                "redirect_port 0 is not a port: leave it out for an ephemeral port",
            ));
        }
        if self.scope_separator.is_empty() {
            return Err(invalid("scope_separator is empty"));
        }
        if let IdentitySource::Userinfo { .. } = self.identity
            && self.userinfo_endpoint.is_none()
        {
            return Err(invalid("identity comes from userinfo but userinfo_endpoint is missing"));
        }
        if let Some(id) = &self.client_id
            && id.trim().is_empty()
        {
            return Err(invalid("client_id is empty"));
        }
        Ok(())
    }

    /// Whether `openid` is among the default scopes (then a nonce is sent and an `id_token` expected).
    pub fn is_openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        id = "example"
        display_name = "Example"
        authorization_endpoint = "https://example.com/authorize"
        token_endpoint = "https://example.com/token"
        identity = { source = "id_token" }
    "#;

    #[test]
    fn minimal_definition_gets_standard_defaults() {
        let spec = ProviderSpec::from_toml("example", MINIMAL).unwrap();
        assert_eq!(spec.scope_separator, " ");
        assert_eq!(spec.client_auth, ClientAuth::None);
        assert!(spec.pkce);
        assert_eq!(spec.loopback_host, "127.0.0.1");
        assert_eq!(spec.redirect_path, "/callback");
        assert_eq!(spec.param_names.client_id, "client_id");
    }

    #[test]
    fn round_trips_through_toml() {
        let spec = ProviderSpec::from_toml("example", MINIMAL).unwrap();
        let again = ProviderSpec::from_toml("again", &spec.to_toml().unwrap()).unwrap();
        assert_eq!(spec, again);
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let remote = MINIMAL.replace("https://example.com/token", "http://example.com/token");
        let err = ProviderSpec::from_toml("x", &remote).unwrap_err();
        assert!(err.to_string().contains("must use https"), "{err}");
        let local = MINIMAL.replace("https://example.com/token", "http://127.0.0.1:8080/token");
        ProviderSpec::from_toml("x", &local).unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let typo = format!("{MINIMAL}\nscope_seperator = \",\"");
        let err = ProviderSpec::from_toml("typo", &typo).unwrap_err();
        assert!(err.to_string().contains("scope_seperator"), "{err}");
        let userinfo = MINIMAL.replace(r#"{ source = "id_token" }"#, r#"{ source = "userinfo" }"#);
        let err = ProviderSpec::from_toml("u", &userinfo).unwrap_err();
        assert!(err.to_string().contains("userinfo_endpoint is missing"), "{err}");
    }

    #[test]
    fn provider_ids_are_validated() {
        for good in ["youtube", "x", "my-idp-2"] {
            ProviderId::parse(good).unwrap();
        }
        for bad in ["", "YouTube", "a b", "-x", "tokens/x", &"a".repeat(41)] {
            assert!(ProviderId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
