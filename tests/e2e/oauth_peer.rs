//! The OAuth test peer and the headless login driver, proven with a minimal client written here: a real
//! authorization-code + PKCE (S256) flow through Chromium, token exchange, refresh rotation, reuse detection,
//! confidential-client authentication and the test-only admin endpoints. No Tokenkeep code is involved.
//!
//! These tests fail (never skip) when node, Chromium or `tests/js/node_modules` are missing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tokenkeep_e2e::peer::{
    BASIC_CLIENT_ID, BASIC_CLIENT_SECRET, ClientAuth, LoginOptions, OidcPeer, POST_CLIENT_ID, POST_CLIENT_SECRET,
    PUBLIC_CLIENT_ID, PeerChange, PeerConfig, PeerResponse, run_login_driver,
};

const SCOPE: &str = "openid profile email offline_access videos.read";

/// Timings go to the captured test output (`--nocapture` shows them).
#[expect(clippy::print_stderr, reason = "timings are reported to whoever runs the test")]
fn note(message: &str) {
    eprintln!("oauth_peer: {message}");
}

fn random_b64(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A PKCE pair (RFC 7636, S256).
struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    fn new() -> Result<Self> {
        let verifier = random_b64(32)?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(Self { verifier, challenge })
    }
}

/// The client's loopback redirect listener: records the first `/callback` request target and answers every
/// request with a small page. Stops on drop.
struct CallbackListener {
    port: u16,
    received: mpsc::Receiver<String>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CallbackListener {
    fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (tx, received) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Ok(Some(target)) = answer(stream) {
                            let _ = tx.send(target);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(Self {
            port,
            received,
            stop,
            thread: Some(thread),
        })
    }

    fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// The query parameters of the callback, which must have arrived by now (the driver waits for the page).
    fn callback(&self) -> Result<HashMap<String, String>> {
        let target = self
            .received
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| anyhow!("the redirect URI was never called"))?;
        let url = url::Url::parse(&format!("http://127.0.0.1{target}"))?;
        Ok(url.query_pairs().into_owned().collect())
    }
}

impl Drop for CallbackListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request and answers it; returns the request target when it was the callback.
fn answer(mut stream: TcpStream) -> Result<Option<String>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let is_callback = target.starts_with("/callback");
    let (status, page) = if is_callback {
        (
            "200 OK",
            "<!doctype html><title>Signed in</title><p>You can close this window.</p>",
        )
    } else {
        ("404 Not Found", "<!doctype html><title>Not found</title>")
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    )?;
    stream.flush()?;
    Ok(is_callback.then_some(target))
}

/// One browser sign-in: the authorization request's secrets and the callback's parameters.
struct Authorized {
    redirect_uri: String,
    pkce: Pkce,
    params: HashMap<String, String>,
}

impl Authorized {
    fn code(&self) -> Result<&str> {
        ensure!(
            !self.params.contains_key("error"),
            "the callback carries error={:?}",
            self.params.get("error")
        );
        self.params
            .get("code")
            .map(String::as_str)
            .ok_or_else(|| anyhow!("the callback carries no code"))
    }
}

