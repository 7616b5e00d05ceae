//! OpenID Connect discovery: fill a provider definition from its issuer's `/.well-known/openid-configuration`.
//!
//! [`discover`] follows OpenID Connect Discovery 1.0 §4: the configuration URL is the issuer with any trailing
//! `/` removed, then `/.well-known/openid-configuration` appended (so an issuer with a path keeps it), and the
//! document's `issuer` must be **identical** to the issuer asked for (§4.3) — otherwise a server could hand out
//! another issuer's endpoints. The one tolerance is a trailing slash: `Url` writes `https://idp.example` as
//! `https://idp.example/`, so the person's spelling is unknown, and providers exist with and without one.
//!
//! The document is untrusted input: every field is checked for presence and type, and errors say which field
//! is wrong and what to do. The result passes [`ProviderSpec::validate`], so plain-HTTP endpoints off loopback
//! are refused.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use url::Url;

use super::{
    ClientAuth, DpopUse, IdentitySource, Par, ParamNames, Pkce, ProviderError, ProviderId, ProviderSpec, RedirectMode,
    RefreshStyle, RevocationStyle, is_loopback_host,
};
use crate::http::{HttpClient, HttpError};

/// The path OpenID Connect Discovery appends to the issuer.
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Where the browser comes back to for a custom OpenID provider: loopback, any port (RFC 8252 §7.3).
const CUSTOM_LOOPBACK_HOST: &str = "127.0.0.1";
const CUSTOM_REDIRECT_PATH: &str = "/callback";

/// The redirect URI to register for a custom OpenID provider, before it is added (any port: RFC 8252 §7.3).
pub fn custom_redirect_uri() -> String {
    format!("http://{CUSTOM_LOOPBACK_HOST}{CUSTOM_REDIRECT_PATH}")
}

/// Why a provider could not be discovered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The issuer is not an `https` URL (plain `http` is allowed on loopback only) or has a query or fragment.
    #[error("{issuer} cannot be an OpenID issuer: {reason}")]
    InvalidIssuer {
        /// The issuer asked for.
        issuer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configuration could not be fetched.
    #[error("could not fetch {url}: {source}")]
    Fetch {
        /// The configuration URL.
        url: String,
        /// What went wrong.
        #[source]
        source: HttpError,
    },
    /// The server answered with a status other than 2xx.
    #[error("{url} answered HTTP {status}: {}", status_hint(*status))]
    Status {
        /// The configuration URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body is not a JSON object.
    #[error(
        "{url} returned {what} instead of an OpenID configuration: check that the issuer is the identity provider's \
         issuer URL (for example https://accounts.example.com), not a website or login page"
    )]
    NotJson {
        /// The configuration URL.
        url: String,
        /// What came back ("an HTML page", "JSON that is not an object", …).
        what: &'static str,
    },
    /// A required field is absent.
    #[error(
        "the OpenID configuration at {url} has no `{field}`: this provider cannot be added by discovery; add it by hand instead"
    )]
    MissingField {
        /// The configuration URL.
        url: String,
        /// The missing field.
        field: &'static str,
    },
    /// A field has the wrong type or an unusable value.
    #[error("the OpenID configuration at {url} has an invalid `{field}`: {reason}")]
    InvalidField {
        /// The configuration URL.
        url: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The document names another issuer than the one asked for (OpenID Connect Discovery §4.3).
    #[error(
        "{requested} announces the issuer {announced}, which is not the same: Tokenkeep only trusts a configuration \
         whose issuer is exactly the one you gave. If {announced} is the right address, add the provider with it"
    )]
    IssuerMismatch {
        /// The issuer asked for.
        requested: String,
        /// The issuer in the document.
        announced: String,
    },
    /// The provider does not offer what Tokenkeep needs (the authorization code flow, a usable client authentication).
    #[error("{issuer} cannot be used: {reason}")]
    Unsupported {
        /// The issuer.
        issuer: String,
        /// What is missing.
        reason: String,
    },
    /// The resulting definition is invalid (for example a plain-HTTP endpoint off loopback).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

fn status_hint(status: u16) -> &'static str {
    match status {
        300..=399 => "it redirects elsewhere; use the final address of the issuer instead",
        404 | 410 => {
            "there is no OpenID configuration at this address; check the issuer URL, or add the provider by hand"
        }
        401 | 403 => "the server refused to share its configuration; add the provider by hand",
        500..=599 => "the identity provider has a problem; try again later",
        _ => "check the issuer URL, or add the provider by hand",
    }
}

