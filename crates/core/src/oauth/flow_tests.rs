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
    let s256 = Authorization::start(&spec(r#"pkce = "s256""#), credentials(None), None)
        .await
        .unwrap();
    let p = params(s256.authorize_url());
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["code_challenge"].len(), 43, "base64url of 32 bytes, no padding");

    // TikTok: "You must use hex encoding of SHA256 to generate the code challenge from the code verifier"
    // (https://developers.tiktok.com/doc/login-kit-desktop).
    let hex = Authorization::start(&spec(r#"pkce = "hex""#), credentials(None), None)
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
    let off = Authorization::start(&spec(r#"pkce = "off""#), credentials(None), None)
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
}

impl HttpClient for Scripted {
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        let path = request.uri().path().to_owned();
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
    let authorization = Authorization::start(&spec, credentials(Some("app-secret-1")), None)
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
        let authorization = Authorization::start(&spec, credentials(Some("s")), None).await.unwrap();
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
    let authorization = Authorization::start(&spec, credentials(Some("s")), None).await.unwrap();
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
