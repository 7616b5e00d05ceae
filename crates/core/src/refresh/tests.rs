//! Unit tests of the refresher and engine against a scripted provider.
//!
//! The provider is [`FakeHttp`]: it records every request (URL, parsed form, `Authorization`) and answers with
//! whatever the test's responder decides, optionally held behind a [`Gate`] until the test releases it, which is how
//! the races below are made deterministic. Engine tests run on tokio's paused clock with a wall clock derived from
//! it ([`PausedWallClock`]), so minutes pass in microseconds and every due time is exact.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::sync::watch;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::http::{BoxFuture, HttpError, HttpRequest, HttpResponse};
use crate::keys::{KeySource, MemoryKeyStore};
use crate::profile::{Profile, ProfilePaths};
use crate::provider::config::ProfileConfig;
use crate::provider::{ProviderId, ProviderSpec};
use crate::store::PROGRAM_CLI;

/// The wall-clock "now" of every test (Unix seconds).
const NOW: u64 = 1_700_000_000;
const CLIENT_ID: &str = "tokenkeep-client";
const CLIENT_SECRET: &str = "client-secret-Zq81vT4m";
const OLD_ACCESS: &str = "old-access-7f3a9c1e5b2d";
const OLD_REFRESH: &str = "old-refresh-4b8e0d6a9c13";
const NEW_ACCESS: &str = "new-access-a1c3e5f7b9d0";
const NEW_REFRESH: &str = "new-refresh-0e2c4a6b8d1f";

/// Public client, with a revocation endpoint.
const ACME: &str = "acme";
/// Confidential client (`client_secret_basic`), with a revocation endpoint.
const BASIC: &str = "basic-idp";
/// Public client without a revocation endpoint.
const NO_REVOKE: &str = "no-revoke";
/// Reddit's dialect: Basic with the id and an empty password, a User-Agent, errors as HTTP 200.
const BASIC_ID: &str = "basic-id-idp";
/// Twitch's dialect: revocation of the access token with the client id only, `{status, message}` errors.
const ACCESS_REVOKE: &str = "access-revoke";
/// Instagram's dialect: refresh with the access token by GET, once it is a day old.
const IG: &str = "ig-style";
/// Kick's dialect: revocation parameters in the query, `token_hint_type`, no client authentication.
const QUERY_REVOKE: &str = "query-revoke";
/// Twitch's validation rule: the access token is checked at start and hourly (`Authorization: OAuth …`).
const VALIDATE: &str = "validate-style";
const MANAGE_URL: &str = "https://provider.example/connections";
/// An AT Protocol server (Bluesky's profile): every token response names the account's DID.
const ATP: &str = "atp";
const ALICE_DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const MALLORY_DID: &str = "did:plc:mmmmmmmmmmmmmmmmmmmmmmmm";

// ---------------------------------------------------------------------------------------------------------------
// The scripted provider
// ---------------------------------------------------------------------------------------------------------------

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    url: String,
    method: String,
    form: BTreeMap<String, String>,
    authorization: Option<String>,
    user_agent: Option<String>,
    /// The wall clock (the refresher's) when the request arrived.
    wall: SystemTime,
    /// Tokio's clock when the request arrived (paused in engine tests).
    at: tokio::time::Instant,
}

impl Seen {
    fn is_token(&self) -> bool {
        self.url.ends_with("/token") || self.url.contains("/refresh_access_token")
    }

    fn is_revoke(&self) -> bool {
        self.url.ends_with("/revoke") || self.url.contains("/revoke?")
    }

    /// The query parameters of the request's URL.
    fn query(&self) -> BTreeMap<String, String> {
        let url = Url::parse(&self.url).expect("an absolute URL");
        url.query_pairs().into_owned().collect()
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.form.get(name).map(String::as_str)
    }
}

/// A response held until the test releases it. `reached` tells the test the request is out.
#[derive(Debug)]
struct Gate {
    reached: watch::Sender<bool>,
    open: watch::Sender<bool>,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            reached: watch::channel(false).0,
            open: watch::channel(false).0,
        })
    }

    /// Waits until a request has arrived at this gate.
    async fn reached(&self) {
        let mut reached = self.reached.subscribe();
        reached.wait_for(|r| *r).await.expect("the gate lives");
    }

    /// Lets the held response go.
    fn open(&self) {
        self.open.send_replace(true);
    }

    async fn pass(&self) {
        self.reached.send_replace(true);
        let mut open = self.open.subscribe();
        open.wait_for(|o| *o).await.expect("the gate lives");
    }
}

/// What the fake answers.
#[derive(Debug, Clone)]
enum Answer {
    Http {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// The connection fails (`HttpError::Unreachable`).
    Network,
    /// `inner`, once `gate` is opened.
    Held(Arc<Gate>, Box<Answer>),
    /// `inner`, after yielding to the scheduler `n` times (spreads interleavings in the race tests).
    Yield(usize, Box<Answer>),
}

impl Answer {
    fn json(status: u16, body: &str) -> Self {
        Self::Http {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_owned(),
        }
    }

    fn tokens(access: &str, refresh: Option<&str>, expires_in: u64) -> Self {
        let refresh = refresh.map_or_else(String::new, |r| format!(r#","refresh_token":"{r}""#));
        Self::json(
            200,
            &format!(r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{expires_in}{refresh}}}"#),
        )
    }

    fn oauth_error(status: u16, code: &str) -> Self {
        Self::json(status, &format!(r#"{{"error":"{code}"}}"#))
    }

    fn ok() -> Self {
        Self::json(200, "{}")
    }

    fn held(gate: &Arc<Gate>, inner: Self) -> Self {
        Self::Held(gate.clone(), Box::new(inner))
    }

    async fn into_response(mut self, host: String) -> Result<HttpResponse, HttpError> {
        loop {
            match self {
                Self::Held(gate, inner) => {
                    gate.pass().await;
                    self = *inner;
                }
                Self::Yield(n, inner) => {
                    for _ in 0..n {
                        tokio::task::yield_now().await;
                    }
                    self = *inner;
                }
                Self::Network => {
                    return Err(HttpError::Unreachable {
                        host,
                        reason: "connection refused".into(),
                    });
                }
                Self::Http { status, headers, body } => {
                    let mut response = http::Response::builder().status(status);
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    return Ok(response.body(body.into_bytes()).expect("a valid response"));
                }
            }
        }
    }
}

type Responder = Box<dyn FnMut(&Seen) -> Answer + Send>;

/// The scripted provider: records every request and answers through the test's responder.
struct FakeHttp {
    clock: Arc<dyn Clock>,
    seen: Mutex<Vec<Seen>>,
    responder: Mutex<Responder>,
    /// Bumped on every request, so tests can await "the fake saw …" instead of sleeping.
    count: watch::Sender<usize>,
}

impl std::fmt::Debug for FakeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHttp").finish_non_exhaustive()
    }
}

impl FakeHttp {
    /// By default the token endpoint rotates to the `NEW_*` tokens (an hour) and revocation succeeds.
    fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            seen: Mutex::default(),
            responder: Mutex::new(Box::new(default_answer)),
            count: watch::channel(0).0,
        })
    }

    /// Answers every request with `f`.
    fn respond(&self, f: impl FnMut(&Seen) -> Answer + Send + 'static) {
        *self.responder.lock().unwrap_or_else(PoisonError::into_inner) = Box::new(f);
    }

    /// Answers token requests with `answers` in order (then with HTTP 599, which no test expects); revocations
    /// succeed.
    fn token_script(&self, answers: impl IntoIterator<Item = Answer>) {
        let mut queue: VecDeque<Answer> = answers.into_iter().collect();
        self.respond(move |seen| {
            if seen.is_token() {
                queue.pop_front().unwrap_or_else(|| Answer::json(599, "{}"))
            } else {
                Answer::ok()
            }
        });
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn token_requests(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_token).collect()
    }

    fn revocations(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_revoke).collect()
    }

    /// Waits until the requests seen so far satisfy `done`.
    async fn wait_for(&self, done: impl Fn(&[Seen]) -> bool) {
        let mut count = self.count.subscribe();
        loop {
            if done(&self.seen()) {
                return;
            }
            count.changed().await.expect("the fake lives");
        }
    }
}

fn default_answer(seen: &Seen) -> Answer {
    if seen.is_token() {
        Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600)
    } else {
        Answer::ok()
    }
}

