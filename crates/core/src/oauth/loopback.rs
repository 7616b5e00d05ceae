//! The RFC 8252 loopback redirect listener: one port on 127.0.0.1, one valid callback, then closed.
//!
//! Every connection is handled on its own task (browsers open speculative connections that never send a request,
//! and one of those must not delay the real callback), with a small request-size and time limit. The accept loop
//! never waits for a handler: a connection that sends nothing within [`FIRST_BYTE_TIMEOUT`] is closed, and when
//! [`MAX_CONNECTIONS`] are open the one idle longest makes room — so a flood of idle connections (another program
//! on this machine) cannot keep the browser's request waiting until the code expires. A request is
//! answered and ignored unless it is a `GET` of the redirect path with the expected `Host` header and `state`;
//! only such a request ends the wait. Its connection is handed back to the flow, which answers the browser once
//! it knows the outcome ("Connected as …" or what went wrong).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use url::Url;

use crate::secret::SecretString;

/// Largest request head accepted (request line + headers).
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a connection may take to send its whole request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay silent before its first byte (a browser sends its request at once; a
/// speculative preconnect that is closed simply reconnects when it is needed).
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections open at once; beyond it, the one idle longest is closed to make room.
const MAX_CONNECTIONS: usize = 64;

/// What the browser delivered to the redirect URI, with `state` already checked.
#[derive(Debug)]
pub(crate) enum Callback {
    /// The authorization code and the `iss` parameter if the provider sent one (RFC 9207).
    Code {
        /// The authorization code.
        code: SecretString,
        /// The issuer the response claims to come from.
        iss: Option<String>,
    },
    /// The provider reported an error (`access_denied` when the user declined).
    Error {
        /// The `error` code.
        error: String,
        /// The `error_description`, if any (already limited in length and to printable characters).
        description: Option<String>,
        /// The issuer the response claims to come from.
        iss: Option<String>,
    },
    /// The state matched but the response has neither `code` nor `error`.
    Malformed,
}

/// A browser connection waiting for its answer.
#[derive(Debug)]
pub(crate) struct Responder {
    stream: TcpStream,
}

impl Responder {
    /// Sends a small self-contained HTML page and closes the connection.
    pub(crate) async fn respond(mut self, status: u16, title: &str, message: &str) {
        let _ = write_page(&mut self.stream, status, title, message).await;
    }
}

/// A bound listener, not yet waiting.
#[derive(Debug)]
pub(crate) struct LoopbackListener {
    listener: TcpListener,
    redirect_uri: Url,
    expected_host: String,
    path: String,
}

impl LoopbackListener {
    /// Binds 127.0.0.1 on `port`, or on an ephemeral port when `None`. `host` is the name in the redirect URI
    /// (`127.0.0.1` or `localhost`); the listener binds the IPv4 loopback address either way (RFC 8252 §8.3).
    pub(crate) async fn bind(host: &str, port: Option<u16>, path: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port.unwrap_or(0))))
            .await
            .map_err(|e| match (port, e.kind()) {
                (Some(port), std::io::ErrorKind::AddrInUse) => std::io::Error::new(
                    e.kind(),
                    format!("port {port} (the provider's registered redirect port) is in use by another program"),
                ),
                _ => e,
            })?;
        let port = listener.local_addr()?.port();
        let expected_host = format!("{host}:{port}");
        let redirect_uri = Url::parse(&format!("http://{expected_host}{path}"))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Self {
            listener,
            redirect_uri,
            expected_host,
            path: path.to_owned(),
        })
    }

    /// The redirect URI to register in the authorization request.
    pub(crate) fn redirect_uri(&self) -> &Url {
        &self.redirect_uri
    }

    /// Waits for the one callback carrying `state`. Other requests get an error page and are otherwise ignored.
    /// Ends when that callback arrives or when the caller drops the future (timeout, cancel); the port is closed
    /// when `self` is dropped.
    pub(crate) async fn wait(self, state: &SecretString) -> (Callback, Responder) {
        let (tx, mut rx) = mpsc::channel::<(Callback, Responder)>(1);
        let expected = std::sync::Arc::new(Expected {
            host: self.expected_host.clone(),
            path: self.path.clone(),
            state: SecretString::new(state.dangerously_expose().to_owned()),
        });
        let mut tasks = tokio::task::JoinSet::new();
        // Open connections, oldest first: whether each has sent a byte yet, and how to close it.
        let mut open: std::collections::VecDeque<(std::sync::Arc<AtomicBool>, tokio::task::AbortHandle)> =
            std::collections::VecDeque::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let Ok((stream, _peer)) = accepted else { continue };
                    open.retain(|(_, handle)| !handle.is_finished());
                    if open.len() >= MAX_CONNECTIONS {
                        // Make room: the oldest connection that has sent nothing, else the oldest of all.
                        let victim = open.iter().position(|(talked, _)| !talked.load(Ordering::Relaxed)).unwrap_or(0);
                        if let Some((_, handle)) = open.remove(victim) {
                            handle.abort();
                        }
                    }
                    let talked = std::sync::Arc::new(AtomicBool::new(false));
                    let tx = tx.clone();
                    let expected = expected.clone();
                    let flag = talked.clone();
                    let handle = tasks.spawn(async move {
                        if let Some(found) = handle(stream, &expected, &flag).await {
                            let _ = tx.send(found).await;
                        }
                    });
                    open.push_back((talked, handle));
                }
                Some(found) = rx.recv() => {
                    // Dropping the JoinSet aborts the handlers of any other connections still open.
                    return found;
                }
                // Reap finished handlers so the set does not grow with every connection.
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }
}

