//! The OAuth 2.0 / OpenID Connect test peer (`tests/js/peer.mjs`, on `oidc-provider`) and the headless-browser
//! login driver (`tests/js/login.mjs`, headless Chromium through playwright-core), seen from Rust.
//!
//! **Invariant:** everything here talks to 127.0.0.1 only; the peer is plain HTTP on an ephemeral loopback port.
//!
//! # Clients the peer knows
//! | id | authentication | secret |
//! |---|---|---|
//! | [`PUBLIC_CLIENT_ID`] | `none` (public native client) | — |
//! | [`BASIC_CLIENT_ID`] | `client_secret_basic` | [`BASIC_CLIENT_SECRET`] |
//! | [`POST_CLIENT_ID`] | `client_secret_post` | [`POST_CLIENT_SECRET`] |
//!
//! All are native clients with `http://127.0.0.1/callback`, `http://localhost/callback` and `http://[::1]/callback`
//! registered without a port, so any loopback port matches (RFC 8252 §7.3). PKCE S256 is required for all. The dev
//! login page accepts any login name and password; the name becomes `sub`, and "alice" gets the email
//! `alice@example.test`, the name "Alice" and the preferred_username "alice". Scopes: [`SCOPES`].
//!
//! # The strict peer ([`PeerConfig::strict`])
//! An atproto-style authorization server (<https://atproto.com/specs/oauth>): pushed authorization requests
//! (RFC 9126) and DPoP with server nonces (RFC 9449) are required, token responses carry `sub`, and three more
//! public clients exist, all bound to DPoP (`dpop_bound_access_tokens`):
//! | id | redirect URIs |
//! |---|---|
//! | [`DPOP_CLIENT_ID`] | the three above |
//! | [`ATPROTO_LOOPBACK_CLIENT_ID`] (atproto's "localhost" development client) | `http://127.0.0.1/callback` |
//! | [`ATPROTO_HOSTED_CLIENT_ID`] (registered statically: the peer fetches no metadata) | `http://127.0.0.1/callback` |
//!
//! In every mode the resource server (`/api/*`, `/xrpc/*`) demands a DPoP proof with a DPoP-bound token, and
//! `/.well-known/oauth-authorization-server` and `/.well-known/oauth-protected-resource` answer
//! ([`OidcPeer::well_known`]). The rules, error answers and [`ApiRequest::authorization`] kinds are documented
//! in the header of `tests/js/peer.mjs`.
//!
//! # The `TOKENKEEP_BROWSER` convention
//! `TOKENKEEP_BROWSER` is a command line **split on ASCII whitespace, without any quoting**; the app appends the
//! authorization URL as the last argument and runs it. [`tokenkeep_browser`] gives the value for the login driver,
//! `node /abs/path/tests/js/login.mjs`, and refuses a checkout path that contains whitespace. The driver reads
//! `PEER_LOGIN` (default `alice`), `PEER_ACTION` (`approve`, the default, or `decline`), `PEER_LOG` (a file for its
//! log) and `PEER_TIMEOUT` (seconds, default 60) from its environment, and exits 0 once the redirect URI's page
//! has loaded.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::{Guarded, first_line, scratch_dir, workspace_root};

/// The public native client (`token_endpoint_auth_method: none`).
pub const PUBLIC_CLIENT_ID: &str = "tokenkeep-public";
/// The confidential client that authenticates with HTTP Basic (`client_secret_basic`).
pub const BASIC_CLIENT_ID: &str = "tokenkeep-basic";
/// The secret of [`BASIC_CLIENT_ID`] (a fixed test value).
pub const BASIC_CLIENT_SECRET: &str = "tokenkeep-basic-secret";
/// The confidential client that sends its secret in the form body (`client_secret_post`).
pub const POST_CLIENT_ID: &str = "tokenkeep-post";
/// The secret of [`POST_CLIENT_ID`] (a fixed test value).
pub const POST_CLIENT_SECRET: &str = "tokenkeep-post-secret";
/// Every scope the peer supports.
pub const SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "videos.read",
    "videos.upload",
    "atproto",
    "transition:generic",
];
/// The strict peer's public native client that must use DPoP.
pub const DPOP_CLIENT_ID: &str = "tokenkeep-dpop";
/// The strict peer's atproto "localhost" development client: its redirect URI and scope are in its id
/// (<https://atproto.com/specs/oauth#localhost-client-development>).
pub const ATPROTO_LOOPBACK_CLIENT_ID: &str =
    "http://localhost?redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=atproto%20transition%3Ageneric";
