//! The refresh-token grant (RFC 6749 §6), and how its failures are classified.

use std::time::{Duration, SystemTime};

use oauth2::basic::BasicErrorResponse;
use oauth2::{RefreshToken, RequestTokenError, TokenResponse as _};

use super::{ClientCredentials, ObservedHttp, dialect, identity, oauth_client};
use crate::dpop::DpopKey;
use crate::http::{BoxFuture, HttpError, SharedHttp};
use crate::provider::{ProviderSpec, RefreshStyle};
use crate::secret::SecretString;

/// New tokens from a successful refresh.
#[derive(Debug)]
pub struct Refreshed {
    /// The new access token.
    pub access: SecretString,
    /// A new refresh token, when the provider rotated it (keep the old one otherwise).
    pub refresh: Option<SecretString>,
    /// A new ID token, when the provider sent one.
    pub id_token: Option<SecretString>,
    /// Scopes of the new token, when the provider said.
    pub scopes: Option<Vec<String>>,
    /// When the new access token expires (Unix seconds), when the provider said (or the definition's default).
    pub expires_at: Option<u64>,
    /// When the session ends for good, when the provider said (`refresh_expires_in`).
    pub session_ends_at: Option<u64>,
    /// The account the token response names (`sub`), when it names one (the AT Protocol's profile does).
    pub subject: Option<String>,
}

/// What a refresh presents to the platform: its refresh token, or — for platforms that refresh with the
/// long-lived access token itself — that token.
#[derive(Debug, Clone, Copy)]
pub enum Grant<'a> {
    /// The refresh-token grant (RFC 6749 §6).
    RefreshToken(&'a SecretString),
    /// The platform's own call with the access token ([`RefreshStyle::AccessToken`]).
    AccessToken(&'a SecretString),
}

/// Why a refresh failed, sorted by what should happen next. Reasons never contain token bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshFailure {
    /// Worth retrying later: network, timeout, 5xx, 429, a garbled answer.
    #[error("{reason}")]
    Transient {
        /// Short failure class for logs and people (`network`, `HTTP 503`, …).
        reason: String,
        /// How long the provider asked us to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The provider no longer accepts the refresh token (`invalid_grant`): the user must sign in again.
    #[error("the provider no longer accepts this connection's refresh token ({error})")]
    GrantRejected {
        /// The OAuth error code.
        error: String,
    },
    /// The provider refused for a reason the user must fix (`invalid_client`, `unauthorized_client`, …).
    #[error("the provider refused the refresh ({error}): check the client id and secret of this provider")]
    Rejected {
        /// The OAuth error code.
        error: String,
    },
    /// The client cannot even build the request (a missing secret, an unusable definition).
    #[error("{0}")]
    Configuration(String),
}

impl RefreshFailure {
    /// A stable, token-free class name for logs.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Transient { .. } => "transient",
            Self::GrantRejected { .. } => "invalid_grant",
            Self::Rejected { .. } => "rejected",
            Self::Configuration(_) => "configuration",
        }
    }
}

/// Exchanges `grant` for new tokens, the way the provider refreshes.
///
/// Returns a boxed `Send` future (not an `async fn`) so callers can spawn it: the borrowed arguments otherwise
/// trip rustc's "`Send` is not general enough" limitation (rust-lang/rust#102211).
/// `dpop`: the connection's proof key, when its tokens are bound (each request then carries a proof).
pub fn refresh_tokens<'a>(
    spec: &'a ProviderSpec,
    credentials: &'a ClientCredentials,
    grant: Grant<'a>,
    dpop: Option<&'a DpopKey>,
    http: &'a SharedHttp,
    now: SystemTime,
) -> BoxFuture<'a, Result<Refreshed, RefreshFailure>> {
    Box::pin(async move {
        let observed = ObservedHttp::for_spec(http.clone(), spec).with_dpop(dpop);
        match (grant, &spec.refresh) {
            (Grant::RefreshToken(token), RefreshStyle::RefreshToken) => {
                refresh_grant(spec, credentials, token, &observed, now).await
            }
            (Grant::AccessToken(token), RefreshStyle::AccessToken { call, .. }) => {
                access_token_refresh(spec, credentials, call, token, &observed, now).await
            }
            _ => Err(RefreshFailure::Configuration(format!(
                "{} cannot be refreshed this way; sign in again",
                spec.display_name
            ))),
        }
    })
}

/// Meta's refresh: the long-lived access token buys a new one (no refresh token exists).
async fn access_token_refresh(
    spec: &ProviderSpec,
    credentials: &ClientCredentials,
    call: &crate::provider::TokenCall,
    access: &SecretString,
    observed: &ObservedHttp,
    now: SystemTime,
) -> Result<Refreshed, RefreshFailure> {
    let response = dialect::token_call(spec, call, credentials, Some(access), None, observed)
        .await
        .map_err(|error| {
            let retry_after = observed.last().and_then(|f| f.retry_after);
            match error {
                dialect::CallError::Http(HttpError::Timeout { .. }) => RefreshFailure::Transient {
                    reason: "timeout".into(),
                    retry_after,
                },
                dialect::CallError::Http(e @ HttpError::InvalidRequest(_)) => {
                    RefreshFailure::Configuration(e.to_string())
                }
                dialect::CallError::Http(_) => RefreshFailure::Transient {
                    reason: "network".into(),
                    retry_after,
                },
                dialect::CallError::Refused { status, code, .. } if status >= 500 || status == 429 => {
                    RefreshFailure::Transient {
                        reason: format!("HTTP {status}{}", code.map(|c| format!(" ({c})")).unwrap_or_default()),
                        retry_after,
                    }
                }
                // Meta answers an expired or revoked token with 400 and an OAuthException (code 190): the
                // grant is gone.
                dialect::CallError::Refused { status, code, .. } => RefreshFailure::GrantRejected {
                    error: code.unwrap_or_else(|| format!("HTTP {status}")),
                },
                dialect::CallError::Malformed => RefreshFailure::Transient {
                    reason: "malformed response".into(),
                    retry_after,
                },
            }
        })?;
    refusable_type(spec, &response, observed.proves())?;
    let (access, _) = super::take_tokens(&response);
    Ok(Refreshed {
        access,
        refresh: None,
        id_token: None,
        scopes: response.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()),
        expires_at: dialect::expires_at(now, response.expires_in(), spec),
        session_ends_at: None,
        subject: None,
    })
}

