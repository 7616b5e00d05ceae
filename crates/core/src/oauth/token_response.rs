//! A token endpoint response, parsed defensively.
//!
//! Platforms bend RFC 6749 §5.1: `expires_in` as a string, scopes separated by commas or sent as an array,
//! `token_type` missing or in odd case, extra fields everywhere. This type accepts those variations and rejects
//! only what makes a response unusable (no access token). It exists only for the moment between the HTTP response
//! and sealing, and is private to this crate: the tokens are moved into [`SecretString`]s (not serializable,
//! zeroized) right away, and the id_token is one from the start.
//!
//! `oauth2` requires its responses to be `Debug` and `Serialize`. Both are written by hand here and print no token:
//! `Debug` shows which tokens are present, `Serialize` writes `"<redacted>"` in their place. Nothing in Tokenkeep
//! serializes a response; the impl exists only because the trait demands it.

use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope, TokenResponse};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::SecretString;

/// The parsed body of a successful token response.
#[derive(Deserialize)]
pub(crate) struct ProviderTokenResponse {
    access_token: AccessToken,
    #[serde(default = "bearer", deserialize_with = "lenient_token_type")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lifetime")]
    expires_in: Lifetime,
    #[serde(default, deserialize_with = "lenient_refresh_token")]
    refresh_token: Option<RefreshToken>,
    #[serde(default, rename = "scope", deserialize_with = "lenient_scopes")]
    scopes: Option<Vec<Scope>>,
    #[serde(default, deserialize_with = "lenient_secret")]
    id_token: Option<SecretString>,
    /// How long the refresh token (the session) lasts: TikTok says `refresh_expires_in`; Google, LinkedIn and
    /// Pinterest say `refresh_token_expires_in`; most platforms say nothing.
    #[serde(default, alias = "refresh_token_expires_in", deserialize_with = "lenient_seconds")]
    refresh_expires_in: Option<u64>,
    /// The account the tokens are for, where the platform says it in the token response (the AT Protocol's
    /// OAuth profile: the DID).
    #[serde(default, deserialize_with = "lenient_string")]
    sub: Option<String>,
}

/// The longest access-token lifetime believed: ten years. A larger `expires_in` is a provider's mistake (or an
/// attempt to make a token look eternal), and shown as is it reads "213503982313812 days".
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What `expires_in` said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// Nothing (or `null`): the platform does not say (many long-lived tokens).
    #[default]
    Absent,
    /// Seconds from now, at most [`MAX_LIFETIME`].
    Seconds(u64),
    /// Something that is not a lifetime: negative, not a number, another type. Not "no expiry": the token is
    /// taken to be due at once, so it is checked by a refresh (which the engine paces) rather than trusted forever.
    Invalid,
}

impl ProviderTokenResponse {
    /// The token type, when it is not one Tokenkeep can use: only bearer tokens (RFC 6750; also when the field
    /// is absent, as several platforms leave it out) are handed out as `Authorization: Bearer`.
    ///
    /// `proved`: the request carried a DPoP proof, so a `DPoP` token (RFC 9449 §5) is usable too; `bound_only`:
    /// the platform must bind its tokens, so a bearer token is not.
    pub(crate) fn unusable_token_type(&self, proved: bool, bound_only: bool) -> Option<String> {
        match &self.token_type {
            BasicTokenType::Bearer if proved && bound_only => Some("bearer".into()),
            BasicTokenType::Bearer => None,
            BasicTokenType::Mac => Some("mac".into()),
            BasicTokenType::Extension(other) if proved && other.eq_ignore_ascii_case("dpop") => None,
            BasicTokenType::Extension(other) => Some(crate::text::clean(other, 40)),
        }
    }

    /// Whether the token is bound to the proof key (`token_type` `DPoP`, RFC 9449 §5).
    pub(crate) fn is_dpop_bound(&self) -> bool {
        matches!(&self.token_type, BasicTokenType::Extension(other) if other.eq_ignore_ascii_case("dpop"))
    }

    /// Whether `expires_in` was present but not a lifetime.
    pub(crate) fn lifetime_is_invalid(&self) -> bool {
        self.expires_in == Lifetime::Invalid
    }

    /// The OpenID Connect `id_token`, when the provider sent one.
    pub(crate) fn id_token(&self) -> Option<&SecretString> {
        self.id_token.as_ref()
    }

