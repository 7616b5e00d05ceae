//! Learning who the connected account is: from the `id_token`'s claims or from the userinfo endpoint.
//!
//! The `id_token` comes straight from the token endpoint over TLS, in answer to our own authenticated request, so
//! its signature is not checked (OpenID Connect Core §3.1.3.7, item 6 allows TLS server validation instead); its
//! claims still are: `iss`, `aud`, `exp` and — the point of it — the `nonce` we sent, which ties the token to this
//! very sign-in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::http::HttpClient;
use crate::provider::{IdentitySource, ProviderSpec};
use crate::secret::SecretString;

/// How far the provider's clock may be from ours when checking `exp`.
pub(crate) const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Who the account is, as shown to people and used to recognise a reconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountIdentity {
    /// The display name (an e-mail address, a handle).
    pub account: String,
    /// The provider's stable id for the account, when known.
    pub subject: Option<String>,
    /// Where the account's picture is, when the provider said and the address is one Tokenkeep fetches from
    /// (see `picture_address`).
    pub picture: Option<url::Url>,
}

/// Why the identity could not be established.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The provider sent no `id_token` though one was expected.
    #[error("the provider did not return an id_token, so the account cannot be identified")]
    MissingIdToken,
    /// The `id_token` is not a well-formed JWT.
    #[error("the provider's id_token is malformed")]
    MalformedIdToken,
    /// A claim failed validation.
    #[error("the provider's id_token failed validation: {0}")]
    InvalidIdToken(&'static str),
    /// The userinfo request failed or returned something unusable.
    #[error("could not read the account from the provider's userinfo endpoint: {0}")]
    Userinfo(String),
    /// None of the configured claims is present.
    #[error("the provider's answer has none of the claims {0:?} that name the account")]
    NoAccountClaim(Vec<String>),
}

/// The claims of an `id_token`, without verifying its signature (see the module documentation).
pub(crate) fn id_token_claims(id_token: &str) -> Result<serde_json::Map<String, serde_json::Value>, IdentityError> {
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdentityError::MalformedIdToken);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| IdentityError::MalformedIdToken)?;
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(IdentityError::MalformedIdToken),
    }
}

/// What an `id_token` must match.
#[derive(Debug)]
pub(crate) struct IdTokenExpectations<'a> {
    /// The issuer and its aliases; empty when the provider has no issuer to check.
    pub(crate) issuers: Vec<&'a str>,
    pub(crate) client_id: &'a str,
    pub(crate) nonce: Option<&'a SecretString>,
    pub(crate) now: SystemTime,
}

/// Validates the claims of an `id_token` (OpenID Connect Core §3.1.3.7, items 2, 3, 9 and 11).
pub(crate) fn validate_id_token(
    claims: &serde_json::Map<String, serde_json::Value>,
    expect: &IdTokenExpectations<'_>,
) -> Result<(), IdentityError> {
    if !expect.issuers.is_empty()
        && !claims
            .get("iss")
            .and_then(|v| v.as_str())
            .is_some_and(|iss| expect.issuers.contains(&iss))
    {
        return Err(IdentityError::InvalidIdToken("it was issued by another issuer"));
    }
    let audience_ok = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => aud == expect.client_id,
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expect.client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(IdentityError::InvalidIdToken("it was issued to another client"));
    }
    let now = expect.now.duration_since(UNIX_EPOCH).unwrap_or_default();
    match claims.get("exp").and_then(serde_json::Value::as_u64) {
        Some(exp) if Duration::from_secs(exp) + CLOCK_SKEW > now => {}
        _ => return Err(IdentityError::InvalidIdToken("it has expired or has no expiry")),
    }
    if let Some(nonce) = expect.nonce {
        let sent = claims.get("nonce").and_then(|v| v.as_str()).unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(nonce.dangerously_expose().as_bytes())) {
            return Err(IdentityError::InvalidIdToken("its nonce does not match this sign-in"));
        }
    }
    Ok(())
}

