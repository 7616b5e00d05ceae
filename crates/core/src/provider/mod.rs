//! Providers as data: where a platform's OAuth endpoints are and how its dialect of OAuth 2.0 differs.
//!
//! A [`ProviderSpec`] is parsed from TOML (the built-in catalog in `crates/core/providers/`, or a user's custom
//! provider) and validated once. The OAuth flow reads only the validated spec, so a platform quirk — a renamed
//! parameter, comma-separated scopes, a non-standard token response — is a field here, never a branch in the flow.

pub mod atproto;
pub mod builtin;
pub mod catalog;
pub mod config;
pub mod discovery;
pub mod instance;

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
    /// HTTP Basic with the client id and an EMPTY password: a public client that the platform still wants in an
    /// `Authorization` header (Reddit's installed apps, which have no secret).
    #[serde(alias = "basic-id")]
    ClientIdBasic,
}

impl ClientAuth {
    /// Whether this method needs a client secret.
    pub fn needs_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }

    /// The name used in the CLI (`none|basic|post|basic-id`) and the UI (and accepted in TOML).
    pub fn short_name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "basic",
            Self::ClientSecretPost => "post",
            Self::ClientIdBasic => "basic-id",
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
        /// Claims to try, in order, for the address of the account's picture (OpenID Connect's `picture`).
        #[serde(
            default = "default_picture_claims",
            skip_serializing_if = "is_default_picture_claims"
        )]
        picture_claims: Vec<String>,
    },
    /// A GET to the userinfo endpoint with the new access token.
    Userinfo {
        /// Claims to try, in order; a dotted path reaches into nested objects (`data.username`).
        #[serde(default = "default_account_claims")]
        account_claims: Vec<String>,
        /// Claim holding the stable subject id (`sub`, `id`, `data.id`).
        #[serde(default = "default_subject_claim")]
        subject_claim: String,
        /// Claims to try, in order, for the address of the account's picture (`data.profile_image_url`). It is
        /// fetched once, at connect, and stored sealed; an empty list fetches none.
        #[serde(
            default = "default_picture_claims",
            skip_serializing_if = "is_default_picture_claims"
        )]
        picture_claims: Vec<String>,
    },
    /// The AT Protocol's identity (Bluesky): the token response's `sub` is the account's DID, checked against the
    /// DID's document, its PDS and that PDS's authorization server (see [`atproto`]); the account is shown by its
    /// handle when the handle and the DID name each other, else by the DID.
    Atproto {},
}

impl IdentitySource {
    /// The claims that may hold the address of the account's picture.
    pub fn picture_claims(&self) -> &[String] {
        match self {
            Self::IdToken { picture_claims, .. } | Self::Userinfo { picture_claims, .. } => picture_claims,
            Self::Atproto {} => &[],
        }
    }
}

fn default_picture_claims() -> Vec<String> {
    vec!["picture".to_owned()]
}

// A provider written out (`providers export`, the profile's config) says only what differs from the default.
#[allow(clippy::ptr_arg)] // serde's `skip_serializing_if` passes `&Vec<String>`
fn is_default_picture_claims(claims: &Vec<String>) -> bool {
    claims.len() == 1 && claims[0] == "picture"
}

fn default_account_claims() -> Vec<String> {
    ["email", "preferred_username", "name", "sub"]
        .map(String::from)
        .to_vec()
}

fn default_subject_claim() -> String {
    "sub".to_owned()
}

/// How the PKCE code challenge is derived from the verifier (RFC 7636 §4.2), or no PKCE at all.
///
/// In TOML: `"s256"` (the standard: base64url of SHA-256), `"hex"` (TikTok's desktop flow: the hex encoding of
/// SHA-256, with `code_challenge_method=S256`), `"off"` (for platforms that refuse a `code_verifier`, such as
/// LinkedIn's standard flow). `true` and `false` are read as `"s256"` and `"off"`, as older definitions wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pkce {
    /// `code_challenge = BASE64URL(SHA256(verifier))`, method `S256`.
    #[default]
    S256,
    /// `code_challenge = HEX(SHA256(verifier))`, method `S256`.
    Hex,
    /// No PKCE parameters are sent.
    Off,
}

