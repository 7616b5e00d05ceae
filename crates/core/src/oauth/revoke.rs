//! Token revocation: RFC 7009 by default, and the platforms' own variants as their definitions describe them
//! ([`RevocationStyle`](crate::provider::RevocationStyle): which token, `POST` or `DELETE`, body or query, the parameter names, with or without the
//! client's authentication).
//!
//! Written here rather than through `oauth2`'s `revoke_token`, which refuses every non-HTTPS endpoint, including
//! the loopback ones RFC 8252 test and demo providers use; provider validation already requires HTTPS for every
//! endpoint that is not on 127.0.0.1/localhost. Per RFC 7009 §2.2 a 200 means the token is no longer valid; the
//! platforms' variants answer 200 or 204 with bodies of their own (`OK`, `{"success": true}`).

use url::Url;

use super::{ClientCredentials, dialect};
use crate::http::{BoxFuture, HttpClient};
use crate::provider::{ClientAuth, Method, ParamsIn, ProviderSpec, RevocationAuth, TokenRole};
use crate::secret::SecretString;

/// Which token is being revoked (the `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint {
    /// An access token.
    AccessToken,
    /// A refresh token.
    RefreshToken,
}

impl TokenHint {
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::RefreshToken => "refresh_token",
        }
    }
}

impl From<TokenRole> for TokenHint {
    fn from(role: TokenRole) -> Self {
        match role {
            TokenRole::Access => Self::AccessToken,
            TokenRole::Refresh => Self::RefreshToken,
        }
    }
}

/// Why a revocation failed (never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RevokeError(String);

impl RevokeError {
    /// A failure described by `message` (which must not contain a token).
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Revokes `token` at `endpoint`.
///
/// Returns a boxed `Send` future (not an `async fn`) so callers can spawn it: the borrowed arguments otherwise
/// trip rustc's "`Send` is not general enough" limitation (rust-lang/rust#102211).
pub fn revoke<'a>(
    spec: &'a ProviderSpec,
    endpoint: &'a Url,
    credentials: &'a ClientCredentials,
    token: &'a SecretString,
    hint: TokenHint,
    dpop: Option<&'a crate::dpop::DpopKey>,
    http: &'a dyn HttpClient,
) -> BoxFuture<'a, Result<(), RevokeError>> {
    Box::pin(async move {
        let request = build_request(spec, endpoint, credentials, token, hint)?;
        // A bound token is revoked with a proof, as every request of its connection is made (RFC 9449 §5).
        let response = match dpop {
            Some(key) => crate::dpop::send(http, key, request, None, crate::http::MAX_RESPONSE_BYTES).await,
            None => http.execute(request).await,
        }
        .map_err(|e| RevokeError(e.to_string()))?;
        match response.status().as_u16() {
            200 | 204 => Ok(()),
            status => {
                let code = dialect::error_code(response.body());
                Err(RevokeError(match code {
                    Some(code) => format!("the provider answered HTTP {status} ({code})"),
                    None => format!("the provider answered HTTP {status}"),
                }))
            }
        }
    })
}

/// The revocation request (built outside the async part: the form serializer is not `Send`).
fn build_request(
    spec: &ProviderSpec,
    endpoint: &Url,
    credentials: &ClientCredentials,
    token: &SecretString,
    hint: TokenHint,
) -> Result<crate::http::HttpRequest, RevokeError> {
    let style = &spec.revocation;
    let mut params = url::form_urlencoded::Serializer::new(String::new());
    params.append_pair(&style.token_param, token.dangerously_expose());
    if !style.hint_param.is_empty() {
        params.append_pair(&style.hint_param, hint.as_str());
    }
    let mut basic = None;
    if style.client_auth == RevocationAuth::ClientId {
        params.append_pair(&spec.param_names.client_id, &credentials.client_id);
    }
    if style.client_auth == RevocationAuth::Client {
        match (spec.client_auth, &credentials.client_secret) {
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                basic = Some(super::basic_auth(&credentials.client_id, secret.dangerously_expose()));
            }
            (ClientAuth::ClientIdBasic, _) => basic = Some(super::basic_auth(&credentials.client_id, "")),
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                params
                    .append_pair(&spec.param_names.client_id, &credentials.client_id)
                    .append_pair("client_secret", secret.dangerously_expose());
            }
            _ => {
                params.append_pair(&spec.param_names.client_id, &credentials.client_id);
            }
        }
    }
    let encoded = zeroize::Zeroizing::new(params.finish());
    let in_query = style.params_in == ParamsIn::Query || style.method != Method::Post;
    let mut url = endpoint.clone();
    if in_query {
        let query = match url.query() {
            Some(existing) if !existing.is_empty() => {
                zeroize::Zeroizing::new(format!("{existing}&{}", encoded.as_str()))
            }
            _ => zeroize::Zeroizing::new(encoded.as_str().to_owned()),
        };
        url.set_query(Some(&query));
    }
    let method = match style.method {
        Method::Post => http::Method::POST,
        Method::Get => http::Method::GET,
        Method::Delete => http::Method::DELETE,
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(url.as_str())
        .header(http::header::ACCEPT, "application/json");
    if !in_query {
        request = request.header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    if let Some(value) = basic {
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let body = if in_query {
        Vec::new()
    } else {
        encoded.as_bytes().to_vec()
    };
    let mut request = request.body(body).map_err(|e| RevokeError(e.to_string()))?;
    dialect::add_headers(spec, &mut request);
    Ok(request)
}