/// The strict peer's hosted atproto client (a client-metadata URL as client id, registered statically).
pub const ATPROTO_HOSTED_CLIENT_ID: &str = "https://tokenkeep.example/client-metadata.json";
/// The scope the atproto clients ask for.
pub const ATPROTO_SCOPE: &str = "atproto transition:generic";

/// How long the peer may take to print its address (it takes well under a second).
const START_LIMIT: Duration = Duration::from_secs(15);

/// `tests/js`, where the peer and the driver live.
pub fn js_dir() -> PathBuf {
    workspace_root().join("tests").join("js")
}

/// Fails with the fix when `npm ci` has not been run in `tests/js`.
fn ensure_node_modules() -> Result<()> {
    let modules = js_dir().join("node_modules");
    for package in ["oidc-provider", "playwright-core"] {
        if !modules.join(package).join("package.json").is_file() {
            bail!(
                "{} is missing {package}: run `npm ci` in tests/js (cargo xtask test does)",
                modules.display()
            );
        }
    }
    Ok(())
}

/// The peer's settings at start. [`PeerConfig::default`] is what `peer.mjs` uses without `--config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Access-token lifetime in seconds (default 3600).
    pub access_token_ttl: u64,
    /// Refresh-token lifetime in seconds (default 14 days).
    pub refresh_token_ttl: u64,
    /// Whether each refresh returns a new refresh token (default true). Reusing a rotated one revokes the grant.
    pub rotate_refresh_token: bool,
    /// Leeway in seconds on expiry (default 0, so expiry is sharp; oidc-provider's own default is 15).
    pub clock_tolerance: u64,
    /// The strict, atproto-style peer (default false): PAR and DPoP with nonces required, `sub` in token
    /// responses, and the DPoP/atproto clients (see the module docs).
    pub strict: bool,
    /// The endpoints at bsky.social's paths (`/oauth/par`, `/oauth/token`, …; default false), so the shipped
    /// `bluesky` preset runs against the peer with only its host moved.
    pub bsky_routes: bool,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: 3600,
            refresh_token_ttl: 14 * 24 * 60 * 60,
            rotate_refresh_token: true,
            clock_tolerance: 0,
            strict: false,
            bsky_routes: false,
        }
    }
}

impl PeerConfig {
    fn to_json(&self) -> Value {
        json!({
            "accessTokenTtl": self.access_token_ttl,
            "refreshTokenTtl": self.refresh_token_ttl,
            "rotateRefreshToken": self.rotate_refresh_token,
            "clockTolerance": self.clock_tolerance,
            "strict": self.strict,
            "bskyRoutes": self.bsky_routes,
        })
    }
}

/// Settings the peer can change while running ([`OidcPeer::reconfigure`]); `None` leaves one as it is. They apply
/// to tokens issued afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerChange {
    /// New access-token lifetime in seconds.
    pub access_token_ttl: Option<u64>,
    /// New refresh-token lifetime in seconds.
    pub refresh_token_ttl: Option<u64>,
    /// Turn refresh-token rotation on or off.
    pub rotate_refresh_token: Option<bool>,
}

/// The peer's request counters (`GET /__admin/stats`), since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Requests to the token endpoint, whatever their outcome.
    pub token_requests: u64,
    /// Token-endpoint requests that failed.
    pub token_errors: u64,
    /// `authorization_code` grants (successful and failed).
    pub code_exchanges: u64,
    /// Failed `authorization_code` grants.
    pub code_exchange_errors: u64,
    /// `refresh_token` grants (successful and failed).
    pub refresh_requests: u64,
    /// Failed `refresh_token` grants.
    pub refresh_errors: u64,
    /// Requests to the introspection endpoint.
    pub introspections: u64,
    /// Requests to the revocation endpoint.
    pub revocations: u64,
    /// Requests to the userinfo endpoint.
    pub userinfo_requests: u64,
    /// Requests to the authorization endpoint.
    pub authorizations: u64,
    /// Grants revoked through `/__admin/revoke-grant`.
    pub admin_revoked_grants: u64,
    /// Requests for the account pictures the `picture` claim names.
    pub picture_requests: u64,
    /// Requests to the pushed-authorization-request endpoint (`/request`).
    pub par_requests: u64,
    /// Answers `use_dpop_nonce` (token endpoint, PAR, userinfo, resource server).
    pub dpop_nonce_challenges: u64,
    /// DPoP proofs refused otherwise: `invalid_dpop_proof`, or a proof by a key other than the token's.
    pub dpop_proofs_rejected: u64,
}

