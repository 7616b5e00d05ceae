//! DPoP, demonstrating proof of possession (RFC 9449): tokens bound to a key that never leaves the vault.
//!
//! A connection to a platform that binds its tokens (Bluesky requires it) has one ES256 key pair
//! ([`DpopKey`]), made at connect and sealed in the vault beside its tokens. Every request that uses the
//! connection — the pushed authorization request, the code exchange, each refresh, the revocation and each API
//! call — carries a fresh proof: a JWT signed with that key, naming the request's method and address and, with an
//! access token, its hash (RFC 9449 §4). A copy of the access token alone is then useless.
//!
//! Servers may demand a nonce of their own in the proofs (§8, §9): the `DPoP-Nonce` header of any answer is kept
//! for that server ([`DpopNonces`], in memory), and a request refused with `use_dpop_nonce` is signed again with
//! the new nonce and sent once more ([`send`]).
//!
//! The private key is a [`p256::ecdsa::SigningKey`], which wipes itself on drop; its 32 bytes leave it only as
//! a [`SecretBytes`] for sealing. [`DpopKey`]'s `Debug` shows its public thumbprint only.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest as _, Sha256};

use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::secret::SecretBytes;

/// The one signing algorithm Tokenkeep's proofs use (ECDSA P-256 with SHA-256, RFC 7518 §3.4).
pub const ALG: &str = "ES256";
/// The `typ` of a DPoP proof's header (RFC 9449 §4.2).
pub const PROOF_TYP: &str = "dpop+jwt";
/// The request header a proof travels in, and the token type of a bound token (RFC 9449 §4.1, §5).
pub const DPOP: &str = "DPoP";
/// The answer header with a server's nonce (RFC 9449 §8.1).
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// Length of a private key's bytes (a P-256 scalar).
pub const KEY_LEN: usize = 32;

/// Why a proof key could not be made or read back. No variant carries key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// The operating system gave no randomness for a new key.
    #[error("no randomness available to make a DPoP key")]
    Rng,
    /// The stored bytes are not a P-256 private key.
    #[error("the stored DPoP key is not a P-256 private key")]
    InvalidKey,
}

/// One connection's proof key: an ES256 (P-256) key pair. Not `Clone`, not `Serialize`; the private half is
/// wiped on drop (of its last handle: `share` lends it to the requests of one operation).
pub struct DpopKey(std::sync::Arc<KeyPair>);

struct KeyPair {
    signing: SigningKey,
    /// The public key as a JWK's `x` and `y` (base64url, 32 bytes each).
    x: String,
    y: String,
    thumbprint: String,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DpopKey({ALG}, thumbprint {})", self.0.thumbprint)
    }
}

impl DpopKey {
    /// A new key pair from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`DpopError::Rng`] when no randomness is available.
    pub fn generate() -> Result<Self, DpopError> {
        loop {
            let mut bytes = zeroize::Zeroizing::new([0u8; KEY_LEN]);
            getrandom::fill(bytes.as_mut_slice()).map_err(|_| DpopError::Rng)?;
            // A scalar of zero or at least the group order is refused; that happens with probability ~2^-32.
            if let Ok(signing) = SigningKey::from_slice(bytes.as_slice()) {
                return Ok(Self::from_signing(signing));
            }
        }
    }

    /// The key whose private half is `bytes` (as [`Self::to_secret`] gave them).
    ///
    /// # Errors
    /// [`DpopError::InvalidKey`] unless `bytes` are a valid P-256 scalar.
    pub fn from_secret(bytes: &SecretBytes) -> Result<Self, DpopError> {
        if bytes.len() != KEY_LEN {
            return Err(DpopError::InvalidKey);
        }
        SigningKey::from_slice(bytes.dangerously_expose())
            .map(Self::from_signing)
            .map_err(|_| DpopError::InvalidKey)
    }