/// Fetches `issuer`'s OpenID configuration and turns it into a validated [`ProviderSpec`] named `id`.
///
/// - `display_name`: shown to people; defaults to the issuer's host.
/// - `client_auth`: the token endpoint authentication the person registered their client with. `None` picks from
///   the document's `token_endpoint_auth_methods_supported`, preferring `none` (a public client with PKCE), then
///   `client_secret_basic`, then `client_secret_post`. A method the document does not list is kept, with a
///   warning in the log: many providers list fewer methods than a particular client may use.
///
/// The definition requests `openid` plus `email` and `profile` (each only if `scopes_supported` is absent or lists
/// it) plus `offline_access` when listed, reads the account from the id_token, and always uses PKCE (S256) —
/// with a warning if the document does not list S256. No client id is set: the person adds it.
pub async fn discover(
    http: &dyn HttpClient,
    issuer: &Url,
    id: ProviderId,
    display_name: Option<String>,
    client_auth: Option<ClientAuth>,
) -> Result<ProviderSpec, DiscoveryError> {
    let requested = check_issuer(issuer)?;
    let url = format!("{requested}{WELL_KNOWN}");
    let request = http::Request::get(&url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| DiscoveryError::Fetch {
            url: url.clone(),
            source: HttpError::InvalidRequest(e.to_string()),
        })?;
    let response = http.execute(request).await.map_err(|source| DiscoveryError::Fetch {
        url: url.clone(),
        source,
    })?;
    if !response.status().is_success() {
        return Err(DiscoveryError::Status {
            url,
            status: response.status().as_u16(),
        });
    }
    let doc = Document::parse(&url, response.body())?;

    let announced = doc.required_str("issuer")?;
    if announced != requested && announced.strip_suffix('/') != Some(requested) {
        return Err(DiscoveryError::IssuerMismatch {
            requested: requested.to_owned(),
            announced: announced.to_owned(),
        });
    }

    if let Some(types) = doc.string_list("response_types_supported")?
        && !types.iter().any(|t| t == "code")
    {
        return Err(unsupported(
            requested,
            "it does not offer the authorization code flow (response type `code`)",
        ));
    }
    // OpenID Connect Discovery §3: absent means ["authorization_code", "implicit"].
    if let Some(grants) = doc.string_list("grant_types_supported")? {
        if !grants.iter().any(|g| g == "authorization_code") {
            return Err(unsupported(
                requested,
                "it does not offer the `authorization_code` grant",
            ));
        }
        if !grants.iter().any(|g| g == "refresh_token") {
            tracing::warn!(
                issuer = requested,
                "the provider does not list the refresh_token grant: connections may not refresh"
            );
        }
    }
    match doc.string_list("code_challenge_methods_supported")? {
        Some(methods) if !methods.iter().any(|m| m == "S256") => {
            tracing::warn!(
                issuer = requested,
                "the provider does not list PKCE S256; Tokenkeep sends it anyway"
            );
        }
        _ => {}
    }

    let scopes_supported = doc.string_list("scopes_supported")?;
    let supports = |scope: &str| {
        scopes_supported
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == scope))
    };
    let mut scopes = vec!["openid".to_owned()];
    scopes.extend(
        ["email", "profile"]
            .into_iter()
            .filter(|s| supports(s))
            .map(String::from),
    );
    if scopes_supported
        .as_ref()
        .is_some_and(|list| list.iter().any(|s| s == "offline_access"))
    {
        scopes.push("offline_access".to_owned());
    }

    let auth_methods = doc.string_list("token_endpoint_auth_methods_supported")?;
    let client_auth = choose_client_auth(requested, auth_methods.as_deref(), client_auth)?;

    let display_name = display_name
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| issuer.host_str().unwrap_or(requested).to_owned());

    // RFC 9126 §5 and RFC 9449 §5.1: what the server offers beyond RFC 6749. Both are used when offered (the
    // person can turn them off: `providers add --no-par`, `--no-dpop`); Tokenkeep's proofs are ES256 only.
    let par_endpoint = doc.optional_url("pushed_authorization_request_endpoint")?;
    let par_required = doc
        .optional_bool("require_pushed_authorization_requests")?
        .unwrap_or(false);
    if par_required && par_endpoint.is_none() {
        return Err(doc.invalid(
            "pushed_authorization_request_endpoint",
            "the server requires pushed authorization requests but names no endpoint for them",
        ));
    }
    let dpop_es256 = doc
        .string_list("dpop_signing_alg_values_supported")?
        .is_some_and(|algs| algs.iter().any(|a| a == crate::dpop::ALG));
    let spec = ProviderSpec {
        id,
        display_name,
        issuer: Some(announced.to_owned()),
        authorization_endpoint: doc.required_url("authorization_endpoint")?,
        token_endpoint: doc.required_url("token_endpoint")?,
        revocation_endpoint: doc.optional_url("revocation_endpoint")?,
        userinfo_endpoint: doc.optional_url("userinfo_endpoint")?,
        pushed_authorization_request_endpoint: par_endpoint.clone(),
        par: if par_required { Par::Required } else { Par::Auto },
        dpop: if dpop_es256 { DpopUse::Auto } else { DpopUse::Off },
        manage_access_url: None,
        scopes,
        scope_separator: " ".to_owned(),
        client_auth,
        client_id: None,
        pkce: Pkce::S256,
        issuer_aliases: Vec::new(),
        http_headers: BTreeMap::new(),
        revocation: RevocationStyle::default(),
        long_lived: None,
        refresh: RefreshStyle::RefreshToken,
        default_expires_in_secs: None,
        session_lifetime_secs: None,
        session_warning_secs: None,
        token_response_path: None,
        error_codes: BTreeMap::new(),
        validation: None,
        redirect: RedirectMode::Loopback,
        redirect_uri: None,
        invalid_grant_hint: None,
        authorize_params: BTreeMap::new(),
        param_names: ParamNames::default(),
        identity: IdentitySource::IdToken {
            account_claims: ["email", "preferred_username", "name", "sub"]
                .map(String::from)
                .to_vec(),
            picture_claims: vec!["picture".to_owned()],
        },
        loopback_host: CUSTOM_LOOPBACK_HOST.to_owned(),
        redirect_path: CUSTOM_REDIRECT_PATH.to_owned(),
        redirect_port: None,
        refresh_margin_secs: None,
        demo: false,
        platform: None,
        instance: None,
        api_base: None,
        api_hosts: Vec::new(),
        api_pagination: None,
        atproto: None,
    };
    spec.validate()?;
    Ok(spec)
}