/// The scope of [`OidcPeer::mint`]ed grants.
pub const MINT_SCOPE: &str = "openid offline_access videos.read";

/// What [`OidcPeer::mint_with`] makes. [`MintRequest::new`] gives what [`OidcPeer::mint`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    /// The account (it becomes `sub`).
    pub account: String,
    /// How many grants (1..=5000).
    pub count: usize,
    /// The client the grants belong to.
    pub client_id: String,
    /// The granted scope, space-separated.
    pub scope: String,
    /// The RFC 7638 SHA-256 thumbprint (base64url) of a DPoP public key: the access tokens (and a public client's
    /// refresh tokens) are bound to it (`cnf.jkt`). `None`: bearer tokens.
    pub jkt: Option<String>,
}

impl MintRequest {
    /// One grant for `account`, for [`PUBLIC_CLIENT_ID`] with [`MINT_SCOPE`], unbound.
    pub fn new(account: &str) -> Self {
        Self {
            account: account.to_owned(),
            count: 1,
            client_id: PUBLIC_CLIENT_ID.to_owned(),
            scope: MINT_SCOPE.to_owned(),
            jkt: None,
        }
    }
}

/// How the token endpoint fails during a TEST-ONLY outage ([`OidcPeer::outage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The socket is destroyed without an answer, as if the server were down.
    Drop,
    /// HTTP 503 `temporarily_unavailable`, with `Retry-After: S` when given.
    Unavailable {
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// HTTP 429 `temporarily_unavailable`, with `Retry-After: S` when given.
    TooManyRequests {
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// No outage (ends one in force).
    Off,
}

impl Outage {
    fn name(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Unavailable { .. } => "503",
            Self::TooManyRequests { .. } => "429",
            Self::Off => "off",
        }
    }
}

/// The outage in force, per the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutageState {
    /// `drop`, `503`, `429`, or `off` when none is in force.
    pub mode: String,
    /// How much longer it lasts.
    pub remaining: Duration,
    /// How many token requests the current (or last) outage failed.
    pub affected: u64,
}

impl OutageState {
    fn parse(body: &Value) -> Result<Self> {
        Ok(Self {
            mode: body["mode"]
                .as_str()
                .ok_or_else(|| anyhow!("outage answered {body}"))?
                .to_owned(),
            remaining: Duration::from_millis(
                body["remainingMs"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("outage answered {body}"))?,
            ),
            affected: body["affected"]
                .as_u64()
                .ok_or_else(|| anyhow!("outage answered {body}"))?,
        })
    }
}

/// A grant made by [`OidcPeer::mint`], with its first tokens. `Debug` shows no token.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedGrant {
    /// The grant's id at the peer.
    pub grant_id: String,
    /// Its refresh token.
    pub refresh_token: String,
    /// Its access token.
    pub access_token: String,
    /// The access token's lifetime in seconds (the peer's `accessTokenTtl`).
    pub expires_in: u64,
    /// The granted scope, space-separated.
    pub scope: String,
    /// The access token's type: `Bearer`, or `DPoP` when it is bound to a key.
    pub token_type: String,
}

impl std::fmt::Debug for MintedGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedGrant")
            .field("grant_id", &self.grant_id)
            .field("refresh_token", &"<redacted>")
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// What the peer issued for one account ([`OidcPeer::tokens_of`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountTokens {
    /// Access and refresh tokens issued since the peer started.
    pub issued: u64,
    /// How many of them are still active (as introspection would say).
    pub active: u64,
    /// Active access tokens.
    pub active_access: u64,
    /// Active refresh tokens.
    pub active_refresh: u64,
    /// Grants of the account that still exist.
    pub live_grants: u64,
}

/// One request the peer's resource server received (`GET /__admin/api`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The `Host` header: which name the client used for the peer.
    pub host: String,
    /// What it carried (never the token): `none`, `other`, `bearer-valid`, `bearer-invalid`, or for DPoP
    /// (RFC 9449) `dpop-valid`, `dpop-no-proof` (a bound token as Bearer, or the DPoP scheme without a proof),
    /// `dpop-bad-proof`, `dpop-no-nonce`, `dpop-invalid` (a dead token) or `dpop-wrong-key` (see `peer.mjs`).
    pub authorization: String,
}