/// Follows a dotted path (`data.user.display_name`, `items.0.snippet.title`) into JSON.
fn claim<'a>(value: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    super::dialect::json_path(value, path)
}

fn claim_text(value: &serde_json::Value, path: &str) -> Option<String> {
    match claim(value, path)? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Picks the account name and subject from a claims object.
pub(crate) fn identity_from_claims(
    claims: &serde_json::Value,
    account_claims: &[String],
    subject_claim: &str,
    picture_claims: &[String],
) -> Result<AccountIdentity, IdentityError> {
    // The provider's text is shown in terminals, the window and notifications: made safe here, where it enters.
    let account = account_claims
        .iter()
        .filter_map(|path| claim_text(claims, path))
        .map(|text| crate::text::clean(&text, crate::text::MAX_NAME_CHARS))
        .find(|text| !text.is_empty())
        .ok_or_else(|| IdentityError::NoAccountClaim(account_claims.to_vec()))?;
    let subject = claim_text(claims, subject_claim)
        .map(|text| crate::text::clean(&text, 255))
        .filter(|text| !text.is_empty());
    let picture = picture_claims
        .iter()
        .filter_map(|path| claim(claims, path)?.as_str())
        .find_map(picture_address);
    Ok(AccountIdentity {
        account,
        subject,
        picture,
    })
}

/// The address of an account picture as a provider gave it, if Tokenkeep will fetch from it: `https://`, or
/// `http://` on a loopback address (the local emulations), no credentials in it, at most 2,048 characters.
/// Reddit escapes its `&` as `&amp;` (its `icon_img` is HTML-escaped): undone here.
pub(crate) fn picture_address(text: &str) -> Option<url::Url> {
    let text = text.trim();
    if text.is_empty() || text.len() > 2048 {
        return None;
    }
    let url = url::Url::parse(&text.replace("&amp;", "&")).ok()?;
    let loopback = match url.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    };
    let allowed = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    (allowed && url.username().is_empty() && url.password().is_none()).then_some(url)
}

/// Asks the userinfo endpoint who the access token belongs to (with the provider's headers).
pub(crate) async fn fetch_userinfo(
    spec: &ProviderSpec,
    http: &dyn HttpClient,
    endpoint: &url::Url,
    access_token: &SecretString,
    dpop: Option<&crate::dpop::DpopKey>,
) -> Result<serde_json::Value, IdentityError> {
    let scheme = if dpop.is_some() { crate::dpop::DPOP } else { "Bearer" };
    let mut request = http::Request::get(endpoint.as_str())
        .header(
            http::header::AUTHORIZATION,
            format!("{scheme} {}", access_token.dangerously_expose()),
        )
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| IdentityError::Userinfo(e.to_string()))?;
    super::dialect::add_headers(spec, &mut request);
    let response = match dpop {
        Some(key) => {
            crate::dpop::send(
                http,
                key,
                request,
                Some(access_token.dangerously_expose()),
                crate::http::MAX_RESPONSE_BYTES,
            )
            .await
        }
        None => http.execute(request).await,
    }
    .map_err(|e| IdentityError::Userinfo(e.to_string()))?;
    if !response.status().is_success() {
        return Err(IdentityError::Userinfo(format!(
            "the endpoint answered HTTP {}",
            response.status().as_u16()
        )));
    }
    serde_json::from_slice(response.body()).map_err(|_| IdentityError::Userinfo("the answer is not JSON".into()))
}

