//! What the provider definitions say beyond RFC 6749, applied to requests and responses: headers every request
//! carries, token responses wrapped in another object, PKCE challenges in hex, and the platforms' own token calls
//! (a long-lived token exchange, a refresh that takes the access token). The flow and the refresh call these;
//! none of them branches on which platform it is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use super::token_response::ProviderTokenResponse;
use super::{ClientCredentials, ObservedHttp};
use crate::http::{HttpError, HttpRequest};
use crate::provider::{Method, ProviderSpec, TokenCall};
use crate::secret::SecretString;

/// The headers every request to the provider carries (`{version}` is Tokenkeep's version). The definition was
/// validated, so every name and value is a valid header; one that is not is skipped rather than sent broken.
pub(crate) fn headers(spec: &ProviderSpec) -> Vec<(http::HeaderName, http::HeaderValue)> {
    spec.http_headers
        .iter()
        .filter_map(|(name, value)| {
            let value = value.replace("{version}", env!("CARGO_PKG_VERSION"));
            Some((
                http::HeaderName::from_bytes(name.as_bytes()).ok()?,
                http::HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect()
}

/// Adds the provider's headers to `request` (without replacing one the request already set).
pub(crate) fn add_headers(spec: &ProviderSpec, request: &mut HttpRequest) {
    for (name, value) in headers(spec) {
        if !request.headers().contains_key(&name) {
            request.headers_mut().insert(name, value);
        }
    }
}

/// The object at `path` (`data`, `data.0`) of a JSON body, re-serialized, for platforms that wrap their token
/// responses. A body without that path is returned as it is (an error response, typically).
pub(crate) fn unwrap_body(body: &[u8], path: &str) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let inner = json_path(&value, path)?;
    inner.is_object().then(|| serde_json::to_vec(inner).ok()).flatten()
}

/// Follows a dotted path into JSON: object keys, and array indices (`items.0.snippet.title`).
pub(crate) fn json_path<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(value, |v, key| match v {
        serde_json::Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

/// The PKCE challenge in TikTok's encoding: the hex of SHA-256 over the verifier (RFC 7636 says base64url).
pub(crate) fn hex_challenge(verifier: &str) -> String {
    hex::encode(Sha256::digest(verifier.as_bytes()))
}

/// The standard S256 challenge, for tests comparing the two encodings.
#[cfg(test)]
pub(crate) fn s256_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// When a token given `expires_in` at `now` expires; without `expires_in`, the definition's default lifetime, or
/// none.
pub(crate) fn expires_at(now: SystemTime, expires_in: Option<Duration>, spec: &ProviderSpec) -> Option<u64> {
    let ttl = expires_in.or(spec.default_expires_in_secs.map(Duration::from_secs))?;
    Some(
        now.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(ttl)
            .as_secs(),
    )
}

/// When the session ends for good (the refresh token's own end): from the response's `refresh_expires_in`, else
/// the definition's `session_lifetime_secs`, else never known.
pub(crate) fn session_ends_at(now: SystemTime, refresh_expires_in: Option<u64>, spec: &ProviderSpec) -> Option<u64> {
    let secs = refresh_expires_in.or(spec.session_lifetime_secs)?;
    Some(
        now.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .saturating_add(secs),
    )
}

/// Why one of the platform's own token calls failed. Never contains token bytes.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The request could not be sent or got no answer.
    Http(HttpError),
    /// The platform answered with an error: its status and OAuth-style code (or Meta's `error.type`).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The platform's error code, if it said one.
        code: Option<String>,
        /// The platform's own words, made safe to show ([`error_description`]).
        description: Option<String>,
    },
    /// A 200 whose body is not a token response.
    Malformed,
}

/// Makes a [`TokenCall`] with the credentials and tokens it names, and reads the answer as a token response.
pub(crate) async fn token_call(
    spec: &ProviderSpec,
    call: &TokenCall,
    credentials: &ClientCredentials,
    access: Option<&SecretString>,
    refresh: Option<&SecretString>,
    observed: &ObservedHttp,
) -> Result<ProviderTokenResponse, CallError> {
    let request = build_call(spec, call, credentials, access, refresh).map_err(CallError::Http)?;
    let response = observed.call(request).await.map_err(CallError::Http)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(CallError::Refused {
            status,
            code: error_code(response.body()),
            description: error_description(response.body()),
        });
    }
    serde_json::from_slice(response.body()).map_err(|_| CallError::Malformed)
}

/// The request of a [`TokenCall`] (built outside the async part: the form serializer is not `Send`).
fn build_call(
    spec: &ProviderSpec,
    call: &TokenCall,
    credentials: &ClientCredentials,
    access: Option<&SecretString>,
    refresh: Option<&SecretString>,
) -> Result<HttpRequest, HttpError> {
    let secret = credentials.client_secret.as_ref();
    let value = |template: &str| -> Result<zeroize::Zeroizing<String>, HttpError> {
        let missing = |what: &str| HttpError::InvalidRequest(format!("the {what} this call needs is not available"));
        let filled = match template {
            "{client_id}" => credentials.client_id.clone(),
            "{client_secret}" => secret
                .ok_or_else(|| missing("client secret"))?
                .dangerously_expose()
                .to_owned(),
            "{access_token}" => access
                .ok_or_else(|| missing("access token"))?
                .dangerously_expose()
                .to_owned(),
            "{refresh_token}" => refresh
                .ok_or_else(|| missing("refresh token"))?
                .dangerously_expose()
                .to_owned(),
            literal => literal.to_owned(),
        };
        Ok(zeroize::Zeroizing::new(filled))
    };
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (name, template) in &call.params {
        form.append_pair(name, &value(template)?);
    }
    let encoded = zeroize::Zeroizing::new(form.finish());
    let mut url = call.url.clone();
    let builder = match call.method {
        Method::Get | Method::Delete => {
            let query = match url.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{}", encoded.as_str()),
                _ => encoded.as_str().to_owned(),
            };
            url.set_query(Some(&query));
            let method = if call.method == Method::Get {
                http::Method::GET
            } else {
                http::Method::DELETE
            };
            http::Request::builder().method(method).uri(url.as_str())
        }
        Method::Post => {
            http::Request::post(url.as_str()).header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        }
    };
    let body = match call.method {
        Method::Post => encoded.as_bytes().to_vec(),
        Method::Get | Method::Delete => Vec::new(),
    };
    let mut request = builder
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
    add_headers(spec, &mut request);
    Ok(request)
}

/// Checks `access` with the platform's validation endpoint: `Ok(true)` accepted, `Ok(false)` refused (401),
/// `Err` no verdict.
pub(crate) async fn validate(
    spec: &ProviderSpec,
    validation: &crate::provider::Validation,
    access: &SecretString,
    http: &dyn crate::http::HttpClient,
) -> Result<bool, HttpError> {
    let mut request = http::Request::get(validation.url.as_str())
        .header(
            http::header::AUTHORIZATION,
            format!("{} {}", validation.scheme, access.dangerously_expose()),
        )
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
    add_headers(spec, &mut request);
    let response = http.execute(request).await?;
    match response.status().as_u16() {
        200 => Ok(true),
        401 => Ok(false),
        status => Err(HttpError::Unreachable {
            host: validation.url.host_str().unwrap_or("the platform").to_owned(),
            reason: format!("the validation endpoint answered HTTP {status}"),
        }),
    }
}

/// A non-OAuth error body (`{"status": 400, "message": "Invalid refresh token"}`) rewritten as the OAuth error
/// (`{"error": "invalid_grant"}`) that `codes` maps its message to; `None` for OAuth bodies and unknown messages.
pub(crate) fn oauth_error_body(body: &[u8], codes: &std::collections::BTreeMap<String, String>) -> Option<Vec<u8>> {
    if codes.is_empty() {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("error").is_some_and(serde_json::Value::is_string) {
        return None;
    }
    let message = value.get("message")?.as_str()?.to_lowercase();
    let code = codes
        .iter()
        .find(|(fragment, _)| message.contains(&fragment.to_lowercase()))
        .map(|(_, code)| code)?;
    let mut oauth = serde_json::json!({ "error": code });
    if let Some(words) = error_description(body) {
        oauth["error_description"] = words.into();
    }
    serde_json::to_vec(&oauth).ok()
}

/// Whether a body is an OAuth error rather than a token response: an `error` string and no `access_token`.
pub(crate) fn is_error_body(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("error").is_some_and(serde_json::Value::is_string) && v.get("access_token").is_none())
}

/// The error code of an error body: OAuth's `error` (a string), or Meta's `{"error": {"type", "code"}}`.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = match value.get("error")? {
        serde_json::Value::String(code) => code.clone(),
        serde_json::Value::Object(meta) => meta
            .get("type")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .or_else(|| meta.get("code").map(|c| c.to_string()))?,
        _ => return None,
    };
    Some(crate::text::clean(&code, 64))
}

