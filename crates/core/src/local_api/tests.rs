//! The socket in-process: a real listener in a temporary profile, a real vault, raw lines where the point is what
//! the server says (and does not say) to a client that did not prove itself.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

use super::*;
use crate::clock::SystemClock;
use crate::http::{BoxFuture, HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::keys::KeySource;
use crate::profile::{Profile, ProfilePaths};
use crate::secret::MasterKey;
use crate::store::{ConnectionStatus, PROGRAM_DAEMON, TokenSet};

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

/// A profile with one fresh connection, its refresher, and a server on its socket.
struct Fixture {
    _dir: tempfile::TempDir,
    paths: ProfilePaths,
    refresher: Arc<Refresher>,
    server: LocalServer,
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
        let mut meta = ConnectionMeta::new("demo", "alice");
        meta.scopes = vec!["openid".into(), "profile".into()];
        meta.expires_at = Some(4_000_000_000);
        meta.status = ConnectionStatus::Connected;
        let tokens = TokenSet {
            access: SecretString::new(ACCESS.into()),
            refresh: Some(SecretString::new(REFRESH.into())),
            id_token: None,
        };
        vault.put_connection(meta, &tokens).unwrap();
        let refresher = service::refresher(&paths, Arc::new(vault), Arc::new(Offline), Arc::new(SystemClock)).unwrap();
        let handler = Handler::new(refresher.clone(), paths.profile(), PROGRAM_DAEMON);
        let server = LocalServer::start(&paths, handler).await.unwrap();
        Self {
            _dir: dir,
            paths,
            refresher,
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
    wire::parse_answer::<serde_json::Value>(line.as_bytes()).unwrap_err()
}

#[tokio::test]
async fn a_wrong_or_missing_secret_gets_one_error_line_and_nothing_else() {
    let fx = Fixture::start().await;
    let wrong = br#"{"v":1,"secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}
"#;
    let missing = b"{\"v\":1}\n";
    // A request sent in place of the hello, and one pipelined behind a wrong hello: neither is answered.
    let request_first = b"{\"v\":1,\"op\":\"list\"}\n";
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
    let mut client = Client::connect_with(fx.server.socket_path(), &fx.secret())
        .await
        .unwrap();
    assert_eq!(client.list().await.unwrap().len(), 1);
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
    let welcome: Welcome = wire::parse_answer(welcome.trim_end().as_bytes()).unwrap();
    assert_eq!(
        (welcome.program.as_str(), welcome.profile.as_str()),
        (PROGRAM_DAEMON, "test")
    );
    let mut line = huge.clone();
    line.push(b'\n');
    let out = exchange(&mut stream, &[&line, b"{\"v\":1,\"op\":\"list\"}\n"]).await;
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
        .write_all(b"{\"v\":1,\"op\":\"rotate_key\"}\n")
        .await
        .unwrap();
    stream.read_line(&mut answer).await.unwrap();
    let error = error_of(answer.trim_end());
    assert_eq!(error.kind, ErrorKind::Unsupported);
    assert!(error.message.contains("app window"), "{error}");
    answer.clear();
    stream
        .get_mut()
        .write_all(b"{\"v\":1,\"op\":\"show\"}\n")
        .await
        .unwrap();
    stream.read_line(&mut answer).await.unwrap();
    assert_eq!(error_of(answer.trim_end()).kind, ErrorKind::Invalid);
    answer.clear();
    stream
        .get_mut()
        .write_all(b"{\"v\":1,\"op\":\"list\"}\n")
        .await
        .unwrap();
    stream.read_line(&mut answer).await.unwrap();
    let rows: Vec<ConnectionRow> = wire::parse_answer(answer.trim_end().as_bytes()).unwrap();
    assert_eq!(rows.len(), 1);

    // Another version, or a line that is not JSON: one error line, then the session ends.
    for bad in [&b"{\"v\":2,\"op\":\"list\"}\n"[..], b"list\n"] {
        let mut stream = fx.raw().await;
        let out = exchange(
            &mut stream,
            &[&wire::hello(&fx.secret()), b"\n", bad, b"{\"v\":1,\"op\":\"list\"}\n"],
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
    let vault = fx.refresher.vault();
    let mut client = Client::connect(&fx.paths).await.unwrap();
    assert_eq!(client.server().pid, std::process::id());

    assert_eq!(client.list().await.unwrap(), list(vault).unwrap());
    assert_eq!(client.verify().await.unwrap(), verify(vault).unwrap());
    assert_eq!(
        client.export_envelopes().await.unwrap(),
        export_envelopes(vault, "test").unwrap()
    );

    let shown = client.show("demo:ALICE", true).await.unwrap();
    let local = show(vault, "demo:alice", true).unwrap();
    assert_eq!(shown.data, local.data);
    let revealed: Vec<(&str, &str)> = shown
        .revealed
        .iter()
        .map(|r| (r.kind.as_str(), r.value.dangerously_expose()))
        .collect();
    assert_eq!(revealed, [("access_token", ACCESS), ("refresh_token", REFRESH)]);
    assert!(!format!("{shown:?}").contains("SECRET"), "{shown:?}");

    // Errors carry core's message and a kind; the session survives them.
    let missing = client.show("demo:nobody", false).await.unwrap_err();
    assert!(!missing.is_connection());
    assert!(
        missing.to_string().contains("no connection \"demo:nobody\""),
        "{missing}"
    );
    assert!(matches!(&missing, ClientError::Api(e) if e.kind == ErrorKind::Invalid));

    // The access token is fresh: returned as stored, no network.
    assert_eq!(client.token("demo:alice").await.unwrap().dangerously_expose(), ACCESS);
    // A forced refresh goes to the network, which is offline here: core's words, kind `failed`.
    let refused = client.refresh("demo:alice").await.unwrap_err();
    assert!(refused.to_string().contains("alice"), "{refused}");

    let gone = client.disconnect("demo:alice").await.unwrap();
    assert_eq!((gone.provider.as_str(), gone.account.as_str()), ("demo", "alice"));
    assert!(matches!(gone.revocation, RevocationInfo::Skipped { .. }), "{gone:?}");
    assert!(client.list().await.unwrap().is_empty());
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
    let handler = || Handler::new(fx.refresher.clone(), fx.paths.profile(), PROGRAM_DAEMON);
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
