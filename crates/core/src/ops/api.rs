//! Using a connection without handling its token (`tokenkeep api`): one HTTP request to the platform's API with
//! the connection's fresh access token, made by whoever holds the store — over the socket, the holder makes it,
//! so the token never leaves that process.
//!
//! The token goes only where it belongs: the URL must be https (plain http only on a loopback host, for tests and
//! emulations) and its host one of the provider's [`ProviderSpec::allowed_api_hosts`]. A redirect is followed (at
//! most [`MAX_REDIRECTS`]) with the token only within the same origin; to another origin it is followed without
//! the `Authorization` header, and never to a non-https address. A `401` whose `WWW-Authenticate` says
//! `error="invalid_token"` gets one refresh and one retry; a second such answer tells the engine (an attention
//! event, once per incident). The log names the connection, method, host, path, status and time — never a header,
//! a body or a query value.

use std::time::Instant;

use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use url::Url;

use super::connections::find_connection;
use super::wire::plain_reply;
use super::{LocalOps, Op, OpError};
use crate::http::HttpRequest;
use crate::oauth::json_path;
use crate::provider::{ApiPagination, ProviderSpec, is_loopback_host};
use crate::secret::SecretString;

/// The largest response body `tokenkeep api` reads (larger answers fail with a clear error).
pub const MAX_API_RESPONSE: usize = 64 * 1024 * 1024;
/// The largest request body `tokenkeep api` sends.
pub const MAX_API_BODY: usize = 32 * 1024 * 1024;
/// How many redirects one call follows.
pub const MAX_REDIRECTS: usize = 5;

/// One request to a connection's API with its access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    /// An id or `provider:account`.
    pub connection: String,
    /// The HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// A path relative to the provider's `api_base` (`youtube/v3/channels?mine=true`), or an absolute URL.
    pub url: String,
    /// Request headers, as given (`Authorization` is Tokenkeep's and cannot be set).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The request body.
    #[serde(default, with = "base64_bytes")]
    pub body: Option<Vec<u8>>,
    /// Say where the next page is ([`ApiResponse::next`]), as the provider's `api_pagination` declares.
    #[serde(default)]
    pub paginate: bool,
}

/// What the API answered (the last response, after redirects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResponse {
    /// The HTTP status.
    pub status: u16,
    /// The response headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as sent (any bytes).
    #[serde(with = "base64_bytes_required")]
    pub body: Vec<u8>,
    /// With [`ApiCall::paginate`]: the URL of the next page, when the answer names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

plain_reply!(ApiResponse);

impl ApiResponse {
    /// The status and its standard reason phrase: `404 Not Found`.
    pub fn status_line(&self) -> String {
        match http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
        {
            Some(reason) => format!("{} {reason}", self.status),
            None => self.status.to_string(),
        }
    }
}

impl Op for ApiCall {
    type Output = ApiResponse;

    async fn run(self, local: &LocalOps) -> Result<Self::Output, OpError> {
        let connection = self.connection.clone();
        let id = local.blocking(move |vault| find_connection(vault, &connection)).await?;
        let meta = local.blocking(move |vault| Ok(vault.get_meta(id)?)).await?;
        let catalog = local.engine().catalog();
        let provider = catalog.require(&meta.provider)?;
        // A connection whose data lives on the account's own server (an atproto PDS): its API is there.
        let on_own_server = meta
            .resource
            .as_deref()
            .and_then(|r| Url::parse(r).ok())
            .map(|resource| {
                let mut spec = provider.spec().clone();
                if let Some(host) = resource.host_str() {
                    spec.api_hosts.push(host.to_ascii_lowercase());
                }
                spec.api_base = Some(resource);
                spec
            });
        let spec = on_own_server.as_ref().unwrap_or(provider.spec());
        let url = resolve(spec, &self.url)?;
        let method = http::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            OpError::Invalid(format!(
                "{:?} is not an HTTP method",
                crate::text::clean(&self.method, 32)
            ))
        })?;
        let headers = request_headers(spec, &self.headers)?;
        if self.body.as_ref().is_some_and(|b| b.len() > MAX_API_BODY) {
            return Err(OpError::Invalid(format!(
                "the request body is larger than {} MiB",
                MAX_API_BODY / 1024 / 1024
            )));
        }
        if self.paginate && spec.api_pagination.is_none() {
            return Err(OpError::Invalid(format!(
                "{}'s definition does not say how its API pages lists: --paginate cannot follow it (ask for the \
                 next page yourself, with the parameter the platform documents)",
                spec.display_name
            )));
        }
        let call = Call {
            method,
            headers,
            body: self.body.unwrap_or_default(),
        };
        let (mut token, mut dpop) = local.engine().usable_token(id).await?;
        let mut refreshed = false;
        loop {
            let (mut response, at) = call.send(local, id, &url, &token, dpop.as_ref()).await?;
            if response.status == 401 && invalid_token(&response.headers) {
                if refreshed {
                    local.engine().token_refused(id, url.host_str().unwrap_or_default())?;
                    return Ok(response);
                }
                tracing::info!(connection = %id, "the API refused the access token; refreshing once and retrying");
                local.engine().refresh_now(id).await?;
                (token, dpop) = local.engine().usable_token(id).await?;
                refreshed = true;
                continue;
            }
            if self.paginate && (200..300).contains(&response.status) {
                response.next = spec
                    .api_pagination
                    .as_ref()
                    .and_then(|pagination| next_page(pagination, &url, &at, &response));
            }
            return Ok(response);
        }
    }
}