/// Pushed authorization requests (RFC 9126): the authorization parameters are POSTed to the platform first, and
/// the browser gets only `client_id` and the `request_uri` it answered, so nothing of the request can be read or
/// changed on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Par {
    /// Used when the definition names a `pushed_authorization_request_endpoint`.
    #[default]
    Auto,
    /// The platform requires it (`require_pushed_authorization_requests`): a definition without the endpoint is
    /// invalid.
    Required,
    /// Never used, even when the endpoint is known (`providers add --no-par`).
    Off,
}

/// Whether tokens are bound to a key with DPoP (RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpopUse {
    /// Bearer tokens (RFC 6750).
    #[default]
    Off,
    /// Proofs are sent (the platform advertises ES256 proofs); if it still answers with a bearer token, the
    /// connection keeps that token unbound.
    Auto,
    /// The platform binds every token (Bluesky): an unbound answer is refused.
    Required,
}

impl DpopUse {
    /// Whether requests carry proofs.
    pub fn is_on(self) -> bool {
        self != Self::Off
    }
}

impl Pkce {
    /// Whether a verifier is made and sent.
    pub fn is_on(self) -> bool {
        self != Self::Off
    }

    /// The name used in TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "s256",
            Self::Hex => "hex",
            Self::Off => "off",
        }
    }
}

impl Serialize for Pkce {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Pkce {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Flag(bool),
            Name(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Flag(true) => Ok(Self::S256),
            Written::Flag(false) => Ok(Self::Off),
            Written::Name(name) => match name.as_str() {
                "s256" | "S256" => Ok(Self::S256),
                "hex" => Ok(Self::Hex),
                "off" | "none" => Ok(Self::Off),
                other => Err(serde::de::Error::custom(format!(
                    "pkce = {other:?} is not a PKCE method: use \"s256\", \"hex\" or \"off\""
                ))),
            },
        }
    }
}

/// Which token a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// The access token.
    Access,
    /// The refresh token.
    Refresh,
}

impl TokenRole {
    /// `access` or `refresh`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

/// HTTP methods a provider's extra endpoints use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`, parameters in the query.
    Get,
    /// `POST`, parameters as a form body (`application/x-www-form-urlencoded`) unless said otherwise.
    #[default]
    Post,
    /// `DELETE`, parameters in the query.
    Delete,
}

/// Where a request's parameters go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamsIn {
    /// A form body (RFC 6749 and RFC 7009 style).
    #[default]
    Body,
    /// The query string (Kick's revocation, every `GET` and `DELETE`).
    Query,
}

/// How the platform revokes tokens (RFC 7009 by default: a form POST of the refresh token, then the access token,
/// each with `token_type_hint` and the client's authentication). Each token is revoked on its own: one failure
/// never skips the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevocationStyle {
    /// Which tokens the endpoint takes, in the order they are revoked (TikTok and Twitch: the access token only).
    pub tokens: Vec<TokenRole>,
    /// The HTTP method (Facebook: `DELETE /me/permissions`).
    pub method: Method,
    /// Where the parameters go (Kick: the query string).
    pub params_in: ParamsIn,
    /// The name of the token parameter (`token`; Facebook's `access_token`).
    pub token_param: String,
    /// The name of the hint parameter, or `""` to send none (`token_type_hint`; Kick's `token_hint_type`).
    pub hint_param: String,
    /// How the client identifies itself: as at the token endpoint (`client`), by its id alone (`client_id`:
    /// Twitch), or not at all (`none`: Facebook's Graph call, Kick).
    pub client_auth: RevocationAuth,
}

/// How the client identifies itself to the revocation endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationAuth {
    /// As at the token endpoint (the client's `client_auth`).
    #[default]
    Client,
    /// The client id only, in the parameters.
    ClientId,
    /// Not at all: the token is enough.
    None,
}

impl Default for RevocationStyle {
    fn default() -> Self {
        Self {
            tokens: vec![TokenRole::Refresh, TokenRole::Access],
            method: Method::Post,
            params_in: ParamsIn::Body,
            token_param: "token".into(),
            hint_param: "token_type_hint".into(),
            client_auth: RevocationAuth::Client,
        }
    }
}

