//! The socket in-process: a real listener in a temporary profile, a real vault, raw lines where the point is what
//! the server says (and does not say) to a client that did not prove itself.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

use super::wire;
use super::*;
use crate::clock::{Clock as _, SystemClock};
use crate::http::{BoxFuture, HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::keys::KeySource;
use crate::ops::wire::Reply as _;
use crate::ops::{self, ConnectionEntry, LocalOps, Operations as _};
use crate::profile::{Profile, ProfilePaths};
use crate::provider::ProviderId;
use crate::refresh::Revocation;
use crate::secret::{MasterKey, SecretString};
use crate::store::{ConnectionMeta, ConnectionStatus, PROGRAM_DAEMON, TokenSet, Vault};

const ACCESS: &str = "access-token-SECRET-1f2e";
const REFRESH: &str = "refresh-token-SECRET-9a8b";

/// No network in unit tests: every request fails as if the provider were unreachable.
#[derive(Debug)]
struct Offline;

impl HttpClient for Offline {
    fn execute(&self, _request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        Box::pin(async {
            Err(HttpError::Unreachable {
                host: "provider.invalid".into(),
                reason: "offline test".into(),
            })
        })
    }
}

/// A profile with one fresh connection, its operations, and a server on its socket.
struct Fixture {
    _dir: tempfile::TempDir,
    paths: ProfilePaths,
    ops: Arc<LocalOps>,
    server: LocalServer,
}

fn demo() -> ProviderId {
    ProviderId::parse("demo").unwrap()
}

impl Fixture {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let paths = ProfilePaths::resolve(Profile::parse("test").unwrap(), Some(dir.path().into())).unwrap();
        paths.ensure().unwrap();
        let vault = Vault::open(
            &paths,
            KeySource::Headless(MasterKey::generate().unwrap()),
            Arc::new(SystemClock),
            PROGRAM_DAEMON,
        )
        .unwrap();
        let mut meta = ConnectionMeta::new(demo(), "alice");
        meta.scopes = vec!["openid".into(), "profile".into()];
        meta.expires_at = Some(4_000_000_000);
        meta.status = ConnectionStatus::Connected;
        let tokens = TokenSet {
            access: SecretString::new(ACCESS.into()),
            refresh: Some(SecretString::new(REFRESH.into())),
            id_token: None,
            dpop_key: None,
        };
        vault.put_connection(meta, &tokens).unwrap();
        let ops =
            Arc::new(LocalOps::new(paths.clone(), Arc::new(vault), Arc::new(Offline), Arc::new(SystemClock)).unwrap());
        let handler = Handler::new(ops.clone(), paths.profile(), PROGRAM_DAEMON);
        let server = LocalServer::start(&paths, handler).await.unwrap();
        Self {
            _dir: dir,
            paths,
            ops,
            server,
        }
    }

    fn secret(&self) -> SecretString {
        SecretString::new(std::fs::read_to_string(self.paths.dir().join(SECRET_FILE)).unwrap())
    }

    async fn raw(&self) -> BufReader<UnixStream> {
        BufReader::new(UnixStream::connect(self.server.socket_path()).await.unwrap())
    }
}

/// Sends `lines` and returns everything the server writes until it closes (or 3 s pass).
async fn exchange(stream: &mut BufReader<UnixStream>, lines: &[&[u8]]) -> String {
    for line in lines {
        stream.get_mut().write_all(line).await.unwrap();
    }
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(3), stream.read_to_string(&mut out))
        .await
        .expect("the server closes the session")
        .unwrap();
    out
}

fn error_of(line: &str) -> ApiError {
    ops::wire::parse_ok::<serde_json::Value>(line.as_bytes()).unwrap_err()
}

