//! Reading a JWT's header and claims for a person, without checking or returning its signature.

use super::JwtParts;

/// The header and claims of `token` if it is a JWS in compact form: three dot-separated base64url segments whose
/// first two decode to JSON objects. Anything else (opaque tokens, JWEs with five segments) is `None`. The
/// signature segment is only checked to be base64url (it may be empty, as in an unsecured JWT).
pub(super) fn decode(token: &str) -> Option<JwtParts> {
    use base64::Engine as _;

    fn object(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        // IMPORTANT: base64url without padding per RFC 7515 §2, but tolerate trailing `=` that some issuers add.
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment.trim_end_matches('='))
            .ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    }

    let mut segments = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return None;
    };
    let base64url = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=');
    if !signature.bytes().all(base64url) {
        return None;
    }
    Some(JwtParts {
        header: object(header)?,
        claims: object(claims)?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn jwts_are_decoded_and_everything_else_is_not() {
        let jwt = format!("{}.{}.c2lnbmF0dXJl", b64(r#"{"alg":"RS256"}"#), b64(r#"{"sub":"42"}"#));
        let parts = decode(&jwt).unwrap();
        assert_eq!(parts.header["alg"], "RS256");
        assert_eq!(parts.claims["sub"], "42");
        // Unsecured JWTs have an empty signature; issuers sometimes pad.
        assert!(decode(&format!("{}=.{}.", b64(r#"{"alg":"none"}"#), b64("{}"))).is_some());

        let not_jwts = [
            "opaque-access-token".to_owned(),
            format!("{}.{}", b64("{}"), b64("{}")),
            format!("{}.{}.sig.extra.segments", b64("{}"), b64("{}")),
            format!("{}.{}.sig", b64("[1]"), b64("{}")),
            format!("{}.{}.sig", b64("{}"), b64("\"claims\"")),
            format!("{}.not base64!.sig", b64("{}")),
            format!("{}.{}.sig/with+std", b64("{}"), b64("{}")),
        ];
        for token in &not_jwts {
            assert_eq!(decode(token), None, "{token}");
        }
    }
}