/// The issuer as the prefix of the configuration URL: `https` (or loopback `http`), no query or fragment, no
/// trailing slash (§4: "any terminating / MUST be removed before appending").
fn check_issuer(issuer: &Url) -> Result<&str, DiscoveryError> {
    let invalid = |reason| DiscoveryError::InvalidIssuer {
        issuer: issuer.to_string(),
        reason,
    };
    let loopback = issuer.host_str().is_some_and(is_loopback_host);
    match issuer.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(invalid(
                "it must use https (plain http is allowed only on 127.0.0.1 or localhost)",
            ));
        }
        _ => return Err(invalid("it must be an https URL")),
    }
    if issuer.query().is_some() || issuer.fragment().is_some() {
        return Err(invalid("an issuer has no query (?…) or fragment (#…)"));
    }
    if !issuer.username().is_empty() || issuer.password().is_some() {
        return Err(invalid("an issuer has no user name or password"));
    }
    Ok(issuer.as_str().trim_end_matches('/'))
}

fn unsupported(issuer: &str, reason: &str) -> DiscoveryError {
    DiscoveryError::Unsupported {
        issuer: issuer.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The token endpoint authentication method names of RFC 8414 / OpenID Connect Discovery.
fn method_name(auth: ClientAuth) -> &'static str {
    match auth {
        ClientAuth::None => "none",
        ClientAuth::ClientSecretBasic => "client_secret_basic",
        ClientAuth::ClientSecretPost => "client_secret_post",
        // Not a registered method name: Basic with an empty password is `client_secret_basic` with "" as secret.
        ClientAuth::ClientIdBasic => "client_secret_basic",
    }
}

fn choose_client_auth(
    issuer: &str,
    supported: Option<&[String]>,
    chosen: Option<ClientAuth>,
) -> Result<ClientAuth, DiscoveryError> {
    // OpenID Connect Discovery §3: absent means client_secret_basic.
    let default = ["client_secret_basic".to_owned()];
    let supported = supported.unwrap_or(&default);
    let listed = |auth: ClientAuth| supported.iter().any(|m| m == method_name(auth));
    if let Some(auth) = chosen {
        if !listed(auth) {
            tracing::warn!(
                issuer,
                method = method_name(auth),
                "the provider does not list this client authentication"
            );
        }
        return Ok(auth);
    }
    [
        ClientAuth::None,
        ClientAuth::ClientSecretBasic,
        ClientAuth::ClientSecretPost,
    ]
    .into_iter()
    .find(|auth| listed(*auth))
    .ok_or_else(|| {
        unsupported(
            issuer,
            &format!(
                "its token endpoint accepts only {} client authentication; Tokenkeep supports none, \
                     client_secret_basic and client_secret_post",
                supported.join(", ")
            ),
        )
    })
}

/// The configuration document, with typed accessors whose errors name the field.
struct Document<'a> {
    url: &'a str,
    fields: Map<String, Value>,
}

