//! Outbound HTTP behind a small trait, so the OAuth flow and refresh engine run against fakes in unit tests.
//!
//! The real client ([`ReqwestHttp`]) follows no redirects (an OAuth endpoint that redirects is misconfigured or
//! hostile, and following it could leak a code or a secret elsewhere), enforces a time limit, and reads at most
//! [`MAX_RESPONSE_BYTES`] of any response body: a provider cannot make us buffer an unbounded reply.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// An HTTP request with its whole body (what `oauth2` hands to its client).
pub type HttpRequest = http::Request<Vec<u8>>;
/// An HTTP response with its whole (size-limited) body.
pub type HttpResponse = http::Response<Vec<u8>>;

/// The largest response body read from a provider; larger bodies fail with [`HttpError::TooLarge`].
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Time limit for one request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client shared by everything that talks to providers.
pub type SharedHttp = std::sync::Arc<dyn HttpClient>;

/// A boxed, sendable future (what [`HttpClient::execute`] returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a request got no usable response. Messages name the host at most, never a query or body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server could not be reached (DNS, refused, reset, TLS).
    #[error("could not reach {host}: {reason}")]
    Unreachable {
        /// Host of the request.
        host: String,
        /// Short description of the failure.
        reason: String,
    },
    /// No response within [`REQUEST_TIMEOUT`].
    #[error("{host} did not answer in time")]
    Timeout {
        /// Host of the request.
        host: String,
    },
    /// The response body exceeded the limit ([`MAX_RESPONSE_BYTES`], or the caller's).
    #[error("{host} sent a response larger than {limit} bytes")]
    TooLarge {
        /// Host of the request.
        host: String,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The request itself could not be built (a bug or a malformed endpoint).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// Sends one HTTP request. Implementations must be cheap to share (`Arc<dyn HttpClient>`).
pub trait HttpClient: Send + Sync + std::fmt::Debug {
    /// Sends `request` and returns the response with its body read in full (bounded by [`MAX_RESPONSE_BYTES`]).
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>>;

    /// [`Self::execute`] with another bound on the body: `tokenkeep api` hands a platform's answer (a page of
    /// videos, a thumbnail) to the caller, so it reads up to `limit` bytes, not an OAuth reply's few. Fakes
    /// keep the default, which is [`Self::execute`].
    fn execute_limited(&self, request: HttpRequest, limit: usize) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        let _ = limit;
        self.execute(request)
    }
}

/// The production client: reqwest with rustls, no redirects, bounded bodies.
#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl ReqwestHttp {
    /// Builds the client.
    pub fn new() -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(LocalhostResolver::from_env()))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("Tokenkeep/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::InvalidRequest(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client })
    }
}

/// Whether `host` is a name under `.localhost` (`alice.localhost`): RFC 6761 §6.3 reserves them for this machine.
pub fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host.len() > ".localhost".len() && host.ends_with(".localhost")
}

/// The environment variable that sends names under `.localhost` to this port of 127.0.0.1 (instead of the
/// scheme's own): for local emulations of services that are reached by name, such as atproto handles
/// (`http://alice.localhost/.well-known/atproto-did`). It affects no other name.
pub const LOCALHOST_PORT_ENV: &str = "TOKENKEEP_LOCALHOST_PORT";

/// The system's resolver, except that names under `.localhost` are 127.0.0.1 whatever DNS says (RFC 6761 §6.3, as
/// browsers do): a `.localhost` address that Tokenkeep treats as this machine is this machine.
#[derive(Debug, Clone, Copy)]
struct LocalhostResolver {
    port: u16,
}

impl LocalhostResolver {
    fn from_env() -> Self {
        let port = std::env::var(LOCALHOST_PORT_ENV)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        Self { port }
    }
}

impl reqwest::dns::Resolve for LocalhostResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let port = self.port;
        Box::pin(async move {
            if is_localhost_name(&host) {
                // Port 0: the URL's (or its scheme's) port.
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                return Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs);
            }
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A [`ReqwestHttp`] built on the first request: for one-shot commands that may never go to the network (`list`
/// reads the vault only), so they do not pay for setting up TLS.
#[derive(Debug, Default)]
pub struct LazyHttp {
    client: std::sync::OnceLock<Result<ReqwestHttp, String>>,
}

impl LazyHttp {
    /// A client that builds itself when first used.
    pub fn new() -> Self {
        Self::default()
    }
}

impl HttpClient for LazyHttp {
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        self.execute_limited(request, MAX_RESPONSE_BYTES)
    }

    fn execute_limited(&self, request: HttpRequest, limit: usize) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        match self
            .client
            .get_or_init(|| ReqwestHttp::new().map_err(|e| e.to_string()))
        {
            Ok(client) => client.execute_limited(request, limit),
            Err(message) => {
                let error = HttpError::InvalidRequest(message.clone());
                Box::pin(async move { Err(error) })
            }
        }
    }
}

fn host_of(uri: &http::Uri) -> String {
    uri.authority()
        .map_or_else(|| "the server".to_owned(), ToString::to_string)
}

impl HttpClient for ReqwestHttp {
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        self.execute_limited(request, MAX_RESPONSE_BYTES)
    }

    fn execute_limited(&self, request: HttpRequest, limit: usize) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        Box::pin(async move {
            let host = host_of(request.uri());
            let request: reqwest::Request = request
                .try_into()
                .map_err(|e: reqwest::Error| HttpError::InvalidRequest(e.without_url().to_string()))?;
            let classify = |e: reqwest::Error, host: &str| {
                if e.is_timeout() {
                    HttpError::Timeout { host: host.to_owned() }
                } else {
                    // `without_url` keeps query strings (which may hold codes) out of the message.
                    HttpError::Unreachable {
                        host: host.to_owned(),
                        reason: root_cause(&e.without_url()),
                    }
                }
            };
            let mut response = self.client.execute(request).await.map_err(|e| classify(e, &host))?;
            if response.content_length().is_some_and(|len| len > limit as u64) {
                return Err(HttpError::TooLarge { host, limit });
            }
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, &host))? {
                if body.len() + chunk.len() > limit {
                    return Err(HttpError::TooLarge { host, limit });
                }
                body.extend_from_slice(&chunk);
            }
            builder.body(body).map_err(|e| HttpError::InvalidRequest(e.to_string()))
        })
    }
}

/// The innermost cause of an error, which is usually the one a person can act on ("connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