/// One token the peer issued ([`OidcPeer::issued_tokens_of`]). `Debug` shows its kind, never its value.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// `AccessToken` or `RefreshToken` (oidc-provider's model names).
    pub kind: String,
    /// The token itself (opaque).
    pub value: String,
    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if it is bound.
    pub jkt: Option<String>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("kind", &self.kind)
            .field("value", &"<redacted>")
            .field("jkt", &self.jkt)
            .finish()
    }
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth<'a> {
    /// A public client: `client_id` in the form, no secret.
    None {
        /// The client id.
        client_id: &'a str,
    },
    /// `client_secret_basic`: id and secret in an `Authorization: Basic` header.
    Basic {
        /// The client id.
        client_id: &'a str,
        /// The client secret.
        secret: &'a str,
    },
    /// `client_secret_post`: id and secret in the form body.
    Post {
        /// The client id.
        client_id: &'a str,
        /// The client secret.
        secret: &'a str,
    },
}

impl ClientAuth<'static> {
    /// The public client [`PUBLIC_CLIENT_ID`].
    pub const PUBLIC: Self = Self::None {
        client_id: PUBLIC_CLIENT_ID,
    };
    /// [`BASIC_CLIENT_ID`] with its right secret.
    pub const BASIC: Self = Self::Basic {
        client_id: BASIC_CLIENT_ID,
        secret: BASIC_CLIENT_SECRET,
    };
    /// [`POST_CLIENT_ID`] with its right secret.
    pub const POST: Self = Self::Post {
        client_id: POST_CLIENT_ID,
        secret: POST_CLIENT_SECRET,
    };
}

/// An HTTP answer from the peer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct PeerResponse {
    /// The HTTP status.
    pub status: u16,
    /// The parsed body.
    pub body: Value,
}

impl PeerResponse {
    /// The OAuth `error` code of a failed request, if any.
    pub fn error(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    /// A string field of the body, or an error naming it (never the body itself: it may hold tokens).
    pub fn str_field(&self, name: &str) -> Result<&str> {
        self.body
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("the response (HTTP {}) has no string {name:?}", self.status))
    }
}

/// A running test peer. Its whole process group is stopped on drop.
#[derive(Debug)]
pub struct OidcPeer {
    issuer: String,
    port: u16,
    discovery: Value,
    log: PathBuf,
    agent: ureq::Agent,
    _process: Guarded,
}

impl OidcPeer {
    /// Starts `node tests/js/peer.mjs --config …` and waits (with a time limit) for its address and for its
    /// discovery document. Its log goes to `peer.log` in a fresh scratch directory ([`OidcPeer::log_path`]).
    pub fn start(config: &PeerConfig) -> Result<Self> {
        ensure_node_modules()?;
        let NodeServer {
            process,
            address: issuer,
            port,
            log,
        } = start_node_server(
            "peer.mjs",
            "the OAuth test peer",
            "oidc-peer",
            &config.to_json(),
            "issuer",
        )?;
        let agent = loopback_agent();
        let mut peer = Self {
            issuer,
            port,
            discovery: Value::Null,
            log,
            agent,
            _process: process,
        };
        let discovery = peer.get("/.well-known/openid-configuration")?;
        ensure!(discovery.status == 200, "discovery answered HTTP {}", discovery.status);
        ensure!(
            discovery.body["issuer"] == peer.issuer,
            "discovery names another issuer"
        );
        peer.discovery = discovery.body;
        Ok(peer)
    }

    /// The peer's process id (a benchmark reads its CPU time in `/proc`).
    pub fn pid(&self) -> u32 {
        self._process.id()
    }

