//! The OAuth 2.0 authorization-code flow for native apps (RFC 8252), on the `oauth2` crate.
//!
//! [`Authorization::start`] binds the loopback listener and builds the authorization URL: PKCE S256, a random
//! `state`, and a `nonce` when `openid` is asked. The caller opens that URL in the system browser.
//! [`Authorization::finish`] waits for the one valid callback (time-limited; dropping the future cancels it and
//! closes the port), checks `iss` (RFC 9207), exchanges the code, validates the `id_token`, learns who the account
//! is, and answers the browser with the outcome. Nothing here logs or returns a code, verifier, state or token:
//! errors carry only provider error codes and short descriptions, and every secret is registered with the log
//! redactor the moment it exists.

mod dialect;
#[cfg(test)]
mod flow_tests;
mod identity;
mod loopback;
mod refresh;
mod revoke;
mod token_response;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardRevocableToken, TokenResponse,
    TokenUrl,
};
use url::Url;

pub(crate) use self::dialect::{json_path, validate};
pub use self::identity::{AccountIdentity, IdentityError};
use self::loopback::{Callback, LoopbackListener, Responder};
pub use self::refresh::{Grant, RefreshFailure, Refreshed, refresh_tokens};
pub use self::revoke::{RevokeError, TokenHint, revoke};
use self::token_response::ProviderTokenResponse;
use crate::dpop::DpopKey;
use crate::http::{HttpError, HttpRequest, HttpResponse, SharedHttp};
use crate::logging::register_secret;
use crate::provider::atproto::{self, AccountHint, AtprotoError, ResolvedAccount};
use crate::provider::{ClientAuth, DpopUse, Pkce, ProviderSpec, RedirectMode};
use crate::secret::SecretString;
use crate::store::TokenSet;

/// How long the browser has to come back before the flow gives up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The OAuth client of one provider: its id and, for confidential clients, its secret.
#[derive(Debug)]
pub struct ClientCredentials {
    /// The client id registered with the platform.
    pub client_id: String,
    /// The client secret, for `client_secret_basic` / `client_secret_post`.
    pub client_secret: Option<SecretString>,
}

/// Why a connection could not be made. Messages never contain a code, verifier, state or token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The provider needs a client secret and none was given.
    #[error("{provider} uses {auth} client authentication, which needs a client secret: add one and try again")]
    MissingClientSecret {
        /// Provider display name.
        provider: String,
        /// The method configured.
        auth: &'static str,
    },
    /// The loopback listener could not be started.
    #[error("could not listen for the browser on 127.0.0.1: {0}")]
    Listener(std::io::Error),
    /// A URL in the provider definition is unusable.
    #[error("the provider definition is unusable: {0}")]
    Configuration(String),
    /// Nobody came back from the browser in time.
    #[error(
        "the sign-in timed out after {} without an answer from the browser; start again when ready",
        human_duration(*.0)
    )]
    Timeout(Duration),
    /// The user declined on the consent page.
    #[error("you declined the request at {0}; nothing was connected")]
    Declined(String),
    /// The provider ended the authorization with an error.
    #[error("{provider} refused the sign-in: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Authorization {
        /// Provider display name.
        provider: String,
        /// The `error` code.
        error: String,
        /// The provider's description, sanitized.
        description: Option<String>,
    },
    /// The callback's `iss` is not the provider's issuer: a mix-up attack or a misconfiguration.
    #[error("the sign-in response came from {got}, not from {expected}; it was refused (RFC 9207)")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the callback.
        got: String,
    },
    /// The callback had the right state but neither a code nor an error.
    #[error("the provider's sign-in response was malformed (no authorization code)")]
    MalformedCallback,
    /// The pasted address cannot be this sign-in's answer (the message says why; it never repeats the address).
    #[error("the pasted address was refused: {0}")]
    PastedAddress(String),
    /// No address was pasted.
    #[error("no address was pasted; nothing was connected")]
    NoAddressPasted,
    /// The token endpoint refused the code.
    #[error("{provider} refused to issue tokens: {error}{}", quoted(.description.as_deref()))]
    TokenRejected {
        /// Provider display name.
        provider: String,
        /// The OAuth `error` code (`invalid_grant`, `invalid_client`, …).
        error: String,
        /// The platform's own explanation (printable, short, secrets masked), which often says what to fix.
        description: Option<String>,
    },
    /// The token endpoint could not be reached.
    #[error("could not reach {provider}'s token endpoint: {source}")]
    TokenEndpoint {
        /// Provider display name.
        provider: String,
        /// What failed.
        #[source]
        source: HttpError,
    },
    /// The token endpoint answered with something that is not a usable token response.
    #[error("{provider}'s token endpoint sent an unusable answer (HTTP {status}): {detail}")]
    MalformedTokenResponse {
        /// Provider display name.
        provider: String,
        /// HTTP status of the answer.
        status: u16,
        /// What is wrong with it (never its content).
        detail: String,
    },
    /// The AT Protocol account could not be resolved, or the tokens are not for it (see `provider::atproto`).
    #[error(transparent)]
    Account(AtprotoError),
    /// The pushed authorization request (RFC 9126) could not be made.
    #[error("could not reach {provider}'s pushed authorization endpoint: {source}")]
    PushedRequest {
        /// Provider display name.
        provider: String,
        /// What failed.
        #[source]
        source: HttpError,
    },
    /// The account could not be identified.
    #[error("connected to {provider}, but {source}")]
    Identity {
        /// Provider display name.
        provider: String,
        /// What failed.
        #[source]
        source: IdentityError,
    },
}