/// Where the page after `response` is, as `pagination` says: the request URL `asked` with the cursor in its
/// query, or a URL the answer names (relative to `at`, where it came from). `None` on the last page.
fn next_page(pagination: &ApiPagination, asked: &Url, at: &Url, response: &ApiResponse) -> Option<String> {
    let in_body = |path: &str| -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        match json_path(&value, path)? {
            serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    };
    match pagination {
        ApiPagination::Cursor { next, param } => {
            let cursor = in_body(next)?;
            let mut url = asked.clone();
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(key, _)| key != param.as_str())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(param, &cursor);
            Some(url.to_string())
        }
        ApiPagination::NextUrl { next } => at.join(&in_body(next)?).ok().map(String::from),
        ApiPagination::LinkHeader => response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("link"))
            .find_map(|(_, value)| next_link(value))
            .and_then(|link| at.join(&link).ok())
            .map(String::from),
    }
}

/// The `rel="next"` target of an RFC 8288 `Link` header value.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .filter_map(|param| param.trim().split_once('='))
            .any(|(key, rel)| {
                key.trim().eq_ignore_ascii_case("rel")
                    && rel
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
            .then(|| target.to_owned())
    })
}

/// A request as it is sent, and re-sent after a refresh.
struct Call {
    method: http::Method,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: Vec<u8>,
}