    /// The issuer, exactly `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The peer's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The peer's log (stderr): one line per request (method, path, status), never a token.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> &Value {
        &self.discovery
    }

    /// `GET /.well-known/NAME`, e.g. `well_known("oauth-protected-resource")` or
    /// `well_known("oauth-authorization-server")`. Any HTTP status is returned, not an error.
    pub fn well_known(&self, name: &str) -> Result<PeerResponse> {
        self.get(&format!("/.well-known/{name}"))
    }

    /// An endpoint from the discovery document, e.g. `endpoint("token_endpoint")`.
    pub fn endpoint(&self, name: &str) -> Result<&str> {
        self.discovery[name]
            .as_str()
            .ok_or_else(|| anyhow!("the discovery document has no {name}"))
    }

    /// The authorization endpoint.
    pub fn authorization_endpoint(&self) -> Result<&str> {
        self.endpoint("authorization_endpoint")
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> Result<&str> {
        self.endpoint("token_endpoint")
    }

    /// POSTs `form` to the token endpoint, authenticated as `auth`. Any HTTP status is returned, not an error.
    pub fn token_request(&self, auth: ClientAuth<'_>, form: &[(&str, &str)]) -> Result<PeerResponse> {
        let url = self.token_endpoint()?.to_owned();
        self.post_form(&url, auth, form)
    }

    /// POSTs `form` to `url` (an endpoint of this peer), authenticated as `auth`.
    pub fn post_form(&self, url: &str, auth: ClientAuth<'_>, form: &[(&str, &str)]) -> Result<PeerResponse> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.agent.post(url);
        match auth {
            ClientAuth::None { client_id } => fields.push(("client_id", client_id)),
            ClientAuth::Basic { client_id, secret } => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
                request = request.header("Authorization", format!("Basic {}", STANDARD.encode(pair)));
            }
            ClientAuth::Post { client_id, secret } => {
                fields.push(("client_id", client_id));
                fields.push(("client_secret", secret));
            }
        }
        let response = request
            .send_form(fields)
            .with_context(|| format!("POST {url} failed"))?;
        into_peer_response(response)
    }

    /// Introspects `token` as the confidential client [`BASIC_CLIENT_ID`] (introspection needs client
    /// authentication). The answer's `active` says whether the token is alive.
    pub fn introspect(&self, token: &str) -> Result<Value> {
        let url = self.endpoint("introspection_endpoint")?.to_owned();
        let response = self.post_form(&url, ClientAuth::BASIC, &[("token", token)])?;
        ensure!(
            response.status == 200,
            "introspection answered HTTP {}: {:?}",
            response.status,
            response.error()
        );
        Ok(response.body)
    }

    /// Whether `token` (access or refresh) is active, per introspection.
    pub fn is_active(&self, token: &str) -> Result<bool> {
        Ok(self.introspect(token)?["active"] == Value::Bool(true))
    }

    /// The userinfo endpoint called with `access_token`.
    pub fn userinfo(&self, access_token: &str) -> Result<PeerResponse> {
        let url = self.endpoint("userinfo_endpoint")?;
        let response = self
            .agent
            .get(url)
            .header("Authorization", format!("Bearer {access_token}"))
            .call()
            .with_context(|| format!("GET {url} failed"))?;
        into_peer_response(response)
    }

    /// TEST-ONLY admin: revokes every grant of `account` with all its tokens, behind the client's back. Returns
    /// how many grants were revoked.
    pub fn revoke_grant_for(&self, account: &str) -> Result<u64> {
        self.admin_revoke(json!({ "account": account }))
    }

    /// TEST-ONLY admin: revokes the grant that `token` (access or refresh) belongs to. Returns 0 or 1.
    pub fn revoke_grant_of_token(&self, token: &str) -> Result<u64> {
        self.admin_revoke(json!({ "token": token }))
    }

    fn admin_revoke(&self, body: Value) -> Result<u64> {
        let response = self.post_json("/__admin/revoke-grant", &body)?;
        response.body["revoked"]
            .as_u64()
            .ok_or_else(|| anyhow!("revoke-grant answered {}", response.body))
    }

    /// TEST-ONLY admin: changes settings for tokens issued from now on; returns the settings now in force.
    pub fn reconfigure(&self, change: &PeerChange) -> Result<Value> {
        let mut body = serde_json::Map::new();
        if let Some(ttl) = change.access_token_ttl {
            body.insert("accessTokenTtl".into(), ttl.into());
        }
        if let Some(ttl) = change.refresh_token_ttl {
            body.insert("refreshTokenTtl".into(), ttl.into());
        }
        if let Some(rotate) = change.rotate_refresh_token {
            body.insert("rotateRefreshToken".into(), rotate.into());
        }
        Ok(self.post_json("/__admin/config", &Value::Object(body))?.body)
    }

    /// TEST-ONLY admin: the request counters.
    pub fn stats(&self) -> Result<PeerStats> {
        let response = self.get("/__admin/stats")?;
        ensure!(response.status == 200, "stats answered HTTP {}", response.status);
        let field = |name: &str| {
            response.body[name]
                .as_u64()
                .ok_or_else(|| anyhow!("stats lack {name:?}: {}", response.body))
        };
        Ok(PeerStats {
            token_requests: field("tokenRequests")?,
            token_errors: field("tokenErrors")?,
            code_exchanges: field("codeExchanges")?,
            code_exchange_errors: field("codeExchangeErrors")?,
            refresh_requests: field("refreshRequests")?,
            refresh_errors: field("refreshErrors")?,
            introspections: field("introspections")?,
            revocations: field("revocations")?,
            userinfo_requests: field("userinfoRequests")?,
            authorizations: field("authorizations")?,
            admin_revoked_grants: field("adminRevokedGrants")?,
            picture_requests: field("pictureRequests")?,
            par_requests: field("parRequests")?,
            dpop_nonce_challenges: field("dpopNonceChallenges")?,
            dpop_proofs_rejected: field("dpopProofsRejected")?,
        })
    }

    /// TEST-ONLY admin: for `seconds`, every request to the token endpoint fails the way `mode` says while the
    /// peer keeps all its state (grants, tokens); `Outage::Off` ends an outage at once. Other endpoints keep
    /// working. Returns the outage now in force.
    pub fn outage(&self, mode: Outage, seconds: u64) -> Result<OutageState> {
        self.outage_of(mode, seconds, &["token"])
    }

    /// TEST-ONLY admin: as [`Self::outage`], for the endpoints named (`token`, `revocation`): a provider down
    /// altogether fails both.
    pub fn outage_of(&self, mode: Outage, seconds: u64, endpoints: &[&str]) -> Result<OutageState> {
        let mut body = json!({ "mode": mode.name(), "seconds": seconds, "endpoints": endpoints });
        if let Outage::Unavailable { retry_after: Some(s) } | Outage::TooManyRequests { retry_after: Some(s) } = mode {
            body["retryAfter"] = s.into();
        }
        OutageState::parse(&self.post_json("/__admin/outage", &body)?.body)
    }

    /// TEST-ONLY admin: the outage in force (if any) and how many token requests the current or last one failed.
    pub fn outage_state(&self) -> Result<OutageState> {
        let response = self.get("/__admin/outage")?;
        ensure!(response.status == 200, "outage answered HTTP {}", response.status);
        OutageState::parse(&response.body)
    }

    /// TEST-ONLY admin: creates `count` grants for `account` without a browser, through oidc-provider's own
    /// models, for the public client with [`MINT_SCOPE`]. The tokens behave like ones from a code exchange
    /// (rotation, reuse detection, introspection, revocation).
    pub fn mint(&self, account: &str, count: usize) -> Result<Vec<MintedGrant>> {
        self.mint_with(&MintRequest {
            count,
            ..MintRequest::new(account)
        })
    }

    /// TEST-ONLY admin: as [`Self::mint`], with every choice open: the client, the scope, and a DPoP key to bind
    /// the tokens to ([`MintRequest::jkt`]).
    pub fn mint_with(&self, request: &MintRequest) -> Result<Vec<MintedGrant>> {
        let mut body = json!({
            "account": request.account,
            "count": request.count,
            "clientId": request.client_id,
            "scope": request.scope,
        });
        if let Some(jkt) = &request.jkt {
            body["jkt"] = jkt.as_str().into();
        }
        let count = request.count;
        let response = self.post_json("/__admin/mint", &body)?;
        let grants = response.body["grants"]
            .as_array()
            .ok_or_else(|| anyhow!("mint answered without grants"))?;
        ensure!(grants.len() == count, "mint made {} grants, not {count}", grants.len());
        grants
            .iter()
            .map(|g| {
                let field = |name: &str| {
                    g[name]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("a minted grant lacks {name:?}"))
                };
                Ok(MintedGrant {
                    grant_id: field("grantId")?,
                    refresh_token: field("refreshToken")?,
                    access_token: field("accessToken")?,
                    expires_in: g["expiresIn"]
                        .as_u64()
                        .ok_or_else(|| anyhow!("a minted grant lacks expiresIn"))?,
                    scope: field("scope")?,
                    token_type: field("tokenType")?,
                })
            })
            .collect()
    }

    /// TEST-ONLY admin: every access and refresh token the peer ever issued for `account` (code exchange, refresh,
    /// mint), and how many are still active by the rules of introspection.
    pub fn tokens_of(&self, account: &str) -> Result<AccountTokens> {
        let response = self.post_json("/__admin/tokens", &json!({ "account": account }))?;
        let field = |name: &str| {
            response.body[name]
                .as_u64()
                .ok_or_else(|| anyhow!("tokens answered without {name:?}: {}", response.body))
        };
        Ok(AccountTokens {
            issued: field("issued")?,
            active: field("active")?,
            active_access: field("activeAccess")?,
            active_refresh: field("activeRefresh")?,
            live_grants: field("liveGrants")?,
        })
    }

    /// TEST-ONLY admin: the values of every access and refresh token the peer ever issued for `account`, active or
    /// not, oldest first: what a test needs to prove that none of them leaked (into a page, a log, a file).
    pub fn issued_tokens_of(&self, account: &str) -> Result<Vec<IssuedToken>> {
        let response = self.post_json("/__admin/tokens", &json!({ "account": account, "values": true }))?;
        let values = response.body["values"]
            .as_array()
            .ok_or_else(|| anyhow!("tokens answered without \"values\""))?;
        values
            .iter()
            .map(|t| {
                let field = |name: &str| {
                    t[name]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("an issued token lacks {name:?}"))
                };
                Ok(IssuedToken {
                    kind: field("kind")?,
                    value: field("value")?,
                    jkt: t["jkt"].as_str().map(str::to_owned),
                })
            })
            .collect()
    }

    /// TEST-ONLY admin: the next `count` requests to the resource server answer 401 `invalid_token` whatever
    /// their token.
    pub fn refuse_api_requests(&self, count: u32) -> Result<()> {
        self.post_json("/__admin/api", &json!({ "refuseNext": count }))?;
        Ok(())
    }

    /// TEST-ONLY admin: every request the resource server (`/api/*` and `/xrpc/*`) received, oldest first.
    pub fn api_requests(&self) -> Result<Vec<ApiRequest>> {
        let response = self.get("/__admin/api")?;
        ensure!(response.status == 200, "/__admin/api answered HTTP {}", response.status);
        let requests = response
            .body
            .as_array()
            .ok_or_else(|| anyhow!("/__admin/api answered {}", response.body))?;
        requests
            .iter()
            .map(|r| {
                let field = |name: &str| {
                    r[name]
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("an API request lacks {name:?}: {r}"))
                };
                Ok(ApiRequest {
                    method: field("method")?,
                    path: field("path")?,
                    host: field("host")?,
                    authorization: field("authorization")?,
                })
            })
            .collect()
    }

    fn get(&self, path: &str) -> Result<PeerResponse> {
        let url = format!("{}{path}", self.issuer);
        let response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url} failed"))?;
        into_peer_response(response)
    }

    fn post_json(&self, path: &str, body: &Value) -> Result<PeerResponse> {
        let url = format!("{}{path}", self.issuer);
        let response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("POST {url} failed"))?;
        let response = into_peer_response(response)?;
        ensure!(
            response.status == 200,
            "{path} answered HTTP {}: {}",
            response.status,
            response.body
        );
        Ok(response)
    }
}