/// A completed authorization: who, which tokens, which scopes, until when.
#[derive(Debug)]
pub struct Authorized {
    /// The account.
    pub identity: AccountIdentity,
    /// The tokens, ready to seal.
    pub tokens: TokenSet,
    /// Scopes granted (as reported by the provider, else as requested).
    pub scopes: Vec<String>,
    /// When the access token expires (Unix seconds), if the provider said (or its definition has a default).
    pub expires_at: Option<u64>,
    /// When the session ends for good (the refresh token's end), if known: only a new sign-in extends it.
    pub session_ends_at: Option<u64>,
    /// The account's picture, when the provider named one and it could be fetched (see [`crate::picture`]).
    pub picture: Option<crate::picture::AccountPicture>,
    /// The account's own resource server, when its data is not at the platform's API (an atproto PDS).
    pub resource: Option<Url>,
}

/// Where an authorization waits for the browser's answer.
#[derive(Debug)]
enum Receiver {
    /// A loopback listener, bound, not yet waiting.
    Loopback(LoopbackListener),
    /// The person pastes the address the browser landed on (a registered https page).
    Paste,
}

/// The address the person copied from the browser, for platforms that redirect to an https page
/// ([`RedirectMode::Paste`](crate::provider::RedirectMode)). `None`: they gave up.
pub trait PasteSource: Send {
    /// Waits for the pasted address.
    fn pasted_address(&mut self) -> crate::http::BoxFuture<'_, Option<SecretString>>;
}

/// An authorization in progress: the listener is bound (or the paste is expected) and the URL is ready for the
/// browser.
#[derive(Debug)]
pub struct Authorization {
    spec: ProviderSpec,
    credentials: ClientCredentials,
    receiver: Receiver,
    redirect_uri: Url,
    authorize_url: Url,
    state: SecretString,
    verifier: Option<PkceCodeVerifier>,
    nonce: Option<SecretString>,
    scopes: Vec<String>,
    /// The new connection's proof key, when the provider binds tokens (made here: the pushed request carries a
    /// proof already).
    dpop: Option<DpopKey>,
    /// The AT Protocol account the person named, resolved before sign-in: the tokens must be for it.
    account: Option<ResolvedAccount>,
}

