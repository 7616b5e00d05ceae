//! Platforms that run on many servers (Mastodon): from a template and the server a person names, a provider of
//! that server's own, with a client Tokenkeep registers there itself.
//!
//! [`register`] follows the template's [`InstanceSpec`]:
//!
//! 1. The server's RFC 8414 metadata (`metadata_path`), when it has one: its endpoints (each must be on the server
//!    itself, and the document's `issuer` must be the server: RFC 8414 §3.3), whether it lists PKCE `S256`, which
//!    scopes it supports. A server without the document (404; Mastodon before 4.3) keeps the template's endpoints,
//!    on the server, and PKCE stays off.
//! 2. A loopback port for the redirect, chosen now and kept: the app is registered for this exact redirect URI
//!    (Mastodon matches it exactly), so every sign-in listens there.
//! 3. The app registration (`app_registration_endpoint`, or `registration_path`): a form with `client_name`,
//!    `redirect_uris` and `scopes`; the answer's `client_id` and `client_secret` are the client. The secret is a
//!    [`SecretString`] from the moment it is read (registered with the log redactor), for the vault only.
//!
//! Every answer is untrusted input: fields are checked for presence and type, error texts from the server are
//! shortened to printable characters, and nothing is kept unless the whole registration succeeded.

use std::net::TcpListener;

use serde_json::{Map, Value};
use url::Url;

use super::{InstanceSpec, Pkce, ProviderError, ProviderId, ProviderSpec, TEMPLATE_ORIGIN, is_loopback_host};
use crate::http::{HttpClient, HttpError};
use crate::secret::SecretString;

/// What a registration at a server produced: its provider (validated), and the client the server issued.
#[derive(Debug)]
pub struct Registration {
    /// The server's provider: the template's definition on the server, with its own id, name and redirect port.
    pub spec: ProviderSpec,
    /// The client id the server issued (kept in config.toml, like any client id).
    pub client_id: String,
    /// The client secret the server issued (for the vault only).
    pub client_secret: SecretString,
}