#[tokio::test]
async fn a_wrong_or_missing_secret_gets_one_error_line_and_nothing_else() {
    let fx = Fixture::start().await;
    let wrong = br#"{"v":1,"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
"#;
    let missing = b"{\"v\":1}\n";
    // A request sent in place of the hello, and one pipelined behind a wrong hello: neither is answered.
    let request_first = b"{\"v\":2,\"op\":\"list\"}\n";
    for lines in [&[&wrong[..], request_first][..], &[missing], &[request_first]] {
        let mut stream = fx.raw().await;
        let out = exchange(&mut stream, lines).await;
        let printed: Vec<&str> = out.lines().collect();
        assert_eq!(printed.len(), 1, "exactly one line, then close: {out:?}");
        let error = error_of(printed[0]);
        assert_eq!(error.kind, ErrorKind::Unauthorized, "{error:?}");
        assert!(!out.contains("alice") && !out.contains("demo"), "{out}");
    }
    // The real secret, in a client of our own, works on the same server.
    let client = Client::connect_with(fx.server.socket_path(), &fx.secret())
        .await
        .unwrap();
    assert_eq!(client.run(ops::List {}).await.unwrap().len(), 1);
}

/// F5: 40 idle connections of our own user filled the sessions and the CLI got "connection reset by peer". Idle
/// sessions — silent ones, and ones that said hello and nothing more — now make room for the real client.
#[tokio::test]
async fn idle_sessions_make_room_for_the_real_client() {
    let fx = Fixture::start().await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(fx.raw().await);
    }
    for _ in 0..40 {
        let mut stream = fx.raw().await;
        let hello = format!(
            "{{\"v\":{},\"secret\":\"{}\"}}\n",
            crate::ops::wire::PROTOCOL_VERSION,
            fx.secret().dangerously_expose()
        );
        stream.get_mut().write_all(hello.as_bytes()).await.unwrap();
        let mut welcome = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut stream, &mut welcome)
            .await
            .unwrap();
        assert!(welcome.contains("\"pid\""), "not welcomed: {welcome}");
        idle.push(stream);
    }
    let started = std::time::Instant::now();
    let client = Client::connect(&fx.paths)
        .await
        .expect("the real client gets a session");
    assert_eq!(client.run(ops::List {}).await.unwrap().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    drop(idle);
}

#[tokio::test]
async fn an_oversized_line_is_refused_and_ends_the_session() {
    let fx = Fixture::start().await;
    let huge = vec![b'x'; MAX_REQUEST_LINE + 10];
    // Before the hello: refused without a word about the store.
    let mut stream = fx.raw().await;
    let out = exchange(&mut stream, &[&huge]).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(error_of(&out).kind, ErrorKind::Protocol);

    // After the hello: one error line, then the session ends (the rest of the line is never parsed).
    let mut stream = fx.raw().await;
    let hello = wire::hello(&fx.secret());
    stream.get_mut().write_all(&hello).await.unwrap();
    stream.get_mut().write_all(b"\n").await.unwrap();
    let mut welcome = String::new();
    stream.read_line(&mut welcome).await.unwrap();
    let welcome = Welcome::decode(welcome.trim_end().as_bytes()).unwrap();
    assert_eq!(
        (welcome.program.as_str(), welcome.profile.as_str()),
        (PROGRAM_DAEMON, "test")
    );
    // After it, the limit is the session's (an `api` call carries its body).
    let mut line = vec![b'x'; MAX_SESSION_LINE + 10];
    line.push(b'\n');
    let out = exchange(&mut stream, &[&line, b"{\"v\":2,\"op\":\"list\"}\n"]).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    let error = error_of(&out);
    assert_eq!(error.kind, ErrorKind::Protocol);
    assert!(error.message.contains("longer than"), "{error}");
}