impl Call {
    /// Sends the request to `url` with `token`, following redirects as the module says. A token bound to `dpop`
    /// goes as `Authorization: DPoP` with a fresh proof for each request that carries it (RFC 9449 §7), and a
    /// resource server's nonce is answered once.
    async fn send(
        &self,
        local: &LocalOps,
        id: crate::store::ConnectionId,
        url: &Url,
        token: &SecretString,
        dpop: Option<&crate::dpop::DpopKey>,
    ) -> Result<(ApiResponse, Url), OpError> {
        let scheme = if dpop.is_some() { crate::dpop::DPOP } else { "Bearer" };
        let origin = url.origin();
        let (mut url, mut method, mut body) = (url.clone(), self.method.clone(), self.body.clone());
        for _ in 0..=MAX_REDIRECTS {
            let with_token = url.origin() == origin;
            let mut request = http::Request::builder().method(method.clone()).uri(url.as_str());
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
            if with_token {
                let mut bearer = http::HeaderValue::from_str(&format!("{scheme} {}", token.dangerously_expose()))
                    .map_err(|_| OpError::Invalid("the stored access token is not a valid header value".into()))?;
                bearer.set_sensitive(true);
                request = request.header(http::header::AUTHORIZATION, bearer);
            }
            let request: HttpRequest = request
                .body(body.clone())
                .map_err(|e| OpError::Invalid(format!("the request cannot be sent: {e}")))?;
            let started = Instant::now();
            let response = match dpop.filter(|_| with_token) {
                Some(key) => {
                    crate::dpop::send(
                        &**local.http(),
                        key,
                        request,
                        Some(token.dangerously_expose()),
                        MAX_API_RESPONSE,
                    )
                    .await
                }
                None => local.http().execute_limited(request, MAX_API_RESPONSE).await,
            }
            .map_err(|e| OpError::Api(e.to_string()))?;
            let status = response.status();
            tracing::info!(
                connection = %id, method = %method, host = url.host_str().unwrap_or_default(), path = url.path(),
                status = status.as_u16(), ms = started.elapsed().as_millis() as u64, with_token, "API call"
            );
            if status.is_redirection()
                && let Some(location) = response.headers().get(http::header::LOCATION)
            {
                let next = location.to_str().ok().and_then(|l| url.join(l).ok()).ok_or_else(|| {
                    OpError::Api(format!("{} redirected to an address that is not a URL", host(&url)))
                })?;
                if !secure(&next) {
                    return Err(OpError::Api(format!(
                        "{} redirected to {}, which is not https: not followed",
                        host(&url),
                        host(&next)
                    )));
                }
                if next.origin() != origin {
                    tracing::info!(connection = %id, from = host(&url), to = host(&next), "redirected to another host: followed without the token");
                }
                // 303, and 301/302 after a POST, become a GET without a body (as browsers and curl do).
                if status == http::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == http::Method::POST)
                {
                    method = http::Method::GET;
                    body = Vec::new();
                }
                url = next;
                continue;
            }
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            let answer = ApiResponse {
                status: status.as_u16(),
                headers,
                body: response.into_body(),
                next: None,
            };
            return Ok((answer, url));
        }
        Err(OpError::Api(format!(
            "more than {MAX_REDIRECTS} redirects from {}",
            host(&url)
        )))
    }
}

/// The URL `given` names for `spec`'s API: an absolute URL as it is, a path against `api_base`; checked against
/// the hosts the provider's tokens are for.
pub fn resolve(spec: &ProviderSpec, given: &str) -> Result<Url, OpError> {
    let allowed = spec.allowed_api_hosts();
    let url = if given.starts_with("https://") || given.starts_with("http://") {
        Url::parse(given)
            .map_err(|e| OpError::Invalid(format!("{:?} is not a URL: {e}", crate::text::clean(given, 200))))?
    } else {
        let base = spec.api_base.as_ref().ok_or_else(|| {
            OpError::Invalid(format!(
                "{} declares no API base URL: give the whole https:// URL (its hosts: {})",
                spec.display_name,
                list(&allowed)
            ))
        })?;
        base.join(given.trim_start_matches('/'))
            .map_err(|e| OpError::Invalid(format!("{:?} is not a path: {e}", crate::text::clean(given, 200))))?
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OpError::Invalid(
            "a URL with a user name or password in it is not sent".into(),
        ));
    }
    if !secure(&url) {
        return Err(OpError::Invalid(format!(
            "{} is not https: a token is sent only over https (plain http only to this machine)",
            host(&url)
        )));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if !allowed.contains(&host) {
        return Err(OpError::Invalid(format!(
            "{}'s tokens are not for {host}: Tokenkeep sends them only to {}",
            spec.display_name,
            list(&allowed)
        )));
    }
    Ok(url)
}

/// The `tokenkeep api` command line that calls `spec`'s API as `connection` (`provider:account`), quoted for a
/// POSIX shell, with an example: the account's own identity call when it is on the API base (YouTube's
/// `youtube/v3/channels?part=snippet&mine=true`), else the base itself. The window shows it, so that people learn
/// the way that never hands a token out. `None` for a provider without an API base.
pub fn command_line(spec: &ProviderSpec, connection: &str) -> Option<String> {
    let base = spec.api_base.as_ref()?;
    // On the AT Protocol the path goes to the account's own PDS: the session call names the account.
    if spec.atproto.is_some() {
        return Some(format!(
            "tokenkeep api {} xrpc/com.atproto.server.getSession",
            shell_quote(connection)
        ));
    }
    let example = spec
        .userinfo_endpoint
        .as_ref()
        .and_then(|userinfo| userinfo.as_str().strip_prefix(base.as_str()))
        .filter(|path| !path.is_empty())
        .map_or_else(|| base.to_string(), str::to_owned);
    Some(format!(
        "tokenkeep api {} {}",
        shell_quote(connection),
        shell_quote(&example)
    ))
}