/// What an instance template writes for the server's origin (`"{instance}/oauth/token"`); the person's server takes
/// its place when Tokenkeep registers there ([`instance`]).
pub const INSTANCE_PLACEHOLDER: &str = "{instance}";

/// The origin a template's endpoints have until a server is chosen: a name that can never resolve (RFC 6761 §6.4),
/// so a template can be parsed, listed and exported, but never reaches a network.
pub const TEMPLATE_ORIGIN: &str = "https://instance.invalid";

/// A platform that runs on many servers, each its own authorization server (Mastodon): the definition is a
/// template until the person names their server, and Tokenkeep registers an app there itself (no developer
/// console), keeping the client it gets as that server's own provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// The server this definition belongs to, once registered there; unset in the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Url>,
    /// Path of the server's RFC 8414 metadata (`/.well-known/oauth-authorization-server`), read for its endpoints
    /// and for PKCE support (`code_challenge_methods_supported`). A server without it (Mastodon before 4.3) keeps
    /// the template's endpoints, and PKCE is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_path: Option<String>,
    /// Path of the app registration endpoint (`/api/v1/apps`), used unless the metadata names one
    /// (`app_registration_endpoint`).
    pub registration_path: String,
    /// The name the app registers under (shown to the person on the server's consent page).
    pub client_name: String,
    /// Whether PKCE S256 was found supported at registration (recorded for `providers show`; `pkce` is what is used).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pkce_supported: bool,
}

impl InstanceSpec {
    /// The origin the endpoints must share: the server's, or [`TEMPLATE_ORIGIN`] in the template.
    pub fn effective_origin(&self) -> Url {
        self.origin
            .clone()
            .unwrap_or_else(|| Url::parse(TEMPLATE_ORIGIN).expect("a valid constant URL"))
    }
}

/// The values a [`TokenCall`]'s parameters may name.
pub const PLACEHOLDERS: [&str; 4] = ["{client_id}", "{client_secret}", "{access_token}", "{refresh_token}"];

/// A request to one of the platform's non-standard token endpoints: a long-lived token exchange, or a refresh
/// that takes the access token itself. Parameter values may name `{client_id}`, `{client_secret}`,
/// `{access_token}` and `{refresh_token}`; nothing else is substituted. The answer is read like a token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCall {
    /// The endpoint.
    pub url: Url,
    /// The HTTP method (Meta's exchanges are `GET`s).
    #[serde(default)]
    pub method: Method,
    /// The parameters, in the query for `GET`, in a form body for `POST`.
    pub params: BTreeMap<String, String>,
}

/// How connections of this platform are refreshed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "grant", deny_unknown_fields)]
pub enum RefreshStyle {
    /// The refresh-token grant of RFC 6749 §6 at the token endpoint (the default).
    #[default]
    RefreshToken,
    /// A call that takes the (long-lived) access token and returns a new one (Instagram's `ig_refresh_token`,
    /// Threads' `th_refresh_token`), allowed only once the token is `min_age_secs` old.
    AccessToken {
        /// The refresh call.
        #[serde(flatten)]
        call: TokenCall,
        /// How old the token must be before the platform refreshes it (Instagram, Threads: 24 hours).
        #[serde(default)]
        min_age_secs: u64,
    },
    /// The platform cannot refresh: when the token ends, the person signs in again (Facebook Pages, Kick without
    /// refresh). A refresh token, if one comes, is ignored.
    None,
}

/// Checking a token with the platform on a timer, where the platform requires it (Twitch: at start and hourly).
/// A token the platform no longer accepts makes the connection need a reconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// The endpoint, called with `GET` and the access token in the `Authorization` header.
    pub url: Url,
    /// How often.
    pub interval_secs: u64,
    /// The scheme of the `Authorization` header (`Bearer`; Twitch's validate wants `OAuth`).
    #[serde(default = "default_bearer")]
    pub scheme: String,
}

fn default_bearer() -> String {
    "Bearer".to_owned()
}