fn into_peer_response(mut response: ureq::http::Response<ureq::Body>) -> Result<PeerResponse> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .context("could not read the peer's answer")?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(PeerResponse { status, body })
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub(crate) fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(could not read {}: {e})", path.display()))
}

/// A test server of `tests/js` started and ready.
pub(crate) struct NodeServer {
    /// Its process group, stopped on drop.
    pub(crate) process: Guarded,
    /// The address it announced: `http://127.0.0.1:PORT`.
    pub(crate) address: String,
    /// Its port.
    pub(crate) port: u16,
    /// Its log (stderr), in a fresh scratch directory.
    pub(crate) log: PathBuf,
}

/// Starts `node tests/js/SCRIPT --config CONFIG` (`what` names it in errors; its log goes to a fresh scratch
/// directory `scratch`) and waits, within the start limit, for the one line it prints when ready:
/// `{"FIELD": "http://127.0.0.1:PORT", "port": PORT}`.
pub(crate) fn start_node_server(
    script: &str,
    what: &'static str,
    scratch: &str,
    config: &Value,
    field: &str,
) -> Result<NodeServer> {
    let log = scratch_dir(scratch)?.join(format!("{}.log", script.trim_end_matches(".mjs")));
    let mut process = Guarded::spawn(
        what,
        Command::new("node")
            .arg(js_dir().join(script))
            .arg("--config")
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?),
    )
    .context("is node installed and on PATH?")?;
    let line =
        first_line(process.child(), what, START_LIMIT).with_context(|| format!("its log:\n{}", read_log(&log)))?;
    let ready: Value = serde_json::from_str(&line).with_context(|| format!("{what} printed {line:?}"))?;
    let address = ready[field]
        .as_str()
        .ok_or_else(|| anyhow!("no {field} in {line:?}"))?
        .to_owned();
    let port = ready["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| anyhow!("no port in {line:?}"))?;
    ensure!(
        address == format!("http://127.0.0.1:{port}"),
        "unexpected {field} {address:?}"
    );
    Ok(NodeServer {
        process,
        address,
        port,
        log,
    })
}