/// The `oauth2` client type for our providers: standard errors, our lenient token response.
pub(crate) type OAuthClient<HasAuth = EndpointNotSet> = oauth2::Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuth,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Builds the `oauth2` client for `spec` with `credentials` (shared by the flow and the refresh engine).
pub(crate) fn oauth_client(
    spec: &ProviderSpec,
    credentials: &ClientCredentials,
    redirect: Option<&Url>,
) -> Result<OAuthClient, FlowError> {
    if spec.client_auth.needs_secret() && credentials.client_secret.is_none() {
        return Err(FlowError::MissingClientSecret {
            provider: spec.display_name.clone(),
            auth: spec.client_auth.short_name(),
        });
    }
    let mut client = oauth2::Client::new(ClientId::new(credentials.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(spec.token_endpoint.clone()))
        .set_auth_type(match spec.client_auth {
            ClientAuth::ClientSecretBasic | ClientAuth::ClientIdBasic => AuthType::BasicAuth,
            ClientAuth::None | ClientAuth::ClientSecretPost => AuthType::RequestBody,
        });
    match (spec.client_auth, &credentials.client_secret) {
        // Basic with the client id and an empty password (Reddit's installed apps): `oauth2` sends the id in the
        // body instead when there is no secret at all.
        (ClientAuth::ClientIdBasic, _) => client = client.set_client_secret(ClientSecret::new(String::new())),
        (_, Some(secret)) => {
            client = client.set_client_secret(ClientSecret::new(secret.dangerously_expose().to_owned()));
        }
        (_, None) => {}
    }
    if let Some(redirect) = redirect {
        client = client.set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
    }
    Ok(client)
}

fn random_token() -> Result<SecretString, FlowError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| FlowError::Configuration(format!("no randomness available: {e}")))?;
    use base64::Engine as _;
    Ok(secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

impl Authorization {
    /// Binds the loopback listener and prepares the authorization URL. `scopes` overrides the provider's defaults.
    /// When the provider takes pushed authorization requests (RFC 9126), the request is pushed here, over `http`,
    /// and the URL carries only `client_id` and the `request_uri` the provider answered.
    pub async fn start(
        spec: &ProviderSpec,
        credentials: ClientCredentials,
        scopes: Option<Vec<String>>,
        http: &SharedHttp,
    ) -> Result<Self, FlowError> {
        Self::start_for(spec, credentials, scopes, None, http).await
    }

    /// [`Self::start`] for the account the person named (`login_hint`, OpenID Connect Core §3.1.2.1). On the AT
    /// Protocol (a provider with `[atproto]`) the handle or DID is resolved first: its server must be this
    /// provider's, and the tokens must come back for that DID.
    pub async fn start_for(
        spec: &ProviderSpec,
        credentials: ClientCredentials,
        scopes: Option<Vec<String>>,
        account: Option<&str>,
        http: &SharedHttp,
    ) -> Result<Self, FlowError> {
        let mut resolved = None;
        let mut login_hint = account.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
        if let (Some(profile), Some(typed)) = (&spec.atproto, &login_hint) {
            let hint = AccountHint::parse(typed).map_err(FlowError::Account)?;
            let (account, server) = atproto::resolve(&**http, &hint, &profile.plc_directory)
                .await
                .map_err(FlowError::Account)?;
            let issuer = spec.issuer.as_deref().unwrap_or_default().trim_end_matches('/');
            if server.as_str().trim_end_matches('/') != issuer {
                return Err(FlowError::Account(AtprotoError::Mismatch(format!(
                    "{typed} is served by {}, not by {}'s {issuer}: add that server as a provider of its own \
                     (`tokenkeep providers add NAME --atproto {}`)",
                    server.as_str().trim_end_matches('/'),
                    spec.display_name,
                    server.as_str().trim_end_matches('/')
                ))));
            }
            login_hint = match (&hint, &account) {
                (AccountHint::Server(_), _) => None,
                (_, Some(account)) => Some(account.handle.clone().unwrap_or_else(|| account.did.clone())),
                (_, None) => login_hint,
            };
            resolved = account;
        }
        let (receiver, redirect_uri) = match spec.redirect {
            RedirectMode::Loopback => {
                let listener = LoopbackListener::bind(&spec.loopback_host, spec.redirect_port, &spec.redirect_path)
                    .await
                    .map_err(FlowError::Listener)?;
                let uri = listener.redirect_uri().clone();
                (Receiver::Loopback(listener), uri)
            }
            RedirectMode::Paste => {
                let uri = spec.redirect_uri.clone().ok_or_else(|| {
                    FlowError::Configuration(format!(
                        "{} redirects only to an https page registered with it: set that address with \
                         `tokenkeep providers add {} --redirect-uri https://…` (or in the app)",
                        spec.display_name, spec.id
                    ))
                })?;
                (Receiver::Paste, uri)
            }
        };
        let client = oauth_client(spec, &credentials, Some(&redirect_uri))?
            .set_auth_uri(AuthUrl::from_url(spec.authorization_endpoint.clone()));
        let scopes = scopes.unwrap_or_else(|| spec.scopes.clone());
        let state = random_token()?;
        let state_for_request = SecretString::new(state.dangerously_expose().to_owned());
        let mut request =
            client.authorize_url(move || CsrfToken::new(state_for_request.dangerously_expose().to_owned()));
        if spec.scope_separator == " " {
            request = request.add_scopes(scopes.iter().cloned().map(Scope::new));
        } else if !scopes.is_empty() {
            request = request.add_extra_param("scope", scopes.join(&spec.scope_separator));
        }
        if let Some((name, value)) = renamed_client_id(spec, &credentials) {
            request = request.add_extra_param(name, value);
        }
        let verifier = match spec.pkce {
            Pkce::Off => None,
            Pkce::S256 => {
                let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
                register_secret(verifier.secret());
                request = request.set_pkce_challenge(challenge);
                Some(verifier)
            }
            Pkce::Hex => {
                // TikTok's desktop flow: the same verifier and digest, the challenge written in hex.
                let (_, verifier) = PkceCodeChallenge::new_random_sha256();
                register_secret(verifier.secret());
                request = request
                    .add_extra_param("code_challenge", dialect::hex_challenge(verifier.secret()))
                    .add_extra_param("code_challenge_method", "S256");
                Some(verifier)
            }
        };
        let nonce = if scopes.iter().any(|s| s == "openid") {
            Some(random_token()?)
        } else {
            None
        };
        if let Some(nonce) = &nonce {
            request = request.add_extra_param("nonce", nonce.dangerously_expose().to_owned());
        }
        for (name, value) in &spec.authorize_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        if let Some(hint) = &login_hint {
            request = request.add_extra_param("login_hint", hint.clone());
        }
        let (mut authorize_url, _state) = request.url();
        let dpop = if spec.dpop.is_on() {
            Some(DpopKey::generate().map_err(|e| FlowError::Configuration(e.to_string()))?)
        } else {
            None
        };
        if let Some(endpoint) = spec.par_endpoint() {
            authorize_url = push_request(spec, &credentials, endpoint, &authorize_url, dpop.as_ref(), http).await?;
        }
        tracing::info!(
            provider = %spec.id,
            redirect = %redirect_uri,
            pushed = spec.par_endpoint().is_some(),
            bound = dpop.is_some(),
            "authorization started"
        );
        Ok(Self {
            spec: spec.clone(),
            credentials,
            receiver,
            redirect_uri,
            authorize_url,
            state,
            verifier,
            nonce,
            scopes,
            dpop,
            account: resolved,
        })
    }

    /// The URL to open in the system browser.
    pub fn authorize_url(&self) -> &Url {
        &self.authorize_url
    }

    /// The redirect URI of this authorization: the loopback listener's, or the registered https page's.
    pub fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Whether the person must paste the address the browser lands on (an https redirect).
    pub fn needs_paste(&self) -> bool {
        matches!(self.receiver, Receiver::Paste)
    }

    /// Waits (at most `timeout`) for the browser — the loopback callback, or the address `paste` hands over —
    /// then completes the authorization. Drop the future to cancel.
    pub async fn finish(
        self,
        http: &SharedHttp,
        now: impl Fn() -> SystemTime,
        timeout: Duration,
        paste: &mut dyn PasteSource,
    ) -> Result<Authorized, FlowError> {
        let Self {
            spec,
            credentials,
            receiver,
            redirect_uri,
            authorize_url: _,
            state,
            verifier,
            nonce,
            scopes,
            dpop,
            account,
        } = self;
        let timed_out = || {
            tracing::warn!(provider = %spec.id, timeout_secs = timeout.as_secs(), "authorization timed out");
            FlowError::Timeout(timeout)
        };
        let (callback, responder) = match receiver {
            Receiver::Loopback(listener) => {
                let (callback, responder) = tokio::time::timeout(timeout, listener.wait(&state))
                    .await
                    .map_err(|_| timed_out())?;
                (callback, Some(responder))
            }
            Receiver::Paste => {
                let pasted = tokio::time::timeout(timeout, paste.pasted_address())
                    .await
                    .map_err(|_| timed_out())?
                    .ok_or(FlowError::NoAddressPasted)?;
                (pasted_callback(&redirect_uri, &pasted, &state)?, None)
            }
        };
        // From here on the port is closed: exactly one callback was accepted.
        let result = complete(
            &spec,
            &credentials,
            &redirect_uri,
            callback,
            verifier,
            nonce.as_ref(),
            scopes,
            dpop,
            account,
            http,
            now,
        )
        .await;
        match (&result, responder) {
            (Ok(done), Some(responder)) => {
                responder
                    .respond(
                        200,
                        "Connected",
                        &format!(
                            "Tokenkeep is now connected to {} as {}. You can close this tab.",
                            spec.display_name, done.identity.account
                        ),
                    )
                    .await;
            }
            (Err(error), Some(responder)) => respond_error(responder, error).await,
            (_, None) => {}
        }
        match &result {
            Ok(_) => tracing::info!(provider = %spec.id, "account connected"),
            Err(error) => tracing::warn!(provider = %spec.id, %error, "authorization failed"),
        }
        result
    }
}

/// Pushes the authorization request that `prepared` carries in its query to `endpoint` (RFC 9126 §2), with the
/// client's authentication as at the token endpoint and a proof when tokens are bound, and returns the address
/// for the browser: the authorization endpoint with `client_id` and the `request_uri` answered (§4).
async fn push_request(
    spec: &ProviderSpec,
    credentials: &ClientCredentials,
    endpoint: &Url,
    prepared: &Url,
    dpop: Option<&DpopKey>,
    http: &SharedHttp,
) -> Result<Url, FlowError> {
    let provider = spec.display_name.clone();
    // Built before the first await: the form serializer is not `Send`.
    let request = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(prepared.query_pairs());
        let mut request = http::Request::post(endpoint.as_str())
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json");
        match (spec.client_auth, &credentials.client_secret) {
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                request = request.header(
                    http::header::AUTHORIZATION,
                    basic_auth(&credentials.client_id, secret.dangerously_expose()),
                );
            }
            (ClientAuth::ClientIdBasic, _) => {
                request = request.header(http::header::AUTHORIZATION, basic_auth(&credentials.client_id, ""));
            }
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                form.append_pair("client_secret", secret.dangerously_expose());
            }
            _ => {}
        }
        let body = zeroize::Zeroizing::new(form.finish());
        request
            .body(body.as_bytes().to_vec())
            .map_err(|e| FlowError::Configuration(e.to_string()))?
    };
    let observed = ObservedHttp::for_spec(http.clone(), spec).with_dpop(dpop);
    let response = observed
        .call(request)
        .await
        .map_err(|source| FlowError::PushedRequest {
            provider: provider.clone(),
            source,
        })?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        return Err(FlowError::Authorization {
            provider,
            error: body.get("error").and_then(|e| e.as_str()).map_or_else(
                || format!("HTTP {status} from the pushed authorization endpoint"),
                |e| crate::text::clean(e, 64),
            ),
            description: body
                .get("error_description")
                .and_then(|d| d.as_str())
                .and_then(dialect::safe_description),
        });
    }
    let request_uri = serde_json::from_slice::<serde_json::Value>(response.body())
        .ok()
        .and_then(|body| body.get("request_uri").and_then(|u| u.as_str()).map(str::to_owned))
        .filter(|uri| !uri.is_empty() && uri.len() <= 2048)
        .ok_or_else(|| FlowError::MalformedTokenResponse {
            provider: spec.display_name.clone(),
            status,
            detail: "the pushed authorization endpoint answered with no request_uri".into(),
        })?;
    let mut url = spec.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair(&spec.param_names.client_id, &credentials.client_id)
        .append_pair("request_uri", &request_uri);
    if spec.param_names.client_id != "client_id" {
        url.query_pairs_mut().append_pair("client_id", &credentials.client_id);
    }
    Ok(url)
}