    fn from_signing(signing: SigningKey) -> Self {
        let point = signing.verifying_key().to_sec1_point(false);
        let (x, y) = match (point.x(), point.y()) {
            (Some(x), Some(y)) => (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)),
            // An uncompressed point of a valid key always has both coordinates.
            _ => unreachable!("an uncompressed P-256 point has coordinates"),
        };
        // RFC 7638 §3.2: the required members only, in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self(std::sync::Arc::new(KeyPair {
            signing,
            x,
            y,
            thumbprint,
        }))
    }

    /// Another handle on the same key, for the requests of one operation (the token set keeps its own).
    pub(crate) fn share(&self) -> Self {
        Self(std::sync::Arc::clone(&self.0))
    }

    /// The private key's 32 bytes, for sealing in the vault: the only way they leave this type.
    pub fn to_secret(&self) -> SecretBytes {
        let mut bytes = self.0.signing.to_bytes();
        let secret = SecretBytes::new(bytes.to_vec());
        zeroize::Zeroize::zeroize(bytes.as_mut_slice());
        secret
    }

    /// The RFC 7638 SHA-256 thumbprint of the public key (base64url): what a bound token's `cnf.jkt` names, and
    /// what a pushed authorization request's `dpop_jkt` says.
    pub fn thumbprint(&self) -> &str {
        &self.0.thumbprint
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`: never `d`).
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({ "kty": "EC", "crv": "P-256", "x": self.0.x, "y": self.0.y })
    }

    /// A proof for one request (RFC 9449 §4.2): `method` and the address `uri` (its query and fragment left
    /// out), issued at `iat` (Unix seconds), with the hash of `access_token` (`ath`, for resource requests) and
    /// the server's `nonce` when it has given one. Each proof has a fresh random `jti`.
    ///
    /// # Errors
    /// [`DpopError::Rng`] when no randomness is available for the `jti`.
    pub fn proof(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        access_token: Option<&str>,
        nonce: Option<&str>,
        iat: u64,
    ) -> Result<String, DpopError> {
        let header = serde_json::json!({ "typ": PROOF_TYP, "alg": ALG, "jwk": self.public_jwk() });
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|_| DpopError::Rng)?;
        let mut claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method.as_str(),
            "htu": htu(uri),
            "iat": iat,
        });
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes())).into();
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // JWS ES256 (RFC 7518 §3.4): the signature is R ‖ S, 32 bytes each.
        let signature: Signature = self.0.signing.sign(signing_input.as_bytes());
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

/// A proof's `htu`: the request's address without its query and fragment (RFC 9449 §4.2), as
/// `scheme://authority/path`.
pub fn htu(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("", |a| a.as_str());
    let path = if uri.path().is_empty() { "/" } else { uri.path() };
    format!("{scheme}://{authority}{path}")
}

/// The nonces servers have given (RFC 9449 §8, §9), one per origin, newest wins; kept in memory only, for the
/// life of the process (a nonce is short-lived and a server that wants a new one says so).
#[derive(Debug, Default)]
pub struct DpopNonces {
    by_origin: Mutex<HashMap<String, String>>,
}

/// At most this many servers' nonces are kept; beyond it the map starts afresh (each server then asks again).
const MAX_NONCE_ORIGINS: usize = 256;
/// A nonce longer than this is not kept (a nonce is a short opaque string; this bounds a hostile server).
const MAX_NONCE_LEN: usize = 512;

impl DpopNonces {
    /// The process's nonces: every proof Tokenkeep signs reads and fills this one map.
    pub fn global() -> &'static Self {
        static NONCES: std::sync::OnceLock<DpopNonces> = std::sync::OnceLock::new();
        NONCES.get_or_init(Self::default)
    }

    /// The nonce last given by the server of `uri`.
    pub fn get(&self, uri: &http::Uri) -> Option<String> {
        self.by_origin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&origin(uri))
            .cloned()
    }

    /// Keeps the `DPoP-Nonce` of `response` for the server of `uri`; returns whether it was a new one.
    pub fn remember(&self, uri: &http::Uri, response: &HttpResponse) -> bool {
        let Some(nonce) = response
            .headers()
            .get(NONCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|n| !n.is_empty() && n.len() <= MAX_NONCE_LEN && n.bytes().all(|b| b.is_ascii_graphic()))
        else {
            return false;
        };
        let mut map = self.by_origin.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_NONCE_ORIGINS && !map.contains_key(&origin(uri)) {
            map.clear();
        }
        map.insert(origin(uri), nonce.to_owned()).as_deref() != Some(nonce)
    }
}

fn origin(uri: &http::Uri) -> String {
    format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        uri.authority().map_or("", |a| a.as_str())
    )
    .to_ascii_lowercase()
}

/// Whether `response` asks for a proof with the server's nonce: an authorization server's `400` with the OAuth
/// error `use_dpop_nonce` (RFC 9449 §8), or a resource server's `401` whose `WWW-Authenticate` says it (§9).
pub fn wants_nonce(response: &HttpResponse) -> bool {
    match response.status().as_u16() {
        400 => serde_json::from_slice::<serde_json::Value>(response.body())
            .ok()
            .and_then(|body| {
                body.get("error")
                    .and_then(|e| e.as_str())
                    .map(|e| e == "use_dpop_nonce")
            })
            .unwrap_or(false),
        401 => response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("use_dpop_nonce")),
        _ => false,
    }
}