/// How the browser's answer reaches Tokenkeep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectMode {
    /// A loopback listener receives the callback (RFC 8252 §7.3).
    #[default]
    Loopback,
    /// The platform redirects only to a registered https page (Instagram, Threads, Facebook): the person copies
    /// the address the browser lands on and pastes it into Tokenkeep, which checks it exactly like a callback.
    Paste,
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
    /// The RFC 9126 endpoint that takes pushed authorization requests (see [`Self::par`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<Url>,
    /// When the authorization request is pushed first.
    #[serde(default, skip_serializing_if = "is_default")]
    pub par: Par,
    /// Whether tokens are bound to a key (DPoP).
    #[serde(default, skip_serializing_if = "is_default")]
    pub dpop: DpopUse,
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
    /// PKCE and how the challenge is encoded. Only `off` for platforms that reject it.
    #[serde(default)]
    pub pkce: Pkce,
    /// Other spellings of the issuer the platform uses in `iss` (Google: `accounts.google.com` without the scheme).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuer_aliases: Vec<String>,
    /// Headers sent with every request to the platform (Reddit wants a descriptive `User-Agent`). `{version}` is
    /// Tokenkeep's version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_headers: BTreeMap<String, String>,
    /// How tokens are revoked, when `revocation_endpoint` is set.
    #[serde(default, skip_serializing_if = "is_default")]
    pub revocation: RevocationStyle,
    /// A call right after the code exchange that trades the short-lived access token for a long-lived one (Meta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_lived: Option<TokenCall>,
    /// How connections are refreshed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub refresh: RefreshStyle,
    /// The access token's lifetime when the token response gives no `expires_in` (Instagram's short-lived
    /// token: one hour). Unset: such a token is taken to live until the platform says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_expires_in_secs: Option<u64>,
    /// The refresh token's (or the session's) absolute lifetime when the token response does not say
    /// (`refresh_expires_in`); Tokenkeep warns before it ends, since only a new sign-in extends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_lifetime_secs: Option<u64>,
    /// How long before the session's absolute end the person is told (default: 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_warning_secs: Option<u64>,
    /// Error bodies that are not OAuth's (Twitch's `{"status", "message"}`, Pinterest's `{"code", "message"}`), read
    /// as OAuth error codes: a fragment of the `message` (compared without case) → the code it means, e.g.
    /// `"invalid refresh token" = "invalid_grant"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_codes: BTreeMap<String, String>,
    /// Where the token response's fields sit, as a dotted path (`data`, `data.0`), for platforms that wrap them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_response_path: Option<String>,
    /// Checking tokens with the platform on a timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    /// How the browser's answer comes back.
    #[serde(default, skip_serializing_if = "is_default")]
    pub redirect: RedirectMode,
    /// For `redirect = "paste"`: the https page registered with the platform, which the browser lands on. Usually
    /// the person's own setting (`providers add ID --redirect-uri URL`), since they registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<Url>,
    /// A message added when the platform rejects a refresh (`invalid_grant`), saying the likely cause (Google:
    /// apps in "Testing" get refresh tokens that die after 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_grant_hint: Option<String>,
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
    /// The platform, for the mark the window draws beside its accounts (`youtube`, `mastodon`: the servers of a
    /// platform of many share it). Unset for custom providers, which get a letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// For platforms that run on many servers: the template, or the server this definition was registered at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceSpec>,
    /// The platform's API, against which `tokenkeep api CONNECTION PATH` resolves a relative path
    /// (`https://www.googleapis.com/`). Its host is one of [`Self::api_hosts`] without being listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<Url>,
    /// The hosts the platform's access tokens are for (`www.googleapis.com`, `youtube.googleapis.com`):
    /// `tokenkeep api` sends a token to no other. Empty: the hosts of `api_base`, the issuer and the userinfo
    /// endpoint (see [`Self::allowed_api_hosts`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_hosts: Vec<String>,
    /// How the platform's API pages its lists, for `tokenkeep api --paginate` (unset: no paging).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_pagination: Option<ApiPagination>,
    /// The AT Protocol's OAuth profile (Bluesky): accounts resolved from handles and DIDs, tokens checked against
    /// the account's own server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atproto: Option<AtprotoProfile>,
}