/// `word` as one POSIX shell word: as it is when it holds only characters no shell treats specially, else in
/// single quotes.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.,:/@%+=".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The caller's headers, checked, with the provider's own (Reddit's `User-Agent`) where the caller set none.
fn request_headers(
    spec: &ProviderSpec,
    given: &[(String, String)],
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, OpError> {
    let mut out = Vec::new();
    for (name, value) in given {
        let header = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| OpError::Invalid(format!("{:?} is not a header name", crate::text::clean(name, 64))))?;
        if header == http::header::AUTHORIZATION {
            return Err(OpError::Invalid(
                "the Authorization header is Tokenkeep's: it adds the connection's token itself".into(),
            ));
        }
        let value = http::HeaderValue::from_str(value.trim())
            .map_err(|_| OpError::Invalid(format!("the value of {header} holds characters a header cannot")))?;
        out.push((header, value));
    }
    for (name, value) in &spec.http_headers {
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value.replace("{version}", env!("CARGO_PKG_VERSION"))),
        ) else {
            continue;
        };
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, value));
        }
    }
    Ok(out)
}

/// https, or plain http to this machine.
fn secure(url: &Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && url.host_str().is_some_and(is_loopback_host))
}

/// A `WWW-Authenticate` challenge saying the token is no good (RFC 6750 §3.1).
fn invalid_token(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, value)| {
        let value = value.trim_start().to_ascii_lowercase();
        name.eq_ignore_ascii_case("www-authenticate")
            && (value.starts_with("bearer") || value.starts_with("dpop"))
            && value.contains("invalid_token")
    })
}

fn host(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "the server".to_owned(),
    }
}

fn list(hosts: &[String]) -> String {
    if hosts.is_empty() {
        "no host (the definition names none)".to_owned()
    } else {
        hosts.join(", ")
    }
}