    /// The token response's `sub`, when it has one.
    pub(crate) fn sub(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// The refresh token's lifetime in seconds, when the provider said (`refresh_expires_in`).
    pub(crate) fn refresh_expires_in(&self) -> Option<u64> {
        self.refresh_expires_in
    }
}

impl std::fmt::Debug for ProviderTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("scopes", &self.scopes)
            .field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

impl Serialize for ProviderTokenResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut out = serializer.serialize_struct("ProviderTokenResponse", 7)?;
        out.serialize_field("access_token", "<redacted>")?;
        out.serialize_field("token_type", &self.token_type)?;
        out.serialize_field("expires_in", &self.expires_in().map(|d| d.as_secs()))?;
        out.serialize_field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))?;
        out.serialize_field("scope", &self.scopes)?;
        out.serialize_field("id_token", &self.id_token.as_ref().map(|_| "<redacted>"))?;
        out.serialize_field("refresh_expires_in", &self.refresh_expires_in)?;
        out.end()
    }
}

impl TokenResponse for ProviderTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        match self.expires_in {
            Lifetime::Absent => None,
            Lifetime::Seconds(secs) => Some(Duration::from_secs(secs).min(MAX_LIFETIME)),
            Lifetime::Invalid => Some(Duration::ZERO),
        }
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn lenient_token_type<'de, D: Deserializer<'de>>(d: D) -> Result<BasicTokenType, D::Error> {
    let value = Option::<String>::deserialize(d)?
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(match value.as_str() {
        "" | "bearer" => BasicTokenType::Bearer,
        "mac" => BasicTokenType::Mac,
        _ => BasicTokenType::Extension(value),
    })
}

/// Seconds as a JSON number (integer or float) or a numeric string; anything else counts as absent.
fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    })
}

/// `expires_in` as a JSON number or numeric string of seconds (a fraction is cut); `null` is absent; anything
/// else — a negative number, "soon", `true` — is [`Lifetime::Invalid`].
fn lifetime<'de, D: Deserializer<'de>>(d: D) -> Result<Lifetime, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let secs = match &value {
        serde_json::Value::Null => return Ok(Lifetime::Absent),
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    Ok(match secs {
        Some(secs) => Lifetime::Seconds(secs.min(MAX_LIFETIME.as_secs())),
        None => Lifetime::Invalid,
    })
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

fn lenient_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(lenient_string(d)?.map(super::secret))
}

/// An empty or non-string refresh token is treated as "none sent", so the old one is kept.
fn lenient_refresh_token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RefreshToken>, D::Error> {
    Ok(lenient_string(d)?.map(RefreshToken::new))
}