/// Why a server could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceError {
    /// What the person typed is not a server's address.
    #[error("{given:?} is not the address of a server: {reason}")]
    InvalidServer {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request to the server could not be made or got no answer.
    #[error("could not reach {url}: {source}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What went wrong.
        #[source]
        source: HttpError,
    },
    /// The server refused or failed.
    #[error("{url} answered HTTP {status}{}: {hint}", quote(.said.as_deref()))]
    Refused {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
        /// The server's own words, shortened to printable characters.
        said: Option<String>,
        /// What to do.
        hint: &'static str,
    },
    /// The server's answer is not what its platform documents.
    #[error("{url} sent an answer Tokenkeep cannot use: {reason}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No loopback port could be reserved for the redirect.
    #[error("no free port on 127.0.0.1 for the sign-in redirect: {0}")]
    NoPort(#[source] std::io::Error),
    /// The resulting definition is invalid.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

fn quote(words: Option<&str>) -> String {
    words.map(|w| format!(" (\"{w}\")")).unwrap_or_default()
}

/// How much of a server's error text is shown.
const SAID_CHARS: usize = 200;

/// The origin of the server a person named: `mastodon.social`, `https://mastodon.social/` and
/// `https://mastodon.social/@ada` all name `https://mastodon.social/`. Plain `http` only on loopback (tests).
pub fn server_origin(given: &str) -> Result<Url, InstanceError> {
    let invalid = |reason| InstanceError::InvalidServer {
        given: given.chars().filter(|c| !c.is_control()).take(100).collect(),
        reason,
    };
    let trimmed = given.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| invalid("it is not a web address (for example mastodon.social)"))?;
    let host = url.host_str().ok_or_else(|| invalid("it names no host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not contain a user name or password"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(host) => {}
        "http" => return Err(invalid("Tokenkeep signs in over https only: use https://")),
        _ => return Err(invalid("it must be an https:// address")),
    }
    let mut origin = url.clone();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    Ok(origin)
}

/// The provider id of a server: its host with dots as dashes, and its port when it has one
/// (`mastodon.social` → `mastodon-social`, `127.0.0.1:4000` → `127-0-0-1-4000`).
pub fn provider_id(server: &Url) -> Result<ProviderId, InstanceError> {
    let host = server.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let mut slug: String = host
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    if let Some(port) = server.port() {
        slug.push_str(&format!("-{port}"));
    }
    let slug: String = slug.trim_matches('-').chars().take(40).collect();
    Ok(ProviderId::parse(slug.trim_end_matches('-'))?)
}

/// Registers Tokenkeep at `server` following `template` (see the module docs) and returns the server's provider
/// as `id`. `scopes` replaces the template's scopes (the app is registered for exactly these).
pub async fn register(
    http: &dyn HttpClient,
    template: &ProviderSpec,
    server: &Url,
    id: ProviderId,
    scopes: Option<Vec<String>>,
) -> Result<Registration, InstanceError> {
    let rules = template
        .instance
        .as_ref()
        .filter(|_| template.is_template())
        .ok_or_else(|| ProviderError::Invalid {
            provider: template.id.to_string(),
            message: "it does not run on many servers (no [instance] template)".into(),
        })?;
    let origin = server.as_str().trim_end_matches('/').to_owned();
    let metadata = match &rules.metadata_path {
        Some(path) => fetch_metadata(http, server, &format!("{origin}{path}")).await?,
        None => None,
    };

    // The template on this server: its text with the template origin replaced (every URL field moves with it).
    let text = template.to_toml()?.replace(TEMPLATE_ORIGIN, &origin);
    // Validated below, once it names the server as its origin.
    let mut spec: ProviderSpec = toml::from_str(&text).map_err(|e| ProviderError::Parse {
        name: id.to_string(),
        message: e.to_string(),
    })?;
    spec.id = id;
    spec.display_name = format!(
        "{} ({})",
        template.display_name,
        server.host_str().map_or_else(String::new, |h| match server.port() {
            Some(port) => format!("{h}:{port}"),
            None => h.to_owned(),
        })
    );
    if let Some(scopes) = scopes {
        spec.scopes = scopes;
    }
    let mut registration_url = Url::parse(&format!("{origin}{}", rules.registration_path))
        .map_err(|_| malformed(&origin, "the registration path does not make an address"))?;
    let mut pkce_supported = false;
    if let Some(doc) = &metadata {
        spec.authorization_endpoint = doc.url("authorization_endpoint")?;
        spec.token_endpoint = doc.url("token_endpoint")?;
        if let Some(url) = doc.optional_url("revocation_endpoint")? {
            spec.revocation_endpoint = Some(url);
        }
        if let Some(url) = doc.optional_url("app_registration_endpoint")? {
            registration_url = url;
        }
        pkce_supported = doc
            .list("code_challenge_methods_supported")?
            .iter()
            .any(|m| m == "S256");
        if let Some(supported) = doc.optional_list("scopes_supported")? {
            let unsupported: Vec<&String> = spec.scopes.iter().filter(|s| !supported.contains(s)).collect();
            if !unsupported.is_empty() {
                return Err(malformed(
                    &doc.url,
                    &format!(
                        "the server does not support the scope(s) {unsupported:?} that {} needs; choose others with \
                         --scope",
                        template.display_name
                    ),
                ));
            }
        }
    }
    spec.pkce = if pkce_supported { Pkce::S256 } else { Pkce::Off };
    spec.redirect_port = Some(free_loopback_port()?);
    spec.instance = Some(InstanceSpec {
        origin: Some(server.clone()),
        pkce_supported,
        ..rules.clone()
    });
    // Every endpoint, including any the metadata named, is on the server (validate checks it).
    spec.validate()?;
    if registration_url.origin() != server.origin() {
        return Err(malformed(
            registration_url.as_str(),
            "the app registration endpoint is not on the server",
        ));
    }

    let redirect_uri = format!(
        "http://{}:{}{}",
        spec.loopback_host,
        spec.redirect_port.unwrap_or_default(),
        spec.redirect_path
    );
    let scope = spec.scopes.join(&spec.scope_separator);
    let (client_id, client_secret) =
        create_app(http, &registration_url, &rules.client_name, &redirect_uri, &scope).await?;
    tracing::info!(provider = %spec.id, %server, pkce = pkce_supported, "registered Tokenkeep at the server");
    Ok(Registration {
        spec,
        client_id,
        client_secret,
    })
}

/// A free port on 127.0.0.1 now (the OS picks it; it is released at once and bound again at each sign-in).
fn free_loopback_port() -> Result<u16, InstanceError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(InstanceError::NoPort)?;
    Ok(listener.local_addr().map_err(InstanceError::NoPort)?.port())
}

