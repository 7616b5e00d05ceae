//! The AT Protocol's identity layer, as its OAuth profile needs it (Bluesky): from what a person types — a handle,
//! a DID, or the address of their server — to the authorization server that may issue tokens for that account.
//!
//! - A handle resolves to a DID through `https://HANDLE/.well-known/atproto-did` (atproto "Handle" spec, the
//!   HTTPS method). The DNS method (`_atproto.HANDLE` TXT) needs a DNS resolver Tokenkeep does not carry; a handle
//!   published only in DNS is refused with that said.
//! - A DID resolves to its document: `did:plc` through a PLC directory (configurable; `https://plc.directory` in
//!   the preset), `did:web` through `https://DOMAIN/.well-known/did.json` ("DID" spec). The document must name
//!   the DID itself, and its `#atproto_pds` service is the account's server (PDS).
//! - A handle is the account's only when it resolves to the DID *and* the DID document lists it back
//!   (`alsoKnownAs: ["at://HANDLE"]`): the bidirectional check of the "Handle" spec.
//! - The PDS names its authorization server in `/.well-known/oauth-protected-resource` (RFC 9728), and the
//!   authorization server describes itself at `/.well-known/oauth-authorization-server` (RFC 8414), whose
//!   `issuer` must be exactly that server (atproto "OAuth" spec, "Authorization Servers").
//!
//! Every answer is untrusted: bounded, type-checked, and turned into one sentence naming what was wrong.
//! Plain http is allowed to loopback hosts only (names under `.localhost` included: RFC 6761 reserves them for
//! this machine, and Tokenkeep's HTTP client sends them nowhere else).

use serde_json::Value;
use url::Url;

use super::is_loopback_host;
use crate::http::{HttpClient, HttpError, HttpRequest};

/// The PLC directory of the public network.
pub const DEFAULT_PLC_DIRECTORY: &str = "https://plc.directory";
/// The largest identity document read (DID documents and metadata are a few hundred bytes).
const MAX_DOCUMENT: usize = 64 * 1024;

/// What a person typed to say which account to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountHint {
    /// A handle (`alice.bsky.social`), lowercased, without a leading `@`.
    Handle(String),
    /// A DID (`did:plc:…`, `did:web:…`).
    Did(String),
    /// The account's server or its entryway (`https://bsky.social`): the account is known after sign-in.
    Server(Url),
}

impl AccountHint {
    /// Reads a handle, a DID, or an https address (http for loopback).
    ///
    /// # Errors
    /// [`AtprotoError::NotAnAccount`] saying what would be accepted.
    pub fn parse(input: &str) -> Result<Self, AtprotoError> {
        let text = input.trim();
        let refuse = |reason: &str| AtprotoError::NotAnAccount {
            given: crate::text::clean(text, 80),
            reason: reason.to_owned(),
        };
        if text.starts_with("did:") {
            return if is_did(text) {
                Ok(Self::Did(text.to_owned()))
            } else {
                Err(refuse(
                    "a DID is did:plc: and 24 letters a-z and digits 2-7, or did:web: and a domain",
                ))
            };
        }
        if text.contains("://") {
            let url = Url::parse(text).map_err(|_| refuse("it is not a web address"))?;
            return secure(&url)
                .then(|| Self::Server(origin_url(&url)))
                .ok_or_else(|| refuse("a server's address is https (http only on this computer)"));
        }
        let handle = text.strip_prefix('@').unwrap_or(text).to_ascii_lowercase();
        if is_handle(&handle) {
            Ok(Self::Handle(handle))
        } else {
            Err(refuse(
                "a handle is a domain name such as alice.bsky.social; a DID or a server's https address also works",
            ))
        }
    }
}