/// Where a platform on the AT Protocol resolves identities (see [`atproto`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtprotoProfile {
    /// The PLC directory that answers `did:plc` documents (`https://plc.directory`).
    #[serde(default = "default_plc_directory")]
    pub plc_directory: Url,
}

fn default_plc_directory() -> Url {
    Url::parse(atproto::DEFAULT_PLC_DIRECTORY).expect("a valid URL")
}

/// How a platform's API says where the next page of a list is (`tokenkeep api --paginate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "style", deny_unknown_fields)]
pub enum ApiPagination {
    /// A cursor in the answer's JSON, sent back as a query parameter: YouTube's `nextPageToken` → `pageToken`.
    Cursor {
        /// Where the cursor is: a dotted path (`meta.next_token`). Absent, `null` or empty: the last page.
        next: String,
        /// The query parameter that carries it to the next request (`pagination_token`).
        param: String,
    },
    /// The next page's whole URL in the answer's JSON: Meta's `paging.next`. Absent or `null`: the last page.
    NextUrl {
        /// Where the URL is: a dotted path.
        next: String,
    },
    /// An RFC 8288 `Link: <URL>; rel="next"` header (Mastodon). None: the last page.
    LinkHeader,
}

fn default_scope_separator() -> String {
    " ".to_owned()
}
fn default_client_auth() -> ClientAuth {
    ClientAuth::None
}
fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
fn default_loopback_host() -> String {
    "127.0.0.1".to_owned()
}
fn default_redirect_path() -> String {
    "/callback".to_owned()
}

/// An endpoint must be https, or plain http on a loopback host (test peers, emulations).
fn check_secure(provider: &str, endpoint: &'static str, url: &Url) -> Result<(), ProviderError> {
    let loopback = url.host_str().is_some_and(is_loopback_host);
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(())
    } else {
        Err(ProviderError::InsecureEndpoint {
            provider: provider.to_owned(),
            endpoint,
            url: url.to_string(),
        })
    }
}

/// A host name as `api_hosts` lists it: lowercase letters, digits, `-` and `.` (a DNS name or an IPv4 address).
fn is_api_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && !host.contains("..")
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

impl ProviderSpec {
    /// The endpoint authorization requests are pushed to, when they are (see [`Par`]).
    pub fn par_endpoint(&self) -> Option<&Url> {
        match self.par {
            Par::Off => None,
            Par::Auto | Par::Required => self.pushed_authorization_request_endpoint.as_ref(),
        }
    }

    /// The hosts `tokenkeep api` may send this provider's access tokens to: [`Self::api_hosts`] and the host of
    /// [`Self::api_base`]; when the definition lists none, the hosts of its issuer and userinfo endpoint too (a
    /// custom OpenID provider's own API). Lowercase, without duplicates, in that order.
    pub fn allowed_api_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.api_hosts.clone();
        let mut add = |host: Option<&str>| {
            if let Some(host) = host.map(str::to_ascii_lowercase)
                && !hosts.contains(&host)
            {
                hosts.push(host);
            }
        };
        add(self.api_base.as_ref().and_then(Url::host_str));
        if self.api_hosts.is_empty() {
            let issuer = self.issuer.as_deref().and_then(|issuer| Url::parse(issuer).ok());
            add(issuer.as_ref().and_then(Url::host_str));
            add(self.userinfo_endpoint.as_ref().and_then(Url::host_str));
        }
        hosts
    }
}