/// An `Authorization: Basic` value for a client: RFC 6749 §2.3.1 form-encodes id and secret before joining them
/// (the pushed request and revocation; `oauth2` does the same for the token endpoint).
pub(crate) fn basic_auth(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    // RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding.
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = zeroize::Zeroizing::new(format!("{}:{}", enc(id), enc(secret)));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    )
}

/// Checks a pasted address as the loopback listener checks a callback: it must be the registered redirect page
/// (scheme, host, port and path; Meta appends `#_`, and any fragment is ignored) and carry our `state`.
fn pasted_callback(redirect: &Url, pasted: &SecretString, state: &SecretString) -> Result<Callback, FlowError> {
    let text = pasted.dangerously_expose().trim();
    let Ok(url) = Url::parse(text) else {
        return Err(FlowError::PastedAddress(
            "that is not a web address: copy the whole address from the browser's address bar".into(),
        ));
    };
    let same_page = url.scheme() == redirect.scheme()
        && url.host_str() == redirect.host_str()
        && url.port_or_known_default() == redirect.port_or_known_default()
        && url.path().trim_end_matches('/') == redirect.path().trim_end_matches('/');
    if !same_page {
        return Err(FlowError::PastedAddress(format!(
            "it is not the page this sign-in returns to ({}): copy the address of the tab that opened after you \
             approved",
            redirect.as_str()
        )));
    }
    loopback::callback_from_query(url.query().unwrap_or_default(), state).map_err(|_| {
        tracing::warn!("paste: refused an address whose state is missing or does not match");
        FlowError::PastedAddress(
            "it does not belong to the sign-in Tokenkeep started (its state does not match): start again and paste \
             the address of that sign-in"
                .into(),
        )
    })
}