/// An HTTP client for the loopback test servers: answers of any status are answers, no redirects followed, 10 s.
pub fn loopback_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // IMPORTANT: never route loopback requests through a proxy from the environment.
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// The login driver as a program and its arguments, before the URL: `("node", ["/abs/tests/js/login.mjs"])`.
pub fn login_driver_command() -> Result<(String, Vec<String>)> {
    ensure_node_modules()?;
    let script = js_dir().join("login.mjs");
    let script = script
        .to_str()
        .ok_or_else(|| anyhow!("{} is not UTF-8", script.display()))?;
    Ok(("node".to_owned(), vec![script.to_owned()]))
}

/// The value of `TOKENKEEP_BROWSER` that makes the app use the login driver: `node /abs/tests/js/login.mjs`.
/// The app splits it on ASCII whitespace (no quoting) and appends the URL, so a path with whitespace is refused.
pub fn tokenkeep_browser() -> Result<String> {
    let (program, args) = login_driver_command()?;
    let parts: Vec<String> = std::iter::once(program).chain(args).collect();
    if let Some(part) = parts.iter().find(|p| p.contains(|c: char| c.is_ascii_whitespace())) {
        bail!("TOKENKEEP_BROWSER cannot carry {part:?}: the checkout path must not contain whitespace");
    }
    Ok(parts.join(" "))
}