/// True for hosts that never leave the machine.
///
/// Names under `.localhost` count too: RFC 6761 §6.3 reserves them for this machine, and Tokenkeep's HTTP client
/// ([`crate::http::ReqwestHttp`]) connects them to 127.0.0.1 whatever DNS says.
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") || crate::http::is_localhost_name(host)
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
            (
                "pushed_authorization_request",
                self.pushed_authorization_request_endpoint.as_ref(),
            ),
            ("api_base", self.api_base.as_ref()),
        ];
        for (endpoint, url) in endpoints {
            let Some(url) = url else { continue };
            check_secure(&provider, endpoint, url)?;
        }
        let invalid = |message: &str| ProviderError::Invalid {
            provider: provider.clone(),
            message: message.to_owned(),
        };
        if self.display_name.trim().is_empty() {
            return Err(invalid("display_name is empty"));
        }
        if let Some(profile) = &self.atproto {
            check_secure(&provider, "plc_directory", &profile.plc_directory)?;
            // The atproto OAuth profile makes all three mandatory, and the identity is the token's `sub`.
            if self.dpop != DpopUse::Required
                || self.par != Par::Required
                || self.pkce != Pkce::S256
                || !matches!(self.identity, IdentitySource::Atproto {})
            {
                return Err(invalid(
                    "[atproto] needs dpop = \"required\", par = \"required\", pkce = \"s256\" and identity = { source = \"atproto\" }",
                ));
            }
        } else if matches!(self.identity, IdentitySource::Atproto {}) {
            return Err(invalid(
                "identity = { source = \"atproto\" } needs an [atproto] section",
            ));
        }
        if self.par == Par::Required && self.pushed_authorization_request_endpoint.is_none() {
            return Err(invalid(
                "par = \"required\" needs a pushed_authorization_request_endpoint",
            ));
        }
        if let Some(platform) = &self.platform
            && (platform.is_empty()
                || platform.len() > 32
                || !platform
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        {
            return Err(invalid("platform must be 1 to 32 of a-z, 0-9 and -"));
        }
        for (field, text) in [
            ("display_name", Some(&self.display_name)),
            ("invalid_grant_hint", self.invalid_grant_hint.as_ref()),
        ] {
            if let Some(text) = text
                && !crate::text::is_clean(text)
            {
                return Err(invalid(&format!(
                    "{field} holds control, invisible or bidirectional characters, or spaces at its ends: it is \
                     shown in terminals and notifications, so write it as plain text"
                )));
            }
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
        if let Some(base) = &self.api_base
            && (base.query().is_some() || base.fragment().is_some() || base.host_str().is_none())
        {
            return Err(invalid("api_base must be a plain https URL (no query or fragment)"));
        }
        match &self.api_pagination {
            Some(ApiPagination::Cursor { next, param }) if next.is_empty() || param.is_empty() => {
                return Err(invalid(
                    "api_pagination: a cursor needs `next` (a dotted path) and `param`",
                ));
            }
            Some(ApiPagination::NextUrl { next }) if next.is_empty() => {
                return Err(invalid("api_pagination: next_url needs `next` (a dotted path)"));
            }
            _ => {}
        }
        if let Some(host) = self.api_hosts.iter().find(|host| !is_api_host(host)) {
            return Err(invalid(&format!(
                "api_hosts: {:?} is not a host name (write it as in a URL, lowercase, without scheme, port or path: \
                 \"www.googleapis.com\")",
                crate::text::clean(host, 64)
            )));
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
        let calls = [
            ("long_lived", self.long_lived.as_ref()),
            (
                "refresh",
                match &self.refresh {
                    RefreshStyle::AccessToken { call, .. } => Some(call),
                    _ => None,
                },
            ),
        ];
        for (name, call) in calls {
            let Some(call) = call else { continue };
            check_secure(&provider, name, &call.url)?;
            for (param, value) in &call.params {
                if value.starts_with('{') && !PLACEHOLDERS.contains(&value.as_str()) {
                    return Err(invalid(&format!(
                        "[{name}] parameter {param} = {value:?} names no known value: use one of {}",
                        PLACEHOLDERS.join(", ")
                    )));
                }
            }
        }
        if let Some(validation) = &self.validation {
            check_secure(&provider, "validation", &validation.url)?;
            if validation.interval_secs < 60 {
                return Err(invalid("[validation] interval_secs must be at least 60"));
            }
        }
        if let Some(uri) = &self.redirect_uri
            && uri.scheme() != "https"
        {
            return Err(invalid(
                "redirect_uri is for platforms that redirect to an https page: it must start with https://",
            ));
        }
        for (name, value) in &self.http_headers {
            let value = value.replace("{version}", "0");
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() || http::HeaderValue::from_str(&value).is_err() {
                return Err(invalid(&format!("[http_headers] {name:?} is not a valid HTTP header")));
            }
        }
        if self.revocation.tokens.is_empty() {
            return Err(invalid(
                "[revocation] tokens is empty: leave revocation_endpoint out instead",
            ));
        }
        if self.revocation.token_param.is_empty() {
            return Err(invalid("[revocation] token_param is empty"));
        }
        if let Some(instance) = &self.instance {
            self.validate_instance(instance).map_err(|m| invalid(&m))?;
        }
        Ok(())
    }

    /// An instance's endpoints all live on its server (a metadata document cannot send tokens elsewhere), and its
    /// paths are plain paths.
    fn validate_instance(&self, instance: &InstanceSpec) -> Result<(), String> {
        let origin = instance.effective_origin();
        if let Some(server) = &instance.origin {
            let loopback = server.host_str().is_some_and(is_loopback_host);
            if !(server.scheme() == "https" || (server.scheme() == "http" && loopback)) {
                return Err(format!("[instance] origin {server} must use https"));
            }
            if server.path() != "/" || server.query().is_some() || server.fragment().is_some() {
                return Err(format!(
                    "[instance] origin {server} must be a bare origin, without a path"
                ));
            }
        }
        for (name, path) in [
            ("registration_path", Some(&instance.registration_path)),
            ("metadata_path", instance.metadata_path.as_ref()),
        ] {
            let Some(path) = path else { continue };
            if !path.starts_with('/') || path.contains(['?', '#']) {
                return Err(format!("[instance] {name} must be a plain path starting with '/'"));
            }
        }
        if instance.client_name.trim().is_empty() {
            return Err("[instance] client_name is empty".into());
        }
        let endpoints = [
            ("authorization_endpoint", Some(&self.authorization_endpoint)),
            ("token_endpoint", Some(&self.token_endpoint)),
            ("revocation_endpoint", self.revocation_endpoint.as_ref()),
            ("userinfo_endpoint", self.userinfo_endpoint.as_ref()),
        ];
        for (name, url) in endpoints {
            if let Some(url) = url
                && url.origin() != origin.origin()
            {
                return Err(format!(
                    "{name} {url} is not on the server {origin}: an instance's endpoints are all its own (write                      them as \"{INSTANCE_PLACEHOLDER}/path\" in a template)"
                ));
            }
        }
        Ok(())
    }

    /// Whether this is an instance template (Mastodon before a server is named): listed, never connected.
    pub fn is_template(&self) -> bool {
        self.instance.as_ref().is_some_and(|i| i.origin.is_none())
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
        assert_eq!(spec.pkce, Pkce::S256);
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

/// Arbitrary provider definition files (issue 12): any text is a validated provider or an error, never a panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text_is_a_provider_or_an_error(text in "\\PC{0,300}") {
            let _ = ProviderSpec::from_toml("custom", &text);
            let _ = builtin::parse_definition("custom", &text);
        }

        #[test]
        fn definition_shaped_text_is_a_provider_or_an_error(
            name in prop_oneof!["[A-Za-z0-9 ]{1,20}", "\\PC{0,30}"],
            url in prop_oneof![Just("https://x.example/a".to_owned()), "\\PC{0,30}"],
            scopes in proptest::collection::vec(prop_oneof!["[a-z]{1,8}", "\\PC{0,10}"], 0..4),
        ) {
            let text = format!(
                "id = \"custom\"\ndisplay_name = {name:?}\nauthorization_endpoint = {url:?}\n\
                 token_endpoint = \"https://x.example/token\"\nscopes = {scopes:?}\n\
                 identity = {{ source = \"userinfo\", account_claims = [\"name\"], subject_claim = \"id\" }}\n\
                 userinfo_endpoint = \"https://x.example/me\"\n"
            );
            let ok = ProviderSpec::from_toml("custom", &text);
            if let Ok(spec) = &ok {
                prop_assert!(crate::text::is_clean(&spec.display_name));
            }
            // The shape is right: a plain name and an https address must be accepted.
            if name.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') && !name.is_empty() && crate::text::is_clean(&name)
                && url.starts_with("https://") && scopes.iter().all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                prop_assert!(ok.is_ok(), "{text}: {ok:?}");
            }
        }
    }
}