async fn respond_error(responder: Responder, error: &FlowError) {
    let title = match error {
        FlowError::Declined(_) => "Not connected",
        _ => "Could not connect",
    };
    responder
        .respond(
            400,
            title,
            &format!("{}. Return to Tokenkeep to try again.", capitalize(&error.to_string())),
        )
        .await;
}

/// "45 seconds", "1 minute", "5 minutes", "2 hours" — for messages.
pub fn human_duration(d: Duration) -> String {
    // Rounded to the nearest second, not truncated: 1.6 s reads "2 seconds".
    let secs = (d.as_millis() as u64).saturating_add(500) / 1000;
    let (n, unit) = match secs {
        0..=119 => (secs, "second"),
        120..=7199 => (secs.div_ceil(60), "minute"),
        _ => (secs.div_ceil(3600), "hour"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// ` ("words")` after an error code, or nothing.
fn quoted(description: Option<&str>) -> String {
    description.map(|d| format!(" (\"{d}\")")).unwrap_or_default()
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(2)), "2 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "90 seconds");
        assert_eq!(human_duration(Duration::from_secs(300)), "5 minutes");
        assert_eq!(human_duration(Duration::from_secs(7200)), "2 hours");
        assert_eq!(
            FlowError::Timeout(Duration::from_secs(2)).to_string(),
            "the sign-in timed out after 2 seconds without an answer from the browser; start again when ready"
        );
    }
}

#[allow(clippy::too_many_arguments)] // the flow's state, passed once from `finish`
async fn complete(
    spec: &ProviderSpec,
    credentials: &ClientCredentials,
    redirect: &Url,
    callback: Callback,
    verifier: Option<PkceCodeVerifier>,
    nonce: Option<&SecretString>,
    requested_scopes: Vec<String>,
    dpop: Option<DpopKey>,
    account: Option<ResolvedAccount>,
    http: &SharedHttp,
    now: impl Fn() -> SystemTime,
) -> Result<Authorized, FlowError> {
    let (code, iss) = match callback {
        Callback::Code { code, iss } => (code, iss),
        Callback::Error {
            error,
            description,
            iss,
        } => {
            check_issuer(spec, iss.as_deref())?;
            return Err(if error == "access_denied" {
                FlowError::Declined(spec.display_name.clone())
            } else {
                FlowError::Authorization {
                    provider: spec.display_name.clone(),
                    error,
                    description,
                }
            });
        }
        Callback::Malformed => return Err(FlowError::MalformedCallback),
    };
    check_issuer(spec, iss.as_deref())?;

    let client = oauth_client(spec, credentials, Some(redirect))?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.dangerously_expose().to_owned()));
    if let Some(verifier) = verifier {
        request = request.set_pkce_verifier(verifier);
    }
    if let Some((name, value)) = renamed_client_id(spec, credentials) {
        request = request.add_extra_param(name, value);
    }
    let observed = ObservedHttp::for_spec(http.clone(), spec).with_dpop(dpop.as_ref());
    let response = request
        .request_async(&observed)
        .await
        .map_err(|e| token_error(spec, &observed, e))?;
    usable(spec, &response, dpop.is_some())?;
    // RFC 9449 §5: a server that did not bind the token says `Bearer`. Where binding is optional, such a
    // connection keeps no key (its tokens are plain bearer tokens); where it is required, `usable` refused it.
    let dpop = dpop.filter(|_| response.is_dpop_bound());

    let (mut access, refresh) = take_tokens(&response);
    let id_token = response.id_token().map(|t| secret(t.dangerously_expose().to_owned()));
    let now = now();
    let mut expires_in = response.expires_in();
    // Meta's platforms: the code buys a short-lived token, which is traded at once for a long-lived one.
    if let Some(call) = &spec.long_lived {
        let long = dialect::token_call(spec, call, credentials, Some(&access), None, &observed)
            .await
            .map_err(|error| call_error(spec, "the long-lived token exchange", error))?;
        usable(spec, &long, dpop.is_some())?;
        let (long_access, _) = take_tokens(&long);
        access = long_access;
        expires_in = long.expires_in();
    }
    let identity_error = |source| FlowError::Identity {
        provider: spec.display_name.clone(),
        source,
    };
    let claims = match &id_token {
        Some(token) => {
            let claims = identity::id_token_claims(token.dangerously_expose()).map_err(identity_error)?;
            identity::validate_id_token(
                &claims,
                &identity::IdTokenExpectations {
                    issuers: issuers(spec),
                    client_id: &credentials.client_id,
                    nonce,
                    now,
                },
            )
            .map_err(identity_error)?;
            Some(claims)
        }
        // OpenID Connect Core §3.1.3.3: an `openid` request must come back with an id_token.
        None if nonce.is_some() => return Err(identity_error(IdentityError::MissingIdToken)),
        None => None,
    };
    let mut resource = None;
    let identity = match &spec.atproto {
        // The atproto profile: the token response names the DID, which must be the account asked for (when one
        // was), served by this very authorization server (atproto "OAuth" spec, "Identity Authentication").
        Some(profile) => {
            let issuer = spec.issuer.as_deref().unwrap_or_default();
            let verified = atproto::verify_subject(
                &**http,
                response.sub(),
                account.as_ref(),
                issuer,
                &profile.plc_directory,
            )
            .await
            .map_err(FlowError::Account)?;
            resource = Some(verified.pds.clone());
            AccountIdentity {
                account: verified.handle.clone().unwrap_or_else(|| verified.did.clone()),
                subject: Some(verified.did),
                picture: None,
            }
        }
        None => identity::identify(spec, &**http, claims.as_ref(), &access, dpop.as_ref())
            .await
            .map_err(identity_error)?,
    };
    // Cosmetic: without it, connecting goes on (the window draws the platform's mark). Neither the address nor
    // the bytes are logged: both are personal.
    let picture = match &identity.picture {
        Some(address) => match crate::picture::fetch(&**http, address).await {
            Ok(picture) => Some(picture),
            Err(error) => {
                tracing::info!(provider = %spec.id, %error, "the account's picture was not stored");
                None
            }
        },
        None => None,
    };
    let scopes = response
        .scopes()
        .map(|granted| granted.iter().map(|s| s.to_string()).collect())
        .unwrap_or(requested_scopes);
    Ok(Authorized {
        identity,
        tokens: TokenSet {
            access,
            refresh: if spec.refresh == crate::provider::RefreshStyle::None {
                None
            } else {
                refresh
            },
            id_token,
            dpop_key: dpop,
        },
        scopes,
        expires_at: dialect::expires_at(now, expires_in, spec),
        session_ends_at: dialect::session_ends_at(now, response.refresh_expires_in(), spec),
        picture,
        resource,
    })
}