#[tokio::test]
async fn unknown_ops_and_other_versions_are_errors() {
    let fx = Fixture::start().await;
    let mut stream = fx.raw().await;
    stream.get_mut().write_all(&wire::hello(&fx.secret())).await.unwrap();
    stream.get_mut().write_all(b"\n").await.unwrap();
    let mut line = String::new();
    stream.read_line(&mut line).await.unwrap();

    // An unknown op is answered and the session goes on.
    let mut answer = String::new();
    stream
        .get_mut()
        .write_all(b"{\"v\":2,\"op\":\"rotate_key\"}\n")
        .await
        .unwrap();
    stream.read_line(&mut answer).await.unwrap();
    let error = error_of(answer.trim_end());
    assert_eq!(error.kind, ErrorKind::Unsupported);
    assert!(error.message.contains("app window"), "{error}");
    answer.clear();
    stream
        .get_mut()
        .write_all(b"{\"v\":2,\"op\":\"show\"}\n")
        .await
        .unwrap();
    stream.read_line(&mut answer).await.unwrap();
    assert_eq!(error_of(answer.trim_end()).kind, ErrorKind::Invalid);
    answer.clear();
    stream
        .get_mut()
        .write_all(b"{\"v\":2,\"op\":\"list\"}\n")
        .await
        .unwrap();
    stream.read_line(&mut answer).await.unwrap();
    let rows = Vec::<ConnectionEntry>::decode(answer.trim_end().as_bytes()).unwrap();
    assert_eq!(rows.len(), 1);

    // Another version (the previous one), or a line that is not JSON: one error line, then the session ends.
    for bad in [&b"{\"v\":1,\"op\":\"list\"}\n"[..], b"list\n"] {
        let mut stream = fx.raw().await;
        let out = exchange(
            &mut stream,
            &[&wire::hello(&fx.secret()), b"\n", bad, b"{\"v\":2,\"op\":\"list\"}\n"],
        )
        .await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "welcome, one error, close: {out}");
        assert_eq!(error_of(lines[1]).kind, ErrorKind::Protocol);
    }
}

#[tokio::test]
async fn the_client_gets_what_the_local_operations_return() {
    let fx = Fixture::start().await;
    let local = &fx.ops;
    let client = Client::connect(&fx.paths).await.unwrap();
    assert_eq!(client.server().pid, std::process::id());

    assert_eq!(
        client.run(ops::List {}).await.unwrap(),
        local.run(ops::List {}).await.unwrap()
    );
    assert_eq!(
        client.run(ops::Verify {}).await.unwrap(),
        local.run(ops::Verify {}).await.unwrap()
    );
    assert_eq!(
        client.run(ops::ExportEnvelopes {}).await.unwrap(),
        local.run(ops::ExportEnvelopes {}).await.unwrap()
    );

    let show = |connection: &str| ops::Show {
        connection: connection.into(),
        reveal: true,
    };
    let shown = client.run(show("demo:ALICE")).await.unwrap();
    let here = local.run(show("demo:alice")).await.unwrap();
    assert_eq!(shown.inspection, here.inspection);
    let revealed: Vec<(&str, &str)> = shown
        .revealed
        .iter()
        .map(|r| (r.kind.field(), r.value.dangerously_expose()))
        .collect();
    assert_eq!(revealed, [("access_token", ACCESS), ("refresh_token", REFRESH)]);
    assert!(!format!("{shown:?}").contains("SECRET"), "{shown:?}");

    // Errors carry core's message and a kind; the session survives them.
    let missing = client
        .run(ops::Show {
            connection: "demo:nobody".into(),
            reveal: false,
        })
        .await
        .unwrap_err();
    assert!(!missing.is_connection());
    assert!(
        missing.to_string().contains("no connection \"demo:nobody\""),
        "{missing}"
    );
    assert!(matches!(&missing, ClientError::Api(e) if e.kind == ErrorKind::Invalid));

    // The access token is fresh: returned as stored, no network.
    let token = client
        .run(ops::Token {
            connection: "demo:alice".into(),
        })
        .await
        .unwrap();
    assert_eq!(token.0.dangerously_expose(), ACCESS);
    assert!(!format!("{token:?}").contains("SECRET"));
    // A forced refresh goes to the network, which is offline here: core's words, kind `failed`.
    let refused = client
        .run(ops::Refresh {
            connection: "demo:alice".into(),
        })
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("alice"), "{refused}");

    let gone = client
        .run(ops::Disconnect {
            connection: "demo:alice".into(),
            if_revocation_fails: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!((gone.provider.as_str(), gone.account.as_str()), ("demo", "alice"));
    assert!(matches!(gone.revocation, Revocation::Skipped { .. }), "{gone:?}");
    assert!(client.run(ops::List {}).await.unwrap().is_empty());
}

#[tokio::test]
async fn files_are_private_stale_sockets_are_replaced_and_close_removes_both() {
    let fx = Fixture::start().await;
    let socket = fx.paths.dir().join(SOCKET_FILE);
    let secret = fx.paths.dir().join(SECRET_FILE);
    for file in [&socket, &secret] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let first = std::fs::read_to_string(&secret).unwrap();
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &first)
            .unwrap()
            .len(),
        32
    );

    // A live socket is not taken over.
    let handler = || Handler::new(fx.ops.clone(), fx.paths.profile(), PROGRAM_DAEMON);
    let busy = LocalServer::start(&fx.paths, handler()).await.unwrap_err();
    assert_eq!(busy.kind(), std::io::ErrorKind::AddrInUse);

    // A crash leaves both files: the next start replaces them, with a new secret, and the old one is refused.
    fx.server.simulate_crash().await;
    assert!(socket.exists(), "the stale socket is still there");
    let stale = Client::connect(&fx.paths).await.unwrap_err();
    assert!(matches!(stale, ClientError::Unreachable { .. }), "{stale}");
    let again = LocalServer::start(&fx.paths, handler()).await.unwrap();
    assert_ne!(std::fs::read_to_string(&secret).unwrap(), first);
    let old = Client::connect_with(&socket, &SecretString::new(first))
        .await
        .unwrap_err();
    assert!(
        matches!(&old, ClientError::Api(e) if e.kind == ErrorKind::Unauthorized),
        "{old}"
    );
    assert!(old.is_connection());
    Client::connect(&fx.paths).await.unwrap();

    again.close();
    assert!(!socket.exists() && !secret.exists());
    again.close(); // idempotent
}