/// Scopes as a space- or comma-separated string, or as an array of strings.
fn lenient_scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Scope>>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let scopes: Vec<String> = match value {
        serde_json::Value::String(s) => s
            .split([' ', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .collect(),
        _ => return Ok(None),
    };
    Ok(Some(scopes.into_iter().map(Scope::new).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ProviderTokenResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn standard_response() {
        let r = parse(
            r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"a b"}"#,
        );
        assert_eq!(r.access_token().secret(), "at");
        assert_eq!(r.expires_in(), Some(Duration::from_secs(3600)));
        assert_eq!(r.refresh_token().unwrap().secret(), "rt");
        let scopes: Vec<&str> = r.scopes().unwrap().iter().map(|s| s.as_str()).collect();
        assert_eq!(scopes, ["a", "b"]);
    }

    #[test]
    fn platform_variations_are_accepted() {
        let r = parse(r#"{"access_token":"at","expires_in":"7200","scope":"user.info.basic,video.list"}"#);
        assert_eq!(r.token_type(), &BasicTokenType::Bearer);
        assert_eq!(r.expires_in(), Some(Duration::from_secs(7200)));
        assert_eq!(r.scopes().unwrap().len(), 2);

        let r = parse(r#"{"access_token":"at","token_type":"bearer","expires_in":3599.9,"scope":["x","y"],"extra":1}"#);
        assert_eq!(r.expires_in(), Some(Duration::from_secs(3599)));
        assert_eq!(r.scopes().unwrap().len(), 2);

        // Invalid is not "no expiry": it is due at once, so a refresh checks it.
        let r = parse(r#"{"access_token":"at","expires_in":"soon","refresh_token":"","id_token":null}"#);
        assert_eq!(r.expires_in(), Some(Duration::ZERO));
        assert!(r.lifetime_is_invalid());
        assert!(
            r.refresh_token().is_none(),
            "an empty refresh token means none was sent"
        );
        assert!(r.id_token().is_none());
    }

    #[test]
    fn neither_debug_nor_serialize_prints_a_token() {
        let r = parse(
            r#"{"access_token":"AT-SECRET-1","refresh_token":"RT-SECRET-2","id_token":"ID-SECRET-3","expires_in":60}"#,
        );
        let shown = format!("{r:?} {r:#?} {}", serde_json::to_string(&r).unwrap());
        for secret in ["AT-SECRET-1", "RT-SECRET-2", "ID-SECRET-3"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("<redacted>") && shown.contains("60"), "{shown}");
        assert_eq!(r.id_token().unwrap().dangerously_expose(), "ID-SECRET-3");
    }

    #[test]
    fn a_response_without_access_token_is_rejected() {
        assert!(serde_json::from_str::<ProviderTokenResponse>(r#"{"token_type":"bearer"}"#).is_err());
        assert!(serde_json::from_str::<ProviderTokenResponse>(r#"{"access_token":42}"#).is_err());
    }

    #[test]
    fn lifetimes_that_are_not_lifetimes_are_invalid_and_huge_ones_are_clamped() {
        for raw in ["-3600", "-1.5", "\"-3600\"", "\"soon\"", "true", "{}"] {
            let r = parse(&format!(r#"{{"access_token":"at","expires_in":{raw}}}"#));
            assert!(r.lifetime_is_invalid(), "{raw}");
            assert_eq!(r.expires_in(), Some(Duration::ZERO), "{raw}");
        }
        for raw in ["null", "\"\""] {
            let r = parse(&format!(r#"{{"access_token":"at","expires_in":{raw}}}"#));
            assert_eq!(
                r.expires_in(),
                if raw == "null" { None } else { Some(Duration::ZERO) },
                "{raw}"
            );
        }
        let r = parse(r#"{"access_token":"at"}"#);
        assert_eq!(r.expires_in(), None);
        let r = parse(r#"{"access_token":"at","expires_in":18446744073709551615}"#);
        assert_eq!(r.expires_in(), Some(MAX_LIFETIME));
        let r = parse(r#"{"access_token":"at","expires_in":1e300}"#);
        assert_eq!(r.expires_in(), Some(MAX_LIFETIME));
    }

    #[test]
    fn only_bearer_tokens_are_usable() {
        for (raw, unusable) in [
            (r#""Bearer""#, None),
            (r#""bearer""#, None),
            ("null", None),
            (r#""mac""#, Some("mac")),
            (r#""N_A""#, Some("n_a")),
            ("\"x\\u001b[2J\"", Some("x[2j")),
        ] {
            let r = parse(&format!(r#"{{"access_token":"at","token_type":{raw}}}"#));
            assert_eq!(r.unusable_token_type(false, false).as_deref(), unusable, "{raw}");
        }
        assert_eq!(
            parse(r#"{"access_token":"at"}"#).unusable_token_type(false, false),
            None
        );
        // With a proof sent, a DPoP-bound token is usable; where binding is required, a bearer one is not.
        let bound = parse(r#"{"access_token":"at","token_type":"DPoP"}"#);
        assert_eq!(bound.unusable_token_type(true, true), None);
        assert!(bound.is_dpop_bound());
        assert_eq!(bound.unusable_token_type(false, false).as_deref(), Some("dpop"));
        let bearer = parse(r#"{"access_token":"at","token_type":"Bearer"}"#);
        assert_eq!(bearer.unusable_token_type(true, false), None);
        assert_eq!(bearer.unusable_token_type(true, true).as_deref(), Some("bearer"));
        assert!(!bearer.is_dpop_bound());
    }
}

/// Arbitrary bytes as a token response (issue 12): the lenient parser never panics, and whatever it accepts has a
/// lifetime within the clamp.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = serde_json::from_slice::<ProviderTokenResponse>(&bytes);
        }

        #[test]
        fn any_field_values_parse_or_are_refused(
            token_type in prop_oneof![Just("\"bearer\"".to_owned()), Just("\"mac\"".to_owned()), Just("7".to_owned()), "\"\\PC{0,12}\""],
            expires_in in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), Just("\"soon\"".to_owned()), Just("1e308".to_owned()), Just("null".to_owned()), "\"[0-9]{0,25}\""],
            scope in prop_oneof![Just("\"a b\"".to_owned()), Just("[\"a\",\"b\"]".to_owned()), Just("42".to_owned())],
        ) {
            let json = format!(
                r#"{{"access_token":"at-value","token_type":{token_type},"expires_in":{expires_in},"scope":{scope}}}"#
            );
            if let Ok(response) = serde_json::from_str::<ProviderTokenResponse>(&json) {
                use oauth2::TokenResponse as _;
                if let Some(lifetime) = response.expires_in() {
                    prop_assert!(lifetime <= MAX_LIFETIME);
                }
            }
        }
    }
}