/// The issuers an `iss` may name: the configured one and its aliases (empty when the provider has no issuer).
pub(crate) fn issuers(spec: &ProviderSpec) -> Vec<&str> {
    spec.issuer
        .as_deref()
        .into_iter()
        .chain(spec.issuer_aliases.iter().map(String::as_str))
        .collect()
}

/// Refuses a token response Tokenkeep cannot use as it is: a token type other than bearer (it would be handed
/// out as `Authorization: Bearer` and fail, or worse, be sent where a proof-of-possession token must not go).
/// An `expires_in` that is not a lifetime is logged: the token counts as due at once (see `Lifetime::Invalid`).
pub(crate) fn usable(spec: &ProviderSpec, response: &ProviderTokenResponse, proved: bool) -> Result<(), FlowError> {
    if response.lifetime_is_invalid() {
        tracing::warn!(provider = %spec.id, "the token response's expires_in is not a lifetime; the token counts as due");
    }
    match response.unusable_token_type(proved, spec.dpop == DpopUse::Required) {
        None => Ok(()),
        Some(kind) => Err(FlowError::MalformedTokenResponse {
            provider: spec.display_name.clone(),
            status: 200,
            detail: unusable_type_detail(&kind),
        }),
    }
}

/// Why a token of type `kind` is refused, in words.
pub(crate) fn unusable_type_detail(kind: &str) -> String {
    if kind.eq_ignore_ascii_case("bearer") {
        "it issued a bearer token, and this platform's tokens must be bound to Tokenkeep's key (DPoP, RFC 9449)".into()
    } else {
        format!(
            "it issued a token of type {kind:?}, and Tokenkeep uses bearer tokens (RFC 6750) and, where it sent a \
             proof, DPoP-bound ones (RFC 9449)"
        )
    }
}