#[derive(Debug)]
struct Expected {
    host: String,
    path: String,
    state: SecretString,
}

/// Reads one request; answers it unless it is the callback, which is returned with its open connection.
/// `talked` is set once the connection has sent its first byte.
async fn handle(mut stream: TcpStream, expected: &Expected, talked: &AtomicBool) -> Option<(Callback, Responder)> {
    // A connection that sends nothing at all is closed soon; one that has begun gets the whole read timeout.
    match tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut [0u8; 1])).await {
        Ok(Ok(n)) if n > 0 => talked.store(true, Ordering::Relaxed),
        _ => return None,
    }
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::TooLarge)) => {
            let _ = write_page(&mut stream, 431, "Request too large", "This request is too large.").await;
            return None;
        }
        _ => return None, // closed early or too slow: nothing to answer
    };
    let request = match parse_head(&head) {
        Some(request) => request,
        None => {
            let _ = write_page(
                &mut stream,
                400,
                "Bad request",
                "Tokenkeep could not read this request.",
            )
            .await;
            return None;
        }
    };
    // IMPORTANT: the Host check defeats DNS rebinding: a web page cannot make the browser send a request whose
    // Host header names our loopback address and port.
    if !request
        .host
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case(&expected.host))
    {
        tracing::warn!("loopback listener: rejected a request with a foreign Host header");
        let _ = write_page(
            &mut stream,
            400,
            "Wrong address",
            "This address is not the one Tokenkeep is using.",
        )
        .await;
        return None;
    }
    if request.method != "GET" || request.path != expected.path {
        let _ = write_page(&mut stream, 404, "Not found", "Nothing here. Return to Tokenkeep.").await;
        return None;
    }
    match callback_from_query(&request.query, &expected.state) {
        Ok(callback) => Some((callback, Responder { stream })),
        Err(StateMismatch) => {
            tracing::warn!("loopback listener: rejected a callback whose state is missing or does not match");
            let _ = write_page(
                &mut stream,
                400,
                "Sign-in not recognised",
                "This sign-in response does not belong to the sign-in Tokenkeep started. If you are connecting an \
                 account, finish it in the browser tab Tokenkeep opened, or start again from Tokenkeep.",
            )
            .await;
            None
        }
    }
}

/// The `state` of a callback is missing or is not the one this sign-in sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StateMismatch;

/// Reads an authorization response's query (RFC 6749 §4.1.2): the `state` must be ours (compared in constant
/// time), then the code or the error, and `iss` (RFC 9207). Shared by the loopback listener and the pasted
/// address of the paste flow, so both are checked alike.
pub(crate) fn callback_from_query(query: &str, state: &SecretString) -> Result<Callback, StateMismatch> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |name: &str| {
        let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        // A parameter sent twice is ambiguous: treat it as malformed rather than pick one.
        if values.next().is_some() { Err(()) } else { Ok(first) }
    };
    let state_ok = match get("state") {
        Ok(Some(sent)) => bool::from(sent.as_bytes().ct_eq(state.dangerously_expose().as_bytes())),
        _ => false,
    };
    if !state_ok {
        return Err(StateMismatch);
    }
    let (Ok(code), Ok(error), Ok(iss), Ok(description)) =
        (get("code"), get("error"), get("iss"), get("error_description"))
    else {
        return Ok(Callback::Malformed);
    };
    let iss = iss.map(str::to_owned);
    Ok(match (code, error) {
        (_, Some(error)) => Callback::Error {
            error: printable(error, 64),
            description: description.map(|d| printable(d, 300)),
            iss,
        },
        (Some(code), None) if !code.is_empty() => {
            crate::logging::register_secret(code);
            Callback::Code {
                code: SecretString::new(code.to_owned()),
                iss,
            }
        }
        _ => Callback::Malformed,
    })
}