/// What the login driver should do on the peer's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// The login name (`PEER_LOGIN`); it becomes the account id and `sub`.
    pub login: String,
    /// `true` approves the consent (`PEER_ACTION=approve`), `false` presses Cancel (→ `error=access_denied`).
    pub approve: bool,
    /// How long the driver may take before it is killed.
    pub limit: Duration,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            login: "alice".to_owned(),
            approve: true,
            limit: Duration::from_secs(60),
        }
    }
}

/// Runs the login driver on `authorize_url` in the foreground, as the app would through `TOKENKEEP_BROWSER`, and
/// waits for it (with `options.limit`; Chromium is killed with the driver's process group). Fails with the
/// driver's log (which never holds codes or tokens) when it does not exit 0. Returns how long it took.
pub fn run_login_driver(authorize_url: &str, options: &LoginOptions) -> Result<Duration> {
    let (program, args) = login_driver_command()?;
    let dir = scratch_dir("login-driver")?;
    let log = dir.join("login.log");
    let started = Instant::now();
    let mut driver = Guarded::spawn(
        "the login driver (node tests/js/login.mjs)",
        Command::new(&program)
            .args(&args)
            .arg(authorize_url)
            .env("PEER_LOGIN", &options.login)
            .env("PEER_ACTION", if options.approve { "approve" } else { "decline" })
            .env("PEER_TIMEOUT", options.limit.as_secs().max(1).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?),
    )
    .context("is node installed and on PATH?")?;
    // The driver has its own watchdog at `limit`; give it a moment past that to report before killing it.
    let deadline = started + options.limit + Duration::from_secs(5);
    loop {
        if let Some(status) = driver.child().try_wait()? {
            ensure!(
                status.success(),
                "the login driver failed ({status}):\n{}",
                read_log(&log)
            );
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "the login driver did not finish within {:?}:\n{}",
                options.limit,
                read_log(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