/// Why an account's identity could not be established. Messages never hold a token; they name the address
/// that answered and what was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AtprotoError {
    /// What was typed is not a handle, DID or server.
    #[error("{given:?} is not a Bluesky account: {reason}")]
    NotAnAccount {
        /// What was given (cleaned).
        given: String,
        /// What would be accepted.
        reason: String,
    },
    /// A server could not be reached.
    #[error("could not reach {url}: {source}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// Why.
        #[source]
        source: HttpError,
    },
    /// The handle does not resolve to a DID.
    #[error("the handle {handle} does not resolve: {reason}")]
    Handle {
        /// The handle.
        handle: String,
        /// What happened, and what to do.
        reason: String,
    },
    /// An answer is not what the atproto specifications say.
    #[error("{url} sent an answer Tokenkeep cannot use: {reason}")]
    Malformed {
        /// What was asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The identity does not hold together: the handle and the DID do not name each other, the token was issued
    /// for another account, or by a server the account's PDS does not name. Refused: a hostile server could
    /// otherwise mint tokens for someone else's account.
    #[error("{0}")]
    Mismatch(String),
}

/// A DID document, as far as the OAuth profile reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidDocument {
    /// The DID (the document's `id`, which must be the DID asked for).
    pub did: String,
    /// The handles it claims (`alsoKnownAs` entries `at://HANDLE`), lowercased, in order.
    pub handles: Vec<String>,
    /// The account's PDS (`#atproto_pds`, type `AtprotoPersonalDataServer`).
    pub pds: Url,
}

/// An account, resolved: its DID, its handle when that is verified both ways, and where its data and its
/// authorization server are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAccount {
    /// The DID: the account's stable identity (what the token's `sub` must be).
    pub did: String,
    /// The handle, when it resolves to the DID and the DID document lists it.
    pub handle: Option<String>,
    /// The PDS: the resource server for the account's tokens.
    pub pds: Url,
    /// The authorization server the PDS names.
    pub authorization_server: Url,
}

/// Resolves `handle` to its DID by the HTTPS method.
///
/// # Errors
/// [`AtprotoError::Handle`] when the handle names no DID; transport and shape errors.
pub async fn resolve_handle(http: &dyn HttpClient, handle: &str) -> Result<String, AtprotoError> {
    let scheme = if is_loopback_host(handle) { "http" } else { "https" };
    let url = format!("{scheme}://{handle}/.well-known/atproto-did");
    let (status, body) = get(http, &url, "text/plain").await?;
    let unresolved = |reason: String| AtprotoError::Handle {
        handle: handle.to_owned(),
        reason,
    };
    if status == 404 {
        return Err(unresolved(format!(
            "{url} does not exist (a handle published only in DNS, `_atproto.{handle}`, cannot be looked up by \
             Tokenkeep: type the account's DID instead, did:plc:…, as its profile shows it)"
        )));
    }
    if status != 200 {
        return Err(unresolved(format!("{url} answered HTTP {status}")));
    }
    let did = String::from_utf8(body)
        .map(|text| text.trim().to_owned())
        .map_err(|_| unresolved(format!("{url} is not text")))?;
    if !is_did(&did) {
        return Err(unresolved(format!("{url} does not hold a DID")));
    }
    Ok(did)
}