impl HttpClient for FakeHttp {
    fn execute(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, HttpError>> {
        let seen = Seen {
            url: request.uri().to_string(),
            method: request.method().to_string(),
            form: url::form_urlencoded::parse(request.body()).into_owned().collect(),
            authorization: request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.to_str().expect("ASCII header").to_owned()),
            user_agent: request
                .headers()
                .get(http::header::USER_AGENT)
                .map(|v| v.to_str().expect("ASCII header").to_owned()),
            wall: self.clock.now(),
            at: tokio::time::Instant::now(),
        };
        let answer = (self.responder.lock().unwrap_or_else(PoisonError::into_inner))(&seen);
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).push(seen);
        self.count.send_modify(|n| *n += 1);
        let host = request.uri().authority().map(ToString::to_string).unwrap_or_default();
        Box::pin(answer.into_response(host))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Clocks, vault, catalog
// ---------------------------------------------------------------------------------------------------------------

/// A wall clock that moves with tokio's (paused) clock, plus jumps the test makes: tokio's timers and the engine's
/// wall-clock due times then agree, as they do in production between suspends, while a jump models a suspend or a
/// clock change. (A [`ManualClock`] would stand still while paused tokio time auto-advances, and the engine would
/// sleep through a due time forever.)
#[derive(Debug)]
struct PausedWallClock {
    start: tokio::time::Instant,
    jumped: Mutex<Duration>,
}

impl PausedWallClock {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            start: tokio::time::Instant::now(),
            jumped: Mutex::default(),
        })
    }

    /// Moves the wall clock forward without tokio's clock moving (a suspend, as tokio sees it).
    fn jump(&self, by: Duration) {
        *self.jumped.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for PausedWallClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH
            + Duration::from_secs(NOW)
            + self.start.elapsed()
            + *self.jumped.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn spec(id: &str, extra: &str) -> ProviderSpec {
    ProviderSpec::from_toml(
        id,
        &format!(
            r#"
            id = "{id}"
            display_name = "Test {id}"
            authorization_endpoint = "http://127.0.0.1:1/authorize"
            token_endpoint = "http://127.0.0.1:1/token"
            identity = {{ source = "id_token" }}
            {extra}
            "#
        ),
    )
    .expect("a valid provider")
}

fn catalog() -> Catalog {
    let revoke = format!("revocation_endpoint = \"http://127.0.0.1:1/revoke\"\nmanage_access_url = \"{MANAGE_URL}\"");
    let mut config = ProfileConfig::default();
    config.add_custom_provider(spec(ACME, &revoke)).unwrap();
    config
        .add_custom_provider(spec(BASIC, &format!("client_auth = \"client_secret_basic\"\n{revoke}")))
        .unwrap();
    config
        .add_custom_provider(spec(NO_REVOKE, &format!("manage_access_url = \"{MANAGE_URL}\"")))
        .unwrap();
    config
        .add_custom_provider(spec(
            BASIC_ID,
            &format!(
                "client_auth = \"client_id_basic\"\n{revoke}\n[http_headers]\nUser-Agent = \"desktop:io.tokenkeep:{{version}} (test)\""
            ),
        ))
        .unwrap();
    config
        .add_custom_provider(spec(
            ACCESS_REVOKE,
            &format!(
                "client_auth = \"client_secret_post\"\n{revoke}\n[revocation]\ntokens = [\"access\"]\nhint_param = \"\"\nclient_auth = \"client_id\"\n[error_codes]\n\"invalid refresh token\" = \"invalid_grant\""
            ),
        ))
        .unwrap();
    config
        .add_custom_provider(spec(
            IG,
            "client_auth = \"client_secret_post\"\n[refresh]\ngrant = \"access_token\"\nmethod = \"GET\"\nurl = \"http://127.0.0.1:1/refresh_access_token\"\nparams = { grant_type = \"ig_refresh_token\", access_token = \"{access_token}\" }\nmin_age_secs = 86400",
        ))
        .unwrap();
    config
        .add_custom_provider(spec(
            QUERY_REVOKE,
            &format!(
                "{revoke}\n[revocation]\nparams_in = \"query\"\nhint_param = \"token_hint_type\"\nclient_auth = \"none\""
            ),
        ))
        .unwrap();
    config
        .add_custom_provider(spec(
            VALIDATE,
            "[validation]\nurl = \"http://127.0.0.1:1/validate\"\ninterval_secs = 3600\nscheme = \"OAuth\"",
        ))
        .unwrap();
    config
        .add_custom_provider(
            ProviderSpec::from_toml(
                ATP,
                &format!(
                    r#"
                    id = "{ATP}"
                    display_name = "Test atproto"
                    issuer = "http://127.0.0.1:1"
                    authorization_endpoint = "http://127.0.0.1:1/authorize"
                    token_endpoint = "http://127.0.0.1:1/token"
                    pushed_authorization_request_endpoint = "http://127.0.0.1:1/par"
                    par = "required"
                    dpop = "required"
                    identity = {{ source = "atproto" }}
                    [atproto]
                    plc_directory = "http://127.0.0.1:1"
                    "#
                ),
            )
            .expect("a valid provider"),
        )
        .unwrap();
    for id in [
        ACME,
        BASIC,
        NO_REVOKE,
        BASIC_ID,
        ACCESS_REVOKE,
        IG,
        QUERY_REVOKE,
        VALIDATE,
        ATP,
    ] {
        config
            .set_client(&ProviderId::parse(id).unwrap(), CLIENT_ID, None)
            .unwrap();
    }
    Catalog::from_config(&config).unwrap()
}

/// A vault in a temporary profile, a refresher over it, and the fake provider.
struct Harness {
    dir: tempfile::TempDir,
    keys: MemoryKeyStore,
    clock: Arc<dyn Clock>,
    vault: Arc<Vault>,
    http: Arc<FakeHttp>,
    refresher: Arc<Refresher>,
}

impl Harness {
    /// With a [`ManualClock`] standing at [`NOW`].
    fn new() -> Self {
        Self::with_clock(Arc::new(ManualClock::at_unix(NOW)))
    }

    fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::new();
        let vault = Arc::new(open_vault(dir.path(), &keys, clock.clone()));
        for id in [BASIC, ACCESS_REVOKE, IG] {
            vault
                .set_client_secret(
                    &ProviderId::parse(id).unwrap(),
                    &SecretString::new(CLIENT_SECRET.into()),
                )
                .unwrap();
        }
        let http = FakeHttp::new(clock.clone());
        let refresher = Arc::new(Refresher::new(
            vault.clone(),
            catalog(),
            http.clone(),
            clock.clone(),
            RefreshPolicy::default(),
        ));
        Self {
            dir,
            keys,
            clock,
            vault,
            http,
            refresher,
        }
    }

    /// Stores a connection at `provider` whose access token expires `expires_in` seconds from now (negative:
    /// already expired), with the `OLD_*` tokens.
    fn connect(&self, provider: &str, expires_in: i64, status: ConnectionStatus) -> ConnectionId {
        self.connect_with(provider, expires_in, status, OLD_ACCESS, Some(OLD_REFRESH))
    }

    fn connect_with(
        &self,
        provider: &str,
        expires_in: i64,
        status: ConnectionStatus,
        access: &str,
        refresh: Option<&str>,
    ) -> ConnectionId {
        let now = self.clock.unix_secs();
        let meta = ConnectionMeta {
            expires_at: Some(now.saturating_add_signed(expires_in)),
            last_refresh_at: Some(now.saturating_add_signed(expires_in) - 3600),
            status,
            ..ConnectionMeta::new(ProviderId::parse(provider).unwrap(), "ada@example.com")
        };
        let tokens = TokenSet {
            access: SecretString::new(access.into()),
            refresh: refresh.map(|r| SecretString::new(r.into())),
            id_token: None,
            dpop_key: None,
        };
        self.vault.put_connection(meta, &tokens).unwrap()
    }

    fn meta(&self, id: ConnectionId) -> ConnectionMeta {
        self.vault.get_meta(id).unwrap()
    }

    /// The stored (access, refresh) tokens.
    fn tokens(&self, id: ConnectionId) -> (String, Option<String>) {
        let tokens = self.vault.tokens(id).unwrap();
        (
            tokens.access.dangerously_expose().to_owned(),
            tokens.refresh.map(|r| r.dangerously_expose().to_owned()),
        )
    }
}

fn open_vault(root: &std::path::Path, keys: &MemoryKeyStore, clock: Arc<dyn Clock>) -> Vault {
    let paths = ProfilePaths::resolve(Profile::parse("dev").unwrap(), Some(root.to_owned())).unwrap();
    Vault::open(&paths, KeySource::Keyring(Arc::new(keys.clone())), clock, PROGRAM_CLI).unwrap()
}

fn drain(events: &mut broadcast::Receiver<EngineEvent>) -> Vec<EngineEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

fn attentions(events: &[EngineEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, EngineEvent::Attention { .. }))
        .count()
}

fn statuses(events: &[EngineEvent]) -> Vec<ConnectionStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Status(change) => Some(change.meta.status),
            _ => None,
        })
        .collect()
}

/// Copies `from` into `to` recursively: a snapshot of the bytes on disk, as a crash would leave them.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 1–4: success, durability, the in-flight marker, single-flight
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_replaces_the_tokens_and_sends_the_refresh_grant() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    let mut events = h.refresher.subscribe();

    let outcome = h.refresher.refresh(id, Trigger::Timer).await.unwrap();

    assert_eq!(
        outcome,
        RefreshOutcome::Refreshed {
            expires_at: Some(NOW + 3600),
            rotated: true
        }
    );
    assert_eq!(h.tokens(id), (NEW_ACCESS.into(), Some(NEW_REFRESH.into())));
    let meta = h.meta(id);
    assert_eq!(meta.status, ConnectionStatus::Connected);
    assert_eq!(meta.expires_at, Some(NOW + 3600));
    assert_eq!(meta.last_refresh_at, Some(NOW));
    assert_eq!(meta.last_error, None);
    assert_eq!(
        statuses(&drain(&mut events)),
        [ConnectionStatus::Refreshing, ConnectionStatus::Connected]
    );

    let requests = h.http.seen();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.url, "http://127.0.0.1:1/token");
    assert_eq!(request.field("grant_type"), Some("refresh_token"));
    assert_eq!(request.field("refresh_token"), Some(OLD_REFRESH));
    assert_eq!(
        request.field("client_id"),
        Some(CLIENT_ID),
        "a public client names itself"
    );
    assert_eq!(request.field("client_secret"), None);
    assert_eq!(request.authorization, None);
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_http_basic() {
    let h = Harness::new();
    let id = h.connect(BASIC, -5, ConnectionStatus::Connected);

    h.refresher.refresh(id, Trigger::Timer).await.unwrap();

    let requests = h.http.token_requests();
    assert_eq!(requests.len(), 1);
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(&*format!("Basic {expected}"))
    );
    assert_eq!(
        requests[0].field("client_secret"),
        None,
        "the secret is not also in the body"
    );
    assert_eq!(requests[0].field("refresh_token"), Some(OLD_REFRESH));
    assert_eq!(h.tokens(id).0, NEW_ACCESS);
}

#[tokio::test]
async fn a_rotated_refresh_token_is_on_disk_when_the_refresh_returns() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);

    h.refresher.refresh(id, Trigger::Timer).await.unwrap();
    // The bytes on disk at this moment, as a crash right now would leave them (the live vault may still hold
    // unflushed writes in memory; the copy has only what reached the files).
    let snapshot = tempfile::tempdir().unwrap();
    copy_dir(h.dir.path(), snapshot.path());

    assert_eq!(h.tokens(id).1.as_deref(), Some(NEW_REFRESH), "the live vault");
    let reopened = open_vault(snapshot.path(), &h.keys, h.clock.clone());
    let tokens = reopened.tokens(id).unwrap();
    assert_eq!(
        tokens.refresh.as_ref().map(SecretString::dangerously_expose),
        Some(NEW_REFRESH),
        "the rotated refresh token is durable"
    );
    assert_eq!(tokens.access.dangerously_expose(), NEW_ACCESS);
    assert_eq!(reopened.get_meta(id).unwrap().status, ConnectionStatus::Connected);
}

#[tokio::test]
async fn without_a_new_refresh_token_the_old_one_is_kept() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    h.http.token_script([Answer::tokens(NEW_ACCESS, None, 1800)]);

    let outcome = h.refresher.refresh(id, Trigger::Timer).await.unwrap();

    assert_eq!(
        outcome,
        RefreshOutcome::Refreshed {
            expires_at: Some(NOW + 1800),
            rotated: false
        }
    );
    assert_eq!(h.tokens(id), (NEW_ACCESS.into(), Some(OLD_REFRESH.into())));
    // The next refresh still has a refresh token to send.
    h.http
        .token_script([Answer::tokens("newer-access-55aa66bb", None, 1800)]);
    h.refresher.refresh(id, Trigger::User).await.unwrap();
    assert_eq!(h.http.token_requests()[1].field("refresh_token"), Some(OLD_REFRESH));
}