/// Keeps provider-supplied text printable and short before it reaches a page, a log or an error message.
fn printable(text: &str, max: usize) -> String {
    crate::text::clean(text, max)
}

#[derive(Debug)]
enum HeadError {
    TooLarge,
    Io,
}

async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Io)?;
        if n == 0 {
            return Err(HeadError::Io);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_BYTES {
            return Err(HeadError::TooLarge);
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(buf);
        }
    }
}

#[derive(Debug)]
struct RequestHead {
    method: String,
    path: String,
    query: String,
    host: Option<String>,
}

fn parse_head(head: &[u8]) -> Option<RequestHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || parts.next().is_some() || !target.starts_with('/') {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut host = None;
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("host") {
            if host.is_some() {
                return None; // two Host headers: refuse
            }
            host = Some(value.trim().to_owned());
        }
    }
    Some(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        host,
    })
}

async fn write_page(stream: &mut TcpStream, status: u16, title: &str, message: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — Tokenkeep</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>\
         body{{font-family:system-ui,-apple-system,'Segoe UI',Cantarell,Ubuntu,sans-serif;margin:0;display:flex;\
         min-height:100vh;align-items:center;justify-content:center;background:#f3f4f8;color:#1b1d29}}\
         main{{max-width:28rem;padding:2rem 2.25rem;background:#fff;border-radius:14px;box-shadow:0 1px 3px #0002}}\
         h1{{font-size:1.25rem;margin:0 0 .5rem}}p{{margin:0;line-height:1.5;color:#4a4f63}}\
         @media (prefers-color-scheme:dark){{body{{background:#15161d;color:#eceef6}}main{{background:#1f2130}}\
         p{{color:#b4b8cc}}}}</style></head><body><main><h1>{title}</h1><p>{message}</p></main></body></html>",
        title = html_escape(title),
        message = html_escape(message),
    );
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn raw_request(port: u16, request: String) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    fn get(path_and_query: &str, host: &str) -> String {
        format!("GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: test\r\n\r\n")
    }

    async fn start() -> (u16, String, tokio::task::JoinHandle<(Callback, Responder)>) {
        let listener = LoopbackListener::bind("127.0.0.1", None, "/callback").await.unwrap();
        let port = listener.redirect_uri().port().unwrap();
        assert_eq!(
            listener.redirect_uri().as_str(),
            format!("http://127.0.0.1:{port}/callback")
        );
        let state = SecretString::new("expected-state-value".into());
        let task = tokio::spawn(async move { listener.wait(&state).await });
        (port, format!("127.0.0.1:{port}"), task)
    }

    #[tokio::test]
    async fn hostile_and_stray_requests_are_answered_and_ignored() {
        let (port, host, task) = start().await;
        let cases = [
            (
                get("/callback?code=c&state=expected-state-value", "evil.example:80"),
                "400",
            ),
            (get("/callback?code=c&state=expected-state-value", "localhost:1"), "400"),
            (get("/callback?code=c&state=wrong", &host), "400"),
            (get("/callback?code=c", &host), "400"),
            (get("/favicon.ico", &host), "404"),
            (
                format!("POST /callback?code=c&state=expected-state-value HTTP/1.1\r\nHost: {host}\r\n\r\n"),
                "404",
            ),
            ("garbage\r\n\r\n".to_owned(), "400"),
            (
                format!(
                    "GET /callback HTTP/1.1\r\nHost: {host}\r\nX: {}\r\n\r\n",
                    "a".repeat(9000)
                ),
                "431",
            ),
        ];
        for (request, status) in cases {
            let response = raw_request(port, request.clone()).await;
            assert!(
                response.starts_with(&format!("HTTP/1.1 {status}")),
                "{request:.60} → {response:.40}"
            );
        }
        assert!(!task.is_finished(), "no stray request may end the wait");

        // A connection that never sends anything must not block the real callback.
        let _idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(
                get(
                    "/callback?code=the-code&state=expected-state-value&iss=http%3A%2F%2Fi",
                    &host,
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let (callback, responder) = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        match callback {
            Callback::Code { code, iss } => {
                assert_eq!(code.dangerously_expose(), "the-code");
                assert_eq!(iss.as_deref(), Some("http://i"));
            }
            other => panic!("unexpected {other:?}"),
        }
        responder.respond(200, "Connected", "You can close <this> tab.").await;
        let mut page = String::new();
        stream.read_to_string(&mut page).await.unwrap();
        assert!(page.starts_with("HTTP/1.1 200 OK"));
        assert!(page.contains("You can close &lt;this&gt; tab."), "{page}");
        assert!(page.contains("Cache-Control: no-store"));
        // The listener is gone: the port no longer accepts connections.
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    }

    /// F4: 146 idle connections used to fill the handlers and the browser's request waited ~90 s, until the code
    /// had expired. With 300 idle ones (and a few that trickle a byte and stall), the callback is served at once.
    #[tokio::test]
    async fn a_flood_of_idle_connections_does_not_delay_the_real_callback() {
        let (port, host, task) = start().await;
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        }
        for _ in 0..20 {
            let mut slow = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            slow.write_all(b"GET /callback?co").await.unwrap();
            idle.push(slow);
        }
        let started = std::time::Instant::now();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(get("/callback?code=the-code&state=expected-state-value", &host).as_bytes())
            .await
            .unwrap();
        let (callback, responder) = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the callback waited behind the flood")
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "served after {:?}",
            started.elapsed()
        );
        assert!(matches!(callback, Callback::Code { .. }), "{callback:?}");
        responder.respond(200, "Connected", "ok").await;
        drop(idle);
    }

    #[tokio::test]
    async fn provider_errors_and_malformed_callbacks_end_the_wait() {
        let (port, host, task) = start().await;
        tokio::spawn(raw_request(
            port,
            get(
                "/callback?error=access_denied&error_description=User%20said%20no%0A&state=expected-state-value",
                &host,
            ),
        ));
        let (callback, responder) = task.await.unwrap();
        match callback {
            Callback::Error {
                error,
                description,
                iss,
            } => {
                assert_eq!(error, "access_denied");
                assert_eq!(
                    description.as_deref(),
                    Some("User said no"),
                    "control characters are dropped"
                );
                assert_eq!(iss, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        responder.respond(400, "Declined", "x").await;

        let (port, host, task) = start().await;
        tokio::spawn(raw_request(
            port,
            get("/callback?state=expected-state-value&code=a&code=b", &host),
        ));
        assert!(matches!(task.await.unwrap().0, Callback::Malformed));
    }
}

/// Arbitrary bytes from the network (issue 12): the request-head and callback-query parsers answer every input
/// with a value or a refusal, never a panic, and what they accept is consistent with what they were given.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_request_head_parses_or_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some(head) = parse_head(&bytes) {
                prop_assert!(head.path.starts_with('/'));
                prop_assert!(!head.path.contains('?'));
            }
        }

        #[test]
        fn request_lines_built_from_any_text_parse_back(
            path in "/[ -~&&[^ ?]]{0,40}",
            query in "[ -~&&[^ ]]{0,80}",
            host in "[ -~&&[^\r\n]]{0,30}",
        ) {
            let head = format!("GET {path}?{query} HTTP/1.1\r\nHost: {host}\r\n\r\n");
            let parsed = parse_head(head.as_bytes()).expect("a well-formed head");
            prop_assert_eq!(parsed.path, path);
            prop_assert_eq!(parsed.query, query);
            prop_assert_eq!(parsed.host.as_deref(), Some(host.trim()));
        }

        #[test]
        fn any_callback_query_is_a_callback_or_a_state_mismatch(query in "\\PC{0,200}") {
            let state = SecretString::new("expected-state-value".into());
            let _ = callback_from_query(&query, &state);
        }

        #[test]
        fn a_callback_with_the_wrong_state_is_never_accepted(code in "[A-Za-z0-9]{1,20}", state in "[a-z]{1,20}") {
            let expected = SecretString::new("expected-state-value".into());
            let query = format!("code={code}&state={state}");
            prop_assert!(callback_from_query(&query, &expected).is_err());
        }
    }
}