async fn refresh_grant(
    spec: &ProviderSpec,
    credentials: &ClientCredentials,
    refresh_token: &SecretString,
    observed: &ObservedHttp,
    now: SystemTime,
) -> Result<Refreshed, RefreshFailure> {
    let client = oauth_client(spec, credentials, None).map_err(|e| RefreshFailure::Configuration(e.to_string()))?;
    let token = RefreshToken::new(refresh_token.dangerously_expose().to_owned());
    let mut request = client.exchange_refresh_token(&token);
    if let Some((name, value)) = super::renamed_client_id(spec, credentials) {
        request = request.add_extra_param(name, value);
    }
    let response = request
        .request_async(observed)
        .await
        .map_err(|e| classify(observed, e))?;

    refusable_type(spec, &response, observed.proves())?;
    let (access, refresh) = super::take_tokens(&response);
    // OpenID Connect Core §12.2: a refreshed id_token must keep iss and aud; it carries no nonce.
    let id_token = match response.id_token() {
        Some(raw) => {
            let raw = super::secret(raw.dangerously_expose().to_owned());
            let claims =
                identity::id_token_claims(raw.dangerously_expose()).map_err(|_| RefreshFailure::Transient {
                    reason: "malformed id_token".into(),
                    retry_after: None,
                })?;
            identity::validate_id_token(
                &claims,
                &identity::IdTokenExpectations {
                    issuers: super::issuers(spec),
                    client_id: &credentials.client_id,
                    nonce: None,
                    now,
                },
            )
            .map_err(|e| RefreshFailure::Rejected { error: e.to_string() })?;
            Some(raw)
        }
        None => None,
    };
    let scopes = response.scopes().map(|s| s.iter().map(|s| s.to_string()).collect());
    Ok(Refreshed {
        access,
        refresh,
        id_token,
        scopes,
        expires_at: dialect::expires_at(now, response.expires_in(), spec),
        // Only what the platform says now: a lifetime the definition assumes counts from the sign-in, and a
        // refresh does not extend it (Spotify).
        session_ends_at: response.refresh_expires_in().map(|secs| {
            now.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .saturating_add(secs)
        }),
        subject: response.sub().map(str::to_owned),
    })
}

/// A refreshed token of a type Tokenkeep cannot hand out is refused (see `oauth::usable`): the person must look
/// at the provider's configuration, so it needs attention rather than retries.
/// A connection whose tokens are bound gets bound ones again, and only those.
fn refusable_type(
    spec: &ProviderSpec,
    response: &super::ProviderTokenResponse,
    proved: bool,
) -> Result<(), RefreshFailure> {
    if response.lifetime_is_invalid() {
        tracing::warn!(provider = %spec.id, "the refresh response's expires_in is not a lifetime; the token counts as due");
    }
    match response.unusable_token_type(proved, proved) {
        None => Ok(()),
        Some(kind) => Err(RefreshFailure::Configuration(super::unusable_type_detail(&kind))),
    }
}

fn classify(observed: &ObservedHttp, error: RequestTokenError<HttpError, BasicErrorResponse>) -> RefreshFailure {
    let facts = observed.last();
    let status = facts.map(|f| f.status);
    let retry_after = facts.and_then(|f| f.retry_after);
    let transient = |reason: String| RefreshFailure::Transient { reason, retry_after };
    match error {
        RequestTokenError::ServerResponse(response) => {
            let code = crate::text::clean(response.error().as_ref(), 64);
            match (code.as_str(), status) {
                // A 5xx or 429 with an OAuth error body (`temporarily_unavailable`) is still a transient failure.
                (_, Some(s)) if s >= 500 || s == 429 => transient(format!("HTTP {s} ({code})")),
                ("temporarily_unavailable" | "server_error", _) => transient(code),
                ("invalid_grant", _) => RefreshFailure::GrantRejected { error: code },
                _ => RefreshFailure::Rejected { error: code },
            }
        }
        RequestTokenError::Request(HttpError::Timeout { .. }) => transient("timeout".into()),
        RequestTokenError::Request(HttpError::TooLarge { .. }) => transient("response too large".into()),
        RequestTokenError::Request(e @ HttpError::InvalidRequest(_)) => RefreshFailure::Configuration(e.to_string()),
        RequestTokenError::Request(_) => transient("network".into()),
        RequestTokenError::Parse(_, _) | RequestTokenError::Other(_) => match status {
            Some(s) if s != 200 => transient(format!("HTTP {s}")),
            _ => transient("malformed response".into()),
        },
    }
}