/// Fetches and checks the DID document of `did`: `did:plc` from `plc_directory`, `did:web` from its domain.
///
/// # Errors
/// Transport and shape errors; [`AtprotoError::Malformed`] when the document is for another DID or names no PDS.
pub async fn resolve_did(http: &dyn HttpClient, did: &str, plc_directory: &Url) -> Result<DidDocument, AtprotoError> {
    let url = if let Some(rest) = did.strip_prefix("did:plc:") {
        let mut url = plc_directory.clone();
        url.set_path(&format!("/did:plc:{rest}"));
        url.to_string()
    } else if let Some(domain) = did.strip_prefix("did:web:") {
        let domain = domain.replace("%3A", ":").replace("%3a", ":");
        let host = domain.split(':').next().unwrap_or_default();
        let scheme = if is_loopback_host(host) { "http" } else { "https" };
        format!("{scheme}://{domain}/.well-known/did.json")
    } else {
        return Err(AtprotoError::NotAnAccount {
            given: crate::text::clean(did, 80),
            reason: "only did:plc and did:web are atproto DIDs".into(),
        });
    };
    let (status, body) = get(http, &url, "application/json").await?;
    let malformed = |reason: &str| AtprotoError::Malformed {
        url: url.clone(),
        reason: reason.to_owned(),
    };
    if status == 404 || status == 410 {
        return Err(malformed("the DID is not registered there (or was deactivated)"));
    }
    if status != 200 {
        return Err(AtprotoError::Malformed {
            url: url.clone(),
            reason: format!("HTTP {status}"),
        });
    }
    let doc: Value = serde_json::from_slice(&body).map_err(|_| malformed("not JSON"))?;
    if doc.get("id").and_then(Value::as_str) != Some(did) {
        return Err(malformed("the document is for another DID"));
    }
    let handles = doc
        .get("alsoKnownAs")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .filter_map(|aka| aka.strip_prefix("at://"))
                .map(str::to_ascii_lowercase)
                .filter(|h| is_handle(h))
                .collect()
        })
        .unwrap_or_default();
    let pds = doc
        .get("service")
        .and_then(Value::as_array)
        .and_then(|services| {
            services.iter().find(|s| {
                let id = s.get("id").and_then(Value::as_str).unwrap_or_default();
                (id == "#atproto_pds" || id == format!("{did}#atproto_pds"))
                    && s.get("type").and_then(Value::as_str) == Some("AtprotoPersonalDataServer")
            })
        })
        .and_then(|s| s.get("serviceEndpoint").and_then(Value::as_str))
        .ok_or_else(|| malformed("the document names no atproto PDS (#atproto_pds)"))?;
    let pds = Url::parse(pds)
        .ok()
        .filter(secure)
        .ok_or_else(|| malformed("its PDS is not an https address"))?;
    Ok(DidDocument {
        did: did.to_owned(),
        handles,
        pds: origin_url(&pds),
    })
}

/// The authorization server `pds` names (RFC 9728 metadata, `authorization_servers`).
///
/// # Errors
/// Transport and shape errors.
pub async fn authorization_server_of(http: &dyn HttpClient, pds: &Url) -> Result<Url, AtprotoError> {
    let (url, doc) = well_known(http, pds, "/.well-known/oauth-protected-resource").await?;
    let malformed = |reason: String| AtprotoError::Malformed {
        url: url.clone(),
        reason,
    };
    let server = doc
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|list| list.first())
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("it names no authorization server".into()))?;
    Url::parse(server)
        .ok()
        .filter(|u| secure(u) && u.path() == "/" && u.query().is_none())
        .map(|u| origin_url(&u))
        .ok_or_else(|| malformed("its authorization server is not an https origin".into()))
}

/// What an atproto authorization server says of itself (RFC 8414 metadata), checked against the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationServer {
    /// Its issuer: exactly the server's origin.
    pub issuer: Url,
    /// Where the browser goes.
    pub authorization_endpoint: Url,
    /// The token endpoint.
    pub token_endpoint: Url,
    /// The pushed authorization request endpoint (mandatory in the profile).
    pub pushed_authorization_request_endpoint: Url,
    /// The RFC 7009 revocation endpoint, when it has one.
    pub revocation_endpoint: Option<Url>,
}