impl<'a> Document<'a> {
    fn parse(url: &'a str, body: &[u8]) -> Result<Self, DiscoveryError> {
        let not_json = |what| DiscoveryError::NotJson {
            url: url.to_owned(),
            what,
        };
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => Ok(Self { url, fields }),
            Ok(_) => Err(not_json("JSON that is not an object")),
            Err(_) => {
                let start = body
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map(|i| &body[i..])
                    .unwrap_or_default();
                let html = start.first() == Some(&b'<');
                Err(not_json(if html {
                    "an HTML page"
                } else if body.is_empty() {
                    "an empty body"
                } else {
                    "text that is not JSON"
                }))
            }
        }
    }

    fn invalid(&self, field: &'static str, reason: impl Into<String>) -> DiscoveryError {
        DiscoveryError::InvalidField {
            url: self.url.to_owned(),
            field,
            reason: reason.into(),
        }
    }

    fn optional_str(&self, field: &'static str) -> Result<Option<&str>, DiscoveryError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(field, "expected a string")),
        }
    }

    fn optional_bool(&self, field: &'static str) -> Result<Option<bool>, DiscoveryError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.invalid(field, "expected true or false")),
        }
    }

    fn required_str(&self, field: &'static str) -> Result<&str, DiscoveryError> {
        self.optional_str(field)?.ok_or_else(|| DiscoveryError::MissingField {
            url: self.url.to_owned(),
            field,
        })
    }

    fn optional_url(&self, field: &'static str) -> Result<Option<Url>, DiscoveryError> {
        let Some(text) = self.optional_str(field)? else {
            return Ok(None);
        };
        let url = Url::parse(text).map_err(|e| self.invalid(field, format!("{text:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "https" | "http") || url.fragment().is_some() {
            return Err(self.invalid(field, format!("{text:?} is not an http(s) URL without fragment")));
        }
        Ok(Some(url))
    }

    fn required_url(&self, field: &'static str) -> Result<Url, DiscoveryError> {
        self.optional_url(field)?.ok_or_else(|| DiscoveryError::MissingField {
            url: self.url.to_owned(),
            field,
        })
    }

    fn string_list(&self, field: &'static str) -> Result<Option<Vec<String>>, DiscoveryError> {
        match self.fields.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(String::from)
                        .ok_or_else(|| self.invalid(field, "expected a list of strings"))
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(self.invalid(field, "expected a list of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::http::{BoxFuture, HttpRequest, HttpResponse};

    /// Answers every request with one canned response and records the URLs asked for.
    #[derive(Debug)]
    struct FakeHttp {
        status: u16,
        body: Vec<u8>,
        requested: Mutex<Vec<String>>,
    }

    impl FakeHttp {
        fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
            Self {
                status,
                body: body.into(),
                requested: Mutex::new(Vec::new()),
            }
        }

        fn json(doc: &Value) -> Self {
            Self::new(200, serde_json::to_vec(doc).unwrap())
        }

        fn requested(&self) -> Vec<String> {
            self.requested.lock().unwrap().clone()
        }
    }

    impl HttpClient for FakeHttp {
        fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
            self.requested.lock().unwrap().push(request.uri().to_string());
            let response = http::Response::builder()
                .status(self.status)
                .body(self.body.clone())
                .unwrap();
            Box::pin(async move { Ok(response) })
        }
    }

    fn document(issuer: &str) -> Value {
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code", "id_token"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "scopes_supported": ["openid", "email", "profile", "offline_access"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        })
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn id() -> ProviderId {
        ProviderId::parse("my-idp").unwrap()
    }

    async fn run(http: &FakeHttp, issuer: &str) -> Result<ProviderSpec, DiscoveryError> {
        discover(http, &url(issuer), id(), None, None).await
    }

    #[tokio::test]
    async fn happy_path_fills_a_valid_definition() {
        let http = FakeHttp::json(&document("https://idp.example.com"));
        let spec = discover(
            &http,
            &url("https://idp.example.com"),
            id(),
            Some(" My IdP ".into()),
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            http.requested(),
            ["https://idp.example.com/.well-known/openid-configuration"]
        );
        assert_eq!(spec.display_name, "My IdP");
        assert_eq!(spec.issuer.as_deref(), Some("https://idp.example.com"));
        assert_eq!(
            spec.authorization_endpoint.as_str(),
            "https://idp.example.com/authorize"
        );
        assert_eq!(spec.token_endpoint.as_str(), "https://idp.example.com/token");
        assert_eq!(
            spec.revocation_endpoint.unwrap().as_str(),
            "https://idp.example.com/revoke"
        );
        assert_eq!(
            spec.userinfo_endpoint.unwrap().as_str(),
            "https://idp.example.com/userinfo"
        );
        assert_eq!(spec.scopes, ["openid", "email", "profile", "offline_access"]);
        assert_eq!(
            spec.client_auth,
            ClientAuth::None,
            "public client preferred when listed"
        );
        assert!(spec.pkce.is_on() && spec.client_id.is_none());
        assert!(matches!(spec.identity, IdentitySource::IdToken { .. }));
    }

    #[tokio::test]
    async fn defaults_follow_the_document() {
        let mut doc = document("https://idp.example.com");
        let fields = doc.as_object_mut().unwrap();
        fields.remove("token_endpoint_auth_methods_supported");
        fields.insert("scopes_supported".into(), json!(["openid", "email"]));
        fields.insert("code_challenge_methods_supported".into(), json!(["plain"]));
        let http = FakeHttp::json(&doc);
        let spec = run(&http, "https://idp.example.com").await.unwrap();
        assert_eq!(spec.client_auth, ClientAuth::ClientSecretBasic, "the Discovery default");
        assert_eq!(
            spec.scopes,
            ["openid", "email"],
            "no unlisted profile, no offline_access"
        );
        assert!(spec.pkce.is_on(), "PKCE stays on even when S256 is not listed");
        assert_eq!(spec.display_name, "idp.example.com");

        let issuer = url("https://idp.example.com");
        let chosen = discover(&http, &issuer, id(), None, Some(ClientAuth::ClientSecretPost));
        assert_eq!(
            chosen.await.unwrap().client_auth,
            ClientAuth::ClientSecretPost,
            "the person's choice wins"
        );
    }

    #[tokio::test]
    async fn trailing_slash_and_paths_are_handled() {
        // The person typed a trailing slash; the document has none.
        let http = FakeHttp::json(&document("https://idp.example.com/realms/creators"));
        run(&http, "https://idp.example.com/realms/creators/").await.unwrap();
        assert_eq!(
            http.requested(),
            ["https://idp.example.com/realms/creators/.well-known/openid-configuration"]
        );

        // The document's issuer ends with a slash (Auth0 does this); `Url` adds one to a bare host anyway.
        let mut doc = document("https://tenant.example.com");
        doc["issuer"] = json!("https://tenant.example.com/");
        let http = FakeHttp::json(&doc);
        let spec = run(&http, "https://tenant.example.com").await.unwrap();
        assert_eq!(
            http.requested(),
            ["https://tenant.example.com/.well-known/openid-configuration"]
        );
        assert_eq!(
            spec.issuer.as_deref(),
            Some("https://tenant.example.com/"),
            "the announced issuer, verbatim"
        );
    }

    #[tokio::test]
    async fn issuer_mismatch_is_refused() {
        for announced in [
            "https://evil.example.com",
            "https://idp.example.com/other",
            "http://idp.example.com",
        ] {
            let mut doc = document("https://idp.example.com");
            doc["issuer"] = json!(announced);
            let err = run(&FakeHttp::json(&doc), "https://idp.example.com").await.unwrap_err();
            assert!(
                matches!(&err, DiscoveryError::IssuerMismatch { announced: a, .. } if a == announced),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn html_and_other_non_json_bodies_are_explained() {
        let http = FakeHttp::new(200, "\n  <!DOCTYPE html><html><body>Sign in</body></html>");
        let err = run(&http, "https://idp.example.com").await.unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::NotJson {
                    what: "an HTML page",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("not a website or login page"), "{err}");
        let err = run(&FakeHttp::new(200, "[1, 2]"), "https://idp.example.com")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::NotJson {
                    what: "JSON that is not an object",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn missing_or_mistyped_fields_are_named() {
        let mut doc = document("https://idp.example.com");
        doc.as_object_mut().unwrap().remove("token_endpoint");
        let err = run(&FakeHttp::json(&doc), "https://idp.example.com").await.unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::MissingField {
                    field: "token_endpoint",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("add it by hand"), "{err}");

        let mut doc = document("https://idp.example.com");
        doc["scopes_supported"] = json!("openid email");
        let err = run(&FakeHttp::json(&doc), "https://idp.example.com").await.unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::InvalidField {
                    field: "scopes_supported",
                    ..
                }
            ),
            "{err:?}"
        );

        let mut doc = document("https://idp.example.com");
        doc["authorization_endpoint"] = json!("not a url");
        let err = run(&FakeHttp::json(&doc), "https://idp.example.com").await.unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::InvalidField {
                    field: "authorization_endpoint",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn plain_http_endpoints_off_loopback_are_refused() {
        let mut doc = document("https://idp.example.com");
        doc["token_endpoint"] = json!("http://idp.example.com/token");
        let err = run(&FakeHttp::json(&doc), "https://idp.example.com").await.unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::Provider(ProviderError::InsecureEndpoint { endpoint: "token", .. })
            ),
            "{err:?}"
        );

        let http = FakeHttp::json(&document("http://idp.example.com"));
        let err = run(&http, "http://idp.example.com").await.unwrap_err();
        assert!(matches!(err, DiscoveryError::InvalidIssuer { .. }), "{err:?}");
        assert!(
            http.requested().is_empty(),
            "nothing is fetched over plain http off loopback"
        );

        // The local demo peer: plain http on loopback is fine.
        run(
            &FakeHttp::json(&document("http://127.0.0.1:4567")),
            "http://127.0.0.1:4567",
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn unusable_providers_are_explained() {
        let err = run(&FakeHttp::new(404, "not found"), "https://idp.example.com")
            .await
            .unwrap_err();
        assert!(matches!(err, DiscoveryError::Status { status: 404, .. }), "{err:?}");
        assert!(
            err.to_string().contains("no OpenID configuration at this address"),
            "{err}"
        );

        let mut doc = document("https://idp.example.com");
        doc["response_types_supported"] = json!(["id_token"]);
        let err = run(&FakeHttp::json(&doc), "https://idp.example.com").await.unwrap_err();
        assert!(matches!(err, DiscoveryError::Unsupported { .. }), "{err:?}");

        let mut doc = document("https://idp.example.com");
        doc["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"]);
        let err = run(&FakeHttp::json(&doc), "https://idp.example.com").await.unwrap_err();
        assert!(err.to_string().contains("only private_key_jwt"), "{err}");
    }
}

/// Arbitrary discovery documents (issue 12): whatever the issuer serves, `discover` answers with a provider or a
/// clear error, never a panic, and what it accepts names the issuer it was asked for.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::http::{BoxFuture, HttpRequest, HttpResponse};

    #[derive(Debug)]
    struct Serves(Vec<u8>);

    impl HttpClient for Serves {
        fn execute(&self, _request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
            let response = http::Response::builder().status(200).body(self.0.clone()).unwrap();
            Box::pin(async move { Ok(response) })
        }
    }

    fn run(body: Vec<u8>) -> Result<ProviderSpec, DiscoveryError> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let issuer = Url::parse("https://id.example.com").unwrap();
        runtime.block_on(discover(
            &Serves(body),
            &issuer,
            ProviderId::parse("custom").unwrap(),
            None,
            None,
        ))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_bytes_are_a_provider_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = run(bytes);
        }

        #[test]
        fn any_endpoint_values_are_a_provider_or_an_error(
            issuer in prop_oneof![Just("https://id.example.com".to_owned()), "\\PC{0,30}"],
            authorize in prop_oneof![Just("https://id.example.com/a".to_owned()), "\\PC{0,30}"],
            token in prop_oneof![Just("https://id.example.com/t".to_owned()), Just("http://evil.test/t".to_owned()), "\\PC{0,30}"],
            methods in prop_oneof![Just("[\"S256\"]".to_owned()), Just("[]".to_owned()), Just("7".to_owned())],
        ) {
            let doc = format!(
                r#"{{"issuer":{issuer:?},"authorization_endpoint":{authorize:?},"token_endpoint":{token:?},"code_challenge_methods_supported":{methods}}}"#
            );
            if let Ok(spec) = run(doc.into_bytes()) {
                prop_assert!(spec.display_name.chars().all(|c| !c.is_control()));
            }
        }
    }
}