/// A failed call to one of the platform's own token endpoints, as a flow error.
fn call_error(spec: &ProviderSpec, what: &str, error: dialect::CallError) -> FlowError {
    let provider = spec.display_name.clone();
    match error {
        dialect::CallError::Http(source) => FlowError::TokenEndpoint { provider, source },
        dialect::CallError::Refused {
            status,
            code,
            description,
        } => FlowError::TokenRejected {
            provider,
            error: format!(
                "{what}: HTTP {status}{}",
                code.map(|c| format!(" ({c})")).unwrap_or_default()
            ),
            description,
        },
        dialect::CallError::Malformed => FlowError::MalformedTokenResponse {
            provider,
            status: 200,
            detail: format!("{what} answered with no access token"),
        },
    }
}

/// The client id under the platform's own parameter name (TikTok's `client_key`), sent in addition to the
/// standard `client_id` that `oauth2` always sends; `None` for platforms that kept the standard name.
pub(crate) fn renamed_client_id(spec: &ProviderSpec, credentials: &ClientCredentials) -> Option<(String, String)> {
    (spec.param_names.client_id != "client_id")
        .then(|| (spec.param_names.client_id.clone(), credentials.client_id.clone()))
}

/// A secret that is registered with the log redactor the moment it exists.
pub(crate) fn secret(value: String) -> SecretString {
    register_secret(&value);
    SecretString::new(value)
}

/// Moves a token response's access and refresh tokens into [`SecretString`]s (the `oauth2` copies are
/// `Serialize` and not zeroized, so they must not outlive the response).
pub(crate) fn take_tokens(response: &ProviderTokenResponse) -> (SecretString, Option<SecretString>) {
    let access = secret(response.access_token().secret().to_owned());
    let refresh = response.refresh_token().map(|t| secret(t.secret().to_owned()));
    (access, refresh)
}