/// Answers every token request with a new access token for an hour, and counts them.
#[derive(Debug, Default)]
struct CountingProvider {
    token_requests: std::sync::atomic::AtomicUsize,
}

impl HttpClient for CountingProvider {
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        if request.uri().path().ends_with("/token") {
            self.token_requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Box::pin(async {
            let body = br#"{"access_token":"access-token-SECRET-new","token_type":"Bearer","expires_in":3600}"#;
            Ok(http::Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .unwrap())
        })
    }
}

/// Regression (the socket held the `Refresher`, not the engine): a refresh asked for through the socket left the
/// engine's plan as it was, so the engine refreshed the connection again at its old due time, a redundant request
/// to the provider (and, with rotating refresh tokens, a needless rotation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_through_the_socket_replans_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ProfilePaths::resolve(Profile::parse("test").unwrap(), Some(dir.path().into())).unwrap();
    paths.ensure().unwrap();
    std::fs::write(paths.config_file(), "[demo]\nissuer = \"http://127.0.0.1:9\"\n").unwrap();
    let vault = Vault::open(
        &paths,
        KeySource::Headless(MasterKey::generate().unwrap()),
        Arc::new(SystemClock),
        PROGRAM_DAEMON,
    )
    .unwrap();
    // Issued just now for four seconds: the engine plans its refresh about two seconds from now (half the
    // lifetime, less up to 20 % jitter).
    let now = SystemClock.unix_secs();
    let mut meta = ConnectionMeta::new(demo(), "alice");
    meta.last_refresh_at = Some(now);
    meta.expires_at = Some(now + 4);
    let tokens = TokenSet {
        access: SecretString::new(ACCESS.into()),
        refresh: Some(SecretString::new(REFRESH.into())),
        id_token: None,
        dpop_key: None,
    };
    vault.put_connection(meta, &tokens).unwrap();
    let provider = Arc::new(CountingProvider::default());
    let ops = Arc::new(LocalOps::new(paths.clone(), Arc::new(vault), provider.clone(), Arc::new(SystemClock)).unwrap());
    ops.engine().start();
    let handler = Handler::new(ops.clone(), paths.profile(), PROGRAM_DAEMON);
    let _server = LocalServer::start(&paths, handler).await.unwrap();

    let client = Client::connect(&paths).await.unwrap();
    let refreshed = client
        .run(ops::Refresh {
            connection: "demo:alice".into(),
        })
        .await
        .unwrap();
    assert!(refreshed.refreshed, "{refreshed:?}");
    // Past the old due time: the token now lives for an hour, so nothing may be due.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let requests = provider.token_requests.load(std::sync::atomic::Ordering::SeqCst);
    ops.engine().stop(Duration::from_secs(1)).await;
    assert_eq!(
        requests, 1,
        "only the refresh asked for through the socket reaches the provider"
    );
}