/// Seconds since the Unix epoch, for a proof's `iat`. The system clock, not the engine's: the server compares
/// `iat` with its own time.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Sends `request` with a proof from `key` (and `ath` of `access_token`, for a resource request), the server's
/// nonce when one is known; an answer that asks for a (new) nonce gets the request once more, signed with it.
/// `limit` bounds the answer's body as [`HttpClient::execute_limited`] does.
///
/// # Errors
/// The transport's [`HttpError`]; a proof that cannot be signed (no randomness) as [`HttpError::InvalidRequest`].
pub async fn send(
    http: &dyn HttpClient,
    key: &DpopKey,
    request: HttpRequest,
    access_token: Option<&str>,
    limit: usize,
) -> Result<HttpResponse, HttpError> {
    let nonces = DpopNonces::global();
    let retry = copy_request(&request);
    let uri = request.uri().clone();
    let first = http
        .execute_limited(with_proof(key, request, access_token, nonces)?, limit)
        .await?;
    let fresh = nonces.remember(&uri, &first);
    if !(fresh && wants_nonce(&first)) {
        return Ok(first);
    }
    tracing::debug!(
        host = uri.host().unwrap_or_default(),
        "DPoP: the server asked for its nonce; signing again"
    );
    let second = http
        .execute_limited(with_proof(key, retry, access_token, nonces)?, limit)
        .await?;
    nonces.remember(&uri, &second);
    Ok(second)
}

fn with_proof(
    key: &DpopKey,
    mut request: HttpRequest,
    access_token: Option<&str>,
    nonces: &DpopNonces,
) -> Result<HttpRequest, HttpError> {
    let nonce = nonces.get(request.uri());
    let proof = key
        .proof(
            request.method(),
            request.uri(),
            access_token,
            nonce.as_deref(),
            now_secs(),
        )
        .map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
    let value = http::HeaderValue::from_str(&proof).map_err(|e| HttpError::InvalidRequest(e.to_string()))?;
    request.headers_mut().insert(DPOP, value);
    Ok(request)
}