#[tokio::test]
async fn the_in_flight_marker_is_stored_while_the_request_is_out() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    let gate = Gate::new();
    h.http
        .token_script([Answer::held(&gate, Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600))]);

    let refresher = h.refresher.clone();
    let refresh = tokio::spawn(async move { refresher.refresh(id, Trigger::Timer).await });
    gate.reached().await;

    assert_eq!(h.meta(id).status, ConnectionStatus::Refreshing);
    let snapshot = tempfile::tempdir().unwrap();
    copy_dir(h.dir.path(), snapshot.path());
    let on_disk = open_vault(snapshot.path(), &h.keys, h.clock.clone());
    assert_eq!(
        on_disk.get_meta(id).unwrap().status,
        ConnectionStatus::Refreshing,
        "the marker is flushed before the request leaves"
    );
    assert_eq!(h.tokens(id).1.as_deref(), Some(OLD_REFRESH));

    gate.open();
    refresh.await.unwrap().unwrap();
    assert_eq!(h.meta(id).status, ConnectionStatus::Connected);
}

#[tokio::test]
async fn concurrent_access_token_calls_share_one_refresh() {
    let h = Harness::new();
    let id = h.connect(ACME, -10, ConnectionStatus::Connected);
    let gate = Gate::new();
    h.http
        .token_script([Answer::held(&gate, Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600))]);

    // The first poll of `join!` takes both calls as far as they go — one to the held request, the other to the
    // single-flight lock — before the gate opens.
    let release = async {
        gate.reached().await;
        gate.open();
    };
    let (a, b, ()) = tokio::join!(h.refresher.access_token(id), h.refresher.access_token(id), release);

    assert_eq!(a.unwrap().dangerously_expose(), NEW_ACCESS);
    assert_eq!(b.unwrap().dangerously_expose(), NEW_ACCESS);
    assert_eq!(h.http.token_requests().len(), 1, "exactly one token request");
}

#[tokio::test]
async fn a_fresh_token_is_not_refreshed_on_demand() {
    let h = Harness::new();
    let id = h.connect(ACME, 3600, ConnectionStatus::Connected);

    let outcome = h.refresher.refresh(id, Trigger::OnDemand).await.unwrap();
    assert_eq!(
        outcome,
        RefreshOutcome::StillFresh {
            expires_at: Some(NOW + 3600)
        }
    );
    assert_eq!(
        h.refresher.access_token(id).await.unwrap().dangerously_expose(),
        OLD_ACCESS
    );
    assert!(h.http.seen().is_empty());
    // "Refresh now" does refresh a fresh token.
    h.refresher.refresh(id, Trigger::User).await.unwrap();
    assert_eq!(h.http.token_requests().len(), 1);
}

/// The timer fires at a time planned earlier; a connection refreshed since (by "Refresh now", or a token asked
/// for through the CLI) is not due any more, and the timer must not refresh it a second time.
#[tokio::test]
async fn a_timer_refresh_of_a_connection_that_is_no_longer_due_sends_nothing() {
    let h = Harness::new();
    let id = h.connect(ACME, 3600, ConnectionStatus::Connected);
    let outcome = h.refresher.refresh(id, Trigger::Timer).await.unwrap();
    assert_eq!(
        outcome,
        RefreshOutcome::StillFresh {
            expires_at: Some(NOW + 3600)
        }
    );
    assert!(h.http.seen().is_empty());
    // Within the margin it is due, and the timer does refresh.
    let due = h.connect(ACME, 120, ConnectionStatus::Connected);
    assert!(matches!(
        h.refresher.refresh(due, Trigger::Timer).await.unwrap(),
        RefreshOutcome::Refreshed { .. }
    ));
    assert_eq!(h.http.token_requests().len(), 1);
}