/// Reads `server`'s `/.well-known/oauth-authorization-server` and checks what the atproto "OAuth" spec
/// ("Authorization Servers") requires of it: the `issuer` is the server itself, `iss` in the callback, PAR
/// required, PKCE S256, public clients, DPoP with ES256, the `atproto` scope, client ids that are documents.
///
/// # Errors
/// Transport and shape errors; [`AtprotoError::Malformed`] naming the first requirement it misses.
pub async fn authorization_server(http: &dyn HttpClient, server: &Url) -> Result<AuthorizationServer, AtprotoError> {
    let (url, doc) = well_known(http, server, "/.well-known/oauth-authorization-server").await?;
    let malformed = |reason: String| AtprotoError::Malformed {
        url: url.clone(),
        reason,
    };
    let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or_default();
    if issuer.trim_end_matches('/') != server.as_str().trim_end_matches('/') {
        return Err(malformed(format!(
            "its issuer is {:?}, not the server itself (RFC 8414 §3.3)",
            crate::text::clean(issuer, 200)
        )));
    }
    let endpoint = |field: &str| -> Result<Url, AtprotoError> {
        doc.get(field)
            .and_then(Value::as_str)
            .and_then(|u| Url::parse(u).ok())
            .filter(secure)
            .ok_or_else(|| malformed(format!("it names no https {field}")))
    };
    let lists = |field: &str, wanted: &str| {
        doc.get(field)
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|v| v.as_str() == Some(wanted)))
    };
    let flag = |field: &str| doc.get(field).and_then(Value::as_bool) == Some(true);
    let requirements: [(bool, &str); 8] = [
        (
            flag("authorization_response_iss_parameter_supported"),
            "authorization_response_iss_parameter_supported",
        ),
        (
            flag("require_pushed_authorization_requests"),
            "require_pushed_authorization_requests",
        ),
        (
            flag("client_id_metadata_document_supported"),
            "client_id_metadata_document_supported",
        ),
        (
            lists("code_challenge_methods_supported", "S256"),
            "code_challenge_methods_supported: S256",
        ),
        (
            lists("token_endpoint_auth_methods_supported", "none"),
            "token_endpoint_auth_methods_supported: none",
        ),
        (
            lists("dpop_signing_alg_values_supported", crate::dpop::ALG),
            "dpop_signing_alg_values_supported: ES256",
        ),
        (lists("scopes_supported", "atproto"), "scopes_supported: atproto"),
        (
            lists("response_types_supported", "code"),
            "response_types_supported: code",
        ),
    ];
    if let Some((_, missing)) = requirements.iter().find(|(met, _)| !met) {
        return Err(malformed(format!(
            "it is not an AT Protocol authorization server (it does not say {missing})"
        )));
    }
    Ok(AuthorizationServer {
        issuer: origin_url(server),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        pushed_authorization_request_endpoint: endpoint("pushed_authorization_request_endpoint")?,
        revocation_endpoint: endpoint("revocation_endpoint").ok(),
    })
}

/// Resolves what a person typed to the account and its authorization server: handle → DID (verified both ways)
/// → DID document → PDS → authorization server. A server address resolves to its authorization server only
/// (`None` for the account: it is known after sign-in).
///
/// # Errors
/// Any step's error; [`AtprotoError::Mismatch`] when a handle and its DID do not name each other.
pub async fn resolve(
    http: &dyn HttpClient,
    hint: &AccountHint,
    plc_directory: &Url,
) -> Result<(Option<ResolvedAccount>, Url), AtprotoError> {
    match hint {
        AccountHint::Server(server) => {
            // A PDS names its authorization server; an entryway (bsky.social) is one itself.
            match authorization_server_of(http, server).await {
                Ok(found) => Ok((None, found)),
                Err(_) => Ok((None, server.clone())),
            }
        }
        AccountHint::Handle(handle) => {
            let did = resolve_handle(http, handle).await?;
            let account = account_of_did(http, &did, plc_directory).await?;
            if account.handle.as_deref() != Some(handle.as_str()) {
                return Err(AtprotoError::Mismatch(format!(
                    "{handle} resolves to {did}, but that DID's document does not list {handle} back: the handle is \
                     not verified, so Tokenkeep will not connect it (type the DID to connect the account it names)"
                )));
            }
            let server = account.authorization_server.clone();
            Ok((Some(account), server))
        }
        AccountHint::Did(did) => {
            let account = account_of_did(http, did, plc_directory).await?;
            let server = account.authorization_server.clone();
            Ok((Some(account), server))
        }
    }
}