/// A copy of `request` (method, address, version, headers and body), to send again.
pub(crate) fn copy_request(request: &HttpRequest) -> HttpRequest {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier as _;
    use serde_json::Value;

    use super::*;
    use crate::http::BoxFuture;

    fn decode(part: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// Checks `proof` by RFC 9449 §4.3's rules, as a server would, and returns its header and claims.
    fn check(proof: &str, key: &DpopKey) -> (Value, Value) {
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3, "a compact JWS");
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        let jwk = header["jwk"].as_object().unwrap();
        assert!(!jwk.contains_key("d"), "the header's JWK has no private part");
        assert_eq!(
            jwk.keys().map(String::as_str).collect::<Vec<_>>(),
            ["crv", "kty", "x", "y"]
        );
        // The signature verifies with the key the header names (and so with the connection's key).
        let mut sec1 = vec![4u8];
        sec1.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        sec1.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        let verifying = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        assert_eq!(&verifying, key.0.signing.verifying_key());
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        verifying
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies");
        (header, claims)
    }

    #[test]
    fn proofs_follow_rfc_9449() {
        let key = DpopKey::generate().unwrap();
        let uri: http::Uri = "https://Bsky.Social:443/xrpc/com.atproto.repo.createRecord?x=1#frag"
            .parse()
            .unwrap();
        let proof = key
            .proof(
                &http::Method::POST,
                &uri,
                Some("the-access-token"),
                Some("n-1"),
                1_700_000_000,
            )
            .unwrap();
        let (_, claims) = check(&proof, &key);
        assert_eq!(claims["htm"], "POST");
        assert_eq!(
            claims["htu"], "https://Bsky.Social:443/xrpc/com.atproto.repo.createRecord",
            "no query, no fragment"
        );
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nonce"], "n-1");
        // ath: base64url of SHA-256 of the token's ASCII (RFC 9449 §4.2).
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"the-access-token"))
        );
        assert!(URL_SAFE_NO_PAD.decode(claims["jti"].as_str().unwrap()).unwrap().len() >= 16);

        // A token request: no ath, no nonce until the server gives one; a new jti every time.
        let token_uri: http::Uri = "http://127.0.0.1:4000/token".parse().unwrap();
        let a = key.proof(&http::Method::POST, &token_uri, None, None, 1).unwrap();
        let b = key.proof(&http::Method::POST, &token_uri, None, None, 1).unwrap();
        let (_, ca) = check(&a, &key);
        let (_, cb) = check(&b, &key);
        assert!(ca.get("ath").is_none() && ca.get("nonce").is_none());
        assert_ne!(ca["jti"], cb["jti"]);
        assert_eq!(ca["htu"], "http://127.0.0.1:4000/token");
    }

    #[test]
    fn thumbprint_is_rfc_7638_and_keys_round_trip_through_their_secret() {
        let key = DpopKey::generate().unwrap();
        let jwk = key.public_jwk();
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["kty"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        assert_eq!(key.thumbprint(), URL_SAFE_NO_PAD.encode(Sha256::digest(canonical)));
        assert_eq!(key.thumbprint().len(), 43);

        let again = DpopKey::from_secret(&key.to_secret()).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
        assert_ne!(DpopKey::generate().unwrap().thumbprint(), key.thumbprint());
        assert_eq!(
            DpopKey::from_secret(&SecretBytes::new(vec![0; 32])).unwrap_err(),
            DpopError::InvalidKey
        );
        assert_eq!(
            DpopKey::from_secret(&SecretBytes::new(vec![1; 31])).unwrap_err(),
            DpopError::InvalidKey
        );
        // Debug names the public thumbprint, never the private scalar.
        let debug = format!("{key:?}");
        assert!(debug.contains(key.thumbprint()));
        assert!(!debug.contains(&hex::encode(key.to_secret().dangerously_expose())));
    }

    /// Answers like an authorization server that wants its nonce: `use_dpop_nonce` until a proof carries it.
    #[derive(Debug, Default)]
    struct NonceServer {
        proofs: Mutex<Vec<Value>>,
    }

    impl HttpClient for NonceServer {
        fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
            let proof = request.headers()[DPOP].to_str().unwrap().to_owned();
            let claims = decode(proof.split('.').nth(1).unwrap());
            let ok = claims["nonce"] == "server-nonce-2";
            self.proofs.lock().unwrap().push(claims);
            Box::pin(async move {
                let (status, body) = if ok {
                    (200, r#"{"ok":true}"#)
                } else {
                    (400, r#"{"error":"use_dpop_nonce"}"#)
                };
                Ok(http::Response::builder()
                    .status(status)
                    .header(NONCE_HEADER, "server-nonce-2")
                    .body(body.as_bytes().to_vec())
                    .unwrap())
            })
        }
    }

    #[tokio::test]
    async fn a_nonce_challenge_is_answered_once_and_remembered() {
        let key = DpopKey::generate().unwrap();
        let server = Arc::new(NonceServer::default());
        let request = || {
            http::Request::post("http://127.0.0.1:9/token?x")
                .body(b"grant_type=refresh_token".to_vec())
                .unwrap()
        };
        let answer = send(&*server, &key, request(), None, 1024).await.unwrap();
        assert_eq!(answer.status(), 200);
        {
            let proofs = server.proofs.lock().unwrap();
            assert_eq!(proofs.len(), 2, "one retry");
            assert!(proofs[0].get("nonce").is_none());
            assert_eq!(proofs[1]["nonce"], "server-nonce-2");
            assert_ne!(proofs[0]["jti"], proofs[1]["jti"]);
        }
        // The next request to that server carries the nonce at once.
        send(&*server, &key, request(), None, 1024).await.unwrap();
        assert_eq!(server.proofs.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_server_that_refuses_its_own_nonce_gets_no_loop() {
        #[derive(Debug, Default)]
        struct Stubborn(Mutex<u32>);
        impl HttpClient for Stubborn {
            fn execute(&self, _: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
                *self.0.lock().unwrap() += 1;
                Box::pin(async {
                    Ok(http::Response::builder()
                        .status(401)
                        .header("WWW-Authenticate", r#"DPoP error="use_dpop_nonce""#)
                        .header(NONCE_HEADER, "always-the-same")
                        .body(Vec::new())
                        .unwrap())
                })
            }
        }
        let key = DpopKey::generate().unwrap();
        let server = Stubborn::default();
        let request = || http::Request::get("http://127.0.0.1:10/api").body(Vec::new()).unwrap();
        assert_eq!(
            send(&server, &key, request(), Some("at"), 64).await.unwrap().status(),
            401
        );
        assert_eq!(*server.0.lock().unwrap(), 2);
        // The nonce is known now: one request, and its answer is final.
        assert_eq!(
            send(&server, &key, request(), Some("at"), 64).await.unwrap().status(),
            401
        );
        assert_eq!(*server.0.lock().unwrap(), 3);
    }

    #[test]
    fn hostile_nonces_are_not_kept() {
        let nonces = DpopNonces::default();
        let uri: http::Uri = "https://as.example/token".parse().unwrap();
        for bad in ["", "has space", &"n".repeat(MAX_NONCE_LEN + 1)] {
            let response = http::Response::builder()
                .header(NONCE_HEADER, bad)
                .body(Vec::new())
                .unwrap();
            assert!(!nonces.remember(&uri, &response));
        }
        assert_eq!(nonces.get(&uri), None);
    }
}