/// The engine's plan follows every change, whoever made it: a connection refreshed outside the timer is planned
/// from its new expiry, and the old due time passes without a request.
#[tokio::test(start_paused = true)]
async fn the_engine_replans_a_connection_refreshed_outside_its_timer() {
    let (h, _clock) = paused_harness();
    // Due in about four minutes (five-minute margin before a nine-minute expiry, less jitter).
    let id = h.connect(ACME, 540, ConnectionStatus::Connected);
    let engine = RefreshEngine::started(h.refresher.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(h.http.seen().is_empty(), "nothing is due yet");
    // Refreshed on demand, as the CLI socket's `token` would (the token is fresh for an hour afterwards).
    h.refresher.refresh(id, Trigger::User).await.unwrap();
    assert_eq!(h.http.token_requests().len(), 1);
    // Well past the old due time, short of the new one.
    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
    assert_eq!(
        h.http.token_requests().len(),
        1,
        "no second refresh at the old due time"
    );
    assert_eq!(engine.stats().refreshes, 0, "the timer started none");
    engine.stop(Duration::from_secs(5)).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Platform dialects, as their definitions describe them
// ---------------------------------------------------------------------------------------------------------------

/// Regression (issue 11, revocation order): `revoke_all` stopped at the first failure, so when the refresh token's
/// revocation failed the access token was never revoked. Each token is revoked on its own now.
#[tokio::test]
async fn a_failed_revocation_of_one_token_does_not_skip_the_other() {
    let h = Harness::new();
    let id = h.connect(ACME, 3000, ConnectionStatus::Connected);
    h.http.respond(|seen| match seen.field("token_type_hint") {
        Some("refresh_token") => Answer::oauth_error(503, "temporarily_unavailable"),
        _ => Answer::ok(),
    });
    let report = h.refresher.disconnect(id, IfRevocationFails::DeleteNow).await.unwrap();
    let tokens: Vec<_> = h
        .http
        .revocations()
        .iter()
        .map(|r| r.field("token").map(str::to_owned))
        .collect();
    assert_eq!(
        tokens,
        [Some(OLD_REFRESH.to_owned()), Some(OLD_ACCESS.to_owned())],
        "both were tried"
    );
    let Revocation::Failed { reason, .. } = &report.revocation else {
        panic!("{report:?}")
    };
    assert!(
        reason.contains("the refresh token") && reason.contains("503"),
        "{reason}"
    );
    assert!(!reason.contains(OLD_REFRESH), "{reason}");
}

/// Reddit: "The 'password' for non-confidential clients (installed apps) is an empty string", and every request
/// carries a descriptive User-Agent (https://github.com/reddit-archive/reddit/wiki/OAuth2).
#[tokio::test]
async fn an_installed_app_authenticates_with_its_id_and_an_empty_password_and_its_user_agent() {
    let h = Harness::new();
    let id = h.connect(BASIC_ID, -10, ConnectionStatus::Connected);
    h.refresher.refresh(id, Trigger::User).await.unwrap();
    let request = &h.http.token_requests()[0];
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:"))
    );
    assert_eq!(request.authorization.as_deref(), Some(expected.as_str()));
    assert!(request.field("client_secret").is_none());
    assert_eq!(
        request.user_agent.as_deref(),
        Some(format!("desktop:io.tokenkeep:{} (test)", env!("CARGO_PKG_VERSION")).as_str())
    );
    // Reddit answers a refused refresh with HTTP 200 and an OAuth error: read as the rejection it is.
    h.http.token_script([Answer::json(200, r#"{"error":"invalid_grant"}"#)]);
    let err = h.refresher.refresh(id, Trigger::User).await.unwrap_err();
    assert!(matches!(err, RefreshError::NeedsReconnect { .. }), "{err}");
    h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();
    let revoke = &h.http.revocations()[0];
    assert_eq!(revoke.authorization.as_deref(), Some(expected.as_str()));
    assert!(revoke.user_agent.is_some());
}

/// Twitch: revocation takes the access token with `client_id` and `token` only; `{"status":400,"message":"Invalid
/// refresh token"}` means the grant is gone (https://dev.twitch.tv/docs/authentication/revoke-tokens,
/// https://dev.twitch.tv/docs/authentication/refresh-tokens).
#[tokio::test]
async fn access_token_revocation_and_foreign_error_shapes_follow_the_definition() {
    let h = Harness::new();
    let id = h.connect(ACCESS_REVOKE, -10, ConnectionStatus::Connected);
    h.http
        .token_script([Answer::json(400, r#"{"status":400,"message":"Invalid refresh token"}"#)]);
    let err = h.refresher.refresh(id, Trigger::User).await.unwrap_err();
    assert!(
        matches!(err, RefreshError::NeedsReconnect { .. }),
        "a rejected grant, not a retry: {err}"
    );
    let report = h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();
    assert_eq!(report.revocation, Revocation::Revoked);
    let revocations = h.http.revocations();
    assert_eq!(revocations.len(), 1, "only the access token");
    let form = &revocations[0].form;
    assert_eq!(form.get("token").map(String::as_str), Some(OLD_ACCESS));
    assert_eq!(form.get("client_id").map(String::as_str), Some(CLIENT_ID));
    assert!(
        !form.contains_key("client_secret") && !form.contains_key("token_type_hint"),
        "{form:?}"
    );
}

/// Kick: `POST /oauth/revoke?token=…&token_hint_type=…`, parameters in the query, no client authentication.
#[tokio::test]
async fn revocation_parameters_can_go_in_the_query() {
    let h = Harness::new();
    let id = h.connect(QUERY_REVOKE, 3000, ConnectionStatus::Connected);
    h.http.respond(|_| Answer::Http {
        status: 200,
        headers: vec![("content-type", "text/plain".into())],
        body: "OK".into(),
    });
    let report = h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();
    assert_eq!(report.revocation, Revocation::Revoked);
    let revocations = h.http.revocations();
    assert_eq!(revocations.len(), 2);
    let query = revocations[1].query();
    assert_eq!(query.get("token").map(String::as_str), Some(OLD_ACCESS));
    assert_eq!(query.get("token_hint_type").map(String::as_str), Some("access_token"));
    assert!(
        revocations[1].form.is_empty() && !query.contains_key("client_id"),
        "{revocations:?}"
    );
}

/// Instagram: GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token&access_token=…, for a token
/// "at least 24 hours old but has not expired"; no refresh token exists
/// (https://developers.facebook.com/documentation/instagram-platform/reference/refresh_access_token).
#[tokio::test]
async fn a_platform_that_refreshes_with_the_access_token_is_asked_only_once_the_token_is_old_enough() {
    let h = Harness::new();
    // Issued an hour ago for 60 days: too young to refresh.
    let now = h.clock.unix_secs();
    let meta = ConnectionMeta {
        expires_at: Some(now + 60 * 86_400),
        last_refresh_at: Some(now - 3600),
        ..ConnectionMeta::new(ProviderId::parse(IG).unwrap(), "creator")
    };
    let tokens = TokenSet {
        access: SecretString::new(OLD_ACCESS.into()),
        refresh: None,
        id_token: None,
        dpop_key: None,
    };
    let id = h.vault.put_connection(meta, &tokens).unwrap();
    let due = h.refresher.due_at_ms(id, &h.meta(id)).unwrap();
    assert!(
        due >= (now - 3600 + 86_400) * 1000,
        "planned no earlier than a day after issue"
    );
    assert!(matches!(
        h.refresher.refresh(id, Trigger::User).await.unwrap(),
        RefreshOutcome::StillFresh { .. }
    ));
    assert!(h.http.seen().is_empty(), "nothing is sent for a token under a day old");

    // A day and a half old: refreshed by GET with the access token, the new token replaces it.
    h.vault
        .update_meta(id, |m| m.last_refresh_at = Some(now - 36 * 3600))
        .unwrap();
    h.http.token_script([Answer::json(
        200,
        &format!(r#"{{"access_token":"{NEW_ACCESS}","token_type":"bearer","expires_in":5184000}}"#),
    )]);
    let outcome = h.refresher.refresh(id, Trigger::User).await.unwrap();
    assert!(
        matches!(outcome, RefreshOutcome::Refreshed { rotated: false, .. }),
        "{outcome:?}"
    );
    let request = &h.http.token_requests()[0];
    assert_eq!(request.method, "GET");
    let query = request.query();
    assert_eq!(query.get("grant_type").map(String::as_str), Some("ig_refresh_token"));
    assert_eq!(query.get("access_token").map(String::as_str), Some(OLD_ACCESS));
    assert_eq!(h.tokens(id), (NEW_ACCESS.to_owned(), None));
    assert_eq!(h.meta(id).expires_at, Some(now + 5_184_000));
}

#[tokio::test]
async fn refresh_now_without_a_refresh_token_leaves_a_valid_connection_alone() {
    let h = Harness::new();
    // LinkedIn's standard apps, Facebook's user tokens: a long-lived access token and no way to refresh it.
    let id = h.connect_with(ACME, 30 * 86_400, ConnectionStatus::Connected, OLD_ACCESS, None);
    let outcome = h.refresher.refresh(id, Trigger::User).await.unwrap();
    assert!(matches!(outcome, RefreshOutcome::StillFresh { .. }), "{outcome:?}");
    assert_eq!(
        h.meta(id).status,
        ConnectionStatus::Connected,
        "a valid token does not need a reconnect"
    );
    assert!(h.http.seen().is_empty(), "nothing to ask the platform");

    // Once it has expired, only signing in again helps, and the connection says so.
    let expired = h.connect_with(ACME, -60, ConnectionStatus::Connected, OLD_ACCESS, None);
    let err = h.refresher.refresh(expired, Trigger::User).await.unwrap_err();
    assert!(matches!(err, RefreshError::NeedsReconnect { .. }), "{err:?}");
    assert_eq!(h.meta(expired).status, ConnectionStatus::NeedsReconnect);
}

#[tokio::test]
async fn a_platform_that_requires_validation_is_checked_hourly_and_a_refused_token_is_refreshed() {
    let h = Harness::new();
    let id = h.connect(VALIDATE, 4 * 3600, ConnectionStatus::Connected);
    let now_ms = h.clock.unix_secs() * 1000;
    // Never checked yet: the check is due now, long before the refresh.
    let (at, trigger) = h.refresher.next_due(id, &h.meta(id)).unwrap();
    assert_eq!(trigger, Trigger::Validate);
    assert!(at <= now_ms, "the first check is due at once");

    let accepted = |seen: &Seen| {
        if seen.url.ends_with("/validate") {
            Answer::json(200, r#"{"client_id":"tokenkeep-client","expires_in":14000}"#)
        } else {
            default_answer(seen)
        }
    };
    h.http.respond(accepted);
    let outcome = h.refresher.refresh(id, Trigger::Validate).await.unwrap();
    assert!(matches!(outcome, RefreshOutcome::StillFresh { .. }), "{outcome:?}");
    let seen = h.http.seen();
    assert_eq!(seen.len(), 1, "only the check: {seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("OAuth {OLD_ACCESS}").as_str())
    );
    assert_eq!(h.tokens(id), (OLD_ACCESS.to_owned(), Some(OLD_REFRESH.to_owned())));
    // The next check is an hour later.
    let (at, trigger) = h.refresher.next_due(id, &h.meta(id)).unwrap();
    assert_eq!((at, trigger), (now_ms + 3_600_000, Trigger::Validate));

    // The person revoked the app at the platform: the check fails, and the refresh decides at once.
    h.http.respond(|seen: &Seen| {
        if seen.url.ends_with("/validate") {
            Answer::json(401, r#"{"status":401,"message":"invalid access token"}"#)
        } else {
            default_answer(seen)
        }
    });
    let outcome = h.refresher.refresh(id, Trigger::Validate).await.unwrap();
    assert!(matches!(outcome, RefreshOutcome::Refreshed { .. }), "{outcome:?}");
    assert_eq!(h.http.token_requests().len(), 1);
    assert_eq!(h.tokens(id), (NEW_ACCESS.to_owned(), Some(NEW_REFRESH.to_owned())));
}

// ---------------------------------------------------------------------------------------------------------------
// 5: transient failures
// ---------------------------------------------------------------------------------------------------------------

/// A token-looking value a provider might put in a broken answer; it must never reach a message.
const LEAKY: &str = "leaky-token-9d8c7b6a5f4e";

#[tokio::test]
async fn transient_failures_keep_the_tokens_and_retry() {
    let html = Answer::Http {
        status: 200,
        headers: vec![("content-type", "text/html".into())],
        body: format!("<html><body>Maintenance {LEAKY}</body></html>"),
    };
    let cases = [
        ("network", Answer::Network, "network"),
        (
            "503",
            Answer::Http {
                status: 503,
                headers: vec![],
                body: String::new(),
            },
            "503",
        ),
        (
            "503 with an OAuth error",
            Answer::oauth_error(503, "temporarily_unavailable"),
            "HTTP 503 (temporarily_unavailable)",
        ),
        ("HTML 200", html, "malformed response"),
        (
            "truncated JSON",
            Answer::json(200, &format!(r#"{{"access_token":"{LEAKY}","token_type":"Bea"#)),
            "malformed response",
        ),
        (
            "no access_token",
            Answer::json(
                200,
                &format!(r#"{{"token_type":"Bearer","expires_in":3600,"refresh_token":"{LEAKY}"}}"#),
            ),
            "malformed response",
        ),
    ];
    for (name, answer, class) in cases {
        let h = Harness::new();
        let id = h.connect(ACME, 30, ConnectionStatus::Connected);
        h.http.token_script([answer]);

        let error = h.refresher.refresh(id, Trigger::Timer).await.unwrap_err();

        let RefreshError::Retrying { reason, retry_in, .. } = &error else {
            panic!("{name}: {error:?}")
        };
        assert!(reason.contains(class), "{name}: {reason:?}");
        assert!(*retry_in >= Duration::from_millis(1600), "{name}: {retry_in:?}");
        let meta = h.meta(id);
        assert_eq!(meta.status, ConnectionStatus::Retrying, "{name}");
        let last_error = meta.last_error.unwrap();
        assert!(last_error.contains(class), "{name}: {last_error:?}");
        assert_eq!(h.tokens(id), (OLD_ACCESS.into(), Some(OLD_REFRESH.into())), "{name}");
        for text in [last_error, error.to_string(), format!("{error:?}")] {
            for secret in [OLD_ACCESS, OLD_REFRESH, LEAKY] {
                assert!(!text.contains(secret), "{name}: {text:?} contains a token");
            }
        }
    }
}

#[tokio::test]
async fn expires_in_as_a_string_is_accepted() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    h.http.token_script([Answer::json(
        200,
        &format!(r#"{{"access_token":"{NEW_ACCESS}","token_type":"bearer","expires_in":"3600"}}"#),
    )]);

    let outcome = h.refresher.refresh(id, Trigger::Timer).await.unwrap();

    assert_eq!(
        outcome,
        RefreshOutcome::Refreshed {
            expires_at: Some(NOW + 3600),
            rotated: false
        }
    );
    assert_eq!(h.meta(id).status, ConnectionStatus::Connected);
}

#[tokio::test]
async fn backoff_grows_with_each_failure_and_honours_retry_after() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    let unavailable = || Answer::Http {
        status: 503,
        headers: vec![],
        body: String::new(),
    };
    let too_many = Answer::Http {
        status: 429,
        headers: vec![
            ("retry-after", "120".into()),
            ("content-type", "application/json".into()),
        ],
        body: r#"{"error":"slow_down"}"#.into(),
    };
    h.http.token_script([
        unavailable(),
        unavailable(),
        unavailable(),
        too_many,
        Answer::tokens(NEW_ACCESS, None, 3600),
    ]);
    let now_ms = NOW * 1000;

    let mut delays = Vec::new();
    for attempt in 1..=4u32 {
        let error = h.refresher.refresh(id, Trigger::Timer).await.unwrap_err();
        let RefreshError::Retrying { retry_in, .. } = error else {
            panic!("attempt {attempt}: {error:?}")
        };
        let meta = h.meta(id);
        assert_eq!(meta.status, ConnectionStatus::Retrying);
        assert_eq!(
            h.refresher.due_at_ms(id, &meta),
            Some(now_ms + retry_in.as_millis() as u64),
            "attempt {attempt}: the engine plans the retry for when the error says"
        );
        delays.push(retry_in);
    }
    // Base 2 s doubling, ±20 % jitter.
    for (attempt, (delay, base)) in delays.iter().zip([2.0, 4.0, 8.0]).enumerate() {
        let secs = delay.as_secs_f64();
        assert!(
            (base * 0.8..=base * 1.2).contains(&secs),
            "attempt {}: {delay:?}",
            attempt + 1
        );
    }
    assert_eq!(
        delays[3],
        Duration::from_secs(120),
        "Retry-After: 120 beats the 16 s backoff"
    );
    assert!(h.meta(id).last_error.unwrap().contains("429"));

    // Success resets the schedule: the next due time comes from the new expiry again.
    h.refresher.refresh(id, Trigger::Timer).await.unwrap();
    let meta = h.meta(id);
    let due = h.refresher.due_at_ms(id, &meta).unwrap();
    assert!(
        ((NOW + 3600 - 360) * 1000..=(NOW + 3600 - 300) * 1000).contains(&due),
        "{due}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 6: failures that need the user
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_grant_needs_a_reconnect_and_notifies_once() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    let mut events = h.refresher.subscribe();
    h.http.token_script([
        Answer::oauth_error(400, "invalid_grant"),
        Answer::oauth_error(400, "invalid_grant"),
    ]);

    let error = h.refresher.refresh(id, Trigger::Timer).await.unwrap_err();
    assert!(matches!(error, RefreshError::NeedsReconnect { .. }), "{error:?}");
    let meta = h.meta(id);
    assert_eq!(meta.status, ConnectionStatus::NeedsReconnect);
    let last_error = meta.last_error.clone().unwrap();
    assert!(last_error.contains("invalid_grant"), "{last_error}");
    assert!(last_error.contains("sign in again"), "{last_error}");
    assert_eq!(h.tokens(id).1.as_deref(), Some(OLD_REFRESH), "nothing is deleted");
    assert_eq!(h.refresher.due_at_ms(id, &meta), None, "the engine stops trying");
    let first = drain(&mut events);
    assert_eq!(attentions(&first), 1, "{first:?}");

    // The app asking for a token is told to reconnect, without a request.
    let error = h.refresher.access_token(id).await.unwrap_err();
    assert!(matches!(error, RefreshError::NeedsReconnect { .. }), "{error:?}");
    assert_eq!(h.http.token_requests().len(), 1);

    // The user presses "Refresh now" anyway: same incident, no second notification.
    h.refresher.refresh(id, Trigger::User).await.unwrap_err();
    assert_eq!(h.http.token_requests().len(), 2);
    assert_eq!(h.meta(id).status, ConnectionStatus::NeedsReconnect);
    let second = drain(&mut events);
    assert_eq!(
        attentions(&second),
        0,
        "a second Attention for the same incident: {second:?}"
    );
}

#[tokio::test]
async fn invalid_grant_after_an_interrupted_refresh_says_interrupted() {
    let h = Harness::new();
    let id = h.connect(ACME, 3000, ConnectionStatus::Refreshing);
    let mut events = h.refresher.subscribe();
    h.http.token_script([Answer::oauth_error(400, "invalid_grant")]);

    let error = h.refresher.refresh(id, Trigger::Resume).await.unwrap_err();

    let RefreshError::NeedsReconnect { reason, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(reason.contains("interrupted"), "{reason}");
    let meta = h.meta(id);
    assert_eq!(meta.status, ConnectionStatus::Interrupted);
    assert!(meta.last_error.unwrap().contains("interrupted"));
    assert_eq!(h.refresher.due_at_ms(id, &h.meta(id)), None);
    assert_eq!(attentions(&drain(&mut events)), 1);
}

#[tokio::test]
async fn invalid_client_is_an_error_that_needs_attention_once() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    let mut events = h.refresher.subscribe();
    h.http.token_script([
        Answer::oauth_error(401, "invalid_client"),
        Answer::oauth_error(401, "invalid_client"),
    ]);

    let error = h.refresher.refresh(id, Trigger::Timer).await.unwrap_err();

    let RefreshError::Failed { reason, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(reason.contains("invalid_client"), "{reason}");
    let meta = h.meta(id);
    assert_eq!(meta.status, ConnectionStatus::Error);
    assert_eq!(h.refresher.due_at_ms(id, &meta), None);
    let first = drain(&mut events);
    let [EngineEvent::Attention { message, .. }] = &first
        .iter()
        .filter(|e| matches!(e, EngineEvent::Attention { .. }))
        .cloned()
        .collect::<Vec<_>>()[..]
    else {
        panic!("{first:?}")
    };
    assert!(message.contains("client id and secret"), "{message}");

    // The app keeps asking for a token (it expires within the on-demand margin): one incident, one notification.
    h.refresher.access_token(id).await.unwrap_err();
    assert_eq!(h.http.token_requests().len(), 2);
    let second = drain(&mut events);
    assert_eq!(
        attentions(&second),
        0,
        "a second Attention for the same incident: {second:?}"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 7–8: disconnect, and disconnect racing a refresh
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn disconnect_revokes_the_refresh_token_first_then_deletes() {
    let h = Harness::new();
    let id = h.connect(ACME, 3000, ConnectionStatus::Connected);
    let other = h.connect(ACME, 3000, ConnectionStatus::Connected);
    let mut events = h.refresher.subscribe();

    let report = h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();

    assert_eq!(report.revocation, Revocation::Revoked);
    assert_eq!(
        (report.provider.as_str(), report.account.as_str()),
        (ACME, "ada@example.com")
    );
    let revocations = h.http.revocations();
    let sent: Vec<_> = revocations
        .iter()
        .map(|r| (r.field("token"), r.field("token_type_hint"), r.field("client_id")))
        .collect();
    assert_eq!(
        sent,
        [
            (Some(OLD_REFRESH), Some("refresh_token"), Some(CLIENT_ID)),
            (Some(OLD_ACCESS), Some("access_token"), Some(CLIENT_ID)),
        ]
    );
    assert!(revocations.iter().all(|r| r.url == "http://127.0.0.1:1/revoke"));
    assert!(matches!(h.vault.get_meta(id), Err(StoreError::NotFound(_))));
    assert!(matches!(h.vault.tokens(id), Err(StoreError::NotFound(_))));
    let listed: Vec<_> = h.vault.list().unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, [other], "only the other connection remains");
    assert_eq!(drain(&mut events), [EngineEvent::Removed(id)]);
    assert!(matches!(
        h.refresher.refresh(id, Trigger::User).await,
        Err(RefreshError::NotFound(_))
    ));
}

#[tokio::test]
async fn disconnect_delete_now_deletes_even_when_revocation_fails() {
    let h = Harness::new();
    let id = h.connect(BASIC, 3000, ConnectionStatus::Connected);
    h.http.respond(|_| Answer::oauth_error(503, "temporarily_unavailable"));

    let report = h.refresher.disconnect(id, IfRevocationFails::DeleteNow).await.unwrap();

    let Revocation::Failed { reason, manage_url } = &report.revocation else {
        panic!("{report:?}")
    };
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(manage_url.as_ref().map(Url::as_str), Some(MANAGE_URL));
    for text in [reason.clone(), format!("{report:?}")] {
        for secret in [OLD_ACCESS, OLD_REFRESH, CLIENT_SECRET] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    let revocations = h.http.revocations();
    assert_eq!(revocations[0].field("token"), Some(OLD_REFRESH));
    assert!(
        revocations[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic ")),
        "the confidential client authenticates its revocation"
    );
    assert!(h.vault.list().unwrap().is_empty());
}

/// Issue 13: a disconnect that cannot reach the provider no longer deletes the tokens and forgets the grant. The
/// account leaves use at once (no refresh, no token), keeps only what revoking needs, and is revoked when the
/// provider answers again — then, and only then, deleted.
#[tokio::test(start_paused = true)]
async fn a_failed_revocation_keeps_only_what_revoking_needs_and_retries_until_it_succeeds() {
    let (h, _clock) = paused_harness();
    let id = h.connect_with(BASIC, 3000, ConnectionStatus::Connected, OLD_ACCESS, Some(OLD_REFRESH));
    h.vault
        .update_meta(id, |m| {
            m.subject = Some("subject-1".into());
            m.scopes = vec!["read".into()];
        })
        .unwrap();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = down.clone();
    h.http.respond(move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Answer::Network
        } else {
            Answer::ok()
        }
    });
    let mut events = h.refresher.subscribe();

    let report = h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();

    let pending = report.pending.expect("kept for revocation");
    assert!(matches!(report.revocation, Revocation::Failed { .. }), "{report:?}");
    assert_eq!((pending.since, pending.attempts), (h.clock.unix_secs(), 1));
    assert!(
        (48..=72).contains(&(pending.next_attempt_at - pending.since)),
        "{pending:?}"
    );
    assert_eq!(pending.give_up_at - pending.since, 7 * 24 * 3600);
    let kept = h.meta(id);
    assert_eq!(kept.status, ConnectionStatus::RevocationPending);
    assert_eq!(kept.revocation, Some(pending));
    assert_eq!((kept.subject, kept.scopes, kept.expires_at), (None, vec![], None));
    let tokens = h.vault.tokens(id).unwrap();
    assert_eq!(
        tokens.refresh.as_ref().map(SecretString::dangerously_expose),
        Some(OLD_REFRESH)
    );
    assert!(tokens.id_token.is_none());
    assert!(
        matches!(drain(&mut events).as_slice(), [EngineEvent::Status(c)] if c.meta.status == ConnectionStatus::RevocationPending)
    );
    for refused in [
        h.refresher.refresh(id, Trigger::User).await.map(|_| ()),
        h.refresher.access_token(id).await.map(|_| ()),
    ] {
        assert!(matches!(refused, Err(RefreshError::Disconnected { .. })), "{refused:?}");
    }

    // The timer tries at the planned time, still down: the next wait doubles.
    let engine = RefreshEngine::started(h.refresher.clone());
    tokio::time::sleep(Duration::from_secs(pending.next_attempt_at - pending.since + 1)).await;
    let again = h.meta(id).revocation.expect("still pending");
    assert_eq!(again.attempts, 2);
    assert!(
        (96..=144).contains(&(again.next_attempt_at - h.clock.unix_secs() + 1)),
        "{again:?}"
    );
    assert_eq!(h.http.token_requests().len(), 0, "never refreshed");

    // The provider is back: the next attempt revokes both tokens and deletes everything.
    down.store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(150)).await;
    assert!(matches!(h.vault.get_meta(id), Err(StoreError::NotFound(_))));
    let revoked: Vec<_> = h
        .http
        .revocations()
        .iter()
        .filter_map(|r| r.field("token").map(str::to_owned))
        .collect();
    assert_eq!(&revoked[revoked.len() - 2..], [OLD_REFRESH, OLD_ACCESS]);
    assert!(drain(&mut events).contains(&EngineEvent::Removed(id)));
    engine.stop(Duration::from_secs(5)).await;
}

/// After a week of failures the engine deletes what it kept and says, once, where to revoke by hand.
#[tokio::test(start_paused = true)]
async fn a_revocation_that_never_succeeds_is_given_up_after_a_week_with_a_final_notice() {
    let (h, _clock) = paused_harness();
    let id = h.connect(BASIC, 3000, ConnectionStatus::Connected);
    h.http.respond(|_| Answer::oauth_error(503, "temporarily_unavailable"));
    let pending = h
        .refresher
        .disconnect(id, IfRevocationFails::KeepTrying)
        .await
        .unwrap()
        .pending
        .unwrap();
    let mut events = h.refresher.subscribe();
    let engine = RefreshEngine::started(h.refresher.clone());

    tokio::time::sleep(Duration::from_secs(pending.give_up_at - pending.since - 3600)).await;
    let attempts = h.meta(id).revocation.unwrap().attempts;
    assert!(
        (30..=40).contains(&attempts),
        "backoff up to six hours: {attempts} attempts in a week"
    );
    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;

    assert!(
        matches!(h.vault.get_meta(id), Err(StoreError::NotFound(_))),
        "given up and deleted"
    );
    let events = drain(&mut events);
    let notices: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::Attention { id: seen, message, .. } if *seen == id => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "{events:?}");
    assert!(
        notices[0].contains("stopped trying to revoke") && notices[0].contains(MANAGE_URL),
        "{}",
        notices[0]
    );
    assert!(!notices[0].contains(OLD_REFRESH) && !notices[0].contains(CLIENT_SECRET));
    assert!(events.contains(&EngineEvent::Removed(id)));
    engine.stop(Duration::from_secs(5)).await;
}

/// The person's choices on a pending revocation: "Try now" tries at once; "Delete now" deletes without asking the
/// provider again, naming where to revoke by hand. A restart keeps the revocation planned.
#[tokio::test]
async fn a_pending_revocation_can_be_tried_now_or_deleted_now_and_survives_a_restart() {
    let h = Harness::new();
    let id = h.connect(BASIC, 3000, ConnectionStatus::Connected);
    h.http.respond(|_| Answer::Network);
    h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();
    let asked = h.http.revocations().len();

    let report = h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();
    assert_eq!(report.pending.map(|p| p.attempts), Some(2), "tried again now");
    assert!(h.http.revocations().len() > asked);

    // A new process over the same vault plans the attempt from the record.
    let restarted = Refresher::new(
        h.vault.clone(),
        catalog(),
        h.http.clone(),
        h.clock.clone(),
        RefreshPolicy::default(),
    );
    let meta = h.meta(id);
    assert_eq!(
        restarted.next_due(id, &meta),
        Some((meta.revocation.unwrap().next_attempt_at * 1000, Trigger::Revoke))
    );

    let asked = h.http.revocations().len();
    let report = restarted.disconnect(id, IfRevocationFails::DeleteNow).await.unwrap();
    assert_eq!(
        report.revocation,
        Revocation::NotTried {
            manage_url: Some(Url::parse(MANAGE_URL).unwrap())
        }
    );
    assert_eq!(report.pending, None);
    assert_eq!(h.http.revocations().len(), asked, "not asked again");
    assert!(h.vault.list().unwrap().is_empty());
}

/// A pending revocation whose provider was removed cannot be done: it is given up at once, with the notice.
#[tokio::test]
async fn a_pending_revocation_whose_provider_is_gone_is_given_up_with_a_notice() {
    let h = Harness::new();
    let id = h.connect(BASIC, 3000, ConnectionStatus::Connected);
    h.http.respond(|_| Answer::Network);
    h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();
    let mut config = ProfileConfig::default();
    config
        .set_client(&ProviderId::parse(ACME).unwrap(), CLIENT_ID, None)
        .ok();
    h.refresher.set_catalog(Catalog::from_config(&config).unwrap());
    let mut events = h.refresher.subscribe();

    let report = h.refresher.retry_revocation(id).await.unwrap();

    assert!(matches!(report.revocation, Revocation::Skipped { .. }), "{report:?}");
    assert!(h.vault.list().unwrap().is_empty());
    assert!(
        drain(&mut events)
            .iter()
            .any(|e| matches!(e, EngineEvent::Attention { message, .. } if message.contains("by hand")))
    );
}

#[tokio::test]
async fn disconnect_without_a_revocation_endpoint_says_so() {
    let h = Harness::new();
    let id = h.connect(NO_REVOKE, 3000, ConnectionStatus::Connected);

    let report = h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();

    assert_eq!(
        report.revocation,
        Revocation::NotSupported {
            manage_url: Some(Url::parse(MANAGE_URL).unwrap())
        }
    );
    assert!(h.http.seen().is_empty());
    assert!(h.vault.list().unwrap().is_empty());
}

#[tokio::test]
async fn disconnect_during_a_refresh_discards_and_revokes_the_new_tokens() {
    let h = Harness::new();
    let id = h.connect(ACME, 30, ConnectionStatus::Connected);
    let gate = Gate::new();
    let release = gate.clone();
    h.http.respond(move |seen| {
        if seen.is_token() {
            Answer::held(&release, Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600))
        } else {
            Answer::ok()
        }
    });
    let refresher = h.refresher.clone();
    let refresh = tokio::spawn(async move { refresher.refresh(id, Trigger::Timer).await });
    gate.reached().await;

    let report = h.refresher.disconnect(id, IfRevocationFails::KeepTrying).await.unwrap();
    assert_eq!(report.revocation, Revocation::Revoked);
    assert!(h.vault.list().unwrap().is_empty());
    gate.open();
    let result = refresh.await.unwrap();

    assert!(matches!(result, Err(RefreshError::NotFound(_))), "{result:?}");
    assert!(h.vault.list().unwrap().is_empty(), "the connection did not come back");
    assert!(matches!(h.vault.tokens(id), Err(StoreError::NotFound(_))));
    let revoked: Vec<_> = h
        .http
        .revocations()
        .iter()
        .map(|r| {
            (
                r.field("token").unwrap().to_owned(),
                r.field("token_type_hint").unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        revoked.contains(&(NEW_REFRESH.into(), "refresh_token".into())),
        "the refresh token issued after the disconnect is revoked: {revoked:?}"
    );
    assert!(
        revoked.contains(&(NEW_ACCESS.into(), "access_token".into())),
        "{revoked:?}"
    );
    assert!(
        revoked.contains(&(OLD_REFRESH.into(), "refresh_token".into())),
        "{revoked:?}"
    );
}

/// A tiny deterministic generator, so a failing interleaving can be replayed from its seed.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// How one race between a refresh and a disconnect ended.
#[derive(Debug, Default)]
struct RaceTally {
    /// The disconnect came first; the refresh never sent a request.
    refresh_never_sent: usize,
    /// The refresh finished first and stored its tokens; the disconnect revoked them.
    refresh_won: usize,
    /// The refresh got new tokens after the disconnect began; it discarded and revoked them.
    refresh_discarded: usize,
}

/// One refresh racing one disconnect of a fresh connection; asserts that no interleaving brings it back.
async fn race_once(h: &Harness, seed: u64, rng: &mut XorShift, tally: &mut RaceTally) {
    let (old_access, old_refresh) = (format!("race-access-{seed:04}"), format!("race-refresh-{seed:04}"));
    let (new_access, new_refresh) = (
        format!("race-new-access-{seed:04}"),
        format!("race-new-refresh-{seed:04}"),
    );
    let id = h.connect_with(ACME, -5, ConnectionStatus::Connected, &old_access, Some(&old_refresh));
    let gate = Gate::new();
    let (token_yields, revoke_yields) = (rng.below(4) as usize, rng.below(4) as usize);
    {
        let (gate, new_access, new_refresh) = (gate.clone(), new_access.clone(), new_refresh.clone());
        h.http.respond(move |seen| {
            if seen.is_token() {
                let tokens = Answer::tokens(&new_access, Some(&new_refresh), 3600);
                Answer::held(&gate, Answer::Yield(token_yields, Box::new(tokens)))
            } else {
                Answer::Yield(revoke_yields, Box::new(Answer::ok()))
            }
        });
    }
    // Step 0 starts the disconnect before the refresh; later steps let the refresh run ahead by that many yields.
    let (start_disconnect, open_gate) = (rng.below(9), rng.below(9));
    let mut disconnect = None;
    let mut refresh = None;
    for step in 0..12 {
        if step == 1 || (step == 0 && start_disconnect != 0) {
            let refresher = h.refresher.clone();
            refresh.get_or_insert_with(|| tokio::spawn(async move { refresher.refresh(id, Trigger::Timer).await }));
        }
        if step == start_disconnect {
            let refresher = h.refresher.clone();
            disconnect = Some(tokio::spawn(async move {
                refresher.disconnect(id, IfRevocationFails::KeepTrying).await
            }));
        }
        if step == open_gate {
            gate.open();
        }
        tokio::task::yield_now().await;
    }
    gate.open();
    let disconnect = disconnect.expect("started").await.unwrap();
    let refreshed = refresh.expect("started").await.unwrap();

    let context = format!("seed {seed}: refresh {refreshed:?}, disconnect {disconnect:?}");
    assert!(disconnect.is_ok(), "{context}");
    assert!(
        h.vault.list().unwrap().iter().all(|(listed, _)| *listed != id),
        "{context}: the connection came back"
    );
    assert!(matches!(h.vault.tokens(id), Err(StoreError::NotFound(_))), "{context}");
    assert!(
        matches!(
            h.refresher.refresh(id, Trigger::User).await,
            Err(RefreshError::NotFound(_))
        ),
        "{context}"
    );
    let sent_token_request = h
        .http
        .token_requests()
        .iter()
        .any(|r| r.field("refresh_token") == Some(old_refresh.as_str()));
    let revoked: Vec<String> = h
        .http
        .revocations()
        .iter()
        .filter_map(|r| r.field("token").map(str::to_owned))
        .collect();
    if sent_token_request {
        // Whatever the provider issued was revoked, by the refresh or by the disconnect.
        assert!(revoked.contains(&new_refresh), "{context}: {revoked:?}");
        assert!(revoked.contains(&new_access), "{context}: {revoked:?}");
    }
    match (&refreshed, sent_token_request) {
        (Err(RefreshError::NotFound(_)), false) => tally.refresh_never_sent += 1,
        // Only on a multi-threaded runtime: the disconnect deleted the records between the refresh's checks and
        // its reads (`tests/e2e/refresh.rs` accepts the same).
        (Err(RefreshError::Store(e)), false) if matches!(**e, StoreError::NotFound(_)) => tally.refresh_never_sent += 1,
        (Err(RefreshError::NotFound(_)), true) => tally.refresh_discarded += 1,
        (Ok(RefreshOutcome::Refreshed { .. }), true) => tally.refresh_won += 1,
        _ => panic!("{context}: unexpected refresh result"),
    }
}

#[tokio::test]
async fn disconnect_wins_over_a_refresh_in_every_interleaving() {
    let h = Harness::new();
    let mut tally = RaceTally::default();
    for seed in 1..=50u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        race_once(&h, seed, &mut rng, &mut tally).await;
    }
    // The seeds must actually reach each way the race can go, or the loop proves little.
    assert!(tally.refresh_discarded > 0, "{tally:?}");
    assert!(tally.refresh_won > 0, "{tally:?}");
    assert!(tally.refresh_never_sent > 0, "{tally:?}");
}

/// The same race with the refresh and the disconnect on different threads: no control over the interleaving,
/// only the invariants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_wins_over_a_refresh_on_a_multi_threaded_runtime() {
    let h = Harness::new();
    let mut tally = RaceTally::default();
    for seed in 1..=50u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        race_once(&h, seed, &mut rng, &mut tally).await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 9: the engine, on tokio's paused clock
// ---------------------------------------------------------------------------------------------------------------

/// A harness whose wall clock follows tokio's paused clock. Call inside a `start_paused` runtime.
fn paused_harness() -> (Harness, Arc<PausedWallClock>) {
    let clock = PausedWallClock::new();
    (Harness::with_clock(clock.clone()), clock)
}

#[tokio::test(start_paused = true)]
async fn the_engine_refreshes_within_the_margin_before_expiry_and_not_before() {
    let (h, _clock) = paused_harness();
    let start = tokio::time::Instant::now();
    let expires_at = NOW + 600;
    let id = h.connect(ACME, 600, ConnectionStatus::Connected);

    let engine = RefreshEngine::started(h.refresher.clone());
    h.http.wait_for(|seen| seen.iter().any(Seen::is_token)).await;

    let request = &h.http.token_requests()[0];
    let wall = request.wall.duration_since(UNIX_EPOCH).unwrap();
    // Default policy: a 5-minute margin, started up to 20 % of it (60 s) early; tokio's timer adds at most 1 ms.
    let earliest = Duration::from_secs(expires_at - 360);
    let latest = Duration::from_secs(expires_at - 300) + Duration::from_millis(1);
    assert!((earliest..=latest).contains(&wall), "refreshed at {wall:?}");
    assert!(
        request.at - start >= Duration::from_secs(240),
        "time really passed on tokio's clock"
    );
    assert_eq!(h.http.seen().len(), 1, "nothing was sent before");

    engine.stop(Duration::from_secs(5)).await;
    assert_eq!(h.meta(id).status, ConnectionStatus::Connected);
    assert_eq!(h.meta(id).expires_at, Some(wall.as_secs() + 3600));
}

#[tokio::test(start_paused = true)]
async fn the_engine_refreshes_an_overdue_connection_at_start() {
    let (h, _clock) = paused_harness();
    let start = tokio::time::Instant::now();
    let overdue = h.connect(ACME, 60, ConnectionStatus::Connected);
    let expired = h.connect(ACME, -600, ConnectionStatus::Connected);
    let later = h.connect(ACME, 7200, ConnectionStatus::Connected);

    let engine = RefreshEngine::started(h.refresher.clone());
    h.http
        .wait_for(|seen| seen.iter().filter(|s| s.is_token()).count() >= 2)
        .await;

    for request in h.http.token_requests() {
        assert_eq!(request.at, start, "refreshed at once, without waiting for any timer");
    }
    assert_eq!(h.meta(overdue).status, ConnectionStatus::Connected);
    assert_eq!(h.meta(expired).expires_at, Some(NOW + 3600));
    assert_eq!(h.meta(later).expires_at, Some(NOW + 7200), "not due yet");
    engine.stop(Duration::from_secs(5)).await;
    assert_eq!(h.http.token_requests().len(), 2);
}

/// F3: a provider answering every refresh with `expires_in: 0` used to be asked again at once, thousands of times
/// a minute. The engine now holds such a connection back, with the backoff of failures, and says so once.
#[tokio::test(start_paused = true)]
async fn a_provider_that_issues_tokens_due_at_once_is_not_hammered() {
    let (h, _clock) = paused_harness();
    let mut events = h.refresher.subscribe();
    h.http.respond(|seen| {
        if seen.is_token() {
            Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 0)
        } else {
            Answer::ok()
        }
    });
    let id = h.connect(ACME, -60, ConnectionStatus::Connected);
    let engine = RefreshEngine::started(h.refresher.clone());
    // A minute, or 50 requests, whichever comes first (the old engine reached 50 without time passing at all).
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(60)) => {}
        () = h.http.wait_for(|seen| seen.iter().filter(|s| s.is_token()).count() >= 50) => {}
    }
    engine.stop(Duration::from_secs(5)).await;
    let sent = h.http.token_requests().len();
    assert!((3..=8).contains(&sent), "{sent} refresh requests in a minute");
    let requests = h.http.token_requests();
    for pair in requests.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(1500),
            "requests {:?} apart",
            pair[1].at - pair[0].at
        );
    }
    let attentions: Vec<String> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            EngineEvent::Attention { id: of, message, .. } if of == id => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(attentions.len(), 1, "{attentions:?}");
    assert!(attentions[0].contains("expire at once"), "{}", attentions[0]);
    assert_eq!(h.meta(id).status, ConnectionStatus::Connected, "the tokens are kept");

    // A script asking for the token while the connection is held gets the one just issued, without a request.
    let before = h.http.token_requests().len();
    let token = h.refresher.access_token(id).await.unwrap();
    assert_eq!(token.dangerously_expose(), NEW_ACCESS);
    assert_eq!(h.http.token_requests().len(), before);

    // A token that lives again ends the hold.
    h.http.respond(default_answer);
    assert!(matches!(
        h.refresher.refresh(id, Trigger::User).await.unwrap(),
        RefreshOutcome::Refreshed { .. }
    ));
    assert!(!h.refresher.is_held(id));
}

#[tokio::test(start_paused = true)]
async fn the_engine_resumes_a_refresh_cut_short_with_resume_semantics() {
    let (h, _clock) = paused_harness();
    // Both tokens are fresh: only the in-flight marker makes them due.
    let rejected = h.connect_with(
        ACME,
        3000,
        ConnectionStatus::Refreshing,
        "cut-access-1",
        Some("cut-refresh-1"),
    );
    let accepted = h.connect_with(
        ACME,
        3000,
        ConnectionStatus::Refreshing,
        "cut-access-2",
        Some("cut-refresh-2"),
    );
    h.http.respond(|seen| match seen.field("refresh_token") {
        Some("cut-refresh-1") => Answer::oauth_error(400, "invalid_grant"),
        _ => default_answer(seen),
    });
    let mut events = h.refresher.subscribe();

    let engine = RefreshEngine::started(h.refresher.clone());
    loop {
        let (a, b) = (h.meta(rejected).status, h.meta(accepted).status);
        if a != ConnectionStatus::Refreshing && b != ConnectionStatus::Refreshing {
            break;
        }
        events.recv().await.unwrap();
    }

    let meta = h.meta(rejected);
    assert_eq!(meta.status, ConnectionStatus::Interrupted);
    assert!(meta.last_error.unwrap().contains("interrupted"));
    assert_eq!(h.meta(accepted).status, ConnectionStatus::Connected);
    assert_eq!(h.http.token_requests().len(), 2);
    engine.stop(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn the_engine_notices_a_wall_clock_jump_within_one_wake_check() {
    let (h, clock) = paused_harness();
    let start = tokio::time::Instant::now();
    // Due in about 45 minutes: the engine sleeps for its wake check (5 minutes) at a time.
    let id = h.connect(ACME, 50 * 60, ConnectionStatus::Connected);
    let wake_check = h.refresher.policy().wake_check;

    let engine = RefreshEngine::started(h.refresher.clone());
    // Paused time advances only once every task is idle: after this, the engine is asleep.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(h.http.seen().is_empty());
    // The machine "sleeps" for an hour: the wall clock moves, tokio's clock does not.
    clock.jump(Duration::from_secs(3600));
    h.http.wait_for(|seen| seen.iter().any(Seen::is_token)).await;

    let request = &h.http.token_requests()[0];
    let waited = request.at - start;
    assert!(
        waited > Duration::from_secs(1) && waited <= wake_check + Duration::from_millis(1),
        "refreshed after {waited:?} of tokio time"
    );
    assert_eq!(h.meta(id).status, ConnectionStatus::Connected);
    engine.stop(Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn stop_waits_for_a_refresh_in_flight_at_most_its_limit() {
    let (h, _clock) = paused_harness();
    let id = h.connect(ACME, -5, ConnectionStatus::Connected);
    let gate = Gate::new();
    h.http
        .token_script([Answer::held(&gate, Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600))]);

    let engine = RefreshEngine::started(h.refresher.clone());
    gate.reached().await;
    let stopping = tokio::time::Instant::now();
    engine.stop(Duration::from_secs(2)).await;

    assert_eq!(stopping.elapsed(), Duration::from_secs(2), "stop gave up at its limit");
    // The aborted refresh leaves its marker: the next start resumes it.
    assert_eq!(h.meta(id).status, ConnectionStatus::Refreshing);
    assert_eq!(h.tokens(id).1.as_deref(), Some(OLD_REFRESH));

    h.http
        .token_script([Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600)]);
    let engine = RefreshEngine::started(h.refresher.clone());
    h.http
        .wait_for(|seen| seen.iter().filter(|s| s.is_token()).count() == 2)
        .await;
    // An idle engine stops at once.
    let mut events = h.refresher.subscribe();
    while h.meta(id).status != ConnectionStatus::Connected {
        events.recv().await.unwrap();
    }
    let stopping = tokio::time::Instant::now();
    engine.stop(Duration::from_secs(2)).await;
    assert_eq!(stopping.elapsed(), Duration::ZERO);
    assert_eq!(h.tokens(id).1.as_deref(), Some(NEW_REFRESH));
}

#[tokio::test(start_paused = true)]
async fn stop_lets_a_refresh_in_flight_finish() {
    let (h, _clock) = paused_harness();
    let id = h.connect(ACME, -5, ConnectionStatus::Connected);
    let gate = Gate::new();
    h.http
        .token_script([Answer::held(&gate, Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600))]);

    let engine = RefreshEngine::started(h.refresher.clone());
    gate.reached().await;
    let stopping = tokio::time::Instant::now();
    let ((), ()) = tokio::join!(engine.stop(Duration::from_secs(2)), async { gate.open() });

    assert!(stopping.elapsed() < Duration::from_secs(2));
    assert_eq!(h.meta(id).status, ConnectionStatus::Connected);
    assert_eq!(h.tokens(id).1.as_deref(), Some(NEW_REFRESH));
}

// ---------------------------------------------------------------------------------------------------------------
// 10: logs
// ---------------------------------------------------------------------------------------------------------------

/// Everything the subscriber writes, unredacted: this checks what the code logs, not the redaction safety net.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn refresh_and_disconnect_logs_carry_no_token_values() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // IMPORTANT: tracing caches, per call site, whether any subscriber listens. While only one dispatcher is
    // registered, a test on another thread that reaches a call site first caches *its* answer ("nobody listens")
    // for every thread, and this test's events would vanish at random. With a second (silent) dispatcher alive,
    // call sites ask all registered dispatchers and each event is checked against this thread's subscriber.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // A current-thread runtime runs every task on this thread, where the subscriber is the default.
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let h = Harness::new();
        // A call site registered by another thread while the dispatchers above were being registered may still
        // hold a stale answer; that registration has long finished after opening a vault, so rebuild once.
        tracing::callsite::rebuild_interest_cache();
        let ok = h.connect(BASIC, 30, ConnectionStatus::Connected);
        let grant = h.connect(ACME, 30, ConnectionStatus::Connected);
        let client = h.connect(ACME, 30, ConnectionStatus::Connected);
        let transient = h.connect(ACME, 30, ConnectionStatus::Connected);
        let echo = format!(r#""error_description":"bad token {OLD_REFRESH}""#);
        h.http.token_script([
            Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600),
            Answer::json(400, &format!(r#"{{"error":"invalid_grant",{echo}}}"#)),
            Answer::json(401, &format!(r#"{{"error":"invalid_client",{echo}}}"#)),
            Answer::json(200, &format!(r#"{{"access_token":"{LEAKY}","refresh_token":"{LEAKY}""#)),
        ]);
        h.refresher.refresh(ok, Trigger::Timer).await.unwrap();
        h.refresher.refresh(grant, Trigger::Timer).await.unwrap_err();
        h.refresher.refresh(client, Trigger::Timer).await.unwrap_err();
        h.refresher.refresh(transient, Trigger::Timer).await.unwrap_err();
        h.http
            .respond(move |_| Answer::json(400, &format!(r#"{{"error":"invalid_token","token":"{NEW_REFRESH}"}}"#)));
        h.refresher.disconnect(ok, IfRevocationFails::KeepTrying).await.unwrap();
    });
    drop(runtime);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for expected in ["refreshed", "refresh rejected", "refresh failed", "disconnected"] {
        assert!(
            text.contains(expected),
            "the log lacks {expected:?}, so this test saw nothing:\n{text}"
        );
    }
    for secret in [OLD_ACCESS, OLD_REFRESH, NEW_ACCESS, NEW_REFRESH, LEAKY, CLIENT_SECRET] {
        assert!(
            !text.contains(secret),
            "the log contains a token value ({secret}):\n{text}"
        );
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    assert!(!text.contains(&basic), "the log contains the Basic credentials");
}

/// Issue 14 (tray "Pause refreshing"): while paused the timer starts nothing — a connection that falls due waits —
/// while a refresh the person asks for still runs; when the pause runs out the due connection is refreshed at
/// once, and both changes are announced.
#[tokio::test(start_paused = true)]
async fn a_paused_engine_refreshes_only_on_request_until_the_pause_runs_out() {
    let (h, _clock) = paused_harness();
    let start = tokio::time::Instant::now();
    // Due in about four minutes.
    let due = h.connect(ACME, 540, ConnectionStatus::Connected);
    let asked = h.connect(ACME, 3600, ConnectionStatus::Connected);
    let mut events = h.refresher.subscribe();
    let engine = RefreshEngine::started(h.refresher.clone());
    tokio::time::sleep(Duration::from_millis(10)).await;

    let until = engine.pause(Some(Duration::from_secs(3600))).unwrap().unwrap();
    // 10 ms after the start: rounded up to the next whole second.
    assert_eq!(until, NOW + 3601, "whole seconds");
    let paused = loop {
        if let EngineEvent::Paused { until } = events.recv().await.unwrap() {
            break until;
        }
    };
    assert_eq!(paused, Some(until));
    assert_eq!(engine.paused_until(), Some(until));

    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    assert!(
        h.http.token_requests().is_empty(),
        "nothing refreshed by the timer while paused"
    );
    assert_eq!(h.meta(due).status, ConnectionStatus::Connected);
    // The person's own request is not paused.
    assert!(matches!(
        engine.refresh_now(asked).await.unwrap(),
        RefreshOutcome::Refreshed { .. }
    ));
    assert_eq!(h.http.token_requests().len(), 1);

    h.http
        .wait_for(|seen| seen.iter().filter(|s| s.is_token()).count() == 2)
        .await;
    let resumed_at = h.http.token_requests()[1].at - start;
    assert!(
        resumed_at >= Duration::from_secs(3601) && resumed_at <= Duration::from_secs(3601) + Duration::from_millis(1),
        "the due connection was refreshed when the pause ran out, at {resumed_at:?}"
    );
    assert_eq!(engine.paused_until(), None);
    let resumed = loop {
        if let EngineEvent::Paused { until } = events.recv().await.unwrap() {
            break until;
        }
    };
    assert_eq!(resumed, None, "the end of the pause is announced");
    engine.stop(Duration::from_secs(5)).await;
}

/// A resume undoes a pause at once; and without the timer there is nothing to pause, which says so.
#[tokio::test(start_paused = true)]
async fn resuming_refreshes_what_fell_due_and_an_engine_without_timer_cannot_pause() {
    let (h, _clock) = paused_harness();
    let idle = RefreshEngine::with_refresher(h.refresher.clone());
    assert_eq!(
        idle.pause(Some(Duration::from_secs(60))),
        Err(super::PauseError::NotRunning)
    );

    h.connect(ACME, 540, ConnectionStatus::Connected);
    let engine = RefreshEngine::started(h.refresher.clone());
    tokio::time::sleep(Duration::from_millis(10)).await;
    engine.pause(Some(Duration::from_secs(24 * 3600))).unwrap();
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    assert!(h.http.token_requests().is_empty());
    assert_eq!(engine.pause(None).unwrap(), None);
    h.http.wait_for(|seen| seen.iter().any(Seen::is_token)).await;
    assert_eq!(engine.paused_until(), None);
    engine.stop(Duration::from_secs(5)).await;
}

/// Issue 14 (sleep and resume): told that the system woke, the engine plans from the vault at once, so a token
/// that expired during the sleep is refreshed within moments, not at the next wake check.
#[tokio::test(start_paused = true)]
async fn replan_after_waking_refreshes_what_expired_during_the_sleep_at_once() {
    let (h, clock) = paused_harness();
    // Due in about 45 minutes: the engine sleeps for its wake check at a time.
    h.connect(ACME, 50 * 60, ConnectionStatus::Connected);
    let engine = RefreshEngine::started(h.refresher.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    clock.jump(Duration::from_secs(3600));
    let woke = tokio::time::Instant::now();
    engine.replan();
    h.http.wait_for(|seen| seen.iter().any(Seen::is_token)).await;
    let waited = h.http.token_requests()[0].at - woke;
    assert!(
        waited < Duration::from_millis(5),
        "refreshed {waited:?} after the wake, not at the wake check"
    );
    engine.stop(Duration::from_secs(5)).await;
}

/// "Refresh all" hands every request to the running engine at once and gets each outcome back in order.
#[tokio::test(start_paused = true)]
async fn refresh_each_answers_every_connection_in_order() {
    let (h, _clock) = paused_harness();
    let ids: Vec<_> = (0..3)
        .map(|_| h.connect(ACME, 3600, ConnectionStatus::Connected))
        .collect();
    let engine = RefreshEngine::started(h.refresher.clone());
    let outcomes = engine.refresh_each(&ids).await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(RefreshOutcome::Refreshed { .. }))),
        "{outcomes:?}"
    );
    assert_eq!(h.http.token_requests().len(), 3);
    engine.stop(Duration::from_secs(5)).await;
    // Without the timer, one after the other, the same way.
    let direct = RefreshEngine::with_refresher(h.refresher.clone());
    assert!(direct.refresh_each(&ids[..1]).await[0].is_ok());
    assert_eq!(h.http.token_requests().len(), 4);
}

/// Issue 14 (notifications for an outage): a transient failure that outlives the access token is the person's
/// business — scripts using the connection now fail — and is told once per outage (a success ends it); a failure
/// the next try can fix before the token runs out is not told.
#[tokio::test]
async fn an_outage_that_outlives_the_access_token_is_told_once_per_outage() {
    let h = Harness::new();
    let id = h.connect(ACME, -5, ConnectionStatus::Connected);
    let mut events = h.refresher.subscribe();
    let attentions = |events: &mut broadcast::Receiver<EngineEvent>| {
        drain(events)
            .into_iter()
            .filter_map(|e| match e {
                EngineEvent::Attention { message, .. } => Some(message),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    h.http.token_script([
        Answer::Network,
        Answer::Network,
        Answer::tokens(NEW_ACCESS, Some(NEW_REFRESH), 3600),
        Answer::Network,
    ]);

    assert!(matches!(
        h.refresher.refresh(id, Trigger::User).await,
        Err(RefreshError::Retrying { .. })
    ));
    let told = attentions(&mut events);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("has run out") && told[0].contains("keeps trying"),
        "{told:?}"
    );
    assert_eq!(
        h.meta(id).status,
        ConnectionStatus::Retrying,
        "still the engine's to retry, not the person's"
    );

    assert!(h.refresher.refresh(id, Trigger::User).await.is_err());
    assert!(attentions(&mut events).is_empty(), "once per outage");

    assert!(h.refresher.refresh(id, Trigger::User).await.is_ok());
    // Fresh for an hour: a failure now is retried long before the token runs out.
    assert!(h.refresher.refresh(id, Trigger::User).await.is_err());
    assert!(
        attentions(&mut events).is_empty(),
        "a failure the next try can fix in time is not told"
    );
}

/// The AT Protocol names the account in every token response: a refresh that comes back for another DID (a
/// confused or hostile server) is not stored, and the connection needs the person; one for the same DID is.
#[tokio::test]
async fn an_atproto_refresh_for_another_account_is_not_stored() {
    let h = Harness::new();
    let id = h.connect(ATP, -10, ConnectionStatus::Connected);
    h.vault.update_meta(id, |m| m.subject = Some(ALICE_DID.into())).unwrap();
    let answer = |sub: &str| {
        Answer::json(
            200,
            &format!(
                r#"{{"access_token":"{NEW_ACCESS}","token_type":"Bearer","refresh_token":"{NEW_REFRESH}","expires_in":3600,"sub":"{sub}"}}"#
            ),
        )
    };
    h.http.token_script([answer(MALLORY_DID)]);
    let err = h.refresher.refresh(id, Trigger::User).await.unwrap_err();
    assert!(err.to_string().contains("tokens for another account"), "{err}");
    assert_eq!(h.tokens(id), (OLD_ACCESS.to_owned(), Some(OLD_REFRESH.to_owned())));
    assert_eq!(h.meta(id).status, ConnectionStatus::Error);

    h.http.token_script([answer(ALICE_DID)]);
    h.refresher.refresh(id, Trigger::User).await.unwrap();
    assert_eq!(h.tokens(id).0, NEW_ACCESS);
    assert_eq!(h.meta(id).status, ConnectionStatus::Connected);
}
