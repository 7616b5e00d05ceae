//! The flow's dialect mechanisms in-process: the authorization URL as each PKCE setting writes it, and a whole
//! paste-redirect sign-in (Meta's shape: short-lived token, long-lived exchange, identity) against a scripted HTTP
//! client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::http::{BoxFuture, HttpClient, HttpError, HttpRequest, HttpResponse};

fn spec(extra: &str) -> ProviderSpec {
    ProviderSpec::from_toml(
        "t",
        &format!(
            r#"
            id = "t"
            display_name = "Test"
            authorization_endpoint = "https://auth.example/authorize"
            token_endpoint = "http://127.0.0.1:1/token"
            userinfo_endpoint = "http://127.0.0.1:1/me"
            identity = {{ source = "userinfo", account_claims = ["username"], subject_claim = "id" }}
            client_id = "client-1"
            {extra}
            "#
        ),
    )
    .expect("a valid provider")
}

fn credentials(secret: Option<&str>) -> ClientCredentials {
    ClientCredentials {
        client_id: "client-1".into(),
        client_secret: secret.map(|s| SecretString::new(s.into())),
    }
}

fn params(url: &Url) -> BTreeMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn pkce_is_base64url_hex_or_absent_as_the_definition_says() {
    let s256 = Authorization::start(&spec(r#"pkce = "s256""#), credentials(None), None, &offline())
        .await
        .unwrap();
    let p = params(s256.authorize_url());
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["code_challenge"].len(), 43, "base64url of 32 bytes, no padding");

    // TikTok: "You must use hex encoding of SHA256 to generate the code challenge from the code verifier"
    // (https://developers.tiktok.com/doc/login-kit-desktop).
    let hex = Authorization::start(&spec(r#"pkce = "hex""#), credentials(None), None, &offline())
        .await
        .unwrap();
    let p = params(hex.authorize_url());
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["code_challenge"].len(), 64);
    assert!(
        p["code_challenge"]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    let verifier = hex.verifier.as_ref().unwrap().secret().clone();
    assert_eq!(p["code_challenge"], dialect::hex_challenge(&verifier));

    // LinkedIn's standard flow refuses a code_verifier: nothing of PKCE is sent.
    let off = Authorization::start(&spec(r#"pkce = "off""#), credentials(None), None, &offline())
        .await
        .unwrap();
    let p = params(off.authorize_url());
    assert!(
        !p.contains_key("code_challenge") && !p.contains_key("code_challenge_method"),
        "{p:?}"
    );
    assert!(off.verifier.is_none());
}

/// Answers by URL path; records every request (method, URL, body).
#[derive(Debug, Default)]
struct Scripted {
    answers: BTreeMap<&'static str, (u16, String)>,
    seen: Mutex<Vec<(String, String, String)>>,
    /// The `DPoP` header of each request (empty when it had none).
    proofs: Mutex<Vec<String>>,
}

/// A client for flows that push nothing: every request is refused with 404.
fn offline() -> SharedHttp {
    Arc::new(Scripted::default())
}

impl HttpClient for Scripted {
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        let path = request.uri().path().to_owned();
        self.proofs.lock().unwrap_or_else(PoisonError::into_inner).push(
            request
                .headers()
                .get("dpop")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
        );
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).push((
            request.method().to_string(),
            request.uri().to_string(),
            String::from_utf8_lossy(request.body()).into_owned(),
        ));
        let (status, body) = self
            .answers
            .get(path.as_str())
            .cloned()
            .unwrap_or((404, r#"{"error":"not_found"}"#.into()));
        Box::pin(async move {
            Ok(http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(body.into_bytes())
                .unwrap())
        })
    }
}

/// The address the person pastes; or, for the test of a refused paste, another one.
struct Pasting(Option<String>);

impl PasteSource for Pasting {
    fn pasted_address(&mut self) -> BoxFuture<'_, Option<SecretString>> {
        let pasted = self.0.take().map(SecretString::new);
        Box::pin(async move { pasted })
    }
}

const PASTE_SPEC: &str = r#"
    redirect = "paste"
    redirect_uri = "https://creator.example/tokenkeep/"
    pkce = "off"
    client_auth = "client_secret_post"
    token_response_path = "data.0"
    default_expires_in_secs = 3600
    [long_lived]
    method = "GET"
    url = "http://127.0.0.1:1/access_token"
    params = { grant_type = "ig_exchange_token", client_secret = "{client_secret}", access_token = "{access_token}" }
"#;

#[tokio::test]
async fn a_pasted_redirect_completes_a_sign_in_with_the_long_lived_exchange() {
    let spec = spec(PASTE_SPEC);
    let authorization = Authorization::start(&spec, credentials(Some("app-secret-1")), None, &offline())
        .await
        .unwrap();
    assert!(authorization.needs_paste());
    assert_eq!(
        authorization.redirect_uri().as_str(),
        "https://creator.example/tokenkeep/"
    );
    let state = params(authorization.authorize_url())["state"].clone();
    // As Meta sends it: the registered page, the code, the state, and `#_` appended.
    let pasted = format!("https://creator.example/tokenkeep/?code=CODE-1&state={state}#_");

    let mut answers = BTreeMap::new();
    // Instagram documents the code exchange's answer wrapped in `data` (business-login), without `expires_in`.
    answers.insert(
        "/token",
        (
            200,
            r#"{"data":[{"access_token":"SHORT-1","user_id":"17"}]}"#.to_owned(),
        ),
    );
    answers.insert(
        "/access_token",
        (
            200,
            r#"{"access_token":"LONG-1","token_type":"bearer","expires_in":5184000}"#.to_owned(),
        ),
    );
    answers.insert("/me", (200, r#"{"id":"17","username":"creator"}"#.to_owned()));
    let http = Arc::new(Scripted {
        answers,
        ..Scripted::default()
    });
    let shared: SharedHttp = http.clone();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let done = authorization
        .finish(&shared, || now, Duration::from_secs(5), &mut Pasting(Some(pasted)))
        .await
        .unwrap();
    assert_eq!(done.identity.account, "creator");
    assert_eq!(
        done.tokens.access.dangerously_expose(),
        "LONG-1",
        "the long-lived token is kept"
    );
    assert!(done.tokens.refresh.is_none());
    assert_eq!(done.expires_at, Some(1_800_000_000 + 5_184_000));

    let seen = http.seen.lock().unwrap().clone();
    let token = seen.iter().find(|(_, url, _)| url.ends_with("/token")).unwrap();
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(token.2.as_bytes()).into_owned().collect();
    assert_eq!(form["code"], "CODE-1");
    assert_eq!(form["redirect_uri"], "https://creator.example/tokenkeep/");
    let (method, url, _) = seen.iter().find(|(_, url, _)| url.contains("/access_token")).unwrap();
    assert_eq!(method, "GET");
    let exchange = params(&Url::parse(url).unwrap());
    assert_eq!(exchange["grant_type"], "ig_exchange_token");
    assert_eq!(exchange["access_token"], "SHORT-1");
    assert_eq!(exchange["client_secret"], "app-secret-1");
    // The identity call used the long-lived token.
    assert_eq!(seen.iter().filter(|(_, url, _)| url.ends_with("/me")).count(), 1);
}

#[tokio::test]
async fn a_pasted_address_of_another_sign_in_or_page_is_refused_clearly() {
    let spec = spec(PASTE_SPEC);
    let http: SharedHttp = Arc::new(Scripted::default());
    let now = SystemTime::now();
    let cases = [
        (
            "https://creator.example/tokenkeep/?code=C&state=not-ours",
            "does not belong to the sign-in",
        ),
        (
            "https://evil.example/tokenkeep/?code=C&state=STATE",
            "not the page this sign-in returns to",
        ),
        ("copied the wrong thing", "not a web address"),
    ];
    for (pasted, expected) in cases {
        let authorization = Authorization::start(&spec, credentials(Some("s")), None, &offline())
            .await
            .unwrap();
        let state = params(authorization.authorize_url())["state"].clone();
        let pasted = pasted.replace("STATE", &state);
        let err = authorization
            .finish(
                &http,
                || now,
                Duration::from_secs(5),
                &mut Pasting(Some(pasted.clone())),
            )
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains(expected), "{pasted}: {message}");
        assert!(!message.contains(&state), "the state is not echoed: {message}");
    }
    let authorization = Authorization::start(&spec, credentials(Some("s")), None, &offline())
        .await
        .unwrap();
    let err = authorization
        .finish(&http, || now, Duration::from_secs(5), &mut Pasting(None))
        .await
        .unwrap_err();
    assert!(matches!(err, FlowError::NoAddressPasted), "{err}");
}

#[test]
fn an_issuer_alias_passes_the_callback_check_and_a_stranger_does_not() {
    let spec = spec(
        r#"issuer = "https://accounts.google.com"
           issuer_aliases = ["accounts.google.com"]"#,
    );
    assert!(check_issuer(&spec, Some("accounts.google.com")).is_ok());
    assert!(check_issuer(&spec, Some("https://accounts.google.com")).is_ok());
    assert!(matches!(
        check_issuer(&spec, Some("https://evil.example")),
        Err(FlowError::IssuerMismatch { .. })
    ));
}

const PAR_SPEC: &str = r#"
    redirect = "paste"
    redirect_uri = "https://creator.example/tokenkeep/"
    pushed_authorization_request_endpoint = "http://127.0.0.1:1/par"
    par = "required"
    dpop = "required"
"#;

fn par_answers(token_type: &str) -> BTreeMap<&'static str, (u16, String)> {
    let mut answers = BTreeMap::new();
    answers.insert(
        "/par",
        (
            201,
            r#"{"request_uri":"urn:ietf:params:oauth:request_uri:R-1","expires_in":60}"#.to_owned(),
        ),
    );
    answers.insert(
        "/token",
        (
            200,
            format!(r#"{{"access_token":"AT-1","token_type":"{token_type}","refresh_token":"RT-1","expires_in":60}}"#),
        ),
    );
    answers.insert("/me", (200, r#"{"id":"17","username":"creator"}"#.to_owned()));
    answers
}

/// RFC 9126 and RFC 9449 together, as Bluesky wants them: the parameters are pushed with a proof, the browser
/// gets `client_id` and `request_uri` only, the code exchange and the identity call carry proofs by the same key,
/// and the key is kept with the tokens.
#[tokio::test]
async fn a_pushed_request_with_dpop_binds_the_tokens_to_a_new_key() {
    let spec = spec(PAR_SPEC);
    let http = Arc::new(Scripted {
        answers: par_answers("DPoP"),
        ..Scripted::default()
    });
    let shared: SharedHttp = http.clone();
    let authorization = Authorization::start(&spec, credentials(None), None, &shared)
        .await
        .unwrap();
    let url = authorization.authorize_url().clone();
    assert_eq!(url.path(), "/authorize");
    assert_eq!(
        params(&url),
        BTreeMap::from([
            ("client_id".to_owned(), "client-1".to_owned()),
            (
                "request_uri".to_owned(),
                "urn:ietf:params:oauth:request_uri:R-1".to_owned()
            ),
        ]),
        "nothing but the reference reaches the browser"
    );
    let pushed = http.seen.lock().unwrap()[0].clone();
    assert_eq!(
        (pushed.0.as_str(), pushed.1.as_str()),
        ("POST", "http://127.0.0.1:1/par")
    );
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(pushed.2.as_bytes()).into_owned().collect();
    for name in [
        "client_id",
        "response_type",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
    ] {
        assert!(form.contains_key(name), "the pushed request has {name}");
    }
    let pasted = format!("https://creator.example/tokenkeep/?code=CODE-1&state={}", form["state"]);
    let done = authorization
        .finish(
            &shared,
            SystemTime::now,
            Duration::from_secs(5),
            &mut Pasting(Some(pasted)),
        )
        .await
        .unwrap();
    let key = done.tokens.dpop_key.as_ref().expect("the tokens are bound to a key");
    let proofs = http.proofs.lock().unwrap().clone();
    assert_eq!(proofs.len(), 3, "push, code exchange, identity");
    for (proof, (method, htu, ath)) in proofs.iter().zip([
        ("POST", "http://127.0.0.1:1/par", false),
        ("POST", "http://127.0.0.1:1/token", false),
        ("GET", "http://127.0.0.1:1/me", true),
    ]) {
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3, "a proof on {htu}");
        use base64::Engine as _;
        let decode = |part: &str| -> serde_json::Value {
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(
            header["jwk"],
            key.public_jwk(),
            "every proof is made with the connection's key"
        );
        assert_eq!(
            (claims["htm"].as_str(), claims["htu"].as_str()),
            (Some(method), Some(htu))
        );
        assert_eq!(claims.get("ath").is_some(), ath, "ath only with the access token");
    }
    let userinfo = &http.seen.lock().unwrap()[2];
    assert!(userinfo.1.ends_with("/me"));
}

#[tokio::test]
async fn a_bearer_answer_where_binding_is_required_is_refused() {
    let spec = spec(PAR_SPEC);
    let http = Arc::new(Scripted {
        answers: par_answers("Bearer"),
        ..Scripted::default()
    });
    let shared: SharedHttp = http.clone();
    let authorization = Authorization::start(&spec, credentials(None), None, &shared)
        .await
        .unwrap();
    let state = {
        let seen = http.seen.lock().unwrap();
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(seen[0].2.as_bytes()).into_owned().collect();
        form["state"].clone()
    };
    let pasted = format!("https://creator.example/tokenkeep/?code=CODE-1&state={state}");
    let err = authorization
        .finish(
            &shared,
            SystemTime::now,
            Duration::from_secs(5),
            &mut Pasting(Some(pasted)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must be bound to Tokenkeep's key"), "{err}");
}

#[tokio::test]
async fn a_refused_push_says_what_the_platform_said() {
    let spec = spec(PAR_SPEC);
    let mut answers = BTreeMap::new();
    answers.insert(
        "/par",
        (
            400,
            r#"{"error":"invalid_client","error_description":"unknown client"}"#.to_owned(),
        ),
    );
    let http: SharedHttp = Arc::new(Scripted {
        answers,
        ..Scripted::default()
    });
    let err = Authorization::start(&spec, credentials(None), None, &http)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Test refused the sign-in: invalid_client (unknown client)"
    );
}