/// The account `did` names: its document, its handle when verified both ways, its PDS and that PDS's
/// authorization server. Used after sign-in too, on the token's `sub`.
///
/// # Errors
/// Any step's error.
pub async fn account_of_did(
    http: &dyn HttpClient,
    did: &str,
    plc_directory: &Url,
) -> Result<ResolvedAccount, AtprotoError> {
    let doc = resolve_did(http, did, plc_directory).await?;
    let mut handle = None;
    if let Some(claimed) = doc.handles.first() {
        // The document's handle counts only when it resolves back to this DID.
        match resolve_handle(http, claimed).await {
            Ok(back) if back == did => handle = Some(claimed.clone()),
            Ok(_) => tracing::warn!("the DID document's handle resolves to another DID; showing the DID"),
            Err(error) => tracing::info!(%error, "the DID document's handle does not resolve; showing the DID"),
        }
    }
    let authorization_server = authorization_server_of(http, &doc.pds).await?;
    Ok(ResolvedAccount {
        did: doc.did,
        handle,
        pds: doc.pds,
        authorization_server,
    })
}

/// After sign-in: the token's `sub` must be the account asked for (when one was), and the authorization server
/// that issued it must be the one the account's PDS names (atproto "OAuth" spec, "Identity Authentication").
///
/// # Errors
/// [`AtprotoError::Mismatch`] saying which, or a resolution error.
pub async fn verify_subject(
    http: &dyn HttpClient,
    sub: Option<&str>,
    expected: Option<&ResolvedAccount>,
    issuer: &str,
    plc_directory: &Url,
) -> Result<ResolvedAccount, AtprotoError> {
    let sub = sub.filter(|s| is_did(s)).ok_or_else(|| {
        AtprotoError::Mismatch("the token response names no account (its `sub` is not a DID): refused".into())
    })?;
    if let Some(expected) = expected
        && expected.did != sub
    {
        return Err(AtprotoError::Mismatch(format!(
            "the sign-in was for {}, but the tokens are for {sub}: refused (sign in with the account you named)",
            expected.did
        )));
    }
    let account = match expected {
        Some(expected) => expected.clone(),
        None => account_of_did(http, sub, plc_directory).await?,
    };
    if account.authorization_server.as_str().trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(AtprotoError::Mismatch(format!(
            "{sub}'s server ({}) names {} as its authorization server, but the tokens came from {issuer}: refused \
             (a server may only issue tokens for its own accounts)",
            account.pds.as_str().trim_end_matches('/'),
            account.authorization_server.as_str().trim_end_matches('/')
        )));
    }
    Ok(account)
}

/// The JSON document at `path` on `base`'s origin (a 200 answer only), and the address it was read from.
async fn well_known(http: &dyn HttpClient, base: &Url, path: &str) -> Result<(String, Value), AtprotoError> {
    let url = base
        .join(path)
        .map_err(|e| AtprotoError::Malformed {
            url: base.to_string(),
            reason: e.to_string(),
        })?
        .to_string();
    let (status, body) = get(http, &url, "application/json").await?;
    let malformed = |reason: String| AtprotoError::Malformed {
        url: url.clone(),
        reason,
    };
    if status != 200 {
        return Err(malformed(format!("HTTP {status}")));
    }
    let doc = serde_json::from_slice(&body).map_err(|_| malformed("not JSON".into()))?;
    Ok((url, doc))
}