mod base64_bytes {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => s.serialize_some(&BASE64.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| BASE64.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod base64_bytes_required {
    use super::BASE64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        BASE64.decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> ProviderSpec {
        let text = format!(
            r#"
id = "example"
display_name = "Example"
authorization_endpoint = "https://auth.example.com/authorize"
token_endpoint = "https://auth.example.com/token"
scopes = []
identity = {{ source = "id_token" }}
{extra}
"#
        );
        let spec: ProviderSpec = toml::from_str(&text).expect("spec parses");
        spec.validate().expect("spec is valid");
        spec
    }

    #[test]
    fn a_path_is_resolved_against_the_api_base_and_keeps_its_query() {
        let spec = spec(r#"api_base = "https://api.example.com/v2/""#);
        let url = resolve(&spec, "/users/me?fields=id").unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v2/users/me?fields=id");
        let url = resolve(&spec, "users").unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v2/users");
    }

    #[test]
    fn another_host_is_refused_and_the_refusal_names_the_allowed_ones() {
        let spec = spec(
            r#"api_base = "https://api.example.com/"
api_hosts = ["upload.example.com"]"#,
        );
        assert!(resolve(&spec, "https://upload.example.com/x").is_ok());
        let error = resolve(&spec, "https://evil.example.net/steal")
            .unwrap_err()
            .to_string();
        assert!(error.contains("evil.example.net"), "{error}");
        assert!(error.contains("upload.example.com, api.example.com"), "{error}");
    }

    #[test]
    fn plain_http_user_info_and_a_missing_base_are_refused() {
        let with_base = spec(r#"api_base = "https://api.example.com/""#);
        assert!(
            resolve(&with_base, "http://api.example.com/x")
                .unwrap_err()
                .to_string()
                .contains("not https")
        );
        assert!(resolve(&with_base, "https://user:pw@api.example.com/x").is_err());
        let bare = spec("");
        assert!(
            resolve(&bare, "users")
                .unwrap_err()
                .to_string()
                .contains("no API base URL")
        );
    }

    #[test]
    fn loopback_http_is_allowed_for_tests() {
        let spec = spec(r#"api_base = "http://127.0.0.1:4000/api/""#);
        assert_eq!(
            resolve(&spec, "echo").unwrap().as_str(),
            "http://127.0.0.1:4000/api/echo"
        );
    }

    #[test]
    fn only_a_bearer_invalid_token_challenge_triggers_a_refresh() {
        let h = |v: &str| vec![("www-authenticate".to_owned(), v.to_owned())];
        assert!(invalid_token(&h(r#"Bearer realm="x", error="invalid_token""#)));
        assert!(!invalid_token(&h(r#"Bearer error="insufficient_scope""#)));
        assert!(!invalid_token(&h(r#"Basic realm="x""#)));
        assert!(!invalid_token(&[]));
    }

    #[test]
    fn the_authorization_header_cannot_be_set_and_provider_headers_are_added() {
        let spec = spec(
            r#"[http_headers]
User-Agent = "tokenkeep/{version}""#,
        );
        assert!(request_headers(&spec, &[("Authorization".into(), "Bearer x".into())]).is_err());
        let headers = request_headers(&spec, &[("Accept".into(), "application/json".into())]).unwrap();
        assert_eq!(headers.len(), 2);
        assert!(headers[1].1.to_str().unwrap().starts_with("tokenkeep/"));
    }

    fn page(headers: &[(&str, &str)], body: &str) -> ApiResponse {
        ApiResponse {
            status: 200,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
            next: None,
        }
    }

    #[test]
    fn the_next_page_is_found_where_the_definition_says() {
        let asked = Url::parse("https://api.example.com/v3/videos?part=id&pageToken=OLD").unwrap();
        let cursor = ApiPagination::Cursor {
            next: "nextPageToken".into(),
            param: "pageToken".into(),
        };
        assert_eq!(
            next_page(&cursor, &asked, &asked, &page(&[], r#"{"nextPageToken":"CAUQAA"}"#)).as_deref(),
            Some("https://api.example.com/v3/videos?part=id&pageToken=CAUQAA")
        );
        assert_eq!(next_page(&cursor, &asked, &asked, &page(&[], r#"{"items":[]}"#)), None);
        assert_eq!(
            next_page(&cursor, &asked, &asked, &page(&[], r#"{"nextPageToken":""}"#)),
            None
        );

        let next_url = ApiPagination::NextUrl {
            next: "paging.next".into(),
        };
        let body = r#"{"paging":{"next":"https://api.example.com/v3/videos?after=QVFI"}}"#;
        assert_eq!(
            next_page(&next_url, &asked, &asked, &page(&[], body)).as_deref(),
            Some("https://api.example.com/v3/videos?after=QVFI")
        );

        let link = ApiPagination::LinkHeader;
        let header = r#"<https://api.example.com/v3/videos?max_id=7>; rel="next", <https://api.example.com/v3/videos?min_id=9>; rel="prev""#;
        assert_eq!(
            next_page(&link, &asked, &asked, &page(&[("Link", header)], "[]")).as_deref(),
            Some("https://api.example.com/v3/videos?max_id=7")
        );
        assert_eq!(
            next_page(&link, &asked, &asked, &page(&[("Link", r#"<x>; rel="prev""#)], "[]")),
            None
        );
    }

    #[test]
    fn the_command_line_is_quoted_and_uses_the_identity_call_as_example() {
        let with_userinfo = spec(
            r#"api_base = "https://api.example.com/"
userinfo_endpoint = "https://api.example.com/v1/me?fields=id,name""#,
        );
        assert_eq!(
            command_line(&with_userinfo, "example:Ann O'Neil").as_deref(),
            Some(r"tokenkeep api 'example:Ann O'\''Neil' 'v1/me?fields=id,name'")
        );
        let elsewhere = spec(r#"api_base = "https://api.example.com/v2/""#);
        assert_eq!(
            command_line(&elsewhere, "example:ann").as_deref(),
            Some("tokenkeep api example:ann https://api.example.com/v2/")
        );
        assert_eq!(command_line(&spec(""), "example:ann"), None);
    }

    #[test]
    fn a_call_crosses_the_wire_with_any_body_bytes() {
        let call = ApiCall {
            connection: "demo:alice".into(),
            method: "POST".into(),
            url: "api/echo".into(),
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: Some(vec![0, 159, 255, b'\n']),
            paginate: true,
        };
        let text = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<ApiCall>(&text).unwrap(), call);
    }
}
