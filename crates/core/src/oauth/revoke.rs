//! Token revocation (RFC 7009).
//!
//! Written here rather than through `oauth2`'s `revoke_token`, which refuses every non-HTTPS endpoint, including
//! the loopback ones RFC 8252 test and demo providers use; provider validation already requires HTTPS for every
//! endpoint that is not on 127.0.0.1/localhost. The request is a plain form POST with the client's
//! authentication (RFC 6749 §2.3.1); per RFC 7009 §2.2 any 200 means the token is no longer valid.

use base64::Engine as _;
use url::Url;

use super::ClientCredentials;
use crate::http::{BoxFuture, HttpClient};
use crate::provider::{ClientAuth, ProviderSpec};
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

/// Why a revocation failed (never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RevokeError(String);

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
    http: &'a dyn HttpClient,
) -> BoxFuture<'a, Result<(), RevokeError>> {
    Box::pin(async move {
        let request = build_request(spec, endpoint, credentials, token, hint)?;
        let response = http.execute(request).await.map_err(|e| RevokeError(e.to_string()))?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => {
                let code = serde_json::from_slice::<serde_json::Value>(response.body())
                    .ok()
                    .and_then(|v| {
                        v.get("error")
                            .and_then(|e| e.as_str())
                            .map(|e| e.chars().take(64).collect::<String>())
                    });
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
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token.dangerously_expose())
        .append_pair("token_type_hint", hint.as_str());
    let mut request = http::Request::post(endpoint.as_str())
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json");
    match (spec.client_auth, &credentials.client_secret) {
        (ClientAuth::ClientSecretBasic, Some(secret)) => {
            // RFC 6749 §2.3.1: id and secret are form-encoded before they are joined for Basic authentication.
            let pair = format!("{}:{}", enc(&credentials.client_id), enc(secret.dangerously_expose()));
            let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
            request = request.header(http::header::AUTHORIZATION, value);
        }
        (ClientAuth::ClientSecretPost, Some(secret)) => {
            form.append_pair(&spec.param_names.client_id, &credentials.client_id)
                .append_pair("client_secret", secret.dangerously_expose());
        }
        _ => {
            form.append_pair(&spec.param_names.client_id, &credentials.client_id);
        }
    }
    let body = zeroize::Zeroizing::new(form.finish());
    request
        .body(body.as_bytes().to_vec())
        .map_err(|e| RevokeError(e.to_string()))
}