fn malformed(url: &str, reason: &str) -> InstanceError {
    InstanceError::Malformed {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The server's RFC 8414 metadata, or `None` when it has none (404, 410).
async fn fetch_metadata(http: &dyn HttpClient, server: &Url, url: &str) -> Result<Option<Metadata>, InstanceError> {
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| InstanceError::Unreachable {
            url: url.to_owned(),
            source: HttpError::InvalidRequest(e.to_string()),
        })?;
    let response = http
        .execute(request)
        .await
        .map_err(|source| InstanceError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
    match response.status().as_u16() {
        200 => {}
        404 | 410 => {
            tracing::info!(%server, "the server publishes no OAuth metadata (older version): template endpoints, no PKCE");
            return Ok(None);
        }
        status => return Err(refused(url, status, response.body())),
    }
    let object = match serde_json::from_slice::<Value>(response.body()) {
        Ok(Value::Object(object)) => object,
        _ => return Err(malformed(url, "the OAuth metadata is not a JSON object")),
    };
    let doc = Metadata {
        url: url.to_owned(),
        object,
    };
    // RFC 8414 §3.3: the issuer must be the server the metadata was asked of.
    let issuer = doc.string("issuer")?;
    if issuer.trim_end_matches('/') != server.as_str().trim_end_matches('/') {
        return Err(malformed(
            url,
            &format!("it names the issuer {issuer:?}, not this server: Tokenkeep trusts only a server's own metadata"),
        ));
    }
    Ok(Some(doc))
}

/// The app registration: the client id and secret.
async fn create_app(
    http: &dyn HttpClient,
    url: &Url,
    client_name: &str,
    redirect_uri: &str,
    scope: &str,
) -> Result<(String, SecretString), InstanceError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_name", client_name)
        .append_pair("redirect_uris", redirect_uri)
        .append_pair("scopes", scope)
        .finish();
    let request = http::Request::post(url.as_str())
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(http::header::ACCEPT, "application/json")
        .body(body.into_bytes())
        .map_err(|e| InstanceError::Unreachable {
            url: url.to_string(),
            source: HttpError::InvalidRequest(e.to_string()),
        })?;
    let response = http
        .execute(request)
        .await
        .map_err(|source| InstanceError::Unreachable {
            url: url.to_string(),
            source,
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(refused(url.as_str(), status, response.body()));
    }
    let Ok(Value::Object(mut app)) = serde_json::from_slice::<Value>(response.body()) else {
        return Err(malformed(url.as_str(), "the registration answer is not a JSON object"));
    };
    // The secret leaves the JSON value at once; the value (and its copy of the secret) is dropped right after.
    let secret = match app.remove("client_secret") {
        Some(Value::String(secret)) if !secret.is_empty() => {
            crate::logging::register_secret(&secret);
            SecretString::new(secret)
        }
        _ => return Err(malformed(url.as_str(), "the registration answer has no client_secret")),
    };
    let client_id = match app.get("client_id") {
        Some(Value::String(id)) if !id.trim().is_empty() && !id.chars().any(char::is_control) => id.trim().to_owned(),
        _ => return Err(malformed(url.as_str(), "the registration answer has no client_id")),
    };
    Ok((client_id, secret))
}

fn refused(url: &str, status: u16, body: &[u8]) -> InstanceError {
    let said = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let text = v
            .get("error_description")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)?;
        let text = crate::logging::Redactor.redact(&crate::text::clean(text, SAID_CHARS));
        (!text.is_empty()).then_some(text)
    });
    let hint = match status {
        404 | 405 => "this server does not offer app registration here: is it a Mastodon server?",
        422 => "the server refused the registration",
        429 => "the server limits how often apps are registered: try again in a few minutes",
        500..=599 => "the server has a problem: try again later",
        _ => "check the server's address",
    };
    InstanceError::Refused {
        url: url.to_owned(),
        status,
        said,
        hint,
    }
}

/// An RFC 8414 document, with typed access that names the field on error.
struct Metadata {
    url: String,
    object: Map<String, Value>,
}