/// Builds the authorization request for `client_id`, runs the login driver on it, and checks what every callback
/// must carry: our `state` and the peer's `iss` (RFC 9207).
fn authorize(peer: &OidcPeer, client_id: &str, options: &LoginOptions) -> Result<Authorized> {
    let listener = CallbackListener::start()?;
    let pkce = Pkce::new()?;
    let state = random_b64(16)?;
    let nonce = random_b64(16)?;
    let redirect_uri = listener.redirect_uri();
    let url = url::Url::parse_with_params(
        peer.authorization_endpoint()?,
        [
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", &redirect_uri),
            ("scope", SCOPE),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    )?;
    let took = run_login_driver(url.as_str(), options)?;
    note(&format!(
        "browser login ({client_id}, approve={}) took {took:?}",
        options.approve
    ));
    let params = listener.callback()?;
    ensure!(
        params.get("state") == Some(&state),
        "the callback's state does not match ours"
    );
    ensure!(
        params.get("iss").map(String::as_str) == Some(peer.issuer()),
        "the callback's iss is {:?}, expected {}",
        params.get("iss"),
        peer.issuer()
    );
    Ok(Authorized {
        redirect_uri,
        pkce,
        params,
    })
}

fn exchange(peer: &OidcPeer, auth: ClientAuth<'_>, authorized: &Authorized, verifier: &str) -> Result<PeerResponse> {
    peer.token_request(
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", authorized.code()?),
            ("redirect_uri", &authorized.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
}

fn refresh(peer: &OidcPeer, refresh_token: &str) -> Result<PeerResponse> {
    peer.token_request(
        ClientAuth::PUBLIC,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
    )
}

/// Asserts a successful token response and returns (access token, refresh token).
fn tokens(response: &PeerResponse) -> Result<(String, String)> {
    ensure!(
        response.status == 200,
        "token request failed: HTTP {} {:?}",
        response.status,
        response.error()
    );
    ensure!(
        response.str_field("token_type")? == "Bearer",
        "token_type is not Bearer"
    );
    Ok((
        response.str_field("access_token")?.to_owned(),
        response.str_field("refresh_token")?.to_owned(),
    ))
}

fn ensure_error(response: &PeerResponse, status: u16, error: &str, what: &str) -> Result<()> {
    ensure!(
        response.status == status && response.error() == Some(error),
        "{what}: expected HTTP {status} {error}, got HTTP {} {:?}",
        response.status,
        response.error()
    );
    Ok(())
}

fn start_peer(config: &PeerConfig) -> Result<OidcPeer> {
    let started = Instant::now();
    let peer = OidcPeer::start(config)?;
    note(&format!("peer ready in {:?} at {}", started.elapsed(), peer.issuer()));
    Ok(peer)
}

#[test]
fn public_client_code_flow_with_pkce_refresh_rotation_and_reuse_detection() -> Result<()> {
    let started = Instant::now();
    let peer = start_peer(&PeerConfig::default())?;
    let authorized = authorize(&peer, PUBLIC_CLIENT_ID, &LoginOptions::default())?;
    authorized.code()?;

    // A wrong verifier fails and does not burn the code.
    let wrong = exchange(&peer, ClientAuth::PUBLIC, &authorized, &Pkce::new()?.verifier)?;
    ensure_error(&wrong, 400, "invalid_grant", "exchange with a wrong code_verifier")?;

    let first = exchange(&peer, ClientAuth::PUBLIC, &authorized, &authorized.pkce.verifier)?;
    let (access, refresh1) = tokens(&first)?;
    ensure!(first.str_field("id_token").is_ok(), "no id_token for scope openid");
    ensure!(
        first.body["expires_in"]
            .as_u64()
            .is_some_and(|s| (3590..=3600).contains(&s)),
        "expires_in is off"
    );
    // oidc-provider drops offline_access without prompt=consent, yet the peer issues a refresh token anyway.
    let granted = first.str_field("scope")?;
    for scope in ["openid", "profile", "email", "videos.read"] {
        ensure!(
            granted.split(' ').any(|s| s == scope),
            "scope {scope} was not granted: {granted:?}"
        );
    }

    let info = peer.introspect(&access)?;
    ensure!(info["active"] == true, "fresh access token is not active");
    ensure!(
        info["sub"] == "alice" && info["client_id"] == PUBLIC_CLIENT_ID,
        "introspection: {}",
        info["sub"]
    );
    ensure!(peer.is_active(&refresh1)?, "fresh refresh token is not active");

    let me = peer.userinfo(&access)?;
    ensure!(me.status == 200, "userinfo answered HTTP {}", me.status);
    ensure!(
        me.body["email"] == "alice@example.test",
        "userinfo email is {}",
        me.body["email"]
    );
    ensure!(
        me.body["preferred_username"] == "alice" && me.body["name"] == "Alice",
        "userinfo: {}",
        me.body
    );

    // Rotation: a refresh returns a new refresh token.
    let (access2, refresh2) = tokens(&refresh(&peer, &refresh1)?)?;
    ensure!(
        refresh2 != refresh1,
        "rotation is on but the refresh token did not change"
    );
    ensure!(access2 != access, "the refresh returned the same access token");
    ensure!(
        peer.is_active(&access2)? && peer.is_active(&refresh2)?,
        "the refreshed tokens are not active"
    );

    // Reusing the rotated refresh token fails and kills the whole grant.
    ensure_error(
        &refresh(&peer, &refresh1)?,
        400,
        "invalid_grant",
        "reuse of a rotated refresh token",
    )?;
    ensure!(
        !peer.is_active(&refresh2)?,
        "the newest refresh token survived reuse detection"
    );
    ensure!(
        !peer.is_active(&access2)?,
        "the newest access token survived reuse detection"
    );
    ensure_error(
        &refresh(&peer, &refresh2)?,
        400,
        "invalid_grant",
        "refresh on a revoked grant",
    )?;

    let stats = peer.stats()?;
    ensure!(
        stats.code_exchanges == 2 && stats.code_exchange_errors == 1,
        "stats: {stats:?}"
    );
    ensure!(
        stats.refresh_requests == 3 && stats.refresh_errors == 2,
        "stats: {stats:?}"
    );
    ensure!(stats.token_requests == 5 && stats.token_errors == 3, "stats: {stats:?}");
    note(&format!("whole public-client flow took {:?}", started.elapsed()));
    Ok(())
}

#[test]
fn declined_consent_returns_access_denied() -> Result<()> {
    let peer = start_peer(&PeerConfig::default())?;
    let options = LoginOptions {
        approve: false,
        ..LoginOptions::default()
    };
    let authorized = authorize(&peer, PUBLIC_CLIENT_ID, &options)?;
    ensure!(
        authorized.params.get("error").map(String::as_str) == Some("access_denied"),
        "expected error=access_denied, got {:?}",
        authorized.params.get("error")
    );
    ensure!(
        !authorized.params.contains_key("code"),
        "a declined consent still produced a code"
    );
    Ok(())
}

#[test]
fn confidential_clients_authenticate_only_with_their_own_method_and_secret() -> Result<()> {
    let peer = start_peer(&PeerConfig::default())?;
    let cases = [
        (
            BASIC_CLIENT_ID,
            ClientAuth::BASIC,
            [
                (
                    "secret in the body",
                    ClientAuth::Post {
                        client_id: BASIC_CLIENT_ID,
                        secret: BASIC_CLIENT_SECRET,
                    },
                ),
                (
                    "wrong secret",
                    ClientAuth::Basic {
                        client_id: BASIC_CLIENT_ID,
                        secret: "wrong",
                    },
                ),
                (
                    "no secret",
                    ClientAuth::None {
                        client_id: BASIC_CLIENT_ID,
                    },
                ),
            ],
        ),
        (
            POST_CLIENT_ID,
            ClientAuth::POST,
            [
                (
                    "secret in Basic",
                    ClientAuth::Basic {
                        client_id: POST_CLIENT_ID,
                        secret: POST_CLIENT_SECRET,
                    },
                ),
                (
                    "wrong secret",
                    ClientAuth::Post {
                        client_id: POST_CLIENT_ID,
                        secret: "wrong",
                    },
                ),
                (
                    "no secret",
                    ClientAuth::None {
                        client_id: POST_CLIENT_ID,
                    },
                ),
            ],
        ),
    ];
    for (client_id, right, wrongs) in cases {
        let authorized = authorize(&peer, client_id, &LoginOptions::default())?;
        for (what, auth) in wrongs {
            let response = exchange(&peer, auth, &authorized, &authorized.pkce.verifier)?;
            ensure_error(&response, 401, "invalid_client", &format!("{client_id} with {what}"))?;
        }
        // Failed client authentication did not burn the code.
        let response = exchange(&peer, right, &authorized, &authorized.pkce.verifier)?;
        let (access, refresh) = tokens(&response).with_context(|| format!("{client_id} with its own method"))?;
        let info = peer.introspect(&access)?;
        ensure!(
            info["active"] == true && info["client_id"] == client_id,
            "introspection of {client_id}'s token"
        );

        // Refresh with the right method works; a public-style refresh for a confidential client does not.
        let denied = peer.token_request(
            ClientAuth::None { client_id },
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )?;
        ensure_error(
            &denied,
            401,
            "invalid_client",
            &format!("{client_id} refresh without a secret"),
        )?;
        let refreshed = peer.token_request(right, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)])?;
        let (access2, _) = tokens(&refreshed).with_context(|| format!("{client_id} refresh"))?;

        // The code is single-use, and replaying it revokes what was issued from it (RFC 6749 §4.1.2).
        let replay = exchange(&peer, right, &authorized, &authorized.pkce.verifier)?;
        ensure_error(
            &replay,
            400,
            "invalid_grant",
            &format!("{client_id} replaying its code"),
        )?;
        ensure!(!peer.is_active(&access2)?, "{client_id}: tokens survived a code replay");
    }
    Ok(())
}

#[test]
fn admin_endpoints_expire_reconfigure_and_revoke_behind_the_clients_back() -> Result<()> {
    let peer = start_peer(&PeerConfig {
        access_token_ttl: 2,
        ..PeerConfig::default()
    })?;
    let options = LoginOptions {
        login: "bob".to_owned(),
        ..LoginOptions::default()
    };
    let authorized = authorize(&peer, PUBLIC_CLIENT_ID, &options)?;
    let first = exchange(&peer, ClientAuth::PUBLIC, &authorized, &authorized.pkce.verifier)?;
    let (access, refresh1) = tokens(&first)?;
    ensure!(
        first.body["expires_in"] == 2,
        "expires_in is {}, expected the configured 2",
        first.body["expires_in"]
    );
    ensure!(
        peer.introspect(&access)?["sub"] == "bob",
        "the login name did not become the sub"
    );

    // clockTolerance 0: the access token is dead right after its lifetime.
    std::thread::sleep(Duration::from_millis(2500));
    ensure!(!peer.is_active(&access)?, "the access token outlived its 2 s lifetime");
    ensure!(
        peer.userinfo(&access)?.status == 401,
        "userinfo accepted an expired access token"
    );

    // Runtime reconfiguration: longer access tokens, no rotation.
    let now = peer.reconfigure(&PeerChange {
        access_token_ttl: Some(600),
        rotate_refresh_token: Some(false),
        ..PeerChange::default()
    })?;
    ensure!(
        now["accessTokenTtl"] == 600 && now["rotateRefreshToken"] == false,
        "reconfigure answered {now}"
    );
    let refreshed = refresh(&peer, &refresh1)?;
    let (access2, refresh2) = tokens(&refreshed)?;
    ensure!(
        refreshed.body["expires_in"]
            .as_u64()
            .is_some_and(|s| (590..=600).contains(&s)),
        "expires_in is off"
    );
    ensure!(refresh2 == refresh1, "rotation is off but the refresh token changed");

    // Revocation behind the client's back: every token of bob's grant dies.
    ensure!(
        peer.revoke_grant_for("bob")? == 1,
        "expected one grant of bob to be revoked"
    );
    ensure!(
        !peer.is_active(&access2)?,
        "the access token survived the admin revocation"
    );
    ensure!(
        !peer.is_active(&refresh2)?,
        "the refresh token survived the admin revocation"
    );
    ensure_error(
        &refresh(&peer, &refresh2)?,
        400,
        "invalid_grant",
        "refresh after the admin revocation",
    )?;
    ensure!(
        peer.revoke_grant_for("nobody")? == 0,
        "revoked a grant of an unknown account"
    );

    let stats = peer.stats()?;
    ensure!(
        stats.admin_revoked_grants == 1 && stats.introspections >= 4,
        "stats: {stats:?}"
    );
    Ok(())
}