async fn get(http: &dyn HttpClient, url: &str, accept: &str) -> Result<(u16, Vec<u8>), AtprotoError> {
    let request: HttpRequest = http::Request::get(url)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .map_err(|e| AtprotoError::Malformed {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let response = http
        .execute_limited(request, MAX_DOCUMENT)
        .await
        .map_err(|source| AtprotoError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
    if response.status().is_redirection() {
        return Err(AtprotoError::Malformed {
            url: url.to_owned(),
            reason: "it redirects (identity documents are served where they are asked for)".into(),
        });
    }
    Ok((response.status().as_u16(), response.into_body()))
}

/// https, or http on loopback; no user info.
fn secure(url: &Url) -> bool {
    let loopback = url.host_str().is_some_and(is_loopback_host);
    (url.scheme() == "https" || (url.scheme() == "http" && loopback)) && url.username().is_empty()
}

fn origin_url(url: &Url) -> Url {
    let mut origin = url.clone();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    origin
}

/// A DID the OAuth profile accepts: `did:plc:` and 24 base32 letters, or `did:web:` and a domain.
pub fn is_did(text: &str) -> bool {
    if let Some(id) = text.strip_prefix("did:plc:") {
        return id.len() == 24 && id.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    }
    if let Some(domain) = text.strip_prefix("did:web:") {
        let host = domain.replace("%3A", ":");
        let name = host.split(':').next().unwrap_or_default();
        return is_handle(name) || is_loopback_host(name);
    }
    false
}

/// The atproto handle syntax ("Handle" spec): a domain name of at least two labels, each 1–63 letters, digits and
/// inner hyphens, at most 253 characters, the last label not starting with a digit.
pub fn is_handle(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    text.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::http::{BoxFuture, HttpResponse};

    const ALICE: &str = "did:plc:abcdefghijklmnopqrstuvwx";
    const MALLORY: &str = "did:plc:mmmmmmmmmmmmmmmmmmmmmmmm";

    /// Answers by full URL, like the emulation in `tests/js/atproto.mjs`.
    #[derive(Debug, Default)]
    struct Net {
        pages: BTreeMap<String, (u16, String)>,
        asked: Mutex<Vec<String>>,
    }

    impl Net {
        fn page(mut self, url: &str, status: u16, body: impl Into<String>) -> Self {
            self.pages.insert(url.to_owned(), (status, body.into()));
            self
        }
    }

    impl HttpClient for Net {
        fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
            let url = request.uri().to_string();
            self.asked.lock().unwrap().push(url.clone());
            let (status, body) = self.pages.get(&url).cloned().unwrap_or((404, String::new()));
            Box::pin(async move {
                Ok(http::Response::builder()
                    .status(status)
                    .body(body.into_bytes())
                    .unwrap())
            })
        }
    }

    fn doc(did: &str, handle: &str, pds: &str) -> String {
        serde_json::json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": did,
            "alsoKnownAs": [format!("at://{handle}")],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
        })
        .to_string()
    }

    fn network() -> Net {
        Net::default()
            .page(
                "https://alice.example/.well-known/atproto-did",
                200,
                format!("{ALICE}\n"),
            )
            .page(
                &format!("https://plc.example/{ALICE}"),
                200,
                doc(ALICE, "alice.example", "https://pds.example"),
            )
            .page(
                "https://pds.example/.well-known/oauth-protected-resource",
                200,
                r#"{"resource":"https://pds.example","authorization_servers":["https://entryway.example"]}"#,
            )
    }

    fn plc() -> Url {
        Url::parse("https://plc.example").unwrap()
    }

    #[test]
    fn what_a_person_types_is_read_as_handle_did_or_server() {
        assert_eq!(
            AccountHint::parse(" @Alice.Bsky.Social ").unwrap(),
            AccountHint::Handle("alice.bsky.social".into())
        );
        assert_eq!(AccountHint::parse(ALICE).unwrap(), AccountHint::Did(ALICE.into()));
        assert_eq!(
            AccountHint::parse("did:web:alice.example").unwrap(),
            AccountHint::Did("did:web:alice.example".into())
        );
        assert_eq!(
            AccountHint::parse("https://bsky.social/some/path").unwrap(),
            AccountHint::Server(Url::parse("https://bsky.social/").unwrap())
        );
        for bad in [
            "alice",
            "did:plc:short",
            "http://bsky.social",
            "alice..example",
            "a.1x",
            "did:key:z6Mk",
        ] {
            assert!(AccountHint::parse(bad).is_err(), "{bad}");
        }
        let error = AccountHint::parse("\u{1b}[31mevil").unwrap_err().to_string();
        assert!(!error.contains('\u{1b}'), "{error}");
    }

    #[tokio::test]
    async fn a_handle_resolves_both_ways_to_its_pds_and_authorization_server() {
        let net = network();
        let (account, server) = resolve(&net, &AccountHint::Handle("alice.example".into()), &plc())
            .await
            .unwrap();
        let account = account.unwrap();
        assert_eq!(account.did, ALICE);
        assert_eq!(account.handle.as_deref(), Some("alice.example"));
        assert_eq!(account.pds.as_str(), "https://pds.example/");
        assert_eq!(server.as_str(), "https://entryway.example/");
        // After sign-in, the same account from the same server passes; another account or server does not.
        verify_subject(&net, Some(ALICE), Some(&account), "https://entryway.example", &plc())
            .await
            .unwrap();
        let other = verify_subject(&net, Some(MALLORY), Some(&account), "https://entryway.example", &plc())
            .await
            .unwrap_err()
            .to_string();
        assert!(other.contains("the tokens are for did:plc:mmmm"), "{other}");
        let hostile = verify_subject(&net, Some(ALICE), Some(&account), "https://evil.example", &plc())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            hostile.contains("names https://entryway.example as its authorization server"),
            "{hostile}"
        );
        let unnamed = verify_subject(&net, None, None, "https://entryway.example", &plc()).await;
        assert!(matches!(unnamed, Err(AtprotoError::Mismatch(_))));
    }

    #[tokio::test]
    async fn a_handle_its_did_does_not_list_back_is_refused() {
        let net = network().page(
            &format!("https://plc.example/{ALICE}"),
            200,
            doc(ALICE, "someone-else.example", "https://pds.example"),
        );
        let error = resolve(&net, &AccountHint::Handle("alice.example".into()), &plc())
            .await
            .unwrap_err();
        assert!(matches!(error, AtprotoError::Mismatch(_)), "{error}");
        assert!(
            error.to_string().contains("does not list alice.example back"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn broken_and_hostile_documents_get_one_sentence_each() {
        let cases = [
            (
                network().page("https://alice.example/.well-known/atproto-did", 404, ""),
                "cannot be looked up by Tokenkeep",
            ),
            (
                network().page("https://alice.example/.well-known/atproto-did", 200, "<html>"),
                "does not hold a DID",
            ),
            (
                network().page(
                    &format!("https://plc.example/{ALICE}"),
                    200,
                    doc(MALLORY, "alice.example", "https://pds.example"),
                ),
                "the document is for another DID",
            ),
            (
                network().page(
                    &format!("https://plc.example/{ALICE}"),
                    200,
                    doc(ALICE, "alice.example", "http://pds.example"),
                ),
                "its PDS is not an https address",
            ),
            (
                network().page(&format!("https://plc.example/{ALICE}"), 404, ""),
                "not registered",
            ),
            (
                network().page(
                    "https://pds.example/.well-known/oauth-protected-resource",
                    200,
                    r#"{"authorization_servers":[]}"#,
                ),
                "names no authorization server",
            ),
            (
                network().page(
                    "https://pds.example/.well-known/oauth-protected-resource",
                    200,
                    r#"{"authorization_servers":["http://entryway.example"]}"#,
                ),
                "not an https origin",
            ),
        ];
        for (net, expected) in cases {
            let error = resolve(&net, &AccountHint::Handle("alice.example".into()), &plc())
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{error} (expected {expected:?})");
        }
    }

    #[test]
    fn syntax_follows_the_specs() {
        assert!(is_handle("alice.bsky.social"));
        assert!(is_handle("xn--ls8h.test"));
        assert!(is_handle("alice.localhost"));
        assert!(!is_handle("localhost"));
        assert!(!is_handle("alice.-x.com"));
        assert!(!is_handle("alice.123"));
        assert!(!is_handle(&format!("{}.com", "a".repeat(64))));
        assert!(is_did(ALICE));
        assert!(!is_did("did:plc:ABCDEFGHIJKLMNOPQRSTUVWX"));
        assert!(!is_did("did:plc:abcdefghijklmnopqrstuvw1"));
        assert!(is_did("did:web:alice.example"));
        assert!(!is_did("did:web:"));
    }
}