impl Metadata {
    fn string(&self, field: &str) -> Result<&str, InstanceError> {
        self.object
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&self.url, &format!("the OAuth metadata has no `{field}`")))
    }

    fn url(&self, field: &str) -> Result<Url, InstanceError> {
        Url::parse(self.string(field)?)
            .map_err(|_| malformed(&self.url, &format!("the OAuth metadata's `{field}` is not an address")))
    }

    fn optional_url(&self, field: &str) -> Result<Option<Url>, InstanceError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.url(field).map(Some),
        }
    }

    fn optional_list(&self, field: &str) -> Result<Option<Vec<String>>, InstanceError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| {
                    malformed(
                        &self.url,
                        &format!("the OAuth metadata's `{field}` is not a list of strings"),
                    )
                }),
            Some(_) => Err(malformed(
                &self.url,
                &format!("the OAuth metadata's `{field}` is not a list"),
            )),
        }
    }

    fn list(&self, field: &str) -> Result<Vec<String>, InstanceError> {
        Ok(self.optional_list(field)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};

    use super::*;
    use crate::http::{BoxFuture, HttpRequest, HttpResponse};
    use crate::provider::builtin;

    #[test]
    fn a_server_is_named_by_its_origin() {
        for given in [
            "mastodon.social",
            "https://mastodon.social/",
            " https://mastodon.social/@ada?x=1 ",
        ] {
            assert_eq!(
                server_origin(given).unwrap().as_str(),
                "https://mastodon.social/",
                "{given}"
            );
        }
        assert_eq!(
            server_origin("http://127.0.0.1:4000").unwrap().as_str(),
            "http://127.0.0.1:4000/"
        );
        for (given, reason) in [
            ("http://mastodon.social", "https only"),
            ("ftp://mastodon.social", "https"),
            ("https://ada:pw@mastodon.social", "password"),
            ("", "empty"),
            ("https://", "not a web address"),
        ] {
            let err = server_origin(given).unwrap_err().to_string();
            assert!(err.contains(reason), "{given}: {err}");
        }
    }

    #[test]
    fn a_server_gets_an_id_of_its_own() {
        let id = |s: &str| provider_id(&server_origin(s).unwrap()).unwrap().to_string();
        assert_eq!(id("mastodon.social"), "mastodon-social");
        assert_eq!(id("Fosstodon.ORG"), "fosstodon-org");
        assert_eq!(id("http://127.0.0.1:4000"), "127-0-0-1-4000");
        assert_eq!(id(&format!("{}.example", "a".repeat(60))).len(), 40);
    }

    /// Answers the metadata and the registration as scripted, and records what was sent.
    #[derive(Debug, Default)]
    struct Server {
        metadata: Option<(u16, String)>,
        registration: (u16, String),
        seen: Mutex<Vec<(String, String)>>,
    }

    impl HttpClient for Server {
        fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
            let url = request.uri().to_string();
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((url.clone(), String::from_utf8_lossy(request.body()).into_owned()));
            let (status, body) = if url.ends_with("/.well-known/oauth-authorization-server") {
                self.metadata.clone().unwrap_or((404, "Not found".into()))
            } else {
                self.registration.clone()
            };
            Box::pin(async move {
                Ok(http::Response::builder()
                    .status(status)
                    .body(body.into_bytes())
                    .expect("a valid response"))
            })
        }
    }

    fn template() -> ProviderSpec {
        builtin::builtin()
            .iter()
            .find(|s| s.id.as_str() == "mastodon")
            .unwrap()
            .clone()
    }

    const APP: &str = r#"{"id":"1","name":"Tokenkeep","client_id":"cid-123","client_secret":"secret-abcdefgh123","redirect_uri":"x"}"#;

    fn metadata(issuer: &str, token_endpoint: &str) -> String {
        format!(
            r#"{{"issuer":"{issuer}","authorization_endpoint":"https://social.example/oauth/authorize",
            "token_endpoint":"{token_endpoint}","revocation_endpoint":"https://social.example/oauth/revoke",
            "app_registration_endpoint":"https://social.example/api/v1/apps",
            "scopes_supported":["read","read:accounts","write:statuses","write:media","profile"],
            "code_challenge_methods_supported":["S256"]}}"#
        )
    }

    async fn run(server: &Arc<Server>) -> Result<Registration, InstanceError> {
        let origin = server_origin("social.example").unwrap();
        register(&**server, &template(), &origin, provider_id(&origin).unwrap(), None).await
    }

    #[tokio::test]
    async fn a_current_server_is_registered_with_its_own_endpoints_and_pkce() {
        let server = Arc::new(Server {
            metadata: Some((
                200,
                metadata("https://social.example/", "https://social.example/oauth/token"),
            )),
            registration: (200, APP.into()),
            ..Server::default()
        });
        let registered = run(&server).await.unwrap();
        let spec = &registered.spec;
        assert_eq!(spec.id.as_str(), "social-example");
        assert_eq!(spec.display_name, "Mastodon (social.example)");
        assert_eq!(spec.token_endpoint.as_str(), "https://social.example/oauth/token");
        assert_eq!(
            spec.userinfo_endpoint.as_ref().unwrap().as_str(),
            "https://social.example/api/v1/accounts/verify_credentials"
        );
        assert_eq!(spec.pkce, Pkce::S256);
        assert!(!spec.is_template());
        assert_eq!(registered.client_id, "cid-123");
        assert_eq!(registered.client_secret.dangerously_expose(), "secret-abcdefgh123");
        // The app is registered for the exact redirect the sign-in will listen on, and the scopes it will ask.
        let port = spec.redirect_port.unwrap();
        let seen = server.seen.lock().unwrap().clone();
        let (url, body) = &seen[1];
        assert_eq!(url, "https://social.example/api/v1/apps");
        let form: std::collections::BTreeMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(form["redirect_uris"], format!("http://127.0.0.1:{port}/callback"));
        assert_eq!(form["scopes"], "read:accounts write:statuses write:media");
        assert_eq!(form["client_name"], "Tokenkeep");
        // It round-trips through config.toml as what it is.
        let again = ProviderSpec::from_toml("x", &spec.to_toml().unwrap()).unwrap();
        assert_eq!(&again, spec);
    }

    #[tokio::test]
    async fn an_older_server_keeps_the_template_endpoints_without_pkce() {
        let server = Arc::new(Server {
            metadata: None,
            registration: (200, APP.into()),
            ..Server::default()
        });
        let spec = run(&server).await.unwrap().spec;
        assert_eq!(spec.pkce, Pkce::Off);
        assert_eq!(
            spec.authorization_endpoint.as_str(),
            "https://social.example/oauth/authorize"
        );
        assert_eq!(
            spec.revocation_endpoint.unwrap().as_str(),
            "https://social.example/oauth/revoke"
        );
    }

    #[tokio::test]
    async fn metadata_that_sends_tokens_elsewhere_is_refused() {
        for doc in [
            metadata("https://other.example/", "https://social.example/oauth/token"),
            metadata("https://social.example/", "https://evil.example/oauth/token"),
        ] {
            let server = Arc::new(Server {
                metadata: Some((200, doc)),
                registration: (200, APP.into()),
                ..Server::default()
            });
            let err = run(&server).await.unwrap_err().to_string();
            assert!(
                err.contains("not this server") || err.contains("not on the server"),
                "{err}"
            );
            assert_eq!(server.seen.lock().unwrap().len(), 1, "nothing was registered");
        }
    }

    #[tokio::test]
    async fn a_refused_registration_says_why_without_echoing_secrets() {
        crate::logging::register_secret("echoed-secret-value-42");
        let server = Arc::new(Server {
            metadata: None,
            registration: (
                422,
                r#"{"error":"Validation failed: Redirect URI must be an absolute URI. echoed-secret-value-42\u0007"}"#
                    .into(),
            ),
            ..Server::default()
        });
        let err = run(&server).await.unwrap_err().to_string();
        assert!(
            err.contains("HTTP 422") && err.contains("Redirect URI must be an absolute URI"),
            "{err}"
        );
        assert!(
            !err.contains("echoed-secret-value-42") && !err.contains('\u{7}'),
            "{err}"
        );
        let server = Arc::new(Server {
            metadata: None,
            registration: (200, r#"{"client_id":"cid"}"#.into()),
            ..Server::default()
        });
        let err = run(&server).await.unwrap_err().to_string();
        assert!(err.contains("no client_secret"), "{err}");
    }
}