/// RFC 9207: when the provider names itself in the callback, it must be the issuer we configured (or one of its
/// aliases).
fn check_issuer(spec: &ProviderSpec, iss: Option<&str>) -> Result<(), FlowError> {
    match (spec.issuer.as_deref(), iss) {
        (Some(expected), Some(got)) if !issuers(spec).contains(&got) => Err(FlowError::IssuerMismatch {
            expected: expected.to_owned(),
            got: got.chars().take(200).collect(),
        }),
        _ => Ok(()),
    }
}

/// Remembers the status and `Retry-After` of the last response, which `oauth2`'s errors do not carry; adds the
/// provider's headers to every request and unwraps token responses that the provider wraps in another object.
#[derive(Debug)]
pub(crate) struct ObservedHttp {
    http: SharedHttp,
    last: Arc<Mutex<Option<ResponseFacts>>>,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    unwrap: Option<String>,
    error_codes: std::collections::BTreeMap<String, String>,
    /// The connection's proof key: every request gets a DPoP proof (RFC 9449 §5).
    dpop: Option<DpopKey>,
}

/// What is worth knowing about a failed response, without its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseFacts {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
}

impl ObservedHttp {
    /// For requests to `spec`'s endpoints: its headers, and its token response shape.
    pub(crate) fn for_spec(http: SharedHttp, spec: &ProviderSpec) -> Self {
        Self {
            http,
            last: Arc::default(),
            headers: dialect::headers(spec),
            unwrap: spec.token_response_path.clone(),
            error_codes: spec.error_codes.clone(),
            dpop: None,
        }
    }

    /// With a proof from `key` on every request (none when `key` is `None`).
    pub(crate) fn with_dpop(mut self, key: Option<&DpopKey>) -> Self {
        self.dpop = key.map(DpopKey::share);
        self
    }

    pub(crate) async fn call(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        for (name, value) in &self.headers {
            if !request.headers().contains_key(name) {
                request.headers_mut().insert(name.clone(), value.clone());
            }
        }
        let mut response = match &self.dpop {
            Some(key) => crate::dpop::send(&*self.http, key, request, None, crate::http::MAX_RESPONSE_BYTES).await?,
            None => self.http.execute(request).await?,
        };
        if response.status() == http::StatusCode::OK
            && let Some(path) = &self.unwrap
            && let Some(inner) = dialect::unwrap_body(response.body(), path)
        {
            *response.body_mut() = inner;
        }
        // Some platforms (Reddit) answer a refused token request with HTTP 200 and an OAuth error body; read it as
        // the error it is (RFC 6749 §5.2 says 400), not as a malformed success.
        if response.status() == http::StatusCode::OK && dialect::is_error_body(response.body()) {
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
        }
        // Error bodies of other shapes, read as the OAuth errors the definition says they are.
        if response.status().is_client_error()
            && let Some(oauth) = dialect::oauth_error_body(response.body(), &self.error_codes)
        {
            *response.body_mut() = oauth;
        }
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(ResponseFacts {
            status: response.status().as_u16(),
            retry_after,
        });
        Ok(response)
    }

    /// Whether requests carry DPoP proofs.
    pub(crate) fn proves(&self) -> bool {
        self.dpop.is_some()
    }

    pub(crate) fn last(&self) -> Option<ResponseFacts> {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// A named type that owns its client, rather than a closure over a borrowed one: `oauth2` then gets futures that
// are `Send` without higher-ranked lifetimes, which keeps the flows spawnable (rust-lang/rust#102211).
impl<'c> oauth2::AsyncHttpClient<'c> for ObservedHttp {
    type Error = HttpError;
    type Future = crate::http::BoxFuture<'c, Result<HttpResponse, HttpError>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(ObservedHttp::call(self, request))
    }
}

/// Maps `oauth2`'s error without its body (which may hold tokens) or its Debug output.
fn token_error(
    spec: &ProviderSpec,
    observed: &ObservedHttp,
    error: RequestTokenError<HttpError, BasicErrorResponse>,
) -> FlowError {
    let provider = spec.display_name.clone();
    let status = observed.last().map_or(0, |f| f.status);
    match error {
        RequestTokenError::ServerResponse(response) => FlowError::TokenRejected {
            provider,
            error: crate::text::clean(response.error().as_ref(), 64),
            description: response.error_description().and_then(|d| dialect::safe_description(d)),
        },
        RequestTokenError::Request(source) => FlowError::TokenEndpoint { provider, source },
        RequestTokenError::Parse(_, _) => FlowError::MalformedTokenResponse {
            provider,
            status,
            detail: "not a valid token response".into(),
        },
        RequestTokenError::Other(_) => FlowError::MalformedTokenResponse {
            provider,
            status,
            detail: "empty body or not JSON".into(),
        },
    }
}