/// Establishes the identity the way the provider is configured to give it.
pub(crate) async fn identify(
    spec: &ProviderSpec,
    http: &dyn HttpClient,
    id_token_claims: Option<&serde_json::Map<String, serde_json::Value>>,
    access_token: &SecretString,
    dpop: Option<&crate::dpop::DpopKey>,
) -> Result<AccountIdentity, IdentityError> {
    let userinfo_endpoint = spec.userinfo_endpoint.as_ref();
    match &spec.identity {
        // The flow establishes it from the token response and the account's documents (`provider::atproto`).
        IdentitySource::Atproto {} => Err(IdentityError::Userinfo(
            "the AT Protocol identity comes from the token response".into(),
        )),
        IdentitySource::IdToken {
            account_claims,
            picture_claims,
        } => {
            let claims = id_token_claims.ok_or(IdentityError::MissingIdToken)?;
            let mut merged = claims.clone();
            // Many providers put only `sub` in the id_token and serve the profile claims from userinfo (OpenID
            // Connect Core §5.4). When no display claim is present, ask userinfo, and accept its answer only
            // for the same subject (§5.3.2).
            let has_display_claim = account_claims
                .iter()
                .filter(|c| c.as_str() != "sub")
                .any(|c| claim_text(&serde_json::Value::Object(claims.clone()), c).is_some());
            if !has_display_claim && let Some(endpoint) = userinfo_endpoint {
                match fetch_userinfo(spec, http, endpoint, access_token, dpop).await {
                    Ok(serde_json::Value::Object(info)) if info.get("sub") == claims.get("sub") => {
                        for (k, v) in info {
                            merged.entry(k).or_insert(v);
                        }
                    }
                    Ok(_) => tracing::warn!("userinfo answered for another subject; using the id_token alone"),
                    Err(error) => tracing::warn!(%error, "userinfo failed; using the id_token alone"),
                }
            }
            identity_from_claims(
                &serde_json::Value::Object(merged),
                account_claims,
                "sub",
                picture_claims,
            )
        }
        IdentitySource::Userinfo {
            account_claims,
            subject_claim,
            picture_claims,
        } => {
            let endpoint = userinfo_endpoint.ok_or_else(|| IdentityError::Userinfo("no endpoint configured".into()))?;
            let mut info = fetch_userinfo(spec, http, endpoint, access_token, dpop).await?;
            // With an id_token too (YouTube: the channel from the API, the Google account from OpenID), its claims
            // fill what the endpoint's answer lacks, so `email` can stand in for an account without a channel.
            if let (Some(claims), serde_json::Value::Object(object)) = (id_token_claims, &mut info) {
                for (key, value) in claims {
                    object.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
            identity_from_claims(&info, account_claims, subject_claim, picture_claims)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let enc = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.sig", enc(&serde_json::json!({"alg":"RS256"})), enc(&claims))
    }

    fn expect<'a>(nonce: &'a SecretString) -> IdTokenExpectations<'a> {
        IdTokenExpectations {
            issuers: vec!["http://127.0.0.1:9"],
            client_id: "client",
            nonce: Some(nonce),
            now: UNIX_EPOCH + Duration::from_secs(1_000_000),
        }
    }

    #[test]
    fn a_valid_id_token_passes_and_names_the_account() {
        let nonce = SecretString::new("n-123".into());
        let token = jwt(serde_json::json!({
            "iss": "http://127.0.0.1:9", "aud": ["other", "client"], "exp": 1_000_100, "nonce": "n-123",
            "sub": "u1", "email": "alice@example.test"
        }));
        let claims = id_token_claims(&token).unwrap();
        validate_id_token(&claims, &expect(&nonce)).unwrap();
        let id = identity_from_claims(&serde_json::Value::Object(claims), &["email".into()], "sub", &[]).unwrap();
        assert_eq!(
            id,
            AccountIdentity {
                account: "alice@example.test".into(),
                subject: Some("u1".into()),
                picture: None,
            }
        );
    }

    #[test]
    fn each_claim_check_bites() {
        let nonce = SecretString::new("n-123".into());
        let base =
            serde_json::json!({"iss": "http://127.0.0.1:9", "aud": "client", "exp": 1_000_100, "nonce": "n-123"});
        let cases = [
            ("iss", serde_json::json!("http://evil"), "another issuer"),
            ("aud", serde_json::json!("someone-else"), "another client"),
            ("exp", serde_json::json!(1_000_000 - 301), "expired"),
            ("nonce", serde_json::json!("replayed"), "nonce"),
        ];
        for (field, value, message) in cases {
            let mut claims = base.as_object().unwrap().clone();
            claims.insert(field.into(), value);
            let err = validate_id_token(&claims, &expect(&nonce)).unwrap_err();
            assert!(err.to_string().contains(message), "{field}: {err}");
        }
        // Within the allowed skew an expired token still passes.
        let mut claims = base.as_object().unwrap().clone();
        claims.insert("exp".into(), serde_json::json!(1_000_000 - 200));
        validate_id_token(&claims, &expect(&nonce)).unwrap();
    }

    #[test]
    fn an_issuer_alias_is_accepted_and_nothing_else() {
        // Google: "The value of iss in the ID token is equal to accounts.google.com or https://accounts.google.com."
        let nonce = SecretString::new("n-123".into());
        let expect = IdTokenExpectations {
            issuers: vec!["https://accounts.google.com", "accounts.google.com"],
            ..expect(&nonce)
        };
        for (iss, ok) in [
            ("https://accounts.google.com", true),
            ("accounts.google.com", true),
            ("http://accounts.google.com", false),
            ("https://accounts.google.com.evil", false),
        ] {
            let claims = serde_json::json!({"iss": iss, "aud": "client", "exp": 1_000_100, "nonce": "n-123"});
            let result = validate_id_token(claims.as_object().unwrap(), &expect);
            assert_eq!(result.is_ok(), ok, "{iss}: {result:?}");
        }
    }

    #[test]
    fn malformed_tokens_are_rejected_without_echoing_them() {
        for bad in ["", "a.b", "a.b.c.d", "a.!!!.c", &format!("a.{}.c", "bm90IGpzb24")] {
            let err = id_token_claims(bad).unwrap_err();
            assert_eq!(err.to_string(), "the provider's id_token is malformed");
        }
    }

    #[test]
    fn nested_userinfo_claims_are_reachable() {
        let info = serde_json::json!({"data": {"user": {"display_name": "Creator", "open_id": 42}}});
        let id = identity_from_claims(
            &info,
            &["data.user.username".into(), "data.user.display_name".into()],
            "data.user.open_id",
            &[],
        )
        .unwrap();
        assert_eq!(
            id,
            AccountIdentity {
                account: "Creator".into(),
                subject: Some("42".into()),
                picture: None,
            }
        );
        let err = identity_from_claims(&info, &["email".into()], "sub", &[]).unwrap_err();
        assert!(matches!(err, IdentityError::NoAccountClaim(_)));
    }

    #[test]
    fn the_first_usable_picture_address_is_taken() {
        let info = serde_json::json!({
            "name": "Ada",
            "icon_img": "https://styles.example/icon.png?width=256&amp;height=256&amp;s=abc",
            "avatar": "javascript:alert(1)",
        });
        let pick = |claims: &[&str]| {
            let claims: Vec<String> = claims.iter().map(|c| (*c).to_owned()).collect();
            identity_from_claims(&info, &["name".into()], "id", &claims)
                .unwrap()
                .picture
        };
        // HTML-escaped ampersands (Reddit) are undone; a script address is never a picture.
        assert_eq!(
            pick(&["avatar", "icon_img"]).unwrap().as_str(),
            "https://styles.example/icon.png?width=256&height=256&s=abc"
        );
        assert_eq!(pick(&["avatar"]), None);
        assert_eq!(pick(&["missing"]), None);
    }

    #[test]
    fn pictures_come_only_from_https_or_loopback() {
        for ok in [
            "https://pbs.example/a_normal.jpg",
            "http://127.0.0.1:4000/pictures/a.png",
            "http://[::1]:4000/a.png",
            "http://localhost/a.png",
        ] {
            assert!(picture_address(ok).is_some(), "{ok}");
        }
        for bad in [
            "http://pbs.example/a.jpg",
            "http://10.0.0.1/a.png",
            "file:///etc/passwd",
            "data:image/png;base64,AAAA",
            "https://user:pass@pbs.example/a.jpg",
            "",
            "not a url",
        ] {
            assert!(picture_address(bad).is_none(), "{bad}");
        }
        assert!(picture_address(&format!("https://pbs.example/{}", "a".repeat(3000))).is_none());
    }
}