/// How much of a platform's error text is shown.
const DESCRIPTION_CHARS: usize = 200;

/// The platform's explanation in an error body — OAuth's `error_description`, Instagram's `error_message`, Meta's
/// `error.message`, Twitch's and Pinterest's `message` — made safe to show: printable characters only, at most
/// 200 of them, and any secret the process knows (the code, the verifier, a token, the client secret) masked,
/// so a hostile platform that echoes a request cannot make Tokenkeep print it.
pub(crate) fn error_description(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = ["error_description", "error_message", "message"]
        .iter()
        .find_map(|name| value.get(name).and_then(serde_json::Value::as_str))
        .or_else(|| value.get("error")?.get("message")?.as_str())?;
    safe_description(text)
}

/// Provider-supplied text as it may appear in an error message (see [`error_description`]); `None` when nothing
/// printable is left.
pub(crate) fn safe_description(text: &str) -> Option<String> {
    let shown = crate::logging::Redactor.redact(&crate::text::clean(text, DESCRIPTION_CHARS));
    (!shown.is_empty()).then_some(shown)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn hex_and_s256_challenges_encode_the_same_digest() {
        // RFC 7636 Appendix B: the verifier and its S256 challenge.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256_challenge(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let hex = hex_challenge(verifier);
        assert_eq!(hex.len(), 64);
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(&hex).unwrap()),
            s256_challenge(verifier)
        );
    }

    #[test]
    fn json_paths_reach_into_objects_and_arrays() {
        let value = serde_json::json!({"items": [{"id": "UC1", "snippet": {"title": "My channel"}}], "data": {"n": 1}});
        assert_eq!(json_path(&value, "items.0.snippet.title").unwrap(), "My channel");
        assert_eq!(json_path(&value, "items.0.id").unwrap(), "UC1");
        assert!(json_path(&value, "items.1.id").is_none());
        assert!(json_path(&value, "items.x").is_none());
        assert_eq!(
            unwrap_body(br#"{"data":{"access_token":"a"}}"#, "data").unwrap(),
            br#"{"access_token":"a"}"#
        );
        assert_eq!(
            unwrap_body(br#"{"data":[{"access_token":"a"}]}"#, "data.0").unwrap(),
            br#"{"access_token":"a"}"#
        );
        assert!(unwrap_body(br#"{"error":"invalid_grant"}"#, "data").is_none());
    }

    #[test]
    fn foreign_error_shapes_become_the_oauth_errors_the_definition_names() {
        // Twitch: https://dev.twitch.tv/docs/authentication/refresh-tokens ("Invalid refresh token", HTTP 400).
        let codes = [("invalid refresh token".to_owned(), "invalid_grant".to_owned())].into();
        assert_eq!(
            oauth_error_body(br#"{"status":400,"message":"Invalid refresh token"}"#, &codes).unwrap(),
            br#"{"error":"invalid_grant","error_description":"Invalid refresh token"}"#
        );
        assert!(oauth_error_body(br#"{"status":400,"message":"something else"}"#, &codes).is_none());
        assert!(
            oauth_error_body(br#"{"error":"invalid_client"}"#, &codes).is_none(),
            "OAuth bodies stay"
        );
    }

    #[test]
    fn error_codes_come_from_oauth_and_meta_bodies() {
        assert_eq!(
            error_code(br#"{"error":"invalid_grant","error_description":"x"}"#).unwrap(),
            "invalid_grant"
        );
        assert_eq!(
            error_code(br#"{"error":{"message":"Invalid OAuth access token","type":"OAuthException","code":190}}"#)
                .unwrap(),
            "OAuthException"
        );
        assert!(error_code(b"not json").is_none());
    }

    #[test]
    fn descriptions_are_the_platforms_words_made_safe() {
        let said = |body: &str| error_description(body.as_bytes());
        assert_eq!(
            said(r#"{"error":"invalid_request","error_description":"Code verifier or code challenge is invalid.","log_id":"x"}"#)
                .as_deref(),
            Some("Code verifier or code challenge is invalid.")
        );
        assert_eq!(
            said(r#"{"error_type":"OAuthException","code":400,"error_message":"Invalid platform app"}"#).as_deref(),
            Some("Invalid platform app")
        );
        assert_eq!(
            said(r#"{"error":{"message":"Error validating client secret.","type":"OAuthException","code":1}}"#)
                .as_deref(),
            Some("Error validating client secret.")
        );
        assert_eq!(
            said(r#"{"status":400,"message":"Invalid refresh token"}"#).as_deref(),
            Some("Invalid refresh token")
        );
        assert_eq!(said(r#"{"error":"invalid_grant"}"#), None);
        assert_eq!(said(r#"{"error_description":"\u001b\u0007\n\t "}"#), None);
        // Control characters go, length is bounded.
        let long = format!(r#"{{"error_description":"a\u0007b\nc{}"}}"#, "x".repeat(500));
        let shown = said(&long).unwrap();
        assert!(
            shown.starts_with("ab c") && shown.chars().count() <= DESCRIPTION_CHARS,
            "{shown}"
        );
        // A hostile platform that echoes a secret it was sent does not get it printed.
        crate::logging::register_secret("verifier-echoed-back-0123456789");
        let echoed =
            said(r#"{"error_description":"bad verifier verifier-echoed-back-0123456789 (code=abcdefgh123)"}"#).unwrap();
        assert!(
            !echoed.contains("verifier-echoed-back-0123456789") && !echoed.contains("abcdefgh123"),
            "{echoed}"
        );
    }
}
